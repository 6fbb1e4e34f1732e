/* pattern.c: the shared part of the NUMA patterns: CPU pinning, the preload check, block
 * contents, and failure. */
#define _GNU_SOURCE
#include "pattern.h"

#include <dlfcn.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pattern_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "pattern: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

/* With PATTERN_EXPECT_LIB set, malloc and free must come from a library whose path contains
 * it: a preload that silently did not load would otherwise be measured as glibc. */
static void check_preload(void) {
  const char *want = getenv("PATTERN_EXPECT_LIB");
  if (!want || !*want) return;
  const char *names[] = {"malloc", "free", "calloc", "realloc"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, names[i]);
    if (!f || !dladdr(f, &info) || !info.dli_fname || !strstr(info.dli_fname, want))
      pattern_fail("%s comes from %s, not %s: the preload did not take effect", names[i],
                   f && info.dli_fname ? info.dli_fname : "nowhere", want);
  }
}

void pattern_pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (rc) pattern_fail("cannot pin a thread to CPU %d: %s", cpu, strerror(rc));
}

int pattern_init(int argc, char **argv, const char *usage) {
  if (argc > 1) {
    fprintf(stderr, "usage: %s\n", usage);
    exit(2);
  }
  check_preload();
  pattern_pin(0);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 2) pattern_fail("needs at least 2 CPUs, has %ld", n);
  return (int)n;
}

typedef struct start {
  int cpu;
  void (*fn)(int cpu, void *arg);
  void *arg;
} start_t;

static void *run(void *p) {
  start_t s = *(start_t *)p;
  free(p);
  pattern_pin(s.cpu);
  s.fn(s.cpu, s.arg);
  return NULL;
}

pthread_t pattern_spawn(int cpu, void (*fn)(int cpu, void *arg), void *arg) {
  start_t *s = pattern_malloc(sizeof *s);
  *s = (start_t){cpu, fn, arg};
  pthread_t t;
  int rc = pthread_create(&t, NULL, run, s);
  if (rc) pattern_fail("pthread_create: %s", strerror(rc));
  return t;
}

void pattern_join(pthread_t t) {
  int rc = pthread_join(t, NULL);
  if (rc) pattern_fail("pthread_join: %s", strerror(rc));
}

void *pattern_malloc(size_t size) {
  void *p = malloc(size);
  if (!p) pattern_fail("malloc(%zu) failed", size);
  return p;
}

void pattern_write(void *p, size_t size, uint64_t tag) {
  char *c = p;
  for (size_t off = 0; off + 8 <= size; off += PATTERN_LINE) *(uint64_t *)(c + off) = tag ^ off;
}

uint64_t pattern_read(const void *p, size_t from, size_t size, uint64_t tag) {
  const char *c = p;
  uint64_t sum = 0;
  for (size_t off = from; off + 8 <= size; off += PATTERN_LINE) {
    uint64_t v = *(const uint64_t *)(c + off);
    if (v != (tag ^ off)) pattern_fail("block %p damaged at offset %zu", p, off);
    sum += v;
  }
  return sum;
}

void pattern_result(const char *name, int cpus, uint64_t checksum) {
  printf("RESULT pattern=%s cpus=%d checksum=%016llx\n", name, cpus, (unsigned long long)checksum);
}
