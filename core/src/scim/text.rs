//! Case-insensitive text comparison as SCIM `caseExact: false` needs it.
//!
//! Two strings are equal ignoring case when their folds are equal; the fold is the Unicode
//! lowercase of the string, then NFC, so that `"Ǆ"`, `"ǆ"` and their decomposed spellings fold
//! alike. ASCII strings, by far the common case, take a fast path with no allocation.

use std::borrow::Cow;
use std::cmp::Ordering;

use unicode_normalization::{UnicodeNormalization, is_nfc_quick};

/// The case fold of `s`: lowercase, then NFC. Borrowed when nothing changes.
pub(crate) fn fold(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        let lower = s.to_lowercase();
        if is_nfc_quick(lower.chars()) == unicode_normalization::IsNormalized::Yes {
            Cow::Owned(lower)
        } else {
            Cow::Owned(lower.nfc().collect())
        }
    }
}

/// `value` against a needle that is already folded (see [`fold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Eq,
    Contains,
    StartsWith,
    EndsWith,
}

/// Applies `op` to `value` and a needle, both compared ignoring case; `folded_needle` must be
/// the [`fold`] of the needle.
pub(crate) fn matches_folded(value: &str, op: TextOp, folded_needle: &str) -> bool {
    if value.is_ascii() && folded_needle.is_ascii() {
        let (v, n) = (value.as_bytes(), folded_needle.as_bytes());
        return match op {
            TextOp::Eq => v.eq_ignore_ascii_case(n),
            TextOp::StartsWith => v.len() >= n.len() && v[..n.len()].eq_ignore_ascii_case(n),
            TextOp::EndsWith => {
                v.len() >= n.len() && v[v.len() - n.len()..].eq_ignore_ascii_case(n)
            }
            TextOp::Contains => {
                n.is_empty() || v.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
            }
        };
    }
    let v = fold(value);
    match op {
        TextOp::Eq => v == folded_needle,
        TextOp::StartsWith => v.starts_with(folded_needle),
        TextOp::EndsWith => v.ends_with(folded_needle),
        TextOp::Contains => v.contains(folded_needle),
    }
}

/// Orders `value` against an already folded needle, ignoring case.
pub(crate) fn cmp_folded(value: &str, folded_needle: &str) -> Ordering {
    if value.is_ascii() {
        value
            .bytes()
            .map(|b| b.to_ascii_lowercase())
            .cmp(folded_needle.bytes())
    } else {
        fold(value).as_ref().cmp(folded_needle)
    }
}

/// Applies `op` to `value` and `needle` exactly, byte for byte.
pub(crate) fn matches_exact(value: &str, op: TextOp, needle: &str) -> bool {
    match op {
        TextOp::Eq => value == needle,
        TextOp::StartsWith => value.starts_with(needle),
        TextOp::EndsWith => value.ends_with(needle),
        TextOp::Contains => value.contains(needle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_lowercases_and_composes() {
        assert_eq!(fold("BJensen"), "bjensen");
        // "É" precomposed and "E" + combining acute fold to the same string.
        assert_eq!(fold("\u{c9}COLE"), fold("E\u{301}cole"));
        assert_eq!(fold("STRASSE"), "strasse");
    }

    #[test]
    fn ascii_fast_path_agrees_with_the_general_path() {
        for (value, op, needle, expected) in [
            ("Barbara Jensen", TextOp::Contains, "jensen", true),
            ("Barbara Jensen", TextOp::StartsWith, "barb", true),
            ("Barbara Jensen", TextOp::EndsWith, "sen", true),
            ("x", TextOp::Contains, "", true),
            ("", TextOp::Eq, "", true),
            ("ab", TextOp::StartsWith, "abc", false),
        ] {
            assert_eq!(
                matches_folded(value, op, needle),
                expected,
                "{value} {op:?} {needle}"
            );
        }
        assert!(matches_folded(
            "Ærø\u{301}",
            TextOp::Contains,
            &fold("RØ\u{301}")
        ));
        assert!(matches_folded(
            "École",
            TextOp::StartsWith,
            &fold("E\u{301}C")
        ));
    }

    #[test]
    fn ordering_ignores_case() {
        assert_eq!(cmp_folded("Bravo", "alpha"), Ordering::Greater);
        assert_eq!(cmp_folded("ALPHA", "alpha"), Ordering::Equal);
        assert_eq!(cmp_folded("Émile", &fold("émile")), Ordering::Equal);
    }
}
