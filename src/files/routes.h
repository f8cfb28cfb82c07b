/*
 * The files HTTP routes of API.md and the writer-thread handler they
 * submit (files/commands.c). Handlers get a struct wx_app as req->app.
 */
#ifndef WALLEX_FILES_ROUTES_H
#define WALLEX_FILES_ROUTES_H

#include <stdbool.h>

#include "es/writer.h"
#include "files/files.h"
#include "http/http.h"

struct auth_principal;

/* How a run whose change was staged in the tree index settled. */
enum files_fate {
    FATE_UNSETTLED,
    FATE_COMMITTED,
    FATE_LOST,    /* surely not in the log: undo it */
    FATE_UNKNOWN, /* its commit failed: it may be in the log */
};

/* One command on its way through the writer: the parsed command and
 * whether its handler has staged a change in the tree index that the
 * commit has not yet settled (committed or discarded). */
struct files_job {
    struct files_command *c;
    bool staged;
    /* Set while staged (commands.c): the change (in the batch's memory),
     * the tree stream's version before it, and how its run settled. */
    const struct files_event *event;
    int64_t tree_version_before;
    enum files_fate fate;
};

/* On the writer thread: runs a struct files_job (the payload). */
void files_run_command(struct es_decide_ctx *ctx, struct es_command *cmd);
/* Its es_command.committed and es_command.discarded hooks. */
void files_job_committed(struct es_command *cmd);
void files_job_discarded(struct es_command *cmd);

/* The caller as the files rules see it (NULL: authentication off). */
struct files_caller files_caller_of(const struct auth_principal *p);

/* Ends with a {NULL} entry (es_domain.routes). */
extern const struct http_route files_routes[];

#endif
