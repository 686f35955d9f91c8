//! Directories and their tokens.

use std::ffi::c_char;

use serde_json::{Value, json};
use usersync_core::scim::service::{create_directory, issue_token};
use usersync_core::store::{
    Directory, NewDirectory, SyncRun, directory_summaries, purge_expired, system_clock,
};

use crate::service::{service, usersync_service};
use crate::{c_string, fail, guard, out, store_error, text, usersync_result, write};

/// The directory `name`, or `NOT_FOUND`.
pub(crate) fn find(service: &usersync_service, name: &str) -> Result<Directory, usersync_result> {
    service
        .store
        .directory(name)
        .map_err(|e| store_error(&e))?
        .ok_or_else(|| fail(usersync_result::NotFound, format!("no directory `{name}`")))
}

/// Creates the directory `name` of `kind` (`scim`, `ldap` or `local`) with the default
/// settings; as `usersync_directory_create_with` with `{"kind": kind}`.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_directory_create(
    service: *const usersync_service,
    name: *const c_char,
    name_len: usize,
    kind: *const c_char,
    kind_len: usize,
    json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(json_out, "json_out")?;
        let name = text(name, name_len, "name")?;
        let kind = text(kind, kind_len, "kind")?;
        // Exactly as `_with` (an unknown kind is `STORE_INVALID` there too).
        let new = NewDirectory::from_options(name, &serde_json::json!({ "kind": kind }))
            .map_err(|e| store_error(&e))?;
        create(service, new, json_out)
    })
}

/// Creates the directory `name` with the settings of `options_json`, a JSON object whose keys
/// are all optional: `{"kind": "scim", "retentionDays": 30, "userNameScope": "platform",
/// "keepPasswordHashes": false, "strict": false}` (the defaults; NULL and 0 mean `{}`).
/// `userNameScope` `"directory"` makes `userName`s unique within this directory only;
/// `keepPasswordHashes` keeps the passwords identity providers send, as Argon2id hashes, for
/// `usersync_password_verify`; `strict` holds SCIM clients to RFC 7644 to the letter,
/// refusing what only identity providers send. Settings are chosen once, at creation.
///
/// Writes, as JSON, its name, kind, endpoint path and — for a `scim` directory — a new
/// token, shown this once: `{"name": "acme", "kind": "scim", "endpoint": "/scim/v2/acme",
/// "token": "…"}`. Free the string with `usersync_string_free`.
///
/// Errors: `UNIQUENESS` (the name is taken), `STORE_INVALID` (a name that cannot be a path
/// segment, or an unknown or malformed setting, named in the message), `INVALID_JSON`, and
/// the usual argument checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_directory_create_with(
    service: *const usersync_service,
    name: *const c_char,
    name_len: usize,
    options_json: *const c_char,
    options_len: usize,
    json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(json_out, "json_out")?;
        let name = text(name, name_len, "name")?;
        let options = match text(options_json, options_len, "options_json")? {
            "" => Value::Object(serde_json::Map::new()),
            given => serde_json::from_str(given)
                .map_err(|e| fail(usersync_result::InvalidJson, format!("`options_json`: {e}")))?,
        };
        let new = NewDirectory::from_options(name, &options).map_err(|e| store_error(&e))?;
        create(service, new, json_out)
    })
}

fn create(
    service: &usersync_service,
    new: NewDirectory,
    json_out: *mut *mut c_char,
) -> Result<(), usersync_result> {
    let created = create_directory(&*service.store, new).map_err(|e| store_error(&e))?;
    write(json_out, c_string(created.to_string())?);
    Ok(())
}

/// Checks a sign-in against a directory that keeps password hashes: on a match, writes the
/// user's `id` to `user_id_out` (free it with `usersync_string_free`) and returns `OK`.
/// An unknown user name, an inactive user, a user without a kept password and a wrong
/// password all return `PASSWORD_MISMATCH`, after the same work, so that neither the code
/// nor the time taken tells which. User names are matched ignoring case. One check costs an
/// Argon2id verification (~30 ms of one core): call it from a worker thread.
///
/// Errors: `PASSWORD_MISMATCH`; `NOT_FOUND` (no such directory); `STORE_INVALID` (the
/// directory does not keep password hashes); `STORE_BACKEND`; the usual argument checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_password_verify(
    service: *const usersync_service,
    directory: *const c_char,
    directory_len: usize,
    user_name: *const c_char,
    user_name_len: usize,
    password: *const c_char,
    password_len: usize,
    user_id_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(user_id_out, "user_id_out")?;
        let directory = text(directory, directory_len, "directory")?;
        let user_name = text(user_name, user_name_len, "user_name")?;
        let password = text(password, password_len, "password")?;
        match usersync_core::password::verify(&*service.store, directory, user_name, password)
            .map_err(|e| store_error(&e))?
        {
            Some(user) => {
                write(user_id_out, c_string(user.id)?);
                Ok(())
            }
            None => Err(fail(
                usersync_result::PasswordMismatch,
                "the user name and password do not match",
            )),
        }
    })
}

/// Every directory as a JSON array of `{"name", "kind", "endpoint", "activeUsers",
/// "inactiveUsers", "retentionDays", "userNameScope", "keepPasswordHashes", "strict"}`, written to `json_out` (free it with `usersync_string_free`).
#[unsafe(no_mangle)]
pub extern "C" fn usersync_directory_list(
    service: *const usersync_service,
    json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(json_out, "json_out")?;
        let rows = directory_summaries(&*service.store).map_err(|e| store_error(&e))?;
        write(json_out, c_string(Value::Array(rows).to_string())?);
        Ok(())
    })
}

/// Issues a new token for the directory `name`, leaving the others valid so that clients can
/// switch without downtime; writes `{"id": 3, "token": "…"}` (the token shown this once) to
/// `json_out`. Revoke the old token with `usersync_directory_token_revoke` once clients use
/// the new one.
///
/// Errors: `NOT_FOUND`, `STORE_BACKEND`, and the usual argument checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_directory_token_rotate(
    service: *const usersync_service,
    name: *const c_char,
    name_len: usize,
    json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(json_out, "json_out")?;
        let d = find(service, text(name, name_len, "name")?)?;
        let (token, stored) = issue_token(&*service.store, &d).map_err(|e| store_error(&e))?;
        let json = json!({"id": stored.id, "token": token});
        write(json_out, c_string(json.to_string())?);
        Ok(())
    })
}

/// Revokes token `token_id` of the directory `name`: requests carrying it are refused (401)
/// from now on.
///
/// Errors: `NOT_FOUND` (no such directory or token), `STORE_BACKEND`, and the usual checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_directory_token_revoke(
    service: *const usersync_service,
    name: *const c_char,
    name_len: usize,
    token_id: i64,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        let d = find(service, text(name, name_len, "name")?)?;
        service
            .store
            .revoke_token(d.id, token_id)
            .map_err(|e| store_error(&e))
    })
}

/// The last `limit` sync runs of the directory `name`, newest first, as a JSON array of
/// `{"id", "started", "finished", "outcome", "report"}` (the report as
/// `usersync_sync_run` gives it), written to `json_out`; free it with
/// `usersync_string_free`.
///
/// Errors: `NOT_FOUND`, `INVALID_ARGUMENT` (a `limit` of 0), `STORE_BACKEND`, and the usual
/// argument checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_directory_runs(
    service: *const usersync_service,
    name: *const c_char,
    name_len: usize,
    limit: u64,
    json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(json_out, "json_out")?;
        let d = find(service, text(name, name_len, "name")?)?;
        let limit = usize::try_from(limit)
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| {
                fail(
                    usersync_result::InvalidArgument,
                    "`limit` must be at least 1",
                )
            })?;
        let runs = service
            .store
            .runs(d.id, limit)
            .map_err(|e| store_error(&e))?;
        let list: Vec<Value> = runs.iter().map(SyncRun::to_json).collect();
        write(json_out, c_string(Value::Array(list).to_string())?);
        Ok(())
    })
}

/// Deletes the users of `directory` (of every directory when `directory_len` is 0) inactive
/// for longer than its retention, and writes how many to `purged_out`. The platform calls
/// it on a timer (daily is enough), as `usersync serve` does hourly: without it, deactivated
/// users are kept.
///
/// Errors: `NOT_FOUND` (no such directory), `STORE_BACKEND`, and the usual argument checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_directory_purge(
    service: *const usersync_service,
    directory: *const c_char,
    directory_len: usize,
    purged_out: *mut u64,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(purged_out, "purged_out")?;
        let only = match directory_len {
            0 => None,
            _ => Some(text(directory, directory_len, "directory")?),
        };
        let purged =
            purge_expired(&*service.store, system_clock()(), only).map_err(|e| store_error(&e))?;
        write(purged_out, purged.iter().map(|(_, n)| n).sum());
        Ok(())
    })
}
