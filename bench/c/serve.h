/*
 * What the two C peers of the benchmark share: the serve loop (each line "OP NAME COUNT" read
 * from the FIFO IN, the mean microseconds of that round written to the FIFO OUT, so that the
 * benchmark interleaves its rounds with theirs without an exec each) and the clock arithmetic.
 */
#ifndef DEVMAPPER_BENCH_SERVE_H
#define DEVMAPPER_BENCH_SERVE_H

#include <stdio.h>
#include <time.h>

/* Mean µs per operation of `count` operations timed from t0 to t1. */
static double elapsed_us(const struct timespec *t0, const struct timespec *t1, long count) {
  return ((double)(t1->tv_sec - t0->tv_sec) * 1e9 + (double)(t1->tv_nsec - t0->tv_nsec)) / 1e3 / (double)count;
}

/* Answers each round read from in_path with `run`'s mean µs (negative on failure) on out_path. */
static int serve(const char *in_path, const char *out_path, double (*run)(const char *op, const char *name, long count)) {
  FILE *in = fopen(in_path, "r");
  if (!in) {
    perror(in_path);
    return 1;
  }
  FILE *out = fopen(out_path, "w");
  if (!out) {
    perror(out_path);
    fclose(in);
    return 1;
  }
  char op[32], name[128];
  long count;
  while (fscanf(in, "%31s %127s %ld", op, name, &count) == 3) {
    fprintf(out, "%.3f\n", run(op, name, count));
    fflush(out);
  }
  fclose(out);
  fclose(in);
  return 0;
}

#endif
