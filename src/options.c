/* options.c: every NUMALLOC_* setting, in one table. Each is read once at start from the
 * environment; a bad value gets one warning line naming the variable, the value and the
 * default kept. */
#include "internal.h"
#include "stats_live.h"

#include <stdio.h>
#include <string.h>

/* Filled by na_options_init from the table below: the defaults are written there only. */
na_options_t na_options;

#define WEIGHT_MAX 100

/* "0=3,1=1": a weight from 1 to WEIGHT_MAX for each listed node; the others get none. */
bool na_parse_weights(const char *text, uint8_t *weights, int max_node) {
  uint8_t result[NA_MAX_NODES] = {0};
  const char *p = text;
  while (*p) {
    long node = 0, weight = 0;
    if (*p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9' && node <= max_node) node = node * 10 + (*p++ - '0');
    if (*p++ != '=' || node > max_node || *p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9' && weight <= WEIGHT_MAX) weight = weight * 10 + (*p++ - '0');
    if (weight < 1 || weight > WEIGHT_MAX || result[node] != 0) return false;
    result[node] = (uint8_t)weight;
    if (*p == ',' && p[1] != '\0')
      p++;
    else if (*p != '\0')
      return false;
  }
  if (p == text) return false;
  memcpy(weights, result, sizeof result);
  return true;
}

bool na_parse_policy(const char *text, int *out) {
  static const char *const names[] = {"local", "interleave", "rr", "bind", "weighted", "system"};
  if (strncmp(text, "weighted:", 9) == 0) {
    if (!na_parse_weights(text + 9, na_options.weights, NA_MAX_NODES - 1)) return false;
    na_options.weights_from_kernel = false;
    *out = NUMALLOC_POLICY_WEIGHTED;
    return true;
  }
  if (strcmp(text, "weighted") == 0) { /* the weights the kernel's weighted interleave uses */
    na_options.weights_from_kernel = true;
    *out = NUMALLOC_POLICY_WEIGHTED;
    return true;
  }
  for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
    if (i != NUMALLOC_POLICY_BIND && i != NUMALLOC_POLICY_WEIGHTED && strcmp(text, names[i]) == 0) {
      *out = i;
      return true;
    }
  }
  return false;
}

bool na_parse_fallback(const char *text, na_fallback_t *out) {
  if (strcmp(text, "nearest") == 0)
    *out = NA_FALLBACK_NEAREST;
  else if (strcmp(text, "any") == 0)
    *out = NA_FALLBACK_ANY;
  else if (strcmp(text, "none") == 0)
    *out = NA_FALLBACK_NONE;
  else
    return false;
  return true;
}

bool na_parse_long(const char *text, long min, long max, long *out) {
  long value = 0;
  const char *p = text;
  if (*p == '\0') return false;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (value > (max - (*p - '0')) / 10) return false;
    value = value * 10 + (*p - '0');
  }
  /* The check above lets one digit through when max < 9: (max - d) / 10 rounds up to 0. */
  if (*p != '\0' || value < min || value > max) return false;
  *out = value;
  return true;
}

bool na_parse_bool(const char *text, bool *out) {
  if (strcmp(text, "1") == 0 || strcmp(text, "yes") == 0 || strcmp(text, "on") == 0 ||
      strcmp(text, "true") == 0)
    *out = true;
  else if (strcmp(text, "0") == 0 || strcmp(text, "no") == 0 || strcmp(text, "off") == 0 ||
           strcmp(text, "false") == 0)
    *out = false;
  else
    return false;
  return true;
}

/* "0,2-3": a comma-separated list of nodes and inclusive ranges. */
bool na_parse_node_list(const char *text, uint64_t *mask, int max_node) {
  uint64_t result = 0;
  const char *p = text;
  if (*p == '\0') return false;
  while (*p) {
    long first = 0, last = 0;
    if (*p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9' && first <= max_node) first = first * 10 + (*p++ - '0');
    last = first;
    if (*p == '-') {
      p++;
      if (*p < '0' || *p > '9') return false;
      last = 0;
      while (*p >= '0' && *p <= '9' && last <= max_node) last = last * 10 + (*p++ - '0');
    }
    if (first > last || last > max_node) return false;
    for (long n = first; n <= last; n++) result |= (uint64_t)1 << n;
    if (*p == ',') {
      p++;
      if (*p == '\0') return false;
    } else if (*p != '\0') {
      return false;
    }
  }
  *mask = result;
  return true;
}

/* A byte count with an optional K, M or G suffix (powers of 1024). */
bool na_parse_size(const char *text, long *out) {
  char digits[24];
  size_t n = strlen(text);
  if (n == 0 || n >= sizeof digits) return false;
  long shift = 0;
  switch (text[n - 1]) {
  case 'k':
  case 'K': shift = 10; break;
  case 'm':
  case 'M': shift = 20; break;
  case 'g':
  case 'G': shift = 30; break;
  default: break;
  }
  memcpy(digits, text, n + 1);
  if (shift != 0) digits[n - 1] = '\0';
  long value;
  if (!na_parse_long(digits, 0, (long)1 << (62 - shift), &value)) return false;
  *out = value << shift;
  return true;
}

static bool parse_stats(const char *text, na_stats_mode_t *out) {
  bool on;
  if (strcmp(text, "json") == 0)
    *out = NA_STATS_JSON;
  else if (strcmp(text, "text") == 0)
    *out = NA_STATS_TEXT;
  else if (na_parse_bool(text, &on))
    *out = on ? NA_STATS_TEXT : NA_STATS_OFF;
  else
    return false;
  return true;
}

/* One setting: its default is written here only. na_options_init applies `default_text`
 * through the option's own `apply`, as if the environment had said it, then the environment.
 * A default that no value spells ("first touch under local, else as NUMALLOC_POLICY", "all",
 * "stderr") is `unset`: apply gets NULL and puts the field back to "not set"; default_text
 * only names it. */
typedef struct option_s {
  const char *name; /* NUMALLOC_<name> */
  const char *default_text;
  bool unset;
  bool (*apply)(const char *text); /* false: refused, the default stays */
  const char *description;
} option_t;

static bool apply_policy(const char *t) { return na_parse_policy(t, &na_options.policy); }
static bool apply_fallback(const char *t) { return na_parse_fallback(t, &na_options.fallback); }
static bool apply_nodes(const char *t) {
  uint64_t mask = ~(uint64_t)0;
  if (t != NULL && !na_parse_node_list(t, &mask, NA_MAX_NODES - 1)) return false;
  na_options.nodes_mask[0] = mask;
  na_options.nodes_set = t != NULL;
  na_options.nodes_text = t;
  return true;
}
/* 0 acts as 1: at 0 every allocation slow path would be a pass, and a pass takes the pool's
 * and the arena's locks and hands every class untouched since the previous slow path to the
 * pool (larson 56 times slower, exchange 68). One pass per millisecond gives memory back as
 * soon, at the peers' cost. */
static bool apply_purge_delay(const char *t) {
  if (!na_parse_long(t, 0, NA_PURGE_DELAY_MAX_MS, &na_options.purge_delay_ms)) return false;
  if (na_options.purge_delay_ms == 0) na_options.purge_delay_ms = 1;
  return true;
}
static bool apply_segment_cache(const char *t) {
  return na_parse_long(t, 0, NA_SEGMENT_CACHE_MAX, &na_options.segment_cache);
}
static bool apply_purge_sparse(const char *t) { return na_parse_bool(t, &na_options.purge_sparse); }
static bool apply_verbose(const char *t) { return na_parse_bool(t, &na_options.verbose); }
static bool apply_stats(const char *t) { return parse_stats(t, &na_options.stats); }
static bool apply_stats_file(const char *t) {
  if (t != NULL && *t == '\0') return false;
  na_options.stats_file = t;
  return true;
}
static bool apply_stats_interval(const char *t) {
  return na_parse_long(t, 0, NA_LIVE_INTERVAL_MAX, &na_live_interval_s);
}
static bool apply_hugepages(const char *t) {
  bool on;
  if (strcmp(t, "auto") == 0)
    na_options.hugepages = NA_HUGEPAGES_AUTO;
  else if (na_parse_bool(t, &on))
    na_options.hugepages = on ? NA_HUGEPAGES_ALL : NA_HUGEPAGES_HUGE_BLOCKS;
  else
    return false;
  return true;
}
static bool apply_verify(const char *t) { return na_parse_bool(t, &na_options.verify); }
static bool apply_background(const char *t) { return na_parse_bool(t, &na_options.background); }
static bool apply_large_policy(const char *t) {
  int policy = NA_LARGE_POLICY_AS_POLICY;
  if (t != NULL && (strncmp(t, "weighted", 8) == 0 || !na_parse_policy(t, &policy) ||
                    policy == NUMALLOC_POLICY_SYSTEM))
    return false;
  na_options.large_policy = policy;
  return true;
}
/* Below the largest small class a threshold could not be honoured: blocks that small come
 * from the thread's pages, whatever their policy. */
static bool apply_large_threshold(const char *t) {
  long bytes;
  if (!na_parse_size(t, &bytes) || bytes < (long)NA_SMALL_MAX) return false;
  na_options.large_threshold = bytes;
  return true;
}

static const option_t option_table[] = {
    {.name = "POLICY",
     .default_text = "local",
     .apply = apply_policy,
     .description =
         "where memory goes: local, interleave, rr, weighted, weighted:N=W,... or system"},
    {.name = "LARGE_POLICY",
     .default_text = "first touch under local, else as NUMALLOC_POLICY",
     .unset = true,
     .apply = apply_large_policy,
     .description = "policy for blocks from NUMALLOC_LARGE_THRESHOLD up: local, interleave or rr"},
    {.name = "LARGE_THRESHOLD",
     .default_text = "1M",
     .apply = apply_large_threshold,
     .description = "size from which NUMALLOC_LARGE_POLICY applies, 256K or more"},
    {.name = "FALLBACK",
     .default_text = "nearest",
     .apply = apply_fallback,
     .description = "when a node is full: nearest, any or none (fail)"},
    {.name = "NODES",
     .default_text = "all",
     .unset = true,
     .apply = apply_nodes,
     .description = "the nodes any policy may use, e.g. 0,2-3"},
    {.name = "PURGE_DELAY",
     .default_text = "1000",
     .apply = apply_purge_delay,
     .description =
         "milliseconds free memory stays unused before it goes back to the OS (in passes; free "
         "spans: a quarter of it); 0 acts as 1"},
    {.name = "SEGMENT_CACHE",
     .default_text = "2",
     .apply = apply_segment_cache,
     .description = "empty 32 MiB segments kept mapped per node"},
    {.name = "PURGE_SPARSE",
     .default_text = "1",
     .apply = apply_purge_sparse,
     .description = "1: a page left a quarter full (half for blocks over 8 KiB) gives back the OS "
                    "pages its free blocks leave empty, as do blocks over 8 KiB free for a pass; "
                    "0: never"},
    {.name = "VERBOSE",
     .default_text = "0",
     .apply = apply_verbose,
     .description = "print the options and the topology at start"},
    {.name = "STATS",
     .default_text = "0",
     .apply = apply_stats,
     .description = "print statistics at exit: 1 (text) or json"},
    {.name = "STATS_FILE",
     .default_text = "stderr",
     .unset = true,
     .apply = apply_stats_file,
     .description = "write statistics there instead (%p: the pid)"},
    {.name = "STATS_INTERVAL",
     .default_text = "0",
     .apply = apply_stats_interval,
     .description = "seconds, 1 to 3600: publish live statistics to " NA_LIVE_DIR "/" NA_LIVE_PREFIX
                    "PID for numalloc stats and top; 0: never"},
    {.name = "HUGEPAGES",
     .default_text = "auto",
     .apply = apply_hugepages,
     .description = "auto: transparent huge pages for a node's memory beyond its first 32 MiB "
                    "and for huge blocks, unless the host takes free memory back (virtio-balloon "
                    "free page reporting); 1: for all memory; 0: only for huge blocks, as the "
                    "system gives them"},
    {.name = "VERIFY",
     .default_text = "0",
     .apply = apply_verify,
     .description = "check with move_pages where sampled pages really are (statistics)"},
    {.name = "BACKGROUND",
     .default_text = "0",
     .apply = apply_background,
     .description =
         "1: free memory goes back to the OS from one thread per node, never from the program's"},
};

#define OPTION_COUNT (sizeof option_table / sizeof option_table[0])

/* "NUMALLOC_" + the option's name. Not snprintf: every process starts here, and printf's
 * code is pages of the C library a small program otherwise never touches. */
static const char *env_name(const option_t *o, char *buf, size_t size) {
  static const char prefix[] = "NUMALLOC_";
  size_t length = strlen(o->name);
  if (sizeof prefix + length > size) length = size - sizeof prefix;
  memcpy(buf, prefix, sizeof prefix - 1);
  memcpy(buf + sizeof prefix - 1, o->name, length);
  buf[sizeof prefix - 1 + length] = '\0';
  return buf;
}

/* Settings that were refused: NUMALLOC_VERBOSE shows the default in effect, not them. */
static bool option_rejected[OPTION_COUNT];

static void apply_default(const option_t *o) {
  bool accepted = o->apply(o->unset ? NULL : o->default_text);
  na_assert(accepted); /* a default its own parser refuses: the table is wrong */
  (void)accepted;
}

void na_options_init(void) {
  na_options = (na_options_t){0};
  for (size_t i = 0; i < OPTION_COUNT; i++) apply_default(&option_table[i]);
  char name[64];
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_t *o = &option_table[i];
    const char *value = na_os_getenv(env_name(o, name, sizeof name));
    option_rejected[i] = value != NULL && !o->apply(value);
    if (option_rejected[i])
      na_warning("%s=\"%s\" is not valid (%s); using the default, %s", name, value, o->description,
                 o->default_text);
  }
}

void na_options_print(void) {
  char name[64];
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_t *o = &option_table[i];
    const char *value = na_os_getenv(env_name(o, name, sizeof name));
    if (value == NULL || option_rejected[i])
      na_info("option %s=%s%s (%s)", name, o->default_text,
              option_rejected[i] ? " [the value given was refused]" : "", o->description);
    else
      na_info("option %s=%s (%s)", name, value, o->description);
  }
}

size_t na_option_count(void) { return OPTION_COUNT; }

bool na_option_default(size_t i, const char **name, const char **default_text) {
  if (i >= OPTION_COUNT) return false;
  *name = option_table[i].name;
  *default_text = option_table[i].unset ? NULL : option_table[i].default_text;
  return true;
}
