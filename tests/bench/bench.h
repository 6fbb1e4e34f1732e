/* bench.h: what every workload program shares: arguments, a seeded random generator, block
 * patterns that are written after malloc and verified before free, the preload check, resident
 * memory from /proc/self/status, and the one RESULT line.
 *
 * The workloads use only the plain malloc family: scripts/bench runs them under LD_PRELOAD of
 * each allocator. A workload that finds a damaged block exits with status 1, so a broken
 * allocator fails instead of looking fast. */
#ifndef BENCH_H
#define BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Exit statuses the runner tells apart. */
#define BENCH_EXIT_CORRUPT 1 /* a block's contents were wrong, or malloc returned NULL */
#define BENCH_EXIT_USAGE   2
#define BENCH_EXIT_PRELOAD 3 /* BENCH_EXPECT_LIB is set but that library does not serve malloc */

typedef struct bench_args {
  double scale;     /* -s: multiplies every size or iteration count; 1.0 is the full run */
  int threads;      /* -t: worker threads (default 2, the judged machine's cores) */
  const char *mode; /* -m: a workload-specific variant, or NULL */
} bench_args;

/* Parses "-s SCALE -t THREADS -m MODE", then checks the preload (see bench_check_preload).
 * Exits on bad arguments. */
void bench_init(int argc, char **argv, bench_args *args);

/* When BENCH_EXPECT_LIB is set, malloc, free, calloc and realloc must all resolve to a library
 * whose path contains it, and that library must appear in /proc/self/maps; otherwise the
 * program exits with BENCH_EXIT_PRELOAD. Called by bench_init. */
void bench_check_preload(void);

/* Scales a count, never below `min`. */
size_t bench_scaled(const bench_args *args, double full, size_t min);

/* splitmix64: small, fast, and the same sequence on every run for a seed. */
typedef struct bench_rng {
  uint64_t state;
} bench_rng;

static inline uint64_t bench_rand(bench_rng *rng) {
  uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline size_t bench_range(bench_rng *rng, size_t lo, size_t hi) {
  return lo + (size_t)(bench_rand(rng) % (hi - lo + 1));
}

/* Log-uniform in [lo, hi]: as many blocks between 16 and 32 bytes as between 1 and 2 KiB. */
size_t bench_log_range(bench_rng *rng, size_t lo, size_t hi);

/* A tag that differs for every (block, generation); never zero. */
static inline uint64_t bench_tag(uint64_t a, uint64_t b) {
  bench_rng r = {a * 0x100000001b3ull ^ b};
  return bench_rand(&r) | 1;
}

/* Block contents. A word every `stride` bytes and the last 8 bytes hold tag ^ offset, so every
 * cache line (stride BENCH_LINE) or every page (stride BENCH_PAGE) is written, and words written
 * before and after a realloc follow one rule. Writing every byte would measure memset, not the
 * allocator; one word per line still catches two live blocks that overlap. Blocks are at least
 * 8 bytes. bench_write covers [from, size): the part a realloc added to a block written up to
 * `from` (0 for a new block). */
#define BENCH_LINE 64
#define BENCH_PAGE 4096
void bench_write(void *p, size_t from, size_t size, uint64_t tag, size_t stride);
void bench_check(const void *p, size_t size, uint64_t tag, size_t stride);

/* Reports a damaged block or other failure on stderr and exits BENCH_EXIT_CORRUPT. */
void bench_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* malloc that treats NULL as failure. */
void *bench_malloc(size_t size);

/* free and realloc that count their calls, so the runner can relate the allocator's system
 * calls (madvise) to the work done. The counters are per thread (no atomic on the measured
 * path) and are added up when a thread exits and in bench_result. */
typedef struct bench_counts {
  uint64_t frees, reallocs;
  int registered;
} bench_counts;
extern __thread bench_counts bench_thread_counts;
void bench_register_thread(void);

static inline void bench_free(void *p) {
  if (__builtin_expect(!bench_thread_counts.registered, 0)) bench_register_thread();
  bench_thread_counts.frees++;
  free(p);
}

/* realloc that treats NULL as failure (size > 0). */
static inline void *bench_realloc(void *p, size_t size) {
  if (__builtin_expect(!bench_thread_counts.registered, 0)) bench_register_thread();
  bench_thread_counts.reallocs++;
  void *q = realloc(p, size);
  if (q == NULL) bench_fail("realloc to %zu returned NULL", size);
  return q;
}

/* A block under test: written after malloc, verified before free. */
typedef struct bench_block {
  void *p;
  size_t size;
  uint64_t tag;
} bench_block;

/* Allocates `size` bytes and writes the pattern of `tag` at `stride`. */
static inline void bench_block_new(bench_block *b, size_t size, uint64_t tag, size_t stride) {
  b->size = size;
  b->tag = tag;
  b->p = bench_malloc(size);
  bench_write(b->p, 0, size, tag, stride);
}

/* Verifies the pattern and frees the block; a NULL block is skipped. */
static inline void bench_block_free(bench_block *b, size_t stride) {
  if (b->p == NULL) return;
  bench_check(b->p, b->size, b->tag, stride);
  bench_free(b->p);
  b->p = NULL;
}

/* pthread_create that counts the threads a run starts (the C library gives each exited
 * thread's stack back with one madvise, which the runner tells apart from the allocator's);
 * fails the run when the thread cannot start. */
void bench_thread_create(pthread_t *tid, void *(*fn)(void *), void *arg);
/* The same with the thread's attributes (a smaller stack, for workloads of many threads). */
void bench_thread_create_attr(pthread_t *tid, const pthread_attr_t *attr, void *(*fn)(void *),
                              void *arg);

/* Runs fn(arg_base + i * arg_size) in n threads, i from 0, and joins them all; with a NULL
 * arg_base the argument is i itself, as (void *)(intptr_t)i. */
void bench_spawn(int n, void *(*fn)(void *), void *arg_base, size_t arg_size);

/* A single-producer single-consumer ring of blocks: how one thread hands blocks to another.
 * put waits (yielding) while the ring is full; take returns 0 when it is empty. */
#define BENCH_MAILBOX_SIZE 4096 /* a power of two */
typedef struct bench_mailbox {
  _Alignas(64) _Atomic size_t head; /* next slot the producer writes */
  _Alignas(64) _Atomic size_t tail; /* next slot the consumer reads */
  _Alignas(64) bench_block items[BENCH_MAILBOX_SIZE];
} bench_mailbox;
void bench_mailbox_put(bench_mailbox *m, const bench_block *b);
int bench_mailbox_take(bench_mailbox *m, bench_block *out);

/* Batches of blocks handed from producing threads to consuming ones through a shared stack
 * of at most max_waiting batches, a fixed number in all. A batch starts with its link. */
typedef struct bench_batch_link {
  struct bench_batch_link *next;
} bench_batch_link;
typedef struct bench_handoff {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  bench_batch_link *stack;
  size_t waiting, max_waiting, to_produce, to_take;
} bench_handoff;
void bench_handoff_init(bench_handoff *h, size_t batches, size_t max_waiting);
/* A producer's turn to make a batch: 0 once every batch has been made. */
int bench_handoff_claim(bench_handoff *h);
/* Waits while max_waiting batches wait. */
void bench_handoff_push(bench_handoff *h, bench_batch_link *batch);
/* The batch pushed last, waiting for one if need be; NULL once every batch has been taken. */
bench_batch_link *bench_handoff_pop(bench_handoff *h);

/* For workloads whose threads each hold one object at a time: bench_hold publishes thread
 * `self`'s object (self < BENCH_MAX_HOLDERS) and fails at once when it overlaps the object
 * another thread holds; bench_unhold withdraws it, and must come before the object's free (the
 * allocator orders that free before any reuse of the memory). */
#define BENCH_MAX_HOLDERS 1024
void bench_hold(int self, const void *p, size_t size);
void bench_unhold(int self);

/* Seconds on the monotonic clock. */
double bench_now(void);

/* A field of /proc/self/status in KiB ("VmHWM", "VmRSS"), or -1. */
long bench_status_kb(const char *field);

/* Prints "RESULT name=NAME seconds=S cpu_seconds=C peak_rss_kb=P final_rss_kb=F frees=N
 * reallocs=M threads=T malloc_from=LIB preload=verified|unchecked EXTRA": S is the measured
 * section's wall time, C the process's user+system time since bench_init, the resident sizes are
 * read now, N and M the bench_free and bench_realloc calls of all threads (every other thread
 * must have exited), T the threads bench_thread_create started.
 * `extra` is more key=value pairs, or NULL. */
void bench_result(const char *name, double seconds, const char *extra);

/* The same with the final resident size given (a workload that measured it earlier). */
void bench_result_rss(const char *name, double seconds, long final_rss_kb, const char *extra);

#endif
