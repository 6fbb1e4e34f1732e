/* realrun.c: runs one real program (python3, sqlite3, sort, gcc, perl...) for scripts/bench and
 * prints the same RESULT line as the workload programs:
 *   bench_realrun [-p PRELOAD] [-e EXPECT] [-i STDIN] [-o STDOUT] -- PROGRAM [ARG...]
 * PRELOAD (the allocator's library, empty for glibc) goes into the program's LD_PRELOAD,
 * after libbench_realprobe.so from this program's directory; the runner itself runs without them.
 * Times are those of the whole program, children included: wall time from fork to exit, CPU
 * time (user + system) and peak resident memory (of its largest process) from the kernel's
 * accounting of waited-for children.
 *
 * A run counts only when the allocator served the program: every process of the program must
 * have written a probe line that says "ok" (see realprobe.c), and there must be one for the
 * program's first process. Whether the program's output is right is for scripts/bench to judge;
 * it compares STDOUT between allocators.
 *
 * Exit status: 0 done, 2 bad usage, 3 the preload is not proven, 4 the program failed (its exit
 * status is on stderr), 5 the runner could not start it, 128+N the program died of signal N. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void usage(void) {
  fprintf(stderr, "usage: bench_realrun [-p PRELOAD] [-e EXPECT] [-i STDIN] [-o STDOUT] -- "
                  "PROGRAM [ARG...]\n");
  exit(2);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double seconds_of(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

/* Checks the probe's lines; returns the number of processes, or -1 (after saying why). */
static int check_probe(const char *file, pid_t first, const char *want) {
  FILE *f = fopen(file, "r");
  if (f == NULL) {
    fprintf(stderr, "bench_realrun: no process of the program loaded the probe (static or "
                    "set-user-ID program, or LD_PRELOAD ignored)\n");
    return -1;
  }
  char line[1400];
  int processes = 0, first_seen = 0, bad = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    long pid = 0;
    char status[16] = "", from[1200] = "";
    if (sscanf(line, "%ld\t%15[^\t]\t%1199[^\t]", &pid, status, from) != 3) {
      fprintf(stderr, "bench_realrun: unreadable probe line: %s", line);
      bad = 1;
      continue;
    }
    processes++;
    if (pid == (long)first) first_seen = 1;
    if (strcmp(status, "ok") != 0) {
      fprintf(stderr, "bench_realrun: process %ld: %s, not from %s\n", pid, from, want);
      bad = 1;
    }
  }
  fclose(f);
  if (!first_seen) {
    fprintf(stderr, "bench_realrun: the program's first process (%ld) did not load the probe\n",
            (long)first);
    return -1;
  }
  return bad ? -1 : processes;
}

int main(int argc, char **argv) {
  const char *preload = "", *want = "libc.so.6", *in = NULL, *out = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "+p:e:i:o:")) != -1) {
    switch (opt) {
    case 'p': preload = optarg; break;
    case 'e': want = optarg; break;
    case 'i': in = optarg; break;
    case 'o': out = optarg; break;
    default: usage();
    }
  }
  if (optind >= argc) usage();

  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    perror("bench_realrun: /proc/self/exe");
    return 5;
  }
  self[n] = '\0';
  char probe[PATH_MAX + 64], ld_preload[2 * PATH_MAX + 64];
  snprintf(probe, sizeof probe, "%s/libbench_realprobe.so", dirname(self));
  if (access(probe, R_OK) != 0) {
    fprintf(stderr, "bench_realrun: %s: %s\n", probe, strerror(errno));
    return 5;
  }
  /* The probe goes first: see realprobe.c for why it must come before the allocator. */
  snprintf(ld_preload, sizeof ld_preload, "%s%s%s", probe, *preload ? " " : "", preload);

  const char *tmp = getenv("TMPDIR");
  char probe_file[PATH_MAX];
  snprintf(probe_file, sizeof probe_file, "%s/bench-probe-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int pfd = mkstemp(probe_file);
  if (pfd < 0) {
    perror("bench_realrun: probe file");
    return 5;
  }
  close(pfd);
  unlink(probe_file); /* the probe creates it again: no line means no probe */

  double start = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("bench_realrun: fork");
    return 5;
  }
  if (pid == 0) {
    if (in != NULL) {
      int fd = open(in, O_RDONLY);
      if (fd < 0 || dup2(fd, 0) < 0) _exit(127);
      close(fd);
    }
    if (out != NULL) {
      int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || dup2(fd, 1) < 0) _exit(127);
      close(fd);
    }
    setenv("LD_PRELOAD", ld_preload, 1);
    setenv("BENCH_PROBE_FILE", probe_file, 1);
    setenv("BENCH_EXPECT_LIB", want, 1);
    execvp(argv[optind], argv + optind);
    fprintf(stderr, "bench_realrun: %s: %s\n", argv[optind], strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      perror("bench_realrun: waitpid");
      return 5;
    }
  double wall = now() - start;
  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);

  if (WIFSIGNALED(status)) {
    fprintf(stderr, "bench_realrun: %s died of signal %d\n", argv[optind], WTERMSIG(status));
    unlink(probe_file);
    return 128 + WTERMSIG(status);
  }
  if (WEXITSTATUS(status) != 0) {
    fprintf(stderr, "bench_realrun: %s exited with status %d\n", argv[optind], WEXITSTATUS(status));
    unlink(probe_file);
    return 4;
  }
  int processes = check_probe(probe_file, pid, want);
  unlink(probe_file);
  if (processes < 0) return 3;
  printf("RESULT seconds=%.3f cpu_seconds=%.3f peak_rss_kb=%ld final_rss_kb=- frees=- "
         "reallocs=- processes=%d preload=verified\n",
         wall, seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime), ru.ru_maxrss, processes);
  return 0;
}
