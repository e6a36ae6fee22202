//! Property tests of the rules compiler: whatever the input, it ends in a table or in
//! diagnostics that point inside the file, never in a panic; and it is deterministic.

use group_licensing::rules::{self, CompileFailure, Compiled, Diagnostic};
use proptest::prelude::*;

/// The scenario rules (../shared/scenarios/seed-scenarios.md) plus every other statement kind.
const VALID: &str = r#"# Scenario rules
plan EXCHANGE_S_STANDARD   = "Exchange Online (Plan 1)"   id 9aaf7827-d63c-4b61-89c3-182f06f82e5c
plan EXCHANGE_S_ENTERPRISE = "Exchange Online (Plan 2)"   id efb87545-963c-4e0d-99df-69c6916d9eb0
plan SHAREPOINTSTANDARD    = "SharePoint Online (Plan 1)"
plan SHAREPOINTENTERPRISE  = "SharePoint Online (Plan 2)"
plan TEAMS1                = "Microsoft Teams"
plan INTUNE_A              = "Microsoft Intune"
plan AAD_PREMIUM           = "Microsoft Entra ID P1"
plan WORKPLACE_ANALYTICS   = "Microsoft Workplace Analytics"
product STANDARDPACK   = "Office 365 E1" { EXCHANGE_S_STANDARD, SHAREPOINTSTANDARD, TEAMS1 }
product ENTERPRISEPACK = "Office 365 E3" id 6fd2c87f-b296-42f0-b197-1e91e994b900 {
    EXCHANGE_S_ENTERPRISE,
    SHAREPOINTENTERPRISE,
    TEAMS1,
}
product EMS            = "Enterprise Mobility + Security E3" { INTUNE_A, AAD_PREMIUM }
product WORKPLACE_ANALYTICS = "Microsoft Workplace Analytics" { WORKPLACE_ANALYTICS }
product "Microsoft_365_E3_(no_Teams)" = "Microsoft 365 E3 (no Teams)" { EXCHANGE_S_ENTERPRISE }
conflict EXCHANGE_S_STANDARD with EXCHANGE_S_ENTERPRISE
exclusive "SharePoint Online" { SHAREPOINTSTANDARD, SHAREPOINTENTERPRISE, }
prerequisite WORKPLACE_ANALYTICS requires { EXCHANGE_S_STANDARD, EXCHANGE_S_ENTERPRISE }
unavailable TEAMS1 in { CN }
available INTUNE_A only in { US, CA, GB, DE, FR, NL }
"#;

fn compile(text: &str) -> Result<Compiled, CompileFailure> {
    rules::compile_texts([("p.rules", text)])
}

/// A diagnostic lies inside the file: on one of its lines, at most one column past its end.
fn inside(text: &str, d: &Diagnostic) -> bool {
    let lines: Vec<&str> = text.split('\n').collect();
    d.line >= 1
        && d.line <= lines.len()
        && d.column >= 1
        && d.column <= lines[d.line - 1].trim_end_matches('\r').chars().count() + 1
        && d.source_line == lines[d.line - 1].trim_end_matches('\r')
}

fn check_outcome(text: &str) -> Result<(), TestCaseError> {
    match compile(text) {
        Ok(compiled) => {
            for w in &compiled.warnings {
                prop_assert!(inside(text, w), "warning outside the file: {w:?}");
            }
        }
        Err(failure) => {
            prop_assert!(!failure.errors.is_empty(), "a failure without errors");
            for d in failure.errors.iter().chain(failure.warnings.iter()) {
                prop_assert!(inside(text, d), "diagnostic outside the file: {d:?}");
            }
        }
    }
    Ok(())
}

/// Text made of the language's own pieces, so that it gets deep into the grammar.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("plan ".to_string()),
        Just("product ".to_string()),
        Just("exclusive ".to_string()),
        Just("conflict ".to_string()),
        Just("with ".to_string()),
        Just("prerequisite ".to_string()),
        Just("requires ".to_string()),
        Just("unavailable ".to_string()),
        Just("available ".to_string()),
        Just("only ".to_string()),
        Just("in ".to_string()),
        Just("id ".to_string()),
        Just("= ".to_string()),
        Just("{ ".to_string()),
        Just("} ".to_string()),
        Just(", ".to_string()),
        Just("\n".to_string()),
        Just("# c\n".to_string()),
        Just("\"Name (x)\" ".to_string()),
        Just("\"open ".to_string()),
        Just("9aaf7827-d63c-4b61-89c3-182f06f82e5c ".to_string()),
        Just("US ".to_string()),
        Just("us ".to_string()),
        "[A-Z]{1,3} ",
        "[a-zA-Z0-9_.-]{1,8} ",
        "\\PC{1,3}",
    ];
    proptest::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    Replace(usize, usize, String),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let piece = prop_oneof![
        "\\PC{0,4}",
        Just("\"".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(",".to_string()),
        Just("\n".to_string()),
        Just("plan".to_string()),
        Just("é".to_string()),
    ];
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), piece.clone()).prop_map(|(a, s)| Mutation::Insert(a, s)),
        (any::<usize>(), 1usize..10, piece).prop_map(|(a, n, s)| Mutation::Replace(a, n, s)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

/// Applies `m` at character positions, so the result is always valid UTF-8.
fn apply(text: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let len = chars.len().max(1);
    match m {
        Mutation::Delete(at, n) => {
            let at = at % len;
            let end = (at + n).min(chars.len());
            chars.drain(at.min(end)..end);
        }
        Mutation::Insert(at, s) => {
            let at = at % (chars.len() + 1);
            chars.splice(at..at, s.chars());
        }
        Mutation::Replace(at, n, s) => {
            let at = at % len;
            let end = (at + n).min(chars.len());
            chars.splice(at.min(end)..end, s.chars());
        }
        Mutation::Swap(a, b) => {
            if !chars.is_empty() {
                let (a, b) = (a % chars.len(), b % chars.len());
                chars.swap(a, b);
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_ends_in_a_table_or_diagnostics_inside_the_file(text in "\\PC{0,300}") {
        check_outcome(&text)?;
    }

    #[test]
    fn soups_of_tokens_end_in_a_table_or_diagnostics_inside_the_file(text in token_soup()) {
        check_outcome(&text)?;
    }

    #[test]
    fn mutated_valid_files_end_in_a_table_or_diagnostics_inside_the_file(
        mutations in proptest::collection::vec(mutation(), 1..6)
    ) {
        let text = mutations.iter().fold(VALID.to_string(), |t, m| apply(&t, m));
        check_outcome(&text)?;
    }

    #[test]
    fn compiling_the_same_files_twice_gives_equal_tables(
        mutations in proptest::collection::vec(mutation(), 0..3)
    ) {
        let text = mutations.iter().fold(VALID.to_string(), |t, m| apply(&t, m));
        match (compile(&text), compile(&text)) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.table, b.table);
                prop_assert_eq!(a.warnings, b.warnings);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            _ => prop_assert!(false, "the same text compiled once and failed once"),
        }
    }
}

#[test]
fn the_valid_file_used_above_compiles_cleanly() {
    let compiled = compile(VALID).expect("VALID compiles");
    assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    assert_eq!(compiled.table.product_count(), 5);
}
