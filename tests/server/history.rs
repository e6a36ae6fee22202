//! The history (licensing.md H) as clients see it: every mutation, SCIM request and processing
//! run leaves the events H1–H5 say, named after who made them, and `auditEvents` reads them
//! newest first with exact counts and filters (H6).
//!
//! The walk below plays every mutation once, each step with the events it must leave (the
//! activity, category, actor, targets and modified properties); a guard fails when a mutation
//! of the schema has no step.

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::harness::{Server, fresh, scenario_rules, str_of};

pub const EVENT_FIELDS: &str = "id activityDateTime category activityDisplayName initiatedBy { kind name } targetResources { type id displayName modifiedProperties { displayName oldValue newValue } } result resultReason correlationId";

/// The events after event `after` (0: all), oldest first.
pub fn events_after(server: &Server, after: i64) -> Vec<Value> {
    let query = format!(
        "query($after: String) {{ auditEvents(first: 1000, after: $after) {{ edges {{ node {{ {EVENT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    let mut out = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = server.ok(&query, json!({ "after": cursor }))["auditEvents"].clone();
        let edges = page["edges"].as_array().cloned().unwrap_or_default();
        let mut done = false;
        for edge in edges {
            let node = edge["node"].clone();
            if id_of(&node) <= after {
                done = true;
                break;
            }
            out.push(node);
        }
        if done || page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        cursor = page["pageInfo"]["endCursor"].clone();
    }
    out.reverse();
    out
}

pub fn id_of(event: &Value) -> i64 {
    str_of(&event["id"]).parse().expect("an event id")
}

/// The newest event's id (0 when there is none).
pub fn last_id(server: &Server) -> i64 {
    let page = server.ok(
        "{ auditEvents(first: 1) { edges { node { id } } } }",
        json!({}),
    );
    let newest = &page["auditEvents"]["edges"][0]["node"];
    if newest.is_null() { 0 } else { id_of(newest) }
}

fn activities(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| str_of(&e["activityDisplayName"]))
        .collect()
}

/// `(displayName, oldValue, newValue)` of a target's modified properties.
fn properties(target: &Value) -> Vec<(String, Value, Value)> {
    target["modifiedProperties"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                str_of(&p["displayName"]),
                p["oldValue"].clone(),
                p["newValue"].clone(),
            )
        })
        .collect()
}

fn prop(name: &str, old: Option<&str>, new: Option<&str>) -> (String, Value, Value) {
    (name.to_string(), json!(old), json!(new))
}

fn target<'a>(event: &'a Value, kind: &str) -> &'a Value {
    event["targetResources"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} target in {event:#}"))
}

/// Runs one step and checks the events it left: their activities, in order, and for each of
/// them its category and actor kind.
fn step(
    server: &Server,
    what: &str,
    run: impl FnOnce(),
    want: &[(&str, &str, &str)],
) -> Vec<Value> {
    let before = last_id(server);
    run();
    server.wait_idle();
    let got = events_after(server, before);
    let expected: Vec<String> = want.iter().map(|(a, _, _)| a.to_string()).collect();
    assert_eq!(activities(&got), expected, "{what}: {got:#?}");
    for (event, (_, category, actor)) in got.iter().zip(want) {
        assert_eq!(event["category"], *category, "{what}: {event:#}");
        assert_eq!(event["initiatedBy"]["kind"], *actor, "{what}: {event:#}");
        assert_eq!(event["result"], "SUCCESS", "{what}: {event:#}");
        let name = if *actor == "SYSTEM" {
            "group-based licensing"
        } else {
            "local"
        };
        assert_eq!(event["initiatedBy"]["name"], name, "{what}");
    }
    got
}

const US: &str = "USER_MANAGEMENT";
const GM: &str = "GROUP_MANAGEMENT";
const LM: &str = "LICENSE_MANAGEMENT";
const LP: &str = "LICENSE_PROCESSING";
const START: &str = "Start applying group based license to users";
const FINISH: &str = "Finish applying group based license to users";

#[test]
fn every_mutation_leaves_the_events_h2_names_with_its_changes() {
    let s = fresh();
    let mut played: Vec<&str> = Vec::new();

    played.push("updateDirectory");
    let e = step(
        &s,
        "updateDirectory",
        || {
            s.ok(
                r#"mutation { updateDirectory(displayName: "Contoso, Ltd", defaultUsageLocation: "FR") { displayName } }"#,
                json!({}),
            );
        },
        &[("Update directory", "DIRECTORY_MANAGEMENT", "LOCAL")],
    );
    let directory = properties(target(&e[0], "Directory"));
    for (name, value) in [
        ("displayName", "Contoso, Ltd"),
        ("defaultUsageLocation", "FR"),
    ] {
        assert!(
            directory
                .iter()
                .any(|(n, old, new)| n == name && new == value && old != value),
            "{name}: {directory:?}"
        );
    }

    played.push("setPrepaidUnits");
    let e = step(
        &s,
        "setPrepaidUnits",
        || s.set_prepaid("EMS", 5),
        &[("Set prepaid units", LM, "LOCAL")],
    );
    let product = target(&e[0], "Product");
    assert_eq!(product["id"], "EMS");
    assert_eq!(
        properties(product),
        vec![prop("prepaidUnits", Some("0"), Some("5"))]
    );

    played.push("createUser");
    let mut ann = String::new();
    let e = step(
        &s,
        "createUser",
        || ann = s.create_user_with("ann@contoso.com", Some("US"), &["SMTP:ann@contoso.com"]),
        &[("Add user", US, "LOCAL")],
    );
    let user = target(&e[0], "User");
    assert_eq!(user["id"], ann.as_str());
    assert_eq!(user["displayName"], "ann@contoso.com");
    let added = properties(user);
    for want in [
        prop("userPrincipalName", None, Some("ann@contoso.com")),
        prop("usageLocation", None, Some("US")),
        prop("proxyAddresses", None, Some("SMTP:ann@contoso.com")),
        prop("accountEnabled", None, Some("true")),
    ] {
        assert!(added.contains(&want), "{want:?} in {added:?}");
    }

    played.push("updateUser");
    let e = step(
        &s,
        "updateUser",
        || {
            s.update_user(&ann, json!({ "displayName": "Ann \"the admin\", Bee" }));
        },
        &[("Update user", US, "LOCAL")],
    );
    assert_eq!(
        properties(target(&e[0], "User")),
        vec![prop(
            "displayName",
            Some("ann"),
            Some("Ann \"the admin\", Bee")
        )],
        "only what changed"
    );
    // An update that changes nothing is no change.
    step(
        &s,
        "updateUser, same name",
        || {
            s.update_user(&ann, json!({ "displayName": "Ann \"the admin\", Bee" }));
        },
        &[],
    );

    played.push("createGroup");
    let mut sales = String::new();
    let e = step(
        &s,
        "createGroup",
        || sales = s.create_group("Sales"),
        &[("Add group", GM, "LOCAL")],
    );
    assert_eq!(
        properties(target(&e[0], "Group")),
        vec![prop("displayName", None, Some("Sales"))]
    );

    played.push("addGroupMembers");
    let e = step(
        &s,
        "addGroupMembers",
        || {
            s.add_members(&sales, &[&ann]);
            // Already a member: no second event.
            s.add_members(&sales, &[&ann]);
        },
        &[("Add member to group", GM, "LOCAL")],
    );
    assert_eq!(target(&e[0], "User")["id"], ann.as_str());
    assert_eq!(target(&e[0], "Group")["displayName"], "Sales");

    played.push("assignGroupLicense");
    let e = step(
        &s,
        "assignGroupLicense and its run",
        || {
            s.assign_group(&sales, json!([{ "skuPartNumber": "EMS" }]), &[]);
            s.wait_complete(&sales);
        },
        &[
            ("Set group license", LM, "LOCAL"),
            (START, LP, "SYSTEM"),
            ("Change user license", LP, "SYSTEM"),
            (FINISH, LP, "SYSTEM"),
        ],
    );
    assert_eq!(
        properties(target(&e[0], "Group")),
        vec![prop("EMS", None, Some("assigned"))]
    );
    assert_eq!(
        properties(target(&e[2], "User")),
        vec![prop(&format!("EMS (group {sales})"), None, Some("ACTIVE"))]
    );
    assert_eq!(
        e[3]["resultReason"],
        "Users successfully assigned licenses: 1, Users for whom license assignment failed: 0."
    );
    // H2: the run's events share the start's id as their correlation.
    for event in &e[1..] {
        assert_eq!(event["correlationId"], e[1]["id"], "{event:#}");
    }
    assert_ne!(e[0]["correlationId"], e[1]["correlationId"]);

    played.push("assignLicense");
    s.set_prepaid("STANDARDPACK", 5);
    let e = step(
        &s,
        "assignLicense",
        || {
            s.assign_direct(
                &ann,
                json!([{ "skuPartNumber": "STANDARDPACK", "disabledPlans": ["TEAMS1"] }]),
                &[],
            );
        },
        &[("Change user license", LM, "LOCAL")],
    );
    assert_eq!(
        properties(target(&e[0], "User")),
        vec![prop(
            "STANDARDPACK (direct)",
            None,
            Some("ACTIVE; plans off: TEAMS1")
        )]
    );

    played.push("reprocessUser");
    step(
        &s,
        "reprocessUser",
        || s.reprocess_user(&ann),
        &[("Reprocess user", LM, "LOCAL")],
    );

    played.push("reprocessGroup");
    step(
        &s,
        "reprocessGroup",
        || {
            s.reprocess_group(&sales);
            s.wait_complete(&sales);
        },
        &[
            ("Reprocess group", LM, "LOCAL"),
            (START, LP, "SYSTEM"),
            (FINISH, LP, "SYSTEM"),
        ],
    );

    played.push("removeRedundantDirectLicenses");
    let bob = s.create_user("bob@contoso.com", Some("US"));
    s.add_members(&sales, &[&bob]);
    s.wait_complete(&sales);
    s.assign_direct(&bob, json!([{ "skuPartNumber": "EMS" }]), &[]);
    let e = step(
        &s,
        "removeRedundantDirectLicenses",
        || {
            s.ok(
                "mutation($u: [ID!]!) { removeRedundantDirectLicenses(userIds: $u) { removed { product { skuPartNumber } } } }",
                json!({ "u": [bob] }),
            );
        },
        &[("Remove redundant direct licenses", LM, "LOCAL")],
    );
    assert_eq!(
        properties(target(&e[0], "User")),
        vec![prop("EMS (direct)", Some("ACTIVE"), None)]
    );

    played.push("removeGroupMembers");
    let e = step(
        &s,
        "removeGroupMembers and the withdrawal",
        || {
            s.remove_members(&sales, &[&ann]);
            s.wait_complete(&sales);
        },
        &[
            ("Remove member from group", GM, "LOCAL"),
            ("Change user license", LP, "SYSTEM"),
        ],
    );
    assert_eq!(
        properties(target(&e[1], "User")),
        vec![prop(&format!("EMS (group {sales})"), Some("ACTIVE"), None)]
    );

    played.push("deleteUser");
    let e = step(
        &s,
        "deleteUser",
        || {
            s.ok(
                "mutation($u: ID!) { deleteUser(id: $u) }",
                json!({ "u": bob }),
            );
        },
        &[("Delete user", US, "LOCAL")],
    );
    let gone = properties(target(&e[0], "User"));
    assert!(
        gone.contains(&prop("userPrincipalName", Some("bob@contoso.com"), None)),
        "{gone:?}"
    );
    assert!(
        gone.contains(&prop(&format!("EMS (group {sales})"), Some("ACTIVE"), None)),
        "the licenses withdrawn: {gone:?}"
    );

    played.push("deleteGroup");
    s.assign_group(&sales, json!([]), &["EMS"]);
    s.wait_complete(&sales);
    let e = step(
        &s,
        "deleteGroup",
        || {
            s.ok(
                "mutation($g: ID!) { deleteGroup(id: $g) }",
                json!({ "g": sales }),
            );
        },
        &[("Delete group", GM, "LOCAL")],
    );
    assert_eq!(
        properties(target(&e[0], "Group")),
        vec![prop("displayName", Some("Sales"), None)]
    );

    played.push("reloadRules");
    let e = step(
        &s,
        "reloadRules",
        || {
            s.ok("mutation { reloadRules { productCount } }", json!({}));
        },
        &[("Reload rules", "POLICY", "LOCAL")],
    );
    let rules = properties(target(&e[0], "RuleSet"));
    assert_eq!(rules[0].0, "products");
    assert_eq!(rules[0].1, rules[0].2, "the same rules: {rules:?}");

    const NT: &str = "NOTIFICATIONS";
    played.push("setSeatAlertThreshold");
    let e = step(
        &s,
        "setSeatAlertThreshold",
        || {
            s.ok(
                r#"mutation { setSeatAlertThreshold(skuPartNumber: "EMS", threshold: 1000) { seatAlertThreshold } }"#,
                json!({}),
            );
        },
        // EMS has 5 seats: at most 5 available, below 1,000 (N1, N2).
        &[
            ("Set seat alert threshold", NT, "LOCAL"),
            ("Raise alert", NT, "LOCAL"),
        ],
    );
    assert_eq!(
        properties(target(&e[0], "Product")),
        vec![prop("seatAlertThreshold", None, Some("1000"))]
    );
    let raised = properties(target(&e[1], "Product"));
    assert_eq!(raised[0].0, "LOW_SEATS");
    assert!(
        raised[0].1.is_null() && raised[0].2.is_string(),
        "{raised:?}"
    );

    played.push("createWebhook");
    let mut webhook = String::new();
    let e = step(
        &s,
        "createWebhook",
        || {
            webhook = str_of(
                &s.ok(
                    r#"mutation { createWebhook(url: "https://93.184.215.14/hook", events: [ALERT_RAISED]) { webhook { id } } }"#,
                    json!({}),
                )["createWebhook"]["webhook"]["id"],
            );
        },
        &[("Add webhook", NT, "LOCAL")],
    );
    let hook = target(&e[0], "Webhook");
    assert_eq!(hook["id"], webhook.as_str());
    assert_eq!(
        properties(hook),
        vec![
            prop("url", None, Some("https://93.184.215.14/hook")),
            prop("events", None, Some("ALERT_RAISED")),
        ]
    );

    played.push("deleteWebhook");
    let e = step(
        &s,
        "deleteWebhook",
        || {
            s.ok(
                "mutation($id: ID!) { deleteWebhook(id: $id) }",
                json!({ "id": webhook }),
            );
        },
        &[("Delete webhook", NT, "LOCAL")],
    );
    assert_eq!(
        properties(target(&e[0], "Webhook")),
        vec![prop("url", Some("https://93.184.215.14/hook"), None)]
    );

    // The guard: every mutation of the schema has its step.
    let schema = s.ok(
        "{ __schema { mutationType { fields { name } } } }",
        json!({}),
    );
    let mut missing: Vec<String> = schema["__schema"]["mutationType"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| str_of(&f["name"]))
        .filter(|n| !played.contains(&n.as_str()))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "mutations with no step here: {missing:?}"
    );
    audit_is_clean(&s);
}

/// The store's own audit (kept counts, contiguous event ids) over the server's database,
/// read beside the running server.
pub fn audit_is_clean(s: &Server) {
    let conn =
        rusqlite::Connection::open_with_flags(&s.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database");
    let problems = group_licensing::store::read::audit(&conn).expect("audit");
    assert!(problems.is_empty(), "store audit:\n{}", problems.join("\n"));
}

#[test]
fn a_failed_mutation_is_recorded_as_failure_and_changes_nothing_else() {
    let s = fresh();
    let nomad = s.create_user("nomad@contoso.com", None);
    let before = last_id(&s);
    let error = s.err(
        "mutation($u: ID!) { assignLicense(userId: $u, addLicenses: [{ skuPartNumber: \"EMS\" }], removeLicenses: []) { id } }",
        json!({ "u": nomad }),
    );
    let code = str_of(&error["extensions"]["code"]);
    let events = events_after(&s, before);
    assert_eq!(
        activities(&events),
        vec!["Change user license"],
        "{events:#?}"
    );
    let e = &events[0];
    assert_eq!(e["result"], "FAILURE");
    assert_eq!(
        e["resultReason"],
        format!("{code}: {}", str_of(&error["message"])),
        "H5: the code and the message"
    );
    assert_eq!(target(e, "User")["id"], nomad.as_str());
    assert!(s.states(&nomad).is_empty(), "nothing else changed");

    // A malformed argument fails before the store: recorded too, with no target.
    let before = last_id(&s);
    let error = s.err(
        r#"mutation { updateUser(id: "x1", input: { displayName: "X" }) { id } }"#,
        json!({}),
    );
    let events = events_after(&s, before);
    assert_eq!(activities(&events), vec!["Update user"]);
    assert_eq!(events[0]["result"], "FAILURE");
    assert_eq!(events[0]["targetResources"], json!([]));
    assert!(
        str_of(&events[0]["resultReason"]).starts_with("BAD_USER_INPUT: "),
        "{error:#}"
    );

    // The other mutations of the same document run: each its own event, one correlation.
    let before = last_id(&s);
    let body = s.gql(
        r#"mutation { a: createGroup(displayName: "A") { id } b: deleteGroup(id: "999") c: createGroup(displayName: "C") { id } }"#,
        json!({}),
    );
    assert!(body["errors"].is_array(), "{body:#}");
    let events = events_after(&s, before);
    assert_eq!(
        activities(&events),
        vec!["Add group", "Delete group", "Add group"]
    );
    let results: Vec<&Value> = events.iter().map(|e| &e["result"]).collect();
    assert_eq!(results, vec!["SUCCESS", "FAILURE", "SUCCESS"]);
    assert!(
        events.iter().all(|e| e["correlationId"] == events[0]["id"]),
        "one request, one correlation: {events:#?}"
    );
}

const ADMIN: &str = "admin-token-77f1c2a9e0b34d5c";
const ADMIN_UNNAMED: &str = "admin-token-unnamed-a1b2c3d4";
const READER: &str = "reader-token-5e6f7a8b9c0d1e2f";
const PROVISIONING: &str = "provisioning-token-0a1b2c3d4e5f";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("a token file");
    path.display().to_string()
}

fn as_token(s: &Server, token: &str, query: &str, variables: Value) -> (u16, Value) {
    let mut response = s
        .agent()
        .post(s.url("/graphql"))
        .header("Authorization", &format!("Bearer {token}"))
        .send_json(json!({ "query": query, "variables": variables }))
        .expect("POST /graphql");
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().expect("JSON"))
}

fn newest(s: &Server, token: &str) -> Value {
    let query = format!("{{ auditEvents(first: 1) {{ edges {{ node {{ {EVENT_FIELDS} }} }} }} }}");
    let (status, body) = as_token(s, token, &query, json!({}));
    assert_eq!(status, 200, "{body:#}");
    body["data"]["auditEvents"]["edges"][0]["node"].clone()
}

#[test]
fn named_tokens_are_the_actor_and_a_readers_refusal_is_recorded() {
    let dir = TempDir::new().expect("dir");
    let admin = write(
        dir.path(),
        "admin",
        &format!("# the admins\nann.admin@contoso {ADMIN}\n{ADMIN_UNNAMED}\n"),
    );
    let reader = write(dir.path(), "reader", &format!("rita_reader {READER}\n"));
    let provisioning = write(dir.path(), "prov", &format!("okta-scim {PROVISIONING}\n"));
    let s = Server::start_with(
        &dir.path().join("t.db"),
        &scenario_rules(),
        &[
            "--admin-token-file",
            &admin,
            "--reader-token-file",
            &reader,
            "--provisioning-token-file",
            &provisioning,
        ],
    );
    let create = "mutation($n: String!) { createGroup(displayName: $n) { id } }";

    let (status, body) = as_token(&s, ADMIN, create, json!({ "n": "By Ann" }));
    assert_eq!(status, 200, "{body:#}");
    let e = newest(&s, READER);
    assert_eq!(e["activityDisplayName"], "Add group");
    assert_eq!(
        e["initiatedBy"],
        json!({ "kind": "TOKEN", "name": "ann.admin@contoso" })
    );

    as_token(&s, ADMIN_UNNAMED, create, json!({ "n": "By nobody" }));
    let digest: String = Sha256::digest(ADMIN_UNNAMED.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        newest(&s, READER)["initiatedBy"],
        json!({ "kind": "TOKEN", "name": digest }),
        "an unnamed token is named by its digest's first 8 hex digits"
    );

    // H5: the reader's refused mutation, once per mutation field.
    let (status, body) = as_token(
        &s,
        READER,
        r#"mutation { a: createGroup(displayName: "no") { id } b: reprocessGroup(groupId: "1") { id } }"#,
        json!({}),
    );
    assert_eq!(status, 403, "{body:#}");
    let query = format!("{{ auditEvents(first: 2) {{ edges {{ node {{ {EVENT_FIELDS} }} }} }} }}");
    let (_, page) = as_token(&s, READER, &query, json!({}));
    let refused: Vec<Value> = page["data"]["auditEvents"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(activities(&refused), vec!["Reprocess group", "Add group"]);
    for e in &refused {
        assert_eq!(e["result"], "FAILURE");
        assert_eq!(
            e["initiatedBy"],
            json!({ "kind": "TOKEN", "name": "rita_reader" })
        );
        assert!(
            str_of(&e["resultReason"])
                .starts_with("FORBIDDEN: a reader token may only run queries"),
            "{e:#}"
        );
    }
    assert_eq!(target(&refused[0], "Group")["id"], "1");
    let (_, groups) = as_token(&s, READER, "{ groups { totalCount } }", json!({}));
    assert_eq!(
        groups["data"]["groups"]["totalCount"], 2,
        "the refusal changed nothing"
    );

    // SCIM: the provisioning token's name, of the PROVISIONING kind.
    let mut response = s
        .agent()
        .post(s.url("/scim/v2/Users"))
        .header("Authorization", &format!("Bearer {PROVISIONING}"))
        .header("Content-Type", "application/scim+json")
        .send(
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "scim.user@contoso.com",
                "displayName": "Scim User"
            })
            .to_string(),
        )
        .expect("POST /scim/v2/Users");
    assert_eq!(
        response.status().as_u16(),
        201,
        "{}",
        response.body_mut().read_to_string().unwrap_or_default()
    );
    let e = newest(&s, READER);
    assert_eq!(e["activityDisplayName"], "Add user");
    assert_eq!(
        e["initiatedBy"],
        json!({ "kind": "PROVISIONING", "name": "okta-scim" })
    );
    assert_eq!(target(&e, "User")["displayName"], "scim.user@contoso.com");

    // A SCIM request that fails is recorded as well, and a token is never in the history.
    let mut response = s
        .agent()
        .post(s.url("/scim/v2/Users"))
        .header("Authorization", &format!("Bearer {PROVISIONING}"))
        .header("Content-Type", "application/scim+json")
        .send(
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "SCIM.user@contoso.com"
            })
            .to_string(),
        )
        .expect("POST /scim/v2/Users");
    assert_eq!(
        response.status().as_u16(),
        409,
        "{}",
        response.body_mut().read_to_string().unwrap_or_default()
    );
    let e = newest(&s, READER);
    assert_eq!(e["result"], "FAILURE");
    assert!(
        str_of(&e["resultReason"]).starts_with("uniqueness: "),
        "{e:#}"
    );
    let everything = as_token(
        &s,
        READER,
        &format!("{{ auditEvents(first: 1000) {{ edges {{ node {{ {EVENT_FIELDS} }} }} }} }}"),
        json!({}),
    )
    .1;
    let text = everything.to_string();
    for token in [ADMIN, ADMIN_UNNAMED, READER, PROVISIONING] {
        assert!(!text.contains(token), "a token in the history");
    }
}

#[test]
fn audit_events_are_filtered_paged_newest_first_and_counted_exactly() {
    let s = fresh();
    s.set_prepaid("EMS", 100);
    let ann = s.create_user("ann@contoso.com", Some("US"));
    let mut groups = Vec::new();
    for i in 0..12 {
        groups.push(s.create_group(&format!("G{i}")));
    }
    let g = groups[3].clone();
    s.add_members(&g, &[&ann]);
    s.assign_group(&g, json!([{ "skuPartNumber": "EMS" }]), &[]);
    s.wait_complete(&g);
    s.err(r#"mutation { deleteGroup(id: "9999") }"#, json!({}));
    let all = events_after(&s, 0);

    let count = |args: &str| -> (i64, Vec<String>) {
        let mut ids = Vec::new();
        let mut cursor = Value::Null;
        let mut total;
        loop {
            let query = format!(
                "query($after: String) {{ auditEvents(first: 5, after: $after{args}) {{ totalCount edges {{ node {{ id }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
            );
            let page = s.ok(&query, json!({ "after": cursor }))["auditEvents"].clone();
            total = page["totalCount"].as_i64().expect("a count");
            ids.extend(
                page["edges"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| str_of(&e["node"]["id"])),
            );
            if page["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            cursor = page["pageInfo"]["endCursor"].clone();
        }
        (total, ids)
    };
    let expect = |args: &str, keep: &dyn Fn(&Value) -> bool| {
        let mut want: Vec<String> = all
            .iter()
            .filter(|e| keep(e))
            .map(|e| str_of(&e["id"]))
            .collect();
        want.reverse();
        let (total, ids) = count(args);
        assert_eq!(ids, want, "{args}");
        assert_eq!(total, want.len() as i64, "totalCount of {args}");
        assert!(
            !want.is_empty() || args.contains("until"),
            "{args} selects something"
        );
    };
    let mentions = |e: &Value, kind: &str, id: &str| {
        e["targetResources"]
            .as_array()
            .is_some_and(|ts| ts.iter().any(|t| t["type"] == kind && t["id"] == id))
    };
    expect("", &|_| true);
    expect(", category: GROUP_MANAGEMENT", &|e| {
        e["category"] == "GROUP_MANAGEMENT"
    });
    expect(", result: FAILURE", &|e| e["result"] == "FAILURE");
    expect(", category: LICENSE_PROCESSING, result: SUCCESS", &|e| {
        e["category"] == "LICENSE_PROCESSING"
    });
    expect(&format!(", userId: \"{ann}\""), &|e| {
        mentions(e, "User", &ann)
    });
    expect(&format!(", groupId: \"{g}\""), &|e| {
        mentions(e, "Group", &g)
            || e["activityDisplayName"] == "Change user license"
                && e["category"] == "LICENSE_PROCESSING"
    });
    expect(", skuPartNumber: \"EMS\"", &|e| {
        mentions(e, "Product", "EMS") || e["targetResources"].to_string().contains("\"EMS")
    });
    expect(
        &format!(", skuPartNumber: \"EMS\", userId: \"{ann}\""),
        &|e| mentions(e, "User", &ann) && e["targetResources"].to_string().contains("EMS (group"),
    );
    // Times: the events from the fifth one's time on, and up to it.
    let fifth = str_of(&all[4]["activityDateTime"]);
    expect(&format!(", since: \"{fifth}\""), &|e| {
        str_of(&e["activityDateTime"]) >= fifth
    });
    expect(&format!(", until: \"{fifth}\""), &|e| {
        str_of(&e["activityDateTime"]) <= fifth
    });
    expect(", until: \"2000-01-01T00:00:00Z\"", &|_| false);

    // Each list on its own object.
    let user = s.ok(
        "query($u: ID!) { user(id: $u) { auditEvents { totalCount edges { node { activityDisplayName } } } } }",
        json!({ "u": ann }),
    );
    let names: Vec<String> = user["user"]["auditEvents"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| str_of(&e["node"]["activityDisplayName"]))
        .collect();
    assert_eq!(
        names,
        vec!["Change user license", "Add member to group", "Add user"]
    );
    let group = s.ok(
        "query($g: ID!) { group(id: $g) { auditEvents(first: 2) { totalCount edges { node { activityDisplayName } } } } }",
        json!({ "g": g }),
    );
    assert_eq!(group["group"]["auditEvents"]["totalCount"], 6, "{group:#}");
    assert_eq!(
        group["group"]["auditEvents"]["edges"][0]["node"]["activityDisplayName"],
        FINISH
    );

    // A cursor of another list, and a bad time, are refused.
    let e = s.err(
        r#"{ auditEvents(after: "6162") { totalCount } }"#,
        json!({}),
    );
    assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT");
}

#[test]
fn the_retention_removes_the_events_older_than_it_and_keeps_the_rest() {
    let dir = TempDir::new().expect("dir");
    let db = dir.path().join("t.db");
    let s = Server::start(&db, &scenario_rules());
    for name in ["Old 1", "Old 2", "New 1"] {
        s.create_group(name);
    }
    let all = events_after(&s, 0);
    assert_eq!(all.len(), 3);
    s.kill();
    {
        // Two events from long ago (ids in time order, as the writer keeps them).
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute(
            "UPDATE audit_events SET at = '2020-01-01T00:00:00.000Z' WHERE id <= ?1",
            [id_of(&all[1])],
        )
        .expect("age two events");
    }
    let s = Server::start_with(&db, &scenario_rules(), &["--audit-retention-days", "30"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let left = loop {
        let left = events_after(&s, 0);
        if left.len() < 3 || std::time::Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["id"], all[2]["id"]);
    let total = s.ok("{ auditEvents { totalCount } }", json!({}));
    assert_eq!(total["auditEvents"]["totalCount"], 1);
    audit_is_clean(&s);
    s.kill();
    // A retention that is not a number of days is refused at start.
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--audit-retention-days", "0", "--db"])
        .arg(&db)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--audit-retention-days"));
}
