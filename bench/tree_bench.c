/*
 * The files tree index alone (src/files/tree.c), in memory: N items in
 * the shape bench/files builds (a spine of folders 19 deep, files on every
 * level), then the cost of what the writer does with it for each command:
 * an item's creation, a permission check through a grant 19 levels up, a
 * name lookup among a folder's live items, a cycle check, a path. And the
 * bytes it holds per item, by its own count and by the process's RSS.
 *
 * Usage: tree_bench [ITEMS] (default 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "files/files.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kib;
}

static void create(struct files_tree *t, const char *id, const char *name, const char *parent,
                   bool folder)
{
    struct files_event e = {
        .kind = folder ? FILES_FOLDER_CREATED : FILES_FILE_CREATED,
        .item_id = id,
        .name = name,
        .parent_id = parent,
        .owner_id = "alice",
        .actor = "alice",
        .has_size = !folder,
        .mime_type = "text/plain",
    };
    if (files_tree_apply(t, &e) != 0) {
        fprintf(stderr, "tree_bench: %s does not fit\n", id);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long items = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    const int spine = 19;
    long per_level = (items - spine) / spine;
    char id[64], name[64], parent[64];
    long rss0 = rss_kib();
    struct files_tree *t;
    if (files_tree_new(&t) != 0)
        return 1;
    double t0 = now_s();
    for (int i = 1; i <= spine; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        snprintf(name, sizeof(name), "level-%d", i);
        snprintf(parent, sizeof(parent), "s%d", i - 1);
        create(t, id, name, i > 1 ? parent : NULL, true);
    }
    for (int i = 1; i <= spine; i++) {
        snprintf(parent, sizeof(parent), "s%d", i);
        for (long j = 0; j < per_level; j++) {
            snprintf(id, sizeof(id), "s%d-f%ld", i, j);
            snprintf(name, sizeof(name), "f%ld", j);
            create(t, id, name, parent, false);
        }
    }
    double built = now_s() - t0;
    long rss1 = rss_kib();
    size_t n = files_tree_len(t);
    struct files_event g = {.kind = FILES_GRANT_ADDED,
                            .item_id = "s1",
                            .subject = "bob",
                            .permission = FILES_LEVEL_WRITE,
                            .actor = "alice"};
    files_tree_apply(t, &g);

    const long checks = 2000000;
    struct files_caller bob = {FILES_ROLE_USER, "bob"};
    uint32_t deep[1000];
    for (int k = 0; k < 1000; k++) {
        snprintf(id, sizeof(id), "s%d-f%d", spine, k % (int)(per_level > 0 ? per_level : 1));
        deep[k] = files_tree_find(t, id);
    }
    volatile int sink = 0;
    t0 = now_s();
    for (long k = 0; k < checks; k++)
        sink += files_tree_level(t, deep[k % 1000], &bob);
    double level_ns = (now_s() - t0) / checks * 1e9;
    t0 = now_s();
    for (long k = 0; k < checks; k++) {
        snprintf(name, sizeof(name), "f%ld", k % (per_level > 0 ? per_level : 1));
        sink += files_tree_named(t, files_tree_find(t, "s19"), NULL, name) != FILES_NODE_NONE;
    }
    double named_ns = (now_s() - t0) / checks * 1e9;
    uint32_t s19 = files_tree_find(t, "s19"), s10 = files_tree_find(t, "s10");
    t0 = now_s();
    for (long k = 0; k < checks; k++)
        sink += files_tree_within(t, s19, s10 + (uint32_t)(k & 1));
    double within_ns = (now_s() - t0) / checks * 1e9;
    struct wx_buf b;
    wx_buf_init(&b);
    t0 = now_s();
    for (long k = 0; k < checks / 10; k++) {
        wx_buf_reset(&b);
        files_tree_path(t, deep[k % 1000], &b);
    }
    double path_ns = (now_s() - t0) / (checks / 10) * 1e9;
    wx_buf_free(&b);

    printf("items %zu (a spine 19 deep, %ld files a level)\n", n, per_level);
    printf("build: %.2f s, %.0f creates/s\n", built, n / built);
    printf("bytes an item: %.0f by the tree's count, %.0f by RSS growth\n",
           (double)files_tree_bytes(t) / n, (rss1 - rss0) * 1024.0 / n);
    printf("permission check, 20 deep, through a grant 19 levels up: %.0f ns\n", level_ns);
    printf("name lookup among a folder's live items: %.0f ns\n", named_ns);
    printf("cycle check (is the target under the item), 19 deep: %.0f ns\n", within_ns);
    printf("path of an item 20 deep: %.0f ns\n", path_ns);
    files_tree_free(t);
    return sink == -1;
}
