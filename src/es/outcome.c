/* The core's outcome table and the registry of every table; see outcome.h. */
#include "es/outcome.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "limits.h"

const struct es_outcome es_core_outcomes[] = {ES_CORE_OUTCOME_MAP(ES_OUTCOME_ROW, ES)};

/* Slot 0 is the core's table; domains follow in registration order. */
static struct es_outcome_table tables[1 + WX_DOMAINS_MAX] = {
    {NULL, es_core_outcomes, ES_CORE_OUTCOMES_LEN},
};
static size_t tables_len = 1;

const struct es_outcome *es_outcome_by_code(const char *code)
{
    for (size_t t = 0; t < tables_len; t++)
        for (size_t i = 0; i < tables[t].len; i++)
            if (strcmp(tables[t].rows[i].code, code) == 0)
                return &tables[t].rows[i];
    return NULL;
}

int es_outcomes_register(const char *domain, const struct es_outcome *rows, size_t len)
{
    assert(domain != NULL && rows != NULL);
    if (tables_len == 1 + WX_DOMAINS_MAX)
        return WX_ERR_FULL;
    for (size_t t = 0; t < tables_len; t++)
        if (tables[t].rows == rows)
            return 0; /* registered already (a domain used by two compositions) */
    for (size_t i = 0; i < len; i++) {
        /* A domain may name a core outcome again in its table only by
         * pointer, never by a second row with the same code. */
        if (es_outcome_by_code(rows[i].code) != NULL)
            return WX_ERR_CONFLICT;
        assert(rows[i].status >= 400 && rows[i].status <= 599);
    }
    tables[tables_len++] = (struct es_outcome_table){domain, rows, len};
    return 0;
}

void es_outcomes_reset(void)
{
    tables_len = 1;
}

size_t es_outcome_slot(const struct es_outcome *o)
{
    size_t base = 0;
    for (size_t t = 0; t < tables_len; t++) {
        if (o >= tables[t].rows && o < tables[t].rows + tables[t].len)
            return base + (size_t)(o - tables[t].rows);
        base += tables[t].len;
    }
    assert(!"an outcome from a table that was never registered");
    return 0;
}

size_t es_outcome_slots(void)
{
    size_t n = 0;
    for (size_t t = 0; t < tables_len; t++)
        n += tables[t].len;
    return n;
}

const struct es_outcome *es_outcome_at(size_t slot)
{
    for (size_t t = 0; t < tables_len; t++) {
        if (slot < tables[t].len)
            return &tables[t].rows[slot];
        slot -= tables[t].len;
    }
    return NULL;
}

void es_problem_json(struct wx_buf *b, const struct es_outcome *o, const char *detail)
{
    es_problem_json_ext(b, o, detail, NULL);
}

void es_problem_json_ext(struct wx_buf *b, const struct es_outcome *o, const char *detail,
                         const char *extra)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_key(b, "type", &first);
    wx_buf_adds(b, "\"https://wallex.dev/problems/");
    wx_buf_adds(b, o->code);
    wx_buf_addc(b, '"');
    wx_buf_json_key(b, "title", &first);
    wx_buf_json_str(b, o->title);
    wx_buf_json_key(b, "status", &first);
    wx_buf_add_i64(b, o->status);
    wx_buf_json_key(b, "detail", &first);
    wx_buf_json_str(b, detail ? detail : o->title);
    wx_buf_json_key(b, "code", &first);
    wx_buf_json_str(b, o->code);
    if (extra != NULL && extra[0] != '\0') {
        wx_buf_addc(b, ',');
        wx_buf_adds(b, extra);
    }
    wx_buf_addc(b, '}');
}
