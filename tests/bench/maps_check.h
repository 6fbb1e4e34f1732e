/* maps_check.h: whether a mapped object's path contains a string, for the workloads (bench.c)
 * and the probe preloaded into real programs (realprobe.c). Reads all of /proc/self/maps with
 * plain read(2), so the check does not depend on stdio or on the allocator under test. */
#ifndef BENCH_MAPS_CHECK_H
#define BENCH_MAPS_CHECK_H

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static inline int bench_maps_contain(const char *needle) {
  static char buf[1 << 20];
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t len = 0;
  ssize_t n;
  while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)n;
  close(fd);
  buf[len] = '\0';
  return strstr(buf, needle) != NULL;
}

#endif /* BENCH_MAPS_CHECK_H */
