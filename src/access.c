/* access.c: which NUMA system calls the kernel permits, and saying once what a refusal costs
 * (see access.h). A refusal never goes away (seccomp filters can only be added), so it is
 * remembered; a call permitted at start is asked again when it fails, in case the program
 * installed a filter of its own since. */
#include "access.h"

#include "internal.h"

#include <errno.h>

/* errno, 0 when permitted, NOT_ASKED until the first time it matters: a process that never
 * checks a page nor fails a binding never asks (six system calls at every start otherwise).
 * Written by any thread, relaxed: two that ask at once store the same answer. */
#define NOT_ASKED (-1)
static int refused[NA_CALL_COUNT] = {[0 ... NA_CALL_COUNT - 1] = NOT_ASKED};
static _Atomic bool refusal_said;
static _Atomic uint64_t failure_said; /* nodes whose failed binding was reported */
static _Atomic bool interleave_failure_said;
static _Atomic long bind_failures;

static int refusal(na_numa_call_t call) {
  int error = na_relaxed_load(&refused[call]);
  if (error == NOT_ASKED) {
    error = na_os_numa_call_error(call);
    na_relaxed_store(&refused[call], error);
  }
  return error;
}

/* Asks again whether `call` is refused and remembers it if so. */
static int probe(na_numa_call_t call) {
  int error = na_relaxed_load(&refused[call]);
  if (error == NOT_ASKED) return refusal(call);
  if (error == 0) {
    error = na_os_numa_call_error(call);
    if (error != 0) na_relaxed_store(&refused[call], error);
  }
  return error;
}

/* Placement matters when the process may use memory of more than one node: then memory
 * numalloc cannot bind may land elsewhere. Under NUMALLOC_POLICY=system nothing is bound. */
static bool placement_matters(void) {
  return na_options.policy != NUMALLOC_POLICY_SYSTEM &&
         __builtin_popcountll(na_topology.allowed[0] & na_topology.has_memory[0]) > 1;
}

static void say_bind_refused(void) {
  if (!placement_matters() || atomic_exchange(&refusal_said, true)) return;
  na_warning("mbind refused (%s): memory is not bound to NUMA nodes, the kernel places it (a "
             "container needs CAP_SYS_NICE: --cap-add SYS_NICE)",
             na_os_error_text(refusal(NA_CALL_MBIND)));
}

void na_access_init(void) {
  if (na_options.fallback == NA_FALLBACK_NONE && na_access_check() == NA_CHECK_NONE &&
      na_options.policy != NUMALLOC_POLICY_SYSTEM)
    na_warning("NUMALLOC_FALLBACK=none: move_pages and get_mempolicy refused (%s), so numalloc "
               "cannot check where pages land",
               na_os_error_text(refusal(NA_CALL_MOVE_PAGES)));
}

static size_t append(char *line, size_t at, size_t size, const char *text) {
  while (*text && at + 1 < size) line[at++] = *text++;
  line[at] = '\0';
  return at;
}

/* "permitted: mbind, set_mempolicy; refused: get_mempolicy (Operation not permitted), ..." */
void na_access_print(void) {
  char line[400];
  size_t at = 0;
  for (int pass = 0; pass < 2; pass++) {
    bool first = true;
    for (int call = 0; call < NA_CALL_COUNT; call++) {
      int error = refusal((na_numa_call_t)call);
      if ((error == 0) != (pass == 0)) continue;
      if (first)
        at = append(line, at, sizeof line,
                    pass == 0 ? "permitted: "
                    : at      ? "; refused: "
                              : "refused: ");
      else
        at = append(line, at, sizeof line, ", ");
      first = false;
      at = append(line, at, sizeof line, na_os_numa_call_name((na_numa_call_t)call));
      if (error != 0) {
        at = append(line, at, sizeof line, " (");
        at = append(line, at, sizeof line, na_os_error_text(error));
        at = append(line, at, sizeof line, ")");
      }
    }
  }
  na_info("system calls %s", line);
}

void na_access_bind_failed(int arena_index) {
  if (probe(NA_CALL_MBIND) != 0) {
    say_bind_refused();
    return;
  }
  atomic_fetch_add_explicit(&bind_failures, 1, memory_order_relaxed);
  bool said;
  if (arena_index == NA_INTERLEAVE_ARENA) {
    said = atomic_exchange(&interleave_failure_said, true);
  } else {
    uint64_t bit = (uint64_t)1 << (arena_index & (NA_MAX_NODES - 1));
    said = atomic_fetch_or(&failure_said, bit) & bit;
  }
  if (!said && placement_matters()) {
    if (arena_index == NA_INTERLEAVE_ARENA)
      na_warning("mbind of interleaved memory failed; it follows the kernel's default policy");
    else
      na_warning("mbind to node %d failed; its memory follows the kernel's default policy",
                 arena_index);
  }
  na_topology_init(); /* a node that left the cpuset is no longer used */
}

na_check_t na_access_check(void) {
  if (refusal(NA_CALL_MOVE_PAGES) == 0) return NA_CHECK_MOVE_PAGES;
  if (refusal(NA_CALL_GET_MEMPOLICY) == 0) return NA_CHECK_GET_MEMPOLICY;
  return NA_CHECK_NONE;
}

bool na_access_page_nodes(void *const *pages, int *nodes, size_t count) {
  if (refusal(NA_CALL_MOVE_PAGES) == 0) {
    if (na_os_page_nodes(pages, nodes, count)) return true;
    if (probe(NA_CALL_MOVE_PAGES) == 0) return false; /* permitted: the answer is no */
  }
  if (refusal(NA_CALL_GET_MEMPOLICY) == 0) {
    if (na_os_page_nodes_by_policy(pages, nodes, count)) return true;
    probe(NA_CALL_GET_MEMPOLICY);
  }
  return false;
}

void na_access_report(na_access_report_t *out) {
  for (int call = 0; call < NA_CALL_COUNT; call++)
    out->refused[call] = refusal((na_numa_call_t)call);
  out->bind_failures = atomic_load_explicit(&bind_failures, memory_order_relaxed);
  out->bind_enforced = out->refused[NA_CALL_MBIND] == 0 && out->bind_failures == 0;
  out->check = na_access_check();
}
