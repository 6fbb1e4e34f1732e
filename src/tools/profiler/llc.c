/* llc.c: the simulated last-level cache. A set is a short array kept in recency order, so a
 * lookup is a scan of `ways` tags and an update a move to the front: the ways of one set fit
 * in a few host cache lines, and the scan costs little next to QEMU's own work per access. */
#include "llc.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY UINT64_MAX

int np_llc_init(np_llc_t *c, uint64_t bytes, unsigned ways, unsigned line, bool shared) {
  memset(c, 0, sizeof *c);
  c->ways = ways;
  c->line_shift = (unsigned)__builtin_ctz(line);
  c->sets = bytes / ((uint64_t)ways * line);
  c->set_mask = (c->sets & (c->sets - 1)) == 0 ? c->sets - 1 : 0;
  c->tags = malloc(c->sets * ways * sizeof *c->tags);
  if (!c->tags) return -1;
  memset(c->tags, 0xff, c->sets * ways * sizeof *c->tags);
  c->shared = shared;
  if (shared) pthread_mutex_init(&c->lock, NULL);
  return 0;
}

void np_llc_destroy(np_llc_t *c) {
  if (c->shared) pthread_mutex_destroy(&c->lock);
  free(c->tags);
  c->tags = NULL;
}

static bool lookup(np_llc_t *c, uint64_t line, unsigned now, unsigned after) {
  uint64_t set = c->set_mask || c->sets == 1 ? line & c->set_mask : line % c->sets;
  uint64_t *way = c->tags + set * c->ways;
  unsigned i = 0;
  while (i < c->ways && way[i] >> 8 != line && way[i] != EMPTY) i++;
  bool hit = i < c->ways && way[i] != EMPTY && way[i] >> 8 == line && (way[i] & 0xff) == now;
  if (i == c->ways) i--; /* a miss in a full set evicts the last, least recently used, way */
  memmove(way + 1, way, i * sizeof *way);
  way[0] = line << 8 | (after & 0xff);
  return !hit;
}

bool np_llc_access(np_llc_t *c, uint64_t pa, unsigned now, unsigned after) {
  uint64_t line = pa >> c->line_shift;
  if (!c->shared) return lookup(c, line, now & 0xff, after);
  pthread_mutex_lock(&c->lock);
  bool miss = lookup(c, line, now & 0xff, after);
  pthread_mutex_unlock(&c->lock);
  return miss;
}

int np_directory_init(np_directory_t *d, uint64_t lines) {
  d->count = calloc(lines, 1); /* untouched pages cost nothing */
  d->lines = d->count ? lines : 0;
  return d->count ? 0 : -1;
}

void np_directory_destroy(np_directory_t *d) {
  free((void *)d->count);
  d->count = NULL;
  d->lines = 0;
}
