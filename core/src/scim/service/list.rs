//! Listing resources (RFC 7644 §3.4.2): filter, sort, page, project.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::resource::Projection;
use super::{ScimError, ScimRequest, ScimResponse, Service, list_response};
use crate::scim::datetime::DateTime;
use crate::scim::filter::eval::get;
use crate::scim::filter::{AttrPath, CompareOp, Filter, ParseOptions, Value as Literal};
use crate::scim::schema::AttributeType;
use crate::scim::text::fold;
use crate::store::{Directory, Kind, Resource};

/// The query string as name/value pairs, percent-decoded (`+` is a space).
pub(crate) fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of query parameter `name` (names ignore case).
pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses an integer paging parameter.
fn integer(params: &[(String, String)], name: &str) -> Result<Option<i64>, ScimError> {
    match param(params, name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            ScimError::bad_request(
                "invalidValue",
                format!("`{name}` must be an integer, not `{v}`"),
            )
        }),
    }
}

impl Service {
    /// A list response: the resources of `kinds` that match `params`, one page of them.
    pub(super) fn list(
        &self,
        d: &Directory,
        kinds: &[Kind],
        params: &[(String, String)],
        base: &str,
    ) -> Result<ScimResponse, ScimError> {
        let projection = Projection::parse(
            param(params, "attributes"),
            param(params, "excludedAttributes"),
        )?;
        // RFC 7644 §3.4.2.4: startIndex below 1 is 1, a negative count is 0.
        let start = integer(params, "startIndex")?.unwrap_or(1).max(1) as usize;
        let count = integer(params, "count")?.map_or(self.config.max_results, |c| {
            (c.max(0) as usize).min(self.config.max_results)
        });
        // A plain page of one type: let the store count and skip, without loading the rest.
        if let [kind] = kinds
            && ["filter", "sortBy", "cursor"]
                .iter()
                .all(|p| param(params, p).is_none())
        {
            let total = self.store.count(d.id, *kind)?;
            let rows = self
                .store
                .page(d.id, *kind, (start - 1) as u64, count as u64)?;
            let page: Vec<Value> = rows
                .iter()
                .map(|r| self.render(r, base, &projection))
                .collect::<Result<_, _>>()?;
            return Ok(ScimResponse::json(
                200,
                &list_response(page, total as usize, Some(start)),
            ));
        }
        let mut selected = Vec::new();
        for &kind in kinds {
            selected.extend(self.select(d, kind, params, base)?);
        }
        let total = selected.len();
        if let Some(cursor) = param(params, "cursor") {
            return self.cursor_page(d, kinds, params, cursor, count, selected, base, &projection);
        }
        let page: Vec<Value> = selected
            .iter()
            .skip(start - 1)
            .take(count)
            .map(|r| self.render(r, base, &projection))
            .collect::<Result<_, _>>()?;
        Ok(ScimResponse::json(
            200,
            &list_response(page, total, Some(start)),
        ))
    }

    /// One page of cursor paging (RFC 9865): the resources after the cursor's `id`, and the
    /// cursor of the next page when there is one.
    #[allow(clippy::too_many_arguments)]
    fn cursor_page(
        &self,
        d: &Directory,
        kinds: &[Kind],
        params: &[(String, String)],
        cursor: &str,
        count: usize,
        selected: Vec<Resource>,
        base: &str,
        projection: &Projection,
    ) -> Result<ScimResponse, ScimError> {
        if kinds.len() != 1
            || param(params, "sortBy").is_some()
            || param(params, "startIndex").is_some()
        {
            return Err(ScimError::bad_request(
                "invalidValue",
                "cursor paging runs in id order over one resource type: use it without sortBy or startIndex",
            ));
        }
        // The query a cursor belongs to: the same directory, type and filter.
        let query = format!(
            "{}\n{}\n{}",
            d.id,
            kinds[0].as_str(),
            param(params, "filter").unwrap_or("")
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let after = if cursor.is_empty() {
            None
        } else {
            Some(self.cursor_key.open(cursor, &query, now)?)
        };
        let total = selected.len();
        let rest: Vec<&Resource> = selected
            .iter()
            .filter(|r| after.as_deref().is_none_or(|a| r.id.as_str() > a))
            .collect();
        let page: Vec<Value> = rest
            .iter()
            .take(count)
            .map(|r| self.render(r, base, projection))
            .collect::<Result<_, _>>()?;
        let mut body = list_response(page, total, None);
        if rest.len() > count && count > 0 {
            body["nextCursor"] = json!(self.cursor_key.seal(&query, &rest[count - 1].id, now));
        }
        Ok(ScimResponse::json(200, &body))
    }

    /// `POST …/.search`: the parameters of a list, in a SearchRequest body.
    pub(super) fn search(
        &self,
        d: &Directory,
        kinds: &[Kind],
        req: &ScimRequest,
        base: &str,
    ) -> Result<ScimResponse, ScimError> {
        let body = self.body(req)?;
        let Value::Object(fields) = body else {
            return Err(ScimError::bad_request(
                "invalidSyntax",
                "the body must be a SearchRequest object",
            ));
        };
        let mut params = Vec::new();
        for (key, value) in fields {
            let text = match (key.as_str(), value) {
                ("schemas", _) => continue,
                ("filter" | "sortBy" | "sortOrder", Value::String(s)) => s,
                ("startIndex" | "count", Value::Number(n)) => n.to_string(),
                ("attributes" | "excludedAttributes", Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ScimError::bad_request(
                            "invalidValue",
                            format!("`{key}` must list attribute paths"),
                        )
                    })?
                    .join(","),
                (other, _) => {
                    return Err(ScimError::bad_request(
                        "invalidValue",
                        format!(
                            "`{other}` is not a SearchRequest parameter, or has the wrong type"
                        ),
                    ));
                }
            };
            params.push((key, text));
        }
        self.list(d, kinds, &params, base)
    }

    /// The resources of `kind` that match the filter of `params`, in the order it asks for.
    fn select(
        &self,
        d: &Directory,
        kind: Kind,
        params: &[(String, String)],
        base: &str,
    ) -> Result<Vec<Resource>, ScimError> {
        let get = |name: &str| param(params, name);
        let rt = self.resource_type(kind)?;

        let filter = match get("filter") {
            Some(text) => {
                let options = ParseOptions::default().with_compat(self.config.compat);
                let f = Filter::parse_with(text, &options)?;
                let compiled = f.compile_with(rt, self.config.compat)?;
                Some((f, compiled))
            }
            None => None,
        };
        let mut candidates = match filter.as_ref().and_then(|(f, _)| indexed_lookup(f, kind)) {
            Some(Lookup::Id(id)) => self.store.get(d.id, kind, &id)?.into_iter().collect(),
            Some(Lookup::Name(name)) => self
                .store
                .get_by_name(d.id, kind, &name)?
                .into_iter()
                .collect(),
            Some(Lookup::ExternalId(value)) => {
                self.store.find_by_external_id(d.id, kind, &value)?
            }
            None => self.store.list(d.id, kind)?,
        };
        if let Some((f, compiled)) = &filter {
            let needs_members = mentions(f, &["members", "groups"]);
            let mut kept = Vec::with_capacity(candidates.len());
            for r in candidates {
                let view = if needs_members {
                    self.render(&r, base, &Projection::default())?
                } else {
                    evaluation_view(&r)
                };
                if compiled.matches(&view) {
                    kept.push(r);
                }
            }
            candidates = kept;
        }
        if let Some(sort_by) = get("sortBy") {
            let path = AttrPath::parse(sort_by)?;
            let resolved = rt.resolve_path(&path);
            let ty = resolved.map(|r| r.sub_attribute.unwrap_or(r.attribute).ty);
            let case_exact =
                resolved.is_some_and(|r| r.sub_attribute.unwrap_or(r.attribute).case_exact);
            let descending = get("sortOrder").is_some_and(|o| o.eq_ignore_ascii_case("descending"));
            let mut keyed: Vec<(Option<SortKey>, Resource)> = candidates
                .into_iter()
                .map(|r| (sort_key(&evaluation_view(&r), &path, ty, case_exact), r))
                .collect();
            // Stable: equal keys keep `id` order. Resources without a value sort last.
            keyed.sort_by(|(a, _), (b, _)| match (a, b) {
                (Some(a), Some(b)) => {
                    let o = a.cmp(b);
                    if descending { o.reverse() } else { o }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            });
            candidates = keyed.into_iter().map(|(_, r)| r).collect();
        }
        Ok(candidates)
    }
}

/// A resource as a filter sees it: its attributes with `id`, `externalId`, `active`, `meta`.
fn evaluation_view(r: &Resource) -> Value {
    let mut v = r.attributes.clone();
    if let Value::Object(o) = &mut v {
        o.insert("id".into(), json!(r.id));
        if let Some(e) = &r.external_id {
            o.insert("externalId".into(), json!(e));
        }
        if r.kind == Kind::User {
            o.insert("active".into(), json!(r.active));
        }
        o.insert(
            "meta".into(),
            json!({
                "resourceType": r.kind.as_str(),
                "created": r.created.to_string(),
                "lastModified": r.modified.to_string(),
                "version": super::etag(r.version),
            }),
        );
    }
    v
}

enum Lookup {
    Id(String),
    Name(String),
    ExternalId(String),
}

/// A store index that can answer the filter's top-level condition: `id eq`, `externalId eq`,
/// or `userName eq` (`displayName eq` for groups). The whole filter is still applied to what
/// it returns.
fn indexed_lookup(f: &Filter, kind: Kind) -> Option<Lookup> {
    let term = match f {
        Filter::And(items) => items.iter().find_map(|i| match i {
            Filter::Compare(c) => Some(c),
            _ => None,
        })?,
        Filter::Compare(c) => c,
        _ => return None,
    };
    let (CompareOp::Eq, Literal::String(value)) = (term.op, &term.value) else {
        return None;
    };
    let core = match kind {
        Kind::User => "urn:ietf:params:scim:schemas:core:2.0:User",
        Kind::Group => "urn:ietf:params:scim:schemas:core:2.0:Group",
    };
    if term.path.sub_attr().is_some()
        || term
            .path
            .urn()
            .is_some_and(|u| !u.eq_ignore_ascii_case(core))
    {
        return None;
    }
    let name = term.path.name();
    let unique = if kind == Kind::User {
        "userName"
    } else {
        "displayName"
    };
    if name.eq_ignore_ascii_case("id") {
        Some(Lookup::Id(value.to_string()))
    } else if name.eq_ignore_ascii_case("externalId") {
        Some(Lookup::ExternalId(value.to_string()))
    } else if name.eq_ignore_ascii_case(unique) {
        Some(Lookup::Name(value.to_string()))
    } else {
        None
    }
}

/// Whether the filter names any of the attributes `names`.
fn mentions(f: &Filter, names: &[&str]) -> bool {
    let named = |p: &AttrPath| names.iter().any(|n| p.name().eq_ignore_ascii_case(n));
    match f {
        Filter::Compare(c) => named(&c.path),
        Filter::Present(p) => named(&p.path),
        Filter::Not(inner) => mentions(inner, names),
        Filter::And(items) | Filter::Or(items) => items.iter().any(|i| mentions(i, names)),
        Filter::ValuePath(vp) => named(&vp.path),
    }
}

#[derive(Debug)]
enum SortKey {
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

/// The value a resource sorts by: the first value of a multi-valued attribute (its primary
/// one when marked), compared by type.
fn sort_key(
    view: &Value,
    path: &AttrPath,
    ty: Option<AttributeType>,
    case_exact: bool,
) -> Option<SortKey> {
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
    match (v, ty) {
        (Value::String(s), Some(AttributeType::DateTime)) => {
            DateTime::parse(s).ok().map(SortKey::Time)
        }
        (Value::String(s), _) if case_exact => Some(SortKey::Text(s.clone())),
        (Value::String(s), _) => Some(SortKey::Text(fold(s).into_owned())),
        (Value::Number(n), _) => n.as_f64().map(SortKey::Number),
        (Value::Bool(b), _) => Some(SortKey::Bool(*b)),
        _ => None,
    }
}
