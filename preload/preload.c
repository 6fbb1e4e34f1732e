/* preload.c: interposition. With LD_PRELOAD=libnumapreload.so these definitions take the
 * place of the C library's malloc family; each forwards to the numalloc core in one line
 * (glibc's extensions below also translate numalloc's answers into glibc's structures).
 * The C library's own functions are looked up once (dlsym RTLD_NEXT) so that
 * NUMALLOC_POLICY=system, and frees of pointers numalloc does not own, can go to them. */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t size) { return na_malloc_fast(size); }
EXPORT void free(void *p) { na_free_fast(p); }
EXPORT void cfree(void *p) { na_free_fast(p); }
EXPORT void *calloc(size_t count, size_t size) { return numalloc_calloc(count, size); }
EXPORT void *realloc(void *p, size_t size) { return numalloc_realloc(p, size); }
EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  return numalloc_reallocarray(p, count, size);
}
EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  return numalloc_posix_memalign(out, alignment, size);
}
EXPORT void *aligned_alloc(size_t alignment, size_t size) {
  return numalloc_aligned_alloc(alignment, size);
}
EXPORT void *memalign(size_t alignment, size_t size) { return numalloc_memalign(alignment, size); }
EXPORT void *valloc(size_t size) { return numalloc_valloc(size); }
EXPORT void *pvalloc(size_t size) { return numalloc_pvalloc(size); }
EXPORT size_t malloc_usable_size(void *p) { return na_usable_size_fast(p); }

/* glibc exports its malloc family under these names too, and some programs and libraries
 * call them (a wrapper forwarding to the "real" malloc, code from before malloc hooks went
 * away): under glibc they are the same functions as malloc and free, so a block from one may
 * go to the other. They are numalloc's here, as tcmalloc's and mimalloc's are theirs, or a
 * block from __libc_malloc would reach numalloc's free as a pointer it never made. */
EXPORT void *__libc_malloc(size_t size) { return na_malloc_fast(size); }
EXPORT void __libc_free(void *p) { na_free_fast(p); }
EXPORT void __libc_cfree(void *p) { na_free_fast(p); }
EXPORT void *__libc_calloc(size_t count, size_t size) { return numalloc_calloc(count, size); }
EXPORT void *__libc_realloc(void *p, size_t size) { return numalloc_realloc(p, size); }
EXPORT void *__libc_memalign(size_t alignment, size_t size) {
  return numalloc_memalign(alignment, size);
}
EXPORT void *__libc_valloc(size_t size) { return numalloc_valloc(size); }
EXPORT void *__libc_pvalloc(size_t size) { return numalloc_pvalloc(size); }

/* The C library's own extensions, which programs call to give memory back (malloc_trim) or
 * to report it (mallinfo, malloc_stats): answered from numalloc's memory, and passed to the
 * C library's under NUMALLOC_POLICY=system, where its memory is the program's. */
static struct {
  int (*trim)(size_t);
  struct mallinfo (*info)(void);
  struct mallinfo2 (*info2)(void);
  void (*stats)(void);
} system_extras;

static bool system_policy(void) {
  return na_ensure_init() && na_options.policy == NUMALLOC_POLICY_SYSTEM;
}

/* `pad` (memory to keep at the top of glibc's heap) has no meaning here: every idle page
 * goes. 1 when memory went back to the OS, as glibc answers. */
EXPORT int malloc_trim(size_t pad) {
  if (system_policy() && system_extras.trim != NULL) return system_extras.trim(pad);
  return na_trim();
}

/* Blocks of segments count as glibc's heap (arena, in use, free), huge blocks as its mapped
 * chunks; the counts of free chunks and fastbins have no equivalent and stay 0. */
EXPORT struct mallinfo2 mallinfo2(void) {
  if (system_policy() && system_extras.info2 != NULL) return system_extras.info2();
  na_memory_t m;
  na_stats_memory(&m);
  size_t heap = m.mapped > m.huge ? m.mapped - m.huge : 0;
  size_t used = m.live > m.huge ? m.live - m.huge : 0;
  return (struct mallinfo2){
      .arena = heap, .hblkhd = m.huge, .uordblks = used, .fordblks = heap > used ? heap - used : 0};
}

static int clamp_int(size_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

EXPORT struct mallinfo mallinfo(void) {
  if (system_policy() && system_extras.info != NULL) return system_extras.info();
  struct mallinfo2 m = mallinfo2();
  return (struct mallinfo){.arena = clamp_int(m.arena),
                           .hblkhd = clamp_int(m.hblkhd),
                           .uordblks = clamp_int(m.uordblks),
                           .fordblks = clamp_int(m.fordblks)};
}

/* On standard error, as glibc's. */
EXPORT void malloc_stats(void) {
  if (system_policy() && system_extras.stats != NULL) {
    system_extras.stats();
    return;
  }
  numalloc_stats_print(stderr, "text");
}

/* A program that changes its credentials (setuid and its kin) with more than one thread has
 * the C library make every thread make the same call, and aborts when one thread's answer
 * differs: numalloc's helper threads (NUMALLOC_BACKGROUND, NUMALLOC_STATS_INTERVAL) must not
 * be there then, since the program may have given its own thread capabilities they lack. Nor
 * when it enters a namespace, which the kernel refuses a process of several threads. */
static struct {
  int (*setuid)(uid_t);
  int (*setgid)(gid_t);
  int (*seteuid)(uid_t);
  int (*setegid)(gid_t);
  int (*setreuid)(uid_t, uid_t);
  int (*setregid)(gid_t, gid_t);
  int (*setresuid)(uid_t, uid_t, uid_t);
  int (*setresgid)(gid_t, gid_t, gid_t);
  int (*setgroups)(size_t, const gid_t *);
  int (*unshare)(int);
  int (*setns)(int, int);
} system_ids;

#define WITHOUT_HELPERS(name, ...)                                                                 \
  do {                                                                                             \
    if (system_ids.name == NULL) {                                                                 \
      errno = ENOSYS;                                                                              \
      return -1;                                                                                   \
    }                                                                                              \
    na_helpers_pause();                                                                            \
    int rc = system_ids.name(__VA_ARGS__);                                                         \
    int saved = errno;                                                                             \
    na_helpers_resume();                                                                           \
    errno = saved;                                                                                 \
    return rc;                                                                                     \
  } while (0)

EXPORT int setuid(uid_t uid) { WITHOUT_HELPERS(setuid, uid); }
EXPORT int setgid(gid_t gid) { WITHOUT_HELPERS(setgid, gid); }
EXPORT int seteuid(uid_t uid) { WITHOUT_HELPERS(seteuid, uid); }
EXPORT int setegid(gid_t gid) { WITHOUT_HELPERS(setegid, gid); }
EXPORT int setreuid(uid_t r, uid_t e) { WITHOUT_HELPERS(setreuid, r, e); }
EXPORT int setregid(gid_t r, gid_t e) { WITHOUT_HELPERS(setregid, r, e); }
EXPORT int setresuid(uid_t r, uid_t e, uid_t s) { WITHOUT_HELPERS(setresuid, r, e, s); }
EXPORT int setresgid(gid_t r, gid_t e, gid_t s) { WITHOUT_HELPERS(setresgid, r, e, s); }
EXPORT int setgroups(size_t count, const gid_t *groups) {
  WITHOUT_HELPERS(setgroups, count, groups);
}
/* The kernel refuses a new user namespace (and entering some namespaces) to a process of
 * several threads: EINVAL because of a helper the program never started. */
EXPORT int unshare(int flags) { WITHOUT_HELPERS(unshare, flags); }
EXPORT int setns(int fd, int type) { WITHOUT_HELPERS(setns, fd, type); }

/* Runs before the core's constructor (NA_CONSTRUCTOR_PRELOAD before NA_CONSTRUCTOR_CORE), so
 * the system allocator is known before any policy is applied. dlsym may call calloc: that
 * request is served by the core's bootstrap buffer. */
__attribute__((constructor(NA_CONSTRUCTOR_PRELOAD))) static void
preload_find_system_allocator(void) {
  na_system_allocator_t system = {
      .malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc"),
      .free = (void (*)(void *))dlsym(RTLD_NEXT, "free"),
      .calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc"),
      .realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc"),
      .posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign"),
      .usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size"),
  };
  na_set_system_allocator(&system);
  system_extras.trim = (int (*)(size_t))dlsym(RTLD_NEXT, "malloc_trim");
  system_extras.info = (struct mallinfo(*)(void))dlsym(RTLD_NEXT, "mallinfo");
  system_extras.info2 = (struct mallinfo2(*)(void))dlsym(RTLD_NEXT, "mallinfo2");
  system_extras.stats = (void (*)(void))dlsym(RTLD_NEXT, "malloc_stats");
  system_ids.setuid = (int (*)(uid_t))dlsym(RTLD_NEXT, "setuid");
  system_ids.setgid = (int (*)(gid_t))dlsym(RTLD_NEXT, "setgid");
  system_ids.seteuid = (int (*)(uid_t))dlsym(RTLD_NEXT, "seteuid");
  system_ids.setegid = (int (*)(gid_t))dlsym(RTLD_NEXT, "setegid");
  system_ids.setreuid = (int (*)(uid_t, uid_t))dlsym(RTLD_NEXT, "setreuid");
  system_ids.setregid = (int (*)(gid_t, gid_t))dlsym(RTLD_NEXT, "setregid");
  system_ids.setresuid = (int (*)(uid_t, uid_t, uid_t))dlsym(RTLD_NEXT, "setresuid");
  system_ids.setresgid = (int (*)(gid_t, gid_t, gid_t))dlsym(RTLD_NEXT, "setresgid");
  system_ids.setgroups = (int (*)(size_t, const gid_t *))dlsym(RTLD_NEXT, "setgroups");
  system_ids.unshare = (int (*)(int))dlsym(RTLD_NEXT, "unshare");
  system_ids.setns = (int (*)(int, int))dlsym(RTLD_NEXT, "setns");
}
