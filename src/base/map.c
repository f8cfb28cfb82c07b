/* Open-addressing hash map and SipHash-1-3; see map.h. */
#include "base/map.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/err.h"

static char tomb_marker;
#define TOMB (&tomb_marker)

static uint64_t sip_k0, sip_k1;
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void sip_init(void)
{
    uint64_t k[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    /* Without randomness the map still works, only predictably. */
    if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
        k[0] = 0x0706050403020100ULL;
        k[1] = 0x0f0e0d0c0b0a0908ULL;
    }
    sip_k0 = k[0];
    sip_k1 = k[1];
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                             \
    do {                                                                     \
        v0 += v1;                                                            \
        v1 = ROTL(v1, 13);                                                   \
        v1 ^= v0;                                                            \
        v0 = ROTL(v0, 32);                                                   \
        v2 += v3;                                                            \
        v3 = ROTL(v3, 16);                                                   \
        v3 ^= v2;                                                            \
        v0 += v3;                                                            \
        v3 = ROTL(v3, 21);                                                   \
        v3 ^= v0;                                                            \
        v2 += v1;                                                            \
        v1 = ROTL(v1, 17);                                                   \
        v1 ^= v2;                                                            \
        v2 = ROTL(v2, 32);                                                   \
    } while (0)

uint64_t wx_hash(const void *data, size_t len)
{
    pthread_once(&sip_once, sip_init);
    const unsigned char *in = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ sip_k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ sip_k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ sip_k0;
    uint64_t v3 = 0x7465646279746573ULL ^ sip_k1;
    uint64_t b = (uint64_t)len << 56;
    const unsigned char *end = in + len - (len % 8);
    for (; in != end; in += 8) {
        uint64_t m;
        memcpy(&m, in, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void wx_map_init(struct wx_map *m)
{
    memset(m, 0, sizeof(*m));
}

void wx_map_clear(struct wx_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key != NULL && m->slots[i].key != TOMB)
            free(m->slots[i].key);
        m->slots[i].key = NULL;
        m->slots[i].value = NULL;
    }
    m->len = 0;
    m->used = 0;
}

void wx_map_free(struct wx_map *m)
{
    if (m == NULL)
        return;
    wx_map_clear(m);
    free(m->slots);
    wx_map_init(m);
}

/* The slot holding key, or the first free slot of its probe sequence. */
static struct wx_map_slot *find_slot(const struct wx_map *m, const char *key, uint64_t h,
                                     bool *found)
{
    size_t mask = m->cap - 1;
    struct wx_map_slot *free_slot = NULL;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct wx_map_slot *s = &m->slots[i];
        if (s->key == NULL) {
            *found = false;
            return free_slot ? free_slot : s;
        }
        if (s->key == TOMB) {
            if (free_slot == NULL)
                free_slot = s;
        } else if (s->hash == h && strcmp(s->key, key) == 0) {
            *found = true;
            return s;
        }
    }
}

static int grow(struct wx_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    /* Many tombstones and few live keys: rehash at the same size. */
    if (m->cap && m->len * 4 < m->cap)
        cap = m->cap;
    struct wx_map_slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return WX_ERR_NOMEM;
    struct wx_map old = *m;
    m->slots = slots;
    m->cap = cap;
    m->len = 0;
    m->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        struct wx_map_slot *s = &old.slots[i];
        if (s->key == NULL || s->key == TOMB)
            continue;
        bool found;
        struct wx_map_slot *d = find_slot(m, s->key, s->hash, &found);
        *d = *s;
        m->len++;
        m->used++;
    }
    free(old.slots);
    return 0;
}

int wx_map_put(struct wx_map *m, const char *key, void *value)
{
    /* At most half full: linear probing's misses stay short (the writer
     * looks up streams that are not there on every batch). */
    if ((m->used + 1) * 2 > m->cap) {
        int err = grow(m);
        if (err)
            return err;
    }
    size_t len = strlen(key);
    uint64_t h = wx_hash(key, len);
    bool found;
    struct wx_map_slot *s = find_slot(m, key, h, &found);
    if (found) {
        s->value = value;
        return 0;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return WX_ERR_NOMEM;
    memcpy(copy, key, len + 1);
    if (s->key == NULL)
        m->used++;
    s->key = copy;
    s->hash = h;
    s->value = value;
    m->len++;
    return 0;
}

void *wx_map_get(const struct wx_map *m, const char *key)
{
    if (m->len == 0)
        return NULL;
    bool found;
    struct wx_map_slot *s = find_slot(m, key, wx_hash(key, strlen(key)), &found);
    return found ? s->value : NULL;
}

void *wx_map_remove(struct wx_map *m, const char *key)
{
    if (m->len == 0)
        return NULL;
    bool found;
    struct wx_map_slot *s = find_slot(m, key, wx_hash(key, strlen(key)), &found);
    if (!found)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMB;
    s->value = NULL;
    m->len--;
    return v;
}

bool wx_map_next(const struct wx_map *m, size_t *cursor, const char **key_out, void **value_out)
{
    for (; *cursor < m->cap; (*cursor)++) {
        struct wx_map_slot *s = &m->slots[*cursor];
        if (s->key != NULL && s->key != TOMB) {
            *key_out = s->key;
            *value_out = s->value;
            (*cursor)++;
            return true;
        }
    }
    return false;
}
