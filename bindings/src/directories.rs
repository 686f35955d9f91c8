//! Directories and their tokens.

use std::ffi::c_char;

use serde_json::{Value, json};
use usersync_core::scim::service::issue_token;
use usersync_core::store::{Directory, DirectoryKind, NewDirectory, SyncRun, directory_summaries};

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

/// Creates the directory `name` of `kind` (`scim`, `ldap` or `local`) and writes, as JSON, its
/// name, kind, endpoint path and — for a `scim` directory — a new token, shown this once:
/// `{"name": "acme", "kind": "scim", "endpoint": "/scim/v2/acme", "token": "…"}`. Free the
/// string with `usersync_string_free`.
///
/// Errors: `UNIQUENESS` (the name is taken), `STORE_INVALID` (a name that cannot be a path
/// segment), `INVALID_ARGUMENT` (an unknown kind), and the usual argument checks.
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
        let kind_text = text(kind, kind_len, "kind")?;
        let kind = DirectoryKind::parse(kind_text).ok_or_else(|| {
            fail(
                usersync_result::InvalidArgument,
                format!("unknown kind `{kind_text}` (scim, ldap or local)"),
            )
        })?;
        let d = service
            .store
            .create_directory(NewDirectory::new(name, kind))
            .map_err(|e| store_error(&e))?;
        let token = if kind == DirectoryKind::Scim {
            Some(
                issue_token(&*service.store, &d)
                    .map_err(|e| store_error(&e))?
                    .0,
            )
        } else {
            None
        };
        let json = json!({
            "name": d.name,
            "kind": kind.as_str(),
            "endpoint": format!("/scim/v2/{}", d.name),
            "token": token,
        });
        write(json_out, c_string(json.to_string())?);
        Ok(())
    })
}

/// Every directory as a JSON array of `{"name", "kind", "endpoint", "activeUsers",
/// "inactiveUsers"}`, written to `json_out` (free it with `usersync_string_free`).
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
