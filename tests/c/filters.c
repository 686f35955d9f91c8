/* The shared filter corpus through the C API: filters come on standard input, are checked by
 * usersync_scim_filter_check or usersync_ldap_filter_check, and the outcome goes to standard
 * output for the test harness to compare with the corpus.
 *
 * Protocol (lengths in bytes, fields raw):
 *   "S <n>\n" <SCIM filter>, "T <n>\n" <SCIM filter, strict RFC mode>, or
 *   "L <n>\n" <LDAP filter>
 *     -> "OK 0 <n>\n" <canonical form>
 *     -> "ERR <position> <n>\n" <message>      (the result code names the kind, below)
 *   with the result code in place of OK/ERR: "<code> <position> <n>\n" <text>.
 * Usage: filters */
#include <stdint.h>

#include "check.h"

int main(void) {
  char kind;
  size_t n;
  while (scanf(" %c %zu", &kind, &n) == 2) {
    CHECK(getchar() == '\n');
    char *filter = malloc(n + 1);
    CHECK(filter != NULL);
    CHECK(fread(filter, 1, n, stdin) == n);
    char *canonical = NULL;
    size_t position = 0;
    usersync_result result;
    if (kind == 'S' || kind == 'T') {
      uint32_t flags = kind == 'T' ? USERSYNC_FILTER_STRICT : 0;
      result = usersync_scim_filter_check(filter, n, 0, flags, &canonical, &position);
    } else {
      CHECK(kind == 'L');
      result = usersync_ldap_filter_check(filter, n, &canonical, &position);
    }
    if (result == USERSYNC_RESULT_OK) {
      printf("%u 0 %zu\n%s", (unsigned)result, strlen(canonical), canonical);
      usersync_string_free(canonical);
    } else {
      char message[4096];
      size_t len = 0;
      OK(usersync_last_error(message, sizeof message, &len));
      CHECK(len < sizeof message);
      printf("%u %zu %zu\n%s", (unsigned)result, position, len, message);
    }
    fflush(stdout);
    free(filter);
  }
  return 0;
}
