/* test_util.h: what every test program shares to make data and check it: one PRNG and one
 * block pattern. Header-only (static inline) so that the unit tests, the preload tests, the
 * stress and fuzz programs and the NUMA patterns (which also build on their own) use the same
 * code without a library; usable from C and C++; nothing here allocates or calls the kernel.
 * The benchmarks in tests/bench keep their own generator: it defines their workloads, which
 * are measured under other allocators and compared with recorded runs. */
#ifndef NUMALLOC_TEST_UTIL_H
#define NUMALLOC_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TU_GAMMA 0x9e3779b97f4a7c15ull /* 2^64 / the golden ratio, odd */

/* splitmix64's output function: a bijection of 64-bit words that mixes every input bit into
 * every output bit. */
static inline uint64_t tu_mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* splitmix64: deterministic, one word of state per caller, any starting value (0 too). */
static inline uint64_t tu_rand(uint64_t *state) { return tu_mix(*state += TU_GAMMA); }

/* ---- block patterns --------------------------------------------------------------------
 * The pattern of `tag` gives each byte of a block a value from the tag and the byte's offset:
 * word i (bytes 8i..8i+7) is mix(tag + GAMMA) ^ i * GAMMA (tag 0 too gives no zero word).
 * Two tags differ in every word, and so does
 * a pattern from itself moved by whole words, so a block handed out twice, a copy that lost or
 * moved bytes, and a stray write all show; any part of a block can be checked alone (a prefix
 * kept by realloc, the head and tail of a big block). */

static inline uint64_t tu_pattern_seed_(uint64_t tag) { return tu_mix(tag + TU_GAMMA); }
static inline uint64_t tu_pattern_word_(uint64_t seed, size_t word) {
  return seed ^ (uint64_t)word * TU_GAMMA;
}

/* The byte at `offset` of the pattern of `tag`. */
static inline uint8_t tu_pattern_byte(uint64_t tag, size_t offset) {
  uint64_t w = tu_pattern_word_(tu_pattern_seed_(tag), offset / 8);
  uint8_t bytes[8];
  memcpy(bytes, &w, 8);
  return bytes[offset % 8];
}

/* Writes bytes [from, to) of the pattern of `tag` into the block that starts at `p`. */
static inline void tu_fill_range(void *p, size_t from, size_t to, uint64_t tag) {
  uint8_t *b = (uint8_t *)p;
  uint64_t seed = tu_pattern_seed_(tag);
  size_t i = from;
  for (; i < to && i % 8 != 0; i++) b[i] = tu_pattern_byte(tag, i);
  for (; i + 8 <= to; i += 8) {
    uint64_t w = tu_pattern_word_(seed, i / 8);
    memcpy(b + i, &w, 8);
  }
  for (; i < to; i++) b[i] = tu_pattern_byte(tag, i);
}

static inline void tu_fill(void *p, size_t size, uint64_t tag) { tu_fill_range(p, 0, size, tag); }

/* The offset of the first byte in [from, to) of the block at `p` that is not the pattern of
 * `tag`, or SIZE_MAX when all are. */
static inline size_t tu_mismatch_range(const void *p, size_t from, size_t to, uint64_t tag) {
  const uint8_t *b = (const uint8_t *)p;
  uint64_t seed = tu_pattern_seed_(tag);
  size_t i = from;
  for (; i < to && i % 8 != 0; i++)
    if (b[i] != tu_pattern_byte(tag, i)) return i;
  for (; i + 8 <= to; i += 8) {
    uint64_t w = tu_pattern_word_(seed, i / 8);
    if (memcmp(b + i, &w, 8) != 0) break; /* the byte loop below names the offset */
  }
  for (; i < to; i++)
    if (b[i] != tu_pattern_byte(tag, i)) return i;
  return SIZE_MAX;
}

static inline size_t tu_mismatch(const void *p, size_t size, uint64_t tag) {
  return tu_mismatch_range(p, 0, size, tag);
}

/* The offset of the first non-zero byte of [p, p + size), or SIZE_MAX. */
static inline size_t tu_nonzero(const void *p, size_t size) {
  const uint8_t *b = (const uint8_t *)p;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    if (w != 0) break;
  }
  for (; i < size; i++)
    if (b[i] != 0) return i;
  return SIZE_MAX;
}

#endif /* NUMALLOC_TEST_UTIL_H */
