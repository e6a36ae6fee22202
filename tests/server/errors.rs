//! One test per error code of graphql-api.md's conventions, each checking that the failed
//! mutation changed nothing (the whole visible tenant is read before and after). Rule ids refer
//! to licensing.md.

use serde_json::{Value, json};

use crate::harness::{
    ASSIGN_DIRECT, ASSIGN_GROUP, Fresh, Server, code, copy_rules, fresh, license, plan_names,
    scenario_rules, sorted, str_of,
};

const E3: &str = "ENTERPRISEPACK";
const E1: &str = "STANDARDPACK";
const WA: &str = "WORKPLACE_ANALYTICS";

/// A small tenant so that "nothing changed" means something: seats, ann holding STANDARDPACK
/// directly, "Sales" with ENTERPRISEPACK and bob in it, gus without a usage location.
struct Tenant {
    ann: String,
    bob: String,
    gus: String,
    sales: String,
}

fn tenant(s: &Server) -> Tenant {
    s.set_prepaid(E1, 10);
    s.set_prepaid(E3, 10);
    s.set_prepaid(WA, 10);
    let ann = s.create_user_with("ann@contoso.com", Some("US"), &["SMTP:ann@contoso.com"]);
    let bob = s.create_user("bob@contoso.com", Some("US"));
    let gus = s.create_user("gus@contoso.com", None);
    s.assign_direct(&ann, json!([license(E1, &[])]), &[]);
    let sales = s.create_group("Sales");
    s.assign_group(&sales, json!([license(E3, &[])]), &[]);
    s.add_members(&sales, &[&bob]);
    s.wait_complete(&sales);
    assert_eq!(s.state_of(&bob, E3, Some(&sales))["state"], "ACTIVE");
    Tenant {
        ann,
        bob,
        gus,
        sales,
    }
}

/// Runs `query` (which must fail with `expected`) and checks the tenant is unchanged.
fn refused(s: &Fresh, label: &str, expected: &str, query: &str, variables: Value) -> Value {
    let before = s.snapshot();
    let e = s.err(query, variables);
    assert_eq!(code(&e), expected, "{label}: {e:#}");
    assert!(
        !str_of(&e["message"]).is_empty(),
        "{label}: a message: {e:#}"
    );
    s.wait_idle();
    assert_eq!(
        s.snapshot(),
        before,
        "{label}: nothing changes when a mutation fails"
    );
    e
}

const UPDATE_USER: &str =
    "mutation($u: ID!, $i: UpdateUserInput!) { updateUser(id: $u, input: $i) { id } }";
const CREATE_USER: &str = "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }";
const ADD_MEMBERS: &str =
    "mutation($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { id } }";
const REMOVE_MEMBERS: &str =
    "mutation($g: ID!, $u: [ID!]!) { removeGroupMembers(groupId: $g, userIds: $u) { id } }";
const SET_SEATS: &str = "mutation($s: String!, $n: Int!) { setPrepaidUnits(skuPartNumber: $s, units: $n) { prepaidUnits } }";

#[test]
fn bad_user_input_is_refused_and_changes_nothing() {
    let s = fresh();
    let t = tenant(&s);
    let bad = |label: &str, query: &str, variables: Value| {
        refused(&s, label, "BAD_USER_INPUT", query, variables);
    };
    let user = |upn: &str, location: Value| json!({ "i": { "userPrincipalName": upn, "displayName": "X", "usageLocation": location } });

    // Seats: an unknown product, a negative number (graphql-api.md conventions).
    bad(
        "unknown product",
        SET_SEATS,
        json!({ "s": "NO_SUCH_SKU", "n": 5 }),
    );
    bad("negative seats", SET_SEATS, json!({ "s": E3, "n": -1 }));

    // Country codes are ISO 3166-1 alpha-2.
    bad("USA", CREATE_USER, user("new@contoso.com", json!("USA")));
    bad(
        "unassigned code",
        CREATE_USER,
        user("new@contoso.com", json!("XX")),
    );
    bad(
        "updateUser USA",
        UPDATE_USER,
        json!({ "u": t.ann, "i": { "usageLocation": "USA" } }),
    );
    bad(
        "directory USA",
        "mutation { updateDirectory(defaultUsageLocation: \"USA\") { defaultUsageLocation } }",
        json!({}),
    );

    bad(
        "location set and cleared at once",
        UPDATE_USER,
        json!({ "u": t.ann, "i": { "usageLocation": "FR", "clearUsageLocation": true } }),
    );
    bad(
        "a proxy address twice",
        UPDATE_USER,
        json!({ "u": t.ann, "i": { "proxyAddresses": ["smtp:a@contoso.com", "SMTP:A@contoso.com"] } }),
    );

    // userPrincipalName is unique, case-insensitively.
    bad(
        "duplicate UPN",
        CREATE_USER,
        user("ANN@Contoso.COM", json!("US")),
    );
    bad(
        "empty display name",
        CREATE_USER,
        json!({ "i": { "userPrincipalName": "x@contoso.com", "displayName": "  " } }),
    );

    // Malformed ids.
    bad(
        "malformed user id",
        UPDATE_USER,
        json!({ "u": "abc", "i": { "displayName": "Y" } }),
    );
    bad(
        "malformed group id",
        ADD_MEMBERS,
        json!({ "g": "abc", "u": [t.ann] }),
    );
    bad(
        "malformed member id",
        ADD_MEMBERS,
        json!({ "g": t.sales, "u": [t.ann, "x1"] }),
    );
    bad(
        "negative id",
        "mutation { reprocessUser(userId: \"-3\") { id } }",
        json!({}),
    );
    bad(
        "malformed id in a query",
        "{ group(id: \"abc\") { id } }",
        json!({}),
    );

    // Lists: empty, over the cap of 1,000.
    bad("no members", ADD_MEMBERS, json!({ "g": t.sales, "u": [] }));
    let many: Vec<&str> = std::iter::repeat_n(t.ann.as_str(), 1001).collect();
    bad(
        "over 1000 ids",
        ADD_MEMBERS,
        json!({ "g": t.sales, "u": many }),
    );

    // Paging: a cursor the server did not make, one of another list, a negative `first`.
    bad(
        "junk cursor",
        "{ users(after: \"zz\") { totalCount } }",
        json!({}),
    );
    let member_cursor = s.ok(
        "query($g: ID!) { group(id: $g) { members { edges { cursor } } } }",
        json!({ "g": t.sales }),
    )["group"]["members"]["edges"][0]["cursor"]
        .clone();
    bad(
        "cursor of another list",
        "query($a: String) { users(after: $a) { totalCount } }",
        json!({ "a": member_cursor }),
    );
    bad(
        "negative first",
        "{ users(first: -1) { totalCount } }",
        json!({}),
    );
    bad(
        "user by id and name",
        "{ user(id: \"1\", userPrincipalName: \"ann@contoso.com\") { id } }",
        json!({}),
    );

    // D1: unknown product or plan, a disabled plan that is not in the product.
    let direct = |add: Value, remove: Value| json!({ "u": t.ann, "add": add, "remove": remove });
    bad(
        "D1 unknown product",
        ASSIGN_DIRECT,
        direct(json!([license("NO_SUCH_SKU", &[])]), json!([])),
    );
    bad(
        "D1 unknown plan",
        ASSIGN_DIRECT,
        direct(json!([license(E3, &["NO_SUCH_PLAN"])]), json!([])),
    );
    bad(
        "D1 plan outside the product",
        ASSIGN_DIRECT,
        direct(json!([license(E1, &["EXCHANGE_S_ENTERPRISE"])]), json!([])),
    );
    bad(
        "D1 unknown product removed",
        ASSIGN_DIRECT,
        direct(json!([]), json!(["NO_SUCH_SKU"])),
    );
    bad(
        "D1 nothing to do",
        ASSIGN_DIRECT,
        direct(json!([]), json!([])),
    );
    // D5: a license inherited from a group is changed on the group, not on the user.
    bad(
        "D5 inherited license",
        ASSIGN_DIRECT,
        json!({ "u": t.bob, "add": [], "remove": [E3] }),
    );

    // G3: removing a product the group does not have, unknown names, a plan outside the product.
    let group = |add: Value, remove: Value| json!({ "g": t.sales, "add": add, "remove": remove });
    bad(
        "G3 remove absent product",
        ASSIGN_GROUP,
        group(json!([]), json!([E1])),
    );
    bad(
        "G3 unknown product",
        ASSIGN_GROUP,
        group(json!([license("NO_SUCH_SKU", &[])]), json!([])),
    );
    bad(
        "G3 plan outside the product",
        ASSIGN_GROUP,
        group(json!([license(E3, &["EXCHANGE_S_STANDARD"])]), json!([])),
    );
}

#[test]
fn not_found_for_unknown_users_and_groups_changes_nothing() {
    let s = fresh();
    let t = tenant(&s);
    let missing = "999999";
    let nf = |label: &str, query: &str, variables: Value| {
        refused(&s, label, "NOT_FOUND", query, variables);
    };
    nf(
        "updateUser",
        UPDATE_USER,
        json!({ "u": missing, "i": { "displayName": "Y" } }),
    );
    nf(
        "deleteUser",
        "mutation($u: ID!) { deleteUser(id: $u) }",
        json!({ "u": missing }),
    );
    nf(
        "deleteGroup",
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        json!({ "g": missing }),
    );
    nf(
        "addGroupMembers: group",
        ADD_MEMBERS,
        json!({ "g": missing, "u": [t.ann] }),
    );
    nf(
        "addGroupMembers: user",
        ADD_MEMBERS,
        json!({ "g": t.sales, "u": [t.ann, missing] }),
    );
    nf(
        "removeGroupMembers: user",
        REMOVE_MEMBERS,
        json!({ "g": t.sales, "u": [t.bob, missing] }),
    );
    nf(
        "assignLicense",
        ASSIGN_DIRECT,
        json!({ "u": missing, "add": [license(E1, &[])], "remove": [] }),
    );
    nf(
        "assignGroupLicense",
        ASSIGN_GROUP,
        json!({ "g": missing, "add": [license(E1, &[])], "remove": [] }),
    );
    nf(
        "reprocessGroup",
        "mutation($g: ID!) { reprocessGroup(groupId: $g) { id } }",
        json!({ "g": missing }),
    );
    nf(
        "reprocessUser",
        "mutation($u: ID!) { reprocessUser(userId: $u) { id } }",
        json!({ "u": missing }),
    );

    // Queries answer null for an unknown id.
    let data = s.ok(
        "query($id: ID!) { user(id: $id) { id } group(id: $id) { id } byName: user(userPrincipalName: \"nobody@contoso.com\") { id } }",
        json!({ "id": missing }),
    );
    assert_eq!(data, json!({ "user": null, "group": null, "byName": null }));
    // userPrincipalName lookups ignore case.
    let data = s.ok(
        "{ user(userPrincipalName: \"ANN@contoso.com\") { id } }",
        json!({}),
    );
    assert_eq!(data["user"]["id"], t.ann.as_str());
}

#[test]
fn usage_location_required_for_direct_assignment_d2() {
    let s = fresh();
    let t = tenant(&s);
    // The directory has a default (US), but direct assignment does not inherit it (D2).
    let e = refused(
        &s,
        "D2",
        "USAGE_LOCATION_REQUIRED",
        ASSIGN_DIRECT,
        json!({ "u": t.gus, "add": [license(E1, &[])], "remove": [] }),
    );
    assert!(
        str_of(&e["message"])
            .to_lowercase()
            .contains("usage location"),
        "{e:#}"
    );
    // With a location of its own, the same call succeeds.
    s.update_user(&t.gus, json!({ "usageLocation": "US" }));
    s.assign_direct(&t.gus, json!([license(E1, &[])]), &[]);
    assert_eq!(s.state_of(&t.gus, E1, None)["state"], "ACTIVE");
    // D2 is about adding: with the location cleared again, removing needs none.
    let u = s.update_user(&t.gus, json!({ "clearUsageLocation": true }));
    assert_eq!(u["usageLocation"], Value::Null);
    assert_eq!(u["effectiveUsageLocation"], "US");
    refused(
        &s,
        "D2 again",
        "USAGE_LOCATION_REQUIRED",
        ASSIGN_DIRECT,
        json!({ "u": t.gus, "add": [license(WA, &[])], "remove": [] }),
    );
    s.assign_direct(&t.gus, json!([]), &[E1]);
    assert!(!s.has_state(&t.gus, E1, None));
    assert_eq!(s.seats(E1), (10, 1, 9), "ann's seat only");
}

#[test]
fn group_has_licenses_g4() {
    let s = fresh();
    let t = tenant(&s);
    refused(
        &s,
        "G4",
        "GROUP_HAS_LICENSES",
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        json!({ "g": t.sales }),
    );
    // A group without licenses is deleted at once, members or not.
    let empty = s.create_group("Empty");
    s.add_members(&empty, &[&t.ann]);
    let data = s.ok(
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        json!({ "g": empty }),
    );
    assert_eq!(data["deleteGroup"], empty.as_str());
    assert!(
        s.ok(
            "query($g: ID!) { group(id: $g) { id } }",
            json!({ "g": empty })
        )["group"]
            .is_null()
    );
}

/// The tenant as a client sees it, minus `rules.lastReloadErrors` (which a refused reload
/// sets on purpose).
fn without_reload_errors(mut snapshot: Value) -> Value {
    snapshot["head"]["rules"]
        .as_object_mut()
        .expect("rules")
        .remove("lastReloadErrors");
    snapshot
}

const RELOAD: &str = "mutation { reloadRules { planCount productCount files lastReloadErrors { file line column message } } }";
const RULES: &str = "{ rules { loadedAt planCount productCount files lastReloadErrors { file line column message } } }";

#[test]
fn rules_invalid_reloads_are_refused_and_the_rules_in_force_stay() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = copy_rules(&scenario_rules(), dir.path(), "rules");
    let server = Server::start(&dir.path().join("t.db"), &rules);
    let s = Fresh { server, dir };
    let t = tenant(&s);
    let in_force = s.ok(RULES, json!({}))["rules"].clone();
    assert_eq!(in_force["planCount"], 8);
    assert_eq!(in_force["productCount"], 4);
    assert_eq!(in_force["lastReloadErrors"], json!([]));

    // 1. A file that does not parse.
    std::fs::write(
        rules.join("broken.rules"),
        "# a mistake on line 2\nplan BROKEN \"no equals sign\"\n",
    )
    .expect("write broken.rules");
    let before = without_reload_errors(s.snapshot());
    let e = s.err(RELOAD, json!({}));
    assert_eq!(code(&e), "RULES_INVALID", "{e:#}");
    let details = e["extensions"]["details"]
        .as_array()
        .expect("details")
        .clone();
    assert!(!details.is_empty(), "{e:#}");
    assert!(
        str_of(&details[0]["file"]).ends_with("broken.rules"),
        "{details:#?}"
    );
    assert_eq!(details[0]["line"], 2, "{details:#?}");
    let after = s.snapshot();
    let errors = after["head"]["rules"]["lastReloadErrors"]
        .as_array()
        .expect("lastReloadErrors")
        .clone();
    assert!(
        !errors.is_empty(),
        "rules.lastReloadErrors keeps the diagnostics"
    );
    assert!(
        str_of(&errors[0]["file"]).ends_with("broken.rules"),
        "{errors:#?}"
    );
    assert_eq!(errors[0]["line"], 2);
    assert!(int_of(&errors[0]["column"]) >= 1, "{errors:#?}");
    assert!(!str_of(&errors[0]["message"]).is_empty());
    assert_eq!(
        without_reload_errors(after),
        before,
        "the rules in force and the tenant are unchanged"
    );
    // The old table still works: direct assignment and processing.
    s.assign_direct(&t.bob, json!([license(WA, &[])]), &[]);
    assert_eq!(s.state_of(&t.bob, WA, None)["state"], "ACTIVE");
    let cy = s.create_user("cy@contoso.com", Some("US"));
    s.add_members(&t.sales, &[&cy]);
    s.wait_complete(&t.sales);
    assert_eq!(s.state_of(&cy, E3, Some(&t.sales))["state"], "ACTIVE");

    // 2. Valid rules that drop a product still in use (ENTERPRISEPACK: group license,
    // assignments, seats) are refused too (rules-language.md).
    std::fs::remove_file(rules.join("broken.rules")).expect("remove broken.rules");
    let original = std::fs::read_to_string(rules.join("scenario.rules")).expect("read rules");
    let without_e3: String = original
        .lines()
        .filter(|l| !l.starts_with("product ENTERPRISEPACK"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(rules.join("scenario.rules"), &without_e3).expect("write rules");
    let before = without_reload_errors(s.snapshot());
    let e = s.err(RELOAD, json!({}));
    assert_eq!(code(&e), "RULES_INVALID", "{e:#}");
    assert!(
        e["extensions"]["details"]
            .to_string()
            .contains("ENTERPRISEPACK"),
        "{e:#}"
    );
    let after = s.snapshot();
    assert!(
        after["head"]["rules"]["lastReloadErrors"]
            .to_string()
            .contains("ENTERPRISEPACK"),
        "{:#}",
        after["head"]["rules"]
    );
    assert_eq!(without_reload_errors(after), before, "nothing changes");
    assert_eq!(s.seats(E3).1, 2, "ENTERPRISEPACK still counts its seats");

    // 3. A good reload (a new product) succeeds and clears the errors.
    std::fs::write(rules.join("scenario.rules"), &original).expect("restore rules");
    std::fs::write(
        rules.join("visio.rules"),
        "plan VISIO_CLIENT = \"Visio Desktop App\"\nproduct VISIOCLIENT = \"Visio Plan 2\" { VISIO_CLIENT }\n",
    )
    .expect("write visio.rules");
    let reloaded = s.ok(RELOAD, json!({}))["reloadRules"].clone();
    assert_eq!(reloaded["planCount"], 9, "{reloaded:#}");
    assert_eq!(reloaded["productCount"], 5, "{reloaded:#}");
    assert_eq!(reloaded["lastReloadErrors"], json!([]));
    assert!(
        reloaded["files"].to_string().contains("visio.rules"),
        "{reloaded:#}"
    );
    let now = s.ok(RULES, json!({}))["rules"].clone();
    assert_eq!(now["lastReloadErrors"], json!([]));
    assert_ne!(now["loadedAt"], in_force["loadedAt"], "a new table");
    s.set_prepaid("VISIOCLIENT", 3);
    s.assign_direct(&t.bob, json!([license("VISIOCLIENT", &[])]), &[]);
    assert_eq!(s.seats("VISIOCLIENT"), (3, 1, 2));
    // What was there before is intact.
    assert_eq!(s.state_of(&t.ann, E1, None)["state"], "ACTIVE");
    assert_eq!(s.state_of(&t.bob, E3, Some(&t.sales))["state"], "ACTIVE");
}

/// A reload that renames a product or a plan still in use is refused (rules-language.md); each
/// error points at the declaration the new rules dropped, where the rules in force have it, so
/// that the admin finds the line they renamed.
#[test]
fn a_reload_dropping_names_in_use_points_at_their_declarations() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = copy_rules(&scenario_rules(), dir.path(), "rules");
    let server = Server::start(&dir.path().join("t.db"), &rules);
    let s = Fresh { server, dir };
    s.set_prepaid(E3, 5);
    s.set_prepaid(E1, 5);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    s.assign_direct(&ann, json!([license(E1, &["SHAREPOINTSTANDARD"])]), &[]);
    let file = rules.join("scenario.rules");
    let original = std::fs::read_to_string(&file).expect("read rules");
    let line_col = |name: &str| {
        let (line, text) = original
            .lines()
            .enumerate()
            .find(|(_, l)| l.starts_with(name))
            .unwrap_or_else(|| panic!("`{name}` is declared in scenario.rules"));
        let word = name.trim_end().rsplit(' ').next().unwrap_or(name);
        (line as i64 + 1, text.find(word).unwrap_or(0) as i64 + 1)
    };
    let (product_line, product_column) = line_col("product ENTERPRISEPACK ");
    let (plan_line, plan_column) = line_col("plan SHAREPOINTSTANDARD ");

    // Renamed, and moved down: the place is the one in the rules in force.
    let renamed = format!(
        "# renamed\n# both\n{}",
        original
            .replace("ENTERPRISEPACK", "ENTERPRISEPACK_V2")
            .replace("SHAREPOINTSTANDARD", "SHAREPOINTSTANDARD_V2")
    );
    std::fs::write(&file, renamed).expect("write rules");
    let e = s.err(RELOAD, json!({}));
    assert_eq!(code(&e), "RULES_INVALID", "{e:#}");
    let errors = s.ok(RULES, json!({}))["rules"]["lastReloadErrors"].clone();
    let name = file.display().to_string();
    assert_eq!(
        errors,
        json!([
            {
                "file": name,
                "line": product_line,
                "column": product_column,
                "message": "product `ENTERPRISEPACK` is still used by assignments, group licenses or seat counts: the new rules must keep it (this is where the rules in force declare it)",
            },
            {
                "file": name,
                "line": plan_line,
                "column": plan_column,
                "message": "service plan `SHAREPOINTSTANDARD` is still used by assignments or group licenses: the new rules must keep it (this is where the rules in force declare it)",
            },
        ]),
        "{errors:#}"
    );
    assert_eq!(e["extensions"]["details"], errors, "{e:#}");
}

fn int_of(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The violations of a license error (D3, G1), in `extensions.details`.
fn details(e: &Value) -> Vec<Value> {
    e["extensions"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("a license error carries extensions.details: {e:#}"))
        .clone()
}

#[test]
fn direct_license_errors_carry_their_violations_d3() {
    let s = fresh();
    let t = tenant(&s);

    // C3: ann holds STANDARDPACK directly; ENTERPRISEPACK clashes on two pairs.
    let e = refused(
        &s,
        "D3 C3",
        "MUTUALLY_EXCLUSIVE_VIOLATION",
        ASSIGN_DIRECT,
        json!({ "u": t.ann, "add": [license(E3, &[])], "remove": [] }),
    );
    let violations = details(&e);
    let mut pairs: Vec<(Vec<String>, String)> = Vec::new();
    for v in &violations {
        assert_eq!(v["code"], "MUTUALLY_EXCLUSIVE_VIOLATION", "{v:#}");
        assert_eq!(v["conflictingSource"]["direct"], true, "{v:#}");
        assert_eq!(
            v["conflictingSource"]["product"]["skuPartNumber"], E1,
            "{v:#}"
        );
        assert!(!str_of(&v["message"]).is_empty());
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
        ]
    );
    // D3: a swap in one call has no transient conflict.
    let user = s.assign_direct(&t.ann, json!([license(E3, &[])]), &[E1]);
    assert_eq!(
        user["assignedLicenses"].as_array().unwrap().len(),
        1,
        "{user:#}"
    );
    assert_eq!(user["assignedLicenses"][0]["product"]["skuPartNumber"], E3);
    assert_eq!(s.seats(E1), (10, 0, 10));
    assert_eq!(s.seats(E3), (10, 2, 8));

    // C4: WORKPLACE_ANALYTICS without an Exchange plan.
    let cy = s.create_user("cy@contoso.com", Some("US"));
    let e = refused(
        &s,
        "D3 C4",
        "DEPENDENCY_VIOLATION",
        ASSIGN_DIRECT,
        json!({ "u": cy, "add": [license(WA, &[])], "remove": [] }),
    );
    let v = &details(&e)[0];
    assert_eq!(plan_names(&v["plans"]), vec![WA]);
    assert_eq!(
        sorted(plan_names(&v["missingPrerequisites"])),
        vec!["EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_STANDARD"]
    );

    // C2: TEAMS1 is unavailable in CN.
    let li = s.create_user("li@contoso.com", Some("CN"));
    let e = refused(
        &s,
        "D3 C2",
        "PROHIBITED_IN_USAGE_LOCATION_VIOLATION",
        ASSIGN_DIRECT,
        json!({ "u": li, "add": [license(E1, &[])], "remove": [] }),
    );
    let v = &details(&e)[0];
    assert_eq!(v["usageLocation"], "CN");
    assert_eq!(plan_names(&v["plans"]), vec!["TEAMS1"]);
    // Disabling TEAMS1 makes it assignable.
    s.assign_direct(&li, json!([license(E1, &["TEAMS1"])]), &[]);

    // C1: a proxy address another user has.
    let dup = s.create_user_with("dup@contoso.com", Some("US"), &["smtp:ANN@contoso.com"]);
    let e = refused(
        &s,
        "D3 C1",
        "UNIQUENESS_VIOLATION",
        ASSIGN_DIRECT,
        json!({ "u": dup, "add": [license(WA, &[]), license(E3, &[])], "remove": [] }),
    );
    let v = &details(&e)[0];
    assert_eq!(v["code"], "UNIQUENESS_VIOLATION");
    assert_eq!(v["proxyAddress"], "smtp:ANN@contoso.com");
    assert_eq!(v["conflictingUser"]["id"], t.ann.as_str());

    // C5: no seat left (bob has Exchange from Sales; ann now shares a proxy address, C1).
    s.set_prepaid(WA, 0);
    let e = refused(
        &s,
        "D3 C5",
        "COUNT_VIOLATION",
        ASSIGN_DIRECT,
        json!({ "u": t.bob, "add": [license(WA, &[])], "remove": [] }),
    );
    assert_eq!(details(&e)[0]["products"], json!([{ "skuPartNumber": WA }]));
}

#[test]
fn group_license_set_errors_carry_their_violations_g1() {
    let s = fresh();
    let t = tenant(&s);

    // C4 inside the group: the add-on without its prerequisite.
    let e = refused(
        &s,
        "G1 dependency",
        "DEPENDENCY_VIOLATION",
        ASSIGN_GROUP,
        json!({ "g": t.sales, "add": [license(WA, &[])], "remove": [E3] }),
    );
    let v = &details(&e)[0];
    assert_eq!(v["code"], "DEPENDENCY_VIOLATION");
    assert_eq!(plan_names(&v["plans"]), vec![WA]);
    assert_eq!(
        sorted(plan_names(&v["missingPrerequisites"])),
        vec!["EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_STANDARD"]
    );
    assert!(
        str_of(&e["message"]).starts_with("License operation failed."),
        "{e:#}"
    );

    // R1 inside the group: STANDARDPACK next to ENTERPRISEPACK.
    let e = refused(
        &s,
        "G1 exclusive",
        "MUTUALLY_EXCLUSIVE_VIOLATION",
        ASSIGN_GROUP,
        json!({ "g": t.sales, "add": [license(E1, &[])], "remove": [] }),
    );
    let violations = details(&e);
    assert_eq!(violations.len(), 2, "both pairs: {violations:#?}");
    for v in &violations {
        assert_eq!(v["code"], "MUTUALLY_EXCLUSIVE_VIOLATION");
        assert_eq!(v["conflictingSource"]["direct"], false, "{v:#}");
        assert_eq!(
            v["conflictingSource"]["group"]["id"],
            t.sales.as_str(),
            "{v:#}"
        );
    }
    let mut named: Vec<String> = violations
        .iter()
        .flat_map(|v| {
            let mut names = plan_names(&v["plans"]);
            names.push(str_of(&v["conflictingPlan"]["servicePlanName"]));
            names
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        vec![
            "EXCHANGE_S_ENTERPRISE",
            "EXCHANGE_S_STANDARD",
            "SHAREPOINTENTERPRISE",
            "SHAREPOINTSTANDARD"
        ]
    );
    // With the clashing plans disabled on one side, the same set is accepted.
    let g = s.assign_group(
        &t.sales,
        json!([license(E1, &["EXCHANGE_S_STANDARD", "SHAREPOINTSTANDARD"])]),
        &[],
    );
    assert_eq!(g["licenseProcessingState"], "QUEUED");
    s.wait_complete(&t.sales);
    assert_eq!(s.state_of(&t.bob, E1, Some(&t.sales))["state"], "ACTIVE");
}
