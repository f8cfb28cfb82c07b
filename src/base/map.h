/*
 * String-keyed hash map with open addressing. Keys come from clients
 * (wallet ids), so the hash is SipHash-1-3 with a per-process random key:
 * nobody can craft ids that collide and slow the writer down.
 *
 * The map copies keys and owns the copies; values are the caller's.
 * Not thread-safe.
 */
#ifndef WALLEX_BASE_MAP_H
#define WALLEX_BASE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wx_map_slot {
    char *key; /* NULL: empty; wx_map_tomb: deleted */
    uint64_t hash;
    void *value;
};

struct wx_map {
    struct wx_map_slot *slots;
    size_t cap; /* power of two or 0 */
    size_t len;
    size_t used; /* len plus tombstones */
};

void wx_map_init(struct wx_map *m);
/* Frees the slots and the key copies, not the values. Accepts NULL. */
void wx_map_free(struct wx_map *m);
/* Empties the map, keeping its memory. */
void wx_map_clear(struct wx_map *m);
/* Inserts or replaces. Returns 0 or WX_ERR_NOMEM (the map is unchanged). */
int wx_map_put(struct wx_map *m, const char *key, void *value);
void *wx_map_get(const struct wx_map *m, const char *key);
/* Removes the key and returns its value, or NULL when absent. */
void *wx_map_remove(struct wx_map *m, const char *key);

/* Iteration: start with *cursor = 0; returns false past the last entry.
 * Removing the entry just returned is allowed (removal leaves a tombstone
 * and moves nothing); inserting while iterating is not. */
bool wx_map_next(const struct wx_map *m, size_t *cursor, const char **key_out, void **value_out);

uint64_t wx_hash(const void *data, size_t len);

#endif
