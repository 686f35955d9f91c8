//! Directory tokens: 256 random bits, shown once, kept only as a SHA-256 hash, compared in
//! constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ScimError;
use crate::store::{Directory, DirectoryKind, NewDirectory, Store, StoreError, StoredToken};

/// Prefix of every token, so that secret scanners and people can tell what it is.
const PREFIX: &str = "usersync_";

/// Issues a new token for `directory` and returns it; only its hash is stored, so this is
/// the one time it can be shown.
///
/// # Errors
/// [`StoreError::NotFound`] for an unknown directory; [`StoreError::Backend`] when the
/// system has no randomness to give.
pub fn issue_token(
    store: &dyn Store,
    directory: &Directory,
) -> Result<(String, StoredToken), StoreError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| StoreError::Backend(format!("no randomness for a token: {e}")))?;
    let token = format!("{PREFIX}{}", hex(&secret));
    let stored = store.add_token(directory.id, hash(&token))?;
    Ok((token, stored))
}

/// Creates a directory and, for a SCIM one, its first token: what every surface answers on
/// creation, `{"name", "kind", "endpoint", "token"}` (the token `null` for other kinds,
/// otherwise shown this once).
///
/// # Errors
/// As [`Store::create_directory`] and [`issue_token`].
pub fn create_directory(
    store: &dyn Store,
    new: NewDirectory,
) -> Result<serde_json::Value, StoreError> {
    let d = store.create_directory(new)?;
    let token = if d.kind == DirectoryKind::Scim {
        Some(issue_token(store, &d)?.0)
    } else {
        None
    };
    Ok(serde_json::json!({
        "name": d.name,
        "kind": d.kind.as_str(),
        "endpoint": format!("/scim/v2/{}", d.name),
        "token": token,
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Checks the `Authorization` header for `directory`: 401 without a token valid for it.
/// A token of another directory is refused the same way: telling it apart read every
/// directory's tokens for each refused request, and told a prober which tokens are live.
pub(super) fn authorize(
    store: &dyn Store,
    directory: &Directory,
    authorization: Option<&str>,
) -> Result<(), ScimError> {
    let presented = presented(authorization)?;
    let valid = store
        .tokens(directory.id)?
        .iter()
        .fold(false, |hit, t| hit | bool::from(t.hash.ct_eq(&presented)));
    if valid { Ok(()) } else { Err(not_valid()) }
}

/// The hash of the Bearer token in the `Authorization` header, or why there is none.
fn presented(authorization: Option<&str>) -> Result<[u8; 32], ScimError> {
    let unauthorized = |detail: &str| ScimError::new(401, None, detail);
    let Some(header) = authorization else {
        return Err(unauthorized(
            "send the directory's token as `Authorization: Bearer <token>`",
        ));
    };
    match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(hash(token.trim())),
        _ => Err(unauthorized("only Bearer tokens are accepted")),
    }
}

/// The 401 of a request to a directory that does not exist: what [`authorize`] answers for
/// one whose token is not valid, so that names cannot be probed.
pub(super) fn refused(authorization: Option<&str>) -> ScimError {
    presented(authorization).err().unwrap_or_else(not_valid)
}

/// The 401 of a Bearer token not valid for the request's directory (or of a directory that
/// does not exist).
fn not_valid() -> ScimError {
    ScimError::new(
        401,
        None,
        "the token is not valid for this directory (or there is no such directory)",
    )
}
