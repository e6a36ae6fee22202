//! Every statement the dashboard reads and processing's loads run is answered through an index:
//! the statements are recorded as the real read functions run them, then each is checked with
//! `EXPLAIN QUERY PLAN` (keyset paging, members in join order, users in error per group and per
//! code, proxy addresses for C1, holders of a product).

use std::sync::Mutex;

use group_licensing::store::{ops, read};
use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};

static RECORDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps each statement as it ran, with its parameters filled in, so that it can be explained.
fn record(event: TraceEvent<'_>) {
    if let TraceEvent::Stmt(stmt, sql) = event
        && let Ok(mut recorded) = RECORDED.lock()
    {
        recorded.push(stmt.expanded_sql().unwrap_or_else(|| sql.to_string()));
    }
}

#[path = "support/tenant.rs"]
mod tenant;

/// Tables that stay small whatever the tenant: reading them whole is fine.
const SMALL: [&str; 3] = ["directory", "products", "work"];

#[test]
fn dashboard_reads_and_processing_loads_use_indexes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    // Many more groups than the two under test, so that table sizes look like a real tenant's.
    let tenant::Tenant {
        table,
        standard,
        enterprise,
        users,
        ..
    } = tenant::conflicted(&path, 40, true, 300);

    let conn = Connection::open(&path).expect("open");
    // No ANALYZE: the server runs with SQLite's default estimates.
    conn.trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(record));
    let page = &users[..10];
    read::user_page(&conn, users[5], 10, None).expect("users page");
    read::user_page(&conn, 0, 10, Some("u1")).expect("users by name");
    read::user_page(&conn, users[5], 10, Some("U")).expect("users by name, later page");
    read::users(&conn, page).expect("users");
    read::user_by_principal_name(&conn, "U3@CONTOSO.COM").expect("by principal name");
    read::holders_page(&conn, "ENTERPRISEPACK", 0, 10).expect("holders");
    read::memberships(&conn, page).expect("memberships");
    read::states(&conn, page).expect("states");
    read::groups(&conn, &[standard, enterprise]).expect("groups");
    read::group_page(
        &conn,
        0,
        10,
        &read::GroupFilter {
            with_errors: Some(true),
            ..Default::default()
        },
    )
    .expect("groups in error");
    read::group_page(
        &conn,
        0,
        10,
        &read::GroupFilter {
            name_contains: Some("sales".into()),
            state: Some("IN_PROGRESS"),
            ..Default::default()
        },
    )
    .expect("groups by name and state");
    read::members_page(&conn, enterprise, 5, 10).expect("members in join order");
    read::error_members_page(&conn, enterprise, None, 0, 10).expect("users in error");
    read::error_members_page(&conn, enterprise, Some("UNIQUENESS_VIOLATION"), 0, 10)
        .expect("users in error per code");
    read::error_counts(&conn, enterprise).expect("error counts");
    read::groups_with_product(&conn, "ENTERPRISEPACK").expect("licensed groups");
    read::names(&conn, &[standard], page).expect("names");
    // A chunk of members with ids close together is read by ranges; scattered ids one by one.
    ops::load_users(&conn, &table, page).expect("load users by range (C1 lookups)");
    let scattered: Vec<i64> = users.iter().step_by(7).copied().collect();
    ops::load_users(&conn, &table, &scattered).expect("load users one by one");
    read::states(&conn, &scattered).expect("states, one by one");
    conn.trace_v2(TraceEventCodes::empty(), None);

    let mut statements = RECORDED.lock().expect("recorded").clone();
    statements.sort();
    statements.dedup();
    assert!(statements.len() >= 15, "{statements:#?}");
    for kind in ["BETWEEN", "json_each("] {
        assert!(
            statements
                .iter()
                .any(|s| s.contains(kind) && s.contains("assignment_sets")),
            "no load with {kind}: {statements:#?}"
        );
    }
    let mut scans = Vec::new();
    for sql in &statements {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("explain {sql}: {e}"));
        let details: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        if std::env::var_os("SHOW_PLANS").is_some() {
            println!("{sql}\n  {}", details.join("\n  "));
        }
        for detail in details {
            let words: Vec<&str> = detail.split_whitespace().collect();
            // The list of ids a load was given (`json_each(?)`), not a table.
            let id_list = detail.contains("VIRTUAL TABLE") && sql.contains("FROM json_each(");
            // An exact count of the groups that have members in error (Q2) reads every group
            // once, each through the error index.
            let group_count = sql.contains("count(*) FROM groups g WHERE EXISTS");
            // A text inside a group's name is found by reading every name: no index holds
            // substrings. Groups number in thousands where users number in millions.
            let name_search = sql.contains("instr(lower(g.display_name)");
            // "SCAN t" (or an alias) with no index after it.
            if words.first() == Some(&"SCAN")
                && !words.get(1).is_some_and(|t| SMALL.contains(t))
                && !detail.contains("USING")
                && !id_list
                && !group_count
                && !name_search
            {
                scans.push(format!("{detail}\n    in: {sql}"));
            }
            // An automatic index is built by reading the whole table, at every run.
            if detail.contains("AUTOMATIC") {
                scans.push(format!("{detail}\n    in: {sql}"));
            }
            // Keyset paging reads a page in index order, never by sorting the whole list.
            if sql.contains(" LIMIT ") && detail.starts_with("USE TEMP B-TREE FOR ORDER BY") {
                scans.push(format!("{detail}\n    in: {sql}"));
            }
        }
    }
    assert!(
        scans.is_empty(),
        "statements scanning a large table without an index:\n{}",
        scans.join("\n")
    );
}
