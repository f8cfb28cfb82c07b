/*
 * wallex migrate: copies the event log from one store to another (a
 * SQLite data directory and a PostgreSQL database, either way), exactly:
 * event ids, streams, versions, types, schema versions, data, metadata and
 * timestamps. Positions are the target's own (they are opaque, and each
 * store orders its log its own way).
 *
 * What is not copied: snapshots (a cache; the target folds streams from
 * their start and snapshots them again as they grow) and idempotency
 * records (their positions are the source's; keys used before a migration
 * are not remembered after it).
 *
 * Resumable: pages commit one at a time, so an interrupted copy leaves the
 * target holding a prefix of the source's log. A target that is not empty
 * must be such a prefix (its last event is found in the source) and the
 * copy goes on after it; anything else is refused.
 */
#include "cli/migrate.h"

#include <assert.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/err.h"
#include "limits.h"
#include "store/store.h"

/* A page of the source copied to the target in one commit. */
struct page {
    struct wx_arena arena;
    struct es_event *events;
    struct es_stream_append *appends;
    struct es_batch_item *items;
    size_t len;
    struct es_position last;
};

static int page_add(void *arg, const struct es_event *ev)
{
    struct page *p = arg;
    assert(p->len < WX_MIGRATE_PAGE_EVENTS);
    struct es_event *copy = &p->events[p->len];
    *copy = *ev;
    copy->stream_id = wx_arena_strdup(&p->arena, ev->stream_id);
    copy->type = wx_arena_strdup(&p->arena, ev->type);
    copy->data = wx_arena_strndup(&p->arena, ev->data, ev->data_len);
    copy->metadata = wx_arena_strndup(&p->arena, ev->metadata, ev->metadata_len);
    if (!copy->stream_id || !copy->type || !copy->data || !copy->metadata)
        return WX_ERR_NOMEM;
    /* The target checks each version against what it holds: a log copied
     * out of order, or twice, is refused rather than renumbered. */
    p->appends[p->len] = (struct es_stream_append){
        copy->stream_id, {ES_EXPECT_EXACT, ev->version - 1}, copy, 1};
    p->items[p->len] = (struct es_batch_item){.appends = &p->appends[p->len], .appends_len = 1};
    p->len++;
    p->last = ev->position;
    return 0;
}

/* Finding the target's last event in the source. */
struct find {
    char event_id[WX_UUID_STR_BYTES];
    bool found;
    struct es_position at;
    uint64_t scanned;
};

static int find_one(void *arg, const struct es_event *ev)
{
    struct find *f = arg;
    f->scanned++;
    f->at = ev->position;
    if (strcmp(ev->event_id, f->event_id) != 0)
        return 0;
    f->found = true;
    return WX_ERR_CLOSED; /* stops the read */
}

static int take_last(void *arg, const struct es_event *ev)
{
    snprintf(arg, WX_UUID_STR_BYTES, "%s", ev->event_id);
    return 0;
}

/* Where in the source to go on: the start for an empty target, after the
 * target's last event when the target is a prefix of the source, else
 * WX_ERR_CONFLICT. *copied_out: events the target holds already. */
static int resume_point(struct es_store *from, struct es_store *to, struct es_position *after,
                        uint64_t *copied_out)
{
    struct es_position head;
    int err = es_store_head(to, &head);
    *after = es_position_start();
    *copied_out = 0;
    if (err || es_position_cmp(&head, after) == 0)
        return err;
    struct find f = {.found = false};
    struct es_position before = {head.hi, head.lo - 1};
    err = es_store_read_log(to, &before, 1, take_last, f.event_id);
    struct es_position at = es_position_start();
    while (!err && !f.found) {
        uint64_t scanned = f.scanned;
        err = es_store_read_log(from, &at, WX_SCAN_BATCH_EVENTS_MAX, find_one, &f);
        if (err == WX_ERR_CLOSED)
            err = 0;
        if (f.scanned == scanned)
            break;
        at = f.at;
    }
    if (err)
        return err;
    if (!f.found)
        return WX_ERR_CONFLICT;
    *after = f.at;
    *copied_out = f.scanned;
    return 0;
}

static int count_one(void *arg, const struct es_event *ev)
{
    struct find *f = arg;
    f->scanned++;
    f->at = ev->position;
    return 0;
}

/* Events in the source, for the progress bar (a scan: positions on
 * PostgreSQL are not a count). */
static int count_events(struct es_store *from, uint64_t *count_out)
{
    struct find f = {.found = false};
    int err = 0;
    for (struct es_position at = es_position_start(); !err;) {
        uint64_t before = f.scanned;
        err = es_store_read_log(from, &at, WX_SCAN_BATCH_EVENTS_MAX, count_one, &f);
        if (f.scanned == before)
            break;
        at = f.at;
    }
    *count_out = f.scanned;
    return err;
}

static void show_progress(uint64_t done, uint64_t total, int64_t started_ms, bool final)
{
    int64_t ms = wx_monotonic_ms() - started_ms;
    uint64_t rate = ms > 0 ? done * 1000 / (uint64_t)ms : done;
    unsigned pct = total > 0 ? (unsigned)(done * 100 / total) : 100;
    char bar[WX_MIGRATE_BAR_CHARS + 1];
    for (size_t i = 0; i < WX_MIGRATE_BAR_CHARS; i++)
        bar[i] = i < pct * WX_MIGRATE_BAR_CHARS / 100 ? '#' : '.';
    bar[WX_MIGRATE_BAR_CHARS] = '\0';
    fprintf(stderr, "\rmigrate [%s] %" PRIu64 " / %" PRIu64 " events (%3u%%), %" PRIu64
                    " events/s%s",
            bar, done, total, pct, rate, final ? "\n" : "");
}

/* Copies page after page; *copied counts what the target holds. */
static int copy_pages(struct es_store *from, struct es_store *to, struct es_position after,
                      uint64_t *copied, uint64_t total)
{
    struct page p;
    wx_arena_init(&p.arena);
    bool tty = isatty(STDERR_FILENO);
    int64_t started = wx_monotonic_ms(), shown = 0;
    uint64_t at_start = *copied;
    int err = 0;
    for (;;) {
        p.events = wx_arena_alloc(&p.arena, WX_MIGRATE_PAGE_EVENTS * sizeof(*p.events));
        p.appends = wx_arena_alloc(&p.arena, WX_MIGRATE_PAGE_EVENTS * sizeof(*p.appends));
        p.items = wx_arena_alloc(&p.arena, WX_MIGRATE_PAGE_EVENTS * sizeof(*p.items));
        p.len = 0;
        err = p.events && p.appends && p.items ? 0 : WX_ERR_NOMEM;
        if (!err)
            err = es_store_read_log(from, &after, WX_MIGRATE_PAGE_EVENTS, page_add, &p);
        if (!err && p.len > 0)
            err = es_store_commit(to, p.items, p.len);
        wx_arena_release(&p.arena);
        if (err || p.len == 0)
            break;
        after = p.last;
        *copied += p.len;
        if (tty && wx_monotonic_ms() - shown >= WX_MIGRATE_PROGRESS_MS) {
            shown = wx_monotonic_ms();
            show_progress(*copied - at_start, total - at_start, started, false);
        }
    }
    if (tty)
        show_progress(*copied - at_start, total - at_start, started, true);
    int64_t ms = wx_monotonic_ms() - started;
    uint64_t n = *copied - at_start;
    fprintf(stderr, "migrate: %" PRIu64 " events copied in %lld ms (%" PRIu64 " events/s)\n", n,
            (long long)ms, ms > 0 ? n * 1000 / (uint64_t)ms : n);
    return err;
}

/* A directory a migration may start in: missing, empty, or holding a log
 * (a copy that was interrupted, checked against the source later). */
static bool dir_usable(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return true;
    bool usable = true, has_log = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strncmp(e->d_name, "events.db", 9) == 0 || strncmp(e->d_name, "index.db", 8) == 0)
            has_log = true;
        else if (strcmp(e->d_name, "LOCK") != 0)
            usable = false;
    }
    closedir(d);
    return usable || has_log;
}

int wallex_migrate(const struct migrate_options *o)
{
    if (o->to_backend[0] == 's' && !dir_usable(o->to->data_dir)) {
        fprintf(stderr, "wallex migrate: %s is not empty; the target must be a new or empty"
                        " directory\n", o->to->data_dir);
        return 1;
    }
    struct es_store *from = NULL, *to = NULL;
    struct es_store_config from_cfg = *o->from;
    from_cfg.must_exist = true;
    int err = es_store_open(o->from_backend, &from_cfg, &from);
    if (err) {
        fprintf(stderr, "wallex migrate: cannot open the source (%s store): %s\n",
                o->from_backend, err == WX_ERR_NOT_FOUND ? "there is no wallex log there"
                                                         : wx_strerror(err));
        return 1;
    }
    err = es_store_open(o->to_backend, o->to, &to);
    if (err) {
        fprintf(stderr, "wallex migrate: cannot open the target (%s store): %s\n",
                o->to_backend, wx_strerror(err));
        es_store_close(from);
        return 1;
    }
    struct es_position after;
    uint64_t copied = 0, total = 0;
    err = resume_point(from, to, &after, &copied);
    if (err == WX_ERR_CONFLICT)
        fprintf(stderr, "wallex migrate: the target holds a log that is not a copy of the"
                        " source's; it must be empty\n");
    else if (!err && copied > 0)
        fprintf(stderr, "migrate: the target holds the first %" PRIu64 " events already;"
                        " going on from there\n", copied);
    if (!err && isatty(STDERR_FILENO))
        err = count_events(from, &total);
    if (!err)
        err = copy_pages(from, to, after, &copied, total > copied ? total : copied);
    if (err && err != WX_ERR_CONFLICT)
        fprintf(stderr, "wallex migrate: %s (what was copied stays; run it again to go on)\n",
                wx_strerror(err));
    es_store_close(to);
    es_store_close(from);
    return err ? 1 : 0;
}
