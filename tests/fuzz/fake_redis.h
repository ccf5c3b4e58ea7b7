/*
 * fake_redis.h - a fake connection layer under the Redis backend, for the
 * fuzz targets (tests/fuzz/fake_redis.c says how it works).
 *
 * The replies come from a byte stream in the Redis protocol (RESP) that the
 * caller sets before each store call sequence; every command the backend
 * sends takes the next reply from it.  When the stream runs out the
 * connection is lost (EOF); a '!' where a reply starts is a read timeout;
 * bytes that are not a reply are a protocol error (the rest of their line
 * is skipped).  No socket is ever opened, except in record mode.
 */
#ifndef FUZZ_FAKE_REDIS_H
#define FUZZ_FAKE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "asynctask.h"
#include "asynctask/store.h"

/* The open's commands (SCRIPT LOAD, CONFIG GET, AUTH, SELECT, SENTINEL,
 * ROLE) take their replies from the stream too; without this flag the fake
 * answers them as a healthy server would, so that seeds and mutations spend
 * their bytes on the replies of the calls under test. */
#define FZ_REDIS_OPEN_FROM_STREAM 1u

/* Answer the following commands from data[0..len) (not copied: it must
 * outlive the calls). */
void fz_redis_feed(const uint8_t *data, size_t len, unsigned flags);
/* Bytes of the stream not consumed yet. */
size_t fz_redis_left(void);
/* Commands sent since the last fz_redis_feed. */
size_t fz_redis_commands(void);

/* Record mode, for making seeds: every connection goes to the real server
 * at host:port instead, and the replies the stream would have had to give
 * are captured in RESP (fz_redis_recorded; reset by fz_redis_feed).  A NULL
 * host ends record mode. */
void fz_redis_record(const char *host, int port);
const uint8_t *fz_redis_recorded(size_t *len_out);

/* A redis store's parsed URI settings written back as a URI in one
 * canonical form (the uri target re-parses it and compares); -1 when st is
 * not a redis store or out is too small. */
int fz_redis_canonical(char *out, size_t cap, const at_store *st);

/* The backend's decoders of stored records, reached through this file
 * because they are static in backends/redis.c. */
int fz_redis_decode_job(at_job **out, const uint8_t bid[16], const char *queue, const void *rec, size_t rec_len,
                        const void *cls, size_t cls_len, int64_t left);
/* A schedule record (ADR 0008): 0 or an error; on 0 the row points into rec. */
int fz_redis_decode_sched(at_sched_row *row, const char *name, const void *rec, size_t rec_len);

#endif
