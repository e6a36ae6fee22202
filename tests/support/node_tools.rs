//! The Node.js tools some tests run (Playwright for the pages, graphql-http's audit,
//! graphql-schema-linter for the schema's descriptions, …), pinned in tests/browser/package.json
//! and its lock file, and a demo server started for them. `install` runs `npm ci` there when one
//! of the tools is missing; `.ci/browser-setup` does the same ahead of a CI run.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// Debian's Chromium; Playwright never downloads a browser here.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// tests/browser, where package.json and node_modules are.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `npm ci` in tests/browser unless every devDependency of its package.json is installed:
/// checking each (not only the first tool the tests used) means that a tool pinned later is
/// installed in a node_modules left by an older checkout.
pub fn install() {
    // The tests of one binary run in parallel, and two `npm ci` in one folder would undo each
    // other: the second caller waits, then finds everything installed.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = dir();
    let manifest = std::fs::read_to_string(dir.join("package.json"))
        .unwrap_or_else(|e| panic!("read {}/package.json: {e}", dir.display()));
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest).expect("tests/browser/package.json is JSON");
    let wanted = manifest["devDependencies"]
        .as_object()
        .expect("tests/browser/package.json has devDependencies");
    if wanted.keys().all(|name| {
        dir.join("node_modules")
            .join(name)
            .join("package.json")
            .is_file()
    }) {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        // playwright-core downloads no browser by itself; this makes sure no step ever tries.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .status()
        .unwrap_or_else(|e| {
            panic!("running `npm ci` in {}: {e} (install Node.js >= 20 with npm, or run .ci/browser-setup)", dir.display())
        });
    assert!(
        status.success(),
        "`npm ci` in {} failed: {status}",
        dir.display()
    );
}

/// Fails the test with how to get Chromium when it is missing.
pub fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the browser tests need Debian's chromium. \
         Install it with `apt-get install chromium` (or run .ci/browser-setup)."
    );
}

/// A server process, killed when the test ends, whatever happens.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `group-licensing serve --demo` on `db` with the bundled rules, `args` and `env`.
pub fn start_demo_server(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    start_demo_server_with_rules(
        db,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        args,
        env,
    )
}

/// The same with the rules of `rules` (a copy of the bundled ones that a test may edit).
pub fn start_demo_server_with_rules(
    db: &Path,
    rules: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_group-licensing"))
        .arg("serve")
        .arg("--db")
        .arg(db)
        .arg("--rules")
        .arg(rules)
        .args(["--listen", "127.0.0.1:0", "--demo"])
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("GROUP_LICENSING_ADMIN_TOKENS")
        .env_remove("GROUP_LICENSING_READER_TOKENS")
        .env_remove("GROUP_LICENSING_ALLOWED_ORIGINS")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints its address");
    let base = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
        .to_string();
    Server { child, base }
}
