/* The checked wrappers of the delivery store; see delivery.h. */
#include "bus/delivery.h"

#include <assert.h>
#include <string.h>

#include "base/id.h"

int bus_delivery_open(const struct bus_delivery_ops *ops, const struct bus_delivery_config *config,
                      struct bus_delivery_store **out)
{
    assert(ops != NULL && config != NULL && out != NULL);
    assert(config->path != NULL || (config->url != NULL && config->schema != NULL));
    int err = ops->open(config, out);
    assert(err || (*out)->ops == ops);
    return err;
}

void bus_delivery_close(struct bus_delivery_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

int bus_delivery_state_get(struct bus_delivery_store *s, const char *subscription_id,
                           struct bus_delivery_state *out)
{
    assert(wx_id_ok(subscription_id));
    return s->ops->state_get(s, subscription_id, out);
}

int bus_delivery_state_put(struct bus_delivery_store *s, const char *subscription_id,
                           const struct bus_delivery_state *state)
{
    assert(wx_id_ok(subscription_id));
    assert(state->attempts >= 0 && state->delivered >= 0);
    assert(memchr(state->last_error, '\0', sizeof(state->last_error)) != NULL);
    return s->ops->state_put(s, subscription_id, state);
}

int bus_delivery_forget(struct bus_delivery_store *s, const char *subscription_id)
{
    assert(wx_id_ok(subscription_id));
    return s->ops->forget(s, subscription_id);
}

int bus_delivery_dead_add(struct bus_delivery_store *s, const struct bus_dead_letter *dl,
                          const struct bus_delivery_state *state)
{
    assert(wx_id_ok(dl->subscription_id) && dl->event_id != NULL && dl->body != NULL);
    assert(dl->attempts > 0 && dl->last_error != NULL);
    /* The state moves past the letter's event in the same transaction. */
    assert(es_position_cmp(&state->cursor, &dl->position) == 0 && state->attempts == 0);
    return s->ops->dead_add(s, dl, state);
}

int bus_delivery_dead_count(struct bus_delivery_store *s, const char *subscription_id,
                            int64_t *n_out)
{
    assert(wx_id_ok(subscription_id));
    return s->ops->dead_count(s, subscription_id, n_out);
}

int bus_delivery_dead_list(struct bus_delivery_store *s, const char *subscription_id,
                           int64_t after_id, size_t max_rows, bus_dead_letter_fn fn, void *ctx)
{
    assert(subscription_id == NULL || wx_id_ok(subscription_id));
    assert(after_id >= 0 && max_rows > 0);
    return s->ops->dead_list(s, subscription_id, after_id, max_rows, fn, ctx);
}

int bus_delivery_dead_get(struct bus_delivery_store *s, int64_t id, struct wx_arena *arena,
                          struct bus_dead_letter *out)
{
    return s->ops->dead_get(s, id, arena, out);
}

int bus_delivery_dead_request_replay(struct bus_delivery_store *s, int64_t id)
{
    return s->ops->dead_request_replay(s, id);
}

int bus_delivery_dead_next_replay(struct bus_delivery_store *s, const char *subscription_id,
                                  struct wx_arena *arena, struct bus_dead_letter *out)
{
    assert(wx_id_ok(subscription_id));
    return s->ops->dead_next_replay(s, subscription_id, arena, out);
}

int bus_delivery_dead_replayed(struct bus_delivery_store *s, int64_t id, bool delivered,
                               const char *last_error, int64_t at_ms)
{
    assert(delivered || last_error != NULL);
    return s->ops->dead_replayed(s, id, delivered, last_error, at_ms);
}

int bus_delivery_lease(struct bus_delivery_store *s, bool *held_out)
{
    return s->ops->lease(s, held_out);
}

int bus_delivery_request_add(struct bus_delivery_store *s, const struct bus_delivery_request *r)
{
    assert(r->dead_letter_id > 0 || wx_id_ok(r->subscription_id));
    return s->ops->request_add(s, r);
}

int bus_delivery_requests_take(struct bus_delivery_store *s, bus_delivery_request_fn fn,
                               void *ctx)
{
    return s->ops->requests_take(s, fn, ctx);
}
