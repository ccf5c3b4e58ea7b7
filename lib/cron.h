/*
 * cron.h - cron expressions for the scheduler (internal).
 *
 * A parsed expression is a plain value: bit sets per field, or an @every
 * period.  at__cron_next() works on local wall-clock time in a zone loaded
 * with at__tz_load() (tzfile.h); both are pure functions of their inputs, so
 * the scheduler may share one parsed expression between threads.  The rules
 * (grammar, DST, @every alignment) are ADR/0010-cron-and-time-zones.md and
 * at_cron_next(3).
 */
#ifndef AT_CRON_H
#define AT_CRON_H

#include <stdint.h>

#include "asynctask.h"
#include "tzfile.h"

/* Longest expression accepted, in bytes. */
#define AT__CRON_MAX_LEN 1024
/* Fire times are searched up to the end of this (local) year. */
#define AT__CRON_MAX_YEAR 9999
/* after_ms must lie within 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z */
#define AT__CRON_MIN_MS INT64_C(-62135596800000)
#define AT__CRON_MAX_MS INT64_C(253402300799999)
/* Longest @every period: 100 years of 366 days. */
#define AT__CRON_EVERY_MAX_MS (INT64_C(100) * 366 * 86400 * 1000)

#define AT__CRON_DOM_STAR 1u /* day-of-month was "*" (or "*\/1") */
#define AT__CRON_DOW_STAR 2u /* day-of-week was "*" (or "*\/1") */

struct at__cron {
    uint64_t sec;  /* bits 0..59 */
    uint64_t min;  /* bits 0..59 */
    uint32_t hour; /* bits 0..23 */
    uint32_t dom;  /* bits 1..31 */
    uint32_t mon;  /* bits 1..12 */
    uint32_t dow;  /* bits 0..6, Sunday = 0 */
    uint32_t flags;
    int64_t every_ms; /* > 0: "@every", the bit sets are unused */
};

/* Parse `expr` into *c without allocating.  0 or AT_ERR_INVAL, with the
 * detail message set and the byte offset of the error in *pos (may be NULL;
 * -1 on success). */
int at__cron_parse_into(struct at__cron *c, const char *expr, int32_t *pos);

/* As at__cron_parse_into, into a new object freed with at__cron_free.
 * AT_ERR_NOMEM too. */
int at__cron_parse(struct at__cron **out, const char *expr);
void at__cron_free(struct at__cron *c);

/* The first fire time strictly after after_ms, in zone tz (NULL: UTC).
 * AT_ERR_RANGE when there is none up to the end of year 9999, or after_ms
 * is outside AT__CRON_MIN_MS..AT__CRON_MAX_MS. */
int at__cron_next(const struct at__cron *c, const struct at__tz *tz, int64_t after_ms, int64_t *out);

#endif /* AT_CRON_H */
