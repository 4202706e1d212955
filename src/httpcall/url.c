/* url.c — which URLs the HTTP activity may reach: parsed with libcurl's URL parser (the
 * same one the exchange uses, so what is checked is what is fetched), http and https only,
 * the host matched against the allow list; and Location headers resolved against the URL
 * they answer. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "httpcall_internal.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
    /* nothing useful can be done if this fails: every later curl_easy_init fails too, and
     * each exchange reports that as a transport error */
    (void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

void httpcall_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

/* host_allowed: an entry matches the host itself, or "*.suffix" every name ending in
 * ".suffix" (not "suffix" itself). HOST is lowercase, as the entries are. */
static bool host_allowed(const dt_http_activity *a, const char *host)
{
    size_t hl = strlen(host);
    for (size_t i = 0; i < a->n_allow; i++) {
        const char *e = a->allow[i];
        if (e[0] == '*') {
            size_t sl = strlen(e + 1);   /* ".suffix" */
            if (hl > sl && strcmp(host + hl - sl, e + 1) == 0)
                return true;
        } else if (strcmp(host, e) == 0) {
            return true;
        }
    }
    return false;
}

dt_status httpcall_check_url(const dt_http_activity *a, const char *url, const char **type,
                             char *msg, size_t cap, char *host_out, size_t host_cap)
{
    dt_status st = DT_ERR_INVALID_ARG;
    char *scheme = NULL, *host = NULL;
    *type = DT_HTTP_ERR_INVALID;
    host_out[0] = '\0';
    if (url == NULL || url[0] == '\0') {
        snprintf(msg, cap, "the request has no uri");
        return st;
    }
    if (strlen(url) > HTTPCALL_URL_MAX) {
        snprintf(msg, cap, "uri is longer than %d bytes", HTTPCALL_URL_MAX);
        return st;
    }
    CURLU *u = curl_url();
    if (u == NULL) {
        snprintf(msg, cap, "out of memory");
        return DT_ERR_NOMEM;
    }
    /* any scheme parses, so a refused one is named as such rather than as a bad URL */
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        snprintf(msg, cap, "uri '%.200s' is not a valid URL: %s", url, curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        snprintf(msg, cap, "uri '%.200s' has no scheme", url);
        goto done;
    }
    for (char *p = scheme; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        *type = DT_HTTP_ERR_REFUSED;
        snprintf(msg, cap, "scheme '%.40s' of '%.200s' is not allowed (only http and https)",
                 scheme, url);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        snprintf(msg, cap, "uri '%.200s' has no host", url);
        goto done;
    }
    /* an IPv6 literal comes bracketed; the allow list names it bare */
    char *h = host;
    size_t hl = strlen(h);
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    for (char *p = h; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(host_out, host_cap, "%s", h);
    if (!host_allowed(a, h)) {
        *type = DT_HTTP_ERR_REFUSED;
        snprintf(msg, cap, "host '%.200s' is not in --http-activity-allow", h);
        goto done;
    }
    st = DT_OK;
done:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return st;
}

bool httpcall_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    bool ok = false;
    char *s = NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        return false;
    /* a relative REF is resolved against the URL already set */
    if (curl_url_set(u, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, ref, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK && strlen(s) < cap) {
        memcpy(out, s, strlen(s) + 1);
        ok = true;
    }
    curl_free(s);
    curl_url_cleanup(u);
    return ok;
}
