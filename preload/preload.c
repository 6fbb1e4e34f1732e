/* preload.c: interposition. With LD_PRELOAD=libnumapreload.so these definitions take the
 * place of the C library's malloc family; each forwards to the numalloc core in one line.
 * The C library's own functions are looked up once (dlsym RTLD_NEXT) so that
 * NUMALLOC_POLICY=system, and frees of pointers numalloc does not own, can go to them. */
#include "internal.h"

#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t size) { return na_malloc_fast(size); }
EXPORT void free(void *p) { na_free_fast(p); }
EXPORT void cfree(void *p) { na_free_fast(p); }
EXPORT void *calloc(size_t count, size_t size) { return numalloc_calloc(count, size); }
EXPORT void *realloc(void *p, size_t size) { return numalloc_realloc(p, size); }
EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  return numalloc_reallocarray(p, count, size);
}
EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  return numalloc_posix_memalign(out, alignment, size);
}
EXPORT void *aligned_alloc(size_t alignment, size_t size) {
  return numalloc_aligned_alloc(alignment, size);
}
EXPORT void *memalign(size_t alignment, size_t size) { return numalloc_memalign(alignment, size); }
EXPORT void *valloc(size_t size) { return numalloc_valloc(size); }
EXPORT void *pvalloc(size_t size) { return numalloc_pvalloc(size); }
EXPORT size_t malloc_usable_size(void *p) { return numalloc_usable_size(p); }

/* Runs before the core's constructor (NA_CONSTRUCTOR_PRELOAD before NA_CONSTRUCTOR_CORE), so
 * the system allocator is known before any policy is applied. dlsym may call calloc: that
 * request is served by the core's bootstrap buffer. */
__attribute__((constructor(NA_CONSTRUCTOR_PRELOAD))) static void
preload_find_system_allocator(void) {
  na_system_allocator_t system = {
      .malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc"),
      .free = (void (*)(void *))dlsym(RTLD_NEXT, "free"),
      .calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc"),
      .realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc"),
      .posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign"),
      .usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size"),
  };
  na_set_system_allocator(&system);
}
