/*
 * The domain registry and upcasting (src/es/domain.c, outcome.c): two toy
 * domains register; a category, an event type or an outcome code taken
 * twice is refused; an event written at schema 1 reads as schema 3
 * through two upcasters; one from a newer build is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "es/domain.h"

/* v1 {"n":1} -> v2 {"n":1,"m":0} -> v3 {"count":1,"m":0}: text rewrites. */
static int to_v2(const struct es_event *ev, struct wx_buf *out)
{
    if (ev->data_len < 2 || ev->data[ev->data_len - 1] != '}')
        return WX_ERR_CORRUPT;
    wx_buf_add(out, ev->data, ev->data_len - 1);
    wx_buf_adds(out, ",\"m\":0}");
    return 0;
}

static int to_v3(const struct es_event *ev, struct wx_buf *out)
{
    if (strncmp(ev->data, "{\"n\":", 5) != 0)
        return WX_ERR_CORRUPT;
    wx_buf_adds(out, "{\"count\":");
    wx_buf_add(out, ev->data + 5, ev->data_len - 5);
    return 0;
}

static const es_upcast_fn upcasters[] = {to_v2, to_v3};
static const struct es_event_type counted = {"Counted", 3, upcasters};
static const struct es_event_type reset = {"Reset", 1, NULL};
static const struct es_event_type *const types_a[] = {&counted, &reset, NULL};
static const struct es_event_type *const types_b[] = {&reset, NULL};

static const struct es_aggregate_type agg_a = {.name = "a", .category = "cat"};
static const struct es_aggregate_type agg_b = {.name = "b", .category = "dog"};
static const struct es_aggregate_type *const aggs_a[] = {&agg_a, NULL};
static const struct es_aggregate_type *const aggs_b[] = {&agg_b, NULL};
static const struct es_aggregate_type *const aggs_same[] = {&agg_a, NULL};

static const struct es_outcome out_a[] = {{"too_many", 422, "Too many"}};
static const struct es_outcome out_b[] = {{"no_dog", 404, "No dog"}};
static const struct es_outcome out_clash[] = {{"not_found", 404, "Clash with the core"}};

static const struct es_domain dom_a = {.name = "a", .aggregates = aggs_a, .event_types = types_a,
                                       .outcomes = out_a, .outcomes_len = 1};
static const struct es_domain dom_b = {.name = "b", .aggregates = aggs_b, .outcomes = out_b,
                                       .outcomes_len = 1};

static struct es_event event(const char *type, int schema, const char *data)
{
    struct es_event e;
    memset(&e, 0, sizeof(e));
    e.stream_id = "cat:1";
    e.type = type;
    e.schema_version = schema;
    e.data = data;
    e.data_len = strlen(data);
    return e;
}

static void test_register_and_find(void **state)
{
    (void)state;
    const struct es_domain *list[] = {&dom_a, &dom_b};
    assert_int_equal(es_domains_register(list, 2), 0);
    assert_int_equal(es_domains_len(), 2);
    assert_ptr_equal(es_event_type_find("Counted"), &counted);
    assert_null(es_event_type_find("Nope"));
    assert_ptr_equal(es_aggregate_for_stream("cat:1"), &agg_a);
    assert_ptr_equal(es_aggregate_for_stream("dog:x:y"), &agg_b);
    assert_null(es_aggregate_for_stream("cow:1"));
    assert_null(es_aggregate_for_stream("nocolon"));
    assert_true(es_stream_in_category("cat:1", "cat"));
    assert_false(es_stream_in_category("cats:1", "cat"));
    /* Outcome slots: the core's first, then each domain's, dense. */
    size_t slots = es_outcome_slots();
    assert_int_equal(slots, ES_CORE_OUTCOMES_LEN + 2);
    assert_ptr_equal(es_outcome_at(es_outcome_slot(&out_b[0])), &out_b[0]);
    assert_ptr_equal(es_outcome_at(es_outcome_slot(ES_not_found)), ES_not_found);
    assert_ptr_equal(es_outcome_by_code("too_many"), &out_a[0]);
    es_domains_reset();
}

static void test_conflicts(void **state)
{
    (void)state;
    const struct es_domain same_type = {.name = "c", .event_types = types_b};
    const struct es_domain same_category = {.name = "d", .aggregates = aggs_same};
    const struct es_domain same_code = {.name = "e", .outcomes = out_clash, .outcomes_len = 1};
    const struct es_domain *a_then[][2] = {
        {&dom_a, &same_type}, {&dom_a, &same_category}, {&dom_a, &same_code}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(es_domains_register(a_then[i], 2), WX_ERR_CONFLICT);
        assert_int_equal(es_domains_len(), 0); /* all or nothing */
        assert_int_equal(es_outcome_slots(), ES_CORE_OUTCOMES_LEN);
    }
}

static void test_upcast(void **state)
{
    (void)state;
    const struct es_domain *list[] = {&dom_a};
    assert_int_equal(es_domains_register(list, 1), 0);
    struct wx_buf scratch;
    wx_buf_init(&scratch);
    struct es_event in = event("Counted", 1, "{\"n\":7}"), out;
    assert_int_equal(es_upcast(&in, &out, &scratch), 0);
    assert_int_equal(out.schema_version, 3);
    assert_string_equal(out.data, "{\"count\":7,\"m\":0}");
    assert_int_equal(out.data_len, strlen("{\"count\":7,\"m\":0}"));
    /* Current data and unknown types pass through untouched. */
    in = event("Counted", 3, "{\"count\":1}");
    assert_int_equal(es_upcast(&in, &out, &scratch), 0);
    assert_ptr_equal(out.data, in.data);
    in = event("Unknown", 9, "{}");
    assert_int_equal(es_upcast(&in, &out, &scratch), 0);
    assert_ptr_equal(out.data, in.data);
    /* Newer than this build, or data an upcaster cannot read. */
    in = event("Counted", 4, "{}");
    assert_int_equal(es_upcast(&in, &out, &scratch), WX_ERR_CORRUPT);
    in = event("Counted", 2, "{\"x\":1}");
    assert_int_equal(es_upcast(&in, &out, &scratch), WX_ERR_CORRUPT);
    wx_buf_free(&scratch);
    es_domains_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_and_find),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_upcast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
