//! Crash safety (licensing.md L3, L5, P8; issue 6): the server is killed with SIGKILL at random
//! moments while the group of all users is being processed and while clients change
//! memberships and direct licenses, and started again on the same database each time.
//!
//! After every kill, on the database as the crash left it: the kept counts agree with the rows
//! (the store audit), `consumedUnits` is the number of holders of each product and none is held
//! beyond its seats (L3). After every restart, before the clients may talk to it again: every
//! intent acknowledged to a client is there (L5) — the group license set, each membership, each
//! direct license — and a mutation whose answer the crash swallowed was applied entirely or not
//! at all. At the end processing is `COMPLETE` and every user's states and errors equal those of a
//! second server, never killed, given the same operations. On every crash image, and at the end,
//! the history agrees with the data (H1): the generated tenant with every committed event
//! replayed over it gives exactly the assignments and memberships the database holds, so no
//! change is without its event and no event without its change.
//!
//! Why the final states can be compared although the kills reorder work: the clients change only
//! the membership of a group licensed with EMS and direct EMS licenses, with more EMS seats than
//! users, and EMS shares no conflict or prerequisite with what the big group gets (Office 365 E3,
//! Workplace Analytics, with too few E3 seats). The E3 outcome depends only on the join order
//! (P1), the EMS outcome only on the final intents.
//!
//! Scale by environment: `CRASH_MEMBERS` (default 10,000; the full run is
//! `CRASH_MEMBERS=50000`), `CRASH_KILLS` (default 12, at least 10), `CRASH_SEED` (replays the
//! random moments and operations).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Server, agent, license, str_of};
use crate::history_replay::{Told, check_history, held};
use crate::rng::Rng;

const E3: &str = "ENTERPRISEPACK";
const WA: &str = "WORKPLACE_ANALYTICS";
const EMS: &str = "EMS";
const E1: &str = "STANDARDPACK";
/// The products whose seats are checked after every kill.
const PRODUCTS: [&str; 4] = [E3, WA, EMS, E1];
/// Processing a run or resuming one must end well within this.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// Users whose membership of the churn group the clients change.
const MEMBER_POOL: usize = 300;
/// Users whose direct EMS license the clients change.
const DIRECT_POOL: usize = 150;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

fn bundled_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

// ---- The phases of the big group: each queues a run over every member -------------------------

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// E3 and Workplace Analytics (its Exchange prerequisite comes with E3, C4).
    AssignBoth,
    /// E3 without Teams: CN users stop failing C2 and now want a seat.
    DisableTeams,
    RemoveAnalytics,
    Reprocess,
    /// Both again, E3 with every plan.
    RestoreBoth,
}

impl Phase {
    /// The first phase, then the other four in turn.
    fn nth(n: usize) -> Phase {
        const CYCLE: [Phase; 4] = [
            Phase::DisableTeams,
            Phase::RemoveAnalytics,
            Phase::Reprocess,
            Phase::RestoreBoth,
        ];
        if n == 0 {
            Phase::AssignBoth
        } else {
            CYCLE[(n - 1) % CYCLE.len()]
        }
    }

    /// Runs the phase's mutation on `s` (the answer must be a success).
    fn run(self, s: &Server, group: &str) {
        match self {
            Phase::AssignBoth | Phase::RestoreBoth => {
                s.assign_group(group, json!([license(E3, &[]), license(WA, &[])]), &[]);
            }
            Phase::DisableTeams => {
                s.assign_group(group, json!([license(E3, &["TEAMS1"])]), &[]);
            }
            Phase::RemoveAnalytics => {
                s.assign_group(group, json!([]), &[WA]);
            }
            Phase::Reprocess => {
                s.reprocess_group(group);
            }
        }
    }

    /// The group's license set once the phase is acknowledged (L5): product → disabled plans.
    fn apply(self, set: &mut BTreeMap<String, Vec<String>>) {
        match self {
            Phase::AssignBoth | Phase::RestoreBoth => {
                set.insert(E3.into(), vec![]);
                set.insert(WA.into(), vec![]);
            }
            Phase::DisableTeams => {
                set.insert(E3.into(), vec!["TEAMS1".into()]);
            }
            Phase::RemoveAnalytics => {
                set.remove(WA);
            }
            Phase::Reprocess => {}
        }
    }
}

/// A group's `assignedLicenses` as product → disabled plans.
fn license_set(s: &Server, group: &str) -> BTreeMap<String, Vec<String>> {
    let g = s.ok(
        "query($g: ID!) { group(id: $g) { assignedLicenses { product { skuPartNumber } disabledPlans { servicePlanName } } } }",
        json!({ "g": group }),
    );
    g["group"]["assignedLicenses"]
        .as_array()
        .expect("assignedLicenses")
        .iter()
        .map(|l| {
            let mut plans: Vec<String> = l["disabledPlans"]
                .as_array()
                .expect("disabledPlans")
                .iter()
                .map(|p| str_of(&p["servicePlanName"]))
                .collect();
            plans.sort();
            (str_of(&l["product"]["skuPartNumber"]), plans)
        })
        .collect()
}

fn processing_state(s: &Server, group: &str) -> String {
    str_of(
        &s.ok(
            "query($g: ID!) { group(id: $g) { licenseProcessingState } }",
            json!({ "g": group }),
        )["group"]["licenseProcessingState"],
    )
}

// ---- The clients' operations ----------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    AddMembers(Vec<String>),
    RemoveMembers(Vec<String>),
    /// A direct EMS license: `true` adds it, `false` removes it.
    Direct(String, bool),
}

/// What the clients were told succeeded.
#[derive(Clone, Default)]
struct Model {
    /// The churn group's members in join order (P1).
    members: Vec<String>,
    /// Users holding EMS directly.
    direct: Vec<String>,
}

impl Model {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::AddMembers(users) => {
                for u in users {
                    if !self.members.contains(u) {
                        self.members.push(u.clone());
                    }
                }
            }
            Op::RemoveMembers(users) => self.members.retain(|m| !users.contains(m)),
            Op::Direct(user, true) => {
                if !self.direct.contains(user) {
                    self.direct.push(user.clone());
                }
            }
            Op::Direct(user, false) => self.direct.retain(|u| u != user),
        }
    }
}

impl Op {
    fn send(&self, agent: &ureq::Agent, url: &str, churn: &str) -> Result<Value, String> {
        let (query, variables) = match self {
            Op::AddMembers(users) => (
                "mutation($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { id } }",
                json!({ "g": churn, "u": users }),
            ),
            Op::RemoveMembers(users) => (
                "mutation($g: ID!, $u: [ID!]!) { removeGroupMembers(groupId: $g, userIds: $u) { id } }",
                json!({ "g": churn, "u": users }),
            ),
            Op::Direct(user, add) => (
                "mutation($u: ID!, $add: [LicenseInput!]!, $remove: [String!]!) { assignLicense(userId: $u, addLicenses: $add, removeLicenses: $remove) { id } }",
                if *add {
                    json!({ "u": user, "add": [license(EMS, &[])], "remove": [] })
                } else {
                    json!({ "u": user, "add": [], "remove": [EMS] })
                },
            ),
        };
        let mut response = agent
            .post(url)
            .send_json(json!({ "query": query, "variables": variables }))
            .map_err(|e| e.to_string())?;
        response
            .body_mut()
            .read_json::<Value>()
            .map_err(|e| e.to_string())
    }
}

/// The two kinds of client, each one thread.
#[derive(Clone, Copy)]
enum Kind {
    Members = 0,
    Direct = 1,
}

#[derive(Default)]
struct Ledger {
    model: Model,
    /// Acknowledged operations in the order they were acknowledged (the two kinds commute).
    log: Vec<Op>,
    /// Per kind: the operation sent and not yet answered, with its number.
    in_flight: [Option<(u64, Op)>; 2],
    next: u64,
    acknowledged: u64,
    /// Answers lost in a crash, by what the restarted server showed.
    lost_applied: u64,
    lost_not_applied: u64,
    problems: Vec<String>,
}

struct Shared {
    /// The server's `/graphql` URL (`None` while it is down and being checked) and the number
    /// of restarts so far, changed together: a client that failed on one server waits for the
    /// next.
    server: Mutex<(Option<String>, u64)>,
    stop: AtomicBool,
    ledger: Mutex<Ledger>,
}

fn client(kind: Kind, shared: Arc<Shared>, churn: String, pool: Vec<String>, mut rng: Rng) {
    let agent = agent();
    while !shared.stop.load(Ordering::Relaxed) {
        let (url, epoch) = shared.server.lock().expect("server").clone();
        let Some(url) = url else {
            thread::sleep(Duration::from_millis(2));
            continue;
        };
        let (number, op) = {
            let mut ledger = shared.ledger.lock().expect("ledger");
            let op = match kind {
                Kind::Members => {
                    let users: Vec<String> = (0..rng.between(1, 4))
                        .map(|_| rng.pick(&pool).clone())
                        .collect();
                    let members = users
                        .iter()
                        .filter(|u| ledger.model.members.contains(u))
                        .count();
                    if members * 2 > users.len() || rng.chance(10) {
                        Op::RemoveMembers(users)
                    } else {
                        Op::AddMembers(users)
                    }
                }
                Kind::Direct => {
                    let user = rng.pick(&pool).clone();
                    let has = ledger.model.direct.contains(&user);
                    Op::Direct(user, !has)
                }
            };
            ledger.next += 1;
            let number = ledger.next;
            ledger.in_flight[kind as usize] = Some((number, op.clone()));
            (number, op)
        };
        match op.send(&agent, &url, &churn) {
            Ok(body) => {
                let mut ledger = shared.ledger.lock().expect("ledger");
                // Already settled by the restart's checks when the answer came just before the
                // kill but was read after.
                let mine = matches!(&ledger.in_flight[kind as usize], Some((n, _)) if *n == number);
                if mine {
                    ledger.in_flight[kind as usize] = None;
                    if body.get("errors").is_some() {
                        ledger
                            .problems
                            .push(format!("{op:?} refused: {}", body["errors"]));
                    } else {
                        ledger.model.apply(&op);
                        ledger.log.push(op);
                        ledger.acknowledged += 1;
                    }
                }
            }
            Err(e) => {
                // The server died under the request: the restart's checks settle it. Wait for
                // them rather than guess.
                while shared.server.lock().expect("server").1 == epoch
                    && !shared.stop.load(Ordering::Relaxed)
                {
                    thread::sleep(Duration::from_millis(2));
                }
                let mut ledger = shared.ledger.lock().expect("ledger");
                if matches!(&ledger.in_flight[kind as usize], Some((n, _)) if *n == number) {
                    ledger.problems.push(format!(
                        "{op:?} failed on a server that was not killed: {e}"
                    ));
                    ledger.in_flight[kind as usize] = None;
                }
            }
        }
        thread::sleep(Duration::from_millis(rng.between(0, 3)));
    }
}

// ---- What the server shows of the clients' intents ---------------------------------------------

fn members_of(s: &Server, group: &str) -> Vec<String> {
    let data = s.ok(
        "query($g: ID!) { group(id: $g) { members(first: 1000) { totalCount edges { node { id } } } } }",
        json!({ "g": group }),
    );
    let members = &data["group"]["members"];
    assert!(
        members["totalCount"].as_i64().expect("totalCount") <= 1000,
        "the churn group outgrew one page"
    );
    crate::harness::node_ids(members)
}

/// The users of `pool` that hold a direct EMS assignment, in pool order.
fn direct_holders(s: &Server, pool: &[String]) -> Vec<String> {
    let mut doc = String::from("query {");
    for (n, id) in pool.iter().enumerate() {
        doc.push_str(&format!(
            " u{n}: user(id: \"{id}\") {{ licenseAssignmentStates {{ product {{ skuPartNumber }} assignedByGroup {{ id }} }} }}"
        ));
    }
    doc.push('}');
    let data = s.ok(&doc, json!({}));
    pool.iter()
        .enumerate()
        .filter(|(n, _)| {
            data[format!("u{n}")]["licenseAssignmentStates"]
                .as_array()
                .expect("states")
                .iter()
                .any(|st| st["assignedByGroup"].is_null() && st["product"]["skuPartNumber"] == EMS)
        })
        .map(|(_, id)| id.clone())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Settles the operations whose answer a crash swallowed, then checks that the server holds
/// exactly what was acknowledged (L5, "nothing is ever lost"). The clients are paused.
fn settle_and_check(s: &Server, ledger: &mut Ledger, churn: &str, pool: &[String], when: &str) {
    let members = members_of(s, churn);
    let direct = sorted(direct_holders(s, pool));
    for kind in [Kind::Members, Kind::Direct] {
        let Some((_, op)) = ledger.in_flight[kind as usize].take() else {
            continue;
        };
        let mut applied = ledger.model.clone();
        applied.apply(&op);
        let (now, before, after) = match kind {
            Kind::Members => (
                members.clone(),
                ledger.model.members.clone(),
                applied.members.clone(),
            ),
            Kind::Direct => (
                direct.clone(),
                sorted(ledger.model.direct.clone()),
                sorted(applied.direct.clone()),
            ),
        };
        if now == after {
            ledger.model = applied;
            ledger.log.push(op);
            ledger.lost_applied += 1;
        } else if now == before {
            ledger.lost_not_applied += 1;
        } else {
            ledger.problems.push(format!(
                "{when}: {op:?} half applied: server {now:?}, before {before:?}, after {after:?}"
            ));
        }
    }
    if members != ledger.model.members {
        ledger.problems.push(format!(
            "{when}: churn group members {members:?}, acknowledged {:?}",
            ledger.model.members
        ));
    }
    if direct != sorted(ledger.model.direct.clone()) {
        ledger.problems.push(format!(
            "{when}: direct EMS holders {direct:?}, acknowledged {:?}",
            sorted(ledger.model.direct.clone())
        ));
    }
}

// ---- The database as the crash left it ---------------------------------------------------------

/// What one kill interrupted.
struct Crash {
    delay_ms: u64,
    phase: usize,
    /// Work items left in the queue.
    work: i64,
    /// Of the big group's current run: members processed, members to process.
    processed: i64,
    to_process: i64,
    /// Work items of the big group left.
    big_work: i64,
}

fn open_read_only(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database read-only")
}

/// Checks the crash image: the audit, per product consumed = holders ≤ seats (L3), and that
/// the history tells what the rows hold (H1).
fn check_crash_image(
    db: &Path,
    big: &str,
    baseline: &Told,
    problems: &mut Vec<String>,
    when: &str,
) -> Crash {
    let conn = open_read_only(db);
    check_history(&conn, baseline, problems, when);
    for p in group_licensing::store::read::audit(&conn).expect("audit") {
        problems.push(format!("{when}: audit: {p}"));
    }
    for sku in PRODUCTS {
        let (prepaid, consumed, holders): (i64, i64, i64) = conn
            .query_row(
                "SELECT prepaid_units, consumed_units,
                        (SELECT count(DISTINCT s.user_id) FROM assignment_sets s, json_each(s.products) p
                          WHERE json_extract(p.value, '$.sku') = ?1
                            AND json_extract(p.value, '$.applied') IS NOT NULL)
                   FROM products WHERE sku = ?1",
                [sku],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("seats");
        if consumed != holders || consumed > prepaid {
            problems.push(format!(
                "{when}: {sku}: {consumed} consumed, {holders} holders, {prepaid} seats"
            ));
        }
    }
    let big_id: i64 = big.parse().expect("group id");
    let one = |sql: &str| -> i64 {
        conn.query_row(sql, [big_id], |r| r.get(0))
            .expect("crash image")
    };
    Crash {
        delay_ms: 0,
        phase: 0,
        work: conn
            .query_row("SELECT count(*) FROM work", [], |r| r.get(0))
            .expect("work"),
        processed: one("SELECT processed_members FROM groups WHERE id = ?1"),
        to_process: one("SELECT members_to_process FROM groups WHERE id = ?1"),
        big_work: one("SELECT count(*) FROM work WHERE group_id = ?1"),
    }
}

// ---- The whole tenant, for the comparison with the server never killed ------------------------

const USERS_PAGE: &str = "query($a: String) { users(first: 1000, after: $a) {
  pageInfo { hasNextPage endCursor }
  edges { node {
    id memberOf { id }
    licenseAssignmentStates {
      product { skuPartNumber } assignedByGroup { id } disabledPlans { servicePlanName }
      state error errorDetail { message resolutions violations { code message } }
    }
  } }
} }";

/// Every user's states and errors (not their times), every group's counts, every seat. What a
/// user holds follows from the states; leaving `assignedLicenses` out keeps the pages small
/// (Office 365 E3 lists dozens of plans per user).
fn tenant(s: &Server, groups: &[&str]) -> (Vec<Value>, Value) {
    let mut users = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.ok(USERS_PAGE, json!({ "a": after }))["users"].clone();
        users.extend(page["edges"].as_array().expect("edges").iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = Some(str_of(&page["pageInfo"]["endCursor"]));
    }
    let mut rest = json!({});
    for g in groups {
        rest[*g] = s.ok(
            "query($g: ID!) { group(id: $g) { memberCount licenseProcessingState hasMembersWithLicenseErrors licenseErrorCount licenseErrorCounts { error count } assignedLicenses { product { skuPartNumber } disabledPlans { servicePlanName } } } }",
            json!({ "g": g }),
        )["group"]
            .clone();
    }
    for sku in PRODUCTS {
        let p = s.ok(
            "query($s: String!) { product(skuPartNumber: $s) { prepaidUnits consumedUnits availableUnits licensedUsers(first: 1) { totalCount } } }",
            json!({ "s": sku }),
        )["product"]
            .clone();
        // L1, L3 at rest.
        assert_eq!(
            p["consumedUnits"], p["licensedUsers"]["totalCount"],
            "{sku} on {}: {p}",
            s.base
        );
        assert!(
            p["consumedUnits"].as_i64() <= p["prepaidUnits"].as_i64(),
            "{sku} on {}: {p}",
            s.base
        );
        rest[sku] = p;
    }
    (users, rest)
}

fn wait_quiet(s: &Server, groups: &[&str]) {
    for g in groups {
        s.wait_complete_within(g, RUN_TIMEOUT);
    }
    let start = Instant::now();
    while s.healthz()["processing"] != "idle" {
        assert!(start.elapsed() < RUN_TIMEOUT, "still busy: {}", s.stderr());
        thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a server cleanly (SIGTERM), so that its database file alone holds everything.
fn stop(mut s: Server) {
    s.signal("TERM");
    let status = s
        .wait_exit(Duration::from_secs(60))
        .expect("the server stops on SIGTERM");
    assert!(status.success(), "clean stop: {status:?}");
}

fn copy_database(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let source = PathBuf::from(format!("{}{suffix}", from.display()));
        if source.exists() {
            std::fs::copy(&source, format!("{}{suffix}", to.display())).expect("copy");
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_ends_as_a_run_never_killed() {
    let members = env_number("CRASH_MEMBERS", 10_000);
    let kills = env_number("CRASH_KILLS", 12);
    assert!(kills >= 10, "CRASH_KILLS is at least 10");
    let seed = Rng::seed_from_env("CRASH_SEED");
    let mut rng = Rng::new(seed);
    let total = Instant::now();

    // A generated tenant: "All users" (group 1, every user in id order), 1% holding Office 365
    // E1 directly (C3 against E3), 1% in CN (C2 against Teams), 0.1% duplicate addresses (C1).
    let dir = tempfile::TempDir::new().expect("temp dir");
    let db = dir.path().join("crash.db");
    crate::harness::generate_tenant(&db, members, &bundled_rules());
    let baseline = held(&open_read_only(&db));
    let s = Server::start(&db, &bundled_rules());
    let big = s.ok(
        "{ groups(first: 1) { edges { node { id displayName memberCount } } } }",
        json!({}),
    )["groups"]["edges"][0]["node"]
        .clone();
    assert_eq!(big["displayName"], "All users");
    assert_eq!(big["memberCount"], members);
    let big = str_of(&big["id"]);
    // Too few E3 seats: who gets one is decided by the join order alone (P1).
    s.set_prepaid(E3, (members * 95 / 100) as i64);
    s.set_prepaid(WA, members as i64);
    s.set_prepaid(EMS, members as i64 + 1000);
    let churn = s.create_group("Churn");
    s.assign_group(&churn, json!([license(EMS, &[])]), &[]);
    stop(s);
    let reference_db = dir.path().join("reference.db");
    copy_database(&db, &reference_db);

    // The pools, spread over the ids. Direct licenses need a usage location of the user's own
    // (D2); users whose group licenses are in error (CN, E1 held directly, shared addresses) are
    // left out of it so that D3 cannot refuse them for reasons that depend on timing.
    let step = (members as usize / MEMBER_POOL).max(1);
    let member_pool: Vec<String> = (0..members as usize)
        .step_by(step)
        .take(MEMBER_POOL)
        .map(|i| (i + 1).to_string())
        .collect();
    let direct_pool: Vec<String> = (0..members)
        .filter(|i| {
            let p = group_licensing::store::generate::profile(*i);
            p.usage_location.is_some_and(|c| c != "CN")
                && !p.direct_license
                && p.duplicate_of.is_none()
                && group_licensing::store::generate::profile(i + 1).duplicate_of != Some(*i)
        })
        .step_by((members as usize / DIRECT_POOL).max(1))
        .take(DIRECT_POOL)
        .map(|i| (i + 1).to_string())
        .collect();

    // The reference, never killed, runs the first phase now, to time a run on this machine.
    let reference = Server::start(&reference_db, &bundled_rules());
    let t = Instant::now();
    Phase::nth(0).run(&reference, &big);
    reference.wait_complete_within(&big, RUN_TIMEOUT);
    let run_took = t.elapsed();
    // Kill moments spread over about one and a half runs after each (re)start.
    let max_delay_ms = (run_took.as_millis() as u64 * 3 / 2).max(50);

    // ---- The killed server, with two clients changing the churn group and direct licenses. ----
    let shared = Arc::new(Shared {
        server: Mutex::new((None, 0)),
        stop: AtomicBool::new(false),
        ledger: Mutex::new(Ledger::default()),
    });
    let clients: Vec<_> = [
        (Kind::Members, member_pool.clone()),
        (Kind::Direct, direct_pool.clone()),
    ]
    .into_iter()
    .map(|(kind, pool)| {
        let (shared, churn, rng) = (shared.clone(), churn.clone(), rng.fork());
        thread::spawn(move || client(kind, shared, churn, pool, rng))
    })
    .collect();

    let mut s = Server::start(&db, &bundled_rules());
    shared.server.lock().expect("server").0 = Some(s.url("/graphql"));
    let mut phases = 0usize;
    let mut intent = BTreeMap::new();
    let mut crashes: Vec<Crash> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut restart_took = Duration::ZERO;
    for k in 0..kills {
        // A new run whenever the last one is over, so that most moments fall inside one.
        if processing_state(&s, &big) == "COMPLETE" {
            Phase::nth(phases).run(&s, &big);
            Phase::nth(phases).apply(&mut intent);
            phases += 1;
        }
        let delay_ms = rng.between(0, max_delay_ms);
        thread::sleep(Duration::from_millis(delay_ms));
        shared.server.lock().expect("server").0 = None;
        let status = s.kill();
        assert!(!status.success(), "killed: {status:?}");
        let when = format!("kill {} ({delay_ms} ms)", k + 1);
        let mut crash = check_crash_image(&db, &big, &baseline, &mut problems, &when);
        crash.delay_ms = delay_ms;
        crash.phase = phases;
        crashes.push(crash);

        let t = Instant::now();
        s = Server::start(&db, &bundled_rules());
        restart_took = restart_took.max(t.elapsed());
        // L5: the group license set acknowledged last; memberships and direct licenses.
        let set = license_set(&s, &big);
        if set != intent {
            problems.push(format!(
                "{when}: big group licenses {set:?}, acknowledged {intent:?}"
            ));
        }
        let churn_set = license_set(&s, &churn);
        if churn_set.keys().collect::<Vec<_>>() != vec![EMS] {
            problems.push(format!("{when}: churn group licenses {churn_set:?}"));
        }
        {
            let mut ledger = shared.ledger.lock().expect("ledger");
            settle_and_check(&s, &mut ledger, &churn, &direct_pool, &when);
        }
        {
            let mut server = shared.server.lock().expect("server");
            *server = (Some(s.url("/graphql")), server.1 + 1);
        }
    }
    // Let the clients run a little on the last server, then stop them.
    thread::sleep(Duration::from_millis(200));
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    // Processing resumes by itself and ends.
    let t = Instant::now();
    wait_quiet(&s, &[&big, &churn]);
    let resumed_took = t.elapsed();
    let mut ledger = std::mem::take(&mut *shared.ledger.lock().expect("ledger"));
    settle_and_check(&s, &mut ledger, &churn, &direct_pool, "at the end");
    problems.append(&mut ledger.problems);

    // ---- The reference: the same phases and the same acknowledged operations, never killed. ----
    for n in 1..phases {
        Phase::nth(n).run(&reference, &big);
        reference.wait_complete_within(&big, RUN_TIMEOUT);
    }
    for op in &ledger.log {
        let body = op
            .send(reference.agent(), &reference.url("/graphql"), &churn)
            .expect("reference answers");
        assert!(body.get("errors").is_none(), "reference: {op:?}: {body}");
    }
    wait_quiet(&reference, &[&big, &churn]);

    let t = Instant::now();
    // Both read at once: one core each.
    let ((killed_users, killed_rest), (reference_users, reference_rest)) = thread::scope(|scope| {
        let killed = scope.spawn(|| tenant(&s, &[&big, &churn]));
        let never_killed = tenant(&reference, &[&big, &churn]);
        (killed.join().expect("read the killed server"), never_killed)
    });
    let compare_took = t.elapsed();
    assert_eq!(killed_users.len(), members as usize);
    let differing: Vec<String> = killed_users
        .iter()
        .zip(&reference_users)
        .filter(|(a, b)| a != b)
        .take(5)
        .map(|(a, b)| format!("killed {a}\nreference {b}"))
        .collect();
    if !differing.is_empty() {
        problems.push(format!(
            "users differ from the run never killed (first 5):\n{}",
            differing.join("\n")
        ));
    }
    if killed_rest != reference_rest {
        problems.push(format!(
            "groups or seats differ: killed {killed_rest:#}\nreference {reference_rest:#}"
        ));
    }
    for (name, server) in [("killed", &s), ("reference", &reference)] {
        let conn = open_read_only(&server.db);
        for p in group_licensing::store::read::audit(&conn).expect("audit") {
            problems.push(format!("{name} at the end: audit: {p}"));
        }
        check_history(
            &conn,
            &baseline,
            &mut problems,
            &format!("{name} at the end"),
        );
    }

    // The final tenant is not trivial: seats ran out, errors of several kinds, the clients' work.
    let errors = killed_rest[big.as_str()]["licenseErrorCounts"].clone();
    let interrupted = crashes.iter().filter(|c| c.big_work > 0).count();
    eprintln!(
        "crash: {members} members, seed {seed}; a run took {run_took:.1?}, kills after 0..{max_delay_ms} ms; \
         {kills} kills survived, {interrupted} inside a run of the big group; {phases} phases; \
         {} client operations acknowledged, {} answers lost in a crash ({} applied, {} not); \
         slowest restart {restart_took:.1?}; resumed to COMPLETE in {resumed_took:.1?}; compared {} users \
         in {compare_took:.1?}; errors in the big group {errors}; total {:.1?}",
        ledger.acknowledged,
        ledger.lost_applied + ledger.lost_not_applied,
        ledger.lost_applied,
        ledger.lost_not_applied,
        killed_users.len(),
        total.elapsed()
    );
    for (n, c) in crashes.iter().enumerate() {
        eprintln!(
            "  kill {:>2}: after {:>4} ms in phase {} ({:?}): big group {}/{} processed, {} of its work items left, {} in the queue",
            n + 1,
            c.delay_ms,
            c.phase,
            Phase::nth(c.phase.saturating_sub(1)),
            c.processed,
            c.to_process,
            c.big_work,
            c.work
        );
    }
    assert!(
        problems.is_empty(),
        "{} problems (CRASH_SEED={seed}):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        interrupted * 3 >= kills as usize,
        "only {interrupted} of {kills} kills fell inside a run: the test did not test much"
    );
    assert!(ledger.acknowledged > 0, "the clients did nothing");
    assert!(
        errors.as_array().is_some_and(|e| e.len() >= 2),
        "the big group has several kinds of error: {errors}"
    );
}
