/*
 * atctl_worker.c - `atctl worker`: run jobs as shell commands.
 *
 * Each --exec TYPE=COMMAND registers a handler with an at_worker; the
 * handler starts `/bin/sh -c COMMAND` with the payload on standard input
 * and the job described in AT_JOB_* variables, and maps the outcome: exit 0
 * acks with standard output (first 64 KiB) as the result; anything else
 * fails the job (retried while attempts remain) with the last 4 KiB of
 * standard error as its error.
 *
 * The handler thread drives the child with poll(2) on its three pipes and a
 * 50 ms timeout, so it notices at once what it must react to: the child's
 * exit (waitpid WNOHANG), the job's timeout, a cancellation of the job, and
 * the worker shutting down (at_ctx_cancelled).  A timed-out or cancelled
 * child is sent SIGTERM, then SIGKILL after --kill-after; at shutdown it
 * gets the grace period to finish first.  Children run in their own process
 * group, so the signal reaches whatever the shell started, and a terminal's
 * Ctrl-C reaches only atctl, which then drains.
 *
 * Children are started with posix_spawn: fork+exec with setenv in between
 * is not safe in a threaded process, and the pipes are O_CLOEXEC so one
 * handler's child never inherits another's pipe ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atctl.h"

extern char **environ;

#define RESULT_MAX (64 * 1024)
#define STDERR_TAIL (4 * 1024)
#define POLL_MS 50
#define MAX_EXEC 32
#define MAX_QUEUES 32

typedef struct exec_spec {
    const char *type;
    const char *command;
} exec_spec;

typedef struct worker_conf {
    exec_spec exec[MAX_EXEC];
    int nexec;
    int64_t timeout_ms;    /* 0: none */
    int64_t kill_after_ms; /* SIGTERM to SIGKILL */
    int64_t grace_ms;      /* at shutdown, before a child is stopped */
    int quiet;
} worker_conf;

static at_worker *volatile g_worker;
/* 0 running; 1 asked to stop (drain); 2 asked twice (stop children now). */
static volatile sig_atomic_t g_stopping;

static void on_signal(int sig)
{
    (void)sig;
    if (g_stopping < 2)
        g_stopping++;
    at_worker *w = g_worker;
    if (w)
        at_worker_stop(w);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child's environment: ours without stale AT_JOB_* entries, plus the
 * job's.  Built before spawning (no allocation between fork and exec). */
static char **child_env(const at_job *job, char vars[4][AT_NAME_MAX + 32])
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc((n + 5) * sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "AT_JOB_ID=", 10) != 0 && strncmp(environ[i], "AT_JOB_TYPE=", 12) != 0 &&
            strncmp(environ[i], "AT_JOB_ATTEMPT=", 15) != 0 && strncmp(environ[i], "AT_JOB_QUEUE=", 13) != 0)
            env[k++] = environ[i];
    snprintf(vars[0], AT_NAME_MAX + 32, "AT_JOB_ID=%s", at_job_id(job));
    snprintf(vars[1], AT_NAME_MAX + 32, "AT_JOB_TYPE=%s", at_job_type(job));
    snprintf(vars[2], AT_NAME_MAX + 32, "AT_JOB_ATTEMPT=%u", (unsigned)at_job_attempts(job));
    snprintf(vars[3], AT_NAME_MAX + 32, "AT_JOB_QUEUE=%s", at_job_queue(job));
    for (int i = 0; i < 4; i++)
        env[k++] = vars[i];
    env[k] = NULL;
    return env;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* What one run of a command produced. */
typedef struct run {
    char out[RESULT_MAX];
    size_t out_len;
    char err[STDERR_TAIL]; /* a ring: the last STDERR_TAIL bytes */
    size_t err_total;
    int status;      /* from waitpid */
    int exited;      /* status is valid */
    int timed_out;   /* stopped for the job's timeout */
    int interrupted; /* stopped because of cancellation or shutdown */
} run;

static void take_output(run *r, int fd, int is_err, int *open_fd)
{
    char buf[8192];
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            return;
        if (got <= 0) {
            close_fd(open_fd);
            return;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (is_err) {
                r->err[r->err_total % STDERR_TAIL] = buf[i];
                r->err_total++;
            } else if (r->out_len < RESULT_MAX) {
                /* Beyond the limit the output is read and dropped, so the
                 * child never blocks on a full pipe. */
                r->out[r->out_len++] = buf[i];
            }
        }
    }
}

static int make_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC);
}

/* Start the command; 0, or -1 with errno.  *pid_out and the parent's ends
 * of the pipes (non-blocking) on success. */
static int spawn_child(pid_t *pid_out, int *in_w, int *out_r, int *err_r, const char *command, char **env)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (make_pipe(pin) < 0 || make_pipe(pout) < 0 || make_pipe(perr) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&pin[i]);
            close_fd(&pout[i]);
            close_fd(&perr[i]);
        }
        errno = e;
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    int rc = posix_spawn(pid_out, "/bin/sh", &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close_fd(&pin[0]);
    close_fd(&pout[1]);
    close_fd(&perr[1]);
    if (rc != 0) {
        close_fd(&pin[1]);
        close_fd(&pout[0]);
        close_fd(&perr[0]);
        errno = rc;
        return -1;
    }
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    fcntl(pout[0], F_SETFL, O_NONBLOCK);
    fcntl(perr[0], F_SETFL, O_NONBLOCK);
    *in_w = pin[1];
    *out_r = pout[0];
    *err_r = perr[0];
    return 0;
}

/* Run the command for the job until it exits or is stopped. */
static int run_child(run *r, at_ctx *ctx, const worker_conf *conf, const char *command)
{
    const at_job *job = at_ctx_job(ctx);
    char vars[4][AT_NAME_MAX + 32];
    char **env = child_env(job, vars);
    if (!env)
        return -1;
    pid_t pid;
    int in_w, out_r, err_r;
    int rc = spawn_child(&pid, &in_w, &out_r, &err_r, command, env);
    free(env);
    if (rc < 0)
        return -1;
    size_t plen, off = 0;
    const char *payload = at_job_payload(job, &plen);
    if (plen == 0)
        close_fd(&in_w);
    int64_t start = mono_ms();
    /* The job's own deadline (AT_WORKER_TIMEOUT_MS) in our monotonic time. */
    int64_t deadline = conf->timeout_ms > 0 ? start + conf->timeout_ms : -1;
    int64_t ctx_deadline = at_ctx_deadline(ctx);
    if (ctx_deadline != AT_TIME_NONE) {
        int64_t d = start + (ctx_deadline - wall_ms());
        if (deadline < 0 || d < deadline)
            deadline = d;
    }
    int64_t term_at = -1, kill_at = -1, stop_seen = -1;
    while (!r->exited || out_r >= 0 || err_r >= 0) {
        struct pollfd pf[3];
        int np = 0;
        if (in_w >= 0)
            pf[np++] = (struct pollfd){.fd = in_w, .events = POLLOUT};
        if (out_r >= 0)
            pf[np++] = (struct pollfd){.fd = out_r, .events = POLLIN};
        if (err_r >= 0)
            pf[np++] = (struct pollfd){.fd = err_r, .events = POLLIN};
        if (r->exited) {
            /* The child is gone: what it wrote is in the pipes already.  A
             * process it left behind may hold them open, so read what is
             * there and stop. */
            if (out_r >= 0)
                take_output(r, out_r, 0, &out_r);
            if (err_r >= 0)
                take_output(r, err_r, 1, &err_r);
            close_fd(&out_r);
            close_fd(&err_r);
            break;
        }
        if (poll(pf, (nfds_t)np, POLL_MS) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < np; i++) {
            if (!pf[i].revents)
                continue;
            if (pf[i].fd == in_w) {
                ssize_t w = write(in_w, payload + off, plen - off);
                if (w > 0)
                    off += (size_t)w;
                /* EPIPE: the command does not read its input, which is
                 * its business (SIGPIPE is ignored in atctl). */
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == plen)
                    close_fd(&in_w);
            } else if (pf[i].fd == out_r) {
                take_output(r, out_r, 0, &out_r);
            } else if (pf[i].fd == err_r) {
                take_output(r, err_r, 1, &err_r);
            }
        }
        int st;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid) {
            r->status = st;
            r->exited = 1;
            continue;
        }
        int64_t now = mono_ms();
        if (term_at < 0) {
            if (deadline >= 0 && now >= deadline) {
                r->timed_out = 1;
                term_at = now;
            } else if (at_ctx_cancelled(ctx)) {
                if (g_stopping == 0 && deadline >= 0 && now + POLL_MS >= deadline) {
                    /* The library's timeout fired a moment before ours. */
                    r->timed_out = 1;
                    term_at = now;
                } else if (g_stopping == 0) {
                    /* Not a shutdown: the job was cancelled. */
                    r->interrupted = 1;
                    term_at = now;
                } else {
                    if (stop_seen < 0)
                        stop_seen = now;
                    if (g_stopping > 1 || now - stop_seen >= conf->grace_ms) {
                        r->interrupted = 1;
                        term_at = now;
                    }
                }
            }
            if (term_at >= 0) {
                kill(-pid, SIGTERM);
                kill_at = now + conf->kill_after_ms;
            }
        } else if (kill_at >= 0 && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = -1;
        }
    }
    close_fd(&in_w);
    close_fd(&out_r);
    close_fd(&err_r);
    if (!r->exited) {
        /* Reading failed: do not leave the child behind. */
        kill(-pid, SIGKILL);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        r->status = st;
        r->exited = 1;
    }
    return 0;
}

/* The last STDERR_TAIL bytes of standard error as a C string (NULs, which
 * an error text cannot hold, become '?'). */
static void stderr_tail(const run *r, char *buf)
{
    size_t n = r->err_total < STDERR_TAIL ? r->err_total : STDERR_TAIL;
    size_t start = r->err_total < STDERR_TAIL ? 0 : r->err_total % STDERR_TAIL;
    for (size_t i = 0; i < n; i++) {
        char c = r->err[(start + i) % STDERR_TAIL];
        buf[i] = c ? c : '?';
    }
    buf[n] = '\0';
}

/* Every handler shares the configuration; its exec_spec is its user data. */
static const worker_conf *g_conf;

static int32_t run_job(at_ctx *ctx, void *ud)
{
    const exec_spec *spec = ud;
    run *r = calloc(1, sizeof *r);
    if (!r) {
        at_ctx_set_error(ctx, "atctl worker: out of memory");
        return AT_HANDLER_RETRY;
    }
    char err[STDERR_TAIL + 128];
    int32_t answer;
    if (run_child(r, ctx, g_conf, spec->command) < 0) {
        snprintf(err, sizeof err, "atctl worker: cannot run /bin/sh: %s", strerror(errno));
        at_ctx_set_error(ctx, err);
        answer = AT_HANDLER_RETRY;
    } else if (r->timed_out) {
        char d[64];
        snprintf(err, sizeof err, "timeout: the command ran longer than %s and was stopped",
                 atctl_fmt_duration(d, sizeof d, g_conf->timeout_ms));
        at_ctx_set_error(ctx, err);
        answer = AT_HANDLER_RETRY;
    } else if (r->interrupted && g_stopping) {
        /* Shutdown: give the job back without using an attempt. */
        answer = AT_HANDLER_RELEASE;
    } else if (r->interrupted) {
        at_ctx_set_error(ctx, "cancelled: the command was stopped");
        answer = AT_HANDLER_RETRY;
    } else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0) {
        at_ctx_set_result(ctx, r->out, r->out_len);
        answer = AT_HANDLER_OK;
    } else {
        stderr_tail(r, err);
        if (err[0] == '\0') {
            if (WIFEXITED(r->status))
                snprintf(err, sizeof err, "command exited with status %d", WEXITSTATUS(r->status));
            else
                snprintf(err, sizeof err, "command killed by signal %d", WTERMSIG(r->status));
        }
        at_ctx_set_error(ctx, err);
        answer = AT_HANDLER_RETRY;
    }
    free(r);
    return answer;
}

static void on_event(void *ud, int32_t event, const at_job *job, const char *detail)
{
    (void)ud;
    const char *name;
    switch (event) {
    case AT_EVENT_STARTED:
        name = "started";
        break;
    case AT_EVENT_SUCCEEDED:
        name = "succeeded";
        break;
    case AT_EVENT_RETRIED:
        name = "retried";
        break;
    case AT_EVENT_DEAD:
        name = "dead";
        break;
    case AT_EVENT_CANCELLED:
        name = "cancelled";
        break;
    case AT_EVENT_RELEASED:
        name = "released";
        break;
    case AT_EVENT_TIMEOUT:
        name = "timeout";
        break;
    default:
        /* Progress is not reported by shell commands, and a failure is
         * followed by its outcome (retried or dead), which is logged. */
        return;
    }
    /* One write per line, so lines from handler threads do not interleave. */
    char line[512];
    size_t l = strcspn(detail ? detail : "", "\n");
    snprintf(line, sizeof line, "atctl worker: %s %s %s%s%.*s\n", name, job ? at_job_id(job) : "-",
             job ? at_job_type(job) : "-", detail && l ? ": " : "", (int)(l > 200 ? 200 : l),
             detail ? detail : "");
    ssize_t w = write(STDERR_FILENO, line, strlen(line));
    (void)w;
}

int atctl_cmd_worker(atctl *a, int argc, char **argv)
{
    static const atctl_optdef defs[] = {{"exec", 1},       {"queue", 1}, {"concurrency", 1}, {"timeout", 1},
                                        {"kill-after", 1}, {"grace", 1}, {"quiet", 0},       {NULL, 0}};
    static worker_conf conf;
    atctl_args args;
    int rc = atctl_parse(&args, a, "worker", argc, argv, defs);
    if (rc || (rc = atctl_want_pos(&args, "worker", 0, "--exec TYPE=COMMAND ...")))
        return rc;
    const char *queues[MAX_QUEUES];
    int nq = 0;
    int64_t concurrency = 4;
    conf.kill_after_ms = 5000;
    conf.grace_ms = 10000;
    conf.quiet = atctl_flag(&args, "quiet");
    for (int i = 0; i < args.nopt; i++) {
        const char *name = args.opt_name[i], *val = args.opt_val[i];
        if (strcmp(name, "exec") == 0) {
            const char *eq = strchr(val, '=');
            if (!eq || eq == val || !eq[1])
                return atctl_usage("--exec \"%s\": expected TYPE=COMMAND", val);
            if (conf.nexec == MAX_EXEC)
                return atctl_usage("at most %d --exec options", MAX_EXEC);
            char *type = strndup(val, (size_t)(eq - val));
            if (!type)
                return atctl_fail(a, AT_ERR_NOMEM, "strndup");
            for (int k = 0; k < conf.nexec; k++)
                if (strcmp(conf.exec[k].type, type) == 0) {
                    atctl_usage("--exec: type \"%s\" given twice", type);
                    free(type);
                    return ATCTL_EXIT_USAGE;
                }
            conf.exec[conf.nexec].type = type;
            conf.exec[conf.nexec].command = eq + 1;
            conf.nexec++;
        } else if (strcmp(name, "queue") == 0) {
            if (nq == MAX_QUEUES)
                return atctl_usage("at most %d --queue options", MAX_QUEUES);
            queues[nq++] = val;
        } else if (strcmp(name, "concurrency") == 0) {
            if ((rc = atctl_parse_int(&concurrency, val, "--concurrency", 1, 1024)))
                return rc;
        } else if (strcmp(name, "timeout") == 0) {
            if ((rc = atctl_parse_duration(&conf.timeout_ms, val, "--timeout")))
                return rc;
        } else if (strcmp(name, "kill-after") == 0) {
            if ((rc = atctl_parse_duration(&conf.kill_after_ms, val, "--kill-after")))
                return rc;
        } else if (strcmp(name, "grace") == 0) {
            if ((rc = atctl_parse_duration(&conf.grace_ms, val, "--grace")))
                return rc;
        }
    }
    if (conf.nexec == 0)
        return atctl_usage("at least one --exec TYPE=COMMAND is required");
    if (nq == 0)
        queues[nq++] = "default";
    if ((rc = atctl_open(a)))
        return rc;
    g_conf = &conf;
    at_worker *w = NULL;
    const char *what = "at_worker_new";
    if ((rc = at_worker_new(&w, a->store)) < 0)
        goto fail;
    what = "at_worker_handle";
    for (int i = 0; i < conf.nexec; i++)
        if ((rc = at_worker_handle(w, conf.exec[i].type, run_job, &conf.exec[i])) < 0)
            goto fail;
    what = "at_worker_add_queue";
    for (int i = 0; i < nq; i++)
        if ((rc = at_worker_add_queue(w, queues[i], 1, 0)) < 0)
            goto fail;
    what = "at_worker_set_int";
    if ((rc = at_worker_set_int(w, AT_WORKER_THREADS, concurrency)) < 0 ||
        (conf.timeout_ms > 0 && (rc = at_worker_set_int(w, AT_WORKER_TIMEOUT_MS, conf.timeout_ms)) < 0) ||
        /* The library's grace covers ours plus the SIGTERM-to-SIGKILL
         * delay, so a job is released only after its child is gone. */
        (rc = at_worker_set_int(w, AT_WORKER_GRACE_MS, conf.grace_ms + conf.kill_after_ms + 1000)) < 0)
        goto fail;
    if (!conf.quiet && (rc = at_worker_on_event(w, on_event, NULL)) < 0) {
        what = "at_worker_on_event";
        goto fail;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    g_worker = w;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    what = "at_worker_start";
    if ((rc = at_worker_start(w)) < 0)
        goto fail;
    if (!conf.quiet)
        fprintf(stderr, "atctl worker: running (pid %ld); SIGTERM or SIGINT drains and stops\n",
                (long)getpid());
    rc = at_worker_wait(w, -1);
    uint64_t started = 0, succeeded = 0, failed = 0, released = 0;
    at_worker_counters(w, &started, &succeeded, &failed, &released);
    if (!conf.quiet)
        fprintf(stderr, "atctl worker: stopped: %llu started, %llu succeeded, %llu failed, %llu released\n",
                (unsigned long long)started, (unsigned long long)succeeded, (unsigned long long)failed,
                (unsigned long long)released);
    what = "at_worker_wait";
    if (rc < 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    rc = atctl_fail(a, rc, what);
out:;
    /* No handler may reach the worker while it is being freed. */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, NULL);
    g_worker = NULL;
    at_worker_free(w);
    for (int i = 0; i < conf.nexec; i++)
        free((char *)conf.exec[i].type);
    return rc;
}
