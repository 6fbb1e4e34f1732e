/* numalloc.h: the public interface of numalloc, a NUMA-aware malloc.
 *
 * Under LD_PRELOAD=libnumapreload.so a program needs none of this: malloc and friends are
 * interposed. To use the explicit node API, the policy controls and the statistics, link with
 * -lnumapreload (`pkg-config --libs numalloc`): like linking -ljemalloc, that makes numalloc
 * the program's allocator for every malloc, not only for the calls below. Every block from any
 * function here is freed with free() (or numalloc_free); none of them ever needs a special
 * free. */
#ifndef NUMALLOC_H
#define NUMALLOC_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NUMALLOC_VERSION_MAJOR 0
#define NUMALLOC_VERSION_MINOR 1

#if defined(__GNUC__)
#define NUMALLOC_EXPORT      __attribute__((visibility("default")))
#define NUMALLOC_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define NUMALLOC_EXPORT
#define NUMALLOC_MALLOC_ATTR
#endif

/* The standard family, callable directly (the preload maps malloc() and friends onto these).
 * Semantics are the C and POSIX ones: NULL with errno ENOMEM when a size is impossible,
 * EINVAL (returned, not set) from numalloc_posix_memalign for a bad alignment; where C leaves
 * a choice, glibc's (numalloc_realloc(ptr, 0) frees ptr and returns NULL). */
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_malloc(size_t size);
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_calloc(size_t count, size_t size);
NUMALLOC_EXPORT void *numalloc_realloc(void *ptr, size_t size);
NUMALLOC_EXPORT void *numalloc_reallocarray(void *ptr, size_t count, size_t size);
NUMALLOC_EXPORT void numalloc_free(void *ptr);
NUMALLOC_EXPORT int numalloc_posix_memalign(void **out, size_t alignment, size_t size);
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_aligned_alloc(size_t alignment, size_t size);
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_memalign(size_t alignment, size_t size);
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_valloc(size_t size);
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_pvalloc(size_t size);
NUMALLOC_EXPORT size_t numalloc_usable_size(const void *ptr);

/* Explicit placement. Every page of the block lies on `node` (small blocks too: they come
 * from spans of that node). An unknown node, or one this process may not use, gives NULL
 * with errno EINVAL. When the node is full, NUMALLOC_FALLBACK decides (see README). */
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_malloc_onnode(size_t size, int node);
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_calloc_onnode(size_t count, size_t size,
                                                                  int node);
NUMALLOC_EXPORT NUMALLOC_MALLOC_ATTR void *numalloc_aligned_alloc_onnode(size_t alignment,
                                                                         size_t size, int node);

/* The home node of a block from this library, or -1 when the library does not own `ptr`,
 * or NUMALLOC_NODE_INTERLEAVED for memory whose pages are spread over several nodes.
 * Large blocks placed by first touch (the default for them under the local policy) report
 * the node the kernel put the block's first page on, or NUMALLOC_NODE_UNKNOWN while nothing
 * touched it yet (or the kernel will not say). Works for interior pointers too. */
#define NUMALLOC_NODE_INTERLEAVED (-2)
#define NUMALLOC_NODE_UNKNOWN     (-3)
NUMALLOC_EXPORT int numalloc_node_of(const void *ptr);

/* Policies. NUMALLOC_POLICY sets the process default at start; a thread may override it for
 * its own later allocations. */
typedef enum numalloc_policy_e {
  NUMALLOC_POLICY_LOCAL = 0,  /* the node of the CPU the thread runs on */
  NUMALLOC_POLICY_INTERLEAVE, /* spans spread evenly over the allowed nodes */
  NUMALLOC_POLICY_RR,         /* each allocation on the next allowed node in turn */
  NUMALLOC_POLICY_BIND,       /* always the thread's bound node (numalloc_thread_bind) */
  NUMALLOC_POLICY_WEIGHTED,   /* spans spread over nodes in proportion to weights */
  NUMALLOC_POLICY_SYSTEM,     /* pass everything to the next allocator (glibc) */
} numalloc_policy_t;

NUMALLOC_EXPORT numalloc_policy_t numalloc_policy(void);
NUMALLOC_EXPORT const char *numalloc_policy_name(numalloc_policy_t policy);
/* Overrides the calling thread's policy; 0, or -1 with errno EINVAL (SYSTEM cannot be chosen
 * per thread). */
NUMALLOC_EXPORT int numalloc_thread_set_policy(numalloc_policy_t policy);
/* Makes the calling thread allocate on `node` from now on (policy BIND); 0 or -1/EINVAL. */
NUMALLOC_EXPORT int numalloc_thread_bind(int node);

/* Topology as the allocator sees it (read once, at start). */
NUMALLOC_EXPORT int numalloc_node_count(void);            /* highest node id + 1 */
NUMALLOC_EXPORT int numalloc_node_allowed(int node);      /* 1 if this process may use it */
NUMALLOC_EXPORT int numalloc_node_has_memory(int node);   /* 1 if the node has memory */
NUMALLOC_EXPORT int numalloc_node_distance(int a, int b); /* SLIT distance, -1 if unknown */
NUMALLOC_EXPORT int numalloc_current_node(void); /* node of the CPU the caller runs on now */

/* Statistics: per-thread counters merged on read. `format` is "text" or "json"; returns 0,
 * or -1 with errno EINVAL for another format. */
NUMALLOC_EXPORT int numalloc_stats_print(FILE *out, const char *format);

/* Releases idle memory to the operating system now instead of after the purge delay. */
NUMALLOC_EXPORT void numalloc_collect(void);

#ifdef __cplusplus
}
#endif
#endif /* NUMALLOC_H */
