/*
 * Token text, roles and the ownership rule; see auth.h. A token is
 * "wxt.<tokenId>.<secret>": the id says which entry to look at (one map
 * lookup), the secret proves the holder. Only SHA-256 of the secret is
 * ever stored; a full-entropy secret needs no salt or slow hash, since
 * nothing can be guessed from its hash that is not guessed from nothing.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "auth/auth.h"
#include "base/err.h"

static const char *const role_names[AUTH_ROLES] = {
    [AUTH_ROLE_ADMIN] = "admin",
    [AUTH_ROLE_USER] = "user",
    [AUTH_ROLE_READER] = "reader",
};

const char *auth_role_name(enum auth_role role)
{
    return (unsigned)role < AUTH_ROLES ? role_names[role] : "unknown";
}

bool auth_role_parse(const char *name, enum auth_role *out)
{
    for (int r = 0; r < AUTH_ROLES; r++) {
        if (name != NULL && strcmp(name, role_names[r]) == 0) {
            *out = (enum auth_role)r;
            return true;
        }
    }
    return false;
}

bool auth_sees_all(const struct auth_principal *p)
{
    return p == NULL || p->role != AUTH_ROLE_USER;
}

bool auth_owns(const struct auth_principal *p, const char *owner_id)
{
    return auth_sees_all(p) || (owner_id != NULL && strcmp(p->subject, owner_id) == 0);
}

/* ---- base64url without padding (RFC 4648 §5), for exactly the secret ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

_Static_assert((AUTH_SECRET_BYTES * 8 + 5) / 6 == AUTH_SECRET_TEXT_BYTES,
               "the secret's text is its bytes in base64url");

static void secret_encode(const unsigned char in[AUTH_SECRET_BYTES],
                          char out[AUTH_SECRET_TEXT_BYTES])
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < AUTH_SECRET_BYTES; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = b64url[(acc << (6 - bits)) & 63];
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Strict: exactly one text for each secret (the unused low bits of the
 * last character are zero), so a token has one spelling. */
static bool secret_decode(const char in[AUTH_SECRET_TEXT_BYTES],
                          unsigned char out[AUTH_SECRET_BYTES])
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < AUTH_SECRET_TEXT_BYTES; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o == AUTH_SECRET_BYTES && (acc & ((1u << bits) - 1)) == 0;
}

/* ---- SHA-256, on every request ----
 *
 * OpenSSL 3's one-shot SHA256() looks the algorithm up on every call, under
 * a lock both HTTP threads share: 0.7 us a hash on one thread, 1.1 us on
 * two (bench/auth_bench). Fetched once, with a context per thread that is
 * reset for each hash, it is 0.14 us and 0.35 us. */

static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha_md;       /* fetched once, kept for the process */
static pthread_key_t sha_key; /* each thread's EVP_MD_CTX, freed when it ends */

static void sha_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha_init(void)
{
    if (pthread_key_create(&sha_key, sha_ctx_free) == 0)
        sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void sha256(const unsigned char *in, size_t len, unsigned char out[AUTH_HASH_BYTES])
{
    pthread_once(&sha_once, sha_init);
    EVP_MD_CTX *ctx = sha_md != NULL ? pthread_getspecific(sha_key) : NULL;
    if (sha_md != NULL && ctx == NULL && (ctx = EVP_MD_CTX_new()) != NULL &&
        pthread_setspecific(sha_key, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    unsigned int n = 0;
    if (ctx != NULL && EVP_DigestInit_ex2(ctx, sha_md, NULL) == 1 &&
        EVP_DigestUpdate(ctx, in, len) == 1 && EVP_DigestFinal_ex(ctx, out, &n) == 1 &&
        n == AUTH_HASH_BYTES)
        return;
    SHA256(in, len, out); /* the slow way, which needs no context */
}

/* ---- tokens ---- */

static int random_bytes(unsigned char *out, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(out + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return WX_ERR_IO;
        got += (size_t)n;
    }
    return 0;
}

int auth_token_new(int64_t now_ms, char token_id[WX_UUID_STR_BYTES],
                   char token[AUTH_TOKEN_BYTES + 1], unsigned char hash[AUTH_HASH_BYTES])
{
    unsigned char secret[AUTH_SECRET_BYTES];
    int err = wx_uuid7(now_ms, token_id);
    if (!err)
        err = random_bytes(secret, sizeof(secret));
    if (err)
        return err;
    size_t prefix = sizeof(AUTH_TOKEN_PREFIX) - 1;
    memcpy(token, AUTH_TOKEN_PREFIX, prefix);
    memcpy(token + prefix, token_id, WX_UUID_STR_BYTES - 1);
    token[prefix + WX_UUID_STR_BYTES - 1] = '.';
    secret_encode(secret, token + prefix + WX_UUID_STR_BYTES);
    token[AUTH_TOKEN_BYTES] = '\0';
    sha256(secret, sizeof(secret), hash);
    OPENSSL_cleanse(secret, sizeof(secret));
    return 0;
}

/* The canonical text of a UUID as wx_uuid7 writes it: lower-case hex in
 * groups of 8-4-4-4-12. */
static bool uuid_text_ok(const char *s)
{
    for (size_t i = 0; i < WX_UUID_STR_BYTES - 1; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

bool auth_token_parse(const char *text, size_t text_len, char token_id[WX_UUID_STR_BYTES],
                      unsigned char hash[AUTH_HASH_BYTES])
{
    size_t prefix = sizeof(AUTH_TOKEN_PREFIX) - 1;
    if (text_len != AUTH_TOKEN_BYTES || memcmp(text, AUTH_TOKEN_PREFIX, prefix) != 0)
        return false;
    const char *id = text + prefix;
    if (!uuid_text_ok(id) || id[WX_UUID_STR_BYTES - 1] != '.')
        return false;
    unsigned char secret[AUTH_SECRET_BYTES];
    if (!secret_decode(id + WX_UUID_STR_BYTES, secret))
        return false;
    memcpy(token_id, id, WX_UUID_STR_BYTES - 1);
    token_id[WX_UUID_STR_BYTES - 1] = '\0';
    sha256(secret, sizeof(secret), hash);
    OPENSSL_cleanse(secret, sizeof(secret));
    return true;
}

void auth_hash_hex(const unsigned char hash[AUTH_HASH_BYTES], char out[2 * AUTH_HASH_BYTES + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < AUTH_HASH_BYTES; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 15];
    }
    out[2 * AUTH_HASH_BYTES] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool auth_hash_unhex(const char *hex, unsigned char out[AUTH_HASH_BYTES])
{
    if (hex == NULL || strlen(hex) != 2 * AUTH_HASH_BYTES)
        return false;
    for (size_t i = 0; i < AUTH_HASH_BYTES; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}
