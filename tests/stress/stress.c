/* stress.c: the load test. Many more threads than cores allocate, check and free blocks of
 * mixed sizes; blocks travel between threads through a shared slot table, threads exit while
 * their blocks live on in others, a fork loop checks that children can allocate, and realloc
 * storms walk blocks across every size range. Every block carries a pattern derived from its
 * address and size, checked before it is freed, and a registry of live addresses catches a
 * block handed out twice. Resident memory is sampled throughout: it must not creep up in the
 * steady state, and must fall back near the start once everything is freed and collected.
 *
 * Built twice from this file: `stress` uses the plain malloc family (run it under LD_PRELOAD
 * of any allocator), `stress_core` (STRESS_CORE) calls numalloc_* from the core linked in,
 * so that sanitizer builds see the allocator's own code. Exit 0 on success; any failure
 * prints one "stress: FAIL:" line and aborts, so a debugger or core file shows where. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#ifdef STRESS_CORE
#include "numalloc.h"
#define A_MALLOC         numalloc_malloc
#define A_CALLOC         numalloc_calloc
#define A_REALLOC        numalloc_realloc
#define A_FREE           numalloc_free
#define A_MEMALIGN       numalloc_memalign
#define A_ALIGNED_ALLOC  numalloc_aligned_alloc
#define A_POSIX_MEMALIGN numalloc_posix_memalign
#define A_USABLE(p)      numalloc_usable_size(p)
#else
#define A_MALLOC         malloc
#define A_CALLOC         calloc
#define A_REALLOC        realloc
#define A_FREE           free
#define A_MEMALIGN       memalign
#define A_ALIGNED_ALLOC  aligned_alloc
#define A_POSIX_MEMALIGN posix_memalign
#define A_USABLE(p)      malloc_usable_size(p)
#endif

#define MiB         ((size_t)1 << 20)
#define LOCAL_SLOTS 16
#define BURST_MAX   128
#define MAX_WORKERS 1024
#define MAX_SAMPLES 8192

/* ---- settings ------------------------------------------------------------------------- */

typedef struct config_s {
  double seconds;
  int threads;
  size_t slots;
  uint64_t seed;
  size_t max_size;
  int fork_ms;         /* 0: no fork loop */
  int fork_threads;    /* threads each forked child starts */
  double growth_ratio; /* steady state: last third's max RSS <= first third's * this + slack */
  size_t growth_slack;
  size_t final_slack; /* after freeing everything: RSS <= start + this */
  bool rss_check;
  bool verbose;
} config_t;

static config_t cfg = {
    .seconds = 20,
    .threads = 32,
    .slots = 4096,
    .seed = 1,
    .max_size = 8 * MiB,
    .fork_ms = 100,
    .fork_threads = 2,
    .growth_ratio = 1.25,
    .growth_slack = 48 * MiB,
    .final_slack = 32 * MiB,
    .rss_check = true,
};

/* ---- failure reports: formatted on the stack, written without stdio ------------------- */

static _Atomic int in_child;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  char line[512];
  int n = snprintf(line, sizeof line, "stress%s: FAIL: ", in_child ? " (child)" : "");
  va_list args;
  va_start(args, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, args);
  va_end(args);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(2, line, (size_t)n);
  (void)w;
  abort();
}

static void note(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vfprintf(stdout, fmt, args);
  va_end(args);
  fflush(stdout);
}

/* ---- randomness: test_util.h's splitmix64, one state per thread ------------------------- */

static size_t rnd_range(uint64_t *state, size_t lo, size_t hi) { /* inclusive */
  return lo + (size_t)(tu_rand(state) % (hi - lo + 1));
}

/* Sizes weighted to small: most under 256 bytes, a tail up to the maximum. */
static size_t rnd_size(uint64_t *state) {
  unsigned r = (unsigned)(tu_rand(state) % 1000);
  size_t n;
  if (r < 400)
    n = rnd_range(state, 0, 64);
  else if (r < 700)
    n = rnd_range(state, 65, 256);
  else if (r < 900)
    n = rnd_range(state, 257, 4096);
  else if (r < 975)
    n = rnd_range(state, 4097, 64 * 1024);
  else if (r < 995)
    n = rnd_range(state, 64 * 1024 + 1, 256 * 1024);
  else if (r < 999 || tu_rand(state) % 4 != 0)
    n = rnd_range(state, 256 * 1024 + 1, MiB);
  else
    n = rnd_range(state, MiB + 1, 8 * MiB);
  return n > cfg.max_size ? cfg.max_size : n;
}

/* ---- block contents: test_util.h's pattern, tagged with the address and size ------------ */

static uint64_t block_tag(uintptr_t addr, size_t n) { return addr ^ ((uint64_t)n << 48) ^ n; }

static void fill(void *p, size_t n) { tu_fill(p, n, block_tag((uintptr_t)p, n)); }

static void report_mismatch(const char *what, const void *p, size_t n, uintptr_t pat_p,
                            size_t pat_n, size_t at) {
  uint64_t tag = block_tag(pat_p, pat_n);
  uint64_t got = 0, want = 0;
  size_t w = at - at % 8;
  for (size_t i = w; i < w + 8 && i < n; i++) {
    got |= (uint64_t)((const uint8_t *)p)[i] << (8 * (i - w));
    want |= (uint64_t)tu_pattern_byte(tag, i) << (8 * (i - w));
  }
  fail("%s: block %p of %zu bytes (pattern of %#lx/%zu) differs at offset %zu: "
       "word 0x%016llx, expected 0x%016llx",
       what, p, n, (unsigned long)pat_p, pat_n, at, (unsigned long long)got,
       (unsigned long long)want);
}

/* Checks that bytes [0, len) of `p` hold the pattern of block (pat_p, pat_n). */
static void verify_as(const char *what, const void *p, size_t len, uintptr_t pat_p, size_t pat_n) {
  size_t at = tu_mismatch(p, len, block_tag(pat_p, pat_n));
  if (at != SIZE_MAX) report_mismatch(what, p, len, pat_p, pat_n, at);
}

static void verify(const char *what, const void *p, size_t n) {
  verify_as(what, p, n, (uintptr_t)p, n);
}

/* ---- the registry of live blocks: catches an address handed out twice ----------------- */

#define STRIPES        4096
#define STRIPE_ENTRIES 48

typedef struct stripe_s {
  pthread_mutex_t lock;
  int count;
  _Atomic size_t bytes;
  void *ptr[STRIPE_ENTRIES];
  size_t size[STRIPE_ENTRIES];
} stripe_t;

static stripe_t registry[STRIPES];

static stripe_t *stripe_of(const void *p) { return &registry[tu_mix((uintptr_t)p >> 4) % STRIPES]; }

static void registry_init(void) {
  for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&registry[i].lock, NULL);
}

/* The child of a fork runs single-threaded over a copy; the registry's locks may have been
 * held at the fork, so the child does without it. */
static bool registry_on(void) { return !atomic_load_explicit(&in_child, memory_order_relaxed); }

static void registry_add(void *p, size_t n) {
  if (p == NULL || !registry_on()) return;
  stripe_t *s = stripe_of(p);
  pthread_mutex_lock(&s->lock);
  for (int i = 0; i < s->count; i++)
    if (s->ptr[i] == p)
      fail("block %p (%zu bytes) handed out while still live as a block of %zu bytes", p, n,
           s->size[i]);
  if (s->count == STRIPE_ENTRIES) fail("registry stripe overflow (too many live blocks)");
  s->ptr[s->count] = p;
  s->size[s->count++] = n;
  atomic_fetch_add_explicit(&s->bytes, n, memory_order_relaxed);
  pthread_mutex_unlock(&s->lock);
}

static void registry_remove(void *p, size_t n) {
  if (p == NULL || !registry_on()) return;
  stripe_t *s = stripe_of(p);
  pthread_mutex_lock(&s->lock);
  int i = 0;
  while (i < s->count && s->ptr[i] != p) i++;
  if (i == s->count) fail("freeing %p, which the registry does not know (test bug)", p);
  if (s->size[i] != n) fail("freeing %p as %zu bytes, registered as %zu", p, n, s->size[i]);
  s->count--;
  s->ptr[i] = s->ptr[s->count];
  s->size[i] = s->size[s->count];
  atomic_fetch_sub_explicit(&s->bytes, n, memory_order_relaxed);
  pthread_mutex_unlock(&s->lock);
}

static size_t registry_live_bytes(void) {
  size_t total = 0;
  for (int i = 0; i < STRIPES; i++)
    total += atomic_load_explicit(&registry[i].bytes, memory_order_relaxed);
  return total;
}

/* ---- allocator hooks found at run time ------------------------------------------------ */

static int (*node_of_fn)(const void *); /* numalloc_node_of when numalloc serves malloc */
static void (*collect_fn)(void);        /* numalloc_collect, else none */
static int (*trim_fn)(size_t);          /* glibc's malloc_trim when there is no collect */

static void find_hooks(void) {
#ifdef STRESS_CORE
  node_of_fn = numalloc_node_of;
  collect_fn = numalloc_collect;
#else
  node_of_fn = (int (*)(const void *))dlsym(RTLD_DEFAULT, "numalloc_node_of");
  collect_fn = (void (*)(void))dlsym(RTLD_DEFAULT, "numalloc_collect");
  if (collect_fn == NULL) trim_fn = (int (*)(size_t))dlsym(RTLD_DEFAULT, "malloc_trim");
#endif
  const char *expect = getenv("STRESS_EXPECT_NUMALLOC");
  if (expect != NULL && strcmp(expect, "1") == 0) {
    if (node_of_fn == NULL || collect_fn == NULL)
      fail("STRESS_EXPECT_NUMALLOC=1 but numalloc_node_of/numalloc_collect are not "
           "there: the preload did not take effect");
    void *p = A_MALLOC(100);
    if (node_of_fn(p) == -1) fail("malloc(100) = %p does not come from numalloc", p);
    A_FREE(p);
  }
}

static void collect_now(void) {
  if (collect_fn != NULL)
    collect_fn();
  else if (trim_fn != NULL)
    trim_fn(0);
}

/* ---- blocks: allocation, release, and the packed form kept in slots ------------------- */

/* A slot keeps a block in one word: the address (below 2^48) over a 16-bit size code,
 * m << e with an 11-bit m, so that a block moves between threads with one exchange. */
typedef uint64_t packed_t;

static size_t representable(size_t n) {
  unsigned e = 0;
  while ((n >> e) > 2047) e++;
  return (n >> e) << e;
}

static packed_t pack(void *p, size_t n) {
  unsigned e = 0;
  while ((n >> e) > 2047) e++;
  if ((uintptr_t)p >> 48) fail("address %p above 2^48 cannot be packed", p);
  if (p == NULL) p = (void *)(uintptr_t)1; /* malloc(0) may return NULL: still a block */
  return ((uint64_t)(uintptr_t)p << 16) | (e << 11) | (n >> e);
}

static void *packed_ptr(packed_t v) {
  uintptr_t p = (uintptr_t)(v >> 16);
  return p == 1 ? NULL : (void *)p;
}

static size_t packed_size(packed_t v) { return (size_t)(v & 2047) << ((v >> 11) & 31); }

typedef struct counters_s {
  uint64_t ops, allocs, frees, reallocs, storms, bursts;
} counters_t;

static void check_new(void *p, size_t n, size_t alignment) {
  if (p == NULL) {
    if (n == 0) return;
    fail("allocation of %zu bytes (alignment %zu) returned NULL, errno %d", n, alignment, errno);
  }
  if ((uintptr_t)p % alignment != 0)
    fail("block %p of %zu bytes is not %zu-aligned", p, n, alignment);
  size_t usable = A_USABLE(p);
  if (usable < n) fail("block %p of %zu bytes has usable size %zu", p, n, usable);
  if (node_of_fn != NULL && node_of_fn(p) == -1)
    fail("block %p of %zu bytes is not owned by numalloc", p, n);
}

/* A new block of about `want` bytes through one of the allocation calls, filled. */
static void *block_new(uint64_t *rng, size_t want, size_t *out_n, counters_t *c) {
  size_t n = representable(want);
  void *p;
  size_t alignment = 16;
  unsigned how = (unsigned)(tu_rand(rng) % 100);
  if (how < 80) {
    p = A_MALLOC(n);
  } else if (how < 88) {
    p = A_CALLOC(1, n);
    if (p != NULL)
      for (size_t i = 0; i < n; i++)
        if (((uint8_t *)p)[i] != 0) fail("calloc(1, %zu) = %p: byte %zu is not zero", n, p, i);
  } else if (how < 92) {
    alignment = (size_t)1 << rnd_range(rng, 4, 12);
    n = representable(n - n % alignment); /* C11: size a multiple of the alignment */
    n -= n % alignment;
    p = A_ALIGNED_ALLOC(alignment, n);
  } else if (how < 96) {
    alignment = (size_t)1 << rnd_range(rng, 3, 16);
    p = NULL;
    int rc = A_POSIX_MEMALIGN(&p, alignment, n);
    if (rc != 0) fail("posix_memalign(%zu, %zu) failed: %d", alignment, n, rc);
  } else if (how < 98) {
    alignment = (size_t)1 << rnd_range(rng, 4, 13);
    p = A_MEMALIGN(alignment, n);
  } else {
    p = A_REALLOC(NULL, n);
  }
  if (alignment < 16) alignment = 16;
  check_new(p, n, alignment);
  registry_add(p, n);
  if (p != NULL) fill(p, n);
  c->allocs++;
  *out_n = n;
  return p;
}

static void block_free(const char *what, void *p, size_t n, counters_t *c) {
  if (p == NULL) return;
  verify(what, p, n);
  if (node_of_fn != NULL && node_of_fn(p) == -1)
    fail("%s: block %p of %zu bytes no longer owned by numalloc", what, p, n);
  registry_remove(p, n);
  A_FREE(p);
  c->frees++;
}

static void packed_free(const char *what, packed_t v, counters_t *c) {
  if (v != 0) block_free(what, packed_ptr(v), packed_size(v), c);
}

/* realloc with its checks: the common prefix survives, the rest is filled anew. */
static void *block_realloc(void *p, size_t n, size_t want, size_t *out_n, counters_t *c) {
  size_t m = representable(want);
  if (p != NULL) verify("before realloc", p, n);
  registry_remove(p, n);
  uintptr_t old = (uintptr_t)p;
  void *q = A_REALLOC(p, m);
  if (q == NULL && m != 0)
    fail("realloc(%#lx, %zu) returned NULL, errno %d", (unsigned long)old, m, errno);
  if (q == NULL) { /* realloc(p, 0) freed p (glibc) */
    *out_n = 0;
    return NULL;
  }
  check_new(q, m, 16);
  size_t keep = n < m ? n : m;
  verify_as("after realloc", q, keep, old, n);
  registry_add(q, m);
  fill(q, m);
  c->reallocs++;
  *out_n = m;
  return q;
}

/* ---- the shared slot table ------------------------------------------------------------ */

static _Atomic packed_t *slots;
static _Atomic size_t slots_used; /* filled at least once: the steady state needs them all */

static void slot_put(uint64_t *rng, void *p, size_t n, counters_t *c) {
  size_t i = (size_t)(tu_rand(rng) % cfg.slots);
  packed_t old = atomic_exchange_explicit(&slots[i], pack(p, n), memory_order_acq_rel);
  if (old == 0 && !atomic_load_explicit(&in_child, memory_order_relaxed))
    atomic_fetch_add_explicit(&slots_used, 1, memory_order_relaxed);
  packed_free("shared slot", old, c);
}

static void slots_drain(counters_t *c) {
  for (size_t i = 0; i < cfg.slots; i++) packed_free("drain", atomic_exchange(&slots[i], 0), c);
}

/* ---- worker operations ---------------------------------------------------------------- */

typedef struct local_s {
  void *p[LOCAL_SLOTS];
  size_t n[LOCAL_SLOTS];
} local_t;

static void op_shared(uint64_t *rng, counters_t *c) {
  size_t n;
  void *p = block_new(rng, rnd_size(rng), &n, c);
  slot_put(rng, p, n, c);
}

static void op_local(uint64_t *rng, local_t *l, counters_t *c) {
  int i = (int)(tu_rand(rng) % LOCAL_SLOTS);
  block_free("local slot", l->p[i], l->n[i], c);
  l->p[i] = block_new(rng, rnd_size(rng), &l->n[i], c);
}

static void op_realloc(uint64_t *rng, local_t *l, counters_t *c) {
  int i = (int)(tu_rand(rng) % LOCAL_SLOTS);
  l->p[i] = block_realloc(l->p[i], l->n[i], rnd_size(rng), &l->n[i], c);
}

/* Many reallocs of one block in a row, its size walking up and down by up to 4x: through
 * the small classes, across to large spans and (rarely) to huge blocks, and back. */
static void op_storm(uint64_t *rng, local_t *l, counters_t *c) {
  int i = (int)(tu_rand(rng) % LOCAL_SLOTS);
  bool big = tu_rand(rng) % 10 == 0;
  size_t limit = big ? cfg.max_size : 16 * 1024;
  int steps = big ? 24 : 200;
  size_t size = l->n[i] > limit ? limit : l->n[i];
  for (int s = 0; s < steps; s++) {
    unsigned f = (unsigned)rnd_range(rng, 1, 4);
    if (tu_rand(rng) & 1)
      size = size * f + rnd_range(rng, 0, 64);
    else
      size = size / f;
    if (size > limit) size = limit;
    l->p[i] = block_realloc(l->p[i], l->n[i], size, &l->n[i], c);
  }
  c->storms++;
}

static int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }

/* A burst: many small blocks at once, freed in an order of their own. */
static void op_burst(uint64_t *rng, counters_t *c) {
  void *p[BURST_MAX];
  size_t n[BURST_MAX];
  int count = (int)rnd_range(rng, 8, BURST_MAX);
  size_t top = rnd_range(rng, 16, 1024);
  for (int i = 0; i < count; i++) p[i] = block_new(rng, rnd_range(rng, 0, top), &n[i], c);
  int step = (int)rnd_range(rng, 1, 7);
  while (gcd(count, step) != 1) step--; /* visits every block once */
  for (int k = 0, i = 0; k < count; k++, i = (i + step) % count) block_free("burst", p[i], n[i], c);
  c->bursts++;
}

/* ---- workers and their churn ---------------------------------------------------------- */

static _Atomic bool stop;
static _Atomic uint64_t total_ops, total_allocs, total_reallocs, total_storms, total_frees;

typedef struct worker_s {
  pthread_t thread;
  uint64_t serial;
  bool running;
  _Atomic bool done;
} worker_t;

static worker_t workers[MAX_WORKERS];
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;

static void counters_merge(const counters_t *c) {
  atomic_fetch_add(&total_ops, c->ops);
  atomic_fetch_add(&total_allocs, c->allocs);
  atomic_fetch_add(&total_frees, c->frees);
  atomic_fetch_add(&total_reallocs, c->reallocs);
  atomic_fetch_add(&total_storms, c->storms);
}

static void worker_step(uint64_t *rng, local_t *l, counters_t *c) {
  unsigned r = (unsigned)(tu_rand(rng) % 10000);
  if (r < 5500)
    op_shared(rng, c);
  else if (r < 8500)
    op_local(rng, l, c);
  else if (r < 9700)
    op_realloc(rng, l, c);
  else if (r < 9705)
    op_storm(rng, l, c);
  else
    op_burst(rng, c);
  c->ops++;
}

/* On exit a thread leaves about half of its blocks behind in the shared table. */
static void worker_leave(uint64_t *rng, local_t *l, counters_t *c) {
  for (int i = 0; i < LOCAL_SLOTS; i++) {
    if (tu_rand(rng) & 1)
      slot_put(rng, l->p[i], l->n[i], c);
    else
      block_free("local at exit", l->p[i], l->n[i], c);
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  uint64_t rng = tu_mix(cfg.seed * 1000003u + w->serial);
  local_t l;
  counters_t c = {0};
  for (int i = 0; i < LOCAL_SLOTS; i++) l.p[i] = block_new(&rng, rnd_size(&rng), &l.n[i], &c);
  uint64_t life = rnd_range(&rng, 500, 20000);
  for (uint64_t i = 0; i < life && !atomic_load_explicit(&stop, memory_order_relaxed); i++)
    worker_step(&rng, &l, &c);
  worker_leave(&rng, &l, &c);
  counters_merge(&c);
  pthread_mutex_lock(&done_lock);
  atomic_store(&w->done, true);
  pthread_cond_signal(&done_cond);
  pthread_mutex_unlock(&done_lock);
  return NULL;
}

static uint64_t next_serial;

static void worker_start(worker_t *w) {
  w->serial = next_serial++;
  atomic_store(&w->done, false);
  int rc = pthread_create(&w->thread, NULL, worker_main, w);
  if (rc != 0) fail("pthread_create: %s", strerror(rc));
  w->running = true;
}

/* Joins the workers that finished; while the run lasts, starts one in each one's place. */
static void workers_reap(bool restart) {
  for (int i = 0; i < cfg.threads; i++) {
    if (!workers[i].running || !atomic_load(&workers[i].done)) continue;
    pthread_join(workers[i].thread, NULL);
    workers[i].running = false;
    if (restart) worker_start(&workers[i]);
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void supervise(double until) {
  while (now_s() < until) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&done_lock);
    pthread_cond_timedwait(&done_cond, &done_lock, &ts);
    pthread_mutex_unlock(&done_lock);
    workers_reap(true);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < cfg.threads; i++)
    if (workers[i].running) {
      pthread_join(workers[i].thread, NULL);
      workers[i].running = false;
    }
}

/* ---- the fork loop -------------------------------------------------------------------- */

static _Atomic uint64_t fork_count;
static double fork_ms_fork, fork_ms_child; /* time in fork() and waiting for children */

static void *child_thread(void *arg) {
  uint64_t rng = tu_mix((uintptr_t)arg);
  counters_t c = {0};
  local_t l;
  for (int i = 0; i < LOCAL_SLOTS; i++) l.p[i] = block_new(&rng, rnd_size(&rng), &l.n[i], &c);
  for (int i = 0; i < 300; i++) {
    op_local(&rng, &l, &c);
    if (i % 3 == 0) op_realloc(&rng, &l, &c);
  }
  op_burst(&rng, &c);
  for (int i = 0; i < LOCAL_SLOTS; i++) block_free("child", l.p[i], l.n[i], &c);
  return NULL;
}

/* The child: checks and frees blocks its parent's threads left in slots (their owners do
 * not exist here), allocates on its own and in new threads, then leaves without atexit. */
static void child_main(uint64_t serial) {
  atomic_store(&in_child, 1);
  uint64_t rng = tu_mix(serial ^ 0xc0ffee);
  counters_t c = {0};
  for (int k = 0; k < 64; k++) {
    size_t i = (size_t)(tu_rand(&rng) % cfg.slots);
    packed_free("inherited slot", atomic_exchange(&slots[i], 0), &c);
  }
  pthread_t t[8];
  int nt = cfg.fork_threads < 8 ? cfg.fork_threads : 8;
  for (int i = 0; i < nt; i++)
    if (pthread_create(&t[i], NULL, child_thread, (void *)(uintptr_t)(serial * 8 + i)) != 0)
      fail("pthread_create in child");
  child_thread((void *)(uintptr_t)(serial * 8 + 7));
  for (int i = 0; i < nt; i++) pthread_join(t[i], NULL);
  _exit(0);
}

/* STRESS_ON_HANG, a command with %d for the pid (for example
 * gdb -batch -p %d -ex "thread apply all bt"), runs before a hung child is killed. */
static void show_hung_child(pid_t pid) {
  const char *hook = getenv("STRESS_ON_HANG");
  if (hook == NULL || strlen(hook) > 400) return;
  char command[512];
  snprintf(command, sizeof command, hook, (int)pid, (int)pid);
  fflush(stdout);
  if (system(command) != 0) note("stress: STRESS_ON_HANG command failed\n");
}

static void wait_child(pid_t pid) {
  double deadline = now_s() + 30;
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) fail("waitpid: %s", strerror(errno));
    if (now_s() > deadline) {
      show_hung_child(pid);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail("forked child %d hung for 30 s (deadlock after fork?)", (int)pid);
    }
    usleep(1000);
  }
  if (WIFSIGNALED(status)) fail("forked child died of signal %d", WTERMSIG(status));
  if (WEXITSTATUS(status) != 0) fail("forked child exited with %d", WEXITSTATUS(status));
}

static void *fork_loop(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    usleep((useconds_t)cfg.fork_ms * 1000);
    if (atomic_load(&stop)) break;
    uint64_t serial = atomic_fetch_add(&fork_count, 1);
    fflush(stdout);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) child_main(serial);
    double t1 = now_s();
    wait_child(pid);
    fork_ms_fork += (t1 - t0) * 1000;
    fork_ms_child += (now_s() - t1) * 1000;
  }
  return NULL;
}

/* ---- resident memory ------------------------------------------------------------------ */

typedef struct sample_s {
  double t;
  size_t rss, live, slots_used;
} sample_t;

static sample_t samples[MAX_SAMPLES];
static _Atomic int sample_count;

static size_t rss_now(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long size = 0, resident = 0;
  if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return 0;
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void *sampler(void *arg) {
  double start = *(double *)arg;
  double period = cfg.seconds / 2000.0;
  if (period < 0.1) period = 0.1;
  while (!atomic_load(&stop)) {
    int i = atomic_load(&sample_count);
    if (i < MAX_SAMPLES) {
      samples[i] = (sample_t){now_s() - start, rss_now(), registry_live_bytes(),
                              atomic_load_explicit(&slots_used, memory_order_relaxed)};
      atomic_store(&sample_count, i + 1);
    }
    usleep((useconds_t)(period * 1e6));
  }
  return NULL;
}

static size_t max_rss(int from, int to, size_t *live) {
  size_t m = 0, l = 0;
  for (int i = from; i < to; i++) {
    if (samples[i].rss > m) m = samples[i].rss;
    if (samples[i].live > l) l = samples[i].live;
  }
  if (live) *live = l;
  return m;
}

/* The steady state starts once the warm-up is over (a fifth of the run, at least 2 s) and
 * nearly every shared slot holds a block (from then on the live set stays about the same);
 * the largest resident size in its last third must not exceed the first third's by more
 * than the slack. Shorter than 10 s, the thirds are too short for their maxima to mean
 * anything; a run too slow to fill the slots (an emulator) is not judged either. */
static void check_growth(void) {
  int n = atomic_load(&sample_count);
  double warm = cfg.seconds / 5 < 2 ? 2 : cfg.seconds / 5;
  int first = 0;
  while (first < n && (samples[first].t < warm || samples[first].slots_used < cfg.slots * 95 / 100))
    first++;
  int len = n - first;
  double steady = len > 0 ? samples[n - 1].t - samples[first].t : 0;
  if (len < 6 || steady < 10) {
    note("stress: steady state (slots filled, after %.0f s) lasted %.1f s: too short to judge "
         "growth (10 s at least)\n",
         warm, steady);
    return;
  }
  size_t live1, live3;
  size_t a = max_rss(first, first + len / 3, &live1);
  size_t b = max_rss(n - len / 3, n, &live3);
  size_t limit = (size_t)((double)a * cfg.growth_ratio) + cfg.growth_slack;
  note("stress: steady state from %.1f s: RSS max in its first third %zu MiB (live %zu MiB), "
       "last third %zu MiB (live %zu MiB), limit %zu MiB; %d samples\n",
       samples[first].t, a / MiB, live1 / MiB, b / MiB, live3 / MiB, limit / MiB, len);
  if (cfg.rss_check && b > limit)
    fail("resident memory keeps growing: %zu MiB at the end of the steady state against "
         "%zu MiB at its start (limit %zu MiB)",
         b / MiB, a / MiB, limit / MiB);
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(
      stderr,
      "usage: stress [--seconds N] [--threads N] [--slots N] [--seed N] [--max-size BYTES]\n"
      "              [--fork-ms N (0: no fork)] [--fork-threads N] [--growth-ratio R]\n"
      "              [--growth-slack-mb N] [--final-slack-mb N] [--no-rss-check]\n"
      "env STRESS_EXPECT_NUMALLOC=1: fail unless numalloc serves malloc\n"
      "env STRESS_ON_HANG='gdb -batch -p %%d -ex \"thread apply all bt\"': run on a hung child\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-rss-check") == 0) {
      cfg.rss_check = false;
      continue;
    }
    if (v == NULL) usage();
    i++;
    if (strcmp(a, "--seconds") == 0)
      cfg.seconds = atof(v);
    else if (strcmp(a, "--threads") == 0)
      cfg.threads = atoi(v);
    else if (strcmp(a, "--slots") == 0)
      cfg.slots = strtoul(v, NULL, 0);
    else if (strcmp(a, "--seed") == 0)
      cfg.seed = strtoull(v, NULL, 0);
    else if (strcmp(a, "--max-size") == 0)
      cfg.max_size = strtoul(v, NULL, 0);
    else if (strcmp(a, "--fork-ms") == 0)
      cfg.fork_ms = atoi(v);
    else if (strcmp(a, "--fork-threads") == 0)
      cfg.fork_threads = atoi(v);
    else if (strcmp(a, "--growth-ratio") == 0)
      cfg.growth_ratio = atof(v);
    else if (strcmp(a, "--growth-slack-mb") == 0)
      cfg.growth_slack = strtoul(v, NULL, 0) * MiB;
    else if (strcmp(a, "--final-slack-mb") == 0)
      cfg.final_slack = strtoul(v, NULL, 0) * MiB;
    else
      usage();
  }
  if (cfg.threads < 1 || cfg.threads > MAX_WORKERS || cfg.slots < 1 || cfg.seconds <= 0) usage();
}

static void settle(void) { /* past any purge delay, twice */
  for (int i = 0; i < 2; i++) {
    collect_now();
    usleep(200 * 1000);
  }
  collect_now();
}

static const char *allocator_name(void) {
#ifdef STRESS_CORE
  return "numalloc core, linked in";
#else
  if (node_of_fn != NULL) return "numalloc (preload)";
  return trim_fn != NULL ? "glibc or another without numalloc_collect" : "unknown";
#endif
}

static void run(double start) {
  pthread_t sampler_thread, fork_thread;
  pthread_create(&sampler_thread, NULL, sampler, &start);
  if (cfg.fork_ms > 0) pthread_create(&fork_thread, NULL, fork_loop, NULL);
  for (int i = 0; i < cfg.threads; i++) worker_start(&workers[i]);
  supervise(start + cfg.seconds);
  if (cfg.fork_ms > 0) pthread_join(fork_thread, NULL);
  pthread_join(sampler_thread, NULL);
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  registry_init();
  find_hooks();
  slots = mmap(NULL, cfg.slots * sizeof *slots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
  if (slots == MAP_FAILED) fail("mmap of the slot table: %s", strerror(errno));
  note("stress: %s; %d threads on %ld cpus, %zu slots, sizes 0..%zu, %.0f s, seed %llu, "
       "fork every %d ms\n",
       allocator_name(), cfg.threads, sysconf(_SC_NPROCESSORS_ONLN), cfg.slots, cfg.max_size,
       cfg.seconds, (unsigned long long)cfg.seed, cfg.fork_ms);
  settle();
  size_t rss_start = rss_now();
  double start = now_s();
  run(start);
  double elapsed = now_s() - start;
  size_t live_peak;
  size_t peak = max_rss(0, atomic_load(&sample_count), &live_peak);
  note("stress: %.1f s, %llu ops, %llu allocations, %llu reallocs, %llu storms, %llu threads, "
       "%llu forks\n",
       elapsed, (unsigned long long)total_ops, (unsigned long long)total_allocs,
       (unsigned long long)total_reallocs, (unsigned long long)total_storms,
       (unsigned long long)next_serial, (unsigned long long)fork_count);
  if (fork_count > 0)
    note("stress: fork takes %.1f ms on average, a child runs %.1f ms\n",
         fork_ms_fork / (double)fork_count, fork_ms_child / (double)fork_count);
  check_growth();
  counters_t c = {0};
  slots_drain(&c);
  if (registry_live_bytes() != 0)
    fail("%zu bytes still registered after draining (test bug)", registry_live_bytes());
  size_t rss_freed = rss_now();
  settle();
  size_t rss_end = rss_now();
  note("stress: RSS start %zu MiB, peak %zu MiB (live peak %zu MiB), after free %zu MiB, "
       "after collect %zu MiB (limit %zu MiB)\n",
       rss_start / MiB, peak / MiB, live_peak / MiB, rss_freed / MiB, rss_end / MiB,
       (rss_start + cfg.final_slack) / MiB);
  if (cfg.rss_check && rss_end > rss_start + cfg.final_slack)
    fail("resident memory did not drop back after freeing everything: %zu MiB, started at "
         "%zu MiB (slack %zu MiB)",
         rss_end / MiB, rss_start / MiB, cfg.final_slack / MiB);
  note("stress: OK\n");
  return 0;
}
