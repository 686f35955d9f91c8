//! What a list or search asks the store for: a filter, an order and one page.
//!
//! The semantics are those of the filter evaluator over [`super::view::view`], the JSON the
//! service renders; [`reference_page`] applies them in Rust and is what the in-memory store
//! runs. Backends that translate queries (SQLite) are checked against it by a differential
//! test on random filters and random data.

use std::cmp::Ordering;

use serde_json::Value;

use super::{Kind, Resource};
use crate::scim::datetime::DateTime;
use crate::scim::filter::eval::get;
use crate::scim::filter::{AttrPath, CompiledFilter};
use crate::scim::schema::{AttributeType, ResourceType};
use crate::scim::text::fold;

/// One page of the resources of one type in one directory that match a filter.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Query<'a> {
    /// The directory searched.
    pub directory: i64,
    /// User or group.
    pub kind: Kind,
    /// The resource type of `kind`, which the filter and the sort were resolved against.
    pub resource_type: &'a ResourceType,
    /// Only resources that match; every resource when `None`.
    pub filter: Option<&'a CompiledFilter>,
    /// The order; `id` order when `None`. Ties keep `id` order.
    pub sort: Option<&'a SortBy>,
    /// The endpoint URL references (`$ref`, `meta.location`) are written under, so that a
    /// filter on them sees what a client reads.
    pub base: &'a str,
    /// Where the page starts.
    pub start: Start<'a>,
    /// At most this many resources.
    pub limit: u64,
    /// Whether the caller will render users' `groups`: a backend that can read them with the
    /// page fills [`Page::groups`].
    pub groups: bool,
}

impl<'a> Query<'a> {
    /// The first `limit` resources of `kind` in `directory`, in `id` order.
    pub fn new(
        directory: i64,
        kind: Kind,
        resource_type: &'a ResourceType,
        base: &'a str,
        limit: u64,
    ) -> Self {
        Self {
            directory,
            kind,
            resource_type,
            filter: None,
            sort: None,
            base,
            start: Start::Offset(0),
            limit,
            groups: false,
        }
    }

    /// Only the resources that match `filter`.
    #[must_use]
    pub fn with_filter(mut self, filter: Option<&'a CompiledFilter>) -> Self {
        self.filter = filter;
        self
    }

    /// In the order of `sort`.
    #[must_use]
    pub fn with_sort(mut self, sort: Option<&'a SortBy>) -> Self {
        self.sort = sort;
        self
    }

    /// Starting at `start`.
    #[must_use]
    pub fn with_start(mut self, start: Start<'a>) -> Self {
        self.start = start;
        self
    }

    /// With users' groups read alongside, where the backend can (see [`Query::groups`]).
    #[must_use]
    pub fn with_groups(mut self, groups: bool) -> Self {
        self.groups = groups;
        self
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start<'a> {
    /// After skipping this many matches (`startIndex` − 1).
    Offset(u64),
    /// After the resource with this `id`, in `id` order (cursor paging; no sort).
    After(&'a str),
    /// After a position in the query's sort order (cursor paging with `sortBy`).
    AfterPosition(&'a Position),
}

/// A place in a sorted list: the sort key and `id` of the resource it follows. Resources
/// created or deleted elsewhere in the list do not move it, which keeps cursor pages stable.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    key: Option<SortKey>,
    id: String,
}

impl Position {
    /// The position of the resource `id` whose view is `view`, under `sort`.
    #[cfg(feature = "service")] // cursors are the service's
    pub(crate) fn of(sort: &SortBy, view: &Value, id: &str) -> Self {
        Self {
            key: sort.key(view),
            id: id.to_owned(),
        }
    }

    /// The `id` of the resource it follows.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The sort key of the resource it follows (`None`: it has no value).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn key(&self) -> Option<&SortKey> {
        self.key.as_ref()
    }

    /// As JSON, for a cursor.
    #[cfg(feature = "service")] // cursors are the service's
    pub(crate) fn to_json(&self) -> Value {
        let key = match &self.key {
            None => Value::Null,
            Some(SortKey::Number(n)) => serde_json::json!({"n": n}),
            Some(SortKey::Time(t)) => serde_json::json!({"d": t.to_string()}),
            Some(SortKey::Text(s)) => serde_json::json!({"s": s}),
            Some(SortKey::Bool(b)) => serde_json::json!({"b": b}),
        };
        serde_json::json!({"id": self.id, "k": key})
    }

    /// From [`Position::to_json`]'s output.
    #[cfg(feature = "service")] // cursors are the service's
    pub(crate) fn from_json(v: &Value) -> Option<Self> {
        let id = v.get("id")?.as_str()?.to_owned();
        let k = v.get("k")?;
        let key = if k.is_null() {
            None
        } else if let Some(n) = k.get("n").and_then(Value::as_f64) {
            Some(SortKey::Number(n))
        } else if let Some(d) = k.get("d").and_then(Value::as_str) {
            Some(SortKey::Time(DateTime::parse(d).ok()?))
        } else if let Some(s) = k.get("s").and_then(Value::as_str) {
            Some(SortKey::Text(s.to_owned()))
        } else {
            Some(SortKey::Bool(k.get("b")?.as_bool()?))
        };
        Some(Self { key, id })
    }

    /// Whether a resource with `key` and `id` comes after this position under `sort`.
    fn is_before(&self, sort: &SortBy, key: &Option<SortKey>, id: &str) -> bool {
        match sort.compare(key, &self.key) {
            Ordering::Greater => true,
            Ordering::Equal => id > self.id.as_str(),
            Ordering::Less => false,
        }
    }
}

/// One page of matches and how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Every match, not only this page's (`totalResults`).
    pub total: u64,
    /// The page, in order.
    pub resources: Vec<Resource>,
    /// For a query of users with [`Query::groups`]: each one's groups, in page order, when
    /// the backend read them with the page (`None`: the caller asks for them).
    pub groups: Option<Vec<Vec<String>>>,
}

/// SCIM `sortBy`/`sortOrder` resolved against a resource type: a resource sorts by the first
/// value of the attribute (its primary one, for a multi-valued attribute that marks one),
/// compared by the attribute's type and case-exactness. Resources without a value sort last.
#[derive(Debug, Clone)]
pub struct SortBy {
    pub(crate) path: AttrPath,
    pub(crate) ty: Option<AttributeType>,
    pub(crate) case_exact: bool,
    pub(crate) descending: bool,
}

impl SortBy {
    /// Sorting by `path`, descending when asked.
    pub fn new(resource_type: &ResourceType, path: AttrPath, descending: bool) -> Self {
        let resolved = resource_type
            .resolve_path(&path)
            .map(|r| r.sub_attribute.unwrap_or(r.attribute));
        Self {
            ty: resolved.map(|a| a.ty),
            case_exact: resolved.is_some_and(|a| a.case_exact),
            path,
            descending,
        }
    }

    /// The key `view` (a resource as [`super::view::view`] renders it) sorts by.
    pub(crate) fn key(&self, view: &Value) -> Option<SortKey> {
        let path = &self.path;
        let mut v = view;
        if let Some(urn) = path.urn().filter(|u| view.get(*u).is_some()) {
            v = view.get(urn)?;
        }
        let mut v = get(v, path.name())?;
        if let Value::Array(items) = v {
            v = items
                .iter()
                .find(|i| i.get("primary") == Some(&Value::Bool(true)))
                .or(items.first())?;
        }
        if let Some(sub) = path.sub_attr() {
            v = get(v, sub)?;
        } else if v.is_object() {
            v = get(v, "value")?;
        }
        match (v, self.ty) {
            (Value::String(s), Some(AttributeType::DateTime)) => {
                DateTime::parse(s).ok().map(SortKey::Time)
            }
            (Value::String(s), _) if self.case_exact => Some(SortKey::Text(s.clone())),
            (Value::String(s), _) => Some(SortKey::Text(fold(s).into_owned())),
            (Value::Number(n), _) => n.as_f64().map(SortKey::Number),
            (Value::Bool(b), _) => Some(SortKey::Bool(*b)),
            _ => None,
        }
    }

    /// Orders two keys: by value in the requested direction, resources without one last.
    pub(crate) fn compare(&self, a: &Option<SortKey>, b: &Option<SortKey>) -> Ordering {
        match (a, b) {
            (Some(a), Some(b)) => {
                let o = a.cmp(b);
                if self.descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
}

/// The value a resource sorts by.
#[derive(Debug, Clone)]
pub(crate) enum SortKey {
    Number(f64),
    Time(DateTime),
    Text(String),
    Bool(bool),
}

impl SortKey {
    fn rank(&self) -> u8 {
        match self {
            Self::Number(_) => 0,
            Self::Time(_) => 1,
            Self::Text(_) => 2,
            Self::Bool(_) => 3,
        }
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => a.total_cmp(b),
            (Self::Time(a), Self::Time(b)) => a.cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            (Self::Bool(a), Self::Bool(b)) => a.cmp(b),
            // Values of mixed types (bad data) still sort deterministically.
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SortKey {}

/// The query applied in Rust to `candidates` (every resource of the query's type and
/// directory, in `id` order, each with its view): filter, sort, count, page.
pub(crate) fn reference_page(
    q: &Query<'_>,
    candidates: impl IntoIterator<Item = (Resource, Value)>,
) -> Page {
    let mut matched: Vec<(Resource, Value)> = candidates
        .into_iter()
        .filter(|(_, view)| q.filter.is_none_or(|f| f.matches(view)))
        .collect();
    if let Some(sort) = q.sort {
        let mut keyed: Vec<(Option<SortKey>, Resource)> = matched
            .into_iter()
            .map(|(r, view)| (sort.key(&view), r))
            .collect();
        // A stable sort: equal keys keep `id` order.
        keyed.sort_by(|(a, _), (b, _)| sort.compare(a, b));
        if let Start::AfterPosition(position) = q.start {
            let total = keyed.len() as u64;
            let take = usize::try_from(q.limit).unwrap_or(usize::MAX);
            let resources = keyed
                .into_iter()
                .filter(|(key, r)| position.is_before(sort, key, &r.id))
                .take(take)
                .map(|(_, r)| r)
                .collect();
            return Page {
                total,
                resources,
                groups: None,
            };
        }
        return page_of(q, keyed.into_iter().map(|(_, r)| r).collect());
    }
    matched.sort_by(|(a, _), (b, _)| a.id.cmp(&b.id));
    page_of(q, matched.into_iter().map(|(r, _)| r).collect())
}

/// The total of a filtered query told by its page alone, when it is: a short page that is not
/// past the end holds the last match, so there is no need to count (a lookup by `userName` or
/// `externalId` is then one statement).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn total_from_page(q: &Query<'_>, found: u64) -> Option<u64> {
    match q.start {
        Start::Offset(skipped) if found < q.limit && (found > 0 || skipped == 0) => {
            Some(skipped + found)
        }
        _ => None,
    }
}

/// The page `q` asks for out of all `matched` resources, in order.
pub(crate) fn page_of(q: &Query<'_>, matched: Vec<Resource>) -> Page {
    let total = matched.len() as u64;
    let take = usize::try_from(q.limit).unwrap_or(usize::MAX);
    let resources = match q.start {
        Start::Offset(n) => matched
            .into_iter()
            .skip(usize::try_from(n).unwrap_or(usize::MAX))
            .take(take)
            .collect(),
        Start::After(id) => matched
            .into_iter()
            .filter(|r| r.id.as_str() > id)
            .take(take)
            .collect(),
        // Without a sort, a position is its `id`.
        Start::AfterPosition(p) => matched
            .into_iter()
            .filter(|r| r.id > p.id)
            .take(take)
            .collect(),
    };
    Page {
        total,
        resources,
        groups: None,
    }
}
