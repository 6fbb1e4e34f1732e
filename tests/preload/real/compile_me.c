/* compile_me.c: the small C program that run-real-programs.sh compiles with gcc (with and
 * without the preload) and then runs: a word-frequency table in a hash map it grows itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
  char *word;
  int count;
};

static struct entry *table;
static size_t cap, used;

static size_t hash(const char *s) {
  size_t h = 1469598103934665603u;
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211u;
  return h;
}

static void grow(void) {
  struct entry *old = table;
  size_t old_cap = cap;
  cap = cap ? cap * 2 : 64;
  table = calloc(cap, sizeof *table);
  for (size_t i = 0; i < old_cap; i++) {
    if (!old[i].word) continue;
    size_t j = hash(old[i].word) & (cap - 1);
    while (table[j].word) j = (j + 1) & (cap - 1);
    table[j] = old[i];
  }
  free(old);
}

static void add(const char *w) {
  if (2 * (used + 1) > cap) grow();
  size_t j = hash(w) & (cap - 1);
  while (table[j].word && strcmp(table[j].word, w) != 0) j = (j + 1) & (cap - 1);
  if (!table[j].word) {
    table[j].word = strdup(w);
    used++;
  }
  table[j].count++;
}

static int by_count(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  if (x->count != y->count) return y->count - x->count;
  return strcmp(x->word, y->word);
}

int main(void) {
  char buf[32];
  for (unsigned i = 0; i < 200000; i++) {
    snprintf(buf, sizeof buf, "w%u", (i * 2654435761u) % 5003 % (1 + i % 977));
    add(buf);
  }
  struct entry *list = malloc(used * sizeof *list);
  size_t n = 0;
  for (size_t i = 0; i < cap; i++)
    if (table[i].word) list[n++] = table[i];
  qsort(list, n, sizeof *list, by_count);
  printf("%zu distinct words\n", n);
  for (size_t i = 0; i < 5; i++) printf("%s %d\n", list[i].word, list[i].count);
  return 0;
}
