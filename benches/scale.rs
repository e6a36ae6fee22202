//! B1 (processing at scale), run against the real release binary:
//!
//! ```sh
//! cargo bench --bench scale                 # N = 10,000 and 100,000, 3 runs each
//! cargo bench --bench scale -- --full       # also N = 1,000,000
//! cargo bench --bench scale -- --sizes 50000 --runs 5
//! ```
//!
//! For each N: `group-licensing generate` writes a tenant of N users; each run starts `serve` on a
//! fresh copy of it, buys seats for 95% of the users for Office 365 E3, EMS E3 and Workplace
//! Analytics (an add-on whose prerequisite, Exchange, comes with E3 in the same group), assigns
//! the three to the group of all users, and times the mutation to `COMPLETE`; the server's peak
//! RSS (VmHWM) is read from /proc. Medians over the runs are printed, with the targets beside.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/server.rs"]
mod support;

use support::{Server, generate};

const PRODUCTS: [&str; 3] = ["ENTERPRISEPACK", "EMS", "WORKPLACE_ANALYTICS"];

struct Run {
    seconds: f64,
    peak_mib: f64,
    errors: i64,
}

fn run_once(pristine: &Path, dir: &Path, users: u64) -> Run {
    let db = dir.join("run.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(pristine, &db).expect("copy the tenant");
    let server = Server::start(&db);
    let seats = (users as f64 * 0.95) as i64;
    for sku in PRODUCTS {
        server.gql(
            "mutation ($sku: String!, $units: Int!) { setPrepaidUnits(skuPartNumber: $sku, units: $units) { prepaidUnits } }",
            json!({ "sku": sku, "units": seats }),
        );
    }
    let group = server.gql(
        "{ groups(first: 1) { edges { node { id displayName memberCount } } } }",
        json!({}),
    )["groups"]["edges"][0]["node"]
        .clone();
    assert_eq!(group["displayName"], "All users", "{group}");
    assert_eq!(group["memberCount"], users);
    let id = group["id"].clone();
    let started = Instant::now();
    let licenses: Vec<Value> = PRODUCTS
        .iter()
        .map(|sku| json!({ "skuPartNumber": sku }))
        .collect();
    server.gql(
        "mutation ($g: ID!, $add: [LicenseInput!]!) { assignGroupLicense(groupId: $g, addLicenses: $add, removeLicenses: []) { licenseProcessingState } }",
        json!({ "g": id, "add": licenses }),
    );
    let deadline = started + Duration::from_secs(600);
    loop {
        let state = server.gql(
            "query ($g: ID!) { group(id: $g) { licenseProcessingState licenseErrorCount } }",
            json!({ "g": id }),
        );
        if state["group"]["licenseProcessingState"] == "COMPLETE" {
            let seconds = started.elapsed().as_secs_f64();
            return Run {
                seconds,
                peak_mib: server.peak_rss_mib(),
                errors: state["group"]["licenseErrorCount"].as_i64().unwrap_or(-1),
            };
        }
        assert!(Instant::now() < deadline, "processing took over 10 minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` runs bench targets with --bench absent: do nothing then.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mut sizes: Vec<u64> = match value("--sizes") {
        Some(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("--sizes takes numbers"))
            .collect(),
        None => vec![10_000, 100_000],
    };
    if args.iter().any(|a| a == "--full") {
        sizes.push(1_000_000);
    }
    let runs: usize = value("--runs").map_or(3, |r| r.parse().expect("--runs takes a number"));
    let dir = tempfile::tempdir().expect("temp dir");
    println!("B1 processing: N members, three products, seats for 95% (median of {runs} runs)");
    println!(
        "{:>10} {:>10} {:>14} {:>14} {:>12}",
        "N", "seconds", "µs per member", "peak RSS MiB", "in error"
    );
    for users in sizes {
        let pristine = generate(dir.path(), users);
        let results: Vec<Run> = (0..runs)
            .map(|_| run_once(&pristine, dir.path(), users))
            .collect();
        let seconds = median(results.iter().map(|r| r.seconds).collect());
        let peak = median(results.iter().map(|r| r.peak_mib).collect());
        println!(
            "{users:>10} {seconds:>10.2} {:>14.2} {peak:>14.0} {:>12}",
            seconds * 1e6 / users as f64,
            results[0].errors
        );
    }
    println!("targets for N = 1,000,000: at most 5 s and 1 GiB; time linear in N");
}
