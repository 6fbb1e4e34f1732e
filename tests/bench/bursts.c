/* bursts.c: threads that come and go in bursts, as a server that starts a thread per
 * connection or a program that starts a fresh pool for each phase. Each round starts BURST
 * threads at once; each allocates and writes its working set (200 blocks of 16 bytes to 4 KiB
 * and one buffer of about 100 KiB), waits for the others, frees its own blocks and the buffer
 * of the thread before it (a free from another thread), and exits; the main thread joins them
 * all before the next round. The threads outnumber the cores, as such servers' do. An
 * allocator that keeps what exited threads left, and cuts it differently for the next burst,
 * shows it in peak memory; one that gives it all back pays in page faults. */
#include <pthread.h>
#include <stdlib.h>

#include "bench.h"

#define BURST        500
#define BLOCKS       200
#define BUFFER_SIZE  (100u << 10)
#define FULL_ROUNDS  16
#define THREAD_STACK (128u << 10)

typedef struct worker {
  int id;
  uint64_t round;
  bench_block blocks[BLOCKS];
  bench_block buffer;
} worker;

static worker *workers;
static pthread_barrier_t barrier;

static void *run(void *arg) {
  worker *w = arg;
  bench_rng rng = {w->round * BURST + (uint64_t)w->id + 1};
  for (int i = 0; i < BLOCKS; i++)
    bench_block_new(&w->blocks[i], bench_log_range(&rng, 16, 4096), bench_rand(&rng) | 1,
                    BENCH_LINE);
  bench_block_new(&w->buffer, BUFFER_SIZE + bench_range(&rng, 0, 4096), bench_rand(&rng) | 1,
                  BENCH_PAGE);
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < BLOCKS; i++) bench_block_free(&w->blocks[i], BENCH_LINE);
  bench_block_free(&workers[(w->id + BURST - 1) % BURST].buffer, BENCH_PAGE);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t rounds = bench_scaled(&args, FULL_ROUNDS, 2);
  workers = calloc(BURST, sizeof *workers);
  pthread_t *tids = calloc(BURST, sizeof *tids);
  pthread_attr_t attr;
  if (workers == NULL || tids == NULL || pthread_attr_init(&attr) != 0 ||
      pthread_attr_setstacksize(&attr, THREAD_STACK) != 0)
    bench_fail("no memory for the thread table");

  double start = bench_now();
  for (size_t r = 0; r < rounds; r++) {
    pthread_barrier_init(&barrier, NULL, BURST);
    for (int i = 0; i < BURST; i++) {
      workers[i].id = i;
      workers[i].round = r;
      bench_thread_create_attr(&tids[i], &attr, run, &workers[i]);
    }
    for (int i = 0; i < BURST; i++) pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&barrier);
  }
  double seconds = bench_now() - start;

  pthread_attr_destroy(&attr);
  free(tids);
  free(workers);
  bench_result("bursts", seconds, NULL);
  return 0;
}
