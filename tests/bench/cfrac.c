/* cfrac.c: continued-fraction arithmetic with small heap-allocated big numbers, the pattern of
 * the cfrac factoring program: every operation returns a new number of a few words and its
 * operands die soon after, so nearly every object is short-lived and sizes vary with the
 * numbers' lengths. For 128-bit numbers N it expands sqrt(N) as a continued fraction, keeps the
 * convergents' numerators A modulo N and trial-divides every Q by small primes. One thread.
 *
 * The data check is arithmetic: at every step A(k-1)^2 = (-1)^k Q(k) (mod N) must hold, which
 * a damaged number (or an allocator handing out overlapping blocks) breaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define FULL_STEPS       800000
#define STEPS_PER_NUMBER 2000
#define PRIMES           40

/* A non-negative number: len 32-bit digits, least significant first, no leading zero digit. */
typedef struct num {
  uint32_t len;
  uint32_t d[];
} num;

static num *alloc_num(uint32_t len) {
  num *n = bench_malloc(sizeof(num) + (len ? len : 1) * sizeof(uint32_t));
  n->len = len;
  return n;
}

static num *trim(num *n) {
  while (n->len > 0 && n->d[n->len - 1] == 0) n->len--;
  return n;
}

static num *from_u64(uint64_t v) {
  num *n = alloc_num(2);
  n->d[0] = (uint32_t)v;
  n->d[1] = (uint32_t)(v >> 32);
  return trim(n);
}

static num *copy(const num *a) {
  num *n = alloc_num(a->len);
  memcpy(n->d, a->d, a->len * sizeof(uint32_t));
  return n;
}

static int cmp(const num *a, const num *b) {
  if (a->len != b->len) return a->len < b->len ? -1 : 1;
  for (uint32_t i = a->len; i-- > 0;)
    if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
  return 0;
}

static num *add(const num *a, const num *b) {
  if (a->len < b->len) {
    const num *t = a;
    a = b;
    b = t;
  }
  num *r = alloc_num(a->len + 1);
  uint64_t carry = 0;
  for (uint32_t i = 0; i < a->len; i++) {
    carry += (uint64_t)a->d[i] + (i < b->len ? b->d[i] : 0);
    r->d[i] = (uint32_t)carry;
    carry >>= 32;
  }
  r->d[a->len] = (uint32_t)carry;
  return trim(r);
}

/* a - b, with a >= b. */
static num *sub(const num *a, const num *b) {
  num *r = alloc_num(a->len);
  int64_t borrow = 0;
  for (uint32_t i = 0; i < a->len; i++) {
    int64_t t = (int64_t)a->d[i] - (i < b->len ? b->d[i] : 0) - borrow;
    borrow = t < 0;
    r->d[i] = (uint32_t)t;
  }
  if (borrow) bench_fail("cfrac: a subtraction went negative");
  return trim(r);
}

static num *mul(const num *a, const num *b) {
  num *r = alloc_num(a->len + b->len);
  memset(r->d, 0, (a->len + b->len) * sizeof(uint32_t));
  for (uint32_t i = 0; i < a->len; i++) {
    uint64_t carry = 0;
    for (uint32_t j = 0; j < b->len; j++) {
      carry += (uint64_t)a->d[i] * b->d[j] + r->d[i + j];
      r->d[i + j] = (uint32_t)carry;
      carry >>= 32;
    }
    r->d[i + b->len] = (uint32_t)carry;
  }
  return trim(r);
}

static num *shift_right1(const num *a) {
  num *r = alloc_num(a->len);
  for (uint32_t i = 0; i < a->len; i++)
    r->d[i] = (a->d[i] >> 1) | (i + 1 < a->len ? a->d[i + 1] << 31 : 0);
  return trim(r);
}

/* Quotient and remainder by one digit. */
static num *divmod_small(const num *a, uint32_t v, uint32_t *rem) {
  num *q = alloc_num(a->len);
  uint64_t r = 0;
  for (uint32_t i = a->len; i-- > 0;) {
    r = (r << 32) | a->d[i];
    q->d[i] = (uint32_t)(r / v);
    r %= v;
  }
  *rem = (uint32_t)r;
  return trim(q);
}

/* Long division (Knuth's algorithm D, base 2^32): *q = u / v, *r = u % v; v is not zero. */
static void divmod(const num *u, const num *v, num **q, num **r) {
  if (v->len == 0) bench_fail("cfrac: division by zero");
  if (cmp(u, v) < 0) {
    *q = alloc_num(0);
    *r = copy(u);
    return;
  }
  if (v->len == 1) {
    uint32_t rem;
    *q = divmod_small(u, v->d[0], &rem);
    *r = trim(from_u64(rem));
    return;
  }
  uint32_t m = u->len, n = v->len;
  int s = __builtin_clz(v->d[n - 1]);
  /* Normalised copies, so that the top digit of the divisor has its high bit set. */
  uint32_t *vn = bench_malloc(n * sizeof(uint32_t));
  uint32_t *un = bench_malloc((m + 1) * sizeof(uint32_t));
  for (uint32_t i = n - 1; i > 0; i--)
    vn[i] = (v->d[i] << s) | (s ? (uint32_t)((uint64_t)v->d[i - 1] >> (32 - s)) : 0);
  vn[0] = v->d[0] << s;
  un[m] = s ? (uint32_t)((uint64_t)u->d[m - 1] >> (32 - s)) : 0;
  for (uint32_t i = m - 1; i > 0; i--)
    un[i] = (u->d[i] << s) | (s ? (uint32_t)((uint64_t)u->d[i - 1] >> (32 - s)) : 0);
  un[0] = u->d[0] << s;

  num *quot = alloc_num(m - n + 1);
  for (uint32_t j = m - n + 1; j-- > 0;) {
    uint64_t top = ((uint64_t)un[j + n] << 32) | un[j + n - 1];
    uint64_t qhat = top / vn[n - 1], rhat = top % vn[n - 1];
    while (qhat >> 32 || qhat * vn[n - 2] > ((rhat << 32) | un[j + n - 2])) {
      qhat--;
      rhat += vn[n - 1];
      if (rhat >> 32) break;
    }
    int64_t borrow = 0, t;
    for (uint32_t i = 0; i < n; i++) {
      uint64_t p = qhat * vn[i];
      t = (int64_t)un[i + j] - borrow - (int64_t)(p & 0xffffffffu);
      un[i + j] = (uint32_t)t;
      borrow = (int64_t)(p >> 32) - (t >> 32);
    }
    t = (int64_t)un[j + n] - borrow;
    un[j + n] = (uint32_t)t;
    if (t < 0) { /* qhat was one too large: add the divisor back */
      qhat--;
      uint64_t carry = 0;
      for (uint32_t i = 0; i < n; i++) {
        carry += (uint64_t)un[i + j] + vn[i];
        un[i + j] = (uint32_t)carry;
        carry >>= 32;
      }
      un[j + n] += (uint32_t)carry;
    }
    quot->d[j] = (uint32_t)qhat;
  }
  num *rem = alloc_num(n);
  for (uint32_t i = 0; i < n; i++)
    rem->d[i] = (un[i] >> s) | (s ? (uint32_t)((uint64_t)un[i + 1] << (32 - s)) : 0);
  bench_free(vn);
  bench_free(un);
  *q = trim(quot);
  *r = trim(rem);
}

static num *mod(const num *a, const num *m) {
  num *q, *r;
  divmod(a, m, &q, &r);
  bench_free(q);
  return r;
}

static num *quotient(const num *a, const num *b) {
  num *q, *r;
  divmod(a, b, &q, &r);
  bench_free(r);
  return q;
}

/* floor(sqrt(n)) by Newton's iteration from above. */
static num *isqrt(const num *n) {
  num *x = alloc_num((n->len + 1) / 2 + 1); /* 2^(32 * ceil(len / 2)) > sqrt(n) */
  memset(x->d, 0, x->len * sizeof(uint32_t));
  x->d[x->len - 1] = 1;
  for (;;) {
    num *q = quotient(n, x), *s = add(x, q), *y = shift_right1(s);
    bench_free(q);
    bench_free(s);
    if (cmp(y, x) >= 0) {
      bench_free(y);
      return x;
    }
    bench_free(x);
    x = y;
  }
}

static const uint32_t primes[PRIMES] = {
    2,  3,  5,  7,  11, 13,  17,  19,  23,  29,  31,  37,  41,  43,  47,  53,  59,  61,  67,  71,
    73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173};

/* Divides out the small primes; returns 1 when nothing else is left (Q is smooth). */
static int smooth(const num *q) {
  num *rest = copy(q);
  for (int i = 0; i < PRIMES; i++)
    for (;;) {
      uint32_t rem;
      num *d = divmod_small(rest, primes[i], &rem);
      if (rem != 0) {
        bench_free(d);
        break;
      }
      bench_free(rest);
      rest = d;
    }
  int result = rest->len == 1 && rest->d[0] == 1;
  bench_free(rest);
  return result;
}

/* A(k-1)^2 mod N must be Q(k) for even k and N - Q(k) for odd k. */
static void verify(const num *a_prev, const num *q, const num *n, size_t k) {
  num *sq = mul(a_prev, a_prev), *lhs = mod(sq, n);
  num *rhs = k % 2 == 0 ? copy(q) : sub(n, q);
  if (cmp(lhs, rhs) != 0)
    bench_fail("cfrac: A(%zu)^2 is not (-1)^k Q(k) mod N: a number was damaged", k - 1);
  bench_free(sq);
  bench_free(lhs);
  bench_free(rhs);
}

/* Runs `steps` steps of the expansion of sqrt(n); returns how many Q were smooth. */
static size_t expand(const num *n, size_t steps) {
  num *a0 = isqrt(n), *sq = mul(a0, a0);
  if (cmp(sq, n) == 0) { /* a square has no expansion to speak of */
    bench_free(a0);
    bench_free(sq);
    return 0;
  }
  bench_free(sq);
  num *p = alloc_num(0), *q = from_u64(1);
  num *a_prev2 = from_u64(1), *a_prev = copy(a0); /* A(-1), A(0) */
  size_t found = 0;
  for (size_t k = 0; k < steps; k++) {
    /* a = floor((a0 + P) / Q); P' = a Q - P; Q' = (N - P'^2) / Q */
    num *s = add(a0, p), *a = quotient(s, q), *aq = mul(a, q), *p_next = sub(aq, p);
    num *pp = mul(p_next, p_next), *diff = sub(n, pp), *q_next = quotient(diff, q);
    bench_free(s);
    bench_free(aq);
    bench_free(pp);
    bench_free(diff);
    if (k > 0) { /* A(k) = a A(k-1) + A(k-2) mod N */
      num *t = mul(a, a_prev), *u = add(t, a_prev2), *a_next = mod(u, n);
      bench_free(t);
      bench_free(u);
      bench_free(a_prev2);
      a_prev2 = a_prev;
      a_prev = a_next;
    }
    bench_free(a);
    bench_free(p);
    bench_free(q);
    p = p_next;
    q = q_next;
    verify(a_prev, q, n, k + 1);
    found += smooth(q);
  }
  bench_free(p);
  bench_free(q);
  bench_free(a_prev);
  bench_free(a_prev2);
  bench_free(a0);
  return found;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t steps = bench_scaled(&args, FULL_STEPS, 200);
  bench_rng rng = {1979};
  size_t found = 0;

  double start = bench_now();
  for (size_t done = 0; done < steps; done += STEPS_PER_NUMBER) {
    num *n = alloc_num(4);
    for (int i = 0; i < 4; i++) n->d[i] = (uint32_t)bench_rand(&rng);
    n->d[3] |= 0x80000000u;
    found += expand(n, steps - done < STEPS_PER_NUMBER ? steps - done : STEPS_PER_NUMBER);
    bench_free(n);
  }
  double seconds = bench_now() - start;
  char extra[64];
  snprintf(extra, sizeof extra, "smooth=%zu", found);
  bench_result("cfrac", seconds, extra);
  return 0;
}
