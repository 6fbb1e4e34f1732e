/* check_stats.c: statistics (stats.c). The report is text or JSON and nothing else; the
 * counters it shows include live threads and threads that exited; mapped and live bytes
 * follow the arenas. */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The report as a string (a static buffer). */
static const char *report(const char *format) {
  static char text[65536];
  FILE *f = fmemopen(text, sizeof text, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(numalloc_stats_print(f, format), 0);
  fclose(f);
  return text;
}

/* A numeric field of node `node` in the JSON report. */
static double json_field(const char *json, int node, const char *field) {
  char key[32], name[64];
  snprintf(key, sizeof key, "\"node%d\": {", node);
  const char *at = strstr(json, key);
  ck_assert_msg(at != NULL, "no %s in %s", key, json);
  const char *end = strchr(at, '}');
  snprintf(name, sizeof name, "\"%s\": ", field);
  const char *f = strstr(at, name);
  ck_assert_msg(f != NULL && f < end, "no %s for node %d", field, node);
  return strtod(f + strlen(name), NULL);
}

START_TEST(formats) {
  const char *text = report("text");
  ck_assert_ptr_nonnull(strstr(text, "numalloc: policy local"));
  ck_assert_str_eq(report(NULL), text); /* text by default */
  const char *json = report("json");
  ck_assert_int_eq(json[0], '{');
  int depth = 0;
  for (const char *c = json; *c; c++) {
    depth += (*c == '{' || *c == '[') - (*c == '}' || *c == ']');
    ck_assert_int_ge(depth, 0);
  }
  ck_assert_int_eq(depth, 0);
  ck_assert_ptr_nonnull(strstr(json, "\"policy\": \"local\""));
  errno = 0;
  ck_assert_int_eq(numalloc_stats_print(stdout, "xml"), -1);
  ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static void *kept[500];

static void *allocate_and_exit(void *arg) {
  (void)arg;
  for (int i = 0; i < 500; i++) kept[i] = numalloc_malloc(64); /* left live: counted anyway */
  numalloc_free(numalloc_malloc(2 * NA_MiB));
  return NULL;
}

START_TEST(counts_live_and_exited_threads) {
  int node = unit_home_node();
  const char *json = report("json");
  double before = json_field(json, node, "alloc_count");
  static void *blocks[1000];
  for (int i = 0; i < 1000; i++) blocks[i] = numalloc_malloc(100);
  void *large = numalloc_malloc(3 * NA_MiB);
  json = report("json");
  ck_assert_double_ge(json_field(json, node, "alloc_count"), before + 1001);
  ck_assert_double_ge(json_field(json, node, "allocated_mb"), 3.0);
  ck_assert_double_ge(json_field(json, node, "live_mb"), 3.0);
  ck_assert_double_eq_tol(json_field(json, node, "mapped_mb"),
                          (double)na_arena_mapped_bytes(node) / NA_MiB, 0.06);
  double now = json_field(json, node, "alloc_count");
  unit_run_threads(1, allocate_and_exit, NULL, 0);
  json = report("json");
  ck_assert_double_ge(json_field(json, node, "alloc_count"), now + 501);
  numalloc_free(large);
  for (int i = 0; i < 1000; i++) numalloc_free(blocks[i]);
}
END_TEST

/* An exiting thread adds what it counted into the totals once, and the next thread of its
 * record starts from zero: the merge clears the rows the thread wrote, and no other row of
 * the record was ever written. */
typedef struct counted_s {
  na_tld_t *record;
  int node;
} counted_t;

static void *allocate_a_thousand(void *arg) {
  counted_t *counted = arg;
  for (int i = 0; i < 1000; i++) numalloc_free(numalloc_malloc(48));
  counted->record = na_tld_peek();
  counted->node = unit_home_node();
  return NULL;
}

START_TEST(an_exited_thread_counts_once_and_leaves_its_record_clear) {
  counted_t first = {0}, second = {0};
  unit_run_threads(1, allocate_a_thousand, &first, 0);
  double after_first = json_field(report("json"), first.node, "alloc_count");
  ck_assert_double_ge(after_first, 1000);
  ck_assert(first.record->stats_used[0] == 0 && first.record->stats_used[1] == 0);
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    ck_assert_int_eq(first.record->stats[i].alloc_count, 0);
    ck_assert_int_eq(first.record->stats[i].local_count, 0);
  }
  unit_run_threads(1, allocate_a_thousand, &second, 0);
  ck_assert_ptr_eq(second.record, first.record);
  ck_assert_int_eq(second.node, first.node);
  ck_assert_double_eq(json_field(report("json"), second.node, "alloc_count"), after_first + 1000);
}
END_TEST

/* Blocks freed and allocated again count once per allocation: the owner's frees come back
 * through local_free at each refill, and each trip is counted. */
START_TEST(counts_every_reuse_of_a_block) {
  int node = unit_home_node();
  void *warm = numalloc_malloc(48); /* the page exists before counting starts */
  double before = json_field(report("json"), node, "alloc_count");
  for (int i = 0; i < 5000; i++) numalloc_free(numalloc_malloc(48));
  ck_assert_double_eq(json_field(report("json"), node, "alloc_count"), before + 5000);
  numalloc_free(warm);
}
END_TEST

/* Blocks another thread freed stop counting as live at once, before their owner collects
 * them from the page's remote list. */
enum { HANDED = 2000, HANDED_SIZE = 1000 };
static void *handed[HANDED];

static void *free_all_handed(void *arg) {
  (void)arg;
  for (int i = 0; i < HANDED; i++) numalloc_free(handed[i]);
  return NULL;
}

START_TEST(remote_frees_leave_live_at_once) {
  int node = unit_home_node();
  for (int i = 0; i < HANDED; i++) handed[i] = numalloc_malloc(HANDED_SIZE);
  double live = json_field(report("json"), node, "live_mb");
  unit_run_threads(1, free_all_handed, NULL, 0);
  double after = json_field(report("json"), node, "live_mb");
  ck_assert_double_le(after, live - (double)HANDED * HANDED_SIZE / NA_MiB + 0.1);
}
END_TEST

/* The small pages held: per node in live threads' heaps and in the node's pool, per thread
 * per node; a thread that exits with blocks in use leaves its pages in the pool. */
static double json_number_after(const char *json, const char *from, const char *field) {
  const char *at = strstr(json, from);
  ck_assert_msg(at != NULL, "no %s in %s", from, json);
  char name[64];
  snprintf(name, sizeof name, "\"%s\": ", field);
  const char *f = strstr(at, name);
  ck_assert_msg(f != NULL, "no %s after %s", field, from);
  return strtod(f + strlen(name), NULL);
}

static void *leave_blocks(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 100; i++) blocks[i] = numalloc_malloc(1000);
  return NULL;
}

START_TEST(reports_the_pages_held) {
  int node = unit_home_node();
  static void *mine[2000], *left[100];
  for (int i = 0; i < 2000; i++) mine[i] = numalloc_malloc(100);
  const char *json = report("json");
  ck_assert_double_ge(json_field(json, node, "heap_pages"), 1);
  ck_assert_double_eq(json_field(json, node, "pool_pages"), 0);
  double used = json_field(json, node, "heap_used_mb");
  ck_assert_double_ge(used, 2000.0 * 112 / NA_MiB - 0.05); /* 100 bytes: the 112-byte class */
  ck_assert_double_ge(json_field(json, node, "heap_touched_mb"), used);
  ck_assert_double_gt(json_field(json, node, "heap_used_pct"), 50);
  /* the thread's own entry, and its node's */
  ck_assert_double_ge(json_number_after(json, "\"threads\": [", "pages"), 1);
  ck_assert_double_eq(json_number_after(json, "\"held\": [", "node"), node);
  unit_run_threads(1, leave_blocks, left, 0);
  json = report("json");
  ck_assert_double_ge(json_field(json, node, "pool_pages"), 1);
  ck_assert_double_ge(json_field(json, node, "pool_used_mb"), 100.0 * 1024 / NA_MiB - 0.05);
  ck_assert_double_ge(json_field(json, node, "pool_out_pages"), 1);
  const char *text = report("text");
  ck_assert_ptr_nonnull(strstr(text, "thread pages  touched MiB  in use %"));
  ck_assert_int_eq(unit_count_lines_with(text, "numalloc: thread 1 (local): "), 1);
  for (int i = 0; i < 100; i++) numalloc_free(left[i]);
  for (int i = 0; i < 2000; i++) numalloc_free(mine[i]);
}
END_TEST

/* The memory mallinfo reports: blocks in use and huge blocks counted as they come and go; a
 * collection says how much it gave back, nothing when nothing was left idle. */
START_TEST(memory_totals_and_what_a_collection_gave_back) {
  enum { COUNT = 2000, SIZE = 4096 };
  static void *blocks[COUNT];
  unit_quiet_purge();
  na_collect();
  na_memory_t before, with, after;
  na_stats_memory(&before);
  for (int i = 0; i < COUNT; i++) {
    blocks[i] = numalloc_malloc(SIZE);
    memset(blocks[i], 1, SIZE);
  }
  void *huge = numalloc_malloc(2 * NA_SEGMENT_SIZE);
  na_stats_memory(&with);
  ck_assert_uint_ge(with.live - before.live, (size_t)COUNT * SIZE + 2 * NA_SEGMENT_SIZE);
  ck_assert_uint_ge(with.huge - before.huge, 2 * NA_SEGMENT_SIZE);
  ck_assert_uint_ge(with.mapped, with.live);
  for (int i = 0; i < COUNT; i++) numalloc_free(blocks[i]);
  numalloc_free(huge);
  na_stats_memory(&after);
  ck_assert_uint_le(after.live, before.live + NA_MiB); /* the bins keep a few blocks */
  ck_assert_uint_eq(after.huge, before.huge);
  ck_assert_uint_ge(na_collect(), (size_t)COUNT * SIZE / 2);
  ck_assert_uint_eq(na_collect(), 0);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("stats");
  TCase *tc = unit_tcase(s, "stats", 10);
  tcase_add_test(tc, formats);
  tcase_add_test(tc, counts_live_and_exited_threads);
  tcase_add_test(tc, counts_every_reuse_of_a_block);
  tcase_add_test(tc, an_exited_thread_counts_once_and_leaves_its_record_clear);
  tcase_add_test(tc, remote_frees_leave_live_at_once);
  tcase_add_test(tc, reports_the_pages_held);
  tcase_add_test(tc, memory_totals_and_what_a_collection_gave_back);
  return unit_run(s, argv);
}
