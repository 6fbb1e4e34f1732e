/* numa_maps.c: the numa_maps parser and its join with maps (see numa_maps.h). */
#define _GNU_SOURCE
#include "numa_maps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longer lines (a file= path near PATH_MAX) are cut: only their leading fields matter here. */
#define LINE_MAX_LEN 8192

typedef struct line_reader {
  int fd;
  size_t pos, len;
  char buf[16384];
} line_reader_t;

static int reader_open(line_reader_t *r, pid_t pid, const char *file) {
  char path[64];
  if (pid == 0)
    snprintf(path, sizeof path, "/proc/self/%s", file);
  else
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  r->pos = r->len = 0;
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  return r->fd < 0 ? -1 : 0;
}

static void reader_close(line_reader_t *r) {
  int saved = errno;
  close(r->fd);
  errno = saved;
}

/* Refills the buffer after what is left of it. Returns bytes read, 0 at the end, -1 on error. */
static ssize_t reader_fill(line_reader_t *r) {
  memmove(r->buf, r->buf + r->pos, r->len - r->pos);
  r->len -= r->pos;
  r->pos = 0;
  ssize_t n;
  do n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
  while (n < 0 && errno == EINTR);
  if (n > 0) r->len += (size_t)n;
  return n;
}

/* Copies the next line, without its newline, into line[LINE_MAX_LEN]. Returns 1 for a line,
 * 0 at the end of the file, -1 on a read error. A line longer than the buffer (which no
 * numa_maps or maps line is) comes back in pieces. */
static int reader_next(line_reader_t *r, char *line) {
  char *nl;
  while ((nl = memchr(r->buf + r->pos, '\n', r->len - r->pos)) == NULL) {
    if (r->pos == 0 && r->len == sizeof r->buf) break;
    ssize_t got = reader_fill(r);
    if (got < 0) return -1;
    if (got == 0) {
      if (r->len == r->pos) return 0;
      break; /* a last line without its newline */
    }
  }
  size_t n = nl != NULL ? (size_t)(nl - (r->buf + r->pos)) : r->len - r->pos;
  size_t copy = n < LINE_MAX_LEN - 1 ? n : LINE_MAX_LEN - 1;
  memcpy(line, r->buf + r->pos, copy);
  line[copy] = '\0';
  r->pos += n + (nl != NULL);
  return 1;
}

/* Reads an unsigned number at *p in base; advances *p. Returns -1 when there is none. */
static int parse_ulong(const char **p, int base, unsigned long *out) {
  char *end;
  errno = 0;
  *out = strtoul(*p, &end, base);
  if (end == *p || errno != 0) return -1;
  *p = end;
  return 0;
}

/* The policy field; "prefer (many)" is the one mode name with a blank in it. */
static const char *parse_policy(const char *p, char *policy, size_t cap) {
  size_t n = strcspn(p, " ");
  if (n >= 6 && strncmp(p, "prefer", 6) == 0 && strncmp(p + n, " (many)", 7) == 0)
    n += strcspn(p + n + 1, " ") + 1;
  size_t copy = n < cap - 1 ? n : cap - 1;
  memcpy(policy, p, copy);
  policy[copy] = '\0';
  return p + n;
}

static void parse_token(const char *tok, size_t len, numa_maps_vma_t *vma) {
  const char *eq = memchr(tok, '=', len);
  if (eq == NULL) return; /* heap, stack, huge: nothing we need */
  const char *value = eq + 1;
  unsigned long v;
  if (tok[0] == 'N' && tok[1] >= '0' && tok[1] <= '9') {
    const char *p = tok + 1;
    unsigned long node;
    if (parse_ulong(&p, 10, &node) == 0 && p == eq && node < NUMA_MAPS_MAX_NODES &&
        parse_ulong(&value, 10, &v) == 0)
      vma->pages[node] = v;
  } else if (eq - tok == 17 && strncmp(tok, "kernelpagesize_kB", 17) == 0) {
    if (parse_ulong(&value, 10, &v) == 0) vma->page_kib = v;
  } else if (eq - tok == 4 && strncmp(tok, "anon", 4) == 0) {
    if (parse_ulong(&value, 10, &v) == 0) vma->anon = v;
  } else if (eq - tok == 4 && strncmp(tok, "file", 4) == 0) {
    vma->has_file = 1;
  }
}

int numa_maps_parse_line(const char *line, numa_maps_vma_t *vma) {
  memset(vma, 0, sizeof *vma);
  vma->page_kib = (unsigned long)sysconf(_SC_PAGESIZE) / 1024;
  const char *p = line;
  unsigned long start;
  if (parse_ulong(&p, 16, &start) != 0 || *p != ' ' || p[1] == ' ' || p[1] == '\0') return -1;
  vma->start = start;
  p = parse_policy(p + 1, vma->policy, sizeof vma->policy);
  while (*p != '\0' && *p != '\n') {
    p += strspn(p, " ");
    size_t len = strcspn(p, " \n");
    if (len > 0) parse_token(p, len, vma);
    p += len;
  }
  return 0;
}

/* Advances maps to the line that starts at start and returns its end, or 0 when none does. */
static uintptr_t maps_end_of(line_reader_t *maps, char *line, uintptr_t start) {
  for (;;) {
    if (reader_next(maps, line) != 1) return 0;
    const char *p = line;
    unsigned long lo, hi;
    if (parse_ulong(&p, 16, &lo) != 0 || *p++ != '-' || parse_ulong(&p, 16, &hi) != 0) return 0;
    if (lo == start) return hi;
    if (lo > start) return 0;
  }
}

int numa_maps_for_each(pid_t pid, int (*fn)(const numa_maps_vma_t *vma, void *arg), void *arg) {
  line_reader_t nm, maps;
  char line[LINE_MAX_LEN], maps_line[LINE_MAX_LEN];
  if (reader_open(&nm, pid, "numa_maps") != 0) return -1;
  if (reader_open(&maps, pid, "maps") != 0) {
    reader_close(&nm);
    return -1;
  }
  int rc, stop = 0;
  numa_maps_vma_t vma;
  while (!stop && (rc = reader_next(&nm, line)) == 1) {
    if (numa_maps_parse_line(line, &vma) != 0) continue;
    vma.end = maps_end_of(&maps, maps_line, vma.start);
    stop = fn(&vma, arg);
  }
  reader_close(&maps);
  reader_close(&nm);
  return stop || rc == 0 ? 0 : -1;
}

typedef struct range_query {
  uintptr_t start, end;
  numa_maps_sum_t *sum;
} range_query_t;

static int add_if_overlapping(const numa_maps_vma_t *vma, void *arg) {
  range_query_t *q = arg;
  uintptr_t vma_end = vma->end != 0 ? vma->end : vma->start + 1;
  if (vma->start >= q->end) return 1; /* address order: nothing further overlaps */
  if (vma_end <= q->start) return 0;
  numa_maps_sum_t *sum = q->sum;
  if (sum->vmas++ == 0) memcpy(sum->policy, vma->policy, sizeof sum->policy);
  if (vma->start < q->start || vma->end == 0 || vma->end > q->end) sum->exact = 0;
  for (int node = 0; node < NUMA_MAPS_MAX_NODES; node++) {
    sum->kib[node] += vma->pages[node] * vma->page_kib;
    sum->total_kib += vma->pages[node] * vma->page_kib;
  }
  return 0;
}

int numa_maps_range(uintptr_t start, uintptr_t end, numa_maps_sum_t *sum) {
  memset(sum, 0, sizeof *sum);
  sum->exact = 1;
  range_query_t q = {start, end, sum};
  return numa_maps_for_each(0, add_if_overlapping, &q);
}
