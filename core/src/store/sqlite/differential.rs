//! The SQLite store against the evaluator (the shared differential test), and the plans
//! SQLite makes of the translated filters.

use serde_json::json;

use crate::scim::filter::{AttrPath, Filter};
use crate::store::differential::{self, BASE, TestTime, registry};
use crate::store::sqlite::SqliteStore;
use crate::store::{Kind, Position, Query, SortBy, Start, Store};

fn open(clock: crate::store::Clock) -> Box<dyn Store> {
    Box::new(SqliteStore::open_in_memory(clock).unwrap())
}

#[test]
fn sql_filters_select_what_the_evaluator_selects() {
    // Every filter is translated: SQLite has no fallback.
    differential::filters_select_what_the_evaluator_selects(&open, &|_| true, 96);
}

#[test]
fn known_traps_agree() {
    differential::known_traps_agree(&open);
}

/// SQLite's plan for a page of resources selected and ordered by `tail`, one step per `; `.
fn query_plan(conn: &rusqlite::Connection, tail: &str, sql: &super::filter::Sql) -> String {
    let statement =
        format!("EXPLAIN QUERY PLAN SELECT r.id FROM resources r WHERE {tail} LIMIT 100");
    let steps: Vec<String> = conn
        .prepare(&statement)
        .unwrap()
        .query_map(rusqlite::params_from_iter(&sql.params), |r| r.get(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    steps.join("; ")
}

/// A sorted cursor page starts at its position through the index, however deep it is.
#[test]
fn sorted_cursor_pages_seek_their_position() {
    let store = SqliteStore::open_in_memory(TestTime::new().clock()).unwrap();
    let registry = registry();
    let rt = registry.resource_type("User").unwrap();
    let conn = store.lock();
    for (path, descending, range) in [
        ("userName", false, "name_key>?"),
        ("userName", true, "name_key<?"),
        ("id", true, "id<?"),
    ] {
        let sort = SortBy::new(rt, AttrPath::parse(path).unwrap(), descending);
        let view = json!({"id": "m", "userName": "Mallory"});
        let position = Position::of(&sort, &view, "m");
        let q = Query::new(1, Kind::User, rt, BASE, 100)
            .with_sort(Some(&sort))
            .with_start(Start::AfterPosition(&position));
        let mut sql = super::filter::Sql::default();
        let condition = super::selection(&q, &mut sql);
        let after =
            crate::store::sql::column_after(&sort, Kind::User, &position, &mut sql).unwrap();
        let order = crate::store::sql::column_order(&sort, Kind::User).unwrap();
        let plan = query_plan(
            &conn,
            &format!("{condition} AND {after} ORDER BY {order}"),
            &sql,
        );
        assert!(plan.contains(range), "{path} {descending}: {plan}");
    }
}

/// Terms an index answers never scan the directory, wherever they stand in a conjunction,
/// and a page in `id` order does not trade the index for the order.
#[test]
fn indexed_terms_use_an_index() {
    let store = SqliteStore::open_in_memory(TestTime::new().clock()).unwrap();
    let registry = registry();
    let cases = [
        (Kind::User, "userName eq \"Alice\""),
        (Kind::User, "externalId eq \"x\""),
        (Kind::User, "id eq \"x\""),
        (Kind::User, "active eq true and userName eq \"alice\""),
        (Kind::User, "userName sw \"ali\""),
        (Kind::Group, "displayName eq \"Admins\""),
    ];
    let conn = store.lock();
    for (kind, text) in cases {
        let rt = registry.resource_type(kind.as_str()).unwrap();
        let f: Filter = text.parse().unwrap();
        let compiled = f.compile(rt).unwrap();
        let q = Query::new(1, kind, rt, BASE, 100).with_filter(Some(&compiled));
        let mut sql = super::filter::Sql::default();
        let condition = super::selection(&q, &mut sql);
        let plan = query_plan(&conn, &format!("{condition} ORDER BY r.id"), &sql);
        assert!(
            !plan.contains("SCAN") && !plan.contains("resources_by_directory"),
            "`{text}` runs as {plan}"
        );
    }
}
