//! The rules language of ../shared/spec/rules-language.md: every statement, and every diagnostic
//! with its exact file:line:column and message.

use group_licensing::rules::table::LocationKind;
use group_licensing::rules::{
    self, CompileFailure, Compiled, Country, Diagnostic, PlanSet, RuleTable, RulesError, Severity,
};

fn compile(text: &str) -> Result<Compiled, CompileFailure> {
    rules::compile_texts([("test.rules", text)])
}

fn table(text: &str) -> RuleTable {
    match compile(text) {
        Ok(c) => c.table,
        Err(f) => panic!("expected the rules to compile, got:\n{}", render(&f.errors)),
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}

fn errors(text: &str) -> Vec<String> {
    match compile(text) {
        Ok(_) => panic!("expected errors, the rules compiled:\n{text}"),
        Err(f) => f
            .errors
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect(),
    }
}

fn warnings(text: &str) -> Vec<String> {
    let warnings = match compile(text) {
        Ok(c) => c.warnings,
        Err(f) => f.warnings,
    };
    warnings
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

fn names(table: &RuleTable, set: &PlanSet) -> Vec<String> {
    set.iter().map(|p| table.plan(p).name.clone()).collect()
}

const PLANS: &str = r#"
plan EXCHANGE_S_STANDARD   = "Exchange Online (Plan 1)"   id 9aaf7827-d63c-4b61-89c3-182f06f82e5c
plan EXCHANGE_S_ENTERPRISE = "Exchange Online (Plan 2)"   id efb87545-963c-4e0d-99df-69c6916d9eb0
plan SHAREPOINTSTANDARD    = "SharePoint Online (Plan 1)"
plan SHAREPOINTENTERPRISE  = "SharePoint Online (Plan 2)"
plan WORKPLACE_ANALYTICS   = "Microsoft Workplace Analytics"
plan TEAMS1                = "Microsoft Teams"
product ALL = "Everything" {
    EXCHANGE_S_STANDARD, SHAREPOINTSTANDARD, TEAMS1, WORKPLACE_ANALYTICS,
}
product E3 = "Office 365 E3" { EXCHANGE_S_ENTERPRISE, SHAREPOINTENTERPRISE }
"#;

// ---- Statements -------------------------------------------------------------------------------

#[test]
fn the_spec_example_compiles() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/spec/rules-language.md"
    );
    let spec = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("the spec is read from {path} (shared/ beside the project): {e}")
    });
    let start = spec
        .find("```\n# Comments")
        .expect("the spec has its example")
        + 4;
    let end = start + spec[start..].find("```").expect("the example is closed");
    let t = table(&spec[start..end]);
    assert_eq!((t.plan_count(), t.product_count()), (6, 4));
    assert_eq!(t.exclusive_sets().len(), 2);
    assert_eq!(t.prerequisites().len(), 1);
    assert_eq!(t.location_rules().len(), 2);
    assert!(t.product_by_name("Microsoft_365_E3_(no_Teams)").is_some());
}

#[test]
fn plan_statement_with_and_without_id() {
    let t = table(PLANS);
    let p = t.plan_by_name("EXCHANGE_S_STANDARD").expect("declared");
    assert_eq!(t.plan(p).display_name, "Exchange Online (Plan 1)");
    assert_eq!(
        t.plan(p).id.as_deref(),
        Some("9aaf7827-d63c-4b61-89c3-182f06f82e5c")
    );
    let p = t.plan_by_name("TEAMS1").expect("declared");
    assert_eq!(t.plan(p).id, None);
}

#[test]
fn product_statement_lists_plans_in_order_with_trailing_comma_over_lines() {
    let t = table(PLANS);
    let all = t.product(t.product_by_name("ALL").expect("declared"));
    assert_eq!(all.display_name, "Everything");
    let listed: Vec<&str> = all
        .plan_list
        .iter()
        .map(|p| t.plan(*p).name.as_str())
        .collect();
    assert_eq!(
        listed,
        [
            "EXCHANGE_S_STANDARD",
            "SHAREPOINTSTANDARD",
            "TEAMS1",
            "WORKPLACE_ANALYTICS"
        ]
    );
    assert_eq!(all.plans.len(), 4);
}

#[test]
fn quoted_names_hold_spaces_slashes_parentheses_and_escapes() {
    let t = table(
        r#"plan "Virtualization Rights (E3/E5+VDA)" = "Say \"hi\" \\ there"
           product "O365_w/o Teams" = "No Teams" { "Virtualization Rights (E3/E5+VDA)" }"#,
    );
    let p = t
        .plan_by_name("Virtualization Rights (E3/E5+VDA)")
        .expect("quoted plan name");
    assert_eq!(t.plan(p).display_name, r#"Say "hi" \ there"#);
    assert!(t.product_by_name("O365_w/o Teams").is_some());
}

#[test]
fn bare_names_take_dots_and_dashes_and_may_start_with_a_digit() {
    let t = table(r#"plan 365.a-b_C = "x"  product P = "p" { 365.a-b_C }"#);
    assert!(t.plan_by_name("365.a-b_C").is_some());
}

#[test]
fn plans_and_products_are_two_namespaces_and_names_are_case_sensitive() {
    let t = table(
        r#"plan WA = "Workplace Analytics"  plan wa = "lower"
           product WA = "Workplace Analytics" { WA, wa }"#,
    );
    assert_eq!(t.plan_count(), 2);
    assert!(t.product_by_name("WA").is_some());
    assert!(t.product_by_name("wa").is_none());
}

#[test]
fn exclusive_statement_makes_every_pair_exclusive() {
    let t = table(&format!(
        "{PLANS}\nplan KIOSK = \"Exchange Online Kiosk\"\nproduct K = \"k\" {{ KIOSK }}\nexclusive \"Exchange\" {{ EXCHANGE_S_STANDARD, EXCHANGE_S_ENTERPRISE, KIOSK, }}"
    ));
    let set = &t.exclusive_sets()[0];
    assert_eq!(set.label, "Exchange");
    assert_eq!(
        names(&t, &set.plans),
        ["EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE", "KIOSK"]
    );
    let p = |n: &str| t.plan_by_name(n).expect("declared");
    let two: PlanSet = [p("KIOSK"), p("EXCHANGE_S_ENTERPRISE")]
        .into_iter()
        .collect();
    assert!(!t.is_exclusive_free(&two));
    let fine: PlanSet = [p("TEAMS1"), p("SHAREPOINTSTANDARD")].into_iter().collect();
    assert!(t.is_exclusive_free(&fine));
}

#[test]
fn conflict_statement_is_a_two_plan_exclusive_set() {
    let t = table(&format!(
        "{PLANS}\nconflict EXCHANGE_S_STANDARD with EXCHANGE_S_ENTERPRISE"
    ));
    let set = &t.exclusive_sets()[0];
    assert_eq!(
        names(&t, &set.plans),
        ["EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE"]
    );
}

#[test]
fn prerequisite_statement_keeps_alternatives_in_order() {
    let t = table(&format!(
        "{PLANS}\nprerequisite WORKPLACE_ANALYTICS requires {{ EXCHANGE_S_STANDARD, EXCHANGE_S_ENTERPRISE }}"
    ));
    let pre = &t.prerequisites()[0];
    assert_eq!(t.plan(pre.plan).name, "WORKPLACE_ANALYTICS");
    assert_eq!(
        t.describe_alternatives(pre),
        "Exchange Online (Plan 1) or Exchange Online (Plan 2)"
    );
    let p = |n: &str| t.plan_by_name(n).expect("declared");
    let lone = PlanSet::single(p("WORKPLACE_ANALYTICS"));
    assert!(!t.prerequisites_met(&lone));
    assert_eq!(t.unmet_prerequisites(&lone).count(), 1);
    let with: PlanSet = [p("WORKPLACE_ANALYTICS"), p("EXCHANGE_S_ENTERPRISE")]
        .into_iter()
        .collect();
    assert!(t.prerequisites_met(&with));
}

#[test]
fn two_prerequisite_statements_for_one_plan_must_both_hold() {
    let t = table(&format!(
        "{PLANS}\nprerequisite WORKPLACE_ANALYTICS requires {{ EXCHANGE_S_STANDARD }}\nprerequisite WORKPLACE_ANALYTICS requires {{ TEAMS1 }}"
    ));
    let p = |n: &str| t.plan_by_name(n).expect("declared");
    let one: PlanSet = [p("WORKPLACE_ANALYTICS"), p("EXCHANGE_S_STANDARD")]
        .into_iter()
        .collect();
    assert!(!t.prerequisites_met(&one));
    assert!(t.prerequisites_met(&(one | PlanSet::single(p("TEAMS1")))));
}

#[test]
fn unavailable_statement_bars_the_listed_countries() {
    let t = table(&format!(
        "{PLANS}\nunavailable TEAMS1 in {{ CN, RU, }}\nunavailable TEAMS1 in {{ IR }}"
    ));
    let teams = t.plan_by_name("TEAMS1").expect("declared");
    let c = |code: &str| Country::parse(code).expect("valid code");
    for barred in ["CN", "RU", "IR"] {
        assert!(t.barred_in(c(barred)).contains(teams), "{barred}");
    }
    assert!(!t.barred_in(c("US")).contains(teams));
    assert_eq!(t.location_rules().len(), 1, "two unavailable rules add up");
    assert_eq!(t.location_rules()[0].kind, LocationKind::Unavailable);
}

#[test]
fn available_only_statement_bars_every_other_country() {
    let t = table(&format!(
        "{PLANS}\navailable WORKPLACE_ANALYTICS only in {{ US, CA }}"
    ));
    let wa = t.plan_by_name("WORKPLACE_ANALYTICS").expect("declared");
    let c = |code: &str| Country::parse(code).expect("valid code");
    assert!(!t.barred_in(c("US")).contains(wa));
    assert!(!t.barred_in(c("CA")).contains(wa));
    assert!(t.barred_in(c("DE")).contains(wa));
    assert!(t.barred_in(c("ZW")).contains(wa));
    assert_eq!(t.location_rules()[0].kind, LocationKind::AvailableOnly);
}

#[test]
fn comments_run_to_the_end_of_the_line_anywhere() {
    let t = table(
        "# header\nplan A = \"a\" # after a statement\nproduct P = \"p\" { # inside a list\n  A, # here\n}\n# last line without newline",
    );
    assert_eq!(t.plan_count(), 1);
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_accepted() {
    let t = table("\u{feff}plan A = \"a\"\r\nproduct P = \"p\" { A }\r\n");
    assert_eq!(t.product_count(), 1);
}

#[test]
fn an_empty_file_gives_an_empty_table() {
    let t = table("# nothing yet\n");
    assert_eq!((t.plan_count(), t.product_count()), (0, 0));
}

#[test]
fn files_form_one_namespace_in_the_order_given() {
    let c = rules::compile_texts([
        ("a.rules", "product P = \"p\" { LATER }"),
        (
            "b.rules",
            "plan LATER = \"declared in the next file\"\nconflict LATER with OTHER",
        ),
        ("c.rules", "plan OTHER = \"o\"\nproduct Q = \"q\" { OTHER }"),
    ])
    .expect("one namespace across files");
    assert_eq!(c.table.files(), ["a.rules", "b.rules", "c.rules"]);
    assert_eq!(c.table.exclusive_sets().len(), 1);
}

#[test]
fn compiling_twice_gives_equal_tables() {
    assert_eq!(table(PLANS), table(PLANS));
}

// ---- Diagnostics: one case per entry of the spec's list ----------------------------------------

/// (what, rules text, expected errors as "line:column: message").
const ERROR_CASES: &[(&str, &str, &[&str])] = &[
    (
        "unknown plan in a product",
        "plan A = \"a\"\nproduct P = \"p\" { A, EXCHANGE }",
        &["2:22: unknown plan `EXCHANGE` in product `P`"],
    ),
    (
        "unknown plan in a product, with a suggestion",
        "plan EXCHANGE_S_STANDARD = \"a\"\nproduct P = \"p\" { EXCHANGE_S_STANDRD }",
        &[
            "2:19: unknown plan `EXCHANGE_S_STANDRD` in product `P`: did you mean `EXCHANGE_S_STANDARD`?",
        ],
    ),
    (
        "unknown plan in a product, differing in case only",
        "plan TEAMS1 = \"t\"\nproduct P = \"p\" { teams1 }",
        &["2:19: unknown plan `teams1` in product `P`: did you mean `TEAMS1`?"],
    ),
    (
        "a product named where a plan is expected",
        "plan A = \"a\"\nproduct E3 = \"p\" { A }\nconflict A with E3",
        &["3:17: unknown plan `E3` in conflict: that is a product; list its plans instead"],
    ),
    (
        "unknown plan in an exclusive list",
        "plan A = \"a\"\nplan B = \"b\"\nproduct P = \"p\" { A }\nproduct Q = \"q\" { B }\nexclusive \"x\" { A, B, Z }",
        &["5:23: unknown plan `Z` in exclusive set \"x\""],
    ),
    (
        "unknown plan in a prerequisite rule",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nprerequisite NOPE requires { A }\nprerequisite A requires { GONE }",
        &[
            "3:14: unknown plan `NOPE` in prerequisite",
            "4:27: unknown plan `GONE` in the prerequisites of `A`",
        ],
    ),
    (
        "unknown plan in a location rule",
        "unavailable X in { CN }\navailable Y only in { US }",
        &[
            "1:13: unknown plan `X` in `unavailable in`",
            "2:11: unknown plan `Y` in `available … only in`",
        ],
    ),
    (
        "a plan declared twice",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nplan A = \"again\"",
        &["3:6: plan `A` is already declared at test.rules:1:6"],
    ),
    (
        "a product declared twice",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nproduct P = \"p2\" { A }",
        &["3:9: product `P` is already declared at test.rules:2:9"],
    ),
    (
        "an id used twice",
        "plan A = \"a\" id 9aaf7827-d63c-4b61-89c3-182f06f82e5c\nplan B = \"b\" id 9AAF7827-D63C-4B61-89C3-182F06F82E5C\nproduct P = \"p\" { A, B }",
        &[
            "2:17: id 9AAF7827-D63C-4B61-89C3-182F06F82E5C of plan `B` is already the id of plan `A` at test.rules:1:17",
        ],
    ),
    (
        "a malformed id",
        "plan A = \"a\" id 9aaf7827\nproduct P = \"p\" { A }",
        &[
            "1:17: `9aaf7827` is not a GUID: expected 8-4-4-4-12 hexadecimal digits, like 9aaf7827-d63c-4b61-89c3-182f06f82e5c",
        ],
    ),
    (
        "an empty display name",
        "plan A = \"\"\nproduct P = \"p\" { A }",
        &["1:10: the display name is empty"],
    ),
    (
        "an exclusive set of fewer than two distinct plans",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nexclusive \"one\" { A, A }\nexclusive \"none\" { }",
        &[
            "3:11: exclusive set \"one\" needs at least two different plans",
            "4:11: exclusive set \"none\" needs at least two different plans",
        ],
    ),
    (
        "a plan in conflict with itself",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nconflict A with A",
        &["3:17: plan `A` cannot conflict with itself"],
    ),
    (
        "a plan required by itself",
        "plan A = \"a\"\nplan B = \"b\"\nproduct P = \"p\" { A, B }\nprerequisite A requires { B, A }",
        &["4:30: plan `A` cannot be its own prerequisite"],
    ),
    (
        "a prerequisite with an empty list",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nprerequisite A requires { }",
        &["3:14: the prerequisite of `A` lists no plans: name at least one"],
    ),
    (
        "an unknown country code",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nunavailable A in { CN, XX, UK }",
        &[
            "3:24: unknown country code `XX`: expected an ISO 3166-1 alpha-2 code such as US, GB or DE",
            "3:28: unknown country code `UK`: expected an ISO 3166-1 alpha-2 code such as US, GB or DE",
        ],
    ),
    (
        "a country code not in capitals",
        "plan A = \"a\"\nproduct P = \"p\" { A }\navailable A only in { us }",
        &["3:23: country codes are written in capitals: `US`, not `us`"],
    ),
    (
        "an empty country list",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nunavailable A in {}",
        &["3:18: the list of countries is empty"],
    ),
    (
        "a plan with both unavailable and available only",
        "plan A = \"a\"\nproduct P = \"p\" { A }\nunavailable A in { CN }\navailable A only in { US }",
        &[
            "4:11: plan `A` cannot be both `unavailable in` some countries and `available only in` others (the other rule is at test.rules:3:13)",
        ],
    ),
    (
        "two available-only rules for one plan",
        "plan A = \"a\"\nproduct P = \"p\" { A }\navailable A only in { CA }\navailable A only in { US }",
        &[
            "4:11: plan `A` already has an `available … only in` rule at test.rules:3:11: merge the two lists",
        ],
    ),
    (
        "a product holding two plans of one exclusive set",
        "plan A = \"a\"\nplan B = \"b\"\nproduct BOTH = \"both\" { A, B }\nconflict A with B",
        &[
            "3:9: product `BOTH` holds `A` and `B`, which are mutually exclusive (\"A with B\"), so it could never be assigned",
        ],
    ),
    // Parse errors: what was expected, in words, and what was found.
    (
        "a misspelt statement keyword",
        "produkt P = \"p\" { }",
        &[
            "1:1: expected a statement (`plan`, `product`, `exclusive`, `conflict`, `prerequisite`, `unavailable` or `available`), found the word `produkt`",
        ],
    ),
    (
        "a missing equals sign",
        "plan A \"a\"",
        &["1:8: expected `=`, found the quoted name `\"a\"`"],
    ),
    (
        "a display name without quotes",
        "plan A = Exchange",
        &["1:10: expected a display name in double quotes, found the word `Exchange`"],
    ),
    (
        "an unterminated string",
        "plan A = \"Exchange\nplan B = \"b\"",
        &["1:19: this quoted name has no closing `\"` on its line"],
    ),
    (
        "a missing comma in a list",
        "plan A = \"a\"\nplan B = \"b\"\nproduct P = \"p\" { A B }",
        &["3:21: expected `}` or `,`, found the word `B`"],
    ),
    (
        "a list that is never closed",
        "plan A = \"a\"\nproduct P = \"p\" { A,\n",
        &["3:1: expected a name or `}`, found the end of the file"],
    ),
    (
        "an exclusive label without quotes",
        "exclusive SharePoint { A, B }",
        &["1:11: expected a label in double quotes, found the word `SharePoint`"],
    ),
    (
        "conflict without `with`",
        "conflict A B",
        &["1:12: expected `with`, found the word `B`"],
    ),
    (
        "prerequisite without `requires`",
        "prerequisite A { B }",
        &["1:16: expected `requires`, found the character `{`"],
    ),
    (
        "available without `only`",
        "available A in { US }",
        &["1:13: expected `only`, found the word `in`"],
    ),
    (
        "unavailable without `in`",
        "unavailable A { US }",
        &["1:15: expected `in`, found the character `{`"],
    ),
    (
        "a stray character",
        "plan A = \"a\" ;",
        &[
            "1:14: expected a statement (`plan`, `product`, `exclusive`, `conflict`, `prerequisite`, `unavailable` or `available`), found the character `;`",
        ],
    ),
];

#[test]
fn every_diagnostic_of_the_spec_has_its_position_and_words() {
    let mut failures = Vec::new();
    for (what, text, expected) in ERROR_CASES {
        let got = errors(text);
        if got != *expected {
            failures.push(format!(
                "{what}:\n  expected {expected:#?}\n  got      {got:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn warnings_are_apart_from_errors() {
    assert_eq!(
        warnings("plan LONELY = \"no product has me\"\nproduct EMPTY = \"nothing\" { }"),
        [
            "1:6: plan `LONELY` is not in any product",
            "2:9: product `EMPTY` has no plans"
        ]
    );
    assert_eq!(
        warnings("plan A = \"a\"\nproduct P = \"p\" { A, A }"),
        ["2:22: plan `A` is listed twice in product `P`"]
    );
    // Warnings alone do not stop a table from being built.
    assert!(compile("plan LONELY = \"x\"").is_ok());
}

/// R1: a `conflict` or an exclusive set whose plans another exclusive set all holds adds no rule;
/// the warning points at the set that does. The set pointed at is one that stays: larger, or
/// the same plans declared first. Sets that merely share plans are not redundant.
#[test]
fn a_conflict_or_exclusive_set_that_another_set_implies_is_a_warning() {
    let text = "\
plan A = \"a\"
plan B = \"b\"
plan C = \"c\"
plan D = \"d\"
product P = \"p\" { A }
product Q = \"q\" { B }
product R = \"r\" { C }
product S = \"s\" { D }
exclusive \"ABC\" { A, B, C }
conflict A with B
exclusive \"BC\" { C, B }
exclusive \"ABC again\" { B, A, C }
conflict C with D
exclusive \"CD\" { C, D }
exclusive \"BCD\" { B, C, D }
";
    assert_eq!(
        warnings(text),
        [
            "10:1: `conflict A with B` adds nothing: exclusive set \"ABC\" at test.rules:9:11 already makes both plans mutually exclusive",
            "11:11: exclusive set \"BC\" adds nothing: exclusive set \"ABC\" at test.rules:9:11 already makes both plans mutually exclusive",
            "12:11: exclusive set \"ABC again\" adds nothing: exclusive set \"ABC\" at test.rules:9:11 already makes all its plans mutually exclusive",
            "13:1: `conflict C with D` adds nothing: exclusive set \"BCD\" at test.rules:15:11 already makes both plans mutually exclusive",
            "14:11: exclusive set \"CD\" adds nothing: exclusive set \"BCD\" at test.rules:15:11 already makes both plans mutually exclusive",
        ]
    );
    // A warning only: the table keeps every set as written.
    assert_eq!(table(text).exclusive_sets().len(), 7);
    // Across files, the place names the other file.
    let c = rules::compile_texts([
        ("a.rules", "plan A = \"a\"\nplan B = \"b\"\nproduct P = \"p\" { A }\nproduct Q = \"q\" { B }\nconflict B with A\n"),
        ("b.rules", "exclusive \"AB\" { A, B }\n"),
    ])
    .expect("compiles");
    assert_eq!(
        render(&c.warnings),
        "b.rules:1:11: exclusive set \"AB\" adds nothing: `conflict B with A` at a.rules:5:1 already makes both plans mutually exclusive"
    );
}

#[test]
fn a_file_with_five_different_mistakes_reports_all_five_in_one_run() {
    let text = "\
plan A = \"a\"
plan B = \"b\" id not-a-guid
produkt P = \"p\" { A }
product Q = \"q\" { A, MISSING }
conflict A with A
unavailable B in { XX }
product R = \"r\" { B }
";
    assert_eq!(
        errors(text),
        [
            "2:17: `not-a-guid` is not a GUID: expected 8-4-4-4-12 hexadecimal digits, like 9aaf7827-d63c-4b61-89c3-182f06f82e5c",
            "3:1: expected a statement (`plan`, `product`, `exclusive`, `conflict`, `prerequisite`, `unavailable` or `available`), found the word `produkt`",
            "4:22: unknown plan `MISSING` in product `Q`",
            "5:17: plan `A` cannot conflict with itself",
            "6:20: unknown country code `XX`: expected an ISO 3166-1 alpha-2 code such as US, GB or DE",
        ]
    );
}

#[test]
fn after_a_parse_error_the_next_statement_is_still_checked() {
    // The broken product is skipped up to the next statement keyword, which is then parsed.
    let text = "plan A = \"a\"\nproduct P = \"p\" { A\nconflict A with A\n";
    assert_eq!(
        errors(text),
        [
            "3:1: expected `}` or `,`, found the word `conflict`",
            "3:17: plan `A` cannot conflict with itself"
        ]
    );
}

#[test]
fn a_diagnostic_shows_the_line_with_a_caret() {
    let failure =
        compile("plan A = \"a\"\nproduct P = \"p\" {\n\tA, TEAMS\n}").expect_err("unknown plan");
    assert_eq!(
        failure.errors[0].to_string(),
        "error: unknown plan `TEAMS` in product `P`\n --> test.rules:3:5\n  |\n3 | \tA, TEAMS\n  | \t   ^^^^^"
    );
}

#[test]
fn errors_are_reported_by_file_then_position() {
    let failure = rules::compile_texts([
        ("a.rules", "plan A = \"a\"\nproduct P = \"p\" { A, X }"),
        ("b.rules", "conflict A with A\nproduct Q = \"q\" { Y }"),
    ])
    .expect_err("errors in both files");
    assert_eq!(
        render(&failure.errors),
        "a.rules:2:22: unknown plan `X` in product `P`\n\
         b.rules:1:17: plan `A` cannot conflict with itself\n\
         b.rules:2:19: unknown plan `Y` in product `Q`"
    );
}

/// A reload that drops a product or plan in use points at its declaration in the rules in force
/// (rules-language.md), which the files on disk may no longer hold: the table keeps the place and
/// the line as it compiled them.
#[test]
fn a_table_points_at_the_declarations_it_was_compiled_from() {
    let t = rules::compile_texts([
        ("a.rules", "plan A = \"a\"\n\n  plan B = \"b\""),
        ("b.rules", "# products\nproduct P = \"p\" { A, B }\n"),
    ])
    .expect("compiles")
    .table;
    let b = t.plan_by_name("B").expect("declared");
    let d = t
        .at_plan(b, Severity::Error, "gone".into())
        .expect("a known plan");
    assert_eq!(
        d.to_string(),
        "error: gone\n --> a.rules:3:8\n  |\n3 |   plan B = \"b\"\n  |        ^"
    );
    let p = t.product_by_name("P").expect("declared");
    let d = t
        .at_product(p, Severity::Error, "gone".into())
        .expect("a known product");
    assert_eq!(render(&[d]), "b.rules:2:9: gone");
    let unknown = group_licensing::rules::ProductId::new(7).expect("an id");
    assert_eq!(t.at_product(unknown, Severity::Error, "x".into()), None);
}

// ---- Loading a folder ----------------------------------------------------------------------------

#[test]
fn load_dir_reads_rules_files_in_name_order_and_ignores_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("b.rules"), "plan A = \"a\"").expect("write");
    std::fs::write(dir.path().join("a.rules"), "product P = \"p\" { A }").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not rules {").expect("write");
    let compiled = rules::load_dir(dir.path()).expect("compiles");
    let files: Vec<String> = compiled
        .table
        .files()
        .iter()
        .map(|f| f.rsplit('/').next().unwrap_or(f).to_string())
        .collect();
    assert_eq!(files, ["a.rules", "b.rules"]);
}

#[test]
fn load_dir_names_each_file_in_its_diagnostics() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("a.rules"),
        "plan A = \"a\"\nproduct P = \"p\" { A }",
    )
    .expect("write");
    std::fs::write(dir.path().join("b.rules"), "conflict A with A").expect("write");
    match rules::load_dir(dir.path()) {
        Err(RulesError::Invalid(f)) => {
            assert_eq!(f.errors.len(), 1);
            assert!(
                f.errors[0].file.ends_with("b.rules"),
                "{}",
                f.errors[0].file
            );
            assert_eq!((f.errors[0].line, f.errors[0].column), (1, 17));
        }
        other => panic!("expected a compile failure, got {other:?}"),
    }
}

#[test]
fn load_dir_reports_a_file_that_is_not_utf8_with_its_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a.rules"), b"plan A = \"caf\xe9\"\n").expect("write");
    match rules::load_dir(dir.path()) {
        Err(RulesError::Invalid(f)) => {
            assert_eq!(
                render(&f.errors).rsplit('/').next(),
                Some("a.rules:1:14: this file is not valid UTF-8: save it as UTF-8")
            );
        }
        other => panic!("expected a compile failure, got {other:?}"),
    }
}

#[test]
fn load_dir_without_rules_files_or_folder_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(matches!(
        rules::load_dir(dir.path()),
        Err(RulesError::NoFiles(_))
    ));
    assert!(matches!(
        rules::load_dir(&dir.path().join("missing")),
        Err(RulesError::Io { .. })
    ));
}

#[test]
fn the_scenario_fixture_is_the_rules_block_of_the_seed_scenarios() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/scenarios/seed-scenarios.md"
    );
    let doc = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path} (shared/ beside the project): {e}"));
    let start = doc
        .find("```\nplan ")
        .expect("the scenarios list their rules")
        + 4;
    let end = start + doc[start..].find("```").expect("the rules block is closed");
    let fixture = include_str!("fixtures/scenario-rules/scenario.rules");
    let body: String = fixture
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(body, &doc[start..end]);
    table(fixture);
}

/// A file full of unknown plans (a catalog renamed wholesale) gets a guess for the first 100
/// only: each guess compares the name with every plan.
#[test]
fn only_the_first_hundred_unknown_plans_get_a_guess() {
    use std::fmt::Write as _;
    let mut text = String::from("plan EXCHANGE_S_STANDARD = \"Exchange\"\n");
    for i in 0..150 {
        writeln!(text, "product P{i} = \"P\" {{ EXCHANGE_S_STANDRD }}").expect("write");
    }
    let failure = compile(&text).expect_err("unknown plans");
    let unknown: Vec<_> = failure
        .errors
        .iter()
        .filter(|d| d.message.starts_with("unknown plan"))
        .collect();
    assert_eq!(unknown.len(), 150);
    let guessed = unknown
        .iter()
        .filter(|d| d.message.contains("did you mean `EXCHANGE_S_STANDARD`"))
        .count();
    assert_eq!(guessed, 100);
    assert!(
        unknown[..100]
            .iter()
            .all(|d| d.message.contains("did you mean"))
    );
}
