/* numa_deny.c: runs a program as a container's default seccomp profile would, with the NUMA
 * memory-policy system calls refused, so numalloc can be tested the way it runs under Docker
 * and Kubernetes on any machine (the filter: numa_filter.h).
 *
 *   numa_deny [--deny CALL,CALL...] [--errno N] -- PROGRAM ARGS...
 *
 * By default all five calls are refused with EPERM: mbind, set_mempolicy, get_mempolicy,
 * move_pages and migrate_pages (Docker without CAP_SYS_NICE). `--deny move_pages,migrate_pages`
 * is Docker with --cap-add SYS_NICE. Exit: the program's status, 125 when the filter cannot
 * be set up, 127 when the program cannot be run. */
#define _GNU_SOURCE
#include "numa_filter.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int usage(void) {
  fprintf(stderr, "usage: numa_deny [--deny CALL,CALL...] [--errno N] -- PROGRAM ARGS...\n"
                  "  CALL: mbind set_mempolicy get_mempolicy move_pages migrate_pages (all by "
                  "default)\n");
  return 125;
}

/* The mask of a comma-separated list of call names; false on an unknown name. */
static bool parse_calls(char *list, unsigned *mask) {
  *mask = 0;
  for (char *name = strtok(list, ","); name != NULL; name = strtok(NULL, ",")) {
    unsigned bit = numa_filter_bit(name);
    if (bit == 0) {
      fprintf(stderr, "numa_deny: unknown system call '%s'\n", name);
      return false;
    }
    *mask |= bit;
  }
  return *mask != 0;
}

int main(int argc, char **argv) {
  unsigned mask = NUMA_FILTER_ALL;
  int error = EPERM, i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--deny") == 0 && i + 1 < argc) {
      if (!parse_calls(argv[++i], &mask)) return usage();
    } else if (strcmp(argv[i], "--errno") == 0 && i + 1 < argc) {
      char *end;
      long value = strtol(argv[++i], &end, 10);
      if (*end != '\0' || value <= 0 || value > 4095) return usage();
      error = (int)value;
    } else {
      return usage();
    }
  }
  if (i + 1 >= argc) return usage();
  if (numa_filter_install(mask, error) != 0) {
    fprintf(stderr, "numa_deny: cannot install the seccomp filter: %s\n", strerror(errno));
    return 125;
  }
  execvp(argv[i + 1], argv + i + 1);
  fprintf(stderr, "numa_deny: cannot run %s: %s\n", argv[i + 1], strerror(errno));
  return 127;
}
