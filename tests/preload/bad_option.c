/* bad_option.c: a small threaded program run by check-bad-option.sh with a bad NUMALLOC_*
 * value. It allocates from several threads (a warning printed per thread would show up as
 * several lines) and prints the policy in effect, which the script compares with a run
 * without the bad value: a bad value must keep the default. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numalloc.h"
#include "preload_test.h"

static void *churn(void *arg) {
  for (int i = 0; i < 10000; i++) {
    char *p = malloc(16 + i % 2000);
    CHECK(p != NULL, "malloc returned NULL");
    if (p) memset(p, i, 16);
    free(p);
  }
  return arg;
}

int main(void) {
  pt_start("bad_option");
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  numalloc_policy_t (*policy)(void) =
      (numalloc_policy_t(*)(void))dlsym(RTLD_DEFAULT, "numalloc_policy");
  const char *(*name)(numalloc_policy_t) =
      (const char *(*)(numalloc_policy_t))dlsym(RTLD_DEFAULT, "numalloc_policy_name");
  CHECK(policy && name, "numalloc_policy or numalloc_policy_name missing");
  if (policy && name) printf("policy in effect: %s\n", name(policy()));
  return pt_finish();
}
