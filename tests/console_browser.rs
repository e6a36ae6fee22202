//! The admin console in a real browser (Debian's headless Chromium through Playwright) against
//! the real server on the demo tenant, as console.md's "Behaviour" asks:
//!
//! | test | scenario of `tests/browser/console.mjs` | then checked through the API |
//! | --- | --- | --- |
//! | `the_seeds_walk_ends_with_no_error_left` | `walk`: Overview → group in error → users in error → Dan → the conflicting plan and its source → plans off on his direct license → Reprocess → no seat left → one seat more → Reprocess | Dan's assignments, his direct license's plans, the seats |
//! | `every_view_shows_the_tenant_and_passes_axe` | `views`: each view's rows and numbers, filters in the address, reload and back, axe-core's WCAG 2 A/AA rules, 1024 px | |
//! | `actions_answer_where_they_were_taken_and_lists_page` | `edit`: members, products, plans, seats, a group's Reprocess, a usage location, proxy addresses, a direct license, a refused then a good rules reload, each with its answer; paging a group of 120 | what each action changed |
//! | `the_token_form_and_a_readers_view` | `tokens`: the form, the server's messages, a reader without edit controls, sessionStorage only | |
//! | `alerts_thresholds_and_webhooks` | `notices`: the Overview's alerts (a group short of Office 365 E1 seats, made here), a seat alert threshold refused, set and cleared, a webhook refused then created to the scenario's receiver (the secret shown once and checked against the deliveries' signature), the last delivery, a reader's views, the webhook deleted | no webhook left, the threshold cleared, its LOW_SEATS alert resolved |
//! | `progress_moves_over_the_subscription` | `live`: on a generated tenant, alerts and a group's run followed over the WebSocket with no polling, the socket closed on leaving, polling when the socket is refused | the runs completed |
//! | `the_history_lists_filters_pages_and_exports` | `history`: Activity after mutations made here (a named admin token's, a refused one, processing), paging, filters kept in the address, the CSV exports downloaded with the token (the history's, a group's users in error, a product's holders) and a refused one, a user's and a group's history, a reader's Activity and export | the exports' rows against the API's counts |
//!
//! Every scenario fails on a request to any host but the server's (they are aborted, so
//! nothing leaves the machine), on a page error and on a console error. Screenshots of each view
//! go to `$CARGO_TARGET_TMPDIR/console/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::{Value, json};

#[path = "support/node_tools.rs"]
mod node_tools;

/// One browser at a time: each run is a Chromium and a server, and the tests of this file would
/// otherwise start four of each together.
static BROWSER: Mutex<()> = Mutex::new(());

const READER: &str = "reader-token-for-the-console-test";
const ADMIN: &str = "admin-token-for-the-console-test";

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Runs one scenario of console.mjs against `base`; fails the test with its output unless every
/// check passed.
fn scenario(base: &str, name: &str, env: &[(&str, &str)]) -> String {
    let output = Command::new("node")
        .arg(node_tools::dir().join("console.mjs"))
        .arg(base)
        .arg(screenshots())
        .arg(name)
        .env("CHROMIUM", node_tools::CHROMIUM)
        .envs(env.iter().copied())
        .output()
        .expect("running node (install Node.js >= 20)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "console scenario {name} failed ({}); screenshots in {}\n{stdout}\n{stderr}",
        output.status,
        screenshots().display()
    );
    assert!(
        stdout.contains(&format!("OK: console scenario {name}:")),
        "{stdout}"
    );
    assert!(
        stdout.contains("requests went to 127.0.0.1:"),
        "every request went to the server: {stdout}"
    );
    stdout
}

/// Fails unless the scenario's output says axe-core checked each of `views` and found nothing.
fn axe_checked(stdout: &str, views: &[&str]) {
    for view in views {
        assert!(
            stdout.contains(&format!(
                "OK: axe-core: no WCAG 2 A/AA violation on {view} ("
            )),
            "axe-core did not check {view}:\n{stdout}"
        );
    }
}

fn prepare() -> std::sync::MutexGuard<'static, ()> {
    node_tools::require_chromium();
    node_tools::install();
    BROWSER.lock().unwrap_or_else(|e| e.into_inner())
}

fn graphql(base: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request =
        ureq::post(format!("{base}/graphql")).header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request
        .send_json(json!({ "query": query, "variables": variables }))
        .expect("the server answers");
    let body: Value = response.body_mut().read_json().expect("a JSON answer");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

/// A new group `name` of `n` new users (`name-001@contoso.com`, …, in that order); its id.
fn group_of_new_users(base: &str, token: Option<&str>, name: &str, n: usize) -> String {
    group_of_new_users_in(base, token, name, n, None)
}

/// The same, the users with `usage_location` of their own (none: the directory's default).
fn group_of_new_users_in(
    base: &str,
    token: Option<&str>,
    name: &str,
    n: usize,
    usage_location: Option<&str>,
) -> String {
    let prefix = name.to_lowercase();
    let location = usage_location.map_or(String::new(), |l| format!(", usageLocation: \"{l}\""));
    let creates: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"u{i}: createUser(input: {{ userPrincipalName: "{prefix}-{i:03}@contoso.com", displayName: "{name} {i:03}"{location} }}) {{ id }}"#
            )
        })
        .collect();
    let users = graphql(
        base,
        token,
        &format!("mutation {{ {} }}", creates.join(" ")),
        json!({}),
    );
    let ids: Vec<Value> = (1..=n)
        .map(|i| users[format!("u{i}")]["id"].clone())
        .collect();
    let group = graphql(
        base,
        token,
        "mutation ($name: String!) { createGroup(displayName: $name) { id } }",
        json!({ "name": name }),
    )["createGroup"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    graphql(
        base,
        token,
        "mutation ($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { memberCount } }",
        json!({ "g": group, "u": ids }),
    );
    group
}

/// Names of plans, sorted, from `[{ servicePlanName }]`.
fn plan_names(plans: &Value) -> Vec<String> {
    let mut names: Vec<String> = plans
        .as_array()
        .expect("a list of plans")
        .iter()
        .map(|p| p["servicePlanName"].as_str().expect("a name").to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn the_seeds_walk_ends_with_no_error_left() {
    let _one = prepare();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = node_tools::start_demo_server(&dir.path().join("demo.db"), &[], &[]);
    let before = graphql(
        &server.base,
        None,
        r#"{ user(userPrincipalName: "dan@contoso.com") { id hasLicenseErrors } }"#,
        json!({}),
    );
    assert_eq!(before["user"]["id"], "7", "the walk opens /users/7");
    assert_eq!(
        before["user"]["hasLicenseErrors"], true,
        "S2: Dan starts in error"
    );

    scenario(&server.base, "walk", &[]);

    let after = graphql(
        &server.base,
        None,
        r#"{
          user(userPrincipalName: "dan@contoso.com") {
            hasLicenseErrors
            licenseAssignmentStates { product { skuPartNumber } assignedByGroup { displayName } state error disabledPlans { servicePlanName } }
          }
          product(skuPartNumber: "ENTERPRISEPACK") { prepaidUnits consumedUnits availableUnits }
          group(id: "3") { displayName licenseErrorCount }
        }"#,
        json!({}),
    );
    let user = &after["user"];
    assert_eq!(user["hasLicenseErrors"], false, "{after}");
    let states = user["licenseAssignmentStates"].as_array().expect("states");
    assert_eq!(states.len(), 2, "{after}");
    for state in states {
        assert_eq!(state["state"], "ACTIVE", "{state}");
        assert_eq!(state["error"], "NONE", "{state}");
    }
    let direct = states
        .iter()
        .find(|s| s["assignedByGroup"].is_null())
        .expect("the direct STANDARDPACK");
    assert_eq!(direct["product"]["skuPartNumber"], "STANDARDPACK");
    assert_eq!(
        plan_names(&direct["disabledPlans"]),
        ["EXCHANGE_S_STANDARD", "SHAREPOINTSTANDARD"],
        "the fix made in the console: the conflicting plans off on the direct license"
    );
    assert_eq!(
        after["product"],
        json!({ "prepaidUnits": 13, "consumedUnits": 13, "availableUnits": 0 }),
        "the seat bought in the console went to Dan"
    );
    assert_eq!(after["group"]["licenseErrorCount"], 0, "{after}");
}

#[test]
fn every_view_shows_the_tenant_and_passes_axe() {
    let _one = prepare();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = node_tools::start_demo_server(&dir.path().join("demo.db"), &[], &[]);
    // Dan (user 7) with a disabled account: the scenario checks the console marks it.
    let disabled = graphql(
        &server.base,
        None,
        r#"mutation { updateUser(id: "7", input: { accountEnabled: false }) { displayName accountEnabled } }"#,
        json!({}),
    );
    assert_eq!(
        disabled["updateUser"]["accountEnabled"], false,
        "{disabled}"
    );
    let stdout = scenario(&server.base, "views", &[]);
    axe_checked(
        &stdout,
        &[
            "the overview",
            "the groups list",
            "a group, users in error",
            "a group, members",
            "a group, licenses",
            "the users list",
            "a user",
            "the products list",
            "the whole catalog",
            "a product",
            "the rules",
            "the activity",
            "a group, history",
            "the settings",
            "a missing group",
        ],
    );
    for view in [
        "overview", "groups", "group", "user", "product", "activity", "settings",
    ] {
        assert!(
            stdout.contains(&format!("OK: {view} fits 1024 px wide")),
            "{view} at 1024 px:\n{stdout}"
        );
    }
}

#[test]
fn actions_answer_where_they_were_taken_and_lists_page() {
    let _one = prepare();
    let dir = tempfile::tempdir().expect("temp dir");
    // A copy of the bundled rules, which the scenario breaks and mends between two reloads.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules folder");
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).expect("rules")
    {
        let entry = entry.expect("a rules file");
        std::fs::copy(entry.path(), rules.join(entry.file_name())).expect("copy a rules file");
    }
    let server =
        node_tools::start_demo_server_with_rules(&dir.path().join("demo.db"), &rules, &[], &[]);
    let base = &server.base;
    // A group of 120 members: more than one page of the console's 50, and of the API's 100.
    let group = group_of_new_users(base, None, "Paging", 120);

    let rules_dir = rules.display().to_string();
    scenario(
        base,
        "edit",
        &[
            ("CONSOLE_PAGING_GROUP", &group),
            ("CONSOLE_RULES_DIR", &rules_dir),
        ],
    );

    let after = graphql(
        base,
        None,
        r#"{
          teams: group(id: "5") { memberCount members { edges { node { userPrincipalName } } } }
          mobile: group(id: "2") { assignedLicenses { product { skuPartNumber } disabledPlans { servicePlanName } } }
          staff: group(id: "1") { assignedLicenses { product { skuPartNumber } } }
          ems: product(skuPartNumber: "EMS") { prepaidUnits }
          jon: user(userPrincipalName: "jon@contoso.com") { proxyAddresses hasLicenseErrors }
          full: group(id: "4") { licenseErrorCount licenseProcessingState }
          rules { lastReloadErrors { file } }
          gus: user(userPrincipalName: "gus@contoso.com") {
            usageLocation hasLicenseErrors licenseAssignmentStates { assignedByGroup { id } product { skuPartNumber } }
          }
        }"#,
        json!({}),
    );
    assert_eq!(
        after["teams"]["members"]["edges"],
        json!([{ "node": { "userPrincipalName": "gus@contoso.com" } }]),
        "Adele was added, then removed once the removal was confirmed: {after}"
    );
    let mobile = &after["mobile"]["assignedLicenses"];
    assert_eq!(
        mobile.as_array().map(Vec::len),
        Some(1),
        "the refused product was not added: {after}"
    );
    assert_eq!(
        mobile[0]["disabledPlans"].as_array().map(Vec::len),
        Some(1),
        "one plan of EMS turned off in the console: {after}"
    );
    assert_eq!(
        after["staff"]["assignedLicenses"],
        json!([{ "product": { "skuPartNumber": "STANDARDPACK" } }]),
        "the product added to All staff was removed again: {after}"
    );
    assert_eq!(after["ems"]["prepaidUnits"], 8, "{after}");
    assert_eq!(
        after["jon"],
        json!({ "proxyAddresses": ["smtp:jon@contoso.com"], "hasLicenseErrors": false }),
        "S7: Jon's duplicate address replaced in the console: {after}"
    );
    assert_eq!(
        after["full"],
        json!({ "licenseErrorCount": 0, "licenseProcessingState": "COMPLETE" }),
        "Full suite reprocessed in the console once seats were bought: {after}"
    );
    assert_eq!(
        after["rules"]["lastReloadErrors"],
        json!([]),
        "the mended rules reloaded: {after}"
    );
    assert_eq!(after["gus"]["usageLocation"], "US", "{after}");
    assert_eq!(
        after["gus"]["hasLicenseErrors"], false,
        "S4: US clears the error"
    );
    assert!(
        after["gus"]["licenseAssignmentStates"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| !s["assignedByGroup"].is_null())),
        "the direct license assigned in the console was removed again: {after}"
    );
}

#[test]
fn the_token_form_and_a_readers_view() {
    let _one = prepare();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = node_tools::start_demo_server(
        &dir.path().join("demo.db"),
        &[],
        &[
            ("GROUP_LICENSING_READER_TOKENS", READER),
            ("GROUP_LICENSING_ADMIN_TOKENS", ADMIN),
        ],
    );
    scenario(
        &server.base,
        "tokens",
        &[
            ("CONSOLE_READER_TOKEN", READER),
            ("CONSOLE_ADMIN_TOKEN", ADMIN),
        ],
    );
    // The reader's visit changed nothing.
    let data = graphql(
        &server.base,
        Some(READER),
        r#"{ group(id: "3") { licenseErrorCount } }"#,
        json!({}),
    );
    assert_eq!(data["group"]["licenseErrorCount"], 1);
}

/// Sends a mutation the server refuses; returns its error code.
fn refused(base: &str, token: &str, query: &str) -> String {
    let mut response = ureq::post(format!("{base}/graphql"))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {token}"))
        .send_json(json!({ "query": query }))
        .expect("the server answers");
    let body: Value = response.body_mut().read_json().expect("a JSON answer");
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{query} was not refused: {body}"))
        .to_string()
}

/// Waits until no group is queued or being processed, so that the history stops growing.
fn processed(base: &str, token: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let data = graphql(
            base,
            Some(token),
            "{ running: groups(first: 1, licenseProcessingState: IN_PROGRESS) { totalCount } \
               queued: groups(first: 1, licenseProcessingState: QUEUED) { totalCount } }",
            json!({}),
        );
        if data["running"]["totalCount"] == 0 && data["queued"]["totalCount"] == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processing did not finish: {data}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn the_history_lists_filters_pages_and_exports() {
    let _one = prepare();
    let dir = tempfile::tempdir().expect("temp dir");
    // Named tokens, so that the history says who: "Token ann.admin".
    let admins = dir.path().join("admins");
    let readers = dir.path().join("readers");
    std::fs::write(&admins, format!("ann.admin {ADMIN}\n")).expect("admin tokens");
    std::fs::write(&readers, format!("rita.reader {READER}\n")).expect("reader tokens");
    let (admins, readers) = (admins.display().to_string(), readers.display().to_string());
    let server = node_tools::start_demo_server(
        &dir.path().join("demo.db"),
        &[
            "--admin-token-file",
            &admins,
            "--reader-token-file",
            &readers,
        ],
        &[],
    );
    let base = &server.base;
    // A group whose history is longer than the 20 events a page of it shows.
    let group = group_of_new_users(base, Some(ADMIN), "History", 30);
    // Last, so that they are on Activity's first page: Gus gets a usage location of his own
    // (S4: that clears his error, and processing records it), and a mutation is refused.
    graphql(
        base,
        Some(ADMIN),
        r#"mutation { updateUser(id: "11", input: { usageLocation: "US" }) { id } }"#,
        json!({}),
    );
    assert_eq!(
        refused(
            base,
            ADMIN,
            r#"mutation { setPrepaidUnits(skuPartNumber: "NOT_A_PRODUCT", units: 3) { prepaidUnits } }"#
        ),
        "BAD_USER_INPUT"
    );
    processed(base, ADMIN);
    let before = graphql(
        base,
        Some(ADMIN),
        "{ auditEvents(first: 1) { totalCount } }",
        json!({}),
    )["auditEvents"]["totalCount"]
        .clone();

    let stdout = scenario(
        base,
        "history",
        &[
            ("CONSOLE_ADMIN_TOKEN", ADMIN),
            ("CONSOLE_READER_TOKEN", READER),
            ("CONSOLE_HISTORY_GROUP", &group),
        ],
    );
    axe_checked(
        &stdout,
        &[
            "the activity, filtered",
            "the activity, empty",
            "the activity, refused",
            "a user's history",
            "a group, history",
            "the activity, for a reader",
        ],
    );
    // Reading the history and exporting it changed nothing: no event was added meanwhile.
    let after = graphql(
        base,
        Some(READER),
        "{ auditEvents(first: 1) { totalCount } }",
        json!({}),
    );
    assert_eq!(after["auditEvents"]["totalCount"], before, "{after}");
}

#[test]
fn alerts_thresholds_and_webhooks() {
    let _one = prepare();
    let dir = tempfile::tempdir().expect("temp dir");
    // The scenario's webhook receiver is on 127.0.0.1, over http.
    let server = node_tools::start_demo_server(
        &dir.path().join("demo.db"),
        &["--webhook-allow-private"],
        &[
            ("GROUP_LICENSING_READER_TOKENS", READER),
            ("GROUP_LICENSING_ADMIN_TOKENS", ADMIN),
        ],
    );
    let base = &server.base;
    // Office 365 E1 with one seat left, given to a new group of three users with a usage
    // location of their own (the demo's default, CN, bars one of its plans): two wait for a
    // seat, so SEATS_EXHAUSTED stands for the product and LICENSE_ERRORS for the group.
    let used = graphql(
        base,
        Some(ADMIN),
        r#"{ product(skuPartNumber: "STANDARDPACK") { consumedUnits } }"#,
        json!({}),
    )["product"]["consumedUnits"]
        .as_i64()
        .expect("a count");
    graphql(
        base,
        Some(ADMIN),
        "mutation ($units: Int!) { setPrepaidUnits(skuPartNumber: \"STANDARDPACK\", units: $units) { availableUnits } }",
        json!({ "units": used + 1 }),
    );
    let group = group_of_new_users_in(base, Some(ADMIN), "Analysts", 3, Some("US"));
    graphql(
        base,
        Some(ADMIN),
        "mutation ($g: ID!) { assignGroupLicense(groupId: $g, addLicenses: [{ skuPartNumber: \"STANDARDPACK\", disabledPlans: [] }], removeLicenses: []) { id } }",
        json!({ "g": group }),
    );
    processed(base, ADMIN);
    let errors = graphql(
        base,
        Some(ADMIN),
        "query ($g: ID!) { group(id: $g) { licenseErrorCounts { error count } } }",
        json!({ "g": group }),
    );
    assert_eq!(
        errors["group"]["licenseErrorCounts"],
        json!([{ "error": "COUNT_VIOLATION", "count": 2 }]),
        "{errors}"
    );

    let stdout = scenario(
        base,
        "notices",
        &[
            ("CONSOLE_ADMIN_TOKEN", ADMIN),
            ("CONSOLE_READER_TOKEN", READER),
            ("CONSOLE_ALERT_GROUP", &group),
        ],
    );
    axe_checked(
        &stdout,
        &[
            "the overview, with alerts",
            "the secret dialog",
            "a product with a seat alert",
            "the settings, for a reader",
        ],
    );

    let after = graphql(
        base,
        Some(READER),
        r#"{
          webhooks { id }
          product(skuPartNumber: "WORKPLACE_ANALYTICS") { seatAlertThreshold }
          resolved: alerts(active: false, first: 100) { edges { node { kind product { skuPartNumber } } } }
          standing: alerts(active: true, first: 100) { edges { node { kind product { skuPartNumber } } } }
        }"#,
        json!({}),
    );
    assert_eq!(
        after["webhooks"],
        json!([]),
        "the webhook was deleted: {after}"
    );
    assert_eq!(
        after["product"]["seatAlertThreshold"],
        Value::Null,
        "the threshold was cleared: {after}"
    );
    let low = json!({ "node": { "kind": "LOW_SEATS", "product": { "skuPartNumber": "WORKPLACE_ANALYTICS" } } });
    let listed = |key: &str| {
        after[key]["edges"]
            .as_array()
            .expect("alerts")
            .contains(&low)
    };
    assert!(
        listed("resolved") && !listed("standing"),
        "the LOW_SEATS alert set in the console was resolved when it was cleared: {after}"
    );
}

/// Users of the generated tenant that `progress_moves_over_the_subscription` runs on: enough
/// for a run of its "All users" to last several of the subscription's 250 ms updates.
const LIVE_MEMBERS: usize = 100_000;

#[test]
fn progress_moves_over_the_subscription() {
    let _one = prepare();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("generated.db");
    let generated = Command::new(env!("CARGO_BIN_EXE_group-licensing"))
        .args(["generate", "--db"])
        .arg(&db)
        .args(["--users", &LIVE_MEMBERS.to_string(), "--rules"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .output()
        .expect("run generate");
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    // --demo fills an empty database only: this one keeps the generated tenant.
    let server = node_tools::start_demo_server(&db, &[], &[]);
    let base = &server.base;
    let before = graphql(
        base,
        None,
        r#"{ group(id: "1") { displayName memberCount assignedLicenses { product { skuPartNumber } } } }"#,
        json!({}),
    );
    assert_eq!(
        before["group"],
        json!({ "displayName": "All users", "memberCount": LIVE_MEMBERS, "assignedLicenses": [] }),
        "{before}"
    );

    scenario(
        base,
        "live",
        &[("CONSOLE_LIVE_MEMBERS", &LIVE_MEMBERS.to_string())],
    );

    let after = graphql(
        base,
        None,
        r#"{ group(id: "1") { licenseProcessingState processedMembers membersToProcess } }"#,
        json!({}),
    );
    assert_eq!(
        after["group"],
        json!({ "licenseProcessingState": "COMPLETE", "processedMembers": LIVE_MEMBERS, "membersToProcess": LIVE_MEMBERS }),
        "the console's Reprocess ran to its end: {after}"
    );
}
