//! The `check` and `import-catalog` commands, run as a user runs them, and the bundled `rules/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_group-licensing"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn project(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Microsoft's data, kept in ../shared beside the project.
fn shared(path: &str) -> PathBuf {
    let p = project("../shared/data").join(path);
    assert!(
        p.is_file(),
        "{} is missing: these tests need shared/ beside the project",
        p.display()
    );
    p
}

#[test]
fn check_prints_a_one_line_summary_and_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("a.rules"),
        "plan A = \"a\"\nplan B = \"b\"\nplan C = \"c\"\nproduct P = \"p\" { A, B }\nproduct Q = \"q\" { C }\n\
         conflict A with C\nprerequisite B requires { A }\nunavailable A in { CN }\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("b.rules"), "plan LONELY = \"l\"\n").expect("write");
    let (code, stdout, stderr) = run(bin().arg("check").arg(dir.path()));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim_end(),
        format!(
            "{}: 4 plans, 2 products, 1 exclusive set, 1 prerequisite, 1 location rule, 1 warning",
            dir.path().display()
        )
    );
    assert!(
        stderr.contains("warning: plan `LONELY` is not in any product"),
        "{stderr}"
    );
}

#[test]
fn check_prints_every_diagnostic_with_a_caret_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.rules"),
        "plan A = \"a\"\nproduct P = \"p\" { A, NOPE }\nconflict A with A\n",
    )
    .expect("write");
    let (code, stdout, stderr) = run(bin().arg("check").arg(dir.path()));
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    let file = dir.path().join("bad.rules");
    assert!(
        stderr.contains(&format!(
            "error: unknown plan `NOPE` in product `P`\n --> {}:2:22\n  |\n2 | product P = \"p\" {{ A, NOPE }}\n  |                      ^^^^",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: plan `A` cannot conflict with itself"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "error: 2 errors in {}, 0 warnings",
            dir.path().display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_of_a_missing_folder_says_so_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nowhere");
    let (code, _, stderr) = run(bin().arg("check").arg(&missing));
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!("error: cannot read {}", missing.display())),
        "{stderr}"
    );
}

#[test]
fn check_warns_about_a_conflict_another_exclusive_set_implies() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("a.rules"),
        "plan A = \"a\"\nplan B = \"b\"\nplan C = \"c\"\nproduct P = \"p\" { A }\nproduct Q = \"q\" { B }\n\
         product R = \"r\" { C }\nexclusive \"All\" { A, B, C }\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("b.rules"), "# again\nconflict C with A\n").expect("write");
    let (code, stdout, stderr) = run(bin().arg("check").arg(dir.path()));
    assert_eq!(code, 0, "a warning, not an error: {stderr}");
    assert!(stdout.trim_end().ends_with(", 1 warning"), "{stdout}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: `conflict C with A` adds nothing: exclusive set \"All\" at {}:7:11 already makes both plans mutually exclusive\n \
             --> {}:2:1\n  |\n2 | conflict C with A\n  | ^^^^^^^^^^^^^^^^^",
            dir.path().join("a.rules").display(),
            dir.path().join("b.rules").display()
        )
    );
}

/// An admin expects the rules the project ships to check clean: no error and no warning.
#[test]
fn the_bundled_rules_pass_check_with_no_errors_or_warnings() {
    let (code, stdout, stderr) = run(bin().arg("check").arg(project("rules")));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("products"), "{stdout}");
    assert!(stdout.trim_end().ends_with(", 0 warnings"), "{stdout}");
    assert_eq!(stderr, "", "check prints nothing else on the bundled rules");
}

#[test]
fn the_bundled_catalog_is_what_import_catalog_writes_from_the_shared_csv() {
    let csv = shared("product-names-and-service-plan-identifiers.csv");
    let (code, stdout, stderr) = run(bin().arg("import-catalog").arg(&csv));
    assert_eq!(code, 0, "{stderr}");
    let bundled =
        std::fs::read_to_string(project("rules/catalog.rules")).expect("rules/catalog.rules");
    assert!(
        stdout == bundled,
        "rules/catalog.rules differs from a fresh import: regenerate it with\n  \
         cargo run -- import-catalog ../shared/data/product-names-and-service-plan-identifiers.csv -o rules/catalog.rules"
    );
    // What was merged or renamed is told on stderr.
    assert!(stderr.contains("MCOPSTN5"), "{stderr}");
}

#[test]
fn the_catalog_round_trips_through_import_and_check() {
    let csv = shared("product-names-and-service-plan-identifiers.csv");
    let json = shared("mutually-exclusive-service-plans.json");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("catalog.rules");
    let (code, stdout, stderr) = run(bin()
        .arg("import-catalog")
        .arg(&csv)
        .arg("--exclusive")
        .arg(&json)
        .arg("--output")
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "", "with --output nothing goes to stdout");
    let (code, stdout, stderr) = run(bin().arg("check").arg(dir.path()));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("569 products"), "{stdout}");
    assert!(stdout.contains("8 exclusive sets"), "{stdout}");
}

#[test]
fn import_catalog_of_a_file_that_is_not_the_catalog_fails_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b,c\n1,2,3\n").expect("write");
    let out = dir.path().join("out.rules");
    let (code, stdout, stderr) = run(bin().arg("import-catalog").arg(&bad).arg("-o").arg(&out));
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!out.exists(), "nothing is written on failure");
    let (code, _, stderr) = run(bin()
        .arg("import-catalog")
        .arg(dir.path().join("missing.csv")));
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read"), "{stderr}");
}
