/* fuzz_options.c: a libFuzzer target for the option parsers (na_parse_*) and the message
 * formatter. Every parser must take any text without crashing, and agree with a plain
 * reference parser written here: same verdict, same value. A parsed node list holds only
 * nodes up to the limit, and printing its mask as ranges and parsing that again gives the
 * same mask. The formatter must agree with snprintf on the conversions it supports.
 *
 * Input: [which][parameter bytes...][text...]; the text is the rest, cut at a NUL.
 * FUZZ_OPTIONS_SKIP=format,long (names from `checks` below) leaves checks out, so that a
 * long run by hand can look past a known failure. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static __attribute__((noreturn)) void disagree(const char *parser, const char *text,
                                               const char *how) {
  fprintf(stderr, "fuzz_options: %s(\"%s\"): %s\n", parser, text, how);
  abort();
}

/* ---- reference parsers ---------------------------------------------------------------- */

static bool all_digits(const char *t) {
  if (*t == '\0') return false;
  for (; *t; t++)
    if (*t < '0' || *t > '9') return false;
  return true;
}

/* Decimal digits only; the value must lie in [min, max]. */
static bool ref_long(const char *t, long min, long max, long *out) {
  if (!all_digits(t)) return false;
  long v = 0;
  for (; *t; t++) {
    if (v > (LONG_MAX - 9) / 10) return false;
    v = v * 10 + (*t - '0');
  }
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

/* A decimal number that saturates above `limit`; advances *t. */
static long ref_number(const char **t, long limit) {
  long v = 0;
  while (**t >= '0' && **t <= '9') {
    if (v <= limit) v = v * 10 + (**t - '0');
    (*t)++;
  }
  return v;
}

/* "n" or "a-b" items separated by single commas, every node in [0, max_node], a <= b. */
static bool ref_node_list(const char *t, int max_node, uint64_t *mask) {
  uint64_t m = 0;
  if (*t == '\0') return false;
  for (;;) {
    if (*t < '0' || *t > '9') return false;
    long a = ref_number(&t, max_node), b = a;
    if (*t == '-') {
      t++;
      if (*t < '0' || *t > '9') return false;
      b = ref_number(&t, max_node);
    }
    if (a > b || b > max_node) return false;
    for (long n = a; n <= b; n++) m |= (uint64_t)1 << n;
    if (*t == '\0') break;
    if (*t != ',') return false;
    t++;
  }
  *mask = m;
  return true;
}

/* "n=w" items separated by single commas; n in [0, max_node] at most once, w in [1, 100]. */
static bool ref_weights(const char *t, int max_node, uint8_t *weights) {
  uint8_t w[NA_MAX_NODES] = {0};
  if (*t == '\0') return false;
  for (;;) {
    if (*t < '0' || *t > '9') return false;
    long n = ref_number(&t, max_node);
    if (*t++ != '=' || *t < '0' || *t > '9') return false;
    long v = ref_number(&t, 100);
    if (n > max_node || v < 1 || v > 100 || w[n] != 0) return false;
    w[n] = (uint8_t)v;
    if (*t == '\0') break;
    if (*t != ',') return false;
    t++;
  }
  memcpy(weights, w, sizeof w);
  return true;
}

/* Digits with an optional K, M or G (either case), at most 2^62 bytes in all; texts of 24
 * characters or more are refused (a documented limit of the parser). */
static bool ref_size(const char *t, long *out) {
  size_t n = strlen(t);
  if (n == 0 || n >= 24) return false;
  int shift = 0;
  char c = t[n - 1];
  if (c == 'k' || c == 'K') shift = 10;
  if (c == 'm' || c == 'M') shift = 20;
  if (c == 'g' || c == 'G') shift = 30;
  char digits[24];
  memcpy(digits, t, n + 1);
  if (shift) digits[n - 1] = '\0';
  long v;
  if (!ref_long(digits, 0, (long)1 << (62 - shift), &v)) return false;
  *out = v << shift;
  return true;
}

/* ---- checks --------------------------------------------------------------------------- */

static void check_policy(const char *text) {
  int out = -1;
  bool ok = na_parse_policy(text, &out);
  /* "weighted" alone is a name too: the kernel's weights */
  static const char *const valid[] = {"local", "interleave", "rr", "system", "weighted"};
  bool want = false;
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) want |= strcmp(text, valid[i]) == 0;
  uint8_t weights[NA_MAX_NODES];
  bool weighted =
      strncmp(text, "weighted:", 9) == 0 && ref_weights(text + 9, NA_MAX_NODES - 1, weights);
  if (ok != (want || weighted)) disagree("na_parse_policy", text, ok ? "accepted" : "refused");
  if (!ok) return;
  const char *name = numalloc_policy_name((numalloc_policy_t)out);
  if (weighted ? strcmp(name, "weighted") != 0 : strcmp(name, text) != 0)
    disagree("na_parse_policy", text, "gave a policy of another name");
  if (weighted && memcmp(weights, na_options.weights, sizeof weights) != 0)
    disagree("na_parse_policy", text, "weights differ");
  if (strncmp(text, "weighted", 8) == 0 && na_options.weights_from_kernel != !weighted)
    disagree("na_parse_policy", text, "took the kernel's weights or not as it should not");
}

static void check_weights(const char *text, int max_node) {
  uint8_t got[NA_MAX_NODES], want[NA_MAX_NODES];
  memset(got, 0xee, sizeof got);
  bool ok = na_parse_weights(text, got, max_node);
  bool want_ok = ref_weights(text, max_node, want);
  if (ok != want_ok) disagree("na_parse_weights", text, ok ? "accepted" : "refused");
  if (!ok) return;
  if (memcmp(got, want, sizeof got) != 0) disagree("na_parse_weights", text, "weights differ");
  char again[1024];
  size_t at = 0;
  for (int n = 0; n < NA_MAX_NODES; n++)
    if (got[n])
      at += (size_t)snprintf(again + at, sizeof again - at, "%s%d=%d", at ? "," : "", n, got[n]);
  uint8_t round[NA_MAX_NODES];
  if (!na_parse_weights(again, round, max_node) || memcmp(round, got, sizeof got) != 0)
    disagree("na_parse_weights", text, "printed weights do not parse back");
}

static void check_size(const char *text) {
  long out = -1, want = -1;
  bool ok = na_parse_size(text, &out);
  bool want_ok = ref_size(text, &want);
  char how[96];
  snprintf(how, sizeof how, "%s, value %ld, expected %ld", ok ? "accepted" : "refused", out, want);
  if (ok != want_ok || (ok && out != want)) disagree("na_parse_size", text, how);
}

static void check_fallback(const char *text) {
  na_fallback_t out = (na_fallback_t)-1;
  bool ok = na_parse_fallback(text, &out);
  static const char *const names[] = {"nearest", "any", "none"};
  bool want = false;
  for (int i = 0; i < 3; i++) want |= strcmp(text, names[i]) == 0;
  if (ok != want) disagree("na_parse_fallback", text, ok ? "accepted" : "refused");
  if (ok && strcmp(names[out], text) != 0) disagree("na_parse_fallback", text, "wrong value");
}

static void check_bool(const char *text) {
  bool out = false;
  bool ok = na_parse_bool(text, &out);
  static const char *const yes[] = {"1", "yes", "on", "true"}, *const no[] = {"0", "no", "off",
                                                                              "false"};
  int want = -1;
  for (int i = 0; i < 4; i++) {
    if (strcmp(text, yes[i]) == 0) want = 1;
    if (strcmp(text, no[i]) == 0) want = 0;
  }
  if (ok != (want >= 0)) disagree("na_parse_bool", text, ok ? "accepted" : "refused");
  if (ok && out != (want == 1)) disagree("na_parse_bool", text, "wrong value");
}

static void check_long(const char *text, long min, long max) {
  long out = -1, want = -1;
  bool ok = na_parse_long(text, min, max, &out);
  bool want_ok = ref_long(text, min, max, &want);
  char how[128];
  if (ok != want_ok) {
    snprintf(how, sizeof how, "range [%ld, %ld]: %s (value %ld)", min, max,
             ok ? "accepted" : "refused", out);
    disagree("na_parse_long", text, how);
  }
  if (ok && out != want) {
    snprintf(how, sizeof how, "range [%ld, %ld]: value %ld, expected %ld", min, max, out, want);
    disagree("na_parse_long", text, how);
  }
}

/* The mask as ranges, "0-3,5". */
static void mask_text(uint64_t mask, char *buf, size_t size) {
  size_t at = 0;
  buf[0] = '\0';
  for (int n = 0; n < 64; n++) {
    if (!((mask >> n) & 1)) continue;
    int last = n;
    while (last < 63 && ((mask >> (last + 1)) & 1)) last++;
    at += (size_t)snprintf(buf + at, size - at, at ? ",%d" : "%d", n);
    if (last > n) at += (size_t)snprintf(buf + at, size - at, "-%d", last);
    n = last;
  }
}

static void check_node_list(const char *text, int max_node) {
  uint64_t mask = 0x5a5a, want = 0;
  bool ok = na_parse_node_list(text, &mask, max_node);
  bool want_ok = ref_node_list(text, max_node, &want);
  char how[256];
  if (ok != want_ok) {
    snprintf(how, sizeof how, "max node %d: %s", max_node, ok ? "accepted" : "refused");
    disagree("na_parse_node_list", text, how);
  }
  if (!ok) return;
  if (mask != want || mask == 0 || (max_node < 63 && mask >> (max_node + 1)) != 0) {
    snprintf(how, sizeof how, "max node %d: mask %#llx, expected %#llx", max_node,
             (unsigned long long)mask, (unsigned long long)want);
    disagree("na_parse_node_list", text, how);
  }
  char again[512];
  mask_text(mask, again, sizeof again);
  uint64_t round = 0;
  if (!na_parse_node_list(again, &round, max_node) || round != mask) {
    snprintf(how, sizeof how, "mask %#llx printed as \"%s\" does not parse back",
             (unsigned long long)mask, again);
    disagree("na_parse_node_list", text, how);
  }
}

/* na_format against snprintf, into a buffer of `size` bytes. */
static void format_both(size_t size, const char *fmt, ...) {
  char mine[80], ref[80];
  memset(mine, 0x7e, sizeof mine);
  va_list a, b;
  va_start(a, fmt);
  va_copy(b, a);
  size_t n = na_format(mine, size, fmt, a);
  vsnprintf(ref, size, fmt, b);
  va_end(b);
  va_end(a);
  if (size > 0 && (strcmp(mine, ref) != 0 || n != strlen(ref)))
    disagree("na_format", fmt, "differs from snprintf");
  if (n > size || mine[size] != 0x7e) disagree("na_format", fmt, "wrote or counted past the end");
}

static void check_format(const uint8_t *p, const char *text) {
  size_t size = p[0] % 72;
  /* Negated as unsigned: LONG_MIN * -1 would overflow. */
  uint64_t raw = (uint64_t)p[1] << 56 | (uint64_t)p[2] << 24 | p[3];
  long l = (long)(p[4] & 1 ? 0 - raw : raw);
  unsigned u = (unsigned)p[2] << 16 | p[3];
  switch (p[5] % 5) {
  case 0: format_both(size, "value \"%s\" for %s", text, "NUMALLOC_X"); break;
  case 1: format_both(size, "%d %u %x %c|", (int)l, u, u, text[0] ? text[0] : '.'); break;
  case 2:
    format_both(size, "%ld %lu %lx %zu", l, (unsigned long)l, (unsigned long)l, (size_t)u);
    break;
  case 3: format_both(size, "at %p (class %u) %%", (void *)(uintptr_t)(l | 1), u); break;
  case 4: format_both(size, "%s%s%s", text, text, text); break;
  }
}

static const char *const checks[] = {"policy", "fallback", "bool",    "long", "nodes",
                                     "nodes",  "format",   "weights", "size"};

static bool skipped(int check) {
  const char *skip = getenv("FUZZ_OPTIONS_SKIP");
  if (skip == NULL) return false;
  size_t n = strlen(checks[check]);
  for (const char *s = strstr(skip, checks[check]); s != NULL; s = strstr(s + 1, checks[check]))
    if ((s == skip || s[-1] == ',') && (s[n] == '\0' || s[n] == ',')) return true;
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t p[8] = {0};
  size_t head = size < sizeof p ? size : sizeof p;
  memcpy(p, data, head);
  char text[256];
  size_t len = size - head < sizeof text - 1 ? size - head : sizeof text - 1;
  memcpy(text, data + head, len);
  text[len] = '\0';
  long min = (long)(p[1] % 16) - 4;                                  /* -4 .. 11 */
  long max = p[2] & 1 ? (long)p[3] % 24 : (long)p[3] << (p[4] % 40); /* small, or wide */
  if (max < min) max = min;
  if (skipped(p[0] % 9)) return 0;
  switch (p[0] % 9) {
  case 0: check_policy(text); break;
  case 1: check_fallback(text); break;
  case 2: check_bool(text); break;
  case 3: check_long(text, min, max); break;
  case 4: check_node_list(text, p[1] % 64); break;
  case 5: check_node_list(text, NA_MAX_NODES - 1); break;
  case 6: check_format(p + 1, text); break;
  case 7: check_weights(text, p[1] % 64); break;
  case 8: check_size(text); break;
  }
  return 0;
}
