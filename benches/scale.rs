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

#[path = "support/server.rs"]
mod support;

use support::{Args, Server, generate, license_everyone};

struct Run {
    seconds: f64,
    /// CPU the server used during the run (user and system), which other load on the machine
    /// changes less than the elapsed time.
    cpu: f64,
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
    let cpu_before = server.cpu_seconds();
    let licensed = license_everyone(&server, users);
    Run {
        seconds: licensed.seconds,
        cpu: server.cpu_seconds() - cpu_before,
        peak_mib: server.peak_rss_mib(),
        errors: licensed.errors,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let Some(args) = Args::from_env() else {
        return;
    };
    let sizes = args.sizes(&[10_000, 100_000]);
    let runs: usize = args.number("--runs", 3);
    let dir = tempfile::tempdir().expect("temp dir");
    println!("B1 processing: N members, three products, seats for 95% (median of {runs} runs)");
    println!(
        "{:>10} {:>10} {:>14} {:>12} {:>14} {:>12}",
        "N", "seconds", "µs per member", "server CPU s", "peak RSS MiB", "in error"
    );
    for users in sizes {
        let pristine = generate(dir.path(), users);
        let results: Vec<Run> = (0..runs)
            .map(|_| run_once(&pristine, dir.path(), users))
            .collect();
        let seconds = median(results.iter().map(|r| r.seconds).collect());
        let peak = median(results.iter().map(|r| r.peak_mib).collect());
        let cpu = median(results.iter().map(|r| r.cpu).collect());
        println!(
            "{users:>10} {seconds:>10.2} {:>14.2} {cpu:>12.2} {peak:>14.0} {:>12}",
            seconds * 1e6 / users as f64,
            results[0].errors
        );
    }
    println!("targets for N = 1,000,000: at most 5 s and 1 GiB; time linear in N");
}
