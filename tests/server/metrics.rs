//! `GET /metrics` through the real server: the text is read by prometheus_client's own parser
//! (tests/metrics/parse.py, in the pinned venv of `.ci/metrics-setup`), and every series about
//! the stored state is compared with what GraphQL answers of the same tenant: seats per
//! product bought or used, users in error per code, groups in error, the queue and the groups
//! in progress (during a run and after it). The counters are checked by what the test itself
//! did: members processed by a reprocess (P9's counts), steps, webhook attempts (one answered
//! 500, then delivered), rules reloads applied and refused, HTTP requests by route pattern and
//! status. Access: an admin or reader token, never a provisioning one, none refused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Server, copy_rules, generate_tenant, int, license, pinned_python, str_of};
use crate::notices::{Receiver, create_webhook};
use crate::scim::{ADMIN, PROVISIONING, READER, with_tokens};

/// One sample: its name, labels and value (`+Inf` and the like as text).
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape: family name → (type, samples).
struct Scrape {
    families: HashMap<String, (String, Vec<Sample>)>,
}

impl Scrape {
    /// The samples of the family `name` (its name without `_total`, as the parser reports a
    /// counter), checked to be of `kind`.
    fn family(&self, name: &str, kind: &str) -> &[Sample] {
        let (found, samples) = self
            .families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name} in {:?}", self.names()));
        assert_eq!(found, kind, "the type of {name}");
        samples
    }

    fn names(&self) -> BTreeSet<&str> {
        self.families.keys().map(String::as_str).collect()
    }

    /// The value of the sample `sample` with exactly these labels; 0 when there is none.
    fn value(&self, family: &str, kind: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.family(family, kind)
            .iter()
            .find(|s| s.name == sample && s.labels == wanted)
            .map(|s| s.value)
            .unwrap_or(0.0)
    }

    /// `label value → value` of a one-label gauge family.
    fn by_label(&self, family: &str, label: &str) -> BTreeMap<String, i64> {
        self.family(family, "gauge")
            .iter()
            .map(|s| {
                assert_eq!(s.labels.len(), 1, "{s:?}");
                (s.labels[label].clone(), s.value as i64)
            })
            .collect()
    }

    fn gauge(&self, family: &str) -> i64 {
        self.value(family, "gauge", family, &[]) as i64
    }
}

const NS: &str = "group_licensing_";

/// `GET /metrics` with `token`: its status, content type and body.
fn get_metrics(s: &Server, token: Option<&str>) -> (u16, String, String) {
    let mut request = s.agent().get(s.url("/metrics"));
    if let Some(t) = token {
        request = request.header("Authorization", &format!("Bearer {t}"));
    }
    let mut response = request.call().expect("GET /metrics");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.body_mut().read_to_string().expect("a text body");
    (status, kind, body)
}

/// A scrape parsed by prometheus_client.
fn scrape(s: &Server, token: Option<&str>) -> Scrape {
    let (status, kind, text) = get_metrics(s, token);
    assert_eq!(status, 200, "{text}");
    assert_eq!(kind, "text/plain; version=0.0.4", "Prometheus' text format");
    parse(&text)
}

fn parse(text: &str) -> Scrape {
    let python = pinned_python("tests/metrics", ".ci/metrics-setup");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metrics/parse.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write the scrape");
    }
    let output = child.wait_with_output().expect("the parser's output");
    assert!(
        output.status.success(),
        "prometheus_client could not parse the scrape: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).expect("the parser's JSON");
    let mut families = HashMap::new();
    for f in parsed["families"].as_array().expect("families") {
        let name = str_of(&f["name"]);
        assert!(
            name.starts_with(NS),
            "every series is the server's own: {name}"
        );
        assert!(!str_of(&f["help"]).is_empty(), "{name} says what it counts");
        let samples = f["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| Sample {
                name: str_of(&s["name"]),
                labels: s["labels"]
                    .as_object()
                    .expect("labels")
                    .iter()
                    .map(|(k, v)| (k.clone(), str_of(v)))
                    .collect(),
                value: match &s["value"] {
                    Value::String(t) if t == "+Inf" => f64::INFINITY,
                    v => v.as_f64().unwrap_or_else(|| panic!("a value: {v}")),
                },
            })
            .collect();
        let previous = families.insert(name.clone(), (str_of(&f["type"]), samples));
        assert!(previous.is_none(), "{name} twice");
    }
    Scrape { families }
}

/// A generated tenant of `users` users, with the project's rules copied (to be broken).
fn generated(dir: &Path, users: u64, extra: &[&str]) -> Server {
    let rules = copy_rules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        dir,
        "rules",
    );
    let db = dir.join("t.db");
    generate_tenant(&db, users, &rules);
    Server::start_with(&db, &rules, extra)
}

/// Every user's error codes, walked page by page through GraphQL.
fn users_in_error(s: &Server) -> BTreeMap<String, i64> {
    let mut per_code: BTreeMap<String, i64> = BTreeMap::new();
    let users = s.all_pages(
        "query($after: String) { users(first: 500, after: $after) { pageInfo { hasNextPage endCursor } edges { node { licenseAssignmentStates { error } } } } }",
        "users",
    );
    for edge in users {
        let codes: BTreeSet<String> = edge["node"]["licenseAssignmentStates"]
            .as_array()
            .expect("states")
            .iter()
            .map(|st| str_of(&st["error"]))
            .filter(|c| c != "NONE")
            .collect();
        for code in codes {
            *per_code.entry(code).or_default() += 1;
        }
    }
    per_code
}

const CODES: [&str; 6] = [
    "COUNT_VIOLATION",
    "MUTUALLY_EXCLUSIVE_VIOLATION",
    "DEPENDENCY_VIOLATION",
    "PROHIBITED_IN_USAGE_LOCATION_VIOLATION",
    "UNIQUENESS_VIOLATION",
    "OTHER",
];

/// The stored state's series against GraphQL's answers, at a moment with no processing.
fn check_state_against_graphql(s: &Server, m: &Scrape) {
    let products = s.ok(
        "{ products(boughtOrUsed: true) { skuPartNumber prepaidUnits consumedUnits availableUnits } }",
        json!({}),
    )["products"]
        .as_array()
        .cloned()
        .expect("products");
    assert!(!products.is_empty(), "the tenant buys products");
    for (family, field) in [
        ("prepaid_units", "prepaidUnits"),
        ("consumed_units", "consumedUnits"),
        ("available_units", "availableUnits"),
    ] {
        let expected: BTreeMap<String, i64> = products
            .iter()
            .map(|p| (str_of(&p["skuPartNumber"]), int(&p[field])))
            .collect();
        assert_eq!(
            m.by_label(&format!("{NS}{family}"), "sku_part_number"),
            expected,
            "{family}: one series per product bought or used, none for the others"
        );
    }
    let expected = users_in_error(s);
    assert!(
        expected.len() >= 4,
        "the tenant has users in error with four codes (C5, C3, C2, C1): {expected:?}"
    );
    let mut every_code: BTreeMap<String, i64> = CODES.iter().map(|c| (c.to_string(), 0)).collect();
    every_code.extend(expected);
    assert_eq!(
        m.by_label(&format!("{NS}users_in_error"), "code"),
        every_code,
        "users in error per code, every code present"
    );
    let groups_in_error = s.ok(
        "{ groups(first: 1, hasMembersWithLicenseErrors: true) { totalCount } }",
        json!({}),
    )["groups"]["totalCount"]
        .clone();
    assert!(int(&groups_in_error) > 0);
    assert_eq!(
        m.gauge(&format!("{NS}groups_in_error")),
        int(&groups_in_error)
    );
}

/// Groups in a processing state, by GraphQL.
fn groups_in(s: &Server, state: &str) -> i64 {
    int(&s.ok(
        "query($st: LicenseProcessingState) { groups(first: 1, licenseProcessingState: $st) { totalCount } }",
        json!({ "st": state }),
    )["groups"]["totalCount"])
}

/// The two largest groups, largest first.
fn largest_groups(s: &Server) -> Vec<(String, i64)> {
    let mut groups: Vec<(String, i64)> = s.ok(
        "{ groups(first: 1000) { edges { node { id memberCount } } } }",
        json!({}),
    )["groups"]["edges"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|e| (str_of(&e["node"]["id"]), int(&e["node"]["memberCount"])))
        .collect();
    groups.sort_by_key(|(_, n)| -n);
    groups.truncate(2);
    groups
}

fn counter(m: &Scrape, family: &str, labels: &[(&str, &str)]) -> f64 {
    m.value(
        &format!("{NS}{family}"),
        "counter",
        &format!("{NS}{family}_total"),
        labels,
    )
}

fn histogram(m: &Scrape, family: &str, labels: &[(&str, &str)]) -> (f64, f64) {
    let name = format!("{NS}{family}");
    let count = m.value(&name, "histogram", &format!("{name}_count"), labels);
    let sum = m.value(&name, "histogram", &format!("{name}_sum"), labels);
    let mut with_inf: Vec<(&str, &str)> = labels.to_vec();
    with_inf.push(("le", "+Inf"));
    assert_eq!(
        m.value(&name, "histogram", &format!("{name}_bucket"), &with_inf),
        count,
        "{name}: the +Inf bucket holds every observation"
    );
    (count, sum)
}

/// The generated tenant's group of all users licensed with Office 365 E3, with 500 seats too
/// few (COUNT_VIOLATION), besides the errors the tenant has waiting: direct E1 holders (C3),
/// users in CN (C2), duplicate addresses (C1).
fn license_all_users(s: &Server, users: i64) -> String {
    let all = largest_groups(s)[0].0.clone();
    s.set_prepaid("ENTERPRISEPACK", users - 500);
    s.assign_group(&all, json!([license("ENTERPRISEPACK", &[])]), &[]);
    s.wait_complete_within(&all, Duration::from_secs(300));
    all
}

#[test]
fn the_stored_state_equals_what_graphql_reports_during_a_run_and_after_it() {
    let users = 20_000;
    let dir = tempfile::TempDir::new().expect("dir");
    let s = generated(dir.path(), users as u64, &[]);
    license_all_users(&s, users);
    s.wait_idle();
    let idle = scrape(&s, None);
    check_state_against_graphql(&s, &idle);
    assert_eq!(idle.gauge(&format!("{NS}queue_items")), 0);
    assert_eq!(idle.gauge(&format!("{NS}groups_in_progress")), 0);
    assert_eq!(idle.gauge(&format!("{NS}groups_queued")), 0);

    // Two runs queued: the first runs while the second waits. A scrape between two GraphQL
    // reads that agree (the same run still going, the other still waiting) must say the same.
    let groups = largest_groups(&s);
    assert!(groups[0].1 > 10_000, "a run of several steps: {groups:?}");
    for (g, _) in &groups {
        s.reprocess_group(g);
    }
    let start = Instant::now();
    loop {
        let before = (groups_in(&s, "IN_PROGRESS"), groups_in(&s, "QUEUED"));
        let (status, _, text) = get_metrics(&s, None);
        assert_eq!(status, 200, "{text}");
        let after = (groups_in(&s, "IN_PROGRESS"), groups_in(&s, "QUEUED"));
        if before == after && before == (1, 1) {
            let during = parse(&text);
            assert_eq!(during.gauge(&format!("{NS}groups_in_progress")), 1);
            assert_eq!(during.gauge(&format!("{NS}groups_queued")), 1);
            assert_eq!(
                during.gauge(&format!("{NS}queue_items")),
                2,
                "two runs queued, nothing else"
            );
            break;
        }
        assert!(
            after.1 == 1 && start.elapsed() < Duration::from_secs(120),
            "the runs ended before a scrape fell inside one ({before:?}, {after:?}): make the tenant larger"
        );
    }
    for (g, _) in &groups {
        s.wait_complete_within(g, Duration::from_secs(300));
    }
    s.wait_idle();
    let done = scrape(&s, None);
    check_state_against_graphql(&s, &done);
    assert_eq!(done.gauge(&format!("{NS}queue_items")), 0);
    assert_eq!(done.gauge(&format!("{NS}groups_in_progress")), 0);
}

#[test]
fn counters_follow_processing_webhooks_reloads_and_requests() {
    let dir = tempfile::TempDir::new().expect("dir");
    let s = generated(dir.path(), 3_000, &["--webhook-allow-private"]);
    s.wait_idle();
    let receiver = Receiver::start();
    create_webhook(&s, &receiver.url(), json!(["GROUP_PROCESSING_COMPLETE"]));
    let before = scrape(&s, None);

    // A reprocess: the members it went through, counted once each (P9's processedMembers);
    // its one COMPLETE delivered after one 500 and a retry.
    receiver.fail_next(1);
    let (group, members) = largest_groups(&s)[0].clone();
    s.reprocess_group(&group);
    let complete = s.wait_complete_within(&group, Duration::from_secs(60));
    assert_eq!(int(&complete["processedMembers"]), members);
    receiver.wait_for("the COMPLETE, once refused and once taken", |got| {
        got.len() >= 2
    });
    let start = Instant::now();
    loop {
        let hook = s.ok(
            "{ webhooks { pendingDeliveries lastDelivery { statusCode } } }",
            json!({}),
        )["webhooks"][0]
            .clone();
        if hook["pendingDeliveries"] == 0 && hook["lastDelivery"]["statusCode"] == 200 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{hook}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(receiver.received().len(), 2, "one 500, one retry taken");

    // Reloads: one refused (a rules file that does not parse), then one applied.
    let broken = s.rules.join("zz-broken.rules");
    std::fs::write(&broken, "product {").expect("write a broken rules file");
    let refused = s.gql("mutation { reloadRules { planCount } }", json!({}));
    assert!(refused["errors"].is_array(), "{refused}");
    std::fs::remove_file(&broken).expect("remove it");
    s.ok("mutation { reloadRules { planCount } }", json!({}));

    // Requests by route pattern and status, the id of a path never a label.
    let call = |path: &str| {
        s.agent()
            .get(s.url(path))
            .call()
            .expect("a request")
            .status()
            .as_u16()
    };
    for _ in 0..3 {
        assert_eq!(call("/healthz"), 200);
    }
    assert_eq!(call("/no/such/page"), 404);
    assert_eq!(call("/scim/v2/Users/999999999"), 404);
    assert_eq!(call("/scim/v2/Users/999999998"), 404);

    let after = scrape(&s, None);
    let delta = |family: &str, labels: &[(&str, &str)]| {
        counter(&after, family, labels) - counter(&before, family, labels)
    };
    assert_eq!(delta("members_processed", &[]), members as f64);
    let (steps_before, sum_before) = histogram(&before, "processing_step_seconds", &[]);
    let (steps_after, sum_after) = histogram(&after, "processing_step_seconds", &[]);
    assert!(
        steps_after - steps_before >= (members as f64 / 5_000.0).ceil(),
        "a step per 5,000 members at least: {steps_before} → {steps_after}"
    );
    assert!(sum_after > sum_before, "steps take time");
    assert_eq!(delta("webhook_deliveries", &[("result", "failed")]), 1.0);
    assert_eq!(delta("webhook_deliveries", &[("result", "delivered")]), 1.0);
    assert_eq!(delta("webhook_deliveries", &[("result", "dropped")]), 0.0);
    assert_eq!(delta("rules_reloads", &[("result", "refused")]), 1.0);
    assert_eq!(delta("rules_reloads", &[("result", "applied")]), 1.0);
    let requests = |route: &str, status: &str| {
        delta(
            "http_requests",
            &[("method", "GET"), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("/healthz", "200"), 3.0);
    assert_eq!(requests("unmatched", "404"), 1.0);
    assert_eq!(requests("/scim/v2/Users/{id}", "404"), 2.0);
    // The scrape before this one is counted as it answers.
    assert_eq!(requests("/metrics", "200"), 1.0);
    let routes: BTreeSet<String> = after
        .family(&format!("{NS}http_requests"), "counter")
        .iter()
        .map(|s| s.labels["route"].clone())
        .collect();
    assert!(
        routes.iter().all(|r| !r.contains("999999")),
        "ids never become labels: {routes:?}"
    );
    let (count, _) = histogram(
        &after,
        "http_request_duration_seconds",
        &[("method", "GET"), ("route", "/healthz")],
    );
    let (count_before, _) = histogram(
        &before,
        "http_request_duration_seconds",
        &[("method", "GET"), ("route", "/healthz")],
    );
    assert_eq!(count - count_before, 3.0, "each request timed");
}

#[test]
fn metrics_need_an_admin_or_reader_token() {
    let dir = tempfile::TempDir::new().expect("dir");
    let s = with_tokens(dir.path(), &[]);
    let (status, _, body) = get_metrics(&s, None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("UNAUTHENTICATED"), "{body}");
    let (status, _, body) = get_metrics(&s, Some("not-a-token-of-ours-0123"));
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = get_metrics(&s, Some(PROVISIONING));
    assert_eq!(status, 403, "{body}");
    for token in [READER, ADMIN] {
        let m = scrape(&s, Some(token));
        assert!(m.names().contains("group_licensing_users_in_error"));
    }
}
