/*
 * tzfile.h - time zones for the cron module: our own reader of the system's
 * TZif files (RFC 8536) and of the POSIX TZ rule in their footer, and the
 * conversions between UTC instants and local wall-clock time.
 *
 * Nothing here touches the TZ environment variable, tzset() or localtime():
 * a loaded zone is an immutable value, so any number of threads may use it
 * at once.  Loaded zones are kept in a process-wide cache keyed by name
 * (ADR/0010-cron-and-time-zones.md).
 *
 * Times are in seconds here ("local seconds" count wall-clock time as if
 * it were UTC, so that they convert to a civil date with the plain
 * Gregorian arithmetic below).  Offsets are seconds east of Greenwich.
 */
#ifndef AT_TZFILE_H
#define AT_TZFILE_H

#include <stddef.h>
#include <stdint.h>

struct at__tz;

/* Longest zone name accepted by at__tz_load(). */
#define AT__TZ_NAME_MAX 255

/*
 * The zone `name` ("Europe/Berlin"; NULL or "UTC" give the built-in UTC zone
 * without reading a file), read from $TZDIR or /usr/share/zoneinfo on the
 * first use and cached for the life of the process: *out belongs to the
 * cache, is never freed by the caller and stays valid until
 * at__tz_cache_clear().  Errors (the detail message is set): AT_ERR_INVAL
 * for a name with "..", a leading '/', an empty component or a character
 * outside [A-Za-z0-9/_+-]; AT_ERR_NOTFOUND when there is no such zone file
 * (or it is not a TZif file); AT_ERR_CORRUPT for a malformed TZif file;
 * AT_ERR_UNSUPPORTED for a zone with leap seconds ("right/..."); AT_ERR_IO;
 * AT_ERR_NOMEM.  Thread-safe.
 */
int at__tz_load(const struct at__tz **out, const char *name);

/* The built-in UTC zone (static, never fails). */
const struct at__tz *at__tz_utc(void);

/* Free every cached zone.  Only for tests and leak checkers: no zone
 * returned by at__tz_load() may be in use, in any thread. */
void at__tz_cache_clear(void);

/* Number of zones in the cache (for tests). */
size_t at__tz_cache_size(void);

/* A zone parsed from TZif bytes in memory, owned by the caller (free it with
 * at__tz_free).  Same errors as at__tz_load for the contents. */
int at__tz_parse(struct at__tz **out, const char *name, const unsigned char *data, size_t len);

/* A zone made of a POSIX TZ rule string alone ("CET-1CEST,M3.5.0,M10.5.0/3"),
 * owned by the caller.  AT_ERR_INVAL if the string is not one. */
int at__tz_from_posix(struct at__tz **out, const char *posix);

void at__tz_free(struct at__tz *tz);

/* The zone's name ("UTC" for the built-in zone). */
const char *at__tz_name(const struct at__tz *tz);

/* The UTC offset in effect at the instant `utc_s`. */
int32_t at__tz_offset(const struct at__tz *tz, int64_t utc_s);

/* What at__tz_local_to_utc found. */
enum {
    AT__TZ_UNIQUE = 0,   /* the wall time occurs once */
    AT__TZ_GAP = 1,      /* skipped by a forward change: *utc_out is the change's instant */
    AT__TZ_AMBIGUOUS = 2 /* repeated by a backward change: *utc_out is the first occurrence */
};

/*
 * The instant at which the wall clock reads `local_s`: its only occurrence,
 * its first occurrence when a backward change repeats it, or, when a forward
 * change skips it, the instant of that change (the first instant after the
 * gap).  This mapping never decreases as local_s grows.  `local_s` must be
 * within years -1..10001.
 */
int at__tz_local_to_utc(const struct at__tz *tz, int64_t local_s, int64_t *utc_out);

/* Proleptic Gregorian calendar helpers (days since 1970-01-01). */
int64_t at__days_from_civil(int64_t y, int m, int d);
void at__civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* 0 = Sunday .. 6 = Saturday */
int at__weekday(int64_t days);
int at__days_in_month(int64_t y, int m);

#endif /* AT_TZFILE_H */
