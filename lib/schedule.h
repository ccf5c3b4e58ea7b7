/*
 * schedule.h - schedule definitions shared by schedule.c (the calls that keep
 * them in the store) and scheduler.c (the leader that fires them); internal.
 */
#ifndef AT_SCHEDULE_H
#define AT_SCHEDULE_H

#include "cron.h"
#include "internal.h"

struct at_schedule {
    uint32_t magic;
    char name[AT_NAME_MAX + 1];
    char *expr, *tz, *type; /* tz NULL: UTC */
    void *payload;
    size_t payload_len;
    at_opts opts; /* never an idempotency key, run_at or delay */
    int32_t misfire, cap;
    int64_t grace_ms;
    struct at__cron *cron;
    const struct at__tz *zone;
    /* Read back from the store (AT_TIME_NONE / 0 / "" in definitions). */
    int32_t paused;
    int64_t created_at, updated_at, last_fire_at;
    char last_job_id[AT_ID_SIZE];
};

/* The stored form of a definition (at__malloc'd bytes) and back. */
int at__sched_encode(const at_schedule *s, void **out, size_t *len_out);
int at__sched_decode(at_schedule **out, const at_sched_row *row);
/* 1 if the store's backend has the version-2 schedule and lease methods. */
bool at__store_has_sched(const at_store *st);
/* Every schedule (name NULL) or one, decoded, in name order.  With
 * skipped_out, schedules that do not decode (AT_ERR_CORRUPT: written by a
 * foreign tool, or a zone this host lacks) are left out and counted there;
 * without it they fail the call. */
int at__sched_load(at_schedule ***list_out, size_t *n_out, size_t *skipped_out, at_store *st, const char *name);

#endif /* AT_SCHEDULE_H */
