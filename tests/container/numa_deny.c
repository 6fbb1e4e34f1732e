/* numa_deny.c: runs a program as a container's default seccomp profile would, with the NUMA
 * memory-policy system calls refused (EPERM), so numalloc can be tested the way it is used in
 * Docker and Kubernetes on any machine. A hand-written BPF filter, no libseccomp.
 *
 *   numa_deny [--deny CALL,CALL...] [--errno N] -- PROGRAM ARGS...
 *
 * By default all five calls are refused: mbind, set_mempolicy, get_mempolicy, move_pages and
 * migrate_pages (Docker without CAP_SYS_NICE). `--deny move_pages,migrate_pages` is Docker
 * with --cap-add SYS_NICE. Exit: the program's status, 125 when the filter cannot be set up,
 * 127 when the program cannot be run. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "numa_deny filters x86-64 system call numbers"
#endif

typedef struct call_s {
  const char *name;
  int nr;
} call_t;

static const call_t calls[] = {
    {"mbind", SYS_mbind},
    {"set_mempolicy", SYS_set_mempolicy},
    {"get_mempolicy", SYS_get_mempolicy},
    {"move_pages", SYS_move_pages},
    {"migrate_pages", SYS_migrate_pages},
};
enum { CALL_COUNT = sizeof calls / sizeof calls[0] };

static int usage(void) {
  fprintf(stderr, "usage: numa_deny [--deny CALL,CALL...] [--errno N] -- PROGRAM ARGS...\n"
                  "  CALL: mbind set_mempolicy get_mempolicy move_pages migrate_pages (all by "
                  "default)\n");
  return 125;
}

/* Sets bit i of *mask for each name in the comma-separated list; false on an unknown name. */
static bool parse_calls(char *list, unsigned *mask) {
  *mask = 0;
  for (char *name = strtok(list, ","); name != NULL; name = strtok(NULL, ",")) {
    int found = -1;
    for (int i = 0; i < CALL_COUNT; i++)
      if (strcmp(name, calls[i].name) == 0) found = i;
    if (found < 0) {
      fprintf(stderr, "numa_deny: unknown system call '%s'\n", name);
      return false;
    }
    *mask |= 1u << found;
  }
  return *mask != 0;
}

/* The filter: a foreign architecture is killed (its numbers mean other calls), each refused
 * call returns -errno, everything else is allowed. x32 calls (bit 30 of the number) are
 * compared with that bit included, so they pass: nothing here uses that ABI. */
static int install(unsigned mask, int err) {
  struct sock_filter prog[4 + 2 * CALL_COUNT + 1];
  int n = 0;
  prog[n++] =
      (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  prog[n++] =
      (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  for (int i = 0; i < CALL_COUNT; i++) {
    if (!((mask >> i) & 1)) continue;
    prog[n++] =
        (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)calls[i].nr, 0, 1);
    prog[n++] = (struct sock_filter)BPF_STMT(
        BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA));
  }
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
}

int main(int argc, char **argv) {
  unsigned mask = (1u << CALL_COUNT) - 1;
  int err = EPERM, i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--deny") == 0 && i + 1 < argc) {
      if (!parse_calls(argv[++i], &mask)) return usage();
    } else if (strcmp(argv[i], "--errno") == 0 && i + 1 < argc) {
      char *end;
      long value = strtol(argv[++i], &end, 10);
      if (*end != '\0' || value <= 0 || value > 4095) return usage();
      err = (int)value;
    } else {
      return usage();
    }
  }
  if (i + 1 >= argc) return usage();
  if (install(mask, err) != 0) {
    fprintf(stderr, "numa_deny: cannot install the seccomp filter: %s\n", strerror(errno));
    return 125;
  }
  execvp(argv[i + 1], argv + i + 1);
  fprintf(stderr, "numa_deny: cannot run %s: %s\n", argv[i + 1], strerror(errno));
  return 127;
}
