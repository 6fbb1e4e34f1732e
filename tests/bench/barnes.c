/* barnes.c: Barnes-Hut n-body steps, the pattern of the barnes program: every step builds an
 * octree over the bodies with one heap node per cell, computes each body's force by walking the
 * tree, moves the bodies and frees the whole tree, so tens of thousands of equal-sized nodes are
 * allocated in a burst and all die together. One thread.
 *
 * The data check: every cell's mass must equal the sum of its children's, the root's must
 * equal the total, and sampled forces must agree with direct summation to within the method's
 * error; a damaged node breaks these. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BODIES     4096
#define FULL_STEPS 25
#define THETA      0.5
#define EPS2       1e-4
#define DT         1e-3
#define SAMPLED    5 /* bodies checked against direct summation at every step */

typedef struct body {
  double pos[3], vel[3], acc[3], mass;
} body;

typedef struct cell {
  double center[3], half; /* the cube this cell covers */
  double mass, com[3];    /* total mass and centre of mass */
  struct cell *child[8];
  body *leaf; /* a cell holding exactly one body */
  size_t count;
} cell;

static cell *cell_new(const double center[3], double half) {
  cell *c = bench_malloc(sizeof *c);
  memset(c, 0, sizeof *c);
  memcpy(c->center, center, sizeof c->center);
  c->half = half;
  return c;
}

static int octant(const cell *c, const double pos[3]) {
  return (pos[0] > c->center[0]) | (pos[1] > c->center[1]) << 1 | (pos[2] > c->center[2]) << 2;
}

static cell *child_for(cell *c, int o) {
  if (c->child[o] == NULL) {
    double center[3], h = c->half / 2;
    for (int d = 0; d < 3; d++) center[d] = c->center[d] + ((o >> d) & 1 ? h : -h);
    c->child[o] = cell_new(center, h);
  }
  return c->child[o];
}

static void insert(cell *c, body *b, int depth) {
  if (c->count == 0) {
    c->leaf = b;
    c->count = 1;
    return;
  }
  if (depth > 60) /* bodies at one point: keep them in one leaf's mass */
    return (void)c->count++;
  if (c->leaf != NULL) {
    body *old = c->leaf;
    c->leaf = NULL;
    insert(child_for(c, octant(c, old->pos)), old, depth + 1);
  }
  c->count++;
  insert(child_for(c, octant(c, b->pos)), b, depth + 1);
}

/* Fills in masses and centres of mass; returns the number of cells. */
static size_t summarize(cell *c) {
  size_t cells = 1;
  if (c->leaf != NULL) {
    c->mass = c->leaf->mass * (double)c->count;
    memcpy(c->com, c->leaf->pos, sizeof c->com);
    return cells;
  }
  double m = 0, com[3] = {0, 0, 0};
  for (int o = 0; o < 8; o++) {
    cell *k = c->child[o];
    if (k == NULL) continue;
    cells += summarize(k);
    m += k->mass;
    for (int d = 0; d < 3; d++) com[d] += k->mass * k->com[d];
  }
  c->mass = m;
  for (int d = 0; d < 3; d++) c->com[d] = m > 0 ? com[d] / m : c->center[d];
  return cells;
}

static void verify(const cell *c) {
  if (c->leaf != NULL) return;
  double m = 0;
  for (int o = 0; o < 8; o++)
    if (c->child[o] != NULL) {
      verify(c->child[o]);
      m += c->child[o]->mass;
    }
  if (fabs(m - c->mass) > 1e-9 * (c->mass + 1))
    bench_fail("barnes: a cell's mass %.17g is not the sum of its children's %.17g", c->mass, m);
}

static void pull(double acc[3], const double from[3], const double to[3], double mass) {
  double d[3], r2 = EPS2;
  for (int k = 0; k < 3; k++) {
    d[k] = to[k] - from[k];
    r2 += d[k] * d[k];
  }
  double f = mass / (r2 * sqrt(r2));
  for (int k = 0; k < 3; k++) acc[k] += f * d[k];
}

static void force(const cell *c, const body *b, double acc[3]) {
  if (c->leaf == b) return;
  double d2 = 0;
  for (int k = 0; k < 3; k++) d2 += (c->com[k] - b->pos[k]) * (c->com[k] - b->pos[k]);
  if (c->leaf != NULL || 4 * c->half * c->half < THETA * THETA * d2) {
    pull(acc, b->pos, c->com, c->mass);
    return;
  }
  for (int o = 0; o < 8; o++)
    if (c->child[o] != NULL) force(c->child[o], b, acc);
}

static void tree_free(cell *c) {
  for (int o = 0; o < 8; o++)
    if (c->child[o] != NULL) tree_free(c->child[o]);
  bench_free(c);
}

/* Within 5% of direct summation, or 1% of the mean force where forces nearly cancel. */
static void check_sample(const body *bodies, size_t n, size_t i, double mean_acc) {
  double direct[3] = {0, 0, 0};
  for (size_t j = 0; j < n; j++)
    if (j != i) pull(direct, bodies[i].pos, bodies[j].pos, bodies[j].mass);
  double err = 0, norm = 0;
  for (int k = 0; k < 3; k++) {
    err += (direct[k] - bodies[i].acc[k]) * (direct[k] - bodies[i].acc[k]);
    norm += direct[k] * direct[k];
  }
  if (sqrt(err) > 0.05 * sqrt(norm) + 0.01 * mean_acc)
    bench_fail("barnes: body %zu's force is %.1f%% off direct summation", i,
               100 * sqrt(err / norm));
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t steps = bench_scaled(&args, FULL_STEPS, 1);
  bench_rng rng = {1986};
  body *bodies = calloc(BODIES, sizeof *bodies);
  if (bodies == NULL) bench_fail("no memory for the bodies");
  for (size_t i = 0; i < BODIES; i++) { /* a Plummer-like sphere: denser towards the middle */
    double r = pow((double)(bench_rand(&rng) >> 11) / 9007199254740992.0, 1.5);
    for (int d = 0; d < 3; d++)
      bodies[i].pos[d] = r * ((double)(bench_rand(&rng) >> 11) / 4503599627370496.0 - 1);
    bodies[i].mass = 1.0 / BODIES;
  }
  size_t cells = 0;

  double start = bench_now();
  for (size_t s = 0; s < steps; s++) {
    double lo = INFINITY, hi = -INFINITY, center[3] = {0, 0, 0};
    for (size_t i = 0; i < BODIES; i++)
      for (int d = 0; d < 3; d++) {
        lo = fmin(lo, bodies[i].pos[d]);
        hi = fmax(hi, bodies[i].pos[d]);
      }
    for (int d = 0; d < 3; d++) center[d] = (lo + hi) / 2;
    cell *root = cell_new(center, (hi - lo) / 2 + 1e-9);
    for (size_t i = 0; i < BODIES; i++) insert(root, &bodies[i], 0);
    cells += summarize(root);
    verify(root);
    if (fabs(root->mass - 1.0) > 1e-9)
      bench_fail("barnes: the root's mass is %.17g, not 1", root->mass);
    for (size_t i = 0; i < BODIES; i++) {
      memset(bodies[i].acc, 0, sizeof bodies[i].acc);
      force(root, &bodies[i], bodies[i].acc);
    }
    double mean_acc = 0;
    for (size_t i = 0; i < BODIES; i++)
      mean_acc += sqrt(bodies[i].acc[0] * bodies[i].acc[0] + bodies[i].acc[1] * bodies[i].acc[1] +
                       bodies[i].acc[2] * bodies[i].acc[2]);
    mean_acc /= BODIES;
    for (size_t k = 0; k < SAMPLED; k++)
      check_sample(bodies, BODIES, bench_rand(&rng) % BODIES, mean_acc);
    for (size_t i = 0; i < BODIES; i++)
      for (int d = 0; d < 3; d++) {
        bodies[i].vel[d] += DT * bodies[i].acc[d];
        bodies[i].pos[d] += DT * bodies[i].vel[d];
      }
    tree_free(root);
  }
  double seconds = bench_now() - start;
  free(bodies);
  char extra[64];
  snprintf(extra, sizeof extra, "cells=%zu", cells);
  bench_result("barnes", seconds, extra);
  return 0;
}
