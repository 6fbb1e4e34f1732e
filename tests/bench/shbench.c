/* shbench.c: the pattern of MicroQuill's sh6bench and sh8bench. Each thread allocates blocks
 * of sizes that sweep from 1 byte to 1,000 (small sizes many times more often than large ones)
 * into a buffer of pointers; when the buffer is full it frees its start in allocation order and
 * its end in reverse order, keeping a window of the last fifth that moves along the buffer, so
 * blocks die both young and old, in and against allocation order. With -m sh8 the blocks of the
 * start of the buffer are handed to the next thread, which frees them (sh8bench's cross-thread
 * frees). Every block carries a tag byte in its first and last bytes. */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define CALLS        10000 /* pointers in a thread's buffer, as the published run */
#define MAX_BLOCK    1000
#define FULL_REPEATS 1500
#define HANDOFF      4096 /* pointers in a hand-off batch */

typedef struct batch {
  struct batch *next;
  size_t count;
  uint8_t *p[HANDOFF];
  uint16_t size[HANDOFF];
} batch;

typedef struct worker {
  int id;
  _Alignas(64) _Atomic(batch *) inbox; /* batches handed to this thread */
  _Atomic int done;
} worker;

static worker *workers;
static int nthreads, cross;
static size_t repeats;

/* A block's tag byte depends on its address and size, so a block that was overwritten by a
 * neighbour, or handed out twice, fails. */
static uint8_t tag_of(const void *p, size_t size) {
  uintptr_t v = (uintptr_t)p ^ size * 0x9e3779b97f4a7c15ull;
  return (uint8_t)((v >> 4) ^ (v >> 17) ^ (v >> 29)) | 1;
}

/* Blocks of at least 3 bytes also hold their size (mod 256) in the second byte. */
static uint8_t *block_new(size_t size) {
  uint8_t *p = bench_malloc(size);
  uint8_t t = tag_of(p, size);
  p[0] = t;
  p[size - 1] = t;
  if (size >= 3) p[1] = (uint8_t)size;
  return p;
}

static void block_check(const uint8_t *p, size_t size) {
  uint8_t t = tag_of(p, size);
  if (p[0] != t || p[size - 1] != t || (size >= 3 && p[1] != (uint8_t)size))
    bench_fail("shbench: block %p of %zu bytes was damaged", (const void *)p, size);
}

static void free_inbox(worker *w) {
  batch *b = atomic_exchange(&w->inbox, NULL);
  while (b != NULL) {
    batch *next = b->next;
    for (size_t i = 0; i < b->count; i++) {
      block_check(b->p[i], b->size[i]);
      bench_free(b->p[i]);
    }
    bench_free(b);
    b = next;
  }
}

static void send(worker *to, batch *b) {
  batch *head = atomic_load(&to->inbox);
  do b->next = head;
  while (!atomic_compare_exchange_weak(&to->inbox, &head, b));
}

static void *run(void *arg) {
  worker *w = arg;
  worker *next = &workers[(w->id + 1) % nthreads];
  uint8_t **mem = bench_malloc(CALLS * sizeof *mem);
  uint16_t *sizes = bench_malloc(CALLS * sizeof *sizes);
  size_t mp = 0, save_start = CALLS, save_end = CALLS;
  for (size_t r = 0; r < repeats; r++)
    for (size_t base = 1; base < MAX_BLOCK; base = base * 3 / 2 + 1)
      for (size_t size = base; size; size /= 2) {
        int iterations = size < 100 ? 250 : size < 1000 ? 50 : 10;
        while (iterations--) {
          sizes[mp] = (uint16_t)size;
          mem[mp++] = block_new(size);
          if (mp == save_start) mp = save_end;
          if (mp < CALLS) continue;
          /* the buffer is full: move the kept window, free the rest */
          save_start = save_end >= CALLS ? 0 : save_end;
          save_end = save_start + CALLS / 5 > CALLS ? CALLS : save_start + CALLS / 5;
          batch *out = NULL;
          for (size_t i = 0; i < save_start; i++) {
            block_check(mem[i], sizes[i]);
            if (cross && nthreads > 1) {
              if (out == NULL) {
                out = bench_malloc(sizeof *out);
                out->count = 0;
              }
              out->size[out->count] = sizes[i];
              out->p[out->count++] = mem[i];
              if (out->count == HANDOFF) {
                send(next, out);
                out = NULL;
              }
            } else {
              bench_free(mem[i]);
            }
          }
          if (out != NULL) send(next, out);
          for (size_t i = CALLS; i > save_end; i--) {
            block_check(mem[i - 1], sizes[i - 1]);
            bench_free(mem[i - 1]);
          }
          /* a kept window at the start is skipped as any other: overwriting its slots
           * would lose its blocks, and the program's memory would grow without end */
          mp = save_start == 0 ? save_end : 0;
          if (cross) free_inbox(w);
        }
      }
  for (size_t i = 0; i < CALLS; i++)
    if (i < mp || (i >= save_start && i < save_end)) {
      block_check(mem[i], sizes[i]);
      bench_free(mem[i]);
    }
  atomic_store(&w->done, 1);
  worker *prev = &workers[(w->id + nthreads - 1) % nthreads];
  /* what the previous thread still sends is freed as it comes, as a program would; left
   * waiting, it piled up millions of blocks whenever one thread finished first */
  while (cross && !atomic_load(&prev->done)) {
    free_inbox(w);
    sched_yield();
  }
  free_inbox(w);
  bench_free(mem);
  bench_free(sizes);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  if (args.mode != NULL && strcmp(args.mode, "sh6") != 0 && strcmp(args.mode, "sh8") != 0)
    bench_fail("unknown mode %s: sh6 or sh8", args.mode);
  cross = args.mode != NULL && strcmp(args.mode, "sh8") == 0;
  nthreads = args.threads;
  repeats = bench_scaled(&args, FULL_REPEATS, 1);
  workers = aligned_alloc(64, sizeof(worker) * (size_t)nthreads);
  if (workers == NULL) bench_fail("no memory for the workers");
  for (int i = 0; i < nthreads; i++) {
    workers[i].id = i;
    atomic_init(&workers[i].inbox, NULL);
    atomic_init(&workers[i].done, 0);
  }
  double start = bench_now();
  bench_spawn(nthreads, run, workers, sizeof *workers);
  double seconds = bench_now() - start;
  free(workers);
  bench_result(cross ? "sh8bench" : "sh6bench", seconds, NULL);
  return 0;
}
