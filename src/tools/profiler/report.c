/* report.c: turns counters into the per-vCPU and per-node tables. A node's row adds up the
 * misses of its own CPUs; "remote" is the share of those misses served by any other node, and
 * the memory time prices each miss by the distance between the two nodes. */
#include "report.h"

#include <inttypes.h>
#include <string.h>

static const char *scope_text(np_scope_t scope) {
  return scope == NP_SCOPE_MARKERS ? "between the program's NUMALLOC_PROFILE_START/STOP markers"
                                   : "of the whole command";
}

double np_memory_ns(const np_model_t *m, int from, const np_counts_t *c) {
  double ns = 0;
  for (int n = 0; n < m->nodes; n++) ns += (double)c->served[n] * np_latency(m, from, n);
  return ns;
}

static void add(np_counts_t *sum, const np_counts_t *c) {
  sum->accesses += c->accesses;
  sum->misses += c->misses;
  sum->other += c->other;
  for (int n = 0; n < NP_MAX_NODES; n++) sum->served[n] += c->served[n];
}

/* Share of c's misses served by nodes other than `home`, in percent; -1 without misses. */
static double remote_pct(const np_model_t *m, int home, const np_counts_t *c) {
  uint64_t served = 0;
  for (int n = 0; n < m->nodes; n++) served += c->served[n];
  return served ? 100.0 * (double)(served - c->served[home]) / (double)served : -1;
}

static double pct(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * (double)part / (double)whole : 0;
}

/* A node's row: the sum over its CPUs, and the memory time priced from that node. */
static void node_sum(const np_model_t *m, const np_counts_t *cpu, int node, np_counts_t *sum) {
  memset(sum, 0, sizeof *sum);
  for (int i = 0; i < m->cpus; i++)
    if (m->cpu_node[i] == node) add(sum, &cpu[i]);
}

static void text_row(FILE *f, const np_model_t *m, const char *label, int home,
                     const np_counts_t *c, double ns) {
  double r = remote_pct(m, home, c);
  fprintf(f, "numaprof: %-9s %14" PRIu64 " %12" PRIu64 " %6.2f ", label, c->accesses, c->misses,
          pct(c->misses, c->accesses));
  if (r < 0)
    fprintf(f, "%8s", "-");
  else
    fprintf(f, "%7.1f%%", r);
  for (int n = 0; n < m->nodes; n++) fprintf(f, " %6.1f", pct(c->served[n], c->misses));
  fprintf(f, " %11.2f\n", ns / 1e6);
}

void np_report_text(FILE *f, const np_model_t *m, const np_counts_t *cpu, np_scope_t scope) {
  char label[32];
  np_counts_t sum, all;
  memset(&all, 0, sizeof all);
  if (m->layout_error[0])
    fprintf(f, "numaprof: ERROR: memory layout not verified: %s; node figures are unreliable\n",
            m->layout_error);
  fprintf(f, "numaprof: user-space memory accesses %s\n", scope_text(scope));
  fprintf(f,
          "numaprof: last-level cache per node: %" PRIu64 " KiB, %u-way, %u-byte lines; "
          "a miss costs %.0f ns x distance / 10\n",
          m->llc_bytes >> 10, m->llc_ways, m->line_bytes, m->latency_ns);
  if (!m->layout_error[0])
    fprintf(f,
            "numaprof: QEMU reports %s addresses (checked on %" PRIu64 " pages bound to the "
            "nodes)\n",
            m->layout[m->layout_used].name, m->verified_pages);
  fprintf(f, "numaprof: %-9s %14s %12s %6s %8s", "", "accesses", "LLC misses", "miss%", "remote");
  for (int n = 0; n < m->nodes; n++) fprintf(f, " node%-2d", n);
  fprintf(f, " %11s\n", "memory ms");
  for (int i = 0; i < m->cpus; i++) {
    snprintf(label, sizeof label, "cpu %d/n%d", i, m->cpu_node[i]);
    text_row(f, m, label, m->cpu_node[i], &cpu[i], np_memory_ns(m, m->cpu_node[i], &cpu[i]));
    add(&all, &cpu[i]);
  }
  double total_ns = 0;
  for (int n = 0; n < m->nodes; n++) {
    if (!np_node_has_cpus(m, n)) continue;
    node_sum(m, cpu, n, &sum);
    double ns = np_memory_ns(m, n, &sum);
    total_ns += ns;
    snprintf(label, sizeof label, "node %d", n);
    text_row(f, m, label, n, &sum, ns);
  }
  /* "remote" of the whole run: misses served away from the node of the CPU that missed. */
  uint64_t remote = 0;
  for (int i = 0; i < m->cpus; i++)
    for (int n = 0; n < m->nodes; n++)
      if (n != m->cpu_node[i]) remote += cpu[i].served[n];
  fprintf(f,
          "numaprof: all: %" PRIu64 " accesses, %" PRIu64 " misses, %.1f%% remote, "
          "memory %.2f ms",
          all.accesses, all.misses, pct(remote, all.misses), total_ns / 1e6);
  if (all.other) fprintf(f, ", %" PRIu64 " accesses to devices or outside RAM", all.other);
  fprintf(f, "\n");
}

static void json_counts(FILE *f, const np_model_t *m, int home, const np_counts_t *c, double ns) {
  double r = remote_pct(m, home, c);
  fprintf(f,
          "\"accesses\": %" PRIu64 ", \"misses\": %" PRIu64 ", \"other\": %" PRIu64
          ", \"served\": [",
          c->accesses, c->misses, c->other);
  for (int n = 0; n < m->nodes; n++) fprintf(f, "%s%" PRIu64, n ? ", " : "", c->served[n]);
  fprintf(f, "], \"served_pct\": [");
  for (int n = 0; n < m->nodes; n++)
    fprintf(f, "%s%.3f", n ? ", " : "", pct(c->served[n], c->misses));
  if (r < 0)
    fprintf(f, "], \"remote_pct\": null");
  else
    fprintf(f, "], \"remote_pct\": %.3f", r);
  fprintf(f, ", \"memory_ms\": %.4f", ns / 1e6);
}

void np_report_json(FILE *f, const np_model_t *m, const np_counts_t *cpu, np_scope_t scope) {
  np_counts_t sum, all;
  memset(&all, 0, sizeof all);
  fprintf(f, "{\n  \"scope\": \"%s\",\n", scope == NP_SCOPE_MARKERS ? "markers" : "command");
  fprintf(f,
          "  \"llc\": {\"bytes\": %" PRIu64 ", \"ways\": %u, \"line\": %u, \"per\": \"node\"},\n",
          m->llc_bytes, m->llc_ways, m->line_bytes);
  fprintf(f, "  \"latency_ns_at_distance_10\": %g,\n", m->latency_ns);
  if (m->layout_error[0])
    fprintf(f,
            "  \"layout\": {\"reported\": null, \"verified_pages\": %" PRIu64
            ", \"error\": \"%s\"},\n",
            m->verified_pages, m->layout_error);
  else
    fprintf(f,
            "  \"layout\": {\"reported\": \"%s\", \"verified_pages\": %" PRIu64
            ", \"error\": null},\n",
            m->layout[m->layout_used].name, m->verified_pages);
  fprintf(f, "  \"cpus\": [\n");
  double max_cpu_ns = 0;
  for (int i = 0; i < m->cpus; i++) {
    double ns = np_memory_ns(m, m->cpu_node[i], &cpu[i]);
    if (ns > max_cpu_ns) max_cpu_ns = ns;
    fprintf(f, "    {\"cpu\": %d, \"node\": %d, ", i, m->cpu_node[i]);
    json_counts(f, m, m->cpu_node[i], &cpu[i], ns);
    fprintf(f, "}%s\n", i + 1 < m->cpus ? "," : "");
    add(&all, &cpu[i]);
  }
  fprintf(f, "  ],\n  \"nodes\": [\n");
  double total_ns = 0;
  for (int n = 0; n < m->nodes; n++) {
    node_sum(m, cpu, n, &sum);
    double ns = np_memory_ns(m, n, &sum);
    total_ns += ns;
    fprintf(f, "    {\"node\": %d, \"cpus\": [", n);
    for (int i = 0, first = 1; i < m->cpus; i++)
      if (m->cpu_node[i] == n) fprintf(f, "%s%d", first ? "" : ", ", i), first = 0;
    fprintf(f, "], \"memory\": [");
    const np_layout_t *l = &m->layout[NP_LAYOUT_PHYS];
    for (int r = 0, first = 1; r < l->ranges; r++)
      if (l->range[r].node == n)
        fprintf(f, "%s[%" PRIu64 ", %" PRIu64 "]", first ? "" : ", ", l->range[r].start,
                l->range[r].end),
            first = 0;
    fprintf(f, "], \"distance\": [");
    for (int j = 0; j < m->nodes; j++) fprintf(f, "%s%u", j ? ", " : "", m->dist[n][j]);
    fprintf(f, "], ");
    json_counts(f, m, n, &sum, ns);
    fprintf(f, "}%s\n", n + 1 < m->nodes ? "," : "");
  }
  uint64_t remote = 0;
  for (int i = 0; i < m->cpus; i++)
    for (int n = 0; n < m->nodes; n++)
      if (n != m->cpu_node[i]) remote += cpu[i].served[n];
  fprintf(f,
          "  ],\n  \"total\": {\"accesses\": %" PRIu64 ", \"misses\": %" PRIu64
          ", \"other\": %" PRIu64 ", \"remote_pct\": %.3f, \"memory_ms\": %.4f, "
          "\"max_cpu_memory_ms\": %.4f}\n}\n",
          all.accesses, all.misses, all.other, pct(remote, all.misses), total_ns / 1e6,
          max_cpu_ns / 1e6);
}
