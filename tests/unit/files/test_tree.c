/*
 * The tree index (src/files/tree.c): nodes, paths, depths, names among
 * live siblings, inherited levels, trash, purge with node reuse, and every
 * refused event leaving the tree as it was. No database.
 */
#include "world.h"

static struct files_event ev(enum files_event_kind kind, const char *id)
{
    return (struct files_event){.kind = kind, .item_id = id, .actor = "t", .owner_id = "o"};
}

static struct files_event mk(const char *id, const char *name, const char *parent, bool folder)
{
    struct files_event e = ev(folder ? FILES_FOLDER_CREATED : FILES_FILE_CREATED, id);
    e.name = name;
    e.parent_id = parent;
    e.has_size = !folder;
    e.mime_type = folder ? NULL : "a/b";
    return e;
}

static void path_is(struct files_tree *t, const char *id, const char *want)
{
    struct wx_buf b;
    wx_buf_init(&b);
    files_tree_path(t, files_tree_find(t, id), &b);
    assert_true(wx_buf_ok(&b));
    assert_string_equal(b.data, want);
    wx_buf_free(&b);
}

static void test_shape(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_tree *t = w->tree;
    assert_int_equal(files_tree_len(t), 4);
    path_is(t, "f", "/A/B/f");
    path_is(t, "a", "/A");
    assert_int_equal(files_tree_depth(t, node(w, "f")), 3);
    assert_int_equal(files_tree_height(t, node(w, "a")), 2);
    assert_int_equal(files_tree_height(t, node(w, "f")), 0);
    assert_int_equal(files_tree_descendants(t, node(w, "a")), 3);
    assert_true(files_tree_within(t, node(w, "f"), node(w, "a")));
    assert_false(files_tree_within(t, node(w, "a"), node(w, "f")));
    assert_int_equal(files_tree_named(t, node(w, "a"), NULL, "B"), node(w, "b"));
    assert_int_equal(files_tree_named(t, FILES_NODE_NONE, "alice", "A"), node(w, "a"));
    assert_int_equal(files_tree_named(t, FILES_NODE_NONE, "bob", "A"), FILES_NODE_NONE);
    assert_int_equal(files_tree_named(t, node(w, "a"), NULL, "b"), FILES_NODE_NONE); /* case */
    assert_string_equal(files_tree_owner(t, node(w, "f")), "alice");
    assert_true(files_tree_bytes(t) > 0);
    world_free(w);
}

static void test_levels_inherit(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_tree *t = w->tree;
    struct files_caller bob = user("bob"), carol = user("carol"), alice = user("alice");
    assert_ptr_equal(world_do(w, grant("b", "bob", FILES_LEVEL_WRITE), &alice), ES_OK);
    assert_ptr_equal(world_do(w, grant("a", FILES_EVERYONE, FILES_LEVEL_READ), &alice), ES_OK);
    assert_int_equal(files_tree_level(t, node(w, "f"), &bob), FILES_LEVEL_WRITE);
    assert_int_equal(files_tree_level(t, node(w, "g"), &bob), FILES_LEVEL_READ); /* via * */
    assert_int_equal(files_tree_level(t, node(w, "g"), &carol), FILES_LEVEL_READ);
    assert_int_equal(files_tree_level(t, node(w, "f"), &alice), FILES_LEVEL_MANAGE);
    assert_int_equal(files_tree_level(t, node(w, "f"), &ADMIN), FILES_LEVEL_MANAGE);
    assert_int_equal(files_tree_level(t, node(w, "f"), &READER), FILES_LEVEL_READ);
    assert_int_equal(files_tree_subject_level(t, node(w, "f"), "bob"), FILES_LEVEL_WRITE);
    assert_int_equal(files_tree_subject_level(t, node(w, "g"), "bob"), FILES_LEVEL_NONE);
    assert_int_equal(files_tree_subject_level(t, node(w, "g"), FILES_EVERYONE), FILES_LEVEL_READ);
    /* A move changes what is inherited: g under b gains bob's write. */
    assert_ptr_equal(world_do(w, move_to("g", "b"), &alice), ES_OK);
    assert_int_equal(files_tree_level(t, node(w, "g"), &bob), FILES_LEVEL_WRITE);
    assert_ptr_equal(world_do(w, revoke("a", FILES_EVERYONE, FILES_LEVEL_READ), &alice), ES_OK);
    assert_int_equal(files_tree_level(t, node(w, "a"), &carol), FILES_LEVEL_NONE);
    world_free(w);
}

static void test_trash_and_names(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_tree *t = w->tree;
    struct files_event e = ev(FILES_TRASHED, "b");
    assert_int_equal(files_tree_apply(t, &e), 0);
    assert_true(files_tree_trashed(t, node(w, "b")));
    assert_true(files_tree_hidden(t, node(w, "f")));
    assert_false(files_tree_trashed(t, node(w, "f")));
    /* Its name is free among the live children of a. */
    assert_int_equal(files_tree_named(t, node(w, "a"), NULL, "B"), FILES_NODE_NONE);
    assert_int_equal(files_tree_apply(t, &e), WX_ERR_CORRUPT); /* trashed twice */
    struct files_event other = mk("b2", "B", "a", true);
    assert_int_equal(files_tree_apply(t, &other), 0);
    struct files_event back = ev(FILES_RESTORED, "b");
    assert_int_equal(files_tree_apply(t, &back), WX_ERR_CORRUPT); /* the name is held */
    assert_true(files_tree_trashed(t, node(w, "b")));             /* unchanged */
    world_free(w);
}

static void test_refusals_change_nothing(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_tree *t = w->tree;
    size_t bytes = files_tree_bytes(t);
    struct files_event bad[] = {
        mk("a", "again", NULL, true), /* id held */
        mk("x", "B", "a", true),      /* name held */
        mk("x", "y", "f", true),      /* parent is a file */
        mk("x", "y", "nope", true),   /* parent unknown */
        mk("x", "y", NULL, false),    /* a file at the top */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bad[i].owner_id = "alice"; /* a new subject would stay interned */
        assert_int_equal(files_tree_apply(t, &bad[i]), WX_ERR_CORRUPT);
    }
    struct files_event cycle = ev(FILES_MOVED, "a");
    cycle.parent_id = "b";
    assert_int_equal(files_tree_apply(t, &cycle), WX_ERR_CORRUPT);
    struct files_event unknown = ev(FILES_RENAMED, "zz");
    unknown.name = "n";
    assert_int_equal(files_tree_apply(t, &unknown), WX_ERR_CORRUPT);
    struct files_event clash = ev(FILES_RENAMED, "g");
    clash.name = "B";
    assert_int_equal(files_tree_apply(t, &clash), WX_ERR_CORRUPT);
    struct files_event no_grant = ev(FILES_GRANT_REVOKED, "g");
    no_grant.subject = "bob";
    no_grant.permission = FILES_LEVEL_READ;
    assert_int_equal(files_tree_apply(t, &no_grant), WX_ERR_CORRUPT);
    struct files_event folder_update = ev(FILES_FILE_UPDATED, "a");
    assert_int_equal(files_tree_apply(t, &folder_update), WX_ERR_CORRUPT);
    assert_int_equal(files_tree_len(t), 4);
    assert_int_equal(files_tree_bytes(t), bytes);
    path_is(t, "f", "/A/B/f");
    assert_int_equal(files_tree_parent(t, node(w, "a")), FILES_NODE_NONE);
    world_free(w);
}

static void test_purge_and_reuse(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_tree *t = w->tree;
    struct files_event p = ev(FILES_PURGED, "b");
    assert_int_equal(files_tree_apply(t, &p), 0);
    assert_int_equal(files_tree_len(t), 2);
    assert_int_equal(node(w, "b"), FILES_NODE_NONE);
    assert_int_equal(node(w, "f"), FILES_NODE_NONE);
    assert_int_equal(files_tree_descendants(t, node(w, "a")), 1);
    /* Freed nodes serve new items; names are free again. */
    struct files_event again = mk("b3", "B", "a", true);
    assert_int_equal(files_tree_apply(t, &again), 0);
    struct files_event under = mk("f3", "f", "b3", false);
    assert_int_equal(files_tree_apply(t, &under), 0);
    path_is(t, "f3", "/A/B/f");
    uint32_t cursor = 0, n, seen = 0;
    while ((n = files_tree_next(t, &cursor)) != FILES_NODE_NONE)
        seen++;
    assert_int_equal(seen, 4);
    world_free(w);
}

/* The writer's purge in two steps (commands.c): staged, the subtree is out
 * of sight; lost, it is back as it was; committed, it is gone. */
static void test_purge_in_two_steps(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_tree *t = w->tree;
    assert_int_equal(files_tree_purge_stage(t, "b"), 0);
    assert_int_equal(node(w, "b"), FILES_NODE_NONE);
    assert_int_equal(node(w, "f"), FILES_NODE_NONE);
    assert_int_not_equal(node(w, "g"), FILES_NODE_NONE);
    assert_int_equal(files_tree_purge_stage(t, "b"), WX_ERR_CORRUPT); /* out of sight */
    files_tree_purge_settle(t, "b", false);
    path_is(t, "f", "/A/B/f");
    assert_int_equal(files_tree_len(t), 4);
    assert_int_equal(files_tree_purge_stage(t, "b"), 0);
    files_tree_purge_settle(t, "b", true);
    assert_int_equal(files_tree_len(t), 2);
    assert_int_equal(files_tree_descendants(t, node(w, "a")), 1);
    assert_int_equal(files_tree_purge_settle(t, "b", true), 0); /* gone: nothing to do */
    assert_int_equal(files_tree_len(t), 2);
    assert_int_equal(files_tree_purge_settle(t, "g", false), WX_ERR_CORRUPT); /* not staged */
    world_free(w);
}

/* A purge staged inside another: undoing the outer one shows the inner
 * again (the writer marks it again), and a committed purge leaves the
 * tree whether its node is flagged or not. */
static void test_nested_purges(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_tree *t = w->tree;
    assert_int_equal(files_tree_purge_stage(t, "f"), 0);
    assert_int_equal(files_tree_purge_stage(t, "b"), 0);
    assert_int_equal(files_tree_purge_settle(t, "b", false), 0);
    assert_int_not_equal(node(w, "f"), FILES_NODE_NONE);
    assert_int_equal(files_tree_purge_settle(t, "f", true), 0);
    assert_int_equal(node(w, "f"), FILES_NODE_NONE);
    assert_int_equal(files_tree_len(t), 3);
    path_is(t, "b", "/A/B");
    world_free(w);
}

/* An undone move goes back where it was, the top level included, unless
 * the name was taken there meanwhile. */
static void test_move_back(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_tree *t = w->tree;
    struct files_event c = mk("c", "C", NULL, true);
    assert_int_equal(files_tree_apply(t, &c), 0);
    struct files_event m = ev(FILES_MOVED, "c");
    m.parent_id = "a";
    assert_int_equal(files_tree_apply(t, &m), 0);
    path_is(t, "c", "/A/C");
    assert_int_equal(files_tree_move_back(t, "c", NULL), 0);
    path_is(t, "c", "/C");
    assert_int_equal(files_tree_move_back(t, "c", "b"), 0);
    path_is(t, "c", "/A/B/C");
    struct files_event other = mk("c2", "C", NULL, true); /* the owner's top-level name */
    assert_int_equal(files_tree_apply(t, &other), 0);
    assert_int_equal(files_tree_move_back(t, "c", NULL), WX_ERR_CORRUPT);
    path_is(t, "c", "/A/B/C");
    assert_int_equal(files_tree_move_back(t, "a", "c"), WX_ERR_CORRUPT); /* a cycle */
    assert_int_equal(files_tree_move_back(t, "nope", NULL), WX_ERR_CORRUPT);
    world_free(w);
}

/* Many items: the hash sets grow and every item stays found, by id and by
 * name, across renames and moves. */
static void test_many(void **state)
{
    (void)state;
    struct files_tree *t;
    assert_int_equal(files_tree_new(&t), 0);
    struct files_event root = mk("root", "root", NULL, true);
    assert_int_equal(files_tree_apply(t, &root), 0);
    char id[32], name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "i%d", i);
        snprintf(name, sizeof(name), "n%d", i);
        struct files_event e = mk(id, name, i < 100 ? "root" : NULL, true);
        if (i >= 100) {
            char parent[32];
            snprintf(parent, sizeof(parent), "i%d", i % 100);
            e.parent_id = parent;
            assert_int_equal(files_tree_apply(t, &e), 0);
        } else {
            assert_int_equal(files_tree_apply(t, &e), 0);
        }
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(id, sizeof(id), "i%d", i);
        struct files_event r = ev(FILES_RENAMED, id);
        snprintf(name, sizeof(name), "r%d", i);
        r.name = name;
        assert_int_equal(files_tree_apply(t, &r), 0);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "i%d", i);
        uint32_t n = files_tree_find(t, id);
        assert_int_not_equal(n, FILES_NODE_NONE);
        snprintf(name, sizeof(name), i % 7 == 0 ? "r%d" : "n%d", i);
        assert_string_equal(files_tree_name(t, n), name);
        assert_int_equal(files_tree_named(t, files_tree_parent(t, n), NULL, name), n);
    }
    assert_int_equal(files_tree_len(t), 5001);
    files_tree_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_levels_inherit),
        cmocka_unit_test(test_trash_and_names),
        cmocka_unit_test(test_refusals_change_nothing),
        cmocka_unit_test(test_purge_and_reuse),
        cmocka_unit_test(test_purge_in_two_steps),
        cmocka_unit_test(test_nested_purges),
        cmocka_unit_test(test_move_back),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
