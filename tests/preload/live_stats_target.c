/* live_stats_target: a program under the preload with NUMALLOC_STATS_INTERVAL set, for
 * check-live-stats.sh. It waits until its statistics file appears, then ends as MODE says:
 *   thread-exit   another thread calls exit(0)
 *   main-exits    the main thread calls pthread_exit; the last other thread returns later
 *   fork          a child allocates until it publishes under its own pid and exits; the
 *                 parent's file must be untouched, the child's gone
 *   exec          replaces itself with PROGRAM ARGS (the caller drops the preload for it)
 *   wait          allocates until killed (for SIGKILL)
 * It prints "pid N" for itself and for its child, whose files must not outlive them.
 * Exit status 0 when every check held; it prints what failed otherwise. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void live_path(char *buf, size_t size, pid_t pid) {
  snprintf(buf, size, "/dev/shm/numalloc-stats.%d", (int)pid);
}

/* Allocates (large blocks reach numalloc's slow path, which starts the publisher) until the
 * file of this process exists; false after 10 s. */
static int wait_published(void) {
  char path[64];
  live_path(path, sizeof path, getpid());
  for (int i = 0; i < 1000; i++) {
    free(malloc((size_t)1 << 20));
    if (access(path, F_OK) == 0) return 1;
    usleep(10000);
  }
  fprintf(stderr, "live_stats_target: %s never appeared\n", path);
  return 0;
}

static void *exit_from_thread(void *arg) {
  (void)arg;
  exit(0);
}

static void *linger(void *arg) {
  (void)arg;
  for (int i = 0; i < 50; i++) {
    free(malloc(100000));
    usleep(10000);
  }
  return NULL;
}

static int fork_child(void) {
  char parent[64], own[64];
  live_path(parent, sizeof parent, getppid());
  live_path(own, sizeof own, getpid());
  if (!wait_published()) return 1;
  if (access(parent, F_OK) != 0) {
    fprintf(stderr, "live_stats_target: the child removed its parent's file\n");
    return 1;
  }
  return 0; /* exit removes the child's file */
}

static int fork_parent(void) {
  char own[64], child_path[64];
  live_path(own, sizeof own, getpid());
  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) exit(fork_child());
  printf("pid %d\n", (int)child);
  fflush(stdout);
  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return 1;
  live_path(child_path, sizeof child_path, child);
  int failed = 0;
  if (access(child_path, F_OK) == 0) {
    fprintf(stderr, "live_stats_target: the child's file %s outlived it\n", child_path);
    failed = 1;
  }
  if (access(own, F_OK) != 0) {
    fprintf(stderr, "live_stats_target: the parent's file %s went with the child\n", own);
    failed = 1;
  }
  return failed;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: live_stats_target MODE [PROGRAM ARGS...]\n");
    return 2;
  }
  printf("pid %d\n", (int)getpid());
  fflush(stdout);
  if (!wait_published()) return 1;
  const char *mode = argv[1];
  pthread_t thread;
  if (strcmp(mode, "thread-exit") == 0) {
    pthread_create(&thread, NULL, exit_from_thread, NULL);
    for (;;) pause();
  }
  if (strcmp(mode, "main-exits") == 0) {
    pthread_create(&thread, NULL, linger, NULL);
    pthread_exit(NULL);
  }
  if (strcmp(mode, "fork") == 0) return fork_parent();
  if (strcmp(mode, "exec") == 0 && argc > 2) {
    execvp(argv[2], argv + 2);
    perror("live_stats_target: exec");
    return 1;
  }
  if (strcmp(mode, "wait") == 0)
    for (;;) linger(NULL);
  fprintf(stderr, "live_stats_target: unknown mode %s\n", mode);
  return 2;
}
