/* internal.h: what the allocator's files share: the inline address arithmetic used on the fast
 * paths, the process-wide state, and each file's internal functions under a banner naming it. */
#ifndef NUMALLOC_INTERNAL_H
#define NUMALLOC_INTERNAL_H

#include "numalloc.h"
#include "platform.h"
#include "types.h"

/* Nothing declared below leaves the library: the compiler then reads the process-wide state
 * (the secret, the options) at its address, where an extern of default visibility took a
 * load of that address first, on every malloc and free that reads them. */
#pragma GCC visibility push(hidden)

#define na_likely(x)   __builtin_expect(!!(x), 1)
#define na_unlikely(x) __builtin_expect(!!(x), 0)

/* Fields one thread writes while others may read them without its lock (a page's owner, a
 * count checked before taking a lock): relaxed atomics, plain moves on x86, that say so. */
#define na_relaxed_load(ptr)         __atomic_load_n((ptr), __ATOMIC_RELAXED)
#define na_relaxed_store(ptr, value) __atomic_store_n((ptr), (value), __ATOMIC_RELAXED)
#define na_noinline                  __attribute__((noinline))
#define na_internal                  __attribute__((visibility("hidden")))
#define NA_PAGE_ALIGNED              __attribute__((aligned(4096)))
/* Zeroed tables of a few kilobytes and more go after every small variable (the library is
 * linked with --sort-section=name, so .bss.numalloc_tables follows every file's .bss). What a
 * process writes at its start, a few dozen small variables and the first entries of a few
 * tables, then lies on fewer pages, each a page fault that every process pays (12 us on the
 * paravirtualised machines the benchmarks run on; a shell script starts thousands). */
#define NA_TABLE __attribute__((section(".bss.numalloc_tables")))

/* A lock alone on its cache line, for tables of locks of different nodes. */
typedef struct na_lock_slot_s {
  _Alignas(64) pthread_mutex_t mutex;
} na_lock_slot_t;

/* An arena's place in a table of locks: the interleaved and first-touch arenas first, then
 * the nodes, so that on a machine of fewer than 60 nodes the locks in use share the first
 * page of their table. */
#define na_lock_order(arena_index)                                                                 \
  ((arena_index) >= NA_MAX_NODES ? (arena_index)-NA_MAX_NODES : (arena_index) + 2)

/* Cheap invariants: checked in Debug, stress and fuzz builds (NUMALLOC_CHECKS), compiled
 * out of Release. A failed one aborts with its condition, as heap corruption does. */
#ifdef NUMALLOC_CHECKS
#define na_checks_enabled 1
#define na_assert(cond)                                                                            \
  ((cond) ? (void)0 : na_fatal("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__))
#else
#define na_checks_enabled 0
#define na_assert(cond)   ((void)0)
#endif

/* 2^64 / the golden ratio, odd: multiplying by it spreads an address's bits over the word. */
#define NA_GOLDEN_GAMMA 0x9e3779b97f4a7c15u

static inline size_t na_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline bool na_is_power_of_two(size_t n) { return n != 0 && (n & (n - 1)) == 0; }

/* ---- options.c ---------------------------------------------------------------------- */
typedef enum na_fallback_e {
  NA_FALLBACK_NEAREST = 0,
  NA_FALLBACK_ANY,
  NA_FALLBACK_NONE,
} na_fallback_t;

/* NUMALLOC_HUGEPAGES: which segments ask the kernel for transparent huge pages. */
typedef enum na_hugepages_e {
  NA_HUGEPAGES_HUGE_BLOCKS = 0, /* "0": none but huge blocks, under the system's default */
  NA_HUGEPAGES_ALL = 1,         /* "1": every segment */
  NA_HUGEPAGES_AUTO = 2,        /* "auto": once an arena holds a segment's worth (arena.c) */
} na_hugepages_t;

typedef enum na_stats_mode_e {
  NA_STATS_OFF = 0,
  NA_STATS_TEXT,
  NA_STATS_JSON,
} na_stats_mode_t;

#define NA_LARGE_POLICY_AS_POLICY (-1)    /* NUMALLOC_LARGE_POLICY unset */
#define NA_PURGE_DELAY_MAX_MS     3600000 /* an hour */
#define NA_SEGMENT_CACHE_MAX      1024

typedef struct na_options_s {
  int policy; /* numalloc_policy_t */
  na_fallback_t fallback;
  uint64_t nodes_mask[1]; /* NUMALLOC_NODES; all ones when unset */
  bool nodes_set;
  const char *nodes_text;
  long purge_delay_ms; /* free spans older than this go back to the OS */
  long segment_cache;  /* empty segments kept per node */
  bool purge_sparse;   /* mostly empty pages give back the OS pages their free blocks leave */
  bool verbose;
  na_stats_mode_t stats;
  const char *stats_file;
  na_hugepages_t hugepages;
  bool verify;
  bool background; /* purge passes in one thread per node, never in application threads */
  uint8_t weights[NA_MAX_NODES]; /* NUMALLOC_POLICY=weighted:0=3,1=1 */
  bool weights_from_kernel;      /* NUMALLOC_POLICY=weighted: the kernel's table instead */
  int large_policy;              /* or NA_LARGE_POLICY_AS_POLICY */
  long large_threshold;          /* bytes; NUMALLOC_LARGE_POLICY applies from here */
} na_options_t;

extern na_options_t na_options;
void na_options_init(void);
void na_options_print(void);
/* The table, for tests: option i's name and default text (NULL when the default is "not
 * set"); false past the last option. */
size_t na_option_count(void);
bool na_option_default(size_t i, const char **name, const char **default_text);
/* Parsers, exposed for tests and fuzzing: true when `text` is valid. */
bool na_parse_policy(const char *text, int *out);
bool na_parse_fallback(const char *text, na_fallback_t *out);
bool na_parse_node_list(const char *text, uint64_t *mask, int max_node);
bool na_parse_long(const char *text, long min, long max, long *out);
bool na_parse_bool(const char *text, bool *out);
bool na_parse_size(const char *text, long *out);
bool na_parse_weights(const char *text, uint8_t *weights, int max_node);

/* ---- message.c ---------------------------------------------------------------------- */
/* One line on stderr, built without allocating: printf-like with %s %d %u %zu %p %x. */
void na_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void na_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void na_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
size_t na_format(char *buf, size_t size, const char *fmt, __builtin_va_list args);

/* ---- topology.c --------------------------------------------------------------------- */
/* Laid out for 64 nodes and 8,192 CPUs, in the order of what a process's start writes: every
 * field below the tables, every row of fallback_order, and the first rows of the rest, so
 * that a process on a small machine writes three of its seven pages. */
typedef struct na_topology_s {
  int node_count; /* highest node id + 1 */
  int cpu_count;
  uint64_t has_memory[1]; /* bit per node */
  uint64_t has_cpus[1];
  uint64_t allowed[1]; /* nodes this process may allocate on */
  uint64_t usable[1];  /* allowed, with memory, and in NUMALLOC_NODES */
  int usable_list[NA_MAX_NODES];
  int usable_count;
  /* The kernel's weighted-interleave weight of each node (0: it has none), read only when
   * NUMALLOC_POLICY=weighted asks for them. */
  uint8_t kernel_weight[NA_MAX_NODES];
  int8_t nearest_usable[NA_MAX_NODES]; /* node -> the usable node to allocate for it */
  int8_t fallback_order[NA_MAX_NODES][NA_MAX_NODES]; /* by distance, -1 terminated */
  size_t memory_bytes[NA_MAX_NODES];
  uint8_t distance[NA_MAX_NODES][NA_MAX_NODES];
  int16_t cpu_node[NA_MAX_CPUS]; /* cpu below cpu_count -> node; -1 unknown */
} na_topology_t;

extern na_topology_t na_topology;
void na_topology_init(void);
/* Derives nearest_usable and fallback_order from the rest (pure; unit-tested). */
void na_topology_derive(na_topology_t *t);
/* Tests: later readings (na_topology_init again) take the sysfs and procfs files from under
 * `dir`, a synthetic machine; NULL goes back to the real files. */
void na_topology_set_root(const char *dir);
static inline bool na_node_bit(const uint64_t *mask, int node) {
  return node >= 0 && node < NA_MAX_NODES && (mask[0] >> node) & 1;
}
int na_topology_cpu_node(int cpu);

/* ---- placement.c -------------------------------------------------------------------- */
/* Binds fresh, untouched memory for an arena: its node (preferred), every usable node
 * (interleaved), or nothing (first touch). A refusal is said once and memory then follows
 * the kernel's default policy. */
void na_placement_bind(int arena_index, void *addr, size_t size);
void na_placement_bind_node(void *addr, size_t size, int node);
/* NUMALLOC_FALLBACK=none on a node's arena: memory is committed and checked when handed
 * out, so nothing may give pages back that a later touch would place anew. */
bool na_placement_is_strict(int arena_index);
/* Faults [addr, addr+size) in and checks that every page is on `node`. */
bool na_placement_commit(void *addr, size_t size, int node);
/* Whether first-touch memory that a thread of `allocated_on` (-1 unknown) had may serve a
 * thread of `node` as it is, its pages resident where its last user touched them: only where
 * the kernel says they are on `node`, and only while no such block has been used on another
 * node than its allocating thread's. Otherwise it must go back to the kernel first, so that
 * the new user's touch places it, as it would a fresh mapping's. */
bool na_placement_touch_reusable(const void *addr, size_t size, int allocated_on, int node);

/* ---- segment.c ---------------------------------------------------------------------- */
extern uint8_t na_segmap[];
#define NA_SEGMAP_SIZE ((size_t)1 << (NA_ADDRESS_BITS - NA_SEGMENT_SHIFT))
extern uintptr_t na_secret;

static inline uint8_t na_segmap_tag(const void *p) {
  return na_relaxed_load(&na_segmap[((uintptr_t)p >> NA_SEGMENT_SHIFT) & (NA_SEGMAP_SIZE - 1)]);
}
static inline na_segment_t *na_segment_of_aligned(const void *p) {
  return (na_segment_t *)((uintptr_t)p & ~(uintptr_t)NA_SEGMENT_MASK);
}
/* The descriptor of the slice holding `p`, in two instructions: descriptors are 128 bytes,
 * one per 64 KiB slice, so p's slice number times 128 is a shift and a mask of p. */
_Static_assert(sizeof(na_page_t) == 128, "page descriptors are two cache lines");
static inline na_page_t *na_slice_of(na_segment_t *segment, const void *p) {
  uintptr_t offset =
      ((uintptr_t)p >> (NA_SLICE_SHIFT - 7)) & ((uintptr_t)(NA_SLICES_PER_SEGMENT - 1) << 7);
  return (na_page_t *)((char *)segment->slices + offset);
}
static inline na_page_t *na_page_of(na_segment_t *segment, const void *p) {
  size_t index = ((uintptr_t)p - (uintptr_t)segment) >> NA_SLICE_SHIFT;
  if (na_unlikely(index >= NA_SLICES_PER_SEGMENT)) index = NA_SLICES_PER_SEGMENT - 1;
  na_page_t *slice = &segment->slices[index];
  return (na_page_t *)((char *)slice - slice->slice_offset);
}
static inline void *na_page_start(const na_page_t *page) {
  na_segment_t *segment = na_segment_of_aligned(page);
  size_t index = (size_t)(page - segment->slices);
  return (char *)segment + (index << NA_SLICE_SHIFT);
}
/* The segment that holds `p`, or NULL when the library does not own it. */
na_segment_t *na_segment_lookup(const void *p);
/* huge_pages: the kernel is asked for transparent huge pages for the whole segment; else
 * it is refused them (where the system would give them unasked), a huge block's first huge
 * page excepted, as arena.c decides. */
na_segment_t *na_segment_create(int arena_index, size_t size, bool huge_pages, bool *is_zero);
/* A segment starting on `alignment` (at least SEGMENT_SIZE), for huge aligned blocks. */
na_segment_t *na_segment_create_aligned(int arena_index, size_t size, size_t alignment,
                                        bool huge_pages, bool *is_zero);
void na_segment_destroy(na_segment_t *segment);
/* Opens the slices [first_slice, first_slice + count) of a segment for writing (segments are
 * reserved without access); false when the kernel has no commit left. */
bool na_segment_make_writable(na_segment_t *segment, size_t first_slice, size_t count);
/* Opens segments as under strict overcommit (true) or not, whatever the kernel's mode: tests. */
void na_segment_overcommit_strict(bool strict);
/* Records that a huge segment was grown or moved by the kernel (mremap). */
void na_segment_remapped(na_segment_t *old_segment, size_t old_size, na_segment_t *segment);
void na_segment_set_span(na_segment_t *segment, size_t first, size_t count, na_span_kind_t kind);
/* Makes the slices after a huge segment's header one span, for a block that starts at
 * `block_slice`: see segment.c. */
void na_segment_set_huge_span(na_segment_t *segment, size_t block_slice);

/* ---- arena.c ------------------------------------------------------------------------ */
/* A span of `slices` slices on the arena's node; NULL when the node (and, by the fallback
 * setting, every other) is out of memory. */
na_page_t *na_arena_alloc_span(int arena_index, size_t slices, int *actual_arena);
void na_arena_free_span(na_page_t *span);
/* The same for a span unused since `unused_since_ms` (na_os_clock_ms): its purge delay counts
 * from then. */
void na_arena_free_span_since(na_page_t *span, uint32_t unused_since_ms);
/* Frees the spans of a list linked by `next` (NULL-terminated), each unused since its
 * free_stamp, taking an arena's lock once for a run of spans of that arena. */
void na_arena_free_spans(na_page_t *first);
/* The calling thread, leaving the arena, gives up its segments: another thread takes their
 * room as its own. */
void na_arena_release_segments(int arena_index);
/* A span of the first-touch arena about to be used by a thread of `node`: resident pages
 * another node's thread used go back first, so that this thread's touch places them. */
void na_arena_place_by_use(na_page_t *span, int node);
bool na_arena_grow_span(na_page_t *span, size_t slices);
void na_arena_shrink_span(na_page_t *span, size_t slices);
/* ---- huge.c: `stripe_node`, when not NULL, gives the node of each 2 MiB stripe in turn
 * (weighted interleave, done by numalloc on kernels without it). With `zero`, the block
 * comes zeroed (*is_zero) unless the caller must clear it. `node` is the allocating
 * thread's (it matters to the first-touch arena only). */
void *na_arena_alloc_huge(int arena_index, size_t size, size_t alignment, bool zero, bool *is_zero,
                          int (*stripe_node)(void), int node);
void na_arena_free_huge(na_segment_t *segment);
void *na_arena_realloc_huge(na_segment_t *segment, void *p, size_t new_size);
size_t na_huge_usable(const na_segment_t *segment, const void *p);
/* ---- purge.c */
void na_arena_collect(bool force);
/* NUMALLOC_BACKGROUND=1: asks the purge thread of the first usable node to give back all
 * idle memory of the arenas and pools at once (a malloc_trim), and wakes it. */
void na_purge_request_collect(void);
/* Gives back free spans idle for longer than the purge delay and empty segments beyond the
 * cache, at most once per delay; called from allocation slow paths, never from a free. */
void na_arena_purge_expired(int arena_index);
/* In a forked child no purging thread survived: the next slow path starts them again. */
void na_purge_after_fork_child(void);
/* fork: first hold_first_use (no arena comes into use until release_first_use), then
 * lock_all takes the locks of the arenas in use, unlock_all releases them. */
void na_arena_hold_first_use(void);
void na_arena_release_first_use(void);
void na_arena_lock_all(void);
void na_arena_unlock_all(void);
/* An arena is in use from the first time its lock, or its pool's, is taken. */
void na_arena_note_use(int arena_index);
bool na_arena_in_use(int arena_index);
size_t na_arena_mapped_bytes(int arena_index);
size_t na_arena_peak_mapped_bytes(int arena_index);
/* Bytes in blocks handed out and not freed, from the pages' own counts. */
size_t na_arena_live_bytes(int arena_index);
void na_arena_account_huge(int arena_index, int64_t bytes);
/* Bytes of the arena's huge blocks (each in a mapping of its own). */
size_t na_arena_huge_bytes(int arena_index);

/* ---- size_class.c ------------------------------------------------------------------- */
/* The doublings from 2^NA_FIVE_CLASS_SHIFT to 2^NA_FIVE_CLASS_SHIFT_END bytes (1-8 KiB) have a
 * fifth class, an eighth above their power of two, where four quarters would put a power of
 * two plus a header (a database page and its cache entry's header, a buffer and its
 * descriptor) a quarter of a block below its class's size: sqlite's blocks of 1,032, 4,104
 * and 4,368 bytes took 1,280 and 5,120 (its peak 1.2x glibc's) and take 1,152 and 4,608
 * (1.06x). Only there: an extra class per doubling above 8 KiB (or eight classes per
 * doubling) raised the peak where sizes are spread, as each thread keeps a page per class
 * (latency's peak +18% with a fifth class up to 256 KiB, none with it up to 8 KiB). */
#define NA_FIVE_CLASS_SHIFT     10
#define NA_FIVE_CLASS_SHIFT_END 13
#define NA_FIVE_CLASS_FIRST     (8 + (NA_FIVE_CLASS_SHIFT - 7) * 4)
#define NA_FIVE_CLASS_END                                                                          \
  (NA_FIVE_CLASS_FIRST + (NA_FIVE_CLASS_SHIFT_END - NA_FIVE_CLASS_SHIFT) * 5)
static inline int na_size_class(size_t size) {
  if (size <= NA_SMALL_STEP_MAX) return size == 0 ? 0 : (int)((size - 1) >> 4);
  size_t w = size - 1;
  int b = 63 - __builtin_clzl(w);
  int quarter = (int)((w >> (b - 2)) & 3);
  if (b < NA_FIVE_CLASS_SHIFT) return 8 + (b - 7) * 4 + quarter;
  if (b >= NA_FIVE_CLASS_SHIFT_END)
    return NA_FIVE_CLASS_END + (b - NA_FIVE_CLASS_SHIFT_END) * 4 + quarter;
  /* the first quarter splits at an eighth */
  return NA_FIVE_CLASS_FIRST + (b - NA_FIVE_CLASS_SHIFT) * 5 + quarter +
         (quarter != 0 || ((w >> (b - 3)) & 1));
}
/* A table, where arithmetic took a dozen instructions more on every slow path of blocks above
 * 1 KiB (3% of midsize's instructions): size_class.c. */
extern const uint32_t na_class_sizes[NA_CLASS_COUNT];
static inline size_t na_class_size(int size_class) { return na_class_sizes[size_class]; }
/* Slices for a page of this class: enough for several blocks, at least one slice. */
size_t na_class_page_slices(int size_class);

/* ---- page.c ------------------------------------------------------------------------- */
static inline na_block_t *na_block_next(const na_page_t *page, const na_block_t *block) {
  return (na_block_t *)(block->next_encoded ^ page->key);
}
static inline void na_block_set_next(const na_page_t *page, na_block_t *block, na_block_t *next) {
  block->next_encoded = (uintptr_t)next ^ page->key;
}
/* Links `block` into a page's list, naming no block ahead: only a chain another thread sends
 * home names blocks further down (na_free_remote_flush), and the word may hold the program's
 * data, which the pop must not fetch as an address. */
static inline void na_block_link(const na_page_t *page, na_block_t *block, na_block_t *next) {
  na_block_set_next(page, block, next);
  block->ahead = NULL;
}
/* A free block links to a block of its own segment, or ends its list with NULL. Anything
 * else decoded from its first word means that word was overwritten while the block was free
 * (a write past the end of the block before it, or into the block after its free): handing
 * out what it points to would be silent damage, so the allocator stops there. */
static inline bool na_block_link_is_sound(const na_block_t *block, const na_block_t *next) {
  return (((uintptr_t)next ^ (uintptr_t)block) >> NA_SEGMENT_SHIFT) == 0 || next == NULL;
}
/* The second word of a block waiting in a bin: its address under the process's secret, which
 * a bin's pop and emptying check without finding the block's page. The first word keeps what
 * it held, so the checks also see a block freed into the bin while it was on a list. */
static inline uintptr_t na_bin_mark(const na_block_t *block) {
  return (uintptr_t)block ^ na_secret;
}
/* True when the block's first word is a link of a free list (or the mark of a block waiting
 * to go home), told without its page: pages' keys differ from the secret only in the bits
 * below a segment, which the check ignores. */
static inline bool na_block_linked_quick(const na_block_t *block) {
  uintptr_t first = block->next_encoded ^ na_secret;
  return (first >> NA_SEGMENT_SHIFT) == 0 || ((first ^ (uintptr_t)block) >> NA_SEGMENT_SHIFT) == 0;
}

/* Ends the program naming the free block whose link was overwritten. */
__attribute__((noreturn)) void na_page_link_corrupt(const na_page_t *page, const na_block_t *block);
/* Ends the program when a block of the page, which has none in use and is about to lose its
 * lists, is not free: handed out by a bin while on the lists (freed twice), or overwritten.
 * Every carved block of such a page is on its lists, so it reads them in address order. */
void na_page_check_empty(const na_page_t *page);
/* The next block of a list walked off the fast path, checked as the fast path checks it. */
na_block_t *na_block_next_checked(const na_page_t *page, const na_block_t *block);
/* page.thread_free packs the list of blocks other threads freed (bits 2-47: user addresses
 * stay below 2^47), its length (bits 48-63) and the na_delay_t (bits 0-1), so the owner
 * takes the whole list with its count in one atomic step, without walking it. */
#define NA_TF_COUNT_SHIFT 48
#define NA_TF_COUNT_ONE   ((uintptr_t)1 << NA_TF_COUNT_SHIFT)
#define NA_TF_DELAY_MASK  ((uintptr_t)3)
_Static_assert(NA_DELAY_NEVER <= NA_TF_DELAY_MASK && NA_MIN_ALIGN > NA_TF_DELAY_MASK,
               "the delay fits below a block's alignment");
_Static_assert(NA_TF_COUNT_SHIFT >= NA_ADDRESS_BITS, "the count sits above every address");
static inline na_block_t *na_tf_blocks(uintptr_t tf) {
  return (na_block_t *)(tf & (NA_TF_COUNT_ONE - 1) & ~NA_TF_DELAY_MASK);
}
static inline uint32_t na_tf_count(uintptr_t tf) { return (uint32_t)(tf >> NA_TF_COUNT_SHIFT); }
static inline na_delay_t na_tf_delay(uintptr_t tf) { return (na_delay_t)(tf & NA_TF_DELAY_MASK); }
void na_page_init(na_page_t *page, struct na_heap_s *heap, int size_class, bool is_zero);
/* Refills page->free from local and remote frees, then by carving new blocks. REGRET: it had
 * to take back blocks it gave the OS less than a purge delay ago. */
typedef enum na_refill_e { NA_REFILL_DONE, NA_REFILL_REGRET } na_refill_t;
na_refill_t na_page_refill(na_page_t *page);
/* The first step of na_page_refill: the page's `free` list from the blocks freed into it,
 * which are resident; false when it has none, and a refill would take back purged blocks or
 * carve new ones. */
bool na_page_refill_freed(na_page_t *page);
/* Sets the page's sparse check as a refill does (see page.c). */
void na_page_arm_sparse(na_page_t *page);
/* Counts what was handed out of `free` so far for the heap's thread, as local when the
 * page's node is `ran_on` (the node the thread ran on; -1: the node it runs on now). */
void na_page_account_partial_on(na_page_t *page, int ran_on);
void na_page_account_partial(na_page_t *page);
/* Bytes of the blocks in use: handed out, less those other threads freed and the owner has
 * not taken in yet. */
uint64_t na_page_live_bytes(const na_page_t *page);
/* Bytes of the blocks carved so far, less the OS pages given back: what the page may hold
 * resident. */
uint64_t na_page_touched_bytes(const na_page_t *page);
/* Moves the blocks other threads freed into local_free; returns how many. */
size_t na_page_collect_remote(na_page_t *page);
bool na_page_set_delay(na_page_t *page, na_delay_t delay, bool only_if_empty);
void *na_page_block_start(const na_page_t *page, const void *p);
bool na_page_block_is_free(const na_page_t *page, const na_block_t *block);
/* Gives back the OS pages of a mostly free page that hold only free blocks, through `batch`,
 * which must be flushed before the page is refilled or leaves its heap; returns the bytes
 * purged. */
size_t na_page_purge_free(na_page_t *page, na_os_purge_batch_t *batch);
/* A page of several slices gives back its blocks that were free at its last check too. */
size_t na_page_purge_idle(na_page_t *page, na_os_purge_batch_t *batch);
size_t na_page_purged_bytes(const na_page_t *page);
/* page.owner is the owning thread's identity, a thread pointer whose bit 0 is clear, with
 * bit 0 set while a flag that bars the owner's fast free is (purged blocks, a grown large
 * block): that free then finds its way by one comparison instead of two. Only the owner
 * writes an owned page's owner and flags (or a thread holding a page no thread owns), so the
 * two agree for every free that compares them. A full page is not flagged: the owner's free
 * keeps the block in its bin, counted in use, and the page stays full; when the bin has no
 * room, the block goes onto the page's list, and the sparse threshold of a full page
 * (na_sparse_full) calls the heap to bring the page back after a few such frees. */
#define NA_OWNER_FLAGGED ((uintptr_t)1)
static inline uintptr_t na_page_owner(const na_page_t *page) {
  return na_relaxed_load(&page->owner) & ~NA_OWNER_FLAGGED;
}
/* A full page goes back to its queue once its owner has freed a 32nd of its blocks (at least
 * one) onto its list: a pool replaced in batches larger than a bin sends its frees to full
 * pages, and taking each page back at its first free had the mallocs after them empty it
 * again, a slow path and two atomic operations a block. The blocks freed meanwhile (at most
 * a 32nd of the page) wait on its list. A page fills with every block in use, so the
 * threshold counts down from `reserved`. */
static inline uint32_t na_page_unfull_after(const na_page_t *page) {
  return page->reserved >= 64 ? page->reserved / 32 : 1;
}
static inline uint16_t na_sparse_full(const na_page_t *page) {
  return (uint16_t)(page->reserved - na_page_unfull_after(page) + 1);
}
static inline bool na_page_flags_bar_fast_free(const na_page_t *page) {
  return page->flags.bits.has_purged != 0 || page->flags.bits.grown != 0;
}
static inline void na_page_set_owner(na_page_t *page, uintptr_t owner) {
  na_relaxed_store(&page->owner, owner == 0 ? 0 : owner | na_page_flags_bar_fast_free(page));
}
/* After every change of the flags of a page that may have an owner. */
static inline void na_page_flags_changed(na_page_t *page) {
  na_page_set_owner(page, na_page_owner(page));
}
/* Flags of a page that changes hands (adopted or abandoned): only the purge's survives, and a
 * page that was full gets its sparse check back. */
static inline void na_page_reset_flags(na_page_t *page) {
  if (page->flags.bits.in_full) na_page_arm_sparse(page);
  page->flags.value = 0;
  page->flags.bits.has_purged = page->purged != 0;
  na_page_flags_changed(page);
}
/* True for a free block left off the lists by a purge. */
static inline bool na_page_block_is_unlinked(const na_page_t *page, const void *block) {
  unsigned purged = na_relaxed_load(&page->purged);
  if (na_likely(purged == 0)) return false;
  size_t offset = (size_t)((const char *)block - (const char *)na_page_start(page));
  if (page->slice_count > 1) return (purged >> (offset / page->block_size)) & 1; /* by block */
  return offset < NA_SLICE_SIZE && (purged >> (offset / NA_PAGE_SIZE)) & 1;
}
extern na_page_t na_page_empty;
/* Doubly linked page queues: heaps' per-class queues and arenas' free-span bins. */
static inline void na_queue_push_front(na_page_queue_t *q, na_page_t *page) {
  page->prev = NULL;
  page->next = q->first;
  if (q->first)
    q->first->prev = page;
  else
    q->last = page;
  q->first = page;
}
static inline void na_queue_push_back(na_page_queue_t *q, na_page_t *page) {
  page->next = NULL;
  page->prev = q->last;
  if (q->last)
    q->last->next = page;
  else
    q->first = page;
  q->last = page;
}
static inline void na_queue_remove(na_page_queue_t *q, na_page_t *page) {
  if (page->prev)
    page->prev->next = page->next;
  else
    q->first = page->next;
  if (page->next)
    page->next->prev = page->prev;
  else
    q->last = page->prev;
  page->next = page->prev = NULL;
}

/* ---- heap.c ------------------------------------------------------------------------- */
extern __thread na_heap_t *na_tls_heap __attribute__((tls_model("initial-exec")));
extern na_heap_t na_heap_empty;
static inline uintptr_t na_thread_id(void) { return (uintptr_t)__builtin_thread_pointer(); }
/* `heap` is zeroed memory (fresh metadata, thread.c). */
void na_heap_init(na_heap_t *heap, struct na_tld_s *tld, int arena_index);
void na_heap_page_queue_remove(na_heap_t *heap, na_page_t *page);
void na_heap_page_unfull(na_heap_t *heap, na_page_t *page);
void na_heap_page_retire(na_heap_t *heap, na_page_t *page);
/* A free left the page below its sparse mark: retire it when empty, else mark it for the
 * heap's purge passes (never a system call here). */
void na_heap_page_low(na_heap_t *heap, na_page_t *page);
/* Sparse pages one purge pass (a heap's, or a pool's collect) gives back, of `held` pages: a
 * sixteenth, 32 to 1,024. A page costs about 4 us (its free list walked, a few madvise calls),
 * so a pass with a backlog stalls its slow path a few ms at most; with a fixed 32, memory a
 * phase of the program left 90% free went back at 1 MB in 10 s, where jemalloc's decay gave
 * back 234. */
static inline int na_sparse_purge_budget(uint64_t held) {
  uint64_t share = held / 16;
  return share < 32 ? 32 : share > 1024 ? 1024 : (int)share;
}
/* A pass walks every page the heap holds. A short purge delay (0: at every slow path) would
 * make that walk the program's main work once the heap is large (a 1 GiB heap under a zero
 * delay took 250 s for what runs in 0.7), so passes are also at least a millisecond apart
 * per NA_PASS_PAGES_PER_MS pages held: walking that many descriptors takes well under that. */
#define NA_PASS_PAGES_PER_MS 128
/* A purge pass, when the purge delay has passed since the last: sparse pages marked a whole
 * pass ago, then the arena's expired free spans. Called from the allocation slow path. */
void na_heap_pass(na_heap_t *heap);
/* Every sparse page of the heap gives back what it can, now (numalloc_collect); with
 * `purge` false, the heap is only tidied (bins flushed, empty pages back to the arena). */
void na_heap_collect(na_heap_t *heap, bool purge);
void na_heap_free_delayed(na_heap_t *heap);
/* Every page leaves the heap: empty ones go back to the arena, the others to their node's
 * pool for the node's other heaps. `ran_on` is the node the thread ran on while it
 * allocated from the heap (statistics: local or remote). The heap stays usable. */
void na_heap_abandon(na_heap_t *heap, int ran_on);
/* Before a large block takes a span: the heap's spare pages of several slices go to the
 * arena, where they merge with their neighbours and may be that span (buffers doubling to
 * 2 MiB held 9% more at their peak while the pages they left waited on the list). */
void na_heap_release_spares_for_large(na_heap_t *heap);
/* In a forked child: the spare room the surviving thread's heaps grew is all there is. */
void na_heap_after_fork_child(const struct na_tld_s *self);
void na_heap_account(na_heap_t *heap);
/* Counts the bytes of blocks in use in the heap's pages now (owner only). */
void na_heap_census(na_heap_t *heap);
/* A block of `size_class` from the heap's pages, or with `may_borrow` perhaps one of a
 * slightly bigger class (never for aligned requests: a bigger class's blocks need not fall
 * on the alignment); NULL (ENOMEM) when no memory is left. *zero tells whether the block
 * reads as zero: carved from memory the kernel zeroed and never handed out before. */
void *na_heap_alloc_small(na_heap_t *heap, int size_class, bool may_borrow, bool *zero);
/* The powers of two whose first page serves smaller classes (heap.c), for heaps made or left
 * from now on: unit tests that look at each class's own pages set it to 0. */
extern uint8_t na_heap_shared_powers;
/* The class whose pages and bin serve `size_class` now: another while its power of two
 * shares its first page. */
int na_heap_serving_class(const na_heap_t *heap, int size_class);

/* ---- node_pool.c -------------------------------------------------------------------- */
/* Pages no thread owns (their thread exited or left their node), per node, for the node's
 * heaps to adopt. na_pool_abandon takes a list linked by `next`, each page with delay
 * NA_DELAY_NEVER. */
void na_pool_abandon(na_page_t *pages);
na_page_t *na_pool_adopt(int arena_index, int size_class);
/* Pages whose blocks were all freed go back to the arena: at most once per purge delay,
 * or now when forced. */
void na_pool_collect(int arena_index, bool force);
void na_pool_collect_all(void);
/* Sparse pages that have waited a whole collect give back their free OS pages (the node's
 * purging thread under NUMALLOC_BACKGROUND=1; collects do it otherwise); true when some did. */
bool na_pool_purge_sparse(int arena_index);
void na_pool_census(int arena_index, na_census_t *out);
void na_pool_lock_all(void);
void na_pool_unlock_all(void);

/* ---- thread.c ----------------------------------------------------------------------- */
/* The calling thread's record, created on first use; NULL while the process is starting. */
struct na_tld_s *na_tld_get(void);
/* The same, except for a thread past its exit (NULL): a thread that only frees gets one at
 * its first free into another thread's page, so that such frees wait and go together. */
struct na_tld_s *na_tld_get_unless_exited(void);
/* The calling thread's record if it has one (never creates it). */
extern __thread struct na_tld_s *na_tls_tld __attribute__((tls_model("initial-exec")));
static inline struct na_tld_s *na_tld_peek(void) { return na_tls_tld; }
/* The heap the calling thread allocates from next, after checking its node (off the fast
 * path); NULL when the heap for `node` could not be made. */
na_heap_t *na_tld_heap_for_arena(struct na_tld_s *tld, int arena_index);
na_heap_t *na_tld_pick_heap(struct na_tld_s *tld);
void na_thread_init(void);
/* Called when the process's first thread leaves by pthread_exit, at the start of its exit
 * (set by the helpers, which end the process once only they are left). */
extern void (*na_thread_on_main_exit)(void);
void na_thread_after_fork_child(void);
void na_thread_lock_all(void);
void na_thread_unlock_all(void);
/* Visits every live thread's record (statistics on read), with the registry locked. */
void na_thread_foreach(void (*visit)(struct na_tld_s *, void *), void *arg);

/* ---- policy.c ----------------------------------------------------------------------- */
/* The arena the next allocation of `tld` goes to, or -1 when the policy is SYSTEM. */
int na_policy_arena(struct na_tld_s *tld);
int na_policy_current_node(void);
/* The next node of the spread schedule (interleave: every usable node in turn; weighted:
 * each node as often as its weight). */
int na_policy_spread_next(uint32_t *turn);
void na_policy_init(void);
/* The same, with one turn shared by all threads (large spans, huge stripes). */
int na_policy_spread_next_shared(void);
bool na_policy_is_weighted(void);
/* The arena for a block above the small classes (NUMALLOC_LARGE_POLICY may differ). */
int na_policy_large_arena(struct na_tld_s *tld, size_t size, int arena_index);

/* ---- free.c ------------------------------------------------------------------------- */
void na_free_generic(na_segment_t *segment, na_page_t *page, void *p);
void na_free_unowned(void *p);
/* The owner's free of a block of its page that its bin did not take. */
void na_free_owned(na_segment_t *segment, na_page_t *page, na_block_t *block);
void na_free_remote(na_page_t *page, na_block_t *block, int arena_index);
/* fork: no page is BUSY (a remote free telling a heap about it) from hold to release. */
void na_free_hold_notifications(void);
void na_free_release_notifications(bool in_child);
/* Tests: called by a remote free while the page it notifies about is BUSY. */
extern void (*na_free_notify_hook)(void);
/* Pushes the blocks the thread's frees into other threads' pages kept waiting. */
void na_free_remote_flush(struct na_tld_s *tld);
size_t na_usable_size_of(const void *p);
/* The same, for a pointer whose segment and page are known. */
size_t na_usable_in(na_segment_t *segment, na_page_t *page, const void *p);

/* ---- alloc.c ------------------------------------------------------------------------ */
/* The one slow path of the malloc family: `arena_index` is a node, NA_INTERLEAVE_ARENA, or
 * NA_ARENA_BY_POLICY for the calling thread's policy (and NUMALLOC_LARGE_POLICY). */
#define NA_ARENA_BY_POLICY (-1)
void *na_alloc_generic(size_t size, size_t alignment, bool zero, int arena_index);

/* ---- invariant.c -------------------------------------------------------------------- */
/* NULL when the structure is sound, else a sentence naming what is broken. */
const char *na_check_segment(const na_segment_t *segment);
const char *na_check_page(const na_page_t *page);
const char *na_check_heap(const na_heap_t *heap);
const char *na_check_bins(const na_heap_t *heap);
/* Aborts naming the problem, when there is one. */
void na_validate(const char *problem_found);

/* ---- bootstrap.c -------------------------------------------------------------------- */
/* Serves the few requests made while the allocator itself is starting (libnuma and dlsym
 * call malloc). Such blocks are never reused. */
void *na_bootstrap_alloc(size_t size, size_t alignment);
bool na_bootstrap_owns(const void *p);
size_t na_bootstrap_usable(const void *p);

/* ---- init.c ------------------------------------------------------------------------- */
#define NA_INIT_DONE 2
extern _Atomic int na_init_state; /* NA_INIT_DONE once start-up has finished, else 0 */
/* Constructor priorities (lower runs first): the preload learns the system allocator before
 * the core starts, so a policy of `system` can pass requests on from the first one. */
#define NA_CONSTRUCTOR_PRELOAD 101
#define NA_CONSTRUCTOR_CORE    102
/* True when the allocator can serve requests; false while it starts (use the bootstrap). */
bool na_ensure_init(void);
/* The next allocator in the chain (glibc), set by the preload; NULL in a static link. */
typedef struct na_system_allocator_s {
  void *(*malloc)(size_t);
  void (*free)(void *);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  size_t (*usable_size)(void *);
} na_system_allocator_t;
extern na_system_allocator_t na_system;
void na_set_system_allocator(const na_system_allocator_t *system);

/* ---- stats.c ------------------------------------------------------------------------ */
/* NUMALLOC_VERIFY: asks the kernel where a few pages of [addr, addr+size) are, and counts
 * those present on another node than the arena promises. */
void na_stats_verify(int arena_index, const void *addr, size_t size);
/* Adds the thread's counters into the merged totals and clears them: those of the arenas it
 * wrote only, since its record holds a row for every arena (7 KiB), and a thread that
 * reads and clears them all at its exit, and its record's next thread again at its start,
 * touches some 350 lines, most of them on another node. */
void na_stats_merge_thread(struct na_tld_s *tld);
/* The thread's counters for the arena, marked written for the merge. */
static inline na_node_stats_t *na_tld_stats(struct na_tld_s *tld, int arena_index) {
  tld->stats_used[arena_index / 64] |= (uint64_t)1 << (arena_index % 64);
  return &tld->stats[arena_index];
}
/* One system call that gave `bytes` of the arena's memory back, counted for the caller. */
void na_stats_count_purge(int arena_index, size_t bytes);
/* `count` blocks of `block_size` handed out from the arena's memory by the thread; ran_on is
 * the node it ran on, or -1 for the node it runs on now. */
void na_stats_count_handed(struct na_tld_s *tld, int arena_index, uint64_t count, size_t block_size,
                           int ran_on);
void na_stats_init(void);
void na_stats_at_exit(void);
/* The process's memory as the C library's mallinfo reports it: mapped, the bytes of every
 * arena's mappings (huge blocks' included); huge, the bytes of huge blocks; live, the bytes
 * of blocks in use (huge blocks included; a block in a bin counts as in use). */
typedef struct na_memory_s {
  size_t mapped, huge, live;
} na_memory_t;
void na_stats_memory(na_memory_t *out);
/* numalloc_collect, returning the bytes it gave back to the OS. */
size_t na_collect(void);
/* malloc_trim: na_collect, at most once a second (stats.c); under NUMALLOC_BACKGROUND=1 the
 * purge thread's work. */
int na_trim(void);
/* Around a change of the process's credentials (setuid and its kin), which the C library
 * makes every thread repeat: numalloc's helper threads end and are joined, none starts until
 * the matching resume, and later slow paths start them again (purge.c). */
void na_helpers_pause(void);
void na_helpers_resume(void);
/* fork: the lock of the merged totals, taken last (nothing is locked under it). */
void na_stats_lock(void);
void na_stats_unlock(void);

/* ---- bin.c -------------------------------------------------------------------------- */
void na_bins_init(na_heap_t *heap);
/* Counts the allocations the bins served since the last count (ran_on as in
 * na_page_account_partial_on). */
void na_bins_account(na_heap_t *heap, int ran_on);
/* Sends every block in the heap's bins back to its page. */
void na_bins_flush(na_heap_t *heap);
/* Bytes of the blocks of the heap's own pages waiting in its bins. */
uint64_t na_bins_own_bytes(const na_heap_t *heap);
/* Ends the program when the bin's top no longer carries its mark: the fast path's pop found it
 * so and left it to the slow path. */
void na_bins_check_top(const na_bin_t *bin);
/* Ends the program when the heap's bin holds a block of `page`, which has no block in use
 * and is about to lose its lists: a block freed twice, once onto them. */
void na_bins_check_page(const na_heap_t *heap, const na_page_t *page);
/* Ends the program when a block of the heap's bins lacks the mark, holds a link, or waits
 * there twice. */
void na_bins_verify(const na_heap_t *heap);
/* True when `block` waits in one of the heap's bins. */
bool na_bins_hold(const na_heap_t *heap, const na_block_t *block);

/* ---- the fast paths (alloc.c, free.c; inlined into the preload's entry points) ----- */

/* The head of the page's free list, the list advanced past it; NULL, the list left as it is,
 * when the head's link is unsound: the slow path's na_page_pop then names the block (a call
 * from here would give every malloc a stack frame). */
static inline void *na_page_pop_quick(na_page_t *page) {
  na_block_t *block = page->free;
  na_block_t *next = na_block_next(page, block);
  if (na_unlikely(!na_block_link_is_sound(block, next))) return NULL;
  page->free = next;
  /* A block freed long ago or by another thread is in no cache of this CPU. Fetching the next
   * one while the program uses this one hides that miss from the next allocation; a list
   * another thread sent home also names blocks further down (na_free_remote_flush), so that
   * several fetches overlap where one after another each took a transfer from that thread's
   * cache. */
  na_block_t *ahead = block->ahead;
  __builtin_prefetch(next, 1);
  __builtin_prefetch(ahead != NULL ? ahead : next, 1);
  block->next_encoded = 0; /* a live block must not look like a free one (see na_free_fast) */
  block->bin_mark = 0;     /* nor like one in a bin, should a bin hold it too (freed twice) */
  page->used++;
  return block;
}

static inline void *na_page_pop(na_page_t *page) {
  void *block = na_page_pop_quick(page);
  if (na_unlikely(block == NULL)) na_page_link_corrupt(page, page->free);
  return block;
}

/* A bin's entry as its free left it: the mark in the second word, and a first word that is
 * no list's link. A block freed twice fails this where the bin meets it again. */
static inline bool na_bin_entry_sound(const na_block_t *block) {
  return block->bin_mark == na_bin_mark(block) && !na_block_linked_quick(block);
}

/* Takes `block`, the bin's top, off the bin. */
static inline void na_bin_take_top(na_bin_t *bin, na_block_t *block) {
  uint32_t count = bin->count - 1u;
  bin->count = count;
  bin->top = bin->stack[count];
  bin->last_kept = NULL;
  bin->handed++;
  block->bin_mark = 0; /* no longer looks freed */
}

/* Hands out `block`, the top of a bin that may hold other threads' blocks; NULL when its
 * entry is not sound (in another bin too, handed out since, or on a list too), which the slow
 * path names (na_bins_check_top). */
static inline void *na_bin_pop(na_bin_t *bin, na_block_t *block) {
  if (na_unlikely(!na_bin_entry_sound(block))) return NULL;
  na_bin_take_top(bin, block);
  return block;
}

/* Hands out `block`, the top of a bin of the direct table's sizes, which holds its thread's
 * own blocks only; NULL as na_bin_pop. The block the bin took last goes unread once such
 * pops come in a run: a read there waited for the line its free had just written (a table of
 * 64-byte objects replaced at random took 1.4 times tcmalloc's time with it, about
 * tcmalloc's without), and such a block is never the copy a second free leaves deeper in the
 * bin (that copy was taken earlier), so the copy left behind, read when its turn comes, names
 * the double free. The block's two words are cleared: were it on its page's list too (freed twice,
 * once onto the list), the list names it where it meets it (a page's pop, the walk of a page
 * leaving its class, the burst that sends other threads' frees home). */
static inline void *na_bin_pop_own(na_bin_t *bin, na_block_t *block) {
  /* Only in a run: whether a program's next malloc finds the block the bin took last is as
   * random as the classes of its frees and mallocs, and a branch on that alone missed half
   * the time (sizes of 8-512 bytes at random took 13-16% longer); the run is a branch that
   * holds its course. The run counts this pop too: past NA_BIN_UNREAD_RUN, at least that
   * many such pops came right before it. */
  uint32_t run = (bin->last_kept_run + 1) & -(uint32_t)(block == bin->last_kept);
  bin->last_kept_run = run;
  if (run <= NA_BIN_UNREAD_RUN && na_unlikely(!na_bin_entry_sound(block))) return NULL;
  na_bin_take_top(bin, block);
  block->next_encoded = 0; /* no longer a link of any list */
  return block;
}

/* A block of the class from the heap's bin or current page, or NULL. */
static inline void *na_class_quick(na_heap_t *heap, int size_class) {
  na_bin_t *bin = heap->class_bin[size_class];
  na_block_t *top = bin->top;
  if (top != NULL) return na_bin_pop(bin, top);
  na_page_t *page = heap->current[size_class];
  if (na_likely(page->free != NULL)) return na_page_pop_quick(page);
  return NULL;
}

/* The fast path's block for `size`, or NULL when only the slow path can serve it: the top
 * of the size's class's bin (the block the thread freed last), else the page for the size,
 * pop its list. The empty heap, its empty bins and the empty page make a thread's first call
 * fail here. */
static inline void *na_malloc_quick(size_t size) {
  na_heap_t *heap = na_tls_heap;
  if (na_likely(size <= NA_DIRECT_MAX)) {
    size_t slot = (size + 15) >> 4;
    na_bin_t *bin = heap->direct_bin[slot];
    na_block_t *top = bin->top;
    if (na_likely(top != NULL)) return na_bin_pop_own(bin, top);
    na_page_t *page = heap->direct[slot];
    if (na_likely(page->free != NULL)) return na_page_pop_quick(page);
  } else if (size <= NA_SMALL_MAX) {
    return na_class_quick(heap, na_size_class(size));
  }
  return NULL;
}

/* About fifteen instructions, then a tail call to the slow path when they found nothing. */
static inline void *na_malloc_fast(size_t size) {
  void *p = na_malloc_quick(size);
  if (na_likely(p != NULL)) return p;
  return na_alloc_generic(size, NA_MIN_ALIGN, false, NA_ARENA_BY_POLICY);
}

/* The second word of a block another thread freed, while the block waits in that thread to
 * go home: the bin's mark with its lowest bit flipped, which is no block's bin mark (blocks
 * start at multiples of 16) and no pointer (the secret's top bit is set). */
static inline uintptr_t na_remote_mark(const na_block_t *block) { return na_bin_mark(block) ^ 1; }

/* A freed block's first word decodes to a block of the same segment, or to NULL at the end
 * of a list, or its second word is the mark of a bin or of a block waiting to go home; a live
 * block's are not (its pop clears both). Only then is a free a possible double free, worth
 * searching the page's lists for. */
static inline bool na_block_looks_free(const na_page_t *page, const na_block_t *block) {
  return (block->bin_mark ^ na_bin_mark(block)) <= 1 ||
         na_block_link_is_sound(block, na_block_next(page, block));
}

/* A block waiting to go home carries the remote mark and keeps its first word: the free that
 * marks it only stores into the block, and the burst that sends it home, reading it then,
 * names a block that was freed twice or written since (na_free_remote_flush). A second free
 * that reads it, or a bin's checked pop, names it at once. */
static inline void na_block_mark_waiting(na_block_t *block) {
  block->bin_mark = na_remote_mark(block);
}

/* offset * block_magic, block_magic being 2^64 / block_size rounded up: for offsets below
 * 2^32 (a page spans at most a segment) the high half is the index of the block holding
 * `offset`, and the low half is below the magic exactly at multiples of the size. Two
 * multiplications where a division and a remainder took tens of cycles. */
static inline __uint128_t na_by_magic(const na_page_t *page, size_t offset) {
  return (__uint128_t)offset * page->block_magic;
}

/* The index of the block that starts `offset` bytes into its page, or UINT64_MAX when no
 * block starts there. */
static inline uint64_t na_block_index(const na_page_t *page, size_t offset) {
  __uint128_t product = na_by_magic(page, offset);
  return (uint64_t)product < page->block_magic ? (uint64_t)(product >> 64) : UINT64_MAX;
}
_Static_assert(NA_SEGMENT_SIZE <= ((size_t)1 << 32), "block_index needs offsets below 2^32");

/* Keeps a freed block in the calling thread's bin of its class, when the block is of the
 * arena of the thread's current heap (so of its node), the bin has room and its top is not
 * the block (freed twice, named by the way that reads it); false when it does not go there. */
static inline bool na_bin_keep(const na_page_t *page, na_block_t *block, uint8_t tag) {
  na_heap_t *heap = na_tls_heap;
  na_bin_t *bin = heap->class_bin[page->size_class];
  uint32_t count = bin->count;
  if (na_unlikely(tag != heap->bin_tag || count >= bin->capacity || block == bin->top))
    return false;
  block->bin_mark = na_bin_mark(block);
  bin->slots[count] = block;
  bin->count = count + 1;
  bin->top = block;
  bin->last_kept = block;
  return true;
}

/* The descriptor of the span that holds `p` in `segment`, and p's offset into that span:
 * the slice's descriptor gives the way back to the span's first one. */
static inline na_page_t *na_span_and_offset(na_segment_t *segment, const void *p,
                                            uint64_t *in_page) {
  na_page_t *slice = na_slice_of(segment, p);
  uint32_t slice_offset = slice->slice_offset;
  na_page_t *page = (na_page_t *)((char *)slice - slice_offset);
  *in_page = ((uintptr_t)p & (NA_SLICE_SIZE - 1)) +
             ((uint64_t)slice_offset << (NA_SLICE_SHIFT - NA_DESCRIPTOR_SHIFT));
  return page;
}

/* One map lookup, then a push on the bin of the block's class when the block is of the
 * arena of the thread's current heap and the bin has room: for the page's owner always, for
 * another thread from NA_BIN_FOREIGN_MIN (the block it freed last is the one in its cache,
 * and it stays on its node). Otherwise the owner pushes on the page's list, and any other
 * thread sends the block home with the blocks waiting to go there. The owner's push on its bin
 * writes the block's mark and reads nothing of it: the block a program frees is often in no
 * cache, and a read waits for it where a write does not (a free that read it took 1.4-1.9x
 * mimalloc's time on tables of strings replaced at random). The bin's pops and emptying
 * check the block (but for the one it took last, na_bin_pop_own), before any second hand-out;
 * every other path reads the block first. A pointer that is not the start of a block, or a block
 * that looks freed already, goes to na_free_generic, which names the misuse and aborts, as does
 * everything less common (large and huge blocks, pages with purged blocks, the owner's full or
 * purged pages). */
static inline void na_free_fast(void *p) {
  uint8_t tag = na_segmap_tag(p);
  if (na_unlikely((int8_t)tag <= 0)) { /* 0, or NA_SEGMAP_CONT: a huge segment's tail */
    na_free_unowned(p);
    return;
  }
  na_segment_t *segment = na_segment_of_aligned(p);
  uint64_t in_page;
  na_page_t *page = na_span_and_offset(segment, p, &in_page);
  na_block_t *block = p;
  /* The owner's identity without NA_OWNER_FLAGGED: no flag bars this path (a full page's
   * block goes to the bin, or onto the list, whose sparse threshold brings the page back). */
  if (na_likely(na_relaxed_load(&page->owner) == na_thread_id() &&
                in_page * page->block_magic < page->block_magic)) {
    /* The mark's store needs the block's line, often in no cache: asking for it here, ahead of
     * the bin's stores, overlaps the wait with the rest of the free (tables of strings freed
     * unread at random: 10-15% less time in two rounds). */
    __builtin_prefetch(block, 1);
    if (na_likely(na_bin_keep(page, block, tag))) return;
    na_free_owned(segment, page, block);
    return;
  }
  /* A stale magic stays in a span that was small once, hence the kind; the index against the
   * capacity rejects a pointer that is no block start, or a block never carved. A live block
   * keeps its page from changing under this thread. A block another thread wrote last is in
   * that thread's cache: the free going home stores into it and reads nothing, and the burst
   * that sends it home checks it (a pipeline of messages built on one thread and freed on the
   * other: 17% less time). One kept in this thread's bin is read now. */
  if (na_page_owner(page) != na_thread_id() && na_relaxed_load(&page->kind) == NA_SPAN_SMALL &&
      na_relaxed_load(&page->purged) == 0 &&
      na_block_index(page, in_page) < na_relaxed_load(&page->capacity)) {
    if (page->block_size < NA_BIN_FOREIGN_MIN) {
      na_free_remote(page, block, tag - 1); /* not the segment header, which spans rewrite */
      return;
    }
    if (!na_block_looks_free(page, block)) {
      if (na_bin_keep(page, block, tag)) return;
      na_free_remote(page, block, tag - 1);
      return;
    }
  }
  na_free_generic(segment, page, p);
}

/* The page of the small block holding `p`, and the bytes from p to the block's end, found as
 * free finds its page: one map lookup and the block's index by multiplication; NULL for
 * anything else. malloc_usable_size and realloc use it: programs that account their memory
 * call the first at every malloc and free (redis does, twice per pair), and those that build
 * strings and arrays call the second every few bytes appended. NULL, large and huge blocks and
 * pointers numalloc did not allocate take the full lookup (na_usable_size_of). */
static inline na_page_t *na_small_page_of(const void *p, size_t *usable) {
  uint8_t tag = na_segmap_tag(p);
  if (na_unlikely((int8_t)tag <= 0)) return NULL;
  uint64_t in_page;
  na_page_t *page = na_span_and_offset(na_segment_of_aligned(p), p, &in_page);
  if (na_unlikely(na_relaxed_load(&page->kind) != NA_SPAN_SMALL)) return NULL;
  uint64_t index = (uint64_t)(na_by_magic(page, in_page) >> 64);
  *usable = (size_t)(index + 1) * page->block_size - in_page;
  return page;
}

static inline size_t na_usable_size_fast(const void *p) {
  size_t usable;
  if (na_likely(na_small_page_of(p, &usable) != NULL)) return usable;
  return p == NULL ? 0 : na_usable_size_of(p);
}

#pragma GCC visibility pop

#endif /* NUMALLOC_INTERNAL_H */
