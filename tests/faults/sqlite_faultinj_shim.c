/*
 * sqlite_faultinj_shim.c - the counting allocator and the fault-injecting
 * VFS of sqlite_faultinj.h.
 *
 * Written against the public SQLite API only (sqlite3_mem_methods,
 * sqlite3_vfs, sqlite3_io_methods version 3), so it runs on the system's
 * libsqlite3 rather than a test build of SQLite.  The shim file embeds the
 * real file after its own header: szOsFile tells SQLite to allocate both.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "asynctask.h"
#include "sqlite_faultinj.h"

/* ------------------------------------------------------------ the plan */

static struct {
    _Atomic int kind; /* enum fi_kind armed now, FI_NONE when off */
    int persistent;
    _Atomic int64_t left;   /* eligible calls still to pass before the fault */
    _Atomic int64_t hits;   /* faults injected since fi_arm */
    _Atomic int64_t calls;  /* eligible calls since fi_arm */
    _Atomic int64_t budget; /* FI_FULL: bytes of growth still allowed */
} g;

void fi_arm(enum fi_kind kind, int64_t n, int persistent)
{
    atomic_store(&g.kind, FI_NONE);
    g.persistent = persistent;
    atomic_store(&g.left, n - 1);
    atomic_store(&g.budget, n);
    atomic_store(&g.hits, 0);
    atomic_store(&g.calls, 0);
    atomic_store(&g.kind, (int)kind);
}

int64_t fi_disarm(void)
{
    atomic_store(&g.kind, FI_NONE);
    return atomic_load(&g.hits);
}

int64_t fi_hits(void)
{
    return atomic_load(&g.hits);
}

int64_t fi_calls(void)
{
    return atomic_load(&g.calls);
}

/* One eligible call of `kind`: 1 when it must fail.  Like SQLite's
 * faultsimStep: a countdown, then one failure (or all, when persistent). */
static int step(enum fi_kind kind)
{
    if (atomic_load(&g.kind) != (int)kind)
        return 0;
    atomic_fetch_add(&g.calls, 1);
    if (atomic_fetch_sub(&g.left, 1) > 0)
        return 0;
    if (!g.persistent)
        atomic_store(&g.kind, FI_NONE);
    atomic_fetch_add(&g.hits, 1);
    return 1;
}

/* ---------------------------------------------------------- allocators */

static sqlite3_mem_methods g_mem; /* SQLite's default, wrapped */

static void *sq_malloc(int n)
{
    return step(FI_MALLOC) ? NULL : g_mem.xMalloc(n);
}

static void *sq_realloc(void *p, int n)
{
    return step(FI_MALLOC) ? NULL : g_mem.xRealloc(p, n);
}

static void sq_free(void *p)
{
    g_mem.xFree(p);
}

static int sq_size(void *p)
{
    return g_mem.xSize(p);
}

static int sq_roundup(int n)
{
    return g_mem.xRoundup(n);
}

static int sq_init(void *app)
{
    (void)app;
    return g_mem.xInit(g_mem.pAppData);
}

static void sq_shutdown(void *app)
{
    (void)app;
    g_mem.xShutdown(g_mem.pAppData);
}

static void *at_malloc(size_t n)
{
    return step(FI_MALLOC) ? NULL : malloc(n);
}

static void *at_realloc(void *p, size_t n)
{
    return step(FI_MALLOC) ? NULL : realloc(p, n);
}

static void at_free(void *p)
{
    free(p);
}

/* ----------------------------------------------------------------- VFS */

struct fi_file {
    sqlite3_file base;
    sqlite3_file *real; /* follows this header in the same allocation */
    sqlite3_int64 size; /* tracked for the FI_FULL budget */
};

/* The real file starts at the next multiple of 16 after the header. */
#define FI_HDR ((sizeof(struct fi_file) + 15) & ~(size_t)15)

static sqlite3_vfs *g_real;

static int io_fault(enum fi_kind kind, int code)
{
    if (!step(kind))
        return SQLITE_OK;
    /* sqlite3_system_errno() reads errno through xGetLastError: make it
     * name an I/O error, not whatever the last system call left there
     * (the backend would read ENOSPC as a full disk). */
    errno = EIO;
    return code;
}

static int f_close(sqlite3_file *f)
{
    struct fi_file *p = (struct fi_file *)f;
    return p->real->pMethods->xClose(p->real);
}

static int f_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    struct fi_file *p = (struct fi_file *)f;
    int rc = io_fault(FI_IO, SQLITE_IOERR_READ);
    return rc ? rc : p->real->pMethods->xRead(p->real, buf, amt, off);
}

static int f_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    struct fi_file *p = (struct fi_file *)f;
    int rc = io_fault(FI_IO, SQLITE_IOERR_WRITE);
    if (rc)
        return rc;
    sqlite3_int64 end = off + amt, grow = end > p->size ? end - p->size : 0;
    if (grow > 0 && atomic_load(&g.kind) == FI_FULL) {
        /* For a budget the "calls" are bytes of growth. */
        atomic_fetch_add(&g.calls, grow);
        if (atomic_fetch_sub(&g.budget, grow) < grow) {
            atomic_fetch_add(&g.budget, grow);
            atomic_fetch_add(&g.hits, 1);
            /* What the unix VFS answers on ENOSPC. */
            errno = ENOSPC;
            return SQLITE_FULL;
        }
    }
    rc = p->real->pMethods->xWrite(p->real, buf, amt, off);
    if (rc == SQLITE_OK && end > p->size)
        p->size = end;
    return rc;
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct fi_file *p = (struct fi_file *)f;
    int rc = io_fault(FI_IO, SQLITE_IOERR_TRUNCATE);
    if (rc == SQLITE_OK && (rc = p->real->pMethods->xTruncate(p->real, size)) == SQLITE_OK)
        p->size = size;
    return rc;
}

static int f_sync(sqlite3_file *f, int flags)
{
    (void)f;
    (void)flags;
    /* A fault point, but no real fsync: these faults happen in the
     * process, not in a power cut, so the flush to the platter proves
     * nothing here and would dominate the run time. */
    return io_fault(FI_IO, SQLITE_IOERR_FSYNC);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *out)
{
    struct fi_file *p = (struct fi_file *)f;
    int rc = io_fault(FI_IO, SQLITE_IOERR_FSTAT);
    return rc ? rc : p->real->pMethods->xFileSize(p->real, out);
}

static int f_lock(sqlite3_file *f, int level)
{
    struct fi_file *p = (struct fi_file *)f;
    int rc = io_fault(FI_IO, SQLITE_IOERR_LOCK);
    return rc ? rc : p->real->pMethods->xLock(p->real, level);
}

static int f_unlock(sqlite3_file *f, int level)
{
    struct fi_file *p = (struct fi_file *)f;
    return p->real->pMethods->xUnlock(p->real, level);
}

static int f_check_reserved(sqlite3_file *f, int *out)
{
    struct fi_file *p = (struct fi_file *)f;
    int rc = io_fault(FI_IO, SQLITE_IOERR_CHECKRESERVEDLOCK);
    return rc ? rc : p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
    struct fi_file *p = (struct fi_file *)f;
    return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
    struct fi_file *p = (struct fi_file *)f;
    return p->real->pMethods->xSectorSize(p->real);
}

static int f_device_characteristics(sqlite3_file *f)
{
    struct fi_file *p = (struct fi_file *)f;
    return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int f_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
    struct fi_file *p = (struct fi_file *)f;
    int rc = io_fault(FI_IO, SQLITE_IOERR_SHMMAP);
    if (rc) {
        *pp = NULL;
        return rc;
    }
    return p->real->pMethods->xShmMap(p->real, region, size, extend, pp);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    struct fi_file *p = (struct fi_file *)f;
    /* Only taking a lock can fail: SQLite treats a failed unlock as a
     * bug in the VFS. */
    int rc = (flags & SQLITE_SHM_LOCK) ? io_fault(FI_IO, SQLITE_IOERR_SHMLOCK) : SQLITE_OK;
    return rc ? rc : p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
    struct fi_file *p = (struct fi_file *)f;
    p->real->pMethods->xShmBarrier(p->real);
}

static int f_shm_unmap(sqlite3_file *f, int del)
{
    struct fi_file *p = (struct fi_file *)f;
    return p->real->pMethods->xShmUnmap(p->real, del);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    struct fi_file *p = (struct fi_file *)f;
    return p->real->pMethods->xFetch(p->real, off, amt, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *ptr)
{
    struct fi_file *p = (struct fi_file *)f;
    return p->real->pMethods->xUnfetch(p->real, off, ptr);
}

static const sqlite3_io_methods k_io = {
    3,
    f_close,
    f_read,
    f_write,
    f_truncate,
    f_sync,
    f_file_size,
    f_lock,
    f_unlock,
    f_check_reserved,
    f_file_control,
    f_sector_size,
    f_device_characteristics,
    f_shm_map,
    f_shm_lock,
    f_shm_barrier,
    f_shm_unmap,
    f_fetch,
    f_unfetch,
};

/* The same methods for a real file whose methods are of an older version
 * (no shared memory or no mmap): SQLite must see those slots missing too. */
static sqlite3_io_methods g_io_v1, g_io_v2;

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    struct fi_file *p = (struct fi_file *)f;
    p->base.pMethods = NULL;
    p->real = (sqlite3_file *)((char *)f + FI_HDR);
    p->size = 0;
    int rc = io_fault(FI_IO, SQLITE_CANTOPEN);
    if (rc)
        return rc;
    rc = g_real->xOpen(g_real, name, p->real, flags, out_flags);
    /* SQLite calls xClose after a failed xOpen only when pMethods is set:
     * mirror the real file's. */
    if (p->real->pMethods) {
        int v = p->real->pMethods->iVersion;
        p->base.pMethods = v >= 3 ? &k_io : v == 2 ? &g_io_v2 : &g_io_v1;
        sqlite3_int64 sz = 0;
        if (rc == SQLITE_OK && p->real->pMethods->xFileSize(p->real, &sz) == SQLITE_OK)
            p->size = sz;
    }
    return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return g_real->xDelete(g_real, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return g_real->xAccess(g_real, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return g_real->xFullPathname(g_real, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *vfs, const char *path)
{
    (void)vfs;
    return g_real->xDlOpen(g_real, path);
}

static void v_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    g_real->xDlError(g_real, n, msg);
}

static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return g_real->xDlSym(g_real, h, sym);
}

static void v_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    g_real->xDlClose(g_real, h);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return g_real->xRandomness(g_real, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return g_real->xSleep(g_real, us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return g_real->xCurrentTime(g_real, out);
}

static int v_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return g_real->xGetLastError ? g_real->xGetLastError(g_real, n, out) : 0;
}

static int v_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return g_real->xCurrentTimeInt64(g_real, out);
}

static int v_set_system_call(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr fn)
{
    (void)vfs;
    return g_real->xSetSystemCall(g_real, name, fn);
}

static sqlite3_syscall_ptr v_get_system_call(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return g_real->xGetSystemCall(g_real, name);
}

static const char *v_next_system_call(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return g_real->xNextSystemCall(g_real, name);
}

static sqlite3_vfs g_vfs;

int fi_install(void)
{
    int rc = sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_mem);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_mem_methods m = {sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL};
    if ((rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &m)) != SQLITE_OK)
        return rc;
    if (at_set_allocator(at_malloc, at_realloc, at_free, NULL, NULL, NULL) != 0)
        return SQLITE_ERROR;
    /* sqlite3_vfs_find initializes SQLite: the allocator is in place now. */
    g_real = sqlite3_vfs_find(NULL);
    if (!g_real)
        return SQLITE_ERROR;
    g_io_v2 = k_io;
    g_io_v2.iVersion = 2;
    g_io_v2.xFetch = NULL;
    g_io_v2.xUnfetch = NULL;
    g_io_v1 = g_io_v2;
    g_io_v1.iVersion = 1;
    g_io_v1.xShmMap = NULL;
    g_io_v1.xShmLock = NULL;
    g_io_v1.xShmBarrier = NULL;
    g_io_v1.xShmUnmap = NULL;
    g_vfs.iVersion = g_real->iVersion < 3 ? g_real->iVersion : 3;
    g_vfs.szOsFile = (int)FI_HDR + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = "faultinj";
    g_vfs.xOpen = v_open;
    g_vfs.xDelete = v_delete;
    g_vfs.xAccess = v_access;
    g_vfs.xFullPathname = v_full_pathname;
    g_vfs.xDlOpen = g_real->xDlOpen ? v_dlopen : NULL;
    g_vfs.xDlError = g_real->xDlError ? v_dlerror : NULL;
    g_vfs.xDlSym = g_real->xDlSym ? v_dlsym : NULL;
    g_vfs.xDlClose = g_real->xDlClose ? v_dlclose : NULL;
    g_vfs.xRandomness = v_randomness;
    g_vfs.xSleep = v_sleep;
    g_vfs.xCurrentTime = v_current_time;
    g_vfs.xGetLastError = v_get_last_error;
    if (g_vfs.iVersion >= 2)
        g_vfs.xCurrentTimeInt64 = g_real->xCurrentTimeInt64 ? v_current_time_int64 : NULL;
    if (g_vfs.iVersion >= 3) {
        g_vfs.xSetSystemCall = g_real->xSetSystemCall ? v_set_system_call : NULL;
        g_vfs.xGetSystemCall = g_real->xGetSystemCall ? v_get_system_call : NULL;
        g_vfs.xNextSystemCall = g_real->xNextSystemCall ? v_next_system_call : NULL;
    }
    return sqlite3_vfs_register(&g_vfs, 1);
}
