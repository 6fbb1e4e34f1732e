/* dyn_tls.c: dynamic TLS under the preload. Several dlopen'ed modules with __thread data
 * (tls_module.c, built under different names) are touched from waves of threads: glibc's
 * dynamic linker allocates each thread's blocks and its grown DTV with the interposed
 * malloc/realloc, and frees them at thread exit, while the main thread dlcloses and reopens
 * modules. Each thread's TLS must stay its own. Usage: dyn_tls MODULE.so... */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "preload_test.h"

enum { MAX_MODULES = 8, WAVES = 40, THREADS = 16 };

static int n_modules;
static const char *paths[MAX_MODULES];
static void *handles[MAX_MODULES];
static int (*touch[MAX_MODULES])(uint64_t);
static pthread_rwlock_t modules_lock = PTHREAD_RWLOCK_INITIALIZER;

static void open_module(int i) {
  handles[i] = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
  CHECK(handles[i] != NULL, "dlopen(%s): %s", paths[i], dlerror());
  touch[i] = handles[i] ? (int (*)(uint64_t))dlsym(handles[i], "tls_module_touch") : NULL;
  CHECK(!handles[i] || touch[i], "tls_module_touch missing in %s", paths[i]);
}

static void *worker(void *arg) {
  uint64_t tag = (uintptr_t)arg;
  for (int round = 0; round < 20; round++) {
    pthread_rwlock_rdlock(&modules_lock);
    for (int i = 0; i < n_modules; i++) {
      if (!touch[i]) continue;
      int rc = touch[i](tag * 131 + i + 1);
      CHECK(rc == 0, "module %d: thread-local data not the thread's own (%d)", i, rc);
    }
    pthread_rwlock_unlock(&modules_lock);
    void *p = malloc(100 + round * 50);
    free(p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  pt_start("dyn_tls");
  n_modules = argc - 1 < MAX_MODULES ? argc - 1 : MAX_MODULES;
  CHECK(n_modules >= 2, "usage: dyn_tls MODULE.so MODULE.so...");
  for (int i = 0; i < n_modules; i++) paths[i] = argv[i + 1];
  for (int i = 0; i < n_modules; i++) open_module(i);
  for (int wave = 0; wave < WAVES; wave++) {
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
      pthread_create(&t[i], NULL, worker, (void *)(wave * THREADS + i));
    /* Reopen one module while the threads run: its TLS blocks are released and remade. */
    int victim = wave % n_modules;
    pthread_rwlock_wrlock(&modules_lock);
    if (handles[victim]) dlclose(handles[victim]);
    open_module(victim);
    pthread_rwlock_unlock(&modules_lock);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  }
  for (int i = 0; i < n_modules; i++)
    if (handles[i]) dlclose(handles[i]);
  printf("dyn_tls: %d modules, %d threads touching their thread-local data\n", n_modules,
         WAVES * THREADS);
  return pt_finish();
}
