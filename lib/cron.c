/*
 * cron.c - cron expressions: the parser and the next-fire-time search.
 *
 * An expression becomes one bit set per field (seconds, minutes, hours,
 * days of the month, months, days of the week) or an @every period.  The
 * search walks local wall-clock time field by field, largest first (month,
 * day, hour, minute, second), jumping to the next set bit instead of
 * stepping second by second, so a yearly expression costs a few dozen
 * steps.  Each matching wall time is turned into an instant by the zone
 * (tzfile.c): a wall time skipped by a forward change maps to the instant of
 * the change, a repeated one to its first occurrence.  That mapping never
 * decreases, so the first match whose instant is after `after` is the
 * answer, and each tick fires at most once across any DST change
 * (ADR/0010-cron-and-time-zones.md).
 *
 * Cost: parsing is linear in the expression and allocates nothing;
 * at__cron_next is a handful of field jumps per candidate plus a binary
 * search of the zone's transitions; only the first use of a zone reads a
 * file.  Impossible dates ("0 0 30 2 *") are caught before the search.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cron.h"
#include "internal.h"

/* ------------------------------------------------------------------ parser */

struct field_spec {
    const char *name;
    int min, max;             /* values accepted */
    int star_max;             /* end of "*" and of "N/step" (6 for day-of-week: 7 is Sunday again) */
    const char *const *names; /* names[i] is value i + min */
};

static const char *const k_months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                       "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const k_days[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };

static const struct field_spec k_fields[6] = {
    {"second", 0, 59, 59, NULL},       {"minute", 0, 59, 59, NULL},    {"hour", 0, 23, 23, NULL},
    {"day-of-month", 1, 31, 31, NULL}, {"month", 1, 12, 12, k_months}, {"day-of-week", 0, 7, 6, k_days},
};

static const struct {
    const char *name, *expansion;
} k_macros[] = {
    {"yearly", "0 0 1 1 *"}, {"annually", "0 0 1 1 *"}, {"monthly", "0 0 1 * *"}, {"weekly", "0 0 * * 0"},
    {"daily", "0 0 * * *"},  {"midnight", "0 0 * * *"}, {"hourly", "0 * * * *"},
};

struct pctx {
    const char *s;
    int32_t *pos;
    int fieldno; /* 1-based position of the field in the expression; 0: none */
    const struct field_spec *f;
};

static bool is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int perr(struct pctx *x, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int perr(struct pctx *x, size_t at, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (x->pos)
        *x->pos = (int32_t)at;
    if (x->f)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "field %d (%s), position %zu: %s", x->fieldno, x->f->name,
                           at, msg);
    return at__err_set(NULL, AT_ERR_INVAL, 0, "position %zu: %s", at, msg);
}

/* Error for an unexpected byte at p (printable or not), or for the end
 * of the field (or expression) at e. */
static int unexpected(struct pctx *x, size_t p, size_t e, const char *what)
{
    unsigned char ch = (unsigned char)x->s[p];
    if (p >= e || ch == '\0')
        return perr(x, p, "%s expected", what);
    if (ch > ' ' && ch < 0x7f)
        return perr(x, p, "unexpected '%c' (%s expected)", ch, what);
    return perr(x, p, "unexpected byte 0x%02x (%s expected)", ch, what);
}

/* Read a run of digits at *p (< e) saturating at 100000. */
static int read_int(const char *s, size_t *p, size_t e)
{
    int v = 0;
    while (*p < e && is_digit(s[*p])) {
        if (v < 100000)
            v = v * 10 + (s[*p] - '0');
        (*p)++;
    }
    return v;
}

static int parse_value(struct pctx *x, size_t *p, size_t e, int *out)
{
    const char *s = x->s;
    size_t st = *p;
    const struct field_spec *f = x->f;
    if (st < e && is_digit(s[st])) {
        int v = read_int(s, p, e);
        if (v < f->min || v > f->max)
            return perr(x, st, "%.*s is outside %d..%d", (int)(*p - st > 12 ? 12 : *p - st), s + st, f->min,
                        f->max);
        *out = v;
        return 0;
    }
    if (st < e && is_alpha(s[st])) {
        while (*p < e && is_alpha(s[*p]))
            (*p)++;
        size_t len = *p - st;
        if (f->names && len == 3) {
            for (int i = 0; f->names[i]; i++) {
                if (strncasecmp(s + st, f->names[i], 3) == 0) {
                    *out = i + f->min;
                    return 0;
                }
            }
        }
        if (f->names)
            return perr(x, st, "unknown name '%.*s' (expected %s..%s)", (int)(len > 12 ? 12 : len), s + st,
                        f->names[0], f == &k_fields[F_MON] ? "DEC" : "SAT");
        return perr(x, st, "'%.*s' is not a number", (int)(len > 12 ? 12 : len), s + st);
    }
    return unexpected(x, st, e, "a number");
}

/* One field in s[b, e): a comma-separated list of "*", "N", "N-M", each
 * with an optional "/step". */
static int parse_field(struct pctx *x, size_t b, size_t e, uint64_t *bits, bool *star)
{
    const char *s = x->s;
    const struct field_spec *f = x->f;
    size_t p = b;
    int nelem = 0;
    bool first_is_star = false;
    *bits = 0;
    for (;;) {
        size_t el = p;
        int lo, hi, rc;
        bool is_star = false, is_range = false;
        if (p == e || s[p] == ',')
            return perr(x, p, "empty list element");
        if (s[p] == '*') {
            is_star = true;
            lo = f->min;
            hi = f->star_max;
            p++;
        } else {
            if ((rc = parse_value(x, &p, e, &lo)) != 0)
                return rc;
            hi = lo;
            if (p < e && s[p] == '-') {
                p++;
                if ((rc = parse_value(x, &p, e, &hi)) != 0)
                    return rc;
                is_range = true;
                if (hi < lo)
                    return perr(x, el, "range %.*s is reversed", (int)(p - el > 24 ? 24 : p - el), s + el);
            }
        }
        int step = 1;
        if (p < e && s[p] == '/') {
            size_t sp = ++p;
            if (p == e || !is_digit(s[p]))
                return unexpected(x, p, e, "a step");
            step = read_int(s, &p, e);
            int span = f->star_max - f->min + 1;
            if (step == 0)
                return perr(x, sp, "step 0 is not allowed");
            if (step > span)
                return perr(x, sp, "step %.*s is larger than the field's range %d..%d",
                            (int)(p - sp > 12 ? 12 : p - sp), s + sp, f->min, f->star_max);
            if (!is_star && !is_range) /* "N/step" is "N-max/step" */
                hi = lo > f->star_max ? lo : f->star_max;
        }
        if (p < e && s[p] != ',')
            return unexpected(x, p, e, "',' or the end of the field");
        for (int v = lo; v <= hi; v += step)
            *bits |= UINT64_C(1) << (f == &k_fields[F_DOW] && v == 7 ? 0 : v);
        if (nelem++ == 0)
            first_is_star = is_star && step == 1;
        if (p == e)
            break;
        p++; /* ',' */
    }
    *star = first_is_star && nelem == 1;
    return 0;
}

static int parse_fields(struct pctx *x, struct at__cron *c, size_t p, size_t n)
{
    size_t fb[6], fe[6];
    int count = 0;
    while (p < n) {
        if (count == 6)
            return perr(x, p, "too many fields (5, or 6 with seconds, expected)");
        fb[count] = p;
        while (p < n && !is_ws(x->s[p]))
            p++;
        fe[count++] = p;
        while (p < n && is_ws(x->s[p]))
            p++;
    }
    if (count < 5)
        return perr(x, n, "%d field%s found (5, or 6 with seconds, expected)", count, count == 1 ? "" : "s");
    int first = count == 6 ? F_SEC : F_MIN;
    if (count == 5)
        c->sec = 1; /* second 0 */
    for (int i = 0; i < count; i++) {
        int which = first + i;
        uint64_t bits = 0;
        bool star = false;
        x->fieldno = i + 1;
        x->f = &k_fields[which];
        int rc = parse_field(x, fb[i], fe[i], &bits, &star);
        if (rc)
            return rc;
        switch (which) {
        case F_SEC:
            c->sec = bits;
            break;
        case F_MIN:
            c->min = bits;
            break;
        case F_HOUR:
            c->hour = (uint32_t)bits;
            break;
        case F_DOM:
            c->dom = (uint32_t)bits;
            c->flags |= star ? AT__CRON_DOM_STAR : 0;
            break;
        case F_MON:
            c->mon = (uint32_t)bits;
            break;
        default:
            c->dow = (uint32_t)bits;
            c->flags |= star ? AT__CRON_DOW_STAR : 0;
            break;
        }
    }
    x->f = NULL;
    x->fieldno = 0;
    return 0;
}

/* "90s", "1h30m", "500ms", "2d": one or more <integer><unit>. */
static int parse_duration(struct pctx *x, size_t p, size_t n, int64_t *out)
{
    const char *s = x->s;
    size_t d0 = p;
    int64_t total = 0;
    if (p == n)
        return perr(x, p, "duration expected after @every");
    while (p < n && !is_ws(s[p])) {
        size_t np = p;
        if (!is_digit(s[p]))
            return unexpected(x, p, n, "a number");
        int64_t v = 0;
        while (p < n && is_digit(s[p])) {
            if (v > AT__CRON_EVERY_MAX_MS)
                return perr(x, np, "duration is longer than 100 years");
            v = v * 10 + (s[p++] - '0');
        }
        int64_t unit;
        if (p + 1 < n && s[p] == 'm' && s[p + 1] == 's') {
            unit = 1;
            p += 2;
        } else if (p < n && (s[p] == 's' || s[p] == 'm' || s[p] == 'h' || s[p] == 'd')) {
            unit = s[p] == 's' ? 1000 : s[p] == 'm' ? 60000 : s[p] == 'h' ? 3600000 : 86400000;
            p++;
        } else if (p < n && !is_ws(s[p])) {
            return perr(x, p, "unknown unit in duration (ms, s, m, h or d expected)");
        } else {
            return perr(x, p, "unit expected after %lld (ms, s, m, h or d)", (long long)v);
        }
        if (v > (AT__CRON_EVERY_MAX_MS - total) / unit)
            return perr(x, d0, "duration is longer than 100 years");
        total += v * unit;
    }
    if (total == 0)
        return perr(x, d0, "duration must be positive");
    *out = total;
    return 0;
}

static int parse_macro(struct pctx *x, struct at__cron *c, size_t p, size_t n)
{
    const char *s = x->s;
    size_t at = p++, nb = p;
    while (p < n && is_alpha(s[p]))
        p++;
    size_t len = p - nb;
    if (len == 5 && strncasecmp(s + nb, "every", 5) == 0) {
        if (p < n && !is_ws(s[p]))
            return unexpected(x, p, n, "a space");
        while (p < n && is_ws(s[p]))
            p++;
        size_t db = p;
        while (p < n && !is_ws(s[p]))
            p++;
        int rc = parse_duration(x, db, p, &c->every_ms);
        if (rc)
            return rc;
    } else {
        size_t i;
        for (i = 0; i < sizeof k_macros / sizeof k_macros[0]; i++)
            if (strlen(k_macros[i].name) == len && strncasecmp(s + nb, k_macros[i].name, len) == 0)
                break;
        if (i == sizeof k_macros / sizeof k_macros[0] || (p < n && !is_ws(s[p])))
            return perr(x, at,
                        "unknown macro '%.*s' (@yearly, @annually, @monthly, @weekly, @daily, "
                        "@midnight, @hourly or @every expected)",
                        (int)(p - at > 16 ? 16 : p - at), s + at);
        struct pctx sub = {.s = k_macros[i].expansion};
        int rc = parse_fields(&sub, c, 0, strlen(sub.s));
        if (rc) /* cannot happen: the expansions are valid */
            return perr(x, at, "internal error expanding '%.*s'", (int)(p - at), s + at);
    }
    while (p < n && is_ws(s[p]))
        p++;
    if (p < n)
        return perr(x, p, "unexpected text after '%.*s'", (int)(p - at > 16 ? 16 : p - at), s + at);
    return 0;
}

int at__cron_parse_into(struct at__cron *c, const char *expr, int32_t *pos)
{
    memset(c, 0, sizeof *c);
    struct pctx x = {.s = expr, .pos = pos};
    if (pos)
        *pos = -1;
    if (!expr)
        return perr(&x, 0, "expression is NULL");
    size_t n = strnlen(expr, AT__CRON_MAX_LEN + 1);
    if (n > AT__CRON_MAX_LEN)
        return perr(&x, AT__CRON_MAX_LEN, "expression is longer than %d bytes", AT__CRON_MAX_LEN);
    size_t p = 0;
    while (p < n && is_ws(expr[p]))
        p++;
    if (p == n)
        return perr(&x, p, "empty expression");
    int rc = expr[p] == '@' ? parse_macro(&x, c, p, n) : parse_fields(&x, c, p, n);
    if (rc)
        memset(c, 0, sizeof *c);
    return rc;
}

int at__cron_parse(struct at__cron **out, const char *expr)
{
    struct at__cron tmp;
    *out = NULL;
    int rc = at__cron_parse_into(&tmp, expr, NULL);
    if (rc)
        return rc;
    if (!(*out = at__malloc(sizeof tmp)))
        return at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
    **out = tmp;
    return 0;
}

void at__cron_free(struct at__cron *c)
{
    at__free(c);
}

/* ------------------------------------------------------------------ search */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* The lowest set bit of mask at or above `from`, or -1. */
static int next_bit(uint64_t mask, int from)
{
    if (from >= 64)
        return -1;
    uint64_t m = mask >> from;
    return m ? from + __builtin_ctzll(m) : -1;
}

static bool day_matches(const struct at__cron *c, int64_t y, int m, int d)
{
    bool dom = (c->dom >> d) & 1;
    bool dow = (c->dow >> at__weekday(at__days_from_civil(y, m, d))) & 1;
    if (c->flags & AT__CRON_DOM_STAR)
        return dow; /* dom is "*": only the weekdays count (all, if dow is "*" too) */
    if (c->flags & AT__CRON_DOW_STAR)
        return dom;
    return dom || dow; /* both restricted: classic cron's "either" */
}

/* Can the day fields ever match?  Only "dow is *" with day-of-month values
 * that no chosen month has ("0 0 30 2 *") cannot; every other combination
 * matches some day of every month. */
static bool days_possible(const struct at__cron *c)
{
    static const int maxd[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!(c->flags & AT__CRON_DOW_STAR) || (c->flags & AT__CRON_DOM_STAR))
        return true;
    for (int m = 1; m <= 12; m++)
        if (((c->mon >> m) & 1) && (c->dom & ((UINT32_C(2) << maxd[m]) - 2)))
            return true;
    return false;
}

/* The first local time >= *local that matches every field, or false when
 * there is none up to the end of AT__CRON_MAX_YEAR. */
static bool find_match(const struct at__cron *c, int64_t *local)
{
    int64_t days = floor_div(*local, 86400), y;
    int64_t sod = *local - days * 86400;
    int mo, d, h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), s = (int)(sod % 60), nx;
    at__civil_from_days(days, &y, &mo, &d);
    if (y < 1) { /* only a far-west offset from year 1 gets here */
        y = 1;
        mo = 1;
        d = 1;
        h = mi = s = 0;
    }
    for (;;) {
        if (y > AT__CRON_MAX_YEAR)
            return false;
        if (!((c->mon >> mo) & 1)) {
            if ((nx = next_bit(c->mon, mo)) < 0) {
                y++;
                nx = next_bit(c->mon, 1);
            }
            mo = nx;
            d = 1;
            h = mi = s = 0;
            continue;
        }
        if (!day_matches(c, y, mo, d))
            goto next_day;
        if (!((c->hour >> h) & 1)) {
            if ((nx = next_bit(c->hour, h)) < 0)
                goto next_day;
            h = nx;
            mi = s = 0;
        }
        if (!((c->min >> mi) & 1)) {
            if ((nx = next_bit(c->min, mi)) < 0)
                goto next_hour;
            mi = nx;
            s = 0;
        }
        if (!((c->sec >> s) & 1)) {
            if ((nx = next_bit(c->sec, s)) < 0)
                goto next_minute;
            s = nx;
        }
        *local = at__days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
        return true;
    next_minute:
        s = 0;
        if (++mi < 60)
            continue;
    next_hour:
        mi = s = 0;
        if (++h < 24)
            continue;
    next_day:
        h = mi = s = 0;
        if (++d > at__days_in_month(y, mo)) {
            d = 1;
            if (++mo > 12) {
                mo = 1;
                y++;
            }
        }
    }
}

int at__cron_next(const struct at__cron *c, const struct at__tz *tz, int64_t after_ms, int64_t *out)
{
    *out = AT_TIME_NONE;
    if (after_ms < AT__CRON_MIN_MS || after_ms > AT__CRON_MAX_MS)
        return at__err_set(NULL, AT_ERR_RANGE, 0, "after_ms %lld is outside years 1..9999",
                           (long long)after_ms);
    if (c->every_ms > 0) {
        /* Multiples of the period since the epoch: every process, started
         * whenever, computes the same ticks. */
        int64_t next = (floor_div(after_ms, c->every_ms) + 1) * c->every_ms;
        if (next > AT__CRON_MAX_MS)
            return at__err_set(NULL, AT_ERR_RANGE, 0, "no fire time before the year 10000");
        *out = next;
        return 0;
    }
    if (!days_possible(c))
        return at__err_set(NULL, AT_ERR_RANGE, 0,
                           "the expression never fires: no chosen month has any of its days of the month");
    if (!tz)
        tz = at__tz_utc();
    int64_t after_s = floor_div(after_ms, 1000);
    /* Wall time strictly after `after`; whole seconds only. */
    int64_t local = floor_div(after_ms + (int64_t)at__tz_offset(tz, after_s) * 1000, 1000) + 1;
    for (;;) {
        if (!find_match(c, &local))
            return at__err_set(NULL, AT_ERR_RANGE, 0, "no fire time before the year 10000");
        int64_t u;
        at__tz_local_to_utc(tz, local, &u);
        /* A match can map to `after` or before it when `after` lies in the
         * second pass of a repeated hour (those wall times fired in the
         * first pass), or in a gap's collapsed instant: skip it. */
        if (u > after_s) {
            *out = u * 1000;
            return 0;
        }
        local++;
    }
}

/* -------------------------------------------------------------- public API */

AT_EXTERN int at_cron_check(int32_t *pos_out, const char *expr)
{
    struct at__cron c;
    at__err_clear();
    return at__cron_parse_into(&c, expr, pos_out);
}

AT_EXTERN int at_cron_next(int64_t *next_out, const char *expr, const char *tz, int64_t after_ms)
{
    struct at__cron c;
    const struct at__tz *zone;
    at__err_clear();
    if (!next_out)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "next_out is NULL");
    *next_out = AT_TIME_NONE;
    int rc = at__cron_parse_into(&c, expr, NULL);
    if (rc)
        return rc;
    if ((rc = at__tz_load(&zone, tz)) != 0)
        return rc;
    return at__cron_next(&c, zone, after_ms, next_out);
}
