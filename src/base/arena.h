/*
 * Per-request bump allocator (h2o's req->pool). Everything a request needs is
 * allocated here and freed at once when the request ends; handlers never
 * free piecemeal. Not thread-safe: one owner at a time.
 */
#ifndef WALLEX_BASE_ARENA_H
#define WALLEX_BASE_ARENA_H

#include <stddef.h>

struct wx_arena_chunk;

struct wx_arena {
    struct wx_arena_chunk *head;
};

void wx_arena_init(struct wx_arena *arena);
/* Frees every chunk; the arena is empty and usable again. Accepts NULL. */
void wx_arena_release(struct wx_arena *arena);
/* Zeroed memory aligned for any type, or NULL when out of memory. */
void *wx_arena_alloc(struct wx_arena *arena, size_t bytes);
/* Copy of s[0..len) with a terminating NUL, or NULL when out of memory. */
char *wx_arena_strndup(struct wx_arena *arena, const char *s, size_t len);
char *wx_arena_strdup(struct wx_arena *arena, const char *s);

#endif
