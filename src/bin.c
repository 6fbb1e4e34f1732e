/* bin.c: the blocks a heap's thread freed last, kept aside per class and handed out again
 * first, newest first. A block freed a moment ago is still in the CPU's cache, so the next
 * allocation of its class writes into it without a miss; a page's own free lists hand out
 * blocks freed long before. Only blocks of the heap's own arena (its node) and of classes up
 * to NA_BIN_MAX go there: those of the heap's pages, and from NA_BIN_FOREIGN_MIN those of
 * other threads' pages, which then serve this thread's allocations instead of travelling
 * home to be handed out cold. A bin stays a few blocks deep (15, or about NA_BIN_BYTES of
 * big blocks): when it is full, frees go to the pages as before, and every heap pass,
 * collection and thread exit send the blocks back to their pages. A block in a bin counts
 * as in use in its page until then, whichever thread's bin holds it. Bins stop at 64 KiB:
 * without one, a class churned at random (thousands of buffers of 32-64 KiB freed and made
 * again) took the slow path at nearly every allocation, 30% of such a program's time; above,
 * the blocks bins keep would hold too much of their pages (bins up to 256 KiB raised the peaks
 * of mstress and of growing buffers by 8-20%). A block goes into its owner's bin unread, its
 * second word set to the bin's mark. The pop checks the mark, and that the first word is no
 * list's link, and so names a block freed twice before it is handed out twice, but for the
 * block a bin of the direct table's sizes took last, which it hands out unread: a second
 * free of a block already deeper in the bin leaves that older copy behind, read in its turn,
 * and a block freed onto its page's list too has its first word cleared, which the list names
 * when it reaches it. Every bin's emptying checks its blocks the same way. A page that loses
 * its lists while its heap's bin still holds one of its blocks, or while a block it counts
 * free is in use, is another sign of a double free, named as well. */
#include "internal.h"

_Static_assert(NA_BIN_MAX <= NA_SMALL_MAX, "bins hold small blocks");
_Static_assert(NA_BIN_MAX <= NA_BIN_BYTES, "every bin has room for a block");

void na_bins_init(na_heap_t *heap) {
  heap->bin_tag = (uint32_t)heap->arena_index + 1;
  for (int c = 0; c < NA_BIN_CLASSES; c++) {
    size_t room = NA_BIN_BYTES / na_class_size(c); /* at least 1: NA_BIN_MAX <= NA_BIN_BYTES */
    heap->bins[c].capacity = (uint32_t)(room > NA_BIN_SLOTS ? NA_BIN_SLOTS : room);
  }
  for (int c = 0; c < NA_CLASS_COUNT; c++) heap->class_bin[c] = &heap->bins[c];
}

void na_bins_account(na_heap_t *heap, int ran_on) {
  if (heap->tld == NULL) return;
  for (int c = 0; c < NA_BIN_CLASSES; c++) {
    uint32_t handed = heap->bins[c].handed - heap->bin_counted[c];
    if (handed == 0) continue;
    na_stats_count_handed(heap->tld, heap->arena_index, handed, na_class_size(c), ran_on);
    heap->bin_counted[c] = heap->bins[c].handed;
  }
}

/* A block freed twice may sit in a bin twice, be handed out while a bin still holds it, or sit
 * in a bin and on a list: the bin's entry then lacks the mark, or holds a link. */
__attribute__((noreturn)) static void bin_entry_stale(const na_block_t *block) {
  na_segment_t *segment = na_segment_of_aligned(block);
  na_fatal("double free of %p (size class %u, found in a bin: freed again while it waited "
           "there or while on its page's lists, or written after its free)",
           (const void *)block, na_page_of(segment, block)->block_size);
}

void na_bins_check_top(const na_bin_t *bin) {
  if (bin->top != NULL && !na_bin_entry_sound(bin->top)) bin_entry_stale(bin->top);
}

void na_bins_check_page(const na_heap_t *heap, const na_page_t *page) {
  if (page->size_class >= NA_BIN_CLASSES) return;
  const na_bin_t *bin = &heap->bins[page->size_class];
  uintptr_t start = (uintptr_t)na_page_start(page);
  uintptr_t bytes = (uintptr_t)page->slice_count << NA_SLICE_SHIFT;
  for (uint32_t i = 0; i < bin->count; i++)
    if ((uintptr_t)bin->slots[i] - start < bytes) bin_entry_stale(bin->slots[i]);
}

void na_bins_verify(const na_heap_t *heap) {
  for (int c = 0; c < NA_BIN_CLASSES; c++) {
    const na_bin_t *bin = &heap->bins[c];
    for (uint32_t i = 0; i < bin->count; i++) {
      if (!na_bin_entry_sound(bin->slots[i])) bin_entry_stale(bin->slots[i]);
      for (uint32_t j = 0; j < i; j++)
        if (bin->slots[j] == bin->slots[i]) bin_entry_stale(bin->slots[i]);
    }
  }
}

/* The thread may no longer own the block's page (a heap of the thread on the same node gave
 * its pages up), so the block takes the whole free path. */
static void bin_release(na_block_t *block) {
  if (!na_bin_entry_sound(block)) bin_entry_stale(block);
  block->bin_mark = 0;
  na_segment_t *segment = na_segment_of_aligned(block);
  na_free_generic(segment, na_page_of(segment, block), block);
}

void na_bins_flush(na_heap_t *heap) {
  na_bins_account(heap, -1);
  for (int c = 0; c < NA_BIN_CLASSES; c++) {
    na_bin_t *bin = &heap->bins[c];
    uint32_t count = bin->count;
    bin->count = 0;
    bin->top = NULL;
    bin->last_kept = NULL;
    for (uint32_t i = 0; i < count; i++) bin_release(bin->slots[i]);
  }
}

/* Called by the heap's thread. */
uint64_t na_bins_own_bytes(const na_heap_t *heap) {
  uint64_t bytes = 0;
  for (int c = 0; c < NA_BIN_CLASSES; c++)
    for (uint32_t i = 0; i < heap->bins[c].count; i++) {
      na_block_t *block = heap->bins[c].slots[i];
      na_page_t *page = na_page_of(na_segment_of_aligned(block), block);
      /* A thread has one heap per arena, and a bin holds blocks of its heap's arena only;
       * another thread's page may change hands meanwhile, but never to this thread. */
      if (na_page_owner(page) == na_thread_id()) bytes += na_class_size(c);
    }
  return bytes;
}

bool na_bins_hold(const na_heap_t *heap, const na_block_t *block) {
  for (int c = 0; c < NA_BIN_CLASSES; c++)
    for (uint32_t i = 0; i < heap->bins[c].count; i++)
      if (heap->bins[c].slots[i] == block) return true;
  return false;
}
