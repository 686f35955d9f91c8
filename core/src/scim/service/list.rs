//! Listing resources (RFC 7644 §3.4.2): filter, sort, page, project.

use serde_json::{Value, json};

use super::resource::{Projection, render};
use super::{ScimError, ScimRequest, ScimResponse, Service, list_response};
use crate::scim::filter::{AttrPath, CompiledFilter, Filter, ParseOptions};
use crate::scim::schema::ResourceType;
use crate::store::view::view;
use crate::store::{Directory, Kind, Page, Position, Query, Resource, SortBy, Start};

/// The query string as name/value pairs, percent-decoded (`+` is a space).
pub(crate) fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                crate::percent::decoded(k, true),
                crate::percent::decoded(v, true),
            )
        })
        .collect()
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
    /// Several kinds list one after the other (users, then groups).
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
        let start = integer(params, "startIndex")?.unwrap_or(1).max(1) as u64;
        let count = integer(params, "count")?.map_or(self.config.max_results, |c| {
            (c.max(0) as usize).min(self.config.max_results)
        }) as u64;
        if let Some(cursor) = param(params, "cursor") {
            return self.cursor_page(d, kinds, params, cursor, count, base, &projection);
        }
        let mut total = 0;
        let mut rows = Found::default();
        for &kind in kinds {
            let criteria = self.criteria(d, kind, params)?;
            // The page continues into this kind where the previous kinds ran out.
            let skip = (start - 1).saturating_sub(total);
            let room = count - rows.resources.len() as u64;
            let page = self.store.query(
                &criteria
                    .query(d.id, kind, base, room)
                    .with_start(Start::Offset(skip))
                    .with_groups(self.wants_groups(&projection)),
            )?;
            total += page.total;
            rows.extend(page);
        }
        let page = self.render_page(rows, base, &projection)?;
        Ok(ScimResponse::json(
            200,
            &list_response(page, total as usize, Some(start as usize)),
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
        count: u64,
        base: &str,
        projection: &Projection,
    ) -> Result<ScimResponse, ScimError> {
        let [kind] = kinds else {
            return Err(cursor_misuse());
        };
        if param(params, "startIndex").is_some() {
            return Err(cursor_misuse());
        }
        // The query a cursor belongs to: the same directory, type, filter and order.
        let query = format!(
            "{}\n{}\n{}\n{}\n{}",
            d.id,
            kind.as_str(),
            param(params, "filter").unwrap_or(""),
            param(params, "sortBy").unwrap_or(""),
            param(params, "sortOrder").unwrap_or("")
        );
        let criteria = self.criteria(d, *kind, params)?;
        if let Some(sort) = &criteria.sort
            && ["members", "groups"]
                .iter()
                .any(|n| sort.path.name().eq_ignore_ascii_case(n))
        {
            return Err(ScimError::bad_request(
                "invalidValue",
                "cursor paging cannot sort by members or groups",
            ));
        }
        let now = u64::try_from((self.clock)().unix_seconds()).unwrap_or(0);
        let invalid =
            || ScimError::bad_request("invalidCursor", "the cursor does not fit this query");
        let opened = if cursor.is_empty() {
            None
        } else {
            Some(self.cursor_key.open(cursor, &query, now)?)
        };
        let position = match (&opened, &criteria.sort) {
            (Some(v), Some(_)) => Some(Position::from_json(v).ok_or_else(invalid)?),
            _ => None,
        };
        // One more than the page, to know whether another page follows.
        let mut q = criteria.query(d.id, *kind, base, count.saturating_add(1));
        match (&opened, &position) {
            (_, Some(p)) => q = q.with_start(Start::AfterPosition(p)),
            (Some(v), None) => q = q.with_start(Start::After(v.as_str().ok_or_else(invalid)?)),
            (None, None) => {}
        }
        let found = self
            .store
            .query(&q.with_groups(self.wants_groups(projection)))?;
        let total = found.total;
        let mut rows = Found::default();
        rows.extend(found);
        let more = rows.resources.len() as u64 > count;
        rows.truncate(count as usize);
        // Where the next page starts: after the last row of this one.
        let next = match (more, rows.resources.last()) {
            (true, Some(last)) => Some(match &criteria.sort {
                Some(sort) => {
                    let view = view(criteria.rt, last, None, None, base);
                    Position::of(sort, &view, &last.id).to_json()
                }
                None => json!(last.id),
            }),
            _ => None,
        };
        let page = self.render_page(rows, base, projection)?;
        let mut body = list_response(page, total as usize, None);
        if let Some(next) = next {
            body["nextCursor"] = json!(self.cursor_key.seal(&query, &next, now));
        }
        Ok(ScimResponse::json(200, &body))
    }

    /// Whether a page's users are rendered with their `groups`.
    fn wants_groups(&self, projection: &Projection) -> bool {
        self.resource_type(Kind::User)
            .is_ok_and(|rt| projection.wants(rt, "groups"))
    }

    /// Renders a page of resources. Users' groups come with the page where the store read
    /// them with it; the others' are read in one query for the page.
    fn render_page(
        &self,
        rows: Found,
        base: &str,
        projection: &Projection,
    ) -> Result<Vec<Value>, ScimError> {
        let users_rt = self.resource_type(Kind::User)?;
        let Found {
            resources,
            mut groups,
        } = rows;
        if self.wants_groups(projection) {
            let missing: Vec<(usize, &str)> = resources
                .iter()
                .zip(&groups)
                .enumerate()
                .filter(|(_, (r, g))| r.kind == Kind::User && g.is_none())
                .map(|(i, (r, _))| (i, r.id.as_str()))
                .collect();
            if let Some((_, first)) = missing.first() {
                let directory = resources[0].directory;
                let read = match missing.as_slice() {
                    [_] => vec![self.store.groups_of(directory, first)?],
                    many => {
                        let ids: Vec<&str> = many.iter().map(|(_, id)| *id).collect();
                        self.store.groups_of_each(directory, &ids)?
                    }
                };
                for ((i, _), g) in missing.iter().zip(read) {
                    groups[*i] = Some(g);
                }
            }
        }
        resources
            .iter()
            .zip(&groups)
            .map(|(r, g)| match r.kind {
                Kind::User => Ok(render(users_rt, r, None, g.as_deref(), base, projection)),
                Kind::Group => self.render(r, base, projection),
            })
            .collect()
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
        // Parameter names, as attribute names, in any case; `cursor` as RFC 9865 adds it.
        for (key, value) in fields {
            let text = match (key.to_ascii_lowercase().as_str(), value) {
                ("schemas", _) => continue,
                ("filter" | "sortby" | "sortorder" | "cursor", Value::String(s)) => s,
                ("startindex" | "count", Value::Number(n)) => n.to_string(),
                ("attributes" | "excludedattributes", Value::Array(items)) => items
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
                _ => {
                    return Err(ScimError::bad_request(
                        "invalidValue",
                        format!("`{key}` is not a SearchRequest parameter, or has the wrong type"),
                    ));
                }
            };
            params.push((key, text));
        }
        self.list(d, kinds, &params, base)
    }

    /// The filter and order `params` ask for, resolved against the resource type of `kind`.
    fn criteria(
        &self,
        d: &Directory,
        kind: Kind,
        params: &[(String, String)],
    ) -> Result<Criteria<'_>, ScimError> {
        let rt = self.resource_type(kind)?;
        let filter = match param(params, "filter") {
            Some(text) => {
                let compat = self.compat(d);
                let options = ParseOptions::default().with_compat(compat);
                let f = Filter::parse_with(text, &options)?;
                Some(f.compile_with(rt, compat)?)
            }
            None => None,
        };
        let sort = match param(params, "sortBy") {
            Some(sort_by) => {
                let descending = param(params, "sortOrder")
                    .is_some_and(|o| o.eq_ignore_ascii_case("descending"));
                Some(SortBy::new(rt, AttrPath::parse(sort_by)?, descending))
            }
            None => None,
        };
        Ok(Criteria { rt, filter, sort })
    }
}

/// A list's filter and order, resolved.
struct Criteria<'a> {
    rt: &'a ResourceType,
    filter: Option<CompiledFilter>,
    sort: Option<SortBy>,
}

impl Criteria<'_> {
    fn query<'q>(&'q self, directory: i64, kind: Kind, base: &'q str, limit: u64) -> Query<'q> {
        Query::new(directory, kind, self.rt, base, limit)
            .with_filter(self.filter.as_ref())
            .with_sort(self.sort.as_ref())
    }
}

fn cursor_misuse() -> ScimError {
    ScimError::bad_request(
        "invalidValue",
        "cursor paging runs over one resource type and replaces startIndex: use one or the other",
    )
}

/// The resources of a page, each with its groups when the store read them with it.
#[derive(Default)]
struct Found {
    resources: Vec<Resource>,
    groups: Vec<Option<Vec<String>>>,
}

impl Found {
    fn extend(&mut self, page: Page) {
        let n = page.resources.len();
        match page.groups {
            Some(groups) if groups.len() == n => self.groups.extend(groups.into_iter().map(Some)),
            _ => self.groups.extend(std::iter::repeat_n(None, n)),
        }
        self.resources.extend(page.resources);
    }

    fn truncate(&mut self, n: usize) {
        self.resources.truncate(n);
        self.groups.truncate(n);
    }
}
