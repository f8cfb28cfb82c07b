/* Secrets and signatures of webhooks; see sign.h. */
#include "bus/sign.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/buf.h"
#include "base/err.h"

int bus_secret_new(char out[BUS_SECRET_BYTES_MAX + 1])
{
    unsigned char key[BUS_SECRET_KEY_BYTES];
    size_t got = 0;
    while (got < sizeof(key)) {
        ssize_t n = getrandom(key + got, sizeof(key) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return WX_ERR_IO;
        got += (size_t)n;
    }
    /* 32 bytes are 44 base64 characters: with the prefix, 50 < 65. */
    _Static_assert(sizeof(BUS_SECRET_PREFIX) - 1 + 4 * ((BUS_SECRET_KEY_BYTES + 2) / 3) <=
                       BUS_SECRET_BYTES_MAX,
                   "a secret fits its bound");
    memcpy(out, BUS_SECRET_PREFIX, sizeof(BUS_SECRET_PREFIX) - 1);
    EVP_EncodeBlock((unsigned char *)out + sizeof(BUS_SECRET_PREFIX) - 1, key, sizeof(key));
    return 0;
}

bool bus_secret_key(const char *secret, unsigned char key[BUS_SECRET_BYTES_MAX],
                    size_t *key_len_out)
{
    size_t prefix = sizeof(BUS_SECRET_PREFIX) - 1;
    if (strncmp(secret, BUS_SECRET_PREFIX, prefix) != 0)
        return false;
    const char *b64 = secret + prefix;
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > BUS_SECRET_BYTES_MAX)
        return false;
    unsigned char decoded[BUS_SECRET_BYTES_MAX + 3];
    int n = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return false;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    size_t pad = (b64[len - 1] == '=') + (b64[len - 2] == '=');
    size_t key_len = (size_t)n - pad;
    if (key_len == 0 || key_len > BUS_SECRET_BYTES_MAX)
        return false;
    memcpy(key, decoded, key_len);
    *key_len_out = key_len;
    return true;
}

int bus_sign(const unsigned char *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
             const char *body, size_t body_len, char out[BUS_SIGNATURE_BYTES])
{
    struct wx_buf signed_content;
    wx_buf_init(&signed_content);
    wx_buf_printf(&signed_content, "%s.%" PRId64 ".", msg_id, timestamp_s);
    wx_buf_add(&signed_content, body, body_len);
    if (!wx_buf_ok(&signed_content)) {
        wx_buf_free(&signed_content);
        return WX_ERR_NOMEM;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    const unsigned char *ok = HMAC(EVP_sha256(), key, (int)key_len,
                                   (const unsigned char *)signed_content.data, signed_content.len,
                                   mac, &mac_len);
    wx_buf_free(&signed_content);
    if (ok == NULL || mac_len != 32)
        return WX_ERR_IO;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len);
    return 0;
}
