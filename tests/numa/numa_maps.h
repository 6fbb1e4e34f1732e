/* numa_maps.h: read /proc/<pid>/numa_maps, joined with /proc/<pid>/maps for each mapping's end,
 * so that a placement test can ask on which nodes the pages of an address range live. Reads
 * with plain read(2) into fixed buffers: it never allocates, so it does not disturb the mappings
 * (or the allocator) it inspects. */
#ifndef NUMA_MAPS_H
#define NUMA_MAPS_H

#include <stdint.h>
#include <sys/types.h>

#define NUMA_MAPS_MAX_NODES 64

/* One line of numa_maps: one VMA. Page counts are in units of page_kib. */
typedef struct numa_maps_vma {
  uintptr_t start, end;                     /* end is 0 when parsed from a lone line */
  char policy[64];                          /* "default", "bind:1", "prefer (many):0-1", ... */
  unsigned long pages[NUMA_MAPS_MAX_NODES]; /* N<node>=pages */
  unsigned long page_kib;                   /* kernelpagesize_kB, 4 unless hugetlb */
  unsigned long anon;                       /* anon=pages, 0 when absent */
  int has_file;                             /* the line names a file= */
} numa_maps_vma_t;

/* Totals over the VMAs that overlap a range, in KiB per node. exact is 1 when every such VMA
 * lies inside the range, so the totals describe the range alone: true after mbind(2) of the
 * whole range (which splits the VMAs at its bounds), not for a range inside a larger VMA. */
typedef struct numa_maps_sum {
  unsigned long kib[NUMA_MAPS_MAX_NODES];
  unsigned long total_kib;
  int vmas;
  int exact;
  char policy[64]; /* of the first overlapping VMA */
} numa_maps_sum_t;

/* Parses one numa_maps line (without or with its newline). Returns 0, or -1 if malformed. */
int numa_maps_parse_line(const char *line, numa_maps_vma_t *vma);

/* Calls fn for each VMA of process pid (0: this process), in address order, with start and end
 * set; stops early when fn returns nonzero. Returns 0, or -1 with errno set. */
int numa_maps_for_each(pid_t pid, int (*fn)(const numa_maps_vma_t *vma, void *arg), void *arg);

/* Fills sum for [start, end) of this process. Returns 0, or -1 with errno set. */
int numa_maps_range(uintptr_t start, uintptr_t end, numa_maps_sum_t *sum);

#endif
