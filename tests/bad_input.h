/*
 * bad_input.h - shared by the bad-input table (tests/bad_input.c) and the
 * hostile-store tests (tests/hostile_sqlite.c): a canonical text dump of a
 * store made through the public API only, so two dumps taken around a call
 * that must change nothing are compared byte for byte.
 *
 * The dump holds every job of every queue (listed page by page, then read
 * one by one with at_get: every field, payload and result in hex), the
 * stats, the paused flag of every listed queue and of `extra_queues`, every
 * schedule, the counts and job ids of every workflow a job belongs to, and
 * the handle's store options.  A call that fails returns it with a line
 * naming the failing call, so a dump never hides an error.
 */
#ifndef AT_TESTS_BAD_INPUT_H
#define AT_TESTS_BAD_INPUT_H

#include "asynctask.h"

/* A malloc'd NUL-terminated dump of `store` (free() it).  extra_queues: a
 * NULL-terminated list of queue names whose paused flag is dumped even when
 * they hold no job (may be NULL). */
char *bi_dump(at_store *store, const char *const *extra_queues);

#endif /* AT_TESTS_BAD_INPUT_H */
