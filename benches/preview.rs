//! What-if previews and redundant direct licenses at scale, against the real release binary:
//!
//! ```sh
//! cargo bench --bench preview                  # N = 100,000
//! cargo bench --bench preview -- --full        # N = 1,000,000 (B1's group)
//! cargo bench --bench preview -- --sizes 200000 --runs 5
//! ```
//!
//! For each N, on a fresh copy of `generate`'s tenant with seats for 95% of the users (as B1):
//! - the preview of B1's three-product `assignGroupLicense` on "All users", computed anew each run
//!   (a write between runs makes the kept one stale): summary, seats and the first 100 users;
//! - 50 later pages of its users, each following the last one's cursor (served from the kept
//!   preview), and a page filtered to the users in error;
//! - the server's peak RSS after the previews, before anything was processed;
//! - B1 itself in the same run, and whether the preview's counts are what processing gave;
//! - then a tenant where 10% of the users also hold EMS directly, which "All users" covers:
//!   `redundantDirectLicenses(first: 100)` (the first page, and its `totalCount`).

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

#[path = "support/server.rs"]
mod support;

use support::{Args, PRODUCTS, Server, fresh_copy, generate, license_everyone};

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i]
}

fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1000.0)
}

const PREVIEW: &str = "query ($g: ID!, $add: [LicenseInput!]!, $after: String, $outcome: PreviewOutcome) {
  previewAssignGroupLicense(groupId: $g, addLicenses: $add, removeLicenses: []) {
    usersAffected outcomeCounts { outcome count } errorCounts { error count }
    products { product { skuPartNumber } consumedUnitsAfter seatsShort }
    users(first: 100, after: $after, outcome: $outcome) {
      totalCount pageInfo { endCursor }
      edges { node { user { id userPrincipalName } outcome licenseAssignmentStates { product { skuPartNumber } state error } } }
    }
  }
}";

fn timed(server: &Server, query: &str, vars: Value) -> (f64, Value) {
    let started = Instant::now();
    let data = server.gql(query, vars);
    (started.elapsed().as_secs_f64(), data)
}

fn run(pristine: &Path, dir: &Path, users: u64, runs: usize) {
    let db = fresh_copy(pristine, dir);
    let server = Server::start(&db);
    let seats = (users as f64 * 0.95) as i64;
    for sku in PRODUCTS {
        server.gql(
            "mutation ($sku: String!, $units: Int!) { setPrepaidUnits(skuPartNumber: $sku, units: $units) { prepaidUnits } }",
            json!({ "sku": sku, "units": seats }),
        );
    }
    let group =
        server.gql("{ groups(first: 1) { edges { node { id } } } }", json!({}))["groups"]["edges"]
            [0]["node"]["id"]
            .clone();
    let add: Vec<Value> = PRODUCTS
        .iter()
        .map(|sku| json!({ "skuPartNumber": sku }))
        .collect();
    let vars = |after: Value, outcome: Value| json!({ "g": group, "add": add, "after": after, "outcome": outcome });

    let mut firsts = Vec::new();
    let mut preview = Value::Null;
    for r in 0..runs {
        // A write in between: the kept preview is stale, the next one is computed.
        server.gql(
            "mutation ($n: Int!) { setPrepaidUnits(skuPartNumber: \"STANDARDPACK\", units: $n) { prepaidUnits } }",
            json!({ "n": 100_000 + r as i64 }),
        );
        let (t, data) = timed(&server, PREVIEW, vars(Value::Null, Value::Null));
        firsts.push(t);
        preview = data["previewAssignGroupLicense"].clone();
    }
    let peak_after_previews = server.peak_rss_mib();
    let mut pages = Vec::new();
    let mut cursor = preview["users"]["pageInfo"]["endCursor"].clone();
    for _ in 0..50 {
        let (t, data) = timed(&server, PREVIEW, vars(cursor.clone(), Value::Null));
        pages.push(t);
        cursor = data["previewAssignGroupLicense"]["users"]["pageInfo"]["endCursor"].clone();
    }
    let (filtered, errors_page) = timed(&server, PREVIEW, vars(Value::Null, json!("ERROR")));
    let affected = preview["usersAffected"].as_i64().unwrap_or(-1);
    let in_error = errors_page["previewAssignGroupLicense"]["users"]["totalCount"]
        .as_i64()
        .unwrap_or(-1);

    let licensed = license_everyone(&server, users);
    let peak_after_b1 = server.peak_rss_mib();
    println!("N = {users}");
    println!(
        "  preview, first page, computed: median {} (runs: {})   target ≤ 2 s",
        ms(percentile(&mut firsts.clone(), 0.5)),
        firsts.iter().map(|t| ms(*t)).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  later pages (50, from the kept preview): p50 {}, p99 {}, max {}   target ≤ 50 ms each",
        ms(percentile(&mut pages, 0.5)),
        ms(percentile(&mut pages, 0.99)),
        ms(percentile(&mut pages, 1.0))
    );
    println!("  a page filtered to ERROR: {}", ms(filtered));
    println!(
        "  server peak RSS after the previews: {peak_after_previews:.0} MiB   target ≤ 512 MiB"
    );
    println!(
        "  B1 in the same run: {:.2} s (peak RSS {peak_after_b1:.0} MiB)",
        licensed.seconds
    );
    println!(
        "  preview said {affected} users affected, {in_error} in error; processing left {} in error: {}",
        licensed.errors,
        if in_error == licensed.errors {
            "equal"
        } else {
            "DIFFERENT"
        }
    );
    drop(server);

    // 10% of the users also hold EMS directly, where "All users" gives it to them ACTIVE.
    let conn = rusqlite::Connection::open(&db).expect("open the database");
    let stamp = "2026-12-01T00:00:00.000Z";
    let direct =
        format!("[{{\"sku\":\"EMS\",\"applied\":[],\"state\":\"ACTIVE\",\"at\":\"{stamp}\"}}]");
    let added = conn
        .execute(
            "INSERT INTO assignment_sets (user_id, group_id, products)
             SELECT user_id, 0, ?1 FROM assignment_sets
              WHERE group_id = ?2 AND user_id % 10 = 5 AND products NOT LIKE '%ERROR%'",
            rusqlite::params![direct, group.as_str().and_then(|g| g.parse::<i64>().ok())],
        )
        .expect("add direct licenses");
    drop(conn);
    let server = Server::start(&db);
    let first_page = "{ redundantDirectLicenses(first: 100) { edges { node { user { id } product { skuPartNumber } coveredBy { id } } } pageInfo { endCursor } } }";
    let with_total =
        "{ redundantDirectLicenses(first: 100) { totalCount edges { node { user { id } } } } }";
    let mut firsts = Vec::new();
    let mut totals = Vec::new();
    let mut kept = Vec::new();
    let mut total = 0;
    for r in 0..runs.max(3) {
        // A write in between: the count kept from the last run is stale.
        server.gql(
            "mutation ($n: Int!) { setPrepaidUnits(skuPartNumber: \"STANDARDPACK\", units: $n) { prepaidUnits } }",
            json!({ "n": 200_000 + r as i64 }),
        );
        // A different first page each time, so the response cache cannot answer.
        let (t, data) = timed(
            &server,
            &first_page.replace("first: 100", &format!("first: {}", 100 - r)),
            json!({}),
        );
        assert_eq!(
            data["redundantDirectLicenses"]["edges"]
                .as_array()
                .map(Vec::len),
            Some(100 - r)
        );
        firsts.push(t);
        let (t, data) = timed(
            &server,
            &with_total.replace("first: 100", &format!("first: {}", 100 - r)),
            json!({}),
        );
        totals.push(t);
        total = data["redundantDirectLicenses"]["totalCount"]
            .as_i64()
            .unwrap_or(-1);
        // The same count on another page size: kept, since nothing was written.
        let (t, _) = timed(
            &server,
            &with_total.replace("first: 100", &format!("first: {}", 50 - r)),
            json!({}),
        );
        kept.push(t);
    }
    println!(
        "  redundantDirectLicenses(first: 100) with {added} covered direct licenses: median {}   target ≤ 100 ms; with totalCount ({total}): median {} counted, {} kept",
        ms(percentile(&mut firsts, 0.5)),
        ms(percentile(&mut totals, 0.5)),
        ms(percentile(&mut kept, 0.5))
    );
}

fn main() {
    let Some(args) = Args::from_env() else {
        return;
    };
    let sizes = args.sizes(&[100_000]);
    let runs: usize = args.number("--runs", 3);
    let dir = tempfile::TempDir::new().expect("temp dir");
    for users in sizes {
        let pristine = generate(dir.path(), users);
        run(&pristine, dir.path(), users, runs);
    }
}
