/* stats_live.h: a running process's statistics, published to a file another process reads
 * (`numalloc stats PID`, `numalloc top PID`), and the lazily started helper threads it shares
 * with the background purge. */
#ifndef NUMALLOC_STATS_LIVE_H
#define NUMALLOC_STATS_LIVE_H

#include "internal.h"

#include <stdio.h>

/* ---- stats_live.c ------------------------------------------------------------------- */
#define NA_LIVE_INTERVAL_MAX 3600 /* seconds */
#define NA_LIVE_DIR          "/dev/shm"
#define NA_LIVE_PREFIX       "numalloc-stats."
/* NUMALLOC_STATS_INTERVAL: seconds between two publications; 0 publishes nothing. */
extern long na_live_interval_s;
/* From a slow path: starts the publishing thread once (again in a forked child). */
void na_live_start(void);
/* Writes the file now (the publishing thread's step); false when it could not. */
bool na_live_publish(void);
/* The file's path for `pid` into buf. */
void na_live_path(char *buf, size_t size, int pid, bool temporary);
/* At exit: no further publication, and this process's file removed. */
void na_live_at_exit(void);
/* Fork: no publication runs across it; the child publishes under its own pid, never the
 * parent's, and leaves the parent's file alone. */
void na_live_before_fork(void);
void na_live_after_fork_parent(void);
void na_live_after_fork_child(void);
/* At initialisation, with NUMALLOC_STATS_INTERVAL set: notes the process. */
void na_live_init(void);

/* ---- stats.c ------------------------------------------------------------------------ */
/* One snapshot, as the exit report's text, a line "json", then the same JSON. */
void na_stats_write_live(FILE *out);

/* ---- purge.c ------------------------------------------------------------------------ */
/* Starts fn(arg) in a helper thread named `name` unless `running` says one runs: from a slow
 * path, never from the constructor, where starting a thread would run before the program's
 * own start-up. A forked child stores false in `running` to start its own. */
bool na_helper_start(_Atomic bool *running, const char *name, void *(*fn)(void *), void *arg);
/* Tests: called by na_helper_start while it holds the helpers' lock. */
extern void (*na_helper_start_hook)(void);
/* A helper's wait between two rounds: false when the helper must end now (na_helpers_pause).
 * Once only helpers are left of a program whose main thread called pthread_exit, it ends the
 * process with exit(0), as glibc's last thread does. */
bool na_helper_sleep(uint32_t ms);
/* Called by a helper thread first, and before it returns. */
void na_helper_enter(void);
void na_helper_exit(void);
/* `hook` runs at every purge check of an allocation slow path: how a higher layer (the
 * statistics publisher) starts its thread there without purge.c calling up. Set at start. */
void na_helper_on_slow_path(void (*hook)(void));

#endif /* NUMALLOC_STATS_LIVE_H */
