//! `POST /Bulk` (RFC 7644 §3.7): many operations in one request, each answered on its own,
//! with `bulkId` references resolved whatever the order of the operations.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{SCIM_JSON, ScimError, ScimRequest, ScimResponse, Service, declares};
use crate::scim::filter::eval::get as member;
use crate::store::Directory;

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Most operations in one bulk request.
pub(super) const MAX_OPERATIONS: usize = 1000;

struct Operation {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
}

impl Service {
    pub(super) fn bulk(&self, d: &Directory, req: &ScimRequest) -> Result<ScimResponse, ScimError> {
        let body = self.body(req)?;
        if !body.is_object() {
            return Err(ScimError::bad_request(
                "invalidSyntax",
                "the body must be a BulkRequest object",
            ));
        }
        let get = |name: &str| member(&body, name);
        if !declares(&body, BULK_REQUEST) {
            return Err(ScimError::bad_request(
                "invalidSyntax",
                format!("`schemas` must name {BULK_REQUEST}"),
            ));
        }
        let fail_on_errors = match get("failOnErrors") {
            None | Some(Value::Null) => None,
            // 0, -1 or 1.5 asks for something: refused, not read as "no limit".
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64(),
            Some(_) => {
                return Err(ScimError::bad_request(
                    "invalidValue",
                    "`failOnErrors` must be a positive integer",
                ));
            }
        };
        let Some(Value::Array(raw)) = get("Operations") else {
            return Err(ScimError::bad_request(
                "invalidSyntax",
                "a BulkRequest needs an `Operations` array",
            ));
        };
        if raw.len() > MAX_OPERATIONS {
            return Err(ScimError::new(
                413,
                None,
                format!("at most {MAX_OPERATIONS} operations per bulk request"),
            ));
        }
        let ops = raw
            .iter()
            .enumerate()
            .map(|(i, op)| operation(i, op))
            .collect::<Result<Vec<_>, _>>()?;
        // A reference to a bulkId two operations share would name either resource.
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = ops
            .iter()
            .filter_map(|o| o.bulk_id.as_deref())
            .find(|id| !seen.insert(*id))
        {
            return Err(ScimError::bad_request(
                "invalidValue",
                format!("two operations have the bulkId `{twice}`: each must be unique"),
            ));
        }

        let mut resolved: BTreeMap<String, Result<String, ()>> = BTreeMap::new();
        let mut results: Vec<Option<Value>> = vec![None; ops.len()];
        let mut errors = 0u64;
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        // Run every operation whose references are known; repeat while that makes progress.
        while !pending.is_empty() {
            let before = pending.len();
            let mut waiting = Vec::new();
            for i in pending {
                if fail_on_errors.is_some_and(|max| errors >= max) {
                    break;
                }
                let op = &ops[i];
                let refs = references(op);
                if let Some(missing) = refs.iter().find(|r| !resolved.contains_key(*r)) {
                    if ops
                        .iter()
                        .any(|o| o.bulk_id.as_deref() == Some(missing.as_str()))
                    {
                        waiting.push(i);
                        continue;
                    }
                    results[i] = Some(failure(
                        op,
                        409,
                        Some("invalidValue"),
                        &format!("no operation has bulkId `{missing}`"),
                    ));
                    errors += 1;
                    continue;
                }
                if let Some(failed) = refs
                    .iter()
                    .find(|r| resolved.get(*r).is_some_and(Result::is_err))
                {
                    results[i] = Some(failure(
                        op,
                        409,
                        Some("invalidValue"),
                        &format!("the operation with bulkId `{failed}` failed"),
                    ));
                    errors += 1;
                    continue;
                }
                let ids: BTreeMap<&str, &str> = resolved
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().ok().map(|id| (k.as_str(), id.as_str())))
                    .collect();
                let (result, id) = self.run(d, req, op, &ids);
                if result["status"]
                    .as_str()
                    .is_some_and(|s| !s.starts_with('2'))
                {
                    errors += 1;
                }
                if let Some(bulk_id) = &op.bulk_id {
                    resolved.insert(bulk_id.clone(), id.ok_or(()));
                }
                results[i] = Some(result);
            }
            if fail_on_errors.is_some_and(|max| errors >= max) {
                break;
            }
            if waiting.len() == before {
                // Nothing could run: the remaining operations refer to each other in a circle.
                for &i in &waiting {
                    results[i] = Some(failure(
                        &ops[i],
                        409,
                        Some("invalidValue"),
                        "circular bulkId references",
                    ));
                }
                break;
            }
            pending = waiting;
        }
        let answered: Vec<Value> = results.into_iter().flatten().collect();
        Ok(ScimResponse::json(
            200,
            &json!({"schemas": [BULK_RESPONSE], "Operations": answered}),
        ))
    }

    /// Runs one operation through the normal routes; returns its result entry and, for a
    /// successful POST, the new resource's id.
    fn run(
        &self,
        d: &Directory,
        outer: &ScimRequest,
        op: &Operation,
        ids: &BTreeMap<&str, &str>,
    ) -> (Value, Option<String>) {
        let path = substitute_str(&op.path, ids);
        let mut req = ScimRequest::new(&op.method, &format!("/scim/v2/{}{path}", d.name));
        if let Some(auth) = outer.header("Authorization") {
            req.headers.push(("Authorization".into(), auth.to_owned()));
        }
        if let Some(v) = &op.version {
            req.headers.push(("If-Match".into(), v.clone()));
        }
        if let Some(data) = &op.data {
            req.headers.push(("Content-Type".into(), SCIM_JSON.into()));
            req.body = substitute(data, ids).to_string().into_bytes();
        }
        let response = self.handle(&req);
        let mut entry = Map::new();
        entry.insert("method".into(), json!(op.method));
        if let Some(b) = &op.bulk_id {
            entry.insert("bulkId".into(), json!(b));
        }
        entry.insert("status".into(), json!(response.status.to_string()));
        if let Some(v) = response.header("ETag") {
            entry.insert("version".into(), json!(v));
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let location = response.header("Location").map(str::to_owned).or_else(|| {
            (response.status < 300 && op.method != "POST")
                .then(|| format!("/scim/v2/{}{path}", d.name))
        });
        if let Some(l) = &location {
            entry.insert("location".into(), json!(l));
        }
        if response.status >= 400 {
            entry.insert("response".into(), body.clone());
        }
        let id = (response.status == 201)
            .then(|| body["id"].as_str().map(str::to_owned))
            .flatten();
        (Value::Object(entry), id)
    }
}

fn operation(i: usize, op: &Value) -> Result<Operation, ScimError> {
    if !op.is_object() {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            format!("operation {i} is not an object"),
        ));
    }
    let get = |name: &str| member(op, name);
    let text = |name: &str| get(name).and_then(Value::as_str).map(str::to_owned);
    let method = text("method")
        .map(|m| m.to_ascii_uppercase())
        .filter(|m| ["POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()))
        .ok_or_else(|| {
            ScimError::bad_request(
                "invalidValue",
                format!("operation {i}: `method` must be POST, PUT, PATCH or DELETE"),
            )
        })?;
    let path = text("path")
        .filter(|p| p.starts_with('/') && !p.starts_with("/Bulk"))
        .ok_or_else(|| {
            ScimError::bad_request(
                "invalidValue",
                format!("operation {i}: `path` must be a resource path such as /Users"),
            )
        })?;
    let bulk_id = text("bulkId");
    if method == "POST" && bulk_id.is_none() {
        return Err(ScimError::bad_request(
            "invalidValue",
            format!("operation {i}: a POST needs a `bulkId`"),
        ));
    }
    let data = get("data").cloned();
    if method != "DELETE" && data.is_none() {
        return Err(ScimError::bad_request(
            "invalidValue",
            format!("operation {i}: `{method}` needs `data`"),
        ));
    }
    Ok(Operation {
        method,
        path,
        bulk_id,
        version: text("version"),
        data,
    })
}

/// The bulkIds an operation refers to (`bulkId:…` in its path or anywhere in its data).
fn references(op: &Operation) -> Vec<String> {
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.extend(s.strip_prefix("bulkId:").map(str::to_owned)),
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(fields) => fields.values().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for segment in op.path.split('/') {
        out.extend(segment.strip_prefix("bulkId:").map(str::to_owned));
    }
    if let Some(d) = &op.data {
        collect(d, &mut out);
    }
    out
}

fn substitute(v: &Value, ids: &BTreeMap<&str, &str>) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix("bulkId:").and_then(|b| ids.get(b)) {
            Some(id) => json!(id),
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute(i, ids)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, i)| (k.clone(), substitute(i, ids)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn substitute_str(path: &str, ids: &BTreeMap<&str, &str>) -> String {
    path.split('/')
        .map(|seg| {
            seg.strip_prefix("bulkId:")
                .and_then(|b| ids.get(b).copied())
                .unwrap_or(seg)
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn failure(op: &Operation, status: u16, scim_type: Option<&'static str>, detail: &str) -> Value {
    let error = ScimError::new(status, scim_type, detail);
    let body: Value = serde_json::from_slice(&error.to_response().body).unwrap_or(Value::Null);
    let mut entry = json!({"method": op.method, "status": status.to_string(), "response": body});
    if let Some(b) = &op.bulk_id {
        entry["bulkId"] = json!(b);
    }
    entry
}
