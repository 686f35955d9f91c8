//! SCIM error responses (RFC 7644 §3.12): every failure becomes one of these, with the
//! status and `scimType` a client can act on.

use serde_json::json;

use super::{SCIM_JSON, ScimResponse};
use crate::store::StoreError;
use crate::{Error, ErrorKind};

/// A failed request: HTTP status, optional `scimType`, and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// The RFC 7644 `scimType`, for 400 and 409 errors.
    pub scim_type: Option<&'static str>,
    /// What went wrong, for a person.
    pub detail: String,
    /// Why the server failed (a 500), for the operator's log; never sent to the client,
    /// since a backend's text may name files or hosts.
    pub cause: Option<String>,
}

impl ScimError {
    pub(crate) fn new(
        status: u16,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            cause: None,
        }
    }

    pub(crate) fn bad_request(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// The response carrying this error.
    pub fn to_response(&self) -> ScimResponse {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut headers = vec![("Content-Type".to_owned(), SCIM_JSON.to_owned())];
        if self.status == 401 {
            headers.push((
                "WWW-Authenticate".to_owned(),
                "Bearer realm=\"usersync\"".to_owned(),
            ));
        }
        ScimResponse {
            status: self.status,
            headers,
            body: body.to_string().into_bytes(),
            cause: self.cause.clone(),
        }
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => Self::not_found(e.to_string()),
            StoreError::Uniqueness { .. } => Self::new(409, Some("uniqueness"), e.to_string()),
            StoreError::VersionMismatch { .. } => {
                Self::new(412, None, format!("the resource has changed: {e}"))
            }
            StoreError::Invalid(_) => Self::bad_request("invalidValue", e.to_string()),
            // Backend failures are the server's fault; their text may name files, so the
            // client gets a generic detail and the operator's log the cause.
            _ => Self {
                cause: Some(e.to_string()),
                ..Self::new(500, None, "the store failed; the request changed nothing")
            },
        }
    }
}

impl From<Error> for ScimError {
    fn from(e: Error) -> Self {
        let scim_type = match e.kind() {
            ErrorKind::InvalidFilter => "invalidFilter",
            ErrorKind::InvalidPath => "invalidPath",
            _ => "invalidValue",
        };
        Self::bad_request(scim_type, e.to_string())
    }
}
