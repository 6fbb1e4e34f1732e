/* check_test_util.c: the helpers every test program trusts (tests/common/test_util.h). A
 * pattern check that missed a changed byte would let every content test pass on a broken
 * allocator, so each claim the header makes is checked here: every changed byte is named at
 * its offset, two tags and a pattern moved by whole words differ everywhere, any range of a
 * block is the same bytes as the whole, and the generator is splitmix64. */
#include "unit.h"

#include <stdlib.h>

START_TEST(rand_is_splitmix64) {
  uint64_t state = 0;
  /* splitmix64's published first outputs from state 0 */
  ck_assert_uint_eq(tu_rand(&state), 0xe220a8397b1dcdafull);
  ck_assert_uint_eq(tu_rand(&state), 0x6e789e6aa1b965f4ull);
  ck_assert_uint_eq(state, 2 * TU_GAMMA);
}
END_TEST

/* Every length from 0 to 80 at every start alignment: filled, it checks; one byte changed
 * anywhere, the check names that byte. */
START_TEST(every_changed_byte_is_named) {
  unsigned char buffer[96];
  for (size_t shift = 0; shift < 8; shift++) {
    for (size_t n = 0; n <= 80; n++) {
      unsigned char *p = buffer + shift;
      tu_fill(p, n, 42 + n);
      ck_assert_uint_eq(tu_mismatch(p, n, 42 + n), SIZE_MAX);
      for (size_t at = 0; at < n; at++) {
        p[at] ^= 0x10;
        ck_assert_uint_eq(tu_mismatch(p, n, 42 + n), at);
        p[at] ^= 0x10;
      }
    }
  }
}
END_TEST

START_TEST(tags_and_moves_differ_in_every_word) {
  enum { WORDS = 4096 };
  uint64_t *a = malloc(WORDS * 8), *b = malloc(WORDS * 8);
  ck_assert(a != NULL && b != NULL);
  tu_fill(a, WORDS * 8, 0);
  tu_fill(b, WORDS * 8, 1);
  for (size_t i = 0; i < WORDS; i++) {
    ck_assert_msg(a[i] != 0, "tag 0 has a zero word at %zu", i);
    ck_assert_msg(a[i] != b[i], "tags 0 and 1 agree at word %zu", i);
    if (i > 0) ck_assert_msg(a[i] != a[i - 1], "words %zu and %zu agree", i - 1, i);
  }
  /* The block moved by one word: its first word is already wrong. */
  ck_assert_uint_eq(tu_mismatch(a + 1, (WORDS - 1) * 8, 0), 0);
  free(a);
  free(b);
}
END_TEST

START_TEST(ranges_are_the_whole_patterns_bytes) {
  unsigned char whole[200], part[200];
  tu_fill(whole, sizeof whole, 7);
  for (size_t from = 0; from < 40; from++) {
    for (size_t to = from; to < sizeof part; to += 13) {
      memset(part, 0, sizeof part);
      tu_fill_range(part, from, to, 7);
      ck_assert_int_eq(memcmp(part + from, whole + from, to - from), 0);
      ck_assert_uint_eq(tu_nonzero(part, from), SIZE_MAX); /* nothing written before `from` */
      ck_assert_uint_eq(tu_mismatch_range(part, from, to, 7), SIZE_MAX);
      ck_assert_uint_eq(tu_mismatch_range(whole, from, to, 7), SIZE_MAX);
      if (to > from) {
        part[to - 1] ^= 1;
        ck_assert_uint_eq(tu_mismatch_range(part, from, to, 7), to - 1);
      }
    }
  }
  for (size_t i = 0; i < sizeof whole; i++) ck_assert_uint_eq(whole[i], tu_pattern_byte(7, i));
}
END_TEST

START_TEST(nonzero_names_the_first_set_byte) {
  unsigned char zeros[100] = {0};
  ck_assert_uint_eq(tu_nonzero(zeros, sizeof zeros), SIZE_MAX);
  for (size_t at = 0; at < sizeof zeros; at++) {
    zeros[at] = 1;
    ck_assert_uint_eq(tu_nonzero(zeros, sizeof zeros), at);
    ck_assert_uint_eq(tu_nonzero(zeros, at), SIZE_MAX);
    zeros[at] = 0;
  }
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("test_util");
  TCase *tc = unit_tcase(s, "helpers", 30);
  tcase_add_test(tc, rand_is_splitmix64);
  tcase_add_test(tc, every_changed_byte_is_named);
  tcase_add_test(tc, tags_and_moves_differ_in_every_word);
  tcase_add_test(tc, ranges_are_the_whole_patterns_bytes);
  tcase_add_test(tc, nonzero_names_the_first_set_byte);
  return unit_run(s, argv);
}
