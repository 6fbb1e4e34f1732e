/* types.h: the allocator's data structures and the constants that shape memory.
 *
 * Memory layout, from the top down:
 *   arena    one per NUMA node (plus one interleaved), owns segments; locked, off the fast path
 *   segment  SEGMENT_SIZE-aligned run of SEGMENT_SIZE bytes bound to one node with mbind before
 *            any page is touched; its first slice holds the header and one descriptor per slice
 *   span     a run of slices inside a segment, described by the descriptor of its first slice
 *            (page_t): a small page of equal blocks, a large block, or free
 *   heap     one per (thread, node): per size class a queue of pages the thread owns
 * The home node of any pointer is one byte in the segment map, indexed by address. */
#ifndef NUMALLOC_TYPES_H
#define NUMALLOC_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NA_KiB ((size_t)1024)
#define NA_MiB (NA_KiB * NA_KiB)
/* A transparent huge page (x86-64, and arm64 with 4 KiB pages). */
#define NA_THP_SIZE (2 * NA_MiB)

#define NA_SEGMENT_SHIFT      25 /* 32 MiB */
#define NA_SEGMENT_SIZE       ((size_t)1 << NA_SEGMENT_SHIFT)
#define NA_SEGMENT_MASK       (NA_SEGMENT_SIZE - 1)
#define NA_SLICE_SHIFT        16 /* 64 KiB */
#define NA_SLICE_SIZE         ((size_t)1 << NA_SLICE_SHIFT)
#define NA_SLICES_PER_SEGMENT (NA_SEGMENT_SIZE / NA_SLICE_SIZE)
#define NA_META_SLICES        2 /* the header: one 128-byte descriptor per slice */
#define NA_WRITABLE_GRANULE   (NA_SEGMENT_SIZE / 32) /* 1 MiB: a bit of `writable` */
#define NA_PAGE_SIZE          ((size_t)4096)
#define NA_DESCRIPTOR_SHIFT   7 /* a span descriptor (na_page_t) is 128 bytes */

/* Every block is aligned at least so (alignof(max_align_t) on x86-64 and arm64). */
#define NA_MIN_ALIGN ((size_t)16)

/* User addresses lie below 2^47 (four-level page tables; the kernel hands out higher ones
 * only to a program that asks for them): a pointer above is never ours, and the segment
 * map covers exactly that space. */
#define NA_ADDRESS_BITS 47
/* A huge block spans at most half of that space: no larger mapping could succeed, and
 * sizes, offsets and alignments added together stay far from overflowing. */
#define NA_HUGE_MAX ((size_t)1 << (NA_ADDRESS_BITS - 1))
/* An alignment is honoured by mapping size + alignment and unmapping the excess; larger
 * alignments than 1 TiB would reserve most of the address space for one block. */
#define NA_ALIGNMENT_MAX ((size_t)1 << 40)

/* Small blocks: 16-byte steps to 128, then four classes per doubling (waste < 25%), five
 * from 1 KiB to 8 KiB (internal.h). */
#define NA_SMALL_STEP_MAX 128
#define NA_SMALL_MAX      ((size_t)256 * NA_KiB)
#define NA_CLASS_COUNT    55
#define NA_DIRECT_MAX     1024 /* sizes served by the direct table in the heap */
#define NA_DIRECT_COUNT   (NA_DIRECT_MAX / 16 + 1)
/* Large blocks are slice spans inside a segment, up to a whole segment's slices; above that
 * they get a segment of their own. */
#define NA_LARGE_MAX ((NA_SLICES_PER_SEGMENT - NA_META_SLICES) * NA_SLICE_SIZE)

/* Nodes 0 to 63: a set of nodes is one 64-bit word everywhere (the segment map's one-byte
 * arena tag alone would allow up to 125). Nodes above are not used (topology.c says how). */
#define NA_MAX_NODES        64
#define NA_INTERLEAVE_ARENA NA_MAX_NODES       /* arena index of page-interleaved memory */
#define NA_TOUCH_ARENA      (NA_MAX_NODES + 1) /* large blocks placed by first touch */
#define NA_ARENA_COUNT      (NA_MAX_NODES + 2)
#define NA_NODE_INTERLEAVED (-2)

/* CPUs 0 to 8191, the most a Linux kernel is built for (NR_CPUS): the CPU -> node map is a
 * 16 KiB array. */
#define NA_MAX_CPUS 8192

/* Segment map byte: 0 not ours, 1..NA_ARENA_COUNT the owning arena index + 1, or a
 * continuation of a huge segment that began at a lower address. */
#define NA_SEGMAP_CONT 0xFF
/* the free path tells a segment's first byte by its sign: arena tags are 1..127, CONT is not */
_Static_assert(NA_ARENA_COUNT < 128 && NA_SEGMAP_CONT >= 128, "segment map tags");

/* Every block has two words. The second is the bin's mark while the block waits in a bin, and
 * the remote mark while it waits in another thread to go home; on a page's list it is NULL or
 * a block of the same page further down the list, which the pop fetches ahead: a hint, only
 * ever prefetched, never followed. */
typedef struct na_block_s {
  uintptr_t next_encoded;
  union {
    uintptr_t bin_mark;
    struct na_block_s *ahead;
  };
} na_block_t;

typedef enum na_span_kind_e {
  NA_SPAN_FREE = 0,
  NA_SPAN_SMALL,   /* a page of equal blocks owned by one heap */
  NA_SPAN_LARGE,   /* one block, owned by the arena */
  NA_SPAN_HUGE,    /* one block in a segment of its own */
  NA_SPAN_META,    /* the segment header slice */
  NA_SPAN_PURGING, /* free, but out of the free lists while its pages go back to the OS */
} na_span_kind_t;

/* Low two bits of page.thread_free: what a remote free must do besides pushing. */
typedef enum na_delay_e {
  NA_DELAY_NONE = 0,   /* push on the page */
  NA_DELAY_NOTIFY = 1, /* page is full and off its queue: hand the block to the heap */
  NA_DELAY_BUSY = 2,   /* a remote thread is handing a block to the heap right now */
  NA_DELAY_NEVER = 3,  /* page has no heap (abandoned): push on the page */
} na_delay_t;

struct na_heap_s;
struct na_segment_s;

/* Descriptor of a span (valid in the span's first slice; the other slices of a span only
 * carry slice_offset back to it). 128 bytes: finding it from an address is a shift, and
 * pages of different threads never share a cache line. The first line holds what every
 * free reads and the owner writes only when the page changes state (carving, filling,
 * purging, a new owner); the second what the owner's fast paths write and what other
 * threads push onto. A remote free reads the first line without taking it from the owner,
 * and the owner's next free or allocation in the page does not wait for it to come back. */
typedef struct __attribute__((aligned(128))) na_page_s {
  uintptr_t key;        /* free-list pointer encoding */
  uint64_t block_magic; /* 2^64 / block_size, rounded up: block starts in one multiply */
  uintptr_t owner;      /* owning thread's identity | NA_OWNER_FLAGGED, 0 when no thread owns it */
  uint32_t capacity;    /* blocks carved from the page so far */
  uint32_t block_size;
  uint32_t slice_offset; /* bytes back to the span's descriptor */
  union {
    struct {
      uint8_t in_full;    /* off the heap's queue because it had no free block */
      uint8_t has_purged; /* free blocks sit unlinked in OS pages given back (purged) */
      uint8_t grown;      /* large spans: the block came here by growing with realloc */
      uint8_t unused;
    } bits;
    uint32_t value; /* zero on the fast free path */
  } flags;
  uint8_t kind;
  uint8_t size_class;
  uint16_t purged;     /* given back while blocks lived: OS pages of a one-slice page, or
                          blocks of a bigger one (see page.c) */
  uint32_t free_stamp; /* coarse time when a free span was freed, for the purge delay */
  uint32_t reserved;   /* blocks that fit in the page */
  uint32_t slice_count;
  uint32_t sparse_pass;
  union {
    uint32_t large_size; /* large spans: bytes the block may use; the slices after them are
                            room for it to grow into */
    uint32_t list_mark;  /* small pages: `free` holds list_mark - used - (blocks on
                            local_free) blocks (page.c) */
  };

  _Alignas(64) na_block_t *free;  /* next blocks to hand out (owner only) */
  na_block_t *local_free;         /* blocks the owner freed */
  _Atomic(uintptr_t) thread_free; /* blocks other threads freed | na_delay_t */
  struct na_heap_s *heap;
  struct na_page_s *next;
  struct na_page_s *prev;
  uint32_t used;      /* blocks handed out and not freed to a list the owner has seen */
  uint32_t installed; /* blocks put on `free` by the last refill (statistics) */
  /* Both rewritten at refills and heap passes, hence here: on the first line every such
   * write took the line away from the threads about to free into the page (a remote free's
   * p99 rose from 80 to 137 ns). */
  uint16_t sparse_below; /* a free that leaves `used` below this calls the heap; 0 never */
  uint16_t idle;    /* blocks of a page of several slices that were free at its last idle check */
  uint8_t is_zero;  /* the span's memory is known to be zero (fresh or purged) */
  uint8_t is_dirty; /* free span whose pages may be resident */
  uint8_t sparse_marked; /* a free left the page sparse in heap pass `sparse_pass` */
  int8_t used_on;        /* first-touch spans: the node of the thread that allocated it */
} na_page_t;

typedef struct na_segment_s {
  uintptr_t cookie; /* address ^ process secret: a corrupted header is caught, not trusted */
  size_t size;      /* bytes mapped (NA_SEGMENT_SIZE, or more for a huge segment) */
  int arena_index;
  bool huge_pages; /* advised for transparent huge pages: small OS pages are not given back */
  uint32_t free_slices;
  /* Which NA_WRITABLE_GRANULE-sized parts are open for writing (bit i, the i-th part): all
   * of a huge block's segment, those handed out of another (segment.c). */
  _Atomic uint32_t writable;
  uintptr_t affinity; /* the thread whose spans it serves first (arena.c) */
  /* Slices that may be resident: handed out since they were last given back (bit i, slice i;
   * arena.c). A free span is dirty if any of its slices is, not all of them; one not marked
   * reads as zero. */
  uint64_t resident[NA_SLICES_PER_SEGMENT / 64];
  struct na_segment_s *next;
  struct na_segment_s *prev;
  na_page_t slices[NA_SLICES_PER_SEGMENT];
} na_segment_t;

static inline bool na_segment_slice_resident(const na_segment_t *segment, size_t slice) {
  return (segment->resident[slice / 64] >> (slice % 64)) & 1;
}

typedef struct na_page_queue_s {
  na_page_t *first;
  na_page_t *last;
} na_page_queue_t;

/* Small pages held somewhere (a heap, a node's pool): how many, their bytes, and the bytes
 * of the blocks in use in them. */
typedef struct na_census_s {
  uint64_t pages;
  uint64_t bytes;
  uint64_t touched_bytes; /* of the blocks carved so far, less OS pages given back */
  uint64_t used_bytes;
} na_census_t;

/* The blocks of one class the heap's thread freed last, handed out again first (bin.c):
 * up to 15, fewer for classes above 2 KiB. Blocks here still count as used in their pages. */
#define NA_BIN_MAX     ((size_t)64 * NA_KiB) /* the biggest class with a bin */
#define NA_BIN_CLASSES 47                    /* the classes up to NA_BIN_MAX */
/* Blocks above this size are big: a class of them whose pages have no freed block borrows
 * one of a bigger class (heap.c), and realloc sends the block it moves out of to its page,
 * not to a bin (alloc.c). */
#define NA_BIG_BLOCK ((size_t)32 * NA_KiB)
#define NA_BIN_SLOTS 15
/* Pops in a row of the block a bin took last after which the next such pop skips its checks. */
#define NA_BIN_UNREAD_RUN 8
#define NA_BIN_BYTES      ((size_t)256 * NA_KiB) /* a bin of big blocks holds about this much */
/* A thread keeps another thread's freed block in its bin only from this size: a smaller
 * block shares its cache lines with neighbours that their page's owner keeps writing, and
 * reusing it here would make both threads write the same lines. It is past the direct
 * table's last size, so the bins malloc reaches through that table hold the thread's own
 * blocks only, which lets their pop hand one out unread (na_bin_pop_own). */
#define NA_BIN_FOREIGN_MIN (NA_DIRECT_MAX + 1)
/* `top` repeats the newest block (slots[count - 1], NULL when the bin is empty): malloc finds
 * the block it returns in one load, where reading the count and then the slot put two loads,
 * each waiting on the last free's stores, between the call and its block (cfrac, a free and
 * a malloc of one class in turn, took 9% longer). stack[0] is always NULL, so that taking the
 * last block leaves `top` NULL without a branch: stack[i] is slots[i - 1]. */
typedef struct na_bin_s {
  /* 32 bits, where 16 would do: the free and the pop index the stack with the count as they
   * load it, where a narrower one was widened again first. */
  uint32_t count;
  uint32_t capacity; /* 0 for the classes without a bin: a free never stops here */
  na_block_t *top;
  /* The block the bin took last, until it hands out one, and how many pops in a row handed
   * out such a block: a run of them lets the pop skip its checks (na_bin_pop_own). */
  na_block_t *last_kept;
  uint32_t last_kept_run;
  uint32_t handed; /* blocks handed out, ever (wraps) */
  union {
    na_block_t *stack[NA_BIN_SLOTS + 1];
    struct {
      na_block_t *none;
      na_block_t *slots[NA_BIN_SLOTS];
    };
  };
} na_bin_t;

/* The spare pages a heap keeps: room for the batches of a few hundred to a few thousand
 * blocks that programs allocate and free whole (100 blocks of 12 KiB), and no more, as a
 * thread that goes idle keeps them until its next allocation's pass (2 MiB held random big
 * blocks' peak 6% higher). A thread cycling more pages of a length than that doubles its
 * room, up to NA_SPARE_ONE_SLICE_MAX for pages of one slice and NA_SPARE_SLICES_MAX for
 * pages of several, halved again at each pass; the growth of all heaps together to the
 * first and beyond it each stays within NA_SPARE_GROWN_MAX (heap.c). */
#define NA_SPARE_SLICES        ((1 * NA_MiB) >> NA_SLICE_SHIFT)
#define NA_SPARE_ONE_SLICE_MAX ((16 * NA_MiB) >> NA_SLICE_SHIFT)
#define NA_SPARE_SLICES_MAX    ((32 * NA_MiB) >> NA_SLICE_SHIFT)
#define NA_SPARE_GROWN_MAX     ((32 * NA_MiB) >> NA_SLICE_SHIFT)

/* A thread's allocation state for one node (or for interleaved spans). */
typedef struct na_heap_s {
  na_page_t *direct[NA_DIRECT_COUNT]; /* (size+15)/16 -> page for that size's class */
  /* The segment-map tag of the heap's arena: a free of a block in that arena's segments,
   * by the thread of the heap, may go to the bins; 0 (the empty heap) takes none. */
  uint32_t bin_tag;
  na_bin_t *direct_bin[NA_DIRECT_COUNT]; /* (size+15)/16 -> bin of that size's class */
  /* Next to the tables above: the empty heap's pointers, which the loader writes in every
   * process, then share one page. */
  na_page_t *current[NA_CLASS_COUNT]; /* class -> page to allocate from */
  /* class -> its bin: one load, where computing the address from the class (bins are 144
   * bytes apart) took four of the twenty-two instructions a free spends on its bin. */
  na_bin_t *class_bin[NA_CLASS_COUNT];
  /* A bin on two whole cache lines: its count and first slots, then the rest. */
  _Alignas(64) na_bin_t bins[NA_CLASS_COUNT]; /* bigger classes' have no room: never used */
  uint32_t bin_counted[NA_BIN_CLASSES]; /* each bin's `handed` when the statistics last counted */
  na_page_queue_t queues[NA_CLASS_COUNT];
  na_page_queue_t full;
  /* Pages the thread emptied, kept off the arena for its next new page of any class (heap.c),
   * the most recent first, and their slices. */
  na_page_queue_t spare;
  uint32_t spare_slices;
  uint32_t spare_several;    /* of them, those in pages of several slices */
  uint32_t spare_room;       /* slices the list may hold: NA_SPARE_SLICES, more for big batches */
  uint16_t spare_overflowed; /* bit n: pages of n slices went past the room since it last grew */
  _Atomic(na_block_t *) delayed_free; /* blocks of full pages freed by other threads */
  struct na_tld_s *tld;
  int arena_index; /* node, or NA_INTERLEAVE_ARENA for spans spread over nodes */
  /* Sparse pages of a class whose purges keep finding nothing are skipped for a while:
   * random frees of small blocks rarely empty a whole OS page. */
  uint16_t purge_skip[NA_CLASS_COUNT];
  uint16_t purge_backoff[NA_CLASS_COUNT];
  /* Memory goes back to the OS in passes, at most one per purge delay, from the slow path. */
  uint32_t pass;          /* passes so far */
  uint32_t last_pass_ms;  /* when the last one ran */
  uint32_t last_sweep_ms; /* when fresh spans last looked for pages other threads emptied */
  uint32_t sparse_unseen; /* pages marked sparse since a growing heap last purged them all */
  uint8_t shared_open;    /* bit per power of two up to 1 KiB whose page serves smaller classes */
  uint8_t shared_taken;   /* bit per power of two that took its first page */
  uint8_t fresh_spans[NA_CLASS_COUNT]; /* spans each class took from the arena since the pass */
  /* What the heap holds, for the statistics: pages and their bytes counted as pages join
   * and leave, the bytes of blocks in use as of its last pass. Written by the owner only,
   * read by reports from any thread. */
  na_census_t held;
  uint64_t census_pages;              /* pages at the last count of the bytes in use */
  uint32_t left_ms;                   /* when its thread last moved away from it (see thread.c) */
  uint32_t class_sig[NA_CLASS_COUNT]; /* each class's current page as the last pass saw it */
} na_heap_t;

/* Per-thread statistics: plain counters, merged on read and at thread exit. The field list
 * exists once (NA_STAT_FIELDS) so the printer and the merge cannot drift apart. */
#define NA_STAT_FIELDS(X)                                                                          \
  X(alloc_count, "allocations")                                                                    \
  X(alloc_bytes, "bytes allocated")                                                                \
  X(local_count, "allocations on the node of the CPU the thread ran on")                           \
  X(remote_count, "allocations on another node")                                                   \
  X(remote_free_count, "frees sent home to a page another thread owns")                            \
  X(cross_node_free_count, "frees by a thread of another node")                                    \
  X(fallback_count, "allocations that fell back to another node")                                  \
  X(verified_pages, "pages whose node was checked (NUMALLOC_VERIFY)")                              \
  X(purge_calls, "ranges given back to the OS: a madvise or munmap each, or part of a vector")     \
  X(purged_bytes, "bytes given back to the OS")                                                    \
  X(misplaced_pages, "checked pages found on another node than promised")                          \
  X(heaps_left, "heaps given up because their thread moved to another node")                       \
  X(pool_out_pages, "pages handed to the node's pool (thread exited or moved, class unused)")      \
  X(pool_in_pages, "pages adopted from the node's pool")

typedef struct na_node_stats_s {
#define NA_STAT_DECLARE(name, text) int64_t name;
  NA_STAT_FIELDS(NA_STAT_DECLARE)
#undef NA_STAT_DECLARE
} na_node_stats_t;

/* Blocks this thread freed into other threads' pages, not yet pushed onto the pages'
 * thread_free lists: at most NA_REMOTE_WAITING blocks and about NA_REMOTE_BYTES. */
#define NA_REMOTE_WAITING 256
#define NA_REMOTE_BYTES   ((size_t)256 << 10)
/* How far down its page's chain a block sent home names another, for the owner's pop to
 * fetch ahead (na_page_pop_quick): the owner reads each block's line only when it hands the
 * block out, and a transfer from the freeing thread's cache takes the time of several
 * allocations (sh8bench's pattern: 4 and 16 gained less than 8). */
#define NA_FETCH_AHEAD 8
typedef struct na_remote_wait_s {
  na_block_t *block;
  struct na_page_s *page;
} na_remote_wait_t;

typedef struct na_tld_s {
  na_heap_t *heaps[NA_ARENA_COUNT]; /* created on first use */
  na_heap_t *heap;                  /* the heap the last pick chose */
  uint64_t left[2];       /* bit per arena index: heaps left for another, still holding pages */
  uint64_t stats_used[2]; /* bit per arena index: `stats` written since the last merge */
  int policy;             /* numalloc_policy_t for this thread */
  int bound_node;
  uint32_t rr_turn;
  int node; /* the node of its CPU at its last slow path (statistics: local or remote) */
  struct na_tld_s *next_free; /* pool of exited threads' records */
  uint32_t remote_count;      /* blocks in `remote` */
  size_t remote_bytes;        /* their sizes */
  bool exiting; /* made after the thread's exit ran: no later exit would push `remote` */
  uint8_t clear_untouched_share; /* of the pages calloc's clears found untouched (alloc.c) */
  uint32_t clear_pages_unasked;  /* pages cleared since one last asked */
  na_remote_wait_t remote[NA_REMOTE_WAITING];
  na_node_stats_t stats[NA_ARENA_COUNT];
  struct na_tld_s *next_live, *prev_live; /* all live threads, for statistics on read */
} na_tld_t;

#endif /* NUMALLOC_TYPES_H */
