/* assets.h — the dashboard's files (web/), built into the binary at build time, so the
 * dashboard works offline with no files beside the binary. assets.c is generated from web/
 * by cmake/embed.cmake. */
#ifndef DT_HTTP_ASSETS_H
#define DT_HTTP_ASSETS_H

#include <stddef.h>

typedef struct http_asset {
    const char *path;            /* "/index.html", "/app.js", ... */
    const char *mime;            /* "text/html; charset=utf-8", ... */
    const unsigned char *data;
    size_t len;
} http_asset;

/* http_asset_find: the built-in file at PATH ("/" means "/index.html"), or NULL. */
const http_asset *http_asset_find(const char *path);

#endif
