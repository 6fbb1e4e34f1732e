/* fuzz_alloc.c: a libFuzzer target that reads its input as a program of allocator calls on
 * a table of slots, against the numalloc core linked in. Every block is filled with a
 * pattern from its slot's seed (head and tail, up to 4 KiB each) and checked before it is
 * freed or resized; a second thread frees blocks sent through a queue and allocates blocks
 * on request, so remote frees, full-page notifications and adoption after thread exit are
 * all reachable; injected mapping failures must give NULL with ENOMEM and nothing worse.
 *
 * Input: a sequence of [op][args...]; missing argument bytes read as zero. A failed check
 * aborts with one line saying what differs, which libFuzzer reports as a crash. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "numalloc.h"
#include "test_util.h"

#define SLOTS      64
#define CHECK_SPAN 4096 /* bytes checked at each end of a block */
#define QUEUE      64

/* ---- input reading -------------------------------------------------------------------- */

typedef struct input_s {
  const uint8_t *data;
  size_t size, at;
} input_t;

static uint8_t next_byte(input_t *in) { return in->at < in->size ? in->data[in->at++] : 0; }

/* A size from two bytes, weighted to small: mostly below 1 KiB, some to 256 KiB (the small
 * classes' end), some large spans, rarely a huge block (a segment of its own). */
static size_t next_size(input_t *in) {
  uint8_t kind = next_byte(in), a = next_byte(in), b = next_byte(in);
  size_t low = (size_t)a | (size_t)b << 8;
  switch (kind % 16) {
  case 0: return 0;
  case 1: return low % 16;
  case 11: return 1024 + low * 4;                  /* to 257 KiB */
  case 12: return (256 << 10) - 64 + (low % 128);  /* around the small/large boundary */
  case 13: return ((size_t)1 << 20) + low * 16;    /* 1 to 2 MiB */
  case 14: return ((size_t)16 << 20) - 8192 + low; /* around the large/huge boundary */
  case 15: return (kind & 0x80) ? ((size_t)33 << 20) + low : (size_t)a << 12;
  default: return low % 1025;
  }
}

static size_t next_alignment(input_t *in) { return (size_t)1 << (next_byte(in) % 18); }

/* ---- blocks and their contents -------------------------------------------------------- */

typedef struct block_s {
  uint8_t *p;
  size_t size;
  uint8_t seed;
} block_t;

static void fill_range(const block_t *b, size_t from, size_t to) {
  tu_fill_range(b->p, from, to, b->seed);
}

/* Fills the head and the tail that `verify` checks. */
static void fill_block(const block_t *b) {
  size_t head = b->size < CHECK_SPAN ? b->size : CHECK_SPAN;
  fill_range(b, 0, head);
  size_t tail = b->size > 2 * CHECK_SPAN ? b->size - CHECK_SPAN : head;
  fill_range(b, tail, b->size);
}

static __attribute__((noreturn)) void broken(const char *what, const void *p, size_t size,
                                             size_t at) {
  fprintf(stderr, "fuzz_alloc: %s: block %p of %zu bytes, offset %zu\n", what, p, size, at);
  abort();
}

static void verify_range(const block_t *b, size_t from, size_t to, const char *what) {
  size_t at = from < to ? tu_mismatch_range(b->p, from, to, b->seed) : SIZE_MAX;
  if (at != SIZE_MAX) broken(what, b->p, b->size, at);
}

/* Checks what fill_block wrote, as far as the first `keep` bytes reach (after a realloc
 * that kept only those). */
static void verify_kept(const block_t *b, size_t keep, const char *what) {
  size_t head = b->size < CHECK_SPAN ? b->size : CHECK_SPAN;
  verify_range(b, 0, head < keep ? head : keep, what);
  size_t tail = b->size > 2 * CHECK_SPAN ? b->size - CHECK_SPAN : head;
  verify_range(b, tail, b->size < keep ? b->size : keep, what);
}

static void verify_block(const block_t *b, const char *what) { verify_kept(b, b->size, what); }

/* A fresh block: aligned as asked, usable for its whole size, owned by numalloc. */
static void accept_block(block_t *b, void *p, size_t size, size_t alignment, uint8_t seed) {
  if (alignment < 16) alignment = 16;
  if (p == NULL) broken("allocation failed without an injected fault", p, size, 0);
  if ((uintptr_t)p % alignment != 0) broken("misaligned block", p, size, alignment);
  if (numalloc_usable_size(p) < size) broken("usable size below the request", p, size, 0);
  if (numalloc_node_of(p) == -1) broken("block not owned by numalloc", p, size, 0);
  *b = (block_t){p, size, seed};
  fill_block(b);
}

static void release(block_t *b) {
  if (b->p == NULL) return;
  verify_block(b, "contents changed before free");
  numalloc_free(b->p);
  *b = (block_t){NULL, 0, 0};
}

/* ---- the second thread ---------------------------------------------------------------- */

typedef struct request_s {
  block_t block; /* to free, or (p NULL) a block of block.size to allocate */
} request_t;

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static request_t queue[QUEUE];
static int queue_head, queue_count, queue_busy;
static block_t reply;
static bool reply_ready, worker_quit, worker_running;
static pthread_t worker;

static void *worker_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&queue_lock);
  for (;;) {
    while (queue_count == 0 && !worker_quit) pthread_cond_wait(&queue_cond, &queue_lock);
    if (queue_count == 0) break;
    request_t r = queue[queue_head];
    queue_head = (queue_head + 1) % QUEUE;
    queue_count--;
    queue_busy = 1;
    pthread_mutex_unlock(&queue_lock);
    if (r.block.p != NULL) {
      release(&r.block);
    } else {
      block_t b;
      accept_block(&b, numalloc_malloc(r.block.size), r.block.size, 16, r.block.seed);
      r.block = b;
    }
    pthread_mutex_lock(&queue_lock);
    queue_busy = 0;
    if (r.block.p != NULL) {
      reply = r.block;
      reply_ready = true;
    }
    pthread_cond_broadcast(&queue_cond);
  }
  pthread_mutex_unlock(&queue_lock);
  return NULL;
}

static void worker_start(void) {
  worker_quit = false;
  if (pthread_create(&worker, NULL, worker_main, NULL) != 0) abort();
  worker_running = true;
}

static void send(request_t r) {
  if (!worker_running) worker_start();
  pthread_mutex_lock(&queue_lock);
  while (queue_count == QUEUE) pthread_cond_wait(&queue_cond, &queue_lock);
  queue[(queue_head + queue_count) % QUEUE] = r;
  queue_count++;
  pthread_cond_broadcast(&queue_cond);
  pthread_mutex_unlock(&queue_lock);
}

static void drain(void) {
  if (!worker_running) return;
  pthread_mutex_lock(&queue_lock);
  while (queue_count > 0 || queue_busy) pthread_cond_wait(&queue_cond, &queue_lock);
  pthread_mutex_unlock(&queue_lock);
}

/* The worker exits (its pages are abandoned with blocks still in use here); the next
 * request starts a new one, which may adopt them. */
static void worker_restart(void) {
  if (!worker_running) return;
  pthread_mutex_lock(&queue_lock);
  worker_quit = true;
  pthread_cond_broadcast(&queue_cond);
  pthread_mutex_unlock(&queue_lock);
  pthread_join(worker, NULL);
  worker_running = false;
}

static block_t remote_alloc(size_t size, uint8_t seed) {
  send((request_t){{NULL, size, seed}});
  pthread_mutex_lock(&queue_lock);
  while (!reply_ready) pthread_cond_wait(&queue_cond, &queue_lock);
  reply_ready = false;
  block_t b = reply;
  pthread_mutex_unlock(&queue_lock);
  return b;
}

/* ---- operations ----------------------------------------------------------------------- */

static block_t slots[SLOTS];

static void op_malloc(input_t *in, block_t *b, uint8_t seed) {
  size_t size = next_size(in);
  accept_block(b, numalloc_malloc(size), size, 16, seed);
}

static void op_calloc(input_t *in, block_t *b, uint8_t seed) {
  size_t count = next_byte(in) % 17, size = next_size(in) / 16 + 1;
  uint8_t *p = numalloc_calloc(count, size);
  size_t total = count * size;
  if (p == NULL) broken("calloc failed", p, total, 0);
  for (size_t i = 0; i < total; i++)
    if (p[i] != 0) broken("calloc memory not zero", p, total, i);
  accept_block(b, p, total, 16, seed);
}

static void op_realloc(input_t *in, block_t *b, uint8_t seed) {
  size_t size = next_size(in);
  if (b->p != NULL) verify_block(b, "contents changed before realloc");
  uint8_t *p = numalloc_realloc(b->p, size);
  if (b->p != NULL && size == 0) { /* as in glibc: the block is freed, and NULL says so */
    if (p != NULL) broken("realloc to size 0 returned a block", p, 0, 0);
    b->p = NULL;
    b->size = 0;
    return;
  }
  if (p == NULL) broken("realloc failed", b->p, size, 0);
  block_t moved = {p, b->p != NULL ? b->size : 0, b->seed};
  verify_kept(&moved, size, "realloc lost the contents");
  b->p = NULL;
  accept_block(b, p, size, 16, seed);
}

static void op_aligned(input_t *in, block_t *b, uint8_t seed, int how) {
  size_t alignment = next_alignment(in), size = next_size(in);
  void *p = NULL;
  if (how == 0) {
    p = numalloc_memalign(alignment, size);
  } else if (how == 1) {
    size -= size % alignment;
    p = numalloc_aligned_alloc(alignment, size);
  } else {
    if (alignment < sizeof(void *)) alignment = sizeof(void *);
    int rc = numalloc_posix_memalign(&p, alignment, size);
    if (rc != 0) broken("posix_memalign failed", NULL, size, (size_t)rc);
  }
  accept_block(b, p, size, alignment, seed);
}

/* The usable size covers the request, and all of it may be written. */
static void op_usable(block_t *b) {
  if (b->p == NULL) return;
  size_t usable = numalloc_usable_size(b->p);
  if (usable < b->size) broken("usable size shrank", b->p, b->size, usable);
  if (usable > b->size) b->p[usable - 1] = 0x5a; /* past what verify_block reads */
}

/* Some mappings fail: an allocation may give NULL, then only with ENOMEM, and the heap must
 * stay sound and work again once mapping works. */
static void op_fault(input_t *in, block_t *b, uint8_t seed) {
  drain();
  int failures = 1 + next_byte(in) % 3;
  size_t size = next_size(in);
  na_os_inject_map_failures(failures);
  errno = 0;
  void *p = numalloc_malloc(size);
  int err = errno;
  na_os_inject_map_failures(0);
  if (p == NULL) {
    if (err != ENOMEM) broken("allocation failed without ENOMEM", NULL, size, (size_t)err);
    p = numalloc_malloc(size);
  }
  accept_block(b, p, size, 16, seed);
}

static void op_onnode(input_t *in, block_t *b, uint8_t seed) {
  size_t size = next_size(in);
  accept_block(b, numalloc_malloc_onnode(size, 0), size, 16, seed);
}

static void step(input_t *in) {
  uint8_t op = next_byte(in);
  block_t *b = &slots[next_byte(in) % SLOTS];
  uint8_t seed = (uint8_t)(in->at * 13);
  switch (op % 16) {
  case 0:
  case 1:
    release(b);
    op_malloc(in, b, seed);
    break;
  case 2:
    release(b);
    op_calloc(in, b, seed);
    break;
  case 3:
  case 4: release(b); break;
  case 5:
  case 6: op_realloc(in, b, seed); break;
  case 7:
    release(b);
    op_aligned(in, b, seed, op / 16 % 3);
    break;
  case 8: op_usable(b); break;
  case 9: /* the other thread frees it */
    if (b->p != NULL) send((request_t){*b});
    *b = (block_t){NULL, 0, 0};
    break;
  case 10: /* the other thread allocates it; we free it later */
    release(b);
    *b = remote_alloc(next_size(in), seed);
    break;
  case 11: drain(); break;
  case 12:
    drain();
    worker_restart();
    break;
  case 13:
    release(b);
    op_onnode(in, b, seed);
    break;
  case 14:
    release(b);
    op_fault(in, b, seed);
    break;
  case 15:
    if (op & 0x80) numalloc_collect();
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input_t in = {data, size, 0};
  while (in.at < in.size) step(&in);
  drain();
  for (int i = 0; i < SLOTS; i++) release(&slots[i]);
  return 0;
}
