//! libusersync: the C ABI of usersync. `include/usersync.h` is generated from this crate by
//! cbindgen; the doc comments here are the C user's manual.
//!
//! Conventions (after rustls-ffi):
//! - Every name starts with `usersync_`. Handles are opaque; each has a `_free`, and
//!   `_free(NULL)` does nothing.
//! - Fallible functions return a `usersync_result`: 0 is `USERSYNC_RESULT_OK`, other codes come
//!   in numbered blocks (general 1–999, filters 1000–, store 2000–, sync 3000–) and are never
//!   renumbered. Outputs go through the `_out` parameters, written only on success (the one
//!   exception, a filter error's byte position, is documented where it applies).
//! - Strings in are UTF-8 given as pointer and length (no NUL needed); invalid UTF-8 is
//!   refused with `USERSYNC_RESULT_INVALID_UTF8`. Strings out are NUL-terminated, owned by the
//!   caller, and released with `usersync_string_free`.
//! - Every pointer is checked (`USERSYNC_RESULT_NULL_PARAMETER`), and every function runs
//!   behind a panic boundary (`USERSYNC_RESULT_PANIC`): a bug in one call never takes the
//!   calling process down.
//! - After a failure, `usersync_last_error` copies the calling thread's detailed message.
#![allow(unsafe_code)]
// the C boundary: raw pointers in, owned allocations out
// C callers cannot see Rust's `unsafe`: every pointer is checked before use instead.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
// The C names are the contract (`usersync_service`, `USERSYNC_RESULT_OK`).
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

mod directories;
mod filters;
mod reads;
mod service;
mod sync;

pub use directories::*;
pub use filters::*;
pub use reads::*;
pub use service::*;
pub use sync::*;

/// What a call did: `USERSYNC_RESULT_OK` (0), or why it failed. Codes are stable.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum usersync_result {
    /// Success.
    Ok = 0,
    /// A pointer argument was NULL.
    NullParameter = 1,
    /// A string argument is not UTF-8.
    InvalidUtf8 = 2,
    /// usersync failed internally (a bug); the call changed nothing it could not undo and the
    /// process may go on.
    Panic = 3,
    /// An argument is out of its range or malformed (see `usersync_last_error`).
    InvalidArgument = 4,
    /// A JSON argument does not parse.
    InvalidJson = 5,
    /// A SCIM filter that does not parse, or compares an attribute in a way its type forbids.
    InvalidFilter = 1000,
    /// A SCIM PATCH path that does not parse.
    InvalidPath = 1001,
    /// A schema definition that is malformed.
    InvalidSchema = 1002,
    /// An LDAP search filter (RFC 4515) that does not parse.
    InvalidLdapFilter = 1003,
    /// The directory, user or group does not exist.
    NotFound = 2000,
    /// A unique value (userName, displayName, directory name) is taken.
    Uniqueness = 2001,
    /// The resource changed since the version given.
    VersionMismatch = 2002,
    /// A value the store does not accept.
    StoreInvalid = 2003,
    /// The database failed (I/O, corruption); nothing was changed.
    StoreBackend = 2004,
    /// The user name and password match no active user with a kept password (which of these
    /// is never told).
    PasswordMismatch = 2005,
    /// The sync configuration is invalid (the message names the key).
    SyncConfig = 3000,
    /// The LDAP server could not be reached or refused the bind.
    SyncSource = 3001,
    /// The plan crosses a deletion threshold: apply it with the override if intended.
    SyncBlocked = 3002,
    /// A userName another directory owns, under policy `fail`.
    SyncConflict = 3003,
    /// The target (the store or a remote endpoint) failed; what was applied stays.
    SyncTarget = 3004,
    /// Applied, but some changes failed (listed in the report); the next run retries them.
    SyncPartial = 3005,
    /// Another sync of the directory is running (in this or another process or node):
    /// nothing was applied; try again later.
    SyncBusy = 3006,
    /// The sync was cancelled (`usersync_sync_cancel`) before its next batch of writes: what
    /// was applied stays (the report's `partial_report`), and the next run converges.
    SyncCancelled = 3007,
}

impl usersync_result {
    /// Every code, for the description table and the tests.
    ///
    /// cbindgen:ignore
    pub const ALL: [Self; 24] = [
        Self::Ok,
        Self::NullParameter,
        Self::InvalidUtf8,
        Self::Panic,
        Self::InvalidArgument,
        Self::InvalidJson,
        Self::InvalidFilter,
        Self::InvalidPath,
        Self::InvalidSchema,
        Self::InvalidLdapFilter,
        Self::NotFound,
        Self::Uniqueness,
        Self::VersionMismatch,
        Self::StoreInvalid,
        Self::StoreBackend,
        Self::PasswordMismatch,
        Self::SyncConfig,
        Self::SyncSource,
        Self::SyncBlocked,
        Self::SyncConflict,
        Self::SyncTarget,
        Self::SyncPartial,
        Self::SyncBusy,
        Self::SyncCancelled,
    ];

    fn description(self) -> &'static std::ffi::CStr {
        match self {
            Self::Ok => c"ok",
            Self::NullParameter => c"a pointer argument was NULL",
            Self::InvalidUtf8 => c"a string argument is not UTF-8",
            Self::Panic => c"usersync failed internally (a bug); the process may go on",
            Self::InvalidArgument => c"an argument is out of range or malformed",
            Self::InvalidJson => c"a JSON argument does not parse",
            Self::InvalidFilter => c"invalid SCIM filter",
            Self::InvalidPath => c"invalid SCIM path",
            Self::InvalidSchema => c"invalid schema",
            Self::InvalidLdapFilter => c"invalid LDAP filter",
            Self::NotFound => c"not found",
            Self::Uniqueness => c"a unique value is already taken",
            Self::VersionMismatch => c"the resource changed since the version given",
            Self::StoreInvalid => c"a value the store does not accept",
            Self::StoreBackend => c"the database failed; nothing was changed",
            Self::PasswordMismatch => c"the user name and password do not match",
            Self::SyncConfig => c"invalid sync configuration",
            Self::SyncSource => c"the LDAP server could not be reached or refused the bind",
            Self::SyncBlocked => c"the plan crosses a deletion threshold",
            Self::SyncConflict => c"a userName another directory owns (policy fail)",
            Self::SyncTarget => c"the sync target failed",
            Self::SyncPartial => c"applied, but some changes failed",
            Self::SyncBusy => c"another sync of the directory is running",
            Self::SyncCancelled => c"the sync was cancelled; what was applied stays",
        }
    }
}

/// A static, NUL-terminated description of `result`; never NULL ("unknown result code" for
/// a number that is no code). Do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_result_description(result: u32) -> *const c_char {
    let found = usersync_result::ALL.iter().find(|r| **r as u32 == result);
    match found {
        Some(r) => r.description().as_ptr(),
        None => c"unknown result code".as_ptr(),
    }
}

/// The ABI this header describes: the number in the library's SONAME
/// (`libusersync.so.<USERSYNC_ABI_VERSION>`), raised whenever a function's signature or a
/// struct's layout changes incompatibly.
pub const USERSYNC_ABI_VERSION: u32 = 0;

/// The ABI of the library loaded: a program can check at start that it is the header's
/// `USERSYNC_ABI_VERSION` (the SONAME already keeps other ABIs from being loaded).
#[unsafe(no_mangle)]
pub extern "C" fn usersync_abi_version() -> u32 {
    USERSYNC_ABI_VERSION
}

/// The library's version, `MAJOR.MINOR.PATCH`: static, never NULL, do not free it. The
/// header's `USERSYNC_VERSION_*` macros give the version compiled against.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Keeps `message` as the calling thread's last error (dropped on a thread whose
/// thread-locals are already gone: a call from a TLS destructor must not panic out).
fn set_error(message: impl Into<String>) {
    let message = message.into();
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = message);
}

/// Copies the calling thread's last error message (of the last call that failed on this
/// thread; empty when none did) into `buf`, truncated to `buf_len - 1` bytes and always
/// NUL-terminated when `buf_len > 0`. `len_out` receives the message's full length in bytes,
/// so a caller can tell it was cut and call again with a larger buffer.
///
/// Thread-safe: each thread has its own message. `buf` may be NULL only when `buf_len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_last_error(
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> usersync_result {
    guard(|| {
        if len_out.is_null() || (buf.is_null() && buf_len > 0) {
            return Err(usersync_result::NullParameter);
        }
        let copied = LAST_ERROR.try_with(|e| {
            let message = e.borrow();
            let bytes = message.as_bytes();
            if buf_len > 0 {
                // Cut on a character's start: what the caller gets stays UTF-8.
                let mut n = bytes.len().min(buf_len - 1);
                while !message.is_char_boundary(n) {
                    n -= 1;
                }
                // SAFETY: `buf` is non-NULL and the caller promises `buf_len` writable bytes;
                // at most `buf_len` are written.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            // SAFETY: checked non-NULL above.
            unsafe { *len_out = bytes.len() };
        });
        if copied.is_err() {
            // SAFETY: checked non-NULL above; the thread's message is gone: none.
            unsafe { *len_out = 0 };
            if buf_len > 0 {
                // SAFETY: `buf` is non-NULL with at least one writable byte.
                unsafe { *buf = 0 };
            }
        }
        Ok(())
    })
}

/// Frees a string usersync returned through an `_out` parameter. NULL does nothing.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_string_free(s: *mut c_char) {
    let _ = catch_unwind(|| {
        if !s.is_null() {
            // SAFETY: usersync made `s` with `CString::into_raw` (the contract of every string
            // it hands out), and the caller gives it back once.
            drop(unsafe { CString::from_raw(s) });
        }
    });
}

/// Frees a handle made with `Box::into_raw`, behind the panic boundary; NULL does nothing.
fn free_box<T>(ptr: *mut T) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !ptr.is_null() {
            // SAFETY: every handle usersync hands out is made with `Box::into_raw`, and the
            // caller gives it back once.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }));
}

/// Runs `f` behind the panic boundary: its error becomes the result (its message already
/// kept by `set_error`), and a panic becomes `Panic` with the panic's message.
fn guard(f: impl FnOnce() -> Result<(), usersync_result>) -> usersync_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => usersync_result::Ok,
        Ok(Err(code)) => code,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            set_error(format!("usersync failed internally: {what}"));
            usersync_result::Panic
        }
    }
}

/// A failure with its message kept for `usersync_last_error`.
fn fail(code: usersync_result, message: impl Into<String>) -> usersync_result {
    set_error(message);
    code
}

/// The UTF-8 text of a pointer and length argument named `name`.
fn text<'a>(ptr: *const c_char, len: usize, name: &str) -> Result<&'a str, usersync_result> {
    if ptr.is_null() {
        if len == 0 {
            return Ok("");
        }
        return Err(fail(
            usersync_result::NullParameter,
            format!("`{name}` is NULL"),
        ));
    }
    check_length(len, 1, name)?;
    // SAFETY: `ptr` is non-NULL and the caller promises `len` readable bytes that stay valid
    // and unchanged for the call; `len` is within what a slice may span.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| {
        fail(
            usersync_result::InvalidUtf8,
            format!("`{name}` is not UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// Refuses a length of `len` items of `size` bytes past what a slice may span (`isize::MAX`
/// bytes): `(size_t)-1`, SQLite's "up to the NUL", would otherwise be undefined behaviour.
fn check_length(len: usize, size: usize, name: &str) -> Result<(), usersync_result> {
    match len.checked_mul(size) {
        Some(bytes) if isize::try_from(bytes).is_ok() => Ok(()),
        _ => Err(fail(
            usersync_result::InvalidArgument,
            format!(
                "the length of `{name}` is {len}: more than any buffer holds (lengths are counts of bytes, never -1)"
            ),
        )),
    }
}

/// Checks that an out-parameter named `name` is not NULL.
fn out<T>(ptr: *mut T, name: &str) -> Result<(), usersync_result> {
    if ptr.is_null() {
        Err(fail(
            usersync_result::NullParameter,
            format!("`{name}` is NULL"),
        ))
    } else {
        Ok(())
    }
}

/// Writes `value` through a checked, non-NULL out-parameter.
fn write<T>(ptr: *mut T, value: T) {
    // SAFETY: every caller checked `ptr` with `out` first; the caller of the C function
    // promises it points to writable memory for a `T`.
    unsafe { ptr.write(value) };
}

/// Hands `s` to C as a NUL-terminated string the caller frees with `usersync_string_free`.
fn c_string(s: String) -> Result<*mut c_char, usersync_result> {
    CString::new(s).map(CString::into_raw).map_err(|e| {
        fail(
            usersync_result::InvalidArgument,
            format!("the text holds a NUL byte at {}", e.nul_position()),
        )
    })
}

/// The result code of a store error, its message kept.
fn store_error(e: &usersync_core::store::StoreError) -> usersync_result {
    use usersync_core::store::StoreError;
    let code = match e {
        StoreError::NotFound { .. } => usersync_result::NotFound,
        StoreError::Uniqueness { .. } => usersync_result::Uniqueness,
        StoreError::VersionMismatch { .. } => usersync_result::VersionMismatch,
        StoreError::Invalid(_) => usersync_result::StoreInvalid,
        _ => usersync_result::StoreBackend,
    };
    fail(code, e.to_string())
}

/// The result code of a core error (filters, paths, schemas), its message kept.
fn core_error(e: &usersync_core::Error) -> usersync_result {
    use usersync_core::ErrorKind;
    let code = match e.kind() {
        ErrorKind::InvalidFilter => usersync_result::InvalidFilter,
        ErrorKind::InvalidPath => usersync_result::InvalidPath,
        ErrorKind::InvalidLdapFilter => usersync_result::InvalidLdapFilter,
        _ => usersync_result::InvalidSchema,
    };
    fail(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_description() {
        let mut seen = std::collections::HashSet::new();
        for code in usersync_result::ALL {
            let text = code.description().to_str().unwrap_or_default();
            assert!(!text.is_empty());
            assert!(seen.insert(text), "{code:?} shares its description");
        }
        // SAFETY: the function returns a static NUL-terminated string.
        let unknown = unsafe { std::ffi::CStr::from_ptr(usersync_result_description(999_999)) };
        assert_eq!(unknown.to_str(), Ok("unknown result code"));
    }

    /// A bug inside a call (a panic) becomes `PANIC` with its message; the caller goes on.
    #[test]
    fn a_panic_becomes_a_result() {
        let result = guard(|| panic!("an invariant broke"));
        assert_eq!(result, usersync_result::Panic);
        let mut buf = [0 as c_char; 128];
        let mut len = 0;
        assert_eq!(
            usersync_last_error(buf.as_mut_ptr(), buf.len(), &raw mut len),
            usersync_result::Ok
        );
        // SAFETY: usersync_last_error NUL-terminates within the buffer.
        let message = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(
            message.to_str(),
            Ok("usersync failed internally: an invariant broke")
        );
        // The next call works as ever.
        assert_eq!(guard(|| Ok(())), usersync_result::Ok);
    }
}
