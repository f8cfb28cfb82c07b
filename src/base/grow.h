/*
 * Room for one more item in a doubling array. Returns the (possibly moved)
 * items with *cap updated, or NULL when out of memory or the size would
 * overflow; then the array and *cap are as they were.
 */
#ifndef WALLEX_BASE_GROW_H
#define WALLEX_BASE_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static inline void *wx_grow(void *items, size_t *cap, size_t len, size_t item_bytes,
                            size_t first_cap)
{
    if (len < *cap)
        return items;
    size_t want = *cap ? *cap * 2 : first_cap;
    if (want < *cap || want > SIZE_MAX / item_bytes)
        return NULL;
    void *grown = realloc(items, want * item_bytes);
    if (grown != NULL)
        *cap = want;
    return grown;
}

#endif
