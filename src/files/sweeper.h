/*
 * The trash's retention (files.h, FILES_TRASH_RETENTION_DEFAULT): a thread
 * that, every so often, asks the read model for items trashed longer ago
 * than the retention and purges each through the writer like a client
 * would (an ItemPurged event with "reason": "retention", never a silent
 * delete), off the HTTP threads.
 */
#ifndef WALLEX_FILES_SWEEPER_H
#define WALLEX_FILES_SWEEPER_H

struct files_config;

/* Starts the thread unless the retention is 0. */
int files_sweeper_start(const struct files_config *config);
/* Stops it (accepts a sweeper never started). */
void files_sweeper_stop(void);

#endif
