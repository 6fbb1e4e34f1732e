/* size_class.c: how big a page each small size class gets. The class of a size and the
 * size of a class are inline arithmetic in internal.h (four classes per doubling above 128
 * bytes, so no class wastes a quarter of a request). */
#include "internal.h"

/* Room for eight blocks, or as many as fit in 512 KiB where blocks are big, rounded up to
 * whole slices. Every thread keeps pages of the classes it uses, so big classes get small
 * pages: a 32-thread stress with blocks up to 4 MiB held 417 MiB resident for 70 MiB live
 * with 1 MiB pages, 363 MiB with these. */
#define PAGE_BLOCKS    8
#define PAGE_BYTES_CAP (512 * NA_KiB)

_Static_assert(NA_SMALL_MAX <= PAGE_BYTES_CAP, "every class fits a block in a page");

size_t na_class_page_slices(int size_class) {
  size_t size = na_class_size(size_class);
  size_t count = PAGE_BYTES_CAP / size < PAGE_BLOCKS ? PAGE_BYTES_CAP / size : PAGE_BLOCKS;
  return na_align_up(count * size, NA_SLICE_SIZE) >> NA_SLICE_SHIFT;
}
