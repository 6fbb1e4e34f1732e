/* purge.c: giving memory back to the OS, off every free path. A pass, at most once per
 * quarter of NUMALLOC_PURGE_DELAY per arena and started from an allocation slow path (or
 * forced by numalloc_collect), picks under the lock the free spans and the freed huge blocks'
 * segments that stayed unused for the arena's wait (that quarter, longer where memory given
 * back was soon needed again), and the empty segments beyond the cache that stayed empty for
 * the whole delay (as much longer), then purges and unmaps them unlocked, in one batch:
 * memory reused in the meantime is never given back, and no free waits on the kernel. Pages of
 * exited threads whose blocks have all come back become free spans here. */
#include "arena.h"
#include "stats_live.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PURGE_BATCH 64

typedef struct purge_batch_s {
  na_page_t *spans[PURGE_BATCH];
  size_t count;
  na_segment_t *unmap[PURGE_BATCH];
  size_t unmap_count;
} purge_batch_t;

/* Free spans go back after a quarter of the purge delay. They are reused only by their own
 * arena, dirty ones first, so what one keeps waiting adds up over the nodes: under rr every
 * thread frees spans on every node, and a 4-node run held 1.6 times glibc's peak with the full
 * delay, 1.2 times with a quarter. Sparse pages keep the whole delay: their purges interrupt
 * other threads (TLB shootdowns) for little memory each. */
static uint32_t base_span_delay_ms(void) { return (uint32_t)na_options.purge_delay_ms / 4; }

/* A program whose phases outlast that wait, each making and dropping many MiB (a database's
 * queries, with their hash tables and sort buffers), had its spans and emptied segments given
 * back between two phases and faulted in again by the next: PostgreSQL running the suite's
 * queries took 107,000 to 114,000 page faults and 5.5-5.9 s of CPU, against 75,000 and 3.8-4.5
 * s with spans kept for 2.5 s. So an arena that hands out memory that is not resident within
 * a purge delay of a pass giving some back waits 2^SPAN_DELAY_DOUBLINGS times as long from
 * then on (spans, emptied segments and freed huge blocks alike): at once, as the next such
 * need comes only a phase later, and growing one doubling per phase left most of a short
 * run's phases refaulting (doubling: 102,000 faults; at once: 83,000). A give-back that no
 * such need follows within that time halves the wait again. Only the passes the delay starts
 * count: numalloc_collect and malloc_trim give back on request. */
#define SPAN_DELAY_DOUBLINGS 4

static uint32_t span_delay_ms(const na_arena_t *arena) {
  return base_span_delay_ms() << na_relaxed_load(&arena->span_delay_shift);
}

/* How long after a give-back a need of memory that is not resident says it came too soon,
 * and how long an emptied segment beyond the cache stays mapped: the purge delay, doubled
 * with the spans' wait. */
static uint32_t segment_delay_ms(const na_arena_t *arena) {
  return (uint32_t)na_options.purge_delay_ms << na_relaxed_load(&arena->span_delay_shift);
}

/* A node's arena on a machine of several keeps the wait at a quarter of the delay: its free
 * spans serve that node's threads alone, and a wait that grows kept them on every node a
 * thread had passed through (the stress program's 16 threads moving between 4 nodes in the VM
 * peaked at 1.09x glibc under local and 1.76x under rr with it, 0.80x and 1.16x without; on
 * one node, 234-257 MiB with it against 234-245). The arenas every node's threads share (the
 * first-touch arena of large blocks, the interleaved one) are one each, as a machine of one
 * node has one: theirs grows. */
void na_arena_note_cold_span(na_arena_t *arena) {
  if (arena->gave_ms == 0 || !na_arena_serves_every_node(arena)) return;
  if ((int32_t)(na_os_clock_ms() - arena->gave_ms) < (int32_t)segment_delay_ms(arena))
    na_relaxed_store(&arena->span_delay_shift, SPAN_DELAY_DOUBLINGS);
  arena->gave_ms = 0;
}

/* With the arena locked, at a pass: the last give-back, not followed by such a need, was
 * right. */
static void span_delay_relax(na_arena_t *arena, uint32_t now) {
  if (arena->gave_ms == 0 || (int32_t)(now - arena->gave_ms) < (int32_t)segment_delay_ms(arena))
    return;
  if (arena->span_delay_shift > 0)
    na_relaxed_store(&arena->span_delay_shift, arena->span_delay_shift - 1);
  arena->gave_ms = 0;
}

/* Picks, under the lock, what to give back: free spans idle longer than their delay, and
 * empty segments beyond the cache. */
static void purge_select(na_arena_t *arena, bool force, uint32_t now, purge_batch_t *batch) {
  if (batch->unmap_count + NA_HUGE_KEPT <= PURGE_BATCH)
    batch->unmap_count += na_huge_take_expired(arena, force, now, span_delay_ms(arena),
                                               batch->unmap + batch->unmap_count);
  for (na_segment_t *s = arena->segments, *next; s != NULL; s = next) {
    next = s->next;
    /* empty, and in one piece: no part of it is being purged by another thread */
    if (!na_arena_segment_is_empty(s) || !na_span_is_free_head(&s->slices[NA_META_SLICES]) ||
        s->slices[NA_META_SLICES].slice_count != NA_SLICES_PER_SEGMENT - NA_META_SLICES ||
        batch->unmap_count == PURGE_BATCH)
      continue;
    if (!force && arena->empty_segments <= (size_t)na_options.segment_cache) break;
    if (!force && (uint32_t)(now - s->slices[NA_META_SLICES].free_stamp) < segment_delay_ms(arena))
      continue; /* emptied less than a delay ago: it may well be filled again */
    na_span_bin_remove(arena, &s->slices[NA_META_SLICES]);
    na_arena_segment_unlink(arena, s);
    na_relaxed_store(&arena->empty_segments, arena->empty_segments - 1);
    batch->unmap[batch->unmap_count++] = s;
  }
  for (int bin = 0; bin < NA_BIN_COUNT; bin++) {
    for (na_page_t *span = arena->bins[bin].first, *next; span != NULL; span = next) {
      next = span->next;
      if (!span->is_dirty || batch->count == PURGE_BATCH) continue;
      if (!force && (uint32_t)(now - span->free_stamp) < span_delay_ms(arena)) continue;
      na_span_bin_remove(arena, span);
      span->kind = NA_SPAN_PURGING;
      batch->spans[batch->count++] = span;
    }
  }
}

/* True when it gave something back. */
static bool purge_arena(int arena_index, bool force) {
  na_arena_t *arena = na_arena_at(arena_index);
  purge_batch_t batch;
  na_os_purge_batch_t ranges;
  bool gave = false, purged;
  do {
    batch.count = batch.unmap_count = 0;
    uint32_t now = na_os_clock_ms();
    na_arena_lock(arena);
    na_relaxed_store(&arena->last_purge_ms, now);
    if (!force) span_delay_relax(arena, now);
    purge_select(arena, force, now, &batch);
    na_arena_unlock(arena);
    na_os_purge_start(&ranges);
    for (size_t i = 0; i < batch.count; i++)
      na_os_purge_add(&ranges, na_page_start(batch.spans[i]),
                      batch.spans[i]->slice_count * NA_SLICE_SIZE);
    na_os_purge_flush(&ranges);
    purged = !ranges.refused;
    for (size_t i = 0; purged && i < batch.count; i++)
      na_stats_count_purge(arena_index, batch.spans[i]->slice_count * NA_SLICE_SIZE);
    for (size_t i = 0; i < batch.unmap_count; i++) {
      size_t bytes = batch.unmap[i]->size;
      atomic_fetch_sub_explicit(&arena->mapped_bytes, bytes, memory_order_relaxed);
      na_segment_destroy(batch.unmap[i]);
      na_stats_count_purge(arena_index, bytes);
    }
    na_arena_lock(arena);
    for (size_t i = 0; i < batch.count; i++) {
      na_page_t *span = batch.spans[i];
      na_segment_t *segment = na_segment_of_aligned(span);
      span->kind = NA_SPAN_FREE;
      size_t first = (size_t)(span - segment->slices);
      if (purged) {
        na_segment_note_resident(segment, first, span->slice_count, false);
        na_span_insert(arena, segment, first, span->slice_count,
                       (na_span_state_t){.zero = true, .stamp = now, .used_on = -1});
      } else { /* locked pages keep what they held: dirty still, tried again a wait later */
        na_span_insert(arena, segment, first, span->slice_count,
                       (na_span_state_t){.dirty = true, .stamp = now, .used_on = span->used_on});
      }
    }
    bool gave_now = (purged && batch.count != 0) || batch.unmap_count != 0;
    /* 0 means none. Not `now | 1`: on a clock that ticks in even steps that stamp lies a
     * millisecond ahead, and a need within the same tick read as a give-back long past. */
    if (!force && gave_now) arena->gave_ms = now != 0 ? now : 1;
    na_arena_unlock(arena);
    gave |= gave_now;
    /* a refused batch is not taken again at once: a forced pass would take it forever */
  } while (purged && (batch.count == PURGE_BATCH || batch.unmap_count == PURGE_BATCH));
  return gave;
}

static void background_start(int arena_index);

static void (*slow_path_hook)(void);

void na_helper_on_slow_path(void (*hook)(void)) { slow_path_hook = hook; }

/* When the process (a forked child: since the fork) first came to a slow path; 0 not yet. */
static _Atomic uint32_t first_ms;

void na_arena_purge_expired(int arena_index) {
  if (slow_path_hook != NULL) slow_path_hook(); /* starts the statistics publisher */
  if (na_options.background) {
    /* Not before the process is one helper's sleep old (at most a second): a helper started
     * earlier would only sleep, and a short process (a shell's every command) paid a thread
     * for nothing (a build-like shell script took 1.23x the time of the same without
     * NUMALLOC_BACKGROUND). */
    uint32_t now = na_os_clock_ms() | 1; /* 0 means not yet */
    uint32_t first = atomic_load_explicit(&first_ms, memory_order_relaxed);
    uint32_t young = base_span_delay_ms() / 2 < 1000 ? base_span_delay_ms() / 2 : 1000;
    if (first == 0)
      atomic_compare_exchange_strong(&first_ms, &first, now);
    else if ((uint32_t)(now - first) >= young)
      background_start(arena_index);
    return;
  }
  na_arena_t *arena = na_arena_at(arena_index);
  uint32_t now = na_os_clock_ms();
  uint32_t last = na_relaxed_load(&arena->last_purge_ms);
  if ((uint32_t)(now - last) >= base_span_delay_ms()) purge_arena(arena_index, false);
}

static bool keeps_huge_blocks(const na_arena_t *arena) {
  for (int i = 0; i < NA_HUGE_KEPT; i++)
    if (arena->huge_kept[i] != NULL) return true;
  return false;
}

void na_arena_collect(bool force) {
  for (int i = 0; i < NA_ARENA_COUNT; i++)
    if (na_arena_at(i)->segments != NULL || keeps_huge_blocks(na_arena_at(i)))
      purge_arena(i, force);
}

/* ---- first touch -------------------------------------------------------------------------
 * Spans of the first-touch arena are not bound: the kernel puts each page on the node of the
 * thread that touches it first. A span that comes back resident keeps its pages where its
 * last user touched them: a thread gets it as it is only where they are on its node (the
 * placement layer decides), else given back first, to be placed anew by the new user's
 * touch; the correction costs a refault only when a span changes node. */
void na_arena_place_by_use(na_page_t *span, int node) {
  size_t bytes = (size_t)span->slice_count << NA_SLICE_SHIFT;
  if (span->is_dirty &&
      !na_placement_touch_reusable(na_page_start(span), bytes, span->used_on, node) &&
      na_os_purge(na_page_start(span), bytes)) {
    na_stats_count_purge(NA_TOUCH_ARENA, bytes);
    span->is_zero = true;
  }
  span->is_dirty = false;
  span->used_on = (int8_t)node;
}

/* ---- NUMALLOC_BACKGROUND=1: one purging thread per node ------------------------------------
 * Low-latency programs ask that none of their threads ever waits on the kernel for memory
 * it gives back. Each node's thread runs on that node's CPUs (a memory-only node's on its
 * nearest node with CPUs), wakes twice per span delay and runs its arena's pass; the first
 * usable node's thread also serves the interleaved and first-touch arenas. Sparse pages of
 * threads' heaps are not purged then (their free lists belong to their threads); those of
 * the nodes' pools, which no thread owns, are, and the pools' empty pages go to the arena
 * (exited threads' pages, which no slow path may come to collect). Threads start lazily, at a slow
 * path once the process is an eighth of the purge delay old (at most a second), and again in a
 * forked child once it is that old. */
static _Atomic bool background_running[NA_MAX_NODES];
static _Atomic bool collect_requested; /* a malloc_trim's, for the first usable node's thread */
static _Atomic uint32_t helpers_alarm; /* changed to wake the sleeping helpers */
/* The process's first thread left by pthread_exit (thread.c tells, at its exit). */
static _Atomic bool main_thread_left;
static void on_main_thread_exit(void);

static int node_with_cpus_nearest(int node) {
  if (na_node_bit(na_topology.has_cpus, node)) return node;
  int best = -1;
  for (int n = 0; n < na_topology.node_count; n++)
    if (na_node_bit(na_topology.has_cpus, n) &&
        (best < 0 || na_topology.distance[node][n] < na_topology.distance[node][best]))
      best = n;
  return best;
}

static void pin_near(int node) {
  enum { WORDS = sizeof na_topology.cpu_node / sizeof na_topology.cpu_node[0] / 64 };
  uint64_t cpus[WORDS] = {0};
  int target = node_with_cpus_nearest(node);
  for (int c = 0; c < WORDS * 64; c++)
    if (target >= 0 && na_topology_cpu_node(c) == target) cpus[c / 64] |= (uint64_t)1 << (c % 64);
  na_os_pin_to_cpus(cpus, WORDS); /* refused (a cpuset without them): it runs anywhere */
}

/* An idle process's thread sleeps longer after each pass that gave nothing back, up to
 * IDLE_SLEEP_MAX times its sleep (a second under the default delay), where it woke eight
 * times a second; memory freed after a long idle stretch goes back that much later. The
 * pinning is renewed at most once a second: cpusets change under running programs, but
 * rarely. */
#define IDLE_SLEEP_MAX 8
#define REPIN_EVERY_MS 1000

static void *background_main(void *arg) {
  int node = (int)(intptr_t)arg;
  bool serves_shared = node == na_topology.usable_list[0];
  uint32_t idle_sleep = 1, pinned_ms = 0;
  na_helper_enter();
  for (bool first = true;; first = false) {
    uint32_t now = na_os_clock_ms();
    if (first || (uint32_t)(now - pinned_ms) >= REPIN_EVERY_MS) {
      pin_near(node);
      pinned_ms = now;
    }
    uint32_t delay = base_span_delay_ms();
    if (!na_helper_sleep((delay / 2 > 0 ? delay / 2 : 1) * idle_sleep)) break;
    if (serves_shared && atomic_exchange(&collect_requested, false)) {
      na_pool_collect_all(); /* as numalloc_collect, the caller's heap aside */
      na_arena_collect(true);
      idle_sleep = 1;
      continue;
    }
    na_pool_collect(node, false);
    bool gave = purge_arena(node, false);
    gave |= na_pool_purge_sparse(node);
    if (serves_shared) {
      na_pool_collect(NA_INTERLEAVE_ARENA, false);
      gave |= purge_arena(NA_INTERLEAVE_ARENA, false);
      gave |= na_pool_purge_sparse(NA_INTERLEAVE_ARENA); /* small pages of interleaving heaps */
      gave |= purge_arena(NA_TOUCH_ARENA, false);
    }
    if (gave || atomic_load(&main_thread_left)) /* the last threads' exits are watched */
      idle_sleep = 1;
    else if (idle_sleep < IDLE_SLEEP_MAX)
      idle_sleep *= 2;
  }
  na_helper_exit();
  return NULL;
}

/* ---- helper threads, and the program's changes of credentials ------------------------------
 * When a program of several threads calls setuid, setgid, setgroups or their kin, the C
 * library makes every thread make the same call, and aborts the program if one thread's
 * answer differs from the caller's. Programs that drop privileges believe themselves alone
 * and may make the calling thread's capabilities differ from the others' (setpriv keeps its
 * capabilities across setresuid with PR_SET_KEEPCAPS, which holds for one thread), so a
 * helper thread started behind their back gets EPERM where they succeed: setpriv died of
 * SIGABRT under NUMALLOC_BACKGROUND=1. The preload's wrappers of those calls pause the
 * helpers around them: every helper ends and is joined before the call, none starts during
 * it, and the next slow path after it starts them again, with the new credentials. */
#define MAX_HELPERS (NA_MAX_NODES + 1)

static struct helper_s {
  uintptr_t thread;
  _Atomic bool *running;
  void *(*fn)(void *);
  void *arg;
  _Atomic int32_t kernel_id; /* the thread's id in the kernel, set by the thread itself */
} helpers[MAX_HELPERS] NA_TABLE;
static int helpers_started;
static pthread_mutex_t helpers_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int helpers_paused; /* > 0: helpers end, and none starts */
static _Atomic int helper_count;

void (*na_helper_start_hook)(void);

/* Ends every helper's sleep now. */
static void wake_helpers(void) {
  atomic_fetch_add(&helpers_alarm, 1);
  na_os_wake_all(&helpers_alarm);
}

static void *helper_main(void *arg) {
  struct helper_s *helper = arg;
  atomic_store(&helper->kernel_id, na_os_kernel_thread_id());
  return helper->fn(helper->arg);
}

bool na_helper_start(_Atomic bool *running, const char *name, void *(*fn)(void *), void *arg) {
  if (atomic_load_explicit(running, memory_order_relaxed)) return true;
  if (atomic_load(&helpers_paused) > 0) return false;
  /* Claimed before the thread exists: creating it allocates, and that slow path comes back
   * here. */
  if (atomic_exchange(running, true)) return true;
  /* And another helper's start in that slow path waits for a later one: the lock is ours. */
  static __thread bool starting __attribute__((tls_model("initial-exec")));
  if (starting) {
    atomic_store(running, false);
    return false;
  }
  starting = true;
  na_thread_on_main_exit = on_main_thread_exit;
  /* A signal handler that changes the process's credentials pauses the helpers, which takes
   * this lock: had the signal come while this thread held it, the thread would wait for
   * itself. It comes once the lock is free. The new helper inherits the full mask. */
  na_signal_mask_t mask;
  na_os_signals_hold(&mask);
  pthread_mutex_lock(&helpers_lock);
  if (na_unlikely(na_helper_start_hook != NULL)) na_helper_start_hook();
  bool ok = atomic_load(&helpers_paused) == 0 && helpers_started < MAX_HELPERS;
  if (ok) {
    struct helper_s *helper = &helpers[helpers_started];
    helper->running = running;
    helper->fn = fn;
    helper->arg = arg;
    atomic_store(&helper->kernel_id, 0);
    ok = na_os_thread_start(name, helper_main, helper, &helper->thread);
    if (ok) helpers_started++;
  }
  pthread_mutex_unlock(&helpers_lock);
  starting = false;
  na_os_signals_restore(&mask);
  if (!ok) atomic_store(running, false); /* tried again at a later slow path */
  return ok;
}

void na_helpers_pause(void) {
  atomic_fetch_add(&helpers_paused, 1);
  pthread_mutex_lock(&helpers_lock); /* a helper being started is recorded first */
  if (helpers_started > 0) wake_helpers();
  /* The kernel takes an ended thread out of the process a moment after the join returns;
   * until then it still refuses a new user namespace (EINVAL, several threads). */
  for (int i = 0; i < helpers_started; i++) {
    na_os_thread_join(helpers[i].thread);
    na_os_wait_thread_gone(atomic_load(&helpers[i].kernel_id), 100);
    atomic_store(helpers[i].running, false);
  }
  helpers_started = 0;
  pthread_mutex_unlock(&helpers_lock);
}

void na_helpers_resume(void) { atomic_fetch_sub(&helpers_paused, 1); }

void na_purge_request_collect(void) {
  atomic_store(&collect_requested, true);
  wake_helpers();
}

/* Counted by the helper itself, once it runs, and uncounted before it returns: never more
 * than are there, so a program thread is never taken for a helper. */
void na_helper_enter(void) { atomic_fetch_add(&helper_count, 1); }
void na_helper_exit(void) { atomic_fetch_sub(&helper_count, 1); }

/* Whether the main thread has called pthread_exit (the thread group's leader is a zombie)
 * and only helper threads are left. */
static bool only_helpers_left(void) {
  char buf[4096];
  if (na_os_read_file("/proc/self/stat", buf, sizeof buf) <= 0) return false;
  const char *p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ' || p[2] != 'Z') return false; /* the main thread runs */
  if (na_os_read_file("/proc/self/status", buf, sizeof buf) <= 0) return false;
  p = strstr(buf, "\nThreads:");
  long threads;
  char digits[16] = {0};
  if (p == NULL) return false;
  p += strlen("\nThreads:");
  while (*p == ' ' || *p == '\t') p++;
  for (size_t i = 0; i + 1 < sizeof digits && *p >= '0' && *p <= '9'; i++) digits[i] = *p++;
  if (!na_parse_long(digits, 1, 1L << 30, &threads)) return false;
  return threads <= 1 + atomic_load(&helper_count); /* the zombie main thread counts too */
}

static void on_main_thread_exit(void) {
  atomic_store(&main_thread_left, true);
  wake_helpers();
}

/* glibc ends a process with exit(0) when its last thread returns; with helper threads still
 * sleeping that never happens, and as they block every signal, nothing but SIGKILL would end
 * it. So the first helper to find itself among the last ones ends it as glibc would have.
 * Asking the kernel takes three system calls: done once the first thread has left, and, in
 * case it left unseen (it never allocated), at every CHECK_ALONE_EVERY-th wake. */
#define CHECK_ALONE_EVERY 8

bool na_helper_sleep(uint32_t ms) {
  static _Atomic bool ending;
  static _Atomic uint32_t wakes;
  uint32_t alarm = atomic_load(&helpers_alarm);
  if (atomic_load(&helpers_paused) > 0) return false;
  na_os_wait_ms(&helpers_alarm, alarm, ms);
  if (atomic_load(&helpers_paused) > 0) return false;
  bool ask = atomic_load(&main_thread_left) || atomic_fetch_add(&wakes, 1) % CHECK_ALONE_EVERY == 0;
  if (ask && only_helpers_left() && !atomic_exchange(&ending, true)) exit(0);
  return true;
}

static void background_start(int arena_index) {
  int node = arena_index < NA_MAX_NODES ? arena_index : na_topology.usable_list[0];
  na_helper_start(&background_running[node], "numalloc-purge", background_main,
                  (void *)(intptr_t)node);
}

/* Written only where set: the child copies each page it writes. The child's age starts at
 * the fork: a child that runs a moment (a shell's command, a build's compiler) starts no
 * purging thread. */
void na_purge_after_fork_child(void) {
  if (atomic_load(&first_ms) != 0) atomic_store(&first_ms, 0);
  if (atomic_load(&main_thread_left)) atomic_store(&main_thread_left, false);
  if (atomic_load(&helper_count) != 0)
    atomic_store(&helper_count, 0);              /* only this thread crossed */
  if (helpers_started != 0) helpers_started = 0; /* their handles name the parent's threads */
  if (atomic_load(&helpers_paused) != 0) atomic_store(&helpers_paused, 0); /* by another thread */
  if (pthread_mutex_trylock(&helpers_lock) == 0)
    pthread_mutex_unlock(&helpers_lock);
  else /* held by a thread that did not cross */
    helpers_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
  for (int n = 0; n < NA_MAX_NODES; n++)
    if (atomic_load(&background_running[n])) atomic_store(&background_running[n], false);
}
