/* profile_stream.c: a known memory access stream for the profiler's tests. Maps MiB of memory
 * (placed by whatever policy the process runs under, e.g. numactl --membind), writes every
 * line of it, then reads every line PASSES times, and prints how many accesses that made
 * ((1 + PASSES) x MiB x 2^20 / 64). With --markers only that work lies between
 * NUMALLOC_PROFILE_START and STOP; without, the profiler counts the whole command.
 * Usage: profile_stream [--markers] MIB PASSES */
#include "numalloc_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LINE 64

int main(int argc, char **argv) {
  int markers = argc > 1 && strcmp(argv[1], "--markers") == 0;
  if (argc != 3 + markers) {
    fprintf(stderr, "usage: profile_stream [--markers] MIB PASSES\n");
    return 2;
  }
  size_t bytes = strtoul(argv[1 + markers], NULL, 10) << 20;
  long passes = strtol(argv[2 + markers], NULL, 10);
  volatile char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (bytes == 0 || passes < 0 || p == MAP_FAILED) {
    fprintf(stderr, "profile_stream: bad size or no memory\n");
    return 1;
  }
  if (markers) NUMALLOC_PROFILE_START();
  for (size_t i = 0; i < bytes; i += LINE) p[i] = (char)i;
  unsigned long sum = 0;
  for (long pass = 0; pass < passes; pass++)
    for (size_t i = 0; i < bytes; i += LINE) sum += (unsigned char)p[i];
  if (markers) NUMALLOC_PROFILE_STOP();
  printf("profile_stream: %zu accesses (checksum %lu)\n", (size_t)(1 + passes) * (bytes / LINE),
         sum);
  return 0;
}
