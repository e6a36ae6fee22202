//! What the load and scale benchmarks share: the release binary started on a tenant, spoken to
//! over GraphQL, and measured from /proc.
// Each benchmark uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

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
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut child = Command::new(BIN)
            .args(["serve", "--db"])
            .arg(db)
            .arg("--rules")
            .arg(rules)
            .args(["--listen", "127.0.0.1:0"])
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
    let db = dir.join(format!("tenant-{users}.db"));
    let started = Instant::now();
    let status = Command::new(BIN)
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
