/* heap.c: a thread's pages for one node, queued per size class, and the slow path of small
 * allocation: refill the current page, move exhausted pages aside, adopt a page an exited
 * thread left, or take a new span from the node's arena. A heap is touched only by its
 * thread, except `delayed_free`, where other threads hand back blocks of full pages. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

na_heap_t na_heap_empty = {
    .direct = {[0 ... NA_DIRECT_COUNT - 1] = &na_page_empty},
    .direct_bin = {[0 ... NA_DIRECT_COUNT - 1] = &na_heap_empty.bins[0]},
    .class_bin = {[0 ... NA_CLASS_COUNT - 1] = &na_heap_empty.bins[0]},
    .current = {[0 ... NA_CLASS_COUNT - 1] = &na_page_empty},
    .arena_index = -1,
};
__thread na_heap_t *na_tls_heap __attribute__((tls_model("initial-exec"))) = &na_heap_empty;

/* ---- first pages shared by the small classes ----------------------------------------
 * Every class a thread uses starts a page of its own, whose first OS page is a page fault
 * and 4 KiB resident for a block or two: a short process (each command of a shell script)
 * or a short thread using twenty classes up to 1 KiB paid twenty faults, where the C
 * library's heap takes a few for all of them. So a class up to NA_DIRECT_MAX without a page
 * of its own is served by the page and bin of the class of the next power of two, until
 * that class's first page has carved SHARED_BYTES: seven pages instead of twenty, and at most
 * 16 KiB of each power of two holding blocks rounded up (at most to twice their size; a
 * program's first objects often live as long as it does, and blocks rounded up in a whole
 * page made a working set of small objects 0.6% more last-level misses).
 * The direct table points the class's sizes there, so the fast path is unchanged, and a
 * block's class stays its page's (its free, usable size and realloc follow the page). Once a
 * power of two has carved that much, or takes a second page, the classes it served get
 * pages of their own at their next slow path. A heap left by its thread shares again. */
#define SHARED_POWERS 7 /* 16, 32, ..., 1024 bytes */
#define SHARED_BYTES  (16 * NA_KiB)
uint8_t na_heap_shared_powers = (1u << SHARED_POWERS) - 1;

/* The class of the power of two at or above the class's size, and that power's bit. */
static int shared_class(int size_class) {
  size_t size = na_class_size(size_class);
  return na_size_class((size_t)1 << (64 - __builtin_clzl(size - 1)));
}
static unsigned power_bit(int power_class) {
  return 1u << (__builtin_ctzl(na_class_size(power_class)) - 4);
}

/* The class whose page and bin serve the sizes of `size_class`. */
static int serving_class(const na_heap_t *heap, int size_class) {
  if (na_class_size(size_class) > NA_DIRECT_MAX || heap->current[size_class] != &na_page_empty)
    return size_class;
  int power = shared_class(size_class);
  return (heap->shared_open & power_bit(power)) ? power : size_class;
}

/* The direct-table slots of one class: sizes (prev class, this class]. */
static void point_direct(na_heap_t *heap, int size_class) {
  size_t size = na_class_size(size_class);
  size_t lo = size_class == 0 ? 0 : na_class_size(size_class - 1) / 16 + 1;
  int serving = serving_class(heap, size_class);
  for (size_t i = lo; i <= size / 16; i++) {
    heap->direct[i] = heap->current[serving];
    heap->direct_bin[i] = &heap->bins[serving];
  }
}

/* The slots of `size_class` and of the classes its power of two serves or served: no slot
 * may name a page that is no longer a class's current one. */
static void update_direct(na_heap_t *heap, int size_class) {
  if (na_class_size(size_class) > NA_DIRECT_MAX) return;
  point_direct(heap, size_class);
  if (shared_class(size_class) != size_class) return;
  for (int c = size_class - 1; c >= 0 && shared_class(c) == size_class; c--) point_direct(heap, c);
}

static void point_all_direct(na_heap_t *heap) {
  for (int c = 0; c < NA_CLASS_COUNT && na_class_size(c) <= NA_DIRECT_MAX; c++)
    point_direct(heap, c);
}

static void share_first_pages(na_heap_t *heap) {
  heap->shared_open = na_heap_shared_powers;
  heap->shared_taken = 0;
  point_all_direct(heap);
}

static void end_sharing(na_heap_t *heap, int power_class) {
  heap->shared_open &= ~power_bit(power_class);
  update_direct(heap, power_class);
}

/* A page joined the class's queue: a power of two's second one ends its sharing. */
static void note_new_page(na_heap_t *heap, int size_class) {
  if (na_class_size(size_class) > NA_DIRECT_MAX || shared_class(size_class) != size_class) return;
  unsigned bit = power_bit(size_class);
  if (!(heap->shared_taken & bit))
    heap->shared_taken |= bit;
  else if (heap->shared_open & bit)
    end_sharing(heap, size_class);
}

/* The class to allocate `size_class` from on the slow path, where a shared page comes to
 * carve more: past SHARED_BYTES carved, its sharing ends. */
static int slow_path_class(na_heap_t *heap, int size_class) {
  int serving = serving_class(heap, size_class);
  if (na_class_size(serving) > NA_DIRECT_MAX || shared_class(serving) != serving ||
      !(heap->shared_open & power_bit(serving)))
    return serving;
  const na_page_t *page = heap->current[serving];
  if (page != &na_page_empty && (size_t)page->capacity * page->block_size >= SHARED_BYTES) {
    end_sharing(heap, serving);
    return size_class;
  }
  return serving;
}

void na_heap_init(na_heap_t *heap, struct na_tld_s *tld, int arena_index) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) heap->current[c] = &na_page_empty;
  heap->tld = tld;
  heap->arena_index = arena_index;
  heap->spare_room = NA_SPARE_SLICES;
  na_bins_init(heap);
  share_first_pages(heap); /* fills the direct table, pages and bins */
}

int na_heap_serving_class(const na_heap_t *heap, int size_class) {
  return serving_class(heap, size_class);
}

static void set_current(na_heap_t *heap, int size_class) {
  na_page_t *first = heap->queues[size_class].first;
  na_page_t *current = first ? first : &na_page_empty;
  if (heap->current[size_class] == current) return;
  heap->current[size_class] = current;
  update_direct(heap, size_class);
}

static na_page_queue_t *queue_of(na_heap_t *heap, na_page_t *page) {
  return page->flags.bits.in_full ? &heap->full : &heap->queues[page->size_class];
}

void na_heap_page_queue_remove(na_heap_t *heap, na_page_t *page) {
  na_queue_remove(queue_of(heap, page), page);
  if (!page->flags.bits.in_full) set_current(heap, page->size_class);
}

/* An exhausted page leaves its queue; remote frees will notify the heap to bring it back,
 * and so will the owner's frees onto its list once na_sparse_full counts enough of them (its
 * frees go to the bin first and leave it full: internal.h says why). False when a remote free
 * raced in, so the page still has blocks. */
static bool page_to_full(na_heap_t *heap, na_page_t *page) {
  if (!na_page_set_delay(page, NA_DELAY_NOTIFY, true)) return false;
  na_queue_remove(&heap->queues[page->size_class], page);
  page->flags.bits.in_full = 1;
  page->sparse_below = na_sparse_full(page);
  na_queue_push_back(&heap->full, page);
  set_current(heap, page->size_class);
  return true;
}

void na_heap_page_unfull(na_heap_t *heap, na_page_t *page) {
  na_page_set_delay(page, NA_DELAY_NONE, false);
  na_queue_remove(&heap->full, page);
  page->flags.bits.in_full = 0;
  na_page_arm_sparse(page);
  na_queue_push_back(&heap->queues[page->size_class], page);
  set_current(heap, page->size_class);
}

/* The statistics' count of the heap's pages, kept as pages join and leave. The bytes in
 * use are counted again at each pass, and whenever the pages grew by a quarter since the
 * last count (a few times while a heap fills, so a young thread's figure is not stale). */
static void hold(na_heap_t *heap, const na_page_t *page, bool join) {
  uint64_t bytes = (uint64_t)page->slice_count << NA_SLICE_SHIFT;
  na_relaxed_store(&heap->held.pages, join ? heap->held.pages + 1 : heap->held.pages - 1);
  na_relaxed_store(&heap->held.bytes, join ? heap->held.bytes + bytes : heap->held.bytes - bytes);
  if (join && heap->held.pages > heap->census_pages + heap->census_pages / 4) na_heap_census(heap);
}

/* page.sparse_marked: a purge candidate since pass sparse_pass, or empty at that pass; a
 * spare page whose blocks were checked as it became one */
#define MARK_SPARSE        1
#define MARK_EMPTY         2
#define MARK_CHECKED_EMPTY 4

/* A page with no block in use that is about to lose its lists: a block of it in the heap's
 * bin, or one not on its lists, was freed twice (or overwritten). A spare page whose blocks
 * were checked as it became one (spare_keep) has not changed since. */
static void check_losing_lists(const na_heap_t *heap, na_page_t *page) {
  na_bins_check_page(heap, page);
  if (page->sparse_marked != MARK_CHECKED_EMPTY) na_page_check_empty(page);
  page->sparse_marked = 0;
}

static void page_release(na_heap_t *heap, na_page_t *page) {
  check_losing_lists(heap, page);
  hold(heap, page, false);
  na_heap_page_queue_remove(heap, page);
  na_page_account_partial(page);
  page->flags.value = 0;
  na_arena_free_span(page);
}

/* ---- spare pages -----------------------------------------------------------------------
 * A program that allocates a batch of blocks and frees them all, again and again, empties
 * the same pages at every round. Sent back to the arena, each one came back from it at the
 * next round: the node's arena lock twice per page and round, taken by every thread of the
 * node (two threads of 300 1 KiB blocks took 4 times mimalloc's time, a fifth of it in the
 * lock; of 100 16 KiB blocks, pages of two slices, 4 times one thread's, half of it in the
 * lock), and its blocks were carved again. So the pages a thread empties wait on its spare
 * list, up to its room, for its next new page: one of the same class is taken as it was
 * left, else any of as many slices is made a page of the class. Past the room the oldest go
 * to the arena, under one lock, until three quarters of it are left, and all of them at the
 * next pass, dated when they were emptied so that their purge delay counts from then. They
 * stay counted among the heap's pages. The room is NA_SPARE_SLICES, grown for a thread that
 * cycles more pages of a length (two threads of 1,000 16 KiB blocks took 3.3 times one
 * thread's time with 1 MiB, 0.6 times mimalloc's with a grown room) and halved at each
 * pass. */

/* Sends the spare pages from `from` to the end of the list (the oldest), or only those of
 * several slices among them, to the arena; whether there was any. */
static bool spare_release(na_heap_t *heap, na_page_t *from, bool several_slices_only) {
  na_page_t *chain = NULL, *next;
  for (na_page_t *page = from; page != NULL; page = next) {
    next = page->next;
    if (several_slices_only && page->slice_count == 1) continue;
    check_losing_lists(heap, page);
    na_queue_remove(&heap->spare, page);
    heap->spare_slices -= page->slice_count;
    if (page->slice_count > 1) heap->spare_several -= page->slice_count;
    hold(heap, page, false);
    page->next = chain;
    chain = page;
  }
  na_arena_free_spans(chain);
  return chain != NULL;
}

static void spare_release_all(na_heap_t *heap) { spare_release(heap, heap->spare.first, false); }

/* Sends the oldest spare pages to the arena until at most `keep` slices are left; past the
 * room, notes their lengths. */
static void spare_trim(na_heap_t *heap, uint32_t keep, bool past_room) {
  if (heap->spare_slices <= keep) return;
  na_page_t *from = heap->spare.last;
  for (uint32_t kept = heap->spare_slices;; from = from->prev) {
    if (past_room) heap->spare_overflowed |= (uint16_t)(1u << from->slice_count);
    kept -= from->slice_count;
    if (kept <= keep) break;
  }
  spare_release(heap, from, false);
}

/* The blocks of a page that becomes a spare are read again when it leaves the heap, to check
 * them (check_losing_lists): by then, where a program frees more pages than the room holds,
 * the oldest are far out of the caches. A thread that freed 40 MiB of 1 KiB blocks in a row
 * missed the last-level cache once more per block that way (40,000 misses, 1% of its memory
 * time in the emulated machine). So a page kept while the list is past its room, whose
 * fate is to go, is checked now, as its blocks were just freed; the pages of a program that
 * cycles them within the room are checked only if they leave (checking them at each round
 * took 8% more instructions where batches of 1 KiB blocks are made and freed whole). */
static void spare_check_early(const na_heap_t *heap, na_page_t *page) {
  if (heap->spare_overflowed == 0 && heap->spare_slices + page->slice_count <= heap->spare_room)
    return;
  na_page_check_empty(page);
  page->sparse_marked = MARK_CHECKED_EMPTY;
}

static void spare_keep(na_heap_t *heap, na_page_t *page) {
  spare_check_early(heap, page);
  na_heap_page_queue_remove(heap, page);
  na_page_account_partial(page);
  na_page_reset_flags(page);
  page->free_stamp = na_os_clock_ms();
  na_queue_push_front(&heap->spare, page);
  heap->spare_slices += page->slice_count;
  if (page->slice_count > 1) heap->spare_several += page->slice_count;
  uint32_t room = heap->spare_room;
  if (heap->spare_slices > room) spare_trim(heap, room - room / 4, true);
}

/* Slices the spare lists of all heaps may hold beyond NA_SPARE_SLICES each, up to
 * NA_SPARE_ONE_SLICE_MAX, and beyond that: a thread that goes idle keeps its spares, so the
 * rooms grown are bounded for the process as a whole, each part within NA_SPARE_GROWN_MAX.
 * Apart, so that the rooms of one-slice pages are bounded as they were before pages of
 * several slices could grow theirs further (with one bound of twice the size, sh8bench's
 * two threads, which grow rooms of one-slice pages only, peaked higher in most runs). */
static _Atomic size_t spare_grown[2];

static size_t growth_part(uint32_t room, int part) {
  uint32_t one = room < NA_SPARE_ONE_SLICE_MAX ? room : NA_SPARE_ONE_SLICE_MAX;
  return part == 0 ? one - NA_SPARE_SLICES : room - one;
}

/* Sets the heap's room to `slices` (NA_SPARE_SLICES at least), as far as the process's
 * growth allows; forgets which lengths went past it. */
static void spare_room_set(na_heap_t *heap, uint32_t slices) {
  if (slices < NA_SPARE_SLICES) slices = NA_SPARE_SLICES;
  if (slices > NA_SPARE_SLICES_MAX) slices = NA_SPARE_SLICES_MAX;
  heap->spare_overflowed = 0;
  int64_t change[2];
  for (int part = 0; part < 2; part++)
    change[part] =
        (int64_t)growth_part(slices, part) - (int64_t)growth_part(heap->spare_room, part);
  for (int part = 0; part < 2; part++) {
    size_t before =
        atomic_fetch_add_explicit(&spare_grown[part], (size_t)change[part], memory_order_relaxed);
    if (change[part] > 0 && before + (size_t)change[part] > NA_SPARE_GROWN_MAX) {
      for (int undo = 0; undo <= part; undo++)
        atomic_fetch_sub_explicit(&spare_grown[undo], (size_t)change[undo], memory_order_relaxed);
      return;
    }
  }
  heap->spare_room = slices;
}

/* In a forked child only the forking thread's heaps live on: the growth counted is theirs. */
void na_heap_after_fork_child(const struct na_tld_s *self) {
  for (int part = 0; part < 2; part++) {
    size_t grown = 0;
    for (int i = 0; self != NULL && i < NA_ARENA_COUNT; i++)
      if (self->heaps[i] != NULL) grown += growth_part(self->heaps[i]->spare_room, part);
    atomic_store_explicit(&spare_grown[part], grown, memory_order_relaxed);
  }
}

/* A thread whose spares of some length went past the room and that now finds none of that
 * length cycles more pages than the room holds: each of them went to the arena and comes
 * back from it, under the node's lock that every thread of the node takes. Pages of several
 * slices may take a room twice as big: two threads allocating and freeing batches of 200
 * blocks of 128 KiB (25 MiB, Hoard's threadtest with big objects) spent a seventh of their
 * time taking and returning pages under the lock with 16 MiB, and ran 25% faster with 32.
 * Their spares go to the arena at the first miss of another length (spare_missed), where
 * the one-slice pages of small blocks stay up to the usual room; a 32 MiB room for those
 * too raised sh8bench's peak in both of two runs (15.6 and 15.9 MiB to 18.1 and 22.0). */
static void spare_room_grow(na_heap_t *heap, size_t slices) {
  uint32_t largest = slices > 1 ? NA_SPARE_SLICES_MAX : NA_SPARE_ONE_SLICE_MAX;
  uint32_t room = heap->spare_room * 2 < largest ? heap->spare_room * 2 : largest;
  spare_room_set(heap, room > heap->spare_room ? room : heap->spare_room);
}

/* A new page of `slices` slices found no spare of its length. Spares of several slices,
 * none of them of the length wanted, are no use as they are;
 * merged in the arena, one may be the span taken now (blocks of random big sizes held
 * 14% more at their peak while their pages waited here). Where there were none, the
 * length went past the room before, and the list is out of it, the thread cycles more
 * pages of it than the room holds: the room grows. Spares of other lengths show a heap
 * going through lengths, as growing buffers do, which a grown room would only make hold
 * more (vecgrow's peak 8% higher). */
static void spare_missed(na_heap_t *heap, size_t slices) {
  if (heap->spare_several != 0 && spare_release(heap, heap->spare.first, true))
    heap->spare_overflowed = 0;
  else if (heap->spare_overflowed >> slices & 1)
    spare_room_grow(heap, slices);
  spare_trim(heap, NA_SPARE_SLICES, false); /* one-slice ones beyond the usual room */
}

/* A spare page on the arena for a new page of the class, off the list: one of the class as
 * it was left, its blocks still on its lists for the next refill to take (carved anew, a
 * page of 1 KiB blocks took sixteen trips through the slow path), else one of as many slices
 * made a page of the class; NULL when there is none. */
static na_page_t *spare_take(na_heap_t *heap, int size_class, int arena_index) {
  size_t slices = na_class_page_slices(size_class);
  na_page_t *fit = NULL;
  for (na_page_t *page = heap->spare.first; page != NULL; page = page->next) {
    if (page->slice_count != slices || na_segment_of_aligned(page)->arena_index != arena_index)
      continue;
    if (fit == NULL || page->size_class == size_class) fit = page;
    if (page->size_class == size_class) break;
  }
  if (fit == NULL) return NULL;
  na_queue_remove(&heap->spare, fit);
  heap->spare_slices -= fit->slice_count;
  if (fit->slice_count > 1) heap->spare_several -= fit->slice_count;
  if (fit->size_class == size_class) {
    na_page_set_delay(fit, NA_DELAY_NONE, false);
    na_page_arm_sparse(fit); /* a refill that finds `free` left as it was does not */
    fit->sparse_marked = 0;  /* its lists change again: checked anew when it leaves */
  } else {
    check_losing_lists(heap, fit);
    na_page_init(fit, heap, size_class, false);
  }
  return fit; /* still counted among the heap's pages */
}

void na_heap_release_spares_for_large(na_heap_t *heap) {
  if (heap->spare_several != 0) spare_release(heap, heap->spare.first, true);
}

/* A page with no block in use becomes a spare, unless it is the only page its class has:
 * keeping that one where it is saves even the spare list's trip in alloc/free loops. */
void na_heap_page_retire(na_heap_t *heap, na_page_t *page) {
  if (page == heap->current[page->size_class]) return;
  na_page_queue_t *q = queue_of(heap, page);
  if (!page->flags.bits.in_full && q->first == page && page->next == NULL) return;
  spare_keep(heap, page);
}

/* Empty pages of several slices kept as their class's current page, up to 2 MiB of them, and
 * all of them once that is exceeded, go back when the heap needs a new span. A class the
 * program has left (growing buffers leave one after another) would otherwise hold up to
 * 512 KiB each; a loop on one or two classes keeps its pages. */
#define IDLE_SLICES_KEPT ((2 * NA_MiB) >> NA_SLICE_SHIFT)

static size_t idle_slices(const na_page_t *page) {
  return page->slice_count > 1 && page->used == 0 ? page->slice_count : 0;
}

static void release_idle_pages(na_heap_t *heap, int except_class) {
  size_t idle = 0;
  for (int c = 0; c < NA_CLASS_COUNT; c++)
    if (c != except_class) idle += idle_slices(heap->current[c]);
  if (idle <= IDLE_SLICES_KEPT) return;
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    na_page_t *page = heap->current[c];
    if (c != except_class && idle_slices(page) != 0) page_release(heap, page);
  }
}

/* ---- giving memory back: passes on the slow path --------------------------------------
 * A free never makes a system call. A free that leaves a page sparse marks it; the heap's
 * next passes, at most one per purge delay and always from the allocation slow path, give
 * back the OS pages that the free blocks of pages marked a whole pass earlier still leave
 * empty, and let the arena purge its free spans. So memory goes back only after it stayed
 * unused for at least the delay, in batches, and a page that is used again in the meantime
 * is never purged. */
#define PURGE_BACKOFF_MAX 256

static void purge_back_off(na_heap_t *heap, int size_class) {
  uint16_t backoff = heap->purge_backoff[size_class];
  backoff = backoff >= PURGE_BACKOFF_MAX / 2 ? PURGE_BACKOFF_MAX : (uint16_t)(backoff * 2 + 1);
  heap->purge_backoff[size_class] = backoff;
  heap->purge_skip[size_class] = backoff;
}

/* A purge that finds nothing, or whose page takes its purged blocks back soon after (see
 * find_page), makes the class wait longer before the next; one that gives memory back
 * shortens the wait. True when the page was tried. */
static bool try_purge(na_heap_t *heap, na_page_t *page, na_os_purge_batch_t *batch) {
  int c = page->size_class;
  if (heap->purge_skip[c] > 0) {
    heap->purge_skip[c]--;
    return false;
  }
  size_t bytes = na_page_purge_free(page, batch);
  if (bytes > 0)
    heap->purge_backoff[c] /= 2;
  else
    purge_back_off(heap, c);
  return true;
}

/* The free blocks of big-block pages that stayed free since the last pass (see
 * na_page_purge_idle), unless the class is waiting after a purge it regretted. */
static void purge_idle(na_heap_t *heap, na_page_t *page, na_os_purge_batch_t *batch) {
  int c = page->size_class;
  if (heap->purge_skip[c] > 0) {
    heap->purge_skip[c]--;
    return;
  }
  if (na_page_purge_idle(page, batch) > 0) heap->purge_backoff[c] /= 2;
}

/* How soon a sparse page gives back the OS pages its free blocks leave empty: a whole pass
 * after it was marked, a budget of pages per pass (aged); at once, pages of one slice only,
 * where their class did not regret a purge lately (pressed); every one, now (forced). */
typedef enum { PURGE_AGED, PURGE_PRESSED, PURGE_FORCED } purge_urgency_t;

static bool purge_candidate(const na_heap_t *heap, const na_page_t *page, purge_urgency_t urgency) {
  if (page->sparse_marked != MARK_SPARSE || page == heap->current[page->size_class]) return false;
  if (urgency == PURGE_AGED) return heap->pass - page->sparse_pass >= 2; /* a delay ago at least */
  return urgency == PURGE_FORCED || page->slice_count == 1;
}

static void purge_sparse_pages(na_heap_t *heap, purge_urgency_t urgency) {
  int budget = urgency == PURGE_AGED ? na_sparse_purge_budget(heap->held.pages) : INT_MAX;
  na_os_purge_batch_t batch;
  na_os_purge_start(&batch);
  for (int c = 0; c < NA_CLASS_COUNT && budget > 0; c++)
    for (na_page_t *page = heap->queues[c].first; page != NULL && budget > 0; page = page->next) {
      if (!purge_candidate(heap, page, urgency)) continue;
      page->sparse_marked = 0;
      if (urgency == PURGE_FORCED)
        na_page_purge_free(page, &batch);
      else
        budget -= try_purge(heap, page, &batch);
    }
  na_os_purge_flush(&batch);
}

/* A heap that must take a new span while half its bytes lie free in its sparse pages holds
 * its memory in pages it does not fill: a program that freed most of its small objects and
 * now allocates other sizes. Waiting for the purge delay there made the peak the sum of both
 * phases (1 GiB of blocks of 16 B-1 KiB, 90% freed at random, then half as much again in
 * blocks of 1-8 KiB: 1.48x glibc's resident size, which reuses the holes for the new sizes).
 * Such pages give back their empty OS pages before the heap grows. Pages of big blocks are
 * left to their idle purge: a program that replaces them at random (buffers of 16-256 KiB)
 * leaves many half empty at any time and takes their blocks back at once. The bytes are
 * counted again only after an eighth of the heap's pages went sparse since the last count,
 * so that the walk costs a few page descriptors per page that went sparse. */
#define PRESSURE_MIN_PAGES 64

static size_t sparse_free_bytes(const na_heap_t *heap) {
  size_t bytes = 0;
  for (int c = 0; c < NA_CLASS_COUNT; c++)
    for (const na_page_t *page = heap->queues[c].first; page != NULL; page = page->next)
      if (purge_candidate(heap, page, PURGE_PRESSED))
        bytes += (size_t)(page->capacity - page->used) * page->block_size; /* carved, so touched */
  return bytes;
}

static void purge_if_pressed(na_heap_t *heap) {
  uint64_t marked = heap->sparse_unseen;
  if (marked < PRESSURE_MIN_PAGES || marked < heap->held.pages / 8 || na_options.background)
    return; /* no system call from an application thread when a purge thread exists */
  heap->sparse_unseen = 0;
  if (sparse_free_bytes(heap) >= heap->held.bytes / 2) purge_sparse_pages(heap, PURGE_PRESSED);
}

static void page_low_elsewhere(na_heap_t *heap, na_page_t *page);
static void pool_class(na_heap_t *heap, int size_class);

/* What the owner's allocations and frees change in a class's current page and bin (other
 * threads' frees wait on its thread_free list until the owner takes them in). */
static uint32_t class_signature(const na_heap_t *heap, int size_class) {
  const na_page_t *page = heap->current[size_class];
  uint64_t x = (uintptr_t)page ^ ((uintptr_t)page->free << 7) ^ ((uintptr_t)page->local_free << 3) ^
               ((uint64_t)page->used << 32) ^ page->capacity ^
               ((uint64_t)heap->bins[size_class].handed << 13);
  return (uint32_t)(x ^ (x >> 32));
}

/* Takes other threads' frees in: a page they emptied goes back to the arena once it had no
 * block in use at two passes in a row (one when forced) and was not refilled in between,
 * its class's current page included; a page they left sparse becomes a purge candidate. */
static void tidy_class(na_heap_t *heap, int size_class, bool force) {
  na_os_purge_batch_t batch;
  na_os_purge_start(&batch);
  na_page_t *next;
  for (na_page_t *page = heap->queues[size_class].first; page != NULL; page = next) {
    next = page->next;
    na_page_collect_remote(page);
    if (page->used == 0) {
      if (force || (page->sparse_marked == MARK_EMPTY && page->sparse_pass != heap->pass)) {
        page_release(heap, page);
        continue;
      }
      page->sparse_marked = MARK_EMPTY; /* a refill clears it */
      page->sparse_pass = heap->pass;
    } else if (page->used < page->sparse_below && page != heap->current[size_class]) {
      page_low_elsewhere(heap, page);
    }
    if (page->used != 0 && page->slice_count > 1 && !force && !na_options.background &&
        na_options.purge_sparse)
      purge_idle(heap, page, &batch); /* no system call from a pass when a purge thread exists */
  }
  na_os_purge_flush(&batch);
}

/* Frees by other threads reach a page's owner only when it refills the page, and a heap
 * keeps a page of every class it ever used: pages emptied that way would stay with it, and
 * so would the free blocks of classes the thread allocates only now and then (blocks of
 * 8 KiB and more, in pages of several slices, held most of the memory of a 4-node stress
 * run under rr, every thread keeping such pages on every node). So at each pass a class the
 * thread did not touch since the last one hands its pages to the node's pool, where any heap
 * of the node that needs the class adopts them before it takes a fresh span, and the other
 * classes are tidied. */
static void tidy_pages(na_heap_t *heap, bool force) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    if (heap->queues[c].first == NULL) continue;
    if (!force && class_signature(heap, c) == heap->class_sig[c]) {
      pool_class(heap, c);
      continue;
    }
    tidy_class(heap, c, force);
    heap->class_sig[c] = class_signature(heap, c); /* as this pass leaves it */
  }
}

/* Whether a walk of the heap's pages may run now, `interval` ms after the last one (stamped
 * in *last_ms), or later when the heap holds so many pages that the walk itself takes
 * longer; if so, stamps now. */
static bool walk_due(const na_heap_t *heap, uint32_t *last_ms, uint32_t interval) {
  uint32_t now = na_os_clock_ms();
  uint32_t walk_ms = (uint32_t)(heap->held.pages / NA_PASS_PAGES_PER_MS);
  if (walk_ms > interval) interval = walk_ms;
  if ((uint32_t)(now - *last_ms) < interval) return false;
  *last_ms = now;
  return true;
}

void na_heap_pass(na_heap_t *heap) {
  if (!walk_due(heap, &heap->last_pass_ms, (uint32_t)na_options.purge_delay_ms)) return;
  heap->pass++;
  na_bins_flush(heap);
  if (heap->tld != NULL) na_free_remote_flush(heap->tld); /* other threads' blocks go home too */
  tidy_pages(heap, false);
  spare_release_all(heap);
  if (!na_options.background) purge_sparse_pages(heap, PURGE_AGED); /* no system call here then */
  spare_room_set(heap, heap->spare_room / 2);
  memset(heap->fresh_spans, 0, sizeof heap->fresh_spans);
  na_heap_census(heap);
  na_pool_collect(heap->arena_index, false);
  na_arena_purge_expired(heap->arena_index);
  /* The first-touch arena has no heap of its own: a program that stops allocating large
   * blocks would keep its freed ones resident for good. */
  if (na_arena_mapped_bytes(NA_TOUCH_ARENA) > 0) na_arena_purge_expired(NA_TOUCH_ARENA);
}

void na_heap_collect(na_heap_t *heap, bool purge) {
  na_bins_flush(heap);
  tidy_pages(heap, true);
  spare_release_all(heap);
  if (purge) purge_sparse_pages(heap, PURGE_FORCED);
}

static na_noinline void page_low_elsewhere(na_heap_t *heap, na_page_t *page) {
  if (page->used == 0) {
    na_heap_page_retire(heap, page);
    return;
  }
  page->sparse_below = (uint16_t)(page->used / 2 + 1); /* again when half the rest is free */
  if (page->flags.bits.in_full) return;
  if (page->sparse_marked != MARK_SPARSE) heap->sparse_unseen++;
  page->sparse_marked = MARK_SPARSE;
  page->sparse_pass = heap->pass;
}

void na_heap_page_low(na_heap_t *heap, na_page_t *page) {
  if (page->flags.bits.in_full) { /* na_sparse_full: the owner freed onto the list */
    na_heap_page_unfull(heap, page);
    if (page->used >= page->sparse_below) return;
  }
  if (page == heap->current[page->size_class]) { /* kept, about to be reused */
    page->sparse_below = 0; /* until its next refill, which every page has before it stops
                               being current */
    return;
  }
  page_low_elsewhere(heap, page);
}

/* The block's word linked it into the list, and would make it look freed already. */
static void free_delayed_block(na_block_t *block) {
  block->next_encoded = 0;
  na_segment_t *segment = na_segment_of_aligned(block);
  na_free_generic(segment, na_page_of(segment, block), block);
}

void na_heap_free_delayed(na_heap_t *heap) {
  na_block_t *block = atomic_exchange_explicit(&heap->delayed_free, NULL, memory_order_acquire);
  while (block != NULL) {
    na_block_t *next = (na_block_t *)(block->next_encoded ^ na_secret);
    free_delayed_block(block);
    block = next;
  }
}

/* Interleave takes its pages from the page-interleaved arena, so any mix of sizes spreads
 * evenly; weighted sends whole spans to nodes by its schedule, one turn for all threads. */
static int span_node_for(na_heap_t *heap) {
  if (heap->arena_index != NA_INTERLEAVE_ARENA || !na_policy_is_weighted())
    return heap->arena_index;
  return na_policy_spread_next_shared();
}

static na_page_t *page_adopt(na_heap_t *heap, int arena_index, int size_class) {
  na_page_t *page = na_pool_adopt(arena_index, size_class);
  if (page == NULL) return NULL;
  if (heap->tld != NULL) na_tld_stats(heap->tld, arena_index)->pool_in_pages++;
  hold(heap, page, true);
  page->heap = heap;
  na_page_reset_flags(page);
  na_page_set_owner(page, na_thread_id());
  na_page_set_delay(page, NA_DELAY_NONE, false);
  na_page_collect_remote(page);
  return page;
}

/* Pages whose blocks all came back from other threads wait on their thread_free lists until
 * their owner refills them, or until two passes found them empty: a class allocated now and
 * then (buffers freed by a collector thread) kept megabytes that way while other classes took
 * fresh spans. Before the heap takes one, such pages go back to the arena, where the span
 * they leave is reused first, by any class. Walking every page costs about as much as a pass
 * does, so the look is made at most as often as NA_SWEEPS_PER_DELAY per purge delay. */
#define NA_SWEEPS_PER_DELAY 16

static void release_pages_freed_elsewhere(na_heap_t *heap) {
  uint32_t interval = (uint32_t)na_options.purge_delay_ms / NA_SWEEPS_PER_DELAY;
  if (!walk_due(heap, &heap->last_sweep_ms, interval)) return;
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    na_page_t *next;
    for (na_page_t *page = heap->queues[c].first; page != NULL; page = next) {
      next = page->next;
      uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
      if (na_tf_blocks(tf) == NULL || na_tf_count(tf) != page->used) continue;
      na_page_collect_remote(page);
      if (page->used == 0) page_release(heap, page);
    }
  }
}

/* A class that takes its third span from the arena since the last pass is being filled: its
 * new page will be carved to the end, a trap per OS page as each carve first writes it (1 GiB
 * of small blocks: 262,144 traps, half of the run's time in a virtual machine, where a trap
 * costs about 5 us). A page of one slice that is not resident is faulted in at once, in one
 * system call; a class's first pages after a pass, pages of big blocks (written a block at a
 * time) and pages of huge-page segments (one trap for 2 MiB) are left to their first touch. A
 * page of strict placement was faulted in when its span was checked. */
#define PREFAULT_AFTER 2

static void prefault_if_growing(na_heap_t *heap, na_page_t *page) {
  uint8_t *taken = &heap->fresh_spans[page->size_class];
  if (*taken < UINT8_MAX) (*taken)++;
  if (*taken <= PREFAULT_AFTER || !page->is_zero || page->slice_count != 1) return;
  na_segment_t *segment = na_segment_of_aligned(page);
  if (segment->huge_pages || na_placement_is_strict(segment->arena_index)) return;
  na_os_prefault(na_page_start(page), NA_SLICE_SIZE);
}

/* A class's current page stays when it empties (na_heap_page_retire), which saves a loop of
 * allocations and frees the spare list's trip. A program that moves on to other classes
 * leaves each one's last page behind, resident and empty: pools of one size in turn, from 48
 * bytes to 4 KiB, held 1.7 times glibc's memory, a page of each class left. So before the heap
 * takes a span for a page of one slice, the empty current page of another class, as long and
 * of the same node, becomes a spare, and so this class's page. A class that allocates again
 * gets a page the usual way: one slow path, where the span cost one as well. A block in a bin
 * counts as in use, so a class in a loop of frees and allocations keeps its page. Not pages of
 * several slices: a fresh one is often untouched, where a big class's old page is resident
 * wherever its blocks were written, and calloc clears what was touched (Python's zero-filled
 * bytes of 20-600 KB peaked at 131 MiB with them, 99 without). */
static bool idle_current_to_spare(na_heap_t *heap, int size_class, int arena_index, size_t slices) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    na_page_t *page = heap->current[c];
    if (c == size_class || page == &na_page_empty || page->used != 0 ||
        page->slice_count != slices || na_segment_of_aligned(page)->arena_index != arena_index)
      continue;
    spare_keep(heap, page);
    return true;
  }
  return false;
}

static na_page_t *page_fresh(na_heap_t *heap, int size_class, int arena_index) {
  na_page_t *spare = spare_take(heap, size_class, arena_index);
  if (spare != NULL) return spare;
  size_t slices = na_class_page_slices(size_class);
  if (slices == 1 && idle_current_to_spare(heap, size_class, arena_index, slices))
    return spare_take(heap, size_class, arena_index);
  spare_missed(heap, slices);
  release_idle_pages(heap, size_class);
  release_pages_freed_elsewhere(heap);
  purge_if_pressed(heap);
  int actual = arena_index;
  na_page_t *page = na_arena_alloc_span(arena_index, slices, &actual);
  if (page == NULL) return NULL;
  if (actual != arena_index && heap->tld) na_tld_stats(heap->tld, arena_index)->fallback_count++;
  na_page_init(page, heap, size_class, page->is_zero);
  hold(heap, page, true);
  prefault_if_growing(heap, page);
  return page;
}

/* Blocks freed in a big class stay resident in its pages. A thread using a few blocks each
 * of many big classes kept every class's page half free (the latency workload's peak, 2x
 * glibc's), where an allocator that coalesces reuses that memory for any size. So a class of
 * blocks above NA_BIG_BLOCK whose own pages (and bin) have no freed block takes one freed in
 * the current page of one of the next BORROW_CLASSES classes (at most twice its size) before
 * it carves new memory, takes purged blocks back or takes a span. The block stays its page's:
 * its free goes there, and malloc_usable_size reports that page's size. A class may live on
 * borrowed blocks for a while, each through the slow path, and a block of these sizes takes
 * far longer to write than a trip through it. Smaller classes would trade their fast path
 * for it. */
#define BORROW_CLASSES 4

static bool borrows(int size_class) { return na_class_size(size_class) > NA_BIG_BLOCK; }

/* `page`, of the class's queue, goes to its front and becomes the class's current page. */
static na_page_t *make_current(na_heap_t *heap, int size_class, na_page_t *page) {
  na_page_queue_t *q = &heap->queues[size_class];
  if (q->first != page) {
    na_queue_remove(q, page);
    na_queue_push_front(q, page);
  }
  set_current(heap, size_class);
  return page;
}

static na_page_t *page_with_freed_block(na_heap_t *heap, int size_class) {
  na_page_queue_t *q = &heap->queues[size_class];
  for (na_page_t *page = q->first, *next; page != NULL; page = next) {
    next = page->next;
    if (na_page_refill_freed(page)) return make_current(heap, size_class, page);
    /* Carved whole and with nothing unlinked, it has no block to give until one is freed
     * into it: to the full list, as find_page's walk does, or every malloc of the class
     * walked it again (a pool of 64 blocks of 100 KiB replaced at random: 85 ns a step,
     * seven times tcmalloc's, nearly half of it here). */
    if (page->capacity == page->reserved && page->purged == 0) page_to_full(heap, page);
  }
  int last = size_class + BORROW_CLASSES < NA_CLASS_COUNT ? size_class + BORROW_CLASSES
                                                          : NA_CLASS_COUNT - 1;
  for (int c = size_class + 1; c <= last; c++) {
    na_page_t *page = heap->current[c];
    if (page != &na_page_empty && na_page_refill_freed(page)) return page;
  }
  return NULL;
}

/* A page of the class with a free block (or, where `may_borrow`, of a class a little bigger),
 * or NULL when no memory is left. Pages that turn out to be exhausted move to the full list;
 * an adopted page joins the queue and is tried like the others. */
static na_page_t *find_page(na_heap_t *heap, int size_class, bool may_borrow) {
  if (na_checks_enabled) na_validate(na_check_heap(heap));
  na_heap_pass(heap);
  if (may_borrow && borrows(size_class)) {
    na_page_t *page = page_with_freed_block(heap, size_class);
    if (page != NULL) return page;
  }
  na_page_queue_t *q = &heap->queues[size_class];
  for (;;) {
    na_page_t *page = q->first;
    while (page != NULL) {
      if (na_page_refill(page) == NA_REFILL_REGRET) purge_back_off(heap, size_class);
      if (page->free != NULL) break;
      na_page_t *next = page->next;
      if (!page_to_full(heap, page)) continue; /* a remote free arrived: refill again */
      page = next;
    }
    if (page != NULL) return make_current(heap, size_class, page);
    int arena_index = span_node_for(heap);
    page = page_adopt(heap, arena_index, size_class);
    if (page == NULL) page = page_fresh(heap, size_class, arena_index);
    if (page == NULL) return NULL;
    na_queue_push_front(q, page);
    note_new_page(heap, size_class);
  }
}

void *na_heap_alloc_small(na_heap_t *heap, int size_class, bool may_borrow, bool *zero) {
  size_class = slow_path_class(heap, size_class);
  if (na_unlikely(atomic_load_explicit(&heap->delayed_free, memory_order_relaxed) != NULL))
    na_heap_free_delayed(heap); /* may fill the bin: checked after */
  na_bin_t *bin = heap->class_bin[size_class];
  na_bins_check_top(bin);
  /* The bin first, as malloc's fast path: calloc comes here for every block above
   * CALLOC_QUICK_MAX, and a bin it passed by only filled, each of its classes keeping up to 15
   * freed blocks out of use until the next pass while calloc took others from the pages
   * (buffers of 1-96 KiB calloc'd at random peaked at 34.6 MiB that way, 31.9 now). */
  na_block_t *kept = bin->top;
  if (kept != NULL) { /* checked just above: taken without a second check */
    na_bin_take_top(bin, kept);
    *zero = false;
    return kept;
  }
  na_page_t *page = heap->current[size_class];
  if (page->free == NULL) page = find_page(heap, size_class, may_borrow);
  if (page == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  /* While a page is zero its `free` list holds only carved blocks: every path that puts a
   * block handed out before on it clears the flag. The pop clears the link words. */
  *zero = page->is_zero;
  return na_page_pop(page);
}

/* An empty page that goes to the pool is cut anew, as a fresh page of its class: its lists
 * were left by this thread's frees in an order of their own, and the thread that adopts it,
 * often on another core, popped them one cold line after another, each pop waiting for the
 * link before it (threads started by the hundred and exiting, each allocating a few blocks of
 * many classes: 5% of their time). Carving writes the links in address order instead,
 * over memory that is still resident. Its blocks are checked first, while this thread's
 * frees have them in its cache. */
static void uncarve(na_heap_t *heap, na_page_t *page) {
  na_page_init(page, heap, page->size_class, false);
  na_page_set_delay(page, NA_DELAY_NEVER, false);
}

/* The pages of `q` leave the heap, their delay NA_DELAY_NEVER already, onto *kept, for the
 * node's pool; empty ones go back to the arena unless `keep_empty`. */
static void give_up(na_heap_t *heap, na_page_queue_t *q, int ran_on, bool keep_empty,
                    na_page_t **kept) {
  na_page_t *page;
  while ((page = q->first) != NULL) {
    hold(heap, page, false);
    na_queue_remove(q, page);
    na_page_reset_flags(page);
    na_page_account_partial_on(page, ran_on);
    na_page_collect_remote(page);
    if (page->used == 0) {
      na_page_check_empty(page);
      if (!keep_empty) {
        na_arena_free_span(page);
        continue;
      }
      uncarve(heap, page);
    }
    page->next = *kept;
    *kept = page;
    if (heap->tld != NULL)
      na_tld_stats(heap->tld, na_segment_of_aligned(page)->arena_index)->pool_out_pages++;
  }
}

/* A class's pages (none of them full: those stay) go to the pool. */
static void pool_class(na_heap_t *heap, int size_class) {
  na_page_queue_t *q = &heap->queues[size_class];
  for (na_page_t *page = q->first; page != NULL; page = page->next)
    na_page_set_delay(page, NA_DELAY_NEVER, false);
  na_page_t *kept = NULL;
  give_up(heap, q, -1, false, &kept);
  na_pool_abandon(kept);
  set_current(heap, size_class);
}

/* The thread is exiting, or left the heap's node: every page goes to the node's pool, for
 * another heap to adopt, empty ones included. Threads that come and go in bursts then reuse
 * the pages of the burst before as they were cut, class by class; returned to the arena as
 * free spans, they merged, the next burst cut them into pages of other classes, and each
 * new page's blocks reached memory the old one had never touched: 1,000 threads started and
 * joined six times in a row held 0.63 GB after the first round and 1.70 GB after the sixth,
 * 0.78 GB now (glibc 0.50 GB). The pool gives its empty pages to the arena once they waited a
 * collect. */
void na_heap_abandon(na_heap_t *heap, int ran_on) {
  na_bins_account(heap, ran_on);
  na_bins_flush(heap);
  na_page_queue_t *lists[NA_CLASS_COUNT + 1];
  for (int c = 0; c < NA_CLASS_COUNT; c++) lists[c] = &heap->queues[c];
  lists[NA_CLASS_COUNT] = &heap->full;
  for (int i = 0; i <= NA_CLASS_COUNT; i++)
    for (na_page_t *page = lists[i]->first; page != NULL; page = page->next)
      na_page_set_delay(page, NA_DELAY_NEVER, false); /* no more notifications to this heap */
  na_heap_free_delayed(heap);
  spare_release_all(heap);
  spare_room_set(heap, NA_SPARE_SLICES);
  heap->sparse_unseen = 0;
  memset(heap->fresh_spans, 0, sizeof heap->fresh_spans);
  na_page_t *kept = NULL;
  for (int i = 0; i <= NA_CLASS_COUNT; i++) give_up(heap, lists[i], ran_on, true, &kept);
  na_pool_abandon(kept);
  na_arena_release_segments(heap->arena_index);
  for (int c = 0; c < NA_CLASS_COUNT; c++) set_current(heap, c);
  share_first_pages(heap);
  na_relaxed_store(&heap->held.pages, 0);
  na_relaxed_store(&heap->held.bytes, 0);
  na_relaxed_store(&heap->held.used_bytes, 0);
  na_relaxed_store(&heap->held.touched_bytes, 0);
  heap->census_pages = 0;
}

void na_heap_census(na_heap_t *heap) {
  uint64_t used = 0, touched = 0;
  for (int c = 0; c < NA_CLASS_COUNT; c++)
    for (const na_page_t *page = heap->queues[c].first; page != NULL; page = page->next) {
      used += na_page_live_bytes(page);
      touched += na_page_touched_bytes(page);
    }
  for (const na_page_t *page = heap->full.first; page != NULL; page = page->next) {
    used += na_page_live_bytes(page);
    touched += na_page_touched_bytes(page);
  }
  for (const na_page_t *page = heap->spare.first; page != NULL; page = page->next)
    touched += na_page_touched_bytes(page);
  uint64_t kept = na_bins_own_bytes(heap); /* freed, though their pages count them in use */
  used = used > kept ? used - kept : 0;
  na_relaxed_store(&heap->held.used_bytes, used);
  na_relaxed_store(&heap->held.touched_bytes, touched);
  heap->census_pages = heap->held.pages;
}

/* Brings the thread's own counters up to date before a report. */
void na_heap_account(na_heap_t *heap) {
  na_bins_account(heap, -1);
  for (int c = 0; c < NA_CLASS_COUNT; c++)
    for (na_page_t *page = heap->queues[c].first; page != NULL; page = page->next)
      na_page_account_partial(page);
}
