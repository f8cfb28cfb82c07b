/* The id grammar; see id.h. */
#include "base/id.h"

#include <stddef.h>

#include "limits.h"

bool wx_id_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n == WX_ID_BYTES_MAX)
            return false;
        /* ASCII by hand: isalnum() follows the locale. */
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '_' && c != ':' && c != '-')
            return false;
    }
    return n > 0;
}
