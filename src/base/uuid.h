/*
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits, so ids sort
 * by creation time. Randomness comes from getrandom(2) through a small
 * per-thread pool so an id costs no system call on the hot path.
 */
#ifndef WALLEX_BASE_UUID_H
#define WALLEX_BASE_UUID_H

#include <stdint.h>

#define WX_UUID_STR_BYTES 37 /* 36 characters and the NUL */

/* Writes the canonical lower-case text form into out. Returns 0 or an
 * error code when the kernel gives no randomness. */
int wx_uuid7(int64_t unix_ms, char out[WX_UUID_STR_BYTES]);

#endif
