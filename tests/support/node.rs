//! The Node.js tools of tests/browser (Playwright for Debian's Chromium, graphql-http's audit,
//! graphql-schema-linter), and a server started for them.
//!
//! The tools are pinned in tests/browser/package-lock.json; `.ci/browser-setup` installs them,
//! and [`install_tools`] does it here when they are missing, so `cargo test` is enough on a
//! machine with npm.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The packages the tests run; all must be installed.
const TOOLS: [&str; 3] = ["playwright-core", "graphql-http", "graphql-schema-linter"];

pub fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `npm ci` in tests/browser when any tool is missing.
pub fn install_tools() {
    let dir = tools_dir();
    let installed = TOOLS.iter().all(|name| {
        dir.join("node_modules")
            .join(name)
            .join("package.json")
            .is_file()
    });
    if installed {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "running `npm ci` in {}: {e} (install Node.js >= 20 with npm, or run .ci/browser-setup)",
                dir.display()
            )
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_group-licensing"))
        .arg("serve")
        .arg("--db")
        .arg(db)
        .arg("--rules")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
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
