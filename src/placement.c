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

/* Up to 64 pages spread evenly over the range: enough to see which node a block's pages are
 * on, and one system call. */
int na_placement_touched_node(const void *addr, size_t size) {
  enum { SAMPLES = 64 };
  void *pages[SAMPLES];
  int nodes[SAMPLES];
  size_t page_count = size / NA_PAGE_SIZE;
  size_t n = page_count < SAMPLES ? page_count : SAMPLES;
  if (n == 0) return NA_TOUCHED_NONE;
  for (size_t i = 0; i < n; i++) pages[i] = (char *)addr + (i * page_count / n) * NA_PAGE_SIZE;
  if (!na_access_page_nodes(pages, nodes, n)) return NA_TOUCHED_MIXED;
  int found = NA_TOUCHED_NONE;
  for (size_t i = 0; i < n; i++) {
    if (nodes[i] < 0) continue; /* not resident */
    if (found != NA_TOUCHED_NONE && nodes[i] != found) return NA_TOUCHED_MIXED;
    found = nodes[i];
  }
  return found;
}
