/*
 * log.c - the library's log events, handed to the host's callback.
 *
 * Silent by default: a library that writes to stderr on its own pollutes
 * its host's output and cannot be routed to the host's logger.  The callback
 * and level are read without a lock on every event (two atomics), so a
 * disabled level costs one load.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Atomic(at_log_fn) g_fn;
static void *_Atomic g_ud;
static atomic_int g_level;

AT_EXTERN int at_set_log(at_log_fn fn, void *ud, int32_t min_level)
{
    if (min_level < AT_LOG_ERROR || min_level > AT_LOG_DEBUG)
        return at__err_set(NULL, AT_ERR_RANGE, 0, "log level %d is outside %d..%d", (int)min_level, AT_LOG_ERROR,
                           AT_LOG_DEBUG);
    /* Level and data first: a concurrent event that sees the new function
     * sees its data. */
    atomic_store(&g_level, min_level);
    atomic_store(&g_ud, ud);
    atomic_store(&g_fn, fn);
    return 0;
}

bool at__log_enabled(int32_t level)
{
    return atomic_load_explicit(&g_fn, memory_order_relaxed) && level <= atomic_load(&g_level);
}

void at__log(int32_t level, const char *component, const at_job *job, int32_t code, const char *fmt, ...)
{
    at_log_fn fn = atomic_load(&g_fn);
    if (!fn || level > atomic_load(&g_level))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    at_log_record r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    r.level = level;
    r.time_ms = at__real_wall_ns() / 1000000;
    r.component = component;
    r.message = msg;
    r.code = code;
    if (job) {
        r.job_id = at_job_id(job);
        r.queue = at_job_queue(job);
        r.type = at_job_type(job);
        r.attempt = at_job_attempts(job);
    }
    fn(atomic_load(&g_ud), &r);
}
