//! The security model of the README: bearer tokens and roles, the loopback rule, query limits
//! and the request timeout. Every refusal must leave the server answering everyone else.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::{BIN, Server, scenario_rules};

const ADMIN: &str = "admin-3f9a1c0e7b2d4e6f8a0b";
const ADMIN_ROTATED: &str = "admin-next-5c7e9a1b3d5f7a9c";
const READER: &str = "reader-8e6c4a2b0d9f7e5c3a1b";

const CREATE_GROUP: &str = "mutation($n: String!) { createGroup(displayName: $n) { id } }";
const GROUP_COUNT: &str = "{ groups { totalCount } }";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a token file");
    path
}

/// POST /graphql with an optional `Authorization` header: (status, body, WWW-Authenticate).
fn post(
    server: &Server,
    auth: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value, String) {
    let mut request = server.agent().post(server.url("/graphql"));
    if let Some(value) = auth {
        request = request.header("Authorization", value);
    }
    let mut response = request
        .send_json(json!({ "query": query, "variables": variables }))
        .expect("POST /graphql");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.body_mut().read_json().expect("a JSON answer");
    (status, body, challenge)
}

fn healthz(server: &Server) -> u16 {
    let response = server.agent().get(server.url("/healthz")).call();
    response.expect("GET /healthz").status().as_u16()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

fn group_count(server: &Server) -> i64 {
    let (status, body, _) = post(server, Some(&bearer(READER)), GROUP_COUNT, json!({}));
    assert_eq!(status, 200, "{body}");
    body["data"]["groups"]["totalCount"]
        .as_i64()
        .expect("a count")
}

fn with_tokens(dir: &TempDir) -> Server {
    let admin = write(dir.path(), "admin.tokens", &format!("# admins\n{ADMIN}\n"));
    let reader = write(dir.path(), "reader.tokens", &format!("{READER}\n"));
    Server::start_with(
        &dir.path().join("t.db"),
        &scenario_rules(),
        &[
            "--admin-token-file",
            admin.to_str().expect("utf-8 path"),
            "--reader-token-file",
            reader.to_str().expect("utf-8 path"),
        ],
    )
}

#[test]
fn without_a_valid_token_nothing_is_read_or_changed() {
    let dir = TempDir::new().expect("dir");
    let server = with_tokens(&dir);
    let before = group_count(&server);
    for (auth, why) in [
        (None, "no header"),
        (Some("Bearer not-a-token-we-know-at-all"), "unknown token"),
        (Some(&format!("Basic {ADMIN}")[..]), "wrong scheme"),
        (Some(ADMIN), "no scheme"),
        (
            Some(&format!("Bearer {}", &ADMIN[..ADMIN.len() - 1])[..]),
            "a prefix of a token",
        ),
    ] {
        for query in [GROUP_COUNT, CREATE_GROUP] {
            let (status, body, challenge) = post(&server, auth, query, json!({ "n": "X" }));
            assert_eq!(status, 401, "{why}: {body}");
            assert_eq!(code(&body), "UNAUTHENTICATED", "{why}: {body}");
            assert!(body.get("data").is_none(), "{why}: {body}");
            assert!(challenge.starts_with("Bearer"), "{why}: {challenge}");
        }
    }
    // GET carries the same check.
    let mut response = server
        .agent()
        .get(server.url("/graphql?query=%7Bgroups%7BtotalCount%7D%7D"))
        .call()
        .expect("GET");
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.body_mut().read_json().expect("JSON");
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert_eq!(group_count(&server), before);
}

#[test]
fn a_reader_may_query_but_not_mutate_and_an_admin_may_do_both() {
    let dir = TempDir::new().expect("dir");
    let server = with_tokens(&dir);
    let before = group_count(&server);
    for query in [
        CREATE_GROUP,
        // A mutation hidden behind a query in the same document is still a mutation.
        "query Q { groups { totalCount } } mutation M($n: String!) { createGroup(displayName: $n) { id } }",
    ] {
        let mut body = json!({ "query": query, "variables": { "n": "X" } });
        if query.contains("mutation M") {
            body["operationName"] = json!("M");
        }
        let mut response = server
            .agent()
            .post(server.url("/graphql"))
            .header("Authorization", &bearer(READER))
            .send_json(&body)
            .expect("POST");
        assert_eq!(response.status().as_u16(), 403);
        let answer: Value = response.body_mut().read_json().expect("JSON");
        assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
    }
    assert_eq!(
        group_count(&server),
        before,
        "a refused mutation changed nothing"
    );
    let (status, body, _) = post(
        &server,
        Some(&bearer(ADMIN)),
        CREATE_GROUP,
        json!({ "n": "Admins' group" }),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["createGroup"]["id"].is_string(), "{body}");
    assert_eq!(group_count(&server), before + 1);
    // The admin may query too; the scheme's case does not matter (RFC 7235).
    let (status, _, _) = post(
        &server,
        Some(&format!("bearer {ADMIN}")),
        GROUP_COUNT,
        json!({}),
    );
    assert_eq!(status, 200);
}

#[test]
fn tokens_rotate_on_sighup_and_never_reach_the_log() {
    let dir = TempDir::new().expect("dir");
    let server = with_tokens(&dir);
    let admin_file = dir.path().join("admin.tokens");
    // Rotation: the new token is added beside the old one, then the old one is removed.
    std::fs::write(&admin_file, format!("{ADMIN}\n{ADMIN_ROTATED}\n")).expect("write");
    server.signal("HUP");
    let accepted = |token: &str| {
        post(
            &server,
            Some(&bearer(token)),
            CREATE_GROUP,
            json!({ "n": "R" }),
        )
        .0 == 200
    };
    wait_until("the rotated token is accepted", || accepted(ADMIN_ROTATED));
    assert!(accepted(ADMIN));
    std::fs::write(&admin_file, format!("{ADMIN_ROTATED}\n")).expect("write");
    server.signal("HUP");
    wait_until("the old token is refused", || !accepted(ADMIN));
    assert!(accepted(ADMIN_ROTATED));
    // A broken file is refused and the tokens in force stay.
    std::fs::write(&admin_file, "short\n").expect("write");
    server.signal("HUP");
    wait_until("the refusal is logged", || {
        server.stderr().contains("token files refused")
    });
    assert!(accepted(ADMIN_ROTATED));
    let log = server.stderr();
    for token in [ADMIN, ADMIN_ROTATED, READER, "short"] {
        assert!(!log.contains(token), "the log shows a token:\n{log}");
    }
}

pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tokens_can_come_from_the_environment() {
    let dir = TempDir::new().expect("dir");
    // Spawned by hand: the harness clears these variables.
    let (mut child, base) = spawn_listening(
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[
            (
                "GROUP_LICENSING_ADMIN_TOKENS",
                &format!("{ADMIN}, {ADMIN_ROTATED}"),
            ),
            ("GROUP_LICENSING_READER_TOKENS", READER),
        ],
    );
    let agent = crate::harness::agent();
    let ask = |token: Option<&str>, query: &str| {
        let mut request = agent.post(format!("{base}/graphql"));
        if let Some(t) = token {
            request = request.header("Authorization", &bearer(t));
        }
        request
            .send_json(json!({ "query": query, "variables": { "n": "E" } }))
            .expect("POST")
            .status()
            .as_u16()
    };
    assert_eq!(ask(None, GROUP_COUNT), 401);
    assert_eq!(ask(Some(READER), GROUP_COUNT), 200);
    assert_eq!(ask(Some(READER), CREATE_GROUP), 403);
    assert_eq!(ask(Some(ADMIN_ROTATED), CREATE_GROUP), 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// `serve` on a new database in `dir` with the scenario rules, without tokens from this
/// process's environment.
fn serve(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--db"])
        .arg(dir.join("t.db"))
        .arg("--rules")
        .arg(scenario_rules())
        .args(args)
        .env_remove("GROUP_LICENSING_ADMIN_TOKENS")
        .env_remove("GROUP_LICENSING_READER_TOKENS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

/// Starts `serve` on a new database in `dir` with `args` and `env`; returns it once it
/// listens, with its base URL.
fn spawn_listening(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let mut child = serve(dir, args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("the address line");
    assert!(line.starts_with("listening on "), "{line}");
    (
        child,
        line.trim_start_matches("listening on ")
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Runs `serve` with `args` to its end; (success, stderr).
fn serve_until_exit(args: &[&str]) -> (bool, String) {
    let dir = TempDir::new().expect("dir");
    let mut child = serve(dir.path(), args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`serve {args:?}` kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    let created = dir.path().join("t.db").exists();
    assert!(!created, "a refused start created the database");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn without_tokens_the_server_only_listens_on_loopback() {
    let (ok, stderr) = serve_until_exit(&["--listen", "0.0.0.0:0"]);
    assert!(!ok);
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0:0 without tokens"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure"), "{stderr}");
    // With --insecure it starts (and is killed here once it listens).
    let dir = TempDir::new().expect("dir");
    let (mut child, base) =
        spawn_listening(dir.path(), &["--listen", "0.0.0.0:0", "--insecure"], &[]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(base.contains("0.0.0.0"), "{base}");
}

#[test]
fn bad_token_files_stop_the_start_and_name_the_line_not_the_token() {
    let dir = TempDir::new().expect("dir");
    let short = write(dir.path(), "short", &format!("{ADMIN}\nshort-secret\n"));
    let empty = write(dir.path(), "empty", "# none yet\n");
    let both = write(dir.path(), "both", &format!("{ADMIN}\n"));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--admin-token-file".into(), short.display().to_string()],
            "line 2: a token must have at least 16 characters",
        ),
        (
            vec!["--reader-token-file".into(), empty.display().to_string()],
            "holds no token",
        ),
        (
            vec![
                "--admin-token-file".into(),
                dir.path().join("missing").display().to_string(),
            ],
            "cannot read the token file",
        ),
        (
            vec![
                "--admin-token-file".into(),
                both.display().to_string(),
                "--reader-token-file".into(),
                both.display().to_string(),
            ],
            "both as an admin token and as a reader token",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stderr) = serve_until_exit(&args);
        assert!(!ok, "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("short-secret") && !stderr.contains(ADMIN),
            "{stderr}"
        );
    }
}

#[test]
fn graphiql_and_the_health_check_need_no_token() {
    let dir = TempDir::new().expect("dir");
    let server = with_tokens(&dir);
    let response = server
        .agent()
        .get(server.url("/graphql"))
        .header("Accept", "text/html")
        .call()
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(healthz(&server), 200);
}

// ---- Query limits ---------------------------------------------------------------------------

/// graphql-js's introspection query (as GraphiQL sends it), written out with its `TypeRef`
/// nesting: the deepest legitimate request.
const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name } types { ...FullType } directives { name description locations args { ...InputValue } } } }
fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } }";

/// The benchmark's dashboard page, at the largest page size.
const ERRORS_PAGE: &str = "query ($g: ID!) { group(id: $g) { membersWithLicenseErrors(first: 1000) { totalCount edges { cursor node { id userPrincipalName licenseAssignmentStates { product { skuPartNumber displayName } assignedByGroup { id displayName } disabledPlans { servicePlanName } state error lastUpdatedDateTime errorDetail { message resolutions violations { code message plans { servicePlanName } conflictingPlan { servicePlanName } conflictingSource { direct group { displayName } product { skuPartNumber } } } } } } } pageInfo { hasNextPage endCursor } } } }";

fn demo_server(dir: &TempDir, extra: &[&str]) -> Server {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut args = vec!["--demo"];
    args.extend_from_slice(extra);
    Server::start_with(&dir.path().join("t.db"), &rules, &args)
}

#[test]
fn legitimate_dashboard_queries_fit_the_limits() {
    let dir = TempDir::new().expect("dir");
    let server = demo_server(&dir, &[]);
    let data = server.ok(INTROSPECTION, json!({}));
    assert!(
        data["__schema"]["types"]
            .as_array()
            .is_some_and(|t| t.len() > 20)
    );
    let data = server.ok(ERRORS_PAGE, json!({ "g": "1" }));
    assert!(data["group"]["membersWithLicenseErrors"]["totalCount"].is_number());
    let data = server.ok(
        "{ products { skuPartNumber consumedUnits servicePlans { servicePlanName } } }",
        json!({}),
    );
    assert!(data["products"].as_array().is_some_and(|p| p.len() > 500));
}

#[test]
fn hostile_queries_get_a_clear_error_and_the_server_stays_healthy() {
    let dir = TempDir::new().expect("dir");
    let server = demo_server(&dir, &[]);
    let nested_pages = "{ users(first: 1000) { edges { node { memberOf { members(first: 1000) { edges { node { memberOf { members(first: 1000) { edges { node { id } } } } } } } } } } } }";
    let deep_fields = format!(
        "{{ users(first: 1) {{ edges {{ node {{ {} id {} }} }} }} }}",
        "memberOf { members(first: 1) { edges { node { ".repeat(5),
        "} } } } ".repeat(5)
    );
    let aliases: String = (0..1001)
        .map(|i| format!("g{i}: group(id: \"1\") {{ id }} "))
        .collect();
    let directives = format!(
        "{{ rules {} {{ planCount }} }}",
        "@include(if: true) ".repeat(6)
    );
    let brackets = format!("{{ group(id: {}) {{ id }} }}", "[".repeat(200_000));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "pages nested in pages",
            nested_pages.to_string(),
            "QUERY_TOO_COMPLEX",
        ),
        ("fields nested too deep", deep_fields, "QUERY_TOO_DEEP"),
        (
            "too many aliases",
            format!("{{ {aliases} }}"),
            "QUERY_TOO_COMPLEX",
        ),
        ("too many directives", directives, "QUERY_TOO_COMPLEX"),
        ("brackets nested 200,000 deep", brackets, "QUERY_TOO_DEEP"),
    ];
    for (what, query, expected) in cases {
        let (status, body, _) = post(&server, None, &query, json!({}));
        assert_eq!(code(&body), expected, "{what}: {status} {body}");
        assert!(body["data"].is_null(), "{what}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("at most"),
            "{what}: the message says the limit: {message}"
        );
        // Everyone else is still served.
        let data = server.ok("{ group(id: \"1\") { displayName } }", json!({}));
        assert!(data["group"]["displayName"].is_string(), "{what}");
    }
}

#[test]
fn a_query_over_the_timeout_is_stopped_but_mutations_are_not_cut() {
    let dir = TempDir::new().expect("dir");
    let server = demo_server(&dir, &["--request-timeout-ms", "1"]);
    let big = "{ products { skuPartNumber displayName consumedUnits licensedGroups { displayName } servicePlans { servicePlanName displayName } } }";
    let (status, body, _) = post(&server, None, big, json!({}));
    assert_eq!(status, 503, "{body}");
    assert_eq!(code(&body), "TIMEOUT", "{body}");
    let (status, body, _) = post(
        &server,
        None,
        CREATE_GROUP,
        json!({ "n": "After a timeout" }),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["createGroup"]["id"].is_string(), "{body}");
    assert_eq!(healthz(&server), 200);
}

// ---- The response cache -------------------------------------------------------------------

#[test]
fn cached_answers_follow_every_write_and_reload() {
    let s = crate::harness::fresh();
    let group = s.create_group("Cached");
    let user = s.create_user("cached@contoso.com", Some("US"));
    let query = "query($g: ID!) { group(id: $g) { memberCount members { totalCount } } }";
    let ask = || s.gql(query, json!({ "g": group }));
    let first = ask();
    assert_eq!(first["data"]["group"]["memberCount"], 0, "{first}");
    assert_eq!(ask(), first, "the same answer while nothing changes");
    // The mutation's answer arrives after the cache has been made stale.
    s.add_members(&group, &[&user]);
    let after = ask();
    assert_eq!(after["data"]["group"]["memberCount"], 1, "{after}");
    assert_eq!(
        after["data"]["group"]["members"]["totalCount"], 1,
        "{after}"
    );
    // A refused reload changes what `rules` answers, and so the cached answer.
    let rules = "{ rules { lastReloadErrors { message } } }";
    assert_eq!(
        s.gql(rules, json!({}))["data"]["rules"]["lastReloadErrors"],
        json!([])
    );
    let edited = crate::harness::copy_rules(&s.rules, s.dir.path(), "edited");
    let server = Server::start(&s.dir.path().join("second.db"), &edited);
    assert_eq!(
        server.gql(rules, json!({}))["data"]["rules"]["lastReloadErrors"],
        json!([])
    );
    std::fs::write(edited.join("broken.rules"), "plan {\n").expect("write");
    let refused = server.gql("mutation { reloadRules { planCount } }", json!({}));
    assert!(refused["errors"].is_array(), "{refused}");
    let now = server.gql(rules, json!({}));
    assert!(
        now["data"]["rules"]["lastReloadErrors"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{now}"
    );
}
