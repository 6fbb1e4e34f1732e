/* overlap_alloc.c: a deliberately broken allocator for scripts/bench --selftest. Preloaded, it
 * serves the malloc family from glibc but, once in a while, answers malloc with a block that is
 * still live (same address, big enough), as a broken allocator that hands a block out twice
 * would. Every workload must then find a damaged block and exit 1: that is what proves their
 * checks can fail. The extra copy's free is swallowed, so glibc never sees a double free.
 *
 * Slow on purpose (one lock around a table of live blocks); only for the self-test. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define TABLE (1u << 22) /* open addressing; the self-test's runs stay far below this */
/* One malloc in `every` is answered with a live block: OVERLAP_EVERY, default 61. */
static uint64_t every;

typedef struct entry {
  uintptr_t addr; /* 0: empty, 1: deleted */
  size_t size;
  unsigned extra; /* copies handed out on top of the real block */
} entry;

static entry table[TABLE];
#define RECENT 1024 /* the candidates: the blocks malloc returned last */
static uintptr_t recent[RECENT];
static size_t recent_at;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t calls, rng = 0x9e3779b97f4a7c15ull;

static size_t slot_of(uintptr_t a) {
  return (size_t)((a >> 4) * 0x9e3779b97f4a7c15ull >> 42) & (TABLE - 1);
}

static entry *find(uintptr_t a) {
  for (size_t i = slot_of(a), n = 0; n < TABLE; i = (i + 1) & (TABLE - 1), n++) {
    if (table[i].addr == a) return &table[i];
    if (table[i].addr == 0) return NULL;
  }
  return NULL;
}

static void insert(uintptr_t a, size_t size) {
  recent[recent_at++ % RECENT] = a;
  for (size_t i = slot_of(a);; i = (i + 1) & (TABLE - 1))
    if (table[i].addr <= 1) {
      table[i] = (entry){a, size, 0};
      return;
    }
}

/* A recently returned block, still live, of at least `size` bytes and at most twice that. */
static entry *live_fit(size_t size) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  for (size_t n = 0, i = rng % RECENT; n < RECENT; n++, i = (i + 1) % RECENT) {
    entry *e = recent[i] ? find(recent[i]) : NULL;
    if (e != NULL && e->size >= size && e->size <= 2 * size) return e;
  }
  return NULL;
}

void *malloc(size_t size) {
  pthread_mutex_lock(&lock);
  if (every == 0) { /* getenv does not allocate */
    const char *v = getenv("OVERLAP_EVERY");
    every = v && atoi(v) > 0 ? (uint64_t)atoi(v) : 61;
  }
  if (++calls % every == 0 && size >= 8) {
    entry *e = live_fit(size);
    if (e != NULL) {
      e->extra++;
      pthread_mutex_unlock(&lock);
      return (void *)e->addr;
    }
  }
  pthread_mutex_unlock(&lock);
  void *p = __libc_malloc(size);
  if (p != NULL) {
    pthread_mutex_lock(&lock);
    insert((uintptr_t)p, size);
    pthread_mutex_unlock(&lock);
  }
  return p;
}

/* Returns 1 when the free was of an extra copy (swallowed), 0 when the block is really freed. */
static int forget(void *p) {
  pthread_mutex_lock(&lock);
  entry *e = find((uintptr_t)p);
  int swallowed = 0;
  if (e != NULL && e->extra > 0) {
    e->extra--;
    swallowed = 1;
  } else if (e != NULL) {
    e->addr = 1;
  }
  pthread_mutex_unlock(&lock);
  return swallowed;
}

void free(void *p) {
  if (p != NULL && !forget(p)) __libc_free(p);
}

void *calloc(size_t n, size_t size) {
  return __libc_calloc(n, size); /* never tracked: calloc'd blocks are never handed out twice */
}

void *realloc(void *p, size_t size) {
  if (p == NULL) return malloc(size);
  pthread_mutex_lock(&lock);
  entry *e = find((uintptr_t)p);
  size_t old = e ? e->size : 0;
  int copy = e != NULL && e->extra > 0;
  pthread_mutex_unlock(&lock);
  if (copy || e != NULL) { /* tracked: move it by hand so that the table stays right */
    void *q = malloc(size);
    if (q == NULL) return NULL;
    memmove(q, p, old < size ? old : size);
    free(p);
    return q;
  }
  return __libc_realloc(p, size);
}
