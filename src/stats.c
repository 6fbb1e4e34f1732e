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
  pthread_mutex_lock(&merged_lock);
  memcpy(total, merged, sizeof merged);
  pthread_mutex_unlock(&merged_lock);
  na_thread_foreach(add_live, total);
}

static double mib(size_t bytes) { return (double)bytes / (double)NA_MiB; }

static void print_json(FILE *out, const na_node_stats_t *total) {
  fprintf(out, "{\"policy\": \"%s\", \"nodes\": %d", numalloc_policy_name(numalloc_policy()),
          na_topology.node_count);
  for (int n = 0; n < na_topology.node_count; n++) {
    fprintf(out, ", \"node%d\": {\"mapped_mb\": %.1f", n, mib(na_arena_mapped_bytes(n)));
#define NA_STAT_JSON(name, text) fprintf(out, ", \"" #name "\": %lld", (long long)total[n].name);
    NA_STAT_FIELDS(NA_STAT_JSON)
#undef NA_STAT_JSON
    fprintf(out, "}");
  }
  fprintf(out, ", \"interleaved\": {\"mapped_mb\": %.1f}}\n",
          mib(na_arena_mapped_bytes(NA_INTERLEAVE_ARENA)));
}

static void print_text(FILE *out, const na_node_stats_t *total) {
  fprintf(out, "numalloc: policy %s, %d node(s)\n", numalloc_policy_name(numalloc_policy()),
          na_topology.node_count);
  for (int n = 0; n < na_topology.node_count; n++)
    fprintf(out, "numalloc: node %d: %.1f MiB mapped, %lld allocations, %lld fallbacks\n", n,
            mib(na_arena_mapped_bytes(n)), (long long)total[n].alloc_count,
            (long long)total[n].fallback_count);
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

void na_stats_at_exit(void) {
  FILE *out = stderr;
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
    out = fopen(path, "w");
    if (out == NULL) {
      na_warning("cannot write statistics to %s", path);
      return;
    }
  }
  numalloc_stats_print(out, na_options.stats == 2 ? "json" : "text");
  if (out != stderr) fclose(out);
}

void numalloc_collect(void) {
  if (na_ensure_init()) na_arena_collect(true);
}
