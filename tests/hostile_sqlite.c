/*
 * hostile_sqlite.c - SQLite stores holding rows this library never writes.
 *
 * A store file is data from outside the process: another program, an older
 * or newer release, a damaged disk, or an attacker may have written it.
 * Each case makes a small store through the API (one READY job with a
 * payload and an idempotency key, one schedule), then rewrites one thing
 * with sqlite3 directly: a state, priority or count out of range, a value
 * of the wrong type (one that the int accessors would truncate into range
 * included), a NULL where the schema says NOT NULL (the constraint is taken
 * out of the schema first, as a foreign writer could), a name outside the
 * charset, an id of the wrong length, a payload or result over the store's
 * limits, a schedule definition truncated, with a length field pointing
 * past its end, or with values out of range.  Then every read that meets
 * the row (at_get, at_list, at_poll, at_stats_get, at_schedule_list,
 * at_schedule_get) must return its exact documented code (AT_ERR_CORRUPT,
 * or AT_ERR_TOOBIG for bytes over the limits) and never crash or read past
 * a buffer (CI runs this under ASan and UBSan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sqlite3.h>

#include "asynctask.h"
#include "bad_input.h"

static char g_dir[] = "/tmp/at_hostile.XXXXXX";
static char g_file[200], g_uri[256];
static char g_id[AT_ID_SIZE];

/* Expected codes of each read; 0 where the read does not meet the row (a
 * listing and a claim walk the queues and their states: a job with no valid
 * state or queue is in none of them) or reads it fine. */
struct hcase {
    const char *name;
    const char *sql; /* applied with sqlite3 to the closed store; ?ID is the job's id */
    int strip;       /* take NOT NULL out of the schema first */
    int get, list, poll, stats, slist, sget;
};

#define JOB(name, sql, code) {name, sql, 0, code, code, code, 0, 0, 0}
#define JOB_NULL(name, sql) {name, sql, 1, AT_ERR_CORRUPT, AT_ERR_CORRUPT, AT_ERR_CORRUPT, 0, 0, 0}
#define SCHED(name, sql) {name, sql, 0, 0, 0, 0, 0, AT_ERR_CORRUPT, AT_ERR_CORRUPT}
#define C AT_ERR_CORRUPT

/* A valid spec ("ATS1", then tag, 4-byte length, value) with one field
 * changed: expression "* * * * *", type "t", then the tail given. */
#define SPEC_HEAD "X'41545331' || X'0100000009' || CAST('* * * * *' AS BLOB) || X'0300000001' || CAST('t' AS BLOB)"

static const struct hcase k_cases[] = {
    {"state 99", "UPDATE jobs SET state = 99", 0, C, 0, 0, 0, 0, 0},
    {"state 0", "UPDATE jobs SET state = 0", 0, C, 0, 0, 0, 0, 0},
    {"state -1", "UPDATE jobs SET state = -1", 0, C, 0, 0, 0, 0, 0},
    {"state 2^32 + 3 (READY once truncated)", "UPDATE jobs SET state = 4294967299", 0, C, 0, 0, 0, 0, 0},
    {"state as text", "UPDATE jobs SET state = 'ready'", 0, C, 0, 0, 0, 0, 0},
    {"state as a real", "UPDATE jobs SET state = 3.5", 0, C, 0, 0, 0, 0, 0},
    JOB("priority 5000", "UPDATE jobs SET priority = 5000", C),
    JOB("priority INT64_MIN", "UPDATE jobs SET priority = -9223372036854775808", C),
    {"attempts -1", "UPDATE jobs SET attempts = -1", 0, C, C, 0, 0, 0, 0}, /* a claim makes it 0 */
    JOB("max attempts 0", "UPDATE jobs SET max_attempts = 0", C),
    JOB("jitter 2000", "UPDATE jobs SET backoff_jitter = 2000", C),
    JOB("lease 0 ms", "UPDATE jobs SET lease_ms = 0", C),
    JOB("backoff cap negative", "UPDATE jobs SET backoff_cap_ms = -5", C),
    JOB("cancel flag 7", "UPDATE jobs SET cancel_req = 7", C),
    JOB("parent policy 9", "UPDATE jobs SET policy = 9", C),
    JOB("negative parent count", "UPDATE jobs SET nparents = -5", C),
    JOB("run_at as text", "UPDATE jobs SET run_at = 'soon'", C),
    JOB("token as a real", "UPDATE jobs SET token = 1.5", C),
    JOB("type with a space", "UPDATE jobs SET type = 'bad type'", C),
    JOB("type as a blob with a NUL", "UPDATE jobs SET type = X'740074'", C),
    JOB("type of 300 bytes", "UPDATE jobs SET type = printf('%.300c', 'a')", C),
    JOB("idempotency key with a space", "UPDATE jobs SET idem_key = 'a key'", C),
    JOB("traceparent of 5 bytes", "UPDATE jobs SET traceparent = 'short'", C),
    JOB("workflow id of 2 bytes", "UPDATE jobs SET workflow = X'0102'", C),
    JOB("workflow id as text", "UPDATE jobs SET workflow = '0123456789abcdef'", C),
    JOB("node with a newline", "UPDATE jobs SET node = 'n' || char(10)", C),
    JOB_NULL("type NULL", "UPDATE jobs SET type = NULL"),
    JOB_NULL("payload NULL", "UPDATE jobs SET payload = NULL"),
    {"state NULL", "UPDATE jobs SET state = NULL", 1, C, 0, 0, 0, 0, 0},
    JOB_NULL("max attempts NULL", "UPDATE jobs SET max_attempts = NULL"),
    JOB("payload over the limit", "UPDATE jobs SET payload = zeroblob(1048577)", AT_ERR_TOOBIG),
    JOB("result over the limit", "UPDATE jobs SET result = zeroblob(1048577)", AT_ERR_TOOBIG),
    /* The job's queue is missing: reading it refuses it; listing and a
     * poll of the queue do not meet it. */
    {"queue id with no queue", "UPDATE jobs SET qid = 999", 0, C, 0, 0, 0, 0, 0},
    {"queue name with a space", "UPDATE queues SET name = 'h q'", 0, C, C, 0, C, 0, 0},
    {"queue name with a quote and newline", "UPDATE queues SET name = 'q\"' || char(10)", 0, C, C, 0, C, 0, 0},
    {"queue name NULL", "UPDATE queues SET name = NULL", 1, C, C, 0, C, 0, 0},
    /* An id of the wrong length is no job's id: at_get does not find it,
     * a listing skips it, a claim refuses it. */
    {"job id of 2 bytes", "UPDATE jobs SET id = X'0102'", 0, AT_ERR_NOTFOUND, 0, C, 0, 0, 0},
    {"job id as text", "UPDATE jobs SET id = 'abcdefghijklmnop'", 0, AT_ERR_NOTFOUND, 0, C, 0, 0, 0},
    SCHED("spec empty", "UPDATE schedules SET spec = X''"),
    SCHED("spec magic only", "UPDATE schedules SET spec = X'41545331'"),
    SCHED("spec of another program", "UPDATE schedules SET spec = CAST('{\"cron\":1}' AS BLOB)"),
    SCHED("spec cut after 10 bytes", "UPDATE schedules SET spec = substr(spec, 1, 10)"),
    SCHED("spec cut inside a length field", "UPDATE schedules SET spec = substr(spec, 1, 6)"),
    SCHED("spec length field of 2^32 - 1", "UPDATE schedules SET spec = X'4154533101FFFFFFFF2A2A'"),
    SCHED("spec integer of 7 bytes", "UPDATE schedules SET spec = " SPEC_HEAD " || X'060000000700000000000001'"),
    SCHED("spec priority 5000", "UPDATE schedules SET spec = " SPEC_HEAD " || X'06000000080000000000001388'"),
    SCHED("spec lease 0", "UPDATE schedules SET spec = " SPEC_HEAD " || X'0B000000080000000000000000'"),
    SCHED("spec misfire policy 9", "UPDATE schedules SET spec = " SPEC_HEAD " || X'0C000000080000000000000009'"),
    SCHED("spec grace over a day", "UPDATE schedules SET spec = " SPEC_HEAD " || X'0D0000000800000000FFFFFFFF'"),
    SCHED("spec queue of 0 bytes", "UPDATE schedules SET spec = " SPEC_HEAD " || X'0500000000'"),
    SCHED("spec expression invalid",
          "UPDATE schedules SET spec = X'41545331' || X'0100000005' || CAST('* * *' AS BLOB) || X'0300000001' || "
          "CAST('t' AS BLOB)"),
    SCHED("spec without a type", "UPDATE schedules SET spec = X'41545331' || X'0100000009' || CAST('* * * * *' AS BLOB)"),
    SCHED("last job id of 3 bytes", "UPDATE schedules SET last_job_id = 'abc', last_fire_at = 5"),
    SCHED("last job id of 40 bytes", "UPDATE schedules SET last_job_id = printf('%.40c', '0'), last_fire_at = 5"),
    {"schedule name with a space", "UPDATE schedules SET name = 'h s'", 0, 0, 0, 0, 0, C, AT_ERR_NOTFOUND},
    {"spec NULL", "UPDATE schedules SET spec = NULL", 1, 0, 0, 0, 0, C, C},
};
#undef C
#define NCASES (sizeof k_cases / sizeof k_cases[0])

static void sql(sqlite3 *db, const char *q)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, q, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", q, err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
}

static void make_store(void)
{
    unlink(g_file);
    at_store *s = NULL;
    ck_assert_int_eq(at_store_open(&s, g_uri), 0);
    at_opts *o = NULL;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_QUEUE, "hq"), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, "k1"), 0);
    ck_assert_int_eq(at_enqueue(g_id, s, "t", "hello", 5, o), 0);
    at_opts_free(o);
    at_schedule *sc = NULL;
    ck_assert_int_eq(at_schedule_new(&sc, "hs", "*/5 * * * *", NULL, "t"), 0);
    ck_assert_int_eq(at_schedule_add(NULL, s, sc), 0);
    at_schedule_free(sc);
    at_store_close(s);
}

/* Rewrite the closed store as the case says. */
static void poison(const struct hcase *c)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(g_file, &db), SQLITE_OK);
    if (c->strip) {
        sql(db, "PRAGMA writable_schema = ON");
        sql(db, "UPDATE sqlite_schema SET sql = replace(sql, 'NOT NULL', '') WHERE name IN ('jobs', 'queues', "
                "'schedules')");
        sql(db, "PRAGMA writable_schema = OFF");
        sqlite3_close(db);
        ck_assert_int_eq(sqlite3_open(g_file, &db), SQLITE_OK);
    }
    sql(db, c->sql);
    ck_assert_int_eq(sqlite3_changes(db), 1);
    sqlite3_close(db);
}

START_TEST(a_hostile_row_is_refused_with_its_code_by_every_read)
{
    const struct hcase *c = &k_cases[_i];
    make_store();
    poison(c);
    at_store *s = NULL;
    ck_assert_msg(at_store_open(&s, g_uri) == 0, "%s: open: %s", c->name, at_last_error());

    at_job *j = NULL;
    int rc = at_get(&j, s, g_id);
    ck_assert_msg(rc == c->get, "%s: at_get %s, expected %s", c->name, at_err_name(rc), at_err_name(c->get));
    ck_assert(rc == 0 || j == NULL);
    if (rc == 0)
        at_job_free(j);

    at_job *jobs[4];
    size_t n = 9;
    char cursor[AT_CURSOR_SIZE];
    rc = at_list(jobs, &n, cursor, s, NULL, AT_STATE_ANY, NULL, 4);
    ck_assert_msg(rc == c->list, "%s: at_list %s, expected %s", c->name, at_err_name(rc), at_err_name(c->list));
    ck_assert(rc == 0 || n == 0);
    for (size_t i = 0; i < n; i++)
        at_job_free(jobs[i]);

    /* A claim that meets a corrupt row sets it aside as DEAD (a warning is
     * logged) and succeeds with the jobs behind it: here none.  The queue is
     * not stuck: the next poll succeeds too. */
    const char *q[1] = {"hq"};
    n = 9;
    rc = at_poll(jobs, &n, s, q, 1, 4, 0);
    int want = c->poll == AT_ERR_CORRUPT ? 0 : c->poll;
    ck_assert_msg(rc == want, "%s: at_poll %s, expected %s", c->name, at_err_name(rc), at_err_name(want));
    ck_assert(rc == 0 || n == 0);
    for (size_t i = 0; i < n; i++)
        at_job_free(jobs[i]);
    if (c->poll == AT_ERR_CORRUPT) {
        ck_assert_msg(n == 0, "%s: the corrupt row was handed out", c->name);
        sqlite3 *db = NULL;
        ck_assert_int_eq(sqlite3_open(g_file, &db), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM jobs WHERE state = 6", -1, &st, NULL),
                         SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_msg(sqlite3_column_int(st, 0) == 1, "%s: the corrupt row was not set aside", c->name);
        sqlite3_finalize(st);
        sqlite3_close(db);
        n = 9;
        ck_assert_int_eq(at_poll(jobs, &n, s, q, 1, 4, 0), 0);
        ck_assert_uint_eq(n, 0);
    }

    at_stats *st = NULL;
    rc = at_stats_get(&st, s);
    ck_assert_msg(rc == c->stats, "%s: at_stats_get %s, expected %s", c->name, at_err_name(rc),
                  at_err_name(c->stats));
    at_stats_free(st);

    at_schedule **v = NULL;
    rc = at_schedule_list(&v, &n, s);
    ck_assert_msg(rc == c->slist, "%s: at_schedule_list %s, expected %s", c->name, at_err_name(rc),
                  at_err_name(c->slist));
    if (rc == 0)
        at_schedule_list_free(v, n);
    else
        ck_assert(v == NULL && n == 0);

    at_schedule *one = NULL;
    rc = at_schedule_get(&one, s, "hs");
    ck_assert_msg(rc == c->sget, "%s: at_schedule_get %s, expected %s", c->name, at_err_name(rc),
                  at_err_name(c->sget));
    at_schedule_free(one);

    /* A refused read changed nothing: the store reads the same twice. */
    char *d1 = bi_dump(s, NULL), *d2 = bi_dump(s, NULL);
    ck_assert_str_eq(d1, d2);
    free(d1);
    free(d2);
    at_store_close(s);
}
END_TEST

/* Raising the limit reads a payload a lowered limit refused: the bytes were
 * never the problem, only this handle's bound. */
START_TEST(a_payload_over_a_lowered_limit_reads_again_under_a_raised_one)
{
    make_store();
    at_store *s = NULL;
    ck_assert_int_eq(at_store_open(&s, g_uri), 0);
    ck_assert_int_eq(at_store_set_option(s, AT_OPT_STORE_MAX_PAYLOAD, 4), 0);
    at_job *j = NULL;
    ck_assert_int_eq(at_get(&j, s, g_id), AT_ERR_TOOBIG);
    ck_assert_int_eq(at_store_set_option(s, AT_OPT_STORE_MAX_PAYLOAD, 5), 0);
    ck_assert_int_eq(at_get(&j, s, g_id), 0);
    size_t len = 0;
    ck_assert_mem_eq(at_job_payload(j, &len), "hello", 5);
    at_job_free(j);
    at_store_close(s);
}
END_TEST

int main(void)
{
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_file, sizeof g_file, "%s/h.db", g_dir);
    snprintf(g_uri, sizeof g_uri, "sqlite:%s?sync=normal", g_file);
    Suite *su = suite_create("hostile_sqlite");
    TCase *t = tcase_create("rows");
    tcase_add_loop_test(t, a_hostile_row_is_refused_with_its_code_by_every_read, 0, (int)NCASES);
    tcase_add_test(t, a_payload_over_a_lowered_limit_reads_again_under_a_raised_one);
    suite_add_tcase(su, t);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "hostile_sqlite: could not remove %s\n", g_dir);
    printf("hostile_sqlite: %zu hostile rows\n", NCASES);
    return failed ? 1 : 0;
}
