/* A transport for the identity-provider transcripts: requests come on standard input, go
 * through usersync_service_handle, and the answers go to standard output. The test harness
 * checks them against the transcripts, as it does for `usersync serve` over HTTP.
 *
 * Protocol (lengths in bytes, fields raw):
 *   "D <n>\n" <name>                          -> "J <n>\n" <directory JSON, with its token>
 *   "R <m> <p> <q> <t> <b>\n" <method><path><query><token><body>
 *                                             -> "S <status> <n>\n" <body>
 * Usage: replay DB_PATH */
#include <stdint.h>

#include "check.h"

static char *read_exactly(size_t n) {
  char *buf = malloc(n + 1);
  CHECK(buf != NULL);
  CHECK(fread(buf, 1, n, stdin) == n);
  buf[n] = 0;
  return buf;
}

int main(int argc, char **argv) {
  CHECK(argc == 2);
  usersync_service *svc = NULL;
  OK(usersync_service_open(S(argv[1]), NULL, 0, &svc));
  char command;
  while (scanf(" %c", &command) == 1) {
    if (command == 'D') {
      size_t n;
      CHECK(scanf("%zu", &n) == 1 && getchar() == '\n');
      char *name = read_exactly(n);
      char *json = NULL;
      OK(usersync_directory_create(svc, name, n, S("scim"), &json));
      printf("J %zu\n%s", strlen(json), json);
      usersync_string_free(json);
      free(name);
    } else if (command == 'R') {
      size_t m, p, q, t, b;
      CHECK(scanf("%zu %zu %zu %zu %zu", &m, &p, &q, &t, &b) == 5 && getchar() == '\n');
      char *method = read_exactly(m), *path = read_exactly(p), *query = read_exactly(q),
           *token = read_exactly(t), *body = read_exactly(b);
      char auth[256];
      CHECK(t + 8 < sizeof auth);
      snprintf(auth, sizeof auth, "Bearer %s", token);
      usersync_header headers[2] = {
          {S("Authorization"), auth, strlen(auth)},
          {S("Content-Type"), S("application/scim+json")},
      };
      usersync_response *r = NULL;
      OK(usersync_service_handle(svc, method, m, path, p, query, q, headers, 2,
                                 (const uint8_t *)body, b, &r));
      const uint8_t *out;
      size_t out_len;
      OK(usersync_response_body(r, &out, &out_len));
      printf("S %u %zu\n", (unsigned)usersync_response_status(r), out_len);
      CHECK(fwrite(out, 1, out_len, stdout) == out_len);
      usersync_response_free(r);
      free(method);
      free(path);
      free(query);
      free(token);
      free(body);
    } else {
      fprintf(stderr, "unknown command %c\n", command);
      return 1;
    }
    fflush(stdout);
  }
  usersync_service_free(svc);
  return 0;
}
