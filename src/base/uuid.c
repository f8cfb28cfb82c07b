/* UUIDv7 generation; see uuid.h. */
#include "base/uuid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "base/err.h"

static _Thread_local unsigned char pool[512];
static _Thread_local size_t pool_used = sizeof(pool);

static int random_bytes(unsigned char *out, size_t n)
{
    if (pool_used + n > sizeof(pool)) {
        size_t got = 0;
        while (got < sizeof(pool)) {
            ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return WX_ERR_IO;
            }
            got += (size_t)r;
        }
        pool_used = 0;
    }
    memcpy(out, pool + pool_used, n);
    pool_used += n;
    return 0;
}

int wx_uuid7(int64_t unix_ms, char out[WX_UUID_STR_BYTES])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char u[16];
    int err = random_bytes(u + 6, 10);
    if (err)
        return err;
    uint64_t ms = (uint64_t)unix_ms;
    for (int i = 0; i < 6; i++)
        u[i] = (unsigned char)(ms >> (40 - 8 * i));
    u[6] = (unsigned char)(0x70 | (u[6] & 0x0f)); /* version 7 */
    u[8] = (unsigned char)(0x80 | (u[8] & 0x3f)); /* variant 10 */

    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[u[i] >> 4];
        *p++ = hex[u[i] & 15];
    }
    *p = '\0';
    return 0;
}
