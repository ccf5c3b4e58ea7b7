/*
 * record_redis_seeds.c - makes the redis_reply target's seeds: runs each
 * operation sequence below through the target against a real redis-server
 * (fake_redis.c in record mode forwards every command) and writes the
 * sequence and the replies it got as one seed file, so the seeds hold the
 * scripts' real reply shapes.  Each seed is then replayed against the fake
 * layer, which must consume every recorded byte.
 *
 * Usage: record_redis_seeds PORT OUTDIR (tests/fuzz/make-seeds.sh starts a
 * throwaway server and runs this).  The server's data is flushed before
 * each sequence.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "fake_redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* name, operations (letters of fuzz_redis_reply.c) */
static const char *const k_seeds[][2] = {
    {"open_from_stream", "@E"},
    {"enqueue", "E"},
    {"enqueue_twice", "EE"},
    {"claim_ack", "ECA"},
    {"claim_empty", "C"},
    {"batch_claim_ack_many", "BCM"},
    {"claim_fail", "ECF"},
    {"claim_touch_release", "ECTZ"},
    {"cancel_ready", "EX"},
    {"cancel_running_ack", "ECXA"},
    {"get", "ECG"},
    {"get_missing", "G"},
    {"list", "BEL"},
    {"requeue", "ECFrR"},
    {"purge_stats_metrics", "ECAPSI"},
    {"schedules", "Hhlgpuhk"},
    {"schedule_missing", "gk"},
    {"leases_fired", "HDfdD"},
    {"rate", "NN"},
    {"queue_pause", "QqUq"},
    {"workflow", "ECWwjx"},
    {"spawn", "ECKC"},
    {"wait_replicas", "+E"},
    {"everything", "EBCAMFTZXGLrRPSIHhlgpukDdfNQqUWwjxK"},
};

static void flush(const char *host, int port)
{
    redisContext *c = redisConnect(host, port);
    redisReply *r = c && !c->err ? redisCommand(c, "FLUSHALL") : NULL;
    if (!r) {
        fprintf(stderr, "cannot FLUSHALL redis at %s:%d\n", host, port);
        exit(1);
    }
    freeReplyObject(r);
    redisFree(c);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT OUTDIR\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    size_t n = sizeof k_seeds / sizeof k_seeds[0];
    uint8_t *seeds[sizeof k_seeds / sizeof k_seeds[0]];
    size_t lens[sizeof k_seeds / sizeof k_seeds[0]];
    fz_redis_record("127.0.0.1", port);
    for (size_t i = 0; i < n; i++) {
        flush("127.0.0.1", port);
        size_t ol = strlen(k_seeds[i][1]);
        uint8_t in[64];
        memcpy(in, k_seeds[i][1], ol);
        in[ol] = '\n';
        LLVMFuzzerTestOneInput(in, ol + 1);
        size_t rl;
        const uint8_t *rec = fz_redis_recorded(&rl);
        seeds[i] = malloc(ol + 1 + rl);
        if (!seeds[i])
            return 1;
        memcpy(seeds[i], in, ol + 1);
        memcpy(seeds[i] + ol + 1, rec, rl);
        lens[i] = ol + 1 + rl;
    }
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[2], k_seeds[i][0]);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(seeds[i], 1, lens[i], f) != lens[i] || fclose(f) != 0) {
            perror(path);
            return 1;
        }
        free(seeds[i]);
    }
    /* Replayed without the server: every recorded reply is read. */
    fz_redis_record(NULL, 0);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[2], k_seeds[i][0]);
        FILE *f = fopen(path, "rb");
        static uint8_t buf[1 << 20];
        size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f)
            fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        printf("%-24s %6zu bytes, %zu commands, %zu bytes unread on replay\n", k_seeds[i][0], len,
               fz_redis_commands(), fz_redis_left());
        bad |= fz_redis_left() != 0;
    }
    return bad;
}
