/* invariant.c: what must hold of a segment, a page and a heap, checked by walking them. Each
 * validator returns NULL when everything holds, else a sentence naming the first thing that
 * does not. Builds with NUMALLOC_CHECKS (Debug, stress and fuzz builds) run them at the
 * allocator's slow points through na_validate, which aborts with that sentence; Release
 * builds never call them. Unit tests call them directly. */
#include "internal.h"

#include <stdarg.h>

/* One sentence at a time: what is read next is a crash or a failed test. */
static char problem[160];

static const char *violated(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  na_format(problem, sizeof problem, fmt, args);
  va_end(args);
  return problem;
}
#define VIOLATED(...) violated(__VA_ARGS__)

/* Spans tile the segment after its header; inside a free span only the last slice points
 * back to the head; two free spans never touch (they would have merged, unless one is being
 * purged); the header's count of free slices is right. The caller holds the arena's lock. */
const char *na_check_segment(const na_segment_t *segment) {
  const na_page_t *meta = &segment->slices[0];
  if (na_relaxed_load(&meta->kind) != NA_SPAN_META || meta->slice_count != NA_META_SLICES)
    return VIOLATED("segment %p: header slices damaged", (const void *)segment);
  size_t i = NA_META_SLICES, free_total = 0;
  bool previous_free = false;
  while (i < NA_SLICES_PER_SEGMENT) {
    const na_page_t *head = &segment->slices[i];
    size_t count = head->slice_count;
    if (head->slice_offset != 0 || count == 0 || i + count > NA_SLICES_PER_SEGMENT)
      return VIOLATED("segment %p: slice %zu is no span head (offset %u, %zu slices)",
                      (const void *)segment, i, head->slice_offset, count);
    uint8_t kind = na_relaxed_load(&head->kind); /* a page's owner sets it without the lock */
    bool is_free = kind == NA_SPAN_FREE;
    bool free_layout = is_free || kind == NA_SPAN_PURGING;
    for (size_t j = 1; j < count; j++) {
      const na_page_t *slice = &segment->slices[i + j];
      bool points_back = !free_layout || j == count - 1;
      if (slice->slice_offset != (points_back ? j * sizeof(na_page_t) : 0))
        return VIOLATED("segment %p: slice %zu of the span at %zu points elsewhere",
                        (const void *)segment, i + j, i);
      if (!points_back &&
          (na_relaxed_load(&slice->kind) != NA_SPAN_FREE || na_relaxed_load(&slice->owner) != 0))
        return VIOLATED("segment %p: slice %zu inside the free span at %zu is in use",
                        (const void *)segment, i + j, i);
    }
    if (is_free && previous_free)
      return VIOLATED("segment %p: free spans touch at slice %zu", (const void *)segment, i);
    if (is_free && head->is_zero && head->is_dirty)
      return VIOLATED("segment %p: the free span at %zu is marked zero, and dirty",
                      (const void *)segment, i);
    /* handed out: may be resident; free and clean: given back or never touched (zero) */
    bool must_be_set = !free_layout, must_be_clear = is_free && !head->is_dirty;
    for (size_t j = i; j < i + count && (must_be_set || must_be_clear); j++) {
      bool resident = na_segment_slice_resident(segment, j);
      if (resident != must_be_set)
        return VIOLATED("segment %p: slice %zu of the %s span at %zu is %s resident",
                        (const void *)segment, j, is_free ? "clean free" : "handed-out", i,
                        resident ? "marked" : "not marked");
    }
    if (free_layout) free_total += count; /* a span being purged is still free */
    previous_free = is_free;
    i += count;
  }
  if (free_total != segment->free_slices)
    return VIOLATED("segment %p: %zu free slices, the header says %u", (const void *)segment,
                    free_total, segment->free_slices);
  return NULL;
}

/* The owner word tells whether a flag that bars the fast free is set, and a full page's
 * sparse check brings it back after na_page_unfull_after frees onto its list; blocks on the
 * owner's lists lie inside the carved part of the page, on block boundaries, once each, and
 * with the blocks in use never exceed what was carved. The owner calls it. */
const char *na_check_page(const na_page_t *page) {
  if (page->kind != NA_SPAN_SMALL)
    return VIOLATED("page %p: not a page of small blocks", na_page_start(page));
  if (page->used > page->capacity || page->capacity > page->reserved)
    return VIOLATED("page %p: %u used, %u carved, %u fit", na_page_start(page), page->used,
                    page->capacity, page->reserved);
  uintptr_t owner = na_relaxed_load(&page->owner);
  if (owner != 0 && (owner & NA_OWNER_FLAGGED) != na_page_flags_bar_fast_free(page))
    return VIOLATED("page %p: its owner's flagged bit disagrees with its flags",
                    na_page_start(page));
  if (page->flags.bits.in_full && page->sparse_below != na_sparse_full(page))
    return VIOLATED("page %p: full, but the owner's free would not bring it back",
                    na_page_start(page));
  const char *start = na_page_start(page);
  const na_block_t *lists[2] = {page->free, page->local_free};
  uint32_t listed = 0;
  for (int l = 0; l < 2; l++)
    for (const na_block_t *b = lists[l]; b != NULL; b = na_block_next(page, b)) {
      size_t offset = (size_t)((const char *)b - start);
      if (offset % page->block_size != 0 || offset / page->block_size >= page->capacity)
        return VIOLATED("page %p: free list holds %p, not a carved block", (const void *)start,
                        (const void *)b);
      if (b->ahead != NULL &&
          (size_t)((const char *)b->ahead - start) >= (size_t)page->capacity * page->block_size)
        return VIOLATED("page %p: free block %p names %p ahead, outside its page",
                        (const void *)start, (const void *)b, (const void *)b->ahead);
      if (++listed > page->capacity - page->used)
        return VIOLATED("page %p: more free blocks listed than carved and not in use",
                        (const void *)start);
    }
  /* calloc hands out a zero page's blocks uncleared: its `free` list must be the blocks
   * carved last, in address order up to the last one, with nothing written but the link. */
  if (page->is_zero && page->free != NULL) {
    const char *expected = (const char *)page->free;
    for (const na_block_t *b = page->free; b != NULL; b = na_block_next(page, b)) {
      const uint64_t *last = (const uint64_t *)((const char *)b + page->block_size) - 1;
      if ((const char *)b != expected || b->bin_mark != 0 || (page->block_size > 16 && *last != 0))
        return VIOLATED("page %p: marked zero, but its free block %p was handed out before",
                        (const void *)start, (const void *)b);
      expected += page->block_size;
    }
    if (expected != start + (size_t)page->capacity * page->block_size)
      return VIOLATED(
          "page %p: marked zero, but its free list stops short of the last carved block",
          (const void *)start);
  }
  return NULL;
}

/* Every queued page belongs to this heap and its class, sits on the full list exactly when
 * it says so, and is itself sound; each class's current page is its queue's first. */
const char *na_check_heap(const na_heap_t *heap) {
  for (int c = 0; c <= NA_CLASS_COUNT; c++) {
    const na_page_queue_t *q = c < NA_CLASS_COUNT ? &heap->queues[c] : &heap->full;
    for (const na_page_t *page = q->first; page != NULL; page = page->next) {
      if (page->heap != heap)
        return VIOLATED("page %p: queued in another heap", na_page_start(page));
      if (c < NA_CLASS_COUNT && page->size_class != c)
        return VIOLATED("page %p: class %u queued as class %d", na_page_start(page),
                        page->size_class, c);
      if ((c == NA_CLASS_COUNT) != (page->flags.bits.in_full != 0))
        return VIOLATED("page %p: full flag disagrees with its queue", na_page_start(page));
      const char *bad = na_check_page(page);
      if (bad != NULL) return bad;
    }
    if (c < NA_CLASS_COUNT && q->first != NULL && heap->current[c] != q->first)
      return VIOLATED("heap %p: class %d allocates from a page that is not its first",
                      (const void *)heap, c);
  }
  /* The fast path's table names, for each size, the current page and the bin of the class
   * that serves it (its own, or the power of two's sharing its first page): never a page that
   * left its class's queue. */
  for (size_t slot = 0; slot < NA_DIRECT_COUNT; slot++) {
    int serving = na_heap_serving_class(heap, na_size_class(slot * 16));
    if (heap->direct[slot] != heap->current[serving] ||
        heap->direct_bin[slot] != &heap->bins[serving])
      return VIOLATED("heap %p: sizes of %zu bytes served by another page or bin than class %d's",
                      (const void *)heap, slot * 16, serving);
  }
  uint32_t spare_slices = 0, several = 0;
  for (const na_page_t *page = heap->spare.first; page != NULL; page = page->next) {
    if (page->heap != heap || page->kind != NA_SPAN_SMALL || page->used != 0 ||
        page->flags.bits.in_full)
      return VIOLATED("page %p: spare, but in use, full or another heap's", na_page_start(page));
    spare_slices += page->slice_count;
    if (page->slice_count > 1) several += page->slice_count;
  }
  if (spare_slices != heap->spare_slices || several != heap->spare_several)
    return VIOLATED("heap %p: spare pages of %u slices (%u in pages of several) counted as %u (%u)",
                    (const void *)heap, spare_slices, several, heap->spare_slices,
                    heap->spare_several);
  if (heap->spare_room != 0 &&
      (spare_slices > heap->spare_room || heap->spare_room < NA_SPARE_SLICES ||
       heap->spare_room > NA_SPARE_SLICES_MAX))
    return VIOLATED("heap %p: spare pages of %u slices in a room of %u", (const void *)heap,
                    spare_slices, heap->spare_room);
  return na_check_bins(heap);
}

/* A bin, found from its class, holds freed blocks of the class in its heap's arena, each once,
 * no more than its capacity, the newest on top, and up to NA_DIRECT_MAX only blocks of its
 * heap's pages; classes above NA_BIN_MAX have no room. */
const char *na_check_bins(const na_heap_t *heap) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    const na_bin_t *bin = &heap->bins[c];
    if (heap->class_bin[c] != bin && heap != &na_heap_empty)
      return VIOLATED("heap %p: class %d's bin is looked up elsewhere", (const void *)heap, c);
    if (c >= NA_BIN_CLASSES && (bin->capacity != 0 || bin->count != 0))
      return VIOLATED("heap %p: class %d has a bin", (const void *)heap, c);
    if (bin->count > bin->capacity || bin->capacity > NA_BIN_SLOTS)
      return VIOLATED("heap %p: bin of class %d holds %u blocks", (const void *)heap, c,
                      bin->count);
    if (bin->none != NULL || bin->top != bin->stack[bin->count])
      return VIOLATED("heap %p: bin of class %d shows %p on top of its %u blocks",
                      (const void *)heap, c, (const void *)bin->top, bin->count);
    for (uint32_t i = 0; i < bin->count; i++) {
      const na_block_t *block = bin->slots[i];
      na_segment_t *segment = na_segment_lookup(block);
      if (segment == NULL || segment->arena_index != heap->arena_index)
        return VIOLATED("heap %p: bin of class %d holds %p, not of its arena", (const void *)heap,
                        c, (const void *)block);
      const na_page_t *page = na_page_of(segment, block);
      if (page->kind != NA_SPAN_SMALL || page->size_class != c)
        return VIOLATED("heap %p: bin of class %d holds %p, a block of another class",
                        (const void *)heap, c, (const void *)block);
      if (!na_bin_entry_sound(block))
        return VIOLATED("heap %p: bin of class %d holds %p, which is in use or on a list",
                        (const void *)heap, c, (const void *)block);
      for (uint32_t j = 0; j < i; j++)
        if (bin->slots[j] == block)
          return VIOLATED("heap %p: bin of class %d holds %p twice", (const void *)heap, c,
                          (const void *)block);
      if (page->block_size <= NA_DIRECT_MAX && page->heap != heap)
        return VIOLATED("heap %p: bin of class %d holds %p, another heap's block",
                        (const void *)heap, c, (const void *)block);
    }
  }
  return NULL;
}

void na_validate(const char *problem_found) {
  if (problem_found != NULL) na_fatal("heap invariant broken: %s", problem_found);
}
