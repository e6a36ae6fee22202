//! GraphiQL loads in headless Chromium, runs a query against the server and
//! shows its result, with no request leaving the machine.
//!
//! Needs Debian's `chromium` (/usr/bin/chromium) and Node.js; `.ci/browser-setup`
//! installs both prerequisites. The browser part is `tests/browser/graphiql.mjs`.
//!
//! The server is the real binary, serving the demo tenant from a temporary database.

use std::path::Path;
use std::process::Command;

use group_licensing::server::graphiql;

#[path = "support/node_tools.rs"]
mod node_tools;

use node_tools::CHROMIUM;

#[test]
fn graphiql_runs_a_query_in_headless_chromium_offline() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the GraphiQL browser test needs Debian's chromium. \
         Install it with `apt-get install chromium` (or run .ci/browser-setup)."
    );
    if !graphiql::BUNDLE_EMBEDDED {
        panic!(
            "this build has no GraphiQL bundle (npm was not available to build.rs); \
             install Node.js/npm and rebuild after `touch build.rs`"
        );
    }
    node_tools::install();

    let dir = tempfile::tempdir().expect("temp dir");
    let server = node_tools::start_demo_server(&dir.path().join("demo.db"), &[], &[]);
    let base = &server.base;

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graphiql.png");
    let _ = std::fs::remove_file(&screenshot);
    let expected = r#""displayName": "Contoso (demo)""#;
    let output = Command::new("node")
        .arg(node_tools::dir().join("graphiql.mjs"))
        .arg(base)
        .arg(expected)
        .arg(&screenshot)
        .arg("{ directory { displayName defaultUsageLocation } groups(hasMembersWithLicenseErrors: true) { totalCount } }")
        .env("CHROMIUM", CHROMIUM)
        .output()
        .expect("running node (install Node.js >= 20)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");

    assert!(
        output.status.success(),
        "GraphiQL browser check failed ({}); screenshot: {}\n{stdout}\n{stderr}",
        output.status,
        screenshot.display()
    );
    assert!(stdout.contains("OK: GraphiQL"), "{stdout}");
    assert!(
        stdout.contains(r#""totalCount": 6"#),
        "the result pane lacks the demo's six groups in error (S1, S2, S3, S4, S6, S7):\n{stdout}"
    );
    // The page, its four scripts, its stylesheet and the queries all went to the server.
    assert!(
        stdout.contains("/graphiql/assets/graphiql.min.js"),
        "{stdout}"
    );
    assert!(stdout.contains("/graphql"), "{stdout}");
    assert!(
        std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 0),
        "no screenshot at {}",
        screenshot.display()
    );
    println!("screenshot: {}", screenshot.display());
}

/// With tokens configured, GraphiQL still works: the page itself is served to anyone, and the
/// token typed in its Headers tab goes with the query (its first schema fetch, before the token
/// is typed, is refused with 401, which the script is told to expect).
#[test]
fn graphiql_sends_the_token_typed_in_its_headers_editor() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing (run .ci/browser-setup)"
    );
    if !graphiql::BUNDLE_EMBEDDED {
        panic!("this build has no GraphiQL bundle (npm was not available to build.rs)");
    }
    node_tools::install();
    const READER: &str = "reader-token-for-the-browser-test";
    let dir = tempfile::tempdir().expect("temp dir");
    let server = node_tools::start_demo_server(
        &dir.path().join("demo.db"),
        &[],
        &[
            ("GROUP_LICENSING_READER_TOKENS", READER),
            (
                "GROUP_LICENSING_ADMIN_TOKENS",
                "admin-token-for-the-browser-test",
            ),
        ],
    );
    let base = &server.base;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graphiql-token.png");
    let output = Command::new("node")
        .arg(node_tools::dir().join("graphiql.mjs"))
        .arg(base)
        .arg(r#""displayName": "Contoso (demo)""#)
        .arg(&screenshot)
        .arg("{ directory { displayName } }")
        .arg(format!(r#"{{"Authorization": "Bearer {READER}"}}"#))
        .env("CHROMIUM", CHROMIUM)
        .env("GRAPHIQL_ALLOW_401", "1")
        .output()
        .expect("running node (install Node.js >= 20)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "GraphiQL with a token failed ({}); screenshot: {}\n{stdout}\n{stderr}",
        output.status,
        screenshot.display()
    );
    assert!(stdout.contains("OK: GraphiQL"), "{stdout}");
}
