/* check_stats_live.c: live statistics (stats_live.c). NUMALLOC_STATS_INTERVAL is read as the
 * other options are; a publication is one whole file, its owner's only, whose header names
 * this process and whose counters follow the allocations; nothing is left after exit, a
 * forked child keeps to its own file, the thread publishes by itself and stops at exit, and
 * a path it cannot write is said once. */
#include "unit.h"

#include "stats_live.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[96], temporary[96];

static void paths(void) {
  na_live_path(path, sizeof path, (int)getpid(), false);
  na_live_path(temporary, sizeof temporary, (int)getpid(), true);
}

static void setup(void) {
  paths();
  unlink(path);
  unlink(temporary);
  umask(022);
  na_live_interval_s = 0; /* allocations here start no thread; publish() sets it */
}

static void teardown(void) {
  unlink(path);
  unlink(temporary);
}

/* One publication at a 1 s interval, by this thread. */
static bool publish(void) {
  na_live_interval_s = 1;
  bool done = na_live_publish();
  na_live_interval_s = 0;
  return done;
}

/* The file, read whole (a static buffer). */
static const char *contents(const char *file) {
  static char text[65536];
  FILE *f = fopen(file, "r");
  ck_assert_msg(f != NULL, "%s: %s", file, strerror(errno));
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

/* A header line's value ("pid", "start", ...). */
static const char *header(const char *text, const char *name) {
  static char value[512];
  char key[32];
  snprintf(key, sizeof key, "\n%s ", name);
  const char *at = strstr(text, key);
  ck_assert_msg(at != NULL, "no %s line in %s", name, text);
  at += strlen(key);
  size_t n = strcspn(at, "\n");
  ck_assert_uint_lt(n, sizeof value);
  memcpy(value, at, n);
  value[n] = '\0';
  return value;
}

/* Sum over the JSON section of every node's "alloc_count" (lines `  "nodeN": {...}`). */
static long long json_alloc_count(const char *text) {
  const char *json = strstr(text, "\njson\n{");
  ck_assert_ptr_nonnull(json);
  long long total = 0;
  for (const char *at = strstr(json, "\n  \"node"); at != NULL; at = strstr(at + 1, "\n  \"node")) {
    const char *field = strstr(at, "\"alloc_count\": ");
    ck_assert_ptr_nonnull(field);
    total += strtoll(field + strlen("\"alloc_count\": "), NULL, 10);
  }
  return total;
}

START_TEST(interval_option) {
  setenv("NUMALLOC_STATS_INTERVAL", "5", 1);
  unit_capture_start();
  na_options_init();
  ck_assert_str_eq(unit_capture_stop(), "");
  ck_assert_int_eq(na_live_interval_s, 5);
  static const char *const bad[] = {"-1", "3601", "1s", "", "0.5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("NUMALLOC_STATS_INTERVAL", bad[i], 1);
    unit_capture_start();
    na_options_init();
    const char *err = unit_capture_stop();
    ck_assert_int_eq(unit_count_lines_with(err, "NUMALLOC_STATS_INTERVAL"), 1);
    ck_assert_int_eq(unit_count_lines_with(err, ""), 1);
    ck_assert_msg(strstr(err, "using the default, 0") != NULL, "%s", err);
    ck_assert_int_eq(na_live_interval_s, 0);
  }
  unsetenv("NUMALLOC_STATS_INTERVAL");
  na_options_init();
  ck_assert_int_eq(na_live_interval_s, 0);
}
END_TEST

START_TEST(publishes_a_private_whole_file) {
  void *blocks[100];
  for (int i = 0; i < 100; i++) blocks[i] = numalloc_malloc(1000);
  ck_assert(publish());
  struct stat st;
  ck_assert_int_eq(lstat(path, &st), 0);
  ck_assert(S_ISREG(st.st_mode));
  ck_assert_int_eq(st.st_mode & 0777, 0600); /* under the usual umask 022, set in setup() */
  ck_assert_uint_eq(st.st_uid, getuid());
  ck_assert_int_eq(access(temporary, F_OK), -1);

  const char *text = contents(path);
  ck_assert(strncmp(text, "numalloc-live 1\n", 16) == 0);
  char pid[16];
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  ck_assert_str_eq(header(text, "pid"), pid);
  ck_assert_str_eq(header(text, "interval"), "1");
  /* the start time, field 22 of /proc/self/stat */
  char stat_line[1024];
  ck_assert_int_gt(na_os_read_file("/proc/self/stat", stat_line, sizeof stat_line), 0);
  const char *p = strrchr(stat_line, ')') + 2;
  for (int field = 3; field < 22; field++) p = strchr(p, ' ') + 1;
  ck_assert(strncmp(header(text, "start"), p, strcspn(p, " ")) == 0);
  char exe[512];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ck_assert_int_gt(n, 0);
  exe[n] = '\0';
  ck_assert_str_eq(header(text, "exe"), exe);
  ck_assert_ptr_nonnull(strstr(text, "\ntext\nnumalloc: policy local"));
  size_t len = strlen(text);
  ck_assert_str_eq(text + len - 3, "\n}\n"); /* the JSON, whole */

  long long before = json_alloc_count(text);
  ck_assert_int_ge(before, 1);
  ck_assert_str_eq(header(text, "sequence"), "1");
  for (int i = 0; i < 100; i++) numalloc_free(blocks[i]);
  for (int i = 0; i < 5000; i++) numalloc_free(numalloc_malloc(100000));
  ck_assert(publish());
  text = contents(path);
  ck_assert_str_eq(header(text, "sequence"), "2");
  ck_assert_int_ge(json_alloc_count(text), before + 5000);
}
END_TEST

START_TEST(removed_at_exit_and_never_again) {
  numalloc_free(numalloc_malloc(100));
  ck_assert(publish());
  ck_assert_int_eq(access(path, F_OK), 0);
  na_live_at_exit();
  ck_assert_int_eq(access(path, F_OK), -1);
  ck_assert(!publish());
  ck_assert_int_eq(access(path, F_OK), -1);
  ck_assert_int_eq(access(temporary, F_OK), -1);
}
END_TEST

/* A file of this pid left by the program this process replaced with exec goes at exit too. */
START_TEST(exit_removes_a_file_this_program_did_not_write) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("numalloc-live 1\n", f);
  fclose(f);
  na_live_at_exit();
  ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(forked_child_keeps_to_its_own_file) {
  numalloc_free(numalloc_malloc(100));
  ck_assert(publish());
  const char *parent_text = contents(path);
  char parent_pid[16];
  snprintf(parent_pid, sizeof parent_pid, "%s", header(parent_text, "pid"));
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    char own[96];
    na_live_path(own, sizeof own, (int)getpid(), false);
    int status = 0;
    if (!publish() || access(own, F_OK) != 0) status |= 1;
    if (strcmp(header(contents(path), "pid"), parent_pid) != 0) status |= 2; /* untouched */
    if (strcmp(header(contents(own), "pid"), parent_pid) == 0) status |= 4;
    na_live_at_exit();
    if (access(own, F_OK) == 0 || access(path, F_OK) != 0) status |= 8;
    _exit(status);
  }
  int status;
  ck_assert_int_eq(waitpid(child, &status, 0), child);
  ck_assert(WIFEXITED(status));
  ck_assert_msg(WEXITSTATUS(status) == 0, "child status %d", WEXITSTATUS(status));
  char child_path[96];
  na_live_path(child_path, sizeof child_path, (int)child, false);
  ck_assert_int_eq(access(child_path, F_OK), -1);
  ck_assert_str_eq(header(contents(path), "pid"), parent_pid);
}
END_TEST

static bool wait_for(const char *file, bool present, int ms) {
  for (int waited = 0; waited < ms; waited += 10) {
    if ((access(file, F_OK) == 0) == present) return true;
    usleep(10000);
  }
  return false;
}

/* A forked child's thread waits an interval before its first report, so a child that ends
 * sooner by _exit (which removes nothing) leaves no file; one that lives on publishes. */
START_TEST(a_forked_child_publishes_once_it_lived_an_interval) {
  numalloc_free(numalloc_malloc(100));
  na_live_interval_s = 1;
  na_live_init(); /* as the library's start does when the option is set */
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    char own[96];
    na_live_path(own, sizeof own, (int)getpid(), false);
    na_live_start();
    int status = 0;
    usleep(300000);
    if (access(own, F_OK) == 0) status |= 1; /* published at once */
    if (!wait_for(own, true, 5000)) status |= 2;
    na_live_at_exit();
    _exit(status);
  }
  int status;
  ck_assert_int_eq(waitpid(child, &status, 0), child);
  ck_assert(WIFEXITED(status));
  ck_assert_msg(WEXITSTATUS(status) == 0,
                "child status %d (1: published before an interval, "
                "2: never published)",
                WEXITSTATUS(status));
}
END_TEST

/* The helper thread publishes without being asked, again each interval, and stops at exit.
 * While it runs this thread does not allocate: its counters are read unlocked by design. */
START_TEST(thread_publishes_and_stops_at_exit) {
  numalloc_free(numalloc_malloc(100));
  na_live_interval_s = 1;
  na_live_start();
  na_live_start(); /* one thread, however often the slow path asks */
  ck_assert(wait_for(path, true, 5000));
  struct stat first, later;
  ck_assert_int_eq(stat(path, &first), 0);
  bool republished = false;
  for (int waited = 0; waited < 4000 && !republished; waited += 50) {
    usleep(50000);
    republished = stat(path, &later) == 0 && later.st_ino != first.st_ino;
  }
  ck_assert_msg(republished, "no second publication within 4 s at a 1 s interval");
  na_live_at_exit();
  ck_assert_int_eq(access(path, F_OK), -1);
  usleep(1500000); /* past the thread's next round */
  ck_assert_int_eq(access(path, F_OK), -1);
  ck_assert_int_eq(access(temporary, F_OK), -1);
}
END_TEST

/* A symbolic link at the temporary name is removed, never followed. */
START_TEST(temporary_name_is_never_followed) {
  char victim[] = "/tmp/numalloc-live-victimXXXXXX";
  int fd = mkstemp(victim);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "keep", 4), 4);
  close(fd);
  ck_assert_int_eq(symlink(victim, temporary), 0);
  ck_assert(publish());
  ck_assert_str_eq(contents(victim), "keep");
  ck_assert_ptr_nonnull(strstr(contents(path), "numalloc-live 1"));
  unlink(victim);
}
END_TEST

/* Something in the way that cannot be replaced: one warning, then silence. */
START_TEST(unwritable_path_warns_once) {
  ck_assert_int_eq(mkdir(path, 0700), 0);
  unit_capture_start();
  bool first = publish(), second = publish();
  const char *err = unit_capture_stop();
  rmdir(path);
  ck_assert(!first && !second);
  ck_assert_int_eq(unit_count_lines_with(err, ""), 1);
  ck_assert_msg(strstr(err, "NUMALLOC_STATS_INTERVAL: cannot write") != NULL, "%s", err);
  ck_assert_ptr_nonnull(strstr(err, path));
  ck_assert_int_eq(access(temporary, F_OK), -1);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("stats_live");
  TCase *tc = unit_tcase(s, "stats_live", 20);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, interval_option);
  tcase_add_test(tc, publishes_a_private_whole_file);
  tcase_add_test(tc, removed_at_exit_and_never_again);
  tcase_add_test(tc, exit_removes_a_file_this_program_did_not_write);
  tcase_add_test(tc, forked_child_keeps_to_its_own_file);
  tcase_add_test(tc, a_forked_child_publishes_once_it_lived_an_interval);
  tcase_add_test(tc, thread_publishes_and_stops_at_exit);
  tcase_add_test(tc, temporary_name_is_never_followed);
  tcase_add_test(tc, unwritable_path_warns_once);
  return unit_run(s, argv);
}
