//! Every type, field, argument, enum value and input field of the served schema has a
//! description. GraphiQL's docs pane is where admins read what a field means for licensing, so
//! an element without one is a hole in the API's documentation. The judge is a third-party
//! linter, graphql-schema-linter (pinned in tests/browser/package.json), run on
//! `group_licensing::api::sdl()` with its description rules only; a second test shows it with a
//! schema that lacks one description of each kind, so that a rule that stops running (renamed,
//! misspelt) fails here instead of passing everything.
//!
//! The linter's ordering rules are not ours: the schema keeps the order of the contract
//! (../shared/spec/graphql-api.md, held by tests/schema_contract.rs), which is not alphabetical.
//!
//! Needs Node.js; tests/browser's node_modules is installed with `npm ci` on first use.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};

#[path = "support/node_tools.rs"]
mod node_tools;

/// The linter's rules that a missing description breaks, one per kind of schema element.
const RULES: [&str; 5] = [
    "types-have-descriptions",
    "fields-have-descriptions",
    "arguments-have-descriptions",
    "enum-values-have-descriptions",
    "input-object-values-have-descriptions",
];

struct Report {
    status: ExitStatus,
    /// `(rule, message)` per problem found.
    problems: Vec<(String, String)>,
    stdout: String,
    stderr: String,
}

impl Report {
    fn listing(&self) -> String {
        self.problems
            .iter()
            .map(|(rule, message)| format!("  {message} ({rule})"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs the linter's description rules on `sdl`.
fn lint(sdl: &str) -> Report {
    node_tools::install();
    let cli = node_tools::dir().join("node_modules/graphql-schema-linter/lib/cli.js");
    // The linter also reads a configuration file (more rules, an ignore list) found from its
    // folder upward: starting in a fresh temporary folder leaves the command line alone to say
    // what runs.
    let config = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new("node")
        .arg(&cli)
        .args(["--stdin", "--format", "json", "--rules", &RULES.join(",")])
        .arg("--config-directory")
        .arg(config.path())
        .current_dir(config.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running node (install Node.js >= 20)");
    // The linter reads all of its input before it writes anything, so writing first is safe.
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(sdl.as_bytes())
        .expect("the schema goes to the linter");
    let output = child.wait_with_output().expect("the linter runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let parsed: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "the linter's output is not its JSON report ({e}; {}):\n{stdout}\n{stderr}",
            output.status
        )
    });
    let problems = parsed["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no `errors` list in the linter's report:\n{stdout}"))
        .iter()
        .map(|e| {
            (
                e["rule"].as_str().unwrap_or("?").to_string(),
                e["message"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    Report {
        status: output.status,
        problems,
        stdout,
        stderr,
    }
}

#[test]
fn every_element_of_the_served_schema_has_a_description() {
    let report = lint(&group_licensing::api::sdl());
    assert!(
        report.problems.is_empty(),
        "schema elements without a description, which GraphiQL's docs pane shows bare: {}. \
         Give each a `///` doc comment in src/api (an argument takes `#[graphql(desc = \"…\")]`), \
         then regenerate schema.graphql with `cargo run -- schema > schema.graphql`:\n{}",
        report.problems.len(),
        report.listing()
    );
    // An unknown rule name is only a warning on stderr, and that rule then does not run.
    assert!(
        report.stderr.trim().is_empty(),
        "the linter warned about its command line:\n{}",
        report.stderr
    );
    assert!(
        report.status.success(),
        "the linter failed ({}):\n{}\n{}",
        report.status,
        report.stdout,
        report.stderr
    );
}

/// One element of each kind lacks its description; everything else has one.
const ONE_OF_EACH_UNDESCRIBED: &str = r#"
type Query {
  "Described, but not its argument."
  kind(argument: Int): Kind
  bare: Int
  "Described, with its argument."
  filtered("Described." filter: Filter): Int
}

"Described, but not its value TWO."
enum Kind {
  "Described."
  ONE
  TWO
}

"Described, but not its field two."
input Filter {
  "Described."
  one: Int
  two: Int
}
"#;

#[test]
fn each_rule_reports_the_kind_of_element_it_holds() {
    let report = lint(ONE_OF_EACH_UNDESCRIBED);
    let mut found: Vec<&str> = report.problems.iter().map(|(r, _)| r.as_str()).collect();
    found.sort_unstable();
    let mut wanted = RULES.to_vec();
    wanted.sort_unstable();
    assert_eq!(
        found,
        wanted,
        "each rule should report its one undescribed element (Query, Query.bare, \
         Query.kind(argument), Kind.TWO, Filter.two), once:\n{}\n{}",
        report.listing(),
        report.stderr
    );
    assert_eq!(report.status.code(), Some(1), "{}", report.stderr);
}

/// The linter's ordering rules (`type-fields-sorted-alphabetically`,
/// `enum-values-sorted-alphabetically`, `input-object-fields-sorted-alphabetically`, …) would
/// ask for alphabetical order, against the contract's.
#[test]
fn the_linters_ordering_rules_stay_off() {
    for rule in RULES {
        assert!(
            !rule.contains("sorted"),
            "`{rule}`: the schema's order is graphql-api.md's (the contract), not alphabetical"
        );
    }
}
