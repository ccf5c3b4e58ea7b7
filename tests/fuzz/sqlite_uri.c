/*
 * sqlite_uri.c - the SQLite backend's URI parser, for the uri target.
 *
 * This file #includes backends/sqlite.c because its parse_uri() is static.
 * Opening a store would create the file the URI names, wherever that is,
 * so the target parses arbitrary URIs here and opens only ones it built in
 * a temporary directory.  The copy's exported names are renamed, so the
 * program's real backend (libat_core or the fuzz build's sqlite.c) stays
 * the one at_store_open uses.
 */
#define at__sqlite_vtable fz_sqlite_vtable_copy
#define at__sqlite_statement fz_sqlite_statement_copy
#define at__sqlite_schema_step fz_sqlite_schema_step_copy
#define at__sqlite_fs_is_network fz_sqlite_fs_is_network_copy

#include "../../backends/sqlite.c"

#include "sqlite_uri.h"

int fz_sqlite_parse_uri(const char *uri, char *canon, size_t cap)
{
    struct uri_opts o = {0};
    int rc = parse_uri(&o, NULL, uri);
    if (rc)
        return rc;
    int n = snprintf(canon, cap, "sqlite:%s?sync=%s&busy_timeout=%lld%s", o.path, o.sync_full ? "full" : "normal",
                     (long long)o.busy_ms, o.nfs_allow ? "&nfs=allow" : "");
    at__free(o.path);
    return n < 0 || (size_t)n >= cap ? AT_ERR_NOMEM : 0;
}
