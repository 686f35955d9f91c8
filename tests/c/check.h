/* Helpers shared by the C test programs: fail loudly with the library's own message. */
#ifndef USERSYNC_TEST_CHECK_H
#define USERSYNC_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usersync.h"

/* The calling thread's last error message, in a static buffer (tests are single-threaded
 * where they print it). */
static const char *last_error(void) {
  static char buf[1024];
  size_t len = 0;
  if (usersync_last_error(buf, sizeof buf, &len) != USERSYNC_RESULT_OK) {
    return "(no message)";
  }
  return buf;
}

/* Fails the program unless `call` returns `expected`. */
#define EXPECT(call, expected)                                                       \
  do {                                                                               \
    usersync_result got_ = (call);                                                   \
    if (got_ != (expected)) {                                                        \
      fprintf(stderr, "%s:%d: %s returned %u (%s), expected %u: %s\n", __FILE__,     \
              __LINE__, #call, (unsigned)got_, usersync_result_description(got_),    \
              (unsigned)(expected), last_error());                                   \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

#define OK(call) EXPECT(call, USERSYNC_RESULT_OK)

/* Fails the program unless `cond` holds. */
#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

/* A NUL-terminated string as the pointer and length pair the API takes. */
#define S(str) (str), strlen(str)

#endif
