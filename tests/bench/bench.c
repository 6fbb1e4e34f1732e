/* bench.c: the helpers every workload shares (see bench.h). */
#define _GNU_SOURCE
#include "bench.h"
#include "maps_check.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *malloc_from = "unknown";
static const char *preload_state = "unchecked"; /* "verified" once BENCH_EXPECT_LIB matched */
static double cpu_at_start;

/* User plus system seconds of the whole process so far. */
static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void usage(const char *prog) {
  fprintf(stderr, "usage: %s [-s SCALE] [-t THREADS] [-m MODE]\n", prog);
  exit(BENCH_EXIT_USAGE);
}

void bench_init(int argc, char **argv, bench_args *args) {
  args->scale = 1.0;
  args->threads = 2;
  args->mode = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "s:t:m:")) != -1) {
    if (opt == 's')
      args->scale = atof(optarg);
    else if (opt == 't')
      args->threads = atoi(optarg);
    else if (opt == 'm')
      args->mode = optarg;
    else
      usage(argv[0]);
  }
  if (optind != argc || !(args->scale > 0) || args->threads < 1 || args->threads > 1024)
    usage(argv[0]);
  bench_check_preload();
  cpu_at_start = cpu_seconds();
}

/* The path of the object that defines the function the program actually calls. */
static const char *defining_object(void *fn) {
  Dl_info info;
  if (fn == NULL || dladdr(fn, &info) == 0 || info.dli_fname == NULL) return "unknown";
  return info.dli_fname;
}

void bench_check_preload(void) {
  void *fns[] = {(void *)malloc, (void *)free, (void *)calloc, (void *)realloc};
  const char *names[] = {"malloc", "free", "calloc", "realloc"};
  malloc_from = defining_object(fns[0]);
  const char *want = getenv("BENCH_EXPECT_LIB");
  if (want == NULL || *want == '\0') return;
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    const char *from = defining_object(fns[i]);
    if (strstr(from, want) == NULL) {
      fprintf(stderr, "bench: %s comes from %s, not from %s: the preload did not take effect\n",
              names[i], from, want);
      exit(BENCH_EXIT_PRELOAD);
    }
  }
  if (!bench_maps_contain(want)) {
    fprintf(stderr, "bench: %s is not mapped in /proc/self/maps\n", want);
    exit(BENCH_EXIT_PRELOAD);
  }
  preload_state = "verified";
}

__thread bench_counts bench_thread_counts;
static _Atomic uint64_t exited_frees, exited_reallocs;
static pthread_key_t counts_key;
static pthread_once_t counts_once = PTHREAD_ONCE_INIT;

/* Runs in the exiting thread, before pthread_join returns in the joiner. */
static void add_exited_counts(void *value) {
  bench_counts *c = value;
  atomic_fetch_add(&exited_frees, c->frees);
  atomic_fetch_add(&exited_reallocs, c->reallocs);
  c->frees = c->reallocs = 0;
}

static void create_counts_key(void) {
  if (pthread_key_create(&counts_key, add_exited_counts) != 0)
    bench_fail("pthread_key_create failed");
}

void bench_register_thread(void) {
  pthread_once(&counts_once, create_counts_key);
  bench_thread_counts.registered = 1;
  pthread_setspecific(counts_key, &bench_thread_counts);
}

size_t bench_scaled(const bench_args *args, double full, size_t min) {
  double v = full * args->scale;
  return v < (double)min ? min : (size_t)v;
}

size_t bench_log_range(bench_rng *rng, size_t lo, size_t hi) {
  double u = (double)(bench_rand(rng) >> 11) * (1.0 / 9007199254740992.0);
  size_t v = (size_t)exp(log((double)lo) + u * (log((double)hi + 1) - log((double)lo)));
  return v < lo ? lo : v > hi ? hi : v;
}

static void write_word(void *p, size_t off, uint64_t tag) {
  uint64_t v = tag ^ off;
  memcpy((char *)p + off, &v, sizeof v);
}

static void check_word(const void *p, size_t off, uint64_t tag) {
  uint64_t v;
  memcpy(&v, (const char *)p + off, sizeof v);
  if (v != (tag ^ off))
    bench_fail("block %p: the word at offset %zu is %016llx, expected %016llx", p, off,
               (unsigned long long)v, (unsigned long long)(tag ^ off));
}

/* Stride words stop 16 bytes short of the end so that none overlaps the last word. */
void bench_write(void *p, size_t from, size_t size, uint64_t tag, size_t stride) {
  if (size < 8) bench_fail("blocks under test need at least 8 bytes, got %zu", size);
  size_t first = from < 16 ? 0 : (from - 16 + stride) / stride * stride;
  for (size_t off = first; off + 16 <= size; off += stride) write_word(p, off, tag);
  write_word(p, size - 8, tag);
}

void bench_check(const void *p, size_t size, uint64_t tag, size_t stride) {
  for (size_t off = 0; off + 16 <= size; off += stride) check_word(p, off, tag);
  check_word(p, size - 8, tag);
}

void *bench_malloc(size_t size) {
  void *p = malloc(size);
  if (p == NULL) bench_fail("malloc(%zu) returned NULL", size);
  return p;
}

void bench_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench: FAILED: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(BENCH_EXIT_CORRUPT);
}

static _Atomic uint64_t threads_created;

void bench_thread_create_attr(pthread_t *tid, const pthread_attr_t *attr, void *(*fn)(void *),
                              void *arg) {
  atomic_fetch_add(&threads_created, 1);
  if (pthread_create(tid, attr, fn, arg) != 0) bench_fail("pthread_create failed");
}

void bench_thread_create(pthread_t *tid, void *(*fn)(void *), void *arg) {
  bench_thread_create_attr(tid, NULL, fn, arg);
}

void bench_spawn(int n, void *(*fn)(void *), void *arg_base, size_t arg_size) {
  pthread_t *tids = calloc((size_t)n, sizeof *tids);
  if (tids == NULL) bench_fail("no memory for %d thread ids", n);
  for (int i = 0; i < n; i++)
    bench_thread_create(&tids[i], fn,
                        arg_base ? (char *)arg_base + (size_t)i * arg_size : (void *)(intptr_t)i);
  for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
  free(tids);
}

void bench_mailbox_put(bench_mailbox *m, const bench_block *b) {
  size_t head = atomic_load_explicit(&m->head, memory_order_relaxed);
  while (head - atomic_load_explicit(&m->tail, memory_order_acquire) >= BENCH_MAILBOX_SIZE)
    sched_yield();
  m->items[head % BENCH_MAILBOX_SIZE] = *b;
  atomic_store_explicit(&m->head, head + 1, memory_order_release);
}

int bench_mailbox_take(bench_mailbox *m, bench_block *out) {
  size_t tail = atomic_load_explicit(&m->tail, memory_order_relaxed);
  if (tail == atomic_load_explicit(&m->head, memory_order_acquire)) return 0;
  *out = m->items[tail % BENCH_MAILBOX_SIZE];
  atomic_store_explicit(&m->tail, tail + 1, memory_order_release);
  return 1;
}

void bench_handoff_init(bench_handoff *h, size_t batches, size_t max_waiting) {
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->not_empty, NULL);
  pthread_cond_init(&h->not_full, NULL);
  h->stack = NULL;
  h->waiting = 0;
  h->max_waiting = max_waiting;
  h->to_produce = h->to_take = batches;
}

int bench_handoff_claim(bench_handoff *h) {
  pthread_mutex_lock(&h->lock);
  int claimed = h->to_produce > 0;
  if (claimed) h->to_produce--;
  pthread_mutex_unlock(&h->lock);
  return claimed;
}

void bench_handoff_push(bench_handoff *h, bench_batch_link *batch) {
  pthread_mutex_lock(&h->lock);
  while (h->waiting >= h->max_waiting) pthread_cond_wait(&h->not_full, &h->lock);
  batch->next = h->stack;
  h->stack = batch;
  h->waiting++;
  pthread_cond_signal(&h->not_empty);
  pthread_mutex_unlock(&h->lock);
}

bench_batch_link *bench_handoff_pop(bench_handoff *h) {
  pthread_mutex_lock(&h->lock);
  while (h->stack == NULL && h->to_take > 0) pthread_cond_wait(&h->not_empty, &h->lock);
  bench_batch_link *batch = h->stack;
  if (h->to_take > 0) {
    h->stack = batch->next;
    h->waiting--;
    h->to_take--;
    if (h->to_take == 0) pthread_cond_broadcast(&h->not_empty); /* the other takers end */
    pthread_cond_signal(&h->not_full);
  } else {
    batch = NULL;
  }
  pthread_mutex_unlock(&h->lock);
  return batch;
}

/* One line per holder, so that publishing adds no false sharing of its own. */
static struct {
  _Alignas(64) _Atomic(uintptr_t) p;
  _Atomic size_t size;
} holders[BENCH_MAX_HOLDERS];
static _Atomic int holders_used;

void bench_hold(int self, const void *p, size_t size) {
  if (self < 0 || self >= BENCH_MAX_HOLDERS) bench_fail("bench_hold: holder %d out of range", self);
  int used = atomic_load(&holders_used);
  while (used <= self && !atomic_compare_exchange_weak(&holders_used, &used, self + 1)) {
  }
  atomic_store_explicit(&holders[self].size, size, memory_order_relaxed);
  atomic_store_explicit(&holders[self].p, (uintptr_t)p, memory_order_release);
  uintptr_t a = (uintptr_t)p;
  used = atomic_load(&holders_used);
  for (int t = 0; t < used; t++) {
    uintptr_t q = atomic_load_explicit(&holders[t].p, memory_order_acquire);
    size_t qs = atomic_load_explicit(&holders[t].size, memory_order_relaxed);
    if (t != self && q != 0 && a < q + qs && q < a + size)
      bench_fail("object %p of %zu bytes overlaps the one thread %d holds", p, size, t);
  }
}

void bench_unhold(int self) { atomic_store_explicit(&holders[self].p, 0, memory_order_release); }

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long bench_status_kb(const char *field) {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  size_t flen = strlen(field);
  for (char *line = buf; line != NULL && *line; line = strchr(line, '\n')) {
    if (*line == '\n') line++;
    if (strncmp(line, field, flen) == 0 && line[flen] == ':')
      return strtol(line + flen + 1, NULL, 10);
  }
  return -1;
}

static const char *basename_of(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

void bench_result_rss(const char *name, double seconds, long final_rss_kb, const char *extra) {
  uint64_t frees = atomic_load(&exited_frees) + bench_thread_counts.frees;
  uint64_t reallocs = atomic_load(&exited_reallocs) + bench_thread_counts.reallocs;
  printf("RESULT name=%s seconds=%.6f cpu_seconds=%.6f peak_rss_kb=%ld final_rss_kb=%ld frees=%llu "
         "reallocs=%llu threads=%llu malloc_from=%s preload=%s%s%s\n",
         name, seconds, cpu_seconds() - cpu_at_start, bench_status_kb("VmHWM"), final_rss_kb,
         (unsigned long long)frees, (unsigned long long)reallocs,
         (unsigned long long)atomic_load(&threads_created), basename_of(malloc_from), preload_state,
         extra ? " " : "", extra ? extra : "");
  fflush(stdout);
}

void bench_result(const char *name, double seconds, const char *extra) {
  bench_result_rss(name, seconds, bench_status_kb("VmRSS"), extra);
}
