/*
 * The read model runs without fsync (synchronous=OFF). It is derived from
 * the log, and a process crash loses nothing of it: every write is already
 * in the OS. Only an OS crash or a power loss can leave it torn. So a
 * marker beside it (readmodel.db.boot) records the boot it was opened in,
 * and whether it was closed cleanly, that is checkpointed with fsync. A
 * read model left open by another boot is deleted at open and rebuilt from
 * the log.
 *
 * Why: the read model's checkpoints fsynced several MB at a time, and
 * those bursts delayed the writer's own fsync; without them p99 at 64
 * connections fell from 10-11 ms to 7.7 ms (docs/architecture.md).
 */
#ifndef WALLEX_RM_BOOTGUARD_H
#define WALLEX_RM_BOOTGUARD_H

#include <stdbool.h>

/* Before the read model is opened. *unsynced_out: it may run without
 * fsync (false when this machine has no boot id to go by). */
int boot_guard_open(const char *db_path, bool *unsynced_out);

/* After a final checkpoint with fsync: the read model is whole on disk. */
int boot_guard_clean(const char *db_path);

#endif
