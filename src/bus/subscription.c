/*
 * The subscription rules as pure functions: no I/O, no clock reads, no
 * allocation. Tested in tests/unit/bus/test_subscription.c.
 */
#include "bus/subscription.h"

#include <assert.h>
#include <string.h>

const char *subscription_status_name(enum subscription_status s)
{
    switch (s) {
    case SUBSCRIPTION_ACTIVE:
        return "active";
    case SUBSCRIPTION_PAUSED:
        return "paused";
    case SUBSCRIPTION_DISABLED:
        return "disabled";
    case SUBSCRIPTION_DELETED:
        return "deleted";
    }
    return "unknown";
}

void subscription_state_init(void *state)
{
    memset(state, 0, sizeof(struct subscription_state));
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    assert(n < cap);
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

void subscription_evolve(struct subscription_state *s, const struct subscription_event *e)
{
    switch (e->kind) {
    case SUBSCRIPTION_EV_CREATED:
        assert(!s->exists);
        s->exists = true;
        s->status = SUBSCRIPTION_ACTIVE;
        copy_str(s->url, sizeof(s->url), e->url);
        copy_str(s->event_types, sizeof(s->event_types), e->event_types);
        copy_str(s->description, sizeof(s->description), e->description);
        s->has_description = e->description != NULL;
        s->created_at_ms = e->occurred_at_ms;
        break;
    case SUBSCRIPTION_EV_PAUSED:
        s->status = SUBSCRIPTION_PAUSED;
        break;
    case SUBSCRIPTION_EV_RESUMED:
        s->status = SUBSCRIPTION_ACTIVE;
        break;
    case SUBSCRIPTION_EV_DISABLED:
        s->status = SUBSCRIPTION_DISABLED;
        copy_str(s->reason, sizeof(s->reason), e->reason);
        break;
    case SUBSCRIPTION_EV_DELETED:
        s->status = SUBSCRIPTION_DELETED;
        break;
    }
    assert(s->exists);
    if (s->status != SUBSCRIPTION_DISABLED)
        s->reason[0] = '\0';
    s->updated_at_ms = e->occurred_at_ms;
}

static void emit(struct subscription_decision *out, enum subscription_event_kind kind,
                 const struct subscription_command *c, int64_t now_ms)
{
    out->outcome = ES_OK;
    out->event = (struct subscription_event){
        .kind = kind,
        .subscription_id = c->subscription_id,
        .occurred_at_ms = now_ms,
    };
    out->events_len = 1;
}

void subscription_decide(const struct subscription_state *s, const struct subscription_command *c,
                         int64_t now_ms, struct subscription_decision *out)
{
    memset(out, 0, sizeof(*out));
    out->outcome = ES_OK;
    if (c->kind == SUBSCRIPTION_CMD_CREATE) {
        if (s->exists) {
            out->outcome = ES_version_conflict;
            out->detail = "a subscription with this id already exists";
            return;
        }
        emit(out, SUBSCRIPTION_EV_CREATED, c, now_ms);
        out->event.url = c->url;
        out->event.event_types = c->event_types;
        out->event.description = c->description;
        out->event.secret = c->secret;
        return;
    }
    if (!s->exists || s->status == SUBSCRIPTION_DELETED) {
        out->outcome = BUS_subscription_not_found;
        out->detail = "no subscription with this id";
        return;
    }
    /* A change to the state it is already in records nothing: pausing
     * twice is one pause, and the delivery thread may ask to disable a
     * subscription an admin paused meanwhile. */
    switch (c->kind) {
    case SUBSCRIPTION_CMD_PAUSE:
        if (s->status != SUBSCRIPTION_PAUSED)
            emit(out, SUBSCRIPTION_EV_PAUSED, c, now_ms);
        break;
    case SUBSCRIPTION_CMD_RESUME:
        if (s->status != SUBSCRIPTION_ACTIVE)
            emit(out, SUBSCRIPTION_EV_RESUMED, c, now_ms);
        break;
    case SUBSCRIPTION_CMD_DISABLE:
        if (s->status == SUBSCRIPTION_ACTIVE) {
            emit(out, SUBSCRIPTION_EV_DISABLED, c, now_ms);
            out->event.reason = c->reason;
        }
        break;
    case SUBSCRIPTION_CMD_DELETE:
        emit(out, SUBSCRIPTION_EV_DELETED, c, now_ms);
        break;
    case SUBSCRIPTION_CMD_CREATE:
        assert(0 && "handled above");
        break;
    }
}
