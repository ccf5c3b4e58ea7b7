/*
 * errors.c - error codes, state names, version, and the per-thread detail
 * message.
 *
 * The detail message is thread-local, tagged with the store it belongs to:
 * a handle shared by threads cannot hand one thread another's message, and
 * no lock is taken on the error path.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

AT_EXTERN const char *at_version(void)
{
    return STR(AT_VERSION_MAJOR) "." STR(AT_VERSION_MINOR) "." STR(AT_VERSION_PATCH);
}

AT_EXTERN uint32_t at_version_number(void)
{
    return AT_VERSION_MAJOR * 10000u + AT_VERSION_MINOR * 100u + AT_VERSION_PATCH;
}

AT_EXTERN const char *at_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define X(name, value, msg)                                                                                  \
    case value:                                                                                              \
        return msg;
        AT_ERR_MAP(X)
#undef X
    default:
        return "unknown error";
    }
}

AT_EXTERN const char *at_err_name(int code)
{
    switch (code) {
    case 0:
        return "AT_OK";
#define X(name, value, msg)                                                                                  \
    case value:                                                                                              \
        return "AT_ERR_" #name;
        AT_ERR_MAP(X)
#undef X
    default:
        return "AT_ERR_UNKNOWN";
    }
}

AT_EXTERN const char *at_state_name(int32_t state)
{
    switch (state) {
#define X(name, value, text)                                                                                 \
    case value:                                                                                              \
        return text;
        AT_STATE_MAP(X)
#undef X
    default:
        return NULL;
    }
}

AT_EXTERN int32_t at_state_from_name(const char *name)
{
    if (!name)
        return AT_ERR_INVAL;
#define X(nm, value, text)                                                                                   \
    if (strcmp(name, text) == 0)                                                                             \
        return value;
    AT_STATE_MAP(X)
#undef X
    return AT_ERR_INVAL;
}

static _Thread_local struct {
    const at_store *store;
    int32_t native;
    char msg[512];
} tl_err;

void at__err_clear(void)
{
    tl_err.store = NULL;
    tl_err.native = 0;
    tl_err.msg[0] = '\0';
}

int at__err_setv(const at_store *s, int code, int32_t native, const char *fmt, va_list ap)
{
    tl_err.store = s;
    tl_err.native = native;
    vsnprintf(tl_err.msg, sizeof tl_err.msg, fmt, ap);
    return code;
}

int at__err_set(const at_store *s, int code, int32_t native, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    at__err_setv(s, code, native, fmt, ap);
    va_end(ap);
    return code;
}

AT_EXTERN int at_store_error(at_store *store, int code, int32_t native, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    at__err_setv(store, code, native, fmt ? fmt : "", ap);
    va_end(ap);
    return code;
}

AT_EXTERN size_t at_store_errmsg(const at_store *store, char *buf, size_t len, int32_t *native_out)
{
    const char *m = (store && tl_err.store == store) ? tl_err.msg : "";
    size_t n = strlen(m);
    if (buf && len) {
        size_t c = n < len - 1 ? n : len - 1;
        memcpy(buf, m, c);
        buf[c] = '\0';
    }
    if (native_out)
        *native_out = (store && tl_err.store == store) ? tl_err.native : 0;
    return n;
}

AT_EXTERN const char *at_last_error(void)
{
    return tl_err.store == NULL ? tl_err.msg : "";
}
