//! The seed scenarios S1–S7 (and the engine's part of S8) played at engine level, through the
//! public API only, with every outcome of the scenario text checked. Rule ids refer to
//! spec/licensing.md, scenarios to scenarios/seed-scenarios.md.

mod common;

use common::Tenant;
use group_licensing::engine::{
    AssignmentState::{Active, ActiveWithError, Error, Pending},
    DirectError, ErrorCode, GroupLicenseError, Source, Violation, describe_error,
    describe_group_error,
};

fn direct_source(t: &Tenant, product: &str) -> group_licensing::engine::SourceRef {
    group_licensing::engine::SourceRef {
        source: Source::Direct,
        product: t.product(product),
    }
}

#[test]
fn s1_not_enough_licenses_then_reprocess() {
    let mut t = Tenant::scenario();
    t.set_seats("ENTERPRISEPACK", 2);
    let sales = t.create_group("Sales");
    t.assign_group_license(sales, &t.add(&[("ENTERPRISEPACK", &[])]))
        .unwrap();
    let ann = t.create_user("ann", Some("US"));
    let bob = t.create_user("bob", Some("US"));
    let cat = t.create_user("cat", Some("US"));
    for u in [ann, bob, cat] {
        t.join(sales, u);
    }
    // P1: first joined, first served.
    assert_eq!(t.state(ann, sales, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(t.state(bob, sales, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(
        t.state(cat, sales, "ENTERPRISEPACK"),
        (Error, Some(ErrorCode::CountViolation))
    );
    assert_eq!(
        t.error(cat, sales, "ENTERPRISEPACK").violations,
        vec![Violation::NoSeat {
            products: vec![t.product("ENTERPRISEPACK")]
        }]
    );
    let e3 = t.product("ENTERPRISEPACK");
    assert_eq!(
        (
            t.seats.prepaid(e3),
            t.seats.consumed(e3),
            t.seats.available(e3)
        ),
        (2, 2, 0)
    );
    // Sales: hasMembersWithLicenseErrors, one member in error (Q1).
    let in_error: Vec<_> = t.groups[&sales]
        .members
        .iter()
        .filter(|u| t.user(**u).has_errors_from(sales))
        .collect();
    assert_eq!(in_error, vec![&cat]);

    // Seats raised to 3: nothing is automatic (P5).
    t.set_seats("ENTERPRISEPACK", 3);
    assert_eq!(
        t.state(cat, sales, "ENTERPRISEPACK"),
        (Error, Some(ErrorCode::CountViolation))
    );
    t.reprocess_group(sales);
    assert_eq!(t.state(cat, sales, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(t.consumed("ENTERPRISEPACK"), 3);
    assert!(
        t.groups[&sales]
            .members
            .iter()
            .all(|u| !t.user(*u).has_errors_from(sales))
    );
}

#[test]
fn s1b_direct_and_group_use_one_seat() {
    let mut t = Tenant::scenario();
    t.set_seats("ENTERPRISEPACK", 2);
    let sales = t.create_group("Sales");
    t.assign_group_license(sales, &t.add(&[("ENTERPRISEPACK", &[])]))
        .unwrap();
    let ann = t.create_user("ann", Some("US"));
    let bob = t.create_user("bob", Some("US"));
    let cat = t.create_user("cat", Some("US"));
    t.assign_direct(ann, &t.add(&[("ENTERPRISEPACK", &[])]))
        .unwrap();
    for u in [ann, bob, cat] {
        t.join(sales, u);
    }
    // L1: ann still uses one seat.
    assert_eq!(t.state(ann, sales, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(t.state(bob, sales, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(
        t.state(cat, sales, "ENTERPRISEPACK"),
        (Error, Some(ErrorCode::CountViolation))
    );
    assert_eq!(t.consumed("ENTERPRISEPACK"), 2);
    // ann has two assignment states for ENTERPRISEPACK.
    let e3 = t.product("ENTERPRISEPACK");
    let states: Vec<_> = t
        .user(ann)
        .assignments
        .iter()
        .filter(|a| a.product == e3)
        .map(|a| (a.source, a.state))
        .collect();
    assert_eq!(
        states,
        vec![(Source::Direct, Active), (Source::Group(sales), Active)]
    );
    // Removing the direct license frees no seat: she still holds it from Sales.
    let out = t
        .assign_direct(ann, &t.remove(&["ENTERPRISEPACK"]))
        .unwrap();
    assert_eq!(out.seats_freed, 0);
    assert!(t.user(ann).holds(e3));
    assert_eq!(t.consumed("ENTERPRISEPACK"), 2);
}

fn s2_setup() -> (
    Tenant,
    group_licensing::engine::UserId,
    group_licensing::engine::GroupId,
) {
    let mut t = Tenant::scenario();
    t.set_seats("STANDARDPACK", 10);
    t.set_seats("ENTERPRISEPACK", 10);
    let dan = t.create_user("dan", Some("US"));
    t.assign_direct(dan, &t.add(&[("STANDARDPACK", &[])]))
        .unwrap();
    let e3users = t.create_group("E3 users");
    t.assign_group_license(e3users, &t.add(&[("ENTERPRISEPACK", &[])]))
        .unwrap();
    t.join(e3users, dan);
    (t, dan, e3users)
}

#[test]
fn s2_conflicting_service_plans() {
    let (t, dan, e3users) = s2_setup();
    assert_eq!(
        t.state(dan, e3users, "ENTERPRISEPACK"),
        (Error, Some(ErrorCode::MutuallyExclusiveViolation))
    );
    let error = t.error(dan, e3users, "ENTERPRISEPACK");
    let from_group = group_licensing::engine::SourceRef {
        source: Source::Group(e3users),
        product: t.product("ENTERPRISEPACK"),
    };
    // Both pairs, the other plans from STANDARDPACK assigned directly.
    assert_eq!(
        error.violations,
        vec![
            Violation::MutuallyExclusive {
                plan: t.plan("EXCHANGE_S_ENTERPRISE"),
                source: from_group,
                conflicting_plan: t.plan("EXCHANGE_S_STANDARD"),
                conflicting_source: direct_source(&t, "STANDARDPACK"),
            },
            Violation::MutuallyExclusive {
                plan: t.plan("SHAREPOINTENTERPRISE"),
                source: from_group,
                conflicting_plan: t.plan("SHAREPOINTSTANDARD"),
                conflicting_source: direct_source(&t, "STANDARDPACK"),
            },
        ]
    );
    let names = |g| t.group_name(g);
    let detail = describe_error(&t.table, &names, &error);
    assert!(
        detail.violations[0].contains("Exchange Online (Plan 1) (STANDARDPACK assigned directly)"),
        "{detail:#?}"
    );
    assert!(
        detail.violations[1]
            .contains("SharePoint Online (Plan 1) (STANDARDPACK assigned directly)")
    );
    assert!(detail.violations[0].contains("ENTERPRISEPACK from group \"E3 users\""));
    // Q4: disable on the direct license, or in the group, or remove the redundant license.
    assert!(detail.resolutions.iter().any(|r| r
        == "Disable Exchange Online (Plan 1) on the STANDARDPACK license assigned directly to the user."));
    assert!(detail.resolutions.iter().any(
        |r| r == "Or disable Exchange Online (Plan 2) on ENTERPRISEPACK in group \"E3 users\"."
    ));
    assert!(
        detail
            .resolutions
            .iter()
            .any(|r| r.contains("Or remove STANDARDPACK assigned directly"))
    );
    // No ENTERPRISEPACK seat is used for dan.
    assert_eq!(t.consumed("ENTERPRISEPACK"), 0);
    assert!(!t.user(dan).holds(t.product("ENTERPRISEPACK")));
}

#[test]
fn s2_fix1_disable_conflicting_plans_on_the_direct_license() {
    let (mut t, dan, e3users) = s2_setup();
    t.assign_direct(
        dan,
        &t.add(&[(
            "STANDARDPACK",
            &["EXCHANGE_S_STANDARD", "SHAREPOINTSTANDARD"],
        )]),
    )
    .unwrap();
    // Nothing automatic until reprocessGroup.
    assert_eq!(t.state(dan, e3users, "ENTERPRISEPACK").0, Error);
    t.reprocess_group(e3users);
    assert_eq!(t.state(dan, e3users, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(t.consumed("ENTERPRISEPACK"), 1);
}

#[test]
fn s2_fix2_disable_conflicting_plans_in_the_group() {
    let (mut t, dan, e3users) = s2_setup();
    t.assign_group_license(
        e3users,
        &t.add(&[(
            "ENTERPRISEPACK",
            &["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE"],
        )]),
    )
    .unwrap();
    // A changed license set processes every member (P5): no reprocess needed.
    assert_eq!(t.state(dan, e3users, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(t.consumed("ENTERPRISEPACK"), 1);
}

#[test]
fn s2_fix3_remove_the_direct_license() {
    let (mut t, dan, e3users) = s2_setup();
    t.assign_direct(dan, &t.remove(&["STANDARDPACK"])).unwrap();
    assert_eq!(t.consumed("STANDARDPACK"), 0);
    t.reprocess_user(dan);
    assert_eq!(t.state(dan, e3users, "ENTERPRISEPACK"), (Active, None));
}

#[test]
fn s3_several_products_all_or_nothing() {
    let mut t = Tenant::scenario();
    t.set_seats("ENTERPRISEPACK", 10);
    t.set_seats("EMS", 1);
    let full = t.create_group("Full");
    t.assign_group_license(full, &t.add(&[("ENTERPRISEPACK", &[]), ("EMS", &[])]))
        .unwrap();
    let eve = t.create_user("eve", Some("US"));
    let fay = t.create_user("fay", Some("US"));
    t.join(full, eve);
    t.join(full, fay);
    assert_eq!(t.state(eve, full, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(t.state(eve, full, "EMS"), (Active, None));
    let count = (Error, Some(ErrorCode::CountViolation));
    assert_eq!(t.state(fay, full, "ENTERPRISEPACK"), count);
    assert_eq!(t.state(fay, full, "EMS"), count);
    // EMS has no seat, so she gets no ENTERPRISEPACK either.
    assert_eq!(
        t.error(fay, full, "ENTERPRISEPACK").violations,
        vec![Violation::NoSeat {
            products: vec![t.product("EMS")]
        }]
    );
    assert_eq!(t.consumed("ENTERPRISEPACK"), 1);
    assert_eq!(t.consumed("EMS"), 1);
}

#[test]
fn s4_usage_location() {
    let mut t = Tenant::scenario();
    t.default_location = common::country("CN");
    t.set_seats("STANDARDPACK", 10);
    let teams = t.create_group("Teams");
    t.assign_group_license(teams, &t.add(&[("STANDARDPACK", &[])]))
        .unwrap();
    let gus = t.create_user("gus", None);
    t.join(teams, gus);
    assert_eq!(
        t.state(gus, teams, "STANDARDPACK"),
        (Error, Some(ErrorCode::ProhibitedInUsageLocationViolation))
    );
    // Location CN inherited from the directory (L4).
    assert_eq!(
        t.error(gus, teams, "STANDARDPACK").violations,
        vec![Violation::ProhibitedInLocation {
            plans: vec![t.plan("TEAMS1")],
            location: common::country("CN"),
            inherited: true,
        }]
    );
    let names = |g| t.group_name(g);
    let detail = describe_error(&t.table, &names, &t.error(gus, teams, "STANDARDPACK"));
    assert!(
        detail
            .message
            .contains("Microsoft Teams is not available in CN"),
        "{detail:#?}"
    );
    assert!(detail.message.contains("directory's default"));
    assert_eq!(
        detail.resolutions[0],
        "Set a usage location on the user where Microsoft Teams is available (the user has none, so the directory's default CN applies), then reprocess the user."
    );
    assert_eq!(t.consumed("STANDARDPACK"), 0);

    // Setting gus's usage location processes him again (P5).
    t.set_location(gus, Some("US"));
    assert_eq!(t.state(gus, teams, "STANDARDPACK"), (Active, None));
    assert_eq!(t.consumed("STANDARDPACK"), 1);

    // D2: no usage location, a direct license: USAGE_LOCATION_REQUIRED, nothing changes.
    let nul = t.create_user("nul", None);
    let before = t.clone();
    let err = t
        .assign_direct(nul, &t.add(&[("STANDARDPACK", &[])]))
        .unwrap_err();
    assert_eq!(err, DirectError::UsageLocationRequired);
    assert_eq!(err.api_code(), "USAGE_LOCATION_REQUIRED");
    assert_eq!(t, before);
}

#[test]
fn s5_add_on_with_its_prerequisite_in_the_same_group() {
    let mut t = Tenant::scenario();
    for p in ["ENTERPRISEPACK", "WORKPLACE_ANALYTICS"] {
        t.set_seats(p, 10);
    }
    // "WA only": refused with Entra's exact message; the group's licenses are unchanged (G1).
    let wa_only = t.create_group("WA only");
    let err = t
        .assign_group_license(wa_only, &t.add(&[("WORKPLACE_ANALYTICS", &[])]))
        .unwrap_err();
    assert_eq!(err.api_code(), "DEPENDENCY_VIOLATION");
    let GroupLicenseError::License(error) = &err else {
        panic!("{err:?}")
    };
    let names = |g| t.group_name(g);
    assert_eq!(
        describe_group_error(&t.table, &names, error).message,
        "License operation failed. Make sure that the group has necessary services before adding or removing a dependent service. The service Microsoft Workplace Analytics requires Exchange Online (Plan 1) or Exchange Online (Plan 2) to be enabled as well."
    );
    assert!(t.groups[&wa_only].licenses.is_empty());

    // "WA": ENTERPRISEPACK with only EXCHANGE_S_ENTERPRISE enabled, plus WORKPLACE_ANALYTICS.
    let wa = t.create_group("WA");
    t.assign_group_license(
        wa,
        &t.add(&[
            ("ENTERPRISEPACK", &["SHAREPOINTENTERPRISE", "TEAMS1"]),
            ("WORKPLACE_ANALYTICS", &[]),
        ]),
    )
    .unwrap();
    let e3_full = t.create_group("E3 full");
    t.assign_group_license(e3_full, &t.add(&[("ENTERPRISEPACK", &[])]))
        .unwrap();
    let hal = t.create_user("hal", Some("US"));
    t.join(wa, hal);
    t.join(e3_full, hal);
    for (g, p) in [
        (wa, "ENTERPRISEPACK"),
        (wa, "WORKPLACE_ANALYTICS"),
        (e3_full, "ENTERPRISEPACK"),
    ] {
        assert_eq!(t.state(hal, g, p), (Active, None));
    }
    assert_eq!(t.consumed("ENTERPRISEPACK"), 1);
    assert_eq!(t.consumed("WORKPLACE_ANALYTICS"), 1);
    // L2: the union, all three plans.
    assert_eq!(
        t.user(hal)
            .enabled_plans_of(&t.table, t.product("ENTERPRISEPACK")),
        t.plans(&["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"])
    );

    // Removing EXCHANGE_S_ENTERPRISE from "WA" while it has WORKPLACE_ANALYTICS fails (G1).
    let before = t.groups[&wa].licenses.clone();
    let err = t
        .assign_group_license(
            wa,
            &t.add(&[(
                "ENTERPRISEPACK",
                &["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"],
            )]),
        )
        .unwrap_err();
    assert_eq!(err.api_code(), "DEPENDENCY_VIOLATION");
    assert_eq!(t.groups[&wa].licenses, before);
}

#[test]
fn s6_other_products_depend_on_this_license() {
    let mut t = Tenant::scenario();
    for p in ["ENTERPRISEPACK", "WORKPLACE_ANALYTICS"] {
        t.set_seats(p, 10);
    }
    let e3_full = t.create_group("E3 full");
    t.assign_group_license(e3_full, &t.add(&[("ENTERPRISEPACK", &[])]))
        .unwrap();
    let ivy = t.create_user("ivy", Some("US"));
    t.join(e3_full, ivy);
    t.assign_direct(ivy, &t.add(&[("WORKPLACE_ANALYTICS", &[])]))
        .unwrap();

    // Leaving "E3 full": the withdrawal fails (P3).
    t.leave(e3_full, ivy);
    let a = t.assignment(ivy, Source::Group(e3_full), "ENTERPRISEPACK");
    assert_eq!(
        (a.state, a.error_code()),
        (ActiveWithError, Some(ErrorCode::DependencyViolation))
    );
    assert!(a.withdrawal_pending());
    assert_eq!(
        a.error.as_ref().unwrap().violations,
        vec![Violation::MissingPrerequisite {
            plan: t.plan("WORKPLACE_ANALYTICS"),
            source: direct_source(&t, "WORKPLACE_ANALYTICS"),
            missing: vec![
                t.plan("EXCHANGE_S_STANDARD"),
                t.plan("EXCHANGE_S_ENTERPRISE")
            ],
        }]
    );
    let names = |g| t.group_name(g);
    let detail = describe_error(&t.table, &names, a.error.as_ref().unwrap());
    assert!(detail.resolutions[0].starts_with(
        "Keep Exchange Online (Plan 1) or Exchange Online (Plan 2) enabled through another source"
    ));
    assert!(t.user(ivy).holds(t.product("ENTERPRISEPACK")));
    assert_eq!(t.consumed("ENTERPRISEPACK"), 1);

    // Until the admin acts, nothing changes; she is still listed in error for "E3 full" (Q1).
    let snapshot = t.clone();
    t.reprocess_user(ivy);
    t.reprocess_group(e3_full);
    assert_eq!(t, snapshot);
    assert!(!t.groups[&e3_full].members.contains(&ivy));
    assert!(t.user(ivy).has_errors_from(e3_full));

    // Removing her direct WORKPLACE_ANALYTICS, then reprocessUser: the withdrawal completes.
    t.assign_direct(ivy, &t.remove(&["WORKPLACE_ANALYTICS"]))
        .unwrap();
    t.reprocess_user(ivy);
    assert!(t.user(ivy).assignments.is_empty());
    assert!(!t.user(ivy).holds(t.product("ENTERPRISEPACK")));
    assert_eq!(t.consumed("ENTERPRISEPACK"), 0);
    assert!(!t.user(ivy).has_errors_from(e3_full));
}

#[test]
fn s7_duplicate_proxy_addresses() {
    let mut t = Tenant::scenario();
    t.set_seats("ENTERPRISEPACK", 10);
    let jon = t.create_user("jon", Some("US"));
    let kim = t.create_user("kim", Some("US"));
    t.set_proxies_quietly(jon, &["smtp:sales@contoso.com"]);
    t.set_proxies_quietly(kim, &["smtp:sales@contoso.com"]);
    let mail = t.create_group("Mail");
    t.assign_group_license(mail, &t.add(&[("ENTERPRISEPACK", &[])]))
        .unwrap();
    t.join(mail, jon);
    t.join(mail, kim);
    let uniq = (Error, Some(ErrorCode::UniquenessViolation));
    assert_eq!(t.state(jon, mail, "ENTERPRISEPACK"), uniq);
    assert_eq!(t.state(kim, mail, "ENTERPRISEPACK"), uniq);
    let v = &t.error(jon, mail, "ENTERPRISEPACK").violations[0];
    assert_eq!(v.proxy_address(), Some("smtp:sales@contoso.com"));
    assert_eq!(v.conflicting_user(), Some(kim));
    assert_eq!(
        t.error(kim, mail, "ENTERPRISEPACK").violations[0].conflicting_user(),
        Some(jon)
    );
    assert_eq!(t.consumed("ENTERPRISEPACK"), 0);

    // kim's addresses change: kim is processed (P5), jon is not.
    t.set_proxies(kim, &["smtp:kim@contoso.com"]);
    assert_eq!(t.state(kim, mail, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(t.state(jon, mail, "ENTERPRISEPACK"), uniq);
    t.reprocess_group(mail);
    assert_eq!(t.state(jon, mail, "ENTERPRISEPACK"), (Active, None));
    assert_eq!(t.consumed("ENTERPRISEPACK"), 2);
}

#[test]
fn s8_removing_a_groups_licenses_frees_its_members_seats() {
    // The engine's part of S8 (GROUP_HAS_LICENSES is the store's): after Sales' licenses are
    // removed and processed, its members' seats are free and nothing of it is left.
    let mut t = Tenant::scenario();
    t.set_seats("ENTERPRISEPACK", 2);
    let sales = t.create_group("Sales");
    t.assign_group_license(sales, &t.add(&[("ENTERPRISEPACK", &[])]))
        .unwrap();
    let ann = t.create_user("ann", Some("US"));
    let bob = t.create_user("bob", Some("US"));
    t.join(sales, ann);
    t.join(sales, bob);
    assert_eq!(t.consumed("ENTERPRISEPACK"), 2);
    t.assign_group_license(sales, &t.remove(&["ENTERPRISEPACK"]))
        .unwrap();
    assert!(t.groups[&sales].licenses.is_empty());
    assert_eq!(t.consumed("ENTERPRISEPACK"), 0);
    assert!(t.user(ann).assignments.is_empty() && t.user(bob).assignments.is_empty());
}

#[test]
fn s9_pending_until_processed() {
    // The engine's part of S9: recorded intents are PENDING until processing reaches them,
    // and a batch of many members ends with every member ACTIVE and exactly that many seats.
    let mut t = Tenant::scenario();
    t.set_seats("ENTERPRISEPACK", 2000);
    let big = t.create_group("Big");
    let members: Vec<_> = (0..2000)
        .map(|i| t.create_user(&format!("u{i}"), Some("US")))
        .collect();
    for u in &members {
        t.groups.get_mut(&big).unwrap().members.push(*u);
        t.users.get_mut(u).unwrap().groups.push(big);
    }
    let set = vec![t.spec("ENTERPRISEPACK", &[])];
    t.groups.get_mut(&big).unwrap().licenses = set.clone();
    for u in &members {
        group_licensing::engine::set_group_intent(
            &mut t.users.get_mut(u).unwrap().licenses,
            big,
            &set,
        );
        assert_eq!(t.state(*u, big, "ENTERPRISEPACK"), (Pending, None));
    }
    t.reprocess_group(big);
    assert!(
        members
            .iter()
            .all(|u| t.state(*u, big, "ENTERPRISEPACK") == (Active, None))
    );
    assert_eq!(t.consumed("ENTERPRISEPACK"), 2000);
}
