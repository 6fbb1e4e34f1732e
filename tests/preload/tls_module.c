/* tls_module.c: a module with thread-local data, dlopen'ed by dyn_tls.c. Its TLS block is
 * allocated by glibc's dynamic linker through the interposed malloc on a thread's first
 * access, and freed when that thread exits (sometimes by another thread). */
#include <stdint.h>
#include <string.h>

static __thread unsigned char area[40000] __attribute__((aligned(64)));
static __thread uint64_t counter;

/* Fills this thread's copy and returns 0 when the area and the counter are this thread's. */
__attribute__((visibility("default"))) int tls_module_touch(uint64_t tag) {
  if ((uintptr_t)area % 64 != 0) return 1;
  if (counter != 0 && area[0] != (unsigned char)(counter & 0xff)) return 2;
  counter = tag;
  memset(area, (int)(tag & 0xff), sizeof area);
  for (size_t i = 0; i < sizeof area; i += 997)
    if (area[i] != (unsigned char)(tag & 0xff)) return 3;
  return 0;
}
