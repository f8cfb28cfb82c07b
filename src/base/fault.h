/*
 * Fault injection for black-box tests, driven by files: while
 * "$WALLEX_FAULT_DIR/<name>" exists the fault is on, and its content (an
 * integer) parameterises it. Without WALLEX_FAULT_DIR every check is one
 * pointer test. Faults in use:
 *
 *   store-commit-fail       every commit fails (503, nothing applied)
 *   store-commit-delay-ms   each commit first sleeps this long (a slow fsync)
 *   ack-drop                committed commands lose their answer: the
 *                           connection closes without a response
 *   projection-<name>       that read model fails
 *   files-fail-after-stage  a folder's creation fails after it changed the
 *                           tree index (as if its answer could not be built)
 */
#ifndef WALLEX_BASE_FAULT_H
#define WALLEX_BASE_FAULT_H

#include <stdbool.h>
#include <stdint.h>

/* Reads WALLEX_FAULT_DIR once; call before starting threads. */
void wx_fault_init(const char *dir);
bool wx_fault_active(const char *name);
/* The file's integer content, or 0 when absent or not a number. */
int64_t wx_fault_value(const char *name);

#endif
