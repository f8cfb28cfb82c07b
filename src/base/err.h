/*
 * System error codes for every wallex module (libuv's UV_ERRNO_MAP style).
 * Functions named as actions return one of these; 0 is success. Numbers are
 * frozen: never reuse or renumber one, only append.
 *
 * These are failures of the machine or of the program's inputs from disk,
 * not business rejections (those are in es/outcome.h).
 */
#ifndef WALLEX_BASE_ERR_H
#define WALLEX_BASE_ERR_H

#define WX_ERR_MAP(XX)                                                       \
    XX(OK, 0, "success")                                                     \
    XX(NOMEM, 1, "out of memory")                                            \
    XX(IO, 2, "storage input/output error")                                  \
    XX(CONFLICT, 3, "stream version does not match the expected version")    \
    XX(NOT_FOUND, 4, "not found")                                            \
    XX(FULL, 5, "queue is full")                                             \
    XX(INVALID, 6, "invalid argument")                                       \
    XX(CLOSED, 7, "component is shut down")                                  \
    XX(FAULT, 8, "injected fault")                                           \
    XX(TOO_LARGE, 9, "value exceeds a limit")                                \
    XX(CORRUPT, 10, "stored data is corrupt")                                \
    XX(OVERFLOW, 11, "integer overflow")                                     \
    XX(BUSY, 12, "resource busy")

enum wx_err {
#define XX(name, num, msg) WX_ERR_##name = (num),
    WX_ERR_MAP(XX)
#undef XX
};

/* Human text for an error code; never NULL. */
const char *wx_strerror(int err);
/* The code's name without prefix ("CONFLICT"); never NULL. */
const char *wx_errname(int err);

#endif
