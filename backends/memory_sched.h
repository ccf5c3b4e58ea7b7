/*
 * memory_sched.h - schedules and leases of the memory backend (internal;
 * memory_sched.c says why they live apart from the job tables).
 */
#ifndef AT_MEMORY_SCHED_H
#define AT_MEMORY_SCHED_H

#include "internal.h"

struct at__msched;

int at__msched_new(struct at__msched **out, at_store *store);
void at__msched_free(struct at__msched *m);
/* The vtable's version-2 methods, with the same contracts (store.h). */
int at__msched_put(struct at__msched *m, int32_t *created_out, const char *name, const void *spec, size_t len);
int at__msched_remove(struct at__msched *m, const char *name);
int at__msched_pause(struct at__msched *m, const char *name, int32_t paused);
int at__msched_list(struct at__msched *m, const char *name, at_sched_row_fn fn, void *ud);
int at__msched_fired(struct at__msched *m, const char *name, int64_t fire_at, const char *job_id,
                     const char *lease, uint64_t token);
int at__msched_lease_acquire(struct at__msched *m, uint64_t *token_out, int64_t *ttl_left_out, const char *name,
                             const char *owner, int64_t ttl_ms);
int at__msched_lease_release(struct at__msched *m, const char *name, const char *owner, uint64_t token);

#endif /* AT_MEMORY_SCHED_H */
