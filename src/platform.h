/* platform.h: the contract between the allocator and the kernel. platform_linux.c is the only
 * file that makes system calls; everything above it can be tested on any machine. Each call
 * preserves errno, so the allocator never disturbs the caller's errno except where the C
 * standard says it must (ENOMEM, EINVAL). */
#ifndef NUMALLOC_PLATFORM_H
#define NUMALLOC_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Memory policy modes for na_os_bind, as the kernel numbers them. */
typedef enum na_bind_mode_e {
  NA_BIND_PREFERRED = 1,  /* the node first, the nearest others when it is full */
  NA_BIND_STRICT = 2,     /* the node only */
  NA_BIND_INTERLEAVE = 3, /* page by page over a node set */
  NA_BIND_LOCAL = 4       /* the node of the CPU that touches it first; no node set */
} na_bind_mode_t;

/* Maps `size` bytes aligned to `alignment` (a power of two, at least a page), read-write,
 * not yet touched. NULL when the kernel refuses. */
void *na_os_map_aligned(size_t size, size_t alignment);
/* The same, charged to the process's commit as the C library's own mmap'd chunks are, for a
 * huge block, whose mapping is the block: under the kernel's default overcommit heuristic a
 * size that memory and swap together could not hold is refused (NULL), where a MAP_NORESERVE
 * mapping would be granted and the program killed once it touched too much of it. */
void *na_os_map_aligned_charged(size_t size, size_t alignment);
/* The same, without access: address space only, which the kernel does not charge under
 * strict overcommit until na_os_make_writable opens part of it. */
void *na_os_reserve_aligned(size_t size, size_t alignment);
/* Opens a reserved range for reading and writing; false when the kernel refuses (no commit
 * left under strict overcommit). */
bool na_os_make_writable(void *addr, size_t size);
/* Whether the kernel charges every writable mapping in full (vm.overcommit_memory=2). */
bool na_os_overcommit_strict(void);
void na_os_unmap(void *addr, size_t size);
/* Gives the pages back; they read as zero on next touch and keep their binding. False when
 * the kernel refused (pages locked by mlock or mlockall): they keep what they held. */
bool na_os_purge(void *addr, size_t size);
/* For `pages` OS pages of private anonymous memory from the page-aligned `addr`: 1 in
 * untouched[i] where page i has no frame, in memory or in swap, and reads as zero (never
 * touched since it was mapped or given back), else 0. False when the kernel does not say (no
 * /proc). */
bool na_os_pages_untouched(const void *addr, size_t pages, unsigned char *untouched);
/* Ranges given back together: one system call for the batch where the kernel takes a
 * vector of them for the calling process (process_madvise, Linux 6.13; one TLB flush for all
 * since 6.16: a hundred thousand single pages took 0.6 s one madvise each and 0.1 s this
 * way), one madvise each elsewhere. A range adjacent to the last one extends it. The pages
 * of a range added may read as before until the batch is flushed: nothing may use them
 * again before. */
#define NA_OS_PURGE_BATCH 128
typedef struct na_os_purge_batch_s {
  size_t count;
  bool refused; /* a range flushed so far was not given back (locked pages): set, never cleared */
  struct iovec ranges[NA_OS_PURGE_BATCH];
} na_os_purge_batch_t;
static inline void na_os_purge_start(na_os_purge_batch_t *batch) {
  batch->count = 0;
  batch->refused = false;
}
/* Flushes the batch first when it is full. */
void na_os_purge_add(na_os_purge_batch_t *batch, void *addr, size_t size);
/* Gives back every range of the batch, which is empty after it. */
void na_os_purge_flush(na_os_purge_batch_t *batch);
/* Tests: every range alone from now on (true), as where the kernel refuses vectors, or the
 * vector tried again (false). */
void na_os_purge_vector_forbid(bool forbid);
/* Binds a range that has not been touched; `nodes` is a bit mask of node ids. */
bool na_os_bind(void *addr, size_t size, na_bind_mode_t mode, const uint64_t *nodes, int max_node);
/* Faults a range in now, so a strict binding fails here with false instead of killing the
 * process at first touch when the node is full. */
bool na_os_populate(void *addr, size_t size);
/* Faults a range in now, as a hint: pages about to be written cost one system call for the
 * range instead of a trap each. Nothing once the kernel refused it (before Linux 5.14). */
void na_os_prefault(void *addr, size_t size);
/* Grows or moves a mapping without copying: to `new_addr` (a reserved range) when not NULL. */
void *na_os_remap(void *addr, size_t old_size, size_t new_size, void *new_addr);
/* Asks for transparent huge pages (on) or for none (off; only where the system's default
 * would give them, see na_os_thp_always). */
bool na_os_advise_huge(void *addr, size_t size, bool on);
/* True when the kernel's transparent huge pages are "always" (or their mode is unknown). */
bool na_os_thp_always(void);
/* True when asking for transparent huge pages can give this process some: the kernel has
 * them, their mode is "always" or "madvise", and the process has not turned them off
 * (PR_SET_THP_DISABLE, inherited across fork and exec). */
bool na_os_thp_usable(void);
/* True when the hypervisor takes back this machine's free memory in blocks of huge-page size
 * (virtio-balloon free page reporting), read once; _under reads the driver directory `dir`
 * (tests). */
bool na_os_free_memory_reported(void);
bool na_os_free_memory_reported_under(const char *dir);
/* Tests: 0 or 1 stands for the answer, -1 reads it again. */
void na_os_free_memory_reported_set(int known);
/* The node of each page, or a negative errno value per page (move_pages query mode). */
bool na_os_page_nodes(void *const *pages, int *nodes, size_t count);

/* The NUMA memory-policy system calls. A container's seccomp profile may refuse them: Docker's
 * refuses mbind, set_mempolicy and get_mempolicy without CAP_SYS_NICE, and move_pages and
 * migrate_pages even with it. */
typedef enum na_numa_call_e {
  NA_CALL_MBIND = 0,
  NA_CALL_SET_MEMPOLICY,
  NA_CALL_GET_MEMPOLICY,
  NA_CALL_MOVE_PAGES,
  NA_CALL_MIGRATE_PAGES,
  NA_CALL_COUNT
} na_numa_call_t;
/* 0 when the kernel permits `call`, else the errno it refuses it with (EPERM from a seccomp
 * profile, ENOSYS from a kernel without NUMA). Asked with arguments that change nothing: an
 * empty range, no pages, an invalid mode or node count. */
int na_os_numa_call_error(na_numa_call_t call);
const char *na_os_numa_call_name(na_numa_call_t call);
/* The nodes this process may allocate on (its cpuset's mems; bits beyond 63 dropped), from
 * get_mempolicy; false when the call is refused. */
bool na_os_mems_allowed(uint64_t *mask);
/* As na_os_page_nodes, one page at a time through get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR),
 * which works where move_pages is refused. That call would fault a missing page in, so a page
 * mincore does not see resident gives -ENOENT, as move_pages says, and is not asked about. */
bool na_os_page_nodes_by_policy(void *const *pages, int *nodes, size_t count);
/* A short description of an errno value that never allocates ("Operation not permitted"). */
const char *na_os_error_text(int error);

/* The CPU the calling thread runs on: from the rseq area when glibc registered one, else
 * sched_getcpu (the vDSO); never a system call on x86-64. */
int na_os_current_cpu(void);
/* Milliseconds on a monotonic coarse clock (a vDSO read). */
uint32_t na_os_clock_ms(void);
/* Randomness for secrets, from getrandom, falling back to clock and address bits. */
uint64_t na_os_random(void);
/* Reads a small file into `buf` (NUL-terminated) without allocating; -1 on failure. */
long na_os_read_file(const char *path, char *buf, size_t size);
/* Writes to standard error without allocating or locking stdio. */
void na_os_write_stderr(const char *text, size_t len);
/* A private copy of standard error, for reports written at exit: programs (coreutils) may
 * close fd 2 in their own exit handlers before ours run. -1 on failure. */
int na_os_dup_stderr(void);
const char *na_os_getenv(const char *name);
/* Files of the live statistics (NUMALLOC_STATS_INTERVAL). na_os_create_private makes `path`
 * for writing, readable by its owner only, and refuses anything already there (a symbolic link
 * included): a descriptor, or -errno. */
int na_os_create_private(const char *path);
int na_os_rename(const char *from, const char *to); /* 0, or the errno */
void na_os_remove(const char *path);
void na_os_close(int fd);
/* The target of a symbolic link into `buf` (NUL-terminated); false when it cannot be read. */
bool na_os_read_link(const char *path, char *buf, size_t size);
int na_os_getpid(void);
/* True when the process has never had a second thread (C library's flag; false when the
 * library cannot tell). */
bool na_os_single_threaded(void);
void na_os_yield(void);
/* Sleeps up to `ms` milliseconds while *word == expected; na_os_wake_all(word) ends the sleep
 * of every thread waiting on it. */
void na_os_wait_ms(_Atomic uint32_t *word, uint32_t expected, uint32_t ms);
void na_os_wake_all(_Atomic uint32_t *word);
/* Starts a thread named `name` (at most 15 characters, as ps and perf show it) running
 * fn(arg), its handle in *thread for na_os_thread_join; false when it cannot. The thread
 * inherits the caller's signal mask: called under na_os_signals_hold, it blocks them all. */
bool na_os_thread_start(const char *name, void *(*fn)(void *), void *arg, uintptr_t *thread);
/* Waits until the thread has ended, all of it: the C library no longer counts it among the
 * process's threads. */
void na_os_thread_join(uintptr_t thread);
/* The calling thread's id in the kernel. */
int32_t na_os_kernel_thread_id(void);
/* Waits up to `ms` milliseconds until the kernel no longer counts the ended thread
 * `kernel_id` (not 0) among the process's threads. */
void na_os_wait_thread_gone(int32_t kernel_id, uint32_t ms);
/* The calling thread's signal mask, kept while na_os_signals_hold blocks every signal a
 * program can catch; na_os_signals_restore puts it back, and a signal that came meanwhile is
 * handled then. */
typedef struct na_signal_mask_s {
  uint64_t words[16];
} na_signal_mask_t;
void na_os_signals_hold(na_signal_mask_t *saved);
void na_os_signals_restore(const na_signal_mask_t *saved);
/* Keeps the calling thread on the CPUs whose bits are set in `cpus` (`words` 64-bit words). */
bool na_os_pin_to_cpus(const uint64_t *cpus, size_t words);

/* Test hook: the next `count` mappings fail as if the kernel had no memory (0: none). */
void na_os_inject_map_failures(int count);

#endif /* NUMALLOC_PLATFORM_H */
