/* pattern.h: what the NUMA access patterns share. Each pattern is a small program that pins
 * every thread to its own CPU before its first allocation, does its work between the
 * profiler's START and STOP markers, checks the contents of the blocks it reads (a broken
 * allocator fails instead of looking fast), and prints one RESULT line. The programs use only
 * the plain malloc family: scripts/numa-patterns runs them under each allocator's preload in
 * an emulated NUMA machine (scripts/numa-vm --profile).
 *
 * Blocks are written and read one word per 64-byte line: the profiler counts cache lines, so
 * touching every byte would only make the emulation slower. */
#ifndef PATTERN_H
#define PATTERN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "numalloc_profile.h"
#include "test_util.h" /* tu_rand */

#define PATTERN_LINE 64

/* Checks the preload (PATTERN_EXPECT_LIB, see pattern.c), pins the calling thread to CPU 0 and
 * returns the number of online CPUs. Call first in main. */
int pattern_init(int argc, char **argv, const char *usage);

/* Pins the calling thread to one CPU; exits when it cannot. */
void pattern_pin(int cpu);

/* Starts a thread that pins itself to `cpu` and then runs fn(cpu, arg). */
pthread_t pattern_spawn(int cpu, void (*fn)(int cpu, void *arg), void *arg);
void pattern_join(pthread_t t);

/* malloc that exits on NULL. */
void *pattern_malloc(size_t size);

/* Writes tag ^ offset into the first word of every line of [p, p + size) (size >= 8). */
void pattern_write(void *p, size_t size, uint64_t tag);
/* Reads those words back from offset `from` on, exits if one is wrong, and returns their sum. */
uint64_t pattern_read(const void *p, size_t from, size_t size, uint64_t tag);

void pattern_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* The RESULT line: the pattern's name, the CPUs, and a checksum of what was read. Threads sum
 * into locals and store their total once: a shared array of sums written on every read would
 * make the threads invalidate each other's copy of its line, which is not the pattern. */
void pattern_result(const char *name, int cpus, uint64_t checksum);

#endif
