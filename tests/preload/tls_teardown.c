/* tls_teardown.c: allocation after the allocator may have torn a thread down. glibc runs
 * pthread key destructors in key order, for several rounds, after C++ thread_local
 * destructors; keys created by the program come after any the allocator made at start, so
 * their destructors run when the thread's heap may already be gone. Here they allocate,
 * free blocks of other threads, hand new blocks to the main thread, and set their key again
 * to force another round. Blocks made in a destructor must be valid and freeable anywhere. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload_test.h"

#define NONE ((size_t)-1)

enum { THREADS = 64, ROUNDS = 3, HANDED = 16, WAVES = 16 };

struct block {
  void *p;
  size_t size;
  uint64_t tag;
};

static pthread_key_t key_a, key_b;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block handed[THREADS * (50 + 2 * ROUNDS * HANDED)];
static int n_handed;
static struct block from_main[THREADS];

static struct block make_block(uint64_t tag, size_t size) {
  struct block b = {malloc(size), size, tag};
  CHECK(b.p != NULL, "malloc(%zu) in a key destructor returned NULL", size);
  if (b.p) tu_fill(b.p, size, tag);
  return b;
}

static void check_and_free(struct block *b, const char *where) {
  if (!b->p) return;
  size_t bad = tu_mismatch(b->p, b->size, b->tag);
  CHECK(bad == NONE, "%s: %zu-byte block damaged at offset %zu", where, b->size, bad);
  free(b->p);
  b->p = NULL;
}

/* Runs in the dying thread; `value` counts the rounds left. */
static void destructor(void *value, pthread_key_t key, int salt) {
  uintptr_t left = (uintptr_t)value;
  struct block local[8];
  for (int i = 0; i < 8; i++) local[i] = make_block(left * 100 + i + salt, 16 << (i % 8));
  for (int i = 0; i < 8; i++) check_and_free(&local[i], "destructor's own block");
  pthread_mutex_lock(&lock);
  for (int i = 0; i < HANDED && n_handed < (int)(sizeof handed / sizeof handed[0]); i++) {
    handed[n_handed] = make_block((uint64_t)n_handed * 7 + salt, 24 + (size_t)i * 700);
    n_handed++;
  }
  pthread_mutex_unlock(&lock);
  char *big = calloc(1, 1 << 20);
  CHECK(big != NULL && tu_nonzero(big, 1 << 20) == NONE, "calloc in a destructor");
  free(big);
  if (left > 1) pthread_setspecific(key, (void *)(left - 1));
}

static void destroy_a(void *v) { destructor(v, key_a, 1); }
static void destroy_b(void *v) { destructor(v, key_b, 2); }

static void *thread_main(void *arg) {
  int self = (int)(uintptr_t)arg;
  struct block mine[100];
  for (int i = 0; i < 100; i++) mine[i] = make_block(self * 1000 + i, 1 + (size_t)i * 37);
  for (int i = 0; i < 100; i += 2) check_and_free(&mine[i], "own block");
  /* Blocks of the main thread freed here, and odd blocks of ours left to the main thread. */
  check_and_free(&from_main[self], "main thread's block");
  pthread_mutex_lock(&lock);
  for (int i = 1; i < 100; i += 2) handed[n_handed++] = mine[i];
  pthread_mutex_unlock(&lock);
  pthread_setspecific(key_a, (void *)(uintptr_t)ROUNDS);
  pthread_setspecific(key_b, (void *)(uintptr_t)ROUNDS);
  return NULL;
}

/* Resident memory once the allocator has given back what it holds free, so that what is left
 * is what the waves kept, however many threads a loaded machine let overlap. A trim soon after
 * the last one does nothing (numalloc gives back at most once per purge delay): hence the
 * pause, longer than the 100 ms delay the test runs with. */
static long resident_kib(void) {
  usleep(200 * 1000);
  malloc_trim(0);
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void) {
  pt_start("tls_teardown");
  void *warm = malloc(32); /* the allocator has set itself up (and any key of its own) */
  free(warm);
  pthread_key_create(&key_a, destroy_a);
  pthread_key_create(&key_b, destroy_b);
  long rss_early = 0;
  for (int wave = 0; wave < WAVES; wave++) {
    if (wave == 3) rss_early = resident_kib();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) from_main[i] = make_block(wave * 100 + i, 100 + i * 10);
    for (uintptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, thread_main, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_handed; i++) check_and_free(&handed[i], "handed to the main thread");
    n_handed = 0;
    pthread_mutex_unlock(&lock);
  }
  long rss_late = resident_kib();
  printf("tls_teardown: %d threads with allocating key destructors; resident %ld KiB after "
         "wave 3, %ld KiB at the end\n",
         WAVES * THREADS, rss_early, rss_late);
  /* numalloc gives back everything free at a trim: 832 threads that each kept one OS page
   * would add 3.3 MiB. Other allocators keep freed memory for reuse. */
  long allowed_kib = pt_is_numalloc() && !pt_is_system_policy() ? 2 * 1024 : 64 * 1024;
  CHECK(rss_late - rss_early < allowed_kib,
        "resident memory grew by %ld KiB over %d waves (at most %ld allowed)", rss_late - rss_early,
        WAVES - 3, allowed_kib);
  return pt_finish();
}
