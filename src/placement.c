/* placement.c: how fresh memory is put on nodes before anything touches it, the layer just
 * above the platform: a range is bound to an arena's node (preferred), to every usable node
 * (interleaved) or left to the kernel's first touch; under NUMALLOC_FALLBACK=none it is also
 * faulted in and checked page by page, so that a full node fails an allocation instead of
 * getting the process killed at a later touch. */
#include "internal.h"

#include "access.h"

void na_placement_bind(int arena_index, void *addr, size_t size) {
  uint64_t mask[1];
  na_bind_mode_t mode;
  if (arena_index == NA_TOUCH_ARENA) {
    /* First touch, as the default policy would place it, but said explicitly: it overrides a
     * process policy as every arena's binding does, and numa_maps shows it as "local", so
     * `numalloc maps` can tell numalloc's mappings from the rest. Refused, it is the same. */
    uint64_t none[1] = {0};
    na_os_bind(addr, size, NA_BIND_LOCAL, none, NA_MAX_NODES - 1);
    return;
  }
  if (arena_index == NA_INTERLEAVE_ARENA) {
    mask[0] = na_topology.usable[0];
    mode = NA_BIND_INTERLEAVE;
  } else {
    mask[0] = (uint64_t)1 << arena_index;
    mode = NA_BIND_PREFERRED; /* strict placement is checked instead: na_placement_commit */
  }
  if (!na_os_bind(addr, size, mode, mask, NA_MAX_NODES - 1)) na_access_bind_failed(arena_index);
}

void na_placement_bind_node(void *addr, size_t size, int node) {
  uint64_t mask[1] = {(uint64_t)1 << node};
  na_os_bind(addr, size, NA_BIND_PREFERRED, mask, NA_MAX_NODES - 1);
}

bool na_placement_is_strict(int arena_index) {
  return na_options.fallback == NA_FALLBACK_NONE && arena_index < NA_MAX_NODES;
}

/* NUMALLOC_FALLBACK=none without the OOM killer: a strict binding would have the kernel kill
 * the process when the node is full. So memory is bound "preferred" in every mode, and in
 * strict mode faulted in now and checked page by page: a page the kernel had to put on
 * another node means this node is full, and the allocation fails with ENOMEM instead. */
bool na_placement_commit(void *addr, size_t size, int node) {
  enum { BATCH = 256 };
  void *pages[BATCH];
  int nodes[BATCH];
  if (!na_os_populate(addr, size)) return false;
  if (na_access_check() == NA_CHECK_NONE) return true; /* cannot be checked: said at start */
  for (size_t at = 0; at < size;) {
    size_t n = 0;
    for (; n < BATCH && at < size; n++, at += NA_PAGE_SIZE) pages[n] = (char *)addr + at;
    if (!na_access_page_nodes(pages, nodes, n)) return false;
    for (size_t i = 0; i < n; i++)
      if (nodes[i] != node) return false;
  }
  return true;
}

/* Where first touch put a range's resident pages, asked of the kernel for one page per 2 MiB
 * (1 to 64, spread evenly: one system call): the node they are all on, or one of these. */
enum { TOUCHED_NONE = -1, TOUCHED_MIXED = -2 }; /* none resident; several nodes, or no answer */

static int touched_node(const void *addr, size_t size) {
  enum { SAMPLES = 64 };
  void *pages[SAMPLES];
  int nodes[SAMPLES];
  size_t page_count = size / NA_PAGE_SIZE;
  size_t n = size / NA_THP_SIZE;
  n = n < 1 ? 1 : n > SAMPLES ? SAMPLES : n;
  if (page_count < n) return TOUCHED_NONE;
  for (size_t i = 0; i < n; i++) pages[i] = (char *)addr + (i * page_count / n) * NA_PAGE_SIZE;
  if (!na_access_page_nodes(pages, nodes, n)) return TOUCHED_MIXED;
  int found = TOUCHED_NONE;
  for (size_t i = 0; i < n; i++) {
    if (nodes[i] < 0) continue; /* not resident */
    if (found != TOUCHED_NONE && nodes[i] != found) return TOUCHED_MIXED;
    found = nodes[i];
  }
  return found;
}

/* Set once a first-touch block turned out to be used on another node than its allocating
 * thread's: the process allocates blocks for threads of other nodes (a main thread its
 * workers' arrays), so the node of a block's next user cannot be told from the thread that
 * asks for it. */
static _Atomic bool touch_serves_other_nodes;

bool na_placement_touch_reusable(const void *addr, size_t size, int allocated_on, int node) {
  if (atomic_load_explicit(&touch_serves_other_nodes, memory_order_relaxed)) return false;
  int touched = touched_node(addr, size);
  if (touched == TOUCHED_NONE) return allocated_on == node;
  if (allocated_on >= 0 && touched != allocated_on) {
    atomic_store_explicit(&touch_serves_other_nodes, true, memory_order_relaxed);
    return false;
  }
  return touched == node;
}
