/*
 * redis_proc.h - a throwaway redis-server that a chaos test kills and
 * restarts itself (redis_restart, conn_faults).
 *
 * tests/redis_server.sh starts servers for shell scripts; these tests need
 * to SIGKILL the server at moments of their choosing and bring it back on
 * the same port with the same data directory (its AOF) from inside the
 * program, so they keep the same conventions in C: loopback only, a free
 * port, a temporary directory of its own, the server a direct child (never
 * daemonized) so that it is stopped by its PID and reaped, and removed with
 * its directory at the end.  On Linux the server also gets
 * PR_SET_PDEATHSIG, so a test that is itself killed (make's timeout, ^C)
 * takes its server with it.  A missing redis-server is a failure that says
 * how to install it, never a skip.
 */
#ifndef AT_TESTS_REDIS_PROC_H
#define AT_TESTS_REDIS_PROC_H

#include <stdint.h>
#include <sys/types.h>

#define RPROC_MAX_ARGS 16

struct rproc {
    pid_t pid;  /* 0 when not running */
    int port;
    char dir[512];
    const char *args[RPROC_MAX_ARGS]; /* extra redis-server arguments (static strings) */
    int nargs;
};

/* Make a temporary directory, pick a free loopback port and start
 * redis-server there with the extra arguments (NULL-terminated list of
 * static strings, e.g. "--appendonly", "yes").  0, or -1 with a message on
 * stderr. */
int rproc_start(struct rproc *r, const char *const *extra);
/* Start it again on the same port, dir and arguments (after a kill); waits
 * until it answers PING (AOF loaded).  0 or -1. */
int rproc_restart(struct rproc *r);
/* Send `sig` to the server by its PID and reap it (SIGTERM: up to 10 s,
 * then SIGKILL).  No-op when it is not running. */
void rproc_stop(struct rproc *r, int sig);
/* Stop it (SIGTERM) and remove its directory. */
void rproc_cleanup(struct rproc *r);
/* Send one inline command to 127.0.0.1:port on a fresh connection and copy
 * the first reply line into buf (without CRLF).  0, or -1 (no connection,
 * timeout). */
int rproc_command(int port, const char *cmd, char *buf, size_t len, int64_t timeout_ms);
/* On SIGINT or SIGTERM (make's timeout, ^C), SIGKILL r's server by its
 * PID before the test dies of the signal.  One server per process. */
void rproc_kill_on_signal(struct rproc *r);

#endif
