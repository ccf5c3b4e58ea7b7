/*
 * sqlite.c - the SQLite backend ("sqlite:PATH[?sync=full|normal]
 * [&busy_timeout=MS][&nfs=allow]"): durable jobs in one file, shared by the
 * threads of a process and by several processes on one host.
 *
 * Every operation is one transaction; writers take the write lock up front
 * (BEGIN IMMEDIATE) so they never fail half way for a lock.  Within a process
 * a mutex serialises the store's connection, so threads queue on the mutex
 * and only other processes meet SQLite's lock, which a busy handler with
 * short, growing sleeps waits out for up to busy_timeout.  A transaction that
 * still meets SQLITE_BUSY mid-way is rolled back and retried a few times.
 *
 * Schema (version 5, PRAGMA user_version; the tables are created and migrated
 * here): `jobs` is clustered by the 16-byte job id (WITHOUT ROWID): ids are
 * time-sortable, so inserts append.  Partial indexes hold only the rows a
 * lookup needs, which keeps each one small and the hot pages few:
 *   jobs_ready (qid, priority DESC, run_at, id, state)
 *                                 WHERE state = READY       claim (covering)
 *   jobs_sched (qid, run_at)      WHERE state = SCHEDULED   due jobs, wake time
 *   jobs_lease (lease_until)      WHERE state = RUNNING     lease expiry
 *   jobs_fin   (finished_at)      WHERE state >= SUCCEEDED  purge
 *   jobs_list  (qid, state, id)   WHERE state NOT IN (READY, RUNNING)
 *                                                           at_list, requeue
 * jobs_list leaves out the two states every job passes through quickly, so
 * enqueue, claim and ack each write one index page less; at_list of READY
 * or RUNNING jobs reads jobs_ready or jobs_lease instead and sorts by id
 * (the ready jobs of one queue, or the running jobs, not the whole store).
 * `queues` interns queue names as small integers and keeps the per-state
 * counts, updated in the transaction of every transition, so stats cost
 * O(queues).  `idem` maps idempotency keys to jobs until they expire.
 *
 * Version 2 adds the scheduler's tables (ADR 0012, 0013): `schedules` keeps
 * each schedule's spec bytes (the core's encoding, never parsed here), its
 * paused flag and its last firing; `leases` keeps named leases with their
 * fencing tokens.  Both are small and keyed by name (WITHOUT ROWID, BINARY
 * collation, so listing in key order is the bytewise name order).  A
 * version-1 file is upgraded in place when it is opened: the version-2 step
 * only creates the two tables, so it takes no time whatever the number of
 * jobs.
 *
 * Version 3 adds workflows (ADR 0014; the tables are described at
 * k_schema_v3).  WAITING jobs are in none of the claim, due or lease
 * indexes (only jobs_list, by state), so no claim can reach one.  The
 * dependency rule runs in C inside the transaction of every transition
 * that ends a job (settle(): ack, ack_many, fail, cancel, touch or ack of a
 * marked job, lease expiry wherever it is found, wf_cancel), so a child is
 * released or cancelled in the same commit as its parent's end.
 *
 * Version 4 adds worker support (ADR 0015; tables at k_schema_v4): a paused
 * flag per queue, which every claim reads in its own transaction (so a
 * pause by any process holds for the next claim of every other), and the
 * rate limits' token buckets, each taken from in one write transaction so
 * that two processes never get the same token.  release gives a claim back
 * without counting the attempt.
 *
 * Version 5 adds the job's trace context (k_schema_v5): one nullable TEXT
 * column, NULL for jobs enqueued without a traceparent, so a plain job
 * stores nothing more than before.
 *
 * Version 6 drops the insert trigger of version 3 (k_schema_v6): workflow
 * submit writes a new job's membership row and counts itself.
 *
 * Time is lazy, as in the example backend: nothing runs between calls.  A
 * claim first ends expired leases and makes its queues' due jobs READY; get,
 * list and stats do the same when a cheap read shows something is due, so
 * no caller ever sees a job in a state its time has already left.
 *
 * Other processes' changes: the optional `changed` method reads PRAGMA
 * data_version on a second connection every watch interval (ADR 0007).
 * Durability: sync=full (default) or normal, see ADR 0006.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"

#define SCHEMA_VERSION 6
/* PRAGMA application_id of our files ("atsk"): tells a libasynctask store
 * from another application's database before we touch it. */
#define APPLICATION_ID 0x6174736b
#define DEFAULT_BUSY_MS 5000
/* Retries of a whole transaction that met SQLITE_BUSY after BEGIN (another
 * process recovering the WAL, for instance). */
#define TXN_RETRIES 5
/* Ids read per (queue, state) pair at a time while merging at_list pages. */
#define LIST_CHUNK 128

/* Magic numbers of file systems on which WAL's shared memory and POSIX locks
 * cannot be trusted (statfs(2) f_type). */
#define FS_NFS 0x6969
#define FS_SMB 0x517B
#define FS_CIFS 0xFF534D42u
#define FS_SMB2 0xFE534D42u
#define FS_CODA 0x73757245
#define FS_AFS 0x5346414F
#define FS_9P 0x01021997
#define FS_CEPH 0x00C36400

/* ---------------------------------------------------------------- schema */

/* Version 1: jobs, queues, idempotency keys.  Never edited: files made
 * before version 2 hold exactly this, and the later steps build on it. */
static const char k_schema_v1[] =
    "CREATE TABLE queues("
    " qid INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " n1 INTEGER NOT NULL DEFAULT 0, n2 INTEGER NOT NULL DEFAULT 0, n3 INTEGER NOT NULL DEFAULT 0,"
    " n4 INTEGER NOT NULL DEFAULT 0, n5 INTEGER NOT NULL DEFAULT 0, n6 INTEGER NOT NULL DEFAULT 0,"
    " n7 INTEGER NOT NULL DEFAULT 0);"
    /* Columns read on every transition come first; the large, rarely read
     * ones last, so a transition never pulls the payload's overflow pages. */
    "CREATE TABLE jobs("
    " id BLOB PRIMARY KEY,"
    " qid INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " priority INTEGER NOT NULL,"
    " run_at INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " max_attempts INTEGER NOT NULL,"
    " token INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " lease_until INTEGER,"
    " finished_at INTEGER,"
    " lease_ms INTEGER NOT NULL,"
    " backoff_base_ms INTEGER NOT NULL,"
    " backoff_cap_ms INTEGER NOT NULL,"
    " backoff_jitter INTEGER NOT NULL,"
    " cancel_req INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " idem_key TEXT,"
    " last_error TEXT,"
    " result BLOB,"
    " payload BLOB NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX jobs_ready ON jobs(qid, priority DESC, run_at, id, state) WHERE state = 3;"
    "CREATE INDEX jobs_sched ON jobs(qid, run_at) WHERE state = 2;"
    "CREATE INDEX jobs_lease ON jobs(lease_until) WHERE state = 4;"
    "CREATE INDEX jobs_fin ON jobs(finished_at) WHERE state >= 5;"
    "CREATE INDEX jobs_list ON jobs(qid, state, id) WHERE state NOT IN (3, 4);"
    "CREATE TABLE idem(key TEXT PRIMARY KEY, id BLOB NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX idem_exp ON idem(expires);";

/* Version 2: schedules and leases.  Times are store wall ms; last_fire_at
 * and last_job_id are NULL until the first recorded firing. */
static const char k_schema_v2[] =
    "CREATE TABLE schedules("
    " name TEXT PRIMARY KEY,"
    " spec BLOB NOT NULL,"
    " paused INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " last_fire_at INTEGER,"
    " last_job_id TEXT"
    ") WITHOUT ROWID;"
    "CREATE TABLE leases("
    " name TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " token INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL"
    ") WITHOUT ROWID;";

/* Version 3: workflows (ADR 0014).  Only new tables, triggers and columns
 * added with ALTER TABLE ... ADD COLUMN (a schema edit: rows written before
 * simply lack them and read the defaults), so the step is instant however
 * many jobs the file holds; no index on `jobs` is added for the same
 * reason, since building one reads every row under the write lock.
 *
 *   jobs.workflow, node        membership, NULL for plain jobs
 *   jobs.policy                AT_PARENT_FAIL_*
 *   jobs.nparents              edges where the job is the child (snapshots
 *                              skip the deps lookup when 0)
 *   jobs.parents_left          unfinished parents while WAITING
 *   deps(parent, child)        one row per edge, clustered by parent: a
 *                              finishing job finds its children in one range;
 *                              `done` marks an edge already counted, so a
 *                              parent that finishes twice (requeued after it
 *                              died) never counts twice; `seq` keeps the
 *                              order the parents were given in
 *   deps_child (child, seq)    a job's parents, for snapshots
 *   wf_jobs(workflow, id)      a workflow's jobs in id order (wf_jobs,
 *                              wf_cancel)
 *   workflows(workflow, n1..n7) jobs per state, like `queues`
 *
 * The membership rows and the per-workflow counts are kept by triggers,
 * not by the C code: every change of a job's state, on any path (claim,
 * lease expiry, promotion, purge, requeue, a process still running the
 * previous release), passes through them in the statement that made it.
 * They act only for jobs with a workflow (the WHEN clause), but SQLite
 * evaluates that clause inside the trigger's sub-program, which it sets up
 * for every row written.  On INSERT that slowed plain batch enqueues by a
 * quarter to 40%, and a job enters a workflow on one path only (workflow
 * submit), so version 6 drops the insert trigger and that path writes the
 * two rows itself (S_WF_MEMBER, S_WF_COUNT_NEW). */
#define WF_SUM "n1 + n2 + n3 + n4 + n5 + n6 + n7"
/* The counts' changes: a job of the workflow enters new.state, leaves
 * old.state, or both.  Each column once per SET (SQLite keeps only the
 * last assignment of a column). */
#define WF_INC                                                                                               \
    "n1 = n1 + (new.state = 1), n2 = n2 + (new.state = 2), n3 = n3 + (new.state = 3), "                      \
    "n4 = n4 + (new.state = 4), n5 = n5 + (new.state = 5), n6 = n6 + (new.state = 6), "                      \
    "n7 = n7 + (new.state = 7)"
#define WF_DEC                                                                                               \
    "n1 = n1 - (old.state = 1), n2 = n2 - (old.state = 2), n3 = n3 - (old.state = 3), "                      \
    "n4 = n4 - (old.state = 4), n5 = n5 - (old.state = 5), n6 = n6 - (old.state = 6), "                      \
    "n7 = n7 - (old.state = 7)"
#define WF_MOVE                                                                                              \
    "n1 = n1 + (new.state = 1) - (old.state = 1), n2 = n2 + (new.state = 2) - (old.state = 2), "             \
    "n3 = n3 + (new.state = 3) - (old.state = 3), n4 = n4 + (new.state = 4) - (old.state = 4), "             \
    "n5 = n5 + (new.state = 5) - (old.state = 5), n6 = n6 + (new.state = 6) - (old.state = 6), "             \
    "n7 = n7 + (new.state = 7) - (old.state = 7)"
static const char k_schema_v3[] =
    "ALTER TABLE jobs ADD COLUMN workflow BLOB;"
    "ALTER TABLE jobs ADD COLUMN node TEXT;"
    "ALTER TABLE jobs ADD COLUMN policy INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN nparents INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN parents_left INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE deps("
    " parent BLOB NOT NULL,"
    " child BLOB NOT NULL,"
    " seq INTEGER NOT NULL,"
    " done INTEGER NOT NULL,"
    " PRIMARY KEY(parent, child)"
    ") WITHOUT ROWID;"
    "CREATE INDEX deps_child ON deps(child, seq);"
    "CREATE TABLE wf_jobs(workflow BLOB NOT NULL, id BLOB NOT NULL, PRIMARY KEY(workflow, id)) WITHOUT ROWID;"
    "CREATE TABLE workflows("
    " workflow BLOB PRIMARY KEY,"
    " n1 INTEGER NOT NULL DEFAULT 0, n2 INTEGER NOT NULL DEFAULT 0, n3 INTEGER NOT NULL DEFAULT 0,"
    " n4 INTEGER NOT NULL DEFAULT 0, n5 INTEGER NOT NULL DEFAULT 0, n6 INTEGER NOT NULL DEFAULT 0,"
    " n7 INTEGER NOT NULL DEFAULT 0"
    ") WITHOUT ROWID;"
    "CREATE TRIGGER jobs_wf_insert AFTER INSERT ON jobs WHEN new.workflow IS NOT NULL BEGIN"
    " INSERT INTO wf_jobs(workflow, id) VALUES(new.workflow, new.id);"
    " INSERT OR IGNORE INTO workflows(workflow) VALUES(new.workflow);"
    " UPDATE workflows SET " WF_INC " WHERE workflow = new.workflow;"
    " END;"
    "CREATE TRIGGER jobs_wf_state AFTER UPDATE OF state ON jobs"
    " WHEN old.workflow IS NOT NULL AND new.state <> old.state BEGIN"
    " UPDATE workflows SET " WF_MOVE " WHERE workflow = old.workflow;"
    " END;"
    /* A purged job takes its own edges (as the child) along; its edges as a
     * parent stay while the children exist, so their snapshots still name
     * it. */
    "CREATE TRIGGER jobs_wf_delete AFTER DELETE ON jobs WHEN old.workflow IS NOT NULL BEGIN"
    " DELETE FROM wf_jobs WHERE workflow = old.workflow AND id = old.id;"
    " DELETE FROM deps WHERE child = old.id;"
    " UPDATE workflows SET " WF_DEC " WHERE workflow = old.workflow;"
    " DELETE FROM workflows WHERE workflow = old.workflow AND " WF_SUM " = 0;"
    " END;";

/* Version 4: worker support (ADR 0015).  Again only a column added with
 * ALTER TABLE (existing queues read "not paused") and a new table, so the
 * step is instant at any size.
 *
 *   queues.paused              the queue's paused flag: claim skips the
 *                              queue, every process reads it in its claim
 *   buckets(queue, ...)        one token bucket per rate-limited queue,
 *                              keyed by name (a rate limit on a queue that
 *                              never had a job makes no `queues` row, which
 *                              stats would list): the limit and period it
 *                              was filled for, its content in units of
 *                              1/period token, and the store wall ms of its
 *                              last refill */
static const char k_schema_v4[] =
    "ALTER TABLE queues ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE buckets("
    " queue TEXT PRIMARY KEY,"
    " lim INTEGER NOT NULL,"
    " period INTEGER NOT NULL,"
    " units INTEGER NOT NULL,"
    " at INTEGER NOT NULL"
    ") WITHOUT ROWID;";

/* Version 5: trace context.  One column added with ALTER TABLE, so the step
 * is instant at any size and the jobs already stored read NULL (no trace).
 *
 *   jobs.traceparent           the W3C traceparent given at enqueue or
 *                              workflow submit (55 characters, validated by
 *                              the core), NULL if none (a NULL takes no room
 *                              in the row beyond its header byte) */
static const char k_schema_v5[] = "ALTER TABLE jobs ADD COLUMN traceparent TEXT;";

/* Version 6: faster plain inserts.  The AFTER INSERT trigger of version 3
 * ran a sub-program for every job inserted, workflow or not (measured: a
 * batch enqueue 1.26-1.68x faster without it); workflow submit now writes
 * the membership row and the count itself.  Dropping a trigger is a schema
 * edit, instant at any size.  A process of version 5 still open on the file
 * would submit workflows without them: see ADR 0006. */
static const char k_schema_v6[] = "DROP TRIGGER IF EXISTS jobs_wf_insert;";

/* k_steps[v] takes a file from schema version v to v + 1. */
static const char *const k_steps[SCHEMA_VERSION] = {k_schema_v1, k_schema_v2, k_schema_v3,
                                                    k_schema_v4, k_schema_v5, k_schema_v6};

/* The columns of a job snapshot, in this order everywhere: those of
 * version 1 (what a plain enqueue writes, besides its traceparent), then
 * the workflow ones of version 3 and the traceparent of version 5. */
#define JOB_COLS_V1                                                                                          \
    "id, qid, state, priority, run_at, attempts, max_attempts, token, created_at, updated_at, started_at, "  \
    "lease_until, finished_at, lease_ms, backoff_base_ms, backoff_cap_ms, backoff_jitter, cancel_req, "      \
    "type, "                                                                                                 \
    "idem_key, last_error, result, payload"
#define JOB_COLS JOB_COLS_V1 ", workflow, node, policy, nparents, parents_left, traceparent"
enum {
    C_ID,
    C_QID,
    C_STATE,
    C_PRIO,
    C_RUN_AT,
    C_ATTEMPTS,
    C_MAX_ATTEMPTS,
    C_TOKEN,
    C_CREATED,
    C_UPDATED,
    C_STARTED,
    C_LEASE,
    C_FINISHED,
    C_LEASE_MS,
    C_BASE,
    C_CAP,
    C_JITTER,
    C_CANCEL,
    C_TYPE,
    C_KEY,
    C_ERROR,
    C_RESULT,
    C_PAYLOAD,
    C_WORKFLOW,
    C_NODE,
    C_POLICY,
    C_NPARENTS,
    C_LEFT,
    C_TRACEPARENT
};

/* The columns of a schedule row, in this order everywhere. */
#define SCHED_COLS "name, spec, paused, created_at, updated_at, last_fire_at, last_job_id"
enum { SC_NAME, SC_SPEC, SC_PAUSED, SC_CREATED, SC_UPDATED, SC_LAST_FIRE, SC_LAST_JOB };

/* States as literals: a partial index is used only when the query's WHERE
 * names the same constant. */
#define SCHED "2"
#define READY "3"
#define RUNNING "4"

enum stmt_id {
    S_BEGIN_W,
    S_BEGIN_R,
    S_COMMIT,
    S_ROLLBACK,
    S_Q_BY_NAME,
    S_Q_NAME,
    S_Q_INSERT,
    S_Q_ADD,
    S_Q_ALL,
    S_Q_SCHED,
    S_Q_DEAD,
    S_ANY_DUE,
    S_STATS,
    S_IDEM_GET,
    S_IDEM_PUT,
    S_IDEM_PURGE,
    S_INSERT,
    S_GET,
    S_HELD,
    S_EXPIRE_ALL,
    S_EXPIRE_ONE,
    S_PROMOTE,
    S_CLAIM,
    S_SET_ASIDE,
    S_HAS_READY,
    S_HAS_DUE,
    S_HAS_EXPIRED,
    S_NEXT_DUE,
    S_NEXT_LEASE,
    S_ACK,
    S_ACK_FAST,
    S_CANCELLED,
    S_FAIL,
    S_TOUCH,
    S_MARK_CANCEL,
    S_REQUEUE_ONE,
    S_REQUEUE_Q,
    S_PURGE,
    S_LIST_IDS,
    S_LIST_READY,
    S_LIST_RUNNING,
    S_SCHED_SPEC,
    S_SCHED_INSERT,
    S_SCHED_RESPEC,
    S_SCHED_DELETE,
    S_SCHED_PAUSE,
    S_SCHED_ALL,
    S_SCHED_ONE,
    S_SCHED_LAST,
    S_SCHED_FIRED,
    S_LEASE_GET,
    S_LEASE_PUT,
    S_LEASE_EXPIRE,
    S_WF_INSERT,
    S_WF_MEMBER,
    S_WF_COUNT_NEW,
    S_STATE_OF,
    S_DEP_PUT,
    S_CHILDREN,
    S_CHILD_GET,
    S_CHILD_LEFT,
    S_CHILD_MOVE,
    S_PARENTS,
    S_WF_COUNTS,
    S_WF_IDS,
    S_WF_STATES,
    S_Q_PAUSED,
    S_Q_PAUSE,
    S_RELEASE,
    S_BUCKET_GET,
    S_BUCKET_PUT,
    S_COUNT__
};

#define EXPIRE_SET                                                                                           \
    "UPDATE jobs SET state = CASE WHEN cancel_req THEN 7 WHEN attempts >= max_attempts THEN 6 ELSE 3 END,"    \
    " last_error = CASE WHEN cancel_req THEN 'cancelled; the holder''s lease expired'"                      \
    " WHEN attempts >= max_attempts THEN 'lease expired on the last attempt' ELSE 'lease expired' END,"      \
    " finished_at = CASE WHEN cancel_req OR attempts >= max_attempts THEN ?1 END,"                           \
    " lease_until = NULL, updated_at = ?1 "

static const char *const k_sql[S_COUNT__] = {
    [S_BEGIN_W] = "BEGIN IMMEDIATE",
    [S_BEGIN_R] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_Q_BY_NAME] = "SELECT qid FROM queues WHERE name = ?1",
    [S_Q_NAME] = "SELECT name FROM queues WHERE qid = ?1",
    [S_Q_INSERT] = "INSERT INTO queues(name) VALUES(?1)",
    [S_Q_ADD] = "UPDATE queues SET n1 = n1 + ?2, n2 = n2 + ?3, n3 = n3 + ?4, n4 = n4 + ?5, n5 = n5 + ?6,"
                " n6 = n6 + ?7, n7 = n7 + ?8 WHERE qid = ?1",
    [S_Q_ALL] = "SELECT qid, n1, n2, n3, n4, n5, n6, n7 FROM queues",
    [S_Q_SCHED] = "SELECT qid FROM queues WHERE n2 > 0",
    [S_Q_DEAD] = "SELECT qid FROM queues WHERE n6 > 0",
    [S_ANY_DUE] = "SELECT 1 FROM queues q WHERE q.n2 > 0 AND EXISTS(SELECT 1 FROM jobs j WHERE j.qid = q.qid"
                  " AND j.state = " SCHED " AND j.run_at <= ?1) LIMIT 1",
    [S_STATS] = "SELECT name, n1, n2, n3, n4, n5, n6, n7, (SELECT min(run_at) FROM jobs j WHERE j.qid = q.qid"
                " AND j.state = " SCHED ") FROM queues q ORDER BY name",
    [S_IDEM_GET] = "SELECT id, expires FROM idem WHERE key = ?1",
    [S_IDEM_PUT] = "INSERT OR REPLACE INTO idem(key, id, expires) VALUES(?1, ?2, ?3)",
    [S_IDEM_PURGE] = "DELETE FROM idem WHERE expires <= ?1",
    [S_INSERT] =
        "INSERT INTO jobs(" JOB_COLS_V1 ", traceparent) VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6, 0, ?7, ?7, NULL,"
        " NULL, NULL, ?8, ?9, ?10, ?11, 0, ?12, ?13, NULL, NULL, ?14, ?15)",
    [S_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [S_HELD] = "SELECT qid, state, token, cancel_req, attempts, max_attempts, lease_ms, lease_until FROM jobs"
               " WHERE id = ?1",
    [S_EXPIRE_ALL] = EXPIRE_SET "WHERE state = " RUNNING " AND lease_until <= ?1 RETURNING qid, state, id",
    [S_EXPIRE_ONE] =
        EXPIRE_SET "WHERE id = ?2 AND state = " RUNNING " AND lease_until <= ?1 RETURNING qid, state, id",
    [S_PROMOTE] = "UPDATE jobs SET state = " READY ", updated_at = ?2 WHERE qid = ?1 AND state = " SCHED
                  " AND run_at <= ?2",
    [S_CLAIM] =
        "UPDATE jobs SET state = " RUNNING ", attempts = attempts + 1, token = token + 1, started_at = ?3,"
        " lease_until = ?3 + lease_ms, updated_at = ?3 WHERE id IN (SELECT id FROM jobs WHERE qid = ?1"
        " AND state = " READY " ORDER BY priority DESC, run_at, id LIMIT ?2) RETURNING " JOB_COLS,
    [S_SET_ASIDE] = "UPDATE jobs SET state = 6, finished_at = ?2, lease_until = NULL, updated_at = ?2 WHERE id = ?1",
    [S_HAS_READY] = "SELECT 1 FROM jobs WHERE qid = ?1 AND state = " READY " LIMIT 1",
    [S_HAS_DUE] = "SELECT 1 FROM jobs WHERE qid = ?1 AND state = " SCHED " AND run_at <= ?2 LIMIT 1",
    [S_HAS_EXPIRED] = "SELECT 1 FROM jobs WHERE state = " RUNNING " AND lease_until <= ?1 LIMIT 1",
    [S_NEXT_DUE] = "SELECT min(run_at) FROM jobs WHERE qid = ?1 AND state = " SCHED,
    [S_NEXT_LEASE] = "SELECT min(lease_until) FROM jobs WHERE state = " RUNNING,
    [S_ACK] = "UPDATE jobs SET state = 5, result = ?2, finished_at = ?3, lease_until = NULL, updated_at = ?3"
              " WHERE id = ?1",
    [S_ACK_FAST] =
        "UPDATE jobs SET state = 5, result = ?2, finished_at = ?3, lease_until = NULL, updated_at = ?3"
        " WHERE id = ?1 AND token = ?4 AND state = " RUNNING " AND cancel_req = 0 AND lease_until > ?3"
        " RETURNING qid",
    [S_CANCELLED] = "UPDATE jobs SET state = 7, finished_at = ?2, lease_until = NULL, updated_at = ?2"
                    " WHERE id = ?1",
    [S_FAIL] = "UPDATE jobs SET state = ?2, run_at = coalesce(?3, run_at), last_error = coalesce(?4, "
               "last_error), finished_at = ?5,"
               " lease_until = NULL, updated_at = ?6 WHERE id = ?1",
    [S_TOUCH] = "UPDATE jobs SET lease_until = ?2 WHERE id = ?1",
    [S_MARK_CANCEL] = "UPDATE jobs SET cancel_req = 1, updated_at = ?2 WHERE id = ?1",
    [S_REQUEUE_ONE] = "UPDATE jobs SET state = " READY ", attempts = 0, cancel_req = 0, run_at = ?2,"
                      " finished_at = NULL, lease_until = NULL, updated_at = ?2 WHERE id = ?1",
    [S_REQUEUE_Q] = "UPDATE jobs SET state = " READY ", attempts = 0, cancel_req = 0, run_at = ?2,"
                    " finished_at = NULL, lease_until = NULL, updated_at = ?2 WHERE qid = ?1 AND state = 6"
                    " AND state NOT IN (3, 4)",
    [S_PURGE] = "DELETE FROM jobs WHERE state >= 5 AND finished_at < ?1 RETURNING qid, state",
    [S_LIST_IDS] = "SELECT id FROM jobs WHERE qid = ?1 AND state = ?2 AND state NOT IN (3, 4) AND id > ?3"
                   " ORDER BY id LIMIT ?4",
    [S_LIST_READY] =
        "SELECT id FROM jobs INDEXED BY jobs_ready WHERE qid = ?1 AND state = " READY " AND id > ?3"
        " ORDER BY id LIMIT ?4",
    [S_LIST_RUNNING] = "SELECT id FROM jobs INDEXED BY jobs_lease WHERE qid = ?1 AND state = " RUNNING
                       " AND id > ?3 ORDER BY id LIMIT ?4",
    [S_SCHED_SPEC] = "SELECT spec FROM schedules WHERE name = ?1",
    [S_SCHED_INSERT] =
        "INSERT INTO schedules(name, spec, paused, created_at, updated_at) VALUES(?1, ?2, 0, ?3, ?3)",
    [S_SCHED_RESPEC] = "UPDATE schedules SET spec = ?2, updated_at = ?3 WHERE name = ?1",
    [S_SCHED_DELETE] = "DELETE FROM schedules WHERE name = ?1",
    [S_SCHED_PAUSE] = "UPDATE schedules SET paused = ?2 WHERE name = ?1",
    [S_SCHED_ALL] = "SELECT " SCHED_COLS " FROM schedules ORDER BY name",
    [S_SCHED_ONE] = "SELECT " SCHED_COLS " FROM schedules WHERE name = ?1",
    [S_SCHED_LAST] = "SELECT last_fire_at FROM schedules WHERE name = ?1",
    [S_SCHED_FIRED] = "UPDATE schedules SET last_fire_at = ?2, last_job_id = ?3 WHERE name = ?1",
    [S_LEASE_GET] = "SELECT owner, token, expires_at FROM leases WHERE name = ?1",
    [S_LEASE_PUT] = "INSERT OR REPLACE INTO leases(name, owner, token, expires_at) VALUES(?1, ?2, ?3, ?4)",
    [S_LEASE_EXPIRE] = "UPDATE leases SET expires_at = ?2 WHERE name = ?1",
    [S_WF_INSERT] =
        "INSERT INTO jobs(" JOB_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6, 0, ?7, ?7, NULL, NULL, ?15,"
        " ?8, ?9, ?10, ?11, 0, ?12, ?13, ?16, NULL, ?14, ?17, ?18, ?19, ?20, ?21, ?22)",
    [S_WF_MEMBER] = "INSERT INTO wf_jobs(workflow, id) VALUES(?1, ?2)",
    /* ?2 the new job's state: what the insert trigger of versions 3-5 did. */
    [S_WF_COUNT_NEW] = "INSERT INTO workflows(workflow, n1, n2, n3, n4, n5, n6, n7)"
                       " VALUES(?1, ?2 = 1, ?2 = 2, ?2 = 3, ?2 = 4, ?2 = 5, ?2 = 6, ?2 = 7)"
                       " ON CONFLICT(workflow) DO UPDATE SET n1 = n1 + excluded.n1, n2 = n2 + excluded.n2,"
                       " n3 = n3 + excluded.n3, n4 = n4 + excluded.n4, n5 = n5 + excluded.n5,"
                       " n6 = n6 + excluded.n6, n7 = n7 + excluded.n7",
    [S_STATE_OF] = "SELECT state FROM jobs WHERE id = ?1",
    [S_DEP_PUT] = "INSERT OR IGNORE INTO deps(parent, child, seq, done) VALUES(?1, ?2, ?3, ?4)",
    /* RETURNING runs the whole update at the first step: the children can be
     * changed while their rows are read back. */
    [S_CHILDREN] = "UPDATE deps SET done = 1 WHERE parent = ?1 AND done = 0 RETURNING child",
    [S_CHILD_GET] = "SELECT qid, state, policy, parents_left, run_at FROM jobs WHERE id = ?1",
    [S_CHILD_LEFT] = "UPDATE jobs SET parents_left = ?2 WHERE id = ?1",
    [S_CHILD_MOVE] = "UPDATE jobs SET state = ?2, parents_left = 0, updated_at = ?3, finished_at = ?4,"
                     " last_error = coalesce(?5, last_error) WHERE id = ?1",
    [S_PARENTS] = "SELECT parent FROM deps WHERE child = ?1 ORDER BY seq",
    [S_WF_COUNTS] = "SELECT n1, n2, n3, n4, n5, n6, n7 FROM workflows WHERE workflow = ?1",
    [S_WF_IDS] = "SELECT id FROM wf_jobs WHERE workflow = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    [S_WF_STATES] = "SELECT w.id, j.state FROM wf_jobs w JOIN jobs j ON j.id = w.id WHERE w.workflow = ?1",
    [S_Q_PAUSED] = "SELECT paused FROM queues WHERE qid = ?1",
    [S_Q_PAUSE] = "UPDATE queues SET paused = ?2 WHERE qid = ?1",
    /* started_at stays: it tells when the given-back attempt began. */
    [S_RELEASE] = "UPDATE jobs SET state = ?2, attempts = max(attempts - 1, 0), run_at = ?3, lease_until = NULL,"
                  " updated_at = ?4 WHERE id = ?1",
    [S_BUCKET_GET] = "SELECT lim, period, units, at FROM buckets WHERE queue = ?1",
    [S_BUCKET_PUT] =
        "INSERT OR REPLACE INTO buckets(queue, lim, period, units, at) VALUES(?1, ?2, ?3, ?4, ?5)",
};

/* ------------------------------------------------------------ structures */

struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT__];
    int64_t busy_ms;       /* give up waiting for another process's lock after this */
    int64_t busy_start_ns; /* when the current wait began */
    unsigned seed;         /* jitter of the busy handler's sleeps */
};

/* A job that became SUCCEEDED, DEAD or CANCELLED and whose waiting
 * children have yet to learn it. */
struct finished {
    uint8_t id[16];
    int state;
};

/* Count changes of one queue during a transaction, written at commit. */
struct delta {
    int64_t qid;
    int64_t d[AT_STATE_COUNT__];
};

struct at_backend {
    at_store *store;
    /* Guards `w`, the queue cache and the per-transaction fields. */
    pthread_mutex_t mu;
    struct conn w;
    /* The watch connection has its own lock: pollers read data_version
     * without queueing behind a long transaction. */
    pthread_mutex_t watch_mu;
    struct conn watch;
    sqlite3_stmt *data_version;
    int64_t last_dv;
    /* Queue cache: names by qid (qids are small and dense), and an open
     * addressing table name -> qid.  Holds only what the file holds: any
     * rollback empties it. */
    char **qnames;
    size_t qcap;
    int64_t *qhash;
    size_t qhmask, qhn;
    /* The transaction in progress. */
    int64_t now, mono;
    struct delta *d;
    size_t dn, dcap;
    int last_src; /* SQLite code of the last failure in this transaction */
    bool hot;     /* the last claim found jobs: skip the look before the next */
    bool released; /* this transaction made a WAITING job SCHEDULED or READY */
    /* Propagation (settle): jobs that finished and whose children are still
     * to be resolved, and the children of the one being resolved.  Kept
     * between transactions so a busy store does not allocate per ack. */
    struct finished *work;
    size_t nwork, capwork;
    uint8_t (*kids)[16];
    size_t capkids;
};

/* ---------------------------------------------------------------- errors */

static int map_sqlite(sqlite3 *db, int src)
{
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return AT_ERR_BUSY;
    case SQLITE_FULL:
        return AT_ERR_FULL;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return AT_ERR_CORRUPT;
    case SQLITE_NOMEM:
        return AT_ERR_NOMEM;
    case SQLITE_TOOBIG:
        return AT_ERR_TOOBIG;
    case SQLITE_IOERR: {
        /* A write refused for size (RLIMIT_FSIZE: EFBIG, quota: EDQUOT) is a
         * full store to the user, as ENOSPC is. */
        int e = db ? sqlite3_system_errno(db) : 0;
        return e == EFBIG || e == ENOSPC || e == EDQUOT ? AT_ERR_FULL : AT_ERR_IO;
    }
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
        return AT_ERR_IO;
    default:
        return AT_ERR_INTERNAL;
    }
}

/* Record a failed SQLite call and return its AT_ERR_* code. */
static int sqerr(at_backend *be, struct conn *c, int src, const char *what)
{
    be->last_src = src;
    return at_store_error(be->store, map_sqlite(c->db, src), src, "sqlite: %s: %s (%s)", what,
                          sqlite3_errmsg(c->db), sqlite3_errstr(src));
}

static int nomem(at_backend *be, const char *what)
{
    return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory %s", what);
}

/* ------------------------------------------------------------ statements */

static sqlite3_stmt *S(at_backend *be, int which)
{
    sqlite3_stmt *s = be->w.st[which];
    sqlite3_reset(s);
    return s;
}

/* Step a statement that returns no rows (or whose rows are ignored). */
static int run(at_backend *be, sqlite3_stmt *s, const char *what)
{
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        ;
    sqlite3_reset(s);
    return src == SQLITE_DONE ? 0 : sqerr(be, &be->w, src, what);
}

/* Step a one-row, one-integer query: *out = the value, or `none` when there
 * is no row or the value is NULL. */
static int query_int(int64_t *out, at_backend *be, sqlite3_stmt *s, int64_t none, const char *what)
{
    int src = sqlite3_step(s);
    *out = none;
    if (src == SQLITE_ROW) {
        if (sqlite3_column_type(s, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(s, 0);
        src = SQLITE_DONE;
    }
    sqlite3_reset(s);
    return src == SQLITE_DONE ? 0 : sqerr(be, &be->w, src, what);
}

/* Blob of a canonical id: the core hands us only well-formed ids. */
static void id_bytes(uint8_t out[16], const char *id)
{
    if (at_id_parse(out, id) != 0)
        memset(out, 0, 16);
}

/* ----------------------------------------------------------- busy waits */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* SQLite's own busy handler sleeps 1, 2, 5, ... 100 ms: fine for rare
 * conflicts, but with several busy processes the long sleeps waste most of
 * the time the lock is free.  These sleeps start at 20 us and double to
 * 2 ms, with jitter so that waiters do not wake in step. */
static int on_busy(void *arg, int count)
{
    struct conn *c = arg;
    int64_t now = mono_ns();
    if (count == 0)
        c->busy_start_ns = now;
    int64_t left = c->busy_start_ns + c->busy_ms * 1000000 - now;
    if (left <= 0)
        return 0;
    int64_t us = (int64_t)20 << (count < 7 ? count : 7);
    if (us > 2000)
        us = 2000;
    us = us / 2 + (int64_t)(rand_r(&c->seed) % (unsigned)(us / 2 + 1));
    if (us * 1000 > left)
        us = left / 1000 + 1;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

/* SQLite returns SQLITE_BUSY without calling the busy handler in a few WAL
 * cases: processes switching a new file to WAL at the same moment (all but
 * one are refused: measured 37 of 800 openers, after 0.1 ms), a connection
 * running recovery after a process died, or the last connection cleaning
 * up as it closes ("Sometimes Queries Return SQLITE_BUSY In WAL Mode" in
 * SQLite's WAL documentation).  A step that
 * starts a transaction or configures a connection is safe to repeat, so
 * such a BUSY is waited out here, within the same busy_timeout counted from
 * the operation's start.  True: sleep done, try again. */
static bool busy_again(struct conn *c, int src, int64_t start_ns, int *count)
{
    if ((src & 0xff) != SQLITE_BUSY)
        return false;
    int64_t left = start_ns + c->busy_ms * 1000000 - mono_ns();
    if (left <= 0)
        return false;
    int64_t ns = (int64_t)200000 << (*count < 4 ? *count : 4); /* 0.2 ms up to 3.2 ms */
    (*count)++;
    ns = ns / 2 + (int64_t)(rand_r(&c->seed) % (unsigned)(ns / 2 + 1));
    if (ns > left)
        ns = left;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
    return true;
}

/* ----------------------------------------------------------- queue cache */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

static void cache_reset(at_backend *be)
{
    for (size_t i = 0; i < be->qcap; i++)
        at__free(be->qnames[i]);
    at__free(be->qnames);
    at__free(be->qhash);
    be->qnames = NULL;
    be->qhash = NULL;
    be->qcap = 0;
    be->qhmask = 0;
    be->qhn = 0;
}

static int64_t cache_find(const at_backend *be, const char *name)
{
    if (!be->qhash)
        return 0;
    for (size_t i = hash_name(name) & be->qhmask;; i = (i + 1) & be->qhmask) {
        int64_t q = be->qhash[i];
        if (q == 0)
            return 0;
        if (strcmp(be->qnames[q], name) == 0)
            return q;
    }
}

static const char *cache_name(const at_backend *be, int64_t qid)
{
    return qid > 0 && (size_t)qid < be->qcap ? be->qnames[qid] : NULL;
}

/* Best effort: a cache that cannot grow only costs lookups. */
static void cache_put(at_backend *be, int64_t qid, const char *name)
{
    if (qid <= 0 || qid > INT32_MAX || cache_name(be, qid))
        return;
    if ((size_t)qid >= be->qcap) {
        size_t nc = be->qcap ? be->qcap : 16;
        while (nc <= (size_t)qid)
            nc *= 2;
        char **nn = at__realloc(be->qnames, nc * sizeof *nn);
        if (!nn)
            return;
        memset(nn + be->qcap, 0, (nc - be->qcap) * sizeof *nn);
        be->qnames = nn;
        be->qcap = nc;
    }
    if ((be->qhn + 1) * 2 > be->qhmask) {
        size_t nm = be->qhmask ? be->qhmask * 2 + 1 : 31;
        int64_t *nh = at__calloc(nm + 1, sizeof *nh);
        if (!nh)
            return;
        for (size_t i = 0; be->qhash && i <= be->qhmask; i++)
            if (be->qhash[i]) {
                size_t k = hash_name(be->qnames[be->qhash[i]]) & nm;
                while (nh[k])
                    k = (k + 1) & nm;
                nh[k] = be->qhash[i];
            }
        at__free(be->qhash);
        be->qhash = nh;
        be->qhmask = nm;
    }
    char *copy = at__strdup(name);
    if (!copy)
        return;
    be->qnames[qid] = copy;
    size_t k = hash_name(name) & be->qhmask;
    while (be->qhash[k])
        k = (k + 1) & be->qhmask;
    be->qhash[k] = qid;
    be->qhn++;
}

/* The qid of queue `name`: *out 0 when it has none and `create` is false. */
static int queue_id(int64_t *out, at_backend *be, const char *name, bool create)
{
    *out = cache_find(be, name);
    if (*out)
        return 0;
    sqlite3_stmt *s = S(be, S_Q_BY_NAME);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = query_int(out, be, s, 0, "reading a queue");
    if (rc == 0 && *out == 0 && create) {
        s = S(be, S_Q_INSERT);
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        rc = run(be, s, "creating a queue");
        if (rc == 0)
            *out = sqlite3_last_insert_rowid(be->w.db);
    }
    if (rc == 0 && *out)
        cache_put(be, *out, name);
    return rc;
}

/* The name of queue `qid` (cached; owned by the backend). */
static int queue_name(const char **out, at_backend *be, int64_t qid)
{
    *out = cache_name(be, qid);
    if (*out)
        return 0;
    sqlite3_stmt *s = S(be, S_Q_NAME);
    sqlite3_bind_int64(s, 1, qid);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        if (!name || at__check_name(name)) {
            /* Snapshots carry it to callers and metrics print it unquoted. */
            sqlite3_reset(s);
            return at_store_error(be->store, AT_ERR_CORRUPT, 0, "sqlite: queue %lld has a malformed name",
                                  (long long)qid);
        }
        cache_put(be, qid, name);
        *out = cache_name(be, qid);
        src = SQLITE_DONE;
    } else if (src == SQLITE_DONE) {
        sqlite3_reset(s);
        return at_store_error(be->store, AT_ERR_CORRUPT, 0, "sqlite: a job refers to queue %lld, which is missing",
                              (long long)qid);
    }
    sqlite3_reset(s);
    if (src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "reading a queue name");
    return *out ? 0 : nomem(be, "caching a queue name");
}

/* ---------------------------------------------------------------- counts */

static int count(at_backend *be, int64_t qid, int state, int64_t n)
{
    size_t i = 0;
    while (i < be->dn && be->d[i].qid != qid)
        i++;
    if (i == be->dn) {
        if (be->dn == be->dcap) {
            size_t nc = be->dcap ? be->dcap * 2 : 8;
            struct delta *nd = at__realloc(be->d, nc * sizeof *nd);
            if (!nd)
                return nomem(be, "counting jobs");
            be->d = nd;
            be->dcap = nc;
        }
        memset(&be->d[i], 0, sizeof be->d[i]);
        be->d[i].qid = qid;
        be->dn++;
    }
    be->d[i].d[state] += n;
    return 0;
}

/* One job of queue qid moved from state `from` to state `to`. */
static int move_count(at_backend *be, int64_t qid, int from, int to)
{
    int rc = count(be, qid, from, -1);
    return rc ? rc : count(be, qid, to, 1);
}

static int flush_counts(at_backend *be)
{
    for (size_t i = 0; i < be->dn; i++) {
        bool any = false;
        for (int k = 1; k < AT_STATE_COUNT__; k++)
            any |= be->d[i].d[k] != 0;
        if (!any)
            continue;
        sqlite3_stmt *s = S(be, S_Q_ADD);
        sqlite3_bind_int64(s, 1, be->d[i].qid);
        for (int k = 1; k < AT_STATE_COUNT__; k++)
            sqlite3_bind_int64(s, k + 1, be->d[i].d[k]);
        int rc = run(be, s, "updating the queue counts");
        if (rc)
            return rc;
    }
    be->dn = 0;
    return 0;
}

/* ----------------------------------------------------------- transactions */

static void sync_time(at_backend *be)
{
    be->now = at_store_clock_wall(be->store);
    be->mono = at_store_clock_mono(be->store);
}

typedef int (*txn_body)(at_backend *be, void *ctx);

/* Run `body` in one write transaction: all of it commits or none of it.  A
 * body reports outcomes that must still commit (a job becoming CANCELLED
 * while the caller learns AT_ERR_CANCELLED) through its ctx and returns 0;
 * a nonzero return rolls everything back.  Caller holds be->mu. */
static int run_write(at_backend *be, txn_body body, void *ctx)
{
    int64_t start_ns = mono_ns();
    int nbusy = 0;
    for (int attempt = 0;; attempt++) {
        be->dn = 0;
        be->last_src = 0;
        be->released = false;
        int src;
        do {
            src = sqlite3_step(S(be, S_BEGIN_W));
            sqlite3_reset(be->w.st[S_BEGIN_W]);
        } while (src != SQLITE_DONE && busy_again(&be->w, src, start_ns, &nbusy));
        if (src != SQLITE_DONE) {
            /* The busy handler (or busy_again) already waited busy_timeout. */
            if ((src & 0xff) == SQLITE_BUSY)
                return at_store_error(be->store, AT_ERR_BUSY, src,
                                      "sqlite: the database stayed locked by another connection for over %lld ms"
                                      " (busy_timeout)",
                                      (long long)be->w.busy_ms);
            return sqerr(be, &be->w, src, "beginning a transaction");
        }
        /* Read the clock once the write lock is ours: read before a wait for
         * it, a claim's start and lease deadline would be dated back by the
         * wait (the holder getting a shorter lease than asked, already over
         * after a wait longer than the lease, and overlapping the previous
         * holder's by the store's clock). */
        sync_time(be);
        int rc = body(be, ctx);
        if (rc == 0)
            rc = flush_counts(be);
        if (rc == 0) {
            src = sqlite3_step(S(be, S_COMMIT));
            sqlite3_reset(be->w.st[S_COMMIT]);
            if (src == SQLITE_DONE) {
                /* The core wakes pollers after enqueues and retries, not
                 * after acks: a child an ack released would otherwise wait
                 * for the next watch interval (the store's wake-up lock is
                 * a leaf, so taking it under be->mu is safe). */
                if (be->released)
                    at_store_notify(be->store);
                return 0;
            }
            rc = sqerr(be, &be->w, src, "committing");
        }
        /* After some errors (SQLITE_FULL, IOERR, NOMEM) SQLite has rolled
         * back already; ROLLBACK then fails harmlessly. */
        if (!sqlite3_get_autocommit(be->w.db)) {
            sqlite3_step(S(be, S_ROLLBACK));
            sqlite3_reset(be->w.st[S_ROLLBACK]);
        }
        /* Queues created by the transaction are gone again. */
        cache_reset(be);
        int busy = (be->last_src & 0xff) == SQLITE_BUSY || (be->last_src & 0xff) == SQLITE_LOCKED;
        if (!busy || attempt + 1 >= TXN_RETRIES)
            return rc;
    }
}

/* A read transaction: one snapshot for a multi-statement read. */
static int begin_read(at_backend *be)
{
    int src = sqlite3_step(S(be, S_BEGIN_R));
    sqlite3_reset(be->w.st[S_BEGIN_R]);
    return src == SQLITE_DONE ? 0 : sqerr(be, &be->w, src, "beginning a read");
}

static void end_read(at_backend *be)
{
    if (!sqlite3_get_autocommit(be->w.db)) {
        sqlite3_step(S(be, S_COMMIT));
        sqlite3_reset(be->w.st[S_COMMIT]);
    }
}

/* ------------------------------------------------------------- workflows */

static int push_finished(at_backend *be, const uint8_t id[16], int state)
{
    if (be->nwork == be->capwork) {
        size_t nc = be->capwork ? be->capwork * 2 : 16;
        struct finished *nw = at__realloc(be->work, nc * sizeof *nw);
        if (!nw)
            return nomem(be, "resolving a job's children");
        be->work = nw;
        be->capwork = nc;
    }
    memcpy(be->work[be->nwork].id, id, 16);
    be->work[be->nwork].state = state;
    be->nwork++;
    return 0;
}

/* Mark every not yet counted edge from `parent` done and read its children
 * into be->kids (*n_out of them). */
static int take_children(size_t *n_out, at_backend *be, const uint8_t parent[16])
{
    sqlite3_stmt *s = S(be, S_CHILDREN);
    sqlite3_bind_blob(s, 1, parent, 16, SQLITE_STATIC);
    size_t n = 0;
    int src, rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 0) != 16)
            continue;
        if (n == be->capkids) {
            size_t nc = be->capkids ? be->capkids * 2 : 64;
            uint8_t(*nk)[16] = at__realloc(be->kids, nc * sizeof *nk);
            if (!nk) {
                rc = nomem(be, "resolving a job's children");
                break;
            }
            be->kids = nk;
            be->capkids = nc;
        }
        memcpy(be->kids[n++], sqlite3_column_blob(s, 0), 16);
    }
    sqlite3_reset(s);
    if (rc)
        return rc;
    if (src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "reading a job's children");
    *n_out = n;
    return 0;
}

/* Child `cid` learns that its parent `pid` became `pstate` (store.h, wf_submit:
 * the propagation rule).  A child that ends DEAD or CANCELLED is pushed to
 * be->work, its own children's turn. */
static int resolve_child(at_backend *be, const uint8_t cid[16], const uint8_t pid[16], int pstate)
{
    sqlite3_stmt *s = S(be, S_CHILD_GET);
    sqlite3_bind_blob(s, 1, cid, 16, SQLITE_STATIC);
    int src = sqlite3_step(s);
    int64_t qid = 0, left = 0, run_at = 0;
    int state = 0, policy = 0;
    if (src == SQLITE_ROW) {
        qid = sqlite3_column_int64(s, 0);
        state = sqlite3_column_int(s, 1);
        policy = sqlite3_column_int(s, 2);
        left = sqlite3_column_int64(s, 3);
        run_at = sqlite3_column_int64(s, 4);
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "reading a waiting job");
    /* Purged, cancelled or already resolved by another parent: the edge
     * was only history. */
    if (src == SQLITE_DONE || state != AT_STATE_WAITING)
        return 0;
    int to;
    char why[96];
    if (pstate == AT_STATE_SUCCEEDED || policy == AT_PARENT_FAIL_RUN) {
        if (left > 1) {
            s = S(be, S_CHILD_LEFT);
            sqlite3_bind_blob(s, 1, cid, 16, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, left - 1);
            return run(be, s, "counting a finished parent");
        }
        to = run_at > be->now ? AT_STATE_SCHEDULED : AT_STATE_READY;
    } else {
        to = policy == AT_PARENT_FAIL_DEAD ? AT_STATE_DEAD : AT_STATE_CANCELLED;
        char pid_s[AT_ID_SIZE];
        at_id_format(pid_s, pid);
        snprintf(why, sizeof why, "parent %s is %s", pid_s, at_state_name(pstate));
    }
    bool ends = to == AT_STATE_DEAD || to == AT_STATE_CANCELLED;
    s = S(be, S_CHILD_MOVE);
    sqlite3_bind_blob(s, 1, cid, 16, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, to);
    sqlite3_bind_int64(s, 3, be->now);
    if (ends) {
        sqlite3_bind_int64(s, 4, be->now);
        sqlite3_bind_text(s, 5, why, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(s, 4);
        sqlite3_bind_null(s, 5);
    }
    int rc = run(be, s, ends ? "ending a job whose parent failed" : "releasing a waiting job");
    if (rc == 0)
        rc = move_count(be, qid, AT_STATE_WAITING, to);
    be->released |= rc == 0 && !ends;
    if (rc == 0 && ends)
        rc = push_finished(be, cid, to);
    return rc;
}

/* Job `id` has just become `state` (SUCCEEDED, DEAD or CANCELLED) in this
 * transaction: apply the propagation rule to its children, and to theirs,
 * before the transaction commits.  A worklist, not recursion, so a chain of
 * 100,000 cancellations needs no deep stack.  Each edge is visited once in
 * the life of the store (its `done` flag), so an ack costs O(children *
 * log n): one B-tree range for the edges, two lookups per child. */
static int settle(at_backend *be, const uint8_t id[16], int state)
{
    be->nwork = 0;
    int rc = push_finished(be, id, state);
    while (rc == 0 && be->nwork > 0) {
        struct finished p = be->work[--be->nwork];
        size_t nk = 0;
        rc = take_children(&nk, be, p.id);
        /* be->kids is refilled only by the next take_children, after this
         * loop; resolve_child pushes to be->work, never to be->kids. */
        for (size_t i = 0; rc == 0 && i < nk; i++)
            rc = resolve_child(be, be->kids[i], p.id, p.state);
    }
    return rc;
}

/* ------------------------------------------------------------ time moves */

/* Apply lease expiries reported by an EXPIRE statement's RETURNING rows.
 * Jobs that ended (DEAD, CANCELLED) are collected first and settled after
 * the statement is reset: settling runs statements of its own. */
static int run_expire(at_backend *be, sqlite3_stmt *s)
{
    int src, rc = 0;
    struct finished *ended = NULL;
    size_t nended = 0, cap = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW && rc == 0) {
        int64_t qid = sqlite3_column_int64(s, 0);
        int st = sqlite3_column_int(s, 1);
        if (st > 0 && st < AT_STATE_COUNT__) {
            rc = count(be, qid, AT_STATE_RUNNING, -1);
            if (rc == 0)
                rc = count(be, qid, st, 1);
        }
        if (rc == 0 && (st == AT_STATE_DEAD || st == AT_STATE_CANCELLED) &&
            sqlite3_column_bytes(s, 2) == 16) {
            if (nended == cap) {
                size_t nc = cap ? cap * 2 : 8;
                struct finished *ne = at__realloc(ended, nc * sizeof *ne);
                if (!ne) {
                    rc = nomem(be, "ending expired leases");
                    break;
                }
                ended = ne;
                cap = nc;
            }
            memcpy(ended[nended].id, sqlite3_column_blob(s, 2), 16);
            ended[nended++].state = st;
        }
    }
    sqlite3_reset(s);
    if (rc == 0 && src != SQLITE_DONE && src != SQLITE_ROW)
        rc = sqerr(be, &be->w, src, "ending expired leases");
    for (size_t i = 0; rc == 0 && i < nended; i++)
        rc = settle(be, ended[i].id, ended[i].state);
    at__free(ended);
    return rc;
}

static int expire_all(at_backend *be)
{
    sqlite3_stmt *s = S(be, S_EXPIRE_ALL);
    sqlite3_bind_int64(s, 1, be->now);
    return run_expire(be, s);
}

static int expire_one(at_backend *be, const uint8_t id[16])
{
    sqlite3_stmt *s = S(be, S_EXPIRE_ONE);
    sqlite3_bind_int64(s, 1, be->now);
    sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
    return run_expire(be, s);
}

/* Due SCHEDULED jobs of queue qid become READY. */
static int promote(at_backend *be, int64_t qid)
{
    sqlite3_stmt *s = S(be, S_PROMOTE);
    sqlite3_bind_int64(s, 1, qid);
    sqlite3_bind_int64(s, 2, be->now);
    int rc = run(be, s, "making due jobs ready");
    int64_t n = sqlite3_changes(be->w.db);
    if (rc == 0 && n > 0 && (rc = count(be, qid, AT_STATE_SCHEDULED, -n)) == 0)
        rc = count(be, qid, AT_STATE_READY, n);
    return rc;
}

/* Every queue with scheduled jobs: collected first, then updated, so no
 * statement reads `queues` while the counts are written. */
static int collect_qids(int64_t **out, size_t *n_out, at_backend *be, int which)
{
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *s = S(be, which);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *nv = at__realloc(v, nc * sizeof *nv);
            if (!nv) {
                sqlite3_reset(s);
                at__free(v);
                return nomem(be, "listing queues");
            }
            v = nv;
            cap = nc;
        }
        v[n++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    if (src != SQLITE_DONE) {
        at__free(v);
        return sqerr(be, &be->w, src, "listing queues");
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int advance_all_body(at_backend *be, void *ctx)
{
    (void)ctx;
    int rc = expire_all(be);
    int64_t *q = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = collect_qids(&q, &n, be, S_Q_SCHED);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = promote(be, q[i]);
    at__free(q);
    return rc;
}

/* Bring the whole store up to the current time if a cheap read says that
 * some lease expired or some scheduled job is due.  Caller holds be->mu. */
static int advance_if_needed(at_backend *be)
{
    sync_time(be);
    int64_t a = 0, b = 0;
    sqlite3_stmt *s = S(be, S_HAS_EXPIRED);
    sqlite3_bind_int64(s, 1, be->now);
    int rc = query_int(&a, be, s, 0, "looking for expired leases");
    if (rc == 0 && !a) {
        s = S(be, S_ANY_DUE);
        sqlite3_bind_int64(s, 1, be->now);
        rc = query_int(&b, be, s, 0, "looking for due jobs");
    }
    if (rc == 0 && (a || b))
        rc = run_write(be, advance_all_body, NULL);
    return rc;
}

/* ------------------------------------------------------------- snapshots */

/* A column that must hold an integer in lo..hi: read as 64 bits, so a value
 * that the int accessors would truncate into range is still refused. */
static bool col_in(sqlite3_stmt *s, int col, int64_t lo, int64_t hi)
{
    if (sqlite3_column_type(s, col) != SQLITE_INTEGER)
        return false;
    int64_t v = sqlite3_column_int64(s, col);
    return v >= lo && v <= hi;
}

/* Why a job row cannot be what this library wrote (another program wrote
 * the file, or it is damaged), or NULL.  Callers index arrays by state and
 * policy, print names into metrics, and trust lengths: such a row is
 * refused with AT_ERR_CORRUPT rather than handed on. */
static const char *bad_job_row(sqlite3_stmt *s)
{
    /* Types first: reading a column as text converts it in place. */
    if (sqlite3_column_type(s, C_TYPE) != SQLITE_TEXT)
        return "type";
    int nt = sqlite3_column_type(s, C_NODE), kt = sqlite3_column_type(s, C_KEY);
    const char *type = (const char *)sqlite3_column_text(s, C_TYPE);
    if (!type || at__check_name(type) || (size_t)sqlite3_column_bytes(s, C_TYPE) != strlen(type))
        return "type";
    if (sqlite3_column_type(s, C_PAYLOAD) == SQLITE_NULL)
        return "payload";
    if (!col_in(s, C_STATE, AT_STATE_WAITING, AT_STATE_CANCELLED))
        return "state";
    if (!col_in(s, C_PRIO, -AT_PRIORITY_MAX, AT_PRIORITY_MAX))
        return "priority";
    if (!col_in(s, C_ATTEMPTS, 0, UINT32_MAX) || !col_in(s, C_MAX_ATTEMPTS, 1, AT__MAX_ATTEMPTS_LIMIT))
        return "attempts";
    if (!col_in(s, C_TOKEN, INT64_MIN, INT64_MAX) || !col_in(s, C_RUN_AT, INT64_MIN, INT64_MAX) ||
        !col_in(s, C_CREATED, INT64_MIN, INT64_MAX) || !col_in(s, C_UPDATED, INT64_MIN, INT64_MAX))
        return "token or time";
    if (!col_in(s, C_LEASE_MS, 1, AT__DAY_MS) || !col_in(s, C_BASE, 0, AT__YEAR_MS) ||
        !col_in(s, C_CAP, 0, AT__YEAR_MS) || !col_in(s, C_JITTER, 0, 1000) || !col_in(s, C_CANCEL, 0, 1))
        return "lease, backoff or cancel flag";
    if (!col_in(s, C_POLICY, AT_PARENT_FAIL_CANCEL, AT_PARENT_FAIL_DEAD) ||
        !col_in(s, C_NPARENTS, 0, INT64_MAX) || !col_in(s, C_LEFT, 0, UINT32_MAX))
        return "workflow counters";
    int wt = sqlite3_column_type(s, C_WORKFLOW);
    if (wt != SQLITE_NULL && (wt != SQLITE_BLOB || sqlite3_column_bytes(s, C_WORKFLOW) != 16))
        return "workflow id";
    const char *node = (const char *)sqlite3_column_text(s, C_NODE);
    if (nt != SQLITE_NULL && (nt != SQLITE_TEXT || !node || at__check_name(node)))
        return "node";
    const char *key = (const char *)sqlite3_column_text(s, C_KEY);
    if (kt != SQLITE_NULL && (kt != SQLITE_TEXT || !key || at__check_key(key)))
        return "idempotency key";
    if (sqlite3_column_type(s, C_TRACEPARENT) != SQLITE_NULL && sqlite3_column_bytes(s, C_TRACEPARENT) != 55)
        return "traceparent";
    return NULL;
}

static int64_t col_time(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL ? AT_TIME_NONE : sqlite3_column_int64(s, col);
}

/* The parents of job `id` in the order they were given: *ids_out holds
 * *n_out pointers followed by the strings they point at (one allocation,
 * freed by the caller).  `hint` is the job's nparents. */
static int read_parents(const char ***ids_out, size_t *n_out, at_backend *be, const uint8_t id[16],
                        size_t hint)
{
    size_t cap = hint ? hint : 1, n = 0;
    char *block = at__malloc(cap * (sizeof(char *) + AT_ID_SIZE));
    sqlite3_stmt *s = S(be, S_PARENTS);
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    int src, rc = block ? 0 : nomem(be, "reading a job's parents");
    while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 0) != 16)
            continue;
        if (n == cap) {
            /* More edges than the job's count says: regrow, moving the
             * strings behind the longer pointer array. */
            size_t nc = cap * 2;
            char *nb = at__malloc(nc * (sizeof(char *) + AT_ID_SIZE));
            if (!nb) {
                rc = nomem(be, "reading a job's parents");
                break;
            }
            memcpy(nb + nc * sizeof(char *), block + cap * sizeof(char *), n * AT_ID_SIZE);
            at__free(block);
            block = nb;
            cap = nc;
        }
        at_id_format(block + cap * sizeof(char *) + n * AT_ID_SIZE, sqlite3_column_blob(s, 0));
        n++;
    }
    sqlite3_reset(s);
    if (rc == 0 && src != SQLITE_DONE)
        rc = sqerr(be, &be->w, src, "reading a job's parents");
    if (rc) {
        at__free(block);
        return rc;
    }
    const char **ptrs = (const char **)(void *)block;
    for (size_t k = 0; k < n; k++)
        ptrs[k] = block + cap * sizeof(char *) + k * AT_ID_SIZE;
    *ids_out = ptrs;
    *n_out = n;
    return 0;
}

/* A job snapshot from a row of JOB_COLS starting at column 0. */
static int snapshot(at_job **out, at_backend *be, sqlite3_stmt *s, const char *qname)
{
    at_job_info i;
    at_job_info_init(&i);
    int idt = sqlite3_column_type(s, C_ID);
    const void *idb = sqlite3_column_blob(s, C_ID);
    if (idt != SQLITE_BLOB || sqlite3_column_bytes(s, C_ID) != 16 || !idb)
        return at_store_error(be->store, AT_ERR_CORRUPT, 0, "sqlite: a job row has a malformed id");
    at_id_format(i.id, idb);
    const char *bad = bad_job_row(s);
    if (bad)
        return at_store_error(be->store, AT_ERR_CORRUPT, 0, "sqlite: job %s has a malformed %s (not written by "
                              "this library)", i.id, bad);
    if (!qname) {
        int rc = queue_name(&qname, be, sqlite3_column_int64(s, C_QID));
        if (rc)
            return rc;
    }
    i.queue = qname;
    i.type = (const char *)sqlite3_column_text(s, C_TYPE);
    i.state = sqlite3_column_int(s, C_STATE);
    i.priority = sqlite3_column_int(s, C_PRIO);
    i.run_at = sqlite3_column_int64(s, C_RUN_AT);
    i.attempts = (uint32_t)sqlite3_column_int64(s, C_ATTEMPTS);
    i.max_attempts = (uint32_t)sqlite3_column_int64(s, C_MAX_ATTEMPTS);
    i.token = (uint64_t)sqlite3_column_int64(s, C_TOKEN);
    i.created_at = sqlite3_column_int64(s, C_CREATED);
    i.updated_at = sqlite3_column_int64(s, C_UPDATED);
    i.started_at = col_time(s, C_STARTED);
    if (i.state == AT_STATE_RUNNING)
        i.lease_until = col_time(s, C_LEASE);
    else if (i.state >= AT_STATE_SUCCEEDED)
        i.finished_at = col_time(s, C_FINISHED);
    i.lease_ms = sqlite3_column_int64(s, C_LEASE_MS);
    i.backoff_base_ms = sqlite3_column_int64(s, C_BASE);
    i.backoff_cap_ms = sqlite3_column_int64(s, C_CAP);
    i.backoff_jitter = sqlite3_column_int(s, C_JITTER);
    i.cancel_requested = sqlite3_column_int(s, C_CANCEL);
    i.idempotency_key = (const char *)sqlite3_column_text(s, C_KEY);
    i.last_error = (const char *)sqlite3_column_text(s, C_ERROR);
    if (sqlite3_column_type(s, C_RESULT) != SQLITE_NULL) {
        const void *r = sqlite3_column_blob(s, C_RESULT);
        i.result_len = (size_t)sqlite3_column_bytes(s, C_RESULT);
        i.result = r ? r : "";
    }
    i.payload = sqlite3_column_blob(s, C_PAYLOAD);
    i.payload_len = (size_t)sqlite3_column_bytes(s, C_PAYLOAD);
    if (!i.type || (!i.payload && i.payload_len))
        return nomem(be, "reading a job");
    /* Bytes over the handle's limits are not copied into a snapshot (a
     * writer that ignores the limits could make every reader allocate
     * without bound); raising the option reads them. */
    int64_t pmax = at__store_opt(be->store, AT__SOPT_MAX_PAYLOAD), rmax = at__store_opt(be->store, AT__SOPT_MAX_RESULT);
    if ((uint64_t)i.payload_len > (uint64_t)pmax || (uint64_t)i.result_len > (uint64_t)rmax)
        return at_store_error(be->store, AT_ERR_TOOBIG, 0,
                              "sqlite: job %s holds a payload of %zu or a result of %zu bytes, over this store's "
                              "limits (AT_OPT_STORE_MAX_PAYLOAD %lld, AT_OPT_STORE_MAX_RESULT %lld)",
                              i.id, i.payload_len, i.result_len, (long long)pmax, (long long)rmax);
    char wf[AT_ID_SIZE];
    if (sqlite3_column_bytes(s, C_WORKFLOW) == 16) {
        at_id_format(wf, sqlite3_column_blob(s, C_WORKFLOW));
        i.workflow_id = wf;
    }
    i.node = (const char *)sqlite3_column_text(s, C_NODE);
    i.on_parent_failure = sqlite3_column_int(s, C_POLICY);
    i.traceparent = (const char *)sqlite3_column_text(s, C_TRACEPARENT);
    /* The counter means something only while the job waits. */
    if (i.state == AT_STATE_WAITING)
        i.parents_left = (uint32_t)sqlite3_column_int64(s, C_LEFT);
    int64_t np = sqlite3_column_int64(s, C_NPARENTS);
    const char **parents = NULL;
    if (np > 0) {
        /* Another statement runs meanwhile; the pointers into this row stay
         * valid, as `s` is neither stepped nor reset. */
        int rc = read_parents(&parents, &i.nparents, be, idb, (size_t)np);
        if (rc)
            return rc;
        i.parents = parents;
    }
    int rc = at_job_create(out, &i);
    at__free(parents);
    return rc == 0 ? 0 : nomem(be, "copying a job");
}

/* --------------------------------------------------------------- enqueue */

struct enq_ctx {
    at_enqueue_item *items;
    size_t n;
};

/* Parameters 1-14 of the job inserts (plain enqueue and workflow submit
 * share the column order up to the payload). */
static void bind_job_columns(sqlite3_stmt *ins, const uint8_t id[16], int64_t qid, int state, int64_t run_at,
                             int64_t now, const at_job_info *ji)
{
    sqlite3_bind_blob(ins, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, qid);
    sqlite3_bind_int(ins, 3, state);
    sqlite3_bind_int(ins, 4, ji->priority);
    sqlite3_bind_int64(ins, 5, run_at);
    sqlite3_bind_int64(ins, 6, ji->max_attempts);
    sqlite3_bind_int64(ins, 7, now);
    sqlite3_bind_int64(ins, 8, ji->lease_ms);
    sqlite3_bind_int64(ins, 9, ji->backoff_base_ms);
    sqlite3_bind_int64(ins, 10, ji->backoff_cap_ms);
    sqlite3_bind_int(ins, 11, ji->backoff_jitter);
    sqlite3_bind_text(ins, 12, ji->type, -1, SQLITE_STATIC);
    if (ji->idempotency_key)
        sqlite3_bind_text(ins, 13, ji->idempotency_key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(ins, 13);
    /* Never bind a NULL pointer: that stores NULL, not an empty blob. */
    sqlite3_bind_blob64(ins, 14, ji->payload ? ji->payload : "", ji->payload_len, SQLITE_STATIC);
}

static int enqueue_body(at_backend *be, void *arg)
{
    struct enq_ctx *c = arg;
    int64_t now = be->now;
    int64_t qid = 0;
    const char *qname = NULL;
    sqlite3_stmt *ins = be->w.st[S_INSERT];
    for (size_t i = 0; i < c->n; i++) {
        at_enqueue_item *it = &c->items[i];
        at_job_info *ji = &it->job;
        uint8_t id[16];
        id_bytes(id, ji->id);
        int rc;
        if (ji->idempotency_key) {
            /* Earlier items of this batch are in the table already, so a key
             * shared within the batch resolves like any held key. */
            sqlite3_stmt *s = S(be, S_IDEM_GET);
            sqlite3_bind_text(s, 1, ji->idempotency_key, -1, SQLITE_STATIC);
            int src = sqlite3_step(s);
            if (src == SQLITE_ROW && sqlite3_column_int64(s, 1) > now && sqlite3_column_bytes(s, 0) == 16) {
                at_id_format(it->result_id, sqlite3_column_blob(s, 0));
                it->status = AT_ERR_DUPLICATE;
                sqlite3_reset(s);
                continue;
            }
            sqlite3_reset(s);
            if (src != SQLITE_ROW && src != SQLITE_DONE)
                return sqerr(be, &be->w, src, "reading an idempotency key");
            s = S(be, S_IDEM_PUT);
            sqlite3_bind_text(s, 1, ji->idempotency_key, -1, SQLITE_STATIC);
            sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, now + ji->idempotency_ttl_ms);
            if ((rc = run(be, s, "storing an idempotency key")))
                return rc;
        }
        /* Batches mostly go to one queue: skip the lookup when it repeats. */
        if (!qname || strcmp(qname, ji->queue) != 0) {
            if ((rc = queue_id(&qid, be, ji->queue, true)))
                return rc;
            qname = ji->queue;
        }
        int64_t run_at = ji->run_at != AT_TIME_NONE ? ji->run_at : now + ji->delay_ms;
        int state = run_at > now ? AT_STATE_SCHEDULED : AT_STATE_READY;
        sqlite3_reset(ins);
        bind_job_columns(ins, id, qid, state, run_at, now, ji);
        /* Bound on every row: a reset keeps the previous job's binding. */
        if (ji->traceparent)
            sqlite3_bind_text(ins, 15, ji->traceparent, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 15);
        if ((rc = run(be, ins, "inserting a job")))
            return rc;
        if ((rc = count(be, qid, state, 1)))
            return rc;
        it->status = 0;
        memcpy(it->result_id, ji->id, AT_ID_SIZE);
    }
    return 0;
}

static int sql_enqueue(at_backend *be, at_enqueue_item *items, size_t n)
{
    struct enq_ctx c = {items, n};
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, enqueue_body, &c);
    pthread_mutex_unlock(&be->mu);
    return rc;
}

/* ----------------------------------------------------------------- claim */

struct claim_ctx {
    at_job **jobs;
    size_t n, max, nq;
    const char *const *names;
    const int64_t *qids; /* of every queue asked for, 0 for one the store never saw */
    int64_t *live;       /* the same with 0 for the queues paused now as well */
    int64_t wake;
};

static int cmp_claimed(const void *a, const void *b)
{
    const at_job *x = *(at_job *const *)a, *y = *(at_job *const *)b;
    if (x->info.priority != y->info.priority)
        return x->info.priority > y->info.priority ? -1 : 1;
    if (x->info.run_at != y->info.run_at)
        return x->info.run_at < y->info.run_at ? -1 : 1;
    return strcmp(x->info.id, y->info.id);
}

/* The store-monotonic time at which these queues next have work, from the
 * earliest due time among their scheduled jobs and the earliest lease. */
static int compute_wake(int64_t *wake, at_backend *be, const int64_t *qids, size_t nq)
{
    int64_t best = INT64_MAX, t;
    for (size_t i = 0; i < nq; i++) {
        if (!qids[i])
            continue;
        sqlite3_stmt *s = S(be, S_NEXT_DUE);
        sqlite3_bind_int64(s, 1, qids[i]);
        int rc = query_int(&t, be, s, INT64_MAX, "reading the next due time");
        if (rc)
            return rc;
        if (t < best)
            best = t;
    }
    int rc = query_int(&t, be, S(be, S_NEXT_LEASE), INT64_MAX, "reading the next lease deadline");
    if (rc)
        return rc;
    if (t < best)
        best = t;
    if (best == INT64_MAX)
        *wake = AT_TIME_NONE;
    else
        *wake = be->mono + (best > be->now ? best - be->now : 0);
    return 0;
}

/* live[i] = qids[i], or 0 when that queue is paused: its jobs are neither
 * claimed nor looked at for the wake time (a due job of a paused queue
 * would otherwise make the wake time "now" and the poller spin).  Read in
 * the caller's transaction, as the flag is another process's to change. */
static int live_queues(int64_t *live, at_backend *be, const int64_t *qids, size_t nq)
{
    for (size_t i = 0; i < nq; i++) {
        live[i] = qids[i];
        if (!qids[i])
            continue;
        int64_t paused = 0;
        sqlite3_stmt *s = S(be, S_Q_PAUSED);
        sqlite3_bind_int64(s, 1, qids[i]);
        int rc = query_int(&paused, be, s, 0, "reading a queue's paused flag");
        if (rc)
            return rc;
        if (paused)
            live[i] = 0;
    }
    return 0;
}

static void free_claimed(struct claim_ctx *c)
{
    while (c->n > 0)
        at_job_free(c->jobs[--c->n]);
}

static int claim_body(at_backend *be, void *arg)
{
    struct claim_ctx *c = arg;
    free_claimed(c); /* a retried transaction starts over */
    c->wake = AT_TIME_NONE;
    int rc = expire_all(be);
    if (rc == 0)
        rc = live_queues(c->live, be, c->qids, c->nq);
    for (size_t qi = 0; rc == 0 && qi < c->nq && c->n < c->max; qi++) {
        int64_t qid = c->live[qi];
        if (!qid)
            continue;
        if ((rc = promote(be, qid)))
            break;
        sqlite3_stmt *s = S(be, S_CLAIM);
        sqlite3_bind_int64(s, 1, qid);
        sqlite3_bind_int64(s, 2, (int64_t)(c->max - c->n));
        sqlite3_bind_int64(s, 3, be->now);
        size_t first = c->n;
        /* Rows this library did not write (AT_ERR_CORRUPT) are set aside as
         * DEAD below, as the Redis claim does, rather than failing every
         * poll of the queue behind them; at most one claim's worth. */
        /* The ids are kept as the values they are (a damaged id may be of
         * any type or length): they find the row again all the same. */
        sqlite3_value **bad = NULL;
        size_t nbad = 0;
        int src;
        while ((src = sqlite3_step(s)) == SQLITE_ROW) {
            rc = snapshot(&c->jobs[c->n], be, s, c->names[qi]);
            if (rc == AT_ERR_CORRUPT) {
                if (!bad && !(bad = at__calloc(c->max - first, sizeof *bad))) {
                    rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory while claiming");
                    break;
                }
                if (!(bad[nbad] = sqlite3_value_dup(sqlite3_column_value(s, C_ID)))) {
                    rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory while claiming");
                    break;
                }
                nbad++;
                rc = 0;
                continue;
            }
            if (rc)
                break;
            c->n++;
        }
        sqlite3_reset(s);
        if (rc == 0 && src != SQLITE_DONE)
            rc = sqerr(be, &be->w, src, "claiming jobs");
        for (size_t b = 0; rc == 0 && b < nbad; b++) {
            sqlite3_stmt *u = S(be, S_SET_ASIDE);
            sqlite3_bind_value(u, 1, bad[b]);
            sqlite3_bind_int64(u, 2, be->now);
            rc = run(be, u, "setting an unreadable job aside");
        }
        for (size_t b = 0; b < nbad; b++)
            sqlite3_value_free(bad[b]);
        at__free(bad);
        if (rc)
            break;
        /* RETURNING yields rows in no promised order: restore the queue's. */
        qsort(c->jobs + first, c->n - first, sizeof *c->jobs, cmp_claimed);
        int64_t k = (int64_t)(c->n - first);
        if (k + (int64_t)nbad > 0 && (rc = count(be, qid, AT_STATE_READY, -(k + (int64_t)nbad))) == 0 &&
            (rc = count(be, qid, AT_STATE_RUNNING, k)) == 0)
            rc = count(be, qid, AT_STATE_DEAD, (int64_t)nbad);
        if (rc == 0 && nbad > 0) {
            at__log(AT_LOG_WARN, "sqlite", NULL, AT_ERR_CORRUPT,
                    "claim set aside %zu unreadable job row(s) of queue %s as DEAD; at_get names the damage, "
                    "purging DEAD jobs removes them",
                    nbad, c->names[qi]);
            qi--; /* the same queue again: the set-aside rows took places of this claim */
        }
    }
    if (rc == 0 && c->n == 0)
        rc = compute_wake(&c->wake, be, c->live, c->nq);
    if (rc)
        free_claimed(c);
    return rc;
}

static int sql_claim(at_job **jobs, size_t *n_out, int64_t *wake, at_backend *be, const char *const *queues,
                     size_t nq, size_t max)
{
    int64_t qids[AT__MAX_QUEUES_PER_POLL], live[AT__MAX_QUEUES_PER_POLL];
    struct claim_ctx c = {jobs, 0, max, nq, queues, qids, live, AT_TIME_NONE};
    *n_out = 0;
    *wake = AT_TIME_NONE;
    if (nq > AT__MAX_QUEUES_PER_POLL)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "too many queues");
    pthread_mutex_lock(&be->mu);
    sync_time(be);
    int rc = 0;
    for (size_t i = 0; i < nq && rc == 0; i++)
        rc = queue_id(&qids[i], be, queues[i], false);
    /* Look before taking the write lock: an idle poller then costs a few
     * index reads in one read transaction and never makes other processes
     * wait.  While claims keep finding jobs the look is skipped. */
    bool work = be->hot;
    if (rc == 0 && !work && (rc = begin_read(be)) == 0) {
        int64_t v = 0;
        sqlite3_stmt *s = S(be, S_HAS_EXPIRED);
        sqlite3_bind_int64(s, 1, be->now);
        rc = query_int(&v, be, s, 0, "looking for expired leases");
        work = v != 0;
        if (rc == 0 && !work)
            rc = live_queues(live, be, qids, nq);
        for (size_t i = 0; rc == 0 && !work && i < nq; i++) {
            if (!live[i])
                continue;
            s = S(be, S_HAS_READY);
            sqlite3_bind_int64(s, 1, live[i]);
            rc = query_int(&v, be, s, 0, "looking for ready jobs");
            work = v != 0;
            if (rc == 0 && !work) {
                s = S(be, S_HAS_DUE);
                sqlite3_bind_int64(s, 1, live[i]);
                sqlite3_bind_int64(s, 2, be->now);
                rc = query_int(&v, be, s, 0, "looking for due jobs");
                work = v != 0;
            }
        }
        if (rc == 0 && !work)
            rc = compute_wake(&c.wake, be, live, nq);
        end_read(be);
    }
    if (rc == 0 && work)
        rc = run_write(be, claim_body, &c);
    /* The body's snapshots outlive a commit (or count update) that failed
     * after it: they describe claims that were rolled back. */
    if (rc != 0)
        free_claimed(&c);
    be->hot = rc == 0 && c.n > 0;
    pthread_mutex_unlock(&be->mu);
    if (rc == 0) {
        *n_out = c.n;
        *wake = c.wake;
    }
    return rc;
}

/* --------------------------------------------------------- lease holders */

struct held {
    int64_t qid;
    int state;
    uint64_t token;
    int cancel;
    int64_t attempts, max_attempts, lease_ms;
};

/* Load job `id` after ending its lease if that has expired, and check that
 * `token` holds it.  Returns 0 with *outcome set: 0 when held, else the
 * AT_ERR_* the caller reports (with its message recorded). */
static int check_held(struct held *h, int *outcome, at_backend *be, const char *id, const uint8_t bid[16],
                      uint64_t token)
{
    int src;
    for (int round = 0;; round++) {
        sqlite3_stmt *s = S(be, S_HELD);
        sqlite3_bind_blob(s, 1, bid, 16, SQLITE_STATIC);
        src = sqlite3_step(s);
        bool expired = false;
        if (src == SQLITE_ROW) {
            h->qid = sqlite3_column_int64(s, 0);
            h->state = sqlite3_column_int(s, 1);
            h->token = (uint64_t)sqlite3_column_int64(s, 2);
            h->cancel = sqlite3_column_int(s, 3);
            h->attempts = sqlite3_column_int64(s, 4);
            h->max_attempts = sqlite3_column_int64(s, 5);
            h->lease_ms = sqlite3_column_int64(s, 6);
            expired = h->state == AT_STATE_RUNNING && col_time(s, 7) <= be->now;
        }
        sqlite3_reset(s);
        if (!expired || round > 0)
            break;
        /* The lease ran out before the holder came back: end it first, as
         * if it had been noticed at its deadline, then judge the call. */
        int rc = expire_one(be, bid);
        if (rc)
            return rc;
    }
    if (src == SQLITE_DONE)
        *outcome = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    else if (src != SQLITE_ROW)
        return sqerr(be, &be->w, src, "reading a job");
    else if (h->token != token || token == 0)
        *outcome = at_store_error(be->store, AT_ERR_STALE, 0, "job %s: token %llu is not its current lease", id,
                                  (unsigned long long)token);
    else if (h->state == AT_STATE_CANCELLED)
        *outcome = at_store_error(be->store, AT_ERR_CANCELLED, 0, "job %s was cancelled", id);
    else if (h->state != AT_STATE_RUNNING)
        *outcome = at_store_error(be->store, AT_ERR_STALE, 0, "job %s is %s: the lease is over", id,
                                  at_state_name(h->state));
    else
        *outcome = 0;
    return 0;
}

/* RUNNING -> CANCELLED for a holder that finds the job marked. */
static int cancel_holder(int *outcome, at_backend *be, const struct held *h, const char *id, const uint8_t bid[16])
{
    sqlite3_stmt *s = S(be, S_CANCELLED);
    sqlite3_bind_blob(s, 1, bid, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, be->now);
    int rc = run(be, s, "cancelling a job");
    if (rc == 0 && (rc = count(be, h->qid, AT_STATE_RUNNING, -1)) == 0)
        rc = count(be, h->qid, AT_STATE_CANCELLED, 1);
    if (rc == 0)
        rc = settle(be, bid, AT_STATE_CANCELLED);
    if (rc == 0)
        *outcome = at_store_error(be->store, AT_ERR_CANCELLED, 0, "job %s was cancelled while running", id);
    return rc;
}

struct hold_ctx {
    const char *id;
    uint8_t bid[16];
    uint64_t token;
    const void *data; /* ack: result; fail: error text */
    size_t len;
    uint32_t flags;
    int64_t ms; /* fail: retry delay; touch: extension */
    int outcome;
    int32_t state; /* fail: the new state */
};

static int ack_body(at_backend *be, void *arg)
{
    struct hold_ctx *c = arg;
    struct held h;
    c->outcome = 0;
    /* The common case in one statement: held, not marked, lease running. */
    sqlite3_stmt *f = S(be, S_ACK_FAST);
    sqlite3_bind_blob(f, 1, c->bid, 16, SQLITE_STATIC);
    if (c->data)
        sqlite3_bind_blob64(f, 2, c->data, c->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(f, 2);
    sqlite3_bind_int64(f, 3, be->now);
    sqlite3_bind_int64(f, 4, (int64_t)c->token);
    int src = sqlite3_step(f);
    int64_t qid = src == SQLITE_ROW ? sqlite3_column_int64(f, 0) : 0;
    if (src == SQLITE_ROW)
        src = sqlite3_step(f);
    sqlite3_reset(f);
    if (src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "finishing a job");
    if (qid) {
        int rc = count(be, qid, AT_STATE_RUNNING, -1);
        if (rc == 0)
            rc = count(be, qid, AT_STATE_SUCCEEDED, 1);
        return rc ? rc : settle(be, c->bid, AT_STATE_SUCCEEDED);
    }
    /* Otherwise find out why, and act on it (expiry, cancellation). */
    int rc = check_held(&h, &c->outcome, be, c->id, c->bid, c->token);
    if (rc || c->outcome)
        return rc;
    if (h.cancel)
        return cancel_holder(&c->outcome, be, &h, c->id, c->bid);
    sqlite3_stmt *s = S(be, S_ACK);
    sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
    if (c->data)
        sqlite3_bind_blob64(s, 2, c->data, c->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 2);
    sqlite3_bind_int64(s, 3, be->now);
    rc = run(be, s, "finishing a job");
    if (rc == 0)
        rc = move_count(be, h.qid, AT_STATE_RUNNING, AT_STATE_SUCCEEDED);
    return rc ? rc : settle(be, c->bid, AT_STATE_SUCCEEDED);
}

static int fail_body(at_backend *be, void *arg)
{
    struct hold_ctx *c = arg;
    struct held h;
    int rc = check_held(&h, &c->outcome, be, c->id, c->bid, c->token);
    if (rc || c->outcome)
        return rc;
    if (h.cancel) {
        c->state = AT_STATE_CANCELLED;
        return cancel_holder(&c->outcome, be, &h, c->id, c->bid);
    }
    int to;
    if ((c->flags & AT_FAIL_PERMANENT) || h.attempts >= h.max_attempts)
        to = AT_STATE_DEAD;
    else
        to = c->ms > 0 ? AT_STATE_SCHEDULED : AT_STATE_READY;
    sqlite3_stmt *s = S(be, S_FAIL);
    sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, to);
    /* A dead job keeps its run_at (NULL binds "unchanged"). */
    if (to == AT_STATE_DEAD) {
        sqlite3_bind_null(s, 3);
        sqlite3_bind_int64(s, 5, be->now);
    } else {
        sqlite3_bind_int64(s, 3, be->now + c->ms);
        sqlite3_bind_null(s, 5);
    }
    if (c->data)
        sqlite3_bind_text(s, 4, c->data, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    sqlite3_bind_int64(s, 6, be->now);
    rc = run(be, s, "failing a job");
    if (rc == 0)
        rc = move_count(be, h.qid, AT_STATE_RUNNING, to);
    if (rc == 0 && to == AT_STATE_DEAD)
        rc = settle(be, c->bid, AT_STATE_DEAD);
    c->state = to;
    return rc;
}

static int touch_body(at_backend *be, void *arg)
{
    struct hold_ctx *c = arg;
    struct held h;
    int rc = check_held(&h, &c->outcome, be, c->id, c->bid, c->token);
    if (rc || c->outcome)
        return rc;
    if (h.cancel)
        return cancel_holder(&c->outcome, be, &h, c->id, c->bid);
    sqlite3_stmt *s = S(be, S_TOUCH);
    sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, be->now + (c->ms > 0 ? c->ms : h.lease_ms));
    return run(be, s, "extending a lease");
}

static int run_hold(at_backend *be, txn_body body, struct hold_ctx *c)
{
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, body, c);
    pthread_mutex_unlock(&be->mu);
    return rc ? rc : c->outcome;
}

static int sql_ack(at_backend *be, const char *id, uint64_t token, const void *result, size_t len)
{
    struct hold_ctx c = {.id = id, .token = token, .data = result, .len = len};
    id_bytes(c.bid, id);
    return run_hold(be, ack_body, &c);
}

struct many_ctx {
    size_t n;
    const char *const *ids;
    const uint64_t *tokens;
    int32_t *results;
};

/* Every ack of the call in one transaction: one commit (and, with
 * sync=full, one fsync) for the batch instead of one per job. */
static int ack_many_body(at_backend *be, void *arg)
{
    struct many_ctx *m = arg;
    for (size_t i = 0; i < m->n; i++) {
        struct hold_ctx c = {.id = m->ids[i], .token = m->tokens[i]};
        id_bytes(c.bid, c.id);
        int rc = ack_body(be, &c);
        if (rc)
            return rc;
        m->results[i] = c.outcome;
    }
    return 0;
}

static int sql_ack_many(at_backend *be, size_t n, const char *const *ids, const uint64_t *tokens,
                        int32_t *results)
{
    struct many_ctx m = {n, ids, tokens, results};
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, ack_many_body, &m);
    pthread_mutex_unlock(&be->mu);
    return rc;
}

static int sql_fail(int32_t *state_out, at_backend *be, const char *id, uint64_t token, const char *error,
                    uint32_t flags, int64_t delay)
{
    struct hold_ctx c = {.id = id, .token = token, .data = error, .flags = flags, .ms = delay};
    id_bytes(c.bid, id);
    int rc = run_hold(be, fail_body, &c);
    if (rc == 0 || rc == AT_ERR_CANCELLED)
        *state_out = c.state;
    return rc;
}

static int sql_touch(at_backend *be, const char *id, uint64_t token, int64_t extend)
{
    struct hold_ctx c = {.id = id, .token = token, .ms = extend};
    id_bytes(c.bid, id);
    return run_hold(be, touch_body, &c);
}

/* ------------------------------------------------------------ inspection */

struct id_ctx {
    const char *id;
    uint8_t bid[16];
    const char *queue;
    int outcome;
    int32_t pending;
    uint64_t n;
};

static int cancel_body(at_backend *be, void *arg)
{
    struct id_ctx *c = arg;
    c->outcome = 0;
    c->pending = 0;
    int rc = expire_one(be, c->bid);
    if (rc)
        return rc;
    sqlite3_stmt *s = S(be, S_HELD);
    sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
    int src = sqlite3_step(s);
    int64_t qid = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    int state = src == SQLITE_ROW ? sqlite3_column_int(s, 1) : 0;
    sqlite3_reset(s);
    if (src == SQLITE_DONE) {
        c->outcome = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", c->id);
        return 0;
    }
    if (src != SQLITE_ROW)
        return sqerr(be, &be->w, src, "reading a job");
    if (state >= AT_STATE_SUCCEEDED) {
        c->outcome = at_store_error(be->store, AT_ERR_TERMINAL, 0, "job %s is already %s", c->id,
                                    at_state_name(state));
        return 0;
    }
    if (state == AT_STATE_RUNNING) {
        s = S(be, S_MARK_CANCEL);
        sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, be->now);
        c->pending = 1;
        return run(be, s, "marking a job for cancellation");
    }
    s = S(be, S_CANCELLED);
    sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, be->now);
    rc = run(be, s, "cancelling a job");
    if (rc == 0 && (rc = count(be, qid, state, -1)) == 0)
        rc = count(be, qid, AT_STATE_CANCELLED, 1);
    return rc ? rc : settle(be, c->bid, AT_STATE_CANCELLED);
}

static int sql_cancel(int32_t *pending, at_backend *be, const char *id)
{
    struct id_ctx c = {.id = id};
    id_bytes(c.bid, id);
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, cancel_body, &c);
    pthread_mutex_unlock(&be->mu);
    if (rc == 0)
        *pending = c.pending;
    return rc ? rc : c.outcome;
}

/* Bring one job (and its queue) up to the current time. */
static int advance_job_body(at_backend *be, void *arg)
{
    struct id_ctx *c = arg;
    int rc = expire_one(be, c->bid);
    if (rc == 0 && c->n)
        rc = promote(be, (int64_t)c->n);
    return rc;
}

static int sql_get(at_job **out, at_backend *be, const char *id)
{
    struct id_ctx c = {.id = id};
    id_bytes(c.bid, id);
    pthread_mutex_lock(&be->mu);
    sync_time(be);
    int rc = 0;
    for (int round = 0; round < 2; round++) {
        sqlite3_stmt *s = S(be, S_GET);
        sqlite3_bind_blob(s, 1, c.bid, 16, SQLITE_STATIC);
        int src = sqlite3_step(s);
        if (src == SQLITE_DONE) {
            rc = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
        } else if (src != SQLITE_ROW) {
            rc = sqerr(be, &be->w, src, "reading a job");
        } else {
            int st = sqlite3_column_int(s, C_STATE);
            bool stale = (st == AT_STATE_SCHEDULED && sqlite3_column_int64(s, C_RUN_AT) <= be->now) ||
                         (st == AT_STATE_RUNNING && col_time(s, C_LEASE) <= be->now);
            if (stale && round == 0) {
                /* Time has moved this job on: make it so in the file, then
                 * read it again. */
                c.n = st == AT_STATE_SCHEDULED ? (uint64_t)sqlite3_column_int64(s, C_QID) : 0;
                sqlite3_reset(s);
                rc = run_write(be, advance_job_body, &c);
                if (rc == 0)
                    continue;
                break;
            }
            rc = snapshot(out, be, s, NULL);
        }
        sqlite3_reset(s);
        break;
    }
    pthread_mutex_unlock(&be->mu);
    return rc;
}

/* One (queue, state) stream of ids in id order, read LIST_CHUNK at a time. */
struct lcur {
    int64_t qid;
    int state;
    uint8_t (*ids)[16];
    size_t n, pos;
    bool eof;
};

static int lcur_fill(at_backend *be, struct lcur *l, const uint8_t *after, size_t after_len)
{
    sqlite3_stmt *s = S(be, l->state == AT_STATE_READY     ? S_LIST_READY
                            : l->state == AT_STATE_RUNNING ? S_LIST_RUNNING
                                                           : S_LIST_IDS);
    sqlite3_bind_int64(s, 1, l->qid);
    if (l->state != AT_STATE_READY && l->state != AT_STATE_RUNNING)
        sqlite3_bind_int(s, 2, l->state);
    sqlite3_bind_blob(s, 3, after_len ? (const void *)after : "", (int)after_len, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 4, LIST_CHUNK);
    size_t n = 0;
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 0) == 16)
            memcpy(l->ids[n++], sqlite3_column_blob(s, 0), 16);
    }
    sqlite3_reset(s);
    if (src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "listing jobs");
    l->n = n;
    l->pos = 0;
    l->eof = n < LIST_CHUNK;
    return 0;
}

/* The head id of a stream, refilled as needed; NULL at its end. */
static int lcur_head(const uint8_t **out, at_backend *be, struct lcur *l)
{
    if (l->pos == l->n) {
        *out = NULL;
        if (l->eof)
            return 0;
        uint8_t last[16];
        memcpy(last, l->ids[l->n - 1], 16);
        int rc = lcur_fill(be, l, last, 16);
        if (rc || l->n == 0)
            return rc;
    }
    *out = l->ids[l->pos];
    return 0;
}

struct list_args {
    at_job **jobs;
    size_t *n_out;
    char *cursor_out;
    const char *queue;
    int32_t state;
    const uint8_t *after;
    size_t limit;
};

/* Merge the (queue, state) streams the request covers, by id: each stream
 * is an index range, so a page costs O(page + streams), whatever the size
 * of the store.  Runs inside one read transaction. */
static int list_in_txn(at_backend *be, const struct list_args *a)
{
    int64_t want = 0;
    int rc = 0;
    if (a->queue && ((rc = queue_id(&want, be, a->queue, false)) || want == 0))
        return rc;
    struct lcur *cur = NULL;
    size_t nc = 0, cap = 0;
    uint8_t (*picked)[16] = NULL;
    sqlite3_stmt *s = S(be, S_Q_ALL);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW && rc == 0) {
        int64_t qid = sqlite3_column_int64(s, 0);
        if (want && qid != want)
            continue;
        for (int st = 1; st < AT_STATE_COUNT__ && rc == 0; st++) {
            if ((a->state != AT_STATE_ANY && st != a->state) || sqlite3_column_int64(s, st) <= 0)
                continue;
            if (nc == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct lcur *ncur = at__realloc(cur, ncap * sizeof *ncur);
                if (!ncur) {
                    rc = nomem(be, "listing jobs");
                    break;
                }
                cur = ncur;
                cap = ncap;
            }
            memset(&cur[nc], 0, sizeof cur[nc]);
            cur[nc].qid = qid;
            cur[nc].state = st;
            nc++;
        }
    }
    sqlite3_reset(s);
    if (rc == 0 && src != SQLITE_DONE && src != SQLITE_ROW)
        rc = sqerr(be, &be->w, src, "listing queues");
    for (size_t i = 0; rc == 0 && i < nc; i++) {
        cur[i].ids = at__malloc(LIST_CHUNK * sizeof *cur[i].ids);
        if (!cur[i].ids)
            rc = nomem(be, "listing jobs");
        else
            rc = lcur_fill(be, &cur[i], a->after, a->after ? 16 : 0);
    }
    size_t np = 0;
    if (rc == 0 && !(picked = at__malloc((a->limit + 1) * sizeof *picked)))
        rc = nomem(be, "listing jobs");
    while (rc == 0 && np <= a->limit) {
        const uint8_t *best = NULL;
        size_t bi = 0;
        for (size_t i = 0; rc == 0 && i < nc; i++) {
            const uint8_t *h;
            rc = lcur_head(&h, be, &cur[i]);
            if (rc == 0 && h && (!best || memcmp(h, best, 16) < 0)) {
                best = h;
                bi = i;
            }
        }
        if (rc || !best)
            break;
        memcpy(picked[np++], best, 16);
        cur[bi].pos++;
    }
    size_t n = 0;
    size_t take = np > a->limit ? a->limit : np;
    for (; rc == 0 && n < take; n++) {
        s = S(be, S_GET);
        sqlite3_bind_blob(s, 1, picked[n], 16, SQLITE_STATIC);
        src = sqlite3_step(s);
        if (src == SQLITE_ROW)
            rc = snapshot(&a->jobs[n], be, s, NULL);
        else
            rc = src == SQLITE_DONE ? at_store_error(be->store, AT_ERR_INTERNAL, 0, "sqlite: a listed job vanished")
                                    : sqerr(be, &be->w, src, "reading a listed job");
        sqlite3_reset(s);
        if (rc)
            break;
    }
    if (rc) {
        while (n > 0)
            at_job_free(a->jobs[--n]);
    } else {
        *a->n_out = n;
        if (np > a->limit)
            memcpy(a->cursor_out, at_job_id(a->jobs[n - 1]), AT_ID_SIZE);
    }
    for (size_t i = 0; i < nc; i++)
        at__free(cur[i].ids);
    at__free(cur);
    at__free(picked);
    return rc;
}

static int sql_list(at_job **jobs, size_t *n_out, char *cursor_out, at_backend *be, const char *queue,
                    int32_t state, const char *cursor, size_t limit)
{
    uint8_t after[16];
    if (cursor && at_id_parse(after, cursor))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a cursor of this store", cursor);
    struct list_args a = {jobs, n_out, cursor_out, queue, state, cursor ? after : NULL, limit};
    *n_out = 0;
    pthread_mutex_lock(&be->mu);
    int rc = advance_if_needed(be);
    if (rc == 0 && (rc = begin_read(be)) == 0) {
        rc = list_in_txn(be, &a);
        end_read(be);
    }
    pthread_mutex_unlock(&be->mu);
    return rc;
}

static int requeue_body(at_backend *be, void *arg)
{
    struct id_ctx *c = arg;
    c->outcome = 0;
    c->n = 0;
    if (c->id) {
        int rc = expire_one(be, c->bid);
        if (rc)
            return rc;
        sqlite3_stmt *s = S(be, S_HELD);
        sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
        int src = sqlite3_step(s);
        int64_t qid = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        int state = src == SQLITE_ROW ? sqlite3_column_int(s, 1) : 0;
        sqlite3_reset(s);
        if (src != SQLITE_ROW && src != SQLITE_DONE)
            return sqerr(be, &be->w, src, "reading a job");
        const char *qn = NULL;
        if (src == SQLITE_ROW && c->queue && (rc = queue_name(&qn, be, qid)))
            return rc;
        if (src == SQLITE_DONE || (c->queue && strcmp(qn, c->queue) != 0)) {
            c->outcome = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s%s%s", c->id,
                                        c->queue ? " in queue " : "", c->queue ? c->queue : "");
            return 0;
        }
        if (state != AT_STATE_DEAD) {
            c->outcome = at_store_error(be->store, AT_ERR_STATE, 0, "job %s is %s, not dead", c->id,
                                        at_state_name(state));
            return 0;
        }
        s = S(be, S_REQUEUE_ONE);
        sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, be->now);
        if ((rc = run(be, s, "requeueing a job")))
            return rc;
        c->n = 1;
        if ((rc = count(be, qid, AT_STATE_DEAD, -1)))
            return rc;
        return count(be, qid, AT_STATE_READY, 1);
    }
    int rc = expire_all(be);
    int64_t *q = NULL;
    size_t nq = 0;
    if (rc == 0 && c->queue) {
        int64_t qid = 0;
        rc = queue_id(&qid, be, c->queue, false);
        if (rc == 0 && qid && (q = at__malloc(sizeof *q)) == NULL)
            rc = nomem(be, "requeueing");
        if (q) {
            q[0] = qid;
            nq = 1;
        }
    } else if (rc == 0) {
        rc = collect_qids(&q, &nq, be, S_Q_DEAD);
    }
    for (size_t i = 0; rc == 0 && i < nq; i++) {
        sqlite3_stmt *s = S(be, S_REQUEUE_Q);
        sqlite3_bind_int64(s, 1, q[i]);
        sqlite3_bind_int64(s, 2, be->now);
        rc = run(be, s, "requeueing dead jobs");
        int64_t k = sqlite3_changes(be->w.db);
        if (rc == 0 && k > 0 && (rc = count(be, q[i], AT_STATE_DEAD, -k)) == 0)
            rc = count(be, q[i], AT_STATE_READY, k);
        c->n += rc == 0 && k > 0 ? (uint64_t)k : 0;
    }
    at__free(q);
    return rc;
}

static int sql_requeue(uint64_t *n_out, at_backend *be, const char *queue, const char *id)
{
    struct id_ctx c = {.id = id, .queue = queue};
    if (id)
        id_bytes(c.bid, id);
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, requeue_body, &c);
    pthread_mutex_unlock(&be->mu);
    *n_out = rc == 0 ? c.n : 0;
    return rc ? rc : c.outcome;
}

struct purge_ctx {
    int64_t older_than;
    uint64_t n;
};

static int purge_body(at_backend *be, void *arg)
{
    struct purge_ctx *c = arg;
    c->n = 0;
    int rc = expire_all(be);
    if (rc)
        return rc;
    sqlite3_stmt *s = S(be, S_PURGE);
    sqlite3_bind_int64(s, 1, be->now - c->older_than);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW && rc == 0) {
        int st = sqlite3_column_int(s, 1);
        if (st > 0 && st < AT_STATE_COUNT__)
            rc = count(be, sqlite3_column_int64(s, 0), st, -1);
        c->n++;
    }
    sqlite3_reset(s);
    if (rc)
        return rc;
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        return sqerr(be, &be->w, src, "purging jobs");
    s = S(be, S_IDEM_PURGE);
    sqlite3_bind_int64(s, 1, be->now);
    return run(be, s, "purging expired idempotency keys");
}

static int sql_purge(uint64_t *n_out, at_backend *be, int64_t older_than)
{
    struct purge_ctx c = {older_than, 0};
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, purge_body, &c);
    pthread_mutex_unlock(&be->mu);
    *n_out = rc == 0 ? c.n : 0;
    return rc;
}

static int sql_stats(at_stats *st, at_backend *be)
{
    pthread_mutex_lock(&be->mu);
    int rc = advance_if_needed(be);
    if (rc == 0 && (rc = begin_read(be)) == 0) {
        sqlite3_stmt *s = S(be, S_STATS);
        int src;
        while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW) {
            uint64_t counts[AT_STATE_COUNT__] = {0};
            for (int k = 1; k < AT_STATE_COUNT__; k++) {
                int64_t v = sqlite3_column_int64(s, k);
                counts[k] = v > 0 ? (uint64_t)v : 0;
            }
            const char *name = (const char *)sqlite3_column_text(s, 0);
            rc = !name || at__check_name(name)
                     ? at_store_error(be->store, AT_ERR_CORRUPT, 0, "sqlite: a queue has a malformed name")
                     : at_stats_add_queue(st, name, counts, col_time(s, AT_STATE_COUNT__));
        }
        sqlite3_reset(s);
        if (rc == 0 && src != SQLITE_DONE)
            rc = sqerr(be, &be->w, src, "reading the queue counts");
        end_read(be);
    }
    pthread_mutex_unlock(&be->mu);
    return rc;
}

/* ---------------------------------------------- schedules and leases (v2) */

/* Arguments and outcomes of one schedule or lease call.  `outcome` is an
 * AT_ERR_* the caller learns after a commit that changed nothing (an unknown
 * name, a lost lease): the body returns 0 so no rollback empties the queue
 * cache for it. */
struct sched_ctx {
    const char *name;
    const void *spec;
    size_t spec_len;
    int32_t paused;
    int64_t fire_at;
    const char *job_id;
    const char *owner;
    const char *lease;
    uint64_t token;
    int64_t ttl_ms;
    int32_t created;
    int64_t ttl_left;
    int outcome;
};

static int run_sched(at_backend *be, txn_body body, struct sched_ctx *c)
{
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, body, c);
    pthread_mutex_unlock(&be->mu);
    return rc ? rc : c->outcome;
}

static int no_schedule(at_backend *be, const char *name)
{
    return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no schedule %s", name);
}

static int sched_put_body(at_backend *be, void *arg)
{
    struct sched_ctx *c = arg;
    c->created = 0;
    sqlite3_stmt *s = S(be, S_SCHED_SPEC);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    bool same = false;
    if (src == SQLITE_ROW) {
        const void *old = sqlite3_column_blob(s, 0);
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        if (!old && n) {
            sqlite3_reset(s);
            return nomem(be, "reading a schedule");
        }
        same = n == c->spec_len && (n == 0 || memcmp(old, c->spec, n) == 0);
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "reading a schedule");
    /* Applications re-declare their schedules at every start: an unchanged
     * spec writes nothing, so updated_at keeps telling when it last changed
     * (and the commit wakes no other process). */
    if (same)
        return 0;
    c->created = src == SQLITE_DONE;
    s = S(be, c->created ? S_SCHED_INSERT : S_SCHED_RESPEC);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    /* Never bind a NULL pointer: that stores NULL, not an empty blob. */
    sqlite3_bind_blob64(s, 2, c->spec ? c->spec : "", c->spec_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, be->now);
    return run(be, s, c->created ? "creating a schedule" : "replacing a schedule's spec");
}

static int sql_sched_put(int32_t *created_out, at_backend *be, const char *name, const void *spec,
                         size_t spec_len)
{
    struct sched_ctx c = {.name = name, .spec = spec, .spec_len = spec_len};
    int rc = run_sched(be, sched_put_body, &c);
    if (rc == 0 && created_out)
        *created_out = c.created;
    return rc;
}

static int sched_remove_body(at_backend *be, void *arg)
{
    struct sched_ctx *c = arg;
    c->outcome = 0;
    sqlite3_stmt *s = S(be, S_SCHED_DELETE);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    int rc = run(be, s, "removing a schedule");
    if (rc == 0 && sqlite3_changes(be->w.db) == 0)
        c->outcome = no_schedule(be, c->name);
    return rc;
}

static int sql_sched_remove(at_backend *be, const char *name)
{
    struct sched_ctx c = {.name = name};
    return run_sched(be, sched_remove_body, &c);
}

static int sched_pause_body(at_backend *be, void *arg)
{
    struct sched_ctx *c = arg;
    c->outcome = 0;
    sqlite3_stmt *s = S(be, S_SCHED_PAUSE);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, c->paused);
    /* sqlite3_changes counts the matched row even when the flag already
     * had this value, so 0 means only "no such schedule". */
    int rc = run(be, s, "pausing or resuming a schedule");
    if (rc == 0 && sqlite3_changes(be->w.db) == 0)
        c->outcome = no_schedule(be, c->name);
    return rc;
}

static int sql_sched_pause(at_backend *be, const char *name, int32_t paused)
{
    struct sched_ctx c = {.name = name, .paused = paused != 0};
    return run_sched(be, sched_pause_body, &c);
}

/* A row of SCHED_COLS as the core reads it; points into the statement's
 * current row, so valid until the next step. */
static int sched_row(at_sched_row *r, at_backend *be, sqlite3_stmt *s)
{
    at_sched_row_init(r);
    r->name = (const char *)sqlite3_column_text(s, SC_NAME);
    if (sqlite3_column_type(s, SC_NAME) == SQLITE_NULL || sqlite3_column_type(s, SC_SPEC) == SQLITE_NULL ||
        (r->name && at__check_name(r->name)))
        return at_store_error(be->store, AT_ERR_CORRUPT, 0, "sqlite: a schedule row has a malformed name or spec");
    const void *spec = sqlite3_column_blob(s, SC_SPEC);
    r->spec_len = (size_t)sqlite3_column_bytes(s, SC_SPEC);
    if (!r->name || (!spec && r->spec_len))
        return nomem(be, "reading a schedule");
    r->spec = spec ? spec : "";
    r->paused = sqlite3_column_int(s, SC_PAUSED) != 0;
    r->created_at = sqlite3_column_int64(s, SC_CREATED);
    r->updated_at = sqlite3_column_int64(s, SC_UPDATED);
    r->last_fire_at = col_time(s, SC_LAST_FIRE);
    if (sqlite3_column_type(s, SC_LAST_JOB) != SQLITE_NULL) {
        const char *id = (const char *)sqlite3_column_text(s, SC_LAST_JOB);
        size_t n = (size_t)sqlite3_column_bytes(s, SC_LAST_JOB);
        if (!id)
            return nomem(be, "reading a schedule");
        uint8_t idb[16];
        if (n != AT_ID_LEN || at_id_parse(idb, id) != 0)
            return at_store_error(be->store, AT_ERR_CORRUPT, 0,
                                  "sqlite: schedule %s has a malformed last job id", r->name);
        memcpy(r->last_job_id, id, n);
        r->last_job_id[n] = '\0';
    }
    return 0;
}

/* One read transaction: the rows come from one snapshot even while other
 * processes write.  be->mu is held across the callbacks, which the vtable
 * forbids from calling back into the store. */
static int sql_sched_list(at_backend *be, const char *name, at_sched_row_fn fn, void *ud)
{
    pthread_mutex_lock(&be->mu);
    int rc = begin_read(be);
    if (rc == 0) {
        sqlite3_stmt *s = S(be, name ? S_SCHED_ONE : S_SCHED_ALL);
        if (name)
            sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        bool any = false;
        int src;
        while ((src = sqlite3_step(s)) == SQLITE_ROW) {
            at_sched_row row;
            any = true;
            if ((rc = sched_row(&row, be, s)) != 0 || (rc = fn(ud, &row)) != 0)
                break;
        }
        sqlite3_reset(s);
        if (rc == 0 && src != SQLITE_DONE)
            rc = sqerr(be, &be->w, src, "listing schedules");
        else if (rc == 0 && name && !any)
            rc = no_schedule(be, name);
        end_read(be);
    }
    pthread_mutex_unlock(&be->mu);
    return rc;
}

/* Is lease `name` unexpired with `token` (whoever holds it)?  *outcome is
 * 0 or AT_ERR_STALE with its message recorded.  `owner` non-NULL also
 * requires that holder. */
static int lease_held(int *outcome, at_backend *be, const char *name, const char *owner, uint64_t token)
{
    sqlite3_stmt *s = S(be, S_LEASE_GET);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    bool held = false;
    if (src == SQLITE_ROW) {
        const char *holder = (const char *)sqlite3_column_text(s, 0);
        held = (uint64_t)sqlite3_column_int64(s, 1) == token && sqlite3_column_int64(s, 2) > be->now &&
               (!owner || (holder && strcmp(holder, owner) == 0));
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "reading a lease");
    *outcome = held ? 0
                    : at_store_error(be->store, AT_ERR_STALE, 0,
                                     "lease %s is not held with token %llu%s (expired, released or taken over)",
                                     name, (unsigned long long)token, owner ? " by this owner" : "");
    return 0;
}

static int sched_fired_body(at_backend *be, void *arg)
{
    struct sched_ctx *c = arg;
    c->outcome = 0;
    /* The fence and the write in one transaction: a leader whose lease
     * another process has taken cannot record a firing, however late its
     * call arrives. */
    int rc = lease_held(&c->outcome, be, c->lease, NULL, c->token);
    if (rc || c->outcome)
        return rc;
    sqlite3_stmt *s = S(be, S_SCHED_LAST);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    bool later = src == SQLITE_ROW &&
                 (sqlite3_column_type(s, 0) == SQLITE_NULL || c->fire_at > sqlite3_column_int64(s, 0));
    sqlite3_reset(s);
    if (src == SQLITE_DONE) {
        c->outcome = no_schedule(be, c->name);
        return 0;
    }
    if (src != SQLITE_ROW)
        return sqerr(be, &be->w, src, "reading a schedule");
    /* An older or repeated tick (a slower leader, a retry) must not move
     * the record back. */
    if (!later)
        return 0;
    s = S(be, S_SCHED_FIRED);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, c->fire_at);
    if (c->job_id)
        sqlite3_bind_text(s, 3, c->job_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 3);
    return run(be, s, "recording a schedule's firing");
}

static int sql_sched_fired(at_backend *be, const char *name, int64_t fire_at, const char *job_id,
                           const char *lease, uint64_t token)
{
    if (job_id && strlen(job_id) >= AT_ID_SIZE)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%.40s...' is not a job id", job_id);
    struct sched_ctx c = {.name = name, .fire_at = fire_at, .job_id = job_id, .lease = lease, .token = token};
    return run_sched(be, sched_fired_body, &c);
}

static int lease_acquire_body(at_backend *be, void *arg)
{
    struct sched_ctx *c = arg;
    c->outcome = 0;
    c->ttl_left = 0;
    sqlite3_stmt *s = S(be, S_LEASE_GET);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    uint64_t token = 1;
    if (src == SQLITE_ROW) {
        const char *holder = (const char *)sqlite3_column_text(s, 0);
        uint64_t held = (uint64_t)sqlite3_column_int64(s, 1);
        int64_t expires = sqlite3_column_int64(s, 2);
        bool mine = holder && strcmp(holder, c->owner) == 0;
        if (!holder && sqlite3_column_type(s, 0) != SQLITE_NULL) {
            sqlite3_reset(s);
            return nomem(be, "reading a lease");
        }
        if (!mine && expires > be->now) {
            sqlite3_reset(s);
            c->token = held;
            c->ttl_left = expires - be->now;
            c->outcome = at_store_error(be->store, AT_ERR_BUSY, 0,
                                        "lease %s is held by another owner for %lld ms more", c->name,
                                        (long long)c->ttl_left);
            return 0;
        }
        /* The same holder keeps its token, so its writes in flight stay
         * valid; anyone else gets a larger one, fencing out the previous
         * holder's. */
        token = mine ? held : held + 1;
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "reading a lease");
    s = S(be, S_LEASE_PUT);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (int64_t)token);
    sqlite3_bind_int64(s, 4, be->now + c->ttl_ms);
    int rc = run(be, s, "taking a lease");
    if (rc == 0) {
        c->token = token;
        c->ttl_left = c->ttl_ms;
    }
    return rc;
}

static int sql_lease_acquire(uint64_t *token_out, int64_t *ttl_left_out, at_backend *be, const char *name,
                             const char *owner, int64_t ttl_ms)
{
    struct sched_ctx c = {.name = name, .owner = owner, .ttl_ms = ttl_ms};
    *token_out = 0;
    *ttl_left_out = 0;
    int rc = run_sched(be, lease_acquire_body, &c);
    if (rc == 0 || rc == AT_ERR_BUSY) {
        *token_out = c.token;
        *ttl_left_out = c.ttl_left;
    }
    return rc;
}

static int lease_release_body(at_backend *be, void *arg)
{
    struct sched_ctx *c = arg;
    c->outcome = 0;
    int rc = lease_held(&c->outcome, be, c->name, c->owner, c->token);
    if (rc || c->outcome)
        return rc;
    /* Expired as of now rather than deleted: the row keeps the token, so
     * the next holder's token is still larger than every earlier one. */
    sqlite3_stmt *s = S(be, S_LEASE_EXPIRE);
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, be->now);
    return run(be, s, "releasing a lease");
}

static int sql_lease_release(at_backend *be, const char *name, const char *owner, uint64_t token)
{
    struct sched_ctx c = {.name = name, .owner = owner, .token = token};
    return run_sched(be, lease_release_body, &c);
}

/* ------------------------------------------------------- workflows (v2) */

/* Items of one wf_submit call that were duplicates, by the id the core made
 * for them: a later item naming that id as a parent waits for the existing
 * job instead (result_id).  Open addressing over item indexes, allocated
 * only once a duplicate turns up. */
struct dupmap {
    size_t *slot;
    size_t mask;
};

static uint64_t hash_id(const char *id)
{
    return hash_name(id);
}

static const char *dup_find(const struct dupmap *m, const at_enqueue_item *items, const char *id)
{
    if (!m->slot)
        return NULL;
    for (size_t i = hash_id(id) & m->mask;; i = (i + 1) & m->mask) {
        size_t k = m->slot[i];
        if (k == SIZE_MAX)
            return NULL;
        if (strcmp(items[k].job.id, id) == 0)
            return items[k].result_id;
    }
}

static int dup_add(struct dupmap *m, at_backend *be, const at_enqueue_item *items, size_t n, size_t k)
{
    if (!m->slot) {
        size_t cap = 16;
        while (cap < n * 2)
            cap *= 2;
        if (!(m->slot = at__malloc(cap * sizeof *m->slot)))
            return nomem(be, "submitting a workflow");
        memset(m->slot, 0xff, cap * sizeof *m->slot);
        m->mask = cap - 1;
    }
    size_t i = hash_id(items[k].job.id) & m->mask;
    while (m->slot[i] != SIZE_MAX)
        i = (i + 1) & m->mask;
    m->slot[i] = k;
    return 0;
}

struct wf_ctx {
    at_enqueue_item *items;
    size_t n;
    const char *guard;
    uint8_t gbid[16];
    uint64_t token;
    struct dupmap dups;
    int outcome;
};

/* The state of job `id` (0 when there is none). */
static int state_of(int *out, at_backend *be, const uint8_t id[16])
{
    int64_t v = 0;
    sqlite3_stmt *s = S(be, S_STATE_OF);
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    int rc = query_int(&v, be, s, 0, "reading a parent job");
    *out = (int)v;
    return rc;
}

/* How item `ji` (to be created with id `cid`) stands with its parents: each
 * edge stored (a repeated parent once), *nedges_out of them, *pending_out
 * still to finish, and the first DEAD or CANCELLED one in *failed (state in
 * *fstate, 0 if none).  Parents are earlier items or existing jobs. */
static int link_parents(uint32_t *nedges_out, uint32_t *pending_out, uint8_t failed[16], int *fstate,
                        at_backend *be, struct wf_ctx *c, const at_job_info *ji, const uint8_t cid[16])
{
    uint32_t nedges = 0, pending = 0;
    *fstate = 0;
    for (size_t k = 0; k < ji->nparents; k++) {
        const char *pid = ji->parents[k];
        uint8_t pb[16];
        int st = 0, rc;
        if (!pid || at_id_parse(pb, pid) != 0)
            return at_store_error(be->store, AT_ERR_INVAL, 0,
                                  "sqlite: node %s names '%.40s' as a parent, not a job id",
                                  ji->node ? ji->node : ji->id, pid ? pid : "(null)");
        if ((rc = state_of(&st, be, pb)))
            return rc;
        if (st == 0) {
            /* Not created: an item that was a duplicate waits for the job
             * holding its key. */
            const char *existing = dup_find(&c->dups, c->items, pid);
            if (existing && at_id_parse(pb, existing) == 0 && (rc = state_of(&st, be, pb)))
                return rc;
        }
        if (st == 0)
            return at_store_error(be->store, AT_ERR_NOTFOUND, 0,
                                  "sqlite: parent job %s of node %s does not exist; nothing was created", pid,
                                  ji->node ? ji->node : ji->id);
        bool finished = st >= AT_STATE_SUCCEEDED;
        sqlite3_stmt *s = S(be, S_DEP_PUT);
        sqlite3_bind_blob(s, 1, pb, 16, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, cid, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t)k);
        /* An edge from a job that already finished is settled here, now. */
        sqlite3_bind_int(s, 4, finished);
        if ((rc = run(be, s, "storing a dependency")))
            return rc;
        if (sqlite3_changes(be->w.db) == 0)
            continue; /* the same parent twice */
        nedges++;
        if (!finished)
            pending++;
        else if (st != AT_STATE_SUCCEEDED && *fstate == 0) {
            memcpy(failed, pb, 16);
            *fstate = st;
        }
    }
    *nedges_out = nedges;
    *pending_out = pending;
    return 0;
}

static int wf_submit_body(at_backend *be, void *arg)
{
    struct wf_ctx *c = arg;
    int64_t now = be->now;
    c->outcome = 0;
    if (c->dups.slot)
        memset(c->dups.slot, 0xff, (c->dups.mask + 1) * sizeof *c->dups.slot);
    if (c->guard) {
        /* The spawner's claim is checked in the transaction that creates:
         * a job that lost its lease (or is being cancelled) adds nothing,
         * however late its call arrives. */
        struct held h;
        int rc = check_held(&h, &c->outcome, be, c->guard, c->gbid, c->token);
        if (rc || c->outcome)
            return rc;
        if (h.cancel) {
            c->outcome = at_store_error(be->store, AT_ERR_CANCELLED, 0,
                                        "job %s is marked for cancellation: it spawns nothing", c->guard);
            return 0;
        }
    }
    int64_t qid = 0;
    const char *qname = NULL;
    uint8_t wfb[16];
    const char *wfname = NULL;
    for (size_t i = 0; i < c->n; i++) {
        at_enqueue_item *it = &c->items[i];
        at_job_info *ji = &it->job;
        uint8_t id[16];
        id_bytes(id, ji->id);
        it->status = 0;
        memcpy(it->result_id, ji->id, AT_ID_SIZE);
        int rc;
        if (ji->idempotency_key) {
            sqlite3_stmt *s = S(be, S_IDEM_GET);
            sqlite3_bind_text(s, 1, ji->idempotency_key, -1, SQLITE_STATIC);
            int src = sqlite3_step(s);
            if (src == SQLITE_ROW && sqlite3_column_int64(s, 1) > now && sqlite3_column_bytes(s, 0) == 16) {
                at_id_format(it->result_id, sqlite3_column_blob(s, 0));
                it->status = AT_ERR_DUPLICATE;
                sqlite3_reset(s);
                if ((rc = dup_add(&c->dups, be, c->items, c->n, i)))
                    return rc;
                continue;
            }
            sqlite3_reset(s);
            if (src != SQLITE_ROW && src != SQLITE_DONE)
                return sqerr(be, &be->w, src, "reading an idempotency key");
            s = S(be, S_IDEM_PUT);
            sqlite3_bind_text(s, 1, ji->idempotency_key, -1, SQLITE_STATIC);
            sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, now + ji->idempotency_ttl_ms);
            if ((rc = run(be, s, "storing an idempotency key")))
                return rc;
        }
        if (!qname || strcmp(qname, ji->queue) != 0) {
            if ((rc = queue_id(&qid, be, ji->queue, true)))
                return rc;
            qname = ji->queue;
        }
        if (ji->workflow_id && (!wfname || strcmp(wfname, ji->workflow_id) != 0)) {
            if (at_id_parse(wfb, ji->workflow_id) != 0)
                return at_store_error(be->store, AT_ERR_INVAL, 0, "sqlite: '%.40s' is not a workflow id",
                                      ji->workflow_id);
            wfname = ji->workflow_id;
        }
        uint32_t nedges = 0, pending = 0;
        uint8_t failed[16];
        int fstate = 0;
        if ((rc = link_parents(&nedges, &pending, failed, &fstate, be, c, ji, id)))
            return rc;
        int64_t run_at = ji->run_at != AT_TIME_NONE ? ji->run_at : now + ji->delay_ms;
        int state;
        char why[96];
        bool ends = fstate != 0 && ji->on_parent_failure != AT_PARENT_FAIL_RUN;
        if (ends) {
            state = ji->on_parent_failure == AT_PARENT_FAIL_DEAD ? AT_STATE_DEAD : AT_STATE_CANCELLED;
            char fid[AT_ID_SIZE];
            at_id_format(fid, failed);
            snprintf(why, sizeof why, "parent %s is %s", fid, at_state_name(fstate));
        } else if (pending) {
            state = AT_STATE_WAITING;
        } else {
            state = run_at > now ? AT_STATE_SCHEDULED : AT_STATE_READY;
        }
        sqlite3_stmt *ins = S(be, S_WF_INSERT);
        bind_job_columns(ins, id, qid, state, run_at, now, ji);
        if (ends) {
            sqlite3_bind_int64(ins, 15, now);
            sqlite3_bind_text(ins, 16, why, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(ins, 15);
            sqlite3_bind_null(ins, 16);
        }
        if (ji->workflow_id)
            sqlite3_bind_blob(ins, 17, wfb, 16, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 17);
        if (ji->node)
            sqlite3_bind_text(ins, 18, ji->node, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 18);
        sqlite3_bind_int(ins, 19, ji->on_parent_failure);
        sqlite3_bind_int64(ins, 20, nedges);
        sqlite3_bind_int64(ins, 21, state == AT_STATE_WAITING ? pending : 0);
        if (ji->traceparent)
            sqlite3_bind_text(ins, 22, ji->traceparent, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 22);
        if ((rc = run(be, ins, "inserting a workflow job")))
            return rc;
        if (ji->workflow_id) {
            sqlite3_stmt *m = S(be, S_WF_MEMBER);
            sqlite3_bind_blob(m, 1, wfb, 16, SQLITE_STATIC);
            sqlite3_bind_blob(m, 2, id, 16, SQLITE_STATIC);
            if ((rc = run(be, m, "adding a job to its workflow")))
                return rc;
            sqlite3_stmt *w = S(be, S_WF_COUNT_NEW);
            sqlite3_bind_blob(w, 1, wfb, 16, SQLITE_STATIC);
            sqlite3_bind_int(w, 2, state);
            if ((rc = run(be, w, "counting a workflow's job")))
                return rc;
        }
        if ((rc = count(be, qid, state, 1)))
            return rc;
    }
    return 0;
}

static int sql_wf_submit(at_backend *be, at_enqueue_item *items, size_t n, const char *guard_id,
                         uint64_t guard_token)
{
    struct wf_ctx c = {.items = items, .n = n, .guard = guard_id, .token = guard_token};
    if (guard_id && at_id_parse(c.gbid, guard_id) != 0)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "sqlite: '%.40s' is not a job id", guard_id);
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, wf_submit_body, &c);
    pthread_mutex_unlock(&be->mu);
    at__free(c.dups.slot);
    return rc ? rc : c.outcome;
}

static int no_workflow(at_backend *be, const char *wf_id)
{
    return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no workflow %s (it has no jobs)", wf_id);
}

/* O(1): one row of `workflows`, kept by the triggers of schema version 3. */
static int sql_wf_status(at_backend *be, const char *wf_id, uint64_t counts[AT_STATE_COUNT__])
{
    uint8_t wb[16];
    if (at_id_parse(wb, wf_id) != 0)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "sqlite: '%.40s' is not a workflow id", wf_id);
    for (int k = 0; k < AT_STATE_COUNT__; k++)
        counts[k] = 0;
    pthread_mutex_lock(&be->mu);
    /* Due jobs and expired leases first, as stats does: the counts never
     * show a state the clock has already moved a job out of. */
    int rc = advance_if_needed(be);
    if (rc == 0) {
        sqlite3_stmt *s = S(be, S_WF_COUNTS);
        sqlite3_bind_blob(s, 1, wb, 16, SQLITE_STATIC);
        int src = sqlite3_step(s);
        uint64_t total = 0;
        if (src == SQLITE_ROW) {
            for (int k = 1; k < AT_STATE_COUNT__; k++) {
                int64_t v = sqlite3_column_int64(s, k - 1);
                counts[k] = v > 0 ? (uint64_t)v : 0;
                total += counts[k];
            }
            src = SQLITE_DONE;
        }
        sqlite3_reset(s);
        if (src != SQLITE_DONE)
            rc = sqerr(be, &be->w, src, "reading a workflow's counts");
        else if (total == 0)
            rc = no_workflow(be, wf_id);
    }
    pthread_mutex_unlock(&be->mu);
    return rc;
}

/* A workflow's job ids with their states at the start of the call. */
struct wf_member {
    uint8_t id[16];
    int state;
};

struct wf_cancel_ctx {
    const char *wf_id;
    uint8_t wb[16];
    uint64_t n;
    int outcome;
};

static int wf_cancel_body(at_backend *be, void *arg)
{
    struct wf_cancel_ctx *c = arg;
    c->n = 0;
    c->outcome = 0;
    int rc = expire_all(be);
    if (rc)
        return rc;
    /* Read every member first: cancelling runs the propagation, which
     * writes the rows a live read of wf_jobs/jobs would still visit. */
    struct wf_member *v = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *s = S(be, S_WF_STATES);
    sqlite3_bind_blob(s, 1, c->wb, 16, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 0) != 16)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct wf_member *nv = at__realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = nomem(be, "cancelling a workflow");
                break;
            }
            v = nv;
            cap = nc;
        }
        memcpy(v[n].id, sqlite3_column_blob(s, 0), 16);
        v[n++].state = sqlite3_column_int(s, 1);
    }
    sqlite3_reset(s);
    if (rc == 0 && src != SQLITE_DONE && src != SQLITE_ROW)
        rc = sqerr(be, &be->w, src, "reading a workflow's jobs");
    if (rc == 0 && n == 0)
        c->outcome = no_workflow(be, c->wf_id);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i].state >= AT_STATE_SUCCEEDED)
            continue;
        s = S(be, S_HELD);
        sqlite3_bind_blob(s, 1, v[i].id, 16, SQLITE_STATIC);
        src = sqlite3_step(s);
        int64_t qid = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        int state = src == SQLITE_ROW ? sqlite3_column_int(s, 1) : 0;
        int marked = src == SQLITE_ROW ? sqlite3_column_int(s, 3) : 0;
        sqlite3_reset(s);
        if (src != SQLITE_ROW) {
            rc = sqerr(be, &be->w, src == SQLITE_DONE ? SQLITE_CORRUPT : src, "reading a workflow job");
            break;
        }
        if (state >= AT_STATE_SUCCEEDED) {
            c->n++; /* ended by the propagation from an earlier member */
        } else if (state == AT_STATE_RUNNING) {
            /* Its holder finds the mark at its next ack, fail or touch (as
             * at_cancel); an earlier mark is no change. */
            if (marked)
                continue;
            s = S(be, S_MARK_CANCEL);
            sqlite3_bind_blob(s, 1, v[i].id, 16, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, be->now);
            rc = run(be, s, "marking a job for cancellation");
            c->n++;
        } else {
            s = S(be, S_CANCELLED);
            sqlite3_bind_blob(s, 1, v[i].id, 16, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, be->now);
            rc = run(be, s, "cancelling a job");
            if (rc == 0)
                rc = move_count(be, qid, state, AT_STATE_CANCELLED);
            if (rc == 0)
                rc = settle(be, v[i].id, AT_STATE_CANCELLED);
            c->n++;
        }
    }
    at__free(v);
    return rc;
}

static int sql_wf_cancel(uint64_t *n_out, at_backend *be, const char *wf_id)
{
    struct wf_cancel_ctx c = {.wf_id = wf_id};
    *n_out = 0;
    if (at_id_parse(c.wb, wf_id) != 0)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "sqlite: '%.40s' is not a workflow id", wf_id);
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, wf_cancel_body, &c);
    pthread_mutex_unlock(&be->mu);
    if (rc == 0)
        *n_out = c.n;
    return rc ? rc : c.outcome;
}

/* A page of the workflow's jobs in id order: one range of wf_jobs, then one
 * lookup per job, in one read transaction. */
static int sql_wf_jobs(at_job **jobs, size_t *n_out, char *cursor_out, at_backend *be, const char *wf_id,
                       const char *cursor, size_t limit)
{
    uint8_t wb[16], after[16];
    *n_out = 0;
    if (at_id_parse(wb, wf_id) != 0)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "sqlite: '%.40s' is not a workflow id", wf_id);
    if (cursor && at_id_parse(after, cursor) != 0)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a cursor of this store", cursor);
    uint8_t(*ids)[16] = at__malloc((limit + 1) * sizeof *ids);
    if (!ids)
        return nomem(be, "listing a workflow's jobs");
    pthread_mutex_lock(&be->mu);
    int rc = advance_if_needed(be);
    size_t np = 0, n = 0;
    if (rc == 0 && (rc = begin_read(be)) == 0) {
        sqlite3_stmt *s = S(be, S_WF_IDS);
        sqlite3_bind_blob(s, 1, wb, 16, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, cursor ? (const void *)after : "", cursor ? 16 : 0, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t)limit + 1);
        int src;
        while ((src = sqlite3_step(s)) == SQLITE_ROW)
            if (sqlite3_column_bytes(s, 0) == 16)
                memcpy(ids[np++], sqlite3_column_blob(s, 0), 16);
        sqlite3_reset(s);
        if (src != SQLITE_DONE)
            rc = sqerr(be, &be->w, src, "listing a workflow's jobs");
        size_t take = np > limit ? limit : np;
        for (; rc == 0 && n < take; n++) {
            s = S(be, S_GET);
            sqlite3_bind_blob(s, 1, ids[n], 16, SQLITE_STATIC);
            src = sqlite3_step(s);
            if (src == SQLITE_ROW)
                rc = snapshot(&jobs[n], be, s, NULL);
            else
                rc = src == SQLITE_DONE ? at_store_error(be->store, AT_ERR_CORRUPT, 0,
                                                         "sqlite: a workflow lists a job that is gone")
                                        : sqerr(be, &be->w, src, "reading a workflow job");
            sqlite3_reset(s);
            if (rc)
                break;
        }
        end_read(be);
    }
    pthread_mutex_unlock(&be->mu);
    at__free(ids);
    if (rc) {
        while (n > 0)
            at_job_free(jobs[--n]);
        return rc;
    }
    *n_out = n;
    if (np > limit)
        memcpy(cursor_out, at_job_id(jobs[n - 1]), AT_ID_SIZE);
    return 0;
}

/* ------------------------------------------------ worker support (v4) */

static int release_body(at_backend *be, void *arg)
{
    struct hold_ctx *c = arg;
    struct held h;
    int rc = check_held(&h, &c->outcome, be, c->id, c->bid, c->token);
    if (rc || c->outcome)
        return rc;
    if (h.cancel)
        return cancel_holder(&c->outcome, be, &h, c->id, c->bid);
    /* The token stays as it is: held means RUNNING under it, so the job
     * being READY or SCHEDULED already makes it stale, and the next claim
     * moves it on as any claim does. */
    int to = c->ms > 0 ? AT_STATE_SCHEDULED : AT_STATE_READY;
    sqlite3_stmt *s = S(be, S_RELEASE);
    sqlite3_bind_blob(s, 1, c->bid, 16, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, to);
    sqlite3_bind_int64(s, 3, be->now + (c->ms > 0 ? c->ms : 0));
    sqlite3_bind_int64(s, 4, be->now);
    rc = run(be, s, "releasing a job");
    if (rc == 0)
        rc = move_count(be, h.qid, AT_STATE_RUNNING, to);
    /* Pollers of this process blocked on the queue learn of it at commit,
     * whoever called; other processes see data_version move. */
    be->released |= rc == 0 && to == AT_STATE_READY;
    return rc;
}

static int sql_release(at_backend *be, const char *id, uint64_t token, int64_t delay)
{
    struct hold_ctx c = {.id = id, .token = token, .ms = delay};
    id_bytes(c.bid, id);
    return run_hold(be, release_body, &c);
}

struct qflag_ctx {
    const char *queue;
    int32_t paused;
};

static int queue_pause_body(at_backend *be, void *arg)
{
    struct qflag_ctx *c = arg;
    int64_t qid = 0;
    /* Pausing makes the queue's row so the flag has a home before the
     * first job; resuming a queue the store never saw has nothing to
     * clear and writes nothing. */
    int rc = queue_id(&qid, be, c->queue, c->paused != 0);
    if (rc || !qid)
        return rc;
    sqlite3_stmt *s = S(be, S_Q_PAUSE);
    sqlite3_bind_int64(s, 1, qid);
    sqlite3_bind_int(s, 2, c->paused != 0);
    return run(be, s, c->paused ? "pausing a queue" : "resuming a queue");
}

static int sql_queue_pause(at_backend *be, const char *queue, int32_t paused)
{
    struct qflag_ctx c = {queue, paused};
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, queue_pause_body, &c);
    pthread_mutex_unlock(&be->mu);
    return rc;
}

static int sql_queue_is_paused(int32_t *paused_out, at_backend *be, const char *queue)
{
    *paused_out = 0;
    pthread_mutex_lock(&be->mu);
    int64_t qid = 0, paused = 0;
    int rc = queue_id(&qid, be, queue, false);
    if (rc == 0 && qid) {
        sqlite3_stmt *s = S(be, S_Q_PAUSED);
        sqlite3_bind_int64(s, 1, qid);
        rc = query_int(&paused, be, s, 0, "reading a queue's paused flag");
    }
    pthread_mutex_unlock(&be->mu);
    if (rc == 0)
        *paused_out = paused != 0;
    return rc;
}

struct rate_ctx {
    const char *queue;
    int64_t limit, period;
    uint32_t want;
    uint32_t granted;
    int64_t wait;
};

/* a / b rounded up, for a >= 0 and b > 0, without the overflow of
 * (a + b - 1) / b. */
static int64_t div_up(int64_t a, int64_t b)
{
    return a / b + (a % b != 0);
}

/* The bucket holds `units` of 1/period token, so refilling `limit` units per
 * ms is exact in integers: capacity limit * period units, a token period
 * units.  The caller checked that the capacity fits in 63 bits. */
static int rate_body(at_backend *be, void *arg)
{
    struct rate_ctx *c = arg;
    const int64_t cap = c->limit * c->period;
    int64_t units = cap, at = be->now;
    bool write = false;
    sqlite3_stmt *s = S(be, S_BUCKET_GET);
    sqlite3_bind_text(s, 1, c->queue, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW && sqlite3_column_int64(s, 0) == c->limit && sqlite3_column_int64(s, 1) == c->period) {
        units = sqlite3_column_int64(s, 2);
        at = sqlite3_column_int64(s, 3);
    } else if (src == SQLITE_ROW || src == SQLITE_DONE) {
        /* First seen, or another limit than it was filled for (a process
         * with new settings): full, as a fresh bucket starts.  Written
         * whatever the take, so the limit it is kept for is on file. */
        write = true;
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return sqerr(be, &be->w, src, "reading a rate bucket");
    if (units < 0 || units > cap)
        units = units < 0 ? 0 : cap;
    if (be->now > at) {
        /* Compared, not multiplied: a bucket idle for years would overflow
         * (now - at) * limit. */
        if (be->now - at >= div_up(cap - units, c->limit))
            units = cap;
        else
            units += (be->now - at) * c->limit;
        at = be->now;
    } else if (be->now < at) {
        /* The wall clock went back: refill from now on rather than wait
         * for the old time to come round again. */
        at = be->now;
        write = true;
    }
    int64_t have = units / c->period;
    uint32_t g = have >= (int64_t)c->want ? c->want : (uint32_t)have;
    units -= (int64_t)g * c->period;
    c->granted = g;
    c->wait = have > 0 ? 0 : div_up(c->period - units, c->limit);
    /* Nothing taken changes nothing: the content follows from (units, at)
     * the same way later, and an untouched file does not move data_version,
     * so refusals do not wake the other processes' pollers. */
    if (!write && g == 0)
        return 0;
    s = S(be, S_BUCKET_PUT);
    sqlite3_bind_text(s, 1, c->queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, c->limit);
    sqlite3_bind_int64(s, 3, c->period);
    sqlite3_bind_int64(s, 4, units);
    sqlite3_bind_int64(s, 5, at);
    return run(be, s, "taking from a rate bucket");
}

static int sql_rate_take(uint32_t *granted_out, int64_t *wait_ms_out, at_backend *be, const char *queue,
                         uint32_t limit, int64_t period_ms, uint32_t want)
{
    *granted_out = 0;
    *wait_ms_out = 0;
    if (limit == 0 || period_ms <= 0)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "a rate needs a limit and a period of at least 1");
    if (period_ms > INT64_MAX / (int64_t)limit)
        return at_store_error(be->store, AT_ERR_RANGE, 0, "a rate of %lu per %lld ms is out of range",
                              (unsigned long)limit, (long long)period_ms);
    struct rate_ctx c = {.queue = queue, .limit = limit, .period = period_ms, .want = want};
    pthread_mutex_lock(&be->mu);
    int rc = run_write(be, rate_body, &c);
    pthread_mutex_unlock(&be->mu);
    if (rc == 0) {
        *granted_out = c.granted;
        *wait_ms_out = c.wait;
    }
    return rc;
}

/* -------------------------------------------------------- other processes */

/* Has another connection committed since we last looked?  PRAGMA
 * data_version changes exactly then; reading it touches only the WAL index
 * in shared memory. */
static int sql_changed(at_backend *be)
{
    pthread_mutex_lock(&be->watch_mu);
    int src = sqlite3_step(be->data_version);
    int64_t dv = src == SQLITE_ROW ? sqlite3_column_int64(be->data_version, 0) : 0;
    sqlite3_reset(be->data_version);
    int rc = 0;
    if (src != SQLITE_ROW) {
        rc = at_store_error(be->store, map_sqlite(be->watch.db, src), src, "sqlite: reading data_version: %s",
                            sqlite3_errmsg(be->watch.db));
    } else if (dv != be->last_dv) {
        be->last_dv = dv;
        rc = 1;
    }
    pthread_mutex_unlock(&be->watch_mu);
    /* One poller reads the change for all: wake this process's others. */
    if (rc == 1)
        at_store_notify(be->store);
    return rc;
}

/* ------------------------------------------------------------ open/close */

static void conn_close(struct conn *c)
{
    for (int i = 0; i < S_COUNT__; i++)
        if (c->st[i])
            sqlite3_finalize(c->st[i]);
    memset(c->st, 0, sizeof c->st);
    if (c->db)
        sqlite3_close_v2(c->db);
    c->db = NULL;
}

static void sql_close(at_backend *be)
{
    if (!be)
        return;
    if (be->data_version)
        sqlite3_finalize(be->data_version);
    conn_close(&be->watch);
    /* The last connection to close checkpoints the WAL into the file. */
    conn_close(&be->w);
    cache_reset(be);
    at__free(be->d);
    at__free(be->work);
    at__free(be->kids);
    pthread_mutex_destroy(&be->mu);
    pthread_mutex_destroy(&be->watch_mu);
    at__free(be);
}

struct uri_opts {
    char *path;
    int sync_full;
    int64_t busy_ms;
    int nfs_allow;
};

static int parse_uri(struct uri_opts *o, at_store *store, const char *uri)
{
    const char *p = uri + 7; /* after "sqlite:" */
    const char *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    o->sync_full = 1;
    o->busy_ms = DEFAULT_BUSY_MS;
    o->nfs_allow = 0;
    if (plen == 0)
        return at_store_error(store, AT_ERR_URI, 0, "sqlite: the URI names no file: use sqlite:PATH");
    if (plen == 8 && memcmp(p, ":memory:", 8) == 0)
        return at_store_error(store, AT_ERR_URI, 0,
                              "sqlite: an in-memory database cannot be shared; use the memory: backend");
    while (q) {
        const char *k = q + 1;
        const char *end = strchr(k, '&');
        size_t len = end ? (size_t)(end - k) : strlen(k);
        const char *eq = memchr(k, '=', len);
        size_t kl = eq ? (size_t)(eq - k) : len;
        const char *v = eq ? eq + 1 : "";
        size_t vl = eq ? len - kl - 1 : 0;
#define IS(lit, s, n) ((n) == sizeof(lit) - 1 && memcmp((s), (lit), (n)) == 0)
        if (IS("sync", k, kl) && IS("full", v, vl)) {
            o->sync_full = 1;
        } else if (IS("sync", k, kl) && IS("normal", v, vl)) {
            o->sync_full = 0;
        } else if (IS("nfs", k, kl) && IS("allow", v, vl)) {
            o->nfs_allow = 1;
        } else if (IS("busy_timeout", k, kl) && vl > 0 && vl < 9) {
            int64_t ms = 0;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return at_store_error(store, AT_ERR_URI, 0, "sqlite: busy_timeout must be a number of ms");
                ms = ms * 10 + (v[i] - '0');
            }
            o->busy_ms = ms;
        } else {
            return at_store_error(store, AT_ERR_URI, 0,
                                  "sqlite: unknown or malformed URI parameter '%.*s' (known: sync=full|normal,"
                                  " busy_timeout=MS, nfs=allow)",
                                  (int)len, k);
        }
#undef IS
        q = end;
    }
    o->path = at__malloc(plen + 1);
    if (!o->path)
        return AT_ERR_NOMEM;
    memcpy(o->path, p, plen);
    o->path[plen] = '\0';
    return 0;
}

/* The SQL of statement i of the cache, NULL past the end: the tests read
 * every query plan with EXPLAIN QUERY PLAN.  Not static for that. */
const char *at__sqlite_statement(size_t i);
const char *at__sqlite_statement(size_t i)
{
    return i < S_COUNT__ ? k_sql[i] : NULL;
}

/* The SQL that takes a file from schema version v to v + 1, NULL past the
 * last: the tests build files as older releases made them.  Not static for
 * that. */
const char *at__sqlite_schema_step(size_t v);
const char *at__sqlite_schema_step(size_t v)
{
    return v < SCHEMA_VERSION ? k_steps[v] : NULL;
}

/* 1 for the magic numbers of network file systems (statfs f_type), on which
 * WAL is unsafe.  Not static: the tests check the table. */
int at__sqlite_fs_is_network(long f_type);
int at__sqlite_fs_is_network(long f_type)
{
    switch ((unsigned long)f_type & 0xffffffffu) {
    case FS_NFS:
    case FS_SMB:
    case FS_CIFS:
    case FS_SMB2:
    case FS_CODA:
    case FS_AFS:
    case FS_9P:
    case FS_CEPH:
        return 1;
    default:
        return 0;
    }
}

/* statfs the directory that holds (or will hold) the file. */
static int on_network_fs(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return 0; /* the open that follows reports a missing directory */
    return at__sqlite_fs_is_network((long)sf.f_type);
}

static int exec_sql(at_backend *be, struct conn *c, const char *sql, const char *what)
{
    char *msg = NULL;
    int src = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (src == SQLITE_OK)
        return 0;
    be->last_src = src;
    int rc = at_store_error(be->store, map_sqlite(c->db, src), src, "sqlite: %s: %s", what,
                            msg ? msg : sqlite3_errstr(src));
    sqlite3_free(msg);
    return rc;
}

static int conn_open(at_backend *be, struct conn *c, const char *path, const struct uri_opts *o)
{
    int src = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        int rc = at_store_error(be->store, map_sqlite(c->db, src), src, "sqlite: cannot open %s: %s", path,
                                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
        return rc;
    }
    sqlite3_extended_result_codes(c->db, 1);
    c->busy_ms = o->busy_ms;
    c->seed = (unsigned)mono_ns() ^ (unsigned)getpid();
    sqlite3_busy_handler(c->db, on_busy, c);
    char sql[256];
    /* WAL: readers never wait for the writer, and a commit is an append.
     * On a network file system (allowed explicitly) WAL's shared memory
     * would be wrong across hosts: the rollback journal is used there. */
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=%s; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;"
             " PRAGMA cache_size=-16384;",
             o->nfs_allow ? "DELETE" : "WAL", o->sync_full ? "FULL" : "NORMAL");
    int64_t start_ns = mono_ns();
    int nbusy = 0, rc;
    while ((rc = exec_sql(be, c, sql, "configuring the connection")) != 0 &&
           busy_again(c, be->last_src, start_ns, &nbusy))
        ;
    return rc;
}

static int user_version_cb(void *arg, int n, char **v, char **names)
{
    (void)names;
    if (n > 0 && v[0])
        *(int64_t *)arg = strtoll(v[0], NULL, 10);
    return 0;
}

/* Create or check the schema, in one write transaction. */
static int migrate(at_backend *be)
{
    struct conn *c = &be->w;
    int64_t version = -1, appid = -1, tables = -1;
    int64_t start_ns = mono_ns();
    int nbusy = 0, rc;
    while ((rc = exec_sql(be, c, "BEGIN IMMEDIATE", "locking the database to check its schema")) != 0 &&
           busy_again(c, be->last_src, start_ns, &nbusy))
        ;
    if (rc) {
        if ((be->last_src & 0xff) == SQLITE_BUSY)
            return at_store_error(be->store, AT_ERR_BUSY, be->last_src,
                                  "sqlite: the database stayed locked by another connection for over %lld ms"
                                  " (busy_timeout)",
                                  (long long)c->busy_ms);
        return rc;
    }
    char *msg = NULL;
    int src = sqlite3_exec(c->db, "PRAGMA user_version", user_version_cb, &version, &msg);
    if (src == SQLITE_OK)
        src = sqlite3_exec(c->db, "PRAGMA application_id", user_version_cb, &appid, &msg);
    if (src == SQLITE_OK)
        src = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", user_version_cb, &tables, &msg);
    if (src != SQLITE_OK) {
        rc = at_store_error(be->store, map_sqlite(c->db, src), src, "sqlite: reading the schema version: %s",
                            msg ? msg : sqlite3_errstr(src));
    } else if (version == 0 && tables > 0) {
        rc = at_store_error(be->store, AT_ERR_CORRUPT, 0,
                            "sqlite: the file holds another application's database, not a libasynctask store");
    } else if (version < 0 || (version > 0 && appid != APPLICATION_ID)) {
        rc = at_store_error(be->store, AT_ERR_CORRUPT, 0,
                            "sqlite: the file is not a libasynctask store (application_id %lld)", (long long)appid);
    } else if (version > SCHEMA_VERSION) {
        rc = at_store_error(be->store, AT_ERR_UNSUPPORTED, 0,
                            "sqlite: the store has schema version %lld; this libasynctask knows up to %d (upgrade it)",
                            (long long)version, SCHEMA_VERSION);
    } else if (version < SCHEMA_VERSION) {
        /* Each step takes the file one version up, all inside this one
         * transaction: another process opening the file meanwhile waits on
         * the lock and then finds it upgraded, and a failure leaves the file
         * at its old version. */
        for (int64_t v = version; rc == 0 && v < SCHEMA_VERSION; v++) {
            char what[64];
            if (v == 0)
                snprintf(what, sizeof what, "creating the schema");
            else
                snprintf(what, sizeof what, "upgrading the schema to version %d", (int)v + 1);
            rc = exec_sql(be, c, k_steps[v], what);
        }
        if (rc == 0) {
            char sql[128];
            snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;", APPLICATION_ID,
                     SCHEMA_VERSION);
            rc = exec_sql(be, c, sql, "stamping the schema version");
        }
    }
    sqlite3_free(msg);
    if (rc == 0)
        rc = exec_sql(be, c, "COMMIT", "committing the schema");
    if (rc)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int sql_open(at_backend **out, at_store *store, const char *uri)
{
    if (strncmp(uri, "sqlite:", 7) != 0)
        return at_store_error(store, AT_ERR_URI, 0, "not a sqlite: URI");
    struct uri_opts o = {0};
    int rc = parse_uri(&o, store, uri);
    if (rc)
        return rc;
    if (on_network_fs(o.path) && !o.nfs_allow) {
        rc = at_store_error(store, AT_ERR_UNSUPPORTED, 0,
                            "sqlite: %s is on a network file system, where WAL mode can corrupt the database;"
                            " keep the store on a local disk (or add ?nfs=allow for a single-host rollback-journal"
                            " store)",
                            o.path);
        at__free(o.path);
        return rc;
    }
    /* Create the file ourselves with mode 0600: SQLite would use 0644 less
     * the umask, and the -wal and -shm files copy the main file's mode. */
    int fd = open(o.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
    } else if (errno != EEXIST) {
        int e = errno;
        rc = at_store_error(store, e == ENOSPC || e == EDQUOT ? AT_ERR_FULL : AT_ERR_IO, e,
                            "sqlite: cannot create %s: %s", o.path, strerror(e));
        at__free(o.path);
        return rc;
    }
    at_backend *be = at__calloc(1, sizeof *be);
    if (!be) {
        at__free(o.path);
        return AT_ERR_NOMEM;
    }
    be->store = store;
    pthread_mutex_init(&be->mu, NULL);
    pthread_mutex_init(&be->watch_mu, NULL);
    rc = conn_open(be, &be->w, o.path, &o);
    if (rc == 0)
        rc = migrate(be);
    for (int i = 0; rc == 0 && i < S_COUNT__; i++) {
        int src = sqlite3_prepare_v3(be->w.db, k_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &be->w.st[i], NULL);
        if (src != SQLITE_OK)
            rc = sqerr(be, &be->w, src, "preparing a statement");
    }
    if (rc == 0)
        rc = conn_open(be, &be->watch, o.path, &o);
    if (rc == 0) {
        int src = sqlite3_prepare_v3(be->watch.db, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT,
                                     &be->data_version, NULL);
        if (src == SQLITE_OK && (src = sqlite3_step(be->data_version)) == SQLITE_ROW)
            be->last_dv = sqlite3_column_int64(be->data_version, 0);
        if (be->data_version)
            sqlite3_reset(be->data_version);
        if (src != SQLITE_ROW && src != SQLITE_OK)
            rc = at_store_error(store, map_sqlite(be->watch.db, src), src, "sqlite: reading data_version: %s",
                                sqlite3_errmsg(be->watch.db));
    }
    at__free(o.path);
    if (rc) {
        sql_close(be);
        return rc;
    }
    *out = be;
    return 0;
}

const at_store_vtable at__sqlite_vtable = {
    .version = AT_STORE_VTABLE_VERSION,
    .size = sizeof(at_store_vtable),
    .scheme = "sqlite",
    .flags = AT_STORE_F_HOST_CLOCK,
    .open = sql_open,
    .close = sql_close,
    .enqueue = sql_enqueue,
    .claim = sql_claim,
    .ack = sql_ack,
    .fail = sql_fail,
    .touch = sql_touch,
    .cancel = sql_cancel,
    .get = sql_get,
    .list = sql_list,
    .requeue = sql_requeue,
    .purge = sql_purge,
    .stats = sql_stats,
    .control = NULL,
    .changed = sql_changed,
    .ack_many = sql_ack_many,
    .sched_put = sql_sched_put,
    .sched_remove = sql_sched_remove,
    .sched_pause = sql_sched_pause,
    .sched_list = sql_sched_list,
    .sched_fired = sql_sched_fired,
    .lease_acquire = sql_lease_acquire,
    .lease_release = sql_lease_release,
    .wf_submit = sql_wf_submit,
    .wf_status = sql_wf_status,
    .wf_cancel = sql_wf_cancel,
    .wf_jobs = sql_wf_jobs,
    .release = sql_release,
    .queue_pause = sql_queue_pause,
    .queue_is_paused = sql_queue_is_paused,
    .rate_take = sql_rate_take,
};
