//! What the load and scale benchmarks share: the release binary started on a tenant, spoken to
//! over GraphQL, and measured from /proc.
// Each benchmark uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_group-licensing");

/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux whatever the kernel's HZ).
const USER_HZ: f64 = 100.0;

/// `group-licensing serve` on a database with the bundled rules; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(db: &Path) -> Server {
        Server::start_binary(Path::new(BIN), db)
    }

    /// [`Server::start`] of another build of the server (an A/B against an earlier commit).
    pub fn start_binary(bin: &Path, db: &Path) -> Server {
        Server::start_binary_with(bin, db, &[])
    }

    /// [`Server::start_binary`] with more arguments.
    pub fn start_binary_with(bin: &Path, db: &Path, extra: &[&str]) -> Server {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut child = Command::new(bin)
            .args(["serve", "--db"])
            .arg(db)
            .arg("--rules")
            .arg(rules)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server prints its address");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            base,
            agent: ureq::Agent::new_with_defaults(),
        }
    }

    pub fn url(&self) -> String {
        format!("{}/graphql", self.base)
    }

    /// The data of a query that must succeed.
    pub fn gql(&self, query: &str, variables: Value) -> Value {
        gql(&self.agent, &self.url(), query, variables).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Peak resident set size so far, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// CPU time (user and system) the server has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.child.id()))
    }
}

/// A fresh copy of `pristine` as `run.db` in `dir`, its log files of an earlier run gone.
pub fn fresh_copy(pristine: &Path, dir: &Path) -> PathBuf {
    let db = dir.join("run.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(pristine, &db).expect("copy the tenant");
    db
}

/// One GraphQL request; the data, or the errors as a message.
pub fn gql(agent: &ureq::Agent, url: &str, query: &str, variables: Value) -> Result<Value, String> {
    let response: Value = agent
        .post(url)
        .send_json(json!({ "query": query, "variables": variables }))
        .map_err(|e| e.to_string())?
        .body_mut()
        .read_json()
        .map_err(|e| e.to_string())?;
    match response.get("errors") {
        Some(errors) => Err(errors.to_string()),
        None => Ok(response["data"].clone()),
    }
}

/// User plus system CPU time of a process so far, from its /proc stat file.
pub fn cpu_seconds(stat: &str) -> f64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / USER_HZ,
        _ => f64::NAN,
    }
}

/// `group-licensing generate` of `users` users into `dir`; the database's path.
pub fn generate(dir: &Path, users: u64) -> PathBuf {
    generate_with(Path::new(BIN), dir, users)
}

/// [`generate`] by another build of the server.
pub fn generate_with(bin: &Path, dir: &Path, users: u64) -> PathBuf {
    let db = dir.join(format!("tenant-{users}.db"));
    let started = Instant::now();
    let status = Command::new(bin)
        .args(["generate", "--db"])
        .arg(&db)
        .args(["--users", &users.to_string(), "--rules"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .stdout(Stdio::null())
        .status()
        .expect("run generate");
    assert!(status.success(), "generate failed");
    eprintln!(
        "generated {users} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    db
}

/// The products of B1 and B2: Office 365 E3, EMS E3, and an add-on (Workplace Analytics) whose
/// prerequisite, Exchange, comes with E3 in the same group.
pub const PRODUCTS: [&str; 3] = ["ENTERPRISEPACK", "EMS", "WORKPLACE_ANALYTICS"];

/// What [`license_everyone`] measured.
pub struct Licensed {
    /// The id of the group of all users.
    pub group: Value,
    /// From the `assignGroupLicense` call to `COMPLETE`.
    pub seconds: f64,
    pub errors: i64,
}

/// Seats for 95% of `users` for [`PRODUCTS`], the three on the group of all users, processed to
/// `COMPLETE` (polled every 10 ms, for at most 10 minutes).
pub fn license_everyone(server: &Server, users: u64) -> Licensed {
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
    let licenses: Vec<Value> = PRODUCTS
        .iter()
        .map(|sku| json!({ "skuPartNumber": sku }))
        .collect();
    let started = Instant::now();
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
            return Licensed {
                group: id,
                seconds: started.elapsed().as_secs_f64(),
                errors: state["group"]["licenseErrorCount"].as_i64().unwrap_or(-1),
            };
        }
        assert!(Instant::now() < deadline, "processing took over 10 minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A benchmark's command-line arguments.
pub struct Args(Vec<String>);

impl Args {
    /// `None` when `--bench` is absent: `cargo test --benches` runs bench targets that way, and
    /// then no load must run.
    pub fn from_env() -> Option<Args> {
        let args: Vec<String> = std::env::args().collect();
        args.iter().any(|a| a == "--bench").then_some(Args(args))
    }

    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .cloned()
    }

    /// The number after `name`, or `default`; anything else stops the benchmark.
    /// The tenant sizes to run: `--sizes 10000,50000`, or `default`; `--full` adds 1,000,000.
    pub fn sizes(&self, default: &[u64]) -> Vec<u64> {
        let mut sizes: Vec<u64> = match self.value("--sizes") {
            Some(list) => list
                .split(',')
                .map(|n| n.trim().parse().expect("--sizes takes numbers"))
                .collect(),
            None => default.to_vec(),
        };
        if self.flag("--full") {
            sizes.push(1_000_000);
        }
        sizes
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.value(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
    }
}

/// Events in the history and the bytes their tables and indexes take (SQLite's `dbstat`).
pub fn history_size(db: &Path) -> Option<(i64, i64)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    let events: i64 = conn
        .query_row(
            "SELECT coalesce(sum(coalesce(last_id, id) - id + 1), 0) FROM audit_events",
            [],
            |r| r.get(0),
        )
        .ok()?;
    let bytes: i64 = conn
        .query_row(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'audit%' OR name LIKE 'sqlite_autoindex_audit%'",
            [],
            |r| r.get(0),
        )
        .ok()?;
    Some((events, bytes))
}
