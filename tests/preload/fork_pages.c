/* fork_pages.c: what a fork costs the parent in memory. After fork every private page is
 * shared copy-on-write, so each page the allocator's fork handlers write (its locks, taken
 * before and released after) is copied once in the parent and once in the child. A shell or
 * a build tool forks thousands of times; locks spread over many pages made each fork copy
 * about twenty pages in the parent. The parent's minor faults per fork must stay few, and
 * in a process of one thread (a shell) no more than the C library's own. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload_test.h"

enum { FORKS = 50, BLOCKS = 2000 };

/* The C library's fork, waitpid and stdio locks write about five pages in the parent; the
 * allocator's handlers may add a few (numalloc: five, its lock tables and two locks; twenty
 * with the locks inside the arenas and pools). */
#define PARENT_FAULTS_MAX 14.0
/* With one thread the handlers have no lock to take: only the C library's pages (about two;
 * seven when numalloc's handlers took their locks anyway). */
#define SINGLE_THREAD_PARENT_FAULTS_MAX 4.0

static long minor_faults(int who) {
  struct rusage usage;
  getrusage(who, &usage);
  return usage.ru_minflt;
}

/* Memory in use in several size classes and in a second thread, as a real program has. */
static void *fill(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < BLOCKS; i++) {
    blocks[i] = malloc((size_t)(i % 64 + 1) * 24);
    if (blocks[i] != NULL) memset(blocks[i], 1, 16);
  }
  return NULL;
}

/* The parent's minor faults per fork over FORKS forks, each child allocating and freeing. */
static double parent_faults_per_fork(const char *phase) {
  /* one fork first: the fork path's own code and data are then resident */
  pid_t warm = fork();
  if (warm == 0) _exit(0);
  waitpid(warm, NULL, 0);

  long parent_before = minor_faults(RUSAGE_SELF), children_before = minor_faults(RUSAGE_CHILDREN);
  for (int i = 0; i < FORKS; i++) {
    pid_t child = fork();
    if (child == 0) {
      char *p = malloc(100);
      if (p == NULL) _exit(3);
      p[0] = 1;
      free(p);
      _exit(0);
    }
    int status = 0;
    CHECK(child > 0 && waitpid(child, &status, 0) == child, "fork %d", i);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %d: child status %d", i, status);
  }
  double parent = (double)(minor_faults(RUSAGE_SELF) - parent_before) / FORKS;
  double child = (double)(minor_faults(RUSAGE_CHILDREN) - children_before) / FORKS;
  printf("%s: minor faults per fork: parent %.1f, child %.1f\n", phase, parent, child);
  return parent;
}

int main(void) {
  pt_start("fork_pages");
  static void *main_blocks[BLOCKS], *thread_blocks[BLOCKS];
  fill(main_blocks);
  double single = parent_faults_per_fork("one thread");
  CHECK(single <= SINGLE_THREAD_PARENT_FAULTS_MAX,
        "with one thread the parent copied %.1f pages per fork (at most %.0f)", single,
        SINGLE_THREAD_PARENT_FAULTS_MAX);
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, fill, thread_blocks) == 0);
  pthread_join(thread, NULL);
  double parent = parent_faults_per_fork("after a second thread");
  CHECK(parent <= PARENT_FAULTS_MAX, "the parent copied %.1f pages per fork (at most %.0f)", parent,
        PARENT_FAULTS_MAX);
  for (int i = 0; i < BLOCKS; i++) {
    free(main_blocks[i]);
    free(thread_blocks[i]);
  }
  return pt_finish();
}
