/* zeroed.c: buffers that calloc zeroes and the program fills only as far as its data goes: a
 * runtime's zero-filled buffers (node's Buffer.alloc, a Python bytearray, numpy.zeros), I/O
 * buffers sized for the largest message, tables sized ahead. Each thread keeps 256 buffers of
 * 1-96 KiB (log-uniform) and replaces a random one at every step: the old one is checked and
 * freed, the new one is checked to read as zero at its start, at one word in every eight OS
 * pages and at its end, then filled to a random length (1/16 to all of it) with the
 * usual tag words; a small object from malloc holds each buffer. Every step also makes four
 * short-lived zeroed records of 16-256 bytes, checked whole. An allocator that clears memory the
 * kernel has just zeroed makes every buffer resident whole and pays for the writes; one that knows
 * fresh memory is zero touches only what the program fills. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define LIVE       256
#define MIN_SIZE   1024
#define MAX_SIZE   (96u << 10)
#define RECORDS    4
#define RECORD_MAX 256
#define SAMPLE     (8 * BENCH_PAGE) /* a fresh buffer's zero check: a word per this many bytes */
#define FULL_STEPS 6e5              /* per thread */

typedef struct buffer {
  bench_block b;
  size_t filled;     /* bytes written with the tag pattern; the rest must still read as zero */
  bench_block owner; /* the object that holds the buffer, from malloc */
} buffer;

static size_t steps;

static void check_zero(const unsigned char *p, size_t from, size_t to, const char *what) {
  for (size_t off = from; off < to; off++)
    if (p[off] != 0)
      bench_fail("%s %p: byte %zu is %02x, calloc'd memory must read as zero", what,
                 (const void *)p, off, p[off]);
}

static void *zeroed_alloc(size_t size) {
  void *p = calloc(1, size);
  if (p == NULL) bench_fail("calloc(1, %zu) returned NULL", size);
  return p;
}

/* The words a fresh buffer must hold as zero: its first line, a sparse sample, its last word. */
static void check_fresh(const unsigned char *p, size_t size) {
  check_zero(p, 0, size < 64 ? size : 64, "buffer");
  for (size_t off = SAMPLE; off + 8 <= size; off += SAMPLE) check_zero(p, off, off + 8, "buffer");
  check_zero(p, size - 8, size, "buffer");
}

static void buffer_free(buffer *buf) {
  if (buf->b.p == NULL) return;
  bench_check(buf->b.p, buf->filled, buf->b.tag, BENCH_LINE);
  if (buf->filled + 8 <= buf->b.size)
    check_zero(buf->b.p, buf->b.size - 8, buf->b.size, "buffer"); /* nothing wrote past the fill */
  bench_free(buf->b.p);
  buf->b.p = NULL;
  bench_block_free(&buf->owner, 8);
}

static void buffer_new(buffer *buf, bench_rng *rng, uint64_t tag) {
  size_t size = bench_log_range(rng, MIN_SIZE, MAX_SIZE);
  buf->b = (bench_block){zeroed_alloc(size), size, tag};
  check_fresh(buf->b.p, size);
  size_t filled = size / 16 + bench_rand(rng) % (size - size / 16 + 1);
  buf->filled = filled < 8 ? 8 : filled;
  bench_write(buf->b.p, 0, buf->filled, tag, BENCH_LINE);
  bench_block_new(&buf->owner, bench_range(rng, 32, 96), tag ^ 1, 8);
}

static void *run(void *arg) {
  int id = (int)(intptr_t)arg;
  bench_rng rng = {4100 + (uint64_t)id};
  buffer live[LIVE] = {0};
  for (size_t i = 0; i < steps; i++) {
    buffer *buf = &live[bench_rand(&rng) % LIVE];
    buffer_free(buf);
    buffer_new(buf, &rng, bench_tag(i, (uint64_t)id));
    for (int r = 0; r < RECORDS; r++) {
      size_t size = bench_range(&rng, 16, RECORD_MAX);
      unsigned char *record = zeroed_alloc(size);
      check_zero(record, 0, size, "record");
      bench_write(record, 0, size, bench_tag(i, (uint64_t)r), 8);
      bench_check(record, size, bench_tag(i, (uint64_t)r), 8);
      bench_free(record);
    }
  }
  for (size_t i = 0; i < LIVE; i++) buffer_free(&live[i]);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  steps = bench_scaled(&args, FULL_STEPS, 1000);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  bench_result("zeroed", bench_now() - start, NULL);
  return 0;
}
