/* exit_paths.c: allocation at the edges of a process's life. Constructors allocate before
 * main, atexit handlers and destructors allocate and free after it, and threads are still
 * allocating while the process exits. Each round runs in a child (forked, then creating its
 * threads) that must exit with status 0 within 20 s: not crash, hang, or lose its exit code. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preload_test.h"

#define NONE ((size_t)-1)

enum { ROUNDS = 60, CHURNERS = 4, EARLY = 64 };

static void *early[EARLY];

__attribute__((constructor(101))) static void allocate_early(void) {
  for (int i = 0; i < EARLY; i++) {
    early[i] = malloc(16 + (size_t)i * 100);
    if (early[i]) tu_fill(early[i], 16 + (size_t)i * 100, i);
  }
}

/* Runs after every other destructor of the program, possibly after the allocator's own. */
__attribute__((destructor(101))) static void free_late(void) {
  for (int i = 0; i < EARLY; i++) {
    if (!early[i]) continue;
    if (tu_mismatch(early[i], 16 + (size_t)i * 100, i) != NONE) _exit(41);
    free(early[i]);
    early[i] = NULL;
  }
  void *p = malloc(1000);
  void *q = calloc(10, 1000);
  if (!p || !q) _exit(42);
  free(q);
  free(p);
}

static void at_exit_handler(void) {
  char *s = malloc(50000);
  if (!s) _exit(43);
  memset(s, 1, 50000);
  s = realloc(s, 500000);
  if (!s) _exit(44);
  free(s);
}

static void *churn(void *arg) {
  uint64_t rng = (uintptr_t)arg + 1;
  void *ring[64] = {0};
  for (unsigned long n = 0;; n++) {
    uint64_t r = tu_rand(&rng);
    free(ring[n % 64]);
    ring[n % 64] = malloc(r % 100 < 95 ? r % 512 + 1 : r % 300000 + 1);
    if (!ring[n % 64]) _exit(46); /* the allocator gave up while the process was exiting */
    memset(ring[n % 64], 7, 1);
  }
  return NULL;
}

/* The child: threads allocating while main returns through exit(). */
static int child(int round) {
  atexit(at_exit_handler);
  for (uintptr_t i = 0; i < CHURNERS; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, churn, (void *)(i + round * 10)) != 0) return 45;
    pthread_detach(t);
  }
  struct timespec pause = {0, 1000000 * (round % 7)};
  nanosleep(&pause, NULL); /* let the threads get going, by a varying amount */
  void *p = malloc(123);
  free(p);
  return 0; /* exit() with the churners still running */
}

int main(void) {
  pt_start("exit_paths");
  for (int round = 0; round < ROUNDS; round++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) exit(child(round));
    if (pid < 0) {
      pt_fail(__FILE__, __LINE__, "fork", " failed: %s", strerror(errno));
      break;
    }
    int status = 0;
    struct timespec tick = {0, 5000000};
    int waited = 0;
    while (waitpid(pid, &status, WNOHANG) == 0 && waited < 4000) {
      nanosleep(&tick, NULL);
      waited++;
    }
    if (waited == 4000) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      pt_fail(__FILE__, __LINE__, "child exited", " round %d: hung at exit for 20 s", round);
      break;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: child %s %d", round,
          WIFEXITED(status) ? "exited with" : "killed by signal",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  }
  printf("exit_paths: %d processes exited while %d threads allocated\n", ROUNDS, CHURNERS);
  return pt_finish();
}
