/*
 * libuv_worker.c - running jobs inside a libuv event loop instead of on
 * worker threads: the worker's file descriptor (at_worker_fd) is watched
 * with uv_poll, and each time it is readable at_worker_run_ready runs the
 * jobs that are ready, on the loop's thread, next to the host's other I/O.
 * A uv_timer stands for that other work and stops the loop once every job
 * is done.
 *
 *   ./examples/libuv_worker [STORE_URI]      (default: memory:)
 * Exit status 0 when all jobs ran on the loop's thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <asynctask.h>
#include <uv.h>

#define JOBS 5

static at_worker *g_worker;
static pthread_t g_loop_thread;
static int g_ran, g_wrong_thread;

static int32_t greet(at_ctx *ctx, void *ud)
{
    (void)ud;
    size_t n;
    const char *name = at_job_payload(at_ctx_job(ctx), &n);
    if (!pthread_equal(pthread_self(), g_loop_thread))
        g_wrong_thread++;
    printf("hello, %.*s (on the loop thread)\n", (int)n, name);
    g_ran++;
    return AT_HANDLER_OK;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)h, (void)events;
    if (status < 0)
        return;
    size_t ran = 0;
    at_worker_run_ready(&ran, g_worker, 16);
}

static void on_tick(uv_timer_t *t)
{
    if (g_ran >= JOBS) {
        uv_timer_stop(t);
        uv_stop(t->loop);
    }
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "memory:";
    at_store *st;
    if (at_store_open(&st, uri) != 0) {
        fprintf(stderr, "open %s: %s\n", uri, at_last_error());
        return 1;
    }
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "greetings");
    const char *names[JOBS] = {"ada", "grace", "edsger", "barbara", "ken"};
    for (int i = 0; i < JOBS; i++) {
        at_opts_set_int(o, AT_OPT_DELAY_MS, 100 * i); /* due over half a second */
        at_enqueue(NULL, st, "greet", names[i], strlen(names[i]), o);
    }
    at_opts_free(o);

    at_worker_new(&g_worker, st);
    at_worker_add_queue(g_worker, "greetings", 1, 0);
    at_worker_handle(g_worker, "greet", greet, NULL);
    int fd = at_worker_fd(g_worker);
    if (fd < 0) {
        fprintf(stderr, "at_worker_fd: %s\n", at_strerror(fd));
        return 1;
    }

    g_loop_thread = pthread_self();
    uv_loop_t *loop = uv_default_loop();
    uv_poll_t poll;
    uv_poll_init(loop, &poll, fd);
    uv_poll_start(&poll, UV_READABLE, on_readable);
    uv_timer_t timer;
    uv_timer_init(loop, &timer);
    uv_timer_start(&timer, on_tick, 50, 50);
    uv_run(loop, UV_RUN_DEFAULT);

    uv_poll_stop(&poll);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    at_worker_free(g_worker);
    at_store_close(st);
    printf("%d jobs ran in the event loop\n", g_ran);
    return g_ran == JOBS && g_wrong_thread == 0 ? 0 : 1;
}
