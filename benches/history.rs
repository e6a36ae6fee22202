//! H: the history at scale, against the release binary.
//!
//! ```sh
//! cargo bench --bench history                 # 100,000 users, a log of 1,000,000 events
//! cargo bench --bench history -- --full       # 1,000,000 users, a log of 10,000,000 events
//! cargo bench --bench history -- --users 200000 --events 3000000
//! ```
//!
//! `generate`'s tenant is licensed as B1 does; then the plans of Office 365 E3 on the group of
//! all users are turned off and on again, run after run, each run writing a "Change user
//! license" event per holder, until the log holds the events asked for. Then, against that log:
//! `auditEvents(first: 100)` of one user (random users, every field of the events, with
//! `totalCount`), and the other filters, timed from the client over loopback with p50 and p99;
//! the bytes per event on disk (SQLite's `dbstat`); each run's time as the log grows; and
//! the CSV export of the last run's events, with the server's peak RSS.

use std::io::Read;
use std::time::{Duration, Instant};

#[path = "support/server.rs"]
mod support;

use serde_json::{Value, json};
use support::{Args, Server, generate, history_size, license_everyone};

const EVENT: &str = "id activityDateTime category activityDisplayName initiatedBy { kind name } targetResources { type id displayName modifiedProperties { displayName oldValue newValue } } result resultReason correlationId";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Times `requests` queries made by `query_of(i)`; (p50, p99) in ms.
fn timed(
    server: &Server,
    requests: usize,
    query_of: impl Fn(usize) -> (String, Value),
) -> (f64, f64) {
    let mut ms = Vec::with_capacity(requests);
    for i in 0..requests {
        let (query, variables) = query_of(i);
        let t = Instant::now();
        let answer = server.gql(&query, variables);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

fn total_events(server: &Server) -> i64 {
    server.gql("{ auditEvents(first: 0) { totalCount } }", json!({}))["auditEvents"]["totalCount"]
        .as_i64()
        .expect("a count")
}

fn wait_complete(server: &Server, group: &Value) {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let state = server.gql(
            "query ($g: ID!) { group(id: $g) { licenseProcessingState } }",
            json!({ "g": group }),
        );
        if state["group"]["licenseProcessingState"] == "COMPLETE" {
            return;
        }
        assert!(Instant::now() < deadline, "a run took over 15 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    let Some(args) = Args::from_env() else {
        return;
    };
    let full = args.flag("--full");
    let users: u64 = args.number("--users", if full { 1_000_000 } else { 100_000 });
    let wanted: i64 = args.number("--events", if full { 10_000_000 } else { 1_000_000 });
    let dir = tempfile::tempdir().expect("temp dir");
    let db = generate(dir.path(), users);
    let server = Server::start(&db);
    let licensed = license_everyone(&server, users);
    let group = licensed.group.clone();
    println!("H: {users} users; B1's run {:.2} s", licensed.seconds);
    println!("{:>6} {:>12} {:>10}", "run", "events", "seconds");
    let mut run = 0;
    let mut last_run_start = String::new();
    while total_events(&server) < wanted {
        run += 1;
        let disabled: Vec<&str> = if run % 2 == 1 { vec!["SWAY"] } else { vec![] };
        let newest = server.gql(
            "{ auditEvents(first: 1) { edges { node { activityDateTime } } } }",
            json!({}),
        );
        last_run_start = newest["auditEvents"]["edges"][0]["node"]["activityDateTime"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let t = Instant::now();
        let answer = server.gql(
            "mutation ($g: ID!, $add: [LicenseInput!]!) { assignGroupLicense(groupId: $g, addLicenses: $add, removeLicenses: []) { id } }",
            json!({ "g": group, "add": [{ "skuPartNumber": "ENTERPRISEPACK", "disabledPlans": disabled }] }),
        );
        assert!(answer.get("errors").is_none(), "{answer}");
        wait_complete(&server, &group);
        println!(
            "{run:>6} {:>12} {:>10.2}",
            total_events(&server),
            t.elapsed().as_secs_f64()
        );
    }
    let events = total_events(&server);
    println!("log: {events} events");
    if let Some((stored, bytes)) = history_size(&db) {
        println!(
            "bytes per event on disk (tables and indexes): {:.0}",
            bytes as f64 / stored.max(1) as f64
        );
    }
    // A user's history: random users (an LCG: the same ones every time).
    let user_of = |i: usize| ((i as u64).wrapping_mul(2_654_435_761) % users) + 1;
    let by_user = format!(
        "query ($u: ID!) {{ auditEvents(first: 100, userId: $u) {{ totalCount edges {{ node {{ {EVENT} }} }} }} }}"
    );
    // Warm-up, as a dashboard's first requests.
    timed(&server, 50, |i| {
        (
            by_user.clone(),
            json!({ "u": user_of(i + 7919).to_string() }),
        )
    });
    let (p50, p99) = timed(&server, 2_000, |i| {
        (by_user.clone(), json!({ "u": user_of(i).to_string() }))
    });
    println!(
        "auditEvents(first: 100, userId) with totalCount: p50 {p50:.2} ms, p99 {p99:.2} ms (target p99 ≤ 10 ms)"
    );
    let user_page = format!(
        "query ($u: ID!) {{ user(id: $u) {{ auditEvents(first: 20) {{ edges {{ node {{ {EVENT} }} }} }} }} }}"
    );
    let (p50, p99) = timed(&server, 500, |i| {
        (user_page.clone(), json!({ "u": user_of(i).to_string() }))
    });
    println!("User.auditEvents(first: 20): p50 {p50:.2} ms, p99 {p99:.2} ms");
    let cases: Vec<(&str, String)> = vec![
        ("newest 100, no filter", format!("{{ auditEvents(first: 100) {{ totalCount edges {{ node {{ {EVENT} }} }} }} }}")),
        ("category LICENSE_PROCESSING, totalCount", "{ auditEvents(first: 100, category: LICENSE_PROCESSING) { totalCount edges { node { id } } } }".into()),
        ("result FAILURE", "{ auditEvents(first: 100, result: FAILURE) { totalCount edges { node { id } } } }".into()),
        ("skuPartNumber ENTERPRISEPACK, first page", "{ auditEvents(first: 100, skuPartNumber: \"ENTERPRISEPACK\") { edges { node { id } } } }".into()),
        ("skuPartNumber ENTERPRISEPACK, totalCount", "{ auditEvents(first: 1, skuPartNumber: \"ENTERPRISEPACK\") { totalCount } }".into()),
        ("groupId of All users, first page", format!("{{ auditEvents(first: 100, groupId: {group}) {{ edges {{ node {{ id }} }} }} }}")),
        ("groupId of All users, totalCount", format!("{{ auditEvents(first: 1, groupId: {group}) {{ totalCount }} }}")),
        ("since the last run began, totalCount", format!("{{ auditEvents(first: 100, since: \"{last_run_start}\") {{ totalCount edges {{ node {{ id }} }} }} }}")),
    ];
    for (name, query) in cases {
        let (p50, p99) = timed(&server, 20, |_| (query.clone(), json!({})));
        println!("{name}: p50 {p50:.1} ms, p99 {p99:.1} ms (20 requests)");
    }
    // The export of the last run's events.
    let url = format!(
        "{}/export/audit-events.csv?since={}",
        server.base,
        last_run_start.replace('+', "%2B")
    );
    let before = server.peak_rss_mib();
    let t = Instant::now();
    match server.agent.get(&url).call() {
        Ok(mut response) if response.status() == 200 => {
            let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
            let mut buffer = vec![0u8; 1 << 16];
            let (mut bytes, mut rows) = (0u64, 0u64);
            loop {
                let n = reader.read(&mut buffer).expect("read the export");
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                rows += buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
            }
            let seconds = t.elapsed().as_secs_f64();
            println!(
                "export of the last run's events: {} rows, {:.0} MiB in {seconds:.2} s ({:.0} rows/s); server peak RSS {before:.0} → {:.0} MiB",
                rows.saturating_sub(1),
                bytes as f64 / 1048576.0,
                rows as f64 / seconds,
                server.peak_rss_mib()
            );
        }
        Ok(response) => println!("export: status {}", response.status()),
        Err(e) => println!("export: {e}"),
    }
}
