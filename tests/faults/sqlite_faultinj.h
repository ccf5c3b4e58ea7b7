/*
 * sqlite_faultinj.h - fault injection under the SQLite backend, in the
 * manner of SQLite's own test harness (src/test_malloc.c, src/test_vfs.c):
 *
 *   - a counting allocator installed with sqlite3_config(SQLITE_CONFIG_MALLOC)
 *     around SQLite's default one, and through at_set_allocator() around the
 *     library's, sharing one counter, so "the Nth allocation fails" means
 *     the Nth of either;
 *   - a shim VFS over the default one ("unix"), registered as the new
 *     default so the backend opens its files through it unchanged, that
 *     fails the Nth read, write, sync, truncate, size query, open, lock or
 *     shared-memory call with the matching SQLITE_IOERR_* code, or answers
 *     SQLITE_FULL once writes would grow the files by more than a byte
 *     budget (a full disk).
 *
 * One fault plan is armed at a time; the harness is single-threaded (the
 * store under test starts no thread of its own while no worker or
 * scheduler runs), but the counters are atomic so a stray thread cannot
 * corrupt them.
 */
#ifndef AT_TESTS_SQLITE_FAULTINJ_H
#define AT_TESTS_SQLITE_FAULTINJ_H

#include <stdint.h>

enum fi_kind {
    FI_NONE = 0,
    FI_MALLOC, /* the Nth allocation (SQLite's or the library's) fails */
    FI_IO,     /* the Nth VFS call of the kinds above fails */
    FI_FULL,   /* writes growing the files past `n` bytes answer SQLITE_FULL */
};

/* Install the allocators and the VFS: before anything else touches SQLite
 * (sqlite3_config refuses once sqlite3_initialize ran).  0 or an SQLite
 * error code. */
int fi_install(void);

/* Arm a plan.  FI_MALLOC / FI_IO: the nth eligible call (1-based) fails,
 * and every one after it too when `persistent`.  FI_FULL: n is the byte
 * budget of file growth from now on. */
void fi_arm(enum fi_kind kind, int64_t n, int persistent);
/* Disarm; returns how many faults were injected since fi_arm. */
int64_t fi_disarm(void);
/* Faults injected since the last fi_arm (also while armed). */
int64_t fi_hits(void);
/* Eligible calls seen since the last fi_arm (FI_FULL: bytes of growth
 * asked for, refused ones included). */
int64_t fi_calls(void);

#endif
