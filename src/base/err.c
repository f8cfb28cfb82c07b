/* Text for the error codes of err.h, generated from the same list. */
#include "base/err.h"

const char *wx_strerror(int err)
{
    switch (err) {
#define XX(name, num, msg)                                                   \
    case WX_ERR_##name:                                                      \
        return msg;
        WX_ERR_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *wx_errname(int err)
{
    switch (err) {
#define XX(name, num, msg)                                                   \
    case WX_ERR_##name:                                                      \
        return #name;
        WX_ERR_MAP(XX)
#undef XX
    }
    return "UNKNOWN";
}
