/*
 * atctl.c - the atctl command-line tool: main, the command table, global
 * options, error reporting, and the parsers and printers every subcommand
 * shares (durations, RFC 3339 times, payloads, jobs as text and JSON).
 *
 * The subcommands live in atctl_jobs.c (jobs, queues, stats, purge),
 * atctl_sched.c (cron schedules and workflows), atctl_metrics.c
 * (Prometheus text) and atctl_worker.c (running shell commands as
 * handlers).  The manual is man/atctl.1; tests/atctl_test.sh holds the
 * golden-output tests.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atctl.h"

#define DEFAULT_STORE "sqlite:./asynctask.db"

/* The subcommand being run ("cron add"), for error messages. */
static char g_cmd[64] = "";

static const char usage_text[] =
    "usage: atctl [--store URI] [--json] COMMAND [ARGS]\n"
    "\n"
    "Jobs:\n"
    "  enqueue TYPE [--payload TEXT|@FILE] [--delay DUR|--at TIME] [--queue Q]\n"
    "          [--priority N] [--key KEY] [--max-attempts N]\n"
    "  show ID\n"
    "  list [--queue Q] [--state S] [--limit N]\n"
    "  cancel ID\n"
    "  dead list [--queue Q] | dead requeue ID | dead requeue --all [--queue Q]\n"
    "  purge [--older-than DUR]\n"
    "Queues and store:\n"
    "  stats\n"
    "  pause QUEUE | resume QUEUE\n"
    "  metrics [--sample N]\n"
    "Schedules:\n"
    "  cron add NAME EXPR --type TYPE [--tz ZONE] [--payload TEXT|@FILE] [--queue Q]\n"
    "           [--priority N] [--max-attempts N] [--misfire skip|once|all]\n"
    "  cron list | cron rm NAME | cron pause NAME | cron resume NAME\n"
    "Workflows:\n"
    "  workflow submit FILE.json | workflow show ID\n"
    "Workers:\n"
    "  worker --exec TYPE=COMMAND ... [--queue Q ...] [--concurrency N]\n"
    "         [--timeout DUR] [--kill-after DUR] [--grace DUR] [--quiet]\n"
    "\n"
    "The store is --store URI, else $ATCTL_STORE, else " DEFAULT_STORE ".\n"
    "Durations: 500ms, 90s, 1h30m, 7d.  Times: RFC 3339 (2026-12-01T09:00:00Z).\n"
    "Exit status: 0 ok, 1 operation failed, 2 usage error, 3 not found,\n"
    "4 conflict with the current state, 5 not supported by the backend.\n"
    "See atctl(1).\n";

/* ---------------------------------------------------------------- errors */

int atctl_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "atctl: %s%sAT_ERR_INVAL: ", g_cmd, g_cmd[0] ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return ATCTL_EXIT_USAGE;
}

int atctl_exit_code(int rc)
{
    switch (rc) {
    case 0:
        return ATCTL_EXIT_OK;
    case AT_ERR_NOTFOUND:
        return ATCTL_EXIT_NOTFOUND;
    case AT_ERR_TERMINAL:
    case AT_ERR_STATE:
    case AT_ERR_DUPLICATE:
    case AT_ERR_EXISTS:
    case AT_ERR_STALE:
    case AT_ERR_CANCELLED:
        return ATCTL_EXIT_CONFLICT;
    case AT_ERR_UNSUPPORTED:
    case AT_ERR_NOBACKEND:
        return ATCTL_EXIT_UNSUPPORTED;
    /* Codes that judge what the user typed, not the store's health. */
    case AT_ERR_INVAL:
    case AT_ERR_NAME:
    case AT_ERR_RANGE:
    case AT_ERR_URI:
    case AT_ERR_CYCLE:
    case AT_ERR_TOOBIG:
        return ATCTL_EXIT_USAGE;
    default:
        return ATCTL_EXIT_FAILED;
    }
}

int atctl_fail(atctl *a, int rc, const char *what)
{
    char detail[1024] = "";
    if (a && a->store)
        at_store_errmsg(a->store, detail, sizeof detail, NULL);
    else
        snprintf(detail, sizeof detail, "%s", at_last_error());
    /* AT_ERR_NOTFOUND's sentence says "no such job", which misleads for
     * schedules, workflows and zones; the detail names what is missing. */
    if (rc == AT_ERR_NOTFOUND && detail[0]) {
        fprintf(stderr, "atctl: %s: %s: %s\n", g_cmd, at_err_name(rc), detail);
        return atctl_exit_code(rc);
    }
    fprintf(stderr, "atctl: %s: %s: %s", g_cmd, at_err_name(rc), at_strerror(rc));
    if (detail[0])
        fprintf(stderr, " (%s)", detail);
    else if (what)
        fprintf(stderr, " (%s)", what);
    fputc('\n', stderr);
    return atctl_exit_code(rc);
}

int atctl_open(atctl *a)
{
    if (a->store)
        return 0;
    int rc = at_store_open(&a->store, a->store_uri);
    if (rc < 0) {
        const char *d = at_last_error();
        fprintf(stderr, "atctl: %s: %s: %s (%s%s%s)\n", g_cmd, at_err_name(rc), at_strerror(rc), a->store_uri,
                d && d[0] ? ": " : "", d ? d : "");
        /* A store that cannot be opened is an operation failure even when
         * the URI is malformed: the user may not have typed it (ATCTL_STORE). */
        return rc == AT_ERR_NOBACKEND ? ATCTL_EXIT_UNSUPPORTED : ATCTL_EXIT_FAILED;
    }
    return 0;
}

/* --------------------------------------------------------------- options */

static const atctl_optdef *find_def(const atctl_optdef *defs, const char *name, size_t len)
{
    for (const atctl_optdef *d = defs; d && d->name; d++)
        if (strlen(d->name) == len && memcmp(d->name, name, len) == 0)
            return d;
    return NULL;
}

int atctl_parse(atctl_args *out, atctl *a, const char *cmd, int argc, char **argv, const atctl_optdef *defs)
{
    static const atctl_optdef global[] = {{"store", 1}, {"json", 0}, {NULL, 0}};
    memset(out, 0, sizeof *out);
    int opts_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (opts_done || arg[0] != '-' || arg[1] == '\0') {
            if (out->npos == ATCTL_MAX_ARGS)
                return atctl_usage("too many arguments");
            out->pos[out->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            opts_done = 1;
            continue;
        }
        if (arg[1] != '-')
            return atctl_usage("unknown option %s (options are long: --name; see atctl %s --help)", arg, cmd);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const atctl_optdef *d = find_def(defs, name, len);
        int is_global = 0;
        if (!d) {
            d = find_def(global, name, len);
            is_global = d != NULL;
        }
        if (!d)
            return atctl_usage("unknown option --%.*s for %s (see atctl --help)", (int)len, name, cmd);
        const char *val = NULL;
        if (d->has_arg) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return atctl_usage("option --%s needs a value", d->name);
        } else if (eq) {
            return atctl_usage("option --%s takes no value", d->name);
        }
        if (is_global) {
            if (strcmp(d->name, "store") == 0)
                a->store_uri = val;
            else
                a->json = 1;
            continue;
        }
        if (out->nopt == ATCTL_MAX_ARGS)
            return atctl_usage("too many options");
        out->opt_name[out->nopt] = d->name;
        out->opt_val[out->nopt] = val;
        out->nopt++;
    }
    return 0;
}

const char *atctl_opt(const atctl_args *args, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < args->nopt; i++)
        if (strcmp(args->opt_name[i], name) == 0)
            v = args->opt_val[i];
    return v;
}

int atctl_flag(const atctl_args *args, const char *name)
{
    for (int i = 0; i < args->nopt; i++)
        if (strcmp(args->opt_name[i], name) == 0)
            return 1;
    return 0;
}

int atctl_want_pos(const atctl_args *args, const char *cmd, int n, const char *names)
{
    if (args->npos < n)
        return atctl_usage("missing argument: atctl %s %s", cmd, names);
    if (args->npos > n)
        return atctl_usage("unexpected argument \"%s\" (atctl %s %s)", args->pos[n], cmd, names);
    return 0;
}

/* --------------------------------------------------------------- parsing */

int atctl_parse_int(int64_t *out, const char *text, const char *what, int64_t min, int64_t max)
{
    const char *p = text;
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return atctl_usage("%s \"%s\": not an integer", what, text);
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0')
        return atctl_usage("%s \"%s\": not an integer", what, text);
    if (errno == ERANGE || v < min || v > max)
        return atctl_usage("%s \"%s\": out of range %lld..%lld", what, text, (long long)min, (long long)max);
    *out = v;
    return 0;
}

int atctl_parse_duration(int64_t *ms_out, const char *text, const char *what)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    const char *p = text;
    int64_t total = 0;
    int last = -1; /* index of the previous unit: units must strictly descend */
    if (*p == '\0')
        return atctl_usage("%s: empty duration (examples: 500ms, 90s, 1h30m, 7d)", what);
    while (*p) {
        if (*p < '0' || *p > '9')
            return atctl_usage("%s \"%s\": expected a number at \"%s\" (examples: 500ms, 90s, 1h30m, 7d)",
                               what, text, p);
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n > (INT64_MAX - 9) / 10)
                return atctl_usage("%s \"%s\": too large", what, text);
            n = n * 10 + (*p++ - '0');
        }
        const char *u = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
            p++;
        size_t ulen = (size_t)(p - u);
        if (ulen == 0)
            return atctl_usage("%s \"%s\": number without a unit (use d, h, m, s or ms)", what, text);
        int idx = -1;
        for (int i = 0; i < 5; i++)
            if (strlen(units[i].unit) == ulen && memcmp(units[i].unit, u, ulen) == 0)
                idx = i;
        if (idx < 0)
            return atctl_usage("%s \"%s\": unknown unit \"%.*s\" (use d, h, m, s or ms)", what, text,
                               (int)ulen, u);
        if (idx <= last)
            return atctl_usage("%s \"%s\": units must go from largest to smallest, each once", what, text);
        last = idx;
        if (n > (INT64_MAX - total) / units[idx].ms)
            return atctl_usage("%s \"%s\": too large", what, text);
        total += n * units[idx].ms;
    }
    *ms_out = total;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), exact over the whole range RFC 3339 allows. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int atctl_parse_time(int64_t *ms_out, const char *text, const char *what)
{
    static const char form[] = "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)";
    const char *p = text;
    int y, mo, d, h, mi, s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return atctl_usage("%s \"%s\": not an RFC 3339 time (%s)", what, text, form);
    if (*p != 'T' && *p != 't')
        return atctl_usage("%s \"%s\": expected 'T' between date and time (%s)", what, text, form);
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &s))
        return atctl_usage("%s \"%s\": not an RFC 3339 time (%s)", what, text, form);
    int ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0)
            return atctl_usage("%s \"%s\": no digits after the decimal point", what, text);
        for (; nd < 3; nd++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return atctl_usage("%s \"%s\": bad UTC offset (+HH:MM or -HH:MM)", what, text);
        offset_min = sign * (oh * 60 + om);
    } else {
        return atctl_usage("%s \"%s\": missing time zone (end with Z or an offset like +01:00)", what, text);
    }
    if (*p != '\0')
        return atctl_usage("%s \"%s\": unexpected \"%s\" after the time", what, text, p);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12)
        return atctl_usage("%s \"%s\": month %02d out of range 01..12", what, text, mo);
    if (d < 1 || d > mdays[mo - 1] + (mo == 2 && leap))
        return atctl_usage("%s \"%s\": day %02d out of range for %04d-%02d", what, text, d, y, mo);
    if (h > 23 || mi > 59)
        return atctl_usage("%s \"%s\": time of day out of range", what, text);
    if (s > 59)
        return atctl_usage("%s \"%s\": second %02d out of range (leap seconds are not supported)", what, text,
                           s);
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - (int64_t)offset_min * 60;
    if (secs < 0)
        return atctl_usage("%s \"%s\": before 1970-01-01T00:00:00Z", what, text);
    *ms_out = secs * 1000 + ms;
    return 0;
}

int atctl_load_payload(char **buf_out, size_t *len_out, const char *arg)
{
    *buf_out = NULL;
    *len_out = 0;
    if (!arg)
        return 0;
    if (arg[0] != '@') {
        size_t n = strlen(arg);
        *buf_out = malloc(n + 1);
        if (!*buf_out)
            return atctl_usage("out of memory");
        memcpy(*buf_out, arg, n + 1);
        *len_out = n;
        return 0;
    }
    const char *path = arg + 1;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return atctl_usage("--payload @%s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
        if (len == cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int err = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf)
        return atctl_usage("--payload @%s: out of memory", path);
    if (err) {
        free(buf);
        return atctl_usage("--payload @%s: read error", path);
    }
    *buf_out = buf;
    *len_out = len;
    return 0;
}

/* ------------------------------------------------------------- printing */

/* The civil date of a day count (Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int *y_out, int *m_out, int *d_out)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    *y_out = (int)(y + (m <= 2));
    *m_out = (int)m;
    *d_out = (int)d;
}

const char *atctl_fmt_time(char *buf, int64_t ms)
{
    if (ms == AT_TIME_NONE || ms < 0) {
        strcpy(buf, "-");
        return buf;
    }
    int64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60),
             (int)(rem % 60), (int)(ms % 1000));
    return buf;
}

const char *atctl_fmt_duration(char *buf, size_t len, int64_t ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t off = 0;
    buf[0] = '\0';
    if (ms <= 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    for (int i = 0; i < 5 && off < len; i++) {
        if (ms >= units[i].ms) {
            int n = snprintf(buf + off, len - off, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            off += n > 0 ? (size_t)n : 0;
            ms %= units[i].ms;
        }
    }
    return buf;
}

json_t *atctl_json_time(int64_t ms)
{
    if (ms == AT_TIME_NONE || ms < 0)
        return json_null();
    char buf[32];
    return json_string(atctl_fmt_time(buf, ms));
}

json_t *atctl_json_bytes(const void *bytes, size_t len)
{
    if (memchr(bytes, '\0', len))
        return NULL;
    /* json_stringn refuses invalid UTF-8, which is the test we need. */
    return json_stringn(bytes, len);
}

static json_t *base64(const unsigned char *b, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen = (len + 2) / 3 * 4;
    char *out = malloc(olen + 1);
    if (!out)
        return json_null();
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)b[i + 1] << 8;
        if (i + 2 < len)
            v |= b[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    json_t *s = json_string(out);
    free(out);
    return s;
}

void atctl_json_set_bytes(json_t *obj, const char *key, const void *bytes, size_t len)
{
    if (!bytes) {
        json_object_set_new(obj, key, json_null());
        return;
    }
    json_t *s = atctl_json_bytes(bytes, len);
    if (s) {
        json_object_set_new(obj, key, s);
        return;
    }
    char k[64];
    snprintf(k, sizeof k, "%s_base64", key);
    json_object_set_new(obj, k, base64(bytes, len));
}

void atctl_json_print(json_t *value)
{
    json_dumpf(value, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(value);
}

void atctl_print_quoted(FILE *f, const void *bytes, size_t len)
{
    const unsigned char *b = bytes;
    /* Valid UTF-8 text is shown as it is (but for control characters);
     * anything else byte by byte, so the terminal never gets raw binary. */
    json_t *probe = atctl_json_bytes(bytes, len);
    int text = probe != NULL;
    json_decref(probe);
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = b[i];
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        default:
            if (c < 0x20 || c == 0x7f || (c >= 0x80 && !text))
                fprintf(f, "\\x%02x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

const char *atctl_policy_name(int32_t p)
{
    switch (p) {
    case AT_PARENT_FAIL_CANCEL:
        return "cancel";
    case AT_PARENT_FAIL_RUN:
        return "run";
    case AT_PARENT_FAIL_DEAD:
        return "dead";
    default:
        return "unknown";
    }
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *atctl_job_json(const at_job *job)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(at_job_id(job)));
    json_object_set_new(o, "type", json_string(at_job_type(job)));
    json_object_set_new(o, "queue", json_string(at_job_queue(job)));
    json_object_set_new(o, "state", str_or_null(at_state_name(at_job_state(job))));
    json_object_set_new(o, "priority", json_integer(at_job_priority(job)));
    json_object_set_new(o, "attempts", json_integer(at_job_attempts(job)));
    json_object_set_new(o, "max_attempts", json_integer(at_job_max_attempts(job)));
    json_object_set_new(o, "created", atctl_json_time(at_job_time(job, AT_JOB_TIME_CREATED)));
    json_object_set_new(o, "run_at", atctl_json_time(at_job_time(job, AT_JOB_TIME_RUN_AT)));
    json_object_set_new(o, "started", atctl_json_time(at_job_time(job, AT_JOB_TIME_STARTED)));
    json_object_set_new(o, "lease_until", atctl_json_time(at_job_time(job, AT_JOB_TIME_LEASE)));
    json_object_set_new(o, "finished", atctl_json_time(at_job_time(job, AT_JOB_TIME_FINISHED)));
    json_object_set_new(o, "updated", atctl_json_time(at_job_time(job, AT_JOB_TIME_UPDATED)));
    json_object_set_new(o, "idempotency_key", str_or_null(at_job_idempotency_key(job)));
    json_object_set_new(o, "cancel_requested", json_boolean(at_job_cancel_requested(job)));
    size_t len;
    const void *p = at_job_payload(job, &len);
    atctl_json_set_bytes(o, "payload", p, len);
    p = at_job_result(job, &len);
    atctl_json_set_bytes(o, "result", p, len);
    json_object_set_new(o, "last_error", str_or_null(at_job_last_error(job)));
    json_object_set_new(o, "workflow_id", str_or_null(at_job_workflow_id(job)));
    json_object_set_new(o, "node", str_or_null(at_job_node(job)));
    json_t *parents = json_array();
    for (size_t i = 0; i < at_job_parent_count(job); i++)
        json_array_append_new(parents, json_string(at_job_parent_id(job, i)));
    json_object_set_new(o, "parents", parents);
    if (at_job_parent_count(job)) {
        json_object_set_new(o, "parents_left", json_integer(at_job_parents_left(job)));
        json_object_set_new(o, "on_parent_failure",
                            json_string(atctl_policy_name(at_job_parent_policy(job))));
    }
    return o;
}

void atctl_progress(const char *fmt, ...)
{
    static int shown;
    if (!isatty(STDERR_FILENO))
        return;
    if (!fmt) {
        if (shown)
            fputs("\r\033[K", stderr);
        shown = 0;
        return;
    }
    va_list ap;
    fputs("\r\033[K", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    shown = 1;
}

/* ---------------------------------------------------------------- tables */

struct atctl_table {
    int ncols;
    const int *right;
    size_t nrows, cap;
    char **cells; /* row-major, nrows + 1 rows (headers first) */
    int oom;
};

atctl_table *atctl_table_new(int ncols, const char *const *headers, const int *right)
{
    atctl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->right = right;
    atctl_table_add(t, headers);
    return t;
}

void atctl_table_add(atctl_table *t, const char *const *cells)
{
    if (!t || t->oom)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * (size_t)t->ncols * sizeof *nc);
        if (!nc) {
            t->oom = 1;
            return;
        }
        t->cells = nc;
        t->cap = cap;
    }
    for (int c = 0; c < t->ncols; c++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = strdup(cells[c] ? cells[c] : "");
    t->nrows++;
}

void atctl_table_print(atctl_table *t)
{
    if (!t)
        return;
    if (t->oom)
        fprintf(stderr, "atctl: %s: AT_ERR_NOMEM: out of memory (table truncated)\n", g_cmd);
    size_t width[32] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols && c < 32; c++) {
            const char *cell = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t w = cell ? strlen(cell) : 0;
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        /* Cells go through one line buffer so that trailing padding can be
         * cut: golden files and diffs stay free of trailing blanks. */
        size_t need = 1;
        for (int c = 0; c < t->ncols; c++)
            need += width[c < 32 ? c : 31] + 2;
        char *line = malloc(need);
        size_t off = 0;
        for (int c = 0; c < t->ncols; c++) {
            char *cell = t->cells[r * (size_t)t->ncols + (size_t)c];
            const char *v = cell ? cell : "";
            int w = (int)width[c < 32 ? c : 31];
            if (line) {
                int n = t->right && t->right[c] ? snprintf(line + off, need - off, "%*s", w, v)
                                                : snprintf(line + off, need - off, "%-*s", w, v);
                off += n > 0 ? (size_t)n : 0;
                if (c < t->ncols - 1 && off + 2 < need) {
                    memcpy(line + off, "  ", 3);
                    off += 2;
                }
            }
            free(cell);
        }
        if (line) {
            while (off > 0 && line[off - 1] == ' ')
                off--;
            line[off] = '\0';
            puts(line);
            free(line);
        }
    }
    free(t->cells);
    free(t);
}

/* ----------------------------------------------------------------- main */

typedef struct command {
    const char *name;
    int (*run)(atctl *a, int argc, char **argv);
} command;

static const command commands[] = {
    {"enqueue", atctl_cmd_enqueue},   {"show", atctl_cmd_show},
    {"list", atctl_cmd_list},         {"cancel", atctl_cmd_cancel},
    {"dead", atctl_cmd_dead},         {"stats", atctl_cmd_stats},
    {"purge", atctl_cmd_purge},       {"pause", atctl_cmd_pause},
    {"resume", atctl_cmd_resume},     {"cron", atctl_cmd_cron},
    {"workflow", atctl_cmd_workflow}, {"metrics", atctl_cmd_metrics},
    {"worker", atctl_cmd_worker},     {NULL, NULL},
};

/* Set the command name used in messages ("cron add"). */
static void set_cmd(const char *name, int argc, char **argv)
{
    int n = snprintf(g_cmd, sizeof g_cmd, "%s", name);
    /* Commands with subcommands name both words. */
    if (argc > 0 && argv[0][0] != '-' &&
        (strcmp(name, "cron") == 0 || strcmp(name, "workflow") == 0 || strcmp(name, "dead") == 0) && n > 0 &&
        (size_t)n < sizeof g_cmd)
        snprintf(g_cmd + n, sizeof g_cmd - (size_t)n, " %s", argv[0]);
}

int main(int argc, char **argv)
{
    atctl a = {0};
    const char *env = getenv("ATCTL_STORE");
    a.store_uri = env && env[0] ? env : DEFAULT_STORE;
    int i = 1;
    /* Global options before the command; commands accept them too. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(arg, "--version") == 0) {
            printf("atctl %s (libasynctask %s)\n", PACKAGE_VERSION, at_version());
            return 0;
        } else if (strcmp(arg, "--json") == 0) {
            a.json = 1;
        } else if (strcmp(arg, "--store") == 0 && i + 1 < argc) {
            a.store_uri = argv[++i];
        } else if (strncmp(arg, "--store=", 8) == 0) {
            a.store_uri = arg + 8;
        } else if (strcmp(arg, "--store") == 0) {
            return atctl_usage("option --store needs a value");
        } else {
            atctl_usage("unknown option %s", arg);
            fputs(usage_text, stderr);
            return ATCTL_EXIT_USAGE;
        }
    }
    if (i == argc) {
        atctl_usage("no command given");
        fputs(usage_text, stderr);
        return ATCTL_EXIT_USAGE;
    }
    const char *name = argv[i++];
    for (const command *c = commands; c->name; c++) {
        if (strcmp(c->name, name) != 0)
            continue;
        for (int j = i; j < argc && strcmp(argv[j], "--") != 0; j++)
            if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
                fputs(usage_text, stdout);
                return 0;
            }
        set_cmd(name, argc - i, argv + i);
        int rc = c->run(&a, argc - i, argv + i);
        at_store_close(a.store);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "atctl: %s: AT_ERR_IO: writing standard output failed\n", g_cmd);
            return rc ? rc : ATCTL_EXIT_FAILED;
        }
        return rc;
    }
    atctl_usage("unknown command \"%s\"", name);
    fputs(usage_text, stderr);
    return ATCTL_EXIT_USAGE;
}
