//! LDAP search filters (RFC 4515): a parser with byte positions and messages that say what
//! was expected, a canonical printer, and escaping for values put into filters.
//!
//! The same parser validates filters in configuration files, in `usersync check-filter
//! --ldap` and in the browser (the WASM build), so that none of them accepts what another
//! rejects. Values are octet strings: `\xx` escapes may spell any byte (binary GUIDs), and
//! the printer writes them back escaped.
//!
//! ```
//! use usersync_core::ldap::filter::LdapFilter;
//! let f = LdapFilter::parse("(&(objectClass=person)(|(cn=Jane*)(mail=*@example.com)))")?;
//! assert_eq!(f.to_string(), "(&(objectClass=person)(|(cn=Jane*)(mail=*@example.com)))");
//! let err = LdapFilter::parse("(cn=a)(sn=b)").unwrap_err();
//! assert_eq!(err.position(), Some(6));
//! # Ok::<(), usersync_core::Error>(())
//! ```

use std::fmt;

use crate::Error;
use crate::scim::filter::{Expected, SyntaxError};

/// Filters longer than this are refused before parsing (a filter is typed or configured,
/// never generated this large).
pub const MAX_LENGTH: usize = 64 * 1024;
/// Deepest nesting of `&`, `|` and `!` accepted: deeper input is refused rather than risking
/// the stack.
pub const MAX_DEPTH: usize = 64;

/// A parsed LDAP filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapFilter {
    /// `(&…)`: every filter holds (an empty list is "true", RFC 4526).
    And(Vec<LdapFilter>),
    /// `(|…)`: some filter holds (an empty list is "false").
    Or(Vec<LdapFilter>),
    /// `(!…)`.
    Not(Box<LdapFilter>),
    /// `(attr=value)`, `(attr~=value)`, `(attr>=value)`, `(attr<=value)`.
    Compare {
        /// The attribute description (`cn`, `userCertificate;binary`, `2.5.4.3`).
        attribute: String,
        /// Which comparison.
        op: CompareOp,
        /// The assertion value, unescaped.
        value: Vec<u8>,
    },
    /// `(attr=*)`.
    Present {
        /// The attribute description.
        attribute: String,
    },
    /// `(attr=initial*any*…*final)`.
    Substring {
        /// The attribute description.
        attribute: String,
        /// The part before the first `*`, if not empty.
        initial: Option<Vec<u8>>,
        /// The parts between `*`s.
        any: Vec<Vec<u8>>,
        /// The part after the last `*`, if not empty.
        last: Option<Vec<u8>>,
    },
    /// `(attr:dn:rule:=value)` and its shorter forms.
    Extensible {
        /// The attribute description, if given.
        attribute: Option<String>,
        /// `:dn`: also match the attributes of the entry's DN.
        dn_attributes: bool,
        /// The matching rule (a name or an OID such as `1.2.840.113556.1.4.1941`).
        rule: Option<String>,
        /// The assertion value, unescaped.
        value: Vec<u8>,
    },
}

/// The comparison of a simple item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `=`
    Equal,
    /// `~=`
    Approx,
    /// `>=`
    GreaterOrEqual,
    /// `<=`
    LessOrEqual,
}

impl CompareOp {
    /// The operator as written.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::Approx => "~=",
            Self::GreaterOrEqual => ">=",
            Self::LessOrEqual => "<=",
        }
    }
}

impl LdapFilter {
    /// Parses an RFC 4515 filter; the whole text must be one parenthesised filter (spaces
    /// around it are allowed).
    ///
    /// # Errors
    /// [`Error::LdapFilter`] with the byte position of the problem and what was expected
    /// there.
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse(text).map_err(Error::LdapFilter)
    }

    /// The attribute descriptions the filter names, in order of appearance, without
    /// repeats (case-insensitively).
    pub fn attributes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.visit(&mut |a| {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
                out.push(a);
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        match self {
            Self::And(items) | Self::Or(items) => items.iter().for_each(|i| i.visit(f)),
            Self::Not(inner) => inner.visit(f),
            Self::Compare { attribute, .. }
            | Self::Present { attribute }
            | Self::Substring { attribute, .. } => f(attribute),
            Self::Extensible { attribute, .. } => {
                if let Some(a) = attribute {
                    f(a);
                }
            }
        }
    }
}

impl std::str::FromStr for LdapFilter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// Escapes `value` for use as an assertion value: `*`, `(`, `)`, `\`, NUL and every byte
/// outside printable ASCII become `\xx`, so that nothing in it acts as filter syntax.
///
/// ```
/// use usersync_core::ldap::filter::escape_value;
/// assert_eq!(escape_value(b"a*(b)\\"), r"a\2a\28b\29\5c");
/// ```
pub fn escape_value(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_graphic() && !matches!(b, b'*' | b'(' | b')' | b'\\') || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\{b:02x}"));
        }
    }
    out
}

/// Writes a value: UTF-8 text as is (with `*`, `(`, `)`, `\` and NUL escaped), anything
/// else byte by byte in `\xx` form.
fn write_value(f: &mut fmt::Formatter<'_>, value: &[u8]) -> fmt::Result {
    match std::str::from_utf8(value) {
        Ok(text) => {
            for c in text.chars() {
                match c {
                    '*' | '(' | ')' | '\\' | '\0' => write!(f, "\\{:02x}", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            Ok(())
        }
        // Binary (a GUID, a SID): every byte in hex reads better than stray letters.
        Err(_) => value.iter().try_for_each(|b| write!(f, "\\{b:02x}")),
    }
}

impl fmt::Display for LdapFilter {
    /// The canonical text: no spaces, escapes only where needed (lowercase hex), so that
    /// `parse(print(f)) == f`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::And(items) | Self::Or(items) => {
                f.write_str(if matches!(self, Self::And(_)) {
                    "(&"
                } else {
                    "(|"
                })?;
                for i in items {
                    write!(f, "{i}")?;
                }
                f.write_str(")")
            }
            Self::Not(inner) => write!(f, "(!{inner})"),
            Self::Compare {
                attribute,
                op,
                value,
            } => {
                write!(f, "({attribute}{}", op.as_str())?;
                write_value(f, value)?;
                f.write_str(")")
            }
            Self::Present { attribute } => write!(f, "({attribute}=*)"),
            Self::Substring {
                attribute,
                initial,
                any,
                last,
            } => {
                write!(f, "({attribute}=")?;
                if let Some(v) = initial {
                    write_value(f, v)?;
                }
                f.write_str("*")?;
                for v in any {
                    write_value(f, v)?;
                    f.write_str("*")?;
                }
                if let Some(v) = last {
                    write_value(f, v)?;
                }
                f.write_str(")")
            }
            Self::Extensible {
                attribute,
                dn_attributes,
                rule,
                value,
            } => {
                f.write_str("(")?;
                if let Some(a) = attribute {
                    f.write_str(a)?;
                }
                if *dn_attributes {
                    f.write_str(":dn")?;
                }
                if let Some(r) = rule {
                    write!(f, ":{r}")?;
                }
                f.write_str(":=")?;
                write_value(f, value)?;
                f.write_str(")")
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

fn parse(text: &str) -> Result<LdapFilter, SyntaxError> {
    if text.len() > MAX_LENGTH {
        return Err(SyntaxError::new(
            MAX_LENGTH,
            text.len(),
            format!("the filter is longer than {MAX_LENGTH} bytes"),
        ));
    }
    let mut p = Parser {
        text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.skip_spaces();
    if p.peek().is_none() {
        return Err(SyntaxError::new(0, 0, "the filter is empty").expecting(Expected::OPEN_PAREN));
    }
    if p.peek() != Some(b'(') {
        let start = p.i;
        // A bare item (`cn=jane`) is the most common slip: say how to write it.
        let hint = if text[start..].contains('=') {
            format!(
                "a filter starts with `(`: write `({})`",
                text[start..].trim_end()
            )
        } else {
            "a filter starts with `(`".to_owned()
        };
        return Err(SyntaxError::new(start, start + 1, hint).expecting(Expected::OPEN_PAREN));
    }
    let filter = p.filter()?;
    p.skip_spaces();
    if p.i < p.b.len() {
        return Err(p
            .error_here("the filter ends here: combine several filters with `(&…)` or `(|…)`")
            .expecting(Expected::END));
    }
    Ok(filter)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    /// An error covering the character at the current position.
    fn error_here(&self, message: impl Into<String>) -> SyntaxError {
        let end = self.text[self.i..]
            .chars()
            .next()
            .map_or(self.i, |c| self.i + c.len_utf8());
        SyntaxError::new(self.i, end, message)
    }

    /// What is at the current position, for messages.
    fn found(&self) -> String {
        match self.text[self.i..].chars().next() {
            None => "the end of the filter".to_owned(),
            Some(c) => format!("`{c}`"),
        }
    }

    fn expect(&mut self, c: u8, what: &str, expected: Expected) -> Result<(), SyntaxError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self
                .error_here(format!("expected {what}, found {}", self.found()))
                .expecting(expected))
        }
    }

    /// `( filtercomp )`
    fn filter(&mut self) -> Result<LdapFilter, SyntaxError> {
        let open = self.i;
        self.expect(b'(', "`(`", Expected::OPEN_PAREN)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError::new(
                open,
                open + 1,
                format!("filters nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        let f = match self.peek() {
            Some(b'&') => {
                self.i += 1;
                LdapFilter::And(self.list()?)
            }
            Some(b'|') => {
                self.i += 1;
                LdapFilter::Or(self.list()?)
            }
            Some(b'!') => {
                self.i += 1;
                if self.peek() != Some(b'(') {
                    return Err(self
                        .error_here(format!(
                            "expected `(` after `!`: `(!(…))` negates one filter, found {}",
                            self.found()
                        ))
                        .expecting(Expected::OPEN_PAREN));
                }
                LdapFilter::Not(Box::new(self.filter()?))
            }
            Some(b')') => {
                return Err(self
                    .error_here(
                        "expected an attribute or `&`, `|`, `!`, found `)`: a filter cannot be empty",
                    )
                    .expecting(Expected::ATTRIBUTE | Expected::AND | Expected::OR | Expected::NOT));
            }
            _ => self.item()?,
        };
        if self.peek() != Some(b')') {
            let message = match self.peek() {
                None => format!("expected `)` to close the `(` at byte {open}"),
                Some(_) => format!(
                    "expected `)` to close the `(` at byte {open}, found {}",
                    self.found()
                ),
            };
            return Err(self.error_here(message).expecting(Expected::CLOSE_PAREN));
        }
        self.i += 1;
        self.depth -= 1;
        Ok(f)
    }

    /// `1*filter` after `&` or `|` (an empty list is allowed, RFC 4526).
    fn list(&mut self) -> Result<Vec<LdapFilter>, SyntaxError> {
        let mut items = Vec::new();
        while self.peek() == Some(b'(') {
            items.push(self.filter()?);
        }
        if !matches!(self.peek(), Some(b')') | None) {
            return Err(self
                .error_here(format!(
                    "expected `(` to start a filter or `)` to end the list, found {}",
                    self.found()
                ))
                .expecting(Expected::OPEN_PAREN | Expected::CLOSE_PAREN));
        }
        Ok(items)
    }

    /// `simple / present / substring / extensible`
    fn item(&mut self) -> Result<LdapFilter, SyntaxError> {
        let start = self.i;
        let attribute = if self.peek() == Some(b':') {
            None
        } else {
            Some(self.attribute_description()?)
        };
        match self.peek() {
            Some(b':') => self.extensible(attribute, start),
            Some(op @ (b'~' | b'>' | b'<')) => {
                let Some(attribute) = attribute else {
                    return Err(self.error_here("expected an attribute"));
                };
                self.i += 1;
                if self.peek() != Some(b'=') {
                    return Err(self
                        .error_here(format!(
                            "expected `=` after `{}`: the operators are `=`, `~=`, `>=` and `<=`",
                            char::from(op)
                        ))
                        .expecting(Expected::OPERATOR));
                }
                self.i += 1;
                let op = match op {
                    b'~' => CompareOp::Approx,
                    b'>' => CompareOp::GreaterOrEqual,
                    _ => CompareOp::LessOrEqual,
                };
                let value = self.value(false)?;
                Ok(LdapFilter::Compare {
                    attribute,
                    op,
                    value,
                })
            }
            Some(b'=') => {
                let Some(attribute) = attribute else {
                    return Err(self.error_here("expected an attribute"));
                };
                self.i += 1;
                self.equality_or_substring(attribute)
            }
            _ => Err(self
                .error_here(format!(
                    "expected `=`, `~=`, `>=`, `<=` or `:` after the attribute `{}`, found {}",
                    &self.text[start..self.i],
                    self.found()
                ))
                .expecting(Expected::OPERATOR)),
        }
    }

    /// After `attr=`: a value, `*` (present) or a substring pattern.
    fn equality_or_substring(&mut self, attribute: String) -> Result<LdapFilter, SyntaxError> {
        let first = self.value(true)?;
        if self.peek() != Some(b'*') {
            return Ok(LdapFilter::Compare {
                attribute,
                op: CompareOp::Equal,
                value: first,
            });
        }
        // The parts between `*`s; each inner one must hold something.
        let mut parts = vec![first];
        while self.peek() == Some(b'*') {
            let star = self.i;
            self.i += 1;
            let part = self.value(true)?;
            if part.is_empty() && self.peek() == Some(b'*') {
                return Err(SyntaxError::new(
                    star,
                    star + 2,
                    "two `*` in a row: a substring filter has a value between its `*`s",
                ));
            }
            parts.push(part);
        }
        if parts.len() == 2 && parts.iter().all(Vec::is_empty) {
            return Ok(LdapFilter::Present { attribute });
        }
        let last = parts.pop().filter(|p| !p.is_empty());
        let mut rest = parts.into_iter();
        let initial = rest.next().filter(|p| !p.is_empty());
        Ok(LdapFilter::Substring {
            attribute,
            initial,
            any: rest.collect(),
            last,
        })
    }

    /// `[:dn][:rule]:=value` after an optional attribute.
    fn extensible(
        &mut self,
        attribute: Option<String>,
        start: usize,
    ) -> Result<LdapFilter, SyntaxError> {
        let mut dn_attributes = false;
        let mut rule = None;
        loop {
            self.expect(b':', "`:`", Expected::OPERATOR)?;
            if self.peek() == Some(b'=') {
                self.i += 1;
                break;
            }
            let word_start = self.i;
            let word = self.oid("a matching rule, `dn` or `=`", Expected::OPERATOR)?;
            if word.eq_ignore_ascii_case("dn") && !dn_attributes && rule.is_none() {
                dn_attributes = true;
            } else if rule.is_none() {
                rule = Some(word);
            } else {
                return Err(SyntaxError::new(
                    word_start,
                    self.i,
                    "expected `:=` after the matching rule",
                ));
            }
        }
        if attribute.is_none() && rule.is_none() {
            return Err(SyntaxError::new(
                start,
                self.i,
                "an extensible match without an attribute needs a matching rule: `(:rule:=value)`",
            ));
        }
        let value = self.value(false)?;
        Ok(LdapFilter::Extensible {
            attribute,
            dn_attributes,
            rule,
            value,
        })
    }

    /// An attribute description: a name (`cn`) or an OID (`2.5.4.3`), then `;options`.
    fn attribute_description(&mut self) -> Result<String, SyntaxError> {
        let start = self.i;
        self.oid("an attribute name", Expected::ATTRIBUTE)?;
        while self.peek() == Some(b';') {
            self.i += 1;
            let option_start = self.i;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-')
            {
                self.i += 1;
            }
            if self.i == option_start {
                return Err(self.error_here(format!(
                    "expected an attribute option after `;`, found {}",
                    self.found()
                )));
            }
        }
        Ok(self.text[start..self.i].to_owned())
    }

    /// A descriptor (`ALPHA *(ALPHA / DIGIT / "-")`) or a numeric OID (`1.2.840`).
    fn oid(&mut self, what: &str, expected: Expected) -> Result<String, SyntaxError> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-')
                {
                    self.i += 1;
                }
            }
            Some(c) if c.is_ascii_digit() => loop {
                let number = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                if self.i == number {
                    return Err(self.error_here(format!(
                        "expected a number in the OID, found {}",
                        self.found()
                    )));
                }
                if self.b[number] == b'0' && self.i - number > 1 {
                    return Err(SyntaxError::new(
                        number,
                        self.i,
                        "a number in an OID has no leading zero",
                    ));
                }
                if self.peek() != Some(b'.') {
                    break;
                }
                self.i += 1;
            },
            _ => {
                return Err(self
                    .error_here(format!("expected {what}, found {}", self.found()))
                    .expecting(expected));
            }
        }
        Ok(self.text[start..self.i].to_owned())
    }

    /// An assertion value up to `)` (and up to `*` when `stars` split it), unescaped.
    fn value(&mut self, stars: bool) -> Result<Vec<u8>, SyntaxError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b')' => break,
                b'*' if stars => break,
                b'*' => {
                    return Err(
                        self.error_here("`*` is not allowed in this value: write it as `\\2a`")
                    );
                }
                b'(' => {
                    return Err(self.error_here(
                        "`(` in a value must be escaped as `\\28` (and `)` as `\\29`)",
                    ));
                }
                b'\0' => return Err(self.error_here("a NUL in a value must be escaped as `\\00`")),
                b'\\' => {
                    let hex = self.b.get(self.i + 1..self.i + 3);
                    let byte = hex
                        .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    let Some(byte) = byte else {
                        let end = (self.i + 3).min(self.b.len());
                        let end = (end..=self.b.len())
                            .find(|&e| self.text.is_char_boundary(e))
                            .unwrap_or(self.b.len());
                        return Err(SyntaxError::new(
                            self.i,
                            end,
                            "`\\` starts an escape of two hex digits (`\\2a` for `*`, `\\5c` for `\\`)",
                        ));
                    };
                    out.push(byte);
                    self.i += 3;
                }
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        if self.peek().is_none() {
            return Err(self
                .error_here("expected `)` to end the value, found the end of the filter")
                .expecting(Expected::VALUE | Expected::CLOSE_PAREN));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
