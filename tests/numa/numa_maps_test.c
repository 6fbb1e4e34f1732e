/* numa_maps_test.c: the numa_maps parser on sample lines of every shape the kernel prints, and
 * once on this process's own memory. Runs on the host: it needs no second node. */
#define _GNU_SOURCE
#include "numa_maps.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static int failures, checks;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    checks++;                                                                                      \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

static void test_anonymous_bound(void) {
  numa_maps_vma_t v;
  CHECK(numa_maps_parse_line(
            "7f2b1c000000 bind:1 anon=256 dirty=256 active=0 N1=256 kernelpagesize_kB=4\n", &v) ==
        0);
  CHECK(v.start == 0x7f2b1c000000UL);
  CHECK(strcmp(v.policy, "bind:1") == 0);
  CHECK(v.pages[1] == 256 && v.pages[0] == 0);
  CHECK(v.anon == 256 && v.page_kib == 4 && !v.has_file && v.end == 0);
}

static void test_file_and_stack(void) {
  numa_maps_vma_t v;
  CHECK(numa_maps_parse_line("55d0c0a3b000 default file=/usr/bin/cat mapped=2 N0=2 "
                             "kernelpagesize_kB=4",
                             &v) == 0);
  CHECK(strcmp(v.policy, "default") == 0 && v.has_file && v.pages[0] == 2 && v.anon == 0);
  CHECK(numa_maps_parse_line("7ffd5a9e2000 default stack anon=3 dirty=3 N0=3 kernelpagesize_kB=4",
                             &v) == 0);
  CHECK(v.pages[0] == 3 && v.anon == 3 && !v.has_file);
}

static void test_policies(void) {
  numa_maps_vma_t v;
  CHECK(numa_maps_parse_line("7f00 prefer (many):0-1 anon=4 N0=1 N1=3 kernelpagesize_kB=4", &v) ==
        0);
  CHECK(strcmp(v.policy, "prefer (many):0-1") == 0 && v.pages[0] == 1 && v.pages[1] == 3);
  CHECK(numa_maps_parse_line("7f0000000000 interleave:0-3 anon=8 N0=2 N1=2 N2=2 N3=2 "
                             "kernelpagesize_kB=4",
                             &v) == 0);
  CHECK(strcmp(v.policy, "interleave:0-3") == 0 && v.pages[3] == 2);
  CHECK(numa_maps_parse_line("7f0000400000 prefer=static:1 anon=1 N1=1 kernelpagesize_kB=4", &v) ==
        0);
  CHECK(strcmp(v.policy, "prefer=static:1") == 0 && v.pages[1] == 1);
}

static void test_huge_and_empty(void) {
  numa_maps_vma_t v;
  CHECK(numa_maps_parse_line("7f0000200000 default file=/dev/hugepages/x huge dirty=1 N0=1 "
                             "kernelpagesize_kB=2048",
                             &v) == 0);
  CHECK(v.page_kib == 2048 && v.pages[0] == 1 && v.has_file);
  CHECK(numa_maps_parse_line("7f0000600000 default", &v) == 0);
  CHECK(strcmp(v.policy, "default") == 0 && v.pages[0] == 0 && v.page_kib == 4);
  CHECK(numa_maps_parse_line("7f0000600000 default N64=3 N9999999999999999999999=1 Nx=2", &v) == 0);
  for (int node = 0; node < NUMA_MAPS_MAX_NODES; node++) CHECK(v.pages[node] == 0);
}

static void test_malformed(void) {
  numa_maps_vma_t v;
  CHECK(numa_maps_parse_line("", &v) == -1);
  CHECK(numa_maps_parse_line("garbage", &v) == -1);
  CHECK(numa_maps_parse_line("7f00", &v) == -1);
  CHECK(numa_maps_parse_line("7f00 ", &v) == -1);
}

/* A fresh mapping with a guard page on each side, so it is a VMA of its own. */
static void test_live_range(void) {
  const size_t page = 4096, pages = 16;
  char *base = mmap(NULL, (pages + 2) * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(base != MAP_FAILED);
  if (base == MAP_FAILED) return;
  char *p = base + page;
  CHECK(mprotect(p, pages * page, PROT_READ | PROT_WRITE) == 0);
  for (size_t i = 0; i < pages; i++) p[i * page] = 1;
  numa_maps_sum_t sum;
  CHECK(numa_maps_range((uintptr_t)p, (uintptr_t)(p + pages * page), &sum) == 0);
  CHECK(sum.vmas == 1 && sum.exact);
  CHECK(sum.total_kib == pages * page / 1024);
  CHECK(numa_maps_range((uintptr_t)p + page, (uintptr_t)p + 2 * page, &sum) == 0);
  CHECK(sum.vmas == 1 && !sum.exact);
  munmap(base, (pages + 2) * page);
}

int main(void) {
  test_anonymous_bound();
  test_file_and_stack();
  test_policies();
  test_huge_and_empty();
  test_malformed();
  test_live_range();
  printf("numa_maps_test: %d passed, %d failed\n", checks - failures, failures);
  return failures != 0;
}
