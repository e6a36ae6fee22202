//! The HTTP side of the server: GET for queries, no mutation over GET, GraphiQL for browsers,
//! `/healthz`, the body limit.
use serde_json::{Value, json};

use crate::harness::{fresh, raw_request};

fn groups_total(s: &crate::harness::Server) -> i64 {
    s.ok("{ groups { totalCount } }", json!({}))["groups"]["totalCount"]
        .as_i64()
        .expect("totalCount")
}

#[test]
fn get_runs_queries() {
    let s = fresh();
    let mut response = s
        .agent()
        .get(s.url("/graphql"))
        .query("query", "query Q($s: String!) { product(skuPartNumber: $s) { skuPartNumber displayName } directory { defaultUsageLocation } }")
        .query("variables", r#"{"s":"ENTERPRISEPACK"}"#)
        .query("operationName", "Q")
        .call()
        .expect("GET /graphql");
    assert_eq!(response.status(), 200);
    let body: Value = response.body_mut().read_json().expect("JSON");
    assert_eq!(
        body,
        json!({ "data": {
            "product": { "skuPartNumber": "ENTERPRISEPACK", "displayName": "Office 365 E3" },
            "directory": { "defaultUsageLocation": "US" },
        } })
    );
}

#[test]
fn get_refuses_mutations_with_405() {
    let s = fresh();
    for (query, operation) in [
        (
            "mutation { createGroup(displayName: \"Via GET\") { id } }",
            None,
        ),
        (
            "query Q { groups { totalCount } } mutation M { createGroup(displayName: \"Via GET\") { id } }",
            Some("M"),
        ),
    ] {
        let mut request = s.agent().get(s.url("/graphql")).query("query", query);
        if let Some(op) = operation {
            request = request.query("operationName", op);
        }
        let mut response = request.call().expect("GET /graphql");
        assert_eq!(response.status(), 405, "{query}");
        let allow = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        assert_eq!(allow.as_deref(), Some("POST"));
        let body: Value = response.body_mut().read_json().expect("JSON");
        assert!(body["errors"][0]["message"].is_string(), "{body}");
        assert_eq!(groups_total(&s), 0, "the mutation did not run");
    }
    // Picking the query of a document that also holds a mutation is fine over GET.
    let mut response = s
        .agent()
        .get(s.url("/graphql"))
        .query(
            "query",
            "query Q { groups { totalCount } } mutation M { createGroup(displayName: \"Via GET\") { id } }",
        )
        .query("operationName", "Q")
        .call()
        .expect("GET /graphql");
    assert_eq!(response.status(), 200);
    let body: Value = response.body_mut().read_json().expect("JSON");
    assert_eq!(body, json!({ "data": { "groups": { "totalCount": 0 } } }));
    // The same mutation over POST works.
    s.create_group("Via POST");
    assert_eq!(groups_total(&s), 1);
}

#[test]
fn get_with_accept_html_serves_graphiql() {
    let s = fresh();
    let mut response = s
        .agent()
        .get(s.url("/graphql"))
        .header(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .call()
        .expect("GET /graphql");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.body_mut().read_to_string().expect("page");
    assert!(page.to_lowercase().contains("graphiql"), "{page}");
    assert!(page.contains("/graphql"), "the page points at the endpoint");

    // Without HTML and without a query: a client error, not the page.
    let response = s
        .agent()
        .get(s.url("/graphql"))
        .call()
        .expect("GET /graphql");
    assert_eq!(response.status(), 400);
}

#[test]
fn healthz_answers() {
    let s = fresh();
    let health = s.healthz();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["processing"], "idle", "{health}");
}

/// Sends a POST of `body` to /graphql over a raw connection (see `harness::raw_request`).
fn raw_post(s: &crate::harness::Server, body: Vec<u8>, chunked: bool) -> (u16, String) {
    raw_request(
        s,
        "POST /graphql HTTP/1.1\r\nContent-Type: application/json",
        body,
        chunked,
    )
}

fn padded_request(size: usize) -> Vec<u8> {
    let query = "{ groups { totalCount } }\n";
    let overhead = serde_json::to_vec(&json!({ "query": query }))
        .expect("body")
        .len();
    let padding = "#".repeat(size - overhead);
    let body = serde_json::to_vec(&json!({ "query": format!("{query}{padding}") })).expect("body");
    assert_eq!(body.len(), size);
    body
}

#[test]
fn a_body_over_one_mib_is_refused_with_413_and_the_server_keeps_serving() {
    const MIB: usize = 1024 * 1024;
    let s = fresh();
    // Declared with Content-Length, and streamed in chunks with no length declared.
    for chunked in [false, true] {
        let (status, response) = raw_post(&s, padded_request(MIB + 1), chunked);
        assert_eq!(status, 413, "chunked: {chunked}; {response}");
        assert_eq!(groups_total(&s), 0, "the server keeps serving");
    }
    // Exactly 1 MiB is accepted.
    for chunked in [false, true] {
        let (status, response) = raw_post(&s, padded_request(MIB), chunked);
        assert_eq!(status, 200, "chunked: {chunked}; {response}");
        assert!(
            response.contains(r#"{"data":{"groups":{"totalCount":0}}}"#),
            "{response}"
        );
    }
    // Through an ordinary client too.
    let mut response = s
        .agent()
        .post(s.url("/graphql"))
        .header("Content-Type", "application/json")
        .send(&padded_request(MIB)[..])
        .expect("POST a large body");
    assert_eq!(response.status(), 200);
    let answer: Value = response.body_mut().read_json().expect("JSON");
    assert_eq!(answer, json!({ "data": { "groups": { "totalCount": 0 } } }));
    assert_eq!(s.healthz()["status"], "ok");
}
