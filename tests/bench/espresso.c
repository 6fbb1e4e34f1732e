/* espresso.c: logic minimisation's core step, the complement of a cover of cubes by recursive
 * Shannon expansion, as in the espresso program. Cubes are small bit vectors (two bits per
 * variable) allocated one by one; every level of the recursion builds two cofactor covers,
 * complements them and merges the results, so many small objects of a few sizes live for a
 * moment and the cover arrays grow with realloc. One thread.
 *
 * The data check is logical: for random inputs exactly one of the function and its complement
 * must be true, which a damaged cube breaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define FULL_PROBLEMS 300
#define SAMPLES       256

typedef uint64_t word;

typedef struct cover {
  size_t count, cap;
  word **cubes;
} cover;

static int nvars, nwords; /* two bits per variable: 01 means x=0, 10 means x=1, 11 either */

static word *cube_new(void) { return bench_malloc((size_t)nwords * sizeof(word)); }

static word *cube_universe(void) {
  word *c = cube_new();
  for (int w = 0; w < nwords; w++) c[w] = ~(word)0;
  int tail = 2 * nvars % 64;
  if (tail) c[nwords - 1] = ((word)1 << tail) - 1;
  return c;
}

static unsigned var_of(const word *c, int v) {
  return (unsigned)(c[2 * v / 64] >> (2 * v % 64)) & 3;
}

static void set_var(word *c, int v, unsigned bits) {
  word *w = &c[2 * v / 64];
  *w = (*w & ~((word)3 << (2 * v % 64))) | ((word)bits << (2 * v % 64));
}

static void add_cube(cover *f, word *c) {
  if (f->count == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 4;
    f->cubes = bench_realloc(f->cubes, f->cap * sizeof *f->cubes);
  }
  f->cubes[f->count++] = c;
}

static void cover_free(cover *f) {
  for (size_t i = 0; i < f->count; i++) bench_free(f->cubes[i]);
  bench_free(f->cubes);
  f->cubes = NULL;
  f->count = f->cap = 0;
}

static int is_universe(const word *c) {
  for (int v = 0; v < nvars; v++)
    if (var_of(c, v) != 3) return 0;
  return 1;
}

/* The cubes of f that allow var = value, with var made free. */
static cover cofactor(const cover *f, int var, unsigned value) {
  cover r = {0};
  for (size_t i = 0; i < f->count; i++)
    if (var_of(f->cubes[i], var) & value) {
      word *c = cube_new();
      memcpy(c, f->cubes[i], (size_t)nwords * sizeof(word));
      set_var(c, var, 3);
      add_cube(&r, c);
    }
  return r;
}

/* The variable bound in the most cubes, or -1 when none is bound. */
static int split_var(const cover *f) {
  int best = -1;
  size_t best_n = 0;
  for (int v = 0; v < nvars; v++) {
    size_t n = 0;
    for (size_t i = 0; i < f->count; i++) n += var_of(f->cubes[i], v) != 3;
    if (n > best_n) {
      best_n = n;
      best = v;
    }
  }
  return best;
}

static cover complement(const cover *f) {
  cover r = {0};
  if (f->count == 0) {
    add_cube(&r, cube_universe());
    return r;
  }
  for (size_t i = 0; i < f->count; i++)
    if (is_universe(f->cubes[i])) return r;
  if (f->count == 1) { /* De Morgan: one cube per bound variable, with that variable flipped */
    for (int v = 0; v < nvars; v++) {
      unsigned bits = var_of(f->cubes[0], v);
      if (bits == 3) continue;
      word *c = cube_universe();
      set_var(c, v, bits ^ 3);
      add_cube(&r, c);
    }
    return r;
  }
  int v = split_var(f);
  for (unsigned value = 1; value <= 2; value++) {
    cover part = cofactor(f, v, value), comp = complement(&part);
    for (size_t i = 0; i < comp.count; i++) {
      set_var(comp.cubes[i], v, value);
      add_cube(&r, comp.cubes[i]);
    }
    bench_free(comp.cubes);
    cover_free(&part);
  }
  return r;
}

static int contains(const word *c, const word *minterm) {
  for (int w = 0; w < nwords; w++)
    if ((c[w] & minterm[w]) != minterm[w]) return 0;
  return 1;
}

static int eval(const cover *f, const word *minterm) {
  for (size_t i = 0; i < f->count; i++)
    if (contains(f->cubes[i], minterm)) return 1;
  return 0;
}

static size_t solve(bench_rng *rng) {
  cover f = {0};
  size_t ncubes = bench_range(rng, 8, 14);
  for (size_t i = 0; i < ncubes; i++) {
    word *c = cube_universe();
    size_t lits = bench_range(rng, 3, 7);
    for (size_t l = 0; l < lits; l++)
      set_var(c, (int)(bench_rand(rng) % (uint64_t)nvars), 1 + (unsigned)(bench_rand(rng) & 1));
    add_cube(&f, c);
  }
  cover g = complement(&f);
  word *m = cube_new();
  for (int s = 0; s < SAMPLES; s++) {
    memset(m, 0, (size_t)nwords * sizeof(word));
    for (int v = 0; v < nvars; v++) set_var(m, v, 1 + (unsigned)(bench_rand(rng) & 1));
    if (eval(&f, m) == eval(&g, m))
      bench_fail("espresso: an input is in both or neither of a function and its complement");
  }
  bench_free(m);
  size_t size = g.count;
  cover_free(&g);
  cover_free(&f);
  return size;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t problems = bench_scaled(&args, FULL_PROBLEMS, 5);
  bench_rng rng = {1986};
  nvars = 40;
  nwords = (2 * nvars + 63) / 64;
  size_t cubes = 0;

  double start = bench_now();
  for (size_t i = 0; i < problems; i++) cubes += solve(&rng);
  double seconds = bench_now() - start;
  char extra[64];
  snprintf(extra, sizeof extra, "complement_cubes=%zu", cubes);
  bench_result("espresso", seconds, extra);
  return 0;
}
