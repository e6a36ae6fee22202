//! The seed scenarios S1–S8 of seed-scenarios.md, played through the GraphQL API of a running
//! server with the scenario rules; every outcome the scenario lists is asserted (S2 also on the
//! bundled rules). S9 is in durability.rs. Rule ids refer to licensing.md.

use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::{
    Fresh, Server, code, copy_rules, fresh, int, license, node_ids, plan_names, sorted, str_of,
};

const E3: &str = "ENTERPRISEPACK";
const E1: &str = "STANDARDPACK";
const EMS: &str = "EMS";
const WA: &str = "WORKPLACE_ANALYTICS";

/// Asserts one assignment state: `state`, `error` and, with no error, no `errorDetail`.
fn assert_state(
    s: &Fresh,
    user: &str,
    sku: &str,
    group: Option<&str>,
    state: &str,
    error: &str,
) -> Value {
    let st = s.state_of(user, sku, group);
    assert_eq!(
        st["state"], state,
        "state of user {user} for {sku} from {group:?}: {st:#}"
    );
    assert_eq!(
        st["error"], error,
        "error of user {user} for {sku} from {group:?}: {st:#}"
    );
    if error == "NONE" {
        assert!(st["errorDetail"].is_null(), "no error, no detail: {st:#}");
    } else {
        let detail = &st["errorDetail"];
        assert!(!detail.is_null(), "an error has its detail: {st:#}");
        assert!(!str_of(&detail["message"]).is_empty(), "{st:#}");
        assert!(
            !detail["resolutions"].as_array().unwrap().is_empty(),
            "Q4 resolutions: {st:#}"
        );
        // The first violation gives the error code (LicenseErrorDetail).
        assert_eq!(detail["violations"][0]["code"], error, "{st:#}");
    }
    st
}

/// The products a user holds (L1), by name.
fn held_products(s: &Fresh, user: &str) -> Vec<String> {
    let held = s.held(user);
    sorted(
        held["assignedLicenses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| str_of(&l["product"]["skuPartNumber"]))
            .collect(),
    )
}

/// The enabled plans of one held product (L2).
fn enabled_plans(s: &Fresh, user: &str, sku: &str) -> Vec<String> {
    let held = s.held(user);
    let entry = held["assignedLicenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["product"]["skuPartNumber"] == sku)
        .unwrap_or_else(|| panic!("user {user} does not hold {sku}: {held:#}"))
        .clone();
    sorted(plan_names(&entry["enabledPlans"]))
}

fn users_in_error(group: &Value) -> Vec<String> {
    node_ids(&group["membersWithLicenseErrors"])
}

fn assert_no_errors(group: &Value) {
    assert_eq!(group["hasMembersWithLicenseErrors"], false, "{group:#}");
    assert_eq!(group["licenseErrorCount"], 0, "{group:#}");
    assert_eq!(group["licenseErrorCounts"], json!([]), "{group:#}");
    assert_eq!(
        group["membersWithLicenseErrors"]["totalCount"], 0,
        "{group:#}"
    );
    assert!(users_in_error(group).is_empty(), "{group:#}");
}

/// S1's tenant: ENTERPRISEPACK with 2 seats, "Sales" with ENTERPRISEPACK, ann, bob and cat
/// joining in that order, processed.
fn s1_tenant() -> (Fresh, String, [String; 3]) {
    let s = fresh();
    s.set_prepaid(E3, 2);
    let sales = s.create_group("Sales");
    let g = s.assign_group(&sales, json!([license(E3, &[])]), &[]);
    assert_eq!(g["licenseProcessingState"], "QUEUED", "G2: {g:#}");
    s.wait_complete(&sales);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    let bob = s.create_user("bob@contoso.com", Some("US"));
    let cat = s.create_user("cat@contoso.com", Some("US"));
    // Three calls: the join order is the order of the calls (P1).
    for u in [&ann, &bob, &cat] {
        s.add_members(&sales, &[u]);
    }
    s.wait_complete(&sales);
    (s, sales, [ann, bob, cat])
}

#[test]
fn s1_not_enough_licenses_first_joined_first_served_then_reprocess() {
    let (s, sales, [ann, bob, cat]) = s1_tenant();

    // P1: first joined, first served.
    assert_state(&s, &ann, E3, Some(&sales), "ACTIVE", "NONE");
    assert_state(&s, &bob, E3, Some(&sales), "ACTIVE", "NONE");
    let st = assert_state(&s, &cat, E3, Some(&sales), "ERROR", "COUNT_VIOLATION");
    let v = &st["errorDetail"]["violations"][0];
    assert_eq!(
        v["products"],
        json!([{ "skuPartNumber": E3 }]),
        "C5 names the product: {st:#}"
    );
    assert_eq!(
        held_products(&s, &cat),
        Vec::<String>::new(),
        "ERROR: cat holds nothing"
    );
    assert_eq!(held_products(&s, &ann), vec![E3]);

    // L3.
    assert_eq!(s.seats(E3), (2, 2, 0));
    let group = s.group(&sales);
    assert_eq!(group["memberCount"], 3);
    assert_eq!(
        node_ids(&group["members"]),
        vec![ann.clone(), bob.clone(), cat.clone()],
        "members in join order"
    );
    assert_eq!(group["hasMembersWithLicenseErrors"], true);
    assert_eq!(group["licenseErrorCount"], 1);
    assert_eq!(
        group["licenseErrorCounts"],
        json!([{ "error": "COUNT_VIOLATION", "count": 1 }])
    );
    assert_eq!(users_in_error(&group), vec![cat.clone()]);
    assert_eq!(group["membersWithLicenseErrors"]["totalCount"], 1);

    // Paging over members keeps the join order (graphql-api.md conventions).
    let page1 = s.ok(
        "query($g: ID!) { group(id: $g) { members(first: 2) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } }",
        json!({ "g": sales }),
    )["group"]["members"]
        .clone();
    assert_eq!(node_ids(&page1), vec![ann.clone(), bob.clone()]);
    assert_eq!(page1["totalCount"], 3);
    assert_eq!(page1["pageInfo"]["hasNextPage"], true);
    let page2 = s.ok(
        "query($g: ID!, $a: String) { group(id: $g) { members(first: 2, after: $a) { pageInfo { hasNextPage } edges { node { id } } } } }",
        json!({ "g": sales, "a": page1["pageInfo"]["endCursor"] }),
    )["group"]["members"]
        .clone();
    assert_eq!(node_ids(&page2), vec![cat.clone()]);
    assert_eq!(page2["pageInfo"]["hasNextPage"], false);

    // Q2: the overview lists Sales.
    let groups = s.ok(
        "{ groups(hasMembersWithLicenseErrors: true) { totalCount edges { node { id licenseErrorCount } } } }",
        json!({}),
    );
    assert_eq!(groups["groups"]["totalCount"], 1);
    assert_eq!(groups["groups"]["edges"][0]["node"]["id"], sales.as_str());

    // Seats raised to 3: nothing is automatic (P5).
    s.set_prepaid(E3, 3);
    s.wait_idle();
    assert_eq!(s.group(&sales)["licenseProcessingState"], "COMPLETE");
    assert_state(&s, &cat, E3, Some(&sales), "ERROR", "COUNT_VIOLATION");
    assert_eq!(s.seats(E3), (3, 2, 1));

    // P6: reprocessGroup licenses cat. P8: processing ann and bob again changes nothing, not
    // even their lastUpdatedDateTime.
    let ann_before = s.state_of(&ann, E3, Some(&sales));
    let bob_before = s.state_of(&bob, E3, Some(&sales));
    let g = s.reprocess_group(&sales);
    assert_eq!(g["licenseProcessingState"], "QUEUED");
    assert_eq!(g["processedMembers"], 0, "a new run: {g:#}");
    assert_eq!(g["membersToProcess"], 3, "a new run: {g:#}");
    s.wait_complete(&sales);
    assert_eq!(
        s.state_of(&ann, E3, Some(&sales)),
        ann_before,
        "P8: idempotent"
    );
    assert_eq!(
        s.state_of(&bob, E3, Some(&sales)),
        bob_before,
        "P8: idempotent"
    );
    assert_state(&s, &cat, E3, Some(&sales), "ACTIVE", "NONE");
    assert_state(&s, &ann, E3, Some(&sales), "ACTIVE", "NONE");
    assert_state(&s, &bob, E3, Some(&sales), "ACTIVE", "NONE");
    assert_eq!(s.seats(E3), (3, 3, 0));
    let group = s.group(&sales);
    assert_no_errors(&group);
    assert_eq!(group["processedMembers"], 3, "P9: {group:#}");
    assert_eq!(group["membersToProcess"], 3, "P9: {group:#}");
    let groups = s.ok(
        "{ groups(hasMembersWithLicenseErrors: true) { totalCount } }",
        json!({}),
    );
    assert_eq!(groups["groups"]["totalCount"], 0);
}

#[test]
fn s1b_direct_and_group_license_use_one_seat() {
    let s = fresh();
    s.set_prepaid(E3, 2);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    let bob = s.create_user("bob@contoso.com", Some("US"));
    let cat = s.create_user("cat@contoso.com", Some("US"));
    // D3: ACTIVE at once.
    s.assign_direct(&ann, json!([license(E3, &[])]), &[]);
    assert_state(&s, &ann, E3, None, "ACTIVE", "NONE");
    assert_eq!(s.seats(E3), (2, 1, 1));

    let sales = s.create_group("Sales");
    s.assign_group(&sales, json!([license(E3, &[])]), &[]);
    for u in [&ann, &bob, &cat] {
        s.add_members(&sales, &[u]);
    }
    s.wait_complete(&sales);

    // L1: ann uses one seat whatever the number of her sources, so bob gets the second.
    assert_state(&s, &ann, E3, Some(&sales), "ACTIVE", "NONE");
    assert_state(&s, &ann, E3, None, "ACTIVE", "NONE");
    assert_state(&s, &bob, E3, Some(&sales), "ACTIVE", "NONE");
    assert_state(&s, &cat, E3, Some(&sales), "ERROR", "COUNT_VIOLATION");
    assert_eq!(s.seats(E3), (2, 2, 0));
    let ann_states: Vec<Value> = s
        .states(&ann)
        .into_iter()
        .filter(|st| st["product"]["skuPartNumber"] == E3)
        .collect();
    assert_eq!(ann_states.len(), 2, "direct and Sales: {ann_states:#?}");
    assert_eq!(held_products(&s, &ann), vec![E3], "one product held");
    let holders = s.ok(
        "{ product(skuPartNumber: \"ENTERPRISEPACK\") { licensedUsers { totalCount edges { node { id } } } licensedGroups { id } } }",
        json!({}),
    )["product"]
        .clone();
    assert_eq!(holders["licensedUsers"]["totalCount"], 2);
    assert_eq!(
        node_ids(&holders["licensedUsers"]),
        vec![ann.clone(), bob.clone()]
    );
    assert_eq!(holders["licensedGroups"], json!([{ "id": sales }]));

    // Removing ann's direct license frees no seat: she still holds it from Sales.
    s.assign_direct(&ann, json!([]), &[E3]);
    assert!(
        !s.has_state(&ann, E3, None),
        "the direct assignment is gone"
    );
    assert_state(&s, &ann, E3, Some(&sales), "ACTIVE", "NONE");
    assert_eq!(held_products(&s, &ann), vec![E3]);
    assert_eq!(s.seats(E3), (2, 2, 0));
    // And so cat still finds no seat.
    s.reprocess_group(&sales);
    s.wait_complete(&sales);
    assert_state(&s, &cat, E3, Some(&sales), "ERROR", "COUNT_VIOLATION");
    assert_eq!(s.seats(E3), (2, 2, 0));
}

/// S2's tenant: dan holds STANDARDPACK directly with every plan; "E3 users" gets
/// ENTERPRISEPACK; dan joins.
fn s2_tenant() -> (Fresh, String, String) {
    let s = fresh();
    s.set_prepaid(E1, 10);
    s.set_prepaid(E3, 10);
    let dan = s.create_user("dan@contoso.com", Some("US"));
    s.assign_direct(&dan, json!([license(E1, &[])]), &[]);
    let e3 = s.create_group("E3 users");
    s.assign_group(&e3, json!([license(E3, &[])]), &[]);
    s.add_members(&e3, &[&dan]);
    s.wait_complete(&e3);
    (s, dan, e3)
}

/// S2's outcome before any fix (C3, P2).
fn assert_s2_conflict(s: &Fresh, dan: &str, e3: &str) {
    let st = assert_state(
        s,
        dan,
        E3,
        Some(e3),
        "ERROR",
        "MUTUALLY_EXCLUSIVE_VIOLATION",
    );
    let violations = st["errorDetail"]["violations"].as_array().unwrap().clone();
    // Both pairs, each naming where the other plan comes from: STANDARDPACK assigned directly.
    let mut pairs: Vec<(Vec<String>, String)> = Vec::new();
    for v in &violations {
        assert_eq!(v["code"], "MUTUALLY_EXCLUSIVE_VIOLATION", "{v:#}");
        assert_eq!(
            v["conflictingSource"],
            json!({ "direct": true, "group": null, "product": { "skuPartNumber": E1 } }),
            "C3: the other plan comes from STANDARDPACK assigned directly: {v:#}"
        );
        assert_eq!(
            v["source"],
            json!({ "direct": false, "group": { "id": e3, "displayName": "E3 users" }, "product": { "skuPartNumber": E3 } }),
            "C3: the plan at fault comes from ENTERPRISEPACK in E3 users: {v:#}"
        );
        let message = str_of(&v["message"]);
        assert!(
            message.contains("STANDARDPACK assigned directly"),
            "{message}"
        );
        assert!(message.contains("E3 users"), "{message}");
        pairs.push((
            plan_names(&v["plans"]),
            str_of(&v["conflictingPlan"]["servicePlanName"]),
        ));
    }
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            (
                vec!["EXCHANGE_S_ENTERPRISE".to_string()],
                "EXCHANGE_S_STANDARD".to_string()
            ),
            (
                vec!["SHAREPOINTENTERPRISE".to_string()],
                "SHAREPOINTSTANDARD".to_string()
            ),
        ],
        "both pairs: {violations:#?}"
    );
    let resolutions = st["errorDetail"]["resolutions"].to_string();
    assert!(resolutions.contains("STANDARDPACK"), "Q4: {resolutions}");
    // No ENTERPRISEPACK seat is used for dan.
    assert_eq!(s.seats(E3), (10, 0, 10));
    assert_eq!(s.seats(E1), (10, 1, 9));
    assert_eq!(held_products(s, dan), vec![E1]);
    let group = s.group(e3);
    assert_eq!(group["hasMembersWithLicenseErrors"], true);
    assert_eq!(group["licenseErrorCount"], 1);
    assert_eq!(
        group["licenseErrorCounts"],
        json!([{ "error": "MUTUALLY_EXCLUSIVE_VIOLATION", "count": 1 }])
    );
    // Q1: the list of users in error is filterable by code.
    let filtered = s.ok(
        "query($g: ID!) { group(id: $g) {
            mx: membersWithLicenseErrors(error: MUTUALLY_EXCLUSIVE_VIOLATION) { totalCount edges { node { id } } }
            count: membersWithLicenseErrors(error: COUNT_VIOLATION) { totalCount edges { node { id } } } } }",
        json!({ "g": e3 }),
    )["group"]
        .clone();
    assert_eq!(node_ids(&filtered["mx"]), vec![dan.to_string()]);
    assert_eq!(filtered["mx"]["totalCount"], 1);
    assert_eq!(node_ids(&filtered["count"]), Vec::<String>::new());
    assert_eq!(filtered["count"]["totalCount"], 0);
}

/// S2 on the bundled rules, with the SharePoint pair stated twice as the bundled policy once
/// stated it (in the "SharePoint Online" exclusive set and as a `conflict`): each pair is one
/// violation, and the message counts the other problems, not the rules that imply them (C3,
/// Q4).
#[test]
fn s2_on_the_bundled_rules_a_pair_two_rules_imply_is_one_violation() {
    let dir = TempDir::new().expect("temp dir");
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let rules = copy_rules(&bundled, dir.path(), "rules");
    std::fs::write(
        rules.join("restated.rules"),
        "conflict SHAREPOINTSTANDARD with SHAREPOINTENTERPRISE\n",
    )
    .expect("write restated.rules");
    let server = Server::start(&dir.path().join("t.db"), &rules);
    let s = Fresh { server, dir };
    s.set_prepaid(E1, 10);
    s.set_prepaid(E3, 10);
    let dan = s.create_user("dan@contoso.com", Some("US"));
    s.assign_direct(&dan, json!([license(E1, &[])]), &[]);
    let e3 = s.create_group("E3 users");
    s.assign_group(&e3, json!([license(E3, &[])]), &[]);
    s.add_members(&e3, &[&dan]);
    s.wait_complete(&e3);

    let st = assert_state(
        &s,
        &dan,
        E3,
        Some(&e3),
        "ERROR",
        "MUTUALLY_EXCLUSIVE_VIOLATION",
    );
    let detail = &st["errorDetail"];
    let pairs: Vec<(Vec<String>, String)> = detail["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                plan_names(&v["plans"]),
                str_of(&v["conflictingPlan"]["servicePlanName"]),
            )
        })
        .collect();
    let pair = |plan: &str, conflicting: &str| (vec![plan.to_string()], conflicting.to_string());
    assert_eq!(
        pairs,
        vec![
            pair("SHAREPOINTENTERPRISE", "SHAREPOINTSTANDARD"),
            pair("EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_STANDARD"),
        ],
        "{detail:#}"
    );
    assert_eq!(
        detail["message"],
        "License assignment failed: SharePoint (Plan 2) (ENTERPRISEPACK from group \"E3 users\") and SharePoint (Plan 1) (STANDARDPACK assigned directly) are mutually exclusive (and 1 more problem)."
    );
}

#[test]
fn s2_conflict_fix1_disable_plans_on_the_direct_license_then_reprocess_group() {
    let (s, dan, e3) = s2_tenant();
    assert_s2_conflict(&s, &dan, &e3);

    // D4: re-adding STANDARDPACK replaces its disabled plans.
    s.assign_direct(
        &dan,
        json!([license(E1, &["EXCHANGE_S_STANDARD", "SHAREPOINTSTANDARD"])]),
        &[],
    );
    let direct = assert_state(&s, &dan, E1, None, "ACTIVE", "NONE");
    assert_eq!(
        sorted(plan_names(&direct["disabledPlans"])),
        vec!["EXCHANGE_S_STANDARD", "SHAREPOINTSTANDARD"]
    );
    // A direct change triggers no processing (P5): dan waits for the admin.
    s.wait_idle();
    assert_state(
        &s,
        &dan,
        E3,
        Some(&e3),
        "ERROR",
        "MUTUALLY_EXCLUSIVE_VIOLATION",
    );

    s.reprocess_group(&e3);
    s.wait_complete(&e3);
    assert_state(&s, &dan, E3, Some(&e3), "ACTIVE", "NONE");
    assert_eq!(s.seats(E3), (10, 1, 9));
    assert_eq!(s.seats(E1), (10, 1, 9));
    assert_eq!(held_products(&s, &dan), vec![E3, E1]);
    assert_eq!(enabled_plans(&s, &dan, E1), vec!["TEAMS1"]);
    assert_eq!(
        enabled_plans(&s, &dan, E3),
        vec!["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"]
    );
    assert_no_errors(&s.group(&e3));
}

#[test]
fn s2_conflict_fix2_new_group_configuration_processes_members_without_reprocess() {
    let (s, dan, e3) = s2_tenant();
    assert_s2_conflict(&s, &dan, &e3);

    // G3: adding a product the group has replaces its disabled plans; P5: a new license set
    // processes every member.
    let g = s.assign_group(
        &e3,
        json!([license(
            E3,
            &["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE"]
        )]),
        &[],
    );
    assert_eq!(g["licenseProcessingState"], "QUEUED");
    assert_eq!(g["assignedLicenses"].as_array().unwrap().len(), 1, "{g:#}");
    assert_eq!(
        sorted(plan_names(&g["assignedLicenses"][0]["disabledPlans"])),
        vec!["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE"]
    );
    s.wait_complete(&e3);
    let st = assert_state(&s, &dan, E3, Some(&e3), "ACTIVE", "NONE");
    assert_eq!(
        sorted(plan_names(&st["disabledPlans"])),
        vec!["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE"]
    );
    assert_eq!(s.seats(E3), (10, 1, 9));
    assert_eq!(enabled_plans(&s, &dan, E3), vec!["TEAMS1"]);
    // L2: the union of the plans from both products is what dan has.
    assert_eq!(
        enabled_plans(&s, &dan, E1),
        vec!["EXCHANGE_S_STANDARD", "SHAREPOINTSTANDARD", "TEAMS1"]
    );
    assert_no_errors(&s.group(&e3));
}

#[test]
fn s2_conflict_fix3_remove_the_direct_license_then_reprocess_user() {
    let (s, dan, e3) = s2_tenant();
    assert_s2_conflict(&s, &dan, &e3);

    s.assign_direct(&dan, json!([]), &[E1]);
    assert_eq!(s.seats(E1), (10, 0, 10));
    s.wait_idle();
    // Nothing automatic (P5): still in error until the admin reprocesses.
    assert_state(
        &s,
        &dan,
        E3,
        Some(&e3),
        "ERROR",
        "MUTUALLY_EXCLUSIVE_VIOLATION",
    );

    s.reprocess_user(&dan);
    s.wait_idle();
    assert_state(&s, &dan, E3, Some(&e3), "ACTIVE", "NONE");
    assert!(!s.has_state(&dan, E1, None));
    assert_eq!(held_products(&s, &dan), vec![E3]);
    assert_eq!(s.seats(E3), (10, 1, 9));
    assert_no_errors(&s.group(&e3));
}

#[test]
fn s3_several_products_on_one_group_all_or_nothing() {
    let s = fresh();
    s.set_prepaid(E3, 10);
    s.set_prepaid(EMS, 1);
    let full = s.create_group("Full");
    s.assign_group(&full, json!([license(E3, &[]), license(EMS, &[])]), &[]);
    let eve = s.create_user("eve@contoso.com", Some("US"));
    let fay = s.create_user("fay@contoso.com", Some("US"));
    s.add_members(&full, &[&eve, &fay]);
    s.wait_complete(&full);

    assert_state(&s, &eve, E3, Some(&full), "ACTIVE", "NONE");
    assert_state(&s, &eve, EMS, Some(&full), "ACTIVE", "NONE");
    // P2: EMS has no seat, so fay gets no ENTERPRISEPACK either.
    for sku in [E3, EMS] {
        let st = assert_state(&s, &fay, sku, Some(&full), "ERROR", "COUNT_VIOLATION");
        assert_eq!(
            st["errorDetail"]["violations"][0]["products"],
            json!([{ "skuPartNumber": EMS }]),
            "C5: the product without a seat is EMS: {st:#}"
        );
    }
    assert_eq!(held_products(&s, &fay), Vec::<String>::new());
    assert_eq!(held_products(&s, &eve), vec![EMS, E3]);
    assert_eq!(s.seats(E3), (10, 1, 9));
    assert_eq!(s.seats(EMS), (1, 1, 0));
    let group = s.group(&full);
    assert_eq!(group["licenseErrorCount"], 1, "fay counts once: {group:#}");
    assert_eq!(
        group["licenseErrorCounts"],
        json!([{ "error": "COUNT_VIOLATION", "count": 1 }])
    );
    assert_eq!(users_in_error(&group), vec![fay]);
}

#[test]
fn s4_usage_location_inherited_from_the_directory_then_set_on_the_user() {
    let s = fresh();
    s.set_default_location("CN");
    s.set_prepaid(E1, 10);
    let gus = s.create_user("gus@contoso.com", None);
    let user = s.ok(
        "query($u: ID) { user(id: $u) { usageLocation effectiveUsageLocation } }",
        json!({ "u": gus }),
    )["user"]
        .clone();
    assert_eq!(
        user,
        json!({ "usageLocation": null, "effectiveUsageLocation": "CN" }),
        "L4"
    );

    let teams = s.create_group("Teams");
    s.assign_group(&teams, json!([license(E1, &[])]), &[]);
    s.add_members(&teams, &[&gus]);
    s.wait_complete(&teams);

    let st = assert_state(
        &s,
        &gus,
        E1,
        Some(&teams),
        "ERROR",
        "PROHIBITED_IN_USAGE_LOCATION_VIOLATION",
    );
    let v = &st["errorDetail"]["violations"][0];
    assert_eq!(
        v["usageLocation"], "CN",
        "C2: the location, inherited from the directory (L4)"
    );
    assert_eq!(plan_names(&v["plans"]), vec!["TEAMS1"]);
    assert!(
        str_of(&v["message"]).contains("default"),
        "the message says the location is the directory's default: {v:#}"
    );
    assert_eq!(s.seats(E1), (10, 0, 10));

    // P5: setting the location processes gus again.
    let u = s.update_user(&gus, json!({ "usageLocation": "US" }));
    assert_eq!(u["usageLocation"], "US");
    assert_eq!(u["effectiveUsageLocation"], "US");
    s.wait_idle();
    assert_state(&s, &gus, E1, Some(&teams), "ACTIVE", "NONE");
    assert_eq!(s.seats(E1), (10, 1, 9));
    assert_no_errors(&s.group(&teams));

    // D2: direct assignment does not inherit the directory's location.
    let hal = s.create_user("hal@contoso.com", None);
    let before = s.snapshot();
    let e = s.err(
        crate::harness::ASSIGN_DIRECT,
        json!({ "u": hal, "add": [license(E1, &[])], "remove": [] }),
    );
    assert_eq!(code(&e), "USAGE_LOCATION_REQUIRED", "{e:#}");
    assert_eq!(s.snapshot(), before, "nothing changes");
}

const WA_MESSAGE: &str = "License operation failed. Make sure that the group has necessary services before adding or removing a dependent service. The service Microsoft Workplace Analytics requires Exchange Online (Plan 1) or Exchange Online (Plan 2) to be enabled as well.";

/// A G1 dependency error as the API returns it.
fn assert_wa_dependency_error(e: &Value) {
    assert_eq!(code(e), "DEPENDENCY_VIOLATION", "{e:#}");
    assert_eq!(e["message"], WA_MESSAGE, "{e:#}");
    let details = e["extensions"]["details"]
        .as_array()
        .expect("details")
        .clone();
    assert_eq!(details.len(), 1, "{details:#?}");
    assert_eq!(details[0]["code"], "DEPENDENCY_VIOLATION");
    assert_eq!(plan_names(&details[0]["plans"]), vec![WA]);
    assert_eq!(
        sorted(plan_names(&details[0]["missingPrerequisites"])),
        vec!["EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_STANDARD"]
    );
}

#[test]
fn s5_add_on_with_its_prerequisite_in_the_same_group() {
    let s = fresh();
    s.set_prepaid(E3, 10);
    s.set_prepaid(WA, 10);

    // G1: the add-on alone is refused, and the group's licenses are unchanged.
    let wa_only = s.create_group("WA only");
    let before = s.snapshot();
    let e = s.err(
        crate::harness::ASSIGN_GROUP,
        json!({ "g": wa_only, "add": [license(WA, &[])], "remove": [] }),
    );
    assert_wa_dependency_error(&e);
    assert_eq!(s.snapshot(), before, "G1: a failure changes nothing");
    assert_eq!(s.group(&wa_only)["assignedLicenses"], json!([]));

    // With only EXCHANGE_S_ENTERPRISE enabled next to it: accepted.
    let wa = s.create_group("WA");
    let g = s.assign_group(
        &wa,
        json!([
            license(E3, &["SHAREPOINTENTERPRISE", "TEAMS1"]),
            license(WA, &[])
        ]),
        &[],
    );
    assert_eq!(g["licenseProcessingState"], "QUEUED");
    let e3_full = s.create_group("E3 full");
    s.assign_group(&e3_full, json!([license(E3, &[])]), &[]);
    let hal = s.create_user("hal@contoso.com", Some("US"));
    s.add_members(&wa, &[&hal]);
    s.add_members(&e3_full, &[&hal]);
    s.wait_complete(&wa);
    s.wait_complete(&e3_full);

    assert_state(&s, &hal, E3, Some(&wa), "ACTIVE", "NONE");
    assert_state(&s, &hal, WA, Some(&wa), "ACTIVE", "NONE");
    assert_state(&s, &hal, E3, Some(&e3_full), "ACTIVE", "NONE");
    assert_eq!(
        s.seats(E3),
        (10, 1, 9),
        "L1: one ENTERPRISEPACK seat for two sources"
    );
    assert_eq!(s.seats(WA), (10, 1, 9));
    assert_eq!(
        enabled_plans(&s, &hal, E3),
        vec!["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"],
        "L2: the union of both groups' plans"
    );
    assert_eq!(enabled_plans(&s, &hal, WA), vec![WA]);
    let memberships = s.ok(
        "query($u: ID) { user(id: $u) { memberOf { id } } }",
        json!({ "u": hal }),
    )["user"]["memberOf"]
        .clone();
    assert_eq!(
        memberships,
        json!([{ "id": wa }, { "id": e3_full }]),
        "in join order"
    );

    // G1: disabling the prerequisite while the add-on stays is refused.
    let before = s.snapshot();
    let e = s.err(
        crate::harness::ASSIGN_GROUP,
        json!({ "g": wa, "add": [license(E3, &["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"])], "remove": [] }),
    );
    assert_wa_dependency_error(&e);
    assert_eq!(s.snapshot(), before, "G1: a failure changes nothing");
}

#[test]
fn s6_withdrawal_blocked_by_a_dependent_direct_license() {
    let s = fresh();
    s.set_prepaid(E3, 10);
    s.set_prepaid(WA, 10);
    let e3_full = s.create_group("E3 full");
    s.assign_group(&e3_full, json!([license(E3, &[])]), &[]);
    let ivy = s.create_user("ivy@contoso.com", Some("US"));
    s.add_members(&e3_full, &[&ivy]);
    s.wait_complete(&e3_full);
    assert_state(&s, &ivy, E3, Some(&e3_full), "ACTIVE", "NONE");
    // Her only Exchange plan comes from the group.
    s.assign_direct(&ivy, json!([license(WA, &[])]), &[]);
    assert_state(&s, &ivy, WA, None, "ACTIVE", "NONE");

    // P3: the withdrawal fails, she keeps ENTERPRISEPACK and its seat.
    let g = s.remove_members(&e3_full, &[&ivy]);
    assert_eq!(g["memberCount"], 0);
    s.wait_complete(&e3_full);
    let assert_blocked = |s: &Fresh| {
        let st = assert_state(
            s,
            &ivy,
            E3,
            Some(&e3_full),
            "ACTIVE_WITH_ERROR",
            "DEPENDENCY_VIOLATION",
        );
        let v = &st["errorDetail"]["violations"][0];
        assert_eq!(
            plan_names(&v["plans"]),
            vec![WA],
            "C4: the dependent plan: {st:#}"
        );
        assert_eq!(
            v["source"],
            json!({ "direct": true, "group": null, "product": { "skuPartNumber": WA } }),
            "C4: its source: {st:#}"
        );
        assert_eq!(
            sorted(plan_names(&v["missingPrerequisites"])),
            vec!["EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_STANDARD"]
        );
        assert_eq!(held_products(s, &ivy), vec![E3, WA]);
        assert_eq!(s.seats(E3), (10, 1, 9));
        // Q1: listed although no longer a member.
        let group = s.group(&e3_full);
        assert_eq!(group["memberCount"], 0);
        assert_eq!(group["hasMembersWithLicenseErrors"], true);
        assert_eq!(group["licenseErrorCount"], 1);
        assert_eq!(
            group["licenseErrorCounts"],
            json!([{ "error": "DEPENDENCY_VIOLATION", "count": 1 }])
        );
        assert_eq!(users_in_error(&group), vec![ivy.clone()]);
        let member_of = s.ok(
            "query($u: ID) { user(id: $u) { memberOf { id } hasLicenseErrors } }",
            json!({ "u": ivy }),
        )["user"]
            .clone();
        assert_eq!(
            member_of,
            json!({ "memberOf": [], "hasLicenseErrors": true })
        );
    };
    assert_blocked(&s);

    // Until the admin acts, nothing changes: reprocessing retries and fails again (P3, P6).
    s.reprocess_group(&e3_full);
    s.wait_complete(&e3_full);
    assert_blocked(&s);

    // Removing the direct WORKPLACE_ANALYTICS changes nothing by itself (P5)…
    s.assign_direct(&ivy, json!([]), &[WA]);
    assert_eq!(s.seats(WA), (10, 0, 10));
    s.wait_idle();
    assert_eq!(
        s.state_of(&ivy, E3, Some(&e3_full))["state"],
        "ACTIVE_WITH_ERROR"
    );
    // …reprocessUser completes the withdrawal and frees the seat.
    s.reprocess_user(&ivy);
    s.wait_idle();
    assert_eq!(s.states(&ivy), Vec::<Value>::new());
    assert_eq!(held_products(&s, &ivy), Vec::<String>::new());
    assert_eq!(s.seats(E3), (10, 0, 10));
    assert_no_errors(&s.group(&e3_full));
}

#[test]
fn s7_duplicate_proxy_addresses() {
    let s = fresh();
    s.set_prepaid(E3, 10);
    let jon = s.create_user_with("jon@contoso.com", Some("US"), &["smtp:sales@contoso.com"]);
    let kim = s.create_user_with("kim@contoso.com", Some("US"), &["smtp:sales@contoso.com"]);
    let mail = s.create_group("Mail");
    s.assign_group(&mail, json!([license(E3, &[])]), &[]);
    s.add_members(&mail, &[&jon, &kim]);
    s.wait_complete(&mail);

    // C1: both in error, each naming the address and the other user.
    for (user, other, other_upn) in [
        (&jon, &kim, "kim@contoso.com"),
        (&kim, &jon, "jon@contoso.com"),
    ] {
        let st = assert_state(&s, user, E3, Some(&mail), "ERROR", "UNIQUENESS_VIOLATION");
        let v = &st["errorDetail"]["violations"][0];
        assert_eq!(v["proxyAddress"], "smtp:sales@contoso.com", "{st:#}");
        assert_eq!(
            v["conflictingUser"],
            json!({ "id": other, "userPrincipalName": other_upn }),
            "{st:#}"
        );
        let message = str_of(&v["message"]);
        assert!(
            message.contains("sales@contoso.com") && message.contains(other_upn),
            "{message}"
        );
    }
    assert_eq!(s.seats(E3), (10, 0, 10));
    let group = s.group(&mail);
    assert_eq!(group["licenseErrorCount"], 2);
    assert_eq!(
        group["licenseErrorCounts"],
        json!([{ "error": "UNIQUENESS_VIOLATION", "count": 2 }])
    );
    assert_eq!(users_in_error(&group), vec![jon.clone(), kim.clone()]);

    // P5: new proxy addresses process kim again, not jon.
    let u = s.update_user(&kim, json!({ "proxyAddresses": ["smtp:kim@contoso.com"] }));
    assert_eq!(u["proxyAddresses"], json!(["smtp:kim@contoso.com"]));
    s.wait_idle();
    assert_state(&s, &kim, E3, Some(&mail), "ACTIVE", "NONE");
    assert_state(&s, &jon, E3, Some(&mail), "ERROR", "UNIQUENESS_VIOLATION");
    assert_eq!(s.seats(E3), (10, 1, 9));
    assert_eq!(users_in_error(&s.group(&mail)), vec![jon.clone()]);

    s.reprocess_group(&mail);
    s.wait_complete(&mail);
    assert_state(&s, &jon, E3, Some(&mail), "ACTIVE", "NONE");
    assert_state(&s, &kim, E3, Some(&mail), "ACTIVE", "NONE");
    assert_eq!(s.seats(E3), (10, 2, 8));
    assert_no_errors(&s.group(&mail));
}

#[test]
fn s8_a_group_with_licenses_cannot_be_deleted() {
    let (s, sales, users) = s1_tenant();
    assert_eq!(s.seats(E3), (2, 2, 0));

    // G4.
    let before = s.snapshot();
    let e = s.err(
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        json!({ "g": sales }),
    );
    assert_eq!(code(&e), "GROUP_HAS_LICENSES", "{e:#}");
    assert_eq!(s.snapshot(), before, "nothing changes");

    // Remove its licenses, let processing withdraw them: the members' seats are free.
    let g = s.assign_group(&sales, json!([]), &[E3]);
    assert_eq!(g["assignedLicenses"], json!([]));
    assert_eq!(g["licenseProcessingState"], "QUEUED");
    s.wait_complete(&sales);
    assert_eq!(s.seats(E3), (2, 0, 2));
    for u in &users {
        assert_eq!(s.states(u), Vec::<Value>::new(), "user {u}");
        assert_eq!(held_products(&s, u), Vec::<String>::new());
    }

    let deleted = s.ok(
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        json!({ "g": sales }),
    );
    assert_eq!(deleted["deleteGroup"], sales.as_str());
    assert!(
        s.ok(
            "query($g: ID!) { group(id: $g) { id } }",
            json!({ "g": sales })
        )["group"]
            .is_null()
    );
    for u in &users {
        let user = s.ok(
            "query($u: ID) { user(id: $u) { id memberOf { id } } }",
            json!({ "u": u }),
        )["user"]
            .clone();
        assert_eq!(
            user,
            json!({ "id": u, "memberOf": [] }),
            "users stay, without the group"
        );
    }
    assert_eq!(
        int(&s.ok("{ groups { totalCount } }", json!({}))["groups"]["totalCount"]),
        0
    );
}
