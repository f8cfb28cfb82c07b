/*
 * Webhook signatures per Standard Webhooks: a secret is "whsec_" and the
 * base64 of random key bytes; a delivery is signed with
 * "v1,<base64 HMAC-SHA256(key, webhook-id + "." + webhook-timestamp + "."
 * + body)>". The primitives are OpenSSL's libcrypto; nothing here is
 * hand-rolled but the framing.
 */
#ifndef WALLEX_BUS_SIGN_H
#define WALLEX_BUS_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"

#define BUS_SECRET_PREFIX "whsec_"
/* "v1," and the base64 of a 32-byte MAC (44 characters), and the NUL. */
#define BUS_SIGNATURE_BYTES 48

/* A new secret from getrandom into out. WX_ERR_IO when no randomness. */
int bus_secret_new(char out[BUS_SECRET_BYTES_MAX + 1]);
/* The key bytes a secret stands for (what HMAC uses); false when the text
 * is not "whsec_" and base64 of 1 to BUS_SECRET_BYTES_MAX bytes. */
bool bus_secret_key(const char *secret, unsigned char key[BUS_SECRET_BYTES_MAX],
                    size_t *key_len_out);
/* The webhook-signature header value into out. WX_ERR_NOMEM or WX_ERR_IO
 * (libcrypto failed). */
int bus_sign(const unsigned char *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
             const char *body, size_t body_len, char out[BUS_SIGNATURE_BYTES]);

/* One key's signer, keyed once: each signature copies the keyed state
 * instead of looking HMAC-SHA256 up and keying it again (OpenSSL 3's
 * one-shot HMAC() fetched the algorithm on every call, a seventh of the
 * delivery thread's time). One thread at a time. */
struct bus_signer;
int bus_signer_new(const unsigned char *key, size_t key_len, struct bus_signer **out);
void bus_signer_free(struct bus_signer *signer);
int bus_signer_sign(struct bus_signer *signer, const char *msg_id, int64_t timestamp_s,
                    const char *body, size_t body_len, char out[BUS_SIGNATURE_BYTES]);

#endif
