/* bad_free.c: free() of pointers the preload does not own, or no longer owns. Under
 * NUMALLOC_POLICY=system, blocks made by glibc's own malloc (reached through libc.so.6's
 * handle, as a library bound before the preload would) must be passed on to glibc: glibc's
 * count of bytes in use drops and nothing breaks. Under numalloc's own policies each bad
 * free (a glibc block, a double free, an interior pointer, a stack address, a huge block
 * freed twice), and a write past a block's end over the free block after it, must end the program
 * with SIGABRT and exactly one stderr line from numalloc naming the pointer; each case runs in a
 * child process. numalloc only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload_test.h"

#define NONE ((size_t)-1)

static void *(*glibc_malloc)(size_t);
static struct mallinfo2 (*glibc_mallinfo2)(void);

static void find_glibc(void) {
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  CHECK(libc != NULL, "dlopen(libc.so.6, RTLD_NOLOAD) failed");
  if (!libc) return;
  glibc_malloc = (void *(*)(size_t))dlsym(libc, "malloc");
  glibc_mallinfo2 = (struct mallinfo2(*)(void))dlsym(libc, "mallinfo2");
  CHECK(glibc_malloc && glibc_mallinfo2, "glibc's malloc or mallinfo2 not found");
  CHECK(glibc_malloc != (void *(*)(size_t))malloc, "libc's handle gave the preload's malloc");
}

/* NUMALLOC_POLICY=system: free() forwards glibc's blocks to glibc. */
/* Bytes glibc has handed out, from its heaps and from mmap. */
static size_t glibc_in_use(void) {
  struct mallinfo2 m = glibc_mallinfo2();
  return m.uordblks + m.hblkhd;
}

static void forwarded_to_glibc(void) {
  enum { N = 200 };
  static void *foreign[N];
  static const size_t sizes[] = {8, 24, 100, 1000, 5000, 70000, 300000};
  size_t total = 0, held0 = glibc_in_use();
  for (int i = 0; i < N; i++) {
    foreign[i] = glibc_malloc(sizes[i % 7]);
    CHECK(foreign[i] != NULL, "glibc malloc(%zu) failed", sizes[i % 7]);
    if (foreign[i]) memset(foreign[i], 0x33, sizes[i % 7]);
    total += sizes[i % 7];
  }
  size_t held = glibc_in_use();
  for (int i = 0; i < N; i++) free(foreign[i]);
  size_t after = glibc_in_use();
  printf("glibc bytes in use: %zu, %zu holding %zu bytes in %d blocks, %zu after free()\n", held0,
         held, total, N, after);
  CHECK(held - after >= total, "free() returned only %zu of %zu bytes to glibc", held - after,
        total);
}

/* Runs `bad_free(p)` in a child and checks it dies by SIGABRT with one numalloc line naming
 * the pointer. */
static void expect_named_abort(const char *what, void *(*make)(void), void (*bad_free)(void *)) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return pt_fail(__FILE__, __LINE__, "pipe", " failed");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    void *p = make();
    char line[64];
    int n = snprintf(line, sizeof line, "pointer %p\n", p);
    if (write(pipefd[1], line, n) != n) _exit(3); /* tells the parent the address */
    bad_free(p);
    _exit(0); /* survived: the parent reports it */
  }
  close(pipefd[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof buf - 1 && (r = read(pipefd[0], buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)r;
  buf[len] = 0;
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  char ptr[32] = "";
  sscanf(buf, "pointer %31s", ptr);
  const char *msg = strchr(buf, '\n') ? strchr(buf, '\n') + 1 : "";
  int lines = 0;
  for (const char *c = msg; *c; c++) lines += *c == '\n';
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
        "%s: the program was not aborted (status %#x)", what, status);
  CHECK(lines == 1 && strncmp(msg, "numalloc: ", 10) == 0,
        "%s: want exactly one line from numalloc on stderr, got %d: %s", what, lines, msg);
  CHECK(ptr[0] && strstr(msg, ptr + 2) != NULL, "%s: the message does not name %s: %s", what, ptr,
        msg);
  printf("%-22s %s", what, msg);
}

static void plain_free(void *p) { free(p); }
static void double_free(void *p) {
  free(p);
  free(p);
}
static void *make_glibc_block(void) { return glibc_malloc(64); }
static void *make_small(void) { return malloc(64); }
static void *make_interior(void) { return (char *)malloc(256) + 16; }
static void *make_huge(void) { return malloc(64 << 20); }
static void *make_stack(void) {
  static char fake[64]; /* not from any allocator */
  return fake + 16;
}

/* A write 16 bytes past the end of a block of a class the process has not used yet: the
 * block after it is the next free block of a fresh page, so the overflow lands on its free
 * list link. The allocation that reaches that block must stop and name it, not hand out
 * where the overwritten link points. */
#define OVERFLOW_SIZE 720
static void *make_overflowed_neighbour(void) {
  char *a = malloc(OVERFLOW_SIZE);
  return a + malloc_usable_size(a);
}
static void overflow_then_allocate(void *next) {
  memset((char *)next - 16, 0x41, 32);
  for (int i = 0; i < 4; i++) {
    char *p = malloc(OVERFLOW_SIZE);
    memset(p, 0x42, OVERFLOW_SIZE);
  }
}

int main(void) {
  pt_start("bad_free");
  CHECK(pt_is_numalloc(), "this test is for numalloc only");
  find_glibc();
  if (!glibc_malloc || !glibc_mallinfo2 || !pt_is_numalloc()) return pt_finish();
  if (pt_is_system_policy()) {
    forwarded_to_glibc();
  } else {
    expect_named_abort("glibc block", make_glibc_block, plain_free);
    expect_named_abort("double free (small)", make_small, double_free);
    expect_named_abort("interior pointer", make_interior, plain_free);
    expect_named_abort("static address", make_stack, plain_free);
    expect_named_abort("double free (huge)", make_huge, double_free);
    expect_named_abort("overflow of a block", make_overflowed_neighbour, overflow_then_allocate);
  }
  /* The preload's own heap is intact. */
  static void *own[2000];
  for (int i = 0; i < 2000; i++) {
    own[i] = malloc(1 + i * 13 % 3000);
    CHECK(own[i] != NULL, "malloc failed after the bad frees");
    if (own[i]) tu_fill(own[i], 1 + i * 13 % 3000, i);
  }
  for (int i = 0; i < 2000; i++) {
    if (!own[i]) continue;
    CHECK(tu_mismatch(own[i], 1 + i * 13 % 3000, i) == NONE, "block %d damaged", i);
    free(own[i]);
  }
  return pt_finish();
}
