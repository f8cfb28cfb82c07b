/*
 * The files deciders (src/files/decide.c), pure and table-driven: the
 * permission matrix (owner, grantee by inheritance, everyone, other
 * subject, admin, reader against every command), names, moves and cycles,
 * trash and restore of nested subtrees by Drive's rule, purge, grants, and
 * evolve's audit fields. No database.
 */
#include "world.h"

static const struct es_outcome *const OK = ES_OK;

static void test_create(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice"), bob = user("bob");
    assert_ptr_equal(world_do(w, folder("a2", "A", NULL), &alice), FILES_name_taken);
    assert_ptr_equal(world_do(w, folder("a3", "A", NULL), &bob), OK);   /* bob's own top */
    assert_ptr_equal(world_do(w, folder("a4", "a", NULL), &alice), OK); /* case counts */
    assert_ptr_equal(world_do(w, folder("a", "other", NULL), &alice), FILES_file_already_exists);
    assert_ptr_equal(world_do(w, file("x", "B", "a"), &alice), FILES_name_taken);
    assert_ptr_equal(world_do(w, file("x", "x", "nope"), &alice), FILES_parent_not_found);
    assert_ptr_equal(world_do(w, file("x", "x", "f"), &alice), FILES_not_a_folder);
    assert_ptr_equal(world_do(w, file("x", "x", "a"), &bob), FILES_parent_not_found);
    assert_ptr_equal(world_do(w, folder("x", "x", NULL), &READER), AUTH_forbidden);
    /* A stream that exists (a purged item's id) is taken for good. */
    struct files_decision d;
    struct files_command c = folder("gone", "gone", NULL);
    size_t i = world_slot(w, "gone");
    w->versions[i] = 3;
    assert_ptr_equal(world_run(w, &c, &alice, &d), FILES_file_already_exists);
    /* The creator owns what it creates, in another's folder too. */
    assert_ptr_equal(world_do(w, grant("a", "bob", FILES_LEVEL_WRITE), &alice), OK);
    assert_ptr_equal(world_do(w, file("bf", "bobs", "a"), &bob), OK);
    assert_string_equal(w->items[world_slot(w, "bf")].owner_id, "bob");
    assert_string_equal(w->items[world_slot(w, "bf")].created_by, "bob");
    world_free(w);
}

/* Who may do what, on f (/A/B/f, alice's): each caller against each
 * command. bob holds write on B (inherited by f), carol read on A, dave
 * nothing (grants to everyone: test_everyone). */
struct matrix_case {
    const char *name;
    struct files_command c;
    const struct es_outcome *want[6]; /* alice, bob, carol, dave, admin, reader */
};

static void matrix_world(struct world *w)
{
    struct files_caller alice = user("alice");
    assert_ptr_equal(world_do(w, grant("b", "bob", FILES_LEVEL_WRITE), &alice), OK);
    assert_ptr_equal(world_do(w, grant("a", "carol", FILES_LEVEL_READ), &alice), OK);
    assert_ptr_equal(world_do(w, folder("t", "T", "a"), &alice), OK);
}

#define NF FILES_file_not_found
#define FB AUTH_forbidden

static void test_permission_matrix(void **state)
{
    (void)state;
    struct files_command upd = on(FILES_CMD_UPDATE, "f");
    upd.has_size = true;
    upd.size = 99;
    const struct matrix_case cases[] = {
        {"rename", rename_to("f", "f2"), {OK, OK, FB, NF, OK, FB}},
        /* bob cannot see T; carol can but may not write f */
        {"move", move_to("f", "t"), {OK, FILES_parent_not_found, FB, NF, OK, FB}},
        {"update", upd, {OK, OK, FB, NF, OK, FB}},
        {"trash", on(FILES_CMD_TRASH, "f"), {OK, OK, FB, NF, OK, FB}},
        {"restore",
         on(FILES_CMD_RESTORE, "f"),
         {FILES_not_trashed, FILES_not_trashed, FB, NF, FILES_not_trashed, FB}},
        {"purge", on(FILES_CMD_PURGE, "f"), {FILES_not_trashed, FB, FB, NF, FILES_not_trashed, FB}},
        {"grant", grant("f", "erin", FILES_LEVEL_READ), {OK, FB, FB, NF, OK, FB}},
        {"revoke",
         revoke("f", "erin", FILES_LEVEL_READ),
         {FILES_grant_not_found, FB, FB, NF, FILES_grant_not_found, FB}},
        {"create in B", file("n", "n", "b"), {OK, OK, FB, FILES_parent_not_found, OK, FB}},
    };
    const struct files_caller callers[] = {user("alice"), user("bob"), user("carol"),
                                           user("dave"),  ADMIN,       READER};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        for (size_t who = 0; who < 6; who++) {
            struct world *w = world_sample();
            matrix_world(w);
            struct files_decision d;
            struct files_command c = cases[k].c;
            const struct es_outcome *got = world_run(w, &c, &callers[who], &d);
            if (got != cases[k].want[who])
                fail_msg("%s by caller %zu: %s, want %s", cases[k].name, who, got->code,
                         cases[k].want[who]->code);
            world_free(w);
        }
    }
}

/* A grant to everyone reaches every token holder, down the tree. */
static void test_everyone(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice"), zed = user("zed");
    assert_ptr_equal(world_do(w, rename_to("f", "z"), &zed), NF);
    assert_ptr_equal(world_do(w, grant("b", FILES_EVERYONE, FILES_LEVEL_WRITE), &alice), OK);
    assert_ptr_equal(world_do(w, rename_to("f", "z"), &zed), OK);
    assert_ptr_equal(world_do(w, rename_to("g", "z"), &zed), NF); /* g is not under B */
    assert_ptr_equal(world_do(w, grant("f", "zed", FILES_LEVEL_READ), &zed), FB);
    world_free(w);
}

static void test_rename(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice");
    struct files_decision d;
    struct files_command same = rename_to("f", "f");
    assert_ptr_equal(world_run(w, &same, &alice, &d), OK);
    assert_false(d.changes);
    assert_ptr_equal(world_do(w, rename_to("g", "B"), &alice), FILES_name_taken);
    assert_ptr_equal(world_do(w, rename_to("g", "b"), &alice), OK);
    assert_ptr_equal(world_do(w, rename_to("a", "Top"), &alice), OK);
    assert_ptr_equal(world_do(w, folder("a5", "Top", NULL), &alice), FILES_name_taken);
    struct wx_buf p;
    wx_buf_init(&p);
    files_tree_path(w->tree, node(w, "f"), &p);
    assert_string_equal(p.data, "/Top/B/f");
    wx_buf_free(&p);
    world_free(w);
}

static void test_moves_and_cycles(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice");
    assert_ptr_equal(world_do(w, move_to("a", "a"), &alice), FILES_cycle);
    assert_ptr_equal(world_do(w, move_to("a", "b"), &alice), FILES_cycle);
    assert_ptr_equal(world_do(w, move_to("b", "f"), &alice), FILES_not_a_folder);
    assert_ptr_equal(world_do(w, move_to("b", "nope"), &alice), FILES_parent_not_found);
    assert_ptr_equal(world_do(w, move_to("nope", "a"), &alice), FILES_file_not_found);
    struct files_decision d;
    struct files_command stay = move_to("b", "a");
    assert_ptr_equal(world_run(w, &stay, &alice, &d), OK);
    assert_false(d.changes);
    /* Two moves that would together make a cycle: one after the other
     * (as the writer decides them), the second is refused. */
    assert_ptr_equal(world_do(w, folder("x", "X", NULL), &alice), OK);
    assert_ptr_equal(world_do(w, folder("y", "Y", NULL), &alice), OK);
    assert_ptr_equal(world_do(w, move_to("x", "y"), &alice), OK);
    assert_ptr_equal(world_do(w, move_to("y", "x"), &alice), FILES_cycle);
    /* A name held in the target folder. */
    assert_ptr_equal(world_do(w, folder("g2", "g", "b"), &alice), OK);
    assert_ptr_equal(world_do(w, move_to("g", "b"), &alice), FILES_name_taken);
    /* The moved item leaves the owner's top-level names. */
    assert_ptr_equal(world_do(w, move_to("y", "b"), &alice), OK);
    assert_ptr_equal(world_do(w, folder("y2", "Y", NULL), &alice), OK);
    world_free(w);
}

static void test_depth_bound(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct files_caller alice = user("alice");
    char id[16], parent[16];
    assert_ptr_equal(world_do(w, folder("d1", "d1", NULL), &alice), OK);
    for (int i = 2; i <= FILES_DEPTH_MAX; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        snprintf(parent, sizeof(parent), "d%d", i - 1);
        assert_ptr_equal(world_do(w, folder(id, id, parent), &alice), OK);
    }
    snprintf(parent, sizeof(parent), "d%d", FILES_DEPTH_MAX);
    assert_ptr_equal(world_do(w, folder("deep", "deep", parent), &alice), FILES_too_deep);
    /* A subtree of height 1 moved under depth 63 would reach 65. */
    assert_ptr_equal(world_do(w, folder("s", "s", NULL), &alice), OK);
    assert_ptr_equal(world_do(w, file("s1", "s1", "s"), &alice), OK);
    snprintf(parent, sizeof(parent), "d%d", FILES_DEPTH_MAX - 1);
    assert_ptr_equal(world_do(w, move_to("s", parent), &alice), FILES_too_deep);
    snprintf(parent, sizeof(parent), "d%d", FILES_DEPTH_MAX - 2);
    assert_ptr_equal(world_do(w, move_to("s", parent), &alice), OK);
    world_free(w);
}

static void test_update(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice");
    struct files_command c = on(FILES_CMD_UPDATE, "a");
    c.has_size = true;
    assert_ptr_equal(world_do(w, c, &alice), FILES_not_a_file);
    struct files_decision d;
    c = on(FILES_CMD_UPDATE, "f");
    c.has_size = true;
    c.size = 10; /* as it is */
    c.mime_type = "text/plain";
    assert_ptr_equal(world_run(w, &c, &alice, &d), OK);
    assert_false(d.changes);
    c.content_hash = "sha256:00";
    c.size = 11;
    assert_ptr_equal(world_run(w, &c, &alice, &d), OK);
    assert_true(d.changes && d.event.has_size && d.event.mime_type == NULL);
    const struct files_item *s = &w->items[world_slot(w, "f")];
    assert_int_equal(s->size, 11);
    assert_string_equal(s->content_hash, "sha256:00");
    world_free(w);
}

/* Drive's rule: restoring a folder brings back what was trashed with it,
 * not what was trashed on its own before. */
static void test_trash_restore_nested(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice");
    struct files_tree *t = w->tree;
    assert_ptr_equal(world_do(w, on(FILES_CMD_TRASH, "f"), &alice), OK); /* f alone, first */
    assert_ptr_equal(world_do(w, on(FILES_CMD_TRASH, "a"), &alice), OK); /* then all of A */
    struct files_decision d;
    struct files_command again = on(FILES_CMD_TRASH, "b");
    assert_ptr_equal(world_run(w, &again, &alice, &d), OK); /* hidden already: nothing */
    assert_false(d.changes);
    assert_true(files_tree_hidden(t, node(w, "g")));
    assert_ptr_equal(world_do(w, on(FILES_CMD_RESTORE, "b"), &alice), FILES_not_trashed);
    assert_ptr_equal(world_do(w, on(FILES_CMD_RESTORE, "f"), &alice), FILES_item_trashed);
    assert_ptr_equal(world_do(w, rename_to("g", "h"), &alice), FILES_item_trashed);
    assert_ptr_equal(world_do(w, file("n", "n", "b"), &alice), FILES_item_trashed);
    assert_ptr_equal(world_do(w, on(FILES_CMD_RESTORE, "a"), &alice), OK);
    assert_false(files_tree_hidden(t, node(w, "g")));
    assert_false(files_tree_hidden(t, node(w, "b")));
    assert_true(files_tree_hidden(t, node(w, "f"))); /* trashed on its own before */
    assert_ptr_equal(world_do(w, on(FILES_CMD_RESTORE, "f"), &alice), OK);
    /* A name taken meanwhile blocks a restore. */
    assert_ptr_equal(world_do(w, on(FILES_CMD_TRASH, "g"), &alice), OK);
    assert_ptr_equal(world_do(w, file("g2", "g", "a"), &alice), OK);
    assert_ptr_equal(world_do(w, on(FILES_CMD_RESTORE, "g"), &alice), FILES_name_taken);
    assert_true(w->items[world_slot(w, "g")].trashed);
    world_free(w);
}

static void test_purge(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice");
    assert_ptr_equal(world_do(w, on(FILES_CMD_PURGE, "b"), &alice), FILES_not_trashed);
    assert_ptr_equal(world_do(w, on(FILES_CMD_TRASH, "b"), &alice), OK);
    /* The retention's purge: only what was trashed before its cut. */
    struct files_command late = on(FILES_CMD_PURGE, "b");
    late.by_retention = true;
    late.trashed_before_ms = w->items[world_slot(w, "b")].trashed_at_ms;
    assert_ptr_equal(world_do(w, late, &ADMIN), FILES_not_trashed);
    struct files_command inner = on(FILES_CMD_PURGE, "f");
    inner.by_retention = true;
    inner.trashed_before_ms = w->now + 1;
    assert_ptr_equal(world_do(w, inner, &ADMIN), FILES_not_trashed); /* f is not a top */
    late.trashed_before_ms++;
    struct files_decision d;
    assert_ptr_equal(world_run(w, &late, &ADMIN, &d), OK);
    assert_true(d.event.by_retention);
    assert_int_equal(node(w, "b"), FILES_NODE_NONE);
    assert_int_equal(node(w, "f"), FILES_NODE_NONE);
    assert_ptr_equal(world_do(w, rename_to("f", "x"), &alice), FILES_file_not_found);
    assert_true(w->items[world_slot(w, "b")].purged);
    world_free(w);
}

static void test_grants(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice"), bob = user("bob");
    assert_ptr_equal(world_do(w, grant("b", "bob", FILES_LEVEL_MANAGE), &alice), OK);
    struct files_decision d;
    struct files_command twice = grant("b", "bob", FILES_LEVEL_MANAGE);
    assert_ptr_equal(world_run(w, &twice, &alice, &d), OK);
    assert_false(d.changes);
    /* A manager grants and revokes below; no narrowing: a revoke on f of
     * what f inherits is no grant of f's own. */
    assert_ptr_equal(world_do(w, grant("f", "carol", FILES_LEVEL_READ), &bob), OK);
    assert_ptr_equal(world_do(w, revoke("f", "bob", FILES_LEVEL_MANAGE), &alice),
                     FILES_grant_not_found);
    assert_int_equal(files_tree_level(w->tree, node(w, "f"), &bob), FILES_LEVEL_MANAGE);
    assert_ptr_equal(world_do(w, revoke("b", "bob", FILES_LEVEL_MANAGE), &alice), OK);
    assert_int_equal(files_tree_level(w->tree, node(w, "f"), &bob), FILES_LEVEL_NONE);
    /* Grants are per subject and permission; 64 subjects at most. */
    char subject[16];
    for (int i = 0; i < FILES_GRANTS_MAX - 1; i++) { /* carol holds one already */
        snprintf(subject, sizeof(subject), "s%d", i);
        assert_ptr_equal(world_do(w, grant("f", subject, FILES_LEVEL_READ), &alice), OK);
    }
    assert_ptr_equal(world_do(w, grant("f", "one-more", FILES_LEVEL_READ), &alice),
                     FILES_too_many_grants);
    assert_ptr_equal(world_do(w, grant("f", "carol", FILES_LEVEL_WRITE), &alice), OK);
    assert_int_equal(files_item_grant(&w->items[world_slot(w, "f")], "carol"), FILES_LEVEL_WRITE);
    world_free(w);
}

static void test_audit_fields(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice"), bob = user("bob");
    assert_ptr_equal(world_do(w, grant("f", "bob", FILES_LEVEL_WRITE), &alice), OK);
    assert_ptr_equal(world_do(w, rename_to("f", "by-bob"), &bob), OK);
    const struct files_item *s = &w->items[world_slot(w, "f")];
    assert_string_equal(s->created_by, "alice");
    assert_string_equal(s->updated_by, "bob");
    assert_string_equal(s->owner_id, "alice");
    assert_true(s->updated_at_ms > s->created_at_ms);
    assert_int_equal(w->versions[world_slot(w, "f")], 3);
    /* Without a caller (authentication off) the actor is anonymous. */
    struct files_caller nobody = {FILES_ROLE_ADMIN, NULL};
    assert_ptr_equal(world_do(w, folder("z", "Z", NULL), &nobody), OK);
    assert_string_equal(w->items[world_slot(w, "z")].owner_id, FILES_ANONYMOUS);
    assert_string_equal(w->items[world_slot(w, "z")].created_by, FILES_ANONYMOUS);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_permission_matrix),
        cmocka_unit_test(test_everyone),
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_moves_and_cycles),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_trash_restore_nested),
        cmocka_unit_test(test_purge),
        cmocka_unit_test(test_grants),
        cmocka_unit_test(test_audit_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
