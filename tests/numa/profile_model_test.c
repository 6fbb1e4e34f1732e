/* profile_model_test.c: the profiler's model without QEMU: argument parsing and its errors,
 * the node of an address in each layout, the latency model, the simulated cache's hits,
 * misses and LRU replacement, and the report's figures. Runs on the host. */
#define _GNU_SOURCE
#include "llc.h"
#include "model.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    checks++;                                                                                      \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

static np_model_t model;
static char err[256];

/* Parses a blank-separated argument string. */
static int parse(const char *args, int expect_cpus) {
  static char buf[4096];
  char *argv[64];
  int argc = 0;
  snprintf(buf, sizeof buf, "%s", args);
  for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) argv[argc++] = t;
  err[0] = '\0';
  return np_model_parse(&model, argc, argv, expect_cpus, err, sizeof err);
}

#define TWO_NODES "nodes=2 cpus=0:1 dist=10:21:21:10 mem=0:0-0x10000000 mem=1:0x10000000-0x20000000"

static void test_parse_two_nodes(void) {
  CHECK(parse(TWO_NODES " ramblock=1:0x20000000-0x30000000 ramblock=0:0-0x10000000", 2) == 0);
  CHECK(model.nodes == 2 && model.cpus == 2 && model.cpu_node[1] == 1);
  CHECK(model.llc_bytes == 1 << 20 && model.llc_ways == 16 && model.line_bytes == 64);
  CHECK(model.latency_ns == 90 && model.json_path == NULL);
  const np_layout_t *phys = &model.layout[NP_LAYOUT_PHYS], *rb = &model.layout[NP_LAYOUT_RAMBLOCK];
  CHECK(np_node_of(phys, 0) == 0 && np_node_of(phys, 0xfffffff) == 0);
  CHECK(np_node_of(phys, 0x10000000) == 1 && np_node_of(phys, 0x1fffffff) == 1);
  CHECK(np_node_of(phys, 0x20000000) == -1);
  /* ranges given out of order are sorted, and the gap between them belongs to no node */
  CHECK(rb->range[0].start == 0 && np_node_of(rb, 0x28000000) == 1);
  CHECK(np_node_of(rb, 0x18000000) == -1);
  /* the dense offset skips the gap: the ranges' RAM one after the other */
  uint64_t dense = 0;
  CHECK(np_locate(rb, 0x20000040, &dense) == 1 && dense == 0x10000040);
  CHECK(np_locate(phys, 0x1fffffff, &dense) == 1 && dense == 0x1fffffff);
  CHECK(rb->bytes == 0x20000000 && phys->bytes == 0x20000000);
  CHECK(np_latency(&model, 0, 0) == 90 && np_latency(&model, 0, 1) == 189);
}

static void test_parse_options(void) {
  CHECK(parse(TWO_NODES " llc=8M ways=8 line=128 latency=100.5 json=/tmp/x.json", -1) == 0);
  CHECK(model.llc_bytes == 8 << 20 && model.llc_ways == 8 && model.line_bytes == 128);
  CHECK(model.latency_ns == 100.5 && strcmp(model.json_path, "/tmp/x.json") == 0);
  CHECK(parse(TWO_NODES " llc=48K ways=12", -1) == 0); /* 64 sets of 12 ways */
}

/* Every bad argument fails with a reason naming it. */
static void test_parse_errors(void) {
  struct {
    const char *args;
    const char *reason;
  } bad[] = {
      {"cpus=0 dist=10 mem=0:0-1", "nodes= is missing"},
      {"nodes=1 dist=10 mem=0:0-1", "cpus= is missing"},
      {TWO_NODES " bogus=1", "unknown argument 'bogus'"},
      {TWO_NODES " oops", "not KEY=VALUE"},
      {"nodes=2 cpus=0:2 dist=10:21:21:10 mem=0:0-1 mem=1:1-2", "vCPU 1 on node 2"},
      {"nodes=2 cpus=0:1 dist=10:21:21:10 mem=0:0-1", "node 1 has no range"},
      {"nodes=2 cpus=0:1 dist=10:21:21:10 mem=0:0-8 mem=1:4-9", "overlap"},
      {"nodes=2 cpus=0:1 dist=10:21:21:10 mem=0:5-5 mem=1:6-7", "bad mem=0:5-5"},
      {"nodes=2 cpus=0:1 dist=10:21:21 mem=0:0-1 mem=1:1-2", "3 entries, want 4"},
      {"nodes=2 cpus=0:1 dist=10:21:21:11 mem=0:0-1 mem=1:1-2", "distance 11 from node 1 to 1"},
      {"nodes=2 cpus=0:1 dist=10:10:21:10 mem=0:0-1 mem=1:1-2", "distance 10 from node 0 to 1"},
      {TWO_NODES " llc=1X", "bad llc=1X"},
      {TWO_NODES " llc=1000", "not a whole number"},
      {TWO_NODES " line=48", "bad line=48"},
      {TWO_NODES " ways=0", "bad ways=0"},
      {TWO_NODES " latency=-3", "bad latency=-3"},
      {"nodes=65", "bad nodes=65"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = parse(bad[i].args, -1);
    CHECK(rc == -1);
    if (!strstr(err, bad[i].reason))
      fprintf(stderr, "'%s': got '%s', want '%s'\n", bad[i].args, err, bad[i].reason), failures++;
  }
  CHECK(parse(TWO_NODES, 4) == -1 && strstr(err, "names 2 vCPUs, the machine has 4"));
}

/* A load: the line's write count stays as it is (0 here: nothing writes). */
static bool load(np_llc_t *c, uint64_t pa) { return np_llc_access(c, pa, 0, 0); }

static void test_llc_hits_and_misses(void) {
  np_llc_t c;
  /* 4 sets of 2 ways of 64-byte lines: 512 bytes */
  CHECK(np_llc_init(&c, 512, 2, 64, false) == 0);
  CHECK(c.sets == 4);
  CHECK(load(&c, 0x1000));  /* cold miss */
  CHECK(!load(&c, 0x1008)); /* same line */
  CHECK(!load(&c, 0x103f));
  CHECK(load(&c, 0x1040)); /* next line, next set */
  /* set 0 holds two lines; a third evicts the least recently used */
  CHECK(load(&c, 0x1100));  /* set 0 again (4 sets x 64 = 256-byte stride) */
  CHECK(!load(&c, 0x1000)); /* 0x1000 is now the most recent in set 0 */
  CHECK(load(&c, 0x1200));  /* evicts 0x1100, the least recent */
  CHECK(!load(&c, 0x1000));
  CHECK(load(&c, 0x1100));
  np_llc_destroy(&c);
}

/* A working set that fits stays resident; one twice the size misses on every access. */
static void test_llc_capacity(void) {
  np_llc_t c;
  CHECK(np_llc_init(&c, 64 << 10, 16, 64, true) == 0);
  for (uint64_t a = 0; a < (64 << 10); a += 64) load(&c, a);
  int misses = 0;
  for (uint64_t a = 0; a < (64 << 10); a += 64) misses += load(&c, a);
  CHECK(misses == 0);
  for (int pass = 0; pass < 2; pass++)
    for (uint64_t a = 1 << 20; a < (1 << 20) + (128 << 10); a += 64) misses += load(&c, a);
  CHECK(misses == 2 * (128 << 10) / 64);
  np_llc_destroy(&c);
  /* a set count that is not a power of two still indexes every set */
  CHECK(np_llc_init(&c, 3 * 64, 1, 64, false) == 0 && c.sets == 3);
  for (uint64_t a = 0; a < 3 * 64; a += 64) load(&c, a);
  misses = 0;
  for (uint64_t a = 0; a < 3 * 64; a += 64) misses += load(&c, a);
  CHECK(misses == 0);
  np_llc_destroy(&c);
}

/* One access through the directory, as the plugin makes it. */
static bool access_line(np_llc_t *c, np_directory_t *d, uint64_t pa, bool store) {
  unsigned now = np_directory_count(d, pa / 64);
  bool miss = np_llc_access(c, pa, now, store ? now + 1 : now);
  if (store) np_directory_set(d, pa / 64, now + 1);
  return miss;
}

/* A store on one node leaves the other nodes' copies stale: their next access misses. */
static void test_llc_coherence(void) {
  np_llc_t a, b;
  np_directory_t d;
  CHECK(np_llc_init(&a, 4096, 4, 64, false) == 0 && np_llc_init(&b, 4096, 4, 64, false) == 0);
  CHECK(np_directory_init(&d, 1024) == 0);
  CHECK(access_line(&a, &d, 0x100, false)); /* cold in both */
  CHECK(access_line(&b, &d, 0x108, false));
  CHECK(!access_line(&a, &d, 0x100, false)); /* both hold it */
  CHECK(!access_line(&b, &d, 0x110, true));  /* b writes its own copy: a hit */
  CHECK(!access_line(&b, &d, 0x100, false)); /* and keeps it */
  CHECK(access_line(&a, &d, 0x100, false));  /* a's copy went stale */
  CHECK(!access_line(&a, &d, 0x100, false));
  CHECK(!access_line(&b, &d, 0x100, false)); /* reading does not invalidate */
  CHECK(access_line(&a, &d, 0x140, true));   /* another line: a cold store misses */
  CHECK(access_line(&b, &d, 0x140, false));
  /* 255 more stores by a: b's copy stays stale until the count wraps */
  for (int i = 0; i < 255; i++) access_line(&a, &d, 0x140, true);
  CHECK(np_directory_count(&d, 0x140 / 64) == 0);
  CHECK(np_directory_count(&d, 5000) == 0); /* beyond the directory: no count */
  np_directory_set(&d, 5000, 3);
  np_llc_destroy(&a);
  np_llc_destroy(&b);
  np_directory_destroy(&d);
}

static char *report(bool json, const np_counts_t *cpu) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (json)
    np_report_json(f, &model, cpu, NP_SCOPE_MARKERS);
  else
    np_report_text(f, &model, cpu, NP_SCOPE_COMMAND);
  fclose(f);
  return text;
}

/* cpu 0 (node 0): 100 misses, 25 served by node 1; cpu 1 (node 1): no misses. */
static void test_report(void) {
  CHECK(parse(TWO_NODES, 2) == 0);
  model.layout_used = NP_LAYOUT_PHYS;
  model.verified_pages = 32;
  np_counts_t cpu[2] = {{.accesses = 1000, .misses = 100, .served = {75, 25}}, {.accesses = 7}};
  CHECK(np_memory_ns(&model, 0, &cpu[0]) == 75 * 90 + 25 * 189.0);
  char *t = report(false, cpu);
  CHECK(strstr(t, "of the whole command") && strstr(t, "guest-physical addresses"));
  CHECK(
      strstr(t, "cpu 0/n0            1000          100  10.00    25.0%   75.0   25.0        0.01"));
  CHECK(strstr(t, "cpu 1/n1               7            0   0.00        -"));
  CHECK(strstr(t, "all: 1007 accesses, 100 misses, 25.0% remote"));
  CHECK(!strstr(t, "ERROR"));
  free(t);
  char *j = report(true, cpu);
  CHECK(strstr(j, "\"scope\": \"markers\""));
  CHECK(strstr(j, "\"layout\": {\"reported\": \"guest-physical\", \"verified_pages\": 32"));
  CHECK(strstr(j,
               "\"cpu\": 0, \"node\": 0, \"accesses\": 1000, \"misses\": 100, \"other\": 0, "
               "\"served\": [75, 25], \"served_pct\": [75.000, 25.000], \"remote_pct\": 25.000"));
  CHECK(strstr(j, "\"remote_pct\": null"));
  CHECK(strstr(j, "\"memory\": [[268435456, 536870912]]"));
  CHECK(strstr(j, "\"max_cpu_memory_ms\": 0.0115"));
  free(j);
  snprintf(model.layout_error, sizeof model.layout_error, "no calibration");
  t = report(false, cpu);
  CHECK(strstr(t, "ERROR: memory layout not verified: no calibration"));
  free(t);
}

int main(void) {
  test_parse_two_nodes();
  test_parse_options();
  test_parse_errors();
  test_llc_hits_and_misses();
  test_llc_capacity();
  test_llc_coherence();
  test_report();
  printf("profile_model_test: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
