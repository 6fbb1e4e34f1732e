/* access.h: what the kernel lets this process do about placement (access.c). A container's
 * seccomp profile may refuse the NUMA system calls; numalloc asks once, the first time it
 * matters, which are permitted, checks placement with whatever is, says once what it cannot
 * do, and lets the statistics report it instead of claiming placement nobody enforced or
 * checked. */
#ifndef NUMALLOC_ACCESS_H
#define NUMALLOC_ACCESS_H

#include "platform.h"

/* How the node of a page can be asked: move_pages (many pages a call), get_mempolicy (one
 * page a call, permitted with CAP_SYS_NICE where move_pages is not), or not at all. */
typedef enum na_check_e {
  NA_CHECK_MOVE_PAGES = 0,
  NA_CHECK_GET_MEMPOLICY,
  NA_CHECK_NONE
} na_check_t;

typedef struct na_access_report_s {
  int refused[NA_CALL_COUNT]; /* the errno each call is refused with; 0 when permitted */
  bool bind_enforced;         /* mbind permitted and no binding failed */
  long bind_failures;         /* bindings that failed although mbind is permitted */
  na_check_t check;
} na_access_report_t;

/* After the topology is read: a strict fallback that cannot be checked is said here (which
 * asks the kernel about the checking calls). A refused mbind is said when a binding fails
 * (na_access_bind_failed), so only a process that has memory to bind says it. */
void na_access_init(void);
/* NUMALLOC_VERBOSE: one line naming each call and whether it is permitted. */
void na_access_print(void);
/* The allocator's mbind of fresh memory failed. Says why, once: a refusal in one line for
 * the process, any other failure once per node (and the topology is read again: a node may
 * have left the cpuset). Call with no lock held. */
void na_access_bind_failed(int arena_index);
na_check_t na_access_check(void);
/* The node of each page, or a negative errno per page, by the best permitted call; false
 * when none is permitted. */
bool na_access_page_nodes(void *const *pages, int *nodes, size_t count);
void na_access_report(na_access_report_t *out);

#endif /* NUMALLOC_ACCESS_H */
