/* size_class.c: how big a page each small size class gets. The class of a size and the
 * size of a class are inline arithmetic in internal.h (four classes per doubling above 128
 * bytes, so no class wastes a quarter of a request). */
#include "internal.h"

/* At least one slice, and room for eight blocks where a block is large, capped at 1 MiB so
 * a thread that allocates one block of a big class does not hold much. */
size_t na_class_page_slices(int size_class) {
  size_t bytes = na_class_size(size_class) * 8;
  if (bytes > NA_MiB) bytes = NA_MiB;
  size_t slices = na_align_up(bytes, NA_SLICE_SIZE) >> NA_SLICE_SHIFT;
  return slices == 0 ? 1 : slices;
}
