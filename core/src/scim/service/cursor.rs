//! Cursor paging (RFC 9865): opaque cursors that a client cannot forge or reuse for another
//! query. A cursor holds where the last page ended — its last `id`, or with `sortBy` that
//! resource's sort key and `id`, so pages stay stable while resources come and go — the
//! query it belongs to and when it was issued, sealed with an HMAC under a key of this
//! service.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ScimError;

/// How long a cursor stays valid.
pub(super) const CURSOR_TIMEOUT_SECONDS: u64 = 3600;

/// The secret cursors are sealed with; new for each service, so a restart expires them.
#[derive(Clone)]
pub(super) struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(…)")
    }
}

impl CursorKey {
    pub(super) fn random() -> Self {
        let mut key = [0u8; 32];
        // Without randomness the key stays zero: cursors still work, only forgeable.
        let _ = getrandom::fill(&mut key);
        Self(key)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        }
    }

    /// A cursor for the page after `position` (the last `id` served, or a place in a sort
    /// order) of the query fingerprinted `query`.
    pub(super) fn seal(&self, query: &str, position: &Value, now: u64) -> String {
        let payload = json!({"q": fingerprint(query), "a": position, "t": now}).to_string();
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!(
            "{}.{}",
            hex(payload.as_bytes()),
            hex(&mac.finalize().into_bytes())
        )
    }

    /// The position a cursor carries, after checking its seal, its query and its age.
    pub(super) fn open(&self, cursor: &str, query: &str, now: u64) -> Result<Value, ScimError> {
        let invalid = || {
            ScimError::bad_request(
                "invalidCursor",
                "the cursor is not one this service issued for this query",
            )
        };
        let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let (payload, tag) = (
            unhex(payload).ok_or_else(invalid)?,
            unhex(tag).ok_or_else(invalid)?,
        );
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| invalid())?;
        let v: Value = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if v["q"].as_str() != Some(fingerprint(query).as_str()) {
            return Err(invalid());
        }
        let issued = v["t"].as_u64().ok_or_else(invalid)?;
        if now.saturating_sub(issued) > CURSOR_TIMEOUT_SECONDS {
            return Err(ScimError::bad_request(
                "expiredCursor",
                "the cursor has expired; start again without one",
            ));
        }
        match v.get("a") {
            Some(a) if !a.is_null() => Ok(a.clone()),
            _ => Err(invalid()),
        }
    }
}

fn fingerprint(query: &str) -> String {
    hex(&Sha256::digest(query.as_bytes())[..12])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
