/* llc.h: a set-associative last-level cache with LRU replacement, indexed by physical line
 * address as real last-level caches are. One exists per node with CPUs and serves all of them,
 * as one socket's cores share theirs. Only tags are kept: whether an access hits, not data.
 *
 * Coherence: a store makes the copies of its line in the other nodes' caches stale, so that
 * data written on one node and read on another (a producer and its consumer, a shared table's
 * updates) misses where the reader is. A directory keeps a small write count per line of RAM;
 * each cached line remembers the count it was filled with, and a hit on an older count is a
 * miss. The count wraps at 256: a line written exactly a multiple of 256 times between two
 * reads looks fresh, a rare and small error. */
#ifndef NUMAPROF_LLC_H
#define NUMAPROF_LLC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct np_llc {
  /* sets x ways entries, most recently used first: line number << 8 | the line's write count
   * when cached; ~0 is an empty way */
  uint64_t *tags;
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
/* Looks the line holding pa up and makes it the most recently used of its set, remembering
 * write count `after` for it; true on a miss (the line absent, or cached with another count
 * than `now`, the line's count in the directory; an absent line replaces the set's least
 * recently used one). A load passes now == after, a store after = now + 1. */
bool np_llc_access(np_llc_t *c, uint64_t pa, unsigned now, unsigned after);

/* The write counts of every line of RAM, shared by all caches. */
typedef struct np_directory {
  _Atomic uint8_t *count;
  uint64_t lines;
} np_directory_t;

int np_directory_init(np_directory_t *d, uint64_t lines);
void np_directory_destroy(np_directory_t *d);

/* Relaxed: vCPUs of different nodes may race on one line, like the stores they model. */
static inline unsigned np_directory_count(np_directory_t *d, uint64_t line) {
  return line < d->lines ? __atomic_load_n((uint8_t *)&d->count[line], __ATOMIC_RELAXED) : 0;
}

static inline void np_directory_set(np_directory_t *d, uint64_t line, unsigned count) {
  if (line < d->lines)
    __atomic_store_n((uint8_t *)&d->count[line], (uint8_t)count, __ATOMIC_RELAXED);
}

#endif
