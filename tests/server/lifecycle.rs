//! What the scenarios touch only in passing: the paging conventions of graphql-api.md, leaving a
//! group (P3, P5) and deleting a user (P7).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::harness::{Fresh, Server, fresh, license, node_ids, scenario_rules, str_of};

const E3: &str = "ENTERPRISEPACK";

#[test]
fn paging_defaults_caps_orders_and_counts() {
    let s = fresh();
    // 1,005 users in three requests of aliased createUser mutations.
    let mut ids: Vec<String> = Vec::new();
    for start in (0..1005).step_by(500) {
        let end = (start + 500).min(1005);
        let mut doc = String::from("mutation {");
        for n in start..end {
            write!(
                doc,
                " u{n}: createUser(input: {{ userPrincipalName: \"p{n}@contoso.com\", displayName: \"P {n}\" }}) {{ id }}"
            )
            .expect("write");
        }
        doc.push('}');
        let data = s.ok(&doc, json!({}));
        ids.extend((start..end).map(|n| str_of(&data[format!("u{n}")]["id"])));
    }
    let page = |first: Value, after: Value| -> Value {
        s.ok(
            "query($f: Int, $a: String) { users(first: $f, after: $a) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }",
            json!({ "f": first, "a": after }),
        )["users"]
            .clone()
    };
    // `first` defaults to 100; users by id; totalCount exact.
    let p = page(Value::Null, Value::Null);
    assert_eq!(p["totalCount"], 1005);
    assert_eq!(node_ids(&p), ids[..100].to_vec());
    assert_eq!(p["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        p["pageInfo"]["endCursor"], p["edges"][99]["cursor"],
        "endCursor is the last edge's cursor"
    );
    // Capped at 1,000.
    let p = page(json!(5000), Value::Null);
    assert_eq!(node_ids(&p), ids[..1000].to_vec());
    assert_eq!(p["pageInfo"]["hasNextPage"], true);
    let rest = page(json!(1000), p["pageInfo"]["endCursor"].clone());
    assert_eq!(node_ids(&rest), ids[1000..].to_vec());
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    assert_eq!(rest["totalCount"], 1005);
    // `first: 0`: no edges, the count still exact.
    let none = page(json!(0), Value::Null);
    assert_eq!(node_ids(&none), Vec::<String>::new());
    assert_eq!(none["totalCount"], 1005);
    assert_eq!(none["pageInfo"]["hasNextPage"], true);

    // Groups by id; members in the order they joined, not by id.
    let g1 = s.create_group("One");
    let g2 = s.create_group("Two");
    let order = [&ids[7], &ids[3], &ids[5]];
    s.add_members(&g1, &[order[0]]);
    s.add_members(&g1, &[order[1], order[2], order[0]]);
    let members = s.ok(
        "query($g: ID!) { group(id: $g) { memberCount members { totalCount edges { node { id } } } } }",
        json!({ "g": g1 }),
    )["group"]
        .clone();
    assert_eq!(members["memberCount"], 3);
    assert_eq!(members["members"]["totalCount"], 3);
    assert_eq!(
        node_ids(&members["members"]),
        order.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "join order; a user already a member keeps their place"
    );
    let groups = s.ok(
        "{ groups(first: 1) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }",
        json!({}),
    )["groups"]
        .clone();
    assert_eq!(groups["totalCount"], 2);
    assert_eq!(groups["edges"][0]["node"]["id"], g1.as_str());
    let next = s.ok(
        "query($a: String) { groups(first: 1, after: $a) { pageInfo { hasNextPage } edges { node { id } } } }",
        json!({ "a": groups["pageInfo"]["endCursor"] }),
    )["groups"]
        .clone();
    assert_eq!(next["edges"][0]["node"]["id"], g2.as_str());
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
}

#[test]
fn leaving_a_group_and_deleting_a_user_free_seats_p3_p7() {
    let s = fresh();
    s.set_prepaid(E3, 2);
    let sales = s.create_group("Sales");
    s.assign_group(&sales, json!([license(E3, &[])]), &[]);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    let bob = s.create_user("bob@contoso.com", Some("US"));
    let cat = s.create_user("cat@contoso.com", Some("US"));
    s.add_members(&sales, &[&ann, &bob, &cat]);
    s.wait_complete(&sales);
    assert_eq!(s.seats(E3), (2, 2, 0));
    assert_eq!(
        s.state_of(&cat, E3, Some(&sales))["error"],
        "COUNT_VIOLATION"
    );

    // P3, P5: leaving withdraws the assignment (no dependency here) and frees the seat.
    let g = s.remove_members(&sales, &[&bob]);
    assert_eq!(g["memberCount"], 2);
    assert_eq!(
        g["licenseProcessingState"], "QUEUED",
        "the withdrawal is queued: {g:#}"
    );
    s.wait_complete(&sales);
    assert_eq!(s.states(&bob), Vec::<Value>::new());
    assert_eq!(s.seats(E3), (2, 1, 1));
    // Leaving while in ERROR: the assignment that was never applied is dropped.
    s.remove_members(&sales, &[&cat]);
    s.wait_complete(&sales);
    assert_eq!(s.states(&cat), Vec::<Value>::new());
    let group = s.group(&sales);
    assert_eq!(group["licenseErrorCount"], 0, "{group:#}");
    assert_eq!(s.seats(E3), (2, 1, 1));

    // P7: deleting a user withdraws everything with no checks and frees the seats.
    s.add_members(&sales, &[&cat]);
    s.wait_complete(&sales);
    assert_eq!(s.state_of(&cat, E3, Some(&sales))["state"], "ACTIVE");
    assert_eq!(s.seats(E3), (2, 2, 0));
    let deleted = s.ok(
        "mutation($u: ID!) { deleteUser(id: $u) }",
        json!({ "u": ann }),
    );
    assert_eq!(deleted["deleteUser"], ann.as_str());
    assert!(s.ok("query($u: ID) { user(id: $u) { id } }", json!({ "u": ann }))["user"].is_null());
    assert_eq!(s.seats(E3), (2, 1, 1));
    let group = s.group(&sales);
    assert_eq!(group["memberCount"], 1);
    assert_eq!(node_ids(&group["members"]), vec![cat.clone()]);
}

const E1: &str = "STANDARDPACK";

#[test]
fn p4_a_new_usage_location_revalidates_and_takes_nothing_away() {
    let s = fresh();
    s.set_prepaid(E1, 5);
    let teams = s.create_group("Teams");
    s.assign_group(&teams, json!([license(E1, &[])]), &[]);
    let gus = s.create_user("gus@contoso.com", Some("US"));
    s.add_members(&teams, &[&gus]);
    s.wait_complete(&teams);
    let active = s.state_of(&gus, E1, Some(&teams));
    assert_eq!(active["state"], "ACTIVE");

    // P5 then P4: TEAMS1 is unavailable in CN; the applied assignment stays, with the error.
    s.update_user(&gus, json!({ "usageLocation": "CN" }));
    s.wait_idle();
    let st = s.state_of(&gus, E1, Some(&teams));
    assert_eq!(st["state"], "ACTIVE_WITH_ERROR", "{st:#}");
    assert_eq!(st["error"], "PROHIBITED_IN_USAGE_LOCATION_VIOLATION");
    let v = &st["errorDetail"]["violations"][0];
    assert_eq!(v["usageLocation"], "CN");
    assert_ne!(
        st["lastUpdatedDateTime"], active["lastUpdatedDateTime"],
        "a changed state has a new time"
    );
    assert_eq!(s.seats(E1), (5, 1, 4), "P4: nothing taken away");
    let held = s.held(&gus);
    assert_eq!(held["hasLicenseErrors"], true);
    assert_eq!(held["assignedLicenses"][0]["product"]["skuPartNumber"], E1);
    let group = s.group(&teams);
    assert_eq!(
        group["licenseErrorCounts"],
        json!([{ "error": "PROHIBITED_IN_USAGE_LOCATION_VIOLATION", "count": 1 }])
    );

    // A later pass that succeeds makes it ACTIVE again.
    s.update_user(&gus, json!({ "usageLocation": "US" }));
    s.wait_idle();
    let st = s.state_of(&gus, E1, Some(&teams));
    assert_eq!(
        (st["state"].clone(), st["error"].clone()),
        (json!("ACTIVE"), json!("NONE"))
    );
    assert!(st["errorDetail"].is_null());
    assert_eq!(s.seats(E1), (5, 1, 4));
}

#[test]
fn p2_a_failed_new_configuration_keeps_the_last_one_applied() {
    let s = fresh();
    s.set_prepaid(E1, 5);
    s.set_prepaid(E3, 5);
    // dan: STANDARDPACK directly, SharePoint (Plan 1) disabled, so Exchange (Plan 1) is on.
    let dan = s.create_user("dan@contoso.com", Some("US"));
    s.assign_direct(&dan, json!([license(E1, &["SHAREPOINTSTANDARD"])]), &[]);
    // The group's ENTERPRISEPACK without Exchange (Plan 2): no clash.
    let g = s.create_group("E3 no Exchange");
    s.assign_group(&g, json!([license(E3, &["EXCHANGE_S_ENTERPRISE"])]), &[]);
    s.add_members(&g, &[&dan]);
    s.wait_complete(&g);
    assert_eq!(s.state_of(&dan, E3, Some(&g))["state"], "ACTIVE");
    let enabled = |s: &crate::harness::Fresh| -> Vec<String> {
        let held = s.held(&dan);
        let entry = held["assignedLicenses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["product"]["skuPartNumber"] == E3)
            .cloned()
            .unwrap_or_else(|| panic!("dan holds ENTERPRISEPACK: {held:#}"));
        let mut plans = crate::harness::plan_names(&entry["enabledPlans"]);
        plans.sort();
        plans
    };
    assert_eq!(enabled(&s), vec!["SHAREPOINTENTERPRISE", "TEAMS1"]);

    // The group enables Exchange (Plan 2): it clashes with dan's Exchange (Plan 1) (C3). The
    // assignment stays applied with its last configuration, ACTIVE_WITH_ERROR (P2).
    let answer = s.assign_group(&g, json!([license(E3, &[])]), &[]);
    assert_eq!(answer["licenseProcessingState"], "QUEUED");
    s.wait_complete(&g);
    let st = s.state_of(&dan, E3, Some(&g));
    assert_eq!(st["state"], "ACTIVE_WITH_ERROR", "{st:#}");
    assert_eq!(st["error"], "MUTUALLY_EXCLUSIVE_VIOLATION");
    assert_eq!(
        st["disabledPlans"],
        json!([]),
        "the configuration the group asks for"
    );
    let v = &st["errorDetail"]["violations"];
    assert_eq!(v.as_array().unwrap().len(), 1, "one pair: {v:#}");
    assert_eq!(
        v[0]["conflictingPlan"]["servicePlanName"],
        "EXCHANGE_S_STANDARD"
    );
    assert_eq!(v[0]["conflictingSource"]["direct"], true);
    assert_eq!(
        enabled(&s),
        vec!["SHAREPOINTENTERPRISE", "TEAMS1"],
        "last applied"
    );
    assert_eq!(s.seats(E3), (5, 1, 4));
    assert_eq!(
        node_ids(&s.group(&g)["membersWithLicenseErrors"]),
        vec![dan.clone()]
    );

    // Disabling the clashing plan on the direct license, then reprocessing, applies it.
    s.assign_direct(
        &dan,
        json!([license(E1, &["SHAREPOINTSTANDARD", "EXCHANGE_S_STANDARD"])]),
        &[],
    );
    s.reprocess_group(&g);
    s.wait_complete(&g);
    assert_eq!(s.state_of(&dan, E3, Some(&g))["state"], "ACTIVE");
    assert_eq!(
        enabled(&s),
        vec!["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"]
    );
}

#[test]
fn error_counts_largest_first_and_the_error_list_pages() {
    let s = fresh();
    s.set_prepaid(E3, 1);
    let g = s.create_group("Mixed");
    s.assign_group(&g, json!([license(E3, &[])]), &[]);
    let first = s.create_user("first@contoso.com", Some("US"));
    let dup1 = s.create_user_with("d1@contoso.com", Some("US"), &["smtp:x@contoso.com"]);
    let dup2 = s.create_user_with("d2@contoso.com", Some("US"), &["smtp:X@contoso.com"]);
    let late1 = s.create_user("late1@contoso.com", Some("US"));
    let late2 = s.create_user("late2@contoso.com", Some("US"));
    let late3 = s.create_user("late3@contoso.com", Some("US"));
    s.add_members(&g, &[&first, &dup1, &dup2, &late1, &late2, &late3]);
    s.wait_complete(&g);
    let group = s.group(&g);
    assert_eq!(group["licenseErrorCount"], 5);
    assert_eq!(
        group["licenseErrorCounts"],
        json!([
            { "error": "COUNT_VIOLATION", "count": 3 },
            { "error": "UNIQUENESS_VIOLATION", "count": 2 },
        ]),
        "largest first"
    );
    // Paged one at a time, then filtered.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = s.ok(
            "query($g: ID!, $a: String) { group(id: $g) { membersWithLicenseErrors(first: 2, after: $a) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } }",
            json!({ "g": g, "a": after }),
        )["group"]["membersWithLicenseErrors"]
            .clone();
        assert_eq!(page["totalCount"], 5);
        seen.extend(node_ids(&page));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        seen,
        vec![
            dup1.clone(),
            dup2.clone(),
            late1.clone(),
            late2.clone(),
            late3.clone()
        ]
    );
    let only = s.ok(
        "query($g: ID!) { group(id: $g) { membersWithLicenseErrors(error: UNIQUENESS_VIOLATION, first: 1) { totalCount pageInfo { hasNextPage } edges { node { id } } } } }",
        json!({ "g": g }),
    )["group"]["membersWithLicenseErrors"]
        .clone();
    assert_eq!(only["totalCount"], 2);
    assert_eq!(node_ids(&only), vec![dup1]);
    assert_eq!(only["pageInfo"]["hasNextPage"], true);
}

#[test]
fn p4_a_rules_reload_triggers_nothing_and_reprocessing_revalidates() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = crate::harness::copy_rules(&crate::harness::scenario_rules(), dir.path(), "rules");
    let server = crate::harness::Server::start(&dir.path().join("t.db"), &rules);
    let s = crate::harness::Fresh { server, dir };
    s.set_prepaid(E3, 5);
    let g = s.create_group("Sales");
    s.assign_group(&g, json!([license(E3, &[])]), &[]);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    s.add_members(&g, &[&ann]);
    s.wait_complete(&g);
    assert_eq!(s.state_of(&ann, E3, Some(&g))["state"], "ACTIVE");

    // New policy: SharePoint (Plan 2) is unavailable in the US.
    std::fs::write(
        rules.join("policy.rules"),
        "unavailable SHAREPOINTENTERPRISE in { US }\n",
    )
    .expect("write policy.rules");
    let reloaded = s.ok(
        "mutation { reloadRules { locationRuleCount lastReloadErrors { message } } }",
        json!({}),
    );
    assert_eq!(
        reloaded["reloadRules"]["locationRuleCount"], 2,
        "{reloaded:#}"
    );
    // P5: a reload triggers nothing.
    s.wait_idle();
    assert_eq!(s.state_of(&ann, E3, Some(&g))["state"], "ACTIVE");
    // P4 on reprocessing: ACTIVE_WITH_ERROR, nothing taken away.
    s.reprocess_group(&g);
    s.wait_complete(&g);
    let st = s.state_of(&ann, E3, Some(&g));
    assert_eq!(st["state"], "ACTIVE_WITH_ERROR", "{st:#}");
    assert_eq!(st["error"], "PROHIBITED_IN_USAGE_LOCATION_VIOLATION");
    assert_eq!(
        crate::harness::plan_names(&st["errorDetail"]["violations"][0]["plans"]),
        vec!["SHAREPOINTENTERPRISE"]
    );
    assert_eq!(s.seats(E3), (5, 1, 4));
    assert_eq!(
        s.held(&ann)["assignedLicenses"][0]["product"]["skuPartNumber"],
        E3
    );
}

/// A stored error may name a user or a group that was deleted since (C1's other user, C3's
/// source): reading it must still work, naming what is gone as null, until a reprocess
/// refreshes the error.
#[test]
fn stored_errors_naming_deleted_users_and_groups_still_read() {
    let s = fresh();
    s.set_prepaid(E3, 5);
    s.set_prepaid(E1, 5);
    // C1: jon's error names kim; kim is deleted.
    let jon = s.create_user_with("jon@contoso.com", Some("US"), &["smtp:sales@contoso.com"]);
    let kim = s.create_user_with("kim@contoso.com", Some("US"), &["smtp:sales@contoso.com"]);
    let mail = s.create_group("Mail");
    s.assign_group(&mail, json!([license(E3, &[])]), &[]);
    s.add_members(&mail, &[&jon, &kim]);
    s.wait_complete(&mail);
    s.ok(
        "mutation($u: ID!) { deleteUser(id: $u) }",
        json!({ "u": kim }),
    );
    let st = s.state_of(&jon, E3, Some(&mail));
    assert_eq!(
        st["error"], "UNIQUENESS_VIOLATION",
        "nothing automatic: {st:#}"
    );
    let v = &st["errorDetail"]["violations"][0];
    assert_eq!(v["proxyAddress"], "smtp:sales@contoso.com");
    assert!(
        v["conflictingUser"].is_null(),
        "the other user is gone: {v:#}"
    );
    s.reprocess_group(&mail);
    s.wait_complete(&mail);
    assert_eq!(s.state_of(&jon, E3, Some(&mail))["state"], "ACTIVE");

    // C3: dan's error from "E3" names a plan from group "E1", which is then emptied and deleted.
    let dan = s.create_user("dan@contoso.com", Some("US"));
    let e1 = s.create_group("E1");
    s.assign_group(&e1, json!([license(E1, &[])]), &[]);
    s.add_members(&e1, &[&dan]);
    s.wait_complete(&e1);
    let e3 = s.create_group("E3");
    s.assign_group(&e3, json!([license(E3, &[])]), &[]);
    s.add_members(&e3, &[&dan]);
    s.wait_complete(&e3);
    let st = s.state_of(&dan, E3, Some(&e3));
    assert_eq!(st["error"], "MUTUALLY_EXCLUSIVE_VIOLATION", "{st:#}");
    assert_eq!(
        st["errorDetail"]["violations"][0]["conflictingSource"]["group"]["displayName"],
        "E1"
    );
    s.assign_group(&e1, json!([]), &[E1]);
    s.wait_complete(&e1);
    s.ok(
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        json!({ "g": e1 }),
    );
    let st = s.state_of(&dan, E3, Some(&e3));
    assert_eq!(
        st["error"], "MUTUALLY_EXCLUSIVE_VIOLATION",
        "nothing automatic: {st:#}"
    );
    let source = &st["errorDetail"]["violations"][0]["conflictingSource"];
    assert_eq!(source["direct"], false, "{source:#}");
    assert!(source["group"].is_null(), "the group is gone: {source:#}");
    assert_eq!(source["product"]["skuPartNumber"], E1);
    s.reprocess_user(&dan);
    s.wait_idle();
    assert_eq!(s.state_of(&dan, E3, Some(&e3))["state"], "ACTIVE");
}

/// Found by the differential test: SQLite gives a new row max(id) + 1, so deleting the newest
/// user (or group) and creating another gave the newcomer the deleted one's id, and a stored
/// error naming the deleted user (C1's other user) came to name the newcomer. Ids are never given
/// twice, across restarts too.
#[test]
fn ids_of_deleted_users_and_groups_are_never_given_again() {
    let Fresh { server: s, dir } = fresh();
    s.set_prepaid(E3, 5);
    let jon = s.create_user_with("jon@contoso.com", Some("US"), &["smtp:sales@contoso.com"]);
    let kim = s.create_user_with("kim@contoso.com", Some("US"), &["SMTP:Sales@contoso.com"]);
    let mail = s.create_group("Mail");
    s.assign_group(&mail, json!([license(E3, &[])]), &[]);
    s.add_members(&mail, &[&jon]);
    s.wait_complete(&mail);
    let v = &s.state_of(&jon, E3, Some(&mail))["errorDetail"]["violations"][0];
    assert_eq!(v["conflictingUser"]["id"], kim.as_str(), "C1: {v:#}");

    s.ok(
        "mutation($u: ID!) { deleteUser(id: $u) }",
        json!({ "u": kim }),
    );
    let lea = s.create_user("lea@contoso.com", Some("US"));
    assert_ne!(lea, kim, "the deleted user's id was given again");
    let v = &s.state_of(&jon, E3, Some(&mail))["errorDetail"]["violations"][0];
    assert!(
        v["conflictingUser"].is_null(),
        "the stored error names the deleted user, not the newcomer: {v:#}"
    );

    let temp = s.create_group("Temp");
    s.ok(
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        json!({ "g": temp }),
    );
    let next = s.create_group("Next");
    assert_ne!(next, temp, "the deleted group's id was given again");

    // The highest ids given are stored: a restart does not forget them.
    s.ok(
        "mutation($u: ID!) { deleteUser(id: $u) }",
        json!({ "u": lea }),
    );
    s.ok(
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        json!({ "g": next }),
    );
    drop(s);
    let s = Server::start(&dir.path().join("t.db"), &scenario_rules());
    let max = |ids: &[&String]| ids.iter().map(|i| i.parse::<i64>().expect("id")).max();
    let user = s.create_user("max@contoso.com", None);
    let group = s.create_group("Again");
    assert!(
        user.parse::<i64>().ok() > max(&[&jon, &kim, &lea]),
        "user id {user} after a restart"
    );
    assert!(
        group.parse::<i64>().ok() > max(&[&mail, &temp, &next]),
        "group id {group} after a restart"
    );
}

const WA: &str = "WORKPLACE_ANALYTICS";

/// Found by the differential test: adding members processes them for the group (P5), and a
/// withdrawal that C4 blocked is retried by every later processing of it (P3). A former member
/// who joins again a group that has no license left used to be skipped, its blocked withdrawal
/// and its error kept although nothing blocked it any more.
#[test]
fn p5_rejoining_a_group_without_licenses_retries_a_blocked_withdrawal() {
    let s = fresh();
    s.set_prepaid(E3, 5);
    s.set_prepaid(WA, 5);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    let mail = s.create_group("Mail");
    let backup = s.create_group("Backup");
    s.assign_group(&mail, json!([license(E3, &[])]), &[]);
    s.assign_group(&backup, json!([license(E3, &[])]), &[]);
    s.add_members(&mail, &[&ann]);
    s.wait_complete(&mail);
    // Workplace Analytics needs Exchange, which only Mail's E3 gives.
    s.assign_direct(&ann, json!([license(WA, &[])]), &[]);
    s.assign_group(&mail, json!([]), &[E3]);
    s.wait_complete(&mail);
    s.remove_members(&mail, &[&ann]);
    s.wait_complete(&mail);
    let st = s.state_of(&ann, E3, Some(&mail));
    assert_eq!(st["state"], "ACTIVE_WITH_ERROR", "P3: blocked: {st:#}");
    assert_eq!(st["error"], "DEPENDENCY_VIOLATION", "{st:#}");

    // Exchange through Backup too: Mail's withdrawal could go, but nothing has retried it.
    s.add_members(&backup, &[&ann]);
    s.wait_complete(&backup);
    assert_eq!(s.state_of(&ann, E3, Some(&backup))["state"], "ACTIVE");
    assert!(s.has_state(&ann, E3, Some(&mail)), "nothing automatic yet");

    s.add_members(&mail, &[&ann]);
    s.wait_idle();
    assert!(
        !s.has_state(&ann, E3, Some(&mail)),
        "joining again processed ann for Mail: the withdrawal went: {:#}",
        json!(s.states(&ann))
    );
    let group = s.group(&mail);
    assert_eq!(group["licenseErrorCount"], 0, "{group:#}");
    assert_eq!(s.seats(E3).1, 1, "ann holds E3 once, through Backup (L1)");
}
