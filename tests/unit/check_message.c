/* check_message.c: warnings and fatal errors (message.c). The formatter that never allocates
 * handles every conversion the allocator uses, truncates safely, and each message is one
 * line on stderr with the library's prefix; a fatal error aborts. */
#include "unit.h"

#include <limits.h>
#include <signal.h>
#include <stdarg.h>

static char out[256];

static size_t format(size_t size, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  size_t n = na_format(out, size, fmt, args);
  va_end(args);
  return n;
}

#define EXPECT(text, ...)                                                                          \
  do {                                                                                             \
    size_t n_ = format(sizeof out, __VA_ARGS__);                                                   \
    ck_assert_str_eq(out, text);                                                                   \
    ck_assert_uint_eq(n_, strlen(text));                                                           \
  } while (0)

START_TEST(conversions) {
  EXPECT("plain", "plain");
  EXPECT("a b c", "a %s c", "b");
  EXPECT("(null)", "%s", (char *)NULL);
  EXPECT("-42 0 7", "%d %d %d", -42, 0, 7);
  EXPECT("-2147483648 2147483647", "%d %d", INT_MIN, INT_MAX);
  EXPECT("-9223372036854775808", "%ld", LONG_MIN);
  EXPECT("4294967295", "%u", UINT_MAX);
  EXPECT("18446744073709551615", "%lu", ULONG_MAX);
  EXPECT("18446744073709551615", "%zu", SIZE_MAX);
  EXPECT("deadbeef", "%x", 0xdeadbeefu);
  EXPECT("ffffffffffffffff", "%zx", SIZE_MAX);
  EXPECT("0x7f00ab", "%p", (void *)0x7f00ab);
  EXPECT("0x0", "%p", (void *)NULL);
  EXPECT("100%", "100%%");
  EXPECT("x=Q", "x=%c", 'Q');
  EXPECT("?", "%q");
  EXPECT("end?", "end%");
}
END_TEST

START_TEST(truncation) {
  memset(out, 'z', sizeof out);
  ck_assert_uint_eq(format(8, "%s", "abcdefghijkl"), 7);
  ck_assert_str_eq(out, "abcdefg");
  ck_assert_int_eq(out[8], 'z'); /* nothing written past the buffer */
  ck_assert_uint_eq(format(1, "abc"), 0);
  ck_assert_str_eq(out, "");
  ck_assert_uint_eq(format(4, "%d", -12345), 3);
  ck_assert_str_eq(out, "-12");
}
END_TEST

START_TEST(one_line_with_prefix) {
  unit_capture_start();
  errno = EDOM;
  na_warning("bad value %s for %d", "x", 3);
  na_info("note %zu", (size_t)5);
  ck_assert_int_eq(errno, EDOM);
  const char *text = unit_capture_stop();
  ck_assert_str_eq(text, "numalloc: warning: bad value x for 3\nnumalloc: note 5\n");
}
END_TEST

START_TEST(long_messages_stay_one_line) {
  char big[2000];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  unit_capture_start();
  na_warning("%s", big);
  const char *text = unit_capture_stop();
  size_t len = strlen(text);
  ck_assert_uint_le(len, 512);
  ck_assert_uint_gt(len, 400);
  ck_assert_int_eq(text[len - 1], '\n');
  ck_assert_ptr_eq(strchr(text, '\n'), text + len - 1);
}
END_TEST

START_TEST(fatal_aborts) {
  unit_silence_stderr();
  na_fatal("stop %d", 1);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("message");
  TCase *tc = unit_tcase(s, "message", 10);
  tcase_add_test(tc, conversions);
  tcase_add_test(tc, truncation);
  tcase_add_test(tc, one_line_with_prefix);
  tcase_add_test(tc, long_messages_stay_one_line);
  tcase_add_test_raise_signal(tc, fatal_aborts, SIGABRT);
  return unit_run(s, argv);
}
