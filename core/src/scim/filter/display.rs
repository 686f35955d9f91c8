//! The canonical form of a filter: lowercase keywords, single spaces, the fewest parentheses
//! that keep the meaning, and strings in minimal JSON escaping. It parses back to the same
//! tree.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{AttrPath, CompareOp, Filter, Value};

impl Display for Filter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare(c) => write!(f, "{} {} {}", c.path, c.op, c.value),
            Filter::Present(p) => write!(f, "{} pr", p.path),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::And(items) => join(f, items, " and ", |item| matches!(item, Filter::Or(_))),
            Filter::Or(items) => join(f, items, " or ", |item| matches!(item, Filter::Or(_))),
            Filter::ValuePath(vp) => write!(f, "{}[{}]", vp.path, vp.filter),
        }
    }
}

fn join(
    f: &mut Formatter<'_>,
    items: &[Filter],
    separator: &str,
    needs_parens: impl Fn(&Filter) -> bool,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        if needs_parens(item) {
            write!(f, "({item})")?;
        } else {
            write!(f, "{item}")?;
        }
    }
    Ok(())
}

impl Display for AttrPath {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for CompareOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write_json_string(f, s),
            Value::Integer(n) => write!(f, "{n}"),
            Value::Decimal(x) => f.write_str(x.as_str()),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
        }
    }
}

fn write_json_string(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if c < ' ' => "",
            _ => continue,
        };
        f.write_str(&s[run_start..i])?;
        if escaped.is_empty() {
            write!(f, "\\u{:04x}", c as u32)?;
        } else {
            f.write_str(escaped)?;
        }
        run_start = i + c.len_utf8();
    }
    f.write_str(&s[run_start..])?;
    f.write_char('"')
}
