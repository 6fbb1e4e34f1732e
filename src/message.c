/* message.c: warnings and fatal errors, one line each on stderr, formatted without allocating
 * (the allocator may be broken or locked when it needs to speak). */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>

static size_t put_char(char *buf, size_t size, size_t at, char c) {
  if (at + 1 < size) buf[at] = c;
  return at + 1;
}

static size_t put_text(char *buf, size_t size, size_t at, const char *text) {
  if (text == NULL) text = "(null)";
  while (*text) at = put_char(buf, size, at, *text++);
  return at;
}

static size_t put_unsigned(char *buf, size_t size, size_t at, unsigned long long v, unsigned base) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  while (n > 0) at = put_char(buf, size, at, digits[--n]);
  return at;
}

static size_t put_signed(char *buf, size_t size, size_t at, long long v) {
  if (v < 0) {
    at = put_char(buf, size, at, '-');
    return put_unsigned(buf, size, at, (unsigned long long)-(v + 1) + 1, 10);
  }
  return put_unsigned(buf, size, at, (unsigned long long)v, 10);
}

size_t na_format(char *buf, size_t size, const char *fmt, va_list args) {
  if (size == 0) return 0;
  size_t at = 0;
  for (const char *f = fmt; *f; f++) {
    if (*f != '%') {
      at = put_char(buf, size, at, *f);
      continue;
    }
    f++;
    int longs = 0;
    bool size_t_arg = false;
    while (*f == 'l') {
      longs++;
      f++;
    }
    if (*f == 'z') {
      size_t_arg = true;
      f++;
    }
    switch (*f) {
    case 's': at = put_text(buf, size, at, va_arg(args, const char *)); break;
    case 'c': at = put_char(buf, size, at, (char)va_arg(args, int)); break;
    case 'd': at = put_signed(buf, size, at, longs ? va_arg(args, long) : va_arg(args, int)); break;
    case 'u':
      at = put_unsigned(buf, size, at,
                        size_t_arg ? va_arg(args, size_t)
                        : longs    ? va_arg(args, unsigned long)
                                   : va_arg(args, unsigned),
                        10);
      break;
    case 'x':
      at = put_unsigned(buf, size, at,
                        size_t_arg ? va_arg(args, size_t)
                        : longs    ? va_arg(args, unsigned long)
                                   : va_arg(args, unsigned),
                        16);
      break;
    case 'p':
      at = put_text(buf, size, at, "0x");
      at = put_unsigned(buf, size, at, (uintptr_t)va_arg(args, void *), 16);
      break;
    case '%': at = put_char(buf, size, at, '%'); break;
    default: at = put_char(buf, size, at, '?'); break;
    }
    if (*f == '\0') break;
  }
  if (size > 0) buf[at < size ? at : size - 1] = '\0';
  return at < size ? at : size - 1;
}

static void emit(const char *prefix, const char *fmt, va_list args) {
  char line[512];
  size_t at = 0;
  for (const char *p = prefix; *p && at < sizeof line - 2; p++) line[at++] = *p;
  at += na_format(line + at, sizeof line - at - 1, fmt, args);
  line[at++] = '\n';
  na_os_write_stderr(line, at);
}

void na_warning(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  emit("numalloc: warning: ", fmt, args);
  va_end(args);
}

void na_info(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  emit("numalloc: ", fmt, args);
  va_end(args);
}

void na_fatal(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  emit("numalloc: ", fmt, args);
  va_end(args);
  abort();
}
