/*
 * The tree index (files.h): every live file and folder as a node in one
 * array, linked to its parent and its siblings, with two hash sets of node
 * numbers: by id, and by (scope, name) for the live children of a folder
 * (scope: the parent's node number) and the live top-level folders of an
 * owner (scope: the owner's subject number with the top bit set).
 *
 * Why so compact: the writer holds every item of the log here, so the
 * bytes per item decide how many items a node can serve. A node is 48
 * bytes, its id and name one allocation, a grant 8 bytes, and each hash
 * set 4-byte slots at most half full; subjects (owners and grantees) are
 * interned once. docs/architecture.md has the measured total per item.
 *
 * Every change allocates what it needs before it changes anything, so an
 * error (out of memory, or an event that does not fit) leaves the tree as
 * it was: the writer may refuse the command and go on with the same tree.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/map.h"
#include "files/files.h"

#define NONE FILES_NODE_NONE
#define TOP_SCOPE 0x80000000u /* scope of top-level folders: owner | TOP_SCOPE */
#define SLOT_EMPTY 0u
#define SLOT_TOMB UINT32_MAX
#define SET_CAP_MIN 16u
/* What malloc adds to each block, for the byte count (glibc: 8-16). */
#define MALLOC_OVERHEAD 16

enum {
    NODE_USED = 1,
    NODE_TRASHED = 2,
    NODE_PURGING = 4, /* a staged purge: out of sight until it settles */
};

struct tgrant {
    uint32_t subject;
    uint8_t levels;
};

struct tnode {
    char *strs; /* "<id>\0<name>\0" */
    struct tgrant *grants;
    uint32_t parent, first_child, next, prev;
    uint32_t owner; /* subject number */
    uint16_t name_len;
    uint8_t id_len, kind, flags, grants_len, grants_cap;
};

/* Open addressing, linear probing; a slot holds node + 1. */
struct uset {
    uint32_t *slots;
    uint32_t cap, len, used; /* used: len plus tombstones */
};

struct files_tree {
    struct tnode *nodes;
    uint32_t nodes_len; /* high-water mark */
    uint32_t nodes_cap;
    uint32_t used;
    uint32_t free_head; /* free nodes, linked through `next` */
    struct uset ids, names;
    struct wx_map subjects; /* subject -> number + 1 */
    char **subject_names;
    uint32_t subjects_len, subjects_cap;
    uint32_t everyone; /* the number of FILES_EVERYONE, or NONE */
    size_t str_bytes, grant_bytes;
};

/* ---- nodes ---- */

static struct tnode *node(const struct files_tree *t, uint32_t n)
{
    assert(n < t->nodes_len && (t->nodes[n].flags & NODE_USED));
    return &t->nodes[n];
}

static const char *node_name(const struct tnode *x)
{
    return x->strs + x->id_len + 1;
}

static bool live(const struct tnode *x)
{
    return !(x->flags & NODE_TRASHED);
}

static uint32_t scope_of(const struct tnode *x)
{
    return x->parent != NONE ? x->parent : (x->owner | TOP_SCOPE);
}

/* ---- hash sets ---- */

static uint64_t hash_name(uint32_t scope, const char *name, size_t len)
{
    unsigned char key[4 + FILES_NAME_BYTES_MAX];
    assert(len <= FILES_NAME_BYTES_MAX);
    memcpy(key, &scope, 4);
    memcpy(key + 4, name, len);
    return wx_hash(key, 4 + len);
}

static uint64_t node_hash(const struct files_tree *t, const struct uset *s, uint32_t n)
{
    const struct tnode *x = &t->nodes[n];
    if (s == &t->ids)
        return wx_hash(x->strs, x->id_len);
    return hash_name(scope_of(x), node_name(x), x->name_len);
}

static void uset_put(const struct files_tree *t, struct uset *s, uint32_t n, uint64_t h)
{
    (void)t;
    uint32_t mask = s->cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        if (s->slots[i] == SLOT_EMPTY || s->slots[i] == SLOT_TOMB) {
            if (s->slots[i] == SLOT_EMPTY)
                s->used++;
            s->slots[i] = n + 1;
            s->len++;
            return;
        }
    }
}

/* Room for one more entry: at most half the slots used, tombstones
 * included, after it. */
static int uset_reserve(struct files_tree *t, struct uset *s)
{
    if ((size_t)(s->used + 1) * 2 <= s->cap)
        return 0;
    uint32_t cap = SET_CAP_MIN;
    while ((size_t)cap < (size_t)(s->len + 1) * 4)
        cap *= 2;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return WX_ERR_NOMEM;
    struct uset old = *s;
    *s = (struct uset){.slots = slots, .cap = cap};
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.slots[i] != SLOT_EMPTY && old.slots[i] != SLOT_TOMB)
            uset_put(t, s, old.slots[i] - 1, node_hash(t, s, old.slots[i] - 1));
    free(old.slots);
    return 0;
}

static void uset_remove(const struct files_tree *t, struct uset *s, uint32_t n)
{
    uint32_t mask = s->cap - 1;
    uint64_t h = node_hash(t, s, n);
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        assert(s->slots[i] != SLOT_EMPTY);
        if (s->slots[i] == n + 1) {
            s->slots[i] = SLOT_TOMB;
            s->len--;
            return;
        }
    }
}

static uint32_t find_id(const struct files_tree *t, const char *id, size_t len)
{
    const struct uset *s = &t->ids;
    if (s->cap == 0)
        return NONE;
    uint32_t mask = s->cap - 1;
    for (uint32_t i = (uint32_t)wx_hash(id, len) & mask; s->slots[i] != SLOT_EMPTY;
         i = (i + 1) & mask) {
        if (s->slots[i] == SLOT_TOMB)
            continue;
        const struct tnode *x = &t->nodes[s->slots[i] - 1];
        if (x->id_len == len && memcmp(x->strs, id, len) == 0)
            return s->slots[i] - 1;
    }
    return NONE;
}

static uint32_t find_name(const struct files_tree *t, uint32_t scope, const char *name, size_t len)
{
    const struct uset *s = &t->names;
    if (s->cap == 0 || len > FILES_NAME_BYTES_MAX)
        return NONE;
    uint32_t mask = s->cap - 1;
    for (uint32_t i = (uint32_t)hash_name(scope, name, len) & mask; s->slots[i] != SLOT_EMPTY;
         i = (i + 1) & mask) {
        if (s->slots[i] == SLOT_TOMB)
            continue;
        const struct tnode *x = &t->nodes[s->slots[i] - 1];
        if (x->name_len == len && scope_of(x) == scope && memcmp(node_name(x), name, len) == 0)
            return s->slots[i] - 1;
    }
    return NONE;
}

/* ---- subjects ---- */

static uint32_t subject_find(const struct files_tree *t, const char *subject)
{
    void *v = subject != NULL ? wx_map_get(&t->subjects, subject) : NULL;
    return v != NULL ? (uint32_t)((uintptr_t)v - 1) : NONE;
}

static int subject_intern(struct files_tree *t, const char *subject, uint32_t *out)
{
    uint32_t n = subject_find(t, subject);
    if (n != NONE) {
        *out = n;
        return 0;
    }
    if (t->subjects_len == t->subjects_cap) {
        uint32_t cap = t->subjects_cap ? 2 * t->subjects_cap : 16;
        char **names = realloc(t->subject_names, cap * sizeof(*names));
        if (names == NULL)
            return WX_ERR_NOMEM;
        t->subject_names = names;
        t->subjects_cap = cap;
    }
    char *copy = strdup(subject);
    if (copy == NULL)
        return WX_ERR_NOMEM;
    n = t->subjects_len;
    if (wx_map_put(&t->subjects, subject, (void *)(uintptr_t)(n + 1)) != 0) {
        free(copy);
        return WX_ERR_NOMEM;
    }
    t->subject_names[t->subjects_len++] = copy;
    t->str_bytes += strlen(copy) + 1 + MALLOC_OVERHEAD;
    if (strcmp(subject, FILES_EVERYONE) == 0)
        t->everyone = n;
    *out = n;
    return 0;
}

/* ---- the tree ---- */

int files_tree_new(struct files_tree **out)
{
    struct files_tree *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return WX_ERR_NOMEM;
    t->free_head = NONE;
    t->everyone = NONE;
    wx_map_init(&t->subjects);
    *out = t;
    return 0;
}

void files_tree_free(struct files_tree *t)
{
    if (t == NULL)
        return;
    for (uint32_t n = 0; n < t->nodes_len; n++) {
        if (t->nodes[n].flags & NODE_USED) {
            free(t->nodes[n].strs);
            free(t->nodes[n].grants);
        }
    }
    for (uint32_t i = 0; i < t->subjects_len; i++)
        free(t->subject_names[i]);
    free(t->subject_names);
    wx_map_free(&t->subjects);
    free(t->ids.slots);
    free(t->names.slots);
    free(t->nodes);
    free(t);
}

size_t files_tree_len(const struct files_tree *t)
{
    return t->used;
}

size_t files_tree_bytes(const struct files_tree *t)
{
    return sizeof(*t) + (size_t)t->nodes_cap * sizeof(struct tnode) +
           (size_t)(t->ids.cap + t->names.cap) * sizeof(uint32_t) + t->str_bytes + t->grant_bytes +
           (size_t)t->subjects.cap * sizeof(struct wx_map_slot) +
           (size_t)t->subjects_cap * sizeof(char *);
}

uint32_t files_tree_next(const struct files_tree *t, uint32_t *cursor)
{
    while (*cursor < t->nodes_len) {
        uint32_t n = (*cursor)++;
        if (t->nodes[n].flags & NODE_USED)
            return n;
    }
    return NONE;
}

uint32_t files_tree_find(const struct files_tree *t, const char *id)
{
    size_t len = strlen(id);
    uint32_t n = len <= WX_ID_BYTES_MAX ? find_id(t, id, len) : NONE;
    return n != NONE && (t->nodes[n].flags & NODE_PURGING) ? NONE : n;
}

const char *files_tree_id(const struct files_tree *t, uint32_t n)
{
    return node(t, n)->strs;
}

const char *files_tree_name(const struct files_tree *t, uint32_t n)
{
    return node_name(node(t, n));
}

uint32_t files_tree_parent(const struct files_tree *t, uint32_t n)
{
    return node(t, n)->parent;
}

enum files_kind files_tree_kind(const struct files_tree *t, uint32_t n)
{
    return (enum files_kind)node(t, n)->kind;
}

const char *files_tree_owner(const struct files_tree *t, uint32_t n)
{
    return t->subject_names[node(t, n)->owner];
}

bool files_tree_trashed(const struct files_tree *t, uint32_t n)
{
    return !live(node(t, n));
}

bool files_tree_hidden(const struct files_tree *t, uint32_t n)
{
    for (uint32_t x = n; x != NONE; x = t->nodes[x].parent)
        if (!live(node(t, x)))
            return true;
    return false;
}

int files_tree_depth(const struct files_tree *t, uint32_t n)
{
    int d = 0;
    for (uint32_t x = n; x != NONE; x = node(t, x)->parent)
        d++;
    return d;
}

/* Visits the subtree under n in pre-order (n excluded), calling fn with
 * each node's depth below n. */
static void subtree_walk(const struct files_tree *t, uint32_t n,
                         void (*fn)(void *ctx, uint32_t x, int below), void *ctx)
{
    uint32_t x = node(t, n)->first_child;
    int below = 1;
    while (x != NONE) {
        fn(ctx, x, below);
        const struct tnode *nx = node(t, x);
        if (nx->first_child != NONE) {
            x = nx->first_child;
            below++;
            continue;
        }
        while (x != n && t->nodes[x].next == NONE) {
            x = t->nodes[x].parent;
            below--;
        }
        if (x == n)
            break;
        x = t->nodes[x].next;
    }
}

static void count_height(void *ctx, uint32_t x, int below)
{
    (void)x;
    int *h = ctx;
    if (below > *h)
        *h = below;
}

static void count_one(void *ctx, uint32_t x, int below)
{
    (void)x;
    (void)below;
    (*(size_t *)ctx)++;
}

int files_tree_height(const struct files_tree *t, uint32_t n)
{
    int h = 0;
    subtree_walk(t, n, count_height, &h);
    return h;
}

size_t files_tree_descendants(const struct files_tree *t, uint32_t n)
{
    size_t count = 0;
    subtree_walk(t, n, count_one, &count);
    return count;
}

bool files_tree_within(const struct files_tree *t, uint32_t n, uint32_t a)
{
    for (uint32_t x = n; x != NONE; x = node(t, x)->parent)
        if (x == a)
            return true;
    return false;
}

uint32_t files_tree_named(const struct files_tree *t, uint32_t p, const char *owner,
                          const char *name)
{
    uint32_t scope = p;
    if (p == NONE) {
        uint32_t o = subject_find(t, owner);
        if (o == NONE)
            return NONE;
        scope = o | TOP_SCOPE;
    }
    return find_name(t, scope, name, strlen(name));
}

static enum files_level top_level(uint8_t levels)
{
    for (int l = FILES_LEVEL_MANAGE; l > FILES_LEVEL_NONE; l--)
        if (levels & (1u << l))
            return (enum files_level)l;
    return FILES_LEVEL_NONE;
}

/* The union of what ownership and grants give subject number subj (NONE:
 * a subject nobody ever named) on n and its ancestors, with the grants to
 * everyone when `everyone`. */
static enum files_level level_of(const struct files_tree *t, uint32_t n, uint32_t subj,
                                 bool everyone)
{
    enum files_level best = FILES_LEVEL_NONE;
    for (uint32_t x = n; x != NONE; x = t->nodes[x].parent) {
        const struct tnode *nx = node(t, x);
        if (subj != NONE && nx->owner == subj)
            return FILES_LEVEL_MANAGE;
        for (uint8_t g = 0; g < nx->grants_len; g++) {
            const struct tgrant *gr = &nx->grants[g];
            if ((subj != NONE && gr->subject == subj) ||
                (everyone && t->everyone != NONE && gr->subject == t->everyone)) {
                enum files_level l = top_level(gr->levels);
                if (l > best)
                    best = l;
            }
        }
        if (best == FILES_LEVEL_MANAGE)
            break;
    }
    return best;
}

enum files_level files_tree_level(const struct files_tree *t, uint32_t n,
                                  const struct files_caller *who)
{
    switch (who->role) {
    case FILES_ROLE_ADMIN:
        return FILES_LEVEL_MANAGE;
    case FILES_ROLE_READER:
        return FILES_LEVEL_READ;
    case FILES_ROLE_USER:
        break;
    }
    return level_of(t, n, subject_find(t, who->subject), true);
}

enum files_level files_tree_subject_level(const struct files_tree *t, uint32_t n,
                                          const char *subject)
{
    /* FILES_EVERYONE is never an owner (it is no id), so its level is its
     * grants' alone. */
    return level_of(t, n, subject_find(t, subject), false);
}

size_t files_tree_grants(const struct files_tree *t, uint32_t n, const char **subjects,
                         uint8_t *levels)
{
    const struct tnode *x = node(t, n);
    for (uint8_t g = 0; g < x->grants_len; g++) {
        subjects[g] = t->subject_names[x->grants[g].subject];
        levels[g] = x->grants[g].levels;
    }
    return x->grants_len;
}

void files_tree_path(const struct files_tree *t, uint32_t n, struct wx_buf *out)
{
    uint32_t chain[FILES_DEPTH_MAX];
    uint32_t *at = chain;
    size_t depth = (size_t)files_tree_depth(t, n);
    if (depth > FILES_DEPTH_MAX) { /* a log from a build with a deeper bound */
        at = malloc(depth * sizeof(*at));
        if (at == NULL) {
            out->failed = true;
            return;
        }
    }
    size_t i = depth;
    for (uint32_t x = n; x != NONE; x = t->nodes[x].parent)
        at[--i] = x;
    for (i = 0; i < depth; i++) {
        wx_buf_addc(out, '/');
        wx_buf_add(out, node_name(&t->nodes[at[i]]), t->nodes[at[i]].name_len);
    }
    if (at != chain)
        free(at);
}

/* ---- changes ---- */

static void link_child(struct files_tree *t, uint32_t n, uint32_t p)
{
    struct tnode *x = &t->nodes[n];
    x->parent = p;
    x->prev = NONE;
    x->next = NONE;
    if (p == NONE)
        return;
    struct tnode *px = &t->nodes[p];
    x->next = px->first_child;
    if (px->first_child != NONE)
        t->nodes[px->first_child].prev = n;
    px->first_child = n;
}

static void unlink_child(struct files_tree *t, uint32_t n)
{
    struct tnode *x = &t->nodes[n];
    if (x->parent != NONE) {
        if (x->prev != NONE)
            t->nodes[x->prev].next = x->next;
        else
            t->nodes[x->parent].first_child = x->next;
        if (x->next != NONE)
            t->nodes[x->next].prev = x->prev;
    }
    x->parent = x->prev = x->next = NONE;
}

/* "<id>\0<name>\0" in one block. */
static char *make_strs(const char *id, size_t id_len, const char *name, size_t name_len)
{
    char *s = malloc(id_len + name_len + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, id, id_len);
    s[id_len] = '\0';
    memcpy(s + id_len + 1, name, name_len);
    s[id_len + 1 + name_len] = '\0';
    return s;
}

static size_t strs_bytes(const struct tnode *x)
{
    return (size_t)x->id_len + x->name_len + 2 + MALLOC_OVERHEAD;
}

/* The parent a created or moved item goes under: a folder in the tree. */
static int parent_of(const struct files_tree *t, const char *parent_id, uint32_t *out)
{
    *out = NONE;
    if (parent_id == NULL)
        return 0;
    uint32_t p = files_tree_find(t, parent_id);
    if (p == NONE || t->nodes[p].kind != FILES_FOLDER)
        return WX_ERR_CORRUPT;
    *out = p;
    return 0;
}

static int reserve_node(struct files_tree *t)
{
    if (t->used >= FILES_ITEMS_MAX)
        return WX_ERR_FULL;
    if (t->free_head != NONE || t->nodes_len < t->nodes_cap)
        return 0;
    uint32_t cap = t->nodes_cap ? 2 * t->nodes_cap : 1024;
    struct tnode *nodes = realloc(t->nodes, (size_t)cap * sizeof(*nodes));
    if (nodes == NULL)
        return WX_ERR_NOMEM;
    t->nodes = nodes;
    t->nodes_cap = cap;
    return 0;
}

static int apply_create(struct files_tree *t, const struct files_event *e)
{
    size_t id_len = strlen(e->item_id), name_len = strlen(e->name);
    uint32_t p, owner;
    if (id_len == 0 || id_len > WX_ID_BYTES_MAX || name_len == 0 ||
        name_len > FILES_NAME_BYTES_MAX || find_id(t, e->item_id, id_len) != NONE ||
        (e->kind == FILES_FILE_CREATED && e->parent_id == NULL))
        return WX_ERR_CORRUPT;
    int err = parent_of(t, e->parent_id, &p);
    if (!err)
        err = subject_intern(t, e->owner_id, &owner);
    if (err)
        return err;
    if (find_name(t, p != NONE ? p : owner | TOP_SCOPE, e->name, name_len) != NONE)
        return WX_ERR_CORRUPT;
    if ((err = reserve_node(t)) != 0 || (err = uset_reserve(t, &t->ids)) != 0 ||
        (err = uset_reserve(t, &t->names)) != 0)
        return err;
    char *strs = make_strs(e->item_id, id_len, e->name, name_len);
    if (strs == NULL)
        return WX_ERR_NOMEM;
    uint32_t n;
    if (t->free_head != NONE) {
        n = t->free_head;
        t->free_head = t->nodes[n].next;
    } else {
        n = t->nodes_len++;
    }
    t->nodes[n] = (struct tnode){
        .strs = strs,
        .first_child = NONE,
        .owner = owner,
        .name_len = (uint16_t)name_len,
        .id_len = (uint8_t)id_len,
        .kind = e->kind == FILES_FOLDER_CREATED ? FILES_FOLDER : FILES_FILE,
        .flags = NODE_USED,
    };
    link_child(t, n, p);
    uset_put(t, &t->ids, n, node_hash(t, &t->ids, n));
    uset_put(t, &t->names, n, node_hash(t, &t->names, n));
    t->used++;
    t->str_bytes += strs_bytes(&t->nodes[n]);
    return 0;
}

static int apply_rename(struct files_tree *t, uint32_t n, const char *name)
{
    struct tnode *x = &t->nodes[n];
    size_t len = strlen(name);
    if (len == 0 || len > FILES_NAME_BYTES_MAX)
        return WX_ERR_CORRUPT;
    uint32_t holder = find_name(t, scope_of(x), name, len);
    if (live(x) && holder != NONE && holder != n)
        return WX_ERR_CORRUPT;
    int err = uset_reserve(t, &t->names);
    if (err)
        return err;
    char *strs = make_strs(x->strs, x->id_len, name, len);
    if (strs == NULL)
        return WX_ERR_NOMEM;
    if (live(x))
        uset_remove(t, &t->names, n);
    t->str_bytes -= strs_bytes(x);
    free(x->strs);
    x->strs = strs;
    x->name_len = (uint16_t)len;
    t->str_bytes += strs_bytes(x);
    if (live(x))
        uset_put(t, &t->names, n, node_hash(t, &t->names, n));
    return 0;
}

/* Under folder p, or to the owner's top level (p == NONE: only ever an
 * undo, the log has no such move). */
static int move_to(struct files_tree *t, uint32_t n, uint32_t p)
{
    if (p != NONE && files_tree_within(t, p, n))
        return WX_ERR_CORRUPT;
    struct tnode *x = &t->nodes[n];
    int err;
    if (live(x) &&
        find_name(t, p != NONE ? p : x->owner | TOP_SCOPE, node_name(x), x->name_len) != NONE)
        return WX_ERR_CORRUPT;
    if ((err = uset_reserve(t, &t->names)) != 0)
        return err;
    if (live(x))
        uset_remove(t, &t->names, n);
    unlink_child(t, n);
    link_child(t, n, p);
    if (live(x))
        uset_put(t, &t->names, n, node_hash(t, &t->names, n));
    return 0;
}

static int apply_move(struct files_tree *t, uint32_t n, const char *parent_id)
{
    uint32_t p;
    int err = parent_of(t, parent_id, &p);
    if (err || p == NONE)
        return WX_ERR_CORRUPT;
    return move_to(t, n, p);
}

int files_tree_move_back(struct files_tree *t, const char *id, const char *parent_id)
{
    uint32_t n = files_tree_find(t, id), p;
    if (n == NONE || parent_of(t, parent_id, &p) != 0)
        return WX_ERR_CORRUPT;
    return move_to(t, n, p);
}

static int apply_trash(struct files_tree *t, uint32_t n, bool trash)
{
    struct tnode *x = &t->nodes[n];
    if (live(x) != trash)
        return WX_ERR_CORRUPT; /* trashing a trashed item, restoring a live one */
    if (trash) {
        uset_remove(t, &t->names, n);
        x->flags |= NODE_TRASHED;
        return 0;
    }
    if (find_name(t, scope_of(x), node_name(x), x->name_len) != NONE)
        return WX_ERR_CORRUPT;
    int err = uset_reserve(t, &t->names);
    if (err)
        return err;
    x->flags &= (uint8_t)~NODE_TRASHED;
    uset_put(t, &t->names, n, node_hash(t, &t->names, n));
    return 0;
}

/* Takes a leaf out: out of the name set while its scope is known, off its
 * parent's list, out of the id set, onto the free list. */
static void drop_leaf(struct files_tree *t, uint32_t n)
{
    struct tnode *x = &t->nodes[n];
    assert(x->first_child == NONE);
    if (live(x))
        uset_remove(t, &t->names, n);
    unlink_child(t, n);
    uset_remove(t, &t->ids, n);
    t->str_bytes -= strs_bytes(x);
    if (x->grants != NULL)
        t->grant_bytes -= (size_t)x->grants_cap * sizeof(*x->grants) + MALLOC_OVERHEAD;
    free(x->strs);
    free(x->grants);
    *x = (struct tnode){.next = t->free_head};
    t->free_head = n;
    t->used--;
}

/* A purge takes the item and everything under it out: leaves first, so
 * each node is unlinked from a parent that is still there. */
static void apply_purge(struct files_tree *t, uint32_t top)
{
    uint32_t x = top;
    for (;;) {
        if (t->nodes[x].first_child != NONE) {
            x = t->nodes[x].first_child;
            continue;
        }
        uint32_t p = t->nodes[x].parent;
        drop_leaf(t, x);
        if (x == top)
            return;
        x = p;
    }
}

/* Sets or clears NODE_PURGING on n and everything under it. */
static void mark_purging(struct files_tree *t, uint32_t top, bool on)
{
    uint32_t x = top;
    for (;;) {
        if (on)
            t->nodes[x].flags |= NODE_PURGING;
        else
            t->nodes[x].flags &= (uint8_t)~NODE_PURGING;
        if (t->nodes[x].first_child != NONE) {
            x = t->nodes[x].first_child;
            continue;
        }
        while (x != top && t->nodes[x].next == NONE)
            x = t->nodes[x].parent;
        if (x == top)
            return;
        x = t->nodes[x].next;
    }
}

int files_tree_purge_stage(struct files_tree *t, const char *id)
{
    uint32_t n = files_tree_find(t, id);
    if (n == NONE)
        return WX_ERR_CORRUPT;
    mark_purging(t, n, true);
    return 0;
}

int files_tree_purge_settle(struct files_tree *t, const char *id, bool committed)
{
    size_t len = strlen(id);
    uint32_t n = len <= WX_ID_BYTES_MAX ? find_id(t, id, len) : NONE;
    if (committed) { /* in the log: gone, flagged or not */
        if (n != NONE)
            apply_purge(t, n);
        return 0;
    }
    if (n == NONE || !(t->nodes[n].flags & NODE_PURGING))
        return WX_ERR_CORRUPT;
    mark_purging(t, n, false);
    return 0;
}

static int apply_grant(struct files_tree *t, uint32_t n, const char *subject,
                       enum files_level level, bool add)
{
    if (level < FILES_LEVEL_READ || level > FILES_LEVEL_MANAGE)
        return WX_ERR_CORRUPT;
    uint8_t bit = (uint8_t)(1u << level);
    uint32_t subj = subject_find(t, subject);
    struct tnode *x = &t->nodes[n];
    uint8_t g = 0;
    while (g < x->grants_len && x->grants[g].subject != subj)
        g++;
    if (!add) {
        if (subj == NONE || g == x->grants_len || !(x->grants[g].levels & bit))
            return WX_ERR_CORRUPT;
        x->grants[g].levels &= (uint8_t)~bit;
        if (x->grants[g].levels == 0)
            x->grants[g] = x->grants[--x->grants_len];
        return 0;
    }
    if (g < x->grants_len && subj != NONE) {
        x->grants[g].levels |= bit;
        return 0;
    }
    if (x->grants_len == FILES_GRANTS_MAX)
        return WX_ERR_CORRUPT;
    int err = subject_intern(t, subject, &subj);
    if (err)
        return err;
    x = &t->nodes[n];
    if (x->grants_len == x->grants_cap) {
        uint8_t cap = x->grants_cap ? (uint8_t)(x->grants_cap * 2) : 2;
        if (cap > FILES_GRANTS_MAX)
            cap = FILES_GRANTS_MAX;
        struct tgrant *grants = realloc(x->grants, cap * sizeof(*grants));
        if (grants == NULL)
            return WX_ERR_NOMEM;
        t->grant_bytes += (size_t)(cap - x->grants_cap) * sizeof(*grants) +
                          (x->grants_cap == 0 ? MALLOC_OVERHEAD : 0);
        x->grants = grants;
        x->grants_cap = cap;
    }
    x->grants[x->grants_len++] = (struct tgrant){.subject = subj, .levels = bit};
    return 0;
}

int files_tree_apply(struct files_tree *t, const struct files_event *e)
{
    if (e->kind == FILES_FOLDER_CREATED || e->kind == FILES_FILE_CREATED)
        return apply_create(t, e);
    uint32_t n = files_tree_find(t, e->item_id);
    if (n == NONE)
        return WX_ERR_CORRUPT;
    switch (e->kind) {
    case FILES_RENAMED:
        return apply_rename(t, n, e->name);
    case FILES_MOVED:
        return e->parent_id != NULL ? apply_move(t, n, e->parent_id) : WX_ERR_CORRUPT;
    case FILES_FILE_UPDATED:
        return t->nodes[n].kind == FILES_FILE ? 0 : WX_ERR_CORRUPT;
    case FILES_TRASHED:
        return apply_trash(t, n, true);
    case FILES_RESTORED:
        return apply_trash(t, n, false);
    case FILES_PURGED:
        apply_purge(t, n);
        return 0;
    case FILES_GRANT_ADDED:
    case FILES_GRANT_REVOKED:
        return apply_grant(t, n, e->subject, e->permission, e->kind == FILES_GRANT_ADDED);
    default:
        return WX_ERR_CORRUPT;
    }
}
