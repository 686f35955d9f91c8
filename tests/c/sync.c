/* An LDAP sync driven from C against the test slapd: plan, review the JSON, apply with a
 * progress callback that cancels it after the first batch, run again (what is left), again
 * (nothing to do), then a removal that crosses the threshold is blocked until applied with
 * the override.
 * Usage: sync DB_PATH CONFIG_TOML_PATH REMOVE_COMMAND
 * REMOVE_COMMAND is a shell command that deletes two of the users from LDAP. */
#include <stdint.h>

#include "check.h"

static char *read_file(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  CHECK(fseek(f, 0, SEEK_END) == 0);
  long n = ftell(f);
  CHECK(n >= 0);
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  CHECK(buf != NULL);
  CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
  buf[n] = 0;
  fclose(f);
  *len_out = (size_t)n;
  return buf;
}

struct progress {
  int calls;
  uint64_t last_done, total;
  /* When set, the sync of `corp` on this service is cancelled from the callback. */
  usersync_service *cancel;
};

static void on_progress(void *userdata, uint64_t done, uint64_t total) {
  struct progress *p = userdata;
  CHECK(done >= p->last_done && done <= total);
  p->calls++;
  p->last_done = done;
  p->total = total;
  if (p->cancel != NULL) OK(usersync_sync_cancel(p->cancel, S("corp")));
}

int main(int argc, char **argv) {
  CHECK(argc == 4);
  size_t config_len = 0;
  char *config = read_file(argv[2], &config_len);
  usersync_service *svc = NULL;
  OK(usersync_service_open(S(argv[1]), NULL, 0, &svc));

  /* Plan: five users and a group to create, nothing changed yet. */
  usersync_plan *plan = NULL;
  OK(usersync_sync_plan(svc, config, config_len, 0, &plan));
  char *json = NULL;
  OK(usersync_plan_json(plan, &json));
  if (strstr(json, "\"summary\":{\"add_members\":1,\"create\":6}") == NULL) {
    fprintf(stderr, "unexpected plan: %s\n", json);
    return 1;
  }
  usersync_string_free(json);
  uint64_t active = 0, inactive = 0;
  EXPECT(usersync_user_counts(svc, S("corp"), &active, &inactive), USERSYNC_RESULT_NOT_FOUND);

  /* Apply, watching the progress, and cancel after the first batch (the creations): what
   * was applied stays, and the report says what it was. */
  struct progress progress = {0, 0, 0, svc};
  EXPECT(usersync_plan_apply(svc, plan, 0, on_progress, &progress, &json),
         USERSYNC_RESULT_SYNC_CANCELLED);
  CHECK(strstr(last_error(), "stopped after 6 of 7 changes") != NULL);
  CHECK(strstr(json, "\"partial_report\":{\"applied\":{\"create\":6}") != NULL);
  usersync_string_free(json);
  CHECK(progress.calls == 1 && progress.last_done == 6 && progress.total == 7);
  EXPECT(usersync_plan_apply(svc, plan, 0, NULL, NULL, &json), USERSYNC_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "applied already") != NULL);
  usersync_plan_free(plan);
  OK(usersync_user_counts(svc, S("corp"), &active, &inactive));
  CHECK(active == 5 && inactive == 0);
  /* Nothing runs now: nothing to cancel. */
  EXPECT(usersync_sync_cancel(svc, S("corp")), USERSYNC_RESULT_NOT_FOUND);

  /* The next run applies what is left: the group's members. */
  struct progress rest = {0, 0, 0, NULL};
  OK(usersync_sync_run(svc, config, config_len, 0, on_progress, &rest, &json));
  CHECK(strstr(json, "\"applied\":{\"add_members\":1}") != NULL);
  usersync_string_free(json);
  CHECK(rest.calls == 1 && rest.last_done == 1 && rest.total == 1);

  /* Again: nothing to do, and the feed has every creation. */
  OK(usersync_sync_run(svc, config, config_len, 0, NULL, NULL, &json));
  CHECK(strstr(json, "\"applied\":{}") != NULL);
  usersync_string_free(json);
  uint64_t next = 0;
  OK(usersync_events_after(svc, 0, 1000, &json, &next));
  int created = 0;
  for (const char *p = json; (p = strstr(p, "\"event\":\"created\"")) != NULL; p++) created++;
  usersync_string_free(json);
  CHECK(created == 6);

  /* Two of five users leave: 40% is above the 10% threshold. */
  CHECK(system(argv[3]) == 0);
  json = NULL;
  EXPECT(usersync_sync_run(svc, config, config_len, 0, NULL, NULL, &json),
         USERSYNC_RESULT_SYNC_BLOCKED);
  CHECK(json != NULL && strstr(json, "\"outcome\":\"blocked\"") != NULL);
  usersync_string_free(json);
  OK(usersync_user_counts(svc, S("corp"), &active, &inactive));
  CHECK(active == 5);
  /* A plan refused as blocked stays: reviewed, it is applied with the override. It belongs to
   * the service that made it. */
  OK(usersync_sync_plan(svc, config, config_len, 0, &plan));
  EXPECT(usersync_plan_apply(svc, plan, 0, NULL, NULL, &json), USERSYNC_RESULT_SYNC_BLOCKED);
  usersync_string_free(json);
  char other_path[4096];
  snprintf(other_path, sizeof other_path, "%s.other", argv[1]);
  usersync_service *other = NULL;
  OK(usersync_service_open(S(other_path), NULL, 0, &other));
  EXPECT(usersync_plan_apply(other, plan, USERSYNC_SYNC_ALLOW_DELETES, NULL, NULL, &json),
         USERSYNC_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "another service") != NULL);
  usersync_service_free(other);
  OK(usersync_plan_apply(svc, plan, USERSYNC_SYNC_ALLOW_DELETES, NULL, NULL, &json));
  CHECK(strstr(json, "\"deactivate\":2") != NULL);
  usersync_string_free(json);
  usersync_plan_free(plan);
  OK(usersync_user_counts(svc, S("corp"), &active, &inactive));
  CHECK(active == 3 && inactive == 2);

  /* A run whose server does not answer is an error, and on record. */
  const char *dead = "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:9\"]\n"
                     "tls = \"none\"\nconnect_timeout_seconds = 2\n[users]\nbase = \"dc=x\"\n";
  json = NULL;
  EXPECT(usersync_sync_run(svc, S(dead), 0, NULL, NULL, &json), USERSYNC_RESULT_SYNC_SOURCE);
  CHECK(json != NULL && strstr(json, "\"outcome\":\"failed\"") != NULL);
  usersync_string_free(json);

  /* Every run is on record, newest first: failed, applied, blocked twice, nothing to do,
   * the rest applied, cancelled (each outcome twice: the record's, and its report's). */
  OK(usersync_directory_runs(svc, S("corp"), 10, &json));
  const char *outcomes[] = {"failed",    "failed",    "succeeded", "succeeded", "blocked",
                            "blocked",   "blocked",   "blocked",   "succeeded", "succeeded",
                            "succeeded", "succeeded", "failed",    "failed"};
  const char *at = json;
  for (int i = 0; i < 14; i++) {
    at = strstr(at, "\"outcome\":\"");
    CHECK(at != NULL);
    at += strlen("\"outcome\":\"");
    CHECK(strncmp(at, outcomes[i], strlen(outcomes[i])) == 0);
  }
  CHECK(strstr(at, "\"outcome\":\"") == NULL);
  usersync_string_free(json);

  /* A server that does not answer is a clear error, not a crash. */
  EXPECT(usersync_sync_plan(svc, S(dead), 0, &plan), USERSYNC_RESULT_SYNC_SOURCE);
  CHECK(strstr(last_error(), "no LDAP server answered") != NULL);

  usersync_service_free(svc);
  free(config);
  printf("sync: ok\n");
  return 0;
}
