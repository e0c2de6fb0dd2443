/*
 * The limit: one DM ioctl with a buffer prepared once, as a C program would issue it.
 *   raw_ioctl OP NAME COUNT     OP: info | status | table | message | list | fstat
 *   raw_ioctl serve IN OUT      the same, for each line "OP NAME COUNT" read from the FIFO IN,
 *                               answered on the FIFO OUT (a peer kept running, so that a
 *                               benchmark can interleave short rounds of its own calls with
 *                               this program's without paying an exec for each)
 * Prints the mean microseconds per operation. A first call finds the buffer size the answer
 * needs (doubling it on DM_BUFFER_FULL, then cutting a grown buffer to the answer and a few
 * bytes: the kernel copies in the whole buffer); the timed calls use that size, with the
 * header copied in anew before each (the kernel writes its answer over it), as any client
 * must. `fstat` is fstat(2) of the control node: the cheapest system call on the same file,
 * the floor under a system call from C in this boot.
 */
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

static int control = -1;

/* The first `used` bytes of the prepared request copied into `buffer` (the kernel wrote its
   last answer over them) and issued; 0, or -1 with the error reported on stderr. */
static int issue(unsigned long request, char *buffer, const char *prepared, size_t used,
                 const char *op) {
  memcpy(buffer, prepared, used);
  if (ioctl(control, request, buffer) == 0) return 0;
  perror(op);
  return -1;
}

/* Mean µs of `count` operations `op` on `name`; negative on failure (reported on stderr). */
static double run(const char *op, const char *name, long count) {
  unsigned long request;
  size_t size = 16384;
  static char prepared[16384] __attribute__((aligned(8)));
  memset(prepared, 0, sizeof(struct dm_ioctl) + sizeof(struct dm_target_msg) + 64);
  struct dm_ioctl *h = (struct dm_ioctl *)prepared;
  h->version[0] = 4;
  h->data_start = sizeof(struct dm_ioctl);
  snprintf(h->name, sizeof h->name, "%s", name);
  size_t used = sizeof(struct dm_ioctl);
  struct timespec t0, t1;
  if (strcmp(op, "fstat") == 0) {
    struct stat st;
    if (fstat(control, &st) != 0) return -1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < count; i++) {
      if (fstat(control, &st) != 0) {
        perror("fstat");
        return -1;
      }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return elapsed_us(&t0, &t1, count);
  } else if (strcmp(op, "info") == 0) {
    request = DM_DEV_STATUS;
  } else if (strcmp(op, "status") == 0) {
    request = DM_TABLE_STATUS;
  } else if (strcmp(op, "table") == 0) {
    request = DM_TABLE_STATUS;
    h->flags = DM_STATUS_TABLE_FLAG;
  } else if (strcmp(op, "list") == 0) {
    request = DM_LIST_DEVICES;
    h->name[0] = 0;
  } else if (strcmp(op, "message") == 0) {
    request = DM_TARGET_MSG;
    h->version[1] = 2;
    struct dm_target_msg *m = (struct dm_target_msg *)(prepared + sizeof(struct dm_ioctl));
    m->sector = 0;
    strcpy(m->message, "@stats_list");
    used += sizeof(struct dm_target_msg) + strlen("@stats_list") + 1;
  } else {
    fprintf(stderr, "unknown op %s\n", op);
    return -1;
  }
  char *buffer = aligned_alloc(8, size);
  for (;;) {
    h->data_size = (uint32_t)size;
    if (issue(request, buffer, prepared, used, op) != 0) {
      free(buffer);
      return -1;
    }
    if (!(((struct dm_ioctl *)buffer)->flags & DM_BUFFER_FULL_FLAG)) break;
    size *= 2;
    free(buffer);
    buffer = aligned_alloc(8, size);
  }
  /* A buffer that grew is cut to the answer (the kernel allocates and copies in the whole
     buffer: the limit is a buffer just large enough). */
  uint32_t answered = ((struct dm_ioctl *)buffer)->data_size;
  if (size > 16384 && (size_t)answered + 64 < size) {
    size_t tight = ((size_t)answered + 64 + 7) & ~(size_t)7;
    h->data_size = (uint32_t)tight;
    if (issue(request, buffer, prepared, used, op) != 0) {
      free(buffer);
      return -1;
    }
    if (((struct dm_ioctl *)buffer)->flags & DM_BUFFER_FULL_FLAG) h->data_size = (uint32_t)size;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < count; i++) {
    if (issue(request, buffer, prepared, used, op) != 0) {
      free(buffer);
      return -1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  free(buffer);
  return elapsed_us(&t0, &t1, count);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: raw_ioctl info|status|table|message|list|fstat NAME COUNT | raw_ioctl serve IN OUT\n");
    return 2;
  }
  control = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (control < 0) {
    perror("open /dev/mapper/control");
    return 1;
  }
  if (strcmp(argv[1], "serve") == 0) return serve(argv[2], argv[3], run);
  double us = run(argv[1], argv[2], atol(argv[3]));
  if (us < 0) return 1;
  printf("%.2f\n", us);
  close(control);
  return 0;
}
