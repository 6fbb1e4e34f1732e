/* credentials.c: a program that drops its privileges the way setpriv does, while numalloc's
 * helper thread runs (NUMALLOC_BACKGROUND=1). The C library makes
 * every thread repeat a setresuid or setresgid and aborts the program when one thread's answer
 * differs from the caller's; this program keeps its capabilities across the change of user
 * (PR_SET_KEEPCAPS, which holds for the calling thread only) and then changes its group,
 * which a helper that lost its capabilities would refuse. It needs root; without it, it exits
 * 77, which ctest reports as skipped. With the argument "unshare" it makes a new user
 * namespace instead, which the kernel refuses (EINVAL) to a process of several threads; 77
 * where the system allows no user namespace at all. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "preload_test.h"
#include "thread_names.h"

enum { SKIPPED = 77, WAIT_MS = 10000 };

static const uid_t user = 54321;
static const gid_t group = 54321;

static int helpers_running(void) { return tu_threads_named("numalloc-"); }

/* Allocates and frees, as a program at work does, until a helper thread runs: they start from
 * the slow paths that would have given memory back. */
static int churn_until_helpers(void) {
  struct timespec pause = {0, 5 * 1000 * 1000};
  for (int waited = 0; waited < WAIT_MS; waited += 5) {
    void *blocks[256];
    for (int i = 0; i < 256; i++) blocks[i] = malloc((size_t)(i + 1) * 64);
    for (int i = 0; i < 256; i++) free(blocks[i]);
    int running = helpers_running();
    if (running > 0) return running;
    nanosleep(&pause, NULL);
  }
  return 0;
}

/* The calling thread's effective capabilities set to its permitted ones, as setpriv does after
 * the change of user. */
static int restore_effective_capabilities(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  if (syscall(SYS_capget, &header, data) != 0) return -1;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) data[i].effective = data[i].permitted;
  return (int)syscall(SYS_capset, &header, data);
}

static int new_user_namespace(void) {
  int before = churn_until_helpers();
  CHECK(before > 0, "no numalloc helper thread started within %d ms", WAIT_MS);
  if (unshare(CLONE_NEWUSER) != 0) {
    if (errno != EINVAL) {
      printf("credentials: skipped: this system refuses user namespaces (%m)\n");
      return SKIPPED;
    }
    CHECK(0, "unshare(CLONE_NEWUSER): %m (the process has other threads)");
  }
  CHECK(churn_until_helpers() > 0, "no helper thread started again in the new namespace");
  return pt_finish();
}

int main(int argc, char **argv) {
  pt_start("credentials");
  if (argc > 1 && strcmp(argv[1], "unshare") == 0) return new_user_namespace();
  if (geteuid() != 0) {
    printf("credentials: skipped: changing users needs root\n");
    return SKIPPED;
  }
  int before = churn_until_helpers();
  CHECK(before > 0, "no numalloc helper thread started within %d ms", WAIT_MS);

  CHECK(prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) == 0);
  CHECK(setresuid(user, user, user) == 0, "setresuid: %m");
  CHECK(restore_effective_capabilities() == 0, "capset: %m");
  /* With a helper thread still there, the C library aborts in one of these. */
  CHECK(setresgid(group, group, group) == 0, "setresgid: %m");
  CHECK(setgroups(0, NULL) == 0, "setgroups: %m");
  CHECK(getuid() == user && getgid() == group, "uid %u gid %u after the change", getuid(),
        getgid());

  int after = churn_until_helpers();
  CHECK(after > 0, "no helper thread started again after the change of credentials (%d before)",
        before);
  return pt_finish();
}
