/*
 * The limit: one DM ioctl with a buffer prepared once, as a C program would issue it.
 *   raw_ioctl OP NAME COUNT     OP: info | status | table | message | list
 * Prints the mean microseconds per operation. A first call finds the buffer size the answer
 * needs (doubling it on DM_BUFFER_FULL); the timed calls use that size, with the header copied
 * in anew before each (the kernel writes its answer over it), as any client must.
 */
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>


int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: raw_ioctl info|status|table|message|list NAME COUNT\n");
    return 2;
  }
  const char *op = argv[1];
  long count = atol(argv[3]);
  unsigned long request;
  size_t size = 16384;
  static char prepared[16384] __attribute__((aligned(8)));
  char *buffer = aligned_alloc(8, size);
  struct dm_ioctl *h = (struct dm_ioctl *)prepared;
  h->version[0] = 4;
  h->data_start = sizeof(struct dm_ioctl);
  snprintf(h->name, sizeof h->name, "%s", argv[2]);
  size_t used = sizeof(struct dm_ioctl);
  if (strcmp(op, "info") == 0) {
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
    return 2;
  }
  int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    perror("open /dev/mapper/control");
    return 1;
  }
  for (;;) {
    h->data_size = (uint32_t)size;
    memcpy(buffer, prepared, used);
    if (ioctl(fd, request, buffer) != 0) {
      perror(op);
      return 1;
    }
    if (!(((struct dm_ioctl *)buffer)->flags & DM_BUFFER_FULL_FLAG)) break;
    size *= 2;
    free(buffer);
    buffer = aligned_alloc(8, size);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < count; i++) {
    memcpy(buffer, prepared, used);
    if (ioctl(fd, request, buffer) != 0) {
      perror(op);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / (double)count;
  printf("%.2f\n", us);
  free(buffer);
  close(fd);
  return 0;
}
