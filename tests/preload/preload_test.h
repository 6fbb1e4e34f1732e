/* preload_test.h: what every preload test program shares. Proof that the library named by
 * NUMALLOC_TEST_PRELOAD really is the malloc in use (a test that silently ran on glibc would
 * prove nothing), CHECK that reports and counts failed expectations; with test_util.h's PRNG and
 * block patterns. Used from C and C++. */
#ifndef PRELOAD_TEST_H
#define PRELOAD_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "test_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The interposed functions whose owner pt_start checks, in a fixed order. */
enum pt_func {
  PT_MALLOC,
  PT_FREE,
  PT_CALLOC,
  PT_REALLOC,
  PT_REALLOCARRAY,
  PT_POSIX_MEMALIGN,
  PT_ALIGNED_ALLOC,
  PT_MEMALIGN,
  PT_VALLOC,
  PT_PVALLOC,
  PT_MALLOC_USABLE_SIZE,
  PT_CFREE,
  PT_FUNC_COUNT
};

/* Checks that the preload is loaded and owns the malloc family; exits 2 when it does not.
 * When the library is numalloc, every function must be interposed and blocks must be owned
 * by it (or, under NUMALLOC_POLICY=system, by glibc). A stand-in such as jemalloc may lack
 * some functions: pt_interposed() then says so and the caller skips, printing why. */
void pt_start(const char *test_name);

/* 1 when the preload provides `f` itself. Always 1 for numalloc (pt_start enforces it). */
int pt_interposed(enum pt_func f);

/* 1 when the preload is numalloc (it exports numalloc_node_of). */
int pt_is_numalloc(void);

/* 1 when numalloc runs with policy "system" (every call passed to glibc). */
int pt_is_system_policy(void);

/* numalloc_node_of(p) when the preload is numalloc, else -2. */
int pt_node_of(const void *p);

/* Looks up an interposed function by name (for cfree, which headers no longer declare). */
void *pt_symbol(const char *name);

/* Prints a failure line (at most 40 are printed; all are counted). */
void pt_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prints the summary line and returns the exit status: 0 when nothing failed, else 1. */
int pt_finish(void);

/* Number of failures so far (any thread). */
long pt_failure_count(void);

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (__builtin_expect(!(cond), 0)) pt_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__);         \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif /* PRELOAD_TEST_H */
