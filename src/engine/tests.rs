//! One test (at least) per rule id of spec/licensing.md that the engine owns, named after it.

use super::*;
use crate::rules::{Country, PlanId, PlanSet, ProductId, RuleTable, compile_texts};

const SCENARIO: &str = include_str!("../../tests/fixtures/scenario-rules/scenario.rules");

fn compile(text: &str) -> RuleTable {
    compile_texts([("t.rules", text)]).unwrap().table
}

fn c(code: &str) -> Country {
    Country::parse(code).unwrap()
}

const G: GroupId = GroupId(10);
const H: GroupId = GroupId(20);

/// The scenario rules, 10 seats of everything, directory default US.
struct Fx {
    table: RuleTable,
    seats: SeatCounter,
    default: Country,
}

impl Fx {
    fn new() -> Fx {
        Fx::with(SCENARIO)
    }

    fn with(text: &str) -> Fx {
        let table = compile(text);
        let mut seats = SeatCounter::new(table.product_count());
        for p in table.product_ids() {
            seats.set_prepaid(p, 10);
        }
        Fx {
            table,
            seats,
            default: c("US"),
        }
    }

    fn assign(
        &mut self,
        user: &mut UserLicenses,
        change: &LicenseChange,
    ) -> Result<DirectOutcome, DirectError> {
        Engine::new(&self.table, self.default).assign_direct(user, change, &mut self.seats)
    }

    fn p(&self, name: &str) -> ProductId {
        self.table.product_by_name(name).unwrap()
    }

    fn pl(&self, name: &str) -> PlanId {
        self.table.plan_by_name(name).unwrap()
    }

    fn plans(&self, names: &[&str]) -> PlanSet {
        names.iter().map(|n| self.pl(n)).collect()
    }

    fn spec(&self, product: &str, disabled: &[&str]) -> LicenseSpec {
        LicenseSpec::new(self.p(product), disabled.iter().map(|n| self.pl(n)))
    }

    fn add(&self, specs: &[(&str, &[&str])]) -> LicenseChange {
        LicenseChange {
            add: specs.iter().map(|(p, d)| self.spec(p, d)).collect(),
            remove: vec![],
        }
    }

    fn remove(&self, products: &[&str]) -> LicenseChange {
        LicenseChange {
            add: vec![],
            remove: products.iter().map(|p| self.p(p)).collect(),
        }
    }

    fn user(&self, id: i64) -> UserLicenses {
        UserLicenses::new(UserId(id), Some(c("US")))
    }

    fn direct(&mut self, user: &mut UserLicenses, specs: &[(&str, &[&str])]) {
        let change = self.add(specs);
        let engine = Engine::new(&self.table, self.default);
        engine
            .assign_direct(user, &change, &mut self.seats)
            .unwrap();
    }

    /// The user joins `group`, which carries `specs`, and is processed.
    fn join(
        &mut self,
        user: &mut UserLicenses,
        group: GroupId,
        specs: &[(&str, &[&str])],
    ) -> ProcessOutcome {
        let set: Vec<LicenseSpec> = specs.iter().map(|(p, d)| self.spec(p, d)).collect();
        set_group_intent(user, group, &set);
        self.process(user, group)
    }

    fn process(&mut self, user: &mut UserLicenses, group: GroupId) -> ProcessOutcome {
        let engine = Engine::new(&self.table, self.default);
        engine.process_group(user, group, &mut self.seats)
    }

    fn leave(&mut self, user: &mut UserLicenses, group: GroupId) -> ProcessOutcome {
        withdraw_group(user, group);
        self.process(user, group)
    }

    fn state(
        &self,
        user: &UserLicenses,
        source: Source,
        product: &str,
    ) -> (AssignmentState, Option<ErrorCode>) {
        let a = user.assignment(source, self.p(product)).unwrap();
        (a.state, a.error_code())
    }

    fn error(&self, user: &UserLicenses, source: Source, product: &str) -> LicenseError {
        user.assignment(source, self.p(product))
            .unwrap()
            .error
            .clone()
            .unwrap()
    }

    fn consumed(&self, product: &str) -> u32 {
        self.seats.consumed(self.p(product))
    }
}

use AssignmentState::{Active, ActiveWithError, Error, Pending};

fn at(source: Source, product: ProductId) -> SourceRef {
    SourceRef { source, product }
}

// ---------------------------------------------------------------------------------------------
// L — licenses held

#[test]
fn l1_one_seat_whatever_the_number_of_sources() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.direct(&mut u, &[("ENTERPRISEPACK", &[])]);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    f.join(&mut u, H, &[("ENTERPRISEPACK", &["TEAMS1"])]);
    assert_eq!(u.assignments.len(), 3);
    assert!(u.assignments.iter().all(|a| a.state == Active));
    assert!(u.holds(f.p("ENTERPRISEPACK")));
    assert_eq!(f.consumed("ENTERPRISEPACK"), 1);
    assert_eq!(
        u.held_products().collect::<Vec<_>>(),
        vec![f.p("ENTERPRISEPACK")]
    );
    // Removing two of the three sources frees nothing; the last one frees the seat.
    f.leave(&mut u, G);
    let change = f.remove(&["ENTERPRISEPACK"]);
    f.assign(&mut u, &change).unwrap();
    assert_eq!(f.consumed("ENTERPRISEPACK"), 1);
    let out = f.leave(&mut u, H);
    assert_eq!((out.seats_freed, f.consumed("ENTERPRISEPACK")), (1, 0));
    // An assignment in ERROR holds nothing.
    let mut v = f.user(2);
    f.seats.set_prepaid(f.p("EMS"), 0);
    f.join(&mut v, G, &[("EMS", &[])]);
    assert!(!v.holds(f.p("EMS")));
}

#[test]
fn l2_enabled_plans_are_the_union_across_sources() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.direct(
        &mut u,
        &[("ENTERPRISEPACK", &["TEAMS1", "SHAREPOINTENTERPRISE"])],
    );
    f.join(
        &mut u,
        G,
        &[("ENTERPRISEPACK", &["EXCHANGE_S_ENTERPRISE", "TEAMS1"])],
    );
    f.join(&mut u, H, &[("EMS", &["AAD_PREMIUM"])]);
    let e3 = f.p("ENTERPRISEPACK");
    assert_eq!(
        u.enabled_plans_of(&f.table, e3),
        f.plans(&["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE"])
    );
    assert_eq!(
        u.enabled_plans(&f.table),
        f.plans(&["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "INTUNE_A"])
    );
}

#[test]
fn l3_no_seat_no_hold_and_lowering_prepaid_takes_nothing_away() {
    let mut f = Fx::new();
    let e3 = f.p("ENTERPRISEPACK");
    f.seats.set_prepaid(e3, 1);
    let mut a = f.user(1);
    let mut b = f.user(2);
    f.join(&mut a, G, &[("ENTERPRISEPACK", &[])]);
    f.join(&mut b, G, &[("ENTERPRISEPACK", &[])]);
    assert_eq!((f.seats.consumed(e3), f.seats.available(e3)), (1, 0));
    assert!(a.holds(e3) && !b.holds(e3));
    // A direct add is refused too (C5).
    let change = f.add(&[("ENTERPRISEPACK", &[])]);
    let err = f.assign(&mut b, &change);
    assert_eq!(err.unwrap_err().api_code(), "COUNT_VIOLATION");
    // Lowering prepaid below consumed takes nothing away; available is max(0, …).
    f.seats.set_prepaid(e3, 0);
    assert_eq!(f.seats.available(e3), 0);
    f.process(&mut a, G);
    assert!(a.holds(e3));
    assert_eq!(
        f.state(&a, Source::Group(G), "ENTERPRISEPACK"),
        (Active, None)
    );
    assert_eq!(f.seats.consumed(e3), 1);
    // The engine reports the net change per product for the store.
    assert_eq!(f.seats.deltas().collect::<Vec<_>>(), vec![(e3, 1)]);
    f.seats.clear_deltas();
    assert_eq!(f.seats.deltas().count(), 0);
}

#[test]
fn l4_group_assignment_uses_the_directory_default_location() {
    let mut f = Fx::new();
    f.default = c("CN");
    let mut u = UserLicenses::new(UserId(1), None);
    assert_eq!(u.effective_usage_location(f.default), c("CN"));
    f.join(&mut u, G, &[("STANDARDPACK", &[])]);
    assert_eq!(
        f.error(&u, Source::Group(G), "STANDARDPACK").violations,
        vec![Violation::ProhibitedInLocation {
            plans: vec![f.pl("TEAMS1")],
            location: c("CN"),
            inherited: true,
        }]
    );
    // The user's own location wins over the default.
    u.usage_location = Some(c("US"));
    f.process(&mut u, G);
    assert_eq!(
        f.state(&u, Source::Group(G), "STANDARDPACK"),
        (Active, None)
    );
}

#[test]
fn l5_the_intent_is_kept_in_every_state_until_its_withdrawal_is_applied() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("EMS"), 0);
    let mut u = f.user(1);
    // PENDING, then ERROR: the record stays.
    set_group_intent(&mut u, G, &[f.spec("EMS", &[])]);
    assert_eq!(f.state(&u, Source::Group(G), "EMS"), (Pending, None));
    f.process(&mut u, G);
    assert_eq!(f.state(&u, Source::Group(G), "EMS").0, Error);
    f.process(&mut u, G);
    assert_eq!(u.assignments.len(), 1);
    // Withdrawn but not processed: still recorded with its state.
    withdraw_group(&mut u, G);
    assert_eq!(f.state(&u, Source::Group(G), "EMS").0, Error);
    assert!(u.assignments[0].withdrawal_pending());
    f.process(&mut u, G);
    assert!(u.assignments.is_empty());
}

// ---------------------------------------------------------------------------------------------
// R — what the rules say

#[test]
fn r1_exclusive_plans_are_never_enabled_together() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    // Both products in one direct call: refused, the pair named with both sources.
    let change = f.add(&[
        ("STANDARDPACK", &[]),
        ("ENTERPRISEPACK", &["SHAREPOINTENTERPRISE"]),
    ]);
    let Err(DirectError::License(err)) = f.assign(&mut u, &change) else {
        panic!()
    };
    assert_eq!(
        err.violations,
        vec![Violation::MutuallyExclusive {
            plan: f.pl("EXCHANGE_S_STANDARD"),
            source: at(Source::Direct, f.p("STANDARDPACK")),
            conflicting_plan: f.pl("EXCHANGE_S_ENTERPRISE"),
            conflicting_source: at(Source::Direct, f.p("ENTERPRISEPACK")),
        }]
    );
    assert!(u.assignments.is_empty());
    // With the conflicting plan disabled on one side, both may be held.
    let ok = f.add(&[
        ("STANDARDPACK", &["EXCHANGE_S_STANDARD"]),
        ("ENTERPRISEPACK", &["SHAREPOINTENTERPRISE"]),
    ]);
    f.assign(&mut u, &ok).unwrap();
    assert!(f.table.is_exclusive_free(&u.enabled_plans(&f.table)));
}

#[test]
fn r2_a_dependent_plan_needs_one_of_its_prerequisites() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    let change = f.add(&[("WORKPLACE_ANALYTICS", &[])]);
    let Err(DirectError::License(err)) = f.assign(&mut u, &change) else {
        panic!()
    };
    assert_eq!(err.code(), ErrorCode::DependencyViolation);
    assert_eq!(
        err.violations[0].missing_prerequisites(),
        &[f.pl("EXCHANGE_S_STANDARD"), f.pl("EXCHANGE_S_ENTERPRISE")]
    );
    // Either alternative is enough.
    f.direct(
        &mut u,
        &[("STANDARDPACK", &["SHAREPOINTSTANDARD", "TEAMS1"])],
    );
    f.assign(&mut u, &change).unwrap();
    assert!(f.table.prerequisites_met(&u.enabled_plans(&f.table)));
}

#[test]
fn r3_available_only_in_a_list_of_countries() {
    let text = format!("{SCENARIO}\navailable INTUNE_A only in {{ US, GB }}\n");
    let mut f = Fx::with(&text);
    let mut u = UserLicenses::new(UserId(1), Some(c("DE")));
    f.join(&mut u, G, &[("EMS", &[])]);
    let err = f.error(&u, Source::Group(G), "EMS");
    assert_eq!(
        err.violations,
        vec![Violation::ProhibitedInLocation {
            plans: vec![f.pl("INTUNE_A")],
            location: c("DE"),
            inherited: false,
        }]
    );
    u.usage_location = Some(c("GB"));
    f.process(&mut u, G);
    assert_eq!(f.state(&u, Source::Group(G), "EMS"), (Active, None));
}

// ---------------------------------------------------------------------------------------------
// C — checks

#[test]
fn c1_uniqueness_applies_when_licensing_not_to_removals_or_revalidation() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.direct(&mut u, &[("EMS", &[])]);
    f.join(&mut u, G, &[("STANDARDPACK", &[])]);
    u.duplicate_proxy = Some(DuplicateProxy {
        address: "smtp:sales@contoso.com".into(),
        other_user: UserId(2),
    });
    // Adding: refused, naming the address and the other user.
    let change = f.add(&[("WORKPLACE_ANALYTICS", &[])]);
    let Err(DirectError::License(err)) = f.assign(&mut u, &change) else {
        panic!()
    };
    assert_eq!(err.code(), ErrorCode::UniquenessViolation);
    assert_eq!(
        err.violations,
        vec![Violation::DuplicateProxyAddress {
            address: "smtp:sales@contoso.com".into(),
            other_user: UserId(2),
        }]
    );
    // A pure removal is not blocked.
    let change = f.remove(&["EMS"]);
    f.assign(&mut u, &change).unwrap();
    // P4 re-validation of the unchanged group license does not check C1.
    f.process(&mut u, G);
    assert_eq!(
        f.state(&u, Source::Group(G), "STANDARDPACK"),
        (Active, None)
    );
    // Applying a group (P2) does.
    f.join(&mut u, H, &[("WORKPLACE_ANALYTICS", &[])]);
    assert_eq!(
        f.state(&u, Source::Group(H), "WORKPLACE_ANALYTICS"),
        (Error, Some(ErrorCode::UniquenessViolation))
    );
}

#[test]
fn c2_location_lists_the_plans_and_the_location() {
    let text = format!("{SCENARIO}\nunavailable SHAREPOINTSTANDARD in {{ RU }}\n");
    let mut f = Fx::with(&text);
    let mut u = UserLicenses::new(UserId(1), Some(c("RU")));
    let change = f.add(&[("STANDARDPACK", &[])]);
    let err = f.assign(&mut u, &change);
    let Err(DirectError::License(err)) = err else {
        panic!()
    };
    assert_eq!(
        err.violations,
        vec![Violation::ProhibitedInLocation {
            plans: vec![f.pl("SHAREPOINTSTANDARD")],
            location: c("RU"),
            inherited: false,
        }]
    );
    assert_eq!(err.violations[0].usage_location(), Some(c("RU")));
    assert_eq!(err.violations[0].plans(), &[f.pl("SHAREPOINTSTANDARD")]);
    // Disabling the barred plan makes the license acceptable.
    f.direct(&mut u, &[("STANDARDPACK", &["SHAREPOINTSTANDARD"])]);
}

#[test]
fn c3_mutually_exclusive_lists_every_pair_with_sources() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.direct(&mut u, &[("STANDARDPACK", &["SHAREPOINTSTANDARD"])]);
    f.join(&mut u, H, &[("STANDARDPACK", &[])]);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    let (e1, e3) = (f.p("STANDARDPACK"), f.p("ENTERPRISEPACK"));
    let err = f.error(&u, Source::Group(G), "ENTERPRISEPACK");
    let pair = |plan, conflicting, source| Violation::MutuallyExclusive {
        plan: f.pl(plan),
        source: at(Source::Group(G), e3),
        conflicting_plan: f.pl(conflicting),
        conflicting_source: at(source, e1),
    };
    // Exchange comes from two sources (direct first), SharePoint from the group only.
    assert_eq!(
        err.violations,
        vec![
            pair(
                "EXCHANGE_S_ENTERPRISE",
                "EXCHANGE_S_STANDARD",
                Source::Direct
            ),
            pair(
                "EXCHANGE_S_ENTERPRISE",
                "EXCHANGE_S_STANDARD",
                Source::Group(H)
            ),
            pair(
                "SHAREPOINTENTERPRISE",
                "SHAREPOINTSTANDARD",
                Source::Group(H)
            ),
        ]
    );
    let v = &err.violations[0];
    assert_eq!(v.conflicting_plan(), Some(f.pl("EXCHANGE_S_STANDARD")));
    assert_eq!(v.conflicting_source(), Some(at(Source::Direct, e1)));
    assert_eq!(v.source(), Some(at(Source::Group(G), e3)));
    assert_eq!(f.consumed("ENTERPRISEPACK"), 0);
}

/// The scenario rules with the SharePoint pair stated a second time, as the bundled policy once
/// did (a `conflict` beside an `exclusive` set that holds the same pair), and two exclusive sets
/// that share a pair: a pair is one violation however many rules imply it (R1, C3, G1).
const PAIR_TWICE: &str = "exclusive \"SharePoint Online\" { SHAREPOINTSTANDARD, SHAREPOINTENTERPRISE }\n\
    exclusive \"Device\" { INTUNE_A, WORKPLACE_ANALYTICS, SHAREPOINTSTANDARD }\n\
    exclusive \"Other\" { INTUNE_A, WORKPLACE_ANALYTICS, TEAMS1 }\n";

#[test]
fn c3_a_pair_that_several_rules_imply_is_one_violation() {
    let mut f = Fx::with(&format!("{SCENARIO}{PAIR_TWICE}"));
    let mut u = f.user(1);
    f.direct(&mut u, &[("STANDARDPACK", &["EXCHANGE_S_STANDARD"])]);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    let err = f.error(&u, Source::Group(G), "ENTERPRISEPACK");
    let (e1, e3) = (f.p("STANDARDPACK"), f.p("ENTERPRISEPACK"));
    assert_eq!(
        err.violations,
        vec![Violation::MutuallyExclusive {
            plan: f.pl("SHAREPOINTENTERPRISE"),
            source: at(Source::Group(G), e3),
            conflicting_plan: f.pl("SHAREPOINTSTANDARD"),
            conflicting_source: at(Source::Direct, e1),
        }]
    );
    let detail = describe_error(&f.table, &|_| "E3 users".to_string(), &err);
    assert_eq!(
        detail.message,
        "License assignment failed: SharePoint Online (Plan 2) (ENTERPRISEPACK from group \"E3 users\") and SharePoint Online (Plan 1) (STANDARDPACK assigned directly) are mutually exclusive."
    );

    // D3 (direct) lists it once too.
    let mut v = f.user(2);
    f.direct(&mut v, &[("STANDARDPACK", &["EXCHANGE_S_STANDARD"])]);
    let Err(DirectError::License(err)) = f.assign(&mut v, &f.add(&[("ENTERPRISEPACK", &[])]))
    else {
        panic!("ENTERPRISEPACK clashes with the SharePoint plan of STANDARDPACK")
    };
    assert_eq!(err.violations.len(), 1, "{:?}", err.violations);

    // Workplace Analytics and Intune are in both "Device" and "Other".
    let mut w = f.user(3);
    f.direct(&mut w, &[("EMS", &[])]);
    let change = f.add(&[
        ("WORKPLACE_ANALYTICS", &[]),
        ("ENTERPRISEPACK", &["TEAMS1"]),
    ]);
    let Err(DirectError::License(err)) = f.assign(&mut w, &change) else {
        panic!("Workplace Analytics clashes with Intune")
    };
    assert_eq!(
        err.violations,
        vec![Violation::MutuallyExclusive {
            plan: f.pl("WORKPLACE_ANALYTICS"),
            source: at(Source::Direct, f.p("WORKPLACE_ANALYTICS")),
            conflicting_plan: f.pl("INTUNE_A"),
            conflicting_source: at(Source::Direct, f.p("EMS")),
        }]
    );
}

#[test]
fn g1_a_pair_that_several_rules_imply_is_one_violation() {
    let f = Fx::with(&format!("{SCENARIO}{PAIR_TWICE}"));
    let change = f.add(&[
        ("STANDARDPACK", &["EXCHANGE_S_STANDARD"]),
        ("ENTERPRISEPACK", &["EXCHANGE_S_ENTERPRISE"]),
    ]);
    let err = change_group_licenses(&f.table, G, &[], &change).unwrap_err();
    let GroupLicenseError::License(error) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        error.violations,
        vec![Violation::MutuallyExclusive {
            plan: f.pl("SHAREPOINTSTANDARD"),
            source: at(Source::Group(G), f.p("STANDARDPACK")),
            conflicting_plan: f.pl("SHAREPOINTENTERPRISE"),
            conflicting_source: at(Source::Group(G), f.p("ENTERPRISEPACK")),
        }]
    );
}

#[test]
fn c4_dependency_counts_only_what_the_change_breaks() {
    // A new configuration of g that disables the plan another source depends on is refused
    // (as in S6), and the old configuration stays in force.
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    f.direct(&mut u, &[("WORKPLACE_ANALYTICS", &[])]);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &["EXCHANGE_S_ENTERPRISE"])]);
    let a = u
        .assignment(Source::Group(G), f.p("ENTERPRISEPACK"))
        .unwrap();
    assert_eq!(
        (a.state, a.error_code()),
        (ActiveWithError, Some(ErrorCode::DependencyViolation))
    );
    assert_eq!(a.applied, Some(DisabledPlans::NONE));
    assert_eq!(
        a.error.as_ref().unwrap().violations,
        vec![Violation::MissingPrerequisite {
            plan: f.pl("WORKPLACE_ANALYTICS"),
            source: at(Source::Direct, f.p("WORKPLACE_ANALYTICS")),
            missing: vec![f.pl("EXCHANGE_S_STANDARD"), f.pl("EXCHANGE_S_ENTERPRISE")],
        }]
    );
    assert!(
        u.enabled_plans(&f.table)
            .contains(f.pl("EXCHANGE_S_ENTERPRISE"))
    );

    // A plan already without its prerequisite before the change (the rules changed since) is
    // not blamed on an unrelated change.
    let loose = SCENARIO.replace(
        "prerequisite WORKPLACE_ANALYTICS requires { EXCHANGE_S_STANDARD, EXCHANGE_S_ENTERPRISE }",
        "",
    );
    let mut f = Fx::with(&loose);
    let mut u = f.user(1);
    f.direct(&mut u, &[("WORKPLACE_ANALYTICS", &[])]);
    let strict = compile(SCENARIO);
    let engine = Engine::new(&strict, c("US"));
    let change = f.add(&[("EMS", &[])]);
    engine.assign_direct(&mut u, &change, &mut f.seats).unwrap();
    set_group_intent(&mut u, G, &[f.spec("STANDARDPACK", &[])]);
    let out = engine.process_group(&mut u, G, &mut f.seats);
    assert!(out.applied && out.error.is_none());
}

#[test]
fn c5_count_lists_the_products_without_seats() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("EMS"), 0);
    f.seats.set_prepaid(f.p("WORKPLACE_ANALYTICS"), 0);
    let mut u = f.user(1);
    // ENTERPRISEPACK is held already (direct): it needs no new seat.
    f.seats.set_prepaid(f.p("ENTERPRISEPACK"), 1);
    f.direct(&mut u, &[("ENTERPRISEPACK", &[])]);
    f.join(
        &mut u,
        G,
        &[
            ("ENTERPRISEPACK", &[]),
            ("EMS", &[]),
            ("WORKPLACE_ANALYTICS", &[]),
        ],
    );
    let err = f.error(&u, Source::Group(G), "EMS");
    assert_eq!(
        err.violations,
        vec![Violation::NoSeat {
            products: vec![f.p("EMS"), f.p("WORKPLACE_ANALYTICS")]
        }]
    );
    assert_eq!(
        err.violations[0].products(),
        &[f.p("EMS"), f.p("WORKPLACE_ANALYTICS")]
    );
}

#[test]
fn c1_to_c5_run_in_order_and_every_violation_is_listed() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("ENTERPRISEPACK"), 0);
    let mut u = UserLicenses::new(UserId(1), Some(c("CN")));
    f.direct(
        &mut u,
        &[("STANDARDPACK", &["SHAREPOINTSTANDARD", "TEAMS1"])],
    );
    f.direct(&mut u, &[("WORKPLACE_ANALYTICS", &[])]);
    u.duplicate_proxy = Some(DuplicateProxy {
        address: "a@b".into(),
        other_user: UserId(9),
    });
    // The group's E3 carries Teams in CN (C2), conflicts on Exchange (C3) and has no seat (C5);
    // the add-on keeps a prerequisite, so no C4.
    f.join(&mut u, G, &[("ENTERPRISEPACK", &["SHAREPOINTENTERPRISE"])]);
    let err = f.error(&u, Source::Group(G), "ENTERPRISEPACK");
    let codes: Vec<_> = err.violations.iter().map(Violation::code).collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::UniquenessViolation,
            ErrorCode::ProhibitedInUsageLocationViolation,
            ErrorCode::MutuallyExclusiveViolation,
            ErrorCode::CountViolation,
        ]
    );
    assert_eq!(err.code(), ErrorCode::UniquenessViolation);
}

// ---------------------------------------------------------------------------------------------
// D — direct assignment

#[test]
fn d1_unknown_names_or_a_plan_outside_the_product_are_bad_user_input() {
    let mut f = Fx::new();
    let t = &f.table;
    let err = resolve_change(t, &[("NOPE", vec![])], &[]).unwrap_err();
    assert_eq!(err, InputError::UnknownProduct("NOPE".into()));
    let err = resolve_change(t, &[("EMS", vec!["NOPE"])], &[]).unwrap_err();
    assert_eq!(err, InputError::UnknownPlan("NOPE".into()));
    let err = resolve_change(t, &[("EMS", vec!["TEAMS1"])], &[]).unwrap_err();
    assert_eq!(
        err,
        InputError::PlanNotInProduct {
            plan: "TEAMS1".into(),
            product: "EMS".into()
        }
    );
    let err = resolve_change(t, &[("EMS", vec![]), ("EMS", vec![])], &[]).unwrap_err();
    assert_eq!(err, InputError::DuplicateProduct("EMS".into()));
    let err = resolve_change(t, &[("EMS", vec![])], &["EMS"]).unwrap_err();
    assert_eq!(err, InputError::AddedAndRemoved("EMS".into()));
    assert_eq!(err.api_code(), "BAD_USER_INPUT");
    let ok = resolve_change(t, &[("EMS", vec!["INTUNE_A", "INTUNE_A"])], &[]).unwrap();
    assert_eq!(ok.add[0].disabled.as_slice(), &[f.pl("INTUNE_A")]);
    // Ids from outside the table are refused the same way, and nothing changes.
    let mut u = f.user(1);
    let bogus = LicenseChange {
        add: vec![LicenseSpec::full(ProductId::new(999).unwrap())],
        remove: vec![],
    };
    let before = (u.clone(), f.seats.clone());
    let err = f.assign(&mut u, &bogus).unwrap_err();
    assert_eq!(err.api_code(), "BAD_USER_INPUT");
    assert_eq!((u, f.seats.clone()), before);
}

#[test]
fn d2_a_direct_add_needs_the_users_own_usage_location() {
    let mut f = Fx::new();
    let mut u = UserLicenses::new(UserId(1), None);
    let change = f.add(&[("EMS", &[])]);
    let err = f.assign(&mut u, &change).unwrap_err();
    assert_eq!(err, DirectError::UsageLocationRequired);
    assert_eq!(err.api_code(), "USAGE_LOCATION_REQUIRED");
    assert!(u.assignments.is_empty());
    // Removing does not need one.
    u.assignments
        .push(Assignment::direct(f.p("EMS"), DisabledPlans::NONE));
    f.seats.set_consumed(f.p("EMS"), 1);
    let change = f.remove(&["EMS"]);
    f.assign(&mut u, &change).unwrap();
    assert!(u.assignments.is_empty());
}

#[test]
fn d3_adds_and_removes_are_checked_and_applied_together() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.direct(&mut u, &[("STANDARDPACK", &[])]);
    // Swapping E1 for E3 in one call: no transient conflict.
    let swap = LicenseChange {
        add: vec![f.spec("ENTERPRISEPACK", &[])],
        remove: vec![f.p("STANDARDPACK")],
    };
    let out = f.assign(&mut u, &swap).unwrap();
    assert_eq!(
        (out.changed, out.seats_taken, out.seats_freed),
        (true, 1, 1)
    );
    assert_eq!(
        f.state(&u, Source::Direct, "ENTERPRISEPACK"),
        (Active, None)
    );
    assert!(!u.holds(f.p("STANDARDPACK")));
    // A failing call changes nothing, seats included, even its valid parts.
    f.seats.set_prepaid(f.p("EMS"), 0);
    let mixed = LicenseChange {
        add: vec![f.spec("EMS", &[])],
        remove: vec![f.p("ENTERPRISEPACK")],
    };
    let before = (u.clone(), f.seats.clone());
    let err = f.assign(&mut u, &mixed).unwrap_err();
    assert_eq!(err.api_code(), "COUNT_VIOLATION");
    assert_eq!((u, f.seats.clone()), before);
}

#[test]
fn d4_adding_a_product_assigned_directly_replaces_its_disabled_plans() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.direct(&mut u, &[("ENTERPRISEPACK", &["TEAMS1"])]);
    f.direct(&mut u, &[("ENTERPRISEPACK", &["SHAREPOINTENTERPRISE"])]);
    assert_eq!(u.assignments.len(), 1);
    assert_eq!(
        u.enabled_plans(&f.table),
        f.plans(&["EXCHANGE_S_ENTERPRISE", "TEAMS1"])
    );
    assert_eq!(f.consumed("ENTERPRISEPACK"), 1);
    // The same again changes nothing.
    let change = f.add(&[("ENTERPRISEPACK", &["SHAREPOINTENTERPRISE"])]);
    let out = f.assign(&mut u, &change).unwrap();
    assert!(!out.changed);
}

#[test]
fn d5_removing_a_license_only_inherited_from_a_group_is_bad_user_input() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.join(&mut u, G, &[("EMS", &[])]);
    let change = f.remove(&["EMS"]);
    let err = f.assign(&mut u, &change).unwrap_err();
    assert_eq!(
        err,
        DirectError::Input(InputError::NotAssignedDirectly("EMS".into()))
    );
    assert_eq!(err.api_code(), "BAD_USER_INPUT");
    assert!(u.holds(f.p("EMS")));
}

// ---------------------------------------------------------------------------------------------
// G — group license sets

#[test]
fn g1_a_group_set_with_exclusive_plans_is_refused() {
    let f = Fx::new();
    let change = f.add(&[("STANDARDPACK", &[]), ("ENTERPRISEPACK", &[])]);
    let err = change_group_licenses(&f.table, G, &[], &change).unwrap_err();
    assert_eq!(err.api_code(), "MUTUALLY_EXCLUSIVE_VIOLATION");
    let GroupLicenseError::License(error) = &err else {
        panic!()
    };
    assert_eq!(error.violations.len(), 2);
    assert_eq!(
        error.violations[0],
        Violation::MutuallyExclusive {
            plan: f.pl("EXCHANGE_S_STANDARD"),
            source: at(Source::Group(G), f.p("STANDARDPACK")),
            conflicting_plan: f.pl("EXCHANGE_S_ENTERPRISE"),
            conflicting_source: at(Source::Group(G), f.p("ENTERPRISEPACK")),
        }
    );
    let detail = describe_group_error(&f.table, &|_| "G".to_string(), error);
    assert!(
        detail
            .message
            .starts_with("License operation failed. The services")
    );
}

#[test]
fn g1_dependency_message_names_every_alternative_as_entra_does() {
    let f = Fx::new();
    let change = f.add(&[("WORKPLACE_ANALYTICS", &[])]);
    let GroupLicenseError::License(error) =
        change_group_licenses(&f.table, G, &[], &change).unwrap_err()
    else {
        panic!()
    };
    assert_eq!(error.code(), ErrorCode::DependencyViolation);
    let detail = describe_group_error(&f.table, &|_| "WA only".to_string(), &error);
    assert_eq!(
        detail.message,
        "License operation failed. Make sure that the group has necessary services before adding or removing a dependent service. The service Microsoft Workplace Analytics requires Exchange Online (Plan 1) or Exchange Online (Plan 2) to be enabled as well."
    );
    // Its prerequisite in the same group: accepted.
    let change = f.add(&[
        ("ENTERPRISEPACK", &["SHAREPOINTENTERPRISE", "TEAMS1"]),
        ("WORKPLACE_ANALYTICS", &[]),
    ]);
    let set = change_group_licenses(&f.table, G, &[], &change).unwrap();
    assert_eq!(set.len(), 2);
}

#[test]
fn g2_validated_set_is_returned_and_members_records_follow_it() {
    let mut f = Fx::new();
    let current = vec![f.spec("ENTERPRISEPACK", &[]), f.spec("EMS", &[])];
    let change = LicenseChange {
        add: vec![
            f.spec("WORKPLACE_ANALYTICS", &[]),
            f.spec("ENTERPRISEPACK", &["TEAMS1"]),
        ],
        remove: vec![f.p("EMS")],
    };
    let set = change_group_licenses(&f.table, G, &current, &change).unwrap();
    // Order kept, the changed product in place, the new one appended.
    assert_eq!(
        set,
        vec![
            f.spec("ENTERPRISEPACK", &["TEAMS1"]),
            f.spec("WORKPLACE_ANALYTICS", &[])
        ]
    );
    // A member: new products PENDING; changed and withdrawn ones keep their state.
    let mut u = f.user(1);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[]), ("EMS", &[])]);
    assert!(set_group_intent(&mut u, G, &set));
    assert_eq!(
        f.state(&u, Source::Group(G), "ENTERPRISEPACK"),
        (Active, None)
    );
    assert_eq!(f.state(&u, Source::Group(G), "EMS"), (Active, None));
    assert_eq!(
        f.state(&u, Source::Group(G), "WORKPLACE_ANALYTICS"),
        (Pending, None)
    );
    assert!(u.assignments.iter().all(Assignment::is_pending));
    assert!(
        !set_group_intent(&mut u, G, &set),
        "recording twice changes nothing"
    );
    f.process(&mut u, G);
    assert_eq!(u.assignments.len(), 2);
    assert!(
        u.assignments
            .iter()
            .all(|a| a.state == Active && !a.is_pending())
    );
}

#[test]
fn g3_adds_replace_and_removes_must_exist() {
    let f = Fx::new();
    let current = vec![f.spec("EMS", &[])];
    let err =
        change_group_licenses(&f.table, G, &current, &f.remove(&["ENTERPRISEPACK"])).unwrap_err();
    assert_eq!(
        err,
        GroupLicenseError::Input(InputError::NotAssignedToGroup("ENTERPRISEPACK".into()))
    );
    assert_eq!(err.api_code(), "BAD_USER_INPUT");
    let bad = f.add(&[("EMS", &[])]);
    let bad = LicenseChange {
        add: vec![LicenseSpec::new(bad.add[0].product, [f.pl("TEAMS1")])],
        remove: vec![],
    };
    assert!(matches!(
        change_group_licenses(&f.table, G, &current, &bad),
        Err(GroupLicenseError::Input(
            InputError::PlanNotInProduct { .. }
        ))
    ));
    let set =
        change_group_licenses(&f.table, G, &current, &f.add(&[("EMS", &["INTUNE_A"])])).unwrap();
    assert_eq!(set, vec![f.spec("EMS", &["INTUNE_A"])]);
}

#[test]
fn g4_a_group_whose_licenses_are_removed_leaves_nothing_behind() {
    // G4 itself (GROUP_HAS_LICENSES) is the store's; the engine's part: removing every license
    // gives an empty set, and processing clears every member's records from the group.
    let mut f = Fx::new();
    let set =
        change_group_licenses(&f.table, G, &[f.spec("EMS", &[])], &f.remove(&["EMS"])).unwrap();
    assert!(set.is_empty());
    let mut u = f.user(1);
    f.join(&mut u, G, &[("EMS", &[])]);
    set_group_intent(&mut u, G, &set);
    f.process(&mut u, G);
    assert!(u.assignments_from(Source::Group(G)).next().is_none());
    assert_eq!(f.consumed("EMS"), 0);
}

// ---------------------------------------------------------------------------------------------
// P — processing

#[test]
fn p1_a_batch_serves_members_in_the_order_given() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("EMS"), 2);
    let set = vec![f.spec("EMS", &[])];
    let mut users: Vec<UserLicenses> = [5, 3, 9].iter().map(|i| f.user(*i)).collect();
    for u in &mut users {
        set_group_intent(u, G, &set);
    }
    let mut seen = Vec::new();
    let engine = Engine::new(&f.table, f.default);
    let summary = engine.process_batch(G, users.iter_mut(), &mut f.seats, |u, out| {
        seen.push((u.id, out.error))
    });
    assert_eq!(
        seen,
        vec![
            (UserId(5), None),
            (UserId(3), None),
            (UserId(9), Some(ErrorCode::CountViolation))
        ]
    );
    assert_eq!(
        summary,
        BatchSummary {
            users: 3,
            changed_users: 3,
            users_with_errors: 1,
            seats_taken: 2,
            seats_freed: 0
        }
    );
}

#[test]
fn p2_all_or_nothing_and_applied_assignments_keep_their_last_configuration() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("EMS"), 0);
    let mut u = f.user(1);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    // The group changes E3's configuration and adds EMS, which has no seat.
    let out = f.join(&mut u, G, &[("ENTERPRISEPACK", &["TEAMS1"]), ("EMS", &[])]);
    assert!(!out.applied && out.changed);
    assert_eq!(out.error, Some(ErrorCode::CountViolation));
    let e3 = u
        .assignment(Source::Group(G), f.p("ENTERPRISEPACK"))
        .unwrap();
    assert_eq!(e3.state, ActiveWithError);
    assert_eq!(
        e3.applied,
        Some(DisabledPlans::NONE),
        "last applied configuration"
    );
    assert!(e3.is_pending());
    assert_eq!(
        f.state(&u, Source::Group(G), "EMS"),
        (Error, Some(ErrorCode::CountViolation))
    );
    assert!(u.enabled_plans(&f.table).contains(f.pl("TEAMS1")));
    // Seats bought, processing again: everything applies together.
    f.seats.set_prepaid(f.p("EMS"), 1);
    let out = f.process(&mut u, G);
    assert!(out.applied && out.error.is_none());
    assert_eq!((out.seats_taken, f.consumed("EMS")), (1, 1));
    assert!(!u.enabled_plans(&f.table).contains(f.pl("TEAMS1")));
    assert!(u.assignments.iter().all(|a| a.state == Active));
}

#[test]
fn p3_a_blocked_withdrawal_stays_applied_and_is_retried() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[]), ("EMS", &[])]);
    f.direct(&mut u, &[("WORKPLACE_ANALYTICS", &[])]);
    let out = f.leave(&mut u, G);
    // EMS goes; E3 carries the only Exchange and stays.
    assert_eq!((out.withdrawn, out.withdrawals_blocked), (1, 1));
    assert_eq!(out.error, Some(ErrorCode::DependencyViolation));
    assert!(!u.holds(f.p("EMS")));
    assert_eq!(f.consumed("EMS"), 0);
    let a = u
        .assignment(Source::Group(G), f.p("ENTERPRISEPACK"))
        .unwrap();
    assert_eq!((a.state, a.is_applied()), (ActiveWithError, true));
    assert!(a.withdrawal_pending());
    // Retried by every later processing, with the same outcome while nothing changed.
    let snapshot = u.clone();
    let out = f.process(&mut u, G);
    assert_eq!((out.changed, out.withdrawals_blocked), (false, 1));
    assert_eq!(u, snapshot);
}

#[test]
fn p3_a_withdrawal_is_retried_and_completes_when_unblocked() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    f.direct(&mut u, &[("WORKPLACE_ANALYTICS", &[])]);
    f.leave(&mut u, G);
    assert_eq!(
        f.state(&u, Source::Group(G), "ENTERPRISEPACK").0,
        ActiveWithError
    );
    // Another group brings Exchange Online (Plan 2) too: the withdrawal now completes.
    f.join(&mut u, H, &[("ENTERPRISEPACK", &["TEAMS1"])]);
    let out = f.process(&mut u, G);
    assert_eq!(
        (out.withdrawn, out.seats_freed),
        (1, 0),
        "still held through H"
    );
    assert!(u.assignments_from(Source::Group(G)).next().is_none());
    assert_eq!(f.consumed("ENTERPRISEPACK"), 1);
}

#[test]
fn p3_a_never_applied_assignment_is_simply_dropped() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("EMS"), 0);
    let mut u = f.user(1);
    f.join(&mut u, G, &[("EMS", &[])]);
    assert_eq!(f.state(&u, Source::Group(G), "EMS").0, Error);
    let out = f.leave(&mut u, G);
    assert_eq!((out.withdrawn, out.seats_freed, out.changed), (1, 0, true));
    assert!(u.assignments.is_empty());
}

#[test]
fn p3_a_product_swapped_in_a_group_is_applied_together() {
    // E1 → E3 in the group while a direct add-on depends on Exchange: withdrawing E1 alone
    // would break it and E3 alone would conflict with E1, but together they pass.
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.join(&mut u, G, &[("STANDARDPACK", &[])]);
    f.direct(&mut u, &[("WORKPLACE_ANALYTICS", &[])]);
    let out = f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    assert!(out.applied && out.error.is_none());
    assert_eq!((out.withdrawn, out.seats_taken, out.seats_freed), (1, 1, 1));
    assert!(!u.holds(f.p("STANDARDPACK")) && u.holds(f.p("ENTERPRISEPACK")));
    assert!(f.table.prerequisites_met(&u.enabled_plans(&f.table)));
}

#[test]
fn p4_revalidation_failure_takes_nothing_away_then_recovers() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.join(&mut u, G, &[("STANDARDPACK", &[]), ("EMS", &[])]);
    let enabled = u.enabled_plans(&f.table);
    // The usage location changes to CN: only the assignment carrying Teams fails.
    u.usage_location = Some(c("CN"));
    let out = f.process(&mut u, G);
    assert!(!out.applied && out.changed);
    assert_eq!(
        f.state(&u, Source::Group(G), "STANDARDPACK"),
        (
            ActiveWithError,
            Some(ErrorCode::ProhibitedInUsageLocationViolation)
        )
    );
    assert_eq!(f.state(&u, Source::Group(G), "EMS"), (Active, None));
    assert_eq!(u.enabled_plans(&f.table), enabled);
    // Rules change (a reload) so that E1 and EMS conflict: C3 on re-validation.
    let text = format!("{SCENARIO}\nconflict INTUNE_A with TEAMS1\n");
    let reloaded = compile(&text);
    u.usage_location = Some(c("US"));
    let engine = Engine::new(&reloaded, c("US"));
    engine.process_group(&mut u, G, &mut f.seats);
    assert_eq!(
        f.state(&u, Source::Group(G), "EMS").1,
        Some(ErrorCode::MutuallyExclusiveViolation)
    );
    assert_eq!(u.enabled_plans(&f.table), enabled);
    // A later pass that succeeds makes them ACTIVE again.
    let out = f.process(&mut u, G);
    assert!(out.changed && out.error.is_none());
    assert!(
        u.assignments
            .iter()
            .all(|a| a.state == Active && a.error.is_none())
    );
}

#[test]
fn p5_p6_process_user_covers_current_and_former_groups_in_order() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("EMS"), 1);
    let mut u = f.user(1);
    set_group_intent(&mut u, H, &[f.spec("EMS", &[])]);
    set_group_intent(&mut u, G, &[f.spec("EMS", &["AAD_PREMIUM"])]);
    f.join(&mut u, GroupId(30), &[("ENTERPRISEPACK", &[])]);
    f.direct(&mut u, &[("WORKPLACE_ANALYTICS", &[])]);
    withdraw_group(&mut u, GroupId(30)); // a former group, blocked by the add-on
    let engine = Engine::new(&f.table, f.default);
    let out = engine.process_user(&mut u, &[G, H], &mut f.seats);
    assert!(out.had_assignments && out.changed);
    assert_eq!(out.error, Some(ErrorCode::DependencyViolation));
    assert_eq!(f.state(&u, Source::Group(G), "EMS"), (Active, None));
    assert_eq!(
        f.state(&u, Source::Group(H), "EMS"),
        (Active, None),
        "held already: no seat"
    );
    assert_eq!(f.consumed("EMS"), 1);
    assert_eq!(
        f.state(&u, Source::Group(GroupId(30)), "ENTERPRISEPACK"),
        (ActiveWithError, Some(ErrorCode::DependencyViolation))
    );
}

#[test]
fn p6_processing_never_changes_direct_assignments() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.direct(&mut u, &[("STANDARDPACK", &[])]);
    let direct = u.assignments[0].clone();
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    u.usage_location = Some(c("CN"));
    f.process(&mut u, G);
    withdraw_group(&mut u, G);
    let engine = Engine::new(&f.table, f.default);
    engine.process_user(&mut u, &[G], &mut f.seats);
    assert_eq!(u.assignments, vec![direct]);
}

#[test]
fn p7_deleting_a_user_frees_every_seat_without_checks() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[]), ("EMS", &[])]);
    f.direct(
        &mut u,
        &[
            ("WORKPLACE_ANALYTICS", &[]),
            ("ENTERPRISEPACK", &["TEAMS1"]),
        ],
    );
    f.seats.set_prepaid(f.p("STANDARDPACK"), 0);
    f.join(&mut u, H, &[("STANDARDPACK", &[])]); // ERROR: holds nothing
    let out = delete_user(&mut u, &mut f.seats);
    assert_eq!(
        out,
        DeleteOutcome {
            assignments_removed: 5,
            seats_freed: 3
        }
    );
    assert!(u.assignments.is_empty());
    for p in [
        "ENTERPRISEPACK",
        "EMS",
        "WORKPLACE_ANALYTICS",
        "STANDARDPACK",
    ] {
        assert_eq!(f.consumed(p), 0, "{p}");
    }
}

#[test]
fn p8_processing_twice_equals_processing_once() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("EMS"), 0);
    let mut u = f.user(1);
    f.direct(
        &mut u,
        &[("STANDARDPACK", &[]), ("WORKPLACE_ANALYTICS", &[])],
    );
    set_group_intent(&mut u, G, &[f.spec("ENTERPRISEPACK", &[])]);
    set_group_intent(&mut u, H, &[f.spec("EMS", &[])]);
    let engine = Engine::new(&f.table, f.default);
    for group in [G, H] {
        engine.process_group(&mut u, group, &mut f.seats);
        let once = (u.clone(), f.seats.clone());
        let out = engine.process_group(&mut u, group, &mut f.seats);
        assert!(!out.changed);
        assert_eq!((u.clone(), f.seats.clone()), once);
    }
}

#[test]
fn p9_a_batch_reports_how_many_members_it_processed() {
    // P9's states are the store's; the engine reports the counts progress is made of.
    let mut f = Fx::new();
    let set = vec![f.spec("EMS", &[])];
    let mut users: Vec<UserLicenses> = (0..4).map(|i| f.user(i)).collect();
    for u in &mut users[..3] {
        set_group_intent(u, G, &set);
    }
    let engine = Engine::new(&f.table, f.default);
    let mut processed = 0;
    let summary = engine.process_batch(G, users.iter_mut(), &mut f.seats, |_, out| {
        processed += 1;
        assert_eq!(out.had_assignments, out.changed);
    });
    assert_eq!((processed, summary.users, summary.changed_users), (4, 4, 3));
}

// ---------------------------------------------------------------------------------------------
// Q — what dashboards read

#[test]
fn q1_errors_from_a_group_include_former_members_with_a_blocked_withdrawal() {
    let mut f = Fx::new();
    let mut u = f.user(1);
    f.join(&mut u, G, &[("ENTERPRISEPACK", &[])]);
    f.direct(&mut u, &[("WORKPLACE_ANALYTICS", &[])]);
    assert!(!u.has_errors_from(G));
    f.leave(&mut u, G);
    assert!(u.has_errors_from(G) && u.has_errors());
    assert!(!u.has_errors_from(H));
}

#[test]
fn q4_resolutions_name_what_the_admin_can_do() {
    let f = Fx::new();
    let names = |g: GroupId| format!("Group {}", g.0);
    let words = |e: &LicenseError| describe_error(&f.table, &names, e);
    let e1 = f.p("STANDARDPACK");
    let e3 = f.p("ENTERPRISEPACK");
    // C3: disable on the direct license or in the group, or remove the redundant license.
    let c3 = LicenseError {
        violations: vec![Violation::MutuallyExclusive {
            plan: f.pl("EXCHANGE_S_ENTERPRISE"),
            source: at(Source::Group(G), e3),
            conflicting_plan: f.pl("EXCHANGE_S_STANDARD"),
            conflicting_source: at(Source::Direct, e1),
        }],
    };
    assert_eq!(
        words(&c3).resolutions,
        vec![
            "Disable Exchange Online (Plan 1) on the STANDARDPACK license assigned directly to the user.",
            "Or disable Exchange Online (Plan 2) on ENTERPRISEPACK in group \"Group 10\".",
            "Or remove STANDARDPACK assigned directly if ENTERPRISEPACK makes it redundant.",
        ]
    );
    assert_eq!(
        words(&c3).message,
        "License assignment failed: Exchange Online (Plan 2) (ENTERPRISEPACK from group \"Group 10\") and Exchange Online (Plan 1) (STANDARDPACK assigned directly) are mutually exclusive."
    );
    // C5: buy or free seats.
    let c5 = LicenseError {
        violations: vec![Violation::NoSeat { products: vec![e3] }],
    };
    assert_eq!(
        words(&c5).resolutions,
        vec![
            "Buy more seats of Office 365 E3 (ENTERPRISEPACK), or free seats by removing it from users who no longer need it, then reprocess."
        ]
    );
    // C2: a supported usage location. C1: fix the duplicate address. C4: keep the
    // prerequisite through another source.
    let more = LicenseError {
        violations: vec![
            Violation::DuplicateProxyAddress {
                address: "smtp:x@contoso.com".into(),
                other_user: UserId(7),
            },
            Violation::ProhibitedInLocation {
                plans: vec![f.pl("TEAMS1")],
                location: c("CN"),
                inherited: false,
            },
            Violation::MissingPrerequisite {
                plan: f.pl("WORKPLACE_ANALYTICS"),
                source: at(Source::Direct, f.p("WORKPLACE_ANALYTICS")),
                missing: vec![f.pl("EXCHANGE_S_STANDARD"), f.pl("EXCHANGE_S_ENTERPRISE")],
            },
        ],
    };
    let detail = words(&more);
    assert_eq!(detail.violations.len(), 3);
    assert!(
        detail.message.ends_with("(and 2 more problems)."),
        "{}",
        detail.message
    );
    assert_eq!(
        detail.resolutions,
        vec![
            "Fix the duplicate proxy address smtp:x@contoso.com: remove or change it on this user or on user 7, then reprocess the user.",
            "Set the user's usage location to a country where Microsoft Teams is available (it is CN now), then reprocess the user.",
            "Or disable Microsoft Teams on the license that includes it.",
            "Keep Exchange Online (Plan 1) or Exchange Online (Plan 2) enabled through another source (a direct license or another group) for Microsoft Workplace Analytics, then reprocess.",
            "Or first remove Microsoft Workplace Analytics (WORKPLACE_ANALYTICS assigned directly).",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Persistence of decisions

#[test]
fn unknown_product_ids_in_records_never_panic() {
    let mut f = Fx::new();
    let ghost = ProductId::new(500).unwrap();
    let mut u = f.user(1);
    u.assignments
        .push(Assignment::pending(G, ghost, DisabledPlans::NONE));
    let out = f.process(&mut u, G);
    // No seat can exist for it: COUNT_VIOLATION, and nothing panics.
    assert_eq!(out.error, Some(ErrorCode::CountViolation));
    let error = u.assignments[0].error.clone().unwrap();
    let detail = describe_error(&f.table, &|_| String::new(), &error);
    assert!(
        detail.message.contains("product #500"),
        "{}",
        detail.message
    );
    u.assignments
        .push(Assignment::direct(ghost, DisabledPlans::NONE));
    assert_eq!(u.enabled_plans(&f.table), PlanSet::EMPTY);
    assert_eq!(delete_user(&mut u, &mut f.seats).seats_freed, 0);
}

#[test]
fn error_code_all_lists_every_code_once() {
    // A new code fails to compile here until it is placed in `ALL`.
    let position = |code: ErrorCode| match code {
        ErrorCode::CountViolation => 0,
        ErrorCode::MutuallyExclusiveViolation => 1,
        ErrorCode::DependencyViolation => 2,
        ErrorCode::ProhibitedInUsageLocationViolation => 3,
        ErrorCode::UniquenessViolation => 4,
        ErrorCode::Other => 5,
    };
    for (i, code) in ErrorCode::ALL.iter().enumerate() {
        assert_eq!(position(*code), i);
    }
}

// ---- W: previews; M: redundant direct licenses ------------------------------------------------

#[test]
fn w1_w5_a_preview_takes_processings_steps_and_tells_each_outcome() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("ENTERPRISEPACK"), 1);
    let engine = Engine::new(&f.table, f.default);
    let set = vec![f.spec("ENTERPRISEPACK", &[])];
    let mut users: Vec<UserLicenses> = (1..=3).map(|id| f.user(id)).collect();
    // User 3 already has what the group gives: a reprocess leaves it as it is.
    set_group_intent(&mut users[2], G, &set);
    engine.process_group(&mut users[2], G, &mut f.seats);
    let mut seats = f.seats.clone();
    let mut preview = preview::Preview::new(Source::Group(G), &seats);
    let order = users.iter_mut().rev().map(|u| (u, true));
    engine.preview_members(&mut preview, G, &set, order, &mut seats);
    preview.finish(&seats);
    let outcomes: Vec<(i64, preview::Outcome, Option<ErrorCode>)> = preview
        .entries()
        .iter()
        .map(|e| (e.user.0, e.outcome, e.error))
        .collect();
    use preview::Outcome::{Error as Failed, Unchanged};
    assert_eq!(
        outcomes,
        [
            (1, Failed, Some(ErrorCode::CountViolation)),
            (2, Failed, Some(ErrorCode::CountViolation)),
            (3, Unchanged, None),
        ]
    );
    // The two failing users share one list of assignments afterwards.
    let [a, b, _] = preview.entries() else {
        panic!("three entries");
    };
    assert!(std::ptr::eq(preview.after(a), preview.after(b)));
    let seat = preview.seat_changes(&f.table);
    assert_eq!(seat.len(), 1);
    assert_eq!(
        (seat[0].consumed, seat[0].consumed_after, seat[0].short),
        (1, 1, 2)
    );
    assert_eq!(preview.error_counts(), [(ErrorCode::CountViolation, 2)]);
}

#[test]
fn w5_a_withdrawal_blocked_by_a_prerequisite_is_blocked_then_removed() {
    let mut f = Fx::new();
    let mut ann = f.user(1);
    f.join(&mut ann, G, &[("ENTERPRISEPACK", &[])]);
    f.direct(&mut ann, &[("WORKPLACE_ANALYTICS", &[])]);
    let tell = |f: &Fx, mut user: UserLicenses| {
        let engine = Engine::new(&f.table, f.default);
        let mut seats = f.seats.clone();
        let mut preview = preview::Preview::new(Source::Group(G), &seats);
        engine.preview_members(&mut preview, G, &[], [(&mut user, false)], &mut seats);
        preview.finish(&seats);
        preview.entries()[0].outcome
    };
    assert_eq!(tell(&f, ann.clone()), preview::Outcome::Blocked);
    let change = f.remove(&["WORKPLACE_ANALYTICS"]);
    f.assign(&mut ann, &change).unwrap();
    assert_eq!(tell(&f, ann), preview::Outcome::Removed);
}

#[test]
fn m1_a_direct_license_covered_by_active_group_assignments_together() {
    let mut f = Fx::new();
    let e3 = f.p("ENTERPRISEPACK");
    let mut ann = f.user(1);
    f.direct(&mut ann, &[("ENTERPRISEPACK", &[])]);
    assert_eq!(
        redundant::covering_groups(&f.table, &ann, e3),
        Err(redundant::NotRedundant::NoGroup)
    );
    f.join(&mut ann, G, &[("ENTERPRISEPACK", &["TEAMS1"])]);
    assert_eq!(
        redundant::covering_groups(&f.table, &ann, e3),
        Err(redundant::NotRedundant::PlansNotCovered {
            groups: vec![G],
            missing: vec![f.pl("TEAMS1")],
        })
    );
    // Teams from a second group: the two together cover the direct license.
    f.join(
        &mut ann,
        H,
        &[("ENTERPRISEPACK", &["SHAREPOINTENTERPRISE"])],
    );
    assert_eq!(
        redundant::covering_groups(&f.table, &ann, e3),
        Ok(vec![G, H])
    );
    assert_eq!(
        redundant::redundant_direct(&f.table, &ann),
        [(e3, vec![G, H])]
    );
    assert_eq!(
        redundant::covering_groups(&f.table, &ann, f.p("EMS")),
        Err(redundant::NotRedundant::NotDirect)
    );
}

#[test]
fn w5_an_error_listing_the_same_products_in_another_order_is_unchanged() {
    let mut f = Fx::new();
    f.seats.set_prepaid(f.p("ENTERPRISEPACK"), 0);
    f.seats.set_prepaid(f.p("WORKPLACE_ANALYTICS"), 0);
    let mut ann = f.user(1);
    f.join(
        &mut ann,
        G,
        &[("ENTERPRISEPACK", &[]), ("WORKPLACE_ANALYTICS", &[])],
    );
    assert_eq!(
        f.state(&ann, Source::Group(G), "ENTERPRISEPACK").1,
        Some(ErrorCode::CountViolation)
    );
    // The group's products in the other order (a product given again goes last), and the
    // user's records as the store reads them back, in that order: the same seats are short,
    // said in that order.
    ann.assignments.reverse();
    let set = vec![
        f.spec("WORKPLACE_ANALYTICS", &[]),
        f.spec("ENTERPRISEPACK", &[]),
    ];
    let engine = Engine::new(&f.table, f.default);
    let mut seats = f.seats.clone();
    let mut preview = preview::Preview::new(Source::Group(G), &seats);
    engine.preview_members(&mut preview, G, &set, [(&mut ann, true)], &mut seats);
    preview.finish(&seats);
    assert_eq!(preview.entries()[0].outcome, preview::Outcome::Unchanged);
}
