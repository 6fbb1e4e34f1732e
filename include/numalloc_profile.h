/* numalloc_profile.h: markers for the NUMA profiler (scripts/numa-vm --profile). When a
 * program executes NUMALLOC_PROFILE_START(), the profiler counts only the accesses made between
 * START and STOP, by every thread, instead of the whole command; use them to leave set-up and
 * tear-down out. Each marker is one 7-byte no-op instruction (nopl with a signature in its
 * displacement) that the profiler recognises when QEMU translates it: outside the profiler it
 * costs what a nop costs, and on other architectures the macros are empty. */
#ifndef NUMALLOC_PROFILE_H
#define NUMALLOC_PROFILE_H

#if defined(__x86_64__) && defined(__GNUC__)
/* nopl 0x??46504e(%rax): 0f 1f 80, then the displacement 'N' 'P' 'F' KIND. */
#define NUMALLOC_PROFILE_MARK_(kind)                                                               \
  __asm__ __volatile__(".byte 0x0f, 0x1f, 0x80, 0x4e, 0x50, 0x46, " #kind ::: "memory")
#else
#define NUMALLOC_PROFILE_MARK_(kind) ((void)0)
#endif

#define NUMALLOC_PROFILE_START() NUMALLOC_PROFILE_MARK_(0x31) /* count from here */
#define NUMALLOC_PROFILE_STOP()  NUMALLOC_PROFILE_MARK_(0x30) /* stop counting */

#endif
