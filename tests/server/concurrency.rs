//! 32 clients at once, each with its own HTTP connection, adding and removing members of one
//! licensed group and direct licenses of one product that has few seats. Each client owns two
//! users and keeps a model of what it was told succeeded, so at the end every acknowledged
//! mutation can be found in the tenant ("nothing is ever lost"). Throughout and at the end: the
//! product is never held beyond its seats (L3), consumedUnits is the number of holders (L1, L3),
//! no client ever sees SQLITE_BUSY or an internal error, and the whole run ends well within its
//! deadline (no deadlock).
//!
//! `CONCURRENCY_OPS` (operations per client, default 30) and `CONCURRENCY_SEED` scale and replay
//! a run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{agent, fresh, license, str_of};
use crate::rng::Rng;

const CLIENTS: usize = 32;
const USERS_PER_CLIENT: usize = 2;
const SEATS: i64 = 5;
const EMS: &str = "EMS";
/// Generous: a run takes seconds; a deadlock would hold it until this.
const DEADLINE: Duration = Duration::from_secs(180);

const ADD_MEMBERS: &str = "mutation($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { id memberCount } }";
const REMOVE_MEMBERS: &str = "mutation($g: ID!, $u: [ID!]!) { removeGroupMembers(groupId: $g, userIds: $u) { id memberCount } }";
const ASSIGN: &str = "mutation($u: ID!, $add: [LicenseInput!]!, $remove: [String!]!) {
  assignLicense(userId: $u, addLicenses: $add, removeLicenses: $remove) {
    id licenseAssignmentStates { product { skuPartNumber } assignedByGroup { id } state }
  }
}";
const REPROCESS_USER: &str = "mutation($u: ID!) { reprocessUser(userId: $u) { id } }";
const SEATS_QUERY: &str =
    "{ product(skuPartNumber: \"EMS\") { prepaidUnits consumedUnits availableUnits } }";
const DASHBOARD: &str = "query($g: ID!) { group(id: $g) { memberCount licenseProcessingState licenseErrorCount licenseErrorCounts { error count } membersWithLicenseErrors(first: 10) { totalCount } } }";

/// What one client was told succeeded, for its own users.
#[derive(Default, Clone)]
struct Model {
    /// Its users in the group, in the order they (last) joined (P1).
    members: Vec<String>,
    /// Its users holding the product directly (by the client's own assignment).
    direct: Vec<String>,
}

/// What one client did.
#[derive(Default)]
struct Tally {
    mutations: u64,
    refused_for_seats: u64,
    reads: u64,
    slowest: Duration,
    /// Answers that break a promise; empty when all is well.
    problems: Vec<String>,
}

fn post(agent: &ureq::Agent, url: &str, query: &str, variables: Value) -> Result<Value, String> {
    let mut response = agent
        .post(url)
        .send_json(json!({ "query": query, "variables": variables }))
        .map_err(|e| format!("POST failed: {e}"))?;
    response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_json()
        .map_err(|e| format!("answer is not JSON: {e}"))
}

/// A problem if the answer has an error a client must never see: anything internal, anything
/// mentioning SQLite's busy or locked database, or an error without a code.
fn forbidden_error(body: &Value) -> Option<String> {
    let errors = body["errors"].as_array()?;
    errors.iter().find_map(|e| {
        let code = e["extensions"]["code"].as_str().unwrap_or("(none)");
        let message = e["message"].as_str().unwrap_or("").to_lowercase();
        let bad = code.contains("INTERNAL")
            || code.contains("BUSY")
            || code == "(none)"
            || message.contains("busy")
            || message.contains("locked");
        bad.then(|| format!("code {code}: {e}"))
    })
}

fn seat_check(body: &Value) -> Result<(), String> {
    let p = &body["data"]["product"];
    let (prepaid, consumed, available) = (
        p["prepaidUnits"].as_i64(),
        p["consumedUnits"].as_i64(),
        p["availableUnits"].as_i64(),
    );
    match (prepaid, consumed, available) {
        (Some(prepaid), Some(consumed), Some(available))
            if consumed <= prepaid && consumed >= 0 && available == prepaid - consumed =>
        {
            Ok(())
        }
        _ => Err(format!("L3 broken: {p}")),
    }
}

/// One client: `ops` random mutations on its own users, each followed by a read of the seats.
fn client(
    url: String,
    group: String,
    users: Vec<String>,
    ops: usize,
    mut rng: Rng,
) -> (Model, Tally) {
    let agent = agent();
    let mut model = Model::default();
    let mut tally = Tally::default();
    for _ in 0..ops {
        let user = rng.pick(&users).clone();
        let started = Instant::now();
        let roll = rng.below(100);
        let (kind, body) = if roll < 35 {
            let adding = !model.members.contains(&user) || rng.chance(20);
            let (q, kind) = if adding {
                (ADD_MEMBERS, "add member")
            } else {
                (REMOVE_MEMBERS, "remove member")
            };
            let body = post(&agent, &url, q, json!({ "g": group, "u": [user] }));
            if let Ok(b) = &body
                && b.get("errors").is_none()
            {
                if !adding {
                    model.members.retain(|m| *m != user);
                } else if !model.members.contains(&user) {
                    // Already a member keeps its place (P1): only a new member goes last.
                    model.members.push(user.clone());
                }
            }
            (kind, body)
        } else if roll < 80 {
            let adding = !model.direct.contains(&user);
            let vars = if adding {
                json!({ "u": user, "add": [license(EMS, &[])], "remove": [] })
            } else {
                json!({ "u": user, "add": [], "remove": [EMS] })
            };
            let body = post(&agent, &url, ASSIGN, vars);
            if let Ok(b) = &body {
                let direct_states = b["data"]["assignLicense"]["licenseAssignmentStates"]
                    .as_array()
                    .map(|states| {
                        states
                            .iter()
                            .filter(|s| s["assignedByGroup"].is_null())
                            .count()
                    });
                match (b.get("errors"), direct_states) {
                    (None, Some(n)) => {
                        // The answer already shows the change (D1–D5 apply at once).
                        if n != usize::from(adding) {
                            tally.problems.push(format!(
                                "assignLicense answered {n} direct states after {}: {b}",
                                if adding { "adding" } else { "removing" }
                            ));
                        }
                        if adding {
                            model.direct.push(user.clone());
                        } else {
                            model.direct.retain(|u| *u != user);
                        }
                    }
                    (Some(errors), _) => {
                        let code = errors[0]["extensions"]["code"].as_str().unwrap_or("");
                        // C5 through D3: no seat left is the one refusal expected here.
                        if adding && code == "COUNT_VIOLATION" {
                            tally.refused_for_seats += 1;
                        } else {
                            tally
                                .problems
                                .push(format!("assignLicense refused: {errors}"));
                        }
                    }
                    (None, None) => tally
                        .problems
                        .push(format!("assignLicense answered without the user: {b}")),
                }
            }
            (
                if adding {
                    "direct add"
                } else {
                    "direct remove"
                },
                body,
            )
        } else if roll < 90 {
            (
                "reprocess user",
                post(&agent, &url, REPROCESS_USER, json!({ "u": user })),
            )
        } else {
            tally.reads += 1;
            (
                "dashboard",
                post(&agent, &url, DASHBOARD, json!({ "g": group })),
            )
        };
        tally.slowest = tally.slowest.max(started.elapsed());
        match body {
            Err(e) => tally.problems.push(format!("{kind}: {e}")),
            Ok(b) => {
                if kind != "dashboard" {
                    tally.mutations += 1;
                }
                if let Some(p) = forbidden_error(&b) {
                    tally.problems.push(format!("{kind}: {p}"));
                }
                if kind != "direct add" && kind != "direct remove" && b.get("errors").is_some() {
                    tally.problems.push(format!("{kind} refused: {b}"));
                }
            }
        }
        // After every answer, the seats as a client sees them (L3).
        tally.reads += 1;
        match post(&agent, &url, SEATS_QUERY, json!({})) {
            Err(e) => tally.problems.push(format!("seats: {e}")),
            Ok(b) => {
                if let Some(p) = forbidden_error(&b) {
                    tally.problems.push(format!("seats: {p}"));
                }
                if let Err(e) = seat_check(&b) {
                    tally.problems.push(e);
                }
            }
        }
    }
    (model, tally)
}

/// Seats kept, seats prepaid and holders recounted, in one statement (one snapshot) of the
/// database file, read-only beside the server.
fn seats_in_db(conn: &rusqlite::Connection) -> (i64, i64, i64) {
    conn.query_row(
        "SELECT prepaid_units, consumed_units,
                (SELECT count(DISTINCT s.user_id) FROM assignment_sets s, json_each(s.products) p
                  WHERE json_extract(p.value, '$.sku') = 'EMS'
                    AND json_extract(p.value, '$.applied') IS NOT NULL)
           FROM products WHERE sku = 'EMS'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("seats in the database")
}

#[test]
fn thirty_two_clients_on_few_seats_never_oversubscribe_lose_or_deadlock() {
    let seed = Rng::seed_from_env("CONCURRENCY_SEED");
    let ops: usize = std::env::var("CONCURRENCY_OPS")
        .ok()
        .map(|v| v.parse().expect("CONCURRENCY_OPS is a number"))
        .unwrap_or(30);
    let mut rng = Rng::new(seed);
    let s = fresh();
    s.set_prepaid(EMS, SEATS);
    let group = s.create_group("Few seats");
    s.assign_group(&group, json!([license(EMS, &[])]), &[]);
    let users: Vec<String> = (0..CLIENTS * USERS_PER_CLIENT)
        .map(|n| s.create_user(&format!("c{n}@contoso.com"), Some("US")))
        .collect();

    // A monitor reads the database file while the clients run: seats never beyond the prepaid
    // number, and the kept count always equal to the holders, in every committed state.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicU64::new(0));
    let monitor_problems = Arc::new(Mutex::new(Vec::<String>::new()));
    let monitor = {
        let (db, stop, samples, problems) = (
            s.db.clone(),
            stop.clone(),
            samples.clone(),
            monitor_problems.clone(),
        );
        thread::spawn(move || {
            let conn = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the database read-only");
            while !stop.load(Ordering::Relaxed) {
                let (prepaid, consumed, holders) = seats_in_db(&conn);
                samples.fetch_add(1, Ordering::Relaxed);
                if consumed > prepaid || consumed != holders {
                    if let Ok(mut p) = problems.lock() {
                        p.push(format!(
                            "database: {consumed} consumed, {holders} holders, {prepaid} seats"
                        ));
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let started = Instant::now();
    let (done_tx, done_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for c in 0..CLIENTS {
        let own = users[c * USERS_PER_CLIENT..(c + 1) * USERS_PER_CLIENT].to_vec();
        let (url, g, rng, tx) = (
            s.url("/graphql"),
            group.clone(),
            rng.fork(),
            done_tx.clone(),
        );
        handles.push(thread::spawn(move || {
            let outcome = client(url, g, own.clone(), ops, rng);
            let _ = tx.send((c, own, outcome));
        }));
    }
    drop(done_tx);
    let mut results = Vec::new();
    while results.len() < CLIENTS {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match done_rx.recv_timeout(left) {
            Ok(r) => results.push(r),
            Err(_) => panic!(
                "only {} of {CLIENTS} clients finished within {DEADLINE:?}: a deadlock or a stall; \
                 stderr:\n{}",
                results.len(),
                s.stderr()
            ),
        }
    }
    for h in handles {
        h.join().expect("a client panicked");
    }
    let clients_took = started.elapsed();
    s.wait_complete_within(&group, DEADLINE);
    s.wait_idle();
    stop.store(true, Ordering::Relaxed);
    monitor.join().expect("monitor");

    let mut problems: Vec<String> = monitor_problems.lock().expect("problems").clone();
    let (mut mutations, mut refused, mut reads, mut slowest) = (0, 0, 0, Duration::ZERO);
    for (c, _, (_, tally)) in &results {
        mutations += tally.mutations;
        refused += tally.refused_for_seats;
        reads += tally.reads;
        slowest = slowest.max(tally.slowest);
        problems.extend(tally.problems.iter().map(|p| format!("client {c}: {p}")));
    }

    // Every acknowledged mutation is in the final tenant: membership in join order (P1), and
    // direct assignments.
    let members: Vec<String> = s.ok(
        "query($g: ID!) { group(id: $g) { members(first: 1000) { edges { node { id } } } } }",
        json!({ "g": group }),
    )["group"]["members"]["edges"]
        .as_array()
        .expect("members")
        .iter()
        .map(|e| str_of(&e["node"]["id"]))
        .collect();
    let mut holders = 0;
    for (c, own, (model, _)) in &results {
        let in_group: Vec<String> = members
            .iter()
            .filter(|m| own.contains(m))
            .cloned()
            .collect();
        if in_group != model.members {
            problems.push(format!(
                "client {c}: members {in_group:?}, acknowledged {:?}",
                model.members
            ));
        }
        for user in own {
            let states = s.states(user);
            let direct = states
                .iter()
                .any(|st| st["assignedByGroup"].is_null() && st["product"]["skuPartNumber"] == EMS);
            if direct != model.direct.contains(user) {
                problems.push(format!(
                    "client {c}: user {user} direct {direct}, acknowledged {}",
                    model.direct.contains(user)
                ));
            }
            // P5 done: a member has its state from the group, a former member none.
            let from_group = states
                .iter()
                .any(|st| st["assignedByGroup"]["id"] == group.as_str());
            if from_group != members.contains(user) {
                problems.push(format!(
                    "client {c}: user {user} member {}, state from the group {from_group}: {states:?}",
                    members.contains(user)
                ));
            }
            if s.held(user)["assignedLicenses"]
                .as_array()
                .expect("assignedLicenses")
                .iter()
                .any(|l| l["product"]["skuPartNumber"] == EMS)
            {
                holders += 1;
            }
        }
    }

    // L1, L3 at rest: consumed = holders ≤ seats, by the API and in the rows.
    let (prepaid, consumed, available) = s.seats(EMS);
    let licensed = s.ok(
        "{ product(skuPartNumber: \"EMS\") { licensedUsers(first: 1000) { totalCount } } }",
        json!({}),
    )["product"]["licensedUsers"]["totalCount"]
        .as_i64()
        .expect("totalCount");
    if !(prepaid == SEATS && consumed <= SEATS && consumed == holders && consumed == licensed) {
        problems.push(format!(
            "at rest: {prepaid} seats, {consumed} consumed ({available} available), {licensed} \
             licensed users, {holders} users holding EMS"
        ));
    }
    let conn =
        rusqlite::Connection::open_with_flags(&s.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database read-only");
    problems.extend(group_licensing::store::read::audit(&conn).expect("audit"));

    eprintln!(
        "concurrency: {CLIENTS} clients x {ops} operations in {clients_took:.1?}: {mutations} \
         mutations ({refused} refused for want of seats), {reads} reads, slowest answer \
         {slowest:.1?}; {} members at the end, {consumed} of {SEATS} seats used; {} database \
         samples",
        members.len(),
        samples.load(Ordering::Relaxed)
    );
    assert!(
        problems.is_empty(),
        "{} problems (seed {seed}):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The run did contend for the seats: someone was refused, and the seats were all used.
    assert!(refused > 0, "no direct assignment was refused for seats");
    assert!(mutations >= (CLIENTS * ops) as u64 * 8 / 10, "{mutations}");
}
