//! Passwords that identity providers send (Okta's password sync, a SCIM `password` on create
//! or PATCH). A directory keeps them only when configured to
//! ([`Directory::keep_password_hashes`](crate::store::Directory::keep_password_hashes)), and
//! then only as salted Argon2id hashes with OWASP's parameters (19 MiB, 2 passes), so that the
//! platform can check a sign-in with [`verify`] without anyone being able to read a password
//! back.
//!
//! ```
//! use usersync_core::password;
//!
//! let hash = password::hash("correct horse battery staple")?;
//! assert!(hash.0.starts_with("$argon2id$"));
//! assert!(password::matches(&hash, "correct horse battery staple"));
//! assert!(!password::matches(&hash, "Tr0ub4dor&3"));
//! # Ok::<(), usersync_core::store::StoreError>(())
//! ```

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::store::{Kind, PasswordHash, Resource, Store, StoreError};

/// The longest password accepted, in bytes: far beyond any passphrase, short of making a
/// request a hashing workload.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password in clear text on its way to its hash; its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Hashes `password` with Argon2id and a fresh random salt.
///
/// # Errors
/// [`StoreError::Invalid`] for an empty password or one longer than [`MAX_PASSWORD_BYTES`];
/// [`StoreError::Backend`] when the system has no randomness to give.
pub fn hash(password: &str) -> Result<PasswordHash, StoreError> {
    if password.is_empty() {
        return Err(StoreError::Invalid("password: may not be empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(StoreError::Invalid(format!(
            "password: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| PasswordHash(h.to_string()))
        .map_err(|e| StoreError::Backend(format!("password hashing failed: {e}")))
}

/// Whether `password` is the one `hash` was made from. A hash that is not a valid PHC
/// string matches nothing.
pub fn matches(hash: &PasswordHash, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash.0.as_str())
        .is_ok()
}

/// Checks a sign-in against directory `directory`: the active user whose `userName` is
/// `user_name` (ignoring case) and whose kept password is `password`, or `None`.
///
/// An unknown user, an inactive one, one without a kept password and a wrong password all
/// answer `None` after the same work (one Argon2 verification), so that neither the answer
/// nor its timing tells which.
///
/// # Errors
/// [`StoreError::NotFound`] for an unknown directory; [`StoreError::Invalid`] for one that
/// does not keep password hashes (a configuration mistake, not a failed sign-in).
pub fn verify(
    store: &dyn Store,
    directory: &str,
    user_name: &str,
    password: &str,
) -> Result<Option<Resource>, StoreError> {
    let d = store
        .directory(directory)?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("directory `{directory}`"),
        })?;
    if !d.keep_password_hashes {
        return Err(StoreError::Invalid(format!(
            "directory `{directory}` does not keep password hashes"
        )));
    }
    let user = store.get_by_name(d.id, Kind::User, user_name)?;
    let kept = match &user {
        Some(u) => store.password_hash(d.id, &u.id)?,
        None => None,
    };
    let (hash, eligible) = match (&user, kept) {
        (Some(u), Some(h)) => (h, u.active),
        _ => (PasswordHash(DECOY.into()), false),
    };
    let matched = matches(&hash, password) && eligible;
    Ok(if matched { user } else { None })
}

/// A hash of a random password (made once by [`hash`], with its parameters), checked when a
/// sign-in has no real hash to check, so that it costs what a real check costs. A constant:
/// made on first use, it cost a one-shot process a second hashing for an unknown user only.
/// Knowing its password would not help: a decoy never lets anyone in.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$W7fRACcFz+j8yf5lyyc9hQ$N1p+ij/yKWv1XLQbqvIuyPMFs9O7ZyUZh8ddGcFz9xM";

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoy costs what a real check costs: it has the parameters `hash` uses now.
    #[test]
    fn the_decoy_is_hashed_as_passwords_are() {
        let parameters = |h: &str| h.rsplitn(3, '$').nth(2).map(str::to_owned);
        let real = hash("any password").unwrap();
        assert_eq!(parameters(DECOY), parameters(&real.0));
        assert!(parameters(DECOY).is_some_and(|p| p.contains("m=19456,t=2")));
    }
    use crate::store::memory::MemoryStore;
    use crate::store::{
        Change, DirectoryKind, NewDirectory, NewResource, PasswordChange, Replacement, system_clock,
    };

    fn user(directory: i64, id: &str, name: &str, password: Option<&str>) -> NewResource {
        NewResource {
            directory,
            kind: Kind::User,
            id: id.into(),
            external_id: None,
            name: name.into(),
            active: true,
            attributes: serde_json::json!({"userName": name}),
            members: Vec::new(),
            password: password.map(|p| hash(p).unwrap()),
        }
    }

    #[test]
    fn hashes_are_salted_argon2id_and_bad_input_is_refused() {
        let a = hash("s3cret").unwrap();
        let b = hash("s3cret").unwrap();
        assert_ne!(a, b, "a fresh salt each time");
        assert!(
            a.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            a.0
        );
        assert!(matches(&a, "s3cret") && matches(&b, "s3cret"));
        assert!(!matches(&a, "s3cret "));
        assert!(!matches(&PasswordHash("not a hash".into()), "s3cret"));
        assert!(matches!(hash(""), Err(StoreError::Invalid(_))));
        assert!(hash(&"x".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert!(matches!(
            hash(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(format!("{:?}", Password("s3cret".into())), "Password(..)");
        assert!(!format!("{a:?}").contains("argon2"));
    }

    #[test]
    fn a_sign_in_succeeds_only_for_the_active_user_with_that_password() {
        let store = MemoryStore::new(system_clock());
        let d = store
            .create_directory(NewDirectory {
                keep_password_hashes: true,
                ..NewDirectory::new("okta", DirectoryKind::Scim)
            })
            .unwrap();
        store
            .create(user(d.id, "u1", "alice", Some("pw-alice")))
            .unwrap();
        store.create(user(d.id, "u2", "bob", None)).unwrap();
        let found = verify(&store, "okta", "ALICE", "pw-alice").unwrap();
        assert_eq!(
            found.map(|u| u.id).as_deref(),
            Some("u1"),
            "userName ignores case"
        );
        assert_eq!(verify(&store, "okta", "alice", "pw-bob").unwrap(), None);
        assert_eq!(
            verify(&store, "okta", "bob", "").unwrap(),
            None,
            "no password kept"
        );
        assert_eq!(verify(&store, "okta", "carol", "pw-alice").unwrap(), None);

        let alice = store.get(d.id, Kind::User, "u1").unwrap().unwrap();
        let deactivate = Change {
            replacement: Some(Replacement {
                external_id: None,
                name: alice.name.clone(),
                active: false,
                attributes: alice.attributes.clone(),
                members: None,
            }),
            ..Change::default()
        };
        store
            .update(d.id, Kind::User, "u1", None, deactivate)
            .unwrap();
        assert_eq!(
            verify(&store, "okta", "alice", "pw-alice").unwrap(),
            None,
            "an inactive user cannot sign in"
        );
        let clear = Change {
            password: Some(PasswordChange::Clear),
            ..Change::default()
        };
        store.update(d.id, Kind::User, "u1", None, clear).unwrap();
        assert_eq!(store.password_hash(d.id, "u1").unwrap(), None);

        assert!(matches!(
            verify(&store, "nowhere", "alice", "pw-alice"),
            Err(StoreError::NotFound { .. })
        ));
        store
            .create_directory(NewDirectory::new("entra", DirectoryKind::Scim))
            .unwrap();
        assert!(matches!(
            verify(&store, "entra", "alice", "pw-alice"),
            Err(StoreError::Invalid(_))
        ));
    }
}
