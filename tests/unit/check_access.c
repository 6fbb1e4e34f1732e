/* check_access.c: the NUMA system calls the kernel permits (access.c), tested the way a
 * container refuses them: each test installs a seccomp filter in its own forked child
 * (numa_filter.h) and checks what numalloc then probes, says on stderr, uses to check
 * placement and writes in its statistics. One line at most for a refused mbind, and none on a
 * machine where the process may use one node; a report never claims a check that did not run. */
#include "unit.h"

#include "../container/numa_filter.h"
#include "access.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define ALL_CALLS NUMA_FILTER_ALL
#define SYS_NICE  (numa_filter_bit("move_pages") | numa_filter_bit("migrate_pages"))

static void deny(unsigned mask, int error) {
  UNIT_REQUIRE(numa_filter_install(mask, error) == 0, "seccomp: %s", strerror(errno));
}

/* True when this runner is itself under a seccomp filter (a container), which may refuse the
 * calls the unfiltered tests expect permitted. */
static bool runner_filtered(void) {
  char text[4096];
  if (na_os_read_file("/proc/self/status", text, sizeof text) < 0) return false;
  const char *line = strstr(text, "\nSeccomp:");
  return line != NULL && strtol(line + strlen("\nSeccomp:"), NULL, 10) != 0;
}

/* The statistics report as a string. */
static const char *report(const char *format) {
  static char text[65536];
  FILE *f = fmemopen(text, sizeof text, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(numalloc_stats_print(f, format), 0);
  fclose(f);
  return text;
}

/* The process may use memory of two nodes: a refusal then costs placement. */
static void pretend_two_nodes(void) {
  na_topology.node_count = 2;
  na_topology.allowed[0] = na_topology.has_memory[0] = 0x3;
}

static const char *init_capturing(void) {
  unit_capture_start();
  na_access_init();
  return unit_capture_stop();
}

START_TEST(probes_name_the_refusal) {
  errno = EDOM;
  if (!runner_filtered())
    for (int call = 0; call < NA_CALL_COUNT; call++)
      ck_assert_msg(na_os_numa_call_error((na_numa_call_t)call) == 0, "%s refused",
                    na_os_numa_call_name((na_numa_call_t)call));
  deny(numa_filter_bit("mbind") | numa_filter_bit("move_pages"), EACCES);
  ck_assert_int_eq(na_os_numa_call_error(NA_CALL_MBIND), EACCES);
  ck_assert_int_eq(na_os_numa_call_error(NA_CALL_MOVE_PAGES), EACCES);
  if (!runner_filtered()) {
    ck_assert_int_eq(na_os_numa_call_error(NA_CALL_GET_MEMPOLICY), 0);
    ck_assert_int_eq(na_os_numa_call_error(NA_CALL_SET_MEMPOLICY), 0);
    ck_assert_int_eq(na_os_numa_call_error(NA_CALL_MIGRATE_PAGES), 0);
  }
  ck_assert_int_eq(errno, EDOM);
  ck_assert_str_eq(na_os_numa_call_name(NA_CALL_MIGRATE_PAGES), "migrate_pages");
  ck_assert_str_eq(na_os_error_text(EPERM), "Operation not permitted");
}
END_TEST

/* The probes change nothing: the thread's policy and a mapping's stay as they were. */
START_TEST(probes_have_no_effect) {
  char *p = na_os_map_aligned(NA_MiB, NA_PAGE_SIZE);
  uint64_t node0 = 1;
  ck_assert(na_os_bind(p, NA_MiB, NA_BIND_PREFERRED, &node0, NA_MAX_NODES - 1));
  for (int round = 0; round < 3; round++)
    for (int call = 0; call < NA_CALL_COUNT; call++) na_os_numa_call_error((na_numa_call_t)call);
  FILE *maps = fopen("/proc/self/numa_maps", "r");
  ck_assert_ptr_nonnull(maps);
  char line[1024], start[32];
  snprintf(start, sizeof start, "%lx ", (unsigned long)p);
  bool found = false;
  while (fgets(line, sizeof line, maps) != NULL)
    if (strncmp(line, start, strlen(start)) == 0) {
      found = true;
      ck_assert_msg(strstr(line, " prefer:0") != NULL, "binding changed: %s", line);
    }
  fclose(maps);
  ck_assert(found);
  na_os_unmap(p, NA_MiB);
}
END_TEST

/* A container without CAP_SYS_NICE on a machine with one node: nothing to say. */
START_TEST(one_node_refused_says_nothing) {
  deny(ALL_CALLS, EPERM);
  na_topology.allowed[0] = na_topology.has_memory[0] = 0x1;
  ck_assert_str_eq(init_capturing(), "");
  unit_capture_start();
  na_access_bind_failed(0);
  na_access_bind_failed(0);
  ck_assert_str_eq(unit_capture_stop(), "");
  ck_assert_int_eq(na_access_check(), NA_CHECK_NONE);
}
END_TEST

/* Several nodes: one line for the process, at the first binding that fails, however many
 * fail after it. */
START_TEST(several_nodes_refused_says_it_once) {
  deny(ALL_CALLS, EPERM);
  pretend_two_nodes();
  ck_assert_str_eq(init_capturing(), "");
  unit_capture_start();
  for (int i = 0; i < 5; i++) {
    na_access_bind_failed(0);
    na_access_bind_failed(1);
    na_access_bind_failed(NA_INTERLEAVE_ARENA);
  }
  const char *err = unit_capture_stop();
  ck_assert_int_eq(unit_count_lines_with(err, "numalloc:"), 1);
  ck_assert_int_eq(unit_count_lines_with(err, "numalloc: warning: mbind refused (Operation not "
                                              "permitted)"),
                   1);
  ck_assert_ptr_nonnull(strstr(err, "CAP_SYS_NICE"));
  na_access_report_t a;
  na_access_report(&a);
  ck_assert(!a.bind_enforced);
  ck_assert_int_eq(a.bind_failures, 0); /* refusals are not failures of a permitted call */
}
END_TEST

/* NUMALLOC_POLICY=system binds nothing, so a refusal costs nothing. */
START_TEST(system_policy_says_nothing) {
  deny(ALL_CALLS, EPERM);
  pretend_two_nodes();
  na_options.policy = NUMALLOC_POLICY_SYSTEM;
  unit_capture_start();
  na_access_init();
  na_access_bind_failed(1);
  ck_assert_str_eq(unit_capture_stop(), "");
}
END_TEST

/* Strict fallback needs a page check: without one it says so once. */
START_TEST(strict_fallback_without_a_check_says_so) {
  deny(ALL_CALLS, EPERM);
  na_options.fallback = NA_FALLBACK_NONE;
  const char *err = init_capturing();
  ck_assert_int_eq(unit_count_lines_with(err, "NUMALLOC_FALLBACK=none"), 1);
  ck_assert_int_eq(unit_count_lines_with(err, "numalloc:"), 1);
}
END_TEST

/* A program that installs a filter after numalloc started: the first refused binding says
 * it, once. */
START_TEST(a_later_filter_is_noticed) {
  if (runner_filtered()) return;
  pretend_two_nodes();
  ck_assert_str_eq(init_capturing(), "");
  deny(numa_filter_bit("mbind"), EPERM);
  unit_capture_start();
  na_access_bind_failed(1);
  na_access_bind_failed(0);
  const char *err = unit_capture_stop();
  ck_assert_int_eq(unit_count_lines_with(err, "mbind refused"), 1);
  na_access_report_t a;
  na_access_report(&a);
  ck_assert_int_eq(a.refused[NA_CALL_MBIND], EPERM);
  ck_assert(!a.bind_enforced);
}
END_TEST

/* A binding that fails although mbind is permitted (a node that left the cpuset): said once
 * per node, counted, and the topology is read again. */
START_TEST(permitted_bind_failure_reads_the_topology_again) {
  if (runner_filtered()) return;
  na_topology_t real = na_topology;
  ck_assert_str_eq(init_capturing(), "");
  pretend_two_nodes();
  na_topology.usable[0] = 0x3;
  unit_capture_start();
  na_access_bind_failed(1);
  const char *err = unit_capture_stop();
  ck_assert_int_eq(unit_count_lines_with(err, "mbind to node 1 failed"), 1);
  ck_assert_int_eq(memcmp(&na_topology, &real, sizeof real), 0); /* the machine, read again */
  unit_capture_start();
  pretend_two_nodes(); /* each failure reads the (one-node) machine again */
  na_access_bind_failed(1);
  pretend_two_nodes();
  na_access_bind_failed(NA_INTERLEAVE_ARENA);
  pretend_two_nodes();
  na_access_bind_failed(NA_INTERLEAVE_ARENA);
  err = unit_capture_stop();
  ck_assert_int_eq(unit_count_lines_with(err, "mbind to node 1"), 0);
  ck_assert_int_eq(unit_count_lines_with(err, "interleaved memory failed"), 1);
  na_access_report_t a;
  na_access_report(&a);
  ck_assert_int_eq(a.bind_failures, 4);
  ck_assert(!a.bind_enforced);
  ck_assert_ptr_nonnull(strstr(report("text"), "placement not enforced: 4 mbind call(s) failed"));
}
END_TEST

/* With get_mempolicy refused the cpuset's nodes come from /proc/self/status: the same
 * topology, and not a word on stderr (libnuma would print "get_mempolicy: ..."). */
START_TEST(topology_read_under_the_filter) {
  na_topology_t before = na_topology;
  deny(ALL_CALLS, EPERM);
  unit_capture_start();
  na_topology_init();
  ck_assert_str_eq(unit_capture_stop(), "");
  ck_assert_uint_eq(na_topology.allowed[0], before.allowed[0]);
  ck_assert_int_eq(memcmp(&na_topology, &before, sizeof before), 0);
}
END_TEST

/* Touched pages: the node; a page never touched: -ENOENT, as move_pages says. */
static void expect_page_nodes(void) {
  size_t size = 8 * NA_PAGE_SIZE;
  char *p = na_os_map_aligned(size, NA_PAGE_SIZE);
  void *pages[8];
  int nodes[8];
  for (int i = 0; i < 8; i++) {
    pages[i] = p + i * NA_PAGE_SIZE;
    if (i % 2 == 0) p[i * NA_PAGE_SIZE] = 1;
  }
  ck_assert(na_access_page_nodes(pages, nodes, 8));
  for (int i = 0; i < 8; i++) {
    if (i % 2 == 0)
      ck_assert_msg(na_node_bit(na_topology.has_memory, nodes[i]), "page %d on %d", i, nodes[i]);
    else
      ck_assert_int_eq(nodes[i], -ENOENT);
  }
  ck_assert_int_eq(unit_resident_pages(p, size), 4); /* asking faulted nothing in */
  na_os_unmap(p, size);
}

START_TEST(checks_use_move_pages_when_permitted) {
  if (runner_filtered()) return;
  na_access_init();
  ck_assert_int_eq(na_access_check(), NA_CHECK_MOVE_PAGES);
  expect_page_nodes();
}
END_TEST

/* A container with CAP_SYS_NICE: get_mempolicy, page by page, gives the same answers. */
START_TEST(checks_use_get_mempolicy_where_move_pages_is_refused) {
  deny(SYS_NICE, EPERM);
  na_access_init();
  ck_assert_int_eq(na_access_check(), NA_CHECK_GET_MEMPOLICY);
  expect_page_nodes();
}
END_TEST

/* Refused after start: the check notices and moves on to get_mempolicy. */
START_TEST(checks_move_on_when_move_pages_is_refused_later) {
  if (runner_filtered()) return;
  na_access_init();
  deny(SYS_NICE, EPERM);
  expect_page_nodes();
  ck_assert_int_eq(na_access_check(), NA_CHECK_GET_MEMPOLICY);
}
END_TEST

START_TEST(no_check_without_either_call) {
  deny(ALL_CALLS, EPERM);
  na_access_init();
  void *page = na_os_map_aligned(NA_PAGE_SIZE, NA_PAGE_SIZE);
  *(char *)page = 1;
  int node = 99;
  ck_assert(!na_access_page_nodes(&page, &node, 1));
  na_os_unmap(page, NA_PAGE_SIZE);
}
END_TEST

/* What the statistics say in each case; the JSON says it in its own field. */
START_TEST(report_without_any_call) {
  deny(ALL_CALLS, EPERM);
  na_access_init();
  na_options.verify = true;
  numalloc_free(numalloc_malloc(100));
  const char *text = report("text");
  ck_assert_ptr_nonnull(
      strstr(text, "numalloc: placement not enforced: mbind refused (Operation not permitted); "
                   "local % is where numalloc asked for memory, not where the kernel put it\n"));
  ck_assert_ptr_nonnull(strstr(text, "numalloc: placement check unavailable: move_pages and "
                                     "get_mempolicy refused (Operation not permitted)\n"));
  ck_assert_ptr_null(strstr(text, "pages sampled"));
  const char *json = report("json");
  ck_assert_ptr_nonnull(strstr(json, "\"placement\": {\"enforced\": false, \"bind\": \"not "
                                     "enforced: mbind refused (Operation not permitted)\""));
  ck_assert_ptr_nonnull(strstr(json, "\"check_method\": \"none\""));
  ck_assert_ptr_nonnull(strstr(json, "\"refused\": [\"mbind\", \"set_mempolicy\", "
                                     "\"get_mempolicy\", \"move_pages\", \"migrate_pages\"]"));
}
END_TEST

START_TEST(report_with_sys_nice) {
  deny(SYS_NICE, EPERM);
  na_access_init();
  na_options.verify = true;
  void *blocks[64];
  for (int i = 0; i < 64; i++) memset(blocks[i] = numalloc_malloc(3000), 1, 3000);
  numalloc_collect();
  const char *text = report("text");
  ck_assert_ptr_null(strstr(text, "not enforced"));
  const char *line = strstr(text, "numalloc: placement check by get_mempolicy (move_pages "
                                  "refused: Operation not permitted): ");
  ck_assert_msg(line != NULL, "%s", text);
  long sampled = strtol(strchr(line, ')') + 3, NULL, 10);
  ck_assert_int_gt(sampled, 0);
  ck_assert_ptr_nonnull(strstr(line, "pages sampled, 0 on another node"));
  const char *json = report("json");
  ck_assert_ptr_nonnull(strstr(json, "\"enforced\": true, \"bind\": \"enforced\""));
  ck_assert_ptr_nonnull(strstr(json, "\"check_method\": \"get_mempolicy\""));
  ck_assert_ptr_nonnull(strstr(json, "\"refused\": [\"move_pages\", \"migrate_pages\"]"));
  for (int i = 0; i < 64; i++) numalloc_free(blocks[i]);
}
END_TEST

/* Nothing checked is not a pass: the report says so instead of "0 pages sampled". */
START_TEST(report_with_nothing_checked) {
  if (runner_filtered()) return;
  na_access_init();
  na_options.verify = true;
  const char *text = report("text");
  ck_assert_ptr_nonnull(strstr(text, "numalloc: placement check: no page was checked\n"));
  ck_assert_ptr_nonnull(strstr(report("json"), "\"enforced\": true"));
  na_options.verify = false;
  ck_assert_ptr_null(strstr(report("text"), "placement"));
  ck_assert_ptr_nonnull(strstr(report("json"), "\"check\": \"off\""));
}
END_TEST

START_TEST(verbose_names_every_call) {
  deny(numa_filter_bit("get_mempolicy"), ENOSYS);
  na_access_init();
  unit_capture_start();
  na_access_print();
  const char *err = unit_capture_stop();
  ck_assert_ptr_nonnull(strstr(err, "numalloc: system calls permitted: mbind, set_mempolicy, "
                                    "move_pages, migrate_pages; refused: get_mempolicy ("));
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("access");
  TCase *tc = unit_tcase(s, "probe", 10);
  tcase_add_test(tc, probes_name_the_refusal);
  tcase_add_test(tc, probes_have_no_effect);
  tc = unit_tcase(s, "say", 10);
  tcase_add_test(tc, one_node_refused_says_nothing);
  tcase_add_test(tc, several_nodes_refused_says_it_once);
  tcase_add_test(tc, system_policy_says_nothing);
  tcase_add_test(tc, strict_fallback_without_a_check_says_so);
  tcase_add_test(tc, a_later_filter_is_noticed);
  tcase_add_test(tc, permitted_bind_failure_reads_the_topology_again);
  tcase_add_test(tc, topology_read_under_the_filter);
  tc = unit_tcase(s, "check", 10);
  tcase_add_test(tc, checks_use_move_pages_when_permitted);
  tcase_add_test(tc, checks_use_get_mempolicy_where_move_pages_is_refused);
  tcase_add_test(tc, checks_move_on_when_move_pages_is_refused_later);
  tcase_add_test(tc, no_check_without_either_call);
  tc = unit_tcase(s, "report", 10);
  tcase_add_test(tc, report_without_any_call);
  tcase_add_test(tc, report_with_sys_nice);
  tcase_add_test(tc, report_with_nothing_checked);
  tcase_add_test(tc, verbose_names_every_call);
  return unit_run(s, argv);
}
