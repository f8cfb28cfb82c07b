/*
 * A small world of files for the unit tests: a tree index and the item
 * states of its streams, changed only through the deciders, as the writer
 * changes them (decide, then evolve the state and apply to the tree).
 */
#ifndef WALLEX_TESTS_FILES_WORLD_H
#define WALLEX_TESTS_FILES_WORLD_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "base/err.h"
#include "files/files.h"

#define WORLD_ITEMS_MAX 256
#define NOW 1700000000000LL

struct world {
    struct files_tree *tree;
    size_t len;
    char ids[WORLD_ITEMS_MAX][WX_ID_BYTES_MAX + 1];
    struct files_item items[WORLD_ITEMS_MAX];
    int64_t versions[WORLD_ITEMS_MAX];
    int64_t now;
};

static const struct files_caller ADMIN = {FILES_ROLE_ADMIN, "root"};
static const struct files_caller READER = {FILES_ROLE_READER, "ray"};

static inline struct files_caller user(const char *subject)
{
    return (struct files_caller){FILES_ROLE_USER, subject};
}

static inline struct world *world_new(void)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_int_equal(files_tree_new(&w->tree), 0);
    w->now = NOW;
    return w;
}

static inline void world_free(struct world *w)
{
    files_tree_free(w->tree);
    free(w);
}

/* The slot of an item's stream (a new one when unseen). */
static inline size_t world_slot(struct world *w, const char *id)
{
    for (size_t i = 0; i < w->len; i++)
        if (strcmp(w->ids[i], id) == 0)
            return i;
    assert_true(w->len < WORLD_ITEMS_MAX);
    snprintf(w->ids[w->len], sizeof(w->ids[0]), "%s", id);
    files_item_init(&w->items[w->len]);
    return w->len++;
}

/* Decides c for who; on success stages it as the writer does. */
static inline const struct es_outcome *world_run(struct world *w, const struct files_command *c,
                                                 const struct files_caller *who,
                                                 struct files_decision *d)
{
    size_t i = world_slot(w, c->item_id);
    w->now += 1000;
    files_decide(w->tree, &w->items[i], w->versions[i], c, who, who->subject, w->now, d);
    if (d->outcome == ES_OK && d->changes) {
        /* the event's strings may point into the state: apply to the tree
         * first, as the writer does after evolving a copy */
        struct files_item next = w->items[i];
        files_evolve(&next, &d->event);
        assert_int_equal(files_tree_apply(w->tree, &d->event), 0);
        w->items[i] = next;
        w->versions[i]++;
    }
    return d->outcome;
}

static inline const struct es_outcome *world_do(struct world *w, struct files_command c,
                                                const struct files_caller *who)
{
    struct files_decision d;
    return world_run(w, &c, who, &d);
}

static inline struct files_command folder(const char *id, const char *name, const char *parent)
{
    return (struct files_command){
        .kind = FILES_CMD_CREATE_FOLDER, .item_id = id, .name = name, .parent_id = parent};
}

static inline struct files_command file(const char *id, const char *name, const char *parent)
{
    return (struct files_command){.kind = FILES_CMD_CREATE_FILE,
                                  .item_id = id,
                                  .name = name,
                                  .parent_id = parent,
                                  .has_size = true,
                                  .size = 10,
                                  .mime_type = "text/plain"};
}

static inline struct files_command on(enum files_command_kind kind, const char *id)
{
    return (struct files_command){.kind = kind, .item_id = id};
}

static inline struct files_command rename_to(const char *id, const char *name)
{
    return (struct files_command){.kind = FILES_CMD_RENAME, .item_id = id, .name = name};
}

static inline struct files_command move_to(const char *id, const char *parent)
{
    return (struct files_command){.kind = FILES_CMD_MOVE, .item_id = id, .parent_id = parent};
}

static inline struct files_command grant(const char *id, const char *subject,
                                         enum files_level level)
{
    return (struct files_command){
        .kind = FILES_CMD_GRANT, .item_id = id, .subject = subject, .permission = level};
}

static inline struct files_command revoke(const char *id, const char *subject,
                                          enum files_level level)
{
    return (struct files_command){
        .kind = FILES_CMD_REVOKE, .item_id = id, .subject = subject, .permission = level};
}

static inline uint32_t node(struct world *w, const char *id)
{
    return files_tree_find(w->tree, id);
}

/* Owner alice: /A (a) holding /A/B (b) holding /A/B/f (f), and /A/g (g). */
static inline struct world *world_sample(void)
{
    struct world *w = world_new();
    struct files_caller alice = user("alice");
    assert_ptr_equal(world_do(w, folder("a", "A", NULL), &alice), ES_OK);
    assert_ptr_equal(world_do(w, folder("b", "B", "a"), &alice), ES_OK);
    assert_ptr_equal(world_do(w, file("f", "f", "b"), &alice), ES_OK);
    assert_ptr_equal(world_do(w, file("g", "g", "a"), &alice), ES_OK);
    return w;
}

#endif
