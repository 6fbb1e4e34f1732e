/* check_topology.c: the topology (topology.c). na_topology_derive is pure, so it is driven
 * here with synthetic machines: nodes with memory and no CPUs, CPUs and no memory, nodes the
 * process may not use, asymmetric and tied distances, 64 nodes, and NUMALLOC_NODES
 * restrictions; each must give the right usable set, fallback order and nearest usable node.
 * The topology read from this machine is checked against sysfs, and read again (as while the
 * program runs) replaces an old reading quietly while other threads look nodes up. */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>

static na_topology_t topo;

static void topo_make(int nodes, uint64_t memory, uint64_t cpus, uint64_t allowed) {
  memset(&topo, 0, sizeof topo);
  topo.node_count = nodes;
  topo.cpu_count = nodes;
  topo.has_memory[0] = memory;
  topo.has_cpus[0] = cpus;
  topo.allowed[0] = allowed;
  for (int a = 0; a < nodes; a++)
    for (int b = 0; b < nodes; b++) topo.distance[a][b] = a == b ? 10 : 20;
  for (int c = 0; c < 1024; c++) topo.cpu_node[c] = -1;
  na_options.nodes_set = false;
  na_options.nodes_mask[0] = ~(uint64_t)0;
}

static void set_row(int node, const int *row) {
  for (int n = 0; n < topo.node_count; n++) topo.distance[node][n] = (uint8_t)row[n];
}

/* The fallback order of `node` is exactly `order` (count entries), then -1. */
static void expect_order(int node, const int *order, int count) {
  for (int i = 0; i < count; i++)
    ck_assert_msg(topo.fallback_order[node][i] == order[i], "fallback_order[%d][%d] = %d, not %d",
                  node, i, topo.fallback_order[node][i], order[i]);
  if (count < NA_MAX_NODES)
    ck_assert_msg(topo.fallback_order[node][count] == -1, "fallback_order[%d] not ended at %d",
                  node, count);
}

static void expect_usable(uint64_t mask) {
  ck_assert_uint_eq(topo.usable[0], mask);
  ck_assert_int_eq(topo.usable_count, __builtin_popcountll(mask));
  int i = 0;
  for (int n = 0; n < NA_MAX_NODES; n++)
    if ((mask >> n) & 1) ck_assert_int_eq(topo.usable_list[i++], n);
}

static const char *derive_capturing(void) {
  unit_capture_start();
  na_topology_derive(&topo);
  return unit_capture_stop();
}

START_TEST(uniform_nodes_prefer_themselves) {
  topo_make(4, 0xf, 0xf, 0xf);
  const char *err = derive_capturing();
  ck_assert_str_eq(err, "");
  expect_usable(0xf);
  for (int n = 0; n < 4; n++) {
    ck_assert_int_eq(topo.nearest_usable[n], n);
    int order[4], k = 0;
    order[k++] = n;
    for (int m = 0; m < 4; m++)
      if (m != n) order[k++] = m; /* equal distances: by id */
    expect_order(n, order, 4);
  }
}
END_TEST

/* Four nodes in a ring: neighbours at 20, the opposite node at 30; ties go to the lower id. */
START_TEST(ring_distances_order_fallback) {
  topo_make(4, 0xf, 0xf, 0xf);
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      int hop = (a - b + 4) % 4;
      topo.distance[a][b] = (uint8_t)(hop == 0 ? 10 : hop == 2 ? 30 : 20);
    }
  na_topology_derive(&topo);
  expect_order(0, (const int[]){0, 1, 3, 2}, 4);
  expect_order(1, (const int[]){1, 0, 2, 3}, 4);
  expect_order(2, (const int[]){2, 1, 3, 0}, 4);
  expect_order(3, (const int[]){3, 0, 2, 1}, 4);
}
END_TEST

/* Each node orders the others by its own row of the matrix, not its column. */
START_TEST(asymmetric_distances_use_the_row) {
  topo_make(3, 0x7, 0x7, 0x7);
  set_row(0, (const int[]){10, 15, 30});
  set_row(1, (const int[]){40, 10, 25});
  set_row(2, (const int[]){12, 20, 10});
  na_topology_derive(&topo);
  expect_order(0, (const int[]){0, 1, 2}, 3);
  expect_order(1, (const int[]){1, 2, 0}, 3);
  expect_order(2, (const int[]){2, 0, 1}, 3);
}
END_TEST

/* Node 2 has memory and no CPU (a memory expander): usable, and last for the others. */
START_TEST(memory_only_node_is_usable) {
  topo_make(3, 0x7, 0x3, 0x7);
  set_row(0, (const int[]){10, 21, 40});
  set_row(1, (const int[]){21, 10, 40});
  set_row(2, (const int[]){40, 40, 10});
  na_topology_derive(&topo);
  expect_usable(0x7);
  expect_order(0, (const int[]){0, 1, 2}, 3);
  expect_order(1, (const int[]){1, 0, 2}, 3);
  ck_assert_int_eq(topo.nearest_usable[2], 2);
}
END_TEST

/* Node 1 has CPUs and no memory: never used; its threads get the node nearest to it. */
START_TEST(cpu_only_node_maps_to_nearest) {
  topo_make(4, 0xd, 0xf, 0xf);
  set_row(0, (const int[]){10, 20, 20, 30});
  set_row(1, (const int[]){20, 10, 15, 30});
  set_row(2, (const int[]){20, 15, 10, 20});
  set_row(3, (const int[]){30, 30, 20, 10});
  na_topology_derive(&topo);
  expect_usable(0xd);
  ck_assert_int_eq(topo.nearest_usable[1], 2);
  expect_order(1, (const int[]){2, 0, 3}, 3);
  expect_order(0, (const int[]){0, 2, 3}, 3);
  for (int n = 0; n < 4; n++)
    for (int i = 0; i < NA_MAX_NODES && topo.fallback_order[n][i] >= 0; i++)
      ck_assert_int_ne(topo.fallback_order[n][i], 1);
}
END_TEST

/* A cpuset without node 3: node 3's CPUs (if any run us) go to its nearest allowed node. */
START_TEST(disallowed_node_is_skipped) {
  topo_make(4, 0xf, 0xf, 0x7);
  set_row(3, (const int[]){30, 20, 25, 10});
  na_topology_derive(&topo);
  expect_usable(0x7);
  ck_assert_int_eq(topo.nearest_usable[3], 1);
  expect_order(3, (const int[]){1, 2, 0}, 3);
  expect_order(0, (const int[]){0, 1, 2}, 3);
}
END_TEST

START_TEST(nodes_option_restricts) {
  topo_make(4, 0xf, 0xf, 0xf);
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      int hop = (a - b + 4) % 4;
      topo.distance[a][b] = (uint8_t)(hop == 0 ? 10 : hop == 2 ? 30 : 20);
    }
  na_options.nodes_set = true;
  na_options.nodes_mask[0] = 0xc;
  const char *err = derive_capturing();
  ck_assert_str_eq(err, "");
  expect_usable(0xc);
  ck_assert_int_eq(topo.nearest_usable[0], 3);
  ck_assert_int_eq(topo.nearest_usable[1], 2);
  ck_assert_int_eq(topo.nearest_usable[2], 2);
  ck_assert_int_eq(topo.nearest_usable[3], 3);
  expect_order(0, (const int[]){3, 2}, 2);
  expect_order(1, (const int[]){2, 3}, 2);
  expect_order(2, (const int[]){2, 3}, 2);
}
END_TEST

/* NUMALLOC_NODES=2,5 on four nodes: 5 is ignored with a warning, 2 is used. */
START_TEST(nodes_option_ignores_unusable_nodes) {
  topo_make(4, 0xf, 0xf, 0xf);
  na_options.nodes_set = true;
  na_options.nodes_mask[0] = 0x24;
  const char *err = derive_capturing();
  ck_assert_int_eq(unit_count_lines_with(err, "NUMALLOC_NODES"), 1);
  expect_usable(0x4);
  for (int n = 0; n < 4; n++) {
    ck_assert_int_eq(topo.nearest_usable[n], 2);
    expect_order(n, (const int[]){2}, 1);
  }
}
END_TEST

/* NUMALLOC_NODES naming only a node without memory: warn, use every allowed node. */
START_TEST(nodes_option_with_nothing_usable_falls_back_to_all) {
  topo_make(4, 0xd, 0xf, 0xf);
  na_options.nodes_set = true;
  na_options.nodes_mask[0] = 0x2;
  const char *err = derive_capturing();
  ck_assert_int_ge(unit_count_lines_with(err, "warning: NUMALLOC_NODES"), 1);
  expect_usable(0xd);
  ck_assert_int_eq(topo.nearest_usable[1], 0);
}
END_TEST

START_TEST(nothing_known_means_node_zero) {
  topo_make(2, 0, 0, 0);
  na_topology_derive(&topo);
  expect_usable(0x1);
  ck_assert_int_eq(topo.nearest_usable[0], 0);
  ck_assert_int_eq(topo.nearest_usable[1], 0);
  expect_order(1, (const int[]){0}, 1);
  topo_make(0, 0, 0, 0); /* not even a node count */
  na_topology_derive(&topo);
  expect_usable(0x1);
  ck_assert_int_eq(topo.nearest_usable[0], 0);
}
END_TEST

/* 64 nodes on a line: every order is a full permutation, by distance, ties by id. */
START_TEST(sixty_four_nodes) {
  topo_make(64, ~(uint64_t)0, ~(uint64_t)0, ~(uint64_t)0);
  for (int a = 0; a < 64; a++)
    for (int b = 0; b < 64; b++) topo.distance[a][b] = (uint8_t)(10 + (a > b ? a - b : b - a));
  na_topology_derive(&topo);
  expect_usable(~(uint64_t)0);
  for (int n = 0; n < 64; n++) {
    uint64_t seen = 0;
    int last_distance = 0;
    for (int i = 0; i < 64; i++) {
      int m = topo.fallback_order[n][i];
      ck_assert_int_ge(m, 0);
      ck_assert_int_lt(m, 64);
      ck_assert(!((seen >> m) & 1));
      seen |= (uint64_t)1 << m;
      ck_assert_int_ge(topo.distance[n][m], last_distance);
      last_distance = topo.distance[n][m];
    }
    ck_assert_int_eq(topo.nearest_usable[n], n);
  }
  const int near10[] = {10, 9, 11, 8, 12, 7, 13};
  for (int i = 0; i < 7; i++) ck_assert_int_eq(topo.fallback_order[10][i], near10[i]);
  for (int i = 0; i < 64; i++) ck_assert_int_eq(topo.fallback_order[63][i], 63 - i);
}
END_TEST

START_TEST(derive_is_repeatable) {
  topo_make(4, 0xd, 0xf, 0xf);
  set_row(1, (const int[]){20, 10, 15, 30});
  na_topology_derive(&topo);
  na_topology_t first = topo;
  na_topology_derive(&topo);
  ck_assert_int_eq(memcmp(&first, &topo, sizeof topo), 0);
}
END_TEST

/* The policy turns the CPU's node into the nearest usable node. */
START_TEST(cpu_of_a_cpu_only_node_allocates_nearby) {
  topo_make(4, 0xd, 0xf, 0xf);
  set_row(1, (const int[]){20, 10, 15, 30});
  for (int c = 0; c < 1024; c++) topo.cpu_node[c] = 1;
  na_topology_derive(&topo);
  na_topology = topo; /* this test's process only: no allocation follows */
  ck_assert_int_eq(na_policy_current_node(), 2);
  ck_assert_int_eq(na_topology_cpu_node(5), 1);
  na_topology.cpu_node[5] = -1;
  ck_assert_int_eq(na_topology_cpu_node(5), 0); /* unknown: the first usable node */
  ck_assert_int_eq(na_topology_cpu_node(-1), 0);
  ck_assert_int_eq(na_topology_cpu_node(1 << 20), 0);
}
END_TEST

/* Reads a sysfs node list ("0-1,3") into a mask; false when the file is missing. */
static bool sysfs_mask(const char *path, uint64_t *mask) {
  char text[256];
  if (na_os_read_file(path, text, sizeof text) <= 0) return false;
  text[strcspn(text, "\n")] = '\0';
  if (text[0] == '\0') {
    *mask = 0;
    return true;
  }
  return na_parse_node_list(text, mask, NA_MAX_NODES - 1);
}

START_TEST(this_machine_matches_sysfs) {
  const na_topology_t *t = &na_topology;
  ck_assert_int_ge(t->node_count, 1);
  ck_assert_int_ge(t->cpu_count, 1);
  ck_assert_int_ge(t->usable_count, 1);
  uint64_t possible = 0, memory = 0;
  if (sysfs_mask("/sys/devices/system/node/possible", &possible)) {
    ck_assert_int_le(t->node_count, 64 - __builtin_clzll(possible));
  }
  if (sysfs_mask("/sys/devices/system/node/has_memory", &memory)) {
    ck_assert_uint_eq(t->has_memory[0], memory);
  }
  ck_assert_uint_eq(t->usable[0] & ~(t->allowed[0] & t->has_memory[0]), 0);
  for (int n = 0; n < t->node_count; n++) {
    ck_assert(na_node_bit(t->usable, t->nearest_usable[n]));
    ck_assert_int_eq(t->distance[n][n], 10);
    ck_assert_int_eq(numalloc_node_distance(n, n), 10);
    ck_assert_int_eq(numalloc_node_allowed(n), na_node_bit(t->allowed, n));
    ck_assert_int_eq(numalloc_node_has_memory(n), na_node_bit(t->has_memory, n));
    uint64_t listed = 0;
    for (int i = 0; i < NA_MAX_NODES && t->fallback_order[n][i] >= 0; i++)
      listed |= (uint64_t)1 << t->fallback_order[n][i];
    ck_assert_uint_eq(listed, t->usable[0]);
  }
  ck_assert_int_eq(numalloc_node_count(), t->node_count);
  ck_assert_int_eq(numalloc_node_distance(-1, 0), -1);
  ck_assert_int_eq(numalloc_node_distance(0, t->node_count), -1);
  ck_assert_int_eq(numalloc_node_allowed(-1), 0);
  ck_assert_int_eq(numalloc_node_allowed(NA_MAX_NODES), 0);
  int node = numalloc_current_node();
  ck_assert(node >= 0 && node < t->node_count);
  for (int c = 0; c < t->cpu_count && c < 1024; c++)
    ck_assert(t->cpu_node[c] >= -1 && t->cpu_node[c] < t->node_count);
}
END_TEST

/* Reading the machine again (numalloc_collect does) gives the same topology when nothing
 * changed, and replaces an old reading whole. */
START_TEST(reading_again_replaces_an_old_reading) {
  na_topology_t first = na_topology;
  na_topology_init();
  ck_assert_int_eq(memcmp(&first, &na_topology, sizeof first), 0);
  na_topology.node_count = 3; /* as if nodes 1 and 2 had been allowed at the last reading */
  na_topology.allowed[0] = na_topology.has_memory[0] = na_topology.usable[0] = 0x7;
  na_topology.usable_count = 3;
  na_topology.usable_list[1] = 1;
  na_topology.usable_list[2] = 2;
  na_topology.nearest_usable[2] = 2;
  na_topology.cpu_node[0] = 2;
  unit_capture_start();
  na_topology_init();
  ck_assert_str_eq(unit_capture_stop(), "");
  ck_assert_int_eq(na_topology.node_count, first.node_count);
  ck_assert_uint_eq(na_topology.usable[0], first.usable[0]);
  ck_assert_int_eq(na_topology.usable_count, first.usable_count);
  ck_assert_int_eq(na_topology.nearest_usable[2], first.nearest_usable[2]);
  ck_assert_int_eq(na_topology.cpu_node[0], first.cpu_node[0]);
}
END_TEST

/* NUMALLOC_NODES problems are said at start, not at every reading. */
START_TEST(reading_again_is_quiet) {
  na_options.nodes_set = true;
  na_options.nodes_mask[0] = (uint64_t)1 << 40;
  na_options.nodes_text = "40";
  unit_capture_start();
  na_topology_init();
  numalloc_collect();
  ck_assert_str_eq(unit_capture_stop(), "");
  ck_assert(na_node_bit(na_topology.usable, na_topology.usable_list[0]));
}
END_TEST

/* Threads that look nodes up while the topology is read again always get a node below
 * NA_MAX_NODES, and fallback orders that end. */
static _Atomic bool readers_stop;
static _Atomic long readers_looked;

static void *look_up_nodes(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&readers_stop, memory_order_relaxed)) {
    for (int cpu = -2; cpu < 1100; cpu += 7) {
      int node = na_topology_cpu_node(cpu);
      UNIT_REQUIRE(node >= 0 && node < NA_MAX_NODES, "cpu %d -> node %d", cpu, node);
      int near = na_relaxed_load(&na_topology.nearest_usable[node]);
      UNIT_REQUIRE(near >= 0 && near < NA_MAX_NODES, "node %d -> %d", node, near);
      for (int i = 0; i < NA_MAX_NODES; i++) {
        int next = na_relaxed_load(&na_topology.fallback_order[node][i]);
        if (next < 0) break;
        UNIT_REQUIRE(next < NA_MAX_NODES, "fallback %d", next);
      }
      int count = na_relaxed_load(&na_topology.usable_count);
      UNIT_REQUIRE(count >= 1 && count <= NA_MAX_NODES, "usable_count %d", count);
    }
    atomic_fetch_add(&readers_looked, 1);
  }
  return NULL;
}

/* Readings go on until the readers have looked many times while they did (a loaded machine
 * may not run them at once), at most 20 s. */
START_TEST(lookups_during_reading_again) {
  pthread_t readers[2];
  atomic_store(&readers_stop, false);
  for (int i = 0; i < 2; i++) pthread_create(&readers[i], NULL, look_up_nodes, NULL);
  uint32_t start = na_os_clock_ms();
  int round = 0;
  for (; round < 300 || (atomic_load(&readers_looked) < 200 && na_os_clock_ms() - start < 20000);
       round++) {
    /* an old reading with two more nodes, then the machine read again */
    na_relaxed_store(&na_topology.usable_list[1], 5);
    na_relaxed_store(&na_topology.usable_list[2], 6);
    na_relaxed_store(&na_topology.usable_count, 3);
    na_relaxed_store(&na_topology.cpu_node[round % 1024], (int16_t)6);
    na_relaxed_store(&na_topology.fallback_order[6][0], (int8_t)5);
    na_relaxed_store(&na_topology.fallback_order[6][1], (int8_t)-1);
    na_topology_init();
  }
  atomic_store(&readers_stop, true);
  for (int i = 0; i < 2; i++) pthread_join(readers[i], NULL);
  ck_assert_int_ge(atomic_load(&readers_looked), 200);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("topology");
  TCase *tc = unit_tcase(s, "derive", 10);
  tcase_add_test(tc, uniform_nodes_prefer_themselves);
  tcase_add_test(tc, ring_distances_order_fallback);
  tcase_add_test(tc, asymmetric_distances_use_the_row);
  tcase_add_test(tc, memory_only_node_is_usable);
  tcase_add_test(tc, cpu_only_node_maps_to_nearest);
  tcase_add_test(tc, disallowed_node_is_skipped);
  tcase_add_test(tc, nodes_option_restricts);
  tcase_add_test(tc, nodes_option_ignores_unusable_nodes);
  tcase_add_test(tc, nodes_option_with_nothing_usable_falls_back_to_all);
  tcase_add_test(tc, nothing_known_means_node_zero);
  tcase_add_test(tc, sixty_four_nodes);
  tcase_add_test(tc, derive_is_repeatable);
  tcase_add_test(tc, cpu_of_a_cpu_only_node_allocates_nearby);
  tc = unit_tcase(s, "machine", 10);
  tcase_add_test(tc, this_machine_matches_sysfs);
  tcase_add_test(tc, reading_again_replaces_an_old_reading);
  tcase_add_test(tc, reading_again_is_quiet);
  tcase_add_test(tc, lookups_during_reading_again);
  return unit_run(s, argv);
}
