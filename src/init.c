/* init.c: starting the allocator once per process (pthread_once): secret, options, topology,
 * the system calls the kernel permits, thread-exit hook, fork handlers. Until the library's
 * constructor has run (libnuma, a dependency, starts first and calls malloc) and while the starting
 * thread is inside the start-up itself, requests are served by the bootstrap buffer, so start-up
 * never recurses into itself. */
#include "internal.h"

#include "access.h"
#include "stats_live.h"

#include <stdlib.h>

_Atomic int na_init_state;
na_system_allocator_t na_system;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic bool constructor_ran;
static __thread bool tls_initializing __attribute__((tls_model("initial-exec")));

void na_set_system_allocator(const na_system_allocator_t *system) { na_system = *system; }

/* With one thread, no other can hold a lock or be inside a free when fork is called: the
 * handlers then take nothing and write nothing. Each lock they take and release is a write,
 * and after a fork each page written is copied, in the parent until its child has exec'd and
 * in the child: a shell forking for every command paid about ten such copies per fork. The
 * parent records its choice for both sides (the C library may call the child single-threaded
 * before the child's handler runs), and writes it only when it changes, for the same reason. */
static bool fork_locks_taken;

static void before_fork(void) {
  bool take = !na_os_single_threaded();
  if (fork_locks_taken != take) fork_locks_taken = take;
  if (!take) return;
  na_live_before_fork();     /* first: a publication holds it while it takes the others */
  na_arena_hold_first_use(); /* the arenas and pools in use stay those until after the fork */
  na_thread_lock_all();
  na_pool_lock_all();
  na_arena_lock_all();
  na_stats_lock(); /* a thread exiting in another thread merges its statistics under it */
  /* Last: a free may notify under another of these locks, and once it has begun it needs
   * none to finish. */
  na_free_hold_notifications();
}

static void after_fork_parent(void) {
  if (!fork_locks_taken) return;
  na_free_release_notifications(false);
  na_stats_unlock();
  na_arena_unlock_all();
  na_pool_unlock_all();
  na_thread_unlock_all();
  na_arena_release_first_use();
  na_live_after_fork_parent();
}

/* The child's one thread is the one that took every lock before the fork, so it releases
 * them as the parent does (re-initialising a held mutex is undefined, and ThreadSanitizer
 * reports it). A parent that had one thread had no helper thread either, and no other
 * thread's record or waiting frees: the child has nothing to release or forget. */
static void after_fork_child(void) {
  if (!fork_locks_taken) return;
  na_free_release_notifications(true);
  na_stats_unlock();
  na_arena_unlock_all();
  na_purge_after_fork_child();
  na_pool_unlock_all();
  na_thread_after_fork_child();
  na_arena_release_first_use();
  na_live_after_fork_child();
}

static void print_topology(void) {
  const na_topology_t *t = &na_topology;
  na_info("topology: %d node(s), %d cpu(s), usable nodes %d", t->node_count, t->cpu_count,
          t->usable_count);
  for (int n = 0; n < t->node_count; n++)
    na_info("node %d: %zu MiB, %s, %s%s", n, t->memory_bytes[n] / NA_MiB,
            na_node_bit(t->has_cpus, n) ? "cpus" : "no cpus",
            na_node_bit(t->allowed, n) ? "allowed" : "not allowed",
            na_node_bit(t->usable, n) ? ", used" : "");
}

static void start(void) {
  tls_initializing = true;
  /* The top bit set: a word of user data (a user-space pointer, a small number) decodes to
   * no link of a free list. */
  na_secret = na_os_random() | ((uintptr_t)1 << 63);
  na_options_init();
  na_topology_init();
  na_access_init();
  na_policy_init();
  na_thread_init();
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  if (na_options.verbose) {
    na_options_print();
    print_topology();
    na_access_print();
  }
  if (na_options.stats != NA_STATS_OFF) {
    na_stats_init();
    atexit(na_stats_at_exit);
  }
  if (na_live_interval_s > 0) {
    na_live_init();
    na_helper_on_slow_path(na_live_start);
    atexit(na_live_at_exit);
  }
  atomic_store(&na_init_state, NA_INIT_DONE);
  tls_initializing = false;
}

bool na_ensure_init(void) {
  if (na_likely(atomic_load_explicit(&na_init_state, memory_order_acquire) == NA_INIT_DONE))
    return true;
  if (tls_initializing || !atomic_load(&constructor_ran)) return false;
  pthread_once(&init_once, start);
  return atomic_load(&na_init_state) == NA_INIT_DONE;
}

__attribute__((constructor(NA_CONSTRUCTOR_CORE))) static void numalloc_constructor(void) {
  atomic_store(&constructor_ran, true);
  na_ensure_init();
}
