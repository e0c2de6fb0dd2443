/*
 * The same operations through libdevmapper's dm_task_* API, as dmsetup and lvm do them.
 *   libdm OP NAME COUNT     OP: info | status | table | message | list
 *   libdm serve IN OUT      the same for each line "OP NAME COUNT" read from the FIFO IN,
 *                           answered on the FIFO OUT (see raw_ioctl.c)
 * Prints the mean microseconds per operation.
 */
#include <libdevmapper.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

static int once(const char *op, const char *name) {
  int type = strcmp(op, "info") == 0     ? DM_DEVICE_INFO
             : strcmp(op, "status") == 0 ? DM_DEVICE_STATUS
             : strcmp(op, "table") == 0  ? DM_DEVICE_TABLE
             : strcmp(op, "list") == 0   ? DM_DEVICE_LIST
                                         : DM_DEVICE_TARGET_MSG;
  struct dm_task *t = dm_task_create(type);
  if (!t) return 0;
  int ok = 1;
  if (type != DM_DEVICE_LIST) ok = dm_task_set_name(t, name);
  if (ok && type == DM_DEVICE_TARGET_MSG) ok = dm_task_set_sector(t, 0) && dm_task_set_message(t, "@stats_list");
  if (ok) ok = dm_task_run(t);
  if (ok && type == DM_DEVICE_INFO) {
    struct dm_info info;
    ok = dm_task_get_info(t, &info);
  } else if (ok && (type == DM_DEVICE_STATUS || type == DM_DEVICE_TABLE)) {
    void *next = NULL;
    uint64_t start, length;
    char *target, *params;
    do {
      next = dm_get_next_target(t, next, &start, &length, &target, &params);
    } while (next);
  } else if (ok && type == DM_DEVICE_LIST) {
    ok = dm_task_get_names(t) != NULL;
  } else if (ok) {
    (void)dm_task_get_message_response(t);
  }
  dm_task_destroy(t);
  return ok;
}

/* Mean µs of `count` operations, after one untimed (it opens the control node, learns the
 * version); negative on failure. */
static double run(const char *op, const char *name, long count) {
  if (!once(op, name)) return -1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < count; i++) {
    if (!once(op, name)) return -1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return elapsed_us(&t0, &t1, count);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: libdm info|status|table|message|list NAME COUNT | libdm serve IN OUT\n");
    return 2;
  }
  if (strcmp(argv[1], "serve") == 0) return serve(argv[2], argv[3], run);
  double us = run(argv[1], argv[2], atol(argv[3]));
  if (us < 0) return 1;
  printf("%.2f\n", us);
  return 0;
}
