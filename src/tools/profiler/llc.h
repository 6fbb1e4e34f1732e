/* llc.h: a set-associative last-level cache with LRU replacement, indexed by physical line
 * address as real last-level caches are. One exists per node with CPUs and serves all of them,
 * as one socket's cores share theirs. Only tags are kept: whether an access hits, not data. */
#ifndef NUMAPROF_LLC_H
#define NUMAPROF_LLC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct np_llc {
  uint64_t *tags; /* sets x ways line numbers, most recently used first; ~0 is an empty way */
  uint64_t sets;
  uint64_t set_mask; /* sets - 1 when sets is a power of two, else 0 */
  unsigned ways;
  unsigned line_shift;
  /* Taken only when several vCPUs share the cache: QEMU runs each vCPU in its own thread. */
  bool shared;
  pthread_mutex_t lock;
} np_llc_t;

/* bytes must be a whole number of sets (ways x line) and line a power of two. Returns 0, or
 * -1 when the tags cannot be allocated. */
int np_llc_init(np_llc_t *c, uint64_t bytes, unsigned ways, unsigned line, bool shared);
void np_llc_destroy(np_llc_t *c);
/* Looks the line holding pa up and makes it the most recently used of its set; true on a miss
 * (the line then replaces the set's least recently used one). */
bool np_llc_access(np_llc_t *c, uint64_t pa);

#endif
