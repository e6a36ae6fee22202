//! W1, W3, W4, W5 checked by doing it: before each operation that has a preview, the
//! differential test asks for the preview; after the operation is committed and processed, the
//! preview must have said it all, user by user. The rules for outcomes and seats are written
//! here again from the spec, over the tenant views before and after, not read from the server.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::harness::Server;
use super::model::Op;
use super::{
    Answer, StateView, TenantView, VIOLATION, id_of, licenses_json, names, normalize_answer, text,
    violations_view,
};

/// A user's assignment states, by (group, product); group `None`: direct.
type States = BTreeMap<(Option<u64>, String), StateView>;

/// A preview as the test compares it.
#[derive(Debug)]
pub struct Seen {
    answer: Answer,
    affected: i64,
    queued: i64,
    outcomes: BTreeMap<String, i64>,
    errors: BTreeMap<String, i64>,
    /// sku → (prepaid, consumed, consumed after, short)
    seats: BTreeMap<String, (i64, i64, i64, i64)>,
    /// user → (outcome, states after)
    users: BTreeMap<u64, (String, States)>,
}

const FIELDS: &str =
    "usersAffected queuedWorkItems outcomeCounts { outcome count } errorCounts { error count }
  products { product { skuPartNumber } prepaidUnits consumedUnits consumedUnitsAfter seatsShort }";

fn users_field() -> String {
    format!(
        "users(first: 1000) {{ totalCount edges {{ node {{ user {{ id }} outcome licenseAssignmentStates {{
      product {{ skuPartNumber }} assignedByGroup {{ id }} disabledPlans {{ servicePlanName }}
      state error errorDetail {{ violations {{ {VIOLATION} }} }} }} }} }} }}"
    )
}

/// The preview query of `op`, if it has one.
fn query(op: &Op) -> Option<(String, Value)> {
    let id = |n: &u64| n.to_string();
    let users = users_field();
    Some(match op {
        Op::AddMembers { group, users: u } => (
            format!(
                "query($g: ID!, $u: [ID!]!) {{ p: previewAddGroupMembers(groupId: $g, userIds: $u) {{ {FIELDS} {users} }} }}"
            ),
            json!({ "g": id(group), "u": u.iter().map(id).collect::<Vec<_>>() }),
        ),
        Op::RemoveMembers { group, users: u } => (
            format!(
                "query($g: ID!, $u: [ID!]!) {{ p: previewRemoveGroupMembers(groupId: $g, userIds: $u) {{ {FIELDS} {users} }} }}"
            ),
            json!({ "g": id(group), "u": u.iter().map(id).collect::<Vec<_>>() }),
        ),
        Op::AssignLicense { user, add, remove } => (
            format!(
                "query($u: ID!, $a: [LicenseInput!]!, $r: [String!]!) {{ p: previewAssignLicense(userId: $u, addLicenses: $a, removeLicenses: $r) {{ {FIELDS} {users} }} }}"
            ),
            json!({ "u": id(user), "a": licenses_json(add), "r": remove }),
        ),
        Op::AssignGroupLicense { group, add, remove } => (
            format!(
                "query($g: ID!, $a: [LicenseInput!]!, $r: [String!]!) {{ p: previewAssignGroupLicense(groupId: $g, addLicenses: $a, removeLicenses: $r) {{ {FIELDS} {users} }} }}"
            ),
            json!({ "g": id(group), "a": licenses_json(add), "r": remove }),
        ),
        Op::ReprocessGroup { group } => (
            format!(
                "query($g: ID!) {{ p: previewReprocessGroup(groupId: $g) {{ {FIELDS} {users} }} }}"
            ),
            json!({ "g": id(group) }),
        ),
        _ => return None,
    })
}

fn states_of(list: &Value) -> States {
    let mut out = BTreeMap::new();
    for s in list.as_array().expect("states") {
        let group = (!s["assignedByGroup"].is_null()).then(|| id_of(&s["assignedByGroup"]["id"]));
        out.insert(
            (group, text(&s["product"]["skuPartNumber"])),
            StateView {
                disabled: names(&s["disabledPlans"], "servicePlanName"),
                state: text(&s["state"]),
                error: text(&s["error"]),
                violations: violations_view(&s["errorDetail"]["violations"]),
            },
        );
    }
    out
}

/// Asks for the preview of `op`; `None` when it has none.
pub fn ask(server: &Server, op: &Op) -> Option<Seen> {
    let (q, vars) = query(op)?;
    let body = server.gql(&q, vars);
    if let Some(error) = body["errors"].get(0) {
        let answer = normalize_answer(Answer::Refused {
            code: text(&error["extensions"]["code"]),
            details: error["extensions"].get("details").cloned(),
        });
        return Some(Seen {
            answer,
            affected: 0,
            queued: 0,
            outcomes: BTreeMap::new(),
            errors: BTreeMap::new(),
            seats: BTreeMap::new(),
            users: BTreeMap::new(),
        });
    }
    let p = &body["data"]["p"];
    let n = |v: &Value| v.as_i64().unwrap_or_else(|| panic!("not a number: {v}"));
    let pairs = |list: &Value, key: &str| -> BTreeMap<String, i64> {
        list.as_array()
            .expect("counts")
            .iter()
            .map(|c| (text(&c[key]), n(&c["count"])))
            .collect()
    };
    let seats = p["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|s| {
            (
                text(&s["product"]["skuPartNumber"]),
                (
                    n(&s["prepaidUnits"]),
                    n(&s["consumedUnits"]),
                    n(&s["consumedUnitsAfter"]),
                    n(&s["seatsShort"]),
                ),
            )
        })
        .collect();
    let users: BTreeMap<u64, _> = p["users"]["edges"]
        .as_array()
        .expect("users")
        .iter()
        .map(|e| {
            let node = &e["node"];
            (
                id_of(&node["user"]["id"]),
                (
                    text(&node["outcome"]),
                    states_of(&node["licenseAssignmentStates"]),
                ),
            )
        })
        .collect();
    assert_eq!(
        n(&p["users"]["totalCount"]),
        users.len() as i64,
        "the test's tenants fit in one page: {p}"
    );
    Some(Seen {
        answer: Answer::Done(None),
        affected: n(&p["usersAffected"]),
        queued: n(&p["queuedWorkItems"]),
        outcomes: pairs(&p["outcomeCounts"], "outcome"),
        errors: pairs(&p["errorCounts"], "error"),
        seats,
        users,
    })
}

/// The source an operation changes: `Some(group)`, or `None` for direct.
fn source(op: &Op) -> Option<u64> {
    match op {
        Op::AddMembers { group, .. }
        | Op::RemoveMembers { group, .. }
        | Op::AssignGroupLicense { group, .. }
        | Op::ReprocessGroup { group } => Some(*group),
        _ => None,
    }
}

fn from_source(
    states: &States,
    source: Option<u64>,
) -> BTreeMap<String, (String, String, Vec<super::ViolationView>)> {
    states
        .iter()
        .filter(|((g, _), _)| *g == source)
        .map(|((_, sku), s)| {
            (
                sku.clone(),
                (s.state.clone(), s.error.clone(), s.violations.clone()),
            )
        })
        .collect()
}

/// W5 from the spec, over the views: the first that applies.
fn outcome(op: &Op, before: &TenantView, after: &TenantView, user: u64) -> String {
    let source = source(op);
    let empty = BTreeMap::new();
    let was = before.users.get(&user).map_or(&empty, |u| &u.states);
    let is = after.users.get(&user).map_or(&empty, |u| &u.states);
    let (was_src, is_src) = (from_source(was, source), from_source(is, source));
    let held_was = before.users.get(&user).map(|u| &u.held);
    let held_is = after.users.get(&user).map(|u| &u.held);
    if was_src == is_src && held_was == held_is {
        return "UNCHANGED".into();
    }
    if let Some(g) = source {
        let group = after.groups.get(&g);
        let member = group.is_some_and(|gr| gr.members.contains(&user));
        let offers = |sku: &str| group.is_some_and(|gr| gr.licenses.iter().any(|(s, _)| s == sku));
        if is_src.keys().any(|sku| !member || !offers(sku)) {
            return "BLOCKED".into();
        }
    }
    if is_src.is_empty() && !was_src.is_empty() {
        return "REMOVED".into();
    }
    if is_src.values().any(|(_, error, _)| error != "NONE") {
        return "ERROR".into();
    }
    "LICENSED".into()
}

/// Checks the preview against what committing and processing `op` did. `answer` is the
/// mutation's (normalized) answer; `before` and `after` are the tenant around it.
pub fn check(
    seen: &Seen,
    op: &Op,
    answer: &Answer,
    before: &TenantView,
    after: &TenantView,
) -> Result<(), String> {
    // W3: refused alike, with the same code and details.
    match (&seen.answer, answer) {
        (Answer::Refused { .. }, _) | (_, Answer::Refused { .. }) => {
            return if seen.answer == *answer {
                Ok(())
            } else {
                Err(format!(
                    "the preview answered {:?}, the mutation {answer:?}",
                    seen.answer
                ))
            };
        }
        _ => {}
    }
    if seen.queued != 0 {
        return Err(format!(
            "work was queued before the preview: {}",
            seen.queued
        ));
    }
    // W4: user by user, the states the preview gave are the states processing left.
    let mut problems = Vec::new();
    for (user, (said, states)) in &seen.users {
        let empty = BTreeMap::new();
        let now = after.users.get(user).map_or(&empty, |u| &u.states);
        if states != now {
            problems.push(format!(
                "user {user}: the preview said\n{states:#?}\nprocessing left\n{now:#?}"
            ));
        }
        let want = outcome(op, before, after, *user);
        if *said != want {
            problems.push(format!("user {user}: outcome {said}, the spec says {want}"));
        }
    }
    // W5: nobody the preview left out changed.
    for (user, view) in &after.users {
        let was = before.users.get(user).map(|u| &u.states);
        if !seen.users.contains_key(user)
            && was != Some(&view.states)
            && before.users.contains_key(user)
        {
            problems.push(format!("user {user} changed but is not in the preview"));
        }
    }
    if seen.affected != seen.users.len() as i64 {
        problems.push(format!(
            "usersAffected {} but {} users listed",
            seen.affected,
            seen.users.len()
        ));
    }
    let mut outcomes: BTreeMap<String, i64> = BTreeMap::new();
    for (said, _) in seen.users.values() {
        *outcomes.entry(said.clone()).or_default() += 1;
    }
    if outcomes != seen.outcomes {
        problems.push(format!(
            "outcomeCounts {:?}, the users' outcomes {outcomes:?}",
            seen.outcomes
        ));
    }
    // errorCounts: one code per user in error (its first), so the counts add up to the users
    // in error, and each code is one those users have.
    let src = source(op);
    let in_error: Vec<BTreeSet<String>> = seen
        .users
        .values()
        .map(|(_, states)| {
            from_source(states, src)
                .values()
                .filter(|(_, e, _)| e != "NONE")
                .map(|(_, e, _)| e.clone())
                .collect::<BTreeSet<String>>()
        })
        .filter(|codes| !codes.is_empty())
        .collect();
    let total: i64 = seen.errors.values().sum();
    if total != in_error.len() as i64 {
        problems.push(format!(
            "errorCounts {:?} add up to {total}, {} users are in error",
            seen.errors,
            in_error.len()
        ));
    }
    for (code, count) in &seen.errors {
        let possible = in_error.iter().filter(|c| c.contains(code)).count() as i64;
        if *count > possible {
            problems.push(format!(
                "errorCounts: {count} × {code}, only {possible} users have it"
            ));
        }
    }
    // Seats: every product whose use changed, or that falls short, with the right figures.
    for (sku, (prepaid, consumed, _)) in &before.seats {
        let (_, after_consumed, _) = after.seats.get(sku).copied().unwrap_or_default();
        let short = seen
            .users
            .values()
            .filter(|(_, states)| {
                from_source(states, src).values().any(|(_, _, vs)| {
                    vs.iter()
                        .any(|v| v.code == "COUNT_VIOLATION" && v.products.contains(sku))
                })
            })
            .count() as i64;
        let listed = seen.seats.get(sku);
        let expected = (consumed != &after_consumed || short > 0).then_some((
            *prepaid,
            *consumed,
            after_consumed,
            short,
        ));
        if listed.copied() != expected {
            problems.push(format!(
                "seats of {sku}: the preview said {listed:?}, expected {expected:?}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
