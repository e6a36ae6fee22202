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

/// A parse error's underline was as many bytes long as the token had characters, so a token with
/// non-ASCII letters was underlined only in part (`rules/underline-of-a-non-ascii-token` is the
/// fuzzer's input; this is the case spelled out).
#[test]
fn a_parse_error_underlines_a_non_ascii_token_whole() {
    let failure = group_licensing::rules::compile_texts([("u.rules", "plan A \"ééé\"\n")])
        .expect_err("`=` is missing");
    let error = &failure.errors[0];
    assert!(
        error.message.ends_with("found the quoted name `\"ééé\"`"),
        "{error:?}"
    );
    assert_eq!(
        (error.line, error.column, error.width),
        (1, 8, 5),
        "{error:?}"
    );
}

// Inputs past what the fuzzers generate (a few kilobytes): found while writing the targets, by
// reading the code they exercise.

/// Recovery after a parse error looked for the next statement from the top of the file for every
/// statement, so one typo made a long file quadratic to check (half as many statements took 29 s
/// in a debug build; now about a second). Time is not asserted here (the project measures it in
/// benchmarks, not tests): a return of the quadratic search shows as this test slowing down.
#[test]
fn one_parse_error_in_a_long_file_is_reported_once() {
    use std::fmt::Write as _;
    let mut text = String::from("plan BROKEN == \"the error\"\n");
    for i in 0..1_000 {
        writeln!(text, "plan P{i} = \"Plan {i}\"").expect("writing to a String");
    }
    for i in 0..39_000 {
        writeln!(text, "conflict P{} with P{}", i % 1_000, (i + 1) % 1_000)
            .expect("writing to a String");
    }
    let failure = group_licensing::rules::compile_texts([("long.rules", text.as_str())])
        .expect_err("the first line is not valid");
    assert_eq!(failure.errors.len(), 1, "{:?}", failure.errors);
    assert_eq!((failure.errors[0].line, failure.errors[0].column), (1, 14));
}

/// A CSV of `plans` distinct service plans, eight to a product.
fn catalog_of(plans: usize) -> String {
    let mut csv = String::from(
        "Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\n",
    );
    for i in 0..plans {
        let product = i / 8;
        csv.push_str(&format!(
            "Product {product},SKU_{product},{product:08x}-0000-4000-8000-000000000000,PLAN_{i},{i:08x}-1111-4000-8000-000000000000,Plan {i}\n"
        ));
    }
    csv
}

/// The importer wrote every plan of a catalog past the rule table's limit, and the server then
/// refused to load the file: it must refuse the import itself. Fuzz inputs of a few kilobytes hold
/// a few dozen rows, far from the limit.
#[test]
fn a_catalog_past_the_plan_limit_is_refused_by_the_import() {
    use group_licensing::rules::MAX_PLANS;
    use group_licensing::rules::catalog::{ImportError, import_catalog};

    let at_limit = catalog_of(MAX_PLANS);
    invariants::check_catalog(at_limit.as_bytes(), None);
    let report = import_catalog(at_limit.as_bytes(), None).expect("the limit itself is fine");
    let compiled = group_licensing::rules::compile_texts([("c.rules", report.text.as_str())])
        .expect("the import compiles");
    assert_eq!(compiled.table.plan_count(), MAX_PLANS);

    let past = catalog_of(MAX_PLANS + 1);
    invariants::check_catalog(past.as_bytes(), None);
    let error = import_catalog(past.as_bytes(), None).expect_err("one plan too many");
    assert!(
        matches!(error, ImportError::TooManyPlans { count, from_sets: 0 } if count == MAX_PLANS + 1),
        "{error:?}"
    );

    // A plan that only the exclusive sets name counts too.
    let json = r#"{"Set": [
        {"servicePlanName": "PLAN_0", "servicePlanId": "00000000-1111-4000-8000-000000000000"},
        {"servicePlanName": "ONLY_IN_THE_SET", "servicePlanId": "ffffffff-1111-4000-8000-000000000000"}
    ]}"#;
    invariants::check_catalog(at_limit.as_bytes(), Some(json.as_bytes()));
    let error = import_catalog(at_limit.as_bytes(), Some(json.as_bytes()))
        .expect_err("the set's plan is one too many");
    assert!(
        matches!(error, ImportError::TooManyPlans { count, from_sets: 1 } if count == MAX_PLANS + 1),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the catalog has {} service plans (1 of them named only by the exclusive sets), more than the {MAX_PLANS} a rule table holds",
            MAX_PLANS + 1
        )
    );
}

/// Row numbers were one short after each `\r\n` (the `csv` crate's `Position::line` counts only
/// `\n`), and Microsoft's CSV ends every line so (`catalog_csv/row-number-*` are the fuzzer's
/// inputs, for errors; this is the case of the notes).
#[test]
fn rows_are_numbered_as_an_editor_numbers_the_lines_of_a_crlf_file() {
    let csv = "Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\r\n\
        P,P,11111111-0000-4000-8000-000000000000,A,aaaaaaaa-0000-4000-8000-000000000000,A\r\n\
        \r\n\
        P,P,11111111-0000-4000-8000-000000000000,B,bbbbbbbb-0000-4000-8000-000000000000,B  B\r\n";
    let report = group_licensing::rules::catalog::import_catalog(csv.as_bytes(), None)
        .expect("the CSV imports");
    assert_eq!(
        report.notes,
        [
            "Service_Plans_Included_Friendly_Names \"B  B\" normalised to \"B B\" (1 row, first at row 4)"
        ]
    );
}
