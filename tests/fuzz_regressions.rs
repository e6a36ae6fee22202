//! Replays the inputs kept from fuzzing (`fuzz/README.md`): each file of
//! `tests/fixtures/fuzz/<target>/` is one raw input of that fuzz target, checked against the same
//! invariants the target checks (`tests/support/fuzz_invariants.rs`).

use std::path::{Path, PathBuf};

#[path = "support/fuzz_invariants.rs"]
mod invariants;

/// The inputs of one target, in name order; at least one, so that a lost folder fails the test.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no inputs in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a fixture reads");
            (path, bytes)
        })
        .collect()
}

/// Runs `check` on every input, naming the file of each one that fails.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let mut failed = Vec::new();
    for (path, bytes) in inputs(target) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        if outcome.is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "invariants broken by: {failed:#?}");
}

#[test]
fn rules_inputs_compile_or_fail_with_diagnostics_inside_their_files() {
    replay("rules", |data| {
        invariants::check_rules(&invariants::rules_files(data))
    });
}

#[test]
fn catalog_inputs_import_to_rules_that_compile_or_fail_cleanly() {
    replay("catalog_csv", |data| {
        let (csv, json) = invariants::catalog_parts(data);
        invariants::check_catalog(csv, json);
    });
}
