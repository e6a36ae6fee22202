//! Every mutation of the schema with invalid arguments: unknown and malformed ids, bad country
//! codes, negative seats, a duplicate userPrincipalName, a disabled plan outside its product,
//! empty and oversized lists, absurdly long strings, values of the wrong GraphQL type. One table;
//! each row names the mutation and the argument it spoils, and expects the code of
//! graphql-api.md's conventions. Before and after every row the whole visible tenant is read:
//! nothing may change (graphql-api.md: "Nothing changes when a mutation fails").
//!
//! A row per mutation and per argument is enforced: a mutation or argument added to the schema
//! without a row here fails `every_mutation_and_argument_has_a_row`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{Server, copy_rules, license, scenario_rules, str_of};

const E3: &str = "ENTERPRISEPACK";
const E1: &str = "STANDARDPACK";
const EMS: &str = "EMS";
const WA: &str = "WORKPLACE_ANALYTICS";

/// The limits the server documents (src/store/ops.rs: `MAX_TEXT`, `MAX_LIST`).
const MAX_TEXT: usize = 256;
const MAX_LIST: usize = 1000;
/// A string far beyond any limit that still fits in one request body (the body limit is 1 MiB;
/// a larger body is refused before GraphQL, see http.rs).
const HUGE: usize = 200_000;

/// One refused call.
struct Row {
    /// The mutation, as named in the schema.
    mutation: &'static str,
    /// The argument it spoils: `userIds`, `input.usageLocation`, `addLicenses.disabledPlans`;
    /// `""` for a mutation without arguments.
    argument: &'static str,
    label: String,
    query: String,
    variables: Value,
    code: &'static str,
}

/// The tenant the rows run against: enough of everything for "nothing changed" to mean
/// something (seats used, a direct license, a licensed group with a member, an error state).
struct Tenant {
    /// US, holds STANDARDPACK directly, has a proxy address.
    ann: String,
    /// US, member of Sales (ENTERPRISEPACK from the group).
    bob: String,
    /// No usage location of its own.
    gus: String,
    /// CN: Teams is barred there, so bob's colleague holds E3 in error (C2).
    cho: String,
    /// ENTERPRISEPACK; members bob and cho.
    sales: String,
    /// No licenses, ann as member.
    empty: String,
}

fn tenant(s: &Server) -> Tenant {
    s.set_prepaid(E1, 10);
    s.set_prepaid(E3, 10);
    s.set_prepaid(WA, 10);
    s.set_prepaid(EMS, 0);
    let ann = s.create_user_with("ann@contoso.com", Some("US"), &["SMTP:ann@contoso.com"]);
    let bob = s.create_user("bob@contoso.com", Some("US"));
    let gus = s.create_user("gus@contoso.com", None);
    let cho = s.create_user("cho@contoso.com", Some("CN"));
    s.assign_direct(&ann, json!([license(E1, &[])]), &[]);
    let sales = s.create_group("Sales");
    s.assign_group(&sales, json!([license(E3, &[])]), &[]);
    s.add_members(&sales, &[&bob, &cho]);
    let empty = s.create_group("Empty");
    s.add_members(&empty, &[&ann]);
    s.wait_complete(&sales);
    assert_eq!(s.state_of(&bob, E3, Some(&sales))["state"], "ACTIVE");
    assert_eq!(s.state_of(&cho, E3, Some(&sales))["state"], "ERROR");
    Tenant {
        ann,
        bob,
        gus,
        cho,
        sales,
        empty,
    }
}

const UPDATE_DIRECTORY: &str = "mutation($n: String, $c: String) { updateDirectory(displayName: $n, defaultUsageLocation: $c) { displayName defaultUsageLocation } }";
const SET_SEATS: &str = "mutation($s: String!, $n: Int!) { setPrepaidUnits(skuPartNumber: $s, units: $n) { prepaidUnits } }";
const CREATE_USER: &str = "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }";
const UPDATE_USER: &str =
    "mutation($u: ID!, $i: UpdateUserInput!) { updateUser(id: $u, input: $i) { id } }";
const DELETE_USER: &str = "mutation($u: ID!) { deleteUser(id: $u) }";
const CREATE_GROUP: &str = "mutation($n: String!) { createGroup(displayName: $n) { id } }";
const DELETE_GROUP: &str = "mutation($g: ID!) { deleteGroup(id: $g) }";
const ADD_MEMBERS: &str =
    "mutation($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { id } }";
const REMOVE_MEMBERS: &str =
    "mutation($g: ID!, $u: [ID!]!) { removeGroupMembers(groupId: $g, userIds: $u) { id } }";
const ASSIGN_DIRECT: &str = "mutation($u: ID!, $add: [LicenseInput!]!, $remove: [String!]!) { assignLicense(userId: $u, addLicenses: $add, removeLicenses: $remove) { id } }";
const ASSIGN_GROUP: &str = "mutation($g: ID!, $add: [LicenseInput!]!, $remove: [String!]!) { assignGroupLicense(groupId: $g, addLicenses: $add, removeLicenses: $remove) { id } }";
const REPROCESS_GROUP: &str = "mutation($g: ID!) { reprocessGroup(groupId: $g) { id } }";
const REPROCESS_USER: &str = "mutation($u: ID!) { reprocessUser(userId: $u) { id } }";
const RELOAD: &str = "mutation { reloadRules { planCount } }";
const REMOVE_REDUNDANT: &str = "mutation($u: [ID!]!, $s: [String!]) { removeRedundantDirectLicenses(userIds: $u, skuPartNumbers: $s) { removed { user { id } } skipped { reason } } }";

const BAD: &str = "BAD_USER_INPUT";
const NF: &str = "NOT_FOUND";

/// Ids the server cannot have made: not a number, zero, negative, a fraction, padded, signed,
/// beyond 64 bits, enormous.
fn malformed_ids() -> Vec<String> {
    vec![
        "abc".into(),
        String::new(),
        "0".into(),
        "-1".into(),
        "1.0".into(),
        " 1".into(),
        "01".into(),
        "+1".into(),
        "99999999999999999999".into(),
        "7".repeat(HUGE),
    ]
}

/// Strings no name may be: empty, blank, a control character, one over the limit, enormous.
fn bad_names() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("blank", "   ".into()),
        ("control character", "a\u{0}b".into()),
        ("newline", "two\nlines".into()),
        ("one over the limit", "n".repeat(MAX_TEXT + 1)),
        ("huge", "n".repeat(HUGE)),
    ]
}

/// Names of no product: product names are compared exactly (case and spaces count).
fn unknown_products() -> Vec<String> {
    vec![
        "NO_SUCH_SKU".to_string(),
        String::new(),
        "enterprisepack".into(),
        " ENTERPRISEPACK".into(),
        "S".repeat(HUGE),
    ]
}

/// Not ISO 3166-1 alpha-2 (graphql-api.md conventions).
const BAD_COUNTRIES: [&str; 7] = ["USA", "us", "XX", "", "U", "EU", "U S"];

fn rows(t: &Tenant) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row = |mutation: &'static str,
                   argument: &'static str,
                   label: String,
                   query: &str,
                   variables: Value,
                   code: &'static str| {
        rows.push(Row {
            mutation,
            argument,
            label,
            query: query.to_string(),
            variables,
            code,
        });
    };
    let missing = "999999";
    let many_ids = |id: &str| -> Vec<String> { vec![id.to_string(); MAX_LIST + 1] };
    let distinct_many: Vec<String> = (1..=MAX_LIST as i64 + 1).map(|n| n.to_string()).collect();

    // ---- updateDirectory ----------------------------------------------------------------------
    for (what, name) in bad_names() {
        row(
            "updateDirectory",
            "displayName",
            format!("directory name {what}"),
            UPDATE_DIRECTORY,
            json!({ "n": name }),
            BAD,
        );
    }
    for c in BAD_COUNTRIES {
        row(
            "updateDirectory",
            "defaultUsageLocation",
            format!("directory location {c:?}"),
            UPDATE_DIRECTORY,
            json!({ "c": c }),
            BAD,
        );
    }
    row(
        "updateDirectory",
        "defaultUsageLocation",
        "a good name with a bad location: neither is kept".into(),
        UPDATE_DIRECTORY,
        json!({ "n": "Fabrikam", "c": "USA" }),
        BAD,
    );
    row(
        "updateDirectory",
        "defaultUsageLocation",
        "a location that is not a string".into(),
        "mutation { updateDirectory(defaultUsageLocation: 33) { displayName } }",
        json!({}),
        BAD,
    );

    // ---- setPrepaidUnits ----------------------------------------------------------------------
    for sku in unknown_products() {
        row(
            "setPrepaidUnits",
            "skuPartNumber",
            format!("seats of unknown product {:.20?}", sku),
            SET_SEATS,
            json!({ "s": sku, "n": 5 }),
            BAD,
        );
    }
    for n in [-1i64, i64::from(i32::MIN)] {
        row(
            "setPrepaidUnits",
            "units",
            format!("negative seats {n}"),
            SET_SEATS,
            json!({ "s": E3, "n": n }),
            BAD,
        );
    }
    row(
        "setPrepaidUnits",
        "units",
        "seats beyond Int (a literal)".into(),
        "mutation { setPrepaidUnits(skuPartNumber: \"ENTERPRISEPACK\", units: 2147483648) { prepaidUnits } }",
        json!({}),
        BAD,
    );
    row(
        "setPrepaidUnits",
        "units",
        "seats beyond Int (a variable)".into(),
        SET_SEATS,
        json!({ "s": E3, "n": 1u64 << 40 }),
        BAD,
    );
    row(
        "setPrepaidUnits",
        "units",
        "seats as a string".into(),
        SET_SEATS,
        json!({ "s": E3, "n": "ten" }),
        BAD,
    );
    row(
        "setPrepaidUnits",
        "units",
        "seats as a fraction".into(),
        SET_SEATS,
        json!({ "s": E3, "n": 2.5 }),
        BAD,
    );
    row(
        "setPrepaidUnits",
        "units",
        "seats missing".into(),
        "mutation { setPrepaidUnits(skuPartNumber: \"ENTERPRISEPACK\") { prepaidUnits } }",
        json!({}),
        BAD,
    );

    // ---- createUser ---------------------------------------------------------------------------
    let new_user = |upn: &str, name: &str, location: Value, proxies: Value| json!({ "i": { "userPrincipalName": upn, "displayName": name, "usageLocation": location, "proxyAddresses": proxies } });
    for upn in [
        "ANN@Contoso.COM".to_string(),
        "ann@contoso.com".into(),
        "  ann@contoso.com ".into(),
    ] {
        row(
            "createUser",
            "input.userPrincipalName",
            format!("duplicate userPrincipalName {upn:?}"),
            CREATE_USER,
            new_user(&upn, "Ann again", json!("US"), json!([])),
            BAD,
        );
    }
    for (what, upn) in [
        ("no @", "annie".to_string()),
        ("only @", "@".into()),
        ("no domain", "annie@".into()),
        ("no name", "@contoso.com".into()),
        ("two @", "an@nie@contoso.com".into()),
        ("a space", "an nie@contoso.com".into()),
        ("a control character", "an\u{7}nie@contoso.com".into()),
        ("empty", String::new()),
        (
            "over the limit",
            format!("{}@contoso.com", "a".repeat(MAX_TEXT)),
        ),
        ("huge", format!("{}@contoso.com", "a".repeat(HUGE))),
    ] {
        row(
            "createUser",
            "input.userPrincipalName",
            format!("userPrincipalName {what}"),
            CREATE_USER,
            new_user(&upn, "New", json!("US"), json!([])),
            BAD,
        );
    }
    for (what, name) in bad_names() {
        row(
            "createUser",
            "input.displayName",
            format!("user display name {what}"),
            CREATE_USER,
            new_user("new@contoso.com", &name, json!("US"), json!([])),
            BAD,
        );
    }
    for c in BAD_COUNTRIES {
        row(
            "createUser",
            "input.usageLocation",
            format!("user location {c:?}"),
            CREATE_USER,
            new_user("new@contoso.com", "New", json!(c), json!([])),
            BAD,
        );
    }
    let too_many_proxies: Vec<String> = (0..=MAX_LIST)
        .map(|n| format!("smtp:p{n}@contoso.com"))
        .collect();
    for (what, proxies) in [
        ("an empty address", json!([""])),
        ("no @", json!(["smtp:newcontoso.com"])),
        ("only the prefix", json!(["smtp:"])),
        ("no domain", json!(["smtp:new@"])),
        ("a space", json!(["smtp:new one@contoso.com"])),
        (
            "twice, differing in case and prefix",
            json!(["smtp:new@contoso.com", "NEW@contoso.com"]),
        ),
        (
            "over the limit",
            json!([format!("smtp:{}@contoso.com", "p".repeat(MAX_TEXT))]),
        ),
        ("more than the list limit", json!(too_many_proxies)),
    ] {
        row(
            "createUser",
            "input.proxyAddresses",
            format!("proxy addresses: {what}"),
            CREATE_USER,
            new_user("new@contoso.com", "New", json!("US"), proxies),
            BAD,
        );
    }
    row(
        "createUser",
        "input.accountEnabled",
        "accountEnabled a string".into(),
        CREATE_USER,
        json!({ "i": { "userPrincipalName": "new@contoso.com", "displayName": "New", "accountEnabled": "False" } }),
        BAD,
    );
    row(
        "createUser",
        "input",
        "input without a displayName".into(),
        CREATE_USER,
        json!({ "i": { "userPrincipalName": "new@contoso.com" } }),
        BAD,
    );
    row(
        "createUser",
        "input",
        "input with a field the schema does not have".into(),
        CREATE_USER,
        json!({ "i": { "userPrincipalName": "new@contoso.com", "displayName": "New", "manager": "ann" } }),
        BAD,
    );

    // ---- updateUser ---------------------------------------------------------------------------
    let update = |id: &str, input: Value| json!({ "u": id, "i": input });
    row(
        "updateUser",
        "input.accountEnabled",
        "accountEnabled a number, beside a good name".into(),
        UPDATE_USER,
        update(
            &t.ann,
            json!({ "displayName": "Renamed", "accountEnabled": 0 }),
        ),
        BAD,
    );
    row(
        "updateUser",
        "input",
        "input with a field the schema does not have".into(),
        UPDATE_USER,
        update(
            &t.ann,
            json!({ "displayName": "Y", "userPrincipalName": "y@contoso.com" }),
        ),
        BAD,
    );
    row(
        "updateUser",
        "id",
        "unknown user".into(),
        UPDATE_USER,
        update(missing, json!({ "displayName": "Y" })),
        NF,
    );
    for id in malformed_ids() {
        row(
            "updateUser",
            "id",
            format!("malformed user id {:.20?}", id),
            UPDATE_USER,
            update(&id, json!({ "displayName": "Y" })),
            BAD,
        );
    }
    for (what, name) in bad_names() {
        row(
            "updateUser",
            "input.displayName",
            format!("new display name {what}"),
            UPDATE_USER,
            update(&t.ann, json!({ "displayName": name })),
            BAD,
        );
    }
    for c in BAD_COUNTRIES {
        row(
            "updateUser",
            "input.usageLocation",
            format!("new location {c:?}"),
            UPDATE_USER,
            update(&t.bob, json!({ "usageLocation": c })),
            BAD,
        );
    }
    row(
        "updateUser",
        "input.usageLocation",
        "a good display name with a bad location: neither is kept".into(),
        UPDATE_USER,
        update(
            &t.bob,
            json!({ "displayName": "Robert", "usageLocation": "USA" }),
        ),
        BAD,
    );
    row(
        "updateUser",
        "input.clearUsageLocation",
        "location set and cleared at once".into(),
        UPDATE_USER,
        update(
            &t.bob,
            json!({ "usageLocation": "FR", "clearUsageLocation": true }),
        ),
        BAD,
    );
    row(
        "updateUser",
        "input.clearUsageLocation",
        "clearUsageLocation that is not a Boolean".into(),
        UPDATE_USER,
        update(&t.bob, json!({ "clearUsageLocation": "yes" })),
        BAD,
    );
    for (what, proxies) in [
        ("an empty address", json!([""])),
        ("no @", json!(["smtp:anncontoso.com"])),
        ("twice", json!(["smtp:a@contoso.com", "SMTP:A@contoso.com"])),
        ("more than the list limit", json!(too_many_proxies)),
        (
            "a huge address",
            json!([format!("{}@contoso.com", "p".repeat(HUGE))]),
        ),
    ] {
        row(
            "updateUser",
            "input.proxyAddresses",
            format!("new proxy addresses: {what}"),
            UPDATE_USER,
            update(&t.ann, json!({ "proxyAddresses": proxies })),
            BAD,
        );
    }

    // ---- deleteUser ---------------------------------------------------------------------------
    row(
        "deleteUser",
        "id",
        "unknown user".into(),
        DELETE_USER,
        json!({ "u": missing }),
        NF,
    );
    for id in malformed_ids() {
        row(
            "deleteUser",
            "id",
            format!("malformed user id {:.20?}", id),
            DELETE_USER,
            json!({ "u": id }),
            BAD,
        );
    }

    // ---- createGroup --------------------------------------------------------------------------
    for (what, name) in bad_names() {
        row(
            "createGroup",
            "displayName",
            format!("group name {what}"),
            CREATE_GROUP,
            json!({ "n": name }),
            BAD,
        );
    }
    row(
        "createGroup",
        "displayName",
        "group name null".into(),
        CREATE_GROUP,
        json!({ "n": null }),
        BAD,
    );

    // ---- deleteGroup --------------------------------------------------------------------------
    row(
        "deleteGroup",
        "id",
        "unknown group".into(),
        DELETE_GROUP,
        json!({ "g": missing }),
        NF,
    );
    row(
        "deleteGroup",
        "id",
        "G4: a group with licenses".into(),
        DELETE_GROUP,
        json!({ "g": t.sales }),
        "GROUP_HAS_LICENSES",
    );
    for id in malformed_ids() {
        row(
            "deleteGroup",
            "id",
            format!("malformed group id {:.20?}", id),
            DELETE_GROUP,
            json!({ "g": id }),
            BAD,
        );
    }

    // ---- addGroupMembers, removeGroupMembers --------------------------------------------------
    for (mutation, query, member) in [
        ("addGroupMembers", ADD_MEMBERS, &t.gus),
        ("removeGroupMembers", REMOVE_MEMBERS, &t.bob),
    ] {
        let call = |g: &str, users: Value| json!({ "g": g, "u": users });
        row(
            mutation,
            "groupId",
            "unknown group".into(),
            query,
            call(missing, json!([member])),
            NF,
        );
        for id in malformed_ids() {
            row(
                mutation,
                "groupId",
                format!("malformed group id {:.20?}", id),
                query,
                call(&id, json!([member])),
                BAD,
            );
        }
        row(
            mutation,
            "userIds",
            "an unknown user after a good one: the good one is not kept".into(),
            query,
            call(&t.sales, json!([member, missing])),
            NF,
        );
        for id in malformed_ids() {
            row(
                mutation,
                "userIds",
                format!("a malformed user id {:.20?} after a good one", id),
                query,
                call(&t.sales, json!([member, id])),
                BAD,
            );
        }
        row(
            mutation,
            "userIds",
            "an empty list".into(),
            query,
            call(&t.sales, json!([])),
            BAD,
        );
        row(
            mutation,
            "userIds",
            "the same user over the list limit".into(),
            query,
            call(&t.sales, json!(many_ids(member))),
            BAD,
        );
        row(
            mutation,
            "userIds",
            "distinct ids over the list limit".into(),
            query,
            call(&t.sales, json!(distinct_many)),
            BAD,
        );
        row(
            mutation,
            "userIds",
            "a null in the list".into(),
            query,
            call(&t.sales, json!([member, null])),
            BAD,
        );
    }

    // ---- assignLicense ------------------------------------------------------------------------
    let direct =
        |user: &str, add: Value, remove: Value| json!({ "u": user, "add": add, "remove": remove });
    let too_many_licenses: Vec<Value> = (0..=MAX_LIST).map(|_| license(EMS, &[])).collect();
    let too_many_names: Vec<&str> = vec![E1; MAX_LIST + 1];
    row(
        "assignLicense",
        "userId",
        "unknown user".into(),
        ASSIGN_DIRECT,
        direct(missing, json!([license(E3, &[])]), json!([])),
        NF,
    );
    for id in malformed_ids() {
        row(
            "assignLicense",
            "userId",
            format!("malformed user id {:.20?}", id),
            ASSIGN_DIRECT,
            direct(&id, json!([license(E3, &[])]), json!([])),
            BAD,
        );
    }
    for (what, add, remove, expected) in [
        (
            "D1: unknown product",
            json!([license("NO_SUCH_SKU", &[])]),
            json!([]),
            BAD,
        ),
        (
            "D1: empty product name",
            json!([license("", &[])]),
            json!([]),
            BAD,
        ),
        (
            "D1: huge product name",
            json!([license(&"S".repeat(HUGE), &[])]),
            json!([]),
            BAD,
        ),
        (
            "the same product twice",
            json!([license(WA, &[]), license(WA, &[])]),
            json!([]),
            BAD,
        ),
        (
            "more licenses than the list limit",
            json!(too_many_licenses),
            json!([]),
            BAD,
        ),
        ("nothing to do", json!([]), json!([]), BAD),
        (
            "a product both added and removed",
            json!([license(E1, &[])]),
            json!([E1]),
            BAD,
        ),
        (
            "C5 through D3: a product without seats",
            json!([license(EMS, &[])]),
            json!([]),
            "COUNT_VIOLATION",
        ),
        (
            "C3 through D3: a plan that conflicts with the user's own",
            json!([license(E3, &[])]),
            json!([]),
            "MUTUALLY_EXCLUSIVE_VIOLATION",
        ),
    ] {
        row(
            "assignLicense",
            "addLicenses",
            what.into(),
            ASSIGN_DIRECT,
            direct(&t.ann, add, remove),
            expected,
        );
    }
    for (what, add) in [
        (
            "D1: an unknown plan",
            json!([license(E3, &["NO_SUCH_PLAN"])]),
        ),
        (
            "D1: a plan of another product",
            json!([license(WA, &["EXCHANGE_S_ENTERPRISE"])]),
        ),
        (
            "D1: a huge plan name",
            json!([license(WA, &[&"P".repeat(HUGE)])]),
        ),
        ("D1: an empty plan name", json!([license(WA, &[""])])),
        (
            "D1: a product name as a plan",
            json!([license(WA, &[WA, E3])]),
        ),
    ] {
        row(
            "assignLicense",
            "addLicenses.disabledPlans",
            what.into(),
            ASSIGN_DIRECT,
            direct(&t.ann, add, json!([])),
            BAD,
        );
    }
    row(
        "assignLicense",
        "addLicenses.skuPartNumber",
        "a license without a product".into(),
        ASSIGN_DIRECT,
        direct(&t.ann, json!([{ "disabledPlans": [] }]), json!([])),
        BAD,
    );
    row(
        "assignLicense",
        "addLicenses",
        "D2: a user without a usage location of its own".into(),
        ASSIGN_DIRECT,
        direct(&t.gus, json!([license(WA, &[])]), json!([])),
        "USAGE_LOCATION_REQUIRED",
    );
    for (what, user, remove) in [
        ("D1: an unknown product", &t.ann, json!(["NO_SUCH_SKU"])),
        ("a product not held at all", &t.ann, json!([WA])),
        (
            "D5: a product held only through a group",
            &t.bob,
            json!([E3]),
        ),
        ("the same product twice", &t.ann, json!([E1, E1])),
        (
            "more names than the list limit",
            &t.ann,
            json!(too_many_names),
        ),
        ("a huge name", &t.ann, json!(["S".repeat(HUGE)])),
    ] {
        row(
            "assignLicense",
            "removeLicenses",
            what.into(),
            ASSIGN_DIRECT,
            direct(user, json!([]), remove),
            BAD,
        );
    }

    // ---- assignGroupLicense -------------------------------------------------------------------
    let group =
        |g: &str, add: Value, remove: Value| json!({ "g": g, "add": add, "remove": remove });
    row(
        "assignGroupLicense",
        "groupId",
        "unknown group".into(),
        ASSIGN_GROUP,
        group(missing, json!([license(E3, &[])]), json!([])),
        NF,
    );
    for id in malformed_ids() {
        row(
            "assignGroupLicense",
            "groupId",
            format!("malformed group id {:.20?}", id),
            ASSIGN_GROUP,
            group(&id, json!([license(E3, &[])]), json!([])),
            BAD,
        );
    }
    for (what, add, remove, expected) in [
        (
            "G3: unknown product",
            json!([license("NO_SUCH_SKU", &[])]),
            json!([]),
            BAD,
        ),
        (
            "G3: empty product name",
            json!([license("", &[])]),
            json!([]),
            BAD,
        ),
        (
            "G3: huge product name",
            json!([license(&"S".repeat(HUGE), &[])]),
            json!([]),
            BAD,
        ),
        (
            "the same product twice",
            json!([license(EMS, &[]), license(EMS, &[])]),
            json!([]),
            BAD,
        ),
        (
            "more licenses than the list limit",
            json!(too_many_licenses),
            json!([]),
            BAD,
        ),
        ("nothing to do", json!([]), json!([]), BAD),
        (
            "a product both added and removed",
            json!([license(E3, &[])]),
            json!([E3]),
            BAD,
        ),
        (
            "G1: a set whose plans conflict",
            json!([license(E1, &[])]),
            json!([]),
            "MUTUALLY_EXCLUSIVE_VIOLATION",
        ),
    ] {
        row(
            "assignGroupLicense",
            "addLicenses",
            what.into(),
            ASSIGN_GROUP,
            group(&t.sales, add, remove),
            expected,
        );
    }
    for (what, add) in [
        (
            "G3: an unknown plan",
            json!([license(EMS, &["NO_SUCH_PLAN"])]),
        ),
        (
            "G3: a plan of another product",
            json!([license(EMS, &["TEAMS1"])]),
        ),
        (
            "G3: a huge plan name",
            json!([license(EMS, &[&"P".repeat(HUGE)])]),
        ),
    ] {
        row(
            "assignGroupLicense",
            "addLicenses.disabledPlans",
            what.into(),
            ASSIGN_GROUP,
            group(&t.sales, add, json!([])),
            BAD,
        );
    }
    row(
        "assignGroupLicense",
        "addLicenses.skuPartNumber",
        "a product name that is not a string".into(),
        ASSIGN_GROUP,
        group(&t.sales, json!([{ "skuPartNumber": 7 }]), json!([])),
        BAD,
    );
    for (what, remove) in [
        ("G3: a product the group does not have", json!([E1])),
        ("G3: an unknown product", json!(["NO_SUCH_SKU"])),
        ("the same product twice", json!([E3, E3])),
        ("more names than the list limit", json!(too_many_names)),
    ] {
        row(
            "assignGroupLicense",
            "removeLicenses",
            what.into(),
            ASSIGN_GROUP,
            group(&t.sales, json!([]), remove),
            BAD,
        );
    }

    // ---- reprocessGroup, reprocessUser --------------------------------------------------------
    row(
        "reprocessGroup",
        "groupId",
        "unknown group".into(),
        REPROCESS_GROUP,
        json!({ "g": missing }),
        NF,
    );
    row(
        "reprocessUser",
        "userId",
        "unknown user".into(),
        REPROCESS_USER,
        json!({ "u": missing }),
        NF,
    );
    for id in malformed_ids() {
        row(
            "reprocessGroup",
            "groupId",
            format!("malformed group id {:.20?}", id),
            REPROCESS_GROUP,
            json!({ "g": id }),
            BAD,
        );
        row(
            "reprocessUser",
            "userId",
            format!("malformed user id {:.20?}", id),
            REPROCESS_USER,
            json!({ "u": id }),
            BAD,
        );
    }

    // ---- removeRedundantDirectLicenses (M3) ------------------------------------------------------
    let cleanup = |users: Value, skus: Value| json!({ "u": users, "s": skus });
    for (what, users, code) in [
        ("unknown user", json!([missing]), NF),
        (
            "an unknown user after a good one",
            json!([t.ann, missing]),
            NF,
        ),
        ("an empty list", json!([]), BAD),
        (
            "distinct ids over the list limit",
            json!(distinct_many),
            BAD,
        ),
        ("a null in the list", json!([t.ann, null]), BAD),
    ] {
        row(
            "removeRedundantDirectLicenses",
            "userIds",
            what.into(),
            REMOVE_REDUNDANT,
            cleanup(users, Value::Null),
            code,
        );
    }
    for id in malformed_ids() {
        row(
            "removeRedundantDirectLicenses",
            "userIds",
            format!("malformed user id {:.20?}", id),
            REMOVE_REDUNDANT,
            cleanup(json!([id]), Value::Null),
            BAD,
        );
    }
    for (what, skus) in [
        ("unknown product", json!(["NO_SUCH_SKU"])),
        (
            "an unknown product after a good one",
            json!([E1, "NO_SUCH_SKU"]),
        ),
        ("an empty list", json!([])),
        ("over the list limit", json!(vec![E1; MAX_LIST + 1])),
        ("a null in the list", json!([E1, null])),
    ] {
        row(
            "removeRedundantDirectLicenses",
            "skuPartNumbers",
            what.into(),
            REMOVE_REDUNDANT,
            cleanup(json!([t.ann]), skus),
            BAD,
        );
    }

    // ---- reloadRules: no arguments; an argument it does not take --------------------------------
    row(
        "reloadRules",
        "",
        "an argument reloadRules does not take".into(),
        "mutation { reloadRules(folder: \"/etc\") { planCount } }",
        json!({}),
        BAD,
    );

    // ---- setSeatAlertThreshold ----------------------------------------------------------------
    const THRESHOLD: &str = "mutation($s: String!, $t: Int) { setSeatAlertThreshold(skuPartNumber: $s, threshold: $t) { seatAlertThreshold } }";
    for sku in unknown_products() {
        row(
            "setSeatAlertThreshold",
            "skuPartNumber",
            format!("threshold of unknown product {:.20?}", sku),
            THRESHOLD,
            json!({ "s": sku, "t": 5 }),
            BAD,
        );
    }
    for t in [
        json!(-1),
        json!(i64::from(i32::MIN)),
        json!(1_000_000_001),
        json!("five"),
        json!(2.5),
    ] {
        row(
            "setSeatAlertThreshold",
            "threshold",
            format!("threshold {t}"),
            THRESHOLD,
            json!({ "s": E3, "t": t }),
            BAD,
        );
    }

    // ---- createWebhook ------------------------------------------------------------------------
    const WEBHOOK: &str = "mutation($u: String!, $e: [WebhookEventType!]!, $d: String) { createWebhook(url: $u, events: $e, description: $d) { secret } }";
    for url in [
        "http://example.com/hook".to_string(),
        "https://127.0.0.1/hook".into(),
        "https://10.0.0.1/hook".into(),
        "not a url".into(),
        String::new(),
        format!("https://example.com/{}", "a".repeat(3000)),
    ] {
        row(
            "createWebhook",
            "url",
            format!("webhook URL {:.30?}", url),
            WEBHOOK,
            json!({ "u": url, "e": ["AUDIT_EVENT"] }),
            BAD,
        );
    }
    for events in [
        json!([]),
        json!(["NO_SUCH_TYPE"]),
        json!("AUDIT_EVENT, ALERT_RAISED"),
    ] {
        row(
            "createWebhook",
            "events",
            format!("webhook events {events}"),
            WEBHOOK,
            json!({ "u": "https://93.184.215.14/hook", "e": events }),
            BAD,
        );
    }
    for (what, name) in bad_names()
        .into_iter()
        .filter(|(w, _)| !w.contains("empty") && !w.contains("blank"))
    {
        row(
            "createWebhook",
            "description",
            format!("webhook description {what}"),
            WEBHOOK,
            json!({ "u": "https://93.184.215.14/hook", "e": ["AUDIT_EVENT"], "d": name }),
            BAD,
        );
    }

    // ---- deleteWebhook ------------------------------------------------------------------------
    const DELETE_WEBHOOK: &str = "mutation($id: ID!) { deleteWebhook(id: $id) }";
    row(
        "deleteWebhook",
        "id",
        "a webhook that does not exist".into(),
        DELETE_WEBHOOK,
        json!({ "id": missing }),
        NF,
    );
    for id in ["0", "-1", "x", "", "1.5"] {
        row(
            "deleteWebhook",
            "id",
            format!("webhook id {id:?}"),
            DELETE_WEBHOOK,
            json!({ "id": id }),
            BAD,
        );
    }

    rows
}

/// The tenant as a client sees it, minus `rules.lastReloadErrors` (a refused reload sets it on
/// purpose).
fn observable(s: &Server) -> Value {
    let mut snapshot = s.snapshot();
    snapshot["head"]["rules"]
        .as_object_mut()
        .expect("rules")
        .remove("lastReloadErrors");
    snapshot
}

/// Runs one row: the documented code, a message, no data, and nothing changed. Returns what
/// went wrong, so that one run lists every failing row; `before` is taken again after a row that
/// changed the tenant, so that one wrong row does not fail the rows after it.
fn check(s: &Server, before: &mut Value, r: &Row) -> Option<String> {
    let label = format!("{} ({}): {}", r.mutation, r.argument, r.label);
    let body = s.gql(&r.query, r.variables.clone());
    let mut wrong = Vec::new();
    match body["errors"].as_array().and_then(|e| e.first()) {
        None => wrong.push(format!("accepted: {:.300}", body.to_string())),
        Some(e) => {
            let got = e["extensions"]["code"].as_str().unwrap_or("(no code)");
            if got != r.code {
                wrong.push(format!(
                    "code {got}, expected {}: {:.300}",
                    r.code,
                    e.to_string()
                ));
            }
            if e["message"].as_str().is_none_or(|m| m.trim().is_empty()) {
                wrong.push(format!("no message: {e}"));
            }
            let no_data = match &body["data"] {
                Value::Null => true,
                Value::Object(fields) => fields.values().all(Value::is_null),
                _ => false,
            };
            if !no_data {
                wrong.push(format!(
                    "data with the error: {:.300}",
                    body["data"].to_string()
                ));
            }
        }
    }
    s.wait_idle();
    let after = observable(s);
    if after != *before {
        wrong.push("the tenant changed".into());
        *before = after;
    }
    (!wrong.is_empty()).then(|| format!("{label}: {}", wrong.join("; ")))
}

/// The names of the mutations in `schema.graphql` (the published schema), read with a GraphQL
/// parser: with their descriptions, arguments take a line each, which a scan of lines would
/// take for mutations.
fn mutations_in_schema_file() -> BTreeSet<String> {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    let sdl = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql"))
        .expect("schema.graphql");
    let doc = parse_schema(&sdl).expect("schema.graphql parses");
    let names: BTreeSet<String> = doc
        .definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) if t.node.name.node == "Mutation" => Some(t.node.kind),
            _ => None,
        })
        .flat_map(|kind| match kind {
            TypeKind::Object(o) => o.fields,
            _ => Vec::new(),
        })
        .map(|f| f.node.name.node.to_string())
        .collect();
    assert!(!names.is_empty(), "a Mutation type in schema.graphql");
    names
}

const INTROSPECTION: &str = "{
  __schema { mutationType { fields { name args { name type { ...T } } } } }
}
fragment T on __Type { kind name inputFields { name } ofType { kind name inputFields { name } ofType { kind name inputFields { name } ofType { kind name inputFields { name } } } } }";

/// `mutation → arguments` as the running server describes itself; an input-object argument
/// counts as itself and as each of its fields (`input`, `input.displayName`).
fn arguments_of_the_server(s: &Server) -> Vec<(String, Vec<String>)> {
    let data = s.ok(INTROSPECTION, json!({}));
    let fields = data["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("mutation fields");
    fields
        .iter()
        .map(|f| {
            let mut args = Vec::new();
            for a in f["args"].as_array().expect("args") {
                let name = str_of(&a["name"]);
                // The named type under NON_NULL and LIST wrappers.
                let mut ty = &a["type"];
                while ty["ofType"].is_object() {
                    ty = &ty["ofType"];
                }
                if let Some(inner) = ty["inputFields"].as_array() {
                    for field in inner {
                        args.push(format!("{name}.{}", str_of(&field["name"])));
                    }
                }
                args.push(name);
            }
            (str_of(&f["name"]), args)
        })
        .collect()
}

#[test]
fn every_mutation_and_argument_has_a_row() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let s = Server::start(&dir.path().join("t.db"), &scenario_rules());
    let t = tenant(&s);
    let table = rows(&t);
    let covered: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.mutation.to_string(), r.argument.to_string()))
        .collect();
    let covers = |mutation: &str, argument: &str| {
        covered.contains(&(mutation.to_string(), argument.to_string()))
    };
    let mut missing = Vec::new();
    let server = arguments_of_the_server(&s);
    assert!(server.len() >= 14, "the schema's mutations: {server:?}");
    for (mutation, args) in &server {
        if args.is_empty() && !covers(mutation, "") {
            missing.push(format!("{mutation} (no row at all)"));
        }
        for a in args {
            if !covers(mutation, a) {
                missing.push(format!("{mutation}({a})"));
            }
        }
    }
    let served: BTreeSet<String> = server.iter().map(|(m, _)| m.clone()).collect();
    for m in mutations_in_schema_file() {
        if !served.contains(&m) {
            missing.push(format!("{m} is in schema.graphql but not served"));
        }
    }
    for (m, a) in &covered {
        assert!(
            served.contains(m),
            "row for {m}({a}): no such mutation in the schema"
        );
    }
    assert!(
        missing.is_empty(),
        "mutations or arguments without a bad-input row:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_mutation_refuses_invalid_arguments_with_its_code_and_changes_nothing() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules = copy_rules(&scenario_rules(), dir.path(), "rules");
    let s = Server::start(&dir.path().join("t.db"), &rules);
    let t = tenant(&s);
    // cho's E3 is in error (C2), so the rows also run against a tenant with an error state.
    assert!(
        s.ok(
            "query($u: ID) { user(id: $u) { hasLicenseErrors } }",
            json!({ "u": t.cho })
        )["user"]["hasLicenseErrors"]
            == true
    );
    let mut before = observable(&s);
    let table = rows(&t);
    let started = std::time::Instant::now();
    let mut failures: Vec<String> = table
        .iter()
        .filter_map(|r| check(&s, &mut before, r))
        .collect();

    // reloadRules: a rules folder that does not compile is RULES_INVALID, the rules in force stay.
    let broken = rules.join("zz-broken.rules");
    std::fs::write(&broken, "plan = \"no name\"\nproduct {\n").expect("write a broken file");
    failures.extend(check(
        &s,
        &mut before,
        &Row {
            mutation: "reloadRules",
            argument: "",
            label: "a rules folder that does not compile".into(),
            query: RELOAD.into(),
            variables: json!({}),
            code: "RULES_INVALID",
        },
    ));
    std::fs::remove_file(&broken).expect("remove the broken file");
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        table.len() + 1,
        failures.join("\n")
    );

    eprintln!(
        "bad input: {} rows (+1) refused with their code, tenant unchanged, in {:.1?}",
        table.len(),
        started.elapsed()
    );

    // The same calls with good arguments succeed: the rows failed for the argument they spoil.
    let ok = s.ok(
        UPDATE_DIRECTORY,
        json!({ "n": "n".repeat(MAX_TEXT), "c": "FR" }),
    );
    assert_eq!(ok["updateDirectory"]["defaultUsageLocation"], "FR");
    s.ok(SET_SEATS, json!({ "s": E3, "n": i32::MAX }));
    let created = s.ok(
        CREATE_USER,
        json!({ "i": { "userPrincipalName": format!("{}@contoso.com", "a".repeat(MAX_TEXT - 12)), "displayName": "New", "usageLocation": "DE", "proxyAddresses": ["smtp:new@contoso.com"] } }),
    );
    let new = str_of(&created["createUser"]["id"]);
    let proxies: Vec<String> = (0..MAX_LIST)
        .map(|n| format!("smtp:p{n}@contoso.com"))
        .collect();
    s.ok(
        UPDATE_USER,
        json!({ "u": new, "i": { "displayName": "Renamed", "proxyAddresses": proxies } }),
    );
    s.ok(ADD_MEMBERS, json!({ "g": t.empty, "u": [new, new] }));
    s.ok(REMOVE_MEMBERS, json!({ "g": t.empty, "u": [new] }));
    s.ok(
        ASSIGN_DIRECT,
        json!({ "u": t.ann, "add": [license(WA, &[])], "remove": [] }),
    );
    s.ok(
        ASSIGN_GROUP,
        json!({ "g": t.sales, "add": [license(E3, &["TEAMS1"])], "remove": [] }),
    );
    s.ok(REPROCESS_GROUP, json!({ "g": t.sales }));
    s.ok(REPROCESS_USER, json!({ "u": t.bob }));
    s.ok(REMOVE_REDUNDANT, json!({ "u": [t.ann], "s": [E1] }));
    s.ok(DELETE_USER, json!({ "u": new }));
    let g = s.ok(CREATE_GROUP, json!({ "n": "n".repeat(MAX_TEXT) }));
    s.ok(DELETE_GROUP, json!({ "g": g["createGroup"]["id"] }));
    s.ok(RELOAD, json!({}));
    s.wait_complete(&t.sales);
}
