/* check_page.c: small pages (page.c), driven directly on a span from the arena and a heap
 * of the test's own. Blocks are carved lazily, about 4 KiB at a time, inside the page and on
 * block boundaries; free lists are encoded; the owner's frees and other threads' frees (the
 * atomic list, pushed concurrently) come back on refill; the delay states route a remote
 * free to the heap when the page is full; a corrupted remote list, or a free block's link
 * overwritten, stops the program. */
#include "unit.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

static na_heap_t heap;
static int node;

static void setup(void) {
  unit_quiet_purge();
  node = unit_home_node();
  memset(&heap, 0, sizeof heap); /* as fresh metadata is */
  na_heap_init(&heap, NULL, node);
}

static na_page_t *page_make(int size_class) {
  int actual;
  na_page_t *page = na_arena_alloc_span(node, na_class_page_slices(size_class), &actual);
  ck_assert_ptr_nonnull(page);
  na_page_init(page, &heap, size_class, page->is_zero);
  return page;
}

static size_t list_length(const na_page_t *page, const na_block_t *list) {
  size_t n = 0;
  for (; list != NULL; list = na_block_next(page, list)) {
    n++;
    UNIT_REQUIRE(n <= page->reserved, "list of page %p loops", (void *)page);
  }
  return n;
}

/* Purges as a heap does: through a batch, flushed before the page is used again. */
static size_t purge_now(na_page_t *page,
                        size_t (*purge)(na_page_t *page, na_os_purge_batch_t *batch)) {
  na_os_purge_batch_t batch;
  na_os_purge_start(&batch);
  size_t bytes = purge(page, &batch);
  na_os_purge_flush(&batch);
  return bytes;
}

static size_t purge_free_now(na_page_t *page) { return purge_now(page, na_page_purge_free); }

static size_t purge_idle_now(na_page_t *page) { return purge_now(page, na_page_purge_idle); }

static void *pop(na_page_t *page) {
  na_block_t *block = page->free;
  UNIT_REQUIRE(block != NULL, "page %p has no free block", (void *)page);
  page->free = na_block_next(page, block);
  page->used++;
  block->next_encoded = block->bin_mark = 0; /* live, as the allocator's pop leaves it */
  return block;
}

static void *pop_after_refill(na_page_t *page) {
  na_page_refill(page);
  return pop(page);
}

/* Hands out every block the page can hold; returns how many. */
static size_t take_all(na_page_t *page, void **blocks) {
  size_t total = 0;
  do {
    na_page_refill(page);
    while (page->free != NULL) blocks[total++] = pop(page);
  } while (page->capacity < page->reserved);
  return total;
}

/* The owner's free, as the fast path does it, without its retire and purge calls. */
static void free_to_local(na_page_t *page, void *block) {
  na_block_set_next(page, block, page->local_free);
  page->local_free = block;
  page->used--;
}

/* A free by a thread that does not own the page, as the free path makes it. */
static void free_from_other_thread(na_page_t *page, void *block) {
  na_free_remote(page, block, na_segment_of_aligned(page)->arena_index);
}

static const int classes[] = {0, 1, 7, 8, 15, 23, 27, 33, 40, 47, NA_CLASS_COUNT - 1};

START_TEST(init_describes_the_page) {
  int c = classes[_i];
  na_page_t *page = page_make(c);
  size_t bytes = (size_t)page->slice_count << NA_SLICE_SHIFT;
  ck_assert_int_eq(page->kind, NA_SPAN_SMALL);
  ck_assert_int_eq(page->size_class, c);
  ck_assert_uint_eq(page->block_size, na_class_size(c));
  ck_assert_uint_eq(page->reserved, bytes / na_class_size(c));
  ck_assert_uint_eq(page->capacity, 0);
  ck_assert_uint_eq(page->used, 0);
  ck_assert_ptr_null(page->free);
  ck_assert_ptr_null(page->local_free);
  ck_assert_uint_eq(atomic_load(&page->thread_free), NA_DELAY_NONE);
  ck_assert_uint_eq(page->key & 1, 1);
  ck_assert_uint_eq(page->owner, 0); /* a heap without a thread */
  ck_assert_ptr_eq(page->heap, &heap);
  ck_assert(page->is_zero); /* a fresh segment */
  na_arena_free_span(page);
}
END_TEST

/* Every block of the page, carved about 4 KiB at a time (at least 4 blocks, but at most 16 KiB
 * unless one block is larger), in address order, each exactly once. */
START_TEST(refill_carves_every_block_once) {
  int c = classes[_i];
  na_page_t *page = page_make(c);
  char *start = na_page_start(page);
  size_t size = page->block_size;
  size_t fit = 16384 / size < 1 ? 1 : 16384 / size > 4 ? 4 : 16384 / size;
  size_t step = 4096 / size >= 4 ? 4096 / size : fit;
  size_t handed = 0;
  while (page->capacity < page->reserved) {
    size_t before = page->capacity;
    na_page_refill(page);
    size_t carved = page->capacity - before;
    size_t expect = step < page->reserved - before ? step : page->reserved - before;
    UNIT_REQUIRE(carved == expect, "class %d: carved %zu, not %zu", c, carved, expect);
    UNIT_REQUIRE(list_length(page, page->free) == carved, "class %d", c);
    while (page->free != NULL) {
      char *block = pop(page);
      UNIT_REQUIRE(block == start + handed * size, "class %d: block %zu at %p", c, handed,
                   (void *)block);
      handed++;
    }
  }
  ck_assert_uint_eq(handed, page->reserved);
  ck_assert_uint_le(handed * size, (size_t)page->slice_count << NA_SLICE_SHIFT);
  ck_assert_uint_eq(page->used, page->reserved);
  na_page_refill(page); /* nothing left to carve, nothing freed */
  ck_assert_ptr_null(page->free);
  na_arena_free_span(page);
}
END_TEST

/* Links hold the next pointer xor the page's key, never the plain address. */
START_TEST(free_lists_are_encoded) {
  na_page_t *page = page_make(3);
  na_page_refill(page);
  for (na_block_t *b = page->free; b != NULL; b = na_block_next(page, b)) {
    na_block_t *next = na_block_next(page, b);
    ck_assert_uint_eq(b->next_encoded ^ page->key, (uintptr_t)next);
    ck_assert_uint_ne(b->next_encoded, (uintptr_t)next);
  }
  na_arena_free_span(page);
}
END_TEST

/* The owner's frees sit on local_free until `free` runs dry, then become `free`; the page
 * is then no longer known to be zero. */
START_TEST(local_frees_come_back_on_refill) {
  na_page_t *page = page_make(2);
  na_page_refill(page);
  size_t carved = page->capacity;
  void *blocks[8];
  for (int i = 0; i < 8; i++) blocks[i] = pop(page);
  for (int i = 0; i < 8; i += 2) {
    free_to_local(page, blocks[i]);
  }
  na_page_refill(page); /* `free` still has blocks: nothing moves */
  ck_assert_uint_eq(list_length(page, page->local_free), 4);
  while (page->free != NULL) pop(page);
  ck_assert_uint_eq(page->used, carved - 4);
  na_page_refill(page);
  ck_assert_ptr_null(page->local_free);
  ck_assert_uint_eq(list_length(page, page->free), 4);
  ck_assert_uint_eq(page->capacity, carved); /* reuse before carving more */
  ck_assert(!page->is_zero);
  for (int i = 0; i < 8; i += 2) ck_assert(na_page_block_is_free(page, blocks[i]));
  for (int i = 1; i < 8; i += 2) ck_assert(!na_page_block_is_free(page, blocks[i]));
  na_arena_free_span(page);
}
END_TEST

/* Counting what a page handed out of `free` needs no walk of it: its counts tell how many
 * blocks it holds through allocations, local frees, remote frees taken in, refills, counts
 * and carving, and the count is exact at each step (installed is then what `free` holds). */
START_TEST(counting_a_page_needs_no_walk_of_its_free_list) {
  na_page_t *page = page_make(3);
  uint64_t rng = 7;
  void *live[256];
  size_t n = 0;
  for (int step = 0; step < 4000; step++) {
    uint64_t r = tu_rand(&rng) % 8;
    if (r < 4 && (page->free != NULL || page->capacity < page->reserved || page->local_free)) {
      if (page->free == NULL) na_page_refill(page);
      if (page->free != NULL && n < 256) live[n++] = pop(page);
    } else if (r < 6 && n > 0) {
      size_t i = tu_rand(&rng) % n;
      free_to_local(page, live[i]);
      live[i] = live[--n];
    } else if (r < 7 && n > 0) {
      size_t i = tu_rand(&rng) % n;
      free_from_other_thread(page, live[i]);
      live[i] = live[--n];
      if (tu_rand(&rng) % 2) na_page_collect_remote(page);
    } else {
      na_page_account_partial(page);
      UNIT_REQUIRE(page->installed == list_length(page, page->free),
                   "step %d: installed %u, `free` holds %zu", step, page->installed,
                   list_length(page, page->free));
    }
  }
  na_page_collect_remote(page);
  while (n > 0) free_to_local(page, live[--n]);
  na_page_account_partial(page);
  ck_assert_uint_eq(page->installed, list_length(page, page->free));
  na_arena_free_span(page);
}
END_TEST

/* Threads push the blocks they free onto the page's atomic list at the same time; the owner
 * collects every one of them, once. */
enum { REMOTE_THREADS = 4, REMOTE_EACH = 200 };
static na_page_t *remote_page;
static void *remote_blocks[REMOTE_THREADS][REMOTE_EACH];

static void *free_remote_batch(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < REMOTE_EACH; i++) free_from_other_thread(remote_page, blocks[i]);
  return NULL;
}

START_TEST(remote_frees_are_collected) {
  remote_page = page_make(0); /* 16-byte blocks: 4096 in a page */
  na_page_t *page = remote_page;
  for (int t = 0; t < REMOTE_THREADS; t++)
    for (int i = 0; i < REMOTE_EACH; i++) {
      if (page->free == NULL) na_page_refill(page);
      remote_blocks[t][i] = pop(page);
    }
  uint32_t used = page->used;
  unit_run_threads(REMOTE_THREADS, free_remote_batch, remote_blocks, sizeof remote_blocks[0]);
  ck_assert_uint_eq(page->used, used); /* not yet seen by the owner */
  ck_assert_uint_eq(na_page_collect_remote(page), REMOTE_THREADS * REMOTE_EACH);
  ck_assert_uint_eq(page->used, used - REMOTE_THREADS * REMOTE_EACH);
  ck_assert_uint_eq(list_length(page, page->local_free), REMOTE_THREADS * REMOTE_EACH);
  for (int t = 0; t < REMOTE_THREADS; t++)
    for (int i = 0; i < REMOTE_EACH; i++)
      UNIT_REQUIRE(na_page_block_is_free(page, remote_blocks[t][i]), "block %d/%d lost", t, i);
  ck_assert_uint_eq(atomic_load(&page->thread_free), NA_DELAY_NONE);
  ck_assert_uint_eq(na_page_collect_remote(page), 0);
  na_arena_free_span(page);
}
END_TEST

/* A full page (NOTIFY) sends the first remote free to its heap's delayed list and goes back
 * to NONE; later ones go on the page. NOTIFY is refused while the page has remote frees. */
START_TEST(full_page_notifies_its_heap) {
  na_page_t *page = page_make(4);
  na_page_refill(page);
  void *a = pop(page), *b = pop(page), *c = pop(page);
  ck_assert(na_page_set_delay(page, NA_DELAY_NOTIFY, true));
  ck_assert_uint_eq(atomic_load(&page->thread_free), NA_DELAY_NOTIFY);
  free_from_other_thread(page, a);
  ck_assert_ptr_eq(atomic_load(&heap.delayed_free), a);
  ck_assert_uint_eq(((na_block_t *)a)->next_encoded ^ na_secret, 0); /* end of the list */
  ck_assert_uint_eq(atomic_load(&page->thread_free), NA_DELAY_NONE);
  free_from_other_thread(page, b);
  ck_assert_uint_eq(atomic_load(&page->thread_free),
                    NA_TF_COUNT_ONE | (uintptr_t)b | NA_DELAY_NONE);
  ck_assert(!na_page_set_delay(page, NA_DELAY_NOTIFY, true));
  ck_assert(na_page_set_delay(page, NA_DELAY_NEVER, false));
  ck_assert_uint_eq(atomic_load(&page->thread_free),
                    NA_TF_COUNT_ONE | (uintptr_t)b | NA_DELAY_NEVER);
  free_from_other_thread(page, c); /* an abandoned page just collects its frees */
  uintptr_t tf = atomic_load(&page->thread_free);
  ck_assert_uint_eq(na_tf_delay(tf), NA_DELAY_NEVER);
  ck_assert_ptr_eq(na_tf_blocks(tf), c);
  ck_assert_uint_eq(na_tf_count(tf), 2);
  ck_assert_ptr_eq(atomic_load(&heap.delayed_free), a);
  ck_assert_uint_eq(na_page_collect_remote(page), 2);
  ck_assert_uint_eq(atomic_load(&page->thread_free), NA_DELAY_NEVER);
  na_arena_free_span(page);
}
END_TEST

START_TEST(interior_pointers_find_their_block) {
  na_page_t *page = page_make(9); /* 192-byte blocks */
  char *start = na_page_start(page);
  na_page_refill(page);
  for (size_t i = 0; i < 10; i++) {
    char *block = start + i * page->block_size;
    ck_assert_ptr_eq(na_page_block_start(page, block), block);
    ck_assert_ptr_eq(na_page_block_start(page, block + 1), block);
    ck_assert_ptr_eq(na_page_block_start(page, block + page->block_size - 1), block);
  }
  na_arena_free_span(page);
}
END_TEST

/* A remote list that loops (a block freed twice by other threads) is caught, not walked
 * forever. */
START_TEST(looping_remote_list_aborts) {
  na_page_t *page = page_make(1);
  na_page_refill(page);
  na_block_t *a = pop(page);
  free_from_other_thread(page, a);
  free_from_other_thread(page, a);
  unit_silence_stderr();
  na_page_collect_remote(page);
}
END_TEST

/* What a write past the end of a block leaves in the free block after it. */
#define OVERFLOW_BYTES 0x4141414141414141ull

/* A free block whose link was overwritten is not handed out by the fast path, which leaves
 * the list as it was for the slow path to name. */
START_TEST(the_quick_pop_refuses_an_overwritten_link) {
  na_page_t *page = page_make(3);
  na_page_refill(page);
  na_block_t *a = na_page_pop(page);
  na_block_t *b = page->free;
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_eq(b, (char *)a + page->block_size); /* carved in address order */
  uint32_t used = page->used;
  memset(b, 0x41, sizeof(uint64_t));
  ck_assert_ptr_null(na_page_pop_quick(page));
  ck_assert_ptr_eq(page->free, b);
  ck_assert_uint_eq(page->used, used);
  ck_assert_uint_eq(b->next_encoded, OVERFLOW_BYTES);
}
END_TEST

START_TEST(popping_an_overwritten_link_aborts) {
  na_page_t *page = page_make(3);
  na_page_refill(page);
  na_page_pop(page);
  memset(page->free, 0x41, sizeof(uint64_t));
  unit_silence_stderr();
  na_page_pop(page);
}
END_TEST

/* Other threads' frees are walked to append the owner's: a link overwritten there stops the
 * walk instead of following it. */
START_TEST(collecting_an_overwritten_remote_link_aborts) {
  na_page_t *page = page_make(1);
  na_page_refill(page);
  na_block_t *a = pop(page), *b = pop(page), *c = pop(page);
  free_to_local(page, a);
  free_from_other_thread(page, b);
  free_from_other_thread(page, c); /* c links to b */
  memset(c, 0x41, sizeof(uint64_t));
  unit_silence_stderr();
  na_page_collect_remote(page);
}
END_TEST

/* A sparse one-slice page gives back the OS pages that hold only free blocks. Their blocks
 * leave the lists (linking them would touch the pages again), still count as free, and come
 * back, each once, when the page has nothing else to hand out. */
START_TEST(sparse_page_purges_free_os_pages) {
  na_page_t *page = page_make(3); /* 64-byte blocks: 64 per OS page */
  ck_assert_uint_eq(page->block_size, 64);
  size_t per_os_page = NA_PAGE_SIZE / 64;
  void *blocks[NA_SLICE_SIZE / 64];
  size_t total = take_all(page, blocks);
  ck_assert_uint_eq(total, page->reserved);
  for (size_t i = 0; i < total; i++) memset(blocks[i], 0xab, 64);
  /* OS pages 2..5 lose every block; the others keep their first block */
  for (size_t i = 0; i < total; i++) {
    size_t os_page = i / per_os_page;
    bool keep = (os_page < 2 || os_page > 5) && i % per_os_page == 0;
    if (keep) continue;
    free_to_local(page, blocks[i]);
  }
  size_t live = page->used;
  ck_assert_uint_eq(live, NA_SLICE_SIZE / NA_PAGE_SIZE - 4);
  char *start = na_page_start(page);
  ck_assert_int_eq(unit_resident_pages(start + 2 * NA_PAGE_SIZE, 4 * NA_PAGE_SIZE), 4);
  ck_assert_uint_eq(purge_free_now(page), 4 * NA_PAGE_SIZE);
  ck_assert_int_eq(unit_resident_pages(start + 2 * NA_PAGE_SIZE, 4 * NA_PAGE_SIZE), 0);
  ck_assert_uint_eq(page->purged, 0x3c);
  ck_assert(page->flags.bits.has_purged); /* frees into the page leave the fast path */
  ck_assert_ptr_null(page->local_free);
  ck_assert_uint_eq(list_length(page, page->free), total - live - 4 * per_os_page);
  ck_assert(na_page_block_is_unlinked(page, blocks[2 * per_os_page]));
  ck_assert(na_page_block_is_free(page, blocks[5 * per_os_page + 7]));
  ck_assert(!na_page_block_is_unlinked(page, blocks[1]));
  ck_assert(!na_page_block_is_free(page, blocks[0]));
  ck_assert_uint_eq(purge_free_now(page), 0); /* nothing more to give back */
  /* hand out every free block: the listed ones first, then the purged ones, each once */
  size_t handed = 0;
  for (;;) {
    na_page_refill(page);
    if (page->free == NULL) break;
    char *b = pop(page);
    UNIT_REQUIRE(b[8] == (char)0xab || b[8] == 0, "block %p holds foreign data", (void *)b);
    b[8] = 0x55; /* a block handed out twice would show it */
    memset(b + 16, 0, 48);
    handed++;
  }
  ck_assert_uint_eq(handed, total - live);
  ck_assert_uint_eq(page->used, total);
  ck_assert_uint_eq(page->purged, 0);
  ck_assert(!page->flags.bits.has_purged);
  na_arena_free_span(page);
}
END_TEST

/* A page of several slices holds a few big blocks: each free block gives back the OS pages
 * that only it covers, leaves the lists, and comes back once; the check for blocks left idle
 * gives back only the blocks that were free at its previous call too. */
START_TEST(big_block_page_purges_free_blocks) {
  int size_class = na_size_class(10 * 1024); /* 10 KiB: blocks straddle OS pages */
  ck_assert_uint_gt(na_class_page_slices(size_class), 1);
  na_page_t *page = page_make(size_class);
  size_t size = page->block_size;
  void *blocks[16];
  size_t total = take_all(page, blocks);
  ck_assert_uint_eq(total, page->reserved);
  ck_assert_uint_le(total, 16);
  for (size_t i = 0; i < total; i++) memset(blocks[i], 0xab, size);
  free_to_local(page, blocks[1]);
  free_to_local(page, blocks[2]);
  free_to_local(page, blocks[5]);
  /* blocks 1 and 2 are adjacent: one range, from the first OS page boundary in block 1 to the
   * last one in block 2; block 5 alone */
  size_t lo12 = na_align_up(1 * size, NA_PAGE_SIZE), hi12 = 3 * size / NA_PAGE_SIZE * NA_PAGE_SIZE;
  size_t lo5 = na_align_up(5 * size, NA_PAGE_SIZE), hi5 = 6 * size / NA_PAGE_SIZE * NA_PAGE_SIZE;
  char *start = na_page_start(page);
  ck_assert_int_eq(unit_resident_pages(start + lo5, hi5 - lo5), (int)((hi5 - lo5) / NA_PAGE_SIZE));
  ck_assert_uint_eq(purge_idle_now(page), 0); /* first check: only noted */
  ck_assert_uint_eq(page->purged, 0);
  char *again = pop_after_refill(page); /* one of them is used again before the next check */
  ck_assert_ptr_eq(again, blocks[5]);   /* the block freed last comes first */
  size_t purged = purge_idle_now(page);
  ck_assert_uint_eq(page->purged, (1u << 1) | (1u << 2));
  ck_assert_uint_eq(purged, na_page_purged_bytes(page));
  ck_assert_uint_ge(purged, hi12 - lo12 - NA_PAGE_SIZE);
  ck_assert_int_eq(unit_resident_pages(start + lo12, hi12 - lo12), 0);
  ck_assert(page->flags.bits.has_purged);
  ck_assert(na_page_block_is_unlinked(page, blocks[2]));
  ck_assert(!na_page_block_is_unlinked(page, blocks[5]));
  ck_assert(!na_page_block_is_unlinked(page, blocks[3]));
  ck_assert_uint_lt(na_page_touched_bytes(page), (uint64_t)total * size);
  /* the rest, purged at once, then everything handed out again, each block once */
  free_to_local(page, again);
  ck_assert_uint_gt(purge_free_now(page), 0);
  ck_assert_uint_eq(page->purged, (1u << 1) | (1u << 2) | (1u << 5));
  size_t handed = 0;
  for (;;) {
    na_page_refill(page);
    if (page->free == NULL) break;
    char *b = pop(page);
    UNIT_REQUIRE(b[size - 1] == (char)0xab || b[size - 1] == 0, "block %p holds foreign data",
                 (void *)b);
    b[size - 1] = 0x55; /* a block handed out twice would show it */
    handed++;
  }
  ck_assert_uint_eq(handed, 3);
  ck_assert_uint_eq(page->used, total);
  ck_assert_uint_eq(page->purged, 0);
  na_arena_free_span(page);
}
END_TEST

/* The owner word carries whether a flag that bars the fast free is set: the owner's free
 * compares only the word, so such a flag set without it would let frees into a purged page
 * skip the slow path. A full page is not flagged: its sparse check sends the owner's free onto
 * its list to the heap instead, and a full page without it is named. */
START_TEST(the_owner_word_says_when_a_flag_is_set) {
  na_page_t *page = page_make(3);
  na_page_set_owner(page, na_thread_id());
  ck_assert_uint_eq(page->owner, na_thread_id());
  ck_assert_ptr_null(na_check_page(page));
  page->flags.bits.has_purged = 1;
  ck_assert_ptr_nonnull(strstr(na_check_page(page), "flagged bit disagrees"));
  na_page_flags_changed(page);
  ck_assert_ptr_null(na_check_page(page));
  ck_assert_uint_eq(page->owner, na_thread_id() | NA_OWNER_FLAGGED);
  ck_assert_uint_eq(na_page_owner(page), na_thread_id());
  page->flags.value = 0;
  na_page_flags_changed(page);
  ck_assert_uint_eq(page->owner, na_thread_id());
  na_page_arm_sparse(page); /* as at the refill before the page filled */
  uint16_t armed = page->sparse_below;
  page->flags.bits.in_full = 1;
  ck_assert_ptr_nonnull(strstr(na_check_page(page), "would not bring it back"));
  page->sparse_below = na_sparse_full(page);
  ck_assert_ptr_null(na_check_page(page));
  na_page_flags_changed(page);
  ck_assert_uint_eq(page->owner, na_thread_id()); /* full is not a flag the word carries */
  na_page_reset_flags(page);                      /* changing hands: the sparse check comes back */
  ck_assert(!page->flags.bits.in_full);
  ck_assert_uint_eq(page->sparse_below, armed);
  page->flags.bits.has_purged = 1;
  na_page_set_owner(page, 0); /* no thread's: nothing to compare, whatever the flags */
  ck_assert_uint_eq(page->owner, 0);
  ck_assert_uint_eq(na_page_owner(page), 0);
}
END_TEST

/* Freeing a block that sits unlinked in a purged OS page is a double free. */
START_TEST(double_free_of_a_purged_block_aborts) {
  na_page_t *page = page_make(3);
  void *blocks[NA_SLICE_SIZE / 64];
  size_t total = take_all(page, blocks);
  page->heap = NULL; /* not on a heap: the free below must not retire it */
  na_page_set_owner(page, na_thread_id());
  for (size_t i = 1; i < total; i++) {
    free_to_local(page, blocks[i]);
  }
  ck_assert_uint_gt(purge_free_now(page), 0);
  unit_silence_stderr();
  na_free_generic(na_segment_of_aligned(page), page, blocks[total - 1]);
}
END_TEST

/* NUMALLOC_FALLBACK=none commits and checks a page's memory when the span is handed out; a
 * purged OS page would be placed anew at its next touch, so strict pages are never purged. */
START_TEST(strict_placement_never_purges_blocks) {
  na_page_t *page = page_make(3);
  void *blocks[NA_SLICE_SIZE / 64];
  size_t total = take_all(page, blocks);
  for (size_t i = 1; i < total; i++) {
    free_to_local(page, blocks[i]);
  }
  int fallback = na_options.fallback;
  na_options.fallback = NA_FALLBACK_NONE;
  size_t purged = purge_free_now(page);
  na_options.fallback = fallback;
  ck_assert_uint_eq(purged, 0);
  ck_assert_uint_eq(page->purged, 0);
  ck_assert_uint_gt(purge_free_now(page), 0); /* the same page, not strict */
  na_arena_free_span(page);
}
END_TEST

/* A page in a segment of huge pages keeps its free OS pages: giving back a few would break
 * a huge page for good and free nothing until the kernel splits it. Its frees do not even
 * report it sparse. */
START_TEST(huge_page_segments_keep_their_free_os_pages) {
  na_page_t *page = page_make(3);
  void *blocks[NA_SLICE_SIZE / 64];
  size_t total = take_all(page, blocks);
  for (size_t i = 1; i < total; i++) free_to_local(page, blocks[i]);
  na_segment_t *segment = na_segment_of_aligned(page);
  bool huge = segment->huge_pages;
  segment->huge_pages = true;
  ck_assert_uint_eq(purge_free_now(page), 0);
  ck_assert_uint_eq(page->purged, 0);
  na_page_refill(page);
  ck_assert_uint_eq(page->sparse_below, 1); /* only an empty page calls its heap */
  segment->huge_pages = false;
  ck_assert_uint_gt(purge_free_now(page), 0); /* the same page, small OS pages */
  segment->huge_pages = huge;
  na_arena_free_span(page);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("page");
  TCase *tc = unit_tcase(s, "page", 10);
  tcase_add_checked_fixture(tc, setup, NULL);
  int n = (int)(sizeof classes / sizeof classes[0]);
  tcase_add_loop_test(tc, init_describes_the_page, 0, n);
  tcase_add_loop_test(tc, refill_carves_every_block_once, 0, n);
  tcase_add_test(tc, free_lists_are_encoded);
  tcase_add_test(tc, local_frees_come_back_on_refill);
  tcase_add_test(tc, counting_a_page_needs_no_walk_of_its_free_list);
  tcase_add_test(tc, remote_frees_are_collected);
  tcase_add_test(tc, full_page_notifies_its_heap);
  tcase_add_test(tc, interior_pointers_find_their_block);
  tcase_add_test_raise_signal(tc, looping_remote_list_aborts, SIGABRT);
  tcase_add_test(tc, the_quick_pop_refuses_an_overwritten_link);
  tcase_add_test_raise_signal(tc, popping_an_overwritten_link_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, collecting_an_overwritten_remote_link_aborts, SIGABRT);
  tcase_add_test(tc, sparse_page_purges_free_os_pages);
  tcase_add_test(tc, big_block_page_purges_free_blocks);
  tcase_add_test(tc, strict_placement_never_purges_blocks);
  tcase_add_test(tc, huge_page_segments_keep_their_free_os_pages);
  tcase_add_test(tc, the_owner_word_says_when_a_flag_is_set);
  tcase_add_test_raise_signal(tc, double_free_of_a_purged_block_aborts, SIGABRT);
  return unit_run(s, argv);
}
