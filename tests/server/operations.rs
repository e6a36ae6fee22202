//! Running the server as an operator does: the demo tenant, the README's queries, SIGHUP to
//! reload the rules, SIGTERM to stop.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::{Server, int, scenario_rules, str_of};

fn bundled_rules() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

/// `serve --demo` shows every kind of license error of the seeds (S1–S7) beside healthy groups,
/// and every GraphQL example of the README runs on it without an error.
#[test]
fn the_demo_tenant_shows_every_error_kind_and_the_readme_queries_run_on_it() {
    let dir = TempDir::new().expect("temp dir");
    let server = Server::start_with(&dir.path().join("demo.db"), &bundled_rules(), &["--demo"]);
    let groups = server.ok(
        "{ groups(first: 100) { edges { node { id displayName licenseProcessingState
             licenseErrorCounts { error count } } } } }",
        json!({}),
    );
    let edges = groups["groups"]["edges"].as_array().expect("edges").clone();
    let mut codes = BTreeSet::new();
    let mut healthy = 0;
    for edge in &edges {
        let node = &edge["node"];
        assert_eq!(node["licenseProcessingState"], "COMPLETE", "{node}");
        let counts = node["licenseErrorCounts"].as_array().expect("counts");
        if counts.is_empty() {
            healthy += 1;
        }
        codes.extend(counts.iter().map(|c| str_of(&c["error"])));
    }
    let expected: BTreeSet<String> = [
        "COUNT_VIOLATION",
        "DEPENDENCY_VIOLATION",
        "MUTUALLY_EXCLUSIVE_VIOLATION",
        "PROHIBITED_IN_USAGE_LOCATION_VIOLATION",
        "UNIQUENESS_VIOLATION",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(codes, expected, "error kinds shown by the demo");
    assert!(healthy >= 2, "healthy groups: {healthy}");

    // The README's examples, with `$group` a group that has members in error.
    let in_error = edges
        .iter()
        .find(|e| {
            !e["node"]["licenseErrorCounts"]
                .as_array()
                .is_some_and(|c| c.is_empty())
        })
        .map(|e| str_of(&e["node"]["id"]))
        .expect("a group in error");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut ran = 0;
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("```graphql\n") {
        let block = &rest[start + 11..];
        let end = block.find("```").expect("closed block");
        let query = &block[..end];
        rest = &block[end..];
        if query.contains("mutation") && query.matches("mutation").count() > 1 {
            // One block holds several mutations, one per line: run each.
            for line in query.split("\nmutation").filter(|l| !l.trim().is_empty()) {
                let q = if line.trim_start().starts_with("mutation") {
                    line.to_string()
                } else {
                    format!("mutation{line}")
                };
                server.ok(&q, json!({}));
                ran += 1;
            }
        } else {
            server.ok(query, json!({ "group": in_error }));
            ran += 1;
        }
    }
    assert!(ran >= 5, "README queries run: {ran}");
}

fn rule_set(server: &Server) -> Value {
    server.ok(
        "{ rules { loadedAt planCount productCount lastReloadErrors { file line column message } } }",
        json!({}),
    )["rules"]
        .clone()
}

/// SIGHUP re-reads the rules folder like `reloadRules`: a good folder is taken, a broken one is
/// refused and the rules in force stay.
#[test]
fn sighup_reloads_the_rules_and_a_broken_folder_keeps_the_old_ones() {
    let dir = TempDir::new().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    let file = rules.join("scenario.rules");
    std::fs::copy(scenario_rules().join("scenario.rules"), &file).expect("copy rules");
    let server = Server::start(&dir.path().join("t.db"), &rules);
    let before = rule_set(&server);

    std::fs::write(
        rules.join("extra.rules"),
        "plan EXTRA_PLAN = \"Extra\"\nproduct EXTRA = \"Extra product\" { EXTRA_PLAN }\n",
    )
    .expect("write");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = rule_set(&server);
    while int(&after["productCount"]) == int(&before["productCount"]) {
        assert!(Instant::now() < deadline, "SIGHUP did not reload: {after}");
        std::thread::sleep(Duration::from_millis(50));
        after = rule_set(&server);
    }
    assert_eq!(
        int(&after["productCount"]),
        int(&before["productCount"]) + 1
    );
    assert_eq!(after["lastReloadErrors"], json!([]));
    assert!(
        server.ok(
            "{ product(skuPartNumber: \"EXTRA\") { displayName } }",
            json!({})
        )["product"]["displayName"]
            == "Extra product"
    );

    std::fs::write(rules.join("extra.rules"), "plan BROKEN = \n").expect("write");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = rule_set(&server);
    while refused["lastReloadErrors"]
        .as_array()
        .is_none_or(|e| e.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the broken reload left no errors: {refused}"
        );
        std::thread::sleep(Duration::from_millis(50));
        refused = rule_set(&server);
    }
    assert_eq!(
        refused["productCount"], after["productCount"],
        "the old rules stay"
    );
    assert_eq!(refused["loadedAt"], after["loadedAt"]);
    let error = &refused["lastReloadErrors"][0];
    assert!(str_of(&error["file"]).ends_with("extra.rules"), "{error}");
    assert_eq!(int(&error["line"]), 2);
}

/// A SIGHUP has no caller to answer: the operator reads why a reload was refused in the log, so
/// each error is logged with its file, line and column.
#[test]
fn a_refused_sighup_reload_logs_each_error_with_its_place() {
    let dir = TempDir::new().expect("temp dir");
    let rules = crate::harness::copy_rules(&scenario_rules(), dir.path(), "rules");
    let server = Server::start(&dir.path().join("t.db"), &rules);
    let broken = rules.join("broken.rules");
    std::fs::write(
        &broken,
        "plan A = \"a\"\nproduct P = \"p\" { A, NOPE }\nconflict A with A\n",
    )
    .expect("write broken.rules");
    server.signal("HUP");
    let expected = [
        format!(
            "{}:2:22: unknown plan `NOPE` in product `P`",
            broken.display()
        ),
        format!(
            "{}:3:17: plan `A` cannot conflict with itself",
            broken.display()
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !expected
        .iter()
        .all(|line| server.stderr().contains(line.as_str()))
    {
        assert!(
            Instant::now() < deadline,
            "the log does not say why the reload was refused; expected {expected:#?} in:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        rule_set(&server)["lastReloadErrors"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Thousands of errors (a catalog renamed wholesale) are not all logged on every SIGHUP.
    let logged_before = server.stderr().len();
    let many: String = (0..25)
        .map(|i| format!("product P{i} = \"p\" {{ NOPE }}\n"))
        .collect();
    std::fs::write(&broken, many).expect("write broken.rules");
    server.signal("HUP");
    let tail = "rules reload error: … and 5 more (all of them in rules.lastReloadErrors, or run `group-licensing check";
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr()[logged_before..].contains(tail) {
        assert!(
            Instant::now() < deadline,
            "no summary of the errors not logged:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.stderr();
    let log = &log[logged_before..];
    assert_eq!(log.matches("rules reload error: ").count(), 21, "{log}");
    assert!(
        log.contains(&format!(
            "{}:20:21: unknown plan `NOPE` in product `P19`",
            broken.display()
        )),
        "{log}"
    );
}

/// SIGTERM stops the server cleanly: it exits by itself, with success.
#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = TempDir::new().expect("temp dir");
    let mut server = Server::start(&dir.path().join("t.db"), &scenario_rules());
    server.ok("{ directory { displayName } }", json!({}));
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the server stops within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
}

/// Mutations of one document run one after the other (GraphQL's rule); each answers with the
/// tenant as its own write left it, not as an earlier field of the same request read it.
#[test]
fn each_mutation_of_a_document_answers_after_its_own_write() {
    let s = crate::harness::fresh();
    let data = s.ok(
        "mutation {
           a: setPrepaidUnits(skuPartNumber: \"ENTERPRISEPACK\", units: 1) { skuPartNumber prepaidUnits }
           b: setPrepaidUnits(skuPartNumber: \"EMS\", units: 2) { skuPartNumber prepaidUnits }
           c: setPrepaidUnits(skuPartNumber: \"ENTERPRISEPACK\", units: 3) { prepaidUnits availableUnits }
         }",
        json!({}),
    );
    assert_eq!(data["a"]["prepaidUnits"], 1, "{data:#}");
    assert_eq!(data["b"]["prepaidUnits"], 2, "{data:#}");
    assert_eq!(data["c"]["prepaidUnits"], 3, "{data:#}");
    assert_eq!(data["c"]["availableUnits"], 3, "{data:#}");
    let user = s.create_user("ann@contoso.com", Some("US"));
    let data = s.ok(
        "mutation($u: ID!) {
           a: updateUser(id: $u, input: { displayName: \"First\" }) { displayName }
           b: updateUser(id: $u, input: { displayName: \"Second\" }) { displayName }
         }",
        json!({ "u": user }),
    );
    assert_eq!(data["a"]["displayName"], "First", "{data:#}");
    assert_eq!(data["b"]["displayName"], "Second", "{data:#}");
}

/// A log read by another program (a file, journald, a pipe as here) has no terminal colour
/// codes in it.
#[test]
fn the_log_has_no_colour_codes_when_it_is_not_a_terminal() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let dir = TempDir::new().expect("temp dir");
    let mut child = Command::new(crate::harness::BIN)
        .args(["serve", "--demo", "--db"])
        .arg(dir.path().join("t.db"))
        .arg("--rules")
        .arg(bundled_rules())
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env_remove("GROUP_LICENSING_ALLOWED_ORIGINS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the start line");
    assert!(line.starts_with("listening on "), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("read the log");
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
}
