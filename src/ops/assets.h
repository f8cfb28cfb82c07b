/*
 * The dashboard's files (web/), built into the binary at build time by
 * cmake/embed_assets.cmake, so a running server needs nothing from disk or
 * the network to serve them. The table is static and read-only.
 */
#ifndef WALLEX_OPS_ASSETS_H
#define WALLEX_OPS_ASSETS_H

#include <stddef.h>

struct ops_asset {
    const char *name;         /* the file's name in web/: "app.js" */
    const char *content_type; /* from its extension */
    const unsigned char *data;
    size_t len;
};

/* Sorted by name. */
extern const struct ops_asset wallex_ui_assets[];
extern const size_t wallex_ui_assets_len;

#endif
