/* The C API end to end, as the platform server uses it, and every error path: NULL for each
 * pointer, bad UTF-8, bad JSON, unknown codes, buffers too small, frees of NULL.
 * Usage: lifecycle DB_PATH */
#include <stdint.h>

#include "check.h"

static const char BAD_UTF8[] = {'a', (char)0xff, 'b'};

static int contains(const uint8_t *body, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++) {
    if (memcmp(body + i, needle, n) == 0) return 1;
  }
  return 0;
}

/* One request through the endpoint; returns the status and keeps the response for reading. */
static uint16_t request(const usersync_service *svc, const char *method, const char *path,
                        const char *query, const char *token, const char *body,
                        usersync_response **response_out) {
  char auth[256];
  snprintf(auth, sizeof auth, "Bearer %s", token);
  usersync_header headers[2] = {
      {S("Authorization"), auth, strlen(auth)},
      {S("Content-Type"), S("application/scim+json")},
  };
  OK(usersync_service_handle(svc, S(method), S(path), S(query), headers, 2,
                             (const uint8_t *)body, body ? strlen(body) : 0, response_out));
  return usersync_response_status(*response_out);
}

int main(int argc, char **argv) {
  CHECK(argc == 2);
  const char *db = argv[1];

  /* The version the header was made for is the library's. */
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", USERSYNC_VERSION_MAJOR,
           USERSYNC_VERSION_MINOR, USERSYNC_VERSION_PATCH);
  CHECK(strcmp(usersync_version(), expected) == 0);
  CHECK(strcmp(usersync_version(), USERSYNC_VERSION) == 0);
  CHECK(usersync_abi_version() == USERSYNC_ABI_VERSION);

  /* Descriptions: every code has one, unknown numbers too. */
  CHECK(strcmp(usersync_result_description(USERSYNC_RESULT_OK), "ok") == 0);
  CHECK(strstr(usersync_result_description(USERSYNC_RESULT_NULL_PARAMETER), "NULL") != NULL);
  CHECK(strcmp(usersync_result_description(4242), "unknown result code") == 0);

  /* Opening: NULL, bad UTF-8, bad JSON, unknown settings. */
  usersync_service *svc = NULL;
  EXPECT(usersync_service_open(S(db), NULL, 0, NULL), USERSYNC_RESULT_NULL_PARAMETER);
  CHECK(strstr(last_error(), "service_out") != NULL);
  EXPECT(usersync_service_open(NULL, 5, NULL, 0, &svc), USERSYNC_RESULT_NULL_PARAMETER);
  EXPECT(usersync_service_open(BAD_UTF8, sizeof BAD_UTF8, NULL, 0, &svc),
         USERSYNC_RESULT_INVALID_UTF8);
  CHECK(strstr(last_error(), "at byte 1") != NULL);
  EXPECT(usersync_service_open(S(db), S("{\"max_results\": "), &svc), USERSYNC_RESULT_INVALID_JSON);
  EXPECT(usersync_service_open(S(db), S("{\"colour\": 1}"), &svc),
         USERSYNC_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "unknown key `colour`") != NULL);
  EXPECT(usersync_service_open(S(db), S("{\"max_results\": 0}"), &svc),
         USERSYNC_RESULT_INVALID_ARGUMENT);
  CHECK(svc == NULL); /* outputs are written only on success */
  EXPECT(usersync_service_open(S("/nonexistent-dir/x/y.db"), NULL, 0, &svc),
         USERSYNC_RESULT_STORE_BACKEND);
  OK(usersync_service_open(S(db), S("{\"max_results\": 50}"), &svc));
  CHECK(svc != NULL);

  /* The last error: truncated to the buffer, full length reported, NULL checks. */
  EXPECT(usersync_directory_create(svc, S("bad name"), S("scim"), NULL),
         USERSYNC_RESULT_NULL_PARAMETER);
  char tiny[8];
  size_t len = 0;
  OK(usersync_last_error(tiny, sizeof tiny, &len));
  CHECK(strlen(tiny) == sizeof tiny - 1 && len > sizeof tiny);
  OK(usersync_last_error(NULL, 0, &len));
  EXPECT(usersync_last_error(NULL, 10, &len), USERSYNC_RESULT_NULL_PARAMETER);
  EXPECT(usersync_last_error(tiny, sizeof tiny, NULL), USERSYNC_RESULT_NULL_PARAMETER);

  /* Directories and tokens. */
  char *json = NULL;
  EXPECT(usersync_directory_create(svc, S("bad name"), S("scim"), &json),
         USERSYNC_RESULT_STORE_INVALID);
  EXPECT(usersync_directory_create(svc, S("acme"), S("ftp"), &json),
         USERSYNC_RESULT_STORE_INVALID);
  CHECK(strstr(last_error(), "`kind`") != NULL);
  OK(usersync_directory_create(svc, S("acme"), S("scim"), &json));
  CHECK(strstr(json, "\"endpoint\":\"/scim/v2/acme\"") != NULL);
  const char *at = strstr(json, "\"token\":\"");
  CHECK(at != NULL);
  char token[128] = {0};
  at += strlen("\"token\":\"");
  size_t n = (size_t)(strchr(at, '"') - at);
  CHECK(n < sizeof token);
  memcpy(token, at, n);
  usersync_string_free(json);
  EXPECT(usersync_directory_create(svc, S("acme"), S("scim"), &json), USERSYNC_RESULT_UNIQUENESS);
  OK(usersync_directory_list(svc, &json));
  CHECK(strstr(json, "\"name\":\"acme\"") != NULL);
  CHECK(strstr(json, "\"keepPasswordHashes\":false") != NULL);
  usersync_string_free(json);

  /* The endpoint: create, read back, errors as responses. */
  usersync_response *r = NULL;
  CHECK(request(svc, "POST", "/scim/v2/acme/Users", "", token,
                "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                "\"userName\":\"jdoe\",\"externalId\":\"e-1\",\"active\":true}",
                &r) == 201);
  const uint8_t *body = NULL;
  size_t body_len = 0;
  OK(usersync_response_body(r, &body, &body_len));
  CHECK(contains(body, body_len, "\"userName\":\"jdoe\""));
  const char *id_at = strstr((const char *)body, "\"id\":\"");
  CHECK(id_at != NULL && (const uint8_t *)id_at < body + body_len);
  char id[64] = {0};
  id_at += strlen("\"id\":\"");
  memcpy(id, id_at, 36);
  int location = 0;
  for (size_t i = 0; i < usersync_response_header_count(r); i++) {
    const char *name, *value;
    size_t name_len, value_len;
    OK(usersync_response_header(r, i, &name, &name_len, &value, &value_len));
    if (name_len == 8 && strncmp(name, "Location", 8) == 0) location = 1;
  }
  CHECK(location);
  const char *name, *value;
  size_t name_len, value_len;
  EXPECT(usersync_response_header(r, 99, &name, &name_len, &value, &value_len),
         USERSYNC_RESULT_INVALID_ARGUMENT);
  usersync_response_free(r);

  CHECK(request(svc, "GET", "/scim/v2/acme/Users", "filter=userName eq \"jdoe\"", token, NULL,
                &r) == 200);
  OK(usersync_response_body(r, &body, &body_len));
  CHECK(contains(body, body_len, "\"totalResults\":1"));
  usersync_response_free(r);
  CHECK(request(svc, "GET", "/scim/v2/acme/Users", "filter=userName eq", token, NULL, &r) == 400);
  OK(usersync_response_body(r, &body, &body_len));
  CHECK(contains(body, body_len, "invalidFilter"));
  usersync_response_free(r);
  CHECK(request(svc, "GET", "/scim/v2/acme/Users", "", "wrong-token", NULL, &r) == 401);
  usersync_response_free(r);
  /* An empty body (a 204) is NULL and 0: nothing for memcpy to read. */
  CHECK(request(svc, "POST", "/scim/v2/acme/Users", "", token, "{\"userName\":\"gone\"}", &r) ==
        201);
  OK(usersync_response_body(r, &body, &body_len));
  const char *gone_at = strstr((const char *)body, "\"id\":\"");
  CHECK(gone_at != NULL);
  char gone[128] = "/scim/v2/acme/Users/";
  memcpy(gone + strlen(gone), gone_at + strlen("\"id\":\""), 36);
  usersync_response_free(r);
  CHECK(request(svc, "DELETE", gone, "", token, NULL, &r) == 204);
  OK(usersync_response_body(r, &body, &body_len));
  CHECK(body == NULL && body_len == 0);
  usersync_response_free(r);
  CHECK(request(svc, "POST", "/scim/v2/acme/Users", "", token, "{not json", &r) == 400);
  usersync_response_free(r);
  /* A body that is not UTF-8 is the endpoint's to refuse, not the call's. */
  usersync_header none[1] = {{S("Authorization"), S("Bearer x")}};
  OK(usersync_service_handle(svc, S("POST"), S("/scim/v2/acme/Users"), NULL, 0, none, 1,
                             (const uint8_t *)BAD_UTF8, sizeof BAD_UTF8, &r));
  CHECK(usersync_response_status(r) >= 400 && usersync_response_status(r) < 500);
  usersync_response_free(r);
  EXPECT(usersync_service_handle(svc, BAD_UTF8, sizeof BAD_UTF8, S("/scim/v2/acme/Users"),
                                 NULL, 0, NULL, 0, NULL, 0, &r),
         USERSYNC_RESULT_INVALID_UTF8);
  EXPECT(usersync_service_handle(svc, S("GET"), S("/scim/v2/acme/Users"), NULL, 0, NULL, 2,
                                 NULL, 0, &r),
         USERSYNC_RESULT_NULL_PARAMETER);
  EXPECT(usersync_service_handle(NULL, S("GET"), S("/"), NULL, 0, NULL, 0, NULL, 0, &r),
         USERSYNC_RESULT_NULL_PARAMETER);
  CHECK(usersync_response_status(NULL) == 0 && usersync_response_header_count(NULL) == 0);
  EXPECT(usersync_response_body(NULL, &body, &body_len), USERSYNC_RESULT_NULL_PARAMETER);

  /* The platform's own reads. */
  OK(usersync_resource_get(svc, S("acme"), USERSYNC_KIND_USER, S(id), &json));
  CHECK(strstr(json, "\"userName\":\"jdoe\"") != NULL);
  usersync_string_free(json);
  EXPECT(usersync_resource_get(svc, S("acme"), USERSYNC_KIND_USER, S("nope"), &json),
         USERSYNC_RESULT_NOT_FOUND);
  EXPECT(usersync_resource_get(svc, S("acme"), USERSYNC_KIND_USER, S("a?b"), &json),
         USERSYNC_RESULT_INVALID_ARGUMENT);
  EXPECT(usersync_resource_get(svc, S("acme"), 7, S(id), &json), USERSYNC_RESULT_INVALID_ARGUMENT);
  EXPECT(usersync_resource_get(svc, S("nowhere"), USERSYNC_KIND_USER, S(id), &json),
         USERSYNC_RESULT_NOT_FOUND);
  /* A filter's `&` and `=` are its own, not the query string's. */
  OK(usersync_resource_list(svc, S("acme"), USERSYNC_KIND_USER, S("externalId eq \"e-1&x=y\""),
                            1, 10, &json));
  CHECK(strstr(json, "\"totalResults\":0") != NULL);
  usersync_string_free(json);
  OK(usersync_resource_list(svc, S("acme"), USERSYNC_KIND_USER, S("externalId eq \"e-1\""), 0, 0,
                            &json));
  CHECK(strstr(json, "\"totalResults\":1") != NULL);
  usersync_string_free(json);
  EXPECT(usersync_resource_list(svc, S("acme"), USERSYNC_KIND_USER, S("userName eq"), 1, 10,
                                &json),
         USERSYNC_RESULT_INVALID_FILTER);
  uint64_t active = 0, inactive = 0;
  OK(usersync_user_counts(svc, S("acme"), &active, &inactive));
  CHECK(active == 1 && inactive == 0);
  EXPECT(usersync_user_counts(svc, S("nowhere"), &active, &inactive), USERSYNC_RESULT_NOT_FOUND);
  /* Purging: nothing is past acme's retention (30 days); an unknown directory is an error. */
  uint64_t purged = 99;
  OK(usersync_directory_purge(svc, NULL, 0, &purged));
  CHECK(purged == 0);
  OK(usersync_directory_purge(svc, S("acme"), &purged));
  CHECK(purged == 0);
  EXPECT(usersync_directory_purge(svc, S("nowhere"), &purged), USERSYNC_RESULT_NOT_FOUND);

  /* The change feed. */
  uint64_t next = 0;
  OK(usersync_events_after(svc, 0, 100, &json, &next));
  CHECK(strstr(json, "\"event\":\"created\"") != NULL && next >= 1);
  usersync_string_free(json);
  uint64_t again = 0;
  OK(usersync_events_after(svc, next, 100, &json, &again));
  CHECK(strcmp(json, "[]") == 0 && again == next);
  usersync_string_free(json);
  EXPECT(usersync_events_after(svc, 0, 0, &json, &next), USERSYNC_RESULT_INVALID_ARGUMENT);
  bool available = true;
  OK(usersync_events_wait(svc, next, 20, &available));
  CHECK(!available);
  OK(usersync_events_wait(svc, 0, 0, &available));
  CHECK(available);

  /* Token rotation: both tokens work until the old one is revoked. */
  OK(usersync_directory_token_rotate(svc, S("acme"), &json));
  char new_token[128] = {0};
  at = strstr(json, "\"token\":\"") + strlen("\"token\":\"");
  memcpy(new_token, at, (size_t)(strchr(at, '"') - at));
  long new_id = strtol(strstr(json, "\"id\":") + 5, NULL, 10);
  usersync_string_free(json);
  CHECK(request(svc, "GET", "/scim/v2/acme/Users", "", new_token, NULL, &r) == 200);
  usersync_response_free(r);
  CHECK(request(svc, "GET", "/scim/v2/acme/Users", "", token, NULL, &r) == 200);
  usersync_response_free(r);
  OK(usersync_directory_token_revoke(svc, S("acme"), new_id - 1));
  CHECK(request(svc, "GET", "/scim/v2/acme/Users", "", token, NULL, &r) == 401);
  usersync_response_free(r);
  CHECK(request(svc, "GET", "/scim/v2/acme/Users", "", new_token, NULL, &r) == 200);
  usersync_response_free(r);
  EXPECT(usersync_directory_token_revoke(svc, S("nowhere"), 1), USERSYNC_RESULT_NOT_FOUND);

  /* Settings at creation; a directory that keeps password hashes checks sign-ins. */
  EXPECT(usersync_directory_create_with(svc, S("okta"), S("{\"keepPasswordHashes\": 1}"), &json),
         USERSYNC_RESULT_STORE_INVALID);
  CHECK(strstr(last_error(), "keepPasswordHashes") != NULL);
  EXPECT(usersync_directory_create_with(svc, S("okta"), S("{\"colour\": 1}"), &json),
         USERSYNC_RESULT_STORE_INVALID);
  EXPECT(usersync_directory_create_with(svc, S("okta"), S("{"), &json),
         USERSYNC_RESULT_INVALID_JSON);
  /* No options: the defaults. */
  OK(usersync_directory_create_with(svc, S("plain"), NULL, 0, &json));
  CHECK(strstr(json, "\"kind\":\"scim\"") != NULL);
  usersync_string_free(json);
  OK(usersync_directory_create_with(
      svc, S("okta"),
      S("{\"keepPasswordHashes\": true, \"userNameScope\": \"directory\", \"strict\": true}"),
      &json));
  at = strstr(json, "\"token\":\"") + strlen("\"token\":\"");
  char okta_token[128] = {0};
  n = (size_t)(strchr(at, '"') - at);
  CHECK(n < sizeof okta_token);
  memcpy(okta_token, at, n);
  usersync_string_free(json);
  usersync_response *signup = NULL;
  CHECK(request(svc, "POST", "/scim/v2/okta/Users", "", okta_token,
                "{\"userName\":\"jdoe\",\"password\":\"s3cret-Pa55\"}", &signup) == 201);
  usersync_response_free(signup);
  OK(usersync_directory_list(svc, &json));
  CHECK(strstr(json, "\"keepPasswordHashes\":true") != NULL);
  CHECK(strstr(json, "\"strict\":true") != NULL);
  usersync_string_free(json);
  char *user_id = NULL;
  OK(usersync_password_verify(svc, S("okta"), S("JDoe"), S("s3cret-Pa55"), &user_id));
  CHECK(user_id != NULL && strlen(user_id) == 36);
  usersync_string_free(user_id);
  user_id = NULL;
  EXPECT(usersync_password_verify(svc, S("okta"), S("jdoe"), S("s3cret-pa55"), &user_id),
         USERSYNC_RESULT_PASSWORD_MISMATCH);
  EXPECT(usersync_password_verify(svc, S("okta"), S("nobody"), S("s3cret-Pa55"), &user_id),
         USERSYNC_RESULT_PASSWORD_MISMATCH);
  CHECK(user_id == NULL);
  EXPECT(usersync_password_verify(svc, S("acme"), S("jdoe"), S("x"), &user_id),
         USERSYNC_RESULT_STORE_INVALID);
  EXPECT(usersync_password_verify(svc, S("nowhere"), S("jdoe"), S("x"), &user_id),
         USERSYNC_RESULT_NOT_FOUND);

  /* Filters, with the position of a mistake. */
  char *canonical = NULL;
  size_t position = 999;
  OK(usersync_scim_filter_check(S("userName EQ \"a\""), 0, 0, &canonical, &position));
  CHECK(strcmp(canonical, "userName eq \"a\"") == 0 && position == 999);
  usersync_string_free(canonical);
  EXPECT(usersync_scim_filter_check(S("userName eq"), 0, 0, &canonical, &position),
         USERSYNC_RESULT_INVALID_FILTER);
  CHECK(position == 11);
  EXPECT(usersync_scim_filter_check(S("active gt true"), USERSYNC_KIND_USER, 0, &canonical, NULL),
         USERSYNC_RESULT_INVALID_FILTER);
  OK(usersync_scim_filter_check(S("members[value eq \"x\"]"), USERSYNC_KIND_GROUP, 0, &canonical,
                                NULL));
  usersync_string_free(canonical);
  /* Identity providers' boolean strings: accepted by default, refused in strict mode. */
  OK(usersync_scim_filter_check(S("active eq \"True\""), USERSYNC_KIND_USER, 0, &canonical, NULL));
  usersync_string_free(canonical);
  EXPECT(usersync_scim_filter_check(S("active eq \"True\""), USERSYNC_KIND_USER,
                                    USERSYNC_FILTER_STRICT, &canonical, NULL),
         USERSYNC_RESULT_INVALID_FILTER);
  EXPECT(usersync_scim_filter_check(S("active eq true"), 0, 8, &canonical, NULL),
         USERSYNC_RESULT_INVALID_ARGUMENT);
  EXPECT(usersync_scim_filter_check(BAD_UTF8, sizeof BAD_UTF8, 0, 0, &canonical, NULL),
         USERSYNC_RESULT_INVALID_UTF8);
  OK(usersync_ldap_filter_check(S("(&(objectClass=person)(uid=j*))"), &canonical, &position));
  usersync_string_free(canonical);
  EXPECT(usersync_ldap_filter_check(S("(cn=a"), &canonical, &position),
         USERSYNC_RESULT_INVALID_LDAP_FILTER);
  CHECK(position == 5);

  /* Sync calls that fail before any connection: the configuration names the key. */
  usersync_plan *plan = NULL;
  EXPECT(usersync_sync_plan(svc, S("directory = \"corp\"\n[connection]\nurls = []\n[users]\nbase = \"dc=x\"\n"), 0, &plan),
         USERSYNC_RESULT_SYNC_CONFIG);
  CHECK(strstr(last_error(), "`connection.urls`") != NULL);
  EXPECT(usersync_sync_plan(svc, S("x"), 99, &plan), USERSYNC_RESULT_INVALID_ARGUMENT);
  EXPECT(usersync_plan_apply(svc, NULL, 0, NULL, NULL, &json), USERSYNC_RESULT_NULL_PARAMETER);
  int64_t next_run = 0;
  const char *scheduled = "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:1\"]\n"
                          "[users]\nbase = \"dc=x\"\n[schedule]\ninterval = \"1h\"\n";
  OK(usersync_sync_next_run(S(scheduled), 1000, USERSYNC_OUTCOME_SUCCEEDED, 0, 7, &next_run));
  CHECK(next_run == 4600);
  OK(usersync_sync_next_run(S(scheduled), 1000, USERSYNC_OUTCOME_FAILED, 1, 7, &next_run));
  CHECK(next_run > 1000 && next_run < 1100);
  EXPECT(usersync_sync_next_run(S(scheduled), 1000, 9, 1, 7, &next_run),
         USERSYNC_RESULT_INVALID_ARGUMENT);

  /* Freeing NULL is harmless. */
  usersync_string_free(NULL);
  usersync_response_free(NULL);
  usersync_plan_free(NULL);
  usersync_service_free(NULL);
  usersync_service_free(svc);
  printf("lifecycle: ok\n");
  return 0;
}
