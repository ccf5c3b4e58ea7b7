/*
 * stale_completers.c - a paused worker's late ack or fail is fenced off
 * (chaos test).
 *
 *   stale_completers URI [--rounds N]
 *
 * URI is sqlite:DIR (the store is a new file in DIR) or redis://HOST:PORT
 * (a fresh key prefix).  Default 100 rounds; the reliability issue asks for
 * 500 or more.
 *
 * Per round: a worker process (a fresh image of this program, "--child")
 * claims a job with a 200 ms lease and reports its token; the parent
 * SIGSTOPs it, as a GC pause, a swapped-out VM or a debugger would.  The
 * parent waits past the lease, claims the job again itself (a new token) and
 * acks it with its own result.  Then the stopped process gets SIGCONT and
 * finishes the job with its old token: at_ack, at_fail (retry) or at_fail
 * (permanent), in turn.  Every one of these stale completions must return
 * AT_ERR_STALE, and the job must stay as the second claimer left it:
 * SUCCEEDED, under the second token, with the second claimer's result and
 * two attempts.  The store is checked again after the stale call, so a
 * completion that reported STALE but changed the job anyway is caught too.
 * The shared checker (history.h) sees each round's job: its enqueue's
 * answer, and as deliveries the completions that stand: the second
 * claimer's ack when the job is still SUCCEEDED with its result at the end,
 * plus the stale completion if the store accepted it (a job completed
 * twice: duplicated).  A stale fail that the store took would send the job
 * back and void the second claimer's ack: lost.  Prints history.h's line and
 * one line with the counts; exits 0 only if every stale completion was
 * rejected, no job went backwards, and history.h found nothing lost or
 * unexpected.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"
#include "history.h"
#include "util.h"

#define QUEUE "stale"
#define TYPE "chaos.stale"
#define LEASE_MS 200

/* One '\n'-terminated line from fd within timeout_ms, without stdio (the
 * parent reads from a child that may die or hang): 0, or -1 on EOF, error
 * or timeout. */
static int read_line(int fd, char *buf, size_t size, int64_t timeout_ms)
{
    size_t n = 0;
    int64_t end = mono_ms() + timeout_ms;
    while (n + 1 < size) {
        int64_t left = end - mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t got = read(fd, buf + n, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    return -1;
}

static int write_str(int fd, const char *s)
{
    size_t len = strlen(s);
    return write(fd, s, len) == (ssize_t)len ? 0 : -1;
}

/* ------------------------------------------------------------- child */

/* Claim one job, report "ID TOKEN", then wait for the parent's command on
 * stdin and carry it out with the token of that claim, whatever happened in
 * between: report "RC STATE" (STATE from at_fail, 0 otherwise). */
static int child(const char *uri)
{
    at_store *st;
    if (at_store_open(&st, uri) != 0) {
        fprintf(stderr, "child %ld: open %s: %s\n", (long)getpid(), uri, at_last_error());
        return 3;
    }
    const char *queues[] = {QUEUE};
    at_job *job;
    size_t n = 0;
    int rc = at_poll(&job, &n, st, queues, 1, 1, 10000);
    if (rc != 0 || n != 1) {
        fprintf(stderr, "child %ld: no claim (%s)\n", (long)getpid(), rc ? at_strerror(rc) : "timeout");
        at_store_close(st);
        return 4;
    }
    char id[AT_ID_SIZE];
    snprintf(id, sizeof id, "%s", at_job_id(job));
    uint64_t token = at_job_token(job);
    at_job_free(job);
    char line[128];
    snprintf(line, sizeof line, "%s %" PRIu64 "\n", id, token);
    if (write_str(1, line) != 0)
        return 5;
    /* The parent stops this process here, so that the command below is
     * read, and carried out, only after SIGCONT: the "work" of this claim
     * spans the pause. */
    char cmd[32];
    if (read_line(0, cmd, sizeof cmd, 60000) != 0)
        return 6;
    int32_t state = 0;
    if (strcmp(cmd, "ack") == 0)
        rc = at_ack(st, id, token, "stale", 5);
    else if (strcmp(cmd, "fail") == 0)
        rc = at_fail(&state, st, id, token, "stale fail", AT_FAIL_RETRY);
    else if (strcmp(cmd, "perm") == 0)
        rc = at_fail(&state, st, id, token, "stale permanent fail", AT_FAIL_PERMANENT);
    else
        return 7;
    snprintf(line, sizeof line, "%d %d\n", rc, (int)state);
    write_str(1, line);
    at_store_close(st);
    return 0;
}

/* ------------------------------------------------------------- parent */

static char g_uri[1024];

struct proc {
    pid_t pid;
    int to, from; /* the child's stdin and stdout */
};

static int spawn(struct proc *p)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        /* A fresh image: the parent's store handle must not cross fork(). */
        execl("/proc/self/exe", "stale_completers", "--child", g_uri, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    *p = (struct proc){.pid = pid, .to = in[1], .from = out[0]};
    return 0;
}

/* Stop a child for good, by PID, whatever state it is in (SIGKILL also ends
 * a stopped process), and reap it. */
static void kill_child(struct proc *p)
{
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    close(p->to);
    close(p->from);
}

/* The exit of a child that finished its round; 1 if it exited with 0.  A
 * child that does not exit within 10 s is killed. */
static int reap_child(struct proc *p)
{
    int64_t end = mono_ms() + 10000;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid || r < 0)
            break;
        if (mono_ms() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        sleep_ms(2);
    }
    close(p->to);
    close(p->from);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct counts {
    long rounds, rejected, accepted, other_err, backwards, setup_failed;
    long by_op_rejected[3];
};

static const char *const OPS[3] = {"ack", "fail", "perm"};

/* Is the job exactly as the second claimer left it? */
static int job_intact(at_store *st, const char *id, uint64_t token2, const char *result2, const char *when)
{
    at_job *j;
    int rc = at_get(&j, st, id);
    if (rc != 0) {
        fprintf(stderr, "%s: at_get %s: %s\n", when, id, at_strerror(rc));
        return 0;
    }
    size_t len;
    const char *res = at_job_result(j, &len);
    int ok = at_job_state(j) == AT_STATE_SUCCEEDED && at_job_token(j) == token2 && at_job_attempts(j) == 2 &&
             res && len == strlen(result2) && memcmp(res, result2, len) == 0;
    if (!ok)
        fprintf(stderr,
                "%s: job %s is %s, token %" PRIu64 " (second claim %" PRIu64 "), attempts %" PRIu32
                ", result \"%.*s\" (want \"%s\")\n",
                when, id, at_state_name(at_job_state(j)), at_job_token(j), token2, at_job_attempts(j),
                res ? (int)len : 0, res ? res : "", result2);
    at_job_free(j);
    return ok;
}

/* One round; returns 0 when it could be played to the end (whatever the
 * verdict), -1 when the setup itself failed. */
static int round_once(at_store *st, struct hist *h, long round, struct counts *c)
{
    int op = (int)(round % 3);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, QUEUE);
    at_opts_set_int(o, AT_OPT_LEASE_MS, LEASE_MS);
    /* Attempts must not run out: the stale fail must be refused for its
     * token, not for an exhausted budget. */
    at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1000);
    char payload[32], id[AT_ID_SIZE];
    int plen = snprintf(payload, sizeof payload, "round %ld", round);
    int rc = at_enqueue(id, st, TYPE, payload, (size_t)plen, o);
    at_opts_free(o);
    hist_enqueued(h, (size_t)round,
                  rc == 0 ? HIST_ENQ_OK
                  : (rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_IO) ? HIST_ENQ_UNKNOWN
                                                                                  : HIST_ENQ_FAILED);
    if (rc != 0) {
        fprintf(stderr, "round %ld: enqueue: %s\n", round, at_strerror(rc));
        return -1;
    }

    struct proc p;
    if (spawn(&p) != 0) {
        perror("spawn");
        return -1;
    }
    char line[128], cid[AT_ID_SIZE + 8];
    uint64_t token1;
    if (read_line(p.from, line, sizeof line, 15000) != 0 || sscanf(line, "%30s %" SCNu64, cid, &token1) != 2 ||
        strcmp(cid, id) != 0) {
        fprintf(stderr, "round %ld: the child did not claim job %s\n", round, id);
        kill_child(&p);
        return -1;
    }
    /* Pause the first claimer, and be sure it is stopped before anything
     * else happens. */
    kill(p.pid, SIGSTOP);
    int status;
    if (waitpid(p.pid, &status, WUNTRACED) != p.pid || !WIFSTOPPED(status)) {
        fprintf(stderr, "round %ld: the child did not stop\n", round);
        kill_child(&p);
        return -1;
    }
    /* Queued in the pipe; read only once the child runs again. */
    char cmd[16];
    snprintf(cmd, sizeof cmd, "%s\n", OPS[op]);
    if (write_str(p.to, cmd) != 0) {
        kill_child(&p);
        return -1;
    }
    sleep_ms(LEASE_MS + 20);

    /* The second claimer: blocks until the store sees the lease expired. */
    const char *queues[] = {QUEUE};
    at_job *j;
    size_t n = 0;
    rc = at_poll(&j, &n, st, queues, 1, 1, 10000);
    if (rc != 0 || n != 1 || strcmp(at_job_id(j), id) != 0 || at_job_token(j) == token1) {
        fprintf(stderr, "round %ld: second claim of %s failed (%s, %zu jobs)\n", round, id, at_strerror(rc), n);
        if (n == 1)
            at_job_free(j);
        kill_child(&p);
        return -1;
    }
    uint64_t token2 = at_job_token(j);
    at_job_free(j);
    char result2[48];
    snprintf(result2, sizeof result2, "second claimer, round %ld", round);
    rc = at_ack(st, id, token2, result2, strlen(result2));
    if (rc != 0) {
        fprintf(stderr, "round %ld: the second claimer's ack: %s\n", round, at_strerror(rc));
        kill_child(&p);
        return -1;
    }
    if (!job_intact(st, id, token2, result2, "before SIGCONT")) {
        kill_child(&p);
        return -1;
    }

    kill(p.pid, SIGCONT);
    int stale_rc, stale_state;
    if (read_line(p.from, line, sizeof line, 15000) != 0 || sscanf(line, "%d %d", &stale_rc, &stale_state) != 2) {
        fprintf(stderr, "round %ld: no answer from the resumed child\n", round);
        kill_child(&p);
        return -1;
    }
    int clean = reap_child(&p);
    c->rounds++;
    if (stale_rc == AT_ERR_STALE) {
        c->rejected++;
        c->by_op_rejected[op]++;
    } else if (stale_rc == 0) {
        c->accepted++;
        fprintf(stderr, "round %ld: stale %s with token %" PRIu64 " was ACCEPTED\n", round, OPS[op], token1);
    } else {
        c->other_err++;
        fprintf(stderr, "round %ld: stale %s returned %s, not AT_ERR_STALE\n", round, OPS[op],
                at_err_name(stale_rc));
    }
    if (!job_intact(st, id, token2, result2, "after the stale completion"))
        c->backwards++;
    else
        hist_delivered(h, (size_t)round); /* the second claimer's ack stands */
    if (stale_rc == 0)
        hist_delivered(h, (size_t)round); /* and the stale one was taken too */
    if (!clean)
        fprintf(stderr, "round %ld: the child did not exit cleanly\n", round);
    return clean ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child(argv[2]);
    long rounds = 100;
    if (argc == 4 && strcmp(argv[2], "--rounds") == 0) {
        char *end;
        rounds = strtol(argv[3], &end, 10);
        if (*end != '\0' || rounds < 1)
            argc = 0;
    }
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: %s URI [--rounds N]\n  URI: sqlite:DIR or redis://HOST:PORT\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];
    if (strncmp(base, "sqlite:", 7) == 0)
        snprintf(g_uri, sizeof g_uri, "%s/stale_completers-%ld.db", base, (long)getpid());
    else if (strncmp(base, "redis://", 8) == 0)
        /* A fresh prefix: earlier runs on the same server are not seen. */
        snprintf(g_uri, sizeof g_uri, "%s%cprefix=sc%ld-%lld", base, strchr(base, '?') ? '&' : '?',
                 (long)getpid(), (long long)time(NULL));
    else {
        fprintf(stderr, "%s: URI must be sqlite:DIR or redis://HOST:PORT\n", argv[0]);
        return 2;
    }
    /* A child that dies before reading its command must not kill the
     * parent with SIGPIPE; the failed write is reported instead. */
    signal(SIGPIPE, SIG_IGN);

    int64_t t0 = mono_ms();
    at_store *st;
    if (at_store_open(&st, g_uri) != 0) {
        fprintf(stderr, "open %s: %s\n", g_uri, at_last_error());
        return 1;
    }
    struct counts c = {0};
    struct hist *h = hist_new((size_t)rounds);
    if (!h)
        return 1;
    for (long r = 0; r < rounds; r++)
        if (round_once(st, h, r, &c) != 0)
            c.setup_failed++;
    at_store_close(st);
    int64_t elapsed = mono_ms() - t0;
    struct hist_counts hc;
    hist_check(h, &hc);
    hist_free(h);
    char name[1100];
    snprintf(name, sizeof name, "stale_completers %s", base);
    int hist_bad = hist_report(name, &hc);
    int pass = hist_bad == 0 && hc.duplicated == 0 && c.rounds == rounds && c.rejected == rounds &&
               c.backwards == 0 && c.setup_failed == 0;
    printf("stale_completers %s: rounds=%ld stale completions rejected=%ld (ack %ld, fail %ld, permanent fail %ld)"
           " accepted=%ld other_errors=%ld went_backwards=%ld failed_rounds=%ld | lease %d ms, %lld ms: %s\n",
           base, rounds, c.rejected, c.by_op_rejected[0], c.by_op_rejected[1], c.by_op_rejected[2], c.accepted,
           c.other_err, c.backwards, c.setup_failed, LEASE_MS, (long long)elapsed, pass ? "PASS" : "FAIL");
    return pass ? 0 : 1;
}
