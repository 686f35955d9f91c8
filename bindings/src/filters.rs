//! Filter validation: the same parsers the endpoint and the LDAP sync use, so the platform
//! never accepts what usersync would refuse.

use std::ffi::c_char;

use usersync_core::ldap::filter::LdapFilter;
use usersync_core::scim::filter::{Compatibility, Filter, ParseOptions};
use usersync_core::scim::schema::SchemaRegistry;

use crate::reads::{USERSYNC_KIND_GROUP, USERSYNC_KIND_USER};
use crate::{c_string, core_error, fail, guard, out, text, usersync_result, write};

/// The result code of a filter error, its message kept and its byte position written when
/// the caller asked for it.
fn filter_error(e: &usersync_core::Error, position_out: *mut usize) -> usersync_result {
    if let Some(p) = e.position()
        && !position_out.is_null()
    {
        write(position_out, p);
    }
    core_error(e)
}

/// `flags` of `usersync_scim_filter_check`: RFC 7644 only, without the tolerances for
/// identity providers (boolean strings such as `"True"`) that directories accept by default.
pub const USERSYNC_FILTER_STRICT: u32 = 1;

/// Checks a SCIM filter (`filter_len` bytes of UTF-8) and writes its canonical form to
/// `canonical_out` (free it with `usersync_string_free`). With `kind` `USERSYNC_KIND_USER`
/// or `USERSYNC_KIND_GROUP` the filter must also suit that resource type (operators and
/// values that its attributes' types allow: `active gt true` is refused); with 0 only the
/// syntax is checked. Attributes the schema does not know are allowed, as SCIM allows them.
/// `flags` may hold `USERSYNC_FILTER_STRICT`.
///
/// On `INVALID_FILTER`, and only then, the byte offset of the mistake is written to
/// `error_position_out` when it is not NULL; `usersync_last_error` has the message.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_scim_filter_check(
    filter: *const c_char,
    filter_len: usize,
    kind: u32,
    flags: u32,
    canonical_out: *mut *mut c_char,
    error_position_out: *mut usize,
) -> usersync_result {
    guard(|| {
        out(canonical_out, "canonical_out")?;
        let source = text(filter, filter_len, "filter")?;
        if flags & !USERSYNC_FILTER_STRICT != 0 {
            return Err(fail(
                usersync_result::InvalidArgument,
                format!("unknown flags {flags:#x}"),
            ));
        }
        let compat = if flags & USERSYNC_FILTER_STRICT != 0 {
            Compatibility::strict()
        } else {
            Compatibility::default()
        };
        let options = ParseOptions::default().with_compat(compat);
        let parsed = Filter::parse_with(source, &options)
            .map_err(|e| filter_error(&e, error_position_out))?;
        let registry = SchemaRegistry::core();
        let resource_type = match kind {
            0 => None,
            USERSYNC_KIND_USER => registry.resource_type("User"),
            USERSYNC_KIND_GROUP => registry.resource_type("Group"),
            other => {
                return Err(fail(
                    usersync_result::InvalidArgument,
                    format!("`kind` {other} is not 0, USERSYNC_KIND_USER or USERSYNC_KIND_GROUP"),
                ));
            }
        };
        if let Some(rt) = resource_type {
            parsed
                .compile_with(rt, compat)
                .map_err(|e| filter_error(&e, error_position_out))?;
        }
        write(canonical_out, c_string(parsed.to_string())?);
        Ok(())
    })
}

/// Checks an LDAP search filter (RFC 4515) and writes its canonical form to `canonical_out`
/// (free it with `usersync_string_free`). On `INVALID_LDAP_FILTER`, and only then, the byte
/// offset of the mistake is written to `error_position_out` when it is not NULL.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_ldap_filter_check(
    filter: *const c_char,
    filter_len: usize,
    canonical_out: *mut *mut c_char,
    error_position_out: *mut usize,
) -> usersync_result {
    guard(|| {
        out(canonical_out, "canonical_out")?;
        let source = text(filter, filter_len, "filter")?;
        let parsed = LdapFilter::parse(source).map_err(|e| filter_error(&e, error_position_out))?;
        write(canonical_out, c_string(parsed.to_string())?);
        Ok(())
    })
}
