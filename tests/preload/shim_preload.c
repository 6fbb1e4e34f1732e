/* shim_preload.c: a reference preload for testing the tests. It interposes the whole malloc
 * family and forwards to glibc's own entry points (__libc_malloc and friends), so with no
 * fault it is a correct allocator and every preload test must pass under it. With
 * NUMALLOC_TEST_FAULT=<name> it breaks one rule on purpose, and the self-tests check that the
 * preload tests notice (a test that cannot fail proves nothing):
 *   calloc_nozero   calloc does not clear memory
 *   calloc_overflow calloc multiplies without an overflow check
 *   align_ignored   posix_memalign, aligned_alloc and memalign ignore the alignment
 *   realloc_nocopy  realloc moves without copying the contents
 *   usable_lies     malloc_usable_size claims 64 bytes more than there are
 *   dup_block       every 5000th small malloc hands out the previous block a second time
 *   atfork_missing  a global lock around malloc with no pthread_atfork handler
 *   dies_at_exit    malloc returns NULL once the shim's destructor has run (at exit, while
 *                   other threads may still allocate)
 *   overcommit      malloc of 1 GiB or more maps it with MAP_NORESERVE, which the kernel
 *                   grants whatever the size */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#define EXPORT __attribute__((visibility("default")))

enum fault {
  F_NONE,
  F_CALLOC_NOZERO,
  F_CALLOC_OVERFLOW,
  F_ALIGN_IGNORED,
  F_REALLOC_NOCOPY,
  F_USABLE_LIES,
  F_DUP_BLOCK,
  F_ATFORK_MISSING,
  F_DIES_AT_EXIT,
  F_OVERCOMMIT
};

static enum fault fault;
static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong small_count;
static atomic_int dead;
static _Atomic(void *) last_small;
static size_t (*next_usable_size)(void *);

__attribute__((destructor)) static void shim_fini(void) {
  if (fault != F_DIES_AT_EXIT) return;
  atomic_store(&dead, 1);
  usleep(2000); /* the rest of exit takes a while too: the other threads notice */
}

__attribute__((constructor)) static void shim_init(void) {
  static const char *const names[] = {"",
                                      "calloc_nozero",
                                      "calloc_overflow",
                                      "align_ignored",
                                      "realloc_nocopy",
                                      "usable_lies",
                                      "dup_block",
                                      "atfork_missing",
                                      "dies_at_exit",
                                      "overcommit"};
  const char *env = getenv("NUMALLOC_TEST_FAULT");
  for (int i = 1; env && i < (int)(sizeof names / sizeof names[0]); i++)
    if (strcmp(env, names[i]) == 0) fault = (enum fault)i;
  next_usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
}

static void *shim_malloc(size_t n) {
  if (fault != F_ATFORK_MISSING) return __libc_malloc(n);
  pthread_mutex_lock(&big_lock);
  void *p = __libc_malloc(n);
  for (volatile int spin = 0; spin < 100000; spin++) {
  }
  pthread_mutex_unlock(&big_lock);
  return p;
}

/* The overcommit fault's mappings, so that free can unmap them. */
#define UNRESERVED_MAX 16
static _Atomic(void *) unreserved[UNRESERVED_MAX];
static size_t unreserved_size[UNRESERVED_MAX];

static void *map_unreserved(size_t n) {
  void *p =
      mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return NULL;
  for (int i = 0; i < UNRESERVED_MAX; i++) {
    void *empty = NULL;
    if (atomic_compare_exchange_strong(&unreserved[i], &empty, p)) {
      unreserved_size[i] = n; /* the self-test frees from the thread that allocated */
      return p;
    }
  }
  munmap(p, n);
  return NULL;
}

static int unmap_unreserved(void *p) {
  for (int i = 0; p && i < UNRESERVED_MAX; i++) {
    void *expected = p;
    if (atomic_compare_exchange_strong(&unreserved[i], &expected, NULL)) {
      munmap(p, unreserved_size[i]);
      return 1;
    }
  }
  return 0;
}

EXPORT void *malloc(size_t n) {
  if (atomic_load_explicit(&dead, memory_order_relaxed)) return NULL;
  if (fault == F_OVERCOMMIT && n >= ((size_t)1 << 30) && n < ((size_t)1 << 46))
    return map_unreserved(n);
  if (fault == F_DUP_BLOCK && n <= 256) {
    void *last = atomic_load(&last_small);
    if (last && atomic_fetch_add(&small_count, 1) % 5000 == 4999 && next_usable_size &&
        next_usable_size(last) >= n)
      return last;
    void *p = __libc_malloc(n);
    atomic_store(&last_small, p);
    return p;
  }
  return shim_malloc(n);
}

EXPORT void free(void *p) {
  if (fault == F_OVERCOMMIT && unmap_unreserved(p)) return;
  if (fault == F_DUP_BLOCK && p) {
    /* A block handed out twice is freed twice; keep glibc's heap alive by leaking it. */
    void *expected = p;
    if (atomic_compare_exchange_strong(&last_small, &expected, NULL)) return;
    if (next_usable_size && next_usable_size(p) <= 264) return;
  }
  __libc_free(p);
}

EXPORT void cfree(void *p) { free(p); }

EXPORT void *calloc(size_t n, size_t m) {
  if (atomic_load_explicit(&dead, memory_order_relaxed)) return NULL;
  if (fault == F_CALLOC_NOZERO) return shim_malloc(n * m);
  if (fault == F_CALLOC_OVERFLOW) return __libc_calloc(1, n * m);
  return __libc_calloc(n, m);
}

EXPORT void *realloc(void *p, size_t n) {
  if (fault == F_DUP_BLOCK && p && n) {
    /* glibc must never see a block that is handed out twice: copy, and free() leaks it. */
    void *q = malloc(n);
    size_t old = next_usable_size ? next_usable_size(p) : 0;
    if (q) {
      memcpy(q, p, old < n ? old : n);
      free(p);
    }
    return q;
  }
  if (fault != F_REALLOC_NOCOPY || !p || !n) return __libc_realloc(p, n);
  void *q = __libc_malloc(n);
  if (q) __libc_free(p);
  return q;
}

EXPORT void *reallocarray(void *p, size_t n, size_t m) {
  size_t bytes;
  if (__builtin_mul_overflow(n, m, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, bytes);
}

static void *shim_memalign(size_t a, size_t n) {
  return fault == F_ALIGN_IGNORED ? __libc_malloc(n) : __libc_memalign(a, n);
}

EXPORT int posix_memalign(void **out, size_t a, size_t n) {
  if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
  int saved = errno;
  void *p = shim_memalign(a, n);
  if (!p) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

EXPORT void *aligned_alloc(size_t a, size_t n) { return shim_memalign(a, n); }
EXPORT void *memalign(size_t a, size_t n) { return shim_memalign(a, n); }
EXPORT void *valloc(size_t n) { return __libc_valloc(n); }

EXPORT void *pvalloc(size_t n) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (n > SIZE_MAX - page) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_memalign(page, n ? (n + page - 1) & ~(page - 1) : page);
}

EXPORT size_t malloc_usable_size(void *p) {
  size_t n = next_usable_size ? next_usable_size(p) : 0;
  return fault == F_USABLE_LIES && p ? n + 64 : n;
}
