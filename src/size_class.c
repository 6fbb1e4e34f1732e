/* size_class.c: how big a page each small size class gets. The class of a size and the
 * size of a class are inline arithmetic in internal.h (four classes per doubling above 128
 * bytes, so no class wastes a quarter of a request). */
#include "internal.h"

/* Room for four blocks, or as many as fit in 256 KiB where blocks are big (one above 128
 * KiB), rounded up to whole slices; blocks under 16 KiB still get a whole slice of them.
 * Every thread keeps pages of the classes it uses, and a program with a few blocks of each
 * big class leaves most of such a page free, resident until a purge pass. Against pages of
 * eight blocks up to 512 KiB: the latency workload (1% of its blocks 16-256 KiB) peaked at
 * 24 MiB instead of 31, a 32-thread stress with blocks up to 4 MiB at 255 MiB instead of 327
 * (glibc 237); realloc doubling to 2 MiB at 45.5 instead of 41.7. */
#define PAGE_BLOCKS    4
#define PAGE_BYTES_CAP (256 * NA_KiB)

_Static_assert(NA_SMALL_MAX <= PAGE_BYTES_CAP, "every class fits a block in a page");

size_t na_class_page_slices(int size_class) {
  size_t size = na_class_size(size_class);
  size_t count = PAGE_BYTES_CAP / size < PAGE_BLOCKS ? PAGE_BYTES_CAP / size : PAGE_BLOCKS;
  return na_align_up(count * size, NA_SLICE_SIZE) >> NA_SLICE_SHIFT;
}
