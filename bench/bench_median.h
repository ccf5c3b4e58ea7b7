/*
 * bench_median.h - the median the benchmark programs report: every
 * throughput figure of bench/run is the median of --repeat runs, so one
 * noisy run on a shared machine does not decide a figure.
 */
#ifndef AT_BENCH_MEDIAN_H
#define AT_BENCH_MEDIAN_H

#include <stdlib.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place; the mean of the two middle values for an even n. */
static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* AT_BENCH_MEDIAN_H */
