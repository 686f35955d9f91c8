/* Eight server threads on one service handle: each creates users and adds them to one shared
 * group while a ninth thread reads the change feed. Nothing is lost: every user is a member,
 * and the feed shows every creation exactly once, in sequence order.
 * Usage: threads DB_PATH [USERS_PER_THREAD] */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define WRITERS 8
static int USERS_EACH = 25;

static usersync_service *svc;
static char token[128];
static char group_id[64];
static volatile int writers_done = 0;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;

static uint16_t call(const char *method, const char *path, const char *body, char *id_out) {
  char auth[256];
  snprintf(auth, sizeof auth, "Bearer %s", token);
  usersync_header headers[2] = {
      {S("Authorization"), auth, strlen(auth)},
      {S("Content-Type"), S("application/scim+json")},
  };
  usersync_response *r = NULL;
  OK(usersync_service_handle(svc, S(method), S(path), NULL, 0, headers, 2, (const uint8_t *)body,
                             body ? strlen(body) : 0, &r));
  uint16_t status = usersync_response_status(r);
  if (id_out) {
    const uint8_t *b;
    size_t n;
    OK(usersync_response_body(r, &b, &n));
    const char *at = strstr((const char *)b, "\"id\":\"");
    CHECK(at != NULL);
    memcpy(id_out, at + 6, 36);
    id_out[36] = 0;
  }
  usersync_response_free(r);
  return status;
}

static void *writer(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < USERS_EACH; i++) {
    char body[256], id[64], patch[512], path[128];
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
             "\"userName\":\"t%d-u%d\"}",
             t, i);
    CHECK(call("POST", "/scim/v2/acme/Users", body, id) == 201);
    snprintf(patch, sizeof patch,
             "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],"
             "\"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"%s\"}]}]}",
             id);
    snprintf(path, sizeof path, "/scim/v2/acme/Groups/%s", group_id);
    uint16_t status = call("PATCH", path, patch, NULL);
    CHECK(status == 200 || status == 204);
  }
  pthread_mutex_lock(&done_lock);
  writers_done++;
  pthread_mutex_unlock(&done_lock);
  return NULL;
}

static int created_seen = 0;

static void *reader(void *arg) {
  (void)arg;
  uint64_t seq = 0;
  for (;;) {
    pthread_mutex_lock(&done_lock);
    int done = writers_done == WRITERS;
    pthread_mutex_unlock(&done_lock);
    char *json = NULL;
    uint64_t next = 0;
    OK(usersync_events_after(svc, seq, 50, &json, &next));
    CHECK(next >= seq);
    for (const char *p = json; (p = strstr(p, "\"event\":\"created\"")) != NULL; p++) {
      created_seen++;
    }
    usersync_string_free(json);
    if (next == seq && done) break;
    if (next == seq) {
      /* Nothing new: wait for the writers' next commit (or a moment, to see `done`). */
      bool available = false;
      OK(usersync_events_wait(svc, seq, 100, &available));
    }
    seq = next;
  }
  return NULL;
}

int main(int argc, char **argv) {
  CHECK(argc == 2 || argc == 3);
  if (argc == 3) USERS_EACH = atoi(argv[2]);
  CHECK(USERS_EACH > 0);
  OK(usersync_service_open(S(argv[1]), NULL, 0, &svc));
  char *json = NULL;
  OK(usersync_directory_create(svc, S("acme"), S("scim"), &json));
  const char *at = strstr(json, "\"token\":\"") + strlen("\"token\":\"");
  memcpy(token, at, (size_t)(strchr(at, '"') - at));
  usersync_string_free(json);
  CHECK(call("POST", "/scim/v2/acme/Groups",
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
             "\"displayName\":\"everyone\"}",
             group_id) == 201);

  pthread_t threads[WRITERS + 1];
  for (int t = 0; t < WRITERS; t++) {
    CHECK(pthread_create(&threads[t], NULL, writer, (void *)(intptr_t)t) == 0);
  }
  CHECK(pthread_create(&threads[WRITERS], NULL, reader, NULL) == 0);
  for (int t = 0; t <= WRITERS; t++) CHECK(pthread_join(threads[t], NULL) == 0);

  uint64_t active = 0, inactive = 0;
  OK(usersync_user_counts(svc, S("acme"), &active, &inactive));
  CHECK(active == (uint64_t)(WRITERS * USERS_EACH));
  OK(usersync_resource_get(svc, S("acme"), USERSYNC_KIND_GROUP, S(group_id), &json));
  int members = 0;
  for (const char *p = json; (p = strstr(p, "\"value\":")) != NULL; p++) members++;
  usersync_string_free(json);
  CHECK(members == WRITERS * USERS_EACH);
  /* Every user's creation and the group's, once each. */
  CHECK(created_seen == WRITERS * USERS_EACH + 1);
  usersync_service_free(svc);
  printf("threads: ok (%d users, %d members, %d creations in the feed)\n",
         WRITERS * USERS_EACH, members, created_seen);
  return 0;
}
