//! The Node.js tools some tests run (Playwright for the GraphiQL page, graphql-schema-linter for
//! the schema's descriptions, …), pinned in tests/browser/package.json and its lock file.
//! `install` runs `npm ci` there when one of them is missing; `.ci/browser-setup` does the same
//! ahead of a CI run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

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
