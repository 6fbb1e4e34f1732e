/* platform_linux.c: every system call the allocator makes (see platform.h for the contract).
 * Calls here never allocate and always leave errno as they found it. */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/rseq.h>
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define NA_HAVE_SINGLE_THREADED 1
#endif
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
/* get_mempolicy flags and the default mode, as <numaif.h> numbers them */
#define NA_MPOL_DEFAULT         0
#define NA_MPOL_F_NODE          1
#define NA_MPOL_F_ADDR          2
#define NA_MPOL_F_MEMS_ALLOWED  4
#define NA_KERNEL_NODEMASK_BITS 1024 /* the largest nodemask a kernel is built with */

static _Atomic int injected_map_failures;

void na_os_inject_map_failures(int count) { atomic_store(&injected_map_failures, count); }

static bool map_failure_injected(void) {
  int left = atomic_load_explicit(&injected_map_failures, memory_order_relaxed);
  while (left > 0) {
    if (atomic_compare_exchange_weak(&injected_map_failures, &left, left - 1)) return true;
  }
  return false;
}

/* How a mapping is charged to the commit the kernel accounts: segments and metadata are
 * reserved address space whose pages are used a few at a time (MAP_NORESERVE); a huge block's
 * mapping is the block, charged as the C library's mmap'd chunks are. */
typedef enum map_charge_e { NA_MAP_UNCHARGED, NA_MAP_CHARGED } map_charge_t;

static void *map_raw(void *hint, size_t size, int prot, map_charge_t charge) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (charge == NA_MAP_UNCHARGED ? MAP_NORESERVE : 0);
  void *p = mmap(hint, size, prot, flags, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static bool is_aligned(const void *p, size_t alignment) {
  return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* `size` bytes at `hint` if that room is free, else where the kernel puts them; kept only
 * when aligned. */
static char *map_exact_aligned(void *hint, size_t size, size_t alignment, int prot,
                               map_charge_t charge) {
  char *p = map_raw(hint, size, prot, charge);
  if (p == NULL || is_aligned(p, alignment)) return p;
  munmap(p, size);
  return NULL;
}

/* The kernel maps from the top down, so the room just below where it put a mapping of `size`
 * is usually free too: asking for the aligned address there gets an aligned mapping of
 * exactly `size`. Mapping size + alignment and trimming it, the fallback, needs twice the
 * address space for a moment, so under a limit on it (ulimit -v, as batch systems set) the
 * first segment failed where the C library's malloc still had room. */
static void *map_aligned(size_t size, size_t alignment, int prot, map_charge_t charge) {
  int saved = errno;
  char *result = NULL;
  if (map_failure_injected()) goto out; /* one injected failure fails one call, whole */
  if (alignment <= 4096) {              /* every mapping is aligned to a page: nothing to trim */
    result = map_raw(NULL, size, prot, charge);
    goto out;
  }
  char *probe = map_raw(NULL, size, prot, charge);
  if (probe != NULL && is_aligned(probe, alignment)) {
    result = probe;
    goto out;
  }
  if (probe != NULL) {
    munmap(probe, size);
    result = map_exact_aligned((void *)((uintptr_t)probe & ~(alignment - 1)), size, alignment, prot,
                               charge);
    if (result != NULL) goto out;
  }
  size_t padded = size + alignment;
  if (padded < size) goto out;
  char *raw = map_raw(NULL, padded, prot, charge);
  if (raw == NULL) goto out;
  char *aligned = (char *)(((uintptr_t)raw + alignment - 1) & ~(uintptr_t)(alignment - 1));
  if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
  size_t tail = (size_t)((raw + padded) - (aligned + size));
  if (tail > 0) munmap(aligned + size, tail);
  result = aligned;
out:
  errno = saved;
  return result;
}

void *na_os_map_aligned(size_t size, size_t alignment) {
  return map_aligned(size, alignment, PROT_READ | PROT_WRITE, NA_MAP_UNCHARGED);
}

void *na_os_map_aligned_charged(size_t size, size_t alignment) {
  return map_aligned(size, alignment, PROT_READ | PROT_WRITE, NA_MAP_CHARGED);
}

void *na_os_reserve_aligned(size_t size, size_t alignment) {
  return map_aligned(size, alignment, PROT_NONE, NA_MAP_UNCHARGED);
}

bool na_os_make_writable(void *addr, size_t size) {
  int saved = errno;
  bool ok = mprotect(addr, size, PROT_READ | PROT_WRITE) == 0;
  errno = saved;
  return ok;
}

/* Mode 2 of vm.overcommit_memory: the kernel charges every private writable mapping in full
 * when it is made, MAP_NORESERVE or not. */
bool na_os_overcommit_strict(void) {
  char mode[16];
  return na_os_read_file("/proc/sys/vm/overcommit_memory", mode, sizeof mode) > 0 && mode[0] == '2';
}

void na_os_unmap(void *addr, size_t size) {
  int saved = errno;
  munmap(addr, size);
  errno = saved;
}

bool na_os_purge(void *addr, size_t size) {
  int saved = errno;
  bool ok = madvise(addr, size, MADV_DONTNEED) == 0;
  errno = saved;
  return ok;
}

/* The page map has a word per page; a page with a frame has bit 63 set, one in swap (or
 * being moved between nodes) bit 62. */
#define PAGEMAP_PRESENT   ((uint64_t)1 << 63)
#define PAGEMAP_SWAPPED   ((uint64_t)1 << 62)
#define PAGEMAP_READ_MANY 128  /* a kilobyte of stack */
#define PAGEMAP_PAGE      4096 /* bytes a word describes */

bool na_os_pages_untouched(const void *addr, size_t pages, unsigned char *untouched) {
  int saved = errno;
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0;
  uint64_t words[PAGEMAP_READ_MANY];
  for (size_t done = 0; ok && done < pages;) {
    size_t count = pages - done < PAGEMAP_READ_MANY ? pages - done : PAGEMAP_READ_MANY;
    off_t at = (off_t)(((uintptr_t)addr / PAGEMAP_PAGE + done) * sizeof(uint64_t));
    ssize_t got = pread(fd, words, count * sizeof(uint64_t), at);
    if (got < 0 && errno == EINTR) continue;
    ok = got == (ssize_t)(count * sizeof(uint64_t));
    for (size_t i = 0; ok && i < count; i++)
      untouched[done + i] = (words[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) == 0;
    done += count;
  }
  if (fd >= 0) close(fd);
  errno = saved;
  return ok;
}

/* process_madvise on the calling thread's process without a pidfd (Linux 6.15 and later);
 * older kernels refuse the fake descriptor or the advice, a seccomp filter may refuse the
 * call: then each range goes alone, from the first refusal on. */
#define NA_PIDFD_SELF_THREAD (-10000)
/* The kernel reads a vector of at most INT_MAX bytes in all and does the rest never. */
#define PURGE_VECTOR_MAX_BYTES ((size_t)1 << 30)
static _Atomic bool vector_purge_refused;

void na_os_purge_vector_forbid(bool forbid) {
  atomic_store_explicit(&vector_purge_refused, forbid, memory_order_relaxed);
}

/* True when every range went back. */
static bool purge_each(const struct iovec *ranges, size_t count) {
  bool all = true;
  for (size_t i = 0; i < count; i++)
    all &= madvise(ranges[i].iov_base, ranges[i].iov_len, MADV_DONTNEED) == 0;
  return all;
}

typedef enum vector_purge_e {
  VECTOR_DONE,    /* every range given back */
  VECTOR_UNDONE,  /* not tried, or a part may be done: giving back again is harmless */
  VECTOR_REFUSED, /* refused, for the vector or for a range of it */
} vector_purge_t;

static vector_purge_t purge_vector(const struct iovec *ranges, size_t count) {
#ifdef SYS_process_madvise
  if (count < 2 || atomic_load_explicit(&vector_purge_refused, memory_order_relaxed))
    return VECTOR_UNDONE;
  size_t total = 0;
  for (size_t i = 0; i < count; i++) total += ranges[i].iov_len;
  if (total > PURGE_VECTOR_MAX_BYTES) return VECTOR_UNDONE;
  long done = syscall(SYS_process_madvise, NA_PIDFD_SELF_THREAD, ranges, count, MADV_DONTNEED, 0U);
  if (done == (long)total) return VECTOR_DONE;
  if (done < 0 && errno != EINTR && errno != EAGAIN && errno != ENOMEM) return VECTOR_REFUSED;
  return VECTOR_UNDONE;
#else
  (void)ranges;
  (void)count;
  return VECTOR_UNDONE;
#endif
}

/* A vector refused where each of its ranges goes back alone is refused for what it is: never
 * tried again. Where a range is refused too (locked pages), the vector may well work. */
void na_os_purge_flush(na_os_purge_batch_t *batch) {
  size_t count = batch->count;
  if (count == 0) return;
  batch->count = 0;
  int saved = errno;
  vector_purge_t vector = purge_vector(batch->ranges, count);
  if (vector != VECTOR_DONE) {
    if (!purge_each(batch->ranges, count))
      batch->refused = true;
    else if (vector == VECTOR_REFUSED)
      atomic_store_explicit(&vector_purge_refused, true, memory_order_relaxed);
  }
  errno = saved;
}

void na_os_purge_add(na_os_purge_batch_t *batch, void *addr, size_t size) {
  if (batch->count > 0) {
    struct iovec *last = &batch->ranges[batch->count - 1];
    if ((char *)last->iov_base + last->iov_len == (char *)addr) {
      last->iov_len += size;
      return;
    }
  }
  if (batch->count == NA_OS_PURGE_BATCH) na_os_purge_flush(batch);
  batch->ranges[batch->count++] = (struct iovec){.iov_base = addr, .iov_len = size};
}

bool na_os_bind(void *addr, size_t size, na_bind_mode_t mode, const uint64_t *nodes, int max_node) {
  int saved = errno;
  long rc = syscall(SYS_mbind, addr, size, (int)mode, nodes, (unsigned long)max_node + 2, 0UL);
  errno = saved;
  return rc == 0;
}

bool na_os_populate(void *addr, size_t size) {
  int saved = errno;
  bool ok = madvise(addr, size, MADV_POPULATE_WRITE) == 0;
  errno = saved;
  return ok;
}

static _Atomic bool prefault_refused;

void na_os_prefault(void *addr, size_t size) {
  if (atomic_load_explicit(&prefault_refused, memory_order_relaxed)) return;
  int saved = errno;
  if (madvise(addr, size, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
    atomic_store_explicit(&prefault_refused, true, memory_order_relaxed);
  errno = saved;
}

void *na_os_remap(void *addr, size_t old_size, size_t new_size, void *new_addr) {
  int saved = errno;
  void *p = new_addr == NULL
                ? mremap(addr, old_size, new_size, 0)
                : mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr);
  errno = saved;
  return p == MAP_FAILED ? NULL : p;
}

/* The kernel's THP mode, read from sysfs once (four system calls) by whichever question
 * needs it first; -1 until then. No file means a kernel without transparent huge pages. */
typedef enum thp_mode_e { THP_UNREADABLE, THP_NEVER, THP_MADVISE, THP_ALWAYS } thp_mode_t;
static int thp_mode = -1;

static thp_mode_t thp_mode_of_kernel(void) {
  int known = __atomic_load_n(&thp_mode, __ATOMIC_RELAXED);
  if (known >= 0) return (thp_mode_t)known;
  char mode[128];
  long n = na_os_read_file("/sys/kernel/mm/transparent_hugepage/enabled", mode, sizeof mode);
  known = n <= 0                              ? THP_UNREADABLE
          : strstr(mode, "[always]") != NULL  ? THP_ALWAYS
          : strstr(mode, "[madvise]") != NULL ? THP_MADVISE
                                              : THP_NEVER;
  __atomic_store_n(&thp_mode, known, __ATOMIC_RELAXED);
  return (thp_mode_t)known;
}

/* Refusing huge pages matters only where the kernel hands them out unasked ("always"): under
 * "madvise" or "never" MADV_NOHUGEPAGE changes nothing and would cost a system call per
 * segment. The mode is asked for at the second refusal: the first is one madvise, where
 * reading the file takes four calls, and most processes map one segment. A mode that cannot
 * be read counts as "always" here, to refuse rather than risk them. */
static _Atomic int refusals;

bool na_os_thp_always(void) {
  thp_mode_t mode = thp_mode_of_kernel();
  return mode == THP_ALWAYS || mode == THP_UNREADABLE;
}

/* Asked when a heap first outgrows a segment or maps a huge block: advice the kernel ignores
 * would cost a heap its sparse purges and buy nothing. The process's own setting is asked
 * once too. */
static int thp_turned_off = -1;

bool na_os_thp_usable(void) {
  thp_mode_t mode = thp_mode_of_kernel();
  if (mode != THP_ALWAYS && mode != THP_MADVISE) return false;
  int off = __atomic_load_n(&thp_turned_off, __ATOMIC_RELAXED);
  if (off < 0) {
    int saved = errno;
    off = prctl(PR_GET_THP_DISABLE, 0L, 0L, 0L, 0L) == 1;
    errno = saved;
    __atomic_store_n(&thp_turned_off, off, __ATOMIC_RELAXED);
  }
  return !off;
}

/* virtio-balloon free page reporting (feature bit 5): the guest tells the hypervisor about
 * its free blocks of 2 MiB and more, which the host then takes back, so a huge page faulted
 * in there costs the host a fault for each of its 512 small pages. Small pages come first
 * from smaller free blocks, which are not reported. Read once, by listing the driver's
 * devices with getdents64 (opendir would call malloc). */
#define BALLOON_DRIVER      "/sys/bus/virtio/drivers/virtio_balloon"
#define BALLOON_F_REPORTING 5

static bool device_reports(const char *dir, const char *device) {
  char path[512], features[160];
  int n = snprintf(path, sizeof path, "%s/%s/features", dir, device);
  if (n < 0 || (size_t)n >= sizeof path) return false;
  long length = na_os_read_file(path, features, sizeof features);
  return length > BALLOON_F_REPORTING && features[BALLOON_F_REPORTING] == '1';
}

bool na_os_free_memory_reported_under(const char *dir) {
  int saved = errno;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool reported = false;
  char buf[2048] __attribute__((aligned(8)));
  long n;
  while (fd >= 0 && !reported && (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long at = 0; at < n && !reported;) {
      const struct {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *entry = (const void *)(buf + at);
      if (strncmp(entry->name, "virtio", 6) == 0) reported = device_reports(dir, entry->name);
      at += entry->reclen;
    }
  }
  if (fd >= 0) close(fd);
  errno = saved;
  return reported;
}

static int free_memory_reported = -1;

void na_os_free_memory_reported_set(int known) {
  __atomic_store_n(&free_memory_reported, known, __ATOMIC_RELAXED);
}

bool na_os_free_memory_reported(void) {
  int known = __atomic_load_n(&free_memory_reported, __ATOMIC_RELAXED);
  if (known < 0) {
    known = na_os_free_memory_reported_under(BALLOON_DRIVER);
    __atomic_store_n(&free_memory_reported, known, __ATOMIC_RELAXED);
  }
  return known;
}

bool na_os_advise_huge(void *addr, size_t size, bool on) {
  if (!on && atomic_fetch_add_explicit(&refusals, 1, memory_order_relaxed) > 0 &&
      !na_os_thp_always())
    return true;
  int saved = errno;
  bool ok = madvise(addr, size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0;
  errno = saved;
  return ok;
}

bool na_os_page_nodes(void *const *pages, int *nodes, size_t count) {
  int saved = errno;
  long rc = syscall(SYS_move_pages, 0, (unsigned long)count, pages, NULL, nodes, 0);
  errno = saved;
  return rc == 0;
}

/* Each probe is a real call that the kernel checks and then finds has nothing to do, so a
 * seccomp filter answers it as it would a real one. EINVAL means the kernel looked at the
 * arguments: the call itself is permitted. */
static long probe_call(na_numa_call_t call) {
  uint64_t mask[NA_KERNEL_NODEMASK_BITS / 64] = {0};
  switch (call) {
  case NA_CALL_MBIND: return syscall(SYS_mbind, NULL, 0UL, NA_MPOL_DEFAULT, NULL, 0UL, 0U);
  case NA_CALL_SET_MEMPOLICY: return syscall(SYS_set_mempolicy, -1, NULL, 0UL);
  case NA_CALL_GET_MEMPOLICY: return syscall(SYS_get_mempolicy, NULL, NULL, 0UL, NULL, 0UL);
  case NA_CALL_MOVE_PAGES: return syscall(SYS_move_pages, 0, 0UL, NULL, NULL, NULL, 0);
  case NA_CALL_MIGRATE_PAGES: /* a node count beyond any kernel's is refused before any work */
    return syscall(SYS_migrate_pages, 0, 1UL << 30, mask, mask);
  case NA_CALL_COUNT: break;
  }
  errno = EINVAL;
  return -1;
}

int na_os_numa_call_error(na_numa_call_t call) {
  int saved = errno;
  long rc = probe_call(call);
  int error = rc == 0 || errno == EINVAL ? 0 : errno;
  errno = saved;
  return error;
}

const char *na_os_numa_call_name(na_numa_call_t call) {
  static const char *const names[NA_CALL_COUNT] = {"mbind", "set_mempolicy", "get_mempolicy",
                                                   "move_pages", "migrate_pages"};
  return call >= 0 && call < NA_CALL_COUNT ? names[call] : "?";
}

bool na_os_mems_allowed(uint64_t *mask) {
  int saved = errno;
  uint64_t all[NA_KERNEL_NODEMASK_BITS / 64] = {0};
  long rc = syscall(SYS_get_mempolicy, NULL, all, (unsigned long)NA_KERNEL_NODEMASK_BITS, NULL,
                    (unsigned long)NA_MPOL_F_MEMS_ALLOWED);
  errno = saved;
  if (rc != 0) return false;
  mask[0] = all[0];
  return true;
}

bool na_os_page_nodes_by_policy(void *const *pages, int *nodes, size_t count) {
  int saved = errno;
  bool ok = true;
  for (size_t i = 0; i < count && ok; i++) {
    unsigned char resident = 0;
    void *page = (void *)((uintptr_t)pages[i] & ~(uintptr_t)4095);
    if (mincore(page, 1, &resident) != 0) {
      nodes[i] = -EFAULT; /* not mapped */
      continue;
    }
    if (!(resident & 1)) {
      nodes[i] = -ENOENT;
      continue;
    }
    int node = -1;
    if (syscall(SYS_get_mempolicy, &node, NULL, 0UL, pages[i],
                (unsigned long)(NA_MPOL_F_NODE | NA_MPOL_F_ADDR)) == 0)
      nodes[i] = node;
    else if (errno == EFAULT || errno == ENOMEM)
      nodes[i] = -errno; /* unmapped since mincore looked */
    else
      ok = false; /* refused */
  }
  errno = saved;
  return ok;
}

const char *na_os_error_text(int error) {
  const char *text = strerrordesc_np(error);
  return text != NULL ? text : "unknown error";
}

int na_os_current_cpu(void) {
  if (__rseq_size > 0) {
    const struct rseq *area =
        (const struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    int cpu = (int)__atomic_load_n(&area->cpu_id, __ATOMIC_RELAXED);
    if (cpu >= 0) return cpu;
  }
  int saved = errno;
  int cpu = sched_getcpu(); /* the vDSO: still no system call on x86-64 */
  errno = saved;
  return cpu < 0 ? 0 : cpu;
}

uint32_t na_os_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

uint64_t na_os_random(void) {
  int saved = errno;
  uint64_t value = 0;
  if (getrandom(&value, sizeof value, GRND_NONBLOCK) != (ssize_t)sizeof value) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    value = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ (uintptr_t)&value;
  }
  errno = saved;
  return value | 1;
}

long na_os_read_file(const char *path, char *buf, size_t size) {
  int saved = errno;
  long total = -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    total = 0;
    while ((size_t)total + 1 < size) {
      ssize_t n = read(fd, buf + total, size - 1 - (size_t)total);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      total += n;
    }
    buf[total] = '\0';
    close(fd);
  }
  errno = saved;
  return total;
}

void na_os_write_stderr(const char *text, size_t len) {
  int saved = errno;
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, text, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text += n;
    len -= (size_t)n;
  }
  errno = saved;
}

int na_os_dup_stderr(void) {
  int saved = errno;
  int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  errno = saved;
  return fd;
}

const char *na_os_getenv(const char *name) { return getenv(name); }

int na_os_create_private(const char *path) {
  int saved = errno;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) fd = -errno;
  errno = saved;
  return fd;
}

int na_os_rename(const char *from, const char *to) {
  int saved = errno;
  int error = rename(from, to) == 0 ? 0 : errno;
  errno = saved;
  return error;
}

void na_os_remove(const char *path) {
  int saved = errno;
  unlink(path);
  errno = saved;
}

int na_os_getpid(void) { return (int)getpid(); }

bool na_os_single_threaded(void) {
#ifdef NA_HAVE_SINGLE_THREADED
  return __libc_single_threaded;
#else
  return false;
#endif
}

bool na_os_read_link(const char *path, char *buf, size_t size) {
  int saved = errno;
  ssize_t n = readlink(path, buf, size - 1);
  errno = saved;
  if (n < 0) return false;
  buf[n] = '\0';
  return true;
}

void na_os_close(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

void na_os_yield(void) { sched_yield(); }

void na_os_wait_ms(_Atomic uint32_t *word, uint32_t expected, uint32_t ms) {
  int saved = errno;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
  errno = saved; /* woken, timed out, interrupted or the word changed: the caller looks again */
}

void na_os_wake_all(_Atomic uint32_t *word) {
  int saved = errno;
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
  errno = saved;
}

bool na_os_thread_start(const char *name, void *(*fn)(void *), void *arg, uintptr_t *thread) {
  int saved = errno;
  pthread_t created;
  bool ok = pthread_create(&created, NULL, fn, arg) == 0;
  if (ok) {
    pthread_setname_np(created, name);
    *thread = (uintptr_t)created;
  }
  errno = saved;
  return ok;
}

int32_t na_os_kernel_thread_id(void) { return (int32_t)syscall(SYS_gettid); }

/* A signal 0 finds the thread until the kernel has taken it out of the process. */
void na_os_wait_thread_gone(int32_t kernel_id, uint32_t ms) {
  if (kernel_id <= 0) return;
  int saved = errno;
  long pid = (long)getpid();
  uint32_t start = na_os_clock_ms();
  while (syscall(SYS_tgkill, pid, (long)kernel_id, 0) == 0 && na_os_clock_ms() - start < ms)
    sched_yield();
  errno = saved;
}

_Static_assert(sizeof(sigset_t) <= sizeof(na_signal_mask_t), "a signal mask fits");

void na_os_signals_hold(na_signal_mask_t *saved) {
  int errno_saved = errno;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, (sigset_t *)saved->words);
  errno = errno_saved;
}

void na_os_signals_restore(const na_signal_mask_t *saved) {
  int errno_saved = errno;
  pthread_sigmask(SIG_SETMASK, (const sigset_t *)saved->words, NULL);
  errno = errno_saved;
}

void na_os_thread_join(uintptr_t thread) {
  int saved = errno;
  pthread_join((pthread_t)thread, NULL);
  errno = saved;
}

/* The kernel takes a CPU mask of any length as an array of longs: on a 64-bit machine that is
 * `cpus` as it is, so CPUs past glibc's cpu_set_t (1,024) are pinned too. */
_Static_assert(sizeof(long) == sizeof(uint64_t), "a CPU mask word is a long");
bool na_os_pin_to_cpus(const uint64_t *cpus, size_t words) {
  int saved = errno;
  bool any = false;
  for (size_t w = 0; w < words; w++) any = any || cpus[w] != 0;
  bool ok = any && sched_setaffinity(0, words * sizeof *cpus, (const cpu_set_t *)cpus) == 0;
  errno = saved;
  return ok;
}
