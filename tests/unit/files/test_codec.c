/*
 * Files events and snapshots as stored JSON (src/files/codec.c): every
 * event type encodes and decodes back to itself, damaged data is refused,
 * a snapshot restores the state it was taken of, and the Item resource.
 */
#include "world.h"

#include "base/err.h"
#include "es/event.h"

static void roundtrip(const struct files_event *e)
{
    struct wx_buf b;
    wx_buf_init(&b);
    files_event_encode(&b, e);
    assert_true(wx_buf_ok(&b));
    struct es_event ev = {
        .stream_id = "item:x",
        .version = 1,
        .type = files_event_types[e->kind]->name,
        .schema_version = 1,
        .data = b.data,
        .data_len = b.len,
        .metadata = "{\"actor\":\"alice\"}",
        .metadata_len = 17,
        .occurred_at_ms = NOW,
    };
    struct files_decoded *d = malloc(sizeof(*d));
    assert_int_equal(files_event_decode(&ev, d), 0);
    assert_int_equal(d->e.kind, e->kind);
    assert_string_equal(d->e.item_id, e->item_id);
    assert_string_equal(d->e.actor, "alice");
    struct wx_buf again;
    wx_buf_init(&again);
    files_event_encode(&again, &d->e);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    wx_buf_free(&again);
    /* Damaged: a byte cut off, an unknown type, a newer schema. */
    ev.data_len--;
    assert_int_equal(files_event_decode(&ev, d), WX_ERR_CORRUPT);
    ev.data_len++;
    ev.schema_version = 2;
    assert_int_equal(files_event_decode(&ev, d), WX_ERR_CORRUPT);
    ev.schema_version = 1;
    ev.type = "OrderCreated";
    assert_int_equal(files_event_decode(&ev, d), WX_ERR_CORRUPT);
    free(d);
    wx_buf_free(&b);
}

static void test_events_roundtrip(void **state)
{
    (void)state;
    const struct files_event events[] = {
        {.kind = FILES_FOLDER_CREATED, .item_id = "a", .name = "Top \"q\" \\ é", .owner_id = "o"},
        {.kind = FILES_FOLDER_CREATED,
         .item_id = "b",
         .name = "B",
         .parent_id = "a",
         .owner_id = "o"},
        {.kind = FILES_FILE_CREATED,
         .item_id = "f",
         .name = "f.txt",
         .parent_id = "b",
         .owner_id = "o",
         .has_size = true,
         .size = FILES_SIZE_MAX,
         .mime_type = "text/plain",
         .content_hash = "sha256:ab"},
        {.kind = FILES_FILE_CREATED,
         .item_id = "g",
         .name = "g",
         .parent_id = "b",
         .owner_id = "o",
         .has_size = true,
         .size = 0,
         .mime_type = "a/b"},
        {.kind = FILES_RENAMED, .item_id = "f", .name = "n", .previous_name = "f.txt"},
        {.kind = FILES_MOVED, .item_id = "f", .parent_id = "a", .previous_parent_id = "b"},
        {.kind = FILES_MOVED, .item_id = "b", .parent_id = "c"},
        {.kind = FILES_FILE_UPDATED, .item_id = "f", .has_size = true, .size = 5},
        {.kind = FILES_FILE_UPDATED, .item_id = "f", .mime_type = "x/y", .content_hash = "h"},
        {.kind = FILES_TRASHED, .item_id = "f"},
        {.kind = FILES_RESTORED, .item_id = "f"},
        {.kind = FILES_PURGED, .item_id = "f"},
        {.kind = FILES_PURGED, .item_id = "f", .by_retention = true},
        {.kind = FILES_GRANT_ADDED,
         .item_id = "f",
         .subject = "*",
         .permission = FILES_LEVEL_MANAGE},
        {.kind = FILES_GRANT_REVOKED,
         .item_id = "f",
         .subject = "bob",
         .permission = FILES_LEVEL_READ},
    };
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        roundtrip(&events[i]);
}

static void test_refused_data(void **state)
{
    (void)state;
    static const struct {
        const char *type, *data;
    } bad[] = {
        {"FolderCreated", "{\"itemId\":\"a\",\"name\":\"..\",\"ownerId\":\"o\"}"},
        {"FolderCreated", "{\"itemId\":\"a\",\"name\":\"a/b\",\"ownerId\":\"o\"}"},
        {"FolderCreated", "{\"itemId\":\"a b\",\"name\":\"a\",\"ownerId\":\"o\"}"},
        {"FolderCreated", "{\"itemId\":\"a\",\"name\":\"a\",\"ownerId\":\"o\",\"parentId\":null}"},
        {"FileCreated", "{\"itemId\":\"a\",\"name\":\"a\",\"ownerId\":\"o\",\"size\":1,"
                        "\"mimeType\":\"a/b\"}"}, /* no parent */
        {"FileCreated", "{\"itemId\":\"a\",\"name\":\"a\",\"parentId\":\"p\",\"ownerId\":\"o\","
                        "\"size\":-1,\"mimeType\":\"a/b\"}"},
        {"GrantAdded", "{\"itemId\":\"a\",\"subject\":\"**\",\"permission\":\"read\"}"},
        {"GrantAdded", "{\"itemId\":\"a\",\"subject\":\"b\",\"permission\":\"own\"}"},
        {"ItemPurged", "{\"itemId\":\"a\",\"reason\":\"whim\"}"},
        {"ItemMoved", "{\"itemId\":\"a\"}"},
    };
    struct files_decoded *d = malloc(sizeof(*d));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct es_event ev = {.type = bad[i].type,
                              .schema_version = 1,
                              .data = bad[i].data,
                              .data_len = strlen(bad[i].data),
                              .metadata = "{}",
                              .metadata_len = 2};
        if (files_event_decode(&ev, d) != WX_ERR_CORRUPT)
            fail_msg("accepted %s %s", bad[i].type, bad[i].data);
    }
    free(d);
}

static void test_snapshot(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct files_caller alice = user("alice");
    assert_ptr_equal(world_do(w, grant("f", "bob", FILES_LEVEL_READ), &alice), ES_OK);
    assert_ptr_equal(world_do(w, grant("f", "bob", FILES_LEVEL_MANAGE), &alice), ES_OK);
    assert_ptr_equal(world_do(w, grant("f", "*", FILES_LEVEL_WRITE), &alice), ES_OK);
    assert_ptr_equal(world_do(w, on(FILES_CMD_TRASH, "f"), &alice), ES_OK);
    const struct files_item *s = &w->items[world_slot(w, "f")];
    struct wx_buf b;
    wx_buf_init(&b);
    files_aggregate.encode(s, &b);
    assert_true(wx_buf_ok(&b) && b.len <= FILES_SNAPSHOT_BYTES_MAX);
    struct files_item *back = malloc(sizeof(*back));
    assert_int_equal(files_aggregate.decode(b.data, b.len, back), 0);
    /* Field by field: the bytes after each string's NUL are the state's
     * history, not its value. */
    assert_int_equal(back->kind, s->kind);
    assert_true(back->exists && back->trashed && !back->purged);
    assert_string_equal(back->name, s->name);
    assert_string_equal(back->parent_id, s->parent_id);
    assert_string_equal(back->owner_id, s->owner_id);
    assert_string_equal(back->created_by, s->created_by);
    assert_string_equal(back->updated_by, s->updated_by);
    assert_string_equal(back->mime_type, s->mime_type);
    assert_string_equal(back->content_hash, s->content_hash);
    assert_int_equal(back->size, s->size);
    assert_int_equal(back->created_at_ms, s->created_at_ms);
    assert_int_equal(back->updated_at_ms, s->updated_at_ms);
    assert_int_equal(back->trashed_at_ms, s->trashed_at_ms);
    assert_int_equal(back->grants_len, s->grants_len);
    for (size_t g = 0; g < s->grants_len; g++) {
        assert_string_equal(back->grants[g].subject, s->grants[g].subject);
        assert_int_equal(back->grants[g].levels, s->grants[g].levels);
    }
    assert_int_equal(files_aggregate.decode(b.data, b.len - 1, back), WX_ERR_CORRUPT);
    free(back);
    wx_buf_free(&b);
    world_free(w);
}

static void test_item_json(void **state)
{
    (void)state;
    struct world *w = world_sample();
    struct wx_buf b;
    wx_buf_init(&b);
    struct files_view v = {.path = "/A", .level = FILES_LEVEL_WRITE};
    files_item_json(&b, "a", &w->items[world_slot(w, "a")], 1, &v);
    assert_non_null(strstr(b.data, "\"kind\":\"folder\""));
    assert_non_null(strstr(b.data, "\"parentId\":null"));
    assert_non_null(strstr(b.data, "\"size\":null,\"mimeType\":null,\"contentHash\":null"));
    assert_non_null(strstr(b.data, "\"permissions\":[\"read\",\"write\"]"));
    assert_non_null(strstr(b.data, "\"trashed\":false,\"version\":1"));
    wx_buf_reset(&b);
    v.level = FILES_LEVEL_NONE;
    files_item_json(&b, "f", &w->items[world_slot(w, "f")], 1, &v);
    assert_non_null(strstr(b.data, "\"size\":10,\"mimeType\":\"text/plain\""));
    assert_non_null(strstr(b.data, "\"permissions\":[]"));
    wx_buf_free(&b);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_roundtrip),
        cmocka_unit_test(test_refused_data),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_item_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
