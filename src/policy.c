/* policy.c: which node an allocation goes to. `local` follows the CPU the thread runs on
 * (read from the rseq area, no system call), `rr` takes the allowed nodes in turn,
 * `interleave` spreads spans and pages over them, `bind` is a thread's explicit choice.
 * Decided off the fast path: when a thread's page runs out, or on every call for rr. */
#include "internal.h"

int na_policy_current_node(void) {
  if (na_topology.usable_count == 1) return na_topology.usable_list[0]; /* nothing to ask */
  int node = na_topology_cpu_node(na_os_current_cpu());
  return na_topology.nearest_usable[node];
}

#define SCHEDULE_MAX 256
static int8_t spread_schedule[SCHEDULE_MAX];
static uint32_t spread_length = 1; /* never 0: readers divide by it while it is rebuilt */

static int weight_of(int node) {
  if (!na_options.weights_from_kernel) return na_options.weights[node];
  int weight = na_topology.kernel_weight[node];
  return weight > 0 ? weight : 1; /* a kernel without the table: evenly */
}

/* Weighted: node n appears weight[n] times, the turns mixed (0,1,0,0 rather than 0,0,0,1)
 * so that consecutive spans already come close to the proportions. Returns the length, 0
 * when no usable node has a weight. */
static uint32_t build_weighted_schedule(int8_t *schedule) {
  int credit[NA_MAX_NODES] = {0}, total = 0;
  for (int i = 0; i < na_topology.usable_count; i++) total += weight_of(na_topology.usable_list[i]);
  if (total == 0) {
    na_warning("NUMALLOC_POLICY=weighted gives no usable node a weight; spreading evenly");
    return 0;
  }
  uint32_t length = 0;
  for (; length < (uint32_t)total && length < SCHEDULE_MAX; length++) {
    int best = -1;
    for (int i = 0; i < na_topology.usable_count; i++) {
      int n = na_topology.usable_list[i];
      credit[n] += weight_of(n);
      if (best < 0 || credit[n] > credit[best]) best = n;
    }
    credit[best] -= total;
    schedule[length] = (int8_t)best;
  }
  return length;
}

/* Built aside and published entry by entry, the length last and never 0, so that threads
 * taking turns while the topology is read again (numalloc_collect) always get a usable node
 * of the old or the new schedule. */
void na_policy_init(void) {
  int8_t schedule[SCHEDULE_MAX];
  uint32_t length = 0;
  if (na_options.policy == NUMALLOC_POLICY_WEIGHTED) length = build_weighted_schedule(schedule);
  if (length == 0) {
    for (int i = 0; i < na_topology.usable_count && i < SCHEDULE_MAX; i++)
      schedule[length++] = (int8_t)na_topology.usable_list[i];
    if (length == 0) schedule[length++] = 0;
  }
  if (length < na_relaxed_load(&spread_length)) na_relaxed_store(&spread_length, length);
  for (uint32_t i = 0; i < length; i++) na_relaxed_store(&spread_schedule[i], schedule[i]);
  na_relaxed_store(&spread_length, length);
}

int na_policy_spread_next(uint32_t *turn) {
  return na_relaxed_load(&spread_schedule[(*turn)++ % na_relaxed_load(&spread_length)]);
}

int na_policy_spread_next_shared(void) {
  static _Atomic uint32_t turn;
  uint32_t mine = atomic_fetch_add_explicit(&turn, 1, memory_order_relaxed);
  return na_relaxed_load(&spread_schedule[mine % na_relaxed_load(&spread_length)]);
}

bool na_policy_is_weighted(void) { return na_options.policy == NUMALLOC_POLICY_WEIGHTED; }

/* Large blocks under the local policy are left to first touch (unless NUMALLOC_LARGE_POLICY
 * says otherwise, or strict placement needs a node): the thread that allocates a big array
 * is often not the one that uses it, and the kernel's first touch places it where it is
 * used. Small blocks stay bound to the allocating thread's node. */
static bool large_by_first_touch(const struct na_tld_s *tld, size_t size) {
  return na_options.large_policy == NA_LARGE_POLICY_AS_POLICY &&
         tld->policy == NUMALLOC_POLICY_LOCAL && na_options.fallback != NA_FALLBACK_NONE &&
         size > NA_SMALL_MAX && na_topology.usable_count > 1 &&
         !na_options.nodes_set; /* the kernel would not keep to NUMALLOC_NODES */
}

int na_policy_large_arena(struct na_tld_s *tld, size_t size, int arena_index) {
  if (size < (size_t)na_options.large_threshold) return arena_index;
  if (large_by_first_touch(tld, size)) return NA_TOUCH_ARENA;
  if (na_options.large_policy == NA_LARGE_POLICY_AS_POLICY) return arena_index;
  int saved = tld->policy;
  tld->policy = na_options.large_policy;
  int arena = na_policy_arena(tld);
  tld->policy = saved;
  return arena;
}

int na_policy_arena(struct na_tld_s *tld) {
  switch (tld->policy) {
  case NUMALLOC_POLICY_INTERLEAVE:
  case NUMALLOC_POLICY_WEIGHTED:
    return na_topology.usable_count > 1 ? NA_INTERLEAVE_ARENA : na_topology.usable_list[0];
  case NUMALLOC_POLICY_RR:
    return na_topology.usable_list[tld->rr_turn++ % (uint32_t)na_topology.usable_count];
  case NUMALLOC_POLICY_BIND: return tld->bound_node;
  case NUMALLOC_POLICY_SYSTEM: return -1;
  default: return na_policy_current_node();
  }
}

numalloc_policy_t numalloc_policy(void) {
  na_ensure_init();
  return (numalloc_policy_t)na_options.policy;
}

const char *numalloc_policy_name(numalloc_policy_t policy) {
  switch (policy) {
  case NUMALLOC_POLICY_LOCAL: return "local";
  case NUMALLOC_POLICY_INTERLEAVE: return "interleave";
  case NUMALLOC_POLICY_RR: return "rr";
  case NUMALLOC_POLICY_BIND: return "bind";
  case NUMALLOC_POLICY_WEIGHTED: return "weighted";
  case NUMALLOC_POLICY_SYSTEM: return "system";
  }
  return "unknown";
}
