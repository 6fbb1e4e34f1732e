/* preload_test.c: the shared checks of the preload test programs (see preload_test.h). */
#define _GNU_SOURCE
#include "preload_test.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numalloc.h"

static const char *const pt_func_names[PT_FUNC_COUNT] = {
    "malloc",        "free",     "calloc", "realloc", "reallocarray",       "posix_memalign",
    "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size", "cfree"};

static atomic_long pt_failures;
static const char *pt_name = "preload test";
static int pt_owned[PT_FUNC_COUNT];
static int pt_numalloc;
static int pt_system;
static int (*pt_node_of_fn)(const void *);

/* The file that defines the code at `addr`, resolved to a canonical path. */
static int pt_owner_path(void *addr, char *out, size_t len) {
  Dl_info info;
  if (!addr || !dladdr(addr, &info) || !info.dli_fname) return -1;
  char *real = realpath(info.dli_fname, NULL);
  if (!real) return -1;
  snprintf(out, len, "%s", real);
  free(real);
  return 0;
}

static void pt_die(const char *fmt, const char *arg) {
  fprintf(stderr, "%s: FAIL: ", pt_name);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(2);
}

void *pt_symbol(const char *name) { return dlsym(RTLD_DEFAULT, name); }

static void pt_check_owners(const char *want) {
  for (int f = 0; f < PT_FUNC_COUNT; f++) {
    char have[PATH_MAX];
    void *fn = dlsym(RTLD_DEFAULT, pt_func_names[f]);
    pt_owned[f] = fn && pt_owner_path(fn, have, sizeof have) == 0 && strcmp(have, want) == 0;
    if (pt_owned[f]) continue;
    if (pt_numalloc) pt_die("numalloc does not interpose %s", pt_func_names[f]);
    printf("%s: NOTE: the stand-in preload does not interpose %s; its checks are skipped\n",
           pt_name, pt_func_names[f]);
  }
  if (!pt_owned[PT_MALLOC] || !pt_owned[PT_FREE])
    pt_die("malloc and free do not come from NUMALLOC_TEST_PRELOAD=%s", want);
}

void pt_start(const char *test_name) {
  pt_name = test_name;
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *lib = getenv("NUMALLOC_TEST_PRELOAD");
  if (!lib || !*lib) pt_die("%sNUMALLOC_TEST_PRELOAD is not set: run it through ctest", "");
  const char *preload = getenv("LD_PRELOAD");
  if (!preload || !strstr(preload, lib)) pt_die("LD_PRELOAD does not name %s", lib);
  char want[PATH_MAX];
  if (!realpath(lib, want)) pt_die("cannot resolve NUMALLOC_TEST_PRELOAD=%s", lib);
  pt_node_of_fn = (int (*)(const void *))dlsym(RTLD_DEFAULT, "numalloc_node_of");
  pt_numalloc = pt_node_of_fn != NULL;
  pt_check_owners(want);
  if (!pt_numalloc) {
    printf("%s: allocator under test: %s (stand-in, not numalloc)\n", pt_name, want);
    return;
  }
  numalloc_policy_t (*policy)(void) =
      (numalloc_policy_t(*)(void))dlsym(RTLD_DEFAULT, "numalloc_policy");
  if (!policy) pt_die("%snumalloc exports numalloc_node_of but not numalloc_policy", "");
  pt_system = policy() == NUMALLOC_POLICY_SYSTEM;
  void *probe = malloc(24);
  int node = pt_node_of_fn(probe);
  free(probe);
  if (pt_system && node != -1) pt_die("policy system, yet numalloc owns a malloc block%s", "");
  if (!pt_system && node < 0) pt_die("numalloc does not own a block from malloc()%s", "");
  printf("%s: allocator under test: numalloc%s (%s)\n", pt_name,
         pt_system ? " with NUMALLOC_POLICY=system" : "", want);
}

int pt_interposed(enum pt_func f) { return pt_owned[f]; }
int pt_is_numalloc(void) { return pt_numalloc; }
int pt_is_system_policy(void) { return pt_system; }
int pt_node_of(const void *p) { return pt_node_of_fn ? pt_node_of_fn(p) : -2; }

void pt_fail(const char *file, int line, const char *expr, const char *fmt, ...) {
  long n = atomic_fetch_add(&pt_failures, 1);
  if (n >= 40) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: FAIL %s:%d: %s%s\n", pt_name, file, line, expr, msg);
}

long pt_failure_count(void) { return atomic_load(&pt_failures); }

int pt_finish(void) {
  long n = atomic_load(&pt_failures);
  if (n) {
    fprintf(stderr, "%s: %ld check(s) FAILED\n", pt_name, n);
    return 1;
  }
  printf("%s: all checks passed\n", pt_name);
  return 0;
}
