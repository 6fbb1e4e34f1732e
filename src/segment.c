/* segment.c: segments, the SEGMENT_SIZE-aligned units of memory bound to one node, and the
 * segment map that tells, from an address alone, whether the library owns it and on which
 * arena. The map covers the 47-bit user address space at one byte per segment; it lives in
 * .bss, so only the parts that describe real segments are ever touched. */
#include "internal.h"

#include <stddef.h>
#include <string.h>

_Static_assert(sizeof(na_segment_t) <= NA_META_SLICES * NA_SLICE_SIZE,
               "the segment header fits its slices");
_Static_assert(
    offsetof(na_page_t, free) == 64,
    "what every free reads on one line, what the owner and remote frees write on the other");
_Static_assert(sizeof(na_page_t) == (size_t)1 << NA_DESCRIPTOR_SHIFT, "descriptor from a shift");
/* A field the owner rewrites as its page fills and empties must not share the first line:
 * every such write would take that line from the threads about to free into the page. */
_Static_assert(offsetof(na_page_t, sparse_below) >= 64 && offsetof(na_page_t, idle) >= 64 &&
                   offsetof(na_page_t, used) >= 64 && offsetof(na_page_t, installed) >= 64,
               "what the owner rewrites stays off the line remote frees read");

uint8_t na_segmap[NA_SEGMAP_SIZE] NA_TABLE;
uintptr_t na_secret = NA_GOLDEN_GAMMA;

static size_t segmap_index(const void *p) {
  return ((uintptr_t)p >> NA_SEGMENT_SHIFT) & (NA_SEGMAP_SIZE - 1);
}

static void segmap_mark(na_segment_t *segment, uint8_t first_tag) {
  size_t first = segmap_index(segment);
  size_t count = segment->size >> NA_SEGMENT_SHIFT;
  for (size_t i = 1; i < count; i++)
    __atomic_store_n(&na_segmap[first + i], first_tag ? NA_SEGMAP_CONT : 0, __ATOMIC_RELEASE);
  __atomic_store_n(&na_segmap[first], first_tag, __ATOMIC_RELEASE);
}

na_segment_t *na_segment_lookup(const void *p) {
  if ((uintptr_t)p >> NA_ADDRESS_BITS) return NULL;
  size_t index = segmap_index(p);
  uint8_t tag = __atomic_load_n(&na_segmap[index], __ATOMIC_ACQUIRE);
  while (tag == NA_SEGMAP_CONT && index > 0) /* inside a huge segment: walk to its start */
    tag = __atomic_load_n(&na_segmap[--index], __ATOMIC_ACQUIRE);
  if (tag == 0 || tag == NA_SEGMAP_CONT) return NULL;
  na_segment_t *segment = (na_segment_t *)(index << NA_SEGMENT_SHIFT);
  if (segment->cookie != ((uintptr_t)segment ^ na_secret))
    na_fatal("corrupted segment header at %p (owner of %p)", (void *)segment, p);
  if ((uintptr_t)p - (uintptr_t)segment >= segment->size) return NULL;
  return segment;
}

void na_segment_set_span(na_segment_t *segment, size_t first, size_t count, na_span_kind_t kind) {
  na_page_t *head = &segment->slices[first];
  head->kind = (uint8_t)kind;
  head->slice_count = (uint32_t)count;
  head->slice_offset = 0;
  size_t end = first + count < NA_SLICES_PER_SEGMENT ? first + count : NA_SLICES_PER_SEGMENT;
  for (size_t i = first + 1; i < end; i++) {
    segment->slices[i].slice_offset = (uint32_t)((i - first) * sizeof(na_page_t));
    segment->slices[i].kind = NA_SPAN_FREE;
    segment->slices[i].slice_count = 0;
  }
}

/* Only the span's head is written, and the descriptors that lead back to it: that of the slice
 * where the block starts (past the head when the block is aligned beyond the header) and the
 * last one, which every address past the segment's slices looks up. The others keep the
 * mapping's zeros, free slices of their own, so a pointer into them is named as one into free
 * memory. Writing all 510, as an arena's span gets, faulted in 64 KiB of header and wrote as
 * many lines for every huge block: in the emulated NUMA machine, the thread that allocates
 * one 32 MiB array per worker took 1,000-2,000 misses more than glibc's. */
static void lead_back(na_segment_t *segment, size_t slice) {
  if (slice > NA_META_SLICES)
    segment->slices[slice].slice_offset = (uint32_t)((slice - NA_META_SLICES) * sizeof(na_page_t));
}

void na_segment_set_huge_span(na_segment_t *segment, size_t block_slice) {
  na_page_t *head = &segment->slices[NA_META_SLICES];
  head->slice_count = NA_SLICES_PER_SEGMENT - NA_META_SLICES;
  head->slice_offset = 0;
  na_relaxed_store(&head->kind, NA_SPAN_HUGE);
  if (block_slice < NA_SLICES_PER_SEGMENT) lead_back(segment, block_slice);
  lead_back(segment, NA_SLICES_PER_SEGMENT - 1);
}

/* A segment is reserved without access and opened a few granules at a time as its spans are
 * handed out (na_segment_make_writable), for two kinds of kernel that make a writable mapping
 * cost its whole size when it is made. Under strict overcommit (vm.overcommit_memory=2) it is
 * charged in full: every process would be charged a whole segment per node, a small python3
 * 40 MiB where glibc's malloc is charged 4, and a machine set that way would start a fifth as
 * many processes; there a segment opens one granule at a time (two, a huge page, where it is
 * advised for huge pages, so that its mapping is never split inside one). In a process that
 * locks its memory (mlockall with MCL_FUTURE, as low-latency programs do at their start) it is
 * faulted in and locked in full, and MCL_CURRENT does the same to every writable page already
 * mapped: a thread's first small blocks made a whole segment resident, 82 MB for one thread
 * where glibc's malloc held 11, 238 MB at the peak of 16 threads that each made a segment of
 * their own (glibc 136; opened 4 MiB at a time: 25 and 148). Each opening is a system call
 * that holds the process's mappings still, and 500 threads starting at once spent 5% more
 * time one granule at a time: elsewhere a segment opens OPENING_GRANULES at a time (the
 * mode is read once, at the first segment). */
#define OPENING_GRANULES       4 /* 4 MiB */
#define GRANULES_PER_HUGE_PAGE (NA_THP_SIZE / NA_WRITABLE_GRANULE)

static int strict_overcommit = -1;

static size_t granules_per_opening(bool huge_pages) {
  int strict = __atomic_load_n(&strict_overcommit, __ATOMIC_RELAXED);
  if (strict < 0) {
    strict = na_os_overcommit_strict();
    __atomic_store_n(&strict_overcommit, strict, __ATOMIC_RELAXED);
  }
  return !strict ? OPENING_GRANULES : huge_pages ? GRANULES_PER_HUGE_PAGE : 1;
}

void na_segment_overcommit_strict(bool strict) {
  __atomic_store_n(&strict_overcommit, strict, __ATOMIC_RELAXED);
}

/* Bits from..to of a granule mask, both included. */
static uint32_t granules(size_t from, size_t to) {
  uint32_t upto = to >= 31 ? UINT32_MAX : ((uint32_t)1 << (to + 1)) - 1;
  return upto & ~(((uint32_t)1 << from) - 1);
}

/* Opens granules first..last, widened to whole openings. */
static bool open_granules(na_segment_t *segment, size_t first, size_t last) {
  size_t opening = granules_per_opening(segment->huge_pages);
  first &= ~(opening - 1);
  last |= opening - 1;
  uint32_t missing =
      granules(first, last) & ~atomic_load_explicit(&segment->writable, memory_order_acquire);
  while (missing != 0) { /* each run of closed granules in one call */
    size_t from = (size_t)__builtin_ctz(missing), to = from;
    while (to < 31 && (missing >> (to + 1) & 1)) to++;
    if (!na_os_make_writable((char *)segment + from * NA_WRITABLE_GRANULE,
                             (to - from + 1) * NA_WRITABLE_GRANULE))
      return false;
    atomic_fetch_or_explicit(&segment->writable, granules(from, to), memory_order_release);
    missing &= ~granules(from, to);
  }
  return true;
}

bool na_segment_make_writable(na_segment_t *segment, size_t first_slice, size_t count) {
  size_t per_granule = NA_WRITABLE_GRANULE / NA_SLICE_SIZE;
  return open_granules(segment, first_slice / per_granule, (first_slice + count - 1) / per_granule);
}

/* Maps (with `map`: address space opened a granule at a time; or, for a huge block, whose
 * segment is the block, writable and charged in full), binds and formats a segment. The
 * binding happens before anything touches the memory, the header included, so even the
 * header lands on the segment's node. */
static na_segment_t *segment_create(int arena_index, size_t size, size_t alignment, bool huge_pages,
                                    bool *is_zero, void *(*map)(size_t, size_t)) {
  if (alignment < NA_SEGMENT_SIZE) alignment = NA_SEGMENT_SIZE;
  bool reserve = map == na_os_reserve_aligned;
  na_segment_t *segment = map(size, alignment);
  if (segment == NULL) return NULL;
  /* the header's opening, which the descriptors below are written into */
  size_t header = granules_per_opening(huge_pages);
  if (reserve && !na_os_make_writable(segment, header * NA_WRITABLE_GRANULE)) {
    na_os_unmap(segment, size);
    return NULL;
  }
  na_placement_bind(arena_index, segment, size);
  /* Advised before the header is written, so that its huge page is one too. Refused, with
   * THP "always", for the rest: one touched block would make a whole 2 MiB page resident. */
  if (huge_pages)
    na_os_advise_huge(segment, size, true);
  else if (size == NA_SEGMENT_SIZE)
    na_os_advise_huge(segment, size, false);
  else if (arena_index == NA_TOUCH_ARENA)
    /* A huge block left to first touch shares its first huge page with the header, which the
     * allocating thread writes now: that whole page would fault on the allocating thread's
     * node, not the user's. */
    na_os_advise_huge(segment, NA_THP_SIZE, false);
  segment->huge_pages = huge_pages;
  atomic_store_explicit(&segment->writable, reserve ? granules(0, header - 1) : UINT32_MAX,
                        memory_order_relaxed);
  segment->cookie = (uintptr_t)segment ^ na_secret;
  segment->size = size;
  segment->arena_index = arena_index;
  na_segment_set_span(segment, 0, NA_META_SLICES, NA_SPAN_META);
  segmap_mark(segment, (uint8_t)(arena_index + 1));
  *is_zero = true;
  return segment;
}

na_segment_t *na_segment_create(int arena_index, size_t size, bool huge_pages, bool *is_zero) {
  return segment_create(arena_index, size, NA_SEGMENT_SIZE, huge_pages, is_zero,
                        size == NA_SEGMENT_SIZE ? na_os_reserve_aligned : na_os_map_aligned);
}

/* A huge block's segment is written whole: mapped writable, and charged, so that the kernel
 * refuses a size no memory could hold. */
na_segment_t *na_segment_create_aligned(int arena_index, size_t size, size_t alignment,
                                        bool huge_pages, bool *is_zero) {
  return segment_create(arena_index, size, alignment, huge_pages, is_zero,
                        na_os_map_aligned_charged);
}

void na_segment_destroy(na_segment_t *segment) {
  segmap_mark(segment, 0);
  segment->cookie = 0;
  na_os_unmap(segment, segment->size);
}

void na_segment_remapped(na_segment_t *old_segment, size_t old_size, na_segment_t *segment) {
  size_t first = segmap_index(old_segment);
  size_t count = old_size >> NA_SEGMENT_SHIFT;
  for (size_t i = 0; i < count; i++) __atomic_store_n(&na_segmap[first + i], 0, __ATOMIC_RELEASE);
  segment->cookie = (uintptr_t)segment ^ na_secret;
  segmap_mark(segment, (uint8_t)(segment->arena_index + 1));
}
