/*
 * fuzz_uri.c - libFuzzer target for store URI parsing, every scheme: the
 * core's scheme check and registry lookup (lib/store.c, lib/registry.c),
 * memory:, sqlite: (backends/sqlite.c, parsed through sqlite_uri.c) and
 * redis:// and redis-sentinel:// (backends/redis.c, opened through the fake
 * connection layer of fake_redis.c, which answers as a healthy server and
 * opens no socket).
 *
 * The input is one URI (a NUL-terminated copy is made).  Promises checked:
 * at_store_open returns 0, AT_ERR_URI or AT_ERR_NOBACKEND, and 0 only for a
 * scheme that has a backend; a URI that parses has a canonical form (its
 * settings written back) that parses to the same settings.  Nothing here
 * creates a file except "sqlite:@tmp?..." URIs, which open a fresh file in a
 * private temporary directory with the fuzzed options, and remove it.
 *
 * Build and run: `make fuzz`, or as fuzz_redis_reply.c says with
 * tests/fuzz/fuzz_uri.c tests/fuzz/sqlite_uri.c in place of fuzz_redis_reply.c, then
 *   ./fuzz_uri -max_total_time=60 -max_len=512 corpus/ tests/fuzz/uri/
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_redis.h"
#include "internal.h"
#ifdef AT_HAVE_SQLITE
#include "sqlite_uri.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANON_MAX 16384

#define FAIL(...)                                                                                            \
    do {                                                                                                     \
        fprintf(stderr, "fuzz_uri: " __VA_ARGS__);                                                           \
        fputc('\n', stderr);                                                                                 \
        abort();                                                                                             \
    } while (0)

#ifdef AT_HAVE_SQLITE
static char g_dir[256];

static void remove_dir(void)
{
    if (g_dir[0])
        rmdir(g_dir);
}

/* Open "sqlite:DIR/f.db?QUERY" for real, with the options under test. */
static void open_sqlite_tmp(const char *query)
{
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/at-fuzz-uri-XXXXXX", t && t[0] ? t : "/tmp");
        if (!mkdtemp(g_dir))
            FAIL("cannot make a temporary directory");
        atexit(remove_dir);
    }
    char uri[CANON_MAX], path[300];
    snprintf(path, sizeof path, "%s/f.db", g_dir);
    snprintf(uri, sizeof uri, "sqlite:%s%s", path, query);
    at_store *st = NULL;
    int rc = at_store_open(&st, uri);
    if (rc != 0 && rc != AT_ERR_URI && rc != AT_ERR_UNSUPPORTED)
        FAIL("at_store_open(%s) = %d (%s)", uri, rc, at_last_error());
    at_store_close(st);
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        char f[320];
        snprintf(f, sizeof f, "%s%s", path, sfx[i]);
        unlink(f);
    }
}

static void check_sqlite(const char *uri)
{
    char *c1 = malloc(CANON_MAX), *c2 = malloc(CANON_MAX);
    if (!c1 || !c2)
        abort();
    int rc = fz_sqlite_parse_uri(uri, c1, CANON_MAX);
    if (rc != 0 && rc != AT_ERR_URI && rc != AT_ERR_NOMEM)
        FAIL("sqlite parse_uri(%s) = %d", uri, rc);
    if (rc == 0) {
        if ((rc = fz_sqlite_parse_uri(c1, c2, CANON_MAX)) != 0)
            FAIL("'%s' parses but its canonical form '%s' does not (%d)", uri, c1, rc);
        if (strcmp(c1, c2) != 0)
            FAIL("'%s' -> '%s' -> '%s'", uri, c1, c2);
        if (strncmp(uri, "sqlite:@tmp", 11) == 0 && (uri[11] == '\0' || uri[11] == '?'))
            open_sqlite_tmp(uri + 11);
    }
    free(c1);
    free(c2);
}
#endif

static bool has_scheme(const char *uri, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncmp(uri, scheme, n) == 0 && uri[n] == ':';
}

static void check_open(const char *uri)
{
    fz_redis_feed(NULL, 0, 0);
    at_store *st = NULL;
    int rc = at_store_open(&st, uri);
    if (rc != 0 && rc != AT_ERR_URI && rc != AT_ERR_NOBACKEND)
        FAIL("at_store_open(%s) = %d (%s)", uri, rc, at_err_name(rc));
    if (rc == AT_ERR_NOBACKEND && (has_scheme(uri, "memory") || has_scheme(uri, "redis") ||
                                   has_scheme(uri, "redis-sentinel")))
        FAIL("%s: no backend for a built-in scheme", uri);
    if (rc != 0)
        return;
    if (strcmp(uri, "memory:") == 0) {
        at_store_close(st);
        return;
    }
    if (!has_scheme(uri, "redis") && !has_scheme(uri, "redis-sentinel"))
        FAIL("%s opened a store", uri);
    char *c1 = malloc(CANON_MAX), *c2 = malloc(CANON_MAX);
    if (!c1 || !c2)
        abort();
    if (fz_redis_canonical(c1, CANON_MAX, st) != 0)
        FAIL("%s: no canonical form", uri);
    at_store_close(st);
    st = NULL;
    if ((rc = at_store_open(&st, c1)) != 0)
        FAIL("'%s' opens but its canonical form '%s' does not (%d: %s)", uri, c1, rc, at_last_error());
    if (fz_redis_canonical(c2, CANON_MAX, st) != 0 || strcmp(c1, c2) != 0)
        FAIL("'%s' -> '%s' -> '%s'", uri, c1, c2);
    at_store_close(st);
    free(c1);
    free(c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *uri = malloc(size + 1);
    if (!uri)
        return 0;
    memcpy(uri, data, size);
    uri[size] = '\0';
#ifdef AT_HAVE_SQLITE
    if (has_scheme(uri, "sqlite"))
        check_sqlite(uri);
    else
#endif
        check_open(uri);
    free(uri);
    return 0;
}
