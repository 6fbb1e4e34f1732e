/* topology.c: the machine as the allocator sees it: nodes with memory and with CPUs, memory
 * per node, distances, the nodes this process may use (cpusets, numactl --membind), and from
 * those, for every node, where to allocate for it. Read from sysfs and procfs without libnuma,
 * whose messages would land on the program's stderr when a container refuses its calls, and
 * without allocating, so it can be read again while the program runs: a container is resized,
 * a cpuset widened, a CPU plugged in.
 *
 * Capacity: CPUs up to the kernel's 8,192 and nodes 0 to 63 (NA_MAX_NODES: node sets are one
 * word). A machine with higher node ids is told once; numalloc binds nothing to those nodes,
 * and maps their CPUs to the nearest usable node below 64, so their threads still allocate
 * nearby. (A large block left to first touch goes where the kernel puts it, which for a thread
 * on such a CPU is its own node.) */
#include "internal.h"

#include <string.h>

#define NODE_DIR         "/sys/devices/system/node/"
#define WEIGHT_DIR       "/sys/kernel/mm/mempolicy/weighted_interleave/"
#define CPU_SLOTS        ((int)(sizeof na_topology.cpu_node / sizeof na_topology.cpu_node[0]))
#define TEXT_MAX         8192
#define PATH_MAX_LEN     256
#define SIZE_UNKNOWN     ((size_t)0)
#define DISTANCE_SELF    10   /* the kernel's distance from a node to itself; 20 to another */
#define KERNEL_MAX_NODES 1024 /* the most node ids a kernel is built for (NODES_SHIFT 10) */

na_topology_t na_topology NA_TABLE NA_PAGE_ALIGNED;

/* The topology being read, and the text of the file being parsed: static, because reading
 * again happens on any thread, whose stack may be small. `reading` keeps one reader at a time. */
static na_topology_t scratch NA_TABLE;
static char text[TEXT_MAX] NA_TABLE;
static _Atomic bool reading;
static bool read_once;
/* Where the files are read: "" (the machine), or a synthetic tree (na_topology_set_root). */
static const char *root; /* NULL: the real files (no pointer for the loader to relocate) */

/* Reads root + path into `text`: its length, or -1 when it cannot be read. */
static long read_text(const char *path) {
  if (root == NULL) return na_os_read_file(path, text, sizeof text);
  char full[PATH_MAX_LEN];
  size_t at = 0;
  for (const char *p = root; *p && at + 1 < sizeof full; p++) full[at++] = *p;
  for (const char *p = path; *p && at + 1 < sizeof full; p++) full[at++] = *p;
  full[at] = '\0';
  return na_os_read_file(full, text, sizeof text);
}

static void set_bit(uint64_t *mask, int node) { mask[0] |= (uint64_t)1 << node; }

/* ---- kernel lists ("0-3,8-11") ---------------------------------------------------------- */

static const char *parse_number(const char *p, long *out) {
  if (*p < '0' || *p > '9') return NULL;
  long value = 0;
  while (*p >= '0' && *p <= '9') {
    if (value < 1L << 40) value = value * 10 + (*p - '0');
    p++;
  }
  *out = value;
  return p;
}

/* Calls visit(id) for each id of a list that ends at a newline or NUL; false when malformed.
 * An empty list is valid. */
static bool list_each(const char *p, void (*visit)(long id, void *arg), void *arg) {
  while (*p == ' ') p++;
  if (*p == '\n' || *p == '\0') return true;
  for (;;) {
    long first, last;
    if ((p = parse_number(p, &first)) == NULL) return false;
    last = first;
    if (*p == '-' && (p = parse_number(p + 1, &last)) == NULL) return false;
    if (last < first || last - first > 1 << 20) return false; /* no id list is that long */
    for (long id = first; id <= last; id++) visit(id, arg);
    if (*p != ',') break;
    p++;
  }
  return *p == '\n' || *p == '\0';
}

static void add_node(long id, void *arg) {
  if (id < NA_MAX_NODES) set_bit(arg, (int)id);
}

typedef struct highest_s {
  long id;
} highest_t;

static void note_highest(long id, void *arg) {
  highest_t *h = arg;
  if (id > h->id) h->id = id;
}

/* Reads a node list file into `mask`; false when the file is missing or malformed. */
static bool read_node_list(const char *path, uint64_t *mask) {
  mask[0] = 0;
  return read_text(path) >= 0 && list_each(text, add_node, mask);
}

/* The highest id in a list file plus one, or 0 when it cannot be read; the ids below
 * NA_MAX_NODES into `mask` when it is not NULL. */
static int read_list_span(const char *path, uint64_t *mask) {
  highest_t h = {-1};
  if (read_text(path) < 0 || !list_each(text, note_highest, &h)) return 0;
  if (mask != NULL && !list_each(text, add_node, mask)) return 0;
  return h.id < 0 ? 0 : (int)(h.id < 1 << 20 ? h.id + 1 : 1 << 20);
}

/* prefix "<node>" file, built without snprintf (no locale, no allocation). */
static void node_path_in(char *path, size_t size, const char *prefix, int node, const char *file) {
  size_t at = 0;
  while (*prefix && at + 1 < size) path[at++] = *prefix++;
  char digits[8];
  int n = 0;
  do {
    digits[n++] = (char)('0' + node % 10);
    node /= 10;
  } while (node > 0 && n < (int)sizeof digits);
  while (n > 0 && at + 1 < size) path[at++] = digits[--n];
  while (*file && at + 1 < size) path[at++] = *file++;
  path[at] = '\0';
}

/* NODE_DIR "node<node>/<file>" */
static void node_path(char *path, size_t size, int node, const char *file) {
  char slash_file[64] = "/";
  size_t at = 1;
  while (*file && at + 1 < sizeof slash_file) slash_file[at++] = *file++;
  slash_file[at] = '\0';
  node_path_in(path, size, NODE_DIR "node", node, slash_file);
}

/* ---- one node ----------------------------------------------------------------------------- */

typedef struct cpu_visit_s {
  na_topology_t *t;
  int node;     /* where the CPUs allocate */
  bool as_home; /* their own node (not the stand-in for a node above the cap) */
} cpu_visit_t;

/* CPUs below `count` are known, as unknown (-1) until a node lists them; the entries above
 * stay untouched (the table is 16 KiB, and a process that starts writes only what it has). */
static void cover_cpus(na_topology_t *t, int count) {
  if (count > CPU_SLOTS) count = CPU_SLOTS;
  for (int c = t->cpu_count; c < count; c++) t->cpu_node[c] = -1;
  if (count > t->cpu_count) t->cpu_count = count;
}

static void add_cpu(long cpu, void *arg) {
  cpu_visit_t *v = arg;
  /* beyond any kernel's CPUs: na_topology_cpu_node gives such a CPU the first usable node */
  if (cpu >= CPU_SLOTS) return;
  cover_cpus(v->t, (int)cpu + 1);
  v->t->cpu_node[cpu] = (int16_t)v->node;
  if (v->as_home) set_bit(v->t->has_cpus, v->node);
}

/* "Node 0 MemTotal:  1234 kB" */
static size_t read_memory(int node) {
  char path[PATH_MAX_LEN];
  node_path(path, sizeof path, node, "meminfo");
  if (read_text(path) < 0) return SIZE_UNKNOWN;
  const char *p = strstr(text, "MemTotal:");
  if (p == NULL) return SIZE_UNKNOWN;
  p += strlen("MemTotal:");
  while (*p == ' ' || *p == '\t') p++;
  long kib;
  return parse_number(p, &kib) != NULL ? (size_t)kib * NA_KiB : SIZE_UNKNOWN;
}

/* A node's distance file lists its distance to every online node, in the order of their ids:
 * `row` gets those to nodes below `node_count`. False when the file cannot be read (the node
 * is offline); entries it does not give are the kernel's defaults. */
static bool read_distance_row(int node, int node_count, uint64_t online, uint8_t *row) {
  char path[PATH_MAX_LEN];
  node_path(path, sizeof path, node, "distance");
  bool read = read_text(path) >= 0, ok = read;
  const char *p = text;
  for (int other = 0; other < node_count; other++) {
    long d = 0;
    if (ok && ((online >> other) & 1)) {
      while (*p == ' ') p++;
      const char *next = parse_number(p, &d);
      if (next == NULL)
        ok = false;
      else
        p = next;
    }
    bool valid = ok && d > 0 && d < 256;
    row[other] = (uint8_t)(valid ? d : other == node ? DISTANCE_SELF : 2 * DISTANCE_SELF);
  }
  return read;
}

/* Memory sizes and distances do not change while the same nodes are online: a later reading
 * takes them from `known` (the last one) instead of the costlier meminfo and distance files. */
static void read_node(na_topology_t *t, int node, uint64_t online, const na_topology_t *known) {
  char path[PATH_MAX_LEN];
  if (known != NULL) {
    t->memory_bytes[node] = known->memory_bytes[node];
    memcpy(t->distance[node], known->distance[node], sizeof t->distance[node]);
  } else {
    t->memory_bytes[node] = read_memory(node);
    read_distance_row(node, t->node_count, online, t->distance[node]);
  }
  node_path(path, sizeof path, node, "cpulist");
  cpu_visit_t visit = {t, node, true};
  if (read_text(path) >= 0) list_each(text, add_cpu, &visit);
}

/* ---- the process's nodes ------------------------------------------------------------------ */

/* The cpuset's memory nodes: get_mempolicy, or where a container refuses it, the same list
 * in /proc/self/status. */
static bool read_allowed(uint64_t *mask) {
  if (root == NULL && na_os_mems_allowed(mask)) return true;
  if (read_text("/proc/self/status") < 0) return false;
  const char *p = strstr(text, "\nMems_allowed_list:");
  if (p == NULL) return false;
  p += strlen("\nMems_allowed_list:");
  mask[0] = 0;
  return list_each(p, add_node, mask);
}

static void read_single_node(na_topology_t *t) {
  t->node_count = 1;
  cover_cpus(t, 1);
  t->has_memory[0] = t->has_cpus[0] = t->allowed[0] = 1;
  t->distance[0][0] = DISTANCE_SELF;
  for (int c = 0; c < t->cpu_count; c++) t->cpu_node[c] = 0;
}

static uint64_t known_online; /* the online nodes of the last reading */

static uint64_t usable_nodes(const na_topology_t *t, bool warn);

/* The CPUs of nodes from NA_MAX_NODES up go to the nearest usable node below it, by the
 * node's own row of distances (its first entries are those to the online nodes below). Ids
 * may be sparse up there: each is tried, and one without a directory is offline. */
static void map_nodes_above_cap(na_topology_t *t, int span, uint64_t online) {
  uint64_t usable = usable_nodes(t, false);
  int last = span < KERNEL_MAX_NODES ? span : KERNEL_MAX_NODES;
  for (int node = NA_MAX_NODES; node < last; node++) {
    uint8_t row[NA_MAX_NODES];
    if (!read_distance_row(node, t->node_count, online, row)) continue;
    int nearest = -1;
    for (int n = 0; n < t->node_count; n++)
      if (((usable >> n) & 1) && (nearest < 0 || row[n] < row[nearest])) nearest = n;
    if (nearest < 0) continue; /* their CPUs keep the first usable node */
    char path[PATH_MAX_LEN];
    node_path(path, sizeof path, node, "cpulist");
    cpu_visit_t visit = {t, nearest, false};
    if (read_text(path) >= 0) list_each(text, add_cpu, &visit);
  }
}

static bool told_above_cap; /* nodes above NA_MAX_NODES are said once per process */

/* Without a node directory (a kernel without NUMA, or a sandbox that hides it) the machine
 * is one node, as the kernel itself would place memory. `known`: the last reading, or NULL. */
/* The weights of the kernel's weighted interleave (Linux 6.9 and later; numactl
 * --weighted-interleave uses them), for NUMALLOC_POLICY=weighted without weights of its own.
 * A node without the file gets 0, which the policy takes as 1. */
static void read_kernel_weights(na_topology_t *t, uint64_t online) {
  for (int node = 0; node < t->node_count; node++) {
    long weight = 0;
    if ((online >> node) & 1) {
      char path[PATH_MAX_LEN];
      node_path_in(path, sizeof path, WEIGHT_DIR "node", node, "");
      const char *end = NULL;
      if (read_text(path) > 0 && (end = parse_number(text, &weight)) != NULL &&
          (*end == '\n' || *end == '\0') && weight <= 255)
        t->kernel_weight[node] = (uint8_t)weight;
    }
  }
}

static void read_machine(na_topology_t *t, const na_topology_t *known) {
  if (known != NULL) memset(t, 0, sizeof *t); /* the first reading's table is still all zero */
  uint64_t online = 0;
  int span = read_list_span(NODE_DIR "online", &online);
  if (span <= 1 || online == 0) {
    /* One node (or none listed): it has every CPU and all the memory, and any cpuset holds
     * it. Every process starts here, so the files that would say so go unread, and so do the
     * CPU count and the node's size, which only NUMALLOC_VERBOSE prints: a CPU the table
     * does not list maps to the first usable node, node 0. */
    if (na_options.verbose) cover_cpus(t, read_list_span("/sys/devices/system/cpu/present", NULL));
    read_single_node(t);
    if (span == 1 && na_options.verbose) t->memory_bytes[0] = read_memory(0);
    return;
  }
  cover_cpus(t, read_list_span("/sys/devices/system/cpu/present", NULL));
  if (span > NA_MAX_NODES && !told_above_cap) {
    told_above_cap = true;
    na_warning("NUMA nodes %d to %d are above the %d numalloc can use: it binds no memory to "
               "them, and threads on their CPUs allocate on the nearest node below %d",
               NA_MAX_NODES, span - 1, NA_MAX_NODES, NA_MAX_NODES);
  }
  t->node_count = span < NA_MAX_NODES ? span : NA_MAX_NODES;
  if (online != known_online) known = NULL; /* nodes came or went: distances changed */
  known_online = online;
  for (int node = 0; node < t->node_count; node++)
    if ((online >> node) & 1) read_node(t, node, online, known);
  if (!read_node_list(NODE_DIR "has_memory", t->has_memory)) {
    t->has_memory[0] = 0;
    for (int node = 0; node < t->node_count; node++)
      if (t->memory_bytes[node] > 0) set_bit(t->has_memory, node);
  }
  if (!read_allowed(t->allowed)) t->allowed[0] = online;
  if (t->allowed[0] == 0) t->allowed[0] = t->has_memory[0];
  if (span > NA_MAX_NODES) map_nodes_above_cap(t, span, online);
  if (na_options.weights_from_kernel) read_kernel_weights(t, online);
  cover_cpus(t, 1);
}

/* ---- publishing a new reading --------------------------------------------------------------
 * Other threads read na_topology without a lock while it is replaced. Every field is stored
 * whole, and in an order where anything a reader combines names a node that is usable in the
 * old or the new reading: lists grow entries first and count last, shrink count first. */

#define STORE(field, value) na_relaxed_store(&(field), (value))

static void publish_row(int8_t *row, const int8_t *from) {
  int i = 0;
  for (; i < NA_MAX_NODES && from[i] >= 0; i++) STORE(row[i], from[i]);
  if (i < NA_MAX_NODES) STORE(row[i], (int8_t)-1);
}

static void publish(na_topology_t *t, const na_topology_t *n) {
  if (n->node_count < t->node_count) STORE(t->node_count, n->node_count);
  if (n->cpu_count < t->cpu_count) STORE(t->cpu_count, n->cpu_count);
  for (int c = 0; c < n->cpu_count; c++) STORE(t->cpu_node[c], n->cpu_node[c]);
  for (int a = 0; a < NA_MAX_NODES; a++) {
    STORE(t->memory_bytes[a], n->memory_bytes[a]);
    for (int b = 0; b < NA_MAX_NODES; b++) STORE(t->distance[a][b], n->distance[a][b]);
  }
  STORE(t->has_memory[0], n->has_memory[0]);
  STORE(t->has_cpus[0], n->has_cpus[0]);
  STORE(t->allowed[0], n->allowed[0]);
  STORE(t->usable[0], n->usable[0]);
  for (int a = 0; a < NA_MAX_NODES; a++) {
    STORE(t->nearest_usable[a], n->nearest_usable[a]);
    publish_row(t->fallback_order[a], n->fallback_order[a]);
  }
  if (n->usable_count < t->usable_count) STORE(t->usable_count, n->usable_count);
  for (int i = 0; i < n->usable_count; i++) STORE(t->usable_list[i], n->usable_list[i]);
  STORE(t->usable_count, n->usable_count);
  STORE(t->cpu_count, n->cpu_count);
  STORE(t->node_count, n->node_count);
  for (int a = 0; a < NA_MAX_NODES; a++) STORE(t->kernel_weight[a], n->kernel_weight[a]);
}

static void derive(na_topology_t *t, bool warn);

/* A child forked while another thread was reading has only the flag left of that reading.
 * Written only then: the child copies each page it writes. */
static void after_fork_child(void) {
  if (atomic_load(&reading)) atomic_store(&reading, false);
}

/* The first reading fills na_topology before any other thread can look; later ones (the
 * program calls numalloc_collect) are read aside and published, and NUMALLOC_NODES problems,
 * said at the first, are not said again. Never allocates. */
void na_topology_init(void) {
  while (atomic_exchange(&reading, true)) na_os_yield();
  if (!read_once) {
    read_machine(&na_topology, NULL);
    derive(&na_topology, true);
    read_once = true;
    pthread_atfork(NULL, NULL, after_fork_child);
  } else {
    read_machine(&scratch, &na_topology);
    derive(&scratch, false);
    publish(&na_topology, &scratch);
  }
  atomic_store(&reading, false);
}

/* ---- derived tables ---------------------------------------------------------------------- */

/* Nodes in order of distance from `node` (ties by id), among `candidates`. */
static int order_by_distance(const na_topology_t *t, int node, uint64_t candidates, int8_t *out) {
  int count = 0;
  uint64_t left = candidates;
  while (left != 0) {
    int best = -1;
    for (int n = 0; n < t->node_count; n++) {
      if (!((left >> n) & 1)) continue;
      if (best < 0 || t->distance[node][n] < t->distance[node][best]) best = n;
    }
    if (best < 0) break;
    out[count++] = (int8_t)best;
    left &= ~((uint64_t)1 << best);
  }
  if (count < NA_MAX_NODES) out[count] = -1;
  return count;
}

static uint64_t restrict_to_option(uint64_t usable, bool warn) {
  if (!na_options.nodes_set) return usable;
  uint64_t restricted = usable & na_options.nodes_mask[0];
  if (warn && restricted == 0)
    na_warning("NUMALLOC_NODES=\"%s\" names no node this process can use; using the "
               "default, all allowed nodes",
               na_options.nodes_text);
  else if (warn && restricted != na_options.nodes_mask[0])
    na_warning("NUMALLOC_NODES=\"%s\" names nodes this process cannot use; they are ignored",
               na_options.nodes_text);
  return restricted != 0 ? restricted : usable;
}

static uint64_t usable_nodes(const na_topology_t *t, bool warn) {
  uint64_t usable = restrict_to_option(t->allowed[0] & t->has_memory[0], warn);
  return usable != 0 ? usable : 1; /* nothing known: node 0, as the kernel would */
}

static void derive(na_topology_t *t, bool warn) {
  uint64_t usable = usable_nodes(t, warn);
  t->usable[0] = usable;
  t->usable_count = 0;
  for (int n = 0; n < NA_MAX_NODES; n++)
    if ((usable >> n) & 1) t->usable_list[t->usable_count++] = n;
  int node_span = t->node_count > 0 ? t->node_count : 1;
  for (int n = 0; n < NA_MAX_NODES; n++) {
    int count = n < node_span ? order_by_distance(t, n, usable, t->fallback_order[n]) : 0;
    if (n >= node_span) memcpy(t->fallback_order[n], t->fallback_order[0], NA_MAX_NODES);
    t->nearest_usable[n] = count > 0 ? t->fallback_order[n][0] : (int8_t)t->usable_list[0];
  }
}

void na_topology_derive(na_topology_t *t) { derive(t, true); }

void na_topology_set_root(const char *dir) {
  while (atomic_exchange(&reading, true)) na_os_yield();
  root = dir;
  atomic_store(&reading, false);
}

/* ---- lookups ------------------------------------------------------------------------------ */

/* Any CPU maps to a node below NA_MAX_NODES: a CPU beyond the map, or one that appeared since
 * the topology was read, gets the first usable node. */
int na_topology_cpu_node(int cpu) {
  int first = na_relaxed_load(&na_topology.usable_list[0]);
  if (cpu < 0 || cpu >= na_relaxed_load(&na_topology.cpu_count) || cpu >= CPU_SLOTS) return first;
  int node = na_relaxed_load(&na_topology.cpu_node[cpu]);
  return node < 0 || node >= NA_MAX_NODES ? first : node;
}

int numalloc_node_count(void) { return na_ensure_init() ? na_topology.node_count : 1; }

int numalloc_node_allowed(int node) {
  return na_ensure_init() && na_node_bit(na_topology.allowed, node);
}

int numalloc_node_has_memory(int node) {
  return na_ensure_init() && na_node_bit(na_topology.has_memory, node);
}

int numalloc_node_distance(int a, int b) {
  if (!na_ensure_init() || a < 0 || b < 0 || a >= na_topology.node_count ||
      b >= na_topology.node_count)
    return -1;
  return na_topology.distance[a][b];
}

int numalloc_current_node(void) {
  if (!na_ensure_init()) return 0;
  return na_topology_cpu_node(na_os_current_cpu());
}
