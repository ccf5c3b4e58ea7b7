/*
 * atctl.h - what the files of the atctl tool share: the command table, exit
 * codes, error reporting, the option parser, parsing of durations,
 * timestamps and payloads, and the job printers.
 *
 * atctl is a thin client: every subcommand is a few calls of the public API
 * (asynctask.h) on a store opened from --store, so what it shows is what an
 * application linking the library would see.
 */
#ifndef ATCTL_H
#define ATCTL_H

#include <stdint.h>
#include <stdio.h>

#include <asynctask.h>
#include <jansson.h>

/* Exit codes, documented in atctl(1). */
#define ATCTL_EXIT_OK 0
#define ATCTL_EXIT_FAILED 1      /* the store refused or failed the operation */
#define ATCTL_EXIT_USAGE 2       /* bad command line or input document */
#define ATCTL_EXIT_NOTFOUND 3    /* no such job, schedule or workflow */
#define ATCTL_EXIT_CONFLICT 4    /* not allowed in the current state, duplicate key */
#define ATCTL_EXIT_UNSUPPORTED 5 /* the store's backend cannot do it */

/* What every subcommand gets: the global options and the store, opened
 * lazily so that usage errors are reported without touching the store. */
typedef struct atctl {
    const char *store_uri;
    int json;
    at_store *store;
} atctl;

/* ---------------------------------------------------------------- errors */

/* Print "atctl: COMMAND: AT_ERR_INVAL: message" to stderr and return the
 * usage exit code.  For errors atctl finds itself in its arguments or input
 * files: they carry AT_ERR_INVAL so that every error line names a code. */
int atctl_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a failed library call `what` with its code, at_strerror and the
 * store's detail message (at_last_error() when st is NULL); returns the
 * exit code that the error maps to. */
int atctl_fail(atctl *a, int rc, const char *what);
/* The exit code for an AT_ERR_* code. */
int atctl_exit_code(int rc);

/* Open the store of --store / ATCTL_STORE once; 0 or an exit code. */
int atctl_open(atctl *a);

/* --------------------------------------------------------------- options */

/* A command's options: name without dashes, and whether it takes a value.
 * The parser also accepts the global --store URI and --json anywhere. */
typedef struct atctl_optdef {
    const char *name;
    int has_arg;
} atctl_optdef;

#define ATCTL_MAX_ARGS 64

/* Parsed options in command-line order (repeatable options appear more
 * than once) and the positional arguments. */
typedef struct atctl_args {
    int nopt;
    const char *opt_name[ATCTL_MAX_ARGS];
    const char *opt_val[ATCTL_MAX_ARGS];
    int npos;
    const char *pos[ATCTL_MAX_ARGS];
} atctl_args;

/* Parse argv (after the subcommand words) into *out; "--" ends the options.
 * Returns 0 or, after printing the reason, ATCTL_EXIT_USAGE.  `cmd` names
 * the command in messages. */
int atctl_parse(atctl_args *out, atctl *a, const char *cmd, int argc, char **argv, const atctl_optdef *defs);
/* The last value of option `name`, or NULL. */
const char *atctl_opt(const atctl_args *args, const char *name);
/* 1 if the flag `name` was given. */
int atctl_flag(const atctl_args *args, const char *name);
/* Require exactly n positional arguments (`names` for the message). */
int atctl_want_pos(const atctl_args *args, const char *cmd, int n, const char *names);

/* --------------------------------------------------------------- parsing */

/* "90s", "1h30m", "500ms", "7d": units d, h, m, s, ms, each at most once and
 * largest first.  0 or ATCTL_EXIT_USAGE (message printed, naming `what`). */
int atctl_parse_duration(int64_t *ms_out, const char *text, const char *what);
/* RFC 3339: 2026-12-01T09:00:00Z, 2026-12-01T10:00:00.250+01:00. */
int atctl_parse_time(int64_t *ms_out, const char *text, const char *what);
/* A decimal integer in [min, max]. */
int atctl_parse_int(int64_t *out, const char *text, const char *what, int64_t min, int64_t max);
/* --payload TEXT, or @FILE (@- for standard input); *buf_out is malloc'ed
 * (NULL for an absent payload, with length 0). */
int atctl_load_payload(char **buf_out, size_t *len_out, const char *arg);

/* ------------------------------------------------------------- printing */

/* "2026-12-01T09:00:00.000Z" into buf (at least 32 bytes); "-" for
 * AT_TIME_NONE.  Returns buf. */
const char *atctl_fmt_time(char *buf, int64_t ms);
/* A duration the way atctl parses them ("1h30m", "250ms", "0s"). */
const char *atctl_fmt_duration(char *buf, size_t len, int64_t ms);
/* An RFC 3339 JSON string, or JSON null for AT_TIME_NONE. */
json_t *atctl_json_time(int64_t ms);
/* Bytes as a JSON string when they are UTF-8 without NUL; NULL otherwise. */
json_t *atctl_json_bytes(const void *bytes, size_t len);
/* Add bytes to obj under `key`, or under "KEY_base64" when they are not
 * text; JSON null for NULL bytes. */
void atctl_json_set_bytes(json_t *obj, const char *key, const void *bytes, size_t len);
/* Print a JSON value to stdout (indented, one trailing newline); steals it. */
void atctl_json_print(json_t *value);
/* Bytes quoted with C escapes for a terminal ("ab\n", "\x00"). */
void atctl_print_quoted(FILE *f, const void *bytes, size_t len);
/* "cancel", "run" or "dead" for an AT_PARENT_FAIL_* policy. */
const char *atctl_policy_name(int32_t policy);
/* The whole job as a JSON object. */
json_t *atctl_job_json(const at_job *job);
/* An aligned text table: cells are copied; columns flagged in `right` are
 * right-aligned (numbers).  atctl_table_print prints and frees it. */
typedef struct atctl_table atctl_table;
atctl_table *atctl_table_new(int ncols, const char *const *headers, const int *right);
void atctl_table_add(atctl_table *t, const char *const *cells);
void atctl_table_print(atctl_table *t);
/* A status line on standard error, only when it is a terminal; NULL clears
 * it. */
void atctl_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------- commands */

/* Each gets argv after its command word(s); returns an exit code. */
int atctl_cmd_enqueue(atctl *a, int argc, char **argv);
int atctl_cmd_show(atctl *a, int argc, char **argv);
int atctl_cmd_list(atctl *a, int argc, char **argv);
int atctl_cmd_cancel(atctl *a, int argc, char **argv);
int atctl_cmd_dead(atctl *a, int argc, char **argv);
int atctl_cmd_stats(atctl *a, int argc, char **argv);
int atctl_cmd_purge(atctl *a, int argc, char **argv);
int atctl_cmd_pause(atctl *a, int argc, char **argv);
int atctl_cmd_resume(atctl *a, int argc, char **argv);
int atctl_cmd_cron(atctl *a, int argc, char **argv);
int atctl_cmd_workflow(atctl *a, int argc, char **argv);
int atctl_cmd_metrics(atctl *a, int argc, char **argv);
int atctl_cmd_worker(atctl *a, int argc, char **argv);

#endif /* ATCTL_H */
