/* check_policy.c: where allocations go (policy.c). Names, per-thread policies and binding
 * with their EINVAL cases, rr seeing every allocation, policies that stay per thread, the
 * arena each policy picks on a synthetic topology, and NUMALLOC_POLICY=system passing every
 * call to the next allocator (here glibc, installed as it would be by the preload). */
#include "unit.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

START_TEST(names) {
  ck_assert_str_eq(numalloc_policy_name(NUMALLOC_POLICY_LOCAL), "local");
  ck_assert_str_eq(numalloc_policy_name(NUMALLOC_POLICY_INTERLEAVE), "interleave");
  ck_assert_str_eq(numalloc_policy_name(NUMALLOC_POLICY_RR), "rr");
  ck_assert_str_eq(numalloc_policy_name(NUMALLOC_POLICY_BIND), "bind");
  ck_assert_str_eq(numalloc_policy_name(NUMALLOC_POLICY_WEIGHTED), "weighted");
  ck_assert_str_eq(numalloc_policy_name(NUMALLOC_POLICY_SYSTEM), "system");
  ck_assert_str_eq(numalloc_policy_name((numalloc_policy_t)99), "unknown");
  ck_assert_int_eq(numalloc_policy(), NUMALLOC_POLICY_LOCAL);
}
END_TEST

static void allocate_some(int expect_node) {
  const size_t sizes[] = {16, 100, 5000, 300000, 20 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = numalloc_malloc(sizes[i]);
    ck_assert_ptr_nonnull(p);
    if (expect_node >= 0) ck_assert_int_eq(numalloc_node_of(p), expect_node);
    memset(p, 1, sizes[i]);
    numalloc_free(p);
  }
}

START_TEST(thread_policies) {
  int home = na_topology.usable_list[0];
  errno = 0;
  ck_assert_int_eq(numalloc_thread_set_policy(NUMALLOC_POLICY_BIND), -1);
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_int_eq(numalloc_thread_set_policy(NUMALLOC_POLICY_SYSTEM), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(numalloc_thread_set_policy((numalloc_policy_t)-1), -1);
  ck_assert_int_eq(numalloc_thread_set_policy((numalloc_policy_t)99), -1);

  ck_assert_int_eq(numalloc_thread_set_policy(NUMALLOC_POLICY_INTERLEAVE), 0);
  ck_assert_int_eq(na_tld_peek()->policy, NUMALLOC_POLICY_INTERLEAVE);
  allocate_some(na_topology.usable_count > 1 ? -1 : home);

  ck_assert_int_eq(numalloc_thread_set_policy(NUMALLOC_POLICY_RR), 0);
  allocate_some(na_topology.usable_count > 1 ? -1 : home);
  ck_assert_ptr_eq(na_tls_heap, &na_heap_empty); /* rr sees every allocation */

  ck_assert_int_eq(numalloc_thread_set_policy(NUMALLOC_POLICY_LOCAL), 0);
  allocate_some(-1);
  ck_assert_ptr_ne(na_tls_heap, &na_heap_empty);
  ck_assert_int_eq(numalloc_policy(), NUMALLOC_POLICY_LOCAL); /* the process default stays */
}
END_TEST

START_TEST(thread_bind) {
  const int bad[] = {-1, NA_MAX_NODES, 1000, na_topology.node_count};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (na_node_bit(na_topology.usable, bad[i])) continue;
    errno = 0;
    ck_assert_int_eq(numalloc_thread_bind(bad[i]), -1);
    ck_assert_int_eq(errno, EINVAL);
  }
  for (int i = 0; i < na_topology.usable_count; i++) {
    int node = na_topology.usable_list[i];
    ck_assert_int_eq(numalloc_thread_bind(node), 0);
    ck_assert_int_eq(na_tld_peek()->policy, NUMALLOC_POLICY_BIND);
    allocate_some(node);
  }
}
END_TEST

static void *report_policy(void *arg) {
  int *out = arg;
  numalloc_free(numalloc_malloc(10));
  *out = na_tld_peek()->policy;
  return NULL;
}

START_TEST(policies_are_per_thread) {
  ck_assert_int_eq(numalloc_thread_set_policy(NUMALLOC_POLICY_RR), 0);
  int other = -1;
  unit_run_threads(1, report_policy, &other, 0);
  ck_assert_int_eq(other, NUMALLOC_POLICY_LOCAL);
  ck_assert_int_eq(na_tld_peek()->policy, NUMALLOC_POLICY_RR);
}
END_TEST

/* On a patched four-node topology with nodes 0, 2 and 3 usable (no allocation follows). */
START_TEST(arena_per_policy) {
  na_topology.node_count = 4;
  na_topology.usable[0] = 0xd;
  na_topology.usable_count = 3;
  na_topology.usable_list[0] = 0;
  na_topology.usable_list[1] = 2;
  na_topology.usable_list[2] = 3;
  na_policy_init();
  na_tld_t tld;
  memset(&tld, 0, sizeof tld);
  tld.policy = NUMALLOC_POLICY_RR;
  int seen[6];
  for (int i = 0; i < 6; i++) seen[i] = na_policy_arena(&tld);
  const int rr[6] = {0, 2, 3, 0, 2, 3};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(seen[i], rr[i]);
  tld.policy = NUMALLOC_POLICY_INTERLEAVE;
  ck_assert_int_eq(na_policy_arena(&tld), NA_INTERLEAVE_ARENA);
  uint32_t turn = 0;
  for (int i = 0; i < 6; i++) ck_assert_int_eq(na_policy_spread_next(&turn), rr[i]);
  tld.policy = NUMALLOC_POLICY_BIND;
  tld.bound_node = 2;
  ck_assert_int_eq(na_policy_arena(&tld), 2);
  tld.policy = NUMALLOC_POLICY_SYSTEM;
  ck_assert_int_eq(na_policy_arena(&tld), -1);
  tld.policy = NUMALLOC_POLICY_LOCAL;
  int local = na_policy_arena(&tld);
  ck_assert(na_node_bit(na_topology.usable, local));
}
END_TEST

/* weighted:0=3,2=1: node 0 three times as often as node 2, mixed rather than in runs. */
START_TEST(weighted_schedule) {
  na_topology.node_count = 3;
  na_topology.usable[0] = 0x5;
  na_topology.usable_count = 2;
  na_topology.usable_list[0] = 0;
  na_topology.usable_list[1] = 2;
  int policy;
  ck_assert(na_parse_policy("weighted:0=3,2=1", &policy));
  na_options.policy = policy;
  na_policy_init();
  uint32_t turn = 0;
  int count[3] = {0};
  int longest = 0, run = 0, last = -1;
  for (int i = 0; i < 400; i++) {
    int n = na_policy_spread_next(&turn);
    ck_assert(n == 0 || n == 2);
    count[n]++;
    run = n == last ? run + 1 : 1;
    last = n;
    if (run > longest) longest = run;
  }
  ck_assert_int_eq(count[0], 300);
  ck_assert_int_eq(count[2], 100);
  ck_assert_int_le(longest, 3);
}
END_TEST

/* The interleave arena: its blocks report node -2 (interleaved), or a usable node where its
 * small pages are taken from the nodes' arenas in turn (weighted); once the thread is gone
 * and idle memory collected, nothing of it is left. */
static void *use_interleave_arena(void *arg) {
  (void)arg;
  char *large = na_alloc_generic(NA_MiB, 16, false, NA_INTERLEAVE_ARENA);
  ck_assert_ptr_nonnull(large);
  ck_assert_int_eq(numalloc_node_of(large), NA_NODE_INTERLEAVED);
  ck_assert_uint_ge(na_arena_mapped_bytes(NA_INTERLEAVE_ARENA), NA_SEGMENT_SIZE);
  memset(large, 1, NA_MiB);
  char *small = na_alloc_generic(64, 16, true, NA_INTERLEAVE_ARENA);
  ck_assert_ptr_nonnull(small);
  int small_node = numalloc_node_of(small);
  ck_assert(small_node == NA_NODE_INTERLEAVED || na_node_bit(na_topology.usable, small_node));
  ck_assert_uint_eq(tu_nonzero(small, 64), SIZE_MAX);
  numalloc_free(large);
  numalloc_free(small);
  return NULL;
}

START_TEST(interleave_arena_blocks) {
  unit_quiet_purge();
  unit_run_threads(1, use_interleave_arena, NULL, 0);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(NA_INTERLEAVE_ARENA), 0);
}
END_TEST

/* ---- NUMALLOC_POLICY=system ----------------------------------------------------------- */

static void use_glibc(void) {
  na_system_allocator_t glibc = {malloc, free, calloc, realloc, posix_memalign, malloc_usable_size};
  na_set_system_allocator(&glibc);
  na_options.policy = NUMALLOC_POLICY_SYSTEM;
}

/* Under local in a process that can use several nodes, large blocks come from the
 * first-touch arena: never bound, reported on the node the kernel put their first page. A
 * span whose pages are on this thread's node, allocated here, is reused as it is. One used
 * away from its allocating thread's node goes back to the OS before reuse, so the next touch
 * places it anew, and so does every span from then on: the process allocates for threads of
 * other nodes. (One node here: a second usable node is pretended, and "allocated on node 1"
 * is written into the free span.) */
START_TEST(large_blocks_left_to_first_touch) {
  unit_quiet_purge();
  int usable = na_topology.usable_count;
  na_topology.usable_count = 2;
  size_t size = 2 * NA_MiB;
  char *small = numalloc_malloc(100);
  char *p = numalloc_malloc(size);
  ck_assert_int_eq(na_segment_lookup(p)->arena_index, NA_TOUCH_ARENA);
  ck_assert_int_ne(na_segment_lookup(small)->arena_index, NA_TOUCH_ARENA);
  ck_assert_int_eq(numalloc_node_of(p), NUMALLOC_NODE_UNKNOWN); /* nothing touched yet */
  memset(p, 1, size);
  ck_assert_int_eq(numalloc_node_of(p), 0);
  ck_assert_int_eq(numalloc_node_of(p + size - 1), 0);
  numalloc_free(p);
  char *q = numalloc_malloc(size); /* used on this node: reused resident */
  ck_assert_ptr_eq(q, p);
  ck_assert_int_eq(unit_resident_pages(q, size), (int)(size / NA_PAGE_SIZE));
  numalloc_free(q);
  na_segment_t *segment = na_segment_lookup(p);
  na_page_t *span = na_page_of(segment, p);
  ck_assert_int_eq(span->kind, NA_SPAN_FREE);
  ck_assert_int_eq(span->used_on, 0);
  span->used_on = 1;
  int64_t calls = unit_purge_calls();
  q = numalloc_malloc(size); /* pages on node 0, allocated on 1: given back before the touch */
  ck_assert_ptr_eq(q, p);
  ck_assert_int_eq(unit_resident_pages(q, size), 0);
  ck_assert_int_eq(unit_purge_calls(), calls + 1);
  ck_assert_uint_eq(tu_nonzero(q, size), SIZE_MAX);
  memset(q, 1, size);
  numalloc_free(q);
  q = numalloc_malloc(size); /* allocated and used here, given back all the same */
  ck_assert_ptr_eq(q, p);
  ck_assert_int_eq(unit_resident_pages(q, size), 0);
  ck_assert_int_eq(unit_purge_calls(), calls + 2);
  numalloc_free(q);
  na_options.large_policy = NUMALLOC_POLICY_LOCAL; /* asked for: bound to the thread's node */
  char *bound = numalloc_malloc(size);
  ck_assert_int_eq(na_segment_lookup(bound)->arena_index, unit_home_node());
  numalloc_free(bound);
  na_options.large_policy = -1;
  na_topology.usable_count = usable;
  numalloc_free(small);
}
END_TEST

START_TEST(system_policy_passes_everything_through) {
  use_glibc();
  const size_t sizes[] = {10, 5000, 300000, 20 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = numalloc_malloc(sizes[i]);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(numalloc_node_of(p), -1);
    ck_assert_ptr_null(na_segment_lookup(p));
    ck_assert_uint_eq(numalloc_usable_size(p), malloc_usable_size(p));
    tu_fill(p, sizes[i], 8);
    p = numalloc_realloc(p, sizes[i] * 2);
    ck_assert_int_eq(numalloc_node_of(p), -1);
    ck_assert_uint_eq(tu_mismatch(p, sizes[i], 8), SIZE_MAX);
    numalloc_free(p);
    char *z = numalloc_calloc(1, sizes[i]);
    ck_assert_int_eq(numalloc_node_of(z), -1);
    ck_assert_uint_eq(tu_nonzero(z, sizes[i]), SIZE_MAX);
    numalloc_free(z);
    void *a = NULL;
    ck_assert_int_eq(numalloc_posix_memalign(&a, 4096, sizes[i]), 0);
    ck_assert_uint_eq((uintptr_t)a % 4096, 0);
    ck_assert_int_eq(numalloc_node_of(a), -1);
    numalloc_free(a);
  }
  ck_assert_uint_eq(na_arena_mapped_bytes(unit_home_node()), 0); /* nothing of ours */
  errno = 0;
  ck_assert_int_eq(numalloc_thread_set_policy(NUMALLOC_POLICY_LOCAL), -1);
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_int_eq(numalloc_thread_bind(unit_home_node()), -1);
  ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(system_policy_without_a_system_allocator_fails) {
  na_options.policy = NUMALLOC_POLICY_SYSTEM;
  errno = 0;
  ck_assert_ptr_null(numalloc_malloc(100));
  ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("policy");
  TCase *tc = unit_tcase(s, "policy", 10);
  tcase_add_test(tc, names);
  tcase_add_test(tc, thread_policies);
  tcase_add_test(tc, thread_bind);
  tcase_add_test(tc, policies_are_per_thread);
  tcase_add_test(tc, arena_per_policy);
  tcase_add_test(tc, weighted_schedule);
  tcase_add_test(tc, interleave_arena_blocks);
  tcase_add_test(tc, large_blocks_left_to_first_touch);
  tcase_add_test(tc, system_policy_passes_everything_through);
  tcase_add_test(tc, system_policy_without_a_system_allocator_fails);
  return unit_run(s, argv);
}
