/* numa_filter.h: a seccomp filter that refuses chosen NUMA system calls with an errno, as a
 * container's profile does (Docker's default refuses mbind, set_mempolicy and get_mempolicy
 * without CAP_SYS_NICE, move_pages and migrate_pages always). A hand-written BPF program: no
 * libseccomp. Used by numa_deny (a command wrapper) and by unit tests in a forked child. */
#ifndef NUMA_FILTER_H
#define NUMA_FILTER_H

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "numa_filter.h filters x86-64 system call numbers"
#endif

/* Bit i of a mask selects numa_filter_calls[i]; the order is platform.h's na_numa_call_t. */
static const struct numa_filter_call {
  const char *name;
  unsigned nr;
} numa_filter_calls[] = {
    {"mbind", SYS_mbind},
    {"set_mempolicy", SYS_set_mempolicy},
    {"get_mempolicy", SYS_get_mempolicy},
    {"move_pages", SYS_move_pages},
    {"migrate_pages", SYS_migrate_pages},
};
#define NUMA_FILTER_COUNT ((int)(sizeof numa_filter_calls / sizeof numa_filter_calls[0]))
#define NUMA_FILTER_ALL   ((1u << NUMA_FILTER_COUNT) - 1)

/* The bit of a call by name, 0 for an unknown name. */
static inline unsigned numa_filter_bit(const char *name) {
  for (int i = 0; i < NUMA_FILTER_COUNT; i++)
    if (strcmp(name, numa_filter_calls[i].name) == 0) return 1u << i;
  return 0;
}

/* Installs the filter for this thread and the processes it starts: the calls in `mask` return
 * -error, everything else is allowed, and a call of another architecture kills the process
 * (its numbers mean other calls). 0, or -1 with errno. */
static inline int numa_filter_install(unsigned mask, int error) {
  struct sock_filter prog[4 + 2 * NUMA_FILTER_COUNT + 1];
  int n = 0;
  prog[n++] =
      (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  prog[n++] =
      (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  for (int i = 0; i < NUMA_FILTER_COUNT; i++) {
    if (!((mask >> i) & 1)) continue;
    prog[n++] =
        (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, numa_filter_calls[i].nr, 0, 1);
    prog[n++] = (struct sock_filter)BPF_STMT(
        BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)error & SECCOMP_RET_DATA));
  }
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
}

#endif /* NUMA_FILTER_H */
