/* stats.c: statistics. Threads count into their own record (plain counters, nothing shared);
 * a report merges the exited threads' totals with every live thread's counters, and one
 * printer writes it as text or JSON. */
#include "internal.h"

#include "access.h"
#include "stats_live.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t merged_lock = PTHREAD_MUTEX_INITIALIZER;
static na_node_stats_t merged[NA_ARENA_COUNT] NA_TABLE;

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
  if (!na_access_page_nodes(pages, nodes, count)) return; /* the report says why */
  for (size_t i = 0; i < count; i++) {
    if (nodes[i] < 0) continue; /* not touched: nothing placed yet */
    na_node_stats_t *stats = na_tld_stats(tld, arena_index);
    stats->verified_pages++;
    if (nodes[i] != arena_index) stats->misplaced_pages++;
  }
}

void na_stats_count_handed(na_tld_t *tld, int arena_index, uint64_t count, size_t block_size,
                           int ran_on) {
  na_node_stats_t *stats = na_tld_stats(tld, arena_index);
  stats->alloc_count += count;
  stats->alloc_bytes += (int64_t)(count * block_size);
  if (arena_index == NA_INTERLEAVE_ARENA) return; /* spread over nodes: neither */
  if (ran_on < 0) ran_on = tld->node;
  if (arena_index == ran_on)
    stats->local_count += count;
  else
    stats->remote_count += count;
}

/* A thread without a record (exiting, or a background purger) counts straight into the
 * merged totals: rare, and off every fast path. */
void na_stats_count_purge(int arena_index, size_t bytes) {
  na_tld_t *tld = na_tld_peek();
  if (tld != NULL) {
    na_node_stats_t *stats = na_tld_stats(tld, arena_index);
    stats->purge_calls++;
    stats->purged_bytes += (int64_t)bytes;
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

void na_stats_lock(void) { pthread_mutex_lock(&merged_lock); }
void na_stats_unlock(void) { pthread_mutex_unlock(&merged_lock); }

void na_stats_merge_thread(struct na_tld_s *tld) {
  pthread_mutex_lock(&merged_lock);
  for (int w = 0; w < 2; w++)
    for (uint64_t bits = tld->stats_used[w]; bits != 0; bits &= bits - 1) {
      int arena_index = w * 64 + __builtin_ctzll(bits);
      add_stats(&merged[arena_index], &tld->stats[arena_index]);
      memset(&tld->stats[arena_index], 0, sizeof tld->stats[arena_index]);
    }
  pthread_mutex_unlock(&merged_lock);
  tld->stats_used[0] = tld->stats_used[1] = 0;
}

static void add_live(struct na_tld_s *tld, void *arg) {
  na_node_stats_t *total = arg;
  for (int i = 0; i < NA_ARENA_COUNT; i++) add_stats(&total[i], &tld->stats[i]);
}

static void snapshot(na_node_stats_t *total) {
  na_tld_t *self = na_tld_peek();
  for (int i = 0; self != NULL && i < NA_ARENA_COUNT; i++)
    if (self->heaps[i] != NULL) {
      na_heap_account(self->heaps[i]);
      na_heap_census(self->heaps[i]);
    }
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

/* ---- live threads, and the small pages they hold -------------------------------------
 * Gathered under the registry lock and printed after it: printing may allocate (a stream's
 * first buffer), and an allocation may need that lock (a thread's first heap on a node).
 * A heap counts its pages as they come and go; the bytes its pages touched (blocks carved
 * out of them, less OS pages given back) and the bytes of blocks in use are as of its last
 * count: its thread's last purge pass (at most a purge delay old while the thread
 * allocates), or when its pages last grew by a quarter. "In use" is the share of the touched
 * bytes that blocks in use take: the rest is what holding the pages costs. */
typedef struct thread_view_s {
  int policy;
  int64_t count, bytes, local, remote;
  na_census_t held[NA_ARENA_COUNT];
} thread_view_t;

typedef struct report_s {
  const na_node_stats_t *total;
  thread_view_t *threads; /* NULL when there was no memory for them */
  size_t thread_count, thread_room, threads_size;
  na_census_t heaps[NA_ARENA_COUNT]; /* small pages in live threads' heaps, per arena */
  na_census_t pools[NA_ARENA_COUNT]; /* small pages no thread owns, per arena */
} report_t;

static void census_add(na_census_t *into, const na_census_t *from) {
  into->pages += from->pages;
  into->bytes += from->bytes;
  into->used_bytes += from->used_bytes;
  into->touched_bytes += from->touched_bytes;
}

static void census_of_heap(const na_heap_t *heap, na_census_t *out) {
  out->pages = na_relaxed_load(&heap->held.pages);
  out->bytes = na_relaxed_load(&heap->held.bytes);
  out->used_bytes = na_relaxed_load(&heap->held.used_bytes);
  out->touched_bytes = na_relaxed_load(&heap->held.touched_bytes);
}

static double used_pct(const na_census_t *c) {
  return percent((int64_t)c->used_bytes, (int64_t)c->touched_bytes);
}

static void count_thread(struct na_tld_s *tld, void *arg) {
  (void)tld;
  ++*(size_t *)arg;
}

static void view_thread(struct na_tld_s *tld, void *arg) {
  report_t *r = arg;
  thread_view_t scratch, *t = &scratch;
  if (r->threads != NULL && r->thread_count < r->thread_room) t = &r->threads[r->thread_count++];
  memset(t, 0, sizeof *t);
  t->policy = tld->policy;
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    t->count += tld->stats[i].alloc_count;
    t->bytes += tld->stats[i].alloc_bytes;
    t->local += tld->stats[i].local_count;
    t->remote += tld->stats[i].remote_count;
    const na_heap_t *heap = na_relaxed_load(&tld->heaps[i]);
    if (heap == NULL) continue;
    census_of_heap(heap, &t->held[i]);
    census_add(&r->heaps[i], &t->held[i]);
  }
}

static void report_gather(report_t *r, const na_node_stats_t *total) {
  memset(r, 0, sizeof *r);
  r->total = total;
  size_t count = 0;
  na_thread_foreach(count_thread, &count);
  r->thread_room = count + 16; /* threads that start meanwhile */
  /* mapped, not allocated: a report must not change the counts it reports */
  r->threads_size = na_align_up(r->thread_room * sizeof *r->threads, NA_PAGE_SIZE);
  r->threads = na_os_map_aligned(r->threads_size, NA_PAGE_SIZE);
  na_thread_foreach(view_thread, r);
  for (int i = 0; i < NA_ARENA_COUNT; i++) na_pool_census(i, &r->pools[i]);
}

/* "pages", "page_mb", "touched_mb", "used_mb", "used_pct", each after `prefix`. */
static void json_census(FILE *out, const char *prefix, const na_census_t *c) {
  fprintf(out,
          "\"%spages\": %llu, \"%spage_mb\": %.1f, \"%stouched_mb\": %.1f, \"%sused_mb\": %.1f, "
          "\"%sused_pct\": %.1f",
          prefix, (unsigned long long)c->pages, prefix, mib((double)c->bytes), prefix,
          mib((double)c->touched_bytes), prefix, mib((double)c->used_bytes), prefix, used_pct(c));
}

static int arena_node_number(int arena) {
  return arena == NA_INTERLEAVE_ARENA ? NA_NODE_INTERLEAVED : arena;
}

static void json_thread(FILE *out, int index, const thread_view_t *t) {
  na_census_t all = {0};
  for (int i = 0; i < NA_ARENA_COUNT; i++) census_add(&all, &t->held[i]);
  fprintf(out,
          "%s{\"thread\": %d, \"policy\": \"%s\", \"alloc_count\": %lld, \"allocated_mb\": "
          "%.1f, \"local_pct\": %.1f, ",
          index > 1 ? ", " : "", index, numalloc_policy_name((numalloc_policy_t)t->policy),
          (long long)t->count, mib((double)t->bytes), percent(t->local, t->local + t->remote));
  json_census(out, "", &all);
  fprintf(out, ", \"held\": [");
  const char *sep = "";
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    const na_census_t *c = &t->held[i];
    if (c->pages == 0) continue;
    fprintf(out, "%s{\"node\": %d, ", sep, arena_node_number(i));
    json_census(out, "", c);
    fprintf(out, "}");
    sep = ", ";
  }
  fprintf(out, "]}");
}

static void json_threads(FILE *out, const report_t *r) {
  fprintf(out, "  \"threads\": [");
  for (size_t i = 0; i < r->thread_count; i++) json_thread(out, (int)i + 1, &r->threads[i]);
  fprintf(out, "],\n");
}

static void json_node(FILE *out, const char *name, int arena, const report_t *r) {
  const na_node_stats_t *s = &r->total[arena];
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
  fprintf(out, ", ");
  json_census(out, "heap_", &r->heaps[arena]);
  fprintf(out, ", ");
  json_census(out, "pool_", &r->pools[arena]);
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

/* ---- what placement can be trusted ------------------------------------------------------ */

static const char *check_name(na_check_t check) {
  return check == NA_CHECK_MOVE_PAGES      ? "move_pages"
         : check == NA_CHECK_GET_MEMPOLICY ? "get_mempolicy"
                                           : "none";
}

/* "not enforced: mbind refused (Operation not permitted)", or why binding failed. */
static void bind_text(char *buf, size_t size, const na_access_report_t *a) {
  if (a->refused[NA_CALL_MBIND] != 0)
    snprintf(buf, size, "not enforced: mbind refused (%s)",
             na_os_error_text(a->refused[NA_CALL_MBIND]));
  else if (a->bind_failures > 0)
    snprintf(buf, size, "not enforced: %ld mbind call(s) failed", a->bind_failures);
  else
    snprintf(buf, size, "enforced");
}

/* The call NUMALLOC_VERIFY uses, and when it could use none, why. */
static void check_text(char *buf, size_t size, const na_access_report_t *a) {
  int moves = a->refused[NA_CALL_MOVE_PAGES], policy = a->refused[NA_CALL_GET_MEMPOLICY];
  if (!na_options.verify)
    snprintf(buf, size, "off");
  else if (a->check == NA_CHECK_MOVE_PAGES)
    snprintf(buf, size, "move_pages");
  else if (a->check == NA_CHECK_GET_MEMPOLICY)
    snprintf(buf, size, "get_mempolicy (move_pages refused: %s)", na_os_error_text(moves));
  else if (moves == policy)
    snprintf(buf, size, "unavailable: move_pages and get_mempolicy refused (%s)",
             na_os_error_text(moves));
  else
    snprintf(buf, size, "unavailable: move_pages refused (%s), get_mempolicy refused (%s)",
             na_os_error_text(moves), na_os_error_text(policy));
}

static void json_placement(FILE *out, const na_node_stats_t *total) {
  na_access_report_t a;
  na_access_report(&a);
  char bind[160], check[256];
  bind_text(bind, sizeof bind, &a);
  check_text(check, sizeof check, &a);
  int64_t checked = 0, misplaced = 0;
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    checked += total[i].verified_pages;
    misplaced += total[i].misplaced_pages;
  }
  fprintf(out,
          "  \"placement\": {\"enforced\": %s, \"bind\": \"%s\", \"check\": \"%s\", "
          "\"check_method\": \"%s\", \"verified_pages\": %lld, \"misplaced_pages\": %lld, "
          "\"refused\": [",
          a.bind_enforced ? "true" : "false", bind, check,
          na_options.verify ? check_name(a.check) : "off", (long long)checked,
          (long long)misplaced);
  for (int call = 0, listed = 0; call < NA_CALL_COUNT; call++)
    if (a.refused[call] != 0)
      fprintf(out, "%s\"%s\"", listed++ ? ", " : "", na_os_numa_call_name((na_numa_call_t)call));
  fprintf(out, "]},\n");
}

static void print_json(FILE *out, const report_t *r) {
  char name[32];
  fprintf(out, "{\n  \"policy\": \"%s\",\n", numalloc_policy_name(numalloc_policy()));
  json_topology(out);
  for (int n = 0; n < na_topology.node_count; n++) {
    snprintf(name, sizeof name, "node%d", n);
    json_node(out, name, n, r);
  }
  if (na_arena_peak_mapped_bytes(NA_INTERLEAVE_ARENA) > 0)
    json_node(out, "interleaved", NA_INTERLEAVE_ARENA, r);
  if (na_arena_peak_mapped_bytes(NA_TOUCH_ARENA) > 0)
    json_node(out, "first_touch", NA_TOUCH_ARENA, r);
  json_threads(out, r);
  json_placement(out, r->total);
  fprintf(out, "  \"remote_pct\": %.1f\n}\n", remote_pct(r->total));
}

/* NUMALLOC_VERIFY's result, naming the call it used; a check that could not run, or found no
 * page to look at, says so rather than read as a pass. */
static void print_check(FILE *out, const na_node_stats_t *total, const na_access_report_t *a) {
  int64_t checked = 0, misplaced = 0;
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    checked += total[i].verified_pages;
    misplaced += total[i].misplaced_pages;
  }
  char check[256];
  check_text(check, sizeof check, a);
  const char *by = a->check == NA_CHECK_MOVE_PAGES ? "" : " by ";
  if (a->check == NA_CHECK_NONE)
    fprintf(out, "numalloc: placement check %s\n", check);
  else if (checked == 0)
    fprintf(out, "numalloc: placement check%s%s: no page was checked\n", by,
            a->check == NA_CHECK_MOVE_PAGES ? "" : check);
  else
    fprintf(out, "numalloc: placement check%s%s: %lld pages sampled, %lld on another node\n", by,
            a->check == NA_CHECK_MOVE_PAGES ? "" : check, (long long)checked, (long long)misplaced);
}

/* Small pages per node: in live threads' heaps and in the node's pool, and how pages went
 * between them. */
static void text_held(FILE *out, const report_t *r) {
  fprintf(out, "numalloc: held  node  thread pages  touched MiB  in use %%  pool pages  "
               "touched MiB  in use %%  heaps left  to pool  from pool\n");
  for (int n = 0; n <= na_topology.node_count; n++) {
    int arena = n < na_topology.node_count ? n : NA_INTERLEAVE_ARENA;
    const na_census_t *h = &r->heaps[arena], *p = &r->pools[arena];
    const na_node_stats_t *s = &r->total[arena];
    if (arena == NA_INTERLEAVE_ARENA && h->pages == 0 && p->pages == 0 && s->pool_out_pages == 0)
      continue;
    char label[16];
    snprintf(label, sizeof label, arena == NA_INTERLEAVE_ARENA ? "il" : "%d", n);
    fprintf(out,
            "numalloc: held  %4s  %12llu  %11.1f  %8.1f  %10llu  %11.1f  %8.1f  %10lld  %7lld  "
            "%9lld\n",
            label, (unsigned long long)h->pages, mib((double)h->touched_bytes), used_pct(h),
            (unsigned long long)p->pages, mib((double)p->touched_bytes), used_pct(p),
            (long long)s->heaps_left, (long long)s->pool_out_pages, (long long)s->pool_in_pages);
  }
}

static void text_threads(FILE *out, const report_t *r) {
  for (size_t i = 0; i < r->thread_count; i++) {
    const thread_view_t *t = &r->threads[i];
    na_census_t all = {0};
    for (int a = 0; a < NA_ARENA_COUNT; a++) census_add(&all, &t->held[a]);
    fprintf(out, "numalloc: thread %zu (%s): %llu pages, %.1f MiB touched, %.1f%% in use", i + 1,
            numalloc_policy_name((numalloc_policy_t)t->policy), (unsigned long long)all.pages,
            mib((double)all.touched_bytes), used_pct(&all));
    const char *sep = " (";
    for (int a = 0; a < NA_ARENA_COUNT; a++) {
      const na_census_t *c = &t->held[a];
      if (c->pages == 0) continue;
      if (a == NA_INTERLEAVE_ARENA)
        fprintf(out, "%sinterleaved: ", sep);
      else
        fprintf(out, "%snode %d: ", sep, a);
      fprintf(out, "%llu pages, %.1f MiB, %.1f%%", (unsigned long long)c->pages,
              mib((double)c->touched_bytes), used_pct(c));
      sep = "; ";
    }
    fprintf(out, "%s\n", all.pages != 0 ? ")" : "");
  }
}

static void print_text(FILE *out, const report_t *r) {
  const na_node_stats_t *total = r->total;
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
  na_access_report_t a;
  na_access_report(&a);
  if (!a.bind_enforced) {
    char bind[160];
    bind_text(bind, sizeof bind, &a);
    fprintf(out,
            "numalloc: placement %s; local %% is where numalloc asked for memory, not where "
            "the kernel put it\n",
            bind);
  }
  if (na_options.verify) print_check(out, total, &a);
  text_held(out, r);
  text_threads(out, r);
}

int numalloc_stats_print(FILE *out, const char *format) {
  bool json = format != NULL && strcmp(format, "json") == 0;
  if (!json && format != NULL && strcmp(format, "text") != 0) {
    errno = EINVAL;
    return -1;
  }
  if (!na_ensure_init()) return -1;
  static na_node_stats_t total[NA_ARENA_COUNT] NA_TABLE;
  static report_t report NA_TABLE;
  snapshot(total);
  report_gather(&report, total);
  if (json)
    print_json(out, &report);
  else
    print_text(out, &report);
  if (report.threads != NULL) na_os_unmap(report.threads, report.threads_size);
  return 0;
}

void na_stats_write_live(FILE *out) {
  na_node_stats_t total[NA_ARENA_COUNT]; /* not numalloc_stats_print's: the program may call it */
  report_t report;
  snapshot(total);
  report_gather(&report, total);
  print_text(out, &report);
  fputs("json\n", out);
  print_json(out, &report);
  if (report.threads != NULL) na_os_unmap(report.threads, report.threads_size);
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

/* Bytes the calling thread has given back to the OS so far (a thread without a record
 * counts into the merged totals, so those are read instead). */
static int64_t purged_so_far(void) {
  int64_t bytes = 0;
  na_tld_t *self = na_tld_peek();
  const na_node_stats_t *stats = self != NULL ? self->stats : merged;
  if (self == NULL) pthread_mutex_lock(&merged_lock);
  for (int i = 0; i < NA_ARENA_COUNT; i++) bytes += stats[i].purged_bytes;
  if (self == NULL) pthread_mutex_unlock(&merged_lock);
  return bytes;
}

/* The calling thread's part of a collect: the blocks waiting in it go home, its bins go back
 * to their pages, its empty pages to the arena, and with `purge` its sparse pages give back
 * what they can. */
static void collect_own_heaps(bool purge) {
  na_tld_t *self = na_tld_peek();
  if (self == NULL) return;
  na_free_remote_flush(self);
  for (int i = 0; i < NA_ARENA_COUNT; i++)
    if (self->heaps[i] != NULL) na_heap_collect(self->heaps[i], purge);
}

/* Also reads the topology again: the documented way to start using a node the cpuset has
 * allowed since (a container resized, numactl or taskset applied to the running process). */
size_t na_collect(void) {
  if (!na_ensure_init()) return 0;
  int64_t before = purged_so_far();
  na_topology_init();
  na_policy_init(); /* interleave and weighted spread over the nodes usable now */
  collect_own_heaps(true);
  na_pool_collect_all();
  na_arena_collect(true);
  int64_t given = purged_so_far() - before;
  return given > 0 ? (size_t)given : 0;
}

void numalloc_collect(void) { na_collect(); }

/* malloc_trim. Programs written for glibc call it in loops (after every request, every few
 * thousand allocations: stress-ng's malloc stressor about 500 times a second), and each call
 * gave back memory that the program took again at once, every page of it faulted in and
 * cleared again (huge pages whole): 73% of the stressor's time. So a call within
 * TRIM_INTERVAL_MS of the last one that did the work, or within the purge delay when that is
 * shorter, does nothing and returns 0: what it would have given back goes by time, as memory
 * freed without a trim does. A second is the default purge delay: a trim gives back at most as
 * often as the timed passes would, and every 100 ms still made a program that trims in a loop
 * give back and fault in again its free memory ten times a second (about 120 madvise calls a
 * trim, 1 per 8,000 frees). numalloc_collect() always does the work. */
#define TRIM_INTERVAL_MS 1000

/* NUMALLOC_BACKGROUND=1 promises that the program's threads never give memory back
 * themselves: a malloc_trim tidies the calling thread's heaps (no system call) and leaves the
 * rest to the purge thread, woken for it. It returns 0, as nothing went back during the call. */
static int trim_by_helpers(void) {
  if (!na_ensure_init()) return 0;
  collect_own_heaps(false);
  na_purge_request_collect();
  return 0;
}

int na_trim(void) {
  static _Atomic uint32_t last_ms;
  static _Atomic bool trimmed;
  uint32_t now = na_os_clock_ms();
  uint32_t interval = na_options.purge_delay_ms < TRIM_INTERVAL_MS
                          ? (uint32_t)na_options.purge_delay_ms
                          : TRIM_INTERVAL_MS;
  if (atomic_load_explicit(&trimmed, memory_order_relaxed) &&
      now - atomic_load_explicit(&last_ms, memory_order_relaxed) < interval)
    return 0;
  atomic_store_explicit(&last_ms, now, memory_order_relaxed);
  atomic_store_explicit(&trimmed, true, memory_order_relaxed);
  return na_options.background ? trim_by_helpers() : na_collect() > 0;
}

void na_stats_memory(na_memory_t *out) {
  *out = (na_memory_t){0};
  if (!na_ensure_init()) return;
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    out->mapped += na_arena_mapped_bytes(i);
    out->huge += na_arena_huge_bytes(i);
    out->live += na_arena_live_bytes(i);
  }
}
