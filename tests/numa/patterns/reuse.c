/* reuse.c: memory freed on one node, reused on another. The main thread on CPU 0 allocates,
 * writes and frees 100,000 blocks of 1 KiB; then a thread on CPU 1 (another node) builds a
 * list of 40,000 blocks of 1 KiB and walks it 5 times. An allocator that hands CPU 1 the
 * blocks CPU 0 freed gives it memory on CPU 0's node: every miss of the walk is remote. */
#include "pattern.h"

#include <stdio.h>
#include <stdlib.h>

enum { FREED = 100000, LISTED = 40000, WALKS = 5, BLOCK = 1024 };

typedef struct node {
  struct node *next;
} node_t;

static uint64_t checksum;

static void build_and_walk(int cpu, void *arg) {
  node_t *head = NULL;
  for (int i = 0; i < LISTED; i++) {
    node_t *n = pattern_malloc(BLOCK);
    pattern_write(n, BLOCK, (uint64_t)i);
    n->next = head; /* over the first line's word: the walk checks the others */
    head = n;
  }
  uint64_t sum = 0;
  for (int w = 0; w < WALKS; w++) {
    int i = LISTED;
    for (node_t *n = head; n; n = n->next)
      sum += pattern_read(n, PATTERN_LINE, BLOCK, (uint64_t)--i);
  }
  checksum = sum;
  while (head) {
    node_t *next = head->next;
    free(head);
    head = next;
  }
}

int main(int argc, char **argv) {
  int cpus = pattern_init(argc, argv, "reuse");
  NUMALLOC_PROFILE_START();
  void **blocks = pattern_malloc(FREED * sizeof *blocks);
  for (int i = 0; i < FREED; i++) {
    blocks[i] = pattern_malloc(BLOCK);
    pattern_write(blocks[i], BLOCK, (uint64_t)i);
  }
  for (int i = 0; i < FREED; i++) free(blocks[i]);
  free(blocks);
  pattern_join(pattern_spawn(1, build_and_walk, NULL));
  NUMALLOC_PROFILE_STOP();
  pattern_result("reuse", cpus, checksum);
  return 0;
}
