/* realprobe.c: preloaded after the allocator into a real program (python3, gcc, sort...) that
 * scripts/bench runs through bench_realrun. Its constructor runs in every process of the
 * program, children included (gcc's cc1), and appends one line to $BENCH_PROBE_FILE:
 *   pid <TAB> ok|wrong <TAB> FUNCTION from OBJECT <TAB> executable
 * "ok" means that malloc, free, calloc and realloc, as the program's own calls resolve them
 * (the global scope: the executable, then the preloads, then its libraries), all come from an
 * object whose path contains $BENCH_EXPECT_LIB, and that this object is mapped. A process that
 * writes no line did not load the preload at all (a static or set-user-ID program).
 *
 * The probe defines no allocation function, so it changes nothing in the process; it only
 * reads. It writes with one write(2) per line on an O_APPEND descriptor so that processes
 * running at the same time cannot interleave their lines. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maps_check.h"

/* The object whose definition of `name` the program's calls reach. dlsym(RTLD_DEFAULT) is not
 * enough: where a non-PIE executable takes a function's address (python3 and cc1 do), the
 * executable carries an undefined symbol with a value, the canonical address of its PLT stub,
 * and dlsym returns that stub. Calls still jump to the first real definition, which, with the
 * probe first in LD_PRELOAD and the executable the only object searched before it, is what
 * dlsym(RTLD_NEXT) finds from here. An executable that defines the function itself is
 * reported as such. */
static const char *defining_object(const char *name) {
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  void *fn = dlsym(RTLD_DEFAULT, name);
  if (fn == NULL || dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) == 0) return "unknown";
  if (sym != NULL && sym->st_shndx == SHN_UNDEF) {
    fn = dlsym(RTLD_NEXT, name);
    if (fn == NULL || dladdr(fn, &info) == 0) return "unknown";
  }
  return info.dli_fname != NULL ? info.dli_fname : "unknown";
}

__attribute__((constructor)) static void probe(void) {
  const char *file = getenv("BENCH_PROBE_FILE");
  const char *want = getenv("BENCH_EXPECT_LIB");
  if (file == NULL || *file == '\0') return;
  const char *names[] = {"malloc", "free", "calloc", "realloc"};
  const char *name = names[0], *from = defining_object(name);
  int good = want != NULL && *want != '\0' && bench_maps_contain(want);
  for (size_t i = 0; good && i < sizeof names / sizeof names[0]; i++) {
    name = names[i];
    from = defining_object(name);
    good = strstr(from, want) != NULL;
  }
  char exe[512];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  char line[1200];
  int len = snprintf(line, sizeof line, "%ld\t%s\t%s from %s\t%s\n", (long)getpid(),
                     good ? "ok" : "wrong", name, from, exe);
  if (len <= 0) return;
  if ((size_t)len >= sizeof line) len = sizeof line - 1, line[len - 1] = '\n';
  int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)len) < 0) {
    /* Nothing to do: a missing line makes bench_realrun report the run as unproven. */
  }
  close(fd);
}
