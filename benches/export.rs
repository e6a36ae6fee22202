//! E (CSV exports, licensing.md H6: "a million rows in seconds, in constant memory"), run
//! against the real release binary:
//!
//! ```sh
//! cargo bench --bench export                   # N = 100,000
//! cargo bench --bench export -- --full         # also N = 1,000,000
//! cargo bench --bench export -- --sizes 1000000
//! ```
//!
//! For each N: `group-licensing generate` writes a tenant of N users and `serve` starts on it;
//! the tenant is licensed as B1 does (three products on the group of all users, seats for 95%),
//! then `GET /export/licensed-users.csv?skuPartNumber=ENTERPRISEPACK` (the 95% who hold it) and
//! `GET /export/license-errors.csv?groupId=…` (the 5% in error, a row per product) are read to
//! the end, one after the other, as a client reading as fast as it can, and the first once more
//! (were memory to grow with the rows, it would grow again); last, the group's history
//! (`GET /export/audit-events.csv?groupId=…`: processing's event for each member it licensed or
//! failed, and the run's start and finish). Printed per export: the
//! time to the first byte and to the last, rows and rows per second, the size, and the server's
//! peak RSS (VmHWM from /proc) before and after.

use std::io::Read;
use std::time::Instant;

#[path = "support/server.rs"]
mod support;

use support::{Args, Server, generate, license_everyone};

struct Timed {
    first_byte: f64,
    seconds: f64,
    rows: u64,
    bytes: u64,
}

/// Reads an export to its end, counting its rows (its CRLFs, less the header's: the generated
/// names hold no line break).
fn read_export(server: &Server, path: &str) -> Timed {
    let started = Instant::now();
    let response = server
        .agent
        .get(format!("{}{path}", server.base))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(response.status(), 200, "GET {path}");
    let mut body = response.into_body().into_reader();
    let mut buffer = vec![0u8; 256 * 1024];
    let (mut first_byte, mut bytes, mut line_ends, mut last) = (None, 0u64, 0u64, 0u8);
    loop {
        let n = body
            .read(&mut buffer)
            .unwrap_or_else(|e| panic!("GET {path}: the body broke off: {e}"));
        if n == 0 {
            break;
        }
        first_byte.get_or_insert_with(|| started.elapsed().as_secs_f64());
        for &b in &buffer[..n] {
            if b == b'\n' && last == b'\r' {
                line_ends += 1;
            }
            last = b;
        }
        bytes += n as u64;
    }
    Timed {
        first_byte: first_byte.unwrap_or(f64::NAN),
        seconds: started.elapsed().as_secs_f64(),
        rows: line_ends.saturating_sub(1),
        bytes,
    }
}

fn main() {
    let Some(args) = Args::from_env() else {
        return;
    };
    let sizes = args.sizes(&[100_000]);
    let dir = tempfile::tempdir().expect("temp dir");
    println!("E exports: the tenant of B1 licensed, each export read to the end by one client");
    println!(
        "{:>10} {:<15} {:>10} {:>11} {:>9} {:>10} {:>8} {:>13} {:>12}",
        "N", "export", "rows", "first byte", "seconds", "rows/s", "MiB", "RSS before", "RSS after"
    );
    for users in sizes {
        let db = generate(dir.path(), users);
        let server = Server::start(&db);
        let licensed = license_everyone(&server, users);
        eprintln!(
            "licensed in {:.1} s, {} users in error",
            licensed.seconds, licensed.errors
        );
        let group = licensed.group.as_str().expect("a group id").to_string();
        let holders = "/export/licensed-users.csv?skuPartNumber=ENTERPRISEPACK".to_string();
        // The holders twice: memory that grew with the rows would grow again.
        for (name, path) in [
            ("licensed-users", holders.clone()),
            (
                "license-errors",
                format!("/export/license-errors.csv?groupId={group}"),
            ),
            ("licensed-users", holders),
            // Processing recorded a "Change user license" event per member.
            (
                "audit-events",
                format!("/export/audit-events.csv?groupId={group}"),
            ),
        ] {
            let before = server.peak_rss_mib();
            let read = read_export(&server, &path);
            let after = server.peak_rss_mib();
            println!(
                "{users:>10} {name:<15} {:>10} {:>9.0}ms {:>9.2} {:>10.0} {:>8.1} {before:>9.0} MiB {after:>8.0} MiB",
                read.rows,
                read.first_byte * 1000.0,
                read.seconds,
                read.rows as f64 / read.seconds,
                read.bytes as f64 / (1024.0 * 1024.0),
            );
        }
    }
    println!("target (H6): a million rows in seconds, in constant memory");
}
