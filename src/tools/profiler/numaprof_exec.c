/* numaprof_exec.c: runs the command being profiled inside the VM. First it shows the profiler
 * where each node's memory is (pages bound to every node, written at that node's calibration
 * address between two markers); then it marks where the command starts (the counters restart:
 * the guest's boot and the harness's shell do not count) and where it has ended (nothing after
 * counts), and exits with the command's status (128 + N when signal N ended it, 127 when it
 * could not be started).
 * Usage: numaprof-exec COMMAND [ARG...] */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model.h"

/* The profiler's private markers, beside START ('1') and STOP ('0') of numalloc_profile.h. */
#define MARK(kind)                                                                                 \
  __asm__ __volatile__(".byte 0x0f, 0x1f, 0x80, 0x4e, 0x50, 0x46, " #kind ::: "memory")
#define MARK_RESET()      MARK(0x52)
#define MARK_END()        MARK(0x45)
#define MARK_CALIBRATE()  MARK(0x43)
#define MARK_CALIBRATED() MARK(0x56)

/* Writes NP_CAL_PAGES pages bound to `node` at its calibration address. */
static void touch_node(int node) {
  long page = sysconf(_SC_PAGESIZE);
  size_t len = (size_t)page * NP_CAL_PAGES;
  void *want = (void *)(uintptr_t)(NP_CAL_BASE + (uint64_t)node * NP_CAL_STRIDE);
  char *p = mmap(want, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "numaprof-exec: cannot map node %d's calibration pages: %s\n", node,
            strerror(errno));
    return;
  }
  unsigned long mask[NP_MAX_NODES / (8 * sizeof(unsigned long)) + 1] = {0};
  mask[node / (8 * sizeof mask[0])] = 1UL << (node % (8 * sizeof mask[0]));
  if (mbind(p, len, MPOL_BIND, mask, NP_MAX_NODES + 1, 0) != 0)
    fprintf(stderr, "numaprof-exec: cannot bind pages to node %d: %s\n", node, strerror(errno));
  else
    for (size_t i = 0; i < NP_CAL_PAGES; i++) ((volatile char *)p)[i * (size_t)page] = 1;
  munmap(p, len);
}

static void calibrate(void) {
  if (numa_available() < 0) {
    fprintf(stderr, "numaprof-exec: no NUMA support in the guest: cannot calibrate\n");
    return;
  }
  MARK_CALIBRATE();
  for (int node = 0; node <= numa_max_node() && node < NP_MAX_NODES; node++)
    if (numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node)) touch_node(node);
  MARK_CALIBRATED();
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: numaprof-exec COMMAND [ARG...]\n");
    return 2;
  }
  calibrate();
  MARK_RESET();
  pid_t pid = fork();
  if (pid < 0) {
    perror("numaprof-exec: fork");
    return 127;
  }
  if (pid == 0) {
    execvp(argv[1], argv + 1);
    fprintf(stderr, "numaprof-exec: cannot run %s: %s\n", argv[1], strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      perror("numaprof-exec: waitpid");
      return 127;
    }
  MARK_END();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
