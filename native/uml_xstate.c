/*
 * Preloaded into User-Mode Linux (linux.uml) by the kernel sandbox.
 *
 * UML 6.1 saves and restores its guest threads' FPU state with
 * ptrace(PTRACE_GETREGSET / PTRACE_SETREGSET, NT_X86_XSTATE) through a buffer of a fixed size
 * (the legacy area, the header and AVX). The host kernel accepts a short buffer for GETREGSET
 * (it copies less), but refuses SETREGSET with EFAULT unless the buffer is the host's whole
 * XSAVE size (arch/x86/kernel/fpu/regset.c: "A whole standard-format XSAVE buffer is
 * needed"), which is larger on hosts with AVX-512 or AMX. UML then panics at its first switch
 * to a guest process ("userspace - ptrace set fp regs failed, errno = 14").
 *
 * This wrapper keeps the whole state: for each of UML's buffers (one per guest thread) it
 * keeps a full-size copy, filled by GETREGSET; SETREGSET writes UML's bytes over that copy and
 * hands the kernel the whole of it. So a thread gets back exactly the state it had, the parts
 * UML does not know of included. A buffer with no copy yet (a new thread) takes those parts
 * from the traced process's current state. Every other request goes to the kernel as glibc's
 * ptrace sends it (the system call itself: dlsym would need glibc 2.34's libc).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Direct-mapped by buffer address; a slot taken by another buffer is reused (that buffer then
 * falls back to the traced process's current state for the parts UML does not keep). */
#define SLOTS 2048
#define PROBE_SIZE 65536

struct slot {
  const void *owner;
  unsigned char *full;
};

static struct slot slots[SLOTS];
static size_t full_size; /* the host's whole XSAVE size, learnt at the first GETREGSET */

/* glibc's ptrace(): PEEKTEXT, PEEKDATA and PEEKUSER return the word read (errno 0). */
static long sys_ptrace(long request, pid_t pid, void *addr, void *data) {
  long word;
  int peek = request == PTRACE_PEEKTEXT || request == PTRACE_PEEKDATA || request == PTRACE_PEEKUSER;
  long r = syscall(SYS_ptrace, request, (long)pid, addr, peek ? (void *)&word : data);
  if (r >= 0 && peek) {
    errno = 0;
    return word;
  }
  return r;
}

static struct slot *slot_of(const void *buf) {
  uintptr_t p = (uintptr_t)buf;
  return &slots[(p >> 4) % SLOTS];
}

/* The traced thread's whole state into out (full_size bytes, learnt on the first call). */
static long get_full(pid_t pid, unsigned char *out, size_t cap) {
  struct iovec iov = {out, cap};
  long r = sys_ptrace(PTRACE_GETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, &iov);
  if (r == 0 && full_size == 0) full_size = iov.iov_len;
  return r;
}

static long xstate_get(pid_t pid, struct iovec *user) {
  static unsigned char probe[PROBE_SIZE];
  if (full_size == 0) {
    long r = get_full(pid, probe, sizeof probe);
    if (r != 0) return r;
  }
  if (user->iov_len >= full_size) return sys_ptrace(PTRACE_GETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, user);
  struct slot *s = slot_of(user->iov_base);
  if (s->full == NULL) s->full = malloc(full_size);
  if (s->full == NULL) return sys_ptrace(PTRACE_GETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, user);
  long r = get_full(pid, s->full, full_size);
  if (r != 0) {
    s->owner = NULL;
    return r;
  }
  s->owner = user->iov_base;
  memcpy(user->iov_base, s->full, user->iov_len);
  return 0;
}

static long xstate_set(pid_t pid, struct iovec *user) {
  if (full_size == 0 || user->iov_len >= full_size) {
    return sys_ptrace(PTRACE_SETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, user);
  }
  struct slot *s = slot_of(user->iov_base);
  if (s->full == NULL) s->full = malloc(full_size);
  if (s->full == NULL) {
    errno = ENOMEM;
    return -1;
  }
  if (s->owner != user->iov_base) {
    long r = get_full(pid, s->full, full_size);
    if (r != 0) return r;
    s->owner = user->iov_base;
  }
  memcpy(s->full, user->iov_base, user->iov_len);
  struct iovec whole = {s->full, full_size};
  return sys_ptrace(PTRACE_SETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, &whole);
}

long ptrace(enum __ptrace_request request, ...) {
  va_list ap;
  va_start(ap, request);
  pid_t pid = va_arg(ap, pid_t);
  void *addr = va_arg(ap, void *);
  void *data = va_arg(ap, void *);
  va_end(ap);
  if ((uintptr_t)addr == NT_X86_XSTATE && data != NULL) {
    if (request == PTRACE_GETREGSET) return xstate_get(pid, (struct iovec *)data);
    if (request == PTRACE_SETREGSET) return xstate_set(pid, (struct iovec *)data);
  }
  return sys_ptrace((long)request, pid, addr, data);
}
