//! Percent-decoding (RFC 3986), shared by a SCIM request's query string and an LDAP URL's DN.

/// `text` with its `%XX` escapes decoded, and `+` read as a space where `form` says the text
/// is form-encoded (a query string). An escape that is not `%` and two hex digits stays as it
/// is; bytes that are not UTF-8 become U+FFFD.
pub(crate) fn decoded(text: &str, form: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) if form => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decoded;

    #[test]
    fn escapes_and_plus() {
        assert_eq!(decoded("a%2Cb%zz%+1%4", false), "a,b%zz%+1%4");
        assert_eq!(decoded("%C3%A9", false), "é");
        assert_eq!(decoded("a+b%2B", false), "a+b+");
        assert_eq!(decoded("a+b%2B", true), "a b+");
    }
}
