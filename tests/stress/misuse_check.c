/* misuse_check.c: runs one program and judges how it ended and what it wrote on stderr.
 * ctest's WILL_FAIL only knows "non-zero"; a misuse test needs "killed by SIGABRT, after
 * exactly one line that starts with numalloc: and names the problem", and an option test
 * needs "exit 0 after exactly one warning naming the variable, value and default".
 *
 *   misuse_check [--preload LIB] [--env NAME=VALUE]... [--signal NAME | --exit N]
 *                [--lines N] [--prefix TEXT] [--match REGEX]... [--timeout S] -- PROG ARGS...
 *
 * The preload and the variables go into the program's environment only, so this checker
 * itself runs on the system allocator. Each REGEX (POSIX extended) must match the first
 * line. Prints one PASS or FAIL line with the evidence; exit 0 on PASS, 1 on FAIL. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MATCH  8
#define OUTPUT_MAX 8192

typedef struct expect_s {
  int signal; /* 0: the program must exit */
  int exit_code;
  int lines;
  const char *prefix;
  const char *match[MAX_MATCH];
  int match_count;
  int timeout_s;
} expect_t;

static __attribute__((noreturn)) void usage(const char *why) {
  fprintf(stderr,
          "misuse_check: %s\nusage: misuse_check [--preload LIB] [--env NAME=VALUE]... "
          "[--signal NAME|--exit N] [--lines N] [--prefix TEXT] [--match REGEX]... "
          "[--timeout S] -- PROG ARGS...\n",
          why);
  exit(2);
}

static int signal_number(const char *name) {
  static const struct {
    const char *name;
    int number;
  } known[] = {
      {"ABRT", SIGABRT}, {"SEGV", SIGSEGV}, {"BUS", SIGBUS}, {"ILL", SIGILL},
      {"TRAP", SIGTRAP}, {"KILL", SIGKILL}, {"FPE", SIGFPE},
  };
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(name, known[i].name) == 0) return known[i].number;
  usage("unknown signal name");
}

/* Runs argv with the extra environment, collecting its stderr; returns the wait status,
 * or -1 when it did not finish in time (it is killed). */
static int run(char **argv, char **env, int env_count, char *out, size_t *out_len, int timeout_s) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("misuse_check: pipe");
    exit(1);
  }
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < env_count; i++) putenv(env[i]);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execvp(argv[0], argv);
    fprintf(stderr, "misuse_check: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0;
  time_t deadline = time(NULL) + timeout_s;
  bool timed_out = false;
  for (;;) {
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    int left = (int)(deadline - time(NULL));
    if (left <= 0) {
      timed_out = true;
      break;
    }
    if (poll(&p, 1, left * 1000) <= 0) continue;
    char chunk[1024];
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;
    size_t take = (size_t)n < OUTPUT_MAX - 1 - len ? (size_t)n : OUTPUT_MAX - 1 - len;
    memcpy(out + len, chunk, take);
    len += take;
  }
  close(fds[0]);
  int status = 0;
  if (timed_out) kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  out[len] = '\0';
  *out_len = len;
  return timed_out ? -1 : status;
}

static int count_lines(const char *text) {
  int lines = 0;
  for (const char *p = text; *p; p++)
    if (*p == '\n' || p[1] == '\0') lines++;
  return lines;
}

static void describe_status(int status, char *buf, size_t size) {
  if (status == -1)
    snprintf(buf, size, "hung (killed after the timeout)");
  else if (WIFSIGNALED(status))
    snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(buf, size, "exited with %d", WEXITSTATUS(status));
}

/* Empty string when the run meets the expectation, else why not. */
static void judge(const expect_t *e, int status, const char *err, char *why, size_t size) {
  why[0] = '\0';
  bool ended_right =
      status != -1 && (e->signal ? WIFSIGNALED(status) && WTERMSIG(status) == e->signal
                                 : WIFEXITED(status) && WEXITSTATUS(status) == e->exit_code);
  if (!ended_right) {
    char s[128];
    describe_status(status, s, sizeof s);
    if (e->signal)
      snprintf(why, size, "expected death by %s, but it %s", strsignal(e->signal), s);
    else
      snprintf(why, size, "expected exit %d, but it %s", e->exit_code, s);
    return;
  }
  int lines = count_lines(err);
  if (lines != e->lines) {
    snprintf(why, size, "expected %d line(s) on stderr, got %d", e->lines, lines);
    return;
  }
  if (e->lines == 0) return;
  if (strncmp(err, e->prefix, strlen(e->prefix)) != 0) {
    snprintf(why, size, "stderr does not start with \"%s\"", e->prefix);
    return;
  }
  char first[1024];
  size_t n = strcspn(err, "\n");
  if (n >= sizeof first) n = sizeof first - 1;
  memcpy(first, err, n);
  first[n] = '\0';
  for (int i = 0; i < e->match_count; i++) {
    regex_t re;
    if (regcomp(&re, e->match[i], REG_EXTENDED | REG_NOSUB) != 0) usage("bad --match regex");
    int rc = regexec(&re, first, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) {
      snprintf(why, size, "the line does not match /%s/", e->match[i]);
      return;
    }
  }
}

int main(int argc, char **argv) {
  expect_t e = {.signal = SIGABRT, .lines = 1, .prefix = "numalloc:", .timeout_s = 60};
  char *env[64];
  int env_count = 0;
  static char preload[4096];
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage("missing value");
    char *v = argv[++i];
    if (strcmp(a, "--preload") == 0) {
      snprintf(preload, sizeof preload, "LD_PRELOAD=%s", v);
      env[env_count++] = preload;
    } else if (strcmp(a, "--env") == 0 && env_count < 63)
      env[env_count++] = v;
    else if (strcmp(a, "--signal") == 0)
      e.signal = signal_number(v);
    else if (strcmp(a, "--exit") == 0)
      e.signal = 0, e.exit_code = atoi(v);
    else if (strcmp(a, "--lines") == 0)
      e.lines = atoi(v);
    else if (strcmp(a, "--prefix") == 0)
      e.prefix = v;
    else if (strcmp(a, "--match") == 0 && e.match_count < MAX_MATCH)
      e.match[e.match_count++] = v;
    else if (strcmp(a, "--timeout") == 0)
      e.timeout_s = atoi(v);
    else
      usage("unknown option");
  }
  if (i + 1 >= argc) usage("no program given");
  char **prog = argv + i + 1;
  char err[OUTPUT_MAX];
  size_t len;
  int status = run(prog, env, env_count, err, &len, e.timeout_s);
  char why[512], how[128];
  judge(&e, status, err, why, sizeof why);
  describe_status(status, how, sizeof how);
  printf("misuse_check: %s: %s", why[0] ? "FAIL" : "PASS", prog[0]);
  for (char **p = prog + 1; *p; p++) printf(" %s", *p);
  for (int k = 0; k < env_count; k++) printf(" [%s]", env[k]);
  printf(": %s%s%s\n", how, why[0] ? "; " : "", why);
  printf("---- its stderr (%zu bytes) ----\n%s%s", len, err,
         len > 0 && err[len - 1] != '\n' ? "\n" : "");
  return why[0] ? 1 : 0;
}
