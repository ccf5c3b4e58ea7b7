/*
 * tzfile.c - a thread-safe reader of the system time zone database.
 *
 * The C library's time zone code works on one process-wide zone chosen by
 * the TZ environment variable: converting in a named zone means setenv()
 * plus tzset(), which races with every other thread reading the environment
 * or local time.  So this file reads the TZif files of the tz database
 * (RFC 8536) itself: the 64-bit transition table of a version 2+ file (the
 * 32-bit one of a version 1 file), the local time types, and the POSIX TZ
 * string of the footer, which gives the rule for every instant after the
 * last transition (slim files stop their tables in 2007 or so, fat ones in
 * 2037).  A parsed zone is immutable; a process-wide cache, guarded by one
 * mutex, makes the second load of a name a lookup.
 *
 * Instants and offsets are seconds.  A zone is a sequence of intervals
 * [begin, end) of constant UTC offset: the transition table gives those up
 * to its last transition, the footer rule (evaluated for the few years
 * around an instant) gives the rest.  Local-to-UTC conversion walks those
 * intervals forward from two days before the wall time, which handles gaps
 * and repetitions of any size without assuming a one-hour change.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tzfile.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_FILE_MAX (4 * 1024 * 1024) /* the largest real zone is ~4 KiB */
/* RFC 8536 section 3.2: utoff should be in (-25 h, +26 h). */
#define TZ_OFF_MIN (-89999)
#define TZ_OFF_MAX 93599

/* ---------------------------------------------------------------- calendar */

/* Howard Hinnant's days_from_civil / civil_from_days (public domain). */
int64_t at__days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void at__civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
    int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (mm <= 2);
    *m = mm;
    *d = dd;
}

int at__weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday */
    int64_t r = (days + 4) % 7;
    return (int)(r < 0 ? r + 7 : r);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int at__days_in_month(int64_t y, int m)
{
    static const int k[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : k[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ----------------------------------------------------------- POSIX TZ rule */

struct rule_date {
    char kind;    /* 'M' month.week.day, 'J' Julian 1..365 without Feb 29, 'N' 0..365 */
    int m, w, d;  /* kind 'M' */
    int n;        /* kinds 'J', 'N' */
    int32_t time; /* seconds after local midnight, -167 h .. +167 h */
};

struct rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct rule_date start, end; /* start: in standard time; end: in DST */
};

struct at__tz {
    char *name;
    int32_t ntrans, ntypes;
    int64_t *trans; /* ascending transition instants */
    uint8_t *idx;   /* type after each transition */
    int32_t *off;   /* utoff of each type */
    bool has_rule;  /* the footer's rule governs after the last transition */
    struct rule rule;
    struct at__tz *next; /* cache chain */
};

static const char *parse_num(const char *p, int *out, int max)
{
    if (*p < '0' || *p > '9')
        return NULL;
    int v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > max)
            return NULL;
    }
    *out = v;
    return p;
}

/* [+-]hh[:mm[:ss]] with hh <= max_h; the value in seconds, sign applied. */
static const char *parse_hms(const char *p, int32_t *out, int max_h)
{
    int sign = 1, h, m = 0, s = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!(p = parse_num(p, &h, max_h)))
        return NULL;
    if (*p == ':') {
        if (!(p = parse_num(p + 1, &m, 59)))
            return NULL;
        if (*p == ':' && !(p = parse_num(p + 1, &s, 59)))
            return NULL;
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

/* A zone abbreviation: 3+ letters, or <...> of 3+ [A-Za-z0-9+-]. */
static const char *parse_abbr(const char *p)
{
    const char *s;
    if (*p == '<') {
        s = ++p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '+' || *p == '-')
            p++;
        if (*p != '>' || p - s < 3)
            return NULL;
        return p + 1;
    }
    s = p;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

static const char *parse_rule_date(const char *p, struct rule_date *r)
{
    if (*p == 'M') {
        r->kind = 'M';
        if (!(p = parse_num(p + 1, &r->m, 12)) || r->m < 1 || *p != '.')
            return NULL;
        if (!(p = parse_num(p + 1, &r->w, 5)) || r->w < 1 || *p != '.')
            return NULL;
        if (!(p = parse_num(p + 1, &r->d, 6)))
            return NULL;
    } else if (*p == 'J') {
        r->kind = 'J';
        if (!(p = parse_num(p + 1, &r->n, 365)) || r->n < 1)
            return NULL;
    } else {
        r->kind = 'N';
        if (!(p = parse_num(p, &r->n, 365)))
            return NULL;
    }
    r->time = 2 * 3600;
    if (*p == '/' && !(p = parse_hms(p + 1, &r->time, 167)))
        return NULL;
    return p;
}

/* Parse a whole POSIX TZ string (RFC 8536 section 3.3.1 extensions: hours
 * up to 167 and negative times in the rules). */
static bool parse_posix(const char *p, struct rule *r)
{
    int32_t v;
    memset(r, 0, sizeof *r);
    if (!(p = parse_abbr(p)) || !(p = parse_hms(p, &v, 24)))
        return false;
    r->std_off = -v; /* POSIX counts west of Greenwich as positive */
    if (*p == '\0')
        return true;
    if (!(p = parse_abbr(p)))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (!(p = parse_hms(p, &v, 24)))
            return false;
        r->dst_off = -v;
    }
    if (*p == '\0') {
        /* No rule given: POSIX leaves it to the implementation; take the
         * current US rule, as glibc and the tz code do. */
        return parse_rule_date("M3.2.0", &r->start) && parse_rule_date("M11.1.0", &r->end);
    }
    if (*p != ',' || !(p = parse_rule_date(p + 1, &r->start)))
        return false;
    if (*p != ',' || !(p = parse_rule_date(p + 1, &r->end)))
        return false;
    return *p == '\0';
}

/* Local seconds (in the rule's own time scale) of the change `rd` in year y. */
static int64_t rule_local(int64_t y, const struct rule_date *rd)
{
    int64_t days;
    if (rd->kind == 'J')
        days = at__days_from_civil(y, 1, 1) + rd->n - 1 + (is_leap(y) && rd->n >= 60);
    else if (rd->kind == 'N')
        days = at__days_from_civil(y, 1, 1) + rd->n;
    else {
        int64_t first = at__days_from_civil(y, rd->m, 1);
        int day = (rd->d - at__weekday(first) + 7) % 7 + (rd->w - 1) * 7;
        while (day >= at__days_in_month(y, rd->m))
            day -= 7;
        days = first + day;
    }
    return days * 86400 + rd->time;
}

/* The interval of constant offset around instant u under the rule. */
static void rule_find(const struct rule *r, int64_t u, int32_t *off, int64_t *begin, int64_t *end)
{
    if (!r->has_dst) {
        *off = r->std_off;
        *begin = INT64_MIN;
        *end = INT64_MAX;
        return;
    }
    int64_t y, yy;
    int mm, dd;
    at__civil_from_days(floor_div(u + r->std_off, 86400), &y, &mm, &dd);
    /* Changes of years y-2..y+1, in order; on equal instants the later
     * generated change wins (e.g. "EST5EDT,0/0,J365/25", DST all year). */
    struct change {
        int64_t t;
        int32_t off;
    } pt[8];
    int n = 0;
    for (yy = y - 2; yy <= y + 1; yy++) {
        pt[n].t = rule_local(yy, &r->start) - r->std_off;
        pt[n++].off = r->dst_off;
        pt[n].t = rule_local(yy, &r->end) - r->dst_off;
        pt[n++].off = r->std_off;
    }
    for (int i = 1; i < n; i++) { /* stable insertion sort */
        for (int j = i; j > 0 && pt[j - 1].t > pt[j].t; j--) {
            struct change tmp = pt[j];
            pt[j] = pt[j - 1];
            pt[j - 1] = tmp;
        }
    }
    int k = -1;
    for (int i = 0; i < n; i++)
        if (pt[i].t <= u)
            k = i;
    if (k < 0) { /* cannot happen: y-2's changes are before u */
        *off = r->std_off;
        *begin = INT64_MIN;
        *end = pt[0].t;
        return;
    }
    *off = pt[k].off;
    *begin = pt[k].t;
    *end = k + 1 < n ? pt[k + 1].t : INT64_MAX;
}

/* ------------------------------------------------------------- intervals */

static void tz_find(const struct at__tz *tz, int64_t u, int32_t *off, int64_t *begin, int64_t *end)
{
    int32_t n = tz->ntrans;
    if (n == 0 || u >= tz->trans[n - 1]) {
        int64_t lower = n ? tz->trans[n - 1] : INT64_MIN;
        if (tz->has_rule) {
            rule_find(&tz->rule, u, off, begin, end);
            if (*begin < lower)
                *begin = lower;
        } else {
            *off = tz->off[n ? tz->idx[n - 1] : 0];
            *begin = lower;
            *end = INT64_MAX;
        }
        return;
    }
    if (u < tz->trans[0]) {
        /* RFC 8536: before the first transition, time type 0 */
        *off = tz->off[0];
        *begin = INT64_MIN;
        *end = tz->trans[0];
        return;
    }
    int32_t lo = 0, hi = n - 1; /* trans[lo] <= u < trans[hi] */
    while (hi - lo > 1) {
        int32_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= u)
            lo = mid;
        else
            hi = mid;
    }
    *off = tz->off[tz->idx[lo]];
    *begin = tz->trans[lo];
    *end = tz->trans[lo + 1];
}

int32_t at__tz_offset(const struct at__tz *tz, int64_t utc_s)
{
    int32_t off;
    int64_t b, e;
    tz_find(tz, utc_s, &off, &b, &e);
    return off;
}

int at__tz_local_to_utc(const struct at__tz *tz, int64_t local_s, int64_t *utc_out)
{
    int32_t off;
    int64_t b, e;
    /* Offsets are within (-25 h, +26 h), so every reading of local_s is
     * after local_s - 2 days: start there and walk forward.  The first
     * interval that contains its reading gives the first occurrence; an
     * interval whose reading falls before its beginning means the previous
     * one's reading fell after its end: local_s is in the gap between. */
    tz_find(tz, local_s - 2 * 86400, &off, &b, &e);
    for (int guard = 0; guard < 1000; guard++) {
        int64_t c = local_s - off;
        if (c < b) {
            *utc_out = b;
            return AT__TZ_GAP;
        }
        if (c < e) {
            *utc_out = c;
            if (e != INT64_MAX) {
                int32_t off2;
                int64_t b2, e2;
                tz_find(tz, e, &off2, &b2, &e2);
                if (local_s - off2 >= b2 && local_s - off2 < e2)
                    return AT__TZ_AMBIGUOUS;
            }
            return AT__TZ_UNIQUE;
        }
        tz_find(tz, e, &off, &b, &e);
    }
    *utc_out = local_s - off; /* unreachable with sane data */
    return AT__TZ_UNIQUE;
}

/* ------------------------------------------------------------------ TZif */

static struct at__tz g_utc = {.name = (char *)"UTC", .ntypes = 1, .off = (int32_t[]){0}};

const struct at__tz *at__tz_utc(void)
{
    return &g_utc;
}

const char *at__tz_name(const struct at__tz *tz)
{
    return tz->name;
}

void at__tz_free(struct at__tz *tz)
{
    if (!tz || tz == &g_utc)
        return;
    at__free(tz->name);
    at__free(tz->trans);
    at__free(tz->idx);
    at__free(tz->off);
    at__free(tz);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static void read_counts(struct counts *c, const unsigned char *h)
{
    c->isut = be32(h + 20);
    c->isstd = be32(h + 24);
    c->leap = be32(h + 28);
    c->time = be32(h + 32);
    c->type = be32(h + 36);
    c->chars = be32(h + 40);
}

/* Size of a data block; false if the counts are absurd. */
static bool block_size(const struct counts *c, size_t tsize, size_t *out)
{
    if (c->time > 1000000 || c->type > 256 || c->chars > 65536 || c->leap > 100000 || c->isut > 256 ||
        c->isstd > 256)
        return false;
    *out = (size_t)c->time * (tsize + 1) + (size_t)c->type * 6 + c->chars + (size_t)c->leap * (tsize + 4) +
           c->isstd + c->isut;
    return true;
}

static int corrupt(const char *name, const char *why)
{
    return at__err_set(NULL, AT_ERR_CORRUPT, 0, "time zone '%s': malformed TZif data: %s", name, why);
}

int at__tz_parse(struct at__tz **out, const char *name, const unsigned char *data, size_t len)
{
    *out = NULL;
    if (len < 44 || memcmp(data, "TZif", 4) != 0)
        return at__err_set(NULL, AT_ERR_NOTFOUND, 0, "time zone '%s': not a TZif file", name);
    struct counts c;
    read_counts(&c, data);
    size_t tsize = 4, bsize = 0, pos = 44;
    if (!block_size(&c, 4, &bsize))
        return corrupt(name, "counts out of range");
    bool v2 = data[4] >= '2';
    if (v2) {
        /* Skip the 32-bit block; the 64-bit header and block follow it. */
        if (len - pos < bsize || len - pos - bsize < 44)
            return corrupt(name, "truncated");
        pos += bsize;
        if (memcmp(data + pos, "TZif", 4) != 0)
            return corrupt(name, "second header missing");
        read_counts(&c, data + pos);
        pos += 44;
        tsize = 8;
        if (!block_size(&c, 8, &bsize))
            return corrupt(name, "counts out of range");
    }
    if (c.type == 0)
        return corrupt(name, "no local time types");
    if (len - pos < bsize)
        return corrupt(name, "truncated");
    if ((c.isstd && c.isstd != c.type) || (c.isut && c.isut != c.type))
        return corrupt(name, "indicator counts differ from the type count");
    if (c.leap)
        return at__err_set(NULL, AT_ERR_UNSUPPORTED, 0,
                           "time zone '%s' counts leap seconds; use the zone without \"right/\"", name);

    int rc = AT_ERR_NOMEM;
    struct at__tz *tz = at__calloc(1, sizeof *tz);
    if (!tz)
        goto nomem;
    tz->name = at__strdup(name);
    tz->ntrans = (int32_t)c.time;
    tz->ntypes = (int32_t)c.type;
    tz->trans = at__malloc(c.time ? c.time * sizeof *tz->trans : 1);
    tz->idx = at__malloc(c.time ? c.time : 1);
    tz->off = at__malloc(c.type * sizeof *tz->off);
    if (!tz->name || !tz->trans || !tz->idx || !tz->off)
        goto nomem;
    const unsigned char *p = data + pos;
    for (uint32_t i = 0; i < c.time; i++, p += tsize) {
        tz->trans[i] = tsize == 8 ? be64(p) : (int64_t)(int32_t)be32(p);
        if (i && tz->trans[i] <= tz->trans[i - 1]) {
            rc = corrupt(name, "transitions out of order");
            goto fail;
        }
    }
    for (uint32_t i = 0; i < c.time; i++, p++) {
        if (*p >= c.type) {
            rc = corrupt(name, "transition to a type that does not exist");
            goto fail;
        }
        tz->idx[i] = *p;
    }
    for (uint32_t i = 0; i < c.type; i++, p += 6) {
        int32_t off = (int32_t)be32(p);
        if (off < TZ_OFF_MIN || off > TZ_OFF_MAX) {
            rc = corrupt(name, "UTC offset out of range");
            goto fail;
        }
        tz->off[i] = off;
    }
    /* Instants this far out are never asked for; clamping keeps the
     * interval arithmetic away from overflow (big bang markers are -2^59). */
    for (uint32_t i = 0; i < c.time; i++) {
        if (tz->trans[i] < -(INT64_C(1) << 50) || tz->trans[i] > (INT64_C(1) << 50)) {
            rc = corrupt(name, "transition time out of range");
            goto fail;
        }
    }
    pos += bsize;

    if (v2) {
        /* Footer: "\n" TZ-string "\n". */
        const unsigned char *s = data + pos + 1, *nl = NULL;
        if (pos < len && data[pos] == '\n')
            nl = memchr(s, '\n', len - pos - 1);
        if (!nl) {
            rc = corrupt(name, "footer missing");
            goto fail;
        }
        size_t flen = (size_t)(nl - s);
        if (flen > 0) {
            char buf[128];
            if (flen >= sizeof buf || memchr(s, '\0', flen)) {
                rc = corrupt(name, "footer too long");
                goto fail;
            }
            memcpy(buf, s, flen);
            buf[flen] = '\0';
            if (!parse_posix(buf, &tz->rule)) {
                rc = corrupt(name, "footer is not a POSIX TZ string");
                goto fail;
            }
            tz->has_rule = true;
        }
    }
    *out = tz;
    return 0;
nomem:
    rc = at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory loading time zone '%s'", name);
fail:
    at__tz_free(tz);
    return rc;
}

int at__tz_from_posix(struct at__tz **out, const char *posix)
{
    *out = NULL;
    struct rule r;
    if (!posix || !parse_posix(posix, &r))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "not a POSIX TZ string: '%.100s'",
                           posix ? posix : "(null)");
    struct at__tz *tz = at__calloc(1, sizeof *tz);
    if (tz) {
        tz->name = at__strdup(posix);
        tz->off = at__malloc(sizeof *tz->off);
    }
    if (!tz || !tz->name || !tz->off) {
        at__tz_free(tz);
        return at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
    }
    tz->ntypes = 1;
    tz->off[0] = r.std_off;
    tz->rule = r;
    tz->has_rule = true;
    *out = tz;
    return 0;
}

/* ----------------------------------------------------------------- files */

static int check_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > AT__TZ_NAME_MAX)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "time zone name must be 1..%d bytes", AT__TZ_NAME_MAX);
    if (name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
        return at__err_set(NULL, AT_ERR_INVAL, 0,
                           "time zone name '%s' has an empty or absolute path component", name);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '/' ||
              ch == '_' || ch == '+' || ch == '-'))
            return at__err_set(NULL, AT_ERR_INVAL, 0,
                               "time zone name '%.64s': byte %zu is not one of [A-Za-z0-9/_+-]", name, i);
    }
    /* No '.' is allowed at all, so ".." cannot occur: the name stays inside
     * the zone directory. */
    return 0;
}

static int read_zone_file(unsigned char **buf_out, size_t *len_out, const char *name)
{
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    size_t dl = strlen(dir), nl = strlen(name);
    char *path = at__malloc(dl + nl + 2);
    if (!path)
        return at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
    memcpy(path, dir, dl);
    path[dl] = '/';
    memcpy(path + dl + 1, name, nl + 1);

    int rc = 0;
    unsigned char *buf = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = at__err_set(NULL, AT_ERR_NOTFOUND, 0, "unknown time zone '%s' (no file %s)", name, path);
        else
            rc = at__err_set(NULL, AT_ERR_IO, errno, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = at__err_set(NULL, AT_ERR_NOTFOUND, 0, "unknown time zone '%s' (%s is not a file)", name, path);
        goto out;
    }
    if (st.st_size > TZ_FILE_MAX) {
        rc = at__err_set(NULL, AT_ERR_CORRUPT, 0, "time zone file %s is too large", path);
        goto out;
    }
    size_t cap = (size_t)st.st_size, len = 0;
    buf = at__malloc(cap ? cap : 1);
    if (!buf) {
        rc = at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    while (len < cap) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = at__err_set(NULL, AT_ERR_IO, errno, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    *buf_out = buf;
    *len_out = len;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    at__free(buf);
    at__free(path);
    return rc;
}

/* The cache: a list of immutable zones, only ever appended to (until the
 * test-only clear).  Loads read and parse outside the lock, so a slow disk
 * does not stall other threads' lookups; two threads loading the same new
 * name both parse it and the loser frees its copy. */
static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct at__tz *g_cache;

static struct at__tz *cache_find(const char *name)
{
    for (struct at__tz *z = g_cache; z; z = z->next)
        if (strcmp(z->name, name) == 0)
            return z;
    return NULL;
}

int at__tz_load(const struct at__tz **out, const char *name)
{
    *out = NULL;
    if (!name || strcmp(name, "UTC") == 0) {
        *out = &g_utc;
        return 0;
    }
    int rc = check_name(name);
    if (rc)
        return rc;
    pthread_mutex_lock(&g_cache_mu);
    struct at__tz *z = cache_find(name);
    pthread_mutex_unlock(&g_cache_mu);
    if (z) {
        *out = z;
        return 0;
    }

    unsigned char *buf = NULL;
    size_t len = 0;
    if ((rc = read_zone_file(&buf, &len, name)) != 0)
        return rc;
    struct at__tz *fresh;
    rc = at__tz_parse(&fresh, name, buf, len);
    at__free(buf);
    if (rc)
        return rc;

    pthread_mutex_lock(&g_cache_mu);
    z = cache_find(name);
    if (!z) {
        fresh->next = g_cache;
        g_cache = fresh;
        z = fresh;
        fresh = NULL;
    }
    pthread_mutex_unlock(&g_cache_mu);
    at__tz_free(fresh);
    *out = z;
    return 0;
}

void at__tz_cache_clear(void)
{
    pthread_mutex_lock(&g_cache_mu);
    struct at__tz *z = g_cache;
    g_cache = NULL;
    pthread_mutex_unlock(&g_cache_mu);
    while (z) {
        struct at__tz *next = z->next;
        at__tz_free(z);
        z = next;
    }
}

size_t at__tz_cache_size(void)
{
    size_t n = 0;
    pthread_mutex_lock(&g_cache_mu);
    for (struct at__tz *z = g_cache; z; z = z->next)
        n++;
    pthread_mutex_unlock(&g_cache_mu);
    return n;
}
