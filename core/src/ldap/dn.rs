//! DN keys: the text two DNs compare by. Servers write one DN in several ways (`\,` or
//! `\2C`, `CN=` or `cn=`, spaces after commas), and a group's `member` values need not be
//! written as the entries' own DNs. Always built, without I/O, so that it is fuzzed alone.

use std::borrow::Cow;

/// A DN compared loosely, as RFC 4514 DNs match: escapes decoded (`\,`, `\2C` and `\2c` are
/// one comma; `\C3\A9` is `é`), lower case, no spaces around separators, the parts of a
/// multi-valued RDN (`cn=a+sn=b`) in one order. Borrowed when `dn` is already its own key,
/// as a directory's DNs usually are: a sync keys every DN it reads, and every member of
/// every group.
pub fn dn_key(dn: &str) -> Cow<'_, str> {
    if is_dn_key(dn.as_bytes()) {
        Cow::Borrowed(dn)
    } else if dn.bytes().any(escaped_in_key) {
        Cow::Owned(rewrite_dn_key(dn))
    } else {
        // Active Directory's `CN=…,OU=…,DC=…`: case and spaces only, keyed in one pass.
        Cow::Owned(plain_dn_key(dn))
    }
}

/// Whether the entry keyed `key` is the one keyed `base` or below it (both keys from
/// [`dn_key`]): `base` ends `key` after a comma that is not escaped.
pub fn is_within(key: &str, base: &str) -> bool {
    if key == base {
        return true;
    }
    let Some(head) = key.strip_suffix(base).and_then(|h| h.strip_suffix(',')) else {
        return false;
    };
    // In a key every escape is `\` and one character: the comma separates RDNs after an
    // even run of backslashes.
    head.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 0
}

/// Whether `c` makes a DN one to parse in full: an escape, a multi-valued RDN's `+`, or a
/// character a key escapes.
fn escaped_in_key(c: u8) -> bool {
    matches!(c, b'\\' | b'+' | b'"' | b';' | b'<' | b'>')
}

/// [`rewrite_dn_key`] of a DN without escapes, quotes or multi-valued RDNs: lower case and
/// trimmed, part by part.
fn plain_dn_key(dn: &str) -> String {
    fn trim(t: &str) -> &str {
        t.trim_matches(|c: char| u8::try_from(c).is_ok_and(dn_space))
    }
    let mut out = String::with_capacity(dn.len());
    for part in dn.split(',') {
        if !out.is_empty() {
            out.push(',');
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        push_lowercase(&mut out, trim(k));
        out.push('=');
        push_lowercase(&mut out, trim(v));
    }
    out
}

/// The key of `dn`, written out: each attribute type and value unescaped, trimmed of the
/// white space not escaped, lower-cased, and escaped again only where a key must be (`\`,
/// `,`, `+`, `"`, `;`, `<`, `>`, `=` in a type, white space at either end). A part without
/// `=` keys as a type with an empty value, so that a malformed DN still has one key.
fn rewrite_dn_key(dn: &str) -> String {
    let mut rdns: Vec<Vec<(String, String)>> = Vec::new();
    let mut ava: Vec<(String, String)> = Vec::new();
    // The text of the type or value being read, with whether each byte was escaped.
    let mut text: Vec<(u8, bool)> = Vec::new();
    let mut kind: Option<String> = None;
    let finish = |text: &mut Vec<(u8, bool)>| -> String {
        let is_space = |&(b, escaped): &(u8, bool)| !escaped && dn_space(b);
        let start = text.iter().position(|c| !is_space(c)).unwrap_or(text.len());
        let end = text
            .iter()
            .rposition(|c| !is_space(c))
            .map_or(start, |e| e + 1);
        let bytes: Vec<u8> = text[start..end].iter().map(|&(b, _)| b).collect();
        text.clear();
        let decoded = String::from_utf8_lossy(&bytes);
        let mut lower = String::with_capacity(decoded.len());
        push_lowercase(&mut lower, &decoded);
        lower
    };
    let bytes = dn.as_bytes();
    let mut i = 0;
    loop {
        let c = bytes.get(i).copied();
        match c {
            Some(b'\\') => {
                let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
                match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                    (Some(h), Some(l)) => {
                        text.push((u8::try_from(h * 16 + l).unwrap_or(b'?'), true));
                        i += 3;
                    }
                    _ => {
                        // `\,` and the like; a lone `\` at the end stands for itself.
                        text.push((bytes.get(i + 1).copied().unwrap_or(b'\\'), true));
                        i += 2;
                    }
                }
                continue;
            }
            Some(b'=') if kind.is_none() => kind = Some(finish(&mut text)),
            None | Some(b',' | b'+') => {
                let value = finish(&mut text);
                ava.push(match kind.take() {
                    Some(k) => (k, value),
                    None => (value, String::new()),
                });
                if c != Some(b'+') {
                    ava.sort_unstable();
                    rdns.push(std::mem::take(&mut ava));
                }
            }
            Some(b) => text.push((b, false)),
        }
        if c.is_none() {
            break;
        }
        i += 1;
    }
    let mut out = String::with_capacity(dn.len());
    for (n, rdn) in rdns.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        for (m, (k, v)) in rdn.iter().enumerate() {
            if m > 0 {
                out.push('+');
            }
            push_escaped(&mut out, k, true);
            out.push('=');
            push_escaped(&mut out, v, false);
        }
    }
    out
}

/// The white space a DN key trims (what `str::trim` trims in ASCII).
fn dn_space(c: u8) -> bool {
    matches!(c, b'\t'..=b'\r' | b' ')
}

/// Appends a type or value of a DN key, escaped where the key's reader needs it.
fn push_escaped(out: &mut String, text: &str, is_type: bool) {
    let last = text.chars().count().saturating_sub(1);
    for (n, c) in text.chars().enumerate() {
        if matches!(c, '\\' | ',' | '+' | '"' | ';' | '<' | '>')
            || (is_type && c == '=')
            || ((n == 0 || n == last) && u8::try_from(c).is_ok_and(dn_space))
        {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether `dn_key` leaves `dn` as it is: ASCII without capitals, escapes, quotes or
/// multi-valued RDNs, and each part `k=v` with no white space (as `str::trim` sees it) at
/// either end of `k` or `v`. One pass, as every DN a sync reads comes through here.
fn is_dn_key(dn: &[u8]) -> bool {
    let space = dn_space;
    // `dn[start..end]` is a part, `dn[eq]` its first `=`.
    let part_is_key = |start: usize, eq: Option<usize>, end: usize| {
        eq.is_some_and(|eq| {
            let (k, v) = (&dn[start..eq], &dn[eq + 1..end]);
            [k, v].iter().all(|t| {
                t.first().is_none_or(|&c| !space(c)) && t.last().is_none_or(|&c| !space(c))
            })
        })
    };
    let (mut start, mut eq) = (0, None);
    for (i, &c) in dn.iter().enumerate() {
        if !c.is_ascii() || c.is_ascii_uppercase() || escaped_in_key(c) {
            return false;
        }
        if c == b',' {
            if !part_is_key(start, eq, i) {
                return false;
            }
            (start, eq) = (i + 1, None);
        } else if c == b'=' && eq.is_none() {
            eq = Some(i);
        }
    }
    part_is_key(start, eq, dn.len())
}

/// Appends `text` in lower case, without a string per part: a sync keys every DN it reads.
fn push_lowercase(out: &mut String, text: &str) {
    if text.is_ascii() {
        out.extend(text.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else {
        out.push_str(&text.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_keys_ignore_case_and_spaces_around_separators() {
        for (dn, key) in [
            (
                "CN=Ann Lee , OU=People,dc=Example",
                "cn=ann lee,ou=people,dc=example",
            ),
            ("cn = a = b,dc=x", "cn=a = b,dc=x"),
            ("CN=Ärger,DC=x", "cn=ärger,dc=x"),
            ("cn=ann,dc=x,", "cn=ann,dc=x,="),
            ("", "="),
            // Escapes: hex or not, any case, are one character; escaped spaces stay.
            ("CN=Lee\\, Ann,DC=x", "cn=lee\\, ann,dc=x"),
            ("cn=Lee\\2C Ann,dc=x", "cn=lee\\, ann,dc=x"),
            ("cn=lee\\2c ann,dc=x", "cn=lee\\, ann,dc=x"),
            ("cn=\\C3\\A9mile,dc=x", "cn=émile,dc=x"),
            ("cn=\\ lead\\ ,dc=x", "cn=\\ lead\\ ,dc=x"),
            ("cn=a\\+b\\\\c\\\"d,dc=x", "cn=a\\+b\\\\c\\\"d,dc=x"),
            ("cn=#1\\2c x,dc=x", "cn=#1\\, x,dc=x"),
            // A multi-valued RDN in either order.
            ("uid=ann+CN=Ann,dc=x", "cn=ann+uid=ann,dc=x"),
            ("cn=ann + uid=ann,dc=x", "cn=ann+uid=ann,dc=x"),
        ] {
            assert_eq!(dn_key(dn), key, "{dn}");
            assert!(
                matches!(dn_key(dn), Cow::Owned(_)),
                "{dn} is not its own key"
            );
        }
        // A DN that is already its key (as a directory's usually are) is not copied.
        for dn in ["uid=ann,ou=people,dc=x", "cn=a = b,dc=x", "cn=#1 x,dc=x"] {
            assert!(matches!(dn_key(dn), Cow::Borrowed(k) if k == dn), "{dn}");
        }
    }

    #[test]
    fn an_entry_is_within_a_base_after_a_comma_that_separates() {
        let base = dn_key("OU=People,DC=x");
        for (dn, within) in [
            ("ou=people,dc=x", true),
            ("CN=Ann,OU=People,DC=x", true),
            ("cn=a\\\\,ou=people,dc=x", true),
            ("cn=a\\,ou=people,dc=x", false),
            ("cn=a\\2cou=people,dc=x", false),
            ("cn=a,xou=people,dc=x", false),
            ("dc=x", false),
        ] {
            assert_eq!(is_within(&dn_key(dn), &base), within, "{dn}");
        }
    }

    proptest::proptest! {
        /// A key is its own key, borrowed when it is ASCII without escapes or multi-valued
        /// RDNs: keys compare equal however they were reached, and the borrowing shortcut
        /// agrees with the full rewrite.
        #[test]
        fn dn_keys_are_their_own_keys(dn in "[a-zA-Z0-9ä= \t\u{b}\u{1f},\\\\#+\";<>]{0,40}") {
            let key = dn_key(&dn);
            proptest::prop_assert_eq!(key.as_ref(), rewrite_dn_key(&dn), "the shortcuts agree");
            let again = dn_key(&key);
            proptest::prop_assert_eq!(&again, &key);
            proptest::prop_assert!(
                matches!(again, Cow::Borrowed(_)) || !key.is_ascii() || key.contains(['\\', '+'])
            );
        }
    }
}
