/* Secrets and signatures of webhooks; see sign.h. */
#include "bus/sign.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

struct bus_signer {
    EVP_MAC_CTX *keyed;
};

/* HMAC, fetched once for the process. */
static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_release(void)
{
    EVP_MAC_free(hmac);
}

static void hmac_fetch(void)
{
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (hmac != NULL)
        atexit(hmac_release); /* runs before libcrypto's own cleanup */
}

int bus_signer_new(const unsigned char *key, size_t key_len, struct bus_signer **out)
{
    pthread_once(&hmac_once, hmac_fetch);
    if (hmac == NULL)
        return WX_ERR_IO;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    int err = WX_ERR_NOMEM;
    struct bus_signer *sg = calloc(1, sizeof(*sg));
    if (sg == NULL)
        goto err;
    err = WX_ERR_IO;
    sg->keyed = EVP_MAC_CTX_new(hmac);
    if (sg->keyed == NULL || EVP_MAC_init(sg->keyed, key, key_len, params) != 1)
        goto err_free;
    *out = sg;
    return 0;
err_free:
    bus_signer_free(sg);
err:
    return err;
}

void bus_signer_free(struct bus_signer *signer)
{
    if (signer == NULL)
        return;
    EVP_MAC_CTX_free(signer->keyed);
    free(signer);
}

int bus_signer_sign(struct bus_signer *signer, const char *msg_id, int64_t timestamp_s,
                    const char *body, size_t body_len, char out[BUS_SIGNATURE_BYTES])
{
    char ts[1 + 1 + WX_U64_TEXT_BYTES + 1 + 1]; /* ".", sign, digits, ".", NUL */
    int ts_len = snprintf(ts, sizeof(ts), ".%" PRId64 ".", timestamp_s);
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(signer->keyed);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    bool ok = c != NULL && ts_len > 0 && (size_t)ts_len < sizeof(ts) &&
              EVP_MAC_update(c, (const unsigned char *)msg_id, strlen(msg_id)) == 1 &&
              EVP_MAC_update(c, (const unsigned char *)ts, (size_t)ts_len) == 1 &&
              EVP_MAC_update(c, (const unsigned char *)body, body_len) == 1 &&
              EVP_MAC_final(c, mac, &mac_len, sizeof(mac)) == 1 && mac_len == 32;
    EVP_MAC_CTX_free(c);
    if (!ok)
        return WX_ERR_IO;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len);
    return 0;
}

int bus_sign(const unsigned char *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
             const char *body, size_t body_len, char out[BUS_SIGNATURE_BYTES])
{
    struct bus_signer *sg;
    int err = bus_signer_new(key, key_len, &sg);
    if (err)
        return err;
    err = bus_signer_sign(sg, msg_id, timestamp_s, body, body_len, out);
    bus_signer_free(sg);
    return err;
}
