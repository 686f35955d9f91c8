//! LDAP URLs (RFC 4516): the server a configured URL names, and where a continuation
//! reference points. Always built, so that a fuzz target reaches them.

/// The host and port of an `ldap://` or `ldaps://` URL (what follows a `/` is ignored), and
/// whether it is `ldaps://`; `None` for a URL without a host, with a port that is no number
/// from 1 to 65535, or with an IPv6 address outside brackets (the configuration refuses
/// those).
pub fn host_and_port(url: &str) -> Option<(String, u16, bool)> {
    let (rest, tls) = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ldap") => (rest, false),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ldaps") => (rest, true),
        _ => return None,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        // After the brackets: nothing, or the port.
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            // An IPv6 address must be in brackets: `2001:db8::1` is no host and port.
            Some((_, port)) if port.contains(':') => return None,
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().ok().filter(|&p: &u16| p != 0)?
        }
        Some(_) => return None,
        None if tls => 636,
        None => 389,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port, tls))
}

/// Whether a continuation reference's URL (RFC 4516) names the root of another of Active
/// Directory's naming contexts: a DN of `DC=` RDNs only (a domain, or an application
/// partition such as `DC=DomainDnsZones`), or AD's configuration or schema above them.
pub fn names_a_naming_context(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let Some((_, path)) = rest.split_once('/') else {
        return false;
    };
    let encoded = path.split('?').next().unwrap_or_default();
    let dn = crate::percent::decoded(encoded, false);
    let key = super::dn::dn_key(&dn);
    let domain = key
        .strip_prefix("cn=schema,cn=configuration,")
        .or_else(|| key.strip_prefix("cn=configuration,"))
        .unwrap_or(&key);
    // An escaped comma inside a value leaves a part that is no `dc=` RDN: not a context.
    !domain.is_empty() && domain.split(',').all(|rdn| rdn.starts_with("dc="))
}

#[cfg(test)]
mod tests {
    use super::{host_and_port, names_a_naming_context};

    #[test]
    fn urls_give_host_and_port() {
        let cases = [
            (
                "ldap://dc1.example.com",
                Some(("dc1.example.com", 389, false)),
            ),
            (
                "ldaps://dc1.example.com",
                Some(("dc1.example.com", 636, true)),
            ),
            ("ldap://127.0.0.1:3389/", Some(("127.0.0.1", 3389, false))),
            ("LDAPS://[::1]:6360/dc=example", Some(("::1", 6360, true))),
            ("ldap://[::1]", Some(("::1", 389, false))),
            ("ldap://:389", None),
            ("ldap://host:port", None),
            ("ldap://2001:db8::1", None),
            ("ldap://[::1]junk", None),
            ("ldap://[::1]:", None),
            ("ldap://host:0", None),
            ("ldap://host:", None),
            ("ldap://host:+389", None),
            ("http://host", None),
            ("host:389", None),
        ];
        for (url, want) in cases {
            let got = host_and_port(url);
            assert_eq!(
                got.as_ref().map(|(h, p, t)| (h.as_str(), *p, *t)),
                want,
                "{url}"
            );
        }
    }

    /// References to other naming contexts are told apart from referrals that hide entries.
    #[test]
    fn continuation_references_to_naming_contexts() {
        for (url, context) in [
            (
                "ldap://dc1.corp.example/CN=Configuration,DC=corp,DC=example",
                true,
            ),
            (
                "ldap://dc1/CN=Schema,CN=Configuration,DC=corp,DC=example",
                true,
            ),
            (
                "ldap://corp.example/DC=DomainDnsZones,DC=corp,DC=example",
                true,
            ),
            (
                "ldap://child.corp.example/DC=child,DC=corp,DC=example??base",
                true,
            ),
            ("ldap://x/dc%3Dchild,dc%3Dexample", true),
            (
                "ldap://elsewhere/ou=contractors,ou=people,dc=example,dc=org",
                false,
            ),
            (
                "ldap://elsewhere/cn=Configuration%20Team,ou=groups,dc=x",
                false,
            ),
            ("ldap://elsewhere/CN=Configuration,OU=Apps,DC=x", false),
            ("ldap://elsewhere/DC=emea,OU=Sites,DC=corp", false),
            ("ldap://elsewhere/DC=a%5C,b,DC=corp", false),
            ("ldap://elsewhere/CN=Configuration", false),
            ("ldap://elsewhere/", false),
            ("ldap://elsewhere", false),
            ("not a url", false),
        ] {
            assert_eq!(names_a_naming_context(url), context, "{url}");
        }
    }
}
