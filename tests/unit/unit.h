/* unit.h: what the Check unit tests share. Each check_<module>.c links the static core
 * directly (no preload: Check's own runner keeps glibc's malloc) and may use the internal
 * headers, so it can look at the state a public call leaves behind. Here: the runner,
 * resident-page and RSS probes, stderr capture; the PRNG and block patterns are test_util.h's.
 *
 * Every test runs in a child forked from the runner (Check's default CK_FORK), and the
 * runner never allocates from numalloc, so a test starts with no segment mapped and no
 * thread record: tests rely on that to predict addresses and mapped bytes exactly. */
#ifndef NUMALLOC_UNIT_H
#define NUMALLOC_UNIT_H

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "test_util.h"

/* Resident memory a test may keep after giving everything back. ThreadSanitizer's shadow of
 * the freed memory (four times its size) is not all returned with it. gcc says so with
 * __SANITIZE_THREAD__, clang with __has_feature. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNIT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(UNIT_TSAN)
#define UNIT_RSS_SLACK (8 * NA_MiB)
#else
#define UNIT_RSS_SLACK (2 * NA_MiB)
#endif
/* AddressSanitizer's shadow of memory the test touched (an eighth of it) can stay resident
 * after numalloc has unmapped that memory: it is the sanitizer's, not the heap's. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNIT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(UNIT_ASAN)
#define UNIT_ASAN_SHADOW_OF(bytes) ((bytes) / 8)
#else
#define UNIT_ASAN_SHADOW_OF(bytes) ((size_t)0)
#endif

/* A check for tight loops: ck_assert records its location on every success (a write per
 * assertion), this only reports the failure. */
#define UNIT_REQUIRE(cond, fmt, ...)                                                               \
  do {                                                                                             \
    if (!(cond)) ck_abort_msg("'%s' failed: " fmt, #cond, ##__VA_ARGS__);                          \
  } while (0)

/* Runs the suite (fork mode unless CK_FORK says otherwise) and returns the exit status. A
 * NUMALLOC_* variable in the environment would change the defaults the tests expect: the
 * program then drops those variables and starts itself again. */
int unit_run(Suite *suite, char **argv);
/* A test case with a timeout in seconds (scaled by CK_TIMEOUT_MULTIPLIER as usual). */
TCase *unit_tcase(Suite *suite, const char *name, double timeout);

/* Options the arena tests depend on, set so that a purge happens only when a test asks. */
void unit_quiet_purge(void);
/* Frees and allocates one block of `size` (up to NA_DIRECT_MAX) until its bin hands out the
 * block it took last unread, as in a program that frees and remakes one object over and over;
 * returns the block, in use. */
void *unit_bin_unread_run(size_t size);

/* Resident pages of [p, p+size) from mincore, or -1 when part of it is not mapped. The
 * probes leave errno as they found it. */
long unit_resident_pages(const void *p, size_t size);
/* Bytes that are part of some mapping: false when any page of [p, p+size) is unmapped. */
bool unit_is_mapped(const void *p, size_t size);
/* Whether the mapping that holds p shows `flag` (two letters, "hg": advised for huge pages,
 * "nh": refused them) among its VmFlags in /proc/self/smaps. */
bool unit_vma_has_flag(const void *p, const char *flag);
/* Resident set size of the process from /proc/self/statm. */
size_t unit_rss_bytes(void);
/* Ranges the calling thread gave back to the OS (its statistics' purge_calls). */
int64_t unit_purge_calls(void);
/* Locks (or unlocks) pages in memory with the system calls themselves: the sanitizers' mlock
 * does nothing. Locking aborts the test when refused. */
void unit_lock_pages(void *p, size_t size);
void unit_unlock_pages(void *p, size_t size);
/* Bytes the calling thread has given back to the OS, over every arena. */
int64_t unit_purged_bytes(void);

/* Captures what is written to file descriptor 2 between start and stop; stop returns it
 * (a static buffer, NUL-terminated). unit_silence_stderr sends it to /dev/null for good (a
 * test that expects an abort uses it to keep the log readable). */
void unit_capture_start(void);
const char *unit_capture_stop(void);
void unit_silence_stderr(void);
/* Lines in `text` that contain `needle`. */
int unit_count_lines_with(const char *text, const char *needle);

/* Runs `fn(arg_i)` on `count` threads (arg_i = base + i * stride bytes) and joins them. */
void unit_run_threads(int count, void *(*fn)(void *), void *base, size_t stride);

/* The node numalloc allocates on for the calling thread by default. */
int unit_home_node(void);

#endif /* NUMALLOC_UNIT_H */
