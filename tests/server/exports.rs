//! The CSV exports (graphql-api.md, "CSV exports"; licensing.md H6), through the real server:
//!
//! - every bad request is refused before any row, as a JSON error with the status and code of
//!   one table; a row per route and parameter is enforced against the server's own list of
//!   routes (`group_licensing::server::export::ROUTES`);
//! - each export, parsed back with the `csv` crate, says cell for cell what GraphQL says of the
//!   same users;
//! - RFC 4180 quoting, CRLF line ends, and no cell a spreadsheet would run as a formula;
//! - admin and reader tokens export, a provisioning token gets 403, no token 401, another
//!   origin 403;
//! - an export of more users than one page holds gives each user once, in id order;
//! - the audit events export gives the history newest first, each column as stored, filtered
//!   by each of `auditEvents`' filters: events of real mutations and processing against what
//!   GraphQL says of them, and events of every kind of actor and target written with the
//!   store's `Journal` before the server starts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use group_licensing::server::export::ROUTES;
use group_licensing::store::Store;
use group_licensing::store::history::{
    Activity, Actor, ActorKind, Category, Event, Journal, Property, Target,
};
use serde_json::{Value, json};

use crate::harness::{BIN, Server, fresh, license, str_of};
use crate::scim::{ADMIN, PROVISIONING, READER, with_tokens};

const E1: &str = "STANDARDPACK";
const E3: &str = "ENTERPRISEPACK";
const EMS: &str = "EMS";
const WA: &str = "WORKPLACE_ANALYTICS";

const ERRORS: &str = "/export/license-errors.csv";
const HOLDERS: &str = "/export/licensed-users.csv";
const EVENTS: &str = "/export/audit-events.csv";

const ERROR_COLUMNS: &str =
    "id,userPrincipalName,displayName,group,product,state,error,message,lastUpdatedDateTime";
const HOLDER_COLUMNS: &str = "id,userPrincipalName,displayName,sources,enabledPlans";
const EVENT_COLUMNS: &str = "id,activityDateTime,category,activityDisplayName,initiatedByKind,initiatedByName,targets,modifiedProperties,result,resultReason,correlationId";

/// An answer: status, `Content-Type`, `Content-Disposition`, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    disposition: String,
    body: String,
}

fn get(s: &Server, path_and_query: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = s.agent().get(s.url(path_and_query));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request
        .call()
        .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(512 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {path_and_query}: the body: {e}"));
    Answer {
        status,
        content_type,
        disposition,
        body,
    }
}

/// An export that must succeed, as its rows (the header checked and left out).
fn export(s: &Server, path_and_query: &str, header: &str) -> Vec<Vec<String>> {
    let answer = get(s, path_and_query, &[]);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.content_type, "text/csv; charset=utf-8");
    assert!(
        answer.disposition.starts_with("attachment; filename=\"")
            && answer.disposition.ends_with(".csv\""),
        "{}",
        answer.disposition
    );
    assert!(
        answer.body.starts_with(&format!("{header}\r\n")),
        "{:?}",
        answer.body
    );
    rows(&answer.body)
}

/// The records after the header, as the `csv` crate reads them.
fn rows(body: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body.as_bytes());
    reader
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("not CSV: {e}\n{body}"))
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn error_code(answer: &Answer) -> String {
    let body: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("not a JSON error ({e}): {answer:?}"));
    str_of(&body["errors"][0]["extensions"]["code"])
}

fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- Bad requests ---------------------------------------------------------------------------------

/// One refused request.
struct Refused {
    route: &'static str,
    /// The parameter it spoils; `""` for one about the route's parameters as a whole.
    parameter: &'static str,
    label: &'static str,
    /// The query string, raw.
    query: String,
    status: u16,
    code: &'static str,
}

fn refused_table(group: &str) -> Vec<Refused> {
    let row = |route, parameter, label, query: String, status, code| Refused {
        route,
        parameter,
        label,
        query,
        status,
        code,
    };
    let mut table = Vec::new();
    let bad = |label, value: &str| {
        row(
            ERRORS,
            "groupId",
            label,
            query(&[("groupId", value)]),
            400,
            "BAD_USER_INPUT",
        )
    };
    for (label, value) in [
        ("empty", ""),
        ("blank", "  "),
        ("not a number", "abc"),
        ("zero", "0"),
        ("negative", "-1"),
        ("a fraction", "1.0"),
        ("padded", " 1"),
        ("leading zero", "01"),
        ("signed", "+1"),
        ("beyond 64 bits", "99999999999999999999"),
    ] {
        table.push(bad(label, value));
    }
    table.extend([
        row(
            ERRORS,
            "groupId",
            "missing",
            String::new(),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            ERRORS,
            "groupId",
            "given twice",
            query(&[("groupId", group), ("groupId", group)]),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            ERRORS,
            "groupId",
            "no such group",
            query(&[("groupId", "999999")]),
            404,
            "NOT_FOUND",
        ),
        row(
            ERRORS,
            "",
            "an unknown parameter",
            query(&[("groupId", group), ("first", "10")]),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            ERRORS,
            "",
            "a token in the URL",
            query(&[("groupId", group), ("access_token", READER)]),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            ERRORS,
            "",
            "percent-encoding of no UTF-8",
            format!("groupId={group}&%FF=1"),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            HOLDERS,
            "skuPartNumber",
            "missing",
            String::new(),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            HOLDERS,
            "skuPartNumber",
            "empty",
            query(&[("skuPartNumber", "")]),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            HOLDERS,
            "skuPartNumber",
            "given twice",
            query(&[("skuPartNumber", E3), ("skuPartNumber", E1)]),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            HOLDERS,
            "skuPartNumber",
            "no such product",
            query(&[("skuPartNumber", "NOPE")]),
            404,
            "NOT_FOUND",
        ),
        row(
            HOLDERS,
            "skuPartNumber",
            "another case (names are case-sensitive)",
            query(&[("skuPartNumber", "enterprisepack")]),
            404,
            "NOT_FOUND",
        ),
        row(
            HOLDERS,
            "",
            "an unknown parameter",
            query(&[("skuPartNumber", E3), ("groupId", group)]),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            HOLDERS,
            "",
            "a token in the URL",
            query(&[("skuPartNumber", E3), ("token", READER)]),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            EVENTS,
            "",
            "an unknown parameter",
            query(&[("first", "10")]),
            400,
            "BAD_USER_INPUT",
        ),
        row(
            EVENTS,
            "",
            "a token in the URL",
            query(&[("access_token", READER)]),
            400,
            "BAD_USER_INPUT",
        ),
    ]);
    let filter = |parameter, label, value: &str| {
        row(
            EVENTS,
            parameter,
            label,
            query(&[(parameter, value)]),
            400,
            "BAD_USER_INPUT",
        )
    };
    for (parameter, label, value) in [
        ("since", "not a time", "yesterday"),
        ("since", "no such month", "2026-13-01T00:00:00Z"),
        ("since", "a date without a time", "2026-05-01"),
        ("since", "empty", ""),
        ("until", "no offset", "2026-05-01T12:00:00"),
        ("until", "empty", ""),
        ("category", "no such category", "USERS"),
        ("category", "another case", "user_management"),
        ("category", "empty", ""),
        ("userId", "not a number", "abc"),
        ("userId", "zero", "0"),
        ("groupId", "leading zero", "01"),
        ("groupId", "negative", "-3"),
        ("skuPartNumber", "empty", ""),
        ("skuPartNumber", "blank", "  "),
        ("result", "no such result", "OK"),
        ("result", "another case", "success"),
    ] {
        table.push(filter(parameter, label, value));
    }
    for (parameter, value) in [
        ("since", "2026-05-01T12:00:00Z"),
        ("until", "2026-05-01T12:00:00Z"),
        ("category", "POLICY"),
        ("userId", "1"),
        ("groupId", "1"),
        ("skuPartNumber", E3),
        ("result", "SUCCESS"),
    ] {
        table.push(row(
            EVENTS,
            parameter,
            "given twice",
            query(&[(parameter, value), (parameter, value)]),
            400,
            "BAD_USER_INPUT",
        ));
    }
    table
}

#[test]
fn every_route_and_parameter_has_a_row() {
    let table = refused_table("1");
    let served: BTreeSet<(&str, &str)> = ROUTES
        .iter()
        .flat_map(|r| {
            std::iter::once((r.path, "")).chain(r.parameters.iter().map(move |p| (r.path, *p)))
        })
        .collect();
    let covered: BTreeSet<(&str, &str)> = table.iter().map(|r| (r.route, r.parameter)).collect();
    let missing: Vec<_> = served.difference(&covered).collect();
    assert!(missing.is_empty(), "no bad request for {missing:?}");
    let unknown: Vec<_> = covered.difference(&served).collect();
    assert!(
        unknown.is_empty(),
        "rows for what the server has not: {unknown:?}"
    );
    for route in ROUTES {
        for parameter in route.parameters {
            let labels: Vec<&str> = table
                .iter()
                .filter(|r| r.route == route.path && r.parameter == *parameter)
                .map(|r| r.label)
                .collect();
            let mut needed = vec!["given twice"];
            if route.required.contains(parameter) {
                needed.push("missing");
            }
            for needed in needed {
                assert!(
                    labels.contains(&needed),
                    "{} {parameter}: no row `{needed}`",
                    route.path
                );
            }
        }
    }
}

#[test]
fn bad_requests_are_refused_before_any_row_with_the_tables_status_and_code() {
    let s = fresh();
    let group = s.create_group("Sales");
    for row in refused_table(&group) {
        let path = if row.query.is_empty() {
            row.route.to_string()
        } else {
            format!("{}?{}", row.route, row.query)
        };
        let answer = get(&s, &path, &[]);
        assert_eq!(
            (answer.status, answer.content_type.as_str()),
            (row.status, "application/json; charset=utf-8"),
            "{} {}: {}: {answer:?}",
            row.route,
            row.parameter,
            row.label
        );
        assert_eq!(
            error_code(&answer),
            row.code,
            "{} {}: {}",
            row.route,
            row.parameter,
            row.label
        );
        assert!(
            !answer.body.contains(READER),
            "the answer repeats the token: {answer:?}"
        );
    }
    // The same routes answer a good request.
    export(&s, &format!("{ERRORS}?groupId={group}"), ERROR_COLUMNS);
    export(&s, &format!("{HOLDERS}?skuPartNumber={E3}"), HOLDER_COLUMNS);
    export(&s, EVENTS, EVENT_COLUMNS);
}

// ---- What the exports say --------------------------------------------------------------------------

const ERROR_STATES: &str = r#"query($g: ID!) { group(id: $g) {
  displayName licenseErrorCount
  membersWithLicenseErrors(first: 1000) { totalCount edges { node {
    id userPrincipalName displayName
    licenseAssignmentStates {
      product { skuPartNumber } assignedByGroup { id } state error
      errorDetail { message } lastUpdatedDateTime
    }
  } } }
} }"#;

/// The rows of the users-in-error export as GraphQL gives them, in the export's order.
fn errors_by_graphql(s: &Server, group: &str) -> Vec<Vec<String>> {
    let data = s.ok(ERROR_STATES, json!({ "g": group }));
    let g = &data["group"];
    let mut out = Vec::new();
    for edge in g["membersWithLicenseErrors"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let user = &edge["node"];
        for state in user["licenseAssignmentStates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if state["assignedByGroup"]["id"] != group || state["error"] == "NONE" {
                continue;
            }
            out.push(vec![
                str_of(&user["id"]),
                str_of(&user["userPrincipalName"]),
                str_of(&user["displayName"]),
                str_of(&g["displayName"]),
                str_of(&state["product"]["skuPartNumber"]),
                str_of(&state["state"]),
                str_of(&state["error"]),
                str_of(&state["errorDetail"]["message"]),
                str_of(&state["lastUpdatedDateTime"]),
            ]);
        }
    }
    out
}

/// Rows with their cell `at`, a time, as an instant: the exports write times as stored (UTC,
/// milliseconds, `Z`), GraphQL with an offset.
fn with_instants(rows: Vec<Vec<String>>, at: usize) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|mut row| {
            if let Some(time) = row.get_mut(at) {
                let instant = chrono::DateTime::parse_from_rfc3339(time)
                    .unwrap_or_else(|e| panic!("not RFC 3339: {time:?}: {e}"));
                *time = instant.timestamp_millis().to_string();
            }
            row
        })
        .collect()
}

/// A group with a user in error for each check and a former member whose withdrawal is
/// blocked, beside a user in error from another group and direct licenses.
struct ErrorTenant {
    sales: String,
    other: String,
}

fn error_tenant(s: &Server) -> ErrorTenant {
    s.set_prepaid(E1, 10);
    s.set_prepaid(E3, 10);
    s.set_prepaid(EMS, 1);
    s.set_prepaid(WA, 10);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    let bob = s.create_user_with("bob@contoso.com", Some("US"), &["SMTP:shared@contoso.com"]);
    let cho = s.create_user("cho@contoso.com", Some("CN"));
    let dan = s.create_user("dan@contoso.com", Some("US"));
    let eve = s.create_user("eve@contoso.com", Some("US"));
    let gus = s.create_user("gus@contoso.com", Some("US"));
    let hal = s.create_user_with("hal@contoso.com", Some("US"), &["smtp:shared@contoso.com"]);
    s.assign_direct(&dan, json!([license(E1, &[])]), &[]);
    let sales = s.create_group("Sales");
    s.assign_group(&sales, json!([license(E3, &[]), license(EMS, &[])]), &[]);
    // gus first: it holds E3 (Exchange) from Sales, then Workplace Analytics directly, then
    // leaves, and the withdrawal is blocked (P3).
    s.add_members(&sales, &[&gus]);
    s.wait_complete(&sales);
    s.assign_direct(&gus, json!([license(WA, &[])]), &[]);
    s.remove_members(&sales, &[&gus]);
    s.wait_complete(&sales);
    // ann takes the one EMS seat (gus's withdrawal freed it, or it fails too); bob and hal share a proxy address (C1); cho is in CN (C2);
    // dan's direct E1 clashes with E3 (C3); eve finds no EMS seat (C5).
    s.add_members(&sales, &[&ann, &bob, &cho, &dan, &eve, &hal]);
    s.wait_complete(&sales);
    let other = s.create_group("Other");
    s.assign_group(&other, json!([license(E1, &[])]), &[]);
    s.add_members(&other, &[&cho]);
    s.wait_complete(&other);
    assert_eq!(
        s.state_of(&gus, E3, Some(&sales))["state"],
        "ACTIVE_WITH_ERROR"
    );
    assert_eq!(s.state_of(&cho, E1, Some(&other))["state"], "ERROR");
    ErrorTenant { sales, other }
}

#[test]
fn the_users_in_error_export_says_what_graphql_says() {
    let s = fresh();
    let t = error_tenant(&s);
    let exported = export(&s, &format!("{ERRORS}?groupId={}", t.sales), ERROR_COLUMNS);
    let expected = errors_by_graphql(&s, &t.sales);
    let codes: BTreeSet<&str> = expected.iter().map(|r| r[6].as_str()).collect();
    assert_eq!(
        codes,
        BTreeSet::from([
            "COUNT_VIOLATION",
            "DEPENDENCY_VIOLATION",
            "MUTUALLY_EXCLUSIVE_VIOLATION",
            "PROHIBITED_IN_USAGE_LOCATION_VIOLATION",
            "UNIQUENESS_VIOLATION",
        ]),
        "the tenant has one user in error for each check: {expected:#?}"
    );
    assert_eq!(exported.len(), expected.len(), "{exported:#?}");
    let sorted = |rows| with_instants(rows, 8).into_iter().collect::<BTreeSet<_>>();
    assert_eq!(sorted(exported.clone()), sorted(expected));
    let ids: Vec<i64> = exported
        .iter()
        .map(|r| r[0].parse().expect("an id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "by user id: {ids:?}");
    assert!(exported.iter().all(|r| r[3] == "Sales"));
    // The other group's error is its own export's.
    let other = export(&s, &format!("{ERRORS}?groupId={}", t.other), ERROR_COLUMNS);
    assert_eq!(
        other
            .iter()
            .map(|r| (r[1].as_str(), r[3].as_str(), r[4].as_str(), r[6].as_str()))
            .collect::<Vec<_>>(),
        [(
            "cho@contoso.com",
            "Other",
            E1,
            "PROHIBITED_IN_USAGE_LOCATION_VIOLATION"
        )]
    );
}

const HOLDER_STATES: &str = r#"query($s: String!) { product(skuPartNumber: $s) {
  licensedUsers(first: 1000) { totalCount edges { node {
    id userPrincipalName displayName
    assignedLicenses { product { skuPartNumber } enabledPlans { servicePlanName } }
    licenseAssignmentStates { product { skuPartNumber } assignedByGroup { id displayName } state }
  } } }
} }"#;

/// The rows of the holders export as GraphQL gives them: sources from the applied
/// assignments, direct first and groups by id.
fn holders_by_graphql(s: &Server, sku: &str) -> Vec<Vec<String>> {
    let data = s.ok(HOLDER_STATES, json!({ "s": sku }));
    let mut out = Vec::new();
    for edge in data["product"]["licensedUsers"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let user = &edge["node"];
        let mut direct = false;
        let mut groups: BTreeMap<i64, String> = BTreeMap::new();
        for state in user["licenseAssignmentStates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let applied = state["state"] == "ACTIVE" || state["state"] == "ACTIVE_WITH_ERROR";
            if state["product"]["skuPartNumber"] != sku || !applied {
                continue;
            }
            match state["assignedByGroup"]["id"].as_str() {
                None => direct = true,
                Some(id) => {
                    groups.insert(
                        id.parse().expect("an id"),
                        str_of(&state["assignedByGroup"]["displayName"]),
                    );
                }
            }
        }
        let mut sources: Vec<String> = Vec::new();
        if direct {
            sources.push("direct".into());
        }
        sources.extend(
            groups
                .iter()
                .map(|(id, name)| format!("group {name} ({id})")),
        );
        let plans: Vec<String> = user["assignedLicenses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["product"]["skuPartNumber"] == sku)
            .flat_map(|l| crate::harness::plan_names(&l["enabledPlans"]))
            .collect();
        out.push(vec![
            str_of(&user["id"]),
            str_of(&user["userPrincipalName"]),
            str_of(&user["displayName"]),
            sources.join("; "),
            plans.join("; "),
        ]);
    }
    out
}

#[test]
fn the_holders_export_says_what_graphql_says() {
    let s = fresh();
    error_tenant(&s);
    // More sources: a second group disabling Teams, and a direct E3 beside a group's.
    let teamless = s.create_group("No Teams");
    s.assign_group(&teamless, json!([license(E3, &["TEAMS1"])]), &[]);
    let ivy = s.create_user("ivy@contoso.com", Some("US"));
    let jon = s.create_user("jon@contoso.com", Some("US"));
    s.add_members(&teamless, &[&ivy, &jon]);
    s.wait_complete(&teamless);
    s.assign_direct(
        &jon,
        json!([license(E3, &["SHAREPOINTENTERPRISE", "TEAMS1"])]),
        &[],
    );
    let full = s.create_group("Full E3");
    s.assign_group(&full, json!([license(E3, &[])]), &[]);
    s.add_members(&full, &[&ivy]);
    s.wait_complete(&full);
    for sku in [E3, EMS, E1, WA] {
        let exported = export(
            &s,
            &format!("{HOLDERS}?skuPartNumber={sku}"),
            HOLDER_COLUMNS,
        );
        let expected = holders_by_graphql(&s, sku);
        assert!(!expected.is_empty(), "{sku} has holders");
        assert_eq!(exported, expected, "{sku}");
    }
    let e3 = export(&s, &format!("{HOLDERS}?skuPartNumber={E3}"), HOLDER_COLUMNS);
    let jon_row = e3.iter().find(|r| r[0] == jon).expect("jon holds E3");
    assert_eq!(jon_row[3], format!("direct; group No Teams ({teamless})"));
    assert_eq!(
        jon_row[4], "EXCHANGE_S_ENTERPRISE; SHAREPOINTENTERPRISE",
        "the union of what each source enables (L2)"
    );
    let ivy_row = e3.iter().find(|r| r[0] == ivy).expect("ivy holds E3");
    assert_eq!(
        ivy_row[3],
        format!("group No Teams ({teamless}); group Full E3 ({full})")
    );
    assert_eq!(
        ivy_row[4],
        "EXCHANGE_S_ENTERPRISE; SHAREPOINTENTERPRISE; TEAMS1"
    );
}

// ---- Quoting and formulas ------------------------------------------------------------------------

#[test]
fn names_are_quoted_by_rfc_4180_and_never_run_as_formulas() {
    let s = fresh();
    s.set_prepaid(E3, 3);
    // What each user's displayName is made, and how the export must write it.
    let names: [(&str, &str); 9] = [
        ("Lee, Ann", "Lee, Ann"),
        ("Ann \"the admin\" Lee", "Ann \"the admin\" Lee"),
        (
            "=HYPERLINK(\"http://x.example\",\"y\")",
            "'=HYPERLINK(\"http://x.example\",\"y\")",
        ),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("two\nlines", "two\nlines"),
        ("\tindented", "'\tindented"),
        ("\rreturn", "'\rreturn"),
    ];
    let group_name = "Sales, \"EMEA\"";
    let group = s.create_group(group_name);
    s.assign_group(&group, json!([license(E3, &[])]), &[]);
    let mut ids = Vec::new();
    for (i, _) in names.iter().enumerate() {
        ids.push(s.create_user(&format!("user{i}@contoso.com"), Some("US")));
    }
    // The API refuses control characters in names; data from elsewhere (an older server, a
    // database edited by hand) may hold them, and the exports must still write them safely.
    {
        let db = rusqlite::Connection::open(&s.db).expect("open the database");
        db.busy_timeout(std::time::Duration::from_secs(10))
            .expect("busy timeout");
        for (id, (made, _)) in ids.iter().zip(&names) {
            db.execute(
                "UPDATE users SET display_name = ?1 WHERE id = ?2",
                rusqlite::params![made, id.parse::<i64>().expect("an id")],
            )
            .expect("rename");
        }
    }
    let members: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.add_members(&group, &members);
    s.wait_complete(&group);
    let written: BTreeMap<&str, &str> = ids
        .iter()
        .map(String::as_str)
        .zip(names.iter().map(|(_, w)| *w))
        .collect();
    let answer = get(&s, &format!("{HOLDERS}?skuPartNumber={E3}"), &[]);
    let holders = rows(&answer.body);
    let errors = export(&s, &format!("{ERRORS}?groupId={group}"), ERROR_COLUMNS);
    assert_eq!((holders.len(), errors.len()), (3, 6), "seats for three");
    for row in holders.iter().chain(&errors) {
        assert_eq!(row[2], written[row[0].as_str()], "user {}", row[0]);
    }
    for row in &holders {
        assert_eq!(row[3], format!("group {group_name} ({group})"));
    }
    for row in &errors {
        assert_eq!(row[3], group_name);
        assert!(
            row[7].starts_with("License assignment failed"),
            "{}",
            row[7]
        );
    }
    // On the wire: quoted fields, doubled quotes, CRLF after each record (a newline inside a
    // quoted field is the field's).
    let body = &answer.body;
    assert!(body.contains(",\"Lee, Ann\","), "{body}");
    assert!(body.contains(",\"Ann \"\"the admin\"\" Lee\","), "{body}");
    assert!(
        body.contains(&format!(",\"group Sales, \"\"EMEA\"\" ({group})\",")),
        "{body}"
    );
    let outside_quotes: String = body.split('"').step_by(2).collect::<Vec<_>>().concat();
    assert_eq!(
        outside_quotes.matches("\r\n").count(),
        holders.len() + 1,
        "one CRLF per record: {body:?}"
    );
    assert!(!outside_quotes.replace("\r\n", "").contains(['\n', '\r']));
}

// ---- Access -----------------------------------------------------------------------------------------

#[test]
fn admin_and_reader_tokens_export_and_no_other_request_does() {
    let dir = tempfile::TempDir::new().expect("dir");
    let s = with_tokens(dir.path(), &[]);
    let group = {
        let mut response = s
            .agent()
            .post(s.url("/graphql"))
            .header("Authorization", &format!("Bearer {ADMIN}"))
            .send_json(
                json!({ "query": "mutation { createGroup(displayName: \"Sales\") { id } }" }),
            )
            .expect("createGroup");
        let body: Value = response.body_mut().read_json().expect("JSON");
        str_of(&body["data"]["createGroup"]["id"])
    };
    let paths = [
        format!("{ERRORS}?groupId={group}"),
        format!("{HOLDERS}?skuPartNumber={E3}"),
        format!("{EVENTS}?category=POLICY"),
    ];
    assert_eq!(paths.len(), ROUTES.len(), "a path for every export");
    for path in &paths {
        for token in [ADMIN, READER] {
            let answer = get(&s, path, &[("Authorization", &format!("Bearer {token}"))]);
            assert_eq!(answer.status, 200, "{path}: {answer:?}");
            assert_eq!(answer.content_type, "text/csv; charset=utf-8");
        }
        let refused: [(Option<String>, u16, &str); 4] = [
            (Some(format!("Bearer {PROVISIONING}")), 403, "FORBIDDEN"),
            (None, 401, "UNAUTHENTICATED"),
            (
                Some("Bearer unknown-token-0123456789".into()),
                401,
                "UNAUTHENTICATED",
            ),
            (Some(format!("Basic {READER}")), 401, "UNAUTHENTICATED"),
        ];
        for (authorization, status, code) in refused {
            let headers: Vec<(&str, &str)> = authorization
                .as_deref()
                .map(|a| ("Authorization", a))
                .into_iter()
                .collect();
            let answer = get(&s, path, &headers);
            assert_eq!(
                (answer.status, error_code(&answer).as_str()),
                (status, code),
                "{path} with {authorization:?}"
            );
        }
        // A token in the URL is no token.
        let answer = get(&s, &format!("{path}&access_token={READER}"), &[]);
        assert_eq!(answer.status, 401, "{answer:?}");
    }
}

#[test]
fn an_export_asked_from_another_origin_is_refused() {
    let s = fresh();
    let group = s.create_group("Sales");
    let paths = [
        format!("{ERRORS}?groupId={group}"),
        format!("{HOLDERS}?skuPartNumber={E3}"),
        EVENTS.to_string(),
    ];
    assert_eq!(paths.len(), ROUTES.len(), "a path for every export");
    for path in &paths {
        for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
            let answer = get(&s, path, &[("Origin", origin)]);
            assert_eq!(answer.status, 403, "{path} from {origin}: {answer:?}");
            assert_eq!(error_code(&answer), "FORBIDDEN");
            assert!(!answer.body.contains("id,"), "rows sent: {answer:?}");
        }
        let own = get(&s, path, &[("Origin", &s.base)]);
        assert_eq!(
            own.status, 200,
            "{path} from the server's own origin: {own:?}"
        );
    }
}

// ---- Pages ----------------------------------------------------------------------------------------

/// A generated tenant of `users` users (`group-licensing generate`, the bundled rules) under
/// `dir`, served.
fn generated(dir: &Path, users: u64) -> Server {
    let db = dir.join("generated.db");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let status = Command::new(BIN)
        .args(["generate", "--db"])
        .arg(&db)
        .args(["--users", &users.to_string(), "--rules"])
        .arg(&rules)
        .stdout(Stdio::null())
        .status()
        .expect("run generate");
    assert!(status.success(), "generate failed");
    Server::start(&db, &rules)
}

#[test]
fn an_export_of_many_pages_gives_every_user_once_in_id_order() {
    let dir = tempfile::TempDir::new().expect("dir");
    // Holders and users in error past a page of the store's reads (2,000 users) each.
    let users = 6_000;
    let s = generated(dir.path(), users);
    let group = s.ok(
        "{ groups(first: 1) { edges { node { id displayName } } } }",
        json!({}),
    )["groups"]["edges"][0]["node"]["id"]
        .clone();
    let group = str_of(&group);
    s.set_prepaid(E3, 3_000);
    s.assign_group(&group, json!([license(E3, &[])]), &[]);
    s.wait_complete_within(&group, std::time::Duration::from_secs(120));
    let counts = s.ok(
        "query($g: ID!, $s: String!) { group(id: $g) { licenseErrorCount } product(skuPartNumber: $s) { consumedUnits } }",
        json!({ "g": group, "s": E3 }),
    );
    let holders = export(&s, &format!("{HOLDERS}?skuPartNumber={E3}"), HOLDER_COLUMNS);
    let errors = export(&s, &format!("{ERRORS}?groupId={group}"), ERROR_COLUMNS);
    for (what, rows, count) in [
        ("holders", &holders, &counts["product"]["consumedUnits"]),
        (
            "users in error",
            &errors,
            &counts["group"]["licenseErrorCount"],
        ),
    ] {
        let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().expect("an id")).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{what}: each once, in id order"
        );
        assert_eq!(Some(ids.len() as i64), count.as_i64(), "{what}");
    }
    assert_eq!(holders.len() + errors.len(), users as usize);
}

// ---- Audit events ---------------------------------------------------------------------------------

/// Writes each batch of events in one transaction of its own, at its time and by its actor, as
/// the writer does (`Journal`), into the database at `db`; the ids of each batch.
fn record(db: &Path, batches: Vec<(Actor, &'static str, Vec<Event>)>) -> Vec<Vec<i64>> {
    let store = Store::open(db).expect("open the database");
    batches
        .into_iter()
        .map(|(actor, at, events)| {
            store
                .write_blocking(move |tx| {
                    let mut journal = Journal::open(tx, &actor, None, at)?;
                    let ids = events
                        .iter()
                        .map(|e| journal.record(e))
                        .collect::<Result<Vec<i64>, _>>()?;
                    journal.finish()?;
                    Ok(ids)
                })
                .expect("record the events")
        })
        .collect()
}

fn token(name: &str) -> Actor {
    Actor {
        kind: ActorKind::Token,
        name: name.into(),
    }
}

const SALES: &str = "Sales, \"EMEA\"";

/// Six events of every kind of actor, target and result, a minute apart.
fn history() -> Vec<(Actor, &'static str, Vec<Event>)> {
    let ann = || Target::user(1, Some("ann@contoso.com".into()));
    let sales = || Target::group(7, Some(SALES.into()));
    let mut licensed = Event::new(
        Activity::ChangeUserLicense,
        vec![ann().with(vec![Property::new(
            "ENTERPRISEPACK (group 7)",
            Some("PENDING".into()),
            Some("ACTIVE".into()),
        )])],
    );
    licensed.category = Category::LicenseProcessing;
    licensed.group = Some(7);
    licensed.products = vec![E3.into()];
    vec![
        (
            token("alice"),
            "2026-03-01T10:00:00.000Z",
            vec![Event::new(
                Activity::AddUser,
                vec![ann().with(vec![Property::new(
                    "displayName",
                    None,
                    Some("Lee, Ann".into()),
                )])],
            )],
        ),
        (
            Actor {
                kind: ActorKind::Provisioning,
                name: "scim-bot".into(),
            },
            "2026-03-01T10:01:00.000Z",
            vec![
                Event::new(Activity::AddMember, vec![sales(), ann()]),
                Event::new(
                    Activity::AddMember,
                    vec![sales(), Target::user(2, Some("bob@contoso.com".into()))],
                ),
            ],
        ),
        (Actor::system(), "2026-03-01T10:02:00.000Z", vec![licensed]),
        (
            token("@ops"),
            "2026-03-01T10:03:00.000Z",
            vec![
                Event::new(
                    Activity::SetPrepaidUnits,
                    vec![Target::product(E3).with(vec![Property::new(
                        "prepaidUnits",
                        Some("0".into()),
                        Some("-5".into()),
                    )])],
                )
                .failure("BAD_USER_INPUT", "units must be 0 or more, got -5"),
            ],
        ),
        (
            Actor::local(),
            "2026-03-01T10:04:00.000Z",
            vec![Event::new(
                Activity::ReloadRules,
                vec![Target::of("RuleSet", None, None)],
            )],
        ),
    ]
}

#[test]
fn the_audit_events_export_gives_the_history_newest_first_by_each_filter() {
    let dir = tempfile::TempDir::new().expect("dir");
    let db = dir.path().join("t.db");
    let ids = record(&db, history());
    assert_eq!(ids, [vec![1], vec![2, 3], vec![4], vec![5], vec![6]]);
    let s = Server::start(&db, &crate::harness::scenario_rules());
    let all = export(&s, EVENTS, EVENT_COLUMNS);
    let sales_target = format!("Group/7/{SALES}");
    let expected: Vec<Vec<String>> = [
        [
            "6",
            "2026-03-01T10:04:00.000Z",
            "POLICY",
            "Reload rules",
            "LOCAL",
            "local",
            "RuleSet//",
            "",
            "SUCCESS",
            "",
            "6",
        ]
        .map(String::from),
        [
            "5",
            "2026-03-01T10:03:00.000Z",
            "LICENSE_MANAGEMENT",
            "Set prepaid units",
            "TOKEN",
            "'@ops",
            "Product/ENTERPRISEPACK/ENTERPRISEPACK",
            "prepaidUnits: 0 → -5",
            "FAILURE",
            "BAD_USER_INPUT: units must be 0 or more, got -5",
            "5",
        ]
        .map(String::from),
        [
            "4",
            "2026-03-01T10:02:00.000Z",
            "LICENSE_PROCESSING",
            "Change user license",
            "SYSTEM",
            "group-based licensing",
            "User/1/ann@contoso.com",
            "ENTERPRISEPACK (group 7): PENDING → ACTIVE",
            "SUCCESS",
            "",
            "4",
        ]
        .map(String::from),
        [
            "3",
            "2026-03-01T10:01:00.000Z",
            "GROUP_MANAGEMENT",
            "Add member to group",
            "PROVISIONING",
            "scim-bot",
            &format!("{sales_target}; User/2/bob@contoso.com"),
            "",
            "SUCCESS",
            "",
            "2",
        ]
        .map(String::from),
        [
            "2",
            "2026-03-01T10:01:00.000Z",
            "GROUP_MANAGEMENT",
            "Add member to group",
            "PROVISIONING",
            "scim-bot",
            &format!("{sales_target}; User/1/ann@contoso.com"),
            "",
            "SUCCESS",
            "",
            "2",
        ]
        .map(String::from),
        [
            "1",
            "2026-03-01T10:00:00.000Z",
            "USER_MANAGEMENT",
            "Add user",
            "TOKEN",
            "alice",
            "User/1/ann@contoso.com",
            "displayName:  → Lee, Ann",
            "SUCCESS",
            "",
            "1",
        ]
        .map(String::from),
    ]
    .into_iter()
    .map(Vec::from)
    .collect();
    assert_eq!(all, expected);
    // Each filter of `auditEvents`, alone and together.
    // The query's pairs, and the ids it selects.
    type Selects<'a> = (&'a [(&'a str, &'a str)], &'a [i64]);
    let filters: [Selects<'_>; 18] = [
        (&[("since", "2026-03-01T10:02:00Z")], &[6, 5, 4]),
        (&[("since", "2026-03-01T11:02:00+01:00")], &[6, 5, 4]),
        (&[("until", "2026-03-01T10:01:00.000Z")], &[3, 2, 1]),
        (
            &[
                ("since", "2026-03-01T10:01:00Z"),
                ("until", "2026-03-01T10:02:00Z"),
            ],
            &[4, 3, 2],
        ),
        (
            &[
                ("since", "2026-03-01T10:05:00Z"),
                ("until", "2026-03-01T10:00:00Z"),
            ],
            &[],
        ),
        (&[("category", "GROUP_MANAGEMENT")], &[3, 2]),
        (&[("category", "LICENSE_PROCESSING")], &[4]),
        (&[("category", "NOTIFICATIONS")], &[]),
        (&[("userId", "1")], &[4, 2, 1]),
        (&[("userId", "2")], &[3]),
        (&[("userId", "99")], &[]),
        (&[("groupId", "7")], &[4, 3, 2]),
        (&[("skuPartNumber", E3)], &[5, 4]),
        (&[("skuPartNumber", "GONE_SINCE")], &[]),
        (&[("result", "FAILURE")], &[5]),
        (&[("result", "SUCCESS")], &[6, 4, 3, 2, 1]),
        (&[("userId", "1"), ("groupId", "7")], &[4, 2]),
        (
            &[("category", "LICENSE_MANAGEMENT"), ("result", "SUCCESS")],
            &[],
        ),
    ];
    for (pairs, ids) in filters {
        let rows = export(&s, &format!("{EVENTS}?{}", query(pairs)), EVENT_COLUMNS);
        let wanted: Vec<&Vec<String>> = ids
            .iter()
            .map(|id| &expected[expected.len() - *id as usize])
            .collect();
        assert_eq!(rows.iter().collect::<Vec<_>>(), wanted, "{pairs:?}");
    }
}

#[test]
fn an_audit_export_of_many_pages_gives_every_event_once_newest_first() {
    let dir = tempfile::TempDir::new().expect("dir");
    let db = dir.path().join("t.db");
    // Past two pages of the store's reads (2,000 events each); users 1 to 7 in turn.
    let events: Vec<Event> = (0..4_500)
        .map(|i| {
            Event::new(
                Activity::UpdateUser,
                vec![Target::user(i % 7 + 1, Some(format!("u{i}@contoso.com")))],
            )
        })
        .collect();
    record(
        &db,
        vec![(token("alice"), "2026-03-01T10:00:00.000Z", events)],
    );
    let s = Server::start(&db, &crate::harness::scenario_rules());
    for (filter, count) in [("", 4_500), ("?userId=3", 643)] {
        let rows = export(&s, &format!("{EVENTS}{filter}"), EVENT_COLUMNS);
        let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().expect("an id")).collect();
        assert_eq!(ids.len(), count, "{filter}");
        assert!(
            ids.windows(2).all(|w| w[0] > w[1]),
            "{filter}: each once, newest first"
        );
        assert!(rows.iter().all(|r| r[10] == "1"), "one correlation");
    }
}

const AUDIT_EVENTS: &str = r#"query($since: DateTime, $until: DateTime, $category: AuditCategory,
    $userId: ID, $groupId: ID, $sku: String, $result: AuditResult) {
  auditEvents(first: 1000, since: $since, until: $until, category: $category, userId: $userId,
              groupId: $groupId, skuPartNumber: $sku, result: $result) {
    pageInfo { hasNextPage }
    edges { node {
      id activityDateTime category activityDisplayName initiatedBy { kind name }
      targetResources { type id displayName modifiedProperties { displayName oldValue newValue } }
      result resultReason correlationId
    } }
  }
}"#;

/// The rows of the audit export as GraphQL gives them, newest first.
fn events_by_graphql(s: &Server, variables: Value) -> Vec<Vec<String>> {
    let data = s.ok(AUDIT_EVENTS, variables);
    assert_eq!(data["auditEvents"]["pageInfo"]["hasNextPage"], false);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    data["auditEvents"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|edge| {
            let e = &edge["node"];
            let targets = e["targetResources"].as_array().cloned().unwrap_or_default();
            let named: Vec<String> = targets
                .iter()
                .map(|t| {
                    format!(
                        "{}/{}/{}",
                        text(&t["type"]),
                        text(&t["id"]),
                        text(&t["displayName"])
                    )
                })
                .collect();
            let changed: Vec<String> = targets
                .iter()
                .flat_map(|t| {
                    t["modifiedProperties"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .map(|p| {
                    format!(
                        "{}: {} → {}",
                        text(&p["displayName"]),
                        text(&p["oldValue"]),
                        text(&p["newValue"])
                    )
                })
                .collect();
            vec![
                text(&e["id"]),
                text(&e["activityDateTime"]),
                text(&e["category"]),
                text(&e["activityDisplayName"]),
                text(&e["initiatedBy"]["kind"]),
                text(&e["initiatedBy"]["name"]),
                named.join("; "),
                changed.join("; "),
                text(&e["result"]),
                text(&e["resultReason"]),
                text(&e["correlationId"]),
            ]
        })
        .collect()
}

#[test]
fn the_audit_events_export_says_what_graphql_says_of_real_changes() {
    let s = fresh();
    s.set_prepaid(E3, 1);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    let bob = s.create_user("bob@contoso.com", Some("US"));
    let group = s.create_group(SALES);
    s.assign_group(&group, json!([license(E3, &[])]), &[]);
    s.add_members(&group, &[&ann, &bob]);
    s.wait_complete(&group);
    s.update_user(&bob, json!({ "displayName": "=Bob" }));
    // A refused change is recorded too (H5).
    s.err(
        "mutation { setPrepaidUnits(skuPartNumber: \"ENTERPRISEPACK\", units: -1) { prepaidUnits } }",
        json!({}),
    );
    let filters: [(&[(&str, &str)], Value); 7] = [
        (&[], json!({})),
        (
            &[("category", "LICENSE_PROCESSING")],
            json!({ "category": "LICENSE_PROCESSING" }),
        ),
        (&[("result", "FAILURE")], json!({ "result": "FAILURE" })),
        (&[("userId", &bob)], json!({ "userId": bob })),
        (&[("groupId", &group)], json!({ "groupId": group })),
        (&[("skuPartNumber", E3)], json!({ "sku": E3 })),
        (
            &[
                ("since", "2000-01-01T00:00:00Z"),
                ("until", "2999-01-01T00:00:00+02:00"),
            ],
            json!({ "since": "2000-01-01T00:00:00Z", "until": "2999-01-01T00:00:00+02:00" }),
        ),
    ];
    for (pairs, variables) in filters {
        let path = if pairs.is_empty() {
            EVENTS.to_string()
        } else {
            format!("{EVENTS}?{}", query(pairs))
        };
        let exported = export(&s, &path, EVENT_COLUMNS);
        let expected = events_by_graphql(&s, variables);
        assert!(!expected.is_empty(), "{pairs:?} selects events");
        assert_eq!(
            with_instants(exported, 1),
            with_instants(expected, 1),
            "{pairs:?}"
        );
    }
    let all = export(&s, EVENTS, EVENT_COLUMNS);
    let kinds: BTreeSet<&str> = all.iter().map(|r| r[3].as_str()).collect();
    for activity in [
        "Add user",
        "Add group",
        "Set group license",
        "Add member to group",
        "Start applying group based license to users",
        "Change user license",
        "Finish applying group based license to users",
        "Update user",
        "Set prepaid units",
    ] {
        assert!(kinds.contains(activity), "no {activity:?} in {kinds:?}");
    }
    let renamed = all
        .iter()
        .find(|r| r[3] == "Update user")
        .expect("bob's rename");
    assert!(
        renamed[7].contains("displayName: bob → =Bob"),
        "{renamed:?}"
    );
}
