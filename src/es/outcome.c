/* The outcome table of outcome.h. */
#include "es/outcome.h"

#include <assert.h>
#include <stdbool.h>

#include "base/buf.h"

static const struct {
    const char *code;
    int status;
    const char *title;
} outcomes[] = {
#define XX(name, st, ti) {#name, st, ti},
    ES_OUTCOME_MAP(XX)
#undef XX
};

const char *es_outcome_code(enum es_outcome o)
{
    assert(o < ES_OUTCOME_COUNT);
    return outcomes[o].code;
}

int es_outcome_status(enum es_outcome o)
{
    assert(o < ES_OUTCOME_COUNT);
    return outcomes[o].status;
}

const char *es_outcome_title(enum es_outcome o)
{
    assert(o < ES_OUTCOME_COUNT);
    return outcomes[o].title;
}

void es_problem_json(struct wx_buf *b, enum es_outcome o, const char *detail)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_key(b, "type", &first);
    wx_buf_adds(b, "\"https://wallex.dev/problems/");
    wx_buf_adds(b, es_outcome_code(o));
    wx_buf_addc(b, '"');
    wx_buf_json_key(b, "title", &first);
    wx_buf_json_str(b, es_outcome_title(o));
    wx_buf_json_key(b, "status", &first);
    wx_buf_add_i64(b, es_outcome_status(o));
    wx_buf_json_key(b, "detail", &first);
    wx_buf_json_str(b, detail ? detail : es_outcome_title(o));
    wx_buf_json_key(b, "code", &first);
    wx_buf_json_str(b, es_outcome_code(o));
    wx_buf_addc(b, '}');
}
