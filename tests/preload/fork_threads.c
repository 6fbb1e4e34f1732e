/* fork_threads.c: fork while other threads are inside the allocator. The child must be able
 * to allocate, free blocks it inherited (including blocks of threads that do not exist in
 * the child), start a thread of its own and exit 0. A child that does not finish within its
 * time limit has deadlocked on a lock some other thread held at the fork: it is killed and
 * reported. Done in a loop, because a fork lands inside a critical section only by chance. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preload_test.h"

#define NONE ((size_t)-1)

enum { BUSY_THREADS = 2, GIFTS = 64, FORKS = 120, RING = 256 };

/* How long a child may take; NUMALLOC_TEST_CHILD_SECONDS overrides it (the self-tests). */
static int child_seconds = 20;

struct block {
  void *p;
  size_t size;
  uint64_t tag;
};

/* Blocks each busy thread allocated at its start and never touches again: the child frees
 * them although their owner does not exist in the child. */
static struct block gifts[BUSY_THREADS][GIFTS];
static pthread_barrier_t gifts_ready;
static atomic_int stop;

/* Mostly small blocks; one in a hundred is up to `large` bytes. */
static size_t pick_size(uint64_t r, size_t large) {
  unsigned kind = (unsigned)(r % 100);
  if (kind < 90) return (r >> 8) % 512 + 1;
  if (kind < 99) return (r >> 8) % 16384 + 1;
  return (r >> 8) % large + 1;
}

static struct block make_sized_block(uint64_t *rng, size_t large) {
  uint64_t r = tu_rand(rng);
  struct block b = {NULL, pick_size(r, large), r};
  b.p = malloc(b.size);
  if (b.p) tu_fill(b.p, b.size, b.tag);
  return b;
}

/* Busy threads sometimes take large blocks; the child stays small so forks stay cheap. */
static struct block make_block(uint64_t *rng) { return make_sized_block(rng, 1024 * 1024); }
static struct block make_child_block(uint64_t *rng) { return make_sized_block(rng, 65536); }

/* Returns 0 when the block's pattern is intact. */
static int verify_and_free(struct block *b) {
  if (!b->p) return 0;
  size_t bad = tu_mismatch(b->p, b->size, b->tag);
  free(b->p);
  b->p = NULL;
  return bad != NONE;
}

static void *busy(void *arg) {
  int self = (int)(uintptr_t)arg;
  uint64_t rng = 0xF0F0u + self;
  for (int i = 0; i < GIFTS; i++) gifts[self][i] = make_block(&rng);
  pthread_barrier_wait(&gifts_ready);
  static _Thread_local struct block ring[RING];
  for (unsigned long n = 0; !atomic_load_explicit(&stop, memory_order_relaxed); n++) {
    struct block *slot = &ring[n % RING];
    if (verify_and_free(slot)) pt_fail(__FILE__, __LINE__, "busy thread", " block damaged");
    if (n % 7 == 0) {
      *slot = make_block(&rng);
      void *q = slot->p ? realloc(slot->p, slot->size * 2 + 1) : NULL;
      if (q) {
        slot->p = q;
        tu_fill(q, slot->size, slot->tag);
      }
    } else if (n % 11 == 0) {
      slot->size = 4096 + n % 5000;
      slot->tag = n;
      slot->p = calloc(1, slot->size);
      if (slot->p) tu_fill(slot->p, slot->size, slot->tag);
    } else {
      *slot = make_block(&rng);
    }
  }
  for (int i = 0; i < RING; i++) verify_and_free(&ring[i]);
  return NULL;
}

static void *child_thread(void *arg) {
  uint64_t rng = (uintptr_t)arg;
  int bad = 0;
  for (int i = 0; i < 2000; i++) {
    struct block b = make_child_block(&rng);
    if (!b.p) bad++;
    bad += verify_and_free(&b);
  }
  return (void *)(uintptr_t)bad;
}

/* Runs in the child: returns the exit status (0 when everything held). */
static int child_work(int iteration) {
  uint64_t rng = 0xC4C4u + iteration;
  int bad = 0;
  static struct block mine[4000];
  for (int i = 0; i < 4000; i++) {
    mine[i] = make_child_block(&rng);
    if (!mine[i].p) bad++;
  }
  for (int i = 0; i < 4000; i += 2) bad += verify_and_free(&mine[i]);
  for (int t = 0; t < BUSY_THREADS; t++)
    for (int i = 0; i < GIFTS; i++) bad += verify_and_free(&gifts[t][i]);
  char *z = calloc(1000, 100);
  if (!z || tu_nonzero(z, 100000) != NONE) bad++;
  free(z);
  pthread_t t;
  void *thread_bad = NULL;
  if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)iteration) != 0) return 3;
  pthread_join(t, &thread_bad);
  bad += (int)(uintptr_t)thread_bad;
  for (int i = 1; i < 4000; i += 2) bad += verify_and_free(&mine[i]);
  return bad ? 1 : 0;
}

/* Waits for the child, killing it after CHILD_SECONDS. Returns 0 when it exited 0. */
static int reap(pid_t pid, int iteration) {
  struct timespec tick = {0, 2000000};
  for (long waited = 0; waited < child_seconds * 500L; waited++) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
      if (WIFEXITED(status))
        pt_fail(__FILE__, __LINE__, "child exit", " fork %d: child exited with status %d",
                iteration, WEXITSTATUS(status));
      else
        pt_fail(__FILE__, __LINE__, "child exit", " fork %d: child killed by signal %d (%s)",
                iteration, WTERMSIG(status), strsignal(WTERMSIG(status)));
      return 1;
    }
    if (r < 0 && errno != EINTR) return 1;
    nanosleep(&tick, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  pt_fail(__FILE__, __LINE__, "child finished",
          " fork %d: child hung for %d s (deadlock after "
          "fork?), killed",
          iteration, child_seconds);
  return 1;
}

int main(void) {
  pt_start("fork_threads");
  const char *limit = getenv("NUMALLOC_TEST_CHILD_SECONDS");
  if (limit && atoi(limit) > 0) child_seconds = atoi(limit);
  pthread_t t[BUSY_THREADS];
  pthread_barrier_init(&gifts_ready, NULL, BUSY_THREADS + 1);
  for (uintptr_t i = 0; i < BUSY_THREADS; i++) pthread_create(&t[i], NULL, busy, (void *)i);
  pthread_barrier_wait(&gifts_ready);
  int failed = 0;
  for (int i = 0; i < FORKS && !failed; i++) {
    /* The parent allocates right up to the fork, so its own caches are busy too. */
    void *p = malloc(100 + i);
    pid_t pid = fork();
    if (pid == 0) _exit(child_work(i));
    free(p);
    if (pid < 0) {
      pt_fail(__FILE__, __LINE__, "fork", " fork %d failed: %s", i, strerror(errno));
      break;
    }
    failed += reap(pid, i);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < BUSY_THREADS; i++) pthread_join(t[i], NULL);
  for (int s = 0; s < BUSY_THREADS; s++)
    for (int i = 0; i < GIFTS; i++)
      if (verify_and_free(&gifts[s][i])) pt_fail(__FILE__, __LINE__, "gift", " damaged");
  printf("fork_threads: %d forks while %d threads allocate\n", FORKS, BUSY_THREADS);
  return pt_finish();
}
