/* misuse.c: one misuse of the malloc family per run, chosen by name, for misuse_check to
 * judge. A misuse must end the program (numalloc: one "numalloc:" line and abort); if the
 * program gets past it, it says so on stderr and exits 3, and when the misuse has silently
 * damaged the heap (the same block handed out twice) it says that instead. The "works"
 * scenario allocates normally: run with a bad NUMALLOC_* value it must still exit 0.
 * Run without numalloc serving malloc it exits 4, so a broken preload is not mistaken for
 * anything else. Built with -fno-builtin: the compiler must not drop or rewrite the calls. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MiB ((size_t)1 << 20)

/* Hides where a pointer came from, so the compiler neither warns nor reasons about it. */
static void *launder(void *p) {
  void *volatile v = p;
  return v;
}

static __attribute__((noreturn)) void survived(const char *scenario) {
  fprintf(stderr, "misuse: %s: the program survived the misuse\n", scenario);
  exit(3);
}

static int compare_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* After a misuse that was not caught: allocating `count` blocks of `size` must not hand
 * out any block twice, nor one overlapping the block `live` still in use. */
static void check_heap(const char *scenario, size_t size, int count, const char *live,
                       size_t live_size) {
  uintptr_t *got = calloc((size_t)count, sizeof *got);
  for (int i = 0; i < count; i++) {
    char *p = malloc(size);
    got[i] = (uintptr_t)p;
    if (live != NULL && p < live + live_size && p + size > live) {
      fprintf(stderr,
              "misuse: %s: silent heap corruption: malloc(%zu) returned %p, inside "
              "the live block %p\n",
              scenario, size, (void *)p, (const void *)live);
      exit(3);
    }
  }
  qsort(got, (size_t)count, sizeof *got, compare_ptr);
  for (int i = 1; i < count; i++)
    if (got[i] == got[i - 1]) {
      fprintf(stderr, "misuse: %s: silent heap corruption: malloc(%zu) returned %p twice\n",
              scenario, size, (void *)got[i]);
      exit(3);
    }
}

static void double_free_small(void) {
  char *p = launder(malloc(24));
  free(p);
  free(p);
}

/* free(a), free(b), free(a): `a` is no longer the newest free block of its page. */
static void double_free_small_interleaved(void) {
  char *a = launder(malloc(32)), *b = launder(malloc(32));
  free(a);
  free(b);
  free(a);
  check_heap("double-free-small-interleaved", 32, 4096, NULL, 0);
}

/* The same, and the program ends at once: its exit names the block still in a bin twice. */
static void double_free_small_at_exit(void) {
  char *a = launder(malloc(32)), *b = launder(malloc(32));
  free(a);
  free(b);
  free(a);
  exit(0);
}

static void *free_twice(void *p) {
  free(p);
  free(p);
  return NULL;
}

/* Another thread frees a block twice; the owner finds out when it collects remote frees. */
static void double_free_remote(void) {
  void *keep[64];
  for (int i = 0; i < 64; i++) keep[i] = malloc(48);
  pthread_t t;
  pthread_create(&t, NULL, free_twice, launder(keep[10]));
  pthread_join(t, NULL);
  for (int i = 0; i < 200000; i++) launder(malloc(48)); /* exhaust the page: collect */
  check_heap("double-free-remote", 48, 4096, NULL, 0);
}

static void *free_two(void *arg) {
  void **pair = arg;
  free(pair[0]);
  free(pair[1]);
  return NULL;
}

static void *free_one(void *arg) {
  free(arg);
  return NULL;
}

/* Another thread frees p and q; the owner takes them back (q first, which leaves p at the head
 * of its page's free list); then p is freed remotely again, while it sits on that list. */
static void double_free_remote_delayed(void) {
  enum { MAX = 200000 };
  char **live = calloc(MAX, sizeof *live);
  char *pair[2] = {launder(malloc(48)), launder(malloc(48))};
  pthread_t t;
  pthread_create(&t, NULL, free_two, pair);
  pthread_join(t, NULL);
  int n = 0;
  while (n < MAX && (live[n] = malloc(48)) != pair[1]) n++;
  if (n == MAX) survived("double-free-remote-delayed (setup: q never came back)");
  pthread_create(&t, NULL, free_one, launder(pair[0]));
  pthread_join(t, NULL);
  /* every block live now, old and new, must be distinct */
  enum { MORE = 4096 };
  uintptr_t *all = calloc((size_t)n + 1 + MORE, sizeof *all);
  for (int i = 0; i <= n; i++) all[i] = (uintptr_t)live[i];
  for (int i = 0; i < MORE; i++) all[n + 1 + i] = (uintptr_t)malloc(48);
  qsort(all, (size_t)n + 1 + MORE, sizeof *all, compare_ptr);
  for (int i = 1; i < n + 1 + MORE; i++)
    if (all[i] == all[i - 1]) {
      fprintf(stderr,
              "misuse: double-free-remote-delayed: silent heap corruption: %p handed out "
              "twice\n",
              (void *)all[i]);
      exit(3);
    }
}

static void double_free_large(void) {
  char *p = launder(malloc(MiB));
  free(p);
  free(p);
}

static void double_free_huge(void) {
  char *p = launder(malloc(64 * MiB));
  free(p);
  free(p);
}

static void free_interior_small(void) {
  char *p = launder(malloc(64));
  free(launder(p + 16));
  check_heap("free-interior-small", 64, 4096, p, 64);
}

static void free_interior_large(void) {
  char *p = launder(malloc(MiB));
  free(launder(p + 4096));
}

/* 16 bytes written past the end of a block of a class the process had not used: they land
 * on the link of the free block after it, which the next allocations of the class reach. */
static void overflow_into_free(void) {
  char *p = launder(malloc(720));
  memset(p, 0x41, malloc_usable_size(p) + 16);
  for (int i = 0; i < 4; i++) memset(launder(malloc(720)), 0x42, 720);
}

static void free_stack(void) {
  _Alignas(16) char buf[64];
  memset(buf, 0, sizeof buf);
  free(launder(buf + 16));
}

static _Alignas(16) char global_buf[256];

static void free_global(void) { free(launder(global_buf + 32)); }

/* An address in a fresh anonymous mapping: looks like heap, came from no allocator. */
static void free_mmap(void) {
  char *m = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  free(launder(m + 4096 + 64));
}

/* An address inside numalloc's own memory that was never handed out: the far end of the
 * 32 MiB segment holding a fresh small block. */
static void free_wild_heap(void) {
  uintptr_t p = (uintptr_t)malloc(64);
  uintptr_t segment = p & ~(uintptr_t)(32 * MiB - 1);
  free(launder((void *)(segment + 31 * MiB + 4096 + 48)));
}

static void realloc_stack(void) {
  _Alignas(16) char buf[64];
  memset(buf, 0, sizeof buf);
  launder(realloc(launder(buf + 16), 100));
}

static void *works_thread(void *arg) {
  size_t seed = (size_t)arg;
  for (int round = 0; round < 200; round++) {
    char *p[32];
    for (int i = 0; i < 32; i++) {
      size_t n = (seed * 31 + (size_t)i * 977 + (size_t)round * 131) % 70000;
      p[i] = malloc(n + 1);
      memset(p[i], i, n + 1);
    }
    for (int i = 0; i < 32; i++) free(p[i]);
  }
  return NULL;
}

/* Plain allocation work, for the bad-option runs: it must simply succeed. */
static void works(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, works_thread, (void *)(size_t)i);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  char *p = realloc(NULL, 10);
  p = realloc(p, 100000);
  free(p);
  printf("misuse: works: ok\n");
  exit(0);
}

typedef struct scenario_s {
  const char *name;
  void (*run)(void);
} scenario_t;

static const scenario_t scenarios[] = {
    {"double-free-small", double_free_small},
    {"double-free-small-interleaved", double_free_small_interleaved},
    {"double-free-small-at-exit", double_free_small_at_exit},
    {"double-free-remote", double_free_remote},
    {"double-free-remote-delayed", double_free_remote_delayed},
    {"double-free-large", double_free_large},
    {"double-free-huge", double_free_huge},
    {"free-interior-small", free_interior_small},
    {"free-interior-large", free_interior_large},
    {"overflow-into-free", overflow_into_free},
    {"free-stack", free_stack},
    {"free-global", free_global},
    {"free-mmap", free_mmap},
    {"free-wild-heap", free_wild_heap},
    {"realloc-stack", realloc_stack},
    {"works", works},
};

int main(int argc, char **argv) {
  if (dlsym(RTLD_DEFAULT, "numalloc_node_of") == NULL) {
    fprintf(stderr, "misuse: numalloc is not serving malloc (run under its preload)\n");
    return 4;
  }
  for (size_t i = 0; argc == 2 && i < sizeof scenarios / sizeof scenarios[0]; i++) {
    if (strcmp(argv[1], scenarios[i].name) != 0) continue;
    scenarios[i].run();
    survived(argv[1]);
  }
  fprintf(stderr, "usage: misuse SCENARIO; one of:");
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
    fprintf(stderr, " %s", scenarios[i].name);
  fprintf(stderr, "\n");
  return 2;
}
