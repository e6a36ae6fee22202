//! What must hold for any input to the rules compiler and to the catalog importer, written once
//! for the fuzz targets (`fuzz/fuzz_targets/*.rs`) and for the regression tests that replay what
//! they found (`tests/fuzz_regressions.rs`). A violation panics, which libFuzzer records as a crash
//! and a test reports as a failure.
//!
//! Inputs are raw bytes. Byte 0xFF never occurs in UTF-8, so it separates the parts of one input
//! without taking away any text a part could hold: the files of a rules compilation, or the CSV
//! and the exclusive-sets JSON of an import.

use std::collections::{HashMap, HashSet};

use group_licensing::rules::catalog::{ImportError, import_catalog};
use group_licensing::rules::{self, CompileFailure, Compiled, Diagnostic, Severity};

/// Separates the parts of one fuzz input.
pub const SEPARATOR: u8 = 0xFF;

/// More files add nothing the first few do not already exercise.
const MAX_FILES: usize = 6;

/// The files of one rules input: `f0.rules`, `f1.rules`, … in input order.
pub fn rules_files(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    data.splitn(MAX_FILES, |b| *b == SEPARATOR)
        .enumerate()
        .map(|(i, bytes)| (format!("f{i}.rules"), bytes.to_vec()))
        .collect()
}

/// The CSV and, after the first separator, the exclusive-sets JSON of one import input.
pub fn catalog_parts(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|b| *b == SEPARATOR) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    }
}

/// Compiles `files` the way the server loads a rules folder and checks that the outcome is
/// well-formed, deterministic and the same through both public entry points.
pub fn check_rules(files: &[(String, Vec<u8>)]) {
    let outcome = rules::compile_files(files.iter().cloned());
    check_outcome(files, &outcome);

    let again = rules::compile_files(files.iter().cloned());
    assert_same(&outcome, &again, "compiling the same files twice");

    // Text already in memory goes through `compile_texts`; for UTF-8 files it must agree.
    let texts: Option<Vec<(&str, &str)>> = files
        .iter()
        .map(|(name, bytes)| Some((name.as_str(), std::str::from_utf8(bytes).ok()?)))
        .collect();
    if let Some(texts) = texts {
        let in_memory = rules::compile_texts(texts);
        assert_same(&outcome, &in_memory, "compile_files and compile_texts");
    }
}

fn check_outcome(files: &[(String, Vec<u8>)], outcome: &Result<Compiled, CompileFailure>) {
    let (errors, warnings): (&[Diagnostic], &[Diagnostic]) = match outcome {
        Ok(compiled) => {
            check_table(&compiled.table);
            (&[], &compiled.warnings)
        }
        Err(failure) => {
            assert!(!failure.errors.is_empty(), "a failure without errors");
            (&failure.errors, &failure.warnings)
        }
    };
    let order: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    for (list, severity) in [(errors, Severity::Error), (warnings, Severity::Warning)] {
        for d in list {
            assert_eq!(
                d.severity, severity,
                "listed with the wrong severity: {d:?}"
            );
            let Some(&file) = order.get(d.file.as_str()) else {
                panic!("diagnostic names a file that was not given: {d:?}");
            };
            // A file that is not UTF-8 is shown with its bad bytes replaced.
            check_inside(&String::from_utf8_lossy(&files[file].1), d);
            check_underline(d);
            // Display must not panic, whatever the diagnostic holds.
            let shown = d.to_string();
            assert!(
                shown.contains(&d.message),
                "display loses the message: {shown}"
            );
        }
        // Sorted the way an admin reads them: files in load order (encoding errors, found before
        // parsing, are appended after the others), then line and column.
        let compiler_found: Vec<(usize, usize, usize)> = list
            .iter()
            .filter(|d| d.message != "this file is not valid UTF-8: save it as UTF-8")
            .map(|d| (order[d.file.as_str()], d.line, d.column))
            .collect();
        assert!(
            compiler_found.is_sorted(),
            "diagnostics out of order: {compiler_found:?}"
        );
    }
}

/// A diagnostic lies inside its file: on one of its lines, starting at most one column past the
/// line's end, underlining nothing beyond it, and quoting the line as it is.
fn check_inside(text: &str, d: &Diagnostic) {
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        (1..=lines.len()).contains(&d.line),
        "line {} outside a file of {} lines: {d:?}",
        d.line,
        lines.len()
    );
    let line = lines[d.line - 1].trim_end_matches('\r');
    let chars = line.chars().count();
    assert!(
        (1..=chars + 1).contains(&d.column),
        "column {} outside a line of {chars} characters: {d:?}",
        d.column
    );
    assert_eq!(
        d.source_line, line,
        "the quoted line is not the line: {d:?}"
    );
    assert!(d.width >= 1, "nothing underlined: {d:?}");
    assert!(
        d.column - 1 + d.width <= chars.max(d.column),
        "underline runs past the end of the line: {d:?}"
    );
}

/// A parse error that quotes what it found underlines that, whole: "found the word `X`" puts
/// the caret line under X (the message shows at most 40 characters of it).
fn check_underline(d: &Diagnostic) {
    let Some(found) = [
        "found the word `",
        "found the quoted name `",
        "found the character `",
    ]
    .iter()
    .find_map(|kind| d.message.split_once(kind).map(|(_, rest)| rest)) else {
        return;
    };
    let Some(shown) = found.strip_suffix('`') else {
        panic!("an unclosed quotation: {d:?}");
    };
    // The caret line ends where the shown line does, before a line break's `\r`.
    let shown = shown.trim_end_matches('\r');
    let underlined: String = d
        .source_line
        .chars()
        .skip(d.column - 1)
        .take(d.width)
        .collect();
    if shown.chars().count() < 40 {
        assert_eq!(
            underlined, shown,
            "the underline is not what was found: {d:?}"
        );
    } else {
        assert!(
            underlined.starts_with(shown),
            "the underline is not what was found: {d:?}"
        );
    }
}

/// The table's indexes agree with its contents.
fn check_table(table: &rules::RuleTable) {
    for id in table.plan_ids() {
        let plan = table.plan(id);
        assert_eq!(table.plan_by_name(&plan.name), Some(id), "plan {plan:?}");
    }
    for id in table.product_ids() {
        let product = table.product(id);
        assert_eq!(
            table.product_by_name(&product.name),
            Some(id),
            "{product:?}"
        );
        let listed: rules::PlanSet = product.plan_list.iter().copied().collect();
        assert_eq!(listed, product.plans, "{product:?}");
        assert_eq!(listed.len(), product.plan_list.len(), "{product:?}");
    }
    for set in table.exclusive_sets() {
        assert!(set.plans.len() >= 2, "{set:?}");
    }
}

fn assert_same(
    a: &Result<Compiled, CompileFailure>,
    b: &Result<Compiled, CompileFailure>,
    what: &str,
) {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.table, b.table, "{what}: tables differ");
            assert_eq!(a.warnings, b.warnings, "{what}: warnings differ");
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "{what}: diagnostics differ"),
        (a, b) => panic!(
            "{what}: one compiled, one failed: {:?} / {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
}

/// Imports the catalog and checks that the import is deterministic and that what it writes is a
/// rules file that compiles and holds every product/plan pair of the CSV.
pub fn check_catalog(csv: &[u8], json: Option<&[u8]>) {
    let outcome = import_catalog(csv, json);
    // Each import builds fresh hash maps with fresh random seeds, so hash order cannot hide here.
    let again = import_catalog(csv, json);
    let report = match (outcome, again) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "importing the same input twice");
            a
        }
        (Err(a), Err(b)) => {
            assert_eq!(
                a.to_string(),
                b.to_string(),
                "importing the same input twice"
            );
            check_row_number(csv, &a);
            return;
        }
        (a, b) => panic!("one import succeeded, one failed: {a:?} / {b:?}"),
    };

    let files = [(
        "catalog.rules".to_string(),
        report.text.clone().into_bytes(),
    )];
    let outcome = rules::compile_files(files.iter().cloned());
    check_outcome(&files, &outcome);
    let compiled = match outcome {
        Ok(compiled) => compiled,
        Err(failure) => panic!(
            "the importer wrote rules that do not compile:\n{}\n--- rules ---\n{}",
            failure
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            report.text
        ),
    };
    for w in &compiled.warnings {
        // Plans named only by the exclusive sets belong to no product; nothing else may warn.
        assert!(
            json.is_some() && w.message.ends_with("is not in any product"),
            "the imported rules warn: {w}"
        );
    }

    let table = &compiled.table;
    let header = report
        .text
        .lines()
        .find(|l| {
            l.strip_prefix("# ")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .unwrap_or("");
    let counts = format!("# {} product", table.product_count());
    assert!(header.starts_with(&counts), "header {header:?}, {counts}");
    assert!(
        header.contains(&format!(", {} plan", table.plan_count())),
        "header {header:?}, {} plans",
        table.plan_count()
    );

    // Every product/plan pair of the CSV, by GUID, is in the table.
    let mut plans_by_guid: HashMap<String, HashSet<String>> = HashMap::new();
    for id in table.product_ids() {
        let product = table.product(id);
        let guid = product.id.clone().expect("an imported product has a GUID");
        let plans = product
            .plan_list
            .iter()
            .map(|p| {
                table
                    .plan(*p)
                    .id
                    .clone()
                    .expect("an imported plan has a GUID")
            })
            .collect();
        assert!(
            plans_by_guid.insert(guid, plans).is_none(),
            "two products with one GUID: {product:?}"
        );
    }
    for (line, product, plan) in csv_pairs(csv) {
        let held = plans_by_guid.get(&product);
        assert!(
            held.is_some_and(|plans| plans.contains(&plan)),
            "row {line}: plan {plan} of product {product} is missing from the imported rules"
        );
    }
}

/// A GUID refused on row N is on line N of the file, as an editor counts lines. Checked where
/// that is simple to see: without quoted fields, one line is one row.
fn check_row_number(csv: &[u8], error: &ImportError) {
    let ImportError::BadGuid { row, value, .. } = error else {
        return;
    };
    if csv.contains(&b'"') {
        return;
    }
    let text = String::from_utf8_lossy(csv);
    let line = text
        .split("\r\n")
        .flat_map(|l| l.split('\n'))
        .flat_map(|l| l.split('\r'))
        .nth(
            usize::try_from(*row)
                .unwrap_or(usize::MAX)
                .saturating_sub(1),
        );
    assert!(
        line.is_some_and(|line| line.split(',').any(|field| field == value)),
        "row {row} does not hold {value:?}: {line:?}"
    );
}

/// The (line, product GUID, plan GUID) of every row of a CSV that imported, read here with the
/// `csv` crate directly rather than through the importer.
fn csv_pairs(csv: &[u8]) -> Vec<(u64, String, String)> {
    let mut reader = csv::Reader::from_reader(csv);
    let headers: Vec<String> = reader
        .headers()
        .expect("an imported CSV has a header row")
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
            .expect("an imported CSV has the column")
    };
    let (product, plan) = (column("GUID"), column("Service_Plan_Id"));
    reader
        .records()
        .map(|record| {
            let record = record.expect("an imported CSV reads");
            let field = |at: usize| record.get(at).unwrap_or("").trim().to_ascii_lowercase();
            let line = record.position().map_or(0, |p| p.line());
            (line, field(product), field(plan))
        })
        .collect()
}
