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

/// Checks the `Authorization` header for `directory`: 401 without a valid token, 403 for a
/// token of another directory.
pub(super) fn authorize(
    store: &dyn Store,
    directory: &Directory,
    authorization: Option<&str>,
) -> Result<(), ScimError> {
    let unauthorized = |detail: &str| ScimError::new(401, None, detail);
    let Some(header) = authorization else {
        return Err(unauthorized(
            "send the directory's token as `Authorization: Bearer <token>`",
        ));
    };
    let presented = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(unauthorized("only Bearer tokens are accepted")),
    };
    let presented = hash(presented);
    let matches = |tokens: &[StoredToken]| {
        tokens
            .iter()
            .fold(false, |hit, t| hit | bool::from(t.hash.ct_eq(&presented)))
    };
    if matches(&store.tokens(directory.id)?) {
        return Ok(());
    }
    for other in store.directories()? {
        if other.id != directory.id && matches(&store.tokens(other.id)?) {
            return Err(ScimError::new(
                403,
                None,
                "this token belongs to another directory",
            ));
        }
    }
    Err(unauthorized("the token is not valid for this directory"))
}
