/*
 * fuzz_cron.c - libFuzzer target for the cron parser and the next-fire-time
 * search.  The input is one expression (a NUL-terminated copy is made: the
 * API takes C strings); it is checked, and when valid its next few fire
 * times are computed in a zone with half-hour DST, in a year inside the
 * zone file's table and in one beyond it (the POSIX footer rule).  The
 * target asserts the API's promises: a failed check reports a position
 * inside the expression, check and next agree on validity, and successive
 * fire times strictly increase.
 *
 * Build and run (seed corpus in tests/fuzz/cron/):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ilib -D_GNU_SOURCE \
 *       -DAT_BUILDING_LIBRARY tests/fuzz_cron.c lib/cron.c lib/tzfile.c lib/alloc.c \
 *       lib/errors.c -o fuzz_cron
 *   ./fuzz_cron -max_total_time=60 -max_len=256 corpus/ tests/fuzz/cron/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "internal.h"

#define FUZZ_ZONE "Australia/Lord_Howe"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Next fire times of a few expressions in a fuzzed zone: never early,
 * strictly increasing, no crash, whatever the zone data. */
static void run_zone(const struct at__tz *z)
{
    static const char *const exprs[] = {"*/7 * * * *", "30 2 * * *", "0 0 1 * *"};
    for (size_t e = 0; e < sizeof exprs / sizeof exprs[0]; e++) {
        struct at__cron c;
        if (at__cron_parse_into(&c, exprs[e], NULL) != 0)
            abort();
        int64_t t = INT64_C(1775347200000), next;
        for (int i = 0; i < 4; i++) {
            int r = at__cron_next(&c, z, t, &next);
            if (r != 0)
                break;
            if (next <= t)
                abort();
            t = next;
        }
    }
    int64_t u;
    for (int64_t l = INT64_C(1775347200); l < INT64_C(1775347200) + 86400; l += 3607)
        at__tz_local_to_utc(z, l, &u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    if (size >= 4 && memcmp(data, "TZif", 4) == 0) {
        struct at__tz *z;
        if (at__tz_parse(&z, "fuzz", data, size) == 0) {
            run_zone(z);
            at__tz_free(z);
        }
        return 0;
    }
    char *expr = malloc(size + 1);
    if (!expr)
        return 0;
    memcpy(expr, data, size);
    expr[size] = '\0';

    if (size >= 3 && memcmp(expr, "TZ=", 3) == 0) {
        struct at__tz *z;
        if (at__tz_from_posix(&z, expr + 3) == 0) {
            run_zone(z);
            at__tz_free(z);
        }
        free(expr);
        return 0;
    }

    int32_t pos = -2;
    int rc = at_cron_check(&pos, expr);
    size_t len = strlen(expr);
    if (rc != 0 && (rc != AT_ERR_INVAL || pos < 0 || (size_t)pos > len))
        abort();
    if (rc == 0 && pos != -1)
        abort();

    static const int64_t starts[] = {
        INT64_C(1775347200000), /* 2026-04-05T00:00:00Z, around a fall-back */
        INT64_C(2864764800000), /* 2060-10-11T00:00:00Z, footer rule */
    };
    for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
        int64_t t = starts[s], next;
        for (int i = 0; i < 4; i++) {
            int r = at_cron_next(&next, expr, FUZZ_ZONE, t);
            if ((rc == 0) != (r == 0 || r == AT_ERR_RANGE))
                abort();
            if (r != 0)
                break;
            if (next <= t)
                abort();
            t = next;
        }
    }
    free(expr);
    return 0;
}
