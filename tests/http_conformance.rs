//! The HTTP contract (graphql-api.md, "HTTP") checked by third parties against the real server:
//!
//! - graphql-http's server audit, the GraphQL-over-HTTP specification's own checks: every
//!   audit, MUST, SHOULD and MAY, must be `ok`;
//! - a web page on another loopback origin, in headless Chromium, tries the requests a site
//!   the admin merely visits could send (a no-cors `text/plain` fetch, a form POST, a JSON
//!   fetch): none changes anything, checked through the API; a page on an origin given with
//!   `--allowed-origin` can read and, with an admin token, write.
//!
//! Needs Node.js (the tools of tests/browser, installed by `.ci/browser-setup` or here) and
//! Debian's chromium for the page.

#[path = "support/node_tools.rs"]
mod node_tools;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn post(base: &str, query: &str, token: Option<&str>) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(format!("{base}/graphql"));
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    request
        .send_json(json!({ "query": query }))
        .expect("POST /graphql")
        .body_mut()
        .read_json()
        .expect("a JSON answer")
}

fn seats(base: &str, token: Option<&str>) -> i64 {
    post(
        base,
        r#"{ product(skuPartNumber: "ENTERPRISEPACK") { prepaidUnits } }"#,
        token,
    )["data"]["product"]["prepaidUnits"]
        .as_i64()
        .expect("prepaidUnits")
}

#[test]
fn graphql_http_audit_finds_nothing_to_report() {
    node_tools::install();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = node_tools::start_demo_server(&dir.path().join("demo.db"), &[], &[]);
    let output = Command::new("node")
        .arg(node_tools::dir().join("graphql-http-audit.mjs"))
        .arg(format!("{}/graphql", server.base))
        .output()
        .expect("running node (install Node.js >= 20)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the audit script failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line per audit"))
        .collect();
    // The audit of graphql-http 1.23 has 61 checks; fewer would mean the script stopped early.
    assert!(
        results.len() >= 61,
        "only {} audits ran:\n{stdout}",
        results.len()
    );
    let not_ok: Vec<&Value> = results.iter().filter(|r| r["status"] != "ok").collect();
    assert!(
        not_ok.is_empty(),
        "{} of {} audits are not ok:\n{}",
        not_ok.len(),
        results.len(),
        not_ok
            .iter()
            .map(|r| format!("{} {} {}: {}", r["status"], r["id"], r["name"], r["reason"]))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The page's script, killed if the test fails before it ends (its page server would
/// otherwise keep running, and keep the test's output open).
struct Script(std::process::Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs tests/browser/cross-origin.mjs in `mode`: the page's server starts first and says its
/// origin; `server` then starts the group-licensing server for that origin. Returns the
/// server and the page's report, one value per attempt.
fn page_on_another_origin(
    mode: &str,
    token: Option<&str>,
    server: impl FnOnce(&str) -> node_tools::Server,
) -> (node_tools::Server, Vec<Value>) {
    node_tools::require_chromium();
    node_tools::install();
    let mut script = Command::new("node");
    script
        .arg(node_tools::dir().join("cross-origin.mjs"))
        .arg(mode)
        .args(token)
        .env("CHROMIUM", node_tools::CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut script = Script(
        script
            .spawn()
            .expect("running node (install Node.js >= 20)"),
    );
    let child = &mut script.0;
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the page's origin");
    let origin: Value = serde_json::from_str(&first).expect("JSON");
    let origin = origin["page"].as_str().expect("page").to_string();
    let server = server(&origin);
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", server.base).expect("send the server's URL");
    drop(stdin);
    let report: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(&l.expect("a line")).expect("a JSON line"))
        .collect();
    let status = child.wait().expect("the script ends");
    assert!(
        status.success(),
        "the page script failed ({status}): {report:?}"
    );
    (server, report)
}

#[test]
fn a_page_on_another_origin_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("demo.db");
    let (server, report) = page_on_another_origin("attack", None, |_| {
        node_tools::start_demo_server(&db, &[], &[])
    });
    println!("{report:#?}");
    let attempts: Vec<&str> = report
        .iter()
        .filter_map(|r| r["attempt"].as_str())
        .collect();
    assert_eq!(
        attempts,
        ["no-cors text/plain fetch", "form POST", "JSON fetch"],
        "every attempt was made"
    );
    // The JSON fetch needs the server's permission (a preflight), which it does not give.
    assert!(
        report[2]["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("blocked")),
        "{report:?}"
    );
    assert_ne!(
        seats(&server.base, None),
        7777,
        "a cross-site request set the seats"
    );
}

#[test]
fn a_page_on_an_allowed_origin_reads_and_with_an_admin_token_writes() {
    const ADMIN: &str = "admin-token-for-the-dashboard-test";
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("demo.db");
    let (server, report) = page_on_another_origin("dashboard", Some(ADMIN), |origin| {
        node_tools::start_demo_server(
            &db,
            &["--allowed-origin", origin],
            &[
                ("GROUP_LICENSING_ADMIN_TOKENS", ADMIN),
                (
                    "GROUP_LICENSING_READER_TOKENS",
                    "reader-token-for-the-dashboard-test",
                ),
            ],
        )
    });
    println!("{report:#?}");
    // Without a token the server refuses, and the page can read why.
    assert_eq!(report[0]["attempt"], "read without a token");
    assert_eq!(report[0]["outcome"], "answered 401", "{report:?}");
    assert_eq!(
        report[0]["body"]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(report[1]["attempt"], "read");
    assert_eq!(report[1]["outcome"], "answered 200", "{report:?}");
    assert!(report[1]["body"]["data"]["product"]["prepaidUnits"].is_i64());
    assert_eq!(report[2]["attempt"], "write");
    assert_eq!(report[2]["outcome"], "answered 200", "{report:?}");
    assert_eq!(
        report[2]["body"]["data"]["setPrepaidUnits"]["prepaidUnits"],
        7777
    );
    assert_eq!(seats(&server.base, Some(ADMIN)), 7777);
}
