/* thread_names.h: how many of the calling process's threads carry a name that starts with a
 * prefix (numalloc's helpers name themselves "numalloc-..."), read from /proc/self/task. For
 * the unit and preload tests that check when numalloc starts or ends a helper thread. */
#ifndef NUMALLOC_THREAD_NAMES_H
#define NUMALLOC_THREAD_NAMES_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* -1 when /proc/self/task cannot be read. */
static inline int tu_threads_named(const char *prefix) {
  DIR *tasks = opendir("/proc/self/task");
  if (tasks == NULL) return -1;
  int found = 0;
  struct dirent *entry;
  while ((entry = readdir(tasks)) != NULL) {
    if (entry->d_name[0] == '.') continue;
    char path[300], name[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", entry->d_name);
    FILE *comm = fopen(path, "r");
    if (comm == NULL) continue; /* the thread ended meanwhile */
    if (fgets(name, sizeof name, comm) != NULL && strncmp(name, prefix, strlen(prefix)) == 0)
      found++;
    fclose(comm);
  }
  closedir(tasks);
  return found;
}

#endif /* NUMALLOC_THREAD_NAMES_H */
