/* free.c: giving blocks back. The owner of a page frees into it without atomics; any other
 * thread pushes onto the page's atomic list, or, when the page is full and off its heap's
 * queue, hands the block to that heap so it can bring the page back. Pointers the library
 * does not own go to the next allocator when there is one, and otherwise end the program
 * with a clear message, as do frees of freed or interior pointers. */
#include "internal.h"

#include "access.h"

#include <string.h>

/* A block that looks freed but is neither on the page's lists nor in the thread's bins waits
 * among another thread's remote frees (or, once in 2^39, holds data that looks like a
 * link). */
static void free_local(na_page_t *page, na_block_t *block) {
  if (na_page_block_is_unlinked(page, block) ||
      (na_block_looks_free(page, block) &&
       (na_bins_hold(na_tls_heap, block) || na_page_block_is_free(page, block))))
    na_fatal("double free of %p (size class %u)", (void *)block, page->block_size);
  if (na_block_looks_free(page, block))
    na_fatal("double free of %p (size class %u, freed by another thread too)", (void *)block,
             page->block_size);
  na_block_link(page, block, page->local_free);
  page->local_free = block;
  page->used--;
  if (page->flags.bits.in_full) na_heap_page_unfull(page->heap, page);
  if (page->used < page->sparse_below) na_heap_page_low(page->heap, page);
}

static void hand_to_heap(na_page_t *page, na_block_t *block) {
  na_heap_t *heap = page->heap; /* stays valid: the owner waits while we are BUSY */
  na_block_t *head = atomic_load_explicit(&heap->delayed_free, memory_order_relaxed);
  do {
    block->next_encoded = (uintptr_t)head ^ na_secret;
  } while (!atomic_compare_exchange_weak_explicit(&heap->delayed_free, &head, block,
                                                  memory_order_release, memory_order_relaxed));
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &tf,
                                                (tf & ~NA_TF_DELAY_MASK) | NA_DELAY_NONE,
                                                memory_order_release, memory_order_relaxed)) {
  }
}

/* The thread's node as of its last slow path, like its allocations' local and remote
 * counts: asking the CPU at every free would be a system call on some machines. */
static void account_remote_free(na_tld_t *tld, int arena_index) {
  na_node_stats_t *stats = na_tld_stats(tld, arena_index);
  stats->remote_free_count++;
  if (arena_index != tld->node) stats->cross_node_free_count++;
}

/* A notification (the page BUSY until its block has reached the heap) is never cut in two
 * by a fork: fork waits for those under way and holds back new ones. In the child the
 * notifying thread does not exist, and a page left BUSY would make every thread that frees
 * into it, its owner included, wait for ever. Notifications are rare (a full page's first
 * remote free) and short; fork sets `fork_pending`, then waits for `notifying` to drain, and
 * a notifier counts itself in, then checks `fork_pending` (both sequentially consistent, so
 * one of the two sees the other). Not a pthread rwlock: the child could not release the one
 * its parent's thread took (glibc keeps the writer's thread id, which fork changes). */
static _Atomic uint32_t notifying;
static _Atomic bool fork_pending;
void (*na_free_notify_hook)(void);

void na_free_hold_notifications(void) {
  atomic_store(&fork_pending, true);
  while (atomic_load(&notifying) != 0) na_os_yield();
}

void na_free_release_notifications(bool in_child) {
  /* A thread of the parent may have counted itself in and not yet out again when it saw
   * the fork pending: in the child it does not exist. */
  if (in_child) atomic_store(&notifying, 0);
  atomic_store(&fork_pending, false);
}

static void begin_notification(void) {
  for (;;) {
    while (atomic_load(&fork_pending)) na_os_yield();
    atomic_fetch_add(&notifying, 1);
    if (!atomic_load(&fork_pending)) return;
    atomic_fetch_sub(&notifying, 1);
  }
}

static void push_chain(na_page_t *page, na_block_t *head, na_block_t *tail, uint32_t count);

/* push_chain when the page is BUSY (wait for the notifying thread) or asks for a
 * notification (NOTIFY): `head` then goes to the heap, which brings the page back, and the
 * rest onto the page. */
static na_noinline void push_chain_slow(na_page_t *page, na_block_t *head, na_block_t *tail,
                                        uint32_t count) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  bool holding = false;
  for (;;) {
    na_delay_t delay = na_tf_delay(tf);
    if (delay == NA_DELAY_BUSY) {
      na_os_yield(); /* another thread is notifying the heap; push after it */
      tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
      continue;
    }
    if (delay != NA_DELAY_NOTIFY) break; /* another thread took the notification */
    if (!holding) {
      begin_notification();
      holding = true;
      tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
      continue;
    }
    uintptr_t desired = (tf & ~NA_TF_DELAY_MASK) | NA_DELAY_BUSY;
    if (count > 1) {
      na_block_set_next(page, tail, na_tf_blocks(tf));
      desired = (uintptr_t)(na_tf_count(tf) + count - 1) << NA_TF_COUNT_SHIFT |
                (uintptr_t)na_block_next(page, head) | NA_DELAY_BUSY;
    }
    if (atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, desired,
                                              memory_order_acq_rel, memory_order_relaxed)) {
      if (na_unlikely(na_free_notify_hook != NULL)) na_free_notify_hook();
      hand_to_heap(page, head);
      atomic_fetch_sub(&notifying, 1);
      return;
    }
  }
  if (holding) atomic_fetch_sub(&notifying, 1);
  push_chain(page, head, tail, count);
}

/* Pushes the chain head..tail (linked for `page`) onto the page's thread_free list with one
 * atomic operation; a page that is BUSY or asks for a notification takes the slow way. */
static na_noinline void push_chain(na_page_t *page, na_block_t *head, na_block_t *tail,
                                   uint32_t count) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  for (;;) {
    uintptr_t delay = (uintptr_t)na_tf_delay(tf);
    if (na_unlikely(delay == NA_DELAY_BUSY || delay == NA_DELAY_NOTIFY)) {
      push_chain_slow(page, head, tail, count);
      return;
    }
    na_block_set_next(page, tail, na_tf_blocks(tf));
    uintptr_t desired =
        (uintptr_t)(na_tf_count(tf) + count) << NA_TF_COUNT_SHIFT | (uintptr_t)head | delay;
    if (atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, desired,
                                              memory_order_acq_rel, memory_order_relaxed))
      return;
  }
}

/* Frees into other threads' pages wait in the freeing thread and go in one burst: the
 * blocks of one page as one chain, with one atomic operation. An atomic operation on a line
 * that the page's owner keeps using costs most of such a free when it is made at once (about
 * 140 ns here, against 20 for a free of the thread's own); made in a row they overlap, about
 * 15-25 ns each, and the blocks of a page freed in bulk (a batch of objects handed from
 * thread to thread) share one. The burst comes when NA_REMOTE_WAITING blocks or about
 * NA_REMOTE_BYTES wait, at the thread's heap pass (once per purge delay), its exit,
 * numalloc_collect() and before statistics are read. A waiting block is marked as freed, so
 * a second free of it is named as before. */
#define GROUP_SLOTS 64 /* pages whose blocks one burst chains together; more go one by one */

typedef struct remote_group_s {
  na_page_t *page;
  na_block_t *head, *tail;
  uint32_t count;
  na_block_t *pushed[NA_FETCH_AHEAD]; /* the last blocks pushed, by count modulo NA_FETCH_AHEAD */
} remote_group_t;

/* A block waiting here carries the remote mark (na_block_mark_waiting) until it goes, and was
 * live when this thread freed it. One whose mark is gone was freed again since (by its owner,
 * into a bin or onto a list, or by this thread: its first copy went ahead of it in this
 * burst), or written after its free; one whose first word is a link was on its page's list
 * when this thread freed it. Sent on, it would sit on a list twice, or while in use. Only a
 * block freed twice can have its segment given back meanwhile (a block waiting here is in
 * use for its page), and its memory is then not read. */
static void check_waiting(const na_page_t *page, const na_block_t *block) {
  if (na_unlikely(na_segmap_tag(block) == 0))
    na_fatal("double free of %p (freed by this thread and again elsewhere; its memory went "
             "back to the system since)",
             (const void *)block);
  if (na_unlikely(block->bin_mark != na_remote_mark(block)))
    na_fatal("double free of %p (size class %u, freed by this thread and then freed again, by "
             "this thread or its owner, or written after its free)",
             (const void *)block, page->block_size);
  if (na_unlikely(na_block_link_is_sound(block, na_block_next(page, block))))
    na_fatal("double free of %p (size class %u, freed by this thread while on its page's free "
             "list)",
             (const void *)block, page->block_size);
}

/* A block pushed onto its group's chain lies NA_FETCH_AHEAD places above the block pushed
 * NA_FETCH_AHEAD pushes before it. */
static void group_push(remote_group_t *group, na_block_t *block) {
  na_block_t **slot = &group->pushed[group->count % NA_FETCH_AHEAD];
  block->ahead = group->count >= NA_FETCH_AHEAD ? *slot : NULL;
  *slot = block;
  na_block_set_next(group->page, block, group->head);
  group->head = block;
  group->count++;
}

/* The groups' table, 6 KiB, is touched only where a burst uses it (`used`, a bit per slot):
 * this runs at every thread's exit, mostly with nothing waiting, on a stack the thread often
 * got new from the kernel, and clearing the whole table there faulted in one or two stack
 * pages per thread (threads made and ended by the hundred: a third of their page faults). */
_Static_assert(GROUP_SLOTS <= 64, "a bit per group in `used`");
void na_free_remote_flush(na_tld_t *tld) {
  uint32_t count = tld->remote_count;
  if (count == 0) return;
  remote_group_t groups[GROUP_SLOTS];
  uint64_t used = 0;
  tld->remote_count = 0;
  tld->remote_bytes = 0;
  for (uint32_t i = 0; i < count; i++) {
    na_page_t *page = tld->remote[i].page;
    na_block_t *block = tld->remote[i].block;
    check_waiting(page, block);
    unsigned slot = (unsigned)((uintptr_t)page >> NA_DESCRIPTOR_SHIFT) % GROUP_SLOTS;
    remote_group_t *group = &groups[slot];
    if (!(used >> slot & 1)) {
      used |= (uint64_t)1 << slot;
      group->page = page;
      group->head = NULL;
      group->tail = block; /* its link is push_chain's to write */
      group->count = 0;
    }
    if (group->page == page) {
      group_push(group, block);
    } else {
      block->ahead = NULL;
      push_chain(page, block, block, 1);
    }
  }
  for (; used != 0; used &= used - 1) {
    remote_group_t *group = &groups[__builtin_ctzll(used)];
    push_chain(group->page, group->head, group->tail, group->count);
  }
}

/* A block that cannot wait goes onto its page at once. */
static na_noinline void free_remote_at_once(na_page_t *page, na_block_t *block) {
  if (na_block_looks_free(page, block))
    na_fatal("double free of %p (size class %u, freed by a thread that does not own it)",
             (const void *)block, page->block_size);
  block->ahead = NULL;
  push_chain(page, block, block, 1);
}

/* Waiting saves an atomic operation on a line the page's owner keeps using; a page no thread
 * owns (in its node's pool) has no such owner, and its blocks go at once, so that a thread
 * that frees a dead thread's blocks and then allocates finds them in the pool's pages. Every
 * call here is a tail call, so that the common way (the block waits) needs no stack frame. */
static inline void free_remote_by(na_tld_t *tld, na_page_t *page, na_block_t *block,
                                  int arena_index) {
  account_remote_free(tld, arena_index);
  if (tld->exiting || na_relaxed_load(&page->owner) == 0) {
    free_remote_at_once(page, block);
    return;
  }
  na_block_mark_waiting(block);
  tld->remote[tld->remote_count] = (na_remote_wait_t){block, page};
  tld->remote_bytes += page->block_size;
  if (++tld->remote_count == NA_REMOTE_WAITING || tld->remote_bytes >= NA_REMOTE_BYTES)
    na_free_remote_flush(tld);
}

/* A thread that only frees (a consumer) gets its record here, so that its exit pushes what
 * waits; one past its exit, or without memory for a record, pushes at once. */
static na_noinline void free_remote_first(na_page_t *page, na_block_t *block, int arena_index) {
  na_tld_t *tld = na_tld_get_unless_exited();
  if (tld == NULL) {
    free_remote_at_once(page, block);
    return;
  }
  free_remote_by(tld, page, block, arena_index);
}

void na_free_remote(na_page_t *page, na_block_t *block, int arena_index) {
  na_tld_t *tld = na_tld_peek();
  if (na_unlikely(tld == NULL)) {
    free_remote_first(page, block, arena_index);
    return;
  }
  free_remote_by(tld, page, block, arena_index);
}

static void free_small(na_segment_t *segment, na_page_t *page, void *p) {
  size_t offset = (size_t)((char *)p - (char *)na_page_start(page));
  if (na_unlikely(na_block_index(page, offset) >= na_relaxed_load(&page->capacity)))
    na_fatal("free of %p, which is inside a block of size class %u, not its start", p,
             page->block_size);
  if (na_page_owner(page) == na_thread_id()) {
    free_local(page, p);
    return;
  }
  /* Another thread's page: its lists cannot be searched safely from here, but a block whose
   * first word decodes into its own segment was freed already (a live block's never does,
   * short of a 1 in 2^39 coincidence). */
  if (na_block_looks_free(page, p) || na_page_block_is_unlinked(page, p))
    na_fatal("double free of %p (size class %u, freed by a thread that does not own it)", p,
             page->block_size);
  na_free_remote(page, p, segment->arena_index);
}

void na_free_generic(na_segment_t *segment, na_page_t *page, void *p) {
  switch (page->kind) {
  case NA_SPAN_SMALL: free_small(segment, page, p); return;
  case NA_SPAN_LARGE:
    if ((char *)p != (char *)na_page_start(page) + page->block_size) break;
    if (na_unlikely(na_options.verify))
      na_stats_verify(segment->arena_index, p, (size_t)page->slice_count << NA_SLICE_SHIFT);
    page->flags.value = 0;
    na_arena_free_span(page);
    return;
  case NA_SPAN_HUGE:
    if (na_unlikely(na_options.verify))
      na_stats_verify(segment->arena_index, p, na_huge_usable(segment, p));
    if ((char *)p != (char *)segment + ((size_t)page->block_size << NA_SLICE_SHIFT)) break;
    na_arena_free_huge(segment);
    return;
  default: break;
  }
  na_fatal("free of %p, which is not an allocated block (double free or invalid pointer)", p);
}

/* Out of the inline fast path, whose registers then suffice for the bin's case: a block that
 * looks freed already is named by the whole path. */
na_noinline void na_free_owned(na_segment_t *segment, na_page_t *page, na_block_t *block) {
  if (na_unlikely(na_block_looks_free(page, block))) {
    na_free_generic(segment, page, block);
    return;
  }
  na_block_link(page, block, page->local_free);
  page->local_free = block;
  if (na_unlikely(--page->used < page->sparse_below)) na_heap_page_low(page->heap, page);
}

/* Under NUMALLOC_POLICY=system every block is the next allocator's; otherwise a pointer
 * numalloc cannot account for was never allocated (or was a huge block, freed already). */
na_noinline void na_free_unowned(void *p) {
  if (p == NULL) return;
  na_segment_t *segment = na_segment_lookup(p);
  if (segment != NULL) {
    na_free_generic(segment, na_page_of(segment, p), p);
    return;
  }
  if (na_bootstrap_owns(p)) return; /* start-up blocks are never reused */
  if (na_options.policy == NUMALLOC_POLICY_SYSTEM && na_system.free != NULL) {
    na_system.free(p);
    return;
  }
  na_fatal("free of %p, which numalloc did not allocate (invalid pointer, or a double free of "
           "a huge block)",
           p);
}

void numalloc_free(void *p) { na_free_fast(p); }

size_t na_usable_size_of(const void *p) {
  na_segment_t *segment = na_segment_lookup(p);
  if (segment == NULL) {
    if (p != NULL && na_bootstrap_owns(p)) return na_bootstrap_usable(p);
    if (p != NULL && na_options.policy == NUMALLOC_POLICY_SYSTEM && na_system.usable_size)
      return na_system.usable_size((void *)p);
    return 0;
  }
  return na_usable_in(segment, na_page_of(segment, p), p);
}

size_t na_usable_in(na_segment_t *segment, na_page_t *page, const void *p) {
  char *start = na_page_start(page);
  size_t offset = (size_t)((const char *)p - start);
  switch (page->kind) {
  case NA_SPAN_SMALL: {
    uint64_t index = (uint64_t)(na_by_magic(page, offset) >> 64);
    return (size_t)(index + 1) * page->block_size - offset;
  }
  case NA_SPAN_LARGE: { /* 0 for a pointer outside the block (room, alignment padding) */
    size_t into = offset - page->block_size;
    return into < page->large_size ? page->large_size - into : 0;
  }
  case NA_SPAN_HUGE: return na_huge_usable(segment, p);
  default: return 0;
  }
}

size_t numalloc_usable_size(const void *p) { return na_usable_size_fast(p); }

/* A first-touch block's node is where the kernel put its first page. */
static int touched_node(const void *p) {
  void *page = (void *)((uintptr_t)p & ~(uintptr_t)(NA_PAGE_SIZE - 1));
  int node = -1;
  if (!na_access_page_nodes(&page, &node, 1) || node < 0) return NUMALLOC_NODE_UNKNOWN;
  return node;
}

int numalloc_node_of(const void *p) {
  na_segment_t *segment = p == NULL ? NULL : na_segment_lookup(p);
  if (segment == NULL) return -1;
  if (segment->arena_index == NA_INTERLEAVE_ARENA) return NA_NODE_INTERLEAVED;
  if (segment->arena_index == NA_TOUCH_ARENA) return touched_node(p);
  return segment->arena_index;
}
