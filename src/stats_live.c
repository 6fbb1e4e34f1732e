/* stats_live.c: NUMALLOC_STATS_INTERVAL=SECONDS. A helper thread writes the merged statistics
 * every interval to /dev/shm/numalloc-stats.PID, readable by the process's user only, for
 * `numalloc stats PID` and `numalloc top PID`. Each report is written under a temporary name
 * and renamed over the last, so a reader gets a whole report, never half of one; the file is
 * removed at exit (from main or from any thread). A process that dies without exiting
 * (SIGKILL, a crash, _exit) leaves it behind: its header names the pid, the process's start
 * time and its program, which lets the reader tell it is stale even once the pid is reused or
 * the program replaced by exec; a forked child publishes only once it has lived an interval.
 * The thread starts from a slow path and takes no lock an allocation takes on its fast
 * path. */
#include "stats_live.h"

#include <errno.h>
#include <string.h>

long na_live_interval_s;

static _Atomic bool running;
/* Held for a whole publication: exit and fork wait for it, so neither leaves a temporary
 * file behind nor a report half written under the parent's name in the child. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static bool closed; /* exiting: nothing more is published */
/* A forked child publishes once it has lived an interval: most children live a moment (a
 * command run by fork and exec, a worker that ends with _exit), and one that published at
 * once left its file behind whenever it ended without exit, which runs no cleanup (a
 * threaded program forking 30 children that allocate and then exec or _exit left 10). */
static int process_pid; /* the pid that read the options: a child's differs */

void na_live_init(void) { process_pid = na_os_getpid(); }
static unsigned long sequence;
static bool warned;

void na_live_path(char *buf, size_t size, int pid, bool temporary) {
  snprintf(buf, size, NA_LIVE_DIR "/" NA_LIVE_PREFIX "%d%s", pid, temporary ? ".tmp" : "");
}

/* Field 22 of /proc/self/stat: the process's start, in clock ticks since boot. */
static bool start_time(char *out, size_t size) {
  char stat[1024];
  if (na_os_read_file("/proc/self/stat", stat, sizeof stat) <= 0) return false;
  const char *p = strrchr(stat, ')'); /* the command name before it may hold spaces */
  for (int field = 2; p != NULL && field < 22; field++) p = strchr(p + 1, ' ');
  if (p == NULL) return false;
  size_t digits = strspn(p + 1, "0123456789");
  if (digits == 0 || digits >= size) return false;
  memcpy(out, p + 1, digits);
  out[digits] = '\0';
  return true;
}

/* The program this process runs: a file its pid and start time name could have been left
 * by the program it replaced with exec. A deleted or renamed binary keeps the name it had. */
static void program_path(char *out, size_t size) {
  if (!na_os_read_link("/proc/self/exe", out, size)) snprintf(out, size, "?");
  char *deleted = strstr(out, " (deleted)");
  if (deleted != NULL && deleted[10] == '\0') *deleted = '\0';
  for (char *c = out; *c; c++)
    if (*c == '\n') *c = '?'; /* the header has a line per field */
}

/* 0 or the errno of the step that failed; `temporary` never outlives the call. */
static int write_report(int pid, const char *start, const char *temporary, const char *path) {
  na_os_remove(temporary); /* left by an earlier process with this pid, killed while writing */
  int fd = na_os_create_private(temporary);
  if (fd < 0) return -fd;
  FILE *out = fdopen(fd, "w");
  if (out == NULL) {
    na_os_close(fd);
    na_os_remove(temporary);
    return ENOMEM;
  }
  char program[512];
  program_path(program, sizeof program);
  fprintf(out, "numalloc-live 1\npid %d\nstart %s\nexe %s\ninterval %ld\nsequence %lu\ntext\n", pid,
          start, program, na_live_interval_s, ++sequence);
  na_stats_write_live(out);
  bool written = !ferror(out);
  if (fclose(out) != 0) written = false;
  int error = written ? na_os_rename(temporary, path) : EIO;
  if (error != 0) na_os_remove(temporary);
  return error;
}

bool na_live_publish(void) {
  char path[96], temporary[96], start[32];
  int pid = na_os_getpid();
  na_live_path(path, sizeof path, pid, false);
  na_live_path(temporary, sizeof temporary, pid, true);
  int error = start_time(start, sizeof start) ? 0 : ENOENT;
  pthread_mutex_lock(&live_lock);
  bool open = !closed;
  if (open && error == 0) error = write_report(pid, start, temporary, path);
  bool warn = open && error != 0 && !warned;
  if (warn) warned = true;
  pthread_mutex_unlock(&live_lock);
  if (warn)
    na_warning("NUMALLOC_STATS_INTERVAL: cannot write %s (%s); live statistics are off", path,
               na_os_error_text(error));
  return open && error == 0;
}

static void *publisher_main(void *arg) {
  (void)arg;
  na_helper_enter();
  /* Once the process exits or the file cannot be written (said once above), it only sleeps:
   * a thread that ended by itself would wait for a join that only a pause makes. */
  bool publishing = true, wait = na_os_getpid() != process_pid;
  do {
    if (wait)
      wait = false;
    else if (publishing)
      publishing = na_live_publish();
  } while (na_helper_sleep((uint32_t)na_live_interval_s * 1000));
  na_helper_exit();
  return NULL;
}

void na_live_start(void) {
  if (na_live_interval_s > 0) na_helper_start(&running, "numalloc-stats", publisher_main, NULL);
}

/* The files of this pid go even when this program never wrote them: the program it replaced
 * by exec may have, and a forked child's pid names its own file, never its parent's. */
void na_live_at_exit(void) {
  char path[96], temporary[96];
  na_live_path(path, sizeof path, na_os_getpid(), false);
  na_live_path(temporary, sizeof temporary, na_os_getpid(), true);
  pthread_mutex_lock(&live_lock);
  closed = true;
  na_os_remove(path);
  na_os_remove(temporary); /* left by that program if exec cut its publication short */
  pthread_mutex_unlock(&live_lock);
}

void na_live_before_fork(void) { pthread_mutex_lock(&live_lock); }
void na_live_after_fork_parent(void) { pthread_mutex_unlock(&live_lock); }

/* The publishing thread did not cross the fork; the child's own starts at its next slow
 * path and writes under the child's pid. */
void na_live_after_fork_child(void) {
  pthread_mutex_unlock(&live_lock);
  atomic_store(&running, false);
  warned = false;
}
