/* sqlite_uri.h - the SQLite backend's URI parser for the uri target. */
#ifndef FUZZ_SQLITE_URI_H
#define FUZZ_SQLITE_URI_H

#include <stddef.h>

/* Parse a "sqlite:" URI without opening anything: 0 and the settings
 * written back as a URI in one canonical form, or the parser's code. */
int fz_sqlite_parse_uri(const char *uri, char *canon, size_t cap);

#endif
