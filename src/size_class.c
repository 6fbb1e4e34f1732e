/* size_class.c: the size of each small size class, and how big a page each gets. The class
 * of a size is inline arithmetic in internal.h (four classes per doubling above 128 bytes, so
 * no class wastes a quarter of a request, and five from 1 KiB to 8 KiB). */
#include "internal.h"

/* clang-format off */
const uint32_t na_class_sizes[NA_CLASS_COUNT] = {
    16, 32, 48, 64, 80, 96, 112, 128,        /* 16-byte steps */
    160, 192, 224, 256,                      /* four classes a doubling */
    320, 384, 448, 512,
    640, 768, 896, 1024,
    1152, 1280, 1536, 1792, 2048,            /* five, one an eighth above the power of two */
    2304, 2560, 3072, 3584, 4096,
    4608, 5120, 6144, 7168, 8192,
    10240, 12288, 14336, 16384,              /* four again */
    20480, 24576, 28672, 32768,
    40960, 49152, 57344, 65536,
    81920, 98304, 114688, 131072,
    163840, 196608, 229376, 262144,
};
/* clang-format on */

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
