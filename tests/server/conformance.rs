//! The HTTP rules of graphql-api.md ("HTTP"), request by request over raw connections (so that
//! `Host`, `Origin` and the media types are exactly what the test writes): the status table per
//! media type, 415 for bodies that are not JSON, the Origin and Host rules on every route, CORS
//! for `--allowed-origin`, malformed bodies as GraphQL errors, the order of fields, the limits'
//! status, and what a browser meets first. graphql-http's own audit and a real browser on
//! another origin are in tests/http_conformance.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::{Server, fresh, scenario_rules};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// An answer as it came over the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.head, self.body))
    }

    fn code(&self) -> String {
        self.json()["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }
}

/// One request written by hand. `Host` is the server's address unless `headers` gives one
/// (an empty value leaves it out).
fn raw(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (key, value) in headers {
        if !value.is_empty() {
            head.push_str(&format!("{key}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send the body");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn post_json(s: &Server, headers: &[(&str, &str)], body: &Value) -> Answer {
    let mut all = vec![("Content-Type", JSON)];
    all.extend_from_slice(headers);
    raw(s, "POST", "/graphql", &all, body.to_string().as_bytes())
}

const CREATE_GROUP: &str = r#"mutation { createGroup(displayName: "Made by the request") { id } }"#;

fn groups_total(s: &Server) -> i64 {
    s.ok("{ groups { totalCount } }", json!({}))["groups"]["totalCount"]
        .as_i64()
        .expect("totalCount")
}

#[test]
fn posts_that_are_not_json_are_refused_with_415_and_run_nothing() {
    let s = fresh();
    let body = json!({ "query": CREATE_GROUP }).to_string();
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/graphql",
        "application/json; charset=iso-8859-1",
        "",
    ] {
        let answer = raw(
            &s,
            "POST",
            "/graphql",
            &[("Content-Type", content_type)],
            body.as_bytes(),
        );
        assert_eq!(
            answer.status, 415,
            "Content-Type {content_type:?}: {answer:?}"
        );
        assert_eq!(answer.code(), "UNSUPPORTED_MEDIA_TYPE", "{answer:?}");
        assert!(answer.content_type().starts_with(JSON), "{answer:?}");
    }
    assert_eq!(groups_total(&s), 0, "no refused body ran");
    for accepted in [JSON, "application/json; charset=utf-8", GRAPHQL_RESPONSE] {
        let answer = raw(
            &s,
            "POST",
            "/graphql",
            &[("Content-Type", accepted)],
            body.as_bytes(),
        );
        assert_eq!(answer.status, 200, "{accepted}: {answer:?}");
    }
    assert_eq!(groups_total(&s), 3);
}

/// The status table of graphql-api.md, row by row, for both media types.
#[test]
fn status_and_media_type_follow_the_table() {
    let s = fresh();
    let too_complex = "{ groups(first: 1000) { edges { node { members(first: 1000) { edges { node { id } } } } } } }";
    let rows: [(&str, Value, [u16; 2], bool, &str); 8] = [
        (
            "executed",
            json!({ "query": "{ __typename }" }),
            [200, 200],
            true,
            "",
        ),
        (
            "executed with a field error",
            json!({ "query": r#"{ user(id: "07") { id } }"# }),
            [200, 200],
            true,
            "BAD_USER_INPUT",
        ),
        (
            "does not parse",
            json!({ "query": "{ groups { " }),
            [400, 200],
            false,
            "BAD_USER_INPUT",
        ),
        (
            "does not validate",
            json!({ "query": "{ nothingOfThatName }" }),
            [400, 200],
            false,
            "BAD_USER_INPUT",
        ),
        (
            "variables do not coerce",
            json!({ "query": "query ($n: Int) { groups(first: $n) { totalCount } }", "variables": { "n": "many" } }),
            [400, 200],
            false,
            "BAD_USER_INPUT",
        ),
        (
            "an unknown operation",
            json!({ "query": "query A { __typename }", "operationName": "B" }),
            [400, 200],
            false,
            "BAD_USER_INPUT",
        ),
        (
            "a complexity limit",
            json!({ "query": too_complex }),
            [400, 400],
            false,
            "QUERY_TOO_COMPLEX",
        ),
        (
            "a depth limit",
            json!({ "query": format!("{{ __schema {{ types {{ fields {{ type {}{{ name }}{} }} }} }} }}", "{ ofType ".repeat(20), " }".repeat(20)) }),
            [400, 400],
            false,
            "QUERY_TOO_DEEP",
        ),
    ];
    for (what, body, statuses, has_data, code) in rows {
        for (accept, status) in [(GRAPHQL_RESPONSE, statuses[0]), (JSON, statuses[1])] {
            let answer = post_json(&s, &[("Accept", accept)], &body);
            assert_eq!(answer.status, status, "{what}, Accept {accept}: {answer:?}");
            assert!(
                answer.content_type().starts_with(accept),
                "{what}, Accept {accept}: {answer:?}"
            );
            let value = answer.json();
            assert_eq!(
                value.get("data").is_some(),
                has_data,
                "{what}, Accept {accept}: `data` present: {value}"
            );
            if !code.is_empty() {
                assert_eq!(answer.code(), code, "{what}, Accept {accept}: {value}");
            }
        }
    }
    // A client that takes neither JSON type is told so.
    let answer = post_json(
        &s,
        &[("Accept", "text/html")],
        &json!({ "query": "{ __typename }" }),
    );
    assert_eq!(answer.status, 406, "{answer:?}");
    assert_eq!(answer.code(), "NOT_ACCEPTABLE");
}

#[test]
fn malformed_bodies_are_graphql_errors_with_bad_user_input() {
    let s = fresh();
    for (body, says) in [
        ("{\"query\": ", "not JSON"),
        ("", "empty"),
        ("{}", "no `query`"),
        ("[]", "JSON object"),
        ("{\"query\": 1}", "`query` must be a string"),
        (
            "{\"query\": \"{ __typename }\", \"variables\": \"{}\"}",
            "`variables`",
        ),
        (
            "{\"query\": \"{ __typename }\", \"operationName\": false}",
            "`operationName`",
        ),
    ] {
        for accept in [GRAPHQL_RESPONSE, JSON] {
            let answer = raw(
                &s,
                "POST",
                "/graphql",
                &[("Content-Type", JSON), ("Accept", accept)],
                body.as_bytes(),
            );
            assert_eq!(answer.status, 400, "{body:?}: {answer:?}");
            assert!(answer.content_type().starts_with(accept), "{answer:?}");
            assert_eq!(answer.code(), "BAD_USER_INPUT", "{body:?}: {answer:?}");
            let message = answer.json()["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(message.contains(says), "{body:?}: {message}");
            assert!(
                !message.contains("InvalidRequest"),
                "a Rust debug string: {message}"
            );
        }
    }
}

/// A request from a page elsewhere would run with the admin's access: refused on every route.
#[test]
fn requests_from_other_origins_are_refused_on_every_route_before_they_run() {
    let s = fresh();
    let own = s.base.clone();
    let body = json!({ "query": CREATE_GROUP }).to_string();
    for origin in ["http://127.0.0.1:1", "https://evil.example", "null"] {
        let answer = raw(
            &s,
            "POST",
            "/graphql",
            &[("Content-Type", JSON), ("Origin", origin)],
            body.as_bytes(),
        );
        assert_eq!(answer.status, 403, "{origin}: {answer:?}");
        assert_eq!(answer.code(), "FORBIDDEN");
        assert!(answer.header("access-control-allow-origin").is_none());
        for path in [
            "/graphql?query=%7B__typename%7D",
            "/healthz",
            "/graphiql",
            "/",
        ] {
            let answer = raw(&s, "GET", path, &[("Origin", origin)], b"");
            assert_eq!(answer.status, 403, "GET {path} from {origin}: {answer:?}");
        }
        let preflight = raw(
            &s,
            "OPTIONS",
            "/graphql",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            b"",
        );
        assert_eq!(preflight.status, 403, "{preflight:?}");
    }
    assert_eq!(groups_total(&s), 0, "nothing ran");
    // The server's own pages may.
    let answer = raw(
        &s,
        "POST",
        "/graphql",
        &[("Content-Type", JSON), ("Origin", &own)],
        body.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(groups_total(&s), 1);
}

#[test]
fn the_tokenless_server_answers_only_requests_addressed_to_loopback() {
    let s = fresh();
    let port = s.base.rsplit(':').next().expect("port").to_string();
    let body = json!({ "query": CREATE_GROUP }).to_string();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("10.0.0.7:{port}"),
        format!("localhost.evil.example:{port}"),
        String::new(),
    ] {
        let answer = raw(
            &s,
            "POST",
            "/graphql",
            &[("Host", &host), ("Content-Type", JSON)],
            body.as_bytes(),
        );
        assert_eq!(answer.status, 403, "Host {host:?}: {answer:?}");
        assert_eq!(answer.code(), "FORBIDDEN");
        for path in ["/healthz", "/graphiql", "/"] {
            let answer = raw(&s, "GET", path, &[("Host", &host)], b"");
            assert_eq!(answer.status, 403, "GET {path}, Host {host:?}: {answer:?}");
        }
    }
    assert_eq!(groups_total(&s), 0, "nothing ran");
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let answer = raw(&s, "GET", "/healthz", &[("Host", &host)], b"");
        assert_eq!(answer.status, 200, "Host {host}: {answer:?}");
    }
}

fn serve(dir: &TempDir, extra: &[&str]) -> Server {
    Server::start_with(&dir.path().join("t.db"), &scenario_rules(), extra)
}

#[test]
fn tokens_or_insecure_lift_the_host_rule_and_keep_the_origin_rule() {
    const ADMIN: &str = "admin-token-for-the-host-rule";
    let dir = TempDir::new().expect("dir");
    let tokens = dir.path().join("admins");
    std::fs::write(&tokens, format!("{ADMIN}\n")).expect("token file");
    let bearer = format!("Bearer {ADMIN}");
    let with_tokens = serve(
        &dir,
        &["--admin-token-file", tokens.to_str().expect("path")],
    );
    let other = TempDir::new().expect("dir");
    let insecure = serve(&other, &["--insecure"]);
    for (s, auth) in [(&with_tokens, bearer.as_str()), (&insecure, "")] {
        let answer = raw(
            s,
            "POST",
            "/graphql",
            &[
                ("Host", "licensing.example.com"),
                ("Content-Type", JSON),
                ("Authorization", auth),
            ],
            json!({ "query": "{ __typename }" }).to_string().as_bytes(),
        );
        assert_eq!(answer.status, 200, "{answer:?}");
        let foreign = raw(
            s,
            "POST",
            "/graphql",
            &[
                ("Host", "licensing.example.com"),
                ("Origin", "https://evil.example"),
                ("Content-Type", JSON),
                ("Authorization", auth),
            ],
            json!({ "query": CREATE_GROUP }).to_string().as_bytes(),
        );
        assert_eq!(foreign.status, 403, "{foreign:?}");
        // Its own origin, under the name it was reached by.
        let own = raw(
            s,
            "POST",
            "/graphql",
            &[
                ("Host", "licensing.example.com"),
                ("Origin", "http://licensing.example.com"),
                ("Content-Type", JSON),
                ("Authorization", auth),
            ],
            json!({ "query": "{ __typename }" }).to_string().as_bytes(),
        );
        assert_eq!(own.status, 200, "{own:?}");
    }
}

#[test]
fn allowed_origins_get_cors_answers_preflight_included() {
    const DASHBOARD: &str = "http://dashboard.example:3000";
    let dir = TempDir::new().expect("dir");
    let s = serve(&dir, &["--allowed-origin", "HTTP://Dashboard.Example:3000"]);
    let preflight = raw(
        &s,
        "OPTIONS",
        "/graphql",
        &[
            ("Origin", DASHBOARD),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
        b"",
    );
    assert!(
        preflight.status == 200 || preflight.status == 204,
        "{preflight:?}"
    );
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(DASHBOARD)
    );
    let methods = preflight
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{preflight:?}"
    );
    let allowed = preflight
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{preflight:?}"
    );
    assert!(
        preflight
            .header("access-control-allow-credentials")
            .is_none()
    );
    let answer = post_json(
        &s,
        &[("Origin", DASHBOARD)],
        &json!({ "query": CREATE_GROUP }),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some(DASHBOARD)
    );
    assert_eq!(groups_total(&s), 1);
    let other = post_json(
        &s,
        &[("Origin", "http://dashboard.example:3001")],
        &json!({ "query": CREATE_GROUP }),
    );
    assert_eq!(other.status, 403, "{other:?}");
    assert_eq!(groups_total(&s), 1);
}

#[test]
fn a_malformed_allowed_origin_stops_the_start_with_a_clear_message() {
    for bad in ["dashboard.example", "https://dashboard.example/", "ftp://x"] {
        let dir = TempDir::new().expect("dir");
        let output = std::process::Command::new(crate::harness::BIN)
            .args(["serve", "--db"])
            .arg(dir.path().join("t.db"))
            .arg("--rules")
            .arg(scenario_rules())
            .args(["--listen", "127.0.0.1:0", "--allowed-origin", bad])
            .env_remove("GROUP_LICENSING_ALLOWED_ORIGINS")
            .output()
            .expect("run");
        assert!(!output.status.success(), "{bad} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--allowed-origin") && stderr.contains(bad),
            "{stderr}"
        );
        assert!(
            !Path::new(&dir.path().join("t.db")).exists(),
            "a refused start leaves nothing"
        );
    }
}

/// The GraphQL spec's "Serialized Map Ordering": the fields in the order asked, here the
/// reverse of the schema's and not the order the resolvers finish in (the rules answer at
/// once, the store later), whether the answer is computed or comes from the cache.
#[test]
fn fields_come_in_the_order_the_query_asked_for_them() {
    let s = fresh();
    let group = s.create_group("Ordered");
    let query = format!(
        r#"{{ rules {{ productCount planCount }} groups {{ totalCount edges {{ node {{ memberCount displayName id }} }} }} g: group(id: "{group}") {{ licenseProcessingState displayName }} directory {{ defaultUsageLocation displayName }} }}"#
    );
    let order = [
        "\"rules\"",
        "\"productCount\"",
        "\"planCount\"",
        "\"groups\"",
        "\"totalCount\"",
        "\"edges\"",
        "\"memberCount\"",
        "\"displayName\"",
        "\"id\"",
        "\"g\"",
        "\"licenseProcessingState\"",
        "\"directory\"",
        "\"defaultUsageLocation\"",
    ];
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let answer = post_json(&s, &[], &json!({ "query": query }));
        assert_eq!(answer.status, 200, "{answer:?}");
        let mut at = 0;
        for key in order {
            let found = answer.body[at..]
                .find(key)
                .unwrap_or_else(|| panic!("{key} missing or out of order in {}", answer.body));
            at += found + key.len();
        }
        bodies.push(answer.body);
    }
    assert_eq!(
        bodies[0], bodies[1],
        "the cached answer is the computed one"
    );
}

/// async-graphql checks its complexity limit before it reports what validation found; the
/// server reports what is wrong with a request before what is too large about it.
#[test]
fn a_wrong_argument_is_reported_before_the_size_of_the_query() {
    let s = fresh();
    for query in [
        "{ groups(first: 1000) { edges { node { members(first: 1000, bogus: 1) { edges { node { id } } } } } } }",
        r#"{ groups(first: 1000) { edges { node { members(first: "all") { edges { node { id } } } } } } }"#,
        "{ groups(first: 1000) { edges { node { members(first: 1000) { edges { node { nope } } } } } } }",
    ] {
        for (accept, status) in [(GRAPHQL_RESPONSE, 400), (JSON, 200)] {
            let answer = post_json(&s, &[("Accept", accept)], &json!({ "query": query }));
            assert_eq!(answer.status, status, "{query}: {answer:?}");
            assert_eq!(answer.code(), "BAD_USER_INPUT", "{query}: {answer:?}");
        }
    }
}

/// `/` and every view's URL answer the console's page, under a CSP that lets it load and call
/// this origin only; GraphiQL stays at `/graphql`.
#[test]
fn a_browser_gets_the_console_at_every_view_and_every_path_says_where_things_are() {
    let s = fresh();
    for path in [
        "/",
        "/groups",
        "/groups/1",
        "/users",
        "/users/1",
        "/products",
        "/products/ENTERPRISEPACK",
        "/redundant-licenses",
        "/rules",
        "/activity",
        "/settings",
    ] {
        let page = raw(&s, "GET", path, &[("Accept", "text/html")], b"");
        assert_eq!(page.status, 200, "{path}: {page:?}");
        assert!(page.content_type().starts_with("text/html"), "{path}");
        assert!(
            page.body.contains("/console/app.js"),
            "{path}: the console's page"
        );
        let csp = page.header("content-security-policy").unwrap_or("");
        assert!(
            csp.starts_with("default-src 'self';") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    }
    let script = raw(&s, "GET", "/console/app.js", &[], b"");
    assert_eq!(script.status, 200, "{script:?}");
    assert!(script.content_type().starts_with("text/javascript"));
    assert_eq!(script.header("x-content-type-options"), Some("nosniff"));
    let page = raw(&s, "GET", "/graphql", &[("Accept", "text/html")], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("rel=\"icon\""),
        "the page names its icon"
    );
    for path in ["/favicon.ico", "/favicon.svg"] {
        let icon = raw(&s, "GET", path, &[], b"");
        assert_eq!(icon.status, 200, "{path}: {icon:?}");
        assert_eq!(icon.content_type(), "image/svg+xml");
        assert!(icon.body.starts_with("<svg"), "{path}");
    }
    let missing = raw(&s, "GET", "/dashboard", &[], b"");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "NOT_FOUND");
    let message = missing.json()["errors"][0]["message"].to_string();
    assert!(
        message.contains("/dashboard") && message.contains("/graphql"),
        "{message}"
    );
}

#[test]
fn the_start_line_says_where_to_point_a_browser() {
    let dir = TempDir::new().expect("dir");
    let mut child = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--db"])
        .arg(dir.path().join("t.db"))
        .arg("--rules")
        .arg(scenario_rules())
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .env_remove("GROUP_LICENSING_ADMIN_TOKENS")
        .env_remove("GROUP_LICENSING_READER_TOKENS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("the first line");
    let _ = child.kill();
    let _ = child.wait();
    let address = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(
        line.contains(&format!("open {address}/ in a browser")),
        "{line:?}"
    );
}
