//! What the SQL stores share: sorting a page by a column, continuing a sorted page from a
//! position through a keyset, and reading every membership of a directory. Both stores
//! name their columns alike (`r.id`, `r.name_key`, `r.external_id`, `r.created`,
//! `r.modified`) and both define `usersync_datetime`, a key whose text order is
//! chronological order.

use crate::scim::filter::CompareOp;
use crate::store::Kind;
use crate::store::query::{Position, SortBy, SortKey};

/// The memberships (group id, member id, member kind) of every group of directory `$1` (a
/// parameter both dialects read), by group, then member. Ordered by `g.id` rather than the
/// equal `m.group_id`: SQLite then walks the groups in the order of its index of
/// (directory, kind, id) and sorts only each group's members, not every membership of the
/// directory at once.
pub(crate) const ALL_MEMBERS: &str = "SELECT m.group_id, m.member_id, m.member_kind \
     FROM memberships m JOIN resources g ON g.id = m.group_id \
     WHERE g.directory = $1 AND g.kind = 'Group' ORDER BY g.id, m.member_id";

/// Binds text parameters in a store's SQL dialect.
pub(crate) trait BindText {
    /// Binds `value`; returns the SQL expression of the parameter.
    fn bind_text(&mut self, value: String) -> String;
}

/// The SQL operator of a comparison; `pattern` is the dialect's operator for `co`, `sw` and
/// `ew` (whose right side is then a pattern).
pub(crate) fn comparison_operator(op: CompareOp, pattern: &'static str) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => pattern,
    }
}

/// ` AND column >= prefix AND column < next` when the prefix ends in an ASCII character, so
/// that `sw` on an indexed column is a range the index answers (the pattern still decides).
pub(crate) fn prefix_range(column: &str, prefix: &str, sql: &mut impl BindText) -> String {
    match prefix.as_bytes().last() {
        Some(&last) if last < 0x7f => {
            let mut next = prefix[..prefix.len() - 1].to_owned();
            next.push(char::from(last + 1));
            let (low, high) = (sql.bind_text(prefix.to_owned()), sql.bind_text(next));
            format!(" AND {column} >= {low} AND {column} < {high}")
        }
        _ => String::new(),
    }
}

/// `ORDER BY` terms for sorting by a column, or `None` when the sort key is not one (the
/// store then sorts in Rust).
pub(crate) fn column_order(sort: &SortBy, kind: Kind) -> Option<String> {
    let (expr, nullable) = sort_column(sort, kind)?;
    let direction = if sort.descending { "DESC" } else { "ASC" };
    // Resources without a value sort last in both directions; ties keep `id` order.
    Some(if nullable {
        format!("{expr} IS NULL, {expr} {direction}, r.id")
    } else if expr == "r.id" {
        format!("r.id {direction}")
    } else {
        format!("{expr} {direction}, r.id")
    })
}

/// The condition on `r` that selects what comes after `position` in [`column_order`]'s
/// order: a keyset, so that a sorted cursor page reads only its own rows. `None` when the
/// sort is not a column's (or the position cannot be one in it).
pub(crate) fn column_after(
    sort: &SortBy,
    kind: Kind,
    position: &Position,
    sql: &mut impl BindText,
) -> Option<String> {
    let (expr, nullable) = sort_column(sort, kind)?;
    // Everything is decided before anything is bound: a `None` leaves `sql` as it was.
    let key = match position.key() {
        None if nullable => None,
        None => return None,
        Some(key) => Some(match (key, expr.starts_with("usersync_datetime")) {
            (SortKey::Text(s), false) => s.clone(),
            (SortKey::Time(t), true) => t.sort_key(),
            _ => return None,
        }),
    };
    let id = sql.bind_text(position.id().to_owned());
    let Some(key) = key else {
        // Among the resources without a value, which come last: only `id` order is left.
        return Some(format!("({expr} IS NULL AND r.id > {id})"));
    };
    let key = sql.bind_text(key);
    let beyond = if sort.descending { "<" } else { ">" };
    let after = format!("{expr} {beyond} {key} OR ({expr} = {key} AND r.id > {id})");
    Some(if nullable {
        format!("({expr} IS NULL OR {after})")
    } else {
        format!("({after})")
    })
}

/// The column expression a sort is by, and whether it may be NULL.
fn sort_column(sort: &SortBy, kind: Kind) -> Option<(&'static str, bool)> {
    let path = &sort.path;
    let core = match kind {
        Kind::User => "urn:ietf:params:scim:schemas:core:2.0:User",
        Kind::Group => "urn:ietf:params:scim:schemas:core:2.0:Group",
    };
    if path.urn().is_some_and(|u| !u.eq_ignore_ascii_case(core)) {
        return None;
    }
    let name = path.name();
    Some(match (path.sub_attr(), kind) {
        (None, _) if name.eq_ignore_ascii_case("id") => ("r.id", false),
        (None, _) if name.eq_ignore_ascii_case("externalId") => ("r.external_id", true),
        (None, Kind::User) if name.eq_ignore_ascii_case("userName") => ("r.name_key", false),
        (None, Kind::Group) if name.eq_ignore_ascii_case("displayName") => ("r.name_key", false),
        (Some(s), _) if name.eq_ignore_ascii_case("meta") && s.eq_ignore_ascii_case("created") => {
            ("usersync_datetime(r.created)", false)
        }
        (Some(s), _)
            if name.eq_ignore_ascii_case("meta") && s.eq_ignore_ascii_case("lastModified") =>
        {
            ("usersync_datetime(r.modified)", false)
        }
        _ => return None,
    })
}
