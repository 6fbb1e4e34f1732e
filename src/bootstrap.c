/* bootstrap.c: memory for the requests made while the allocator is still starting: libnuma's
 * constructor and glibc's dlsym call malloc before numalloc has read its options and the
 * topology. A static buffer, bump-allocated; its blocks are never reused (free ignores them,
 * realloc copies out of them). */
#include "internal.h"

#include <errno.h>

#define BOOTSTRAP_SIZE (1 * NA_MiB)
#define HEADER         16

static _Alignas(4096) char buffer[BOOTSTRAP_SIZE] NA_TABLE;
static _Atomic size_t used;

void *na_bootstrap_alloc(size_t size, size_t alignment) {
  if (alignment < NA_MIN_ALIGN) alignment = NA_MIN_ALIGN;
  if (size > BOOTSTRAP_SIZE || alignment > NA_PAGE_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t start = atomic_load_explicit(&used, memory_order_relaxed);
  size_t block;
  do {
    block = na_align_up(start + HEADER, alignment);
    if (block + size > BOOTSTRAP_SIZE) {
      errno = ENOMEM;
      return NULL;
    }
  } while (!atomic_compare_exchange_weak(&used, &start, na_align_up(block + size, NA_MIN_ALIGN)));
  *(size_t *)(buffer + block - sizeof(size_t)) = size;
  return buffer + block;
}

bool na_bootstrap_owns(const void *p) {
  return (const char *)p >= buffer && (const char *)p < buffer + BOOTSTRAP_SIZE;
}

size_t na_bootstrap_usable(const void *p) {
  return *(const size_t *)((const char *)p - sizeof(size_t));
}
