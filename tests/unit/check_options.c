/* check_options.c: the options table (options.c). Each parser accepts exactly its syntax and
 * leaves its output alone on bad input; the defaults are the documented ones; every
 * NUMALLOC_* variable is applied, and a bad value gets one warning naming it and keeps the
 * default; the verbose printer lists every option. */
#include "unit.h"

#include <limits.h>
#include <stdlib.h>

START_TEST(policy_names) {
  int p = -1;
  ck_assert(na_parse_policy("local", &p) && p == NUMALLOC_POLICY_LOCAL);
  ck_assert(na_parse_policy("interleave", &p) && p == NUMALLOC_POLICY_INTERLEAVE);
  ck_assert(na_parse_policy("rr", &p) && p == NUMALLOC_POLICY_RR);
  ck_assert(na_parse_policy("system", &p) && p == NUMALLOC_POLICY_SYSTEM);
  p = 77;
  const char *bad[] = {"bind", "", "Local", "local ", "inter", "systemx", "4"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(!na_parse_policy(bad[i], &p), "policy \"%s\" accepted", bad[i]);
    ck_assert_int_eq(p, 77);
  }
}
END_TEST

START_TEST(fallback_names) {
  na_fallback_t f = NA_FALLBACK_NONE;
  ck_assert(na_parse_fallback("nearest", &f) && f == NA_FALLBACK_NEAREST);
  ck_assert(na_parse_fallback("any", &f) && f == NA_FALLBACK_ANY);
  ck_assert(na_parse_fallback("none", &f) && f == NA_FALLBACK_NONE);
  ck_assert(!na_parse_fallback("", &f));
  ck_assert(!na_parse_fallback("Nearest", &f));
  ck_assert(!na_parse_fallback("near", &f));
  ck_assert_int_eq(f, NA_FALLBACK_NONE);
}
END_TEST

START_TEST(long_values) {
  long v = -5;
  ck_assert(na_parse_long("0", 0, 10, &v) && v == 0);
  ck_assert(na_parse_long("10", 0, 10, &v) && v == 10);
  ck_assert(na_parse_long("007", 0, 10, &v) && v == 7);
  ck_assert(na_parse_long("3600000", 0, 3600000, &v) && v == 3600000);
  ck_assert(na_parse_long("9223372036854775807", 0, LONG_MAX, &v) && v == LONG_MAX);
  v = -5;
  const char *bad[] = {"",   "11", "-1",   "+1",      "1a",
                       " 1", "1 ", "0x10", "3600001", "99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    long max = i == 8 ? 3600000 : (i == 9 ? LONG_MAX : 10);
    ck_assert_msg(!na_parse_long(bad[i], 0, max, &v), "\"%s\" accepted", bad[i]);
    ck_assert_int_eq(v, -5);
  }
  ck_assert(!na_parse_long("4", 5, 10, &v)); /* below the minimum */
  ck_assert(!na_parse_long("9223372036854775808", 0, LONG_MAX, &v));
  ck_assert_int_eq(v, -5);
}
END_TEST

START_TEST(bool_values) {
  const char *yes[] = {"1", "yes", "on", "true"};
  const char *no[] = {"0", "no", "off", "false"};
  for (int i = 0; i < 4; i++) {
    bool b = false;
    ck_assert(na_parse_bool(yes[i], &b) && b);
    ck_assert(na_parse_bool(no[i], &b) && !b);
  }
  bool b = true;
  ck_assert(!na_parse_bool("", &b));
  ck_assert(!na_parse_bool("2", &b));
  ck_assert(!na_parse_bool("YES", &b));
  ck_assert(!na_parse_bool("onn", &b));
  ck_assert(b);
}
END_TEST

START_TEST(node_lists) {
  uint64_t m = 0;
  ck_assert(na_parse_node_list("0", &m, 63) && m == 1);
  ck_assert(na_parse_node_list("0,2-3", &m, 63) && m == 0xd);
  ck_assert(na_parse_node_list("3-3", &m, 63) && m == 8);
  ck_assert(na_parse_node_list("1,1,1", &m, 63) && m == 2);
  ck_assert(na_parse_node_list("63", &m, 63) && m == (uint64_t)1 << 63);
  ck_assert(na_parse_node_list("0-63", &m, 63) && m == ~(uint64_t)0);
  ck_assert(na_parse_node_list("5-6,0", &m, 63) && m == 0x61);
  ck_assert(na_parse_node_list("0007", &m, 63) && m == 0x80);
  ck_assert(na_parse_node_list("3", &m, 3) && m == 8);
  m = 42;
  const char *bad[] = {"",    "64",  "0-64", "3-1", "1,",  ",1",   "1-",    "-1",
                       "a",   "0,a", "1 ",   " 1",  "0;1", "1--2", "1-2-3", "99999999999999999999",
                       "0, 1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(!na_parse_node_list(bad[i], &m, 63), "\"%s\" accepted", bad[i]);
    ck_assert_uint_eq(m, 42);
  }
  ck_assert(!na_parse_node_list("4", &m, 3)); /* above max_node */
  ck_assert_uint_eq(m, 42);
}
END_TEST

START_TEST(weights) {
  uint8_t w[NA_MAX_NODES];
  memset(w, 7, sizeof w);
  ck_assert(na_parse_weights("0=3,1=1", w, 63));
  ck_assert_uint_eq(w[0], 3);
  ck_assert_uint_eq(w[1], 1);
  for (int n = 2; n < NA_MAX_NODES; n++) ck_assert_uint_eq(w[n], 0);
  ck_assert(na_parse_weights("63=100", w, 63) && w[63] == 100 && w[0] == 0);
  memset(w, 7, sizeof w);
  const char *bad[] = {"",       "0",    "0=",      "=3",        "0=0",  "0=101",
                       "0=1000", "64=1", "0=1,0=2", "0=1,",      ",0=1", "0=1;1=2",
                       "a=1",    "0=1x", "0=-1",    "99999999=1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(!na_parse_weights(bad[i], w, 63), "\"%s\" accepted", bad[i]);
    ck_assert_uint_eq(w[0], 7);
  }
  int p = -1;
  ck_assert(na_parse_policy("weighted:1=2,2=1", &p) && p == NUMALLOC_POLICY_WEIGHTED);
  ck_assert_uint_eq(na_options.weights[1], 2);
  ck_assert_uint_eq(na_options.weights[2], 1);
  p = -1;
  ck_assert(na_parse_policy("weighted", &p) && p == NUMALLOC_POLICY_WEIGHTED);
  p = -1;
  ck_assert(!na_parse_policy("weighted:", &p));
  ck_assert(!na_parse_policy("weighted:0=0", &p));
  ck_assert_int_eq(p, -1);
}
END_TEST

START_TEST(sizes) {
  long v = -1;
  ck_assert(na_parse_size("0", &v) && v == 0);
  ck_assert(na_parse_size("4096", &v) && v == 4096);
  ck_assert(na_parse_size("256K", &v) && v == 256 * 1024);
  ck_assert(na_parse_size("256k", &v) && v == 256 * 1024);
  ck_assert(na_parse_size("3M", &v) && v == 3 * 1024 * 1024);
  ck_assert(na_parse_size("2g", &v) && v == 2L * 1024 * 1024 * 1024);
  v = -1;
  const char *bad[] = {
      "", "K", "1KB", "1T", "-1", "1.5M", " 1M", "1M ", "99999999999999999999", "8589934592G"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(!na_parse_size(bad[i], &v), "\"%s\" accepted", bad[i]);
    ck_assert_int_eq(v, -1);
  }
}
END_TEST

/* The runner dropped every NUMALLOC_* variable, so the constructor saw the defaults. */
START_TEST(defaults) {
  ck_assert_int_eq(na_options.policy, NUMALLOC_POLICY_LOCAL);
  ck_assert_int_eq(na_options.fallback, NA_FALLBACK_NEAREST);
  ck_assert(!na_options.nodes_set);
  ck_assert_uint_eq(na_options.nodes_mask[0], ~(uint64_t)0);
  ck_assert_int_eq(na_options.purge_delay_ms, 1000);
  ck_assert_int_eq(na_options.segment_cache, 2);
  ck_assert(na_options.purge_sparse);
  ck_assert(!na_options.verbose);
  ck_assert_int_eq(na_options.stats, NA_STATS_OFF);
  ck_assert_ptr_null(na_options.stats_file);
  ck_assert_int_eq(na_options.hugepages, NA_HUGEPAGES_AUTO);
  ck_assert_int_eq(na_options.large_policy, NA_LARGE_POLICY_AS_POLICY);
  ck_assert_int_eq(na_options.large_threshold, 1024 * 1024);
  ck_assert_int_eq(numalloc_policy(), NUMALLOC_POLICY_LOCAL);
}
END_TEST

/* The field that differs between two option sets, or NULL. */
static const char *options_differ(const na_options_t *a, const na_options_t *b) {
  if (a->policy != b->policy) return "policy";
  if (a->fallback != b->fallback) return "fallback";
  if (a->nodes_mask[0] != b->nodes_mask[0]) return "nodes_mask";
  if (a->nodes_set != b->nodes_set) return "nodes_set";
  if (a->nodes_text != b->nodes_text) return "nodes_text";
  if (a->purge_delay_ms != b->purge_delay_ms) return "purge_delay_ms";
  if (a->segment_cache != b->segment_cache) return "segment_cache";
  if (a->purge_sparse != b->purge_sparse) return "purge_sparse";
  if (a->verbose != b->verbose) return "verbose";
  if (a->stats != b->stats) return "stats";
  if (a->stats_file != b->stats_file) return "stats_file";
  if (a->hugepages != b->hugepages) return "hugepages";
  if (a->verify != b->verify) return "verify";
  if (a->background != b->background) return "background";
  if (memcmp(a->weights, b->weights, sizeof a->weights) != 0) return "weights";
  if (a->large_policy != b->large_policy) return "large_policy";
  if (a->large_threshold != b->large_threshold) return "large_threshold";
  return NULL;
}

/* The struct after start is what the table's defaults say: each default text, given as the
 * variable's value, is accepted without a word and changes no field; the defaults that no
 * value spells are exactly the three "not set" states. */
START_TEST(defaults_are_the_tables) {
  const na_options_t started = na_options;
  size_t count = na_option_count(), unset = 0;
  ck_assert_uint_ge(count, 14);
  for (size_t i = 0; i < count; i++) {
    const char *name, *text;
    ck_assert(na_option_default(i, &name, &text));
    if (text == NULL) {
      unset++;
      continue;
    }
    char variable[64];
    snprintf(variable, sizeof variable, "NUMALLOC_%s", name);
    setenv(variable, text, 1);
    unit_capture_start();
    na_options_init();
    const char *err = unit_capture_stop();
    ck_assert_msg(err[0] == '\0', "%s=%s (its default) warned: %s", variable, text, err);
    const char *field = options_differ(&na_options, &started);
    ck_assert_msg(field == NULL, "%s=%s (its default) changed %s", variable, text, field);
    unsetenv(variable);
  }
  const char *name, *text;
  ck_assert(!na_option_default(count, &name, &text));
  ck_assert_uint_eq(unset, 3);
  ck_assert_int_eq(started.large_policy, NA_LARGE_POLICY_AS_POLICY);
  ck_assert(!started.nodes_set && started.nodes_text == NULL);
  ck_assert_uint_eq(started.nodes_mask[0], ~(uint64_t)0);
  ck_assert_ptr_null(started.stats_file);
  /* A setting from an earlier start does not survive a start without it. */
  setenv("NUMALLOC_POLICY", "weighted:0=3", 1);
  setenv("NUMALLOC_NODES", "0", 1);
  na_options_init();
  ck_assert_int_eq(na_options.policy, NUMALLOC_POLICY_WEIGHTED);
  unsetenv("NUMALLOC_POLICY");
  unsetenv("NUMALLOC_NODES");
  na_options_init();
  const char *field = options_differ(&na_options, &started);
  ck_assert_msg(field == NULL, "%s kept from the earlier start", field);
}
END_TEST

/* The options read again with one variable set to `value`. */
static void options_with(const char *name, const char *value) {
  setenv(name, value, 1);
  na_options_init();
}

START_TEST(environment_is_applied) {
  setenv("NUMALLOC_POLICY", "interleave", 1);
  setenv("NUMALLOC_FALLBACK", "none", 1);
  setenv("NUMALLOC_NODES", "0,2-3", 1);
  setenv("NUMALLOC_PURGE_DELAY", "250", 1);
  setenv("NUMALLOC_SEGMENT_CACHE", "0", 1);
  setenv("NUMALLOC_PURGE_SPARSE", "0", 1);
  setenv("NUMALLOC_VERBOSE", "yes", 1);
  setenv("NUMALLOC_STATS", "json", 1);
  setenv("NUMALLOC_STATS_FILE", "/tmp/numalloc-%p.json", 1);
  setenv("NUMALLOC_HUGEPAGES", "on", 1);
  setenv("NUMALLOC_LARGE_POLICY", "rr", 1);
  setenv("NUMALLOC_LARGE_THRESHOLD", "4M", 1);
  unit_capture_start();
  na_options_init();
  const char *err = unit_capture_stop();
  ck_assert_msg(err[0] == '\0', "valid values warned: %s", err);
  ck_assert_int_eq(na_options.policy, NUMALLOC_POLICY_INTERLEAVE);
  ck_assert_int_eq(na_options.fallback, NA_FALLBACK_NONE);
  ck_assert(na_options.nodes_set);
  ck_assert_uint_eq(na_options.nodes_mask[0], 0xd);
  ck_assert_int_eq(na_options.purge_delay_ms, 250);
  ck_assert_int_eq(na_options.segment_cache, 0);
  ck_assert(!na_options.purge_sparse);
  ck_assert(na_options.verbose);
  ck_assert_int_eq(na_options.stats, NA_STATS_JSON);
  ck_assert_str_eq(na_options.stats_file, "/tmp/numalloc-%p.json");
  ck_assert_int_eq(na_options.hugepages, NA_HUGEPAGES_ALL);
  options_with("NUMALLOC_HUGEPAGES", "0");
  ck_assert_int_eq(na_options.hugepages, NA_HUGEPAGES_HUGE_BLOCKS);
  options_with("NUMALLOC_HUGEPAGES", "auto");
  ck_assert_int_eq(na_options.hugepages, NA_HUGEPAGES_AUTO);
  ck_assert_int_eq(na_options.large_policy, NUMALLOC_POLICY_RR);
  ck_assert_int_eq(na_options.large_threshold, 4 * 1024 * 1024);

  options_with("NUMALLOC_STATS", "1");
  ck_assert_int_eq(na_options.stats, NA_STATS_TEXT);
  options_with("NUMALLOC_STATS", "off");
  ck_assert_int_eq(na_options.stats, NA_STATS_OFF);
  options_with("NUMALLOC_STATS", "text");
  ck_assert_int_eq(na_options.stats, NA_STATS_TEXT);
  options_with("NUMALLOC_STATS", "no");
  ck_assert_int_eq(na_options.stats, NA_STATS_OFF);
  /* a zero delay would make every allocation slow path a pass: one per millisecond at most */
  setenv("NUMALLOC_PURGE_DELAY", "0", 1);
  unit_capture_start();
  na_options_init();
  err = unit_capture_stop();
  ck_assert_msg(err[0] == '\0', "a zero delay warned: %s", err);
  ck_assert_int_eq(na_options.purge_delay_ms, 1);
}
END_TEST

/* One bad value per option: one warning naming the variable and its value, default kept. */
static const struct {
  const char *name, *value;
} bad_values[] = {
    {"NUMALLOC_POLICY", "bind"},
    {"NUMALLOC_POLICY", "fast"},
    {"NUMALLOC_FALLBACK", "closest"},
    {"NUMALLOC_NODES", "0-"},
    {"NUMALLOC_NODES", "64"},
    {"NUMALLOC_PURGE_DELAY", "-5"},
    {"NUMALLOC_PURGE_DELAY", "3600001"},
    {"NUMALLOC_PURGE_DELAY", "10ms"},
    {"NUMALLOC_SEGMENT_CACHE", "1025"},
    {"NUMALLOC_PURGE_SPARSE", "sometimes"},
    {"NUMALLOC_VERBOSE", "maybe"},
    {"NUMALLOC_STATS", "xml"},
    {"NUMALLOC_HUGEPAGES", "2"},
    {"NUMALLOC_HUGEPAGES", "Auto"},
};

START_TEST(bad_value_warns_once_and_keeps_default) {
  const char *name = bad_values[_i].name, *value = bad_values[_i].value;
  na_options_t before = na_options;
  setenv(name, value, 1);
  unit_capture_start();
  na_options_init();
  const char *err = unit_capture_stop();
  ck_assert_msg(unit_count_lines_with(err, "warning") == 1, "%s=%s: warnings: [%s]", name, value,
                err);
  ck_assert_msg(strstr(err, name) != NULL && strstr(err, value) != NULL,
                "the warning names neither %s nor %s: %s", name, value, err);
  ck_assert_int_eq(na_options.policy, before.policy);
  ck_assert_int_eq(na_options.fallback, before.fallback);
  ck_assert_int_eq(na_options.nodes_set, before.nodes_set);
  ck_assert_uint_eq(na_options.nodes_mask[0], before.nodes_mask[0]);
  ck_assert_int_eq(na_options.purge_delay_ms, before.purge_delay_ms);
  ck_assert_int_eq(na_options.segment_cache, before.segment_cache);
  ck_assert_int_eq(na_options.purge_sparse, before.purge_sparse);
  ck_assert_int_eq(na_options.verbose, before.verbose);
  ck_assert_int_eq(na_options.stats, before.stats);
  ck_assert_int_eq(na_options.hugepages, before.hugepages);
  ck_assert_int_eq(na_options.large_policy, before.large_policy);
  ck_assert_int_eq(na_options.large_threshold, before.large_threshold);
}
END_TEST

/* An empty NUMALLOC_STATS_FILE is refused: reported once, and the default (stderr) kept. */
START_TEST(empty_stats_file_keeps_default) {
  setenv("NUMALLOC_STATS_FILE", "", 1);
  unit_capture_start();
  na_options_init();
  const char *err = unit_capture_stop();
  ck_assert_int_eq(unit_count_lines_with(err, "NUMALLOC_STATS_FILE"), 1);
  ck_assert_msg(na_options.stats_file == NULL, "stats_file is \"%s\", not the default (stderr)",
                na_options.stats_file);
}
END_TEST

/* One line per option of the table, with the value in effect or the table's default. */
START_TEST(print_lists_every_option) {
  setenv("NUMALLOC_PURGE_DELAY", "123", 1);
  unit_capture_start();
  na_options_print();
  const char *out = unit_capture_stop();
  size_t count = na_option_count();
  for (size_t i = 0; i < count; i++) {
    const char *name, *text;
    ck_assert(na_option_default(i, &name, &text));
    char needle[64];
    snprintf(needle, sizeof needle, "option NUMALLOC_%s=", name);
    ck_assert_msg(unit_count_lines_with(out, needle) == 1, "%s: %s", needle, out);
  }
  const char *names[] = {"POLICY",      "LARGE_POLICY",  "LARGE_THRESHOLD", "FALLBACK",  "NODES",
                         "PURGE_DELAY", "SEGMENT_CACHE", "PURGE_SPARSE",    "VERBOSE",   "STATS",
                         "STATS_FILE",  "HUGEPAGES",     "VERIFY",          "BACKGROUND"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char needle[64];
    snprintf(needle, sizeof needle, "option NUMALLOC_%s=", names[i]);
    ck_assert_msg(unit_count_lines_with(out, needle) == 1, "%s: %s", needle, out);
  }
  ck_assert_int_eq(unit_count_lines_with(out, "numalloc: option NUMALLOC_"), (int)count);
  ck_assert_int_eq(unit_count_lines_with(out, "numalloc: option NUMALLOC_"),
                   unit_count_lines_with(out, ""));
  ck_assert_int_eq(unit_count_lines_with(out, "NUMALLOC_PURGE_DELAY=123 "), 1);
  ck_assert_int_eq(unit_count_lines_with(out, "NUMALLOC_POLICY=local "), 1);
  ck_assert_int_eq(unit_count_lines_with(out, "NUMALLOC_NODES=all "), 1);
  ck_assert_int_eq(
      unit_count_lines_with(
          out, "NUMALLOC_LARGE_POLICY=first touch under local, else as NUMALLOC_POLICY "),
      1);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("options");
  TCase *tc = unit_tcase(s, "parsers", 10);
  tcase_add_test(tc, policy_names);
  tcase_add_test(tc, fallback_names);
  tcase_add_test(tc, long_values);
  tcase_add_test(tc, bool_values);
  tcase_add_test(tc, node_lists);
  tcase_add_test(tc, weights);
  tcase_add_test(tc, sizes);
  tc = unit_tcase(s, "environment", 10);
  tcase_add_test(tc, defaults);
  tcase_add_test(tc, defaults_are_the_tables);
  tcase_add_test(tc, environment_is_applied);
  tcase_add_loop_test(tc, bad_value_warns_once_and_keeps_default, 0,
                      (int)(sizeof bad_values / sizeof bad_values[0]));
  tcase_add_test(tc, print_lists_every_option);
  tcase_add_test(tc, empty_stats_file_keeps_default);
  return unit_run(s, argv);
}
