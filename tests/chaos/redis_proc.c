/*
 * redis_proc.c - a redis-server child process for the chaos tests (see
 * redis_proc.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, MSG_NOSIGNAL; also set by AM_CPPFLAGS */
#endif

#include "redis_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "util.h"

/* Is redis-server on PATH?  Checked before forking so that the failure says
 * what to install instead of "exec failed". */
static int have_redis_server(void)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char buf[1024];
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/redis-server", (int)n, path);
        if (access(buf, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

/* A port the kernel calls free right now (bind to port 0).  Another process
 * may take it before redis-server binds it: rproc_start then tries again. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int rproc_command(int port, const char *cmd, char *buf, size_t len, int64_t timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char line[512];
    int n = snprintf(line, sizeof line, "%s\r\n", cmd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    int64_t end = mono_ms() + timeout_ms;
    while (got + 1 < len) {
        int64_t left = end - mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t k = recv(fd, buf + got, len - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        buf[got] = '\0';
        char *crlf = strstr(buf, "\r\n");
        if (crlf) {
            *crlf = '\0';
            close(fd);
            return 0;
        }
    }
    close(fd);
    return -1;
}

/* Fork and exec the server in the foreground (its PID is the child's). */
static pid_t launch(struct rproc *r)
{
    char port[16], log[600];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    const char *argv[RPROC_MAX_ARGS + 20];
    int k = 0;
    argv[k++] = "redis-server";
    argv[k++] = "--port";
    argv[k++] = port;
    argv[k++] = "--bind";
    argv[k++] = "127.0.0.1";
    argv[k++] = "--dir";
    argv[k++] = r->dir;
    argv[k++] = "--save";
    argv[k++] = "";
    argv[k++] = "--daemonize";
    argv[k++] = "no";
    argv[k++] = "--logfile";
    argv[k++] = log;
    for (int i = 0; i < r->nargs; i++)
        argv[k++] = r->args[i];
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
#ifdef __linux__
        /* The server must not outlive a test that is killed itself. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Wait until the server answers PING (+PONG: listening and done loading
 * its AOF), or it exited, or 20 s passed. */
static int wait_ready(struct rproc *r)
{
    int64_t end = mono_ms() + 20000;
    while (mono_ms() < end) {
        int status;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1;
        }
        char buf[128];
        if (rproc_command(r->port, "PING", buf, sizeof buf, 500) == 0 && strcmp(buf, "+PONG") == 0)
            return 0;
        sleep_ms(10);
    }
    return -1;
}

int rproc_start(struct rproc *r, const char *const *extra)
{
    memset(r, 0, sizeof *r);
    if (!have_redis_server()) {
        fprintf(stderr, "FAIL: redis-server is needed by the Redis chaos tests;\n"
                        "      install it with: apt-get install redis-server\n");
        return -1;
    }
    for (; extra && *extra && r->nargs < RPROC_MAX_ARGS; extra++)
        r->args[r->nargs++] = *extra;
    const char *tmp = getenv("TMPDIR");
    snprintf(r->dir, sizeof r->dir, "%s/at-chaos-redis.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(r->dir)) {
        perror("mkdtemp");
        r->dir[0] = '\0';
        return -1;
    }
    for (int attempt = 0; attempt < 20; attempt++) {
        r->port = free_port();
        if (r->port <= 0)
            continue;
        r->pid = launch(r);
        if (r->pid <= 0)
            break;
        if (wait_ready(r) == 0)
            return 0;
        rproc_stop(r, SIGKILL); /* port taken meanwhile, or slow: another */
    }
    fprintf(stderr, "FAIL: could not start redis-server on a free loopback port (log: %s/redis.log)\n", r->dir);
    return -1;
}

int rproc_restart(struct rproc *r)
{
    rproc_stop(r, SIGKILL);
    /* The old process is reaped, so its listening socket is closed; the
     * server sets SO_REUSEADDR, so the same port binds at once. */
    for (int attempt = 0; attempt < 5; attempt++) {
        r->pid = launch(r);
        if (r->pid <= 0)
            return -1;
        if (wait_ready(r) == 0)
            return 0;
        rproc_stop(r, SIGKILL);
        sleep_ms(100);
    }
    fprintf(stderr, "FAIL: redis-server did not come back on port %d (log: %s/redis.log)\n", r->port, r->dir);
    return -1;
}

void rproc_stop(struct rproc *r, int sig)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    int64_t end = mono_ms() + 10000;
    int status;
    for (;;) {
        pid_t w = waitpid(r->pid, &status, sig == SIGKILL ? 0 : WNOHANG);
        if (w == r->pid || (w < 0 && errno != EINTR))
            break;
        if (mono_ms() > end) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &status, 0);
            break;
        }
        if (w == 0)
            sleep_ms(10);
    }
    r->pid = 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void rproc_cleanup(struct rproc *r)
{
    rproc_stop(r, SIGTERM);
    if (r->dir[0])
        nftw(r->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    r->dir[0] = '\0';
}

/* The server of an interrupted test, for the handler (one per process). */
static struct rproc *g_signal_rproc;

static void on_signal(int sig)
{
    /* Stop the server by its PID even when the test is interrupted (kill,
     * signal and raise are async-signal-safe). */
    if (g_signal_rproc && g_signal_rproc->pid > 0)
        kill(g_signal_rproc->pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

void rproc_kill_on_signal(struct rproc *r)
{
    g_signal_rproc = r;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
}
