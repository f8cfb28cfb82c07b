/* Chunked bump allocator; see arena.h. */
#include "base/arena.h"

#include <assert.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"

struct wx_arena_chunk {
    struct wx_arena_chunk *next;
    size_t used_bytes;
    size_t cap_bytes;
    alignas(max_align_t) unsigned char data[];
};

void wx_arena_init(struct wx_arena *arena)
{
    arena->head = NULL;
}

void wx_arena_release(struct wx_arena *arena)
{
    if (arena == NULL)
        return;
    struct wx_arena_chunk *c = arena->head;
    while (c != NULL) {
        struct wx_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    arena->head = NULL;
}

void *wx_arena_alloc(struct wx_arena *arena, size_t bytes)
{
    const size_t align = alignof(max_align_t);
    if (bytes > SIZE_MAX / 2)
        return NULL;
    size_t need = (bytes + align - 1) & ~(align - 1);
    if (need == 0)
        need = align;

    struct wx_arena_chunk *c = arena->head;
    if (c == NULL || c->cap_bytes - c->used_bytes < need) {
        size_t cap = need > WX_ARENA_CHUNK_BYTES ? need : WX_ARENA_CHUNK_BYTES;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->used_bytes = 0;
        c->cap_bytes = cap;
        /* A large one-off allocation goes behind the current chunk so the
         * current chunk's free space is not wasted. */
        if (arena->head != NULL && need > WX_ARENA_CHUNK_BYTES) {
            c->next = arena->head->next;
            arena->head->next = c;
        } else {
            c->next = arena->head;
            arena->head = c;
        }
    }
    void *p = c->data + c->used_bytes;
    c->used_bytes += need;
    assert(c->used_bytes <= c->cap_bytes);
    memset(p, 0, bytes);
    return p;
}

char *wx_arena_strndup(struct wx_arena *arena, const char *s, size_t len)
{
    char *p = wx_arena_alloc(arena, len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *wx_arena_strdup(struct wx_arena *arena, const char *s)
{
    return wx_arena_strndup(arena, s, strlen(s));
}
