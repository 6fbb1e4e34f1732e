/* policy.c: which node an allocation goes to. `local` follows the CPU the thread runs on
 * (read from the rseq area, no system call), `rr` takes the allowed nodes in turn,
 * `interleave` spreads spans and pages over them, `bind` is a thread's explicit choice.
 * Decided off the fast path: when a thread's page runs out, or on every call for rr. */
#include "internal.h"

#include <errno.h>

int na_policy_current_node(void) {
  int node = na_topology_cpu_node(na_os_current_cpu());
  return na_topology.nearest_usable[node];
}

int na_policy_interleave_next(uint32_t *turn) {
  int count = na_topology.usable_count > 0 ? na_topology.usable_count : 1;
  return na_topology.usable_list[(*turn)++ % (uint32_t)count];
}

int na_policy_arena(struct na_tld_s *tld) {
  switch (tld->policy) {
  case NUMALLOC_POLICY_INTERLEAVE:
    return na_topology.usable_count > 1 ? NA_INTERLEAVE_ARENA : na_topology.usable_list[0];
  case NUMALLOC_POLICY_RR: return na_policy_interleave_next(&tld->rr_turn);
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
  case NUMALLOC_POLICY_SYSTEM: return "system";
  }
  return "unknown";
}

/* A new policy takes effect at the thread's next allocation: the heap it allocates from is
 * chosen again. */
static int thread_set(int policy, int node) {
  if (!na_ensure_init()) return -1;
  struct na_tld_s *tld = na_tld_get();
  if (tld == NULL) return -1;
  tld->policy = policy;
  tld->bound_node = node;
  na_tld_pick_heap(tld);
  return 0;
}

int numalloc_thread_set_policy(numalloc_policy_t policy) {
  if ((int)policy < NUMALLOC_POLICY_LOCAL || policy >= NUMALLOC_POLICY_SYSTEM ||
      policy == NUMALLOC_POLICY_BIND || na_options.policy == NUMALLOC_POLICY_SYSTEM) {
    errno = EINVAL;
    return -1;
  }
  return thread_set(policy, na_topology.usable_list[0]);
}

int numalloc_thread_bind(int node) {
  if (!na_ensure_init() || !na_node_bit(na_topology.usable, node) ||
      na_options.policy == NUMALLOC_POLICY_SYSTEM) {
    errno = EINVAL;
    return -1;
  }
  return thread_set(NUMALLOC_POLICY_BIND, node);
}
