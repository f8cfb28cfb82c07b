/* libFuzzer: the header validators and token parsers (Idempotency-Key,
 * X-Correlation-Id, traceparent, X-Min-Position, Content-Type, integers,
 * RFC 3339 times). A position token that parses formats back to itself. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "es/event.h"
#include "base/id.h"
#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    (void)http_idem_key_ok(s);
    (void)http_correlation_id_ok(s);
    (void)http_content_type_json(s);
    if (http_traceparent_ok(s))
        assert(strlen(s) == 55);
    if (wx_id_ok(s))
        assert(strlen(s) >= 1 && strlen(s) <= 64);
    int64_t v;
    if (http_parse_i64(s, INT64_MIN + 1, INT64_MAX, &v))
        assert(strlen(s) <= 20);
    struct es_position p;
    if (es_position_parse(s, &p)) {
        char back[ES_POSITION_TOKEN_BYTES];
        es_position_format(&p, back);
        assert(strcmp(back, s) == 0);
    }
    int64_t ms;
    if (wx_time_parse(s, &ms)) {
        char t[WX_RFC3339_BYTES];
        wx_time_format(ms, t);
        int64_t again;
        assert(wx_time_parse(t, &again));
    }
    free(s);
    return 0;
}
