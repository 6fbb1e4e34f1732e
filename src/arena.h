/* arena.h: what the arena's own files share, and nothing else includes: arena.c (segments,
 * free spans), purge.c (giving memory back to the OS) and huge.c (blocks
 * of a segment each). An arena is locked; its lock is never held across a system call. */
#ifndef NUMALLOC_ARENA_H
#define NUMALLOC_ARENA_H

#include "internal.h"

#define NA_BIN_COUNT 32 /* free spans binned by length (arena.c, bin_of) */
#define NA_HUGE_KEPT 2  /* freed huge blocks an arena keeps for the next ones (huge.c) */

typedef struct na_arena_s { /* guarded by the arena's lock, but for the atomics */
  na_segment_t *segments;
  na_page_queue_t bins[NA_BIN_COUNT];
  size_t empty_segments;
  _Atomic size_t mapped_bytes;
  _Atomic size_t peak_mapped_bytes;
  _Atomic int64_t huge_bytes;
  uint32_t last_purge_ms;
  /* The wait of its free spans, in doublings of a quarter of the purge delay (purge.c), and
   * when a pass last gave spans or segments back (0: none since the arena last took memory
   * that was not resident, or since that give-back was found right). */
  uint8_t span_delay_shift;
  uint32_t gave_ms;
  na_segment_t *huge_kept[NA_HUGE_KEPT]; /* freed huge blocks' segments, mapped (huge.c) */
} na_arena_t;

na_arena_t *na_arena_at(int index);
void na_arena_lock(na_arena_t *arena);
void na_arena_unlock(na_arena_t *arena);
void na_arena_add_mapped(na_arena_t *arena, int64_t bytes);
/* True for an arena whose spans go to threads of every node: the only node's, or the
 * interleaved and first-touch arenas of a machine of several. */
bool na_arena_serves_every_node(const na_arena_t *arena);
/* Whether a new segment of the arena (a huge block's own: huge_block) takes huge pages. */
bool na_arena_huge_pages(int arena_index, bool huge_block);

/* What a free span knows about its memory; merging two spans merges their states. */
typedef struct na_span_state_s {
  bool dirty;     /* some page may be resident */
  bool zero;      /* every page reads as zero */
  uint32_t stamp; /* when it was freed, for the purge delay */
  int8_t used_on; /* first-touch spans: the node whose thread allocated it, -1 unknown */
} na_span_state_t;

/* The arena, locked, hands out a span none of whose pages is resident: if a pass gave memory
 * back shortly before, it was needed again, and the wait grows (purge.c). */
void na_arena_note_cold_span(na_arena_t *arena);

/* Free spans, with the arena locked. */
bool na_span_is_free_head(const na_page_t *slice);
void na_span_bin_remove(na_arena_t *arena, na_page_t *span);
/* Inserts a free span whose slices are free ones, merging it with free neighbours. */
void na_span_insert(na_arena_t *arena, na_segment_t *segment, size_t first, size_t count,
                    na_span_state_t state);
/* Turns a span handed out (or a page) back into a free span. */
void na_span_free_locked(na_arena_t *arena, na_page_t *span, uint32_t now);
bool na_arena_segment_is_empty(const na_segment_t *segment);
/* With the arena locked: slices handed out (may be resident) or given back. */
void na_segment_note_resident(na_segment_t *segment, size_t first, size_t count, bool resident);
void na_arena_segment_unlink(na_arena_t *arena, na_segment_t *segment);

/* huge.c: with the arena locked, moves the kept huge segments that waited `delay_ms` (all of
 * them when forced) to `out`, which has room for NA_HUGE_KEPT; returns how many. */
size_t na_huge_take_expired(na_arena_t *arena, bool force, uint32_t now, uint32_t delay_ms,
                            na_segment_t **out);

#endif /* NUMALLOC_ARENA_H */
