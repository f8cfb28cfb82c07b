/* wallex migrate: see migrate.c. */
#ifndef WALLEX_CLI_MIGRATE_H
#define WALLEX_CLI_MIGRATE_H

struct es_store_config;

struct migrate_options {
    const char *from_backend; /* "sqlite" or "postgres" */
    const struct es_store_config *from;
    const char *to_backend;
    const struct es_store_config *to;
};

/* Copies the log; the exit code (0: the target holds the whole log). */
int wallex_migrate(const struct migrate_options *options);

#endif
