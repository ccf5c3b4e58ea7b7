/*
 * hello.c - the README's example: enqueue a job delayed by 200 ms, block in
 * at_poll until it is due, run it, acknowledge it.
 *
 *   ./examples/hello [STORE_URI]      (default: memory:)
 */
#include <stdio.h>
#include <string.h>

#include <asynctask.h>

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "memory:";
    at_store *store;
    int rc = at_store_open(&store, uri);
    if (rc) {
        fprintf(stderr, "open %s: %s (%s)\n", uri, at_strerror(rc), at_last_error());
        return 1;
    }

    at_opts *opts;
    at_opts_new(&opts);
    at_opts_set_str(opts, AT_OPT_QUEUE, "emails");
    at_opts_set_int(opts, AT_OPT_DELAY_MS, 200);
    char id[AT_ID_SIZE];
    const char *payload = "{\"to\":\"ada@example.org\"}";
    rc = at_enqueue(id, store, "email.send", payload, strlen(payload), opts);
    at_opts_free(opts);
    if (rc) {
        fprintf(stderr, "enqueue: %s\n", at_strerror(rc));
        at_store_close(store);
        return 1;
    }
    printf("enqueued %s, due in 200 ms\n", id);

    const char *queues[] = {"emails"};
    at_job *job;
    size_t n;
    rc = at_poll(&job, &n, store, queues, 1, 1, 5000);
    if (rc || n == 0) {
        fprintf(stderr, "poll: %s\n", rc ? at_strerror(rc) : "timed out");
        at_store_close(store);
        return 1;
    }
    size_t len;
    const char *body = at_job_payload(job, &len);
    int64_t late;
    at_store_now(&late, store);
    late -= at_job_time(job, AT_JOB_TIME_RUN_AT);
    printf("running %s (%s) attempt %u, %lld ms after its run_at: %.*s\n", at_job_id(job), at_job_type(job),
           at_job_attempts(job), (long long)late, (int)len, body);
    rc = at_ack(store, at_job_id(job), at_job_token(job), "sent", 4);
    printf("ack: %s\n", at_strerror(rc));
    at_job_free(job);
    at_store_close(store);
    return rc ? 1 : 0;
}
