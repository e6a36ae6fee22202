//! The server refuses to start on rules with errors (rules-language.md: a mistake must never
//! hurt the running server, so a server never runs on a table that did not compile).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, copy_rules, scenario_rules};

/// Runs `serve` to its end (it must end by itself), killing it after a timeout.
fn serve_until_exit(db: &std::path::Path, rules: &std::path::Path) -> Output {
    let mut child = Command::new(BIN)
        .args(["serve", "--db"])
        .arg(db)
        .arg("--rules")
        .arg(rules)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the server kept running on broken rules; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_server_refuses_to_start_on_rules_with_errors() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = copy_rules(&scenario_rules(), dir.path(), "rules");
    // Two mistakes in one file (both reported in one run), on lines 2 and 3.
    std::fs::write(
        rules.join("zz-broken.rules"),
        "# broken on purpose\nproduct BROKEN = \"Broken\" { NO_SUCH_PLAN }\nunavailable TEAMS1 in { ZZ }\n",
    )
    .expect("write the broken file");
    let output = serve_until_exit(&dir.path().join("t.db"), &rules);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "non-zero exit: {:?}",
        output.status
    );
    assert!(
        !stdout.contains("listening on"),
        "it never listened: {stdout}"
    );
    assert!(
        stderr.contains("zz-broken.rules"),
        "stderr names the file: {stderr}"
    );
    assert!(stderr.contains(":2:"), "stderr names line 2: {stderr}");
    assert!(stderr.contains(":3:"), "stderr names line 3: {stderr}");
    assert!(
        stderr.contains("NO_SUCH_PLAN"),
        "stderr says what is wrong: {stderr}"
    );
    assert!(stderr.contains("ZZ"), "stderr says what is wrong: {stderr}");
    assert!(
        stderr.contains("not starting"),
        "stderr says it does not start: {stderr}"
    );

    // A rules folder that does not exist fails too.
    let output = serve_until_exit(
        &dir.path().join("t2.db"),
        &dir.path().join("no-such-folder"),
    );
    assert!(
        !output.status.success(),
        "non-zero exit: {:?}",
        output.status
    );
    assert!(!String::from_utf8_lossy(&output.stderr).trim().is_empty());
}
