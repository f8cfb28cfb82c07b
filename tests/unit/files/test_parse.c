/*
 * Request bodies of the files routes (src/files/parse.c) and the name rule
 * (src/files/name.c): tables of accepted and refused inputs.
 */
#include "world.h"

#include "base/arena.h"

static void test_names(void **state)
{
    (void)state;
    static const char *const good[] = {"a",
                                       "A b",
                                       "...",
                                       ".a",
                                       "a.",
                                       "é",
                                       "日本語.txt",
                                       "tab\xc2\xa0nbsp",
                                       "emoji \xf0\x9f\x98\x80"};
    static const char *const bad[] = {"",         ".",
                                      "..",       "a/b",
                                      "/",        "a\tb",
                                      "a\x7f",    "c1 \xc2\x85 next",
                                      "bad \xc3", "over\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!files_name_ok(good[i], strlen(good[i])))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (files_name_ok(bad[i], strlen(bad[i])))
            fail_msg("accepted %s", bad[i]);
    char longest[FILES_NAME_BYTES_MAX + 1];
    memset(longest, 'x', sizeof(longest));
    assert_true(files_name_ok(longest, FILES_NAME_BYTES_MAX));
    assert_false(files_name_ok(longest, FILES_NAME_BYTES_MAX + 1));
}

struct parse_case {
    enum files_command_kind kind;
    const char *id, *subject, *permission;
    const char *body;
    bool ok;
};

static void test_bodies(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {
        {FILES_CMD_CREATE_FOLDER, NULL, NULL, NULL, "{\"name\":\"A\"}", true},
        {FILES_CMD_CREATE_FOLDER, NULL, NULL, NULL, "{\"name\":\"A\",\"folderId\":\"x\"}", true},
        {FILES_CMD_CREATE_FOLDER, NULL, NULL, NULL, "{\"name\":\"A\",\"parentId\":null}", false},
        {FILES_CMD_CREATE_FOLDER, NULL, NULL, NULL, "{\"name\":\"..\"}", false},
        {FILES_CMD_CREATE_FOLDER, NULL, NULL, NULL, "{\"name\":\"A\",\"fileId\":\"x\"}", false},
        {FILES_CMD_CREATE_FOLDER, NULL, NULL, NULL, "{}", false},
        {FILES_CMD_CREATE_FILE, NULL, NULL, NULL,
         "{\"name\":\"f\",\"parentId\":\"p\",\"size\":0,\"mimeType\":\"text/plain; "
         "charset=utf-8\"}",
         true},
        {FILES_CMD_CREATE_FILE, NULL, NULL, NULL,
         "{\"name\":\"f\",\"size\":1,\"mimeType\":\"a/b\"}", false}, /* no parent */
        {FILES_CMD_CREATE_FILE, NULL, NULL, NULL,
         "{\"name\":\"f\",\"parentId\":\"p\",\"size\":1.5,\"mimeType\":\"a/b\"}", false},
        {FILES_CMD_CREATE_FILE, NULL, NULL, NULL,
         "{\"name\":\"f\",\"parentId\":\"p\",\"size\":9007199254740992,\"mimeType\":\"a/b\"}",
         false},
        {FILES_CMD_CREATE_FILE, NULL, NULL, NULL,
         "{\"name\":\"f\",\"parentId\":\"p\",\"size\":1,\"mimeType\":\"ab\"}", false},
        {FILES_CMD_CREATE_FILE, NULL, NULL, NULL,
         "{\"name\":\"f\",\"parentId\":\"p\",\"size\":1,\"mimeType\":\"a/b\","
         "\"contentHash\":\"sha256:AB+/=_-\"}",
         true},
        {FILES_CMD_CREATE_FILE, NULL, NULL, NULL,
         "{\"name\":\"f\",\"parentId\":\"p\",\"size\":1,\"mimeType\":\"a/b\","
         "\"contentHash\":\"no spaces\"}",
         false},
        {FILES_CMD_RENAME, "x", NULL, NULL, "{\"name\":\"n\"}", true},
        {FILES_CMD_RENAME, "x y", NULL, NULL, "{\"name\":\"n\"}", false},
        {FILES_CMD_MOVE, "x", NULL, NULL, "{\"parentId\":\"p\"}", true},
        {FILES_CMD_MOVE, "x", NULL, NULL, "{}", false},
        {FILES_CMD_UPDATE, "x", NULL, NULL, "{}", true},
        {FILES_CMD_UPDATE, "x", NULL, NULL, "{\"size\":3}", true},
        {FILES_CMD_UPDATE, "x", NULL, NULL, "{\"size\":null}", false},
        {FILES_CMD_UPDATE, "x", NULL, NULL, "{\"name\":\"n\"}", false},
        {FILES_CMD_TRASH, "x", NULL, NULL, "", true},
        {FILES_CMD_TRASH, "x", NULL, NULL, "{}", true},
        {FILES_CMD_TRASH, "x", NULL, NULL, "{\"force\":true}", false},
        {FILES_CMD_PURGE, "x", NULL, NULL, "", true},
        {FILES_CMD_GRANT, "x", NULL, NULL, "{\"subject\":\"*\",\"permission\":\"read\"}", true},
        {FILES_CMD_GRANT, "x", NULL, NULL, "{\"subject\":\"b\",\"permission\":\"own\"}", false},
        {FILES_CMD_GRANT, "x", NULL, NULL, "{\"subject\":\"a b\",\"permission\":\"read\"}", false},
        {FILES_CMD_REVOKE, "x", "*", "manage", "", true},
        {FILES_CMD_REVOKE, "x", "bob", "admin", "", false},
        {FILES_CMD_REVOKE, "x", "b/c", "read", "", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct parse_case *k = &cases[i];
        struct wx_arena arena;
        wx_arena_init(&arena);
        struct files_command *c = NULL;
        const struct es_outcome *outcome;
        const char *detail = NULL;
        bool ok = files_command_parse(k->kind, k->id, k->subject, k->permission, k->body,
                                      strlen(k->body), &arena, &c, &outcome, &detail);
        if (ok != k->ok)
            fail_msg("case %zu (%s): %s", i, k->body, ok ? "accepted" : detail);
        if (!ok)
            assert_ptr_equal(outcome, ES_invalid_request);
        wx_arena_release(&arena);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
