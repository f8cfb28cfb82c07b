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
#include "es/domain.h"
#include "proj/projector.h"
#include "wallet/wallet.h"

extern const struct es_consumer wallet_consumer_wallets;
extern const struct es_consumer wallet_consumer_ledger;
extern const struct es_consumer wallet_consumer_transfers;
/* Decodes every wallet and transfer event once for all three. */
extern const struct es_event_codec wallet_codec;
/* All three, NULL-terminated, for the domain. */
extern const struct es_consumer *const wallet_consumers[];

/* The ledger lives in two tables per set: ledger{s}, clustered by (wallet,
 * version), and ledger_tail{s}, where the projector appends new entries
 * until it folds them into ledger{s} (see es_consumer.fold). A wallet's
 * entries in the tail are all newer than its entries in ledger{s}. Every
 * query reads both: LEDGER_BOTH(columns, where-clause) is the union. */
#define LEDGER_BOTH(cols, where)                                                                  \
    "SELECT " cols " FROM ledger{s} " where " UNION ALL SELECT " cols " FROM ledger_tail{s} " where

/* Queries answer for a caller: owner_only NULL sees every wallet; else
 * only the wallets that owner has, the others as if they did not exist. */

/* GET /wallets/{id} from the read model: appends the Wallet JSON, or
 * returns WX_ERR_NOT_FOUND. */
int wallet_query_get(struct es_projector *p, const char *wallet_id, const char *owner_only,
                     struct wx_buf *out);
/* A page of wallets of one owner, ids after `after` (NULL from the start). */
int wallet_query_by_owner(struct es_projector *p, const char *owner_id, const char *after,
                          size_t limit, struct wx_buf *out);
/* A page of ledger entries, versions after `after_version`; NOT_FOUND when
 * the wallet is not in the read model. */
int wallet_query_ledger(struct es_projector *p, const char *wallet_id, const char *owner_only,
                        int64_t after_version, size_t limit, struct wx_buf *out);
/* The Transfer, with the side the caller may not see as null; NOT_FOUND
 * when it sees neither. */
int wallet_query_transfer(struct es_projector *p, const char *transfer_id,
                          const char *owner_only, struct wx_buf *out);

/* Rebuilds one wallet's row and ledger entries from its stream. */
int wallet_rebuild_one(struct es_projector *p, const char *wallet_id);

/* Compares the wallets and ledger read models with a fold of the log at
 * their checkpoints (es_domain.drift). */
int wallet_drift(struct es_projector *p, struct es_drift_report *report);

/* Checks the money invariants (es_domain.verify): appends the wallet part
 * of the report to out, its violations to v, counted in *violations_len. */
int wallet_verify(struct es_projector *p, struct wx_buf *out, struct wx_buf *v,
                  size_t *violations_len);

#endif
