/*
 * The wallet read models (wallets, ledger, transfers) as projector
 * consumers, the queries that read them, and the recovery checks: drift
 * (read model against a fold of the log) and verify (the money invariants).
 */
#ifndef WALLEX_WALLET_PROJECTIONS_H
#define WALLEX_WALLET_PROJECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "proj/projector.h"
#include "wallet/wallet.h"

extern const struct es_consumer wallet_consumer_wallets;
extern const struct es_consumer wallet_consumer_ledger;
extern const struct es_consumer wallet_consumer_transfers;
/* Decodes every wallet and transfer event once for all three. */
extern const struct es_event_codec wallet_codec;
/* All three, for es_projector_config. */
extern const struct es_consumer *const wallet_consumers[];
extern const size_t wallet_consumers_len;

/* The ledger lives in two tables per set: ledger{s}, clustered by (wallet,
 * version), and ledger_tail{s}, where the projector appends new entries
 * until it folds them into ledger{s} (see es_consumer.fold). A wallet's
 * entries in the tail are all newer than its entries in ledger{s}. Every
 * query reads both: LEDGER_BOTH(columns, where-clause) is the union. */
#define LEDGER_BOTH(cols, where)                                                                  \
    "SELECT " cols " FROM ledger{s} " where " UNION ALL SELECT " cols " FROM ledger_tail{s} " where

struct sqlconn;
/* Prepares `tmpl` against the live set of consumer `name` on a read
 * connection inside its read transaction; position_out (may be NULL) gets
 * that consumer's checkpoint as the same transaction sees it. */
int wallet_prepare_live(struct sqlconn *c, const char *name, const char *tmpl,
                        sqlite3_stmt **st_out, struct es_position *position_out);

/* GET /wallets/{id} from the read model: appends the Wallet JSON, or
 * returns WX_ERR_NOT_FOUND. */
int wallet_query_get(struct es_projector *p, const char *wallet_id, struct wx_buf *out);
/* A page of wallets of one owner, ids after `after` (NULL from the start). */
int wallet_query_by_owner(struct es_projector *p, const char *owner_id, const char *after,
                          size_t limit, struct wx_buf *out);
/* A page of ledger entries, versions after `after_version`; NOT_FOUND when
 * the wallet is not in the read model. */
int wallet_query_ledger(struct es_projector *p, const char *wallet_id, int64_t after_version,
                        size_t limit, struct wx_buf *out);
int wallet_query_transfer(struct es_projector *p, const char *transfer_id, struct wx_buf *out);

/* Rebuilds one wallet's row and ledger entries from its stream. */
int wallet_rebuild_one(struct es_projector *p, const char *wallet_id);

/* Compares the wallets and ledger read models with a fold of the log at
 * their checkpoints; appends {"checked": N, "drifted": [...]} to out. */
int wallet_drift(struct es_projector *p, struct wx_buf *out, size_t *drifted_out);

/* Checks the money invariants; appends a JSON report to out and sets *ok. */
int wallet_verify(struct es_projector *p, struct wx_buf *out, bool *ok_out);

#endif
