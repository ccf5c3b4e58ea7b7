/*
 * opts.c - per-job enqueue options, set by number through two typed setters
 * so the set can grow without changing any struct a binding has mirrored.
 *
 * Each setter validates its own value (range, charset); rules that relate
 * two options (cap >= base) are checked by at_enqueue, when all are known.
 */
#include <string.h>

#include "internal.h"

#define OPTS_MAGIC 0x616f7074u /* "aopt" */

AT_EXTERN int at_opts_new(at_opts **out)
{
    if (!out)
        return AT_ERR_INVAL;
    *out = at__malloc(sizeof **out);
    if (!*out)
        return AT_ERR_NOMEM;
    at__opts_init(*out);
    return 0;
}

AT_EXTERN void at_opts_free(at_opts *o)
{
    if (!o || o->magic != OPTS_MAGIC)
        return;
    at__free(o->idem_key);
    o->magic = 0;
    at__free(o);
}

void at__opts_init(at_opts *o)
{
    o->magic = OPTS_MAGIC;
    o->idem_key = NULL;
    o->queue[0] = '\0';
    o->traceparent[0] = '\0';
    o->priority = o->run_at = o->delay_ms = o->max_attempts = AT__UNSET;
    o->backoff_base_ms = o->backoff_cap_ms = o->backoff_jitter = o->lease_ms = o->idem_ttl_ms = AT__UNSET;
}

AT_EXTERN void at_opts_reset(at_opts *o)
{
    if (!o || o->magic != OPTS_MAGIC)
        return;
    at__free(o->idem_key);
    at__opts_init(o);
}

static int range(int64_t v, int64_t lo, int64_t hi, const char *what)
{
    if (v < lo || v > hi)
        return at__err_set(NULL, AT_ERR_RANGE, 0, "%s %lld is outside %lld..%lld", what, (long long)v,
                           (long long)lo, (long long)hi);
    return 0;
}

AT_EXTERN int at_opts_set_int(at_opts *o, int32_t option, int64_t v)
{
    at__err_clear();
    if (!o || o->magic != OPTS_MAGIC)
        return AT_ERR_INVAL;
    int rc;
    switch (option) {
    case AT_OPT_PRIORITY:
        if ((rc = range(v, -AT_PRIORITY_MAX, AT_PRIORITY_MAX, "priority")))
            return rc;
        o->priority = v;
        return 0;
    case AT_OPT_RUN_AT:
        if ((rc = range(v, 0, INT64_MAX / 4, "run_at")))
            return rc;
        o->run_at = v;
        o->delay_ms = AT__UNSET; /* the two ways to say "when" exclude each other */
        return 0;
    case AT_OPT_DELAY_MS:
        if ((rc = range(v, 0, 100 * AT__YEAR_MS, "delay_ms")))
            return rc;
        o->delay_ms = v;
        o->run_at = AT__UNSET;
        return 0;
    case AT_OPT_MAX_ATTEMPTS:
        if ((rc = range(v, 1, AT__MAX_ATTEMPTS_LIMIT, "max_attempts")))
            return rc;
        o->max_attempts = v;
        return 0;
    case AT_OPT_BACKOFF_BASE_MS:
        if ((rc = range(v, 0, AT__YEAR_MS, "backoff base")))
            return rc;
        o->backoff_base_ms = v;
        return 0;
    case AT_OPT_BACKOFF_CAP_MS:
        if ((rc = range(v, 0, AT__YEAR_MS, "backoff cap")))
            return rc;
        o->backoff_cap_ms = v;
        return 0;
    case AT_OPT_BACKOFF_JITTER:
        if ((rc = range(v, 0, 1000, "backoff jitter (permille)")))
            return rc;
        o->backoff_jitter = v;
        return 0;
    case AT_OPT_LEASE_MS:
        if ((rc = range(v, 1, AT__DAY_MS, "lease_ms")))
            return rc;
        o->lease_ms = v;
        return 0;
    case AT_OPT_IDEMPOTENCY_TTL_MS:
        if ((rc = range(v, 1, 100 * AT__YEAR_MS, "idempotency ttl")))
            return rc;
        o->idem_ttl_ms = v;
        return 0;
    case AT_OPT_QUEUE:
    case AT_OPT_IDEMPOTENCY_KEY:
        return at__err_set(NULL, AT_ERR_INVAL, 0, "option %d takes a string: use at_opts_set_str", (int)option);
    default:
        return at__err_set(NULL, AT_ERR_INVAL, 0, "unknown option %d", (int)option);
    }
}

/* W3C Trace Context, section 3.2: version-traceid-parentid-flags. */
static bool traceparent_ok(const char *v)
{
    static const int len[4] = {2, 32, 16, 2};
    const char *p = v;
    for (int f = 0; f < 4; f++) {
        bool nonzero = false;
        for (int i = 0; i < len[f]; i++, p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                return false;
            nonzero |= *p != '0';
        }
        if ((f == 1 || f == 2) && !nonzero)
            return false;
        if (f < 3 && *p++ != '-')
            return false;
    }
    return *p == '\0' && strncmp(v, "ff", 2) != 0;
}

AT_EXTERN int at_opts_set_str(at_opts *o, int32_t option, const char *v)
{
    at__err_clear();
    if (!o || o->magic != OPTS_MAGIC)
        return AT_ERR_INVAL;
    switch (option) {
    case AT_OPT_QUEUE:
        if (!v) {
            o->queue[0] = '\0';
            return 0;
        }
        if (at__check_name(v))
            return at__err_set(NULL, AT_ERR_NAME, 0, "queue name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
        strcpy(o->queue, v);
        return 0;
    case AT_OPT_IDEMPOTENCY_KEY: {
        if (!v) {
            at__free(o->idem_key);
            o->idem_key = NULL;
            return 0;
        }
        if (at__check_key(v))
            return at__err_set(NULL, AT_ERR_NAME, 0,
                               "idempotency key must be 1..%d of [A-Za-z0-9._:-/@+=#]", AT_KEY_MAX);
        char *k = at__strdup(v);
        if (!k)
            return AT_ERR_NOMEM;
        at__free(o->idem_key);
        o->idem_key = k;
        return 0;
    }
    case AT_OPT_TRACEPARENT:
        if (!v) {
            o->traceparent[0] = '\0';
            return 0;
        }
        if (!traceparent_ok(v))
            return at__err_set(NULL, AT_ERR_INVAL, 0,
                               "traceparent must be W3C trace context: 2 hex version (not ff), 32 hex trace id, "
                               "16 hex parent id (neither all zero), 2 hex flags, separated by '-', lower case");
        memcpy(o->traceparent, v, 56);
        return 0;
    default:
        if (option >= AT_OPT_PRIORITY && option <= AT_OPT_IDEMPOTENCY_TTL_MS)
            return at__err_set(NULL, AT_ERR_INVAL, 0, "option %d takes an integer: use at_opts_set_int",
                               (int)option);
        return at__err_set(NULL, AT_ERR_INVAL, 0, "unknown option %d", (int)option);
    }
}
