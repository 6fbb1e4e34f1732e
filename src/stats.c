/* stats.c: statistics. Threads count into their own record (plain counters, nothing shared);
 * a report merges the exited threads' totals with every live thread's counters, and one
 * printer writes it as text or JSON. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t merged_lock = PTHREAD_MUTEX_INITIALIZER;
static na_node_stats_t merged[NA_ARENA_COUNT];

#define VERIFY_SAMPLES 8

void na_stats_verify(int arena_index, const void *addr, size_t size) {
  na_tld_t *tld = na_tld_peek();
  if (tld == NULL || arena_index >= NA_MAX_NODES) return; /* no single node promised */
  void *pages[VERIFY_SAMPLES];
  int nodes[VERIFY_SAMPLES];
  size_t count = size / NA_PAGE_SIZE < VERIFY_SAMPLES ? size / NA_PAGE_SIZE : VERIFY_SAMPLES;
  if (count == 0) count = 1;
  for (size_t i = 0; i < count; i++)
    pages[i] = (void *)(((uintptr_t)addr + i * (size / count)) & ~(uintptr_t)(NA_PAGE_SIZE - 1));
  if (!na_os_page_nodes(pages, nodes, count)) return;
  for (size_t i = 0; i < count; i++) {
    if (nodes[i] < 0) continue; /* not touched: nothing placed yet */
    tld->stats[arena_index].verified_pages++;
    if (nodes[i] != arena_index) tld->stats[arena_index].misplaced_pages++;
  }
}

/* A thread without a record (exiting, or a background purger) counts straight into the
 * merged totals: rare, and off every fast path. */
void na_stats_count_purge(int arena_index, size_t bytes) {
  na_tld_t *tld = na_tld_peek();
  if (tld != NULL) {
    tld->stats[arena_index].purge_calls++;
    tld->stats[arena_index].purged_bytes += (int64_t)bytes;
    return;
  }
  pthread_mutex_lock(&merged_lock);
  merged[arena_index].purge_calls++;
  merged[arena_index].purged_bytes += (int64_t)bytes;
  pthread_mutex_unlock(&merged_lock);
}

static void add_stats(na_node_stats_t *into, const na_node_stats_t *from) {
#define NA_STAT_ADD(name, text) into->name += from->name;
  NA_STAT_FIELDS(NA_STAT_ADD)
#undef NA_STAT_ADD
}

void na_stats_merge_thread(struct na_tld_s *tld) {
  pthread_mutex_lock(&merged_lock);
  for (int i = 0; i < NA_ARENA_COUNT; i++) add_stats(&merged[i], &tld->stats[i]);
  pthread_mutex_unlock(&merged_lock);
  memset(tld->stats, 0, sizeof tld->stats);
}

static void add_live(struct na_tld_s *tld, void *arg) {
  na_node_stats_t *total = arg;
  for (int i = 0; i < NA_ARENA_COUNT; i++) add_stats(&total[i], &tld->stats[i]);
}

static void snapshot(na_node_stats_t *total) {
  na_tld_t *self = na_tld_peek();
  for (int i = 0; self != NULL && i < NA_ARENA_COUNT; i++)
    if (self->heaps[i] != NULL) na_heap_account(self->heaps[i]);
  pthread_mutex_lock(&merged_lock);
  memcpy(total, merged, sizeof merged);
  pthread_mutex_unlock(&merged_lock);
  na_thread_foreach(add_live, total);
}

static double mib(double bytes) { return bytes / (double)NA_MiB; }

static double percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

static double remote_pct(const na_node_stats_t *total) {
  int64_t local = 0, remote = 0;
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    local += total[i].local_count;
    remote += total[i].remote_count;
  }
  return percent(remote, local + remote);
}

static void json_node(FILE *out, const char *name, int arena, const na_node_stats_t *s) {
  fprintf(out,
          "  \"%s\": {\"allocated_mb\": %.1f, \"local_pct\": %.1f, \"live_mb\": %.1f, "
          "\"mapped_mb\": %.1f, \"peak_mapped_mb\": %.1f",
          name, mib((double)s->alloc_bytes),
          percent(s->local_count, s->local_count + s->remote_count),
          mib((double)na_arena_live_bytes(arena)), mib((double)na_arena_mapped_bytes(arena)),
          mib((double)na_arena_peak_mapped_bytes(arena)));
#define NA_STAT_JSON(field, text) fprintf(out, ", \"" #field "\": %lld", (long long)s->field);
  NA_STAT_FIELDS(NA_STAT_JSON)
#undef NA_STAT_JSON
  fprintf(out, "},\n");
}

static void json_topology(FILE *out) {
  const na_topology_t *t = &na_topology;
  fprintf(out, "  \"topology\": {\"nodes\": %d, \"usable\": [", t->node_count);
  for (int i = 0; i < t->usable_count; i++) fprintf(out, "%s%d", i ? ", " : "", t->usable_list[i]);
  fprintf(out, "], \"distances\": [");
  for (int a = 0; a < t->node_count; a++) {
    fprintf(out, "%s[", a ? ", " : "");
    for (int b = 0; b < t->node_count; b++) fprintf(out, "%s%d", b ? ", " : "", t->distance[a][b]);
    fprintf(out, "]");
  }
  fprintf(out, "]},\n");
}

/* Live threads, each with its own totals (exited threads are in the node totals only). */
typedef struct thread_json {
  FILE *out;
  int index;
} thread_json_t;

static void json_thread(struct na_tld_s *tld, void *arg) {
  thread_json_t *j = arg;
  int64_t count = 0, bytes = 0, local = 0, remote = 0;
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    count += tld->stats[i].alloc_count;
    bytes += tld->stats[i].alloc_bytes;
    local += tld->stats[i].local_count;
    remote += tld->stats[i].remote_count;
  }
  j->index++;
  fprintf(j->out,
          "%s{\"thread\": %d, \"policy\": \"%s\", \"alloc_count\": %lld, \"allocated_mb\": "
          "%.1f, \"local_pct\": %.1f}",
          j->index > 1 ? ", " : "", j->index, numalloc_policy_name((numalloc_policy_t)tld->policy),
          (long long)count, mib((double)bytes), percent(local, local + remote));
}

static void json_threads(FILE *out) {
  thread_json_t j = {out, 0};
  fprintf(out, "  \"threads\": [");
  na_thread_foreach(json_thread, &j);
  fprintf(out, "],\n");
}

static void print_json(FILE *out, const na_node_stats_t *total) {
  char name[32];
  fprintf(out, "{\n  \"policy\": \"%s\",\n", numalloc_policy_name(numalloc_policy()));
  json_topology(out);
  for (int n = 0; n < na_topology.node_count; n++) {
    snprintf(name, sizeof name, "node%d", n);
    json_node(out, name, n, &total[n]);
  }
  if (na_arena_peak_mapped_bytes(NA_INTERLEAVE_ARENA) > 0)
    json_node(out, "interleaved", NA_INTERLEAVE_ARENA, &total[NA_INTERLEAVE_ARENA]);
  if (na_arena_peak_mapped_bytes(NA_TOUCH_ARENA) > 0)
    json_node(out, "first_touch", NA_TOUCH_ARENA, &total[NA_TOUCH_ARENA]);
  json_threads(out);
  fprintf(out, "  \"remote_pct\": %.1f\n}\n", remote_pct(total));
}

static void print_text(FILE *out, const na_node_stats_t *total) {
  fprintf(out, "numalloc: policy %s, %d node(s)\n", numalloc_policy_name(numalloc_policy()),
          na_topology.node_count);
  fprintf(out, "numalloc: node  allocated MiB  allocations  local %%  live MiB  mapped MiB  "
               "peak MiB  fallbacks  remote frees\n");
  for (int n = 0; n < na_topology.node_count + 2; n++) {
    int arena = n < na_topology.node_count ? n : NA_MAX_NODES + (n - na_topology.node_count);
    if (arena >= NA_MAX_NODES && na_arena_peak_mapped_bytes(arena) == 0) continue;
    const na_node_stats_t *s = &total[arena];
    char label[16];
    if (arena == NA_INTERLEAVE_ARENA)
      snprintf(label, sizeof label, "il");
    else if (arena == NA_TOUCH_ARENA)
      snprintf(label, sizeof label, "ft"); /* placed by first touch */
    else
      snprintf(label, sizeof label, "%d", n);
    fprintf(out, "numalloc: %4s  %13.1f  %11lld  %7.1f  %8.1f  %10.1f  %8.1f  %9lld  %12lld\n",
            label, mib((double)s->alloc_bytes), (long long)s->alloc_count,
            percent(s->local_count, s->local_count + s->remote_count),
            mib((double)na_arena_live_bytes(arena)), mib((double)na_arena_mapped_bytes(arena)),
            mib((double)na_arena_peak_mapped_bytes(arena)), (long long)s->fallback_count,
            (long long)s->remote_free_count);
  }
  fprintf(out, "numalloc: remote allocations: %.1f%%\n", remote_pct(total));
  if (na_options.verify) {
    int64_t checked = 0, misplaced = 0;
    for (int i = 0; i < NA_ARENA_COUNT; i++) {
      checked += total[i].verified_pages;
      misplaced += total[i].misplaced_pages;
    }
    fprintf(out, "numalloc: placement check: %lld pages sampled, %lld on another node\n",
            (long long)checked, (long long)misplaced);
  }
}

int numalloc_stats_print(FILE *out, const char *format) {
  bool json = format != NULL && strcmp(format, "json") == 0;
  if (!json && format != NULL && strcmp(format, "text") != 0) {
    errno = EINVAL;
    return -1;
  }
  if (!na_ensure_init()) return -1;
  static na_node_stats_t total[NA_ARENA_COUNT];
  snapshot(total);
  if (json)
    print_json(out, total);
  else
    print_text(out, total);
  return 0;
}

static int report_fd = -1;

void na_stats_init(void) { report_fd = na_os_dup_stderr(); }

void na_stats_at_exit(void) {
  FILE *out = report_fd >= 0 ? fdopen(report_fd, "w") : stderr;
  if (out == NULL) return;
  if (na_options.stats_file != NULL) {
    char path[512];
    size_t at = 0;
    for (const char *p = na_options.stats_file; *p && at + 24 < sizeof path; p++) {
      if (p[0] == '%' && p[1] == 'p') {
        at += (size_t)snprintf(path + at, sizeof path - at, "%d", (int)getpid());
        p++;
      } else {
        path[at++] = *p;
      }
    }
    path[at] = '\0';
    if (out != stderr) fclose(out);
    out = fopen(path, "w");
    if (out == NULL) {
      na_warning("cannot write statistics to %s", path);
      return;
    }
  }
  numalloc_stats_print(out, na_options.stats == NA_STATS_JSON ? "json" : "text");
  if (out != stderr) fclose(out);
}

void numalloc_collect(void) {
  if (!na_ensure_init()) return;
  na_tld_t *self = na_tld_peek();
  for (int i = 0; self != NULL && i < NA_ARENA_COUNT; i++)
    if (self->heaps[i] != NULL) na_heap_collect(self->heaps[i]);
  na_arena_collect(true);
}
