/* check_topology.c: the topology (topology.c). na_topology_derive is pure, so it is driven
 * here with synthetic machines: nodes with memory and no CPUs, CPUs and no memory, nodes the
 * process may not use, asymmetric and tied distances, 64 nodes, 4,096 CPUs over 32 sub-NUMA
 * clusters, eight CXL memory expanders, and NUMALLOC_NODES restrictions; each must give the
 * right usable set, fallback order and nearest usable node. The topology read from this
 * machine is checked against sysfs, and read again (as while the program runs) replaces an
 * old reading quietly while other threads look nodes up. Synthetic sysfs trees are read the
 * same way: the big machines above, and one with 8,192 CPUs and node ids past the cap. */
#include "unit.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

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
  for (int c = 0; c < NA_MAX_CPUS; c++) topo.cpu_node[c] = -1;
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

/* The fallback order of `node` starts with `order`. */
static void expect_order_starts(int node, const int *order, int count) {
  for (int i = 0; i < count; i++)
    ck_assert_msg(topo.fallback_order[node][i] == order[i], "fallback_order[%d][%d] = %d, not %d",
                  node, i, topo.fallback_order[node][i], order[i]);
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
  topo.cpu_count = NA_MAX_CPUS;
  for (int c = 0; c < NA_MAX_CPUS; c++) topo.cpu_node[c] = 1;
  na_topology_derive(&topo);
  na_topology = topo; /* this test's process only: no allocation follows */
  ck_assert_int_eq(na_policy_current_node(), 2);
  ck_assert_int_eq(na_topology_cpu_node(5), 1);
  na_topology.cpu_node[5] = -1;
  ck_assert_int_eq(na_topology_cpu_node(5), 0); /* unknown: the first usable node */
  na_topology.cpu_count = 5;
  ck_assert_int_eq(na_topology_cpu_node(6), 0); /* beyond the CPUs read: unknown too */
  ck_assert_int_eq(na_topology_cpu_node(-1), 0);
  ck_assert_int_eq(na_topology_cpu_node(1 << 20), 0);
}
END_TEST

/* ---- big machines ----------------------------------------------------------------------
 * Eight sockets of four sub-NUMA clusters: 32 nodes of 128 CPUs, 4,096 in all, numbered as
 * Linux numbers them (the first thread of every core, then their siblings). Clusters of one
 * socket are 12 apart, sockets of one board 21, the two boards 32. */
enum { SNC_NODES = 32, SNC_CPUS = 4096 };
static int snc_cpu_node(int cpu) { return (cpu % (SNC_CPUS / 2)) / 64; }
static int snc_distance(int a, int b) {
  if (a == b) return 10;
  if (a / 4 == b / 4) return 12;
  return a / 16 == b / 16 ? 21 : 32;
}

/* Eight nodes of 16 CPUs with their memory, and eight CXL memory expanders without CPUs
 * (nodes 8-15), expander 8+i attached to node i. */
enum { CXL_NODES = 16, CXL_CPUS = 128 };
static int cxl_cpu_node(int cpu) { return cpu / 16; }
static int cxl_distance(int a, int b) {
  if (a == b) return 10;
  if (a < 8 && b < 8) return 21;
  if (a >= 8 && b >= 8) return 42;
  int host = a < 8 ? a : b, expander = a < 8 ? b : a;
  return expander - 8 == host ? 24 : 34;
}

static void big_make(int nodes, int cpus, uint64_t has_cpus, int (*cpu_node)(int),
                     int (*distance)(int, int)) {
  uint64_t all = nodes == 64 ? ~(uint64_t)0 : ((uint64_t)1 << nodes) - 1;
  topo_make(nodes, all, has_cpus, all);
  topo.cpu_count = cpus;
  for (int a = 0; a < nodes; a++)
    for (int b = 0; b < nodes; b++) topo.distance[a][b] = (uint8_t)distance(a, b);
  for (int c = 0; c < cpus; c++) topo.cpu_node[c] = (int16_t)cpu_node(c);
}

/* The expected fallback order: nodes of `mask` by distance from `node`, ties by id. */
static int order_of(int node, uint64_t mask, int (*distance)(int, int), int *out) {
  int count = 0;
  for (int d = 0; d < 256; d++)
    for (int n = 0; n < NA_MAX_NODES; n++)
      if (((mask >> n) & 1) && distance(node, n) == d) out[count++] = n;
  return count;
}

static void expect_orders(int nodes, uint64_t mask, int (*distance)(int, int)) {
  for (int n = 0; n < nodes; n++) {
    int order[NA_MAX_NODES];
    int count = order_of(n, mask, distance, order);
    expect_order(n, order, count);
    ck_assert_int_eq(topo.nearest_usable[n], order[0]);
  }
}

/* Every CPU a kernel can have (8,192) and some beyond, through the lookup the allocator uses. */
enum { KERNEL_CPUS = 8192 };
static void expect_cpu_nodes(int cpus, int (*cpu_node)(int), int unknown) {
  for (int c = 0; c < KERNEL_CPUS + 64; c++) {
    int want = c < cpus ? cpu_node(c) : unknown;
    UNIT_REQUIRE(na_topology_cpu_node(c) == want, "cpu %d -> node %d, not %d", c,
                 na_topology_cpu_node(c), want);
  }
}

START_TEST(sub_numa_4096_cpus_over_32_nodes) {
  big_make(SNC_NODES, SNC_CPUS, 0xffffffff, snc_cpu_node, snc_distance);
  ck_assert_str_eq(derive_capturing(), "");
  expect_usable(0xffffffff);
  expect_orders(SNC_NODES, 0xffffffff, snc_distance);
  expect_order_starts(6, (const int[]){6, 4, 5, 7, 0, 1, 2, 3, 8},
                      9); /* its socket, then its board */
  na_topology = topo;     /* this test's process only: no allocation follows */
  expect_cpu_nodes(SNC_CPUS, snc_cpu_node, 0);
  ck_assert_int_eq(na_topology_cpu_node(4095), 31);
  ck_assert_int_eq(na_topology_cpu_node(2048 + 64 * 17), 17);
  /* One cluster per socket allowed: a thread of cluster 6 allocates in its own socket. */
  na_options.nodes_set = true;
  na_options.nodes_mask[0] = 0x11111111;
  na_options.nodes_text = "0,4,8,12,16,20,24,28";
  ck_assert_str_eq(derive_capturing(), "");
  expect_usable(0x11111111);
  expect_orders(SNC_NODES, 0x11111111, snc_distance);
  expect_order(6, (const int[]){4, 0, 8, 12, 16, 20, 24, 28}, 8);
}
END_TEST

START_TEST(memory_only_cxl_nodes) {
  big_make(CXL_NODES, CXL_CPUS, 0xff, cxl_cpu_node, cxl_distance);
  ck_assert_str_eq(derive_capturing(), "");
  expect_usable(0xffff);
  expect_orders(CXL_NODES, 0xffff, cxl_distance);
  expect_order_starts(3, (const int[]){3, 0, 1, 2, 4, 5, 6, 7, 11, 8}, 10);
  expect_order_starts(11, (const int[]){11, 3, 0, 1}, 4); /* its host, then the other CPU nodes */
  na_topology = topo;
  expect_cpu_nodes(CXL_CPUS, cxl_cpu_node, 0);
  /* Only the expanders allowed: each node's threads allocate on its own expander. */
  na_options.nodes_set = true;
  na_options.nodes_mask[0] = 0xff00;
  na_options.nodes_text = "8-15";
  ck_assert_str_eq(derive_capturing(), "");
  expect_usable(0xff00);
  expect_orders(CXL_NODES, 0xff00, cxl_distance);
  for (int n = 0; n < 8; n++) ck_assert_int_eq(topo.nearest_usable[n], 8 + n);
  na_topology = topo;
  int cpu = na_os_current_cpu();
  if (cpu >= 0 && cpu < CXL_CPUS) ck_assert_int_eq(na_policy_current_node(), 8 + cxl_cpu_node(cpu));
}
END_TEST

/* ---- synthetic sysfs trees --------------------------------------------------------------
 * A machine written as the kernel shows it (node/online, has_memory, node<N>/cpulist,
 * distance and meminfo, cpu/present, Mems_allowed_list in /proc/self/status) under a
 * temporary directory, which later readings take instead of the real files. */
typedef struct fake_machine_s {
  int span;                  /* node ids 0..span-1 */
  bool (*online)(int node);  /* NULL: all */
  int cpus;                  /* 0..cpus-1 present */
  int (*cpu_node)(int cpu);  /* the node listing the CPU */
  int (*distance)(int, int); /* between online nodes */
  bool (*has_memory)(int node);
} fake_machine_t;

static char fake_root[64];
static char fake_text[64 * 1024];

static void fake_file(const char *relative, const char *content) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", fake_root, relative);
  for (char *p = path + strlen(fake_root) + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(path, 0755);
    *p = '/';
  }
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  fputs(content, f);
  fclose(f);
}

/* "0-3,8\n" for the ids below `count` that `in` accepts. */
static const char *fake_list(int count, bool (*in)(int id, const void *arg), const void *arg) {
  size_t at = 0;
  fake_text[0] = '\0';
  for (int id = 0; id < count; id++) {
    if (!in(id, arg)) continue;
    int last = id;
    while (last + 1 < count && in(last + 1, arg)) last++;
    at += (size_t)snprintf(fake_text + at, sizeof fake_text - at, "%s%d", at ? "," : "", id);
    if (last > id) at += (size_t)snprintf(fake_text + at, sizeof fake_text - at, "-%d", last);
    id = last;
  }
  snprintf(fake_text + at, sizeof fake_text - at, "\n");
  return fake_text;
}

static const fake_machine_t *fake;
static bool fake_online(int node, const void *arg) {
  (void)arg;
  return fake->online == NULL || fake->online(node);
}
static bool fake_memory(int node, const void *arg) {
  return fake_online(node, arg) && fake->has_memory(node);
}
static bool fake_cpu_of(int cpu, const void *node) {
  return fake->cpu_node(cpu) == *(const int *)node;
}
static bool fake_present(int cpu, const void *arg) {
  (void)cpu, (void)arg;
  return true;
}

static void fake_write(const fake_machine_t *m) {
  fake = m;
  strcpy(fake_root, "/tmp/numalloc-topology-XXXXXX");
  ck_assert(mkdtemp(fake_root) != NULL);
  fake_file("sys/devices/system/cpu/present", fake_list(m->cpus, fake_present, NULL));
  fake_file("sys/devices/system/node/online", fake_list(m->span, fake_online, NULL));
  fake_file("sys/devices/system/node/has_memory", fake_list(m->span, fake_memory, NULL));
  char status[4096];
  snprintf(status, sizeof status, "Name:\tcheck_topology\nMems_allowed_list:\t%s",
           fake_list(m->span, fake_online, NULL));
  fake_file("proc/self/status", status);
  for (int node = 0; node < m->span; node++) {
    if (!fake_online(node, NULL)) continue;
    char file[128], text[64];
    snprintf(file, sizeof file, "sys/devices/system/node/node%d/cpulist", node);
    fake_file(file, fake_list(m->cpus, fake_cpu_of, &node));
    snprintf(file, sizeof file, "sys/devices/system/node/node%d/meminfo", node);
    snprintf(text, sizeof text, "Node %d MemTotal:       %d kB\n", node,
             m->has_memory(node) ? 1048576 : 0);
    fake_file(file, text);
    size_t at = 0;
    for (int other = 0; other < m->span; other++)
      if (fake_online(other, NULL))
        at += (size_t)snprintf(fake_text + at, sizeof fake_text - at, "%s%d", at ? " " : "",
                               m->distance(node, other));
    snprintf(fake_text + at, sizeof fake_text - at, "\n");
    snprintf(file, sizeof file, "sys/devices/system/node/node%d/distance", node);
    fake_file(file, fake_text);
  }
  na_topology_set_root(fake_root);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void fake_remove(void) {
  na_topology_set_root(NULL);
  nftw(fake_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* What was read equals what derive makes of the same machine built in memory (topo). */
static void expect_read_as_built(void) {
  const na_topology_t *t = &na_topology;
  ck_assert_int_eq(t->node_count, topo.node_count);
  ck_assert_int_eq(t->cpu_count, topo.cpu_count);
  ck_assert_uint_eq(t->has_memory[0], topo.has_memory[0]);
  ck_assert_uint_eq(t->has_cpus[0], topo.has_cpus[0]);
  ck_assert_uint_eq(t->allowed[0], topo.allowed[0]);
  ck_assert_uint_eq(t->usable[0], topo.usable[0]);
  ck_assert_int_eq(memcmp(t->distance, topo.distance, sizeof t->distance), 0);
  /* entries from cpu_count up are never read */
  ck_assert_int_eq(memcmp(t->cpu_node, topo.cpu_node, (size_t)t->cpu_count * sizeof t->cpu_node[0]),
                   0);
  ck_assert_int_eq(memcmp(t->nearest_usable, topo.nearest_usable, sizeof t->nearest_usable), 0);
  ck_assert_int_eq(memcmp(t->fallback_order, topo.fallback_order, sizeof t->fallback_order), 0);
}

/* numalloc reads the fake machine from sysfs, and says nothing about it. */
static void read_quietly(const fake_machine_t *m) {
  fake_write(m);
  unit_capture_start();
  na_topology_init();
  const char *err = unit_capture_stop();
  fake_remove();
  ck_assert_str_eq(err, "");
}

static bool all_memory(int node) {
  (void)node;
  return true;
}

START_TEST(sub_numa_machine_read_from_sysfs) {
  const fake_machine_t m = {SNC_NODES, NULL, SNC_CPUS, snc_cpu_node, snc_distance, all_memory};
  read_quietly(&m);
  big_make(SNC_NODES, SNC_CPUS, 0xffffffff, snc_cpu_node, snc_distance);
  na_topology_derive(&topo);
  expect_read_as_built();
  expect_cpu_nodes(SNC_CPUS, snc_cpu_node, 0);
}
END_TEST

/* One node: the short reading of a one-node machine leaves its CPU, distance and memory
 * files unread, and maps every CPU to node 0, as a full reading does; under
 * NUMALLOC_VERBOSE, which prints them, it reads the CPU count and the node's size too. */
static int node_zero(int cpu) {
  (void)cpu;
  return 0;
}
static int self_distance(int a, int b) { return a == b ? 10 : 20; }

START_TEST(one_node_machine_read_from_sysfs) {
  const fake_machine_t m = {1, NULL, 12, node_zero, self_distance, all_memory};
  big_make(1, 12, 0x1, node_zero, self_distance);
  na_topology_derive(&topo);
  bool verbose = na_options.verbose;
  na_options.verbose = false;
  read_quietly(&m);
  ck_assert_int_eq(na_topology.node_count, 1);
  ck_assert_int_eq(na_topology.cpu_count, 1);
  ck_assert_uint_eq(na_topology.usable[0], topo.usable[0]);
  for (int cpu = 0; cpu < 12; cpu++) ck_assert_int_eq(na_topology_cpu_node(cpu), 0);
  ck_assert_uint_eq(na_topology.memory_bytes[0], 0);
  na_options.verbose = true;
  read_quietly(&m);
  na_options.verbose = verbose;
  expect_read_as_built();
  ck_assert_uint_eq(na_topology.memory_bytes[0], (size_t)1 << 30);
}
END_TEST

/* NUMALLOC_POLICY=weighted without weights takes the kernel's weighted-interleave table
 * (here node 0: 3, node 1: 1; node 2 has no file and counts as 1), read with the topology. */
static int three_nodes_cpu(int cpu) { return cpu % 3; }

START_TEST(weighted_takes_the_kernels_weights) {
  int policy;
  ck_assert(na_parse_policy("weighted", &policy));
  ck_assert_int_eq(policy, NUMALLOC_POLICY_WEIGHTED);
  ck_assert(na_options.weights_from_kernel);
  const fake_machine_t m = {3, NULL, 6, three_nodes_cpu, self_distance, all_memory};
  fake_write(&m);
  fake_file("sys/kernel/mm/mempolicy/weighted_interleave/node0", "3\n");
  fake_file("sys/kernel/mm/mempolicy/weighted_interleave/node1", "1\n");
  unit_capture_start();
  na_topology_init();
  const char *err = unit_capture_stop();
  fake_remove();
  ck_assert_str_eq(err, "");
  ck_assert_uint_eq(na_topology.kernel_weight[0], 3);
  ck_assert_uint_eq(na_topology.kernel_weight[1], 1);
  ck_assert_uint_eq(na_topology.kernel_weight[2], 0);
  na_options.policy = policy;
  na_policy_init();
  uint32_t turn = 0;
  int count[3] = {0};
  for (int i = 0; i < 500; i++) count[na_policy_spread_next(&turn)]++;
  ck_assert_int_eq(count[0], 300);
  ck_assert_int_eq(count[1], 100);
  ck_assert_int_eq(count[2], 100);
  /* weights of its own: the kernel's are not read */
  ck_assert(na_parse_policy("weighted:0=1,1=1,2=2", &policy));
  ck_assert(!na_options.weights_from_kernel);
  na_policy_init();
  for (int i = 0; i < 3; i++) count[i] = 0;
  for (int i = 0; i < 400; i++) count[na_policy_spread_next(&turn)]++;
  ck_assert_int_eq(count[2], 200);
}
END_TEST

static bool cpu_nodes_have_memory_too(int node) { return node < CXL_NODES; }

START_TEST(cxl_machine_read_from_sysfs) {
  const fake_machine_t m = {CXL_NODES,    NULL,         CXL_CPUS,
                            cxl_cpu_node, cxl_distance, cpu_nodes_have_memory_too};
  read_quietly(&m);
  big_make(CXL_NODES, CXL_CPUS, 0xff, cxl_cpu_node, cxl_distance);
  na_topology_derive(&topo);
  expect_read_as_built();
  for (int n = 0; n < CXL_NODES; n++)
    ck_assert_uint_eq(na_topology.memory_bytes[n], (size_t)1 << 30);
}
END_TEST

/* 8,192 CPUs, node ids 0-63 and 72-79 online: the nodes past the cap each carry 128 CPUs and
 * lie 15 from node 8k+3 and 17 from node 8k+4 below it (k = id - 72), 30 from the others. */
enum { WIDE_SPAN = 80, WIDE_CPUS = 8192, WIDE_LOW_CPUS = 64 * 112 };
static bool wide_online(int node) { return node < 64 || node >= 72; }
static int wide_cpu_node(int cpu) {
  return cpu < WIDE_LOW_CPUS ? cpu / 112 : 72 + (cpu - WIDE_LOW_CPUS) / 128;
}
static int wide_distance(int a, int b) {
  if (a == b) return 10;
  if ((a < 64) == (b < 64)) return 20;
  int high = a < 64 ? b : a, low = a < 64 ? a : b, k = high - 72;
  return low == 8 * k + 3 ? 15 : low == 8 * k + 4 ? 17 : 30;
}
static int wide_expected(int cpu, int offset) {
  return cpu < WIDE_LOW_CPUS ? cpu / 112 : 8 * ((cpu - WIDE_LOW_CPUS) / 128) + 3 + offset;
}
static int wide_nearest(int cpu) { return wide_expected(cpu, 0); }
static int wide_second(int cpu) { return wide_expected(cpu, 1); }

START_TEST(nodes_past_the_cap_map_to_the_nearest) {
  const fake_machine_t m = {WIDE_SPAN,     wide_online,   WIDE_CPUS,
                            wide_cpu_node, wide_distance, all_memory};
  fake_write(&m);
  unit_capture_start();
  na_topology_init();
  const char *first = unit_capture_stop();
  ck_assert_msg(unit_count_lines_with(first, "numalloc: warning: NUMA nodes 64 to 79 are above "
                                             "the 64 numalloc can use") == 1 &&
                    unit_count_lines_with(first, "") == 1,
                "stderr: [%s]", first);
  ck_assert_int_eq(na_topology.node_count, NA_MAX_NODES);
  ck_assert_int_eq(na_topology.cpu_count, WIDE_CPUS);
  ck_assert_uint_eq(na_topology.usable[0], ~(uint64_t)0);
  ck_assert_uint_eq(na_topology.has_cpus[0], ~(uint64_t)0);
  ck_assert_int_eq(na_topology.distance[3][3], 10);
  ck_assert_int_eq(na_topology.distance[63][0], 20);
  expect_cpu_nodes(WIDE_CPUS, wide_nearest, 0);
  /* Read again (numalloc_collect): the same, and not said again. */
  unit_capture_start();
  na_topology_init();
  ck_assert_str_eq(unit_capture_stop(), "");
  expect_cpu_nodes(WIDE_CPUS, wide_nearest, 0);
  /* NUMALLOC_NODES without the nearest nodes: the next nearest usable one. */
  na_options.nodes_set = true;
  na_options.nodes_mask[0] = ~(uint64_t)0x0808080808080808;
  na_options.nodes_text = "all but 3,11,...,59";
  unit_capture_start();
  na_topology_init();
  ck_assert_str_eq(unit_capture_stop(), "");
  fake_remove();
  for (int c = WIDE_LOW_CPUS; c < WIDE_CPUS; c++)
    UNIT_REQUIRE(na_topology.cpu_node[c] == wide_second(c), "cpu %d -> %d", c,
                 na_topology.cpu_node[c]);
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
  for (int c = 0; c < t->cpu_count && c < NA_MAX_CPUS; c++)
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
  tcase_add_test(tc, sub_numa_4096_cpus_over_32_nodes);
  tcase_add_test(tc, memory_only_cxl_nodes);
  tc = unit_tcase(s, "machine", 10);
  tcase_add_test(tc, this_machine_matches_sysfs);
  tcase_add_test(tc, reading_again_replaces_an_old_reading);
  tcase_add_test(tc, reading_again_is_quiet);
  tcase_add_test(tc, lookups_during_reading_again);
  tc = unit_tcase(s, "synthetic sysfs", 30);
  tcase_add_test(tc, one_node_machine_read_from_sysfs);
  tcase_add_test(tc, sub_numa_machine_read_from_sysfs);
  tcase_add_test(tc, cxl_machine_read_from_sysfs);
  tcase_add_test(tc, weighted_takes_the_kernels_weights);
  tcase_add_test(tc, nodes_past_the_cap_map_to_the_nearest);
  return unit_run(s, argv);
}
