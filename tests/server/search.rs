//! The searches a console or a dashboard needs (graphql-api.md additions, beside the contract's
//! names): groups by a text in their name and by processing state (P9), users by the start of
//! their principal name, products bought or used (Q3). Each is paged as every list is, with an
//! exact `totalCount`.

use serde_json::{Value, json};

use crate::harness::{code, fresh, str_of};

fn names(connection: &Value, field: &str) -> Vec<String> {
    connection["edges"]
        .as_array()
        .map(|edges| edges.iter().map(|e| str_of(&e["node"][field])).collect())
        .unwrap_or_default()
}

#[test]
fn groups_are_found_by_a_text_in_their_name_and_by_processing_state() {
    let s = fresh();
    for name in [
        "Sales EMEA",
        "sales US",
        "Marketing",
        "100% Sales_",
        "Engineering",
    ] {
        s.create_group(name);
    }
    let query = "query ($t: String, $st: LicenseProcessingState, $e: Boolean, $first: Int, $after: String) {
        groups(displayNameContains: $t, licenseProcessingState: $st, hasMembersWithLicenseErrors: $e, first: $first, after: $after) {
            totalCount pageInfo { hasNextPage endCursor } edges { node { displayName } } } }";
    let found = |vars: Value| s.ok(query, vars)["groups"].clone();
    let sales = found(json!({ "t": "SALES" }));
    assert_eq!(sales["totalCount"], 3);
    assert_eq!(
        names(&sales, "displayName"),
        ["Sales EMEA", "sales US", "100% Sales_"]
    );
    // What the admin types is text, not a pattern.
    assert_eq!(
        names(&found(json!({ "t": "%" })), "displayName"),
        ["100% Sales_"]
    );
    assert_eq!(
        names(&found(json!({ "t": "s_" })), "displayName"),
        ["100% Sales_"]
    );
    assert_eq!(found(json!({ "t": "nothing like it" }))["totalCount"], 0);
    // Blank is no search.
    assert_eq!(found(json!({ "t": "  " }))["totalCount"], 5);
    // Paged like every list, the total counting every match.
    let first = found(json!({ "t": "A", "first": 2 }));
    assert_eq!(first["totalCount"], 4);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let rest = found(json!({ "t": "A", "first": 2, "after": first["pageInfo"]["endCursor"] }));
    assert_eq!(
        [names(&first, "displayName"), names(&rest, "displayName")].concat(),
        ["Sales EMEA", "sales US", "Marketing", "100% Sales_"]
    );
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    // Every group is idle (P9): COMPLETE holds them all, the others none.
    assert_eq!(found(json!({ "st": "COMPLETE" }))["totalCount"], 5);
    assert_eq!(found(json!({ "st": "QUEUED" }))["totalCount"], 0);
    assert_eq!(found(json!({ "st": "IN_PROGRESS" }))["totalCount"], 0);
    assert_eq!(found(json!({ "t": "sales", "e": true }))["totalCount"], 0);
    let long = "x".repeat(257);
    let error = s.err(query, json!({ "t": long }));
    assert_eq!(code(&error), "BAD_USER_INPUT");
}

#[test]
fn users_are_found_by_the_start_of_their_principal_name_in_name_order() {
    let s = fresh();
    for upn in [
        "zoe@contoso.com",
        "adele@contoso.com",
        "Alex@contoso.com",
        "alan@contoso.com",
        "bob@contoso.com",
        "al_x@contoso.com",
    ] {
        s.create_user(upn, Some("US"));
    }
    let query = "query ($p: String, $first: Int, $after: String) {
        users(userPrincipalNameStartsWith: $p, first: $first, after: $after) {
            totalCount pageInfo { hasNextPage endCursor } edges { node { userPrincipalName } } } }";
    let found = |vars: Value| s.ok(query, vars)["users"].clone();
    let al = found(json!({ "p": "AL" }));
    assert_eq!(al["totalCount"], 3);
    assert_eq!(
        names(&al, "userPrincipalName"),
        ["al_x@contoso.com", "alan@contoso.com", "Alex@contoso.com"]
    );
    assert_eq!(found(json!({ "p": "al_" }))["totalCount"], 1);
    assert_eq!(found(json!({ "p": "carol" }))["totalCount"], 0);
    // Page by page, in name order, with the total of every match.
    let first = found(json!({ "p": "a", "first": 2 }));
    assert_eq!(first["totalCount"], 4);
    let second = found(json!({ "p": "a", "first": 2, "after": first["pageInfo"]["endCursor"] }));
    assert_eq!(
        [
            names(&first, "userPrincipalName"),
            names(&second, "userPrincipalName")
        ]
        .concat(),
        [
            "adele@contoso.com",
            "al_x@contoso.com",
            "alan@contoso.com",
            "Alex@contoso.com"
        ]
    );
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    // Without a prefix: every user, by id, as before.
    let all = found(json!({}));
    assert_eq!(all["totalCount"], 6);
    assert_eq!(names(&all, "userPrincipalName")[0], "zoe@contoso.com");
    // A cursor of one order is not one of the other.
    let by_id = found(json!({ "first": 1 }));
    let error = s.err(
        query,
        json!({ "p": "a", "after": by_id["pageInfo"]["endCursor"] }),
    );
    assert_eq!(code(&error), "BAD_USER_INPUT");
    let error = s.err(query, json!({ "p": "a".repeat(257) }));
    assert_eq!(code(&error), "BAD_USER_INPUT");
}

#[test]
fn products_bought_or_used_are_told_from_the_rest_of_the_catalog() {
    let s = fresh();
    s.set_prepaid("ENTERPRISEPACK", 5);
    // EMS: used, no longer bought (its seats were taken back after it was assigned).
    s.set_prepaid("EMS", 1);
    let user = s.create_user("direct@contoso.com", Some("US"));
    s.assign_direct(&user, json!([{ "skuPartNumber": "EMS" }]), &[]);
    s.set_prepaid("EMS", 0);
    assert_eq!(s.seats("EMS").1, 1, "EMS is consumed");
    let skus = |vars: Value| -> Vec<String> {
        let data = s.ok(
            "query ($b: Boolean) { products(boughtOrUsed: $b) { skuPartNumber prepaidUnits consumedUnits } }",
            vars,
        );
        data["products"]
            .as_array()
            .map(|list| list.iter().map(|p| str_of(&p["skuPartNumber"])).collect())
            .unwrap_or_default()
    };
    let mut used = skus(json!({ "b": true }));
    used.sort();
    assert_eq!(used, ["EMS", "ENTERPRISEPACK"]);
    let rest = skus(json!({ "b": false }));
    let all = skus(json!({}));
    assert_eq!(rest.len() + used.len(), all.len());
    assert!(rest.iter().all(|p| !used.contains(p)));
}

/// Q2 on a big tenant: the groups with the most users in error first, ties by id, paged with
/// cursors of their own (the id order's are refused), filters kept.
#[test]
fn groups_are_ordered_by_users_in_error_most_first() {
    let s = fresh();
    s.set_prepaid("ENTERPRISEPACK", 0);
    // Users in error per group: one with none, then 1, 3, 2 and 3 again.
    let sizes = [0usize, 1, 3, 2, 3];
    let mut groups = Vec::new();
    for (g, n) in sizes.iter().enumerate() {
        let id = s.create_group(&format!("G{g}"));
        let users: Vec<String> = (0..*n)
            .map(|u| s.create_user(&format!("u{g}-{u}@contoso.com"), Some("US")))
            .collect();
        if *n > 0 {
            s.assign_group(&id, json!([{ "skuPartNumber": "ENTERPRISEPACK" }]), &[]);
            let refs: Vec<&str> = users.iter().map(String::as_str).collect();
            s.add_members(&id, &refs);
            s.wait_complete(&id);
        }
        groups.push(id);
    }
    let query = "query ($first: Int, $after: String, $e: Boolean) {
        groups(orderBy: LICENSE_ERROR_COUNT_DESC, first: $first, after: $after, hasMembersWithLicenseErrors: $e) {
            totalCount pageInfo { hasNextPage endCursor } edges { node { displayName licenseErrorCount } } } }";
    let all = s.ok(query, json!({ "first": 10 }))["groups"].clone();
    assert_eq!(
        names(&all, "displayName"),
        ["G2", "G4", "G3", "G1", "G0"],
        "{all:#}"
    );
    assert_eq!(all["totalCount"], 5);
    let first = s.ok(query, json!({ "first": 2, "e": true }))["groups"].clone();
    assert_eq!(names(&first, "displayName"), ["G2", "G4"]);
    assert_eq!(first["totalCount"], 4);
    let next = s.ok(
        query,
        json!({ "first": 2, "e": true, "after": first["pageInfo"]["endCursor"] }),
    )["groups"]
        .clone();
    assert_eq!(names(&next, "displayName"), ["G3", "G1"]);
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    let by_id = s.ok("{ groups(first: 1) { pageInfo { endCursor } } }", json!({}))["groups"]
        ["pageInfo"]["endCursor"]
        .clone();
    let refused = s.err(query, json!({ "after": by_id }));
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused:#}");
}
