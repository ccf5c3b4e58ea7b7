/*
 * test_double.c - how a host application unit-tests code that uses delayed
 * jobs: a memory store on a manual clock, so "cancel the unpaid order after
 * 30 minutes" is tested in microseconds and deterministically, without
 * sleeping.  Exits non-zero if the behaviour is not as described.
 */
#include <stdio.h>
#include <string.h>

#include <asynctask.h>

#define MINUTE_MS (60 * 1000)

/* The code under test: when an order is placed, schedule its expiry. */
static int place_order(at_store *store, const char *order_id, char *job_id)
{
    at_opts *o;
    int rc = at_opts_new(&o);
    if (rc)
        return rc;
    at_opts_set_str(o, AT_OPT_QUEUE, "orders");
    at_opts_set_int(o, AT_OPT_DELAY_MS, 30 * MINUTE_MS);
    rc = at_enqueue(job_id, store, "order.expire", order_id, strlen(order_id), o);
    at_opts_free(o);
    return rc;
}

static int claimable(at_store *store)
{
    const char *q[] = {"orders"};
    at_job *job;
    size_t n = 0;
    if (at_poll(&job, &n, store, q, 1, 1, 0) != 0)
        return -1;
    if (n)
        at_job_free(job);
    return (int)n;
}

#define EXPECT(cond)                                                                                         \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                              \
            failures++;                                                                                      \
        }                                                                                                    \
    } while (0)

int main(void)
{
    int failures = 0;
    at_clock *clock;
    at_store *store;
    EXPECT(at_clock_new_manual(&clock, INT64_C(1800000000000)) == 0);
    EXPECT(at_store_open(&store, "memory:") == 0);
    EXPECT(at_store_set_clock(store, clock) == 0);

    char id[AT_ID_SIZE];
    EXPECT(place_order(store, "order-42", id) == 0);
    EXPECT(claimable(store) == 0); /* not due yet */

    at_clock_advance(clock, 30 * MINUTE_MS - 1);
    EXPECT(claimable(store) == 0); /* one millisecond early: still not */

    at_clock_advance(clock, 1);
    EXPECT(claimable(store) == 1); /* exactly on time */

    at_store_close(store);
    EXPECT(at_clock_free(clock) == 0);
    printf("test double example: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
