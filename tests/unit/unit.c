/* unit.c: the helpers every unit test shares (see unit.h). They use glibc's malloc, never
 * numalloc's, so they cannot disturb the state a test looks at. */
#include "unit.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

static bool drop_numalloc_environment(void) {
  bool dropped = false;
  for (char **e = environ; *e != NULL;) {
    if (strncmp(*e, "NUMALLOC_", 9) != 0) {
      e++;
      continue;
    }
    char name[128];
    size_t n = strcspn(*e, "=");
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, *e, n);
    name[n] = '\0';
    unsetenv(name);
    dropped = true;
    e = environ; /* unsetenv moved the entries */
  }
  return dropped;
}

/* On a machine with several nodes, keeps every thread on the CPUs of one node, so that the
 * node a test expects its blocks on (the caller's) cannot change while it runs. */
static void stay_on_one_node(void) {
  if (na_topology.node_count < 2) return;
  int node = na_policy_current_node();
  cpu_set_t set;
  CPU_ZERO(&set);
  int count = 0;
  for (int c = 0; c < na_topology.cpu_count && c < CPU_SETSIZE && c < 1024; c++)
    if (na_topology.cpu_node[c] == node) {
      CPU_SET(c, &set);
      count++;
    }
  if (count > 0 && sched_setaffinity(0, sizeof set, &set) != 0) perror("unit: sched_setaffinity");
}

int unit_run(Suite *suite, char **argv) {
  if (drop_numalloc_environment()) {
    fprintf(stderr, "unit: NUMALLOC_* variables dropped; the tests expect the defaults\n");
    execv("/proc/self/exe", argv);
    perror("unit: execv");
    return 2;
  }
  stay_on_one_node();
  na_heap_shared_powers = 0; /* each class its own pages from the first block */
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? 0 : 1;
}

TCase *unit_tcase(Suite *suite, const char *name, double timeout) {
  TCase *tc = tcase_create(name);
  tcase_set_timeout(tc, timeout);
  suite_add_tcase(suite, tc);
  return tc;
}

int64_t unit_purge_calls(void) {
  na_tld_t *tld = na_tld_get();
  int64_t calls = 0;
  for (int i = 0; tld != NULL && i < NA_ARENA_COUNT; i++) calls += tld->stats[i].purge_calls;
  return calls;
}

void unit_lock_pages(void *p, size_t size) {
  ck_assert_msg(syscall(SYS_mlock, p, size) == 0, "mlock of %zu bytes refused: %s", size,
                strerror(errno));
}

void unit_unlock_pages(void *p, size_t size) { syscall(SYS_munlock, p, size); }

int64_t unit_purged_bytes(void) {
  na_tld_t *tld = na_tld_get();
  int64_t bytes = 0;
  for (int i = 0; tld != NULL && i < NA_ARENA_COUNT; i++) bytes += tld->stats[i].purged_bytes;
  return bytes;
}

void unit_quiet_purge(void) {
  na_options.purge_delay_ms = 3600000;
  na_options.segment_cache = 2;
}

void *unit_bin_unread_run(size_t size) {
  void *p = numalloc_malloc(size);
  na_bin_t *bin = na_tls_heap->class_bin[na_size_class(size)];
  for (int i = 0; i <= NA_BIN_UNREAD_RUN; i++) {
    numalloc_free(p);
    UNIT_REQUIRE(numalloc_malloc(size) == p, "the bin of %zu-byte blocks did not hand back %p",
                 size, p);
  }
  UNIT_REQUIRE(bin->last_kept_run > NA_BIN_UNREAD_RUN, "no run of %zu-byte blocks", size);
  return p;
}

/* ---- memory probes -------------------------------------------------------------------- */

long unit_resident_pages(const void *p, size_t size) {
  int saved = errno; /* tests check that the library leaves errno alone: so do probes */
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
  uintptr_t end = ((uintptr_t)p + size + page - 1) & ~(uintptr_t)(page - 1);
  size_t count = (end - start) / page;
  unsigned char *vec = malloc(count);
  if (vec == NULL) {
    errno = saved;
    return -1;
  }
  long resident = -1;
  if (mincore((void *)start, end - start, vec) == 0) {
    resident = 0;
    for (size_t i = 0; i < count; i++) resident += vec[i] & 1;
  }
  free(vec);
  errno = saved;
  return resident;
}

bool unit_is_mapped(const void *p, size_t size) { return unit_resident_pages(p, size) >= 0; }

bool unit_vma_has_flag(const void *p, const char *flag) {
  FILE *f = fopen("/proc/self/smaps", "r");
  ck_assert_ptr_nonnull(f);
  char line[512];
  bool inside = false, found = false, seen = false;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    char dash;
    if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-') {
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
      seen = true;
      for (const char *at = line + 8; (at = strstr(at, flag)) != NULL; at++)
        if (at[-1] == ' ' && (at[2] == ' ' || at[2] == '\n')) found = true;
      break;
    }
  }
  fclose(f);
  UNIT_REQUIRE(seen, "no mapping holds %p", p);
  return found;
}

size_t unit_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  unsigned long total = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &total, &resident);
  fclose(f);
  return n == 2 ? resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* ---- stderr --------------------------------------------------------------------------- */

static int saved_stderr = -1;
static FILE *capture_file;
static char capture_text[65536];

void unit_capture_start(void) {
  fflush(stderr);
  capture_file = tmpfile();
  ck_assert_ptr_nonnull(capture_file);
  saved_stderr = dup(STDERR_FILENO);
  dup2(fileno(capture_file), STDERR_FILENO);
}

const char *unit_capture_stop(void) {
  fflush(stderr);
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  saved_stderr = -1;
  rewind(capture_file);
  size_t n = fread(capture_text, 1, sizeof capture_text - 1, capture_file);
  capture_text[n] = '\0';
  fclose(capture_file);
  capture_file = NULL;
  return capture_text;
}

void unit_silence_stderr(void) {
  int fd = open("/dev/null", O_WRONLY);
  if (fd >= 0) {
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
}

int unit_count_lines_with(const char *text, const char *needle) {
  int count = 0;
  while (*text != '\0') {
    const char *end = strchr(text, '\n');
    size_t len = end ? (size_t)(end - text) : strlen(text);
    char line[1024];
    size_t n = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, text, n);
    line[n] = '\0';
    if (strstr(line, needle) != NULL) count++;
    text += len + (end ? 1 : 0);
  }
  return count;
}

/* ---- misc ----------------------------------------------------------------------------- */

void unit_run_threads(int count, void *(*fn)(void *), void *base, size_t stride) {
  pthread_t *threads = calloc((size_t)count, sizeof *threads);
  ck_assert_ptr_nonnull(threads);
  for (int i = 0; i < count; i++) {
    /* Callers without per-thread data pass NULL, and NULL + 0 is undefined behaviour. */
    void *arg = base != NULL ? (char *)base + (size_t)i * stride : NULL;
    ck_assert_int_eq(pthread_create(&threads[i], NULL, fn, arg), 0);
  }
  for (int i = 0; i < count; i++) pthread_join(threads[i], NULL);
  free(threads);
}

int unit_home_node(void) { return na_policy_current_node(); }
