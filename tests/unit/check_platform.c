/* check_platform.c: the kernel interface (platform_linux.c) and its fault injection. Aligned
 * mappings (reserved only, or charged as a huge block's), purge, populate, remap in place and
 * to a new address, reserve, bind, page node queries, CPU, clock, randomness, file reads and
 * stderr writes, each leaving errno alone; whether huge pages can be had (the THP mode, and a
 * process that turned them off), and whether the host takes free memory back (a balloon device's
 * free page reporting); and na_os_inject_map_failures, which makes allocations fail with NULL and
 * ENOMEM for exactly the given number of mappings, after which they succeed again. */
#include "unit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(aligned_mappings) {
  const size_t aligns[] = {NA_PAGE_SIZE, NA_SLICE_SIZE, 2 * NA_MiB, NA_SEGMENT_SIZE, 64 * NA_MiB};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    size_t size = 3 * NA_MiB + NA_PAGE_SIZE;
    char *p = na_os_map_aligned(size, aligns[i]);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % aligns[i], 0);
    p[0] = 1;
    p[size - 1] = 2;
    ck_assert_int_eq(unit_resident_pages(p, size), 2);
    na_os_unmap(p, size);
    ck_assert(!unit_is_mapped(p, NA_PAGE_SIZE));
  }
  errno = EDOM;
  ck_assert_ptr_null(na_os_map_aligned(SIZE_MAX - NA_PAGE_SIZE, NA_SEGMENT_SIZE));
  ck_assert_ptr_null(na_os_map_aligned((size_t)1 << 62, NA_SEGMENT_SIZE));
  ck_assert_int_eq(errno, EDOM);
}
END_TEST

/* A huge block's mapping is charged as the C library's are: under the kernel's default
 * overcommit heuristic (mode 0) and strict accounting (2) one bigger than memory and swap
 * together is refused, where under the heuristic the same size reserved only (MAP_NORESERVE,
 * as segments are) is granted; mode 1 grants it either way. A size that fits maps charged. */
START_TEST(a_charged_mapping_beyond_memory_is_refused) {
  char mode[16] = "";
  ck_assert_int_gt(na_os_read_file("/proc/sys/vm/overcommit_memory", mode, sizeof mode), 0);
  struct sysinfo si;
  ck_assert_int_eq(sysinfo(&si), 0);
  size_t beyond = 2 * (size_t)(si.totalram + si.totalswap) * si.mem_unit;
  beyond = (beyond + NA_SEGMENT_SIZE - 1) & ~(NA_SEGMENT_SIZE - 1);
  errno = EDOM;
  char *charged = na_os_map_aligned_charged(beyond, NA_SEGMENT_SIZE);
  ck_assert_int_eq(errno, EDOM);
  if (mode[0] == '1') {
    ck_assert_ptr_nonnull(charged);
    na_os_unmap(charged, beyond);
  } else {
    ck_assert_ptr_null(charged);
  }
  if (mode[0] == '0') {
    char *reserved = na_os_map_aligned(beyond, NA_SEGMENT_SIZE);
    ck_assert_ptr_nonnull(reserved);
    na_os_unmap(reserved, beyond);
  }
  char *fits = na_os_map_aligned_charged(64 * NA_MiB, NA_SEGMENT_SIZE);
  ck_assert_ptr_nonnull(fits);
  ck_assert_uint_eq((uintptr_t)fits % NA_SEGMENT_SIZE, 0);
  fits[0] = 1;
  fits[64 * NA_MiB - 1] = 2;
  na_os_unmap(fits, 64 * NA_MiB);
}
END_TEST

/* Refusing huge pages is asked of the kernel the first time whatever the THP mode (one call,
 * where reading the mode takes four), then only under "always", where it would give them
 * unasked (the mapping's flags then say nh); asking for them always reaches it (hg). */
/* Under a limit on address space (ulimit -v) with room for one segment but not for two, a
 * segment still maps, and again after it is unmapped: aligning may not take twice the room. */
START_TEST(aligned_mappings_fit_a_tight_address_space_limit) {
  char status[4096];
  ck_assert_int_gt(na_os_read_file("/proc/self/status", status, sizeof status), 0);
  const char *vm = strstr(status, "VmSize:");
  ck_assert_ptr_nonnull(vm);
  size_t used = (size_t)strtoull(vm + 7, NULL, 10) * 1024;
  struct rlimit limit = {.rlim_cur = used + NA_SEGMENT_SIZE + 8 * NA_MiB,
                         .rlim_max = used + NA_SEGMENT_SIZE + 8 * NA_MiB};
  ck_assert_int_eq(setrlimit(RLIMIT_AS, &limit), 0);
  for (int i = 0; i < 3; i++) {
    char *p = na_os_map_aligned(NA_SEGMENT_SIZE, NA_SEGMENT_SIZE);
    UNIT_REQUIRE(p != NULL, "mapping %d of one segment failed under a limit of %zu MiB", i,
                 (size_t)(limit.rlim_cur >> 20));
    ck_assert_uint_eq((uintptr_t)p % NA_SEGMENT_SIZE, 0);
    p[0] = 1;
    p[NA_SEGMENT_SIZE - 1] = 2;
    na_os_unmap(p, NA_SEGMENT_SIZE);
  }
}
END_TEST

START_TEST(huge_page_advice_follows_the_thp_mode) {
  char mode[128] = "";
  long n = na_os_read_file("/sys/kernel/mm/transparent_hugepage/enabled", mode, sizeof mode);
  bool always = n <= 0 || strstr(mode, "[always]") != NULL;
  size_t size = 4 * NA_MiB;
  char *first = na_os_map_aligned(size, 2 * NA_MiB);
  ck_assert_ptr_nonnull(first);
  ck_assert(na_os_advise_huge(first, size, false));
  ck_assert_msg(unit_vma_has_flag(first, "nh"), "the first refusal");
  na_os_unmap(first, size);
  ck_assert_int_eq(na_os_thp_always(), always);
  char *p = na_os_map_aligned(size, 2 * NA_MiB);
  ck_assert_ptr_nonnull(p);
  ck_assert(na_os_advise_huge(p, size, false));
  ck_assert_msg(unit_vma_has_flag(p, "nh") == always, "THP %s", mode);
  ck_assert(na_os_advise_huge(p, size, true));
  ck_assert(unit_vma_has_flag(p, "hg"));
  na_os_unmap(p, size);
}
END_TEST

/* Huge pages can be had under "always" and "madvise", not under "never" nor without THP in
 * the kernel, and never in a process that turned them off: the child asks first, the answer
 * being kept once read. */
START_TEST(huge_pages_usable_by_mode_and_process) {
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    if (prctl(PR_SET_THP_DISABLE, 1L, 0L, 0L, 0L) != 0) _exit(2);
    _exit(na_os_thp_usable() ? 1 : 0);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(child, &status, 0), child);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  char mode[128] = "";
  long n = na_os_read_file("/sys/kernel/mm/transparent_hugepage/enabled", mode, sizeof mode);
  bool usable = n > 0 && (strstr(mode, "[always]") != NULL || strstr(mode, "[madvise]") != NULL);
  ck_assert_msg(na_os_thp_usable() == usable, "THP mode %s", mode);
}
END_TEST

START_TEST(purge_gives_pages_back) {
  size_t size = NA_MiB;
  char *p = na_os_map_aligned(size, NA_PAGE_SIZE);
  memset(p, 0x77, size);
  ck_assert_int_eq(unit_resident_pages(p, size), (long)(size / NA_PAGE_SIZE));
  errno = EDOM;
  ck_assert(na_os_purge(p, size));
  ck_assert_int_eq(errno, EDOM);
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  ck_assert_uint_eq(tu_nonzero(p, size), SIZE_MAX);
  p[5] = 1; /* still mapped and writable */
  na_os_unmap(p, size);
  errno = EDOM;
  ck_assert(!na_os_purge((void *)1, NA_PAGE_SIZE)); /* not page aligned */
  ck_assert_int_eq(errno, EDOM);
}
END_TEST

/* Every other OS page of 2 MiB, more ranges than a batch holds, and two adjacent ones that
 * make one range: after the flush exactly those read as zero and are not resident, with
 * the kernel's vector and without it. */
static void purge_every_other_page(bool forbid_vector) {
  size_t size = 2 * NA_MiB, pages = size / NA_PAGE_SIZE;
  char *p = na_os_map_aligned(size, NA_PAGE_SIZE);
  memset(p, 0x5a, size);
  na_os_purge_vector_forbid(forbid_vector);
  na_os_purge_batch_t batch;
  na_os_purge_start(&batch);
  na_os_purge_add(&batch, p, NA_PAGE_SIZE);
  na_os_purge_add(&batch, p + NA_PAGE_SIZE, NA_PAGE_SIZE);
  ck_assert_uint_eq(batch.count, 1);
  ck_assert_uint_eq(batch.ranges[0].iov_len, 2 * NA_PAGE_SIZE);
  for (size_t i = 3; i < pages; i += 2) na_os_purge_add(&batch, p + i * NA_PAGE_SIZE, NA_PAGE_SIZE);
  ck_assert_uint_lt(batch.count, (pages - 3) / 2 + 1); /* a full batch went on the way */
  errno = EDOM;
  na_os_purge_flush(&batch);
  ck_assert_int_eq(errno, EDOM);
  ck_assert_uint_eq(batch.count, 0);
  na_os_purge_flush(&batch); /* an empty batch: nothing to do */
  na_os_purge_vector_forbid(false);
  ck_assert_int_eq(unit_resident_pages(p, 2 * NA_PAGE_SIZE), 0);
  ck_assert_int_eq(unit_resident_pages(p + 2 * NA_PAGE_SIZE, NA_PAGE_SIZE), 1);
  for (size_t i = 3; i < pages; i++) {
    bool purged = i % 2 == 1;
    ck_assert_int_eq(unit_resident_pages(p + i * NA_PAGE_SIZE, NA_PAGE_SIZE), purged ? 0 : 1);
    ck_assert_int_eq(p[i * NA_PAGE_SIZE + 9], purged ? 0 : 0x5a);
  }
  na_os_unmap(p, size);
}

START_TEST(purge_batch_gives_its_ranges_back_together) {
  purge_every_other_page(false);
  purge_every_other_page(true);
}
END_TEST

/* Locked pages cannot be given back: the purge says so, and they keep what they held; a
 * batch holding them says so too, with the kernel's vector and without it. */
START_TEST(purge_of_locked_pages_is_refused) {
  size_t size = 4 * NA_PAGE_SIZE;
  char *p = na_os_map_aligned(size, NA_PAGE_SIZE);
  memset(p, 0x5a, size);
  unit_lock_pages(p + NA_PAGE_SIZE, NA_PAGE_SIZE);
  errno = EDOM;
  ck_assert(!na_os_purge(p, size));
  ck_assert_int_eq(errno, EDOM);
  ck_assert_int_eq(p[NA_PAGE_SIZE + 9], 0x5a);
  for (int forbid = 0; forbid < 2; forbid++) {
    na_os_purge_vector_forbid(forbid);
    na_os_purge_batch_t batch;
    na_os_purge_start(&batch);
    na_os_purge_add(&batch, p, NA_PAGE_SIZE);
    na_os_purge_add(&batch, p + 3 * NA_PAGE_SIZE, NA_PAGE_SIZE);
    na_os_purge_flush(&batch);
    ck_assert(!batch.refused);
    na_os_purge_add(&batch, p + NA_PAGE_SIZE, NA_PAGE_SIZE);
    na_os_purge_add(&batch, p + 3 * NA_PAGE_SIZE, NA_PAGE_SIZE);
    na_os_purge_flush(&batch);
    ck_assert(batch.refused);
    ck_assert_int_eq(p[NA_PAGE_SIZE + 9], 0x5a);
    ck_assert_int_eq(unit_resident_pages(p + 3 * NA_PAGE_SIZE, NA_PAGE_SIZE), 0);
  }
  na_os_purge_vector_forbid(false);
  unit_unlock_pages(p + NA_PAGE_SIZE, NA_PAGE_SIZE);
  na_os_unmap(p, size);
}
END_TEST

/* The page map tells pages never touched (or given back) from pages written, read (the
 * kernel's zero page is mapped) or given back and written again. */
START_TEST(untouched_pages_from_the_page_map) {
  enum { PAGES = 8 };
  char *p = na_os_map_aligned(PAGES * NA_PAGE_SIZE, NA_PAGE_SIZE);
  p[1 * NA_PAGE_SIZE] = 1;
  p[5 * NA_PAGE_SIZE + 100] = 2;
  ck_assert_int_eq(*(volatile char *)(p + 6 * NA_PAGE_SIZE), 0);
  unsigned char untouched[PAGES];
  errno = EDOM;
  ck_assert(na_os_pages_untouched(p, PAGES, untouched));
  ck_assert_int_eq(errno, EDOM);
  const unsigned char want[PAGES] = {1, 0, 1, 1, 1, 0, 0, 1};
  for (int i = 0; i < PAGES; i++) UNIT_REQUIRE(untouched[i] == want[i], "page %d", i);
  ck_assert(na_os_purge(p + NA_PAGE_SIZE, NA_PAGE_SIZE));
  ck_assert(na_os_pages_untouched(p + NA_PAGE_SIZE, 1, untouched));
  ck_assert_int_eq(untouched[0], 1);
  na_os_unmap(p, PAGES * NA_PAGE_SIZE);
}
END_TEST

START_TEST(populate_faults_in) {
  size_t size = NA_MiB;
  char *p = na_os_map_aligned(size, NA_PAGE_SIZE);
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  errno = EDOM;
  bool ok = na_os_populate(p, size);
  ck_assert_int_eq(errno, EDOM);
  if (ok) ck_assert_int_eq(unit_resident_pages(p, size), (long)(size / NA_PAGE_SIZE));
  na_os_unmap(p, size);
}
END_TEST

START_TEST(remap_grows_in_place_or_moves) {
  size_t small = 2 * NA_MiB, big = 4 * NA_MiB;
  char *p = na_os_map_aligned(big, NA_PAGE_SIZE);
  na_os_unmap(p + small, big - small); /* room after it */
  tu_fill(p, small, 4);
  errno = EDOM;
  ck_assert_ptr_eq(na_os_remap(p, small, big, NULL), p);
  ck_assert_uint_eq(tu_mismatch(p, small, 4), SIZE_MAX);
  p[big - 1] = 1;
  char *target = na_os_map_aligned(2 * big, NA_SEGMENT_SIZE);
  char *q = na_os_remap(p, big, 2 * big, target);
  ck_assert_ptr_eq(q, target);
  ck_assert_uint_eq(tu_mismatch(q, small, 4), SIZE_MAX);
  ck_assert_int_eq(q[big - 1], 1);
  ck_assert(!unit_is_mapped(p, NA_PAGE_SIZE));
  q[2 * big - 1] = 1;
  ck_assert_int_eq(errno, EDOM);
  /* no room and no target: refused, the mapping unchanged */
  char *guard = mmap(q + 2 * big, NA_PAGE_SIZE, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (guard == q + 2 * big) {
    errno = EDOM;
    ck_assert_ptr_null(na_os_remap(q, 2 * big, 3 * big, NULL));
    ck_assert_int_eq(errno, EDOM);
    ck_assert_uint_eq(tu_mismatch(q, small, 4), SIZE_MAX);
    munmap(guard, NA_PAGE_SIZE);
  }
  na_os_unmap(q, 2 * big);
}
END_TEST

START_TEST(reserve_is_address_space_only) {
  char *p = na_os_reserve_aligned(NA_SEGMENT_SIZE, NA_SEGMENT_SIZE);
  ck_assert_ptr_nonnull(p);
  ck_assert(unit_is_mapped(p, NA_SEGMENT_SIZE));
  ck_assert_int_eq(unit_resident_pages(p, NA_SEGMENT_SIZE), 0);
  p[0] = 1; /* no access: SIGSEGV */
}
END_TEST

START_TEST(bind_to_this_machines_nodes) {
  int node = unit_home_node();
  size_t size = 2 * NA_MiB;
  char *p = na_os_map_aligned(size, NA_PAGE_SIZE);
  uint64_t mask[1] = {(uint64_t)1 << node};
  errno = EDOM;
  ck_assert(na_os_bind(p, size, NA_BIND_PREFERRED, mask, NA_MAX_NODES - 1));
  ck_assert(na_os_bind(p, size, NA_BIND_STRICT, mask, NA_MAX_NODES - 1));
  ck_assert(na_os_bind(p, size, NA_BIND_INTERLEAVE, na_topology.usable, NA_MAX_NODES - 1));
  if (na_topology.node_count <= 40) {
    uint64_t missing[1] = {(uint64_t)1 << 40};
    ck_assert(!na_os_bind(p, size, NA_BIND_STRICT, missing, NA_MAX_NODES - 1));
  }
  ck_assert_int_eq(errno, EDOM);
  memset(p, 1, size);
  void *pages[2] = {p, p + size - 1};
  int nodes[2] = {-100, -100};
  if (na_os_page_nodes(pages, nodes, 2)) { /* move_pages may be denied in a container */
    ck_assert_int_eq(nodes[0], node);
    ck_assert_int_eq(nodes[1], node);
  }
  na_os_unmap(p, size);
}
END_TEST

START_TEST(page_nodes_of_untouched_pages) {
  char *p = na_os_map_aligned(NA_PAGE_SIZE, NA_PAGE_SIZE);
  void *pages[1] = {p};
  int nodes[1] = {-100};
  errno = EDOM;
  if (na_os_page_nodes(pages, nodes, 1)) ck_assert_int_lt(nodes[0], 0); /* -ENOENT */
  ck_assert_int_eq(errno, EDOM);
  na_os_unmap(p, NA_PAGE_SIZE);
}
END_TEST

/* get_mempolicy, page by page, answers as move_pages does: the node of a touched page, -ENOENT
 * for one never touched (asking does not fault it in), -EFAULT where nothing is mapped. */
START_TEST(page_nodes_by_policy_agree_with_move_pages) {
  enum { PAGES = 16 };
  char *p = na_os_map_aligned((PAGES + 1) * NA_PAGE_SIZE, NA_PAGE_SIZE);
  na_os_unmap(p + PAGES * NA_PAGE_SIZE, NA_PAGE_SIZE); /* a hole after the range */
  void *pages[PAGES + 1];
  int by_policy[PAGES + 1], by_move[PAGES + 1];
  for (int i = 0; i <= PAGES; i++) {
    pages[i] = p + i * NA_PAGE_SIZE + (i % 3) * 100; /* any address within the page */
    if (i < PAGES && i % 3 != 1) p[i * NA_PAGE_SIZE] = 1;
  }
  errno = EDOM;
  if (!na_os_page_nodes_by_policy(pages, by_policy, PAGES + 1)) return; /* refused here */
  ck_assert_int_eq(errno, EDOM);
  for (int i = 0; i < PAGES; i++) {
    if (i % 3 != 1)
      ck_assert_msg(na_node_bit(na_topology.has_memory, by_policy[i]), "page %d: %d", i,
                    by_policy[i]);
    else
      ck_assert_int_eq(by_policy[i], -ENOENT);
  }
  ck_assert_int_eq(by_policy[PAGES], -EFAULT);
  ck_assert_int_eq(unit_resident_pages(p, PAGES * NA_PAGE_SIZE), PAGES - PAGES / 3);
  if (na_os_page_nodes(pages, by_move, PAGES + 1))
    for (int i = 0; i <= PAGES; i++) ck_assert_int_eq(by_policy[i], by_move[i]);
  na_os_unmap(p, PAGES * NA_PAGE_SIZE);
}
END_TEST

/* The cpuset's nodes from get_mempolicy are those /proc/self/status lists. */
START_TEST(mems_allowed_match_the_status_file) {
  uint64_t mask = 0, listed = 0;
  if (!na_os_mems_allowed(&mask)) return; /* refused here */
  char text[8192];
  ck_assert_int_gt(na_os_read_file("/proc/self/status", text, sizeof text), 0);
  char *line = strstr(text, "\nMems_allowed_list:");
  ck_assert_ptr_nonnull(line);
  line += strlen("\nMems_allowed_list:");
  while (*line == '\t' || *line == ' ') line++;
  line[strcspn(line, "\n")] = '\0';
  ck_assert(na_parse_node_list(line, &listed, NA_MAX_NODES - 1));
  ck_assert_uint_eq(mask, listed);
  ck_assert_uint_eq(mask, na_topology.allowed[0]);
}
END_TEST

START_TEST(cpu_clock_and_randomness) {
  long cpus = sysconf(_SC_NPROCESSORS_CONF);
  for (int i = 0; i < 100; i++) {
    int cpu = na_os_current_cpu();
    ck_assert(cpu >= 0 && cpu < cpus);
  }
  uint32_t last = na_os_clock_ms();
  for (int i = 0; i < 1000; i++) {
    uint32_t now = na_os_clock_ms();
    ck_assert((int32_t)(now - last) >= 0);
    last = now;
  }
  uint64_t values[64];
  for (int i = 0; i < 64; i++) {
    values[i] = na_os_random();
    ck_assert_uint_eq(values[i] & 1, 1);
    for (int j = 0; j < i; j++) ck_assert_uint_ne(values[i], values[j]);
  }
  ck_assert_uint_eq(na_secret & 1, 1); /* the process secret came from it */
}
END_TEST

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* A balloon device whose features have bit 5 (free page reporting) set, among entries that
 * are no devices, makes the machine one whose host takes free memory back; without the bit,
 * or without the driver, it is not. */
START_TEST(free_memory_reporting_read_from_the_balloon_driver) {
  char dir[] = "/tmp/numalloc-balloon-XXXXXX", path[256];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/bind", dir);
  write_text(path, "");
  snprintf(path, sizeof path, "%s/virtio2", dir);
  ck_assert_int_eq(mkdir(path, 0700), 0);
  snprintf(path, sizeof path, "%s/virtio2/features", dir);
  write_text(path, "0110000100000000000000000000000010000000\n");
  errno = EDOM;
  ck_assert(!na_os_free_memory_reported_under(dir));
  write_text(path, "0110010100000000000000000000000010000000\n");
  ck_assert(na_os_free_memory_reported_under(dir));
  ck_assert_int_eq(errno, EDOM);
  snprintf(path, sizeof path, "%s/virtio2/nothing-here", dir);
  ck_assert(!na_os_free_memory_reported_under(path));
  char command[300];
  snprintf(command, sizeof command, "rm -rf %s", dir);
  ck_assert_int_eq(system(command), 0);
}
END_TEST

START_TEST(read_file_without_allocating) {
  char buf[4096];
  errno = EDOM;
  long n = na_os_read_file("/proc/self/status", buf, sizeof buf);
  ck_assert_int_gt(n, 0);
  ck_assert_uint_eq(strlen(buf), (size_t)n);
  ck_assert_ptr_nonnull(strstr(buf, "Name:"));
  ck_assert_int_eq(na_os_read_file("/nonexistent/numalloc", buf, sizeof buf), -1);
  ck_assert_int_eq(na_os_read_file("/proc/self/status", buf, 8), 7);
  ck_assert_uint_eq(strlen(buf), 7);
  ck_assert_int_eq(na_os_read_file("/proc/self/status", buf, 1), 0);
  ck_assert_str_eq(buf, "");
  ck_assert_int_eq(errno, EDOM);
}
END_TEST

START_TEST(stderr_and_environment) {
  unit_capture_start();
  errno = EDOM;
  na_os_write_stderr("one line\n", 9);
  na_os_write_stderr("xyz", 2);
  int fd = na_os_dup_stderr();
  const char *out = unit_capture_stop();
  ck_assert_int_eq(errno, EDOM);
  ck_assert_str_eq(out, "one line\nxy");
  ck_assert_int_ge(fd, 3);
  close(fd);
  setenv("NUMALLOC_UNIT_PROBE", "42", 1);
  ck_assert_str_eq(na_os_getenv("NUMALLOC_UNIT_PROBE"), "42");
  ck_assert_ptr_null(na_os_getenv("NUMALLOC_UNIT_ABSENT"));
  na_os_yield();
}
END_TEST

/* ---- fault injection ------------------------------------------------------------------ */

START_TEST(injection_counts_down) {
  na_os_inject_map_failures(3);
  for (int i = 0; i < 3; i++) ck_assert_ptr_null(na_os_map_aligned(NA_PAGE_SIZE, NA_PAGE_SIZE));
  void *p = na_os_map_aligned(NA_PAGE_SIZE, NA_PAGE_SIZE);
  ck_assert_ptr_nonnull(p);
  na_os_unmap(p, NA_PAGE_SIZE);
  na_os_inject_map_failures(5);
  ck_assert_ptr_null(na_os_reserve_aligned(NA_PAGE_SIZE, NA_PAGE_SIZE)); /* every mapping counts */
  na_os_inject_map_failures(0);
  p = na_os_map_aligned(NA_PAGE_SIZE, NA_PAGE_SIZE);
  ck_assert_ptr_nonnull(p);
  na_os_unmap(p, NA_PAGE_SIZE);
}
END_TEST

/* With mappings failing, every way of asking for new memory fails with NULL and ENOMEM (the
 * thread's record and heap exist already); when they succeed again, so does allocation. */
START_TEST(allocation_fails_cleanly_and_recovers) {
  unit_quiet_purge();
  numalloc_free(numalloc_malloc(64));          /* the thread's record, heap and first segment */
  void *first = numalloc_malloc(NA_LARGE_MAX); /* all of a segment's free slices */
  ck_assert_ptr_nonnull(first);
  na_os_inject_map_failures(1000000);
  errno = 0;
  ck_assert_ptr_null(numalloc_malloc(40 * NA_MiB));
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_null(numalloc_malloc(NA_LARGE_MAX)); /* no segment has room for it */
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_null(numalloc_calloc(1, 40 * NA_MiB));
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_null(numalloc_aligned_alloc(4 * NA_MiB, 40 * NA_MiB));
  ck_assert_int_eq(errno, ENOMEM);
  void *out = (void *)0x1;
  errno = EDOM;
  ck_assert_int_eq(numalloc_posix_memalign(&out, 64, 40 * NA_MiB), ENOMEM);
  ck_assert_int_eq(errno, EDOM);
  ck_assert_ptr_eq(out, (void *)0x1);
  errno = 0;
  ck_assert_ptr_null(numalloc_malloc_onnode(40 * NA_MiB, unit_home_node()));
  ck_assert_int_eq(errno, ENOMEM);

  /* small blocks: pages of 256 KiB blocks use up the segment, then fail */
  enum { MAX = 200 };
  void *small[MAX];
  int n = 0;
  errno = 0;
  while (n < MAX && (small[n] = numalloc_malloc(NA_SMALL_MAX)) != NULL) n++;
  ck_assert_int_lt(n, MAX);
  ck_assert_int_eq(errno, ENOMEM);

  na_os_inject_map_failures(0);
  void *big = numalloc_malloc(40 * NA_MiB);
  void *large = numalloc_malloc(NA_LARGE_MAX);
  void *more = numalloc_malloc(NA_SMALL_MAX);
  ck_assert(big && large && more);
  memset(big, 1, 20 * NA_MiB);
  numalloc_free(big);
  numalloc_free(large);
  numalloc_free(more);
  for (int i = 0; i < n; i++) numalloc_free(small[i]);
  numalloc_free(first);
}
END_TEST

/* Each huge allocation maps once: N injected failures fail exactly N of them. */
START_TEST(injected_failures_hit_exactly_that_many_allocations) {
  numalloc_free(numalloc_malloc(64));
  na_os_inject_map_failures(2);
  ck_assert_ptr_null(numalloc_malloc(40 * NA_MiB));
  ck_assert_ptr_null(numalloc_malloc(40 * NA_MiB));
  void *p = numalloc_malloc(40 * NA_MiB);
  ck_assert_ptr_nonnull(p);
  numalloc_free(p);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("platform");
  TCase *tc = unit_tcase(s, "os", 10);
  tcase_add_test(tc, aligned_mappings);
  tcase_add_test(tc, aligned_mappings_fit_a_tight_address_space_limit);
  tcase_add_test(tc, a_charged_mapping_beyond_memory_is_refused);
  tcase_add_test(tc, huge_page_advice_follows_the_thp_mode);
  tcase_add_test(tc, huge_pages_usable_by_mode_and_process);
  tcase_add_test(tc, free_memory_reporting_read_from_the_balloon_driver);
  tcase_add_test(tc, purge_gives_pages_back);
  tcase_add_test(tc, purge_batch_gives_its_ranges_back_together);
  tcase_add_test(tc, purge_of_locked_pages_is_refused);
  tcase_add_test(tc, untouched_pages_from_the_page_map);
  tcase_add_test(tc, populate_faults_in);
  tcase_add_test(tc, remap_grows_in_place_or_moves);
  tcase_add_test_raise_signal(tc, reserve_is_address_space_only, SIGSEGV);
  tcase_add_test(tc, bind_to_this_machines_nodes);
  tcase_add_test(tc, page_nodes_of_untouched_pages);
  tcase_add_test(tc, page_nodes_by_policy_agree_with_move_pages);
  tcase_add_test(tc, mems_allowed_match_the_status_file);
  tcase_add_test(tc, cpu_clock_and_randomness);
  tcase_add_test(tc, read_file_without_allocating);
  tcase_add_test(tc, stderr_and_environment);
  tc = unit_tcase(s, "injection", 10);
  tcase_add_test(tc, injection_counts_down);
  tcase_add_test(tc, allocation_fails_cleanly_and_recovers);
  tcase_add_test(tc, injected_failures_hit_exactly_that_many_allocations);
  return unit_run(s, argv);
}
