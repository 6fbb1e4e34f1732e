/* numaprof.c: the QEMU TCG plugin. It instruments every user-space translation block (the
 * lower half of the x86-64 address space; API version 1 cannot read the privilege level, and
 * kernel code runs from the upper half) so that each load and store reports its physical
 * address as QEMU gives it. The address gives the node (from the layout the harness passed),
 * the simulated cache of the vCPU's node says hit or miss (a store leaves the other nodes'
 * copies of the line stale, see llc.h), and a miss is charged to the node whose memory holds
 * the line.
 *
 * Calibration: before anything counts, the launcher writes pages bound to each node at a fixed
 * virtual address per node, between two markers. Their addresses show which candidate layout
 * (model.h) this QEMU reports; if none places every page on its node, the report says so and
 * the harness fails the run rather than charge misses to the wrong node.
 *
 * Counting: the harness's launcher executes a reset marker just before the command, so the
 * guest's boot does not count, and an end marker once the command has exited. A program may
 * narrow the count with NUMALLOC_PROFILE_START/STOP (numalloc_profile.h): once a START has been
 * seen, the report covers only the accesses between START and STOP. Markers are global: a
 * START on one thread counts every thread's accesses until a STOP. The caches simulate every
 * access either way, so a marked region starts with the warm caches the program left. */
#include "qemu_plugin_api.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llc.h"
#include "model.h"
#include "report.h"

NUMAPROF_EXPORT int qemu_plugin_version = NUMAPROF_QEMU_PLUGIN_VERSION;

/* Above this, x86-64 addresses belong to the kernel. */
#define USER_TOP (UINT64_C(1) << 47)

/* A marker is `nopl disp32(%rax)` with 'N' 'P' 'F' KIND as its displacement. */
static const unsigned char marker_prefix[6] = {0x0f, 0x1f, 0x80, 'N', 'P', 'F'};
enum {
  MARK_STOP = '0',
  MARK_START = '1',
  MARK_RESET = 'R',
  MARK_END = 'E',
  MARK_CALIBRATE = 'C',
  MARK_CALIBRATED = 'V'
};

/* The global counting state, read by every access, changed only by markers. */
enum { ST_MARKED = 1, ST_SEEN = 2, ST_ENDED = 4, ST_CALIBRATING = 8, ST_EPOCH_SHIFT = 8 };
static _Atomic uint64_t state;

/* Calibration: bit L of cal_wrong when layout L put a page on another node than the launcher
 * bound it to; bit N of cal_nodes when node N's pages were seen. */
static _Atomic uint64_t cal_wrong, cal_nodes, cal_pages;
static const np_layout_t *_Atomic layout; /* the layout in use */

/* One per vCPU, written only by its own QEMU thread; aligned so that vCPUs share no line. */
typedef struct vcpu {
  uint64_t epoch; /* the reset its counters belong to; older counters are zeroed on use */
  np_llc_t *llc;
  int node;
  np_counts_t all;    /* every counted access since the reset */
  np_counts_t marked; /* those inside START/STOP */
} __attribute__((aligned(64))) vcpu_t;

static np_model_t model;
static vcpu_t *vcpus;
static np_llc_t llcs[NP_MAX_NODES];
static np_directory_t directory;

static inline void count(np_counts_t *c, int node, bool miss) {
  c->accesses++;
  if (node < 0)
    c->other++;
  else if (miss)
    c->misses++, c->served[node]++;
}

static void calibrate(uint64_t vaddr, struct qemu_plugin_hwaddr *hw) {
  uint64_t node = (vaddr - NP_CAL_BASE) / NP_CAL_STRIDE;
  if (node >= (uint64_t)model.nodes || !hw || qemu_plugin_hwaddr_is_io(hw)) return;
  uint64_t pa = qemu_plugin_hwaddr_phys_addr(hw);
  for (int l = 0; l < NP_LAYOUTS; l++)
    if (np_node_of(&model.layout[l], pa) != (int)node)
      atomic_fetch_or(&cal_wrong, UINT64_C(1) << l);
  atomic_fetch_or(&cal_nodes, UINT64_C(1) << node);
  atomic_fetch_add(&cal_pages, 1);
}

/* Picks the first layout that placed every calibration page right, once every node was seen. */
static void calibrated(void) {
  uint64_t all = model.nodes == 64 ? ~UINT64_C(0) : (UINT64_C(1) << model.nodes) - 1;
  uint64_t wrong = atomic_load(&cal_wrong), seen = atomic_load(&cal_nodes);
  model.verified_pages = atomic_load(&cal_pages);
  if (seen != all) {
    snprintf(model.layout_error, sizeof model.layout_error,
             "the launcher's pages reached only nodes 0x%llx of 0x%llx", (unsigned long long)seen,
             (unsigned long long)all);
    return;
  }
  for (int l = 0; l < NP_LAYOUTS; l++)
    if (model.layout[l].ranges && !(wrong & (UINT64_C(1) << l))) {
      model.layout_used = l;
      model.layout_error[0] = '\0';
      atomic_store(&layout, &model.layout[l]);
      return;
    }
  snprintf(model.layout_error, sizeof model.layout_error,
           "no memory layout given puts the launcher's pages on the nodes they are bound to");
}

static void on_access(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                      void *userdata) {
  uint64_t st = atomic_load_explicit(&state, memory_order_relaxed);
  if ((st & ST_ENDED) || vaddr >= USER_TOP || vcpu_index >= (unsigned)model.cpus) return;
  if (st & ST_CALIBRATING) {
    if (vaddr - NP_CAL_BASE < NP_MAX_NODES * NP_CAL_STRIDE)
      calibrate(vaddr, qemu_plugin_get_hwaddr(info, vaddr));
    return;
  }
  vcpu_t *v = &vcpus[vcpu_index];
  if (v->epoch != st >> ST_EPOCH_SHIFT) {
    memset(&v->all, 0, sizeof v->all);
    memset(&v->marked, 0, sizeof v->marked);
    v->epoch = st >> ST_EPOCH_SHIFT;
  }
  struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
  int node = -1;
  bool miss = false;
  if (hw && !qemu_plugin_hwaddr_is_io(hw)) {
    uint64_t pa = qemu_plugin_hwaddr_phys_addr(hw), dense;
    node = np_locate(atomic_load_explicit(&layout, memory_order_relaxed), pa, &dense);
    if (node >= 0) {
      uint64_t line = dense / model.line_bytes;
      unsigned now = np_directory_count(&directory, line);
      bool store = qemu_plugin_mem_is_store(info);
      miss = np_llc_access(v->llc, pa, now, store ? now + 1 : now);
      if (store) np_directory_set(&directory, line, now + 1);
    }
  }
  count(&v->all, node, miss);
  if (st & ST_MARKED) count(&v->marked, node, miss);
}

static void on_marker(unsigned int vcpu_index, void *userdata) {
  switch ((int)(uintptr_t)userdata) {
  case MARK_START: atomic_fetch_or(&state, ST_MARKED | ST_SEEN); break;
  case MARK_STOP: atomic_fetch_and(&state, ~(uint64_t)ST_MARKED); break;
  case MARK_END: atomic_fetch_or(&state, ST_ENDED); break;
  case MARK_CALIBRATE:
    atomic_store(&cal_wrong, 0);
    atomic_store(&cal_nodes, 0);
    atomic_store(&cal_pages, 0);
    atomic_fetch_or(&state, ST_CALIBRATING);
    break;
  case MARK_CALIBRATED:
    atomic_fetch_and(&state, ~(uint64_t)ST_CALIBRATING);
    calibrated();
    break;
  case MARK_RESET: {
    /* A new epoch with every flag cleared: each vCPU zeroes its own counters on its next
     * access, so no thread writes another's. */
    uint64_t old = atomic_load(&state);
    while (!atomic_compare_exchange_weak(&state, &old,
                                         ((old >> ST_EPOCH_SHIFT) + 1) << ST_EPOCH_SHIFT)) {
    }
    break;
  }
  }
}

static int marker_kind(const struct qemu_plugin_insn *insn) {
  if (qemu_plugin_insn_size(insn) != sizeof marker_prefix + 1) return 0;
  const unsigned char *b = qemu_plugin_insn_data(insn);
  if (memcmp(b, marker_prefix, sizeof marker_prefix) != 0) return 0;
  int kind = b[sizeof marker_prefix];
  return strchr("01RECV", kind) && kind ? kind : 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  if (qemu_plugin_tb_vaddr(tb) >= USER_TOP) return; /* kernel code: not the program */
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    int kind = marker_kind(insn);
    if (kind)
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)kind);
    else
      qemu_plugin_register_vcpu_mem_cb(insn, on_access, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
                                       NULL);
  }
}

/* The counters of the scope being reported; those of a vCPU idle since the reset are zero. */
static np_counts_t *collect(np_scope_t scope) {
  np_counts_t *c = calloc((size_t)model.cpus, sizeof *c);
  if (!c) return NULL;
  uint64_t epoch = atomic_load(&state) >> ST_EPOCH_SHIFT;
  for (int i = 0; i < model.cpus; i++)
    if (vcpus[i].epoch == epoch) c[i] = scope == NP_SCOPE_MARKERS ? vcpus[i].marked : vcpus[i].all;
  return c;
}

static void on_qemu_exit(qemu_plugin_id_t id, void *userdata) {
  np_scope_t scope = atomic_load(&state) & ST_SEEN ? NP_SCOPE_MARKERS : NP_SCOPE_COMMAND;
  np_counts_t *c = collect(scope);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!c || !f) {
    qemu_plugin_outs("numaprof: out of memory writing the report\n");
    return;
  }
  np_report_text(f, &model, c, scope);
  fclose(f);
  qemu_plugin_outs(text);
  free(text);
  if (model.json_path) {
    f = fopen(model.json_path, "w");
    if (f) {
      np_report_json(f, &model, c, scope);
      if (fclose(f) != 0) f = NULL;
    }
    if (!f) {
      qemu_plugin_outs("numaprof: cannot write the JSON report to ");
      qemu_plugin_outs(model.json_path);
      qemu_plugin_outs("\n");
    }
  }
  free(c);
}

NUMAPROF_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                        char **argv) {
  char err[256];
  if (!info->system_emulation) {
    fprintf(stderr, "numaprof: needs full-system emulation (qemu-system-*), not user mode\n");
    return -1;
  }
  if (np_model_parse(&model, argc, argv, info->system.smp_vcpus, err, sizeof err)) {
    fprintf(stderr, "numaprof: %s\n", err);
    return -1;
  }
  vcpus = aligned_alloc(64, (size_t)model.cpus * sizeof *vcpus);
  uint64_t ram = 0;
  for (int l = 0; l < NP_LAYOUTS; l++)
    if (model.layout[l].bytes > ram) ram = model.layout[l].bytes;
  if (!vcpus || np_directory_init(&directory, ram / model.line_bytes)) {
    fprintf(stderr, "numaprof: no memory for the vCPUs' counters and the line directory\n");
    return -1;
  }
  memset(vcpus, 0, (size_t)model.cpus * sizeof *vcpus);
  for (int n = 0; n < model.nodes; n++) {
    int sharing = 0;
    for (int i = 0; i < model.cpus; i++) sharing += model.cpu_node[i] == n;
    if (sharing &&
        np_llc_init(&llcs[n], model.llc_bytes, model.llc_ways, model.line_bytes, sharing > 1)) {
      fprintf(stderr, "numaprof: no memory for a %llu-byte cache model\n",
              (unsigned long long)model.llc_bytes);
      return -1;
    }
  }
  for (int i = 0; i < model.cpus; i++) {
    vcpus[i].node = model.cpu_node[i];
    vcpus[i].llc = &llcs[model.cpu_node[i]];
  }
  atomic_store(&layout, &model.layout[NP_LAYOUT_PHYS]);
  snprintf(model.layout_error, sizeof model.layout_error,
           "no calibration: run the command through numaprof-exec");
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
  return 0;
}
