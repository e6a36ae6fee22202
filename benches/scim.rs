//! B6 (SCIM provisioning), run against the real release binary:
//!
//! ```sh
//! cargo bench --bench scim                                  # 100,000 users, 100 groups of 1,000
//! cargo bench --bench scim -- --users 20000 --groups 20     # shorter
//! ```
//!
//! `serve` starts on an empty database with the bundled rules and Office 365 E3 seats for
//! everyone. One client (one thread, one keep-alive connection, as Entra ID's provisioning of
//! one app) then provisions the tenant over `/scim/v2` the way a directory does: `POST /Users`
//! for every user (a userName, a display name, a work email, a work address), then per group
//! `POST /Groups` and one `PATCH` adding its 1,000 members (`Add` of `{ "value": id }`), the
//! group licensed with E3 first (over GraphQL, which a directory does not do), so that every
//! PATCH also queues the processing of its members, which runs beside the client. Then
//! `GET /Users?filter=userName eq "…"` for random users (Entra ID's lookup before a create).
//!
//! Printed: the writes (users, groups, PATCHes) per second and the total time; the PATCH's
//! p50/p99/max; the lookup's p50/p99/max. All traffic goes to 127.0.0.1.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/server.rs"]
mod support;

use support::{Args, Server};

const PRODUCT: &str = "ENTERPRISEPACK";

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn summary(label: &str, mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    format!(
        "{label:<17}{} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile_ms(&samples, 50.0),
        percentile_ms(&samples, 99.0),
        percentile_ms(&samples, 100.0)
    )
}

/// One SCIM request that must answer `status`; returns its body (`Null` when empty).
fn scim(agent: &ureq::Agent, method: &str, url: &str, body: Option<&Value>, status: u16) -> Value {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/scim+json");
    let response = match body {
        Some(b) => agent.run(request.body(b.to_string()).expect("request")),
        None => agent.run(request.body(()).expect("request")),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let text = response.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(
        response.status().as_u16(),
        status,
        "{method} {url}: {text:.300}"
    );
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("a JSON answer")
    }
}

fn main() {
    let Some(args) = Args::from_env() else {
        return;
    };
    let users: usize = args.number("--users", 100_000);
    let groups: usize = args.number("--groups", 100);
    let members: usize = args.number("--members", 1_000);
    let lookups: usize = args.number("--lookups", 10_000);
    assert!(groups * members <= users, "more members than users");

    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("scim.db"));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let base = format!("{}/scim/v2", server.base);
    server.gql(
        "mutation($s: String!, $n: Int!) { setPrepaidUnits(skuPartNumber: $s, units: $n) { prepaidUnits } }",
        json!({ "s": PRODUCT, "n": users as i64 }),
    );

    eprintln!("scim: provisioning {users} users, then {groups} groups of {members} members…");
    let started = Instant::now();
    let mut ids = Vec::with_capacity(users);
    for i in 0..users {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("user{i:06}@contoso.com"),
            "displayName": format!("User {i:06}"),
            "externalId": format!("ext-{i}"),
            "active": true,
            "emails": [{ "value": format!("user{i:06}@contoso.com"), "type": "work", "primary": true }],
            "addresses": [{ "type": "work", "country": "US" }],
        });
        let created = scim(&agent, "POST", &format!("{base}/Users"), Some(&body), 201);
        ids.push(created["id"].as_str().expect("an id").to_string());
    }
    let users_done = started.elapsed();
    let mut patches = Vec::with_capacity(groups);
    let mut group_ids = Vec::with_capacity(groups);
    for g in 0..groups {
        let created = scim(
            &agent,
            "POST",
            &format!("{base}/Groups"),
            Some(&json!({ "displayName": format!("Group {g:03}") })),
            201,
        );
        let id = created["id"].as_str().expect("an id").to_string();
        server.gql(
            "mutation($g: ID!, $s: String!) { assignGroupLicense(groupId: $g, addLicenses: [{ skuPartNumber: $s }], removeLicenses: []) { id } }",
            json!({ "g": id, "s": PRODUCT }),
        );
        let value: Vec<Value> = ids[g * members..(g + 1) * members]
            .iter()
            .map(|u| json!({ "value": u }))
            .collect();
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "Add", "path": "members", "value": value }],
        });
        let sent = Instant::now();
        scim(
            &agent,
            "PATCH",
            &format!("{base}/Groups/{id}"),
            Some(&patch),
            204,
        );
        patches.push(sent.elapsed());
        group_ids.push(id);
    }
    let total = started.elapsed();
    let writes = users + 2 * groups;

    // Lookups by userName, spread over the directory (a fixed stride: no random generator).
    let mut found = Vec::with_capacity(lookups);
    for k in 0..lookups {
        let i = (k * 7_919) % users;
        let url = format!("{base}/Users?filter=userName%20eq%20%22user{i:06}@contoso.com%22");
        let sent = Instant::now();
        let list = scim(&agent, "GET", &url, None, 200);
        found.push(sent.elapsed());
        assert_eq!(list["totalResults"], 1, "{url}");
    }

    println!(
        "B6 SCIM provisioning: one client, {users} users (POST /Users), {groups} groups (POST /Groups) \
         of {members} members (one PATCH each, the group licensed with {PRODUCT})"
    );
    println!(
        "writes           {writes} in {:.1} s: {:.0} writes/s (users alone {:.0}/s in {:.1} s)",
        total.as_secs_f64(),
        writes as f64 / total.as_secs_f64(),
        users as f64 / users_done.as_secs_f64(),
        users_done.as_secs_f64()
    );
    println!("{}", summary(&format!("PATCH +{members}"), patches));
    println!("{}", summary("userName lookup", found));
    // The members' licensing, queued by the PATCHes, finishes afterwards.
    let wait = Instant::now();
    for id in &group_ids {
        loop {
            let g = server.gql(
                "query($g: ID!) { group(id: $g) { licenseProcessingState } }",
                json!({ "g": id }),
            );
            if g["group"]["licenseProcessingState"] == "COMPLETE" {
                break;
            }
            assert!(
                wait.elapsed() < Duration::from_secs(600),
                "processing did not finish"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let consumed = server.gql(
        "query($s: String!) { product(skuPartNumber: $s) { consumedUnits } }",
        json!({ "s": PRODUCT }),
    );
    println!(
        "licensing        {} {PRODUCT} seats consumed, processing done {:.1} s after the last PATCH",
        consumed["product"]["consumedUnits"],
        wait.elapsed().as_secs_f64()
    );
}
