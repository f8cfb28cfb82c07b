/* The registry of domains, event types and categories; see domain.h. */
#include "es/domain.h"

#include <assert.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/map.h"
#include "limits.h"
#include "obs/log.h"

static const struct es_domain *domains[WX_DOMAINS_MAX];
static size_t domains_len;
static struct wx_map event_types; /* name -> const struct es_event_type * */
static struct wx_map categories;  /* category -> const struct es_aggregate_type * */

void es_drift_report_add(struct es_drift_report *r, const char *object_json, size_t len)
{
    r->drifted++;
    if (r->listed == WX_DRIFT_REPORT_MAX)
        return;
    if (r->listed > 0)
        wx_buf_addc(r->items, ',');
    wx_buf_add(r->items, object_json, len);
    r->listed++;
}

int es_drift_report_diff(struct es_drift_report *r, const char *id_key, const char *id,
                         const char *model, const char *field, const char *read_model,
                         const char *events)
{
    struct wx_buf b;
    wx_buf_init(&b);
    bool first = true;
    wx_buf_addc(&b, '{');
    wx_buf_json_member_str(&b, id_key, id, &first);
    wx_buf_json_member_str(&b, "model", model, &first);
    wx_buf_json_member_str(&b, "field", field, &first);
    wx_buf_json_member_str(&b, "readModel", read_model, &first);
    wx_buf_json_member_str(&b, "events", events, &first);
    wx_buf_addc(&b, '}');
    int err = wx_buf_ok(&b) ? 0 : WX_ERR_NOMEM;
    if (!err)
        es_drift_report_add(r, b.data, b.len);
    wx_buf_free(&b);
    return err;
}

void es_domains_reset(void)
{
    domains_len = 0;
    wx_map_free(&event_types);
    wx_map_free(&categories);
    es_outcomes_reset();
}

static int register_one(const struct es_domain *d)
{
    int err = d->outcomes_len > 0 ? es_outcomes_register(d->name, d->outcomes, d->outcomes_len) : 0;
    if (err) {
        wx_logf(WX_LOG_ERROR, "domain %s: an outcome code is taken by another domain", d->name);
        return err;
    }
    for (const struct es_event_type *const *t = d->event_types; t && *t; t++) {
        assert((*t)->schema_version >= 1);
        assert((*t)->schema_version == 1 || (*t)->upcast != NULL);
        if (wx_map_get(&event_types, (*t)->name) != NULL) {
            wx_logf(WX_LOG_ERROR, "domain %s: event type %s is taken", d->name, (*t)->name);
            return WX_ERR_CONFLICT;
        }
        if (wx_map_put(&event_types, (*t)->name, (void *)*t) != 0)
            return WX_ERR_NOMEM;
    }
    for (const struct es_aggregate_type *const *a = d->aggregates; a && *a; a++) {
        assert((*a)->category != NULL && strchr((*a)->category, ':') == NULL);
        if (wx_map_get(&categories, (*a)->category) != NULL) {
            wx_logf(WX_LOG_ERROR, "domain %s: category %s is taken", d->name, (*a)->category);
            return WX_ERR_CONFLICT;
        }
        if (wx_map_put(&categories, (*a)->category, (void *)*a) != 0)
            return WX_ERR_NOMEM;
    }
    return 0;
}

int es_domains_register(const struct es_domain *const *list, size_t len)
{
    assert(domains_len == 0); /* once, at start-up */
    if (len > WX_DOMAINS_MAX)
        return WX_ERR_FULL;
    for (size_t i = 0; i < len; i++) {
        int err = register_one(list[i]);
        if (err) {
            es_domains_reset();
            return err;
        }
        domains[domains_len++] = list[i];
    }
    return 0;
}

size_t es_domains_len(void)
{
    return domains_len;
}

const struct es_domain *es_domain_at(size_t i)
{
    assert(i < domains_len);
    return domains[i];
}

const struct es_event_type *es_event_type_find(const char *name)
{
    return event_types.len > 0 ? wx_map_get(&event_types, name) : NULL;
}

bool es_stream_in_category(const char *stream_id, const char *category)
{
    size_t n = strlen(category);
    return strncmp(stream_id, category, n) == 0 && stream_id[n] == ':';
}

const struct es_aggregate_type *es_aggregate_for_stream(const char *stream_id)
{
    const char *colon = strchr(stream_id, ':');
    if (colon == NULL || (size_t)(colon - stream_id) >= WX_STREAM_ID_BYTES_MAX)
        return NULL;
    char category[WX_STREAM_ID_BYTES_MAX + 1];
    memcpy(category, stream_id, (size_t)(colon - stream_id));
    category[colon - stream_id] = '\0';
    return wx_map_get(&categories, category);
}

int es_upcast(const struct es_event *in, struct es_event *out, struct wx_buf *scratch)
{
    *out = *in;
    const struct es_event_type *t = es_event_type_find(in->type);
    if (t == NULL || in->schema_version == t->schema_version)
        return 0;
    /* Written by a newer build than this one: folding it as if it were
     * current could silently misread money. */
    if (in->schema_version > t->schema_version || in->schema_version < 1)
        return WX_ERR_CORRUPT;
    struct wx_buf step;
    wx_buf_init(&step);
    int err = 0;
    for (int v = in->schema_version; v < t->schema_version && !err; v++) {
        wx_buf_reset(&step);
        err = t->upcast[v - 1](out, &step);
        if (!err && !wx_buf_ok(&step))
            err = WX_ERR_NOMEM;
        if (!err) {
            /* The next step reads this one's output: move it to scratch. */
            wx_buf_reset(scratch);
            wx_buf_add(scratch, step.data, step.len);
            if (!wx_buf_ok(scratch))
                err = WX_ERR_NOMEM;
            out->data = scratch->data;
            out->data_len = scratch->len;
            out->schema_version = v + 1;
        }
    }
    wx_buf_free(&step);
    return err;
}

void es_verify_violation(struct wx_buf *violations, size_t *violations_len, const char *text)
{
    if ((*violations_len)++ > 0)
        wx_buf_addc(violations, ',');
    wx_buf_json_str(violations, text);
}
