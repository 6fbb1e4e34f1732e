/* report.h: the profiler's counters and its two reports, a table for people and JSON for
 * scripts, from the counters of every vCPU and the machine model. */
#ifndef NUMAPROF_REPORT_H
#define NUMAPROF_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"

typedef struct np_counts {
  uint64_t accesses;             /* user-space loads and stores counted */
  uint64_t misses;               /* of those to RAM, the ones the node's cache missed */
  uint64_t other;                /* to devices or outside every node's memory: no cache, no node */
  uint64_t served[NP_MAX_NODES]; /* misses served by each node's memory */
} np_counts_t;

/* What was counted: the accesses between the program's markers, or the whole command. */
typedef enum { NP_SCOPE_COMMAND, NP_SCOPE_MARKERS } np_scope_t;

/* cpu[] has m->cpus entries. */
void np_report_text(FILE *f, const np_model_t *m, const np_counts_t *cpu, np_scope_t scope);
void np_report_json(FILE *f, const np_model_t *m, const np_counts_t *cpu, np_scope_t scope);

/* Estimated memory time in nanoseconds of the misses in c, made by CPUs of node `from`. */
double np_memory_ns(const np_model_t *m, int from, const np_counts_t *c);

#endif
