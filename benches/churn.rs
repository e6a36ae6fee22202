//! B3 (churn latency), run against the real release binary:
//!
//! ```sh
//! cargo bench --bench churn                                # 1,000 calls/s for 30 s
//! cargo bench --bench churn -- --seconds 10 --rate 500     # shorter, slower
//! cargo bench --bench churn -- --poll-ms 2 --senders 16 --group 100000
//! ```
//!
//! `group-licensing generate` writes a tenant of 100,000 users plus the ones the churn adds, and
//! `serve` starts on it with Office 365 E3 seats for everyone. A new group (`createGroup`) gets
//! the first 100,000 users (1,000 per `addGroupMembers`, the API's cap) and E3, processed to
//! `COMPLETE`. Then, on a fixed schedule (call k is due at k / rate, so the rate does not drift;
//! a few sender threads, each taking the next due call), `addGroupMembers` adds one user who is
//! not yet a member; each added user's latency runs from sending the call until a poll shows
//! the group's E3 assignment of that user `ACTIVE`.
//!
//! One poller thread asks, every few ms (`--poll-ms`, 5 by default), for the assignment states
//! of every pending user, up to 100 aliased `user(id:)` per query, and stamps a user with the
//! time that answer arrived: a latency is then at most one poll period plus one poll's round
//! trip too long, and never too short. Users whose E3 the tenant's profile bars (located in CN,
//! holding the conflicting E1 directly, sharing a proxy address) are not used: they would
//! never be `ACTIVE`. A user still not `ACTIVE` 10 s after the last call counts as never
//! `ACTIVE`. Every loop ends by itself; all traffic goes to 127.0.0.1.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use group_licensing::store::generate::profile;
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod support;

use support::{Args, Server, generate, gql};

const PRODUCT: &str = "ENTERPRISEPACK";
/// Users per `addGroupMembers` while the group is filled (the API's cap).
const BATCH: usize = 1000;
/// Aliased users per poll query.
const POLL_BATCH: usize = 100;
/// How long after the last call a user may still turn `ACTIVE`.
const GRACE: Duration = Duration::from_secs(10);

/// Whether the tenant's profile lets 0-based user `i` hold E3 from a group: not in CN (Teams
/// is barred there), no direct E1 (it conflicts), no proxy address shared with another user.
fn can_be_active(i: u64) -> bool {
    let p = profile(i);
    p.usage_location != Some("CN")
        && !p.direct_license
        && p.duplicate_of.is_none()
        && profile(i + 1).duplicate_of != Some(i)
}

/// A new group with users 1..=`members` and E3, processed to `COMPLETE`; its id.
fn set_up_group(agent: &ureq::Agent, url: &str, users: u64, members: u64) -> String {
    let ok = |r: Result<Value, String>| r.unwrap_or_else(|e| panic!("setup: {e}"));
    ok(gql(
        agent,
        url,
        "mutation ($sku: String!, $units: Int!) { setPrepaidUnits(skuPartNumber: $sku, units: $units) { prepaidUnits } }",
        json!({ "sku": PRODUCT, "units": users }),
    ));
    let group = ok(gql(
        agent,
        url,
        "mutation { createGroup(displayName: \"Churn\") { id } }",
        json!({}),
    ))["createGroup"]["id"]
        .as_str()
        .expect("the group's id")
        .to_string();
    let started = Instant::now();
    let ids: Vec<String> = (1..=members).map(|id| id.to_string()).collect();
    for chunk in ids.chunks(BATCH) {
        ok(gql(
            agent,
            url,
            "mutation ($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { id } }",
            json!({ "g": group, "u": chunk }),
        ));
    }
    let count = ok(gql(
        agent,
        url,
        "query ($g: ID!) { group(id: $g) { memberCount } }",
        json!({ "g": group }),
    ))["group"]["memberCount"]
        .clone();
    assert_eq!(count, members, "the group's members");
    eprintln!(
        "added {members} members in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    ok(gql(
        agent,
        url,
        "mutation ($g: ID!, $add: [LicenseInput!]!) { assignGroupLicense(groupId: $g, addLicenses: $add, removeLicenses: []) { licenseProcessingState } }",
        json!({ "g": group, "add": [{ "skuPartNumber": PRODUCT }] }),
    ));
    let deadline = started + Duration::from_secs(600);
    loop {
        let state = ok(gql(
            agent,
            url,
            "query ($g: ID!) { group(id: $g) { licenseProcessingState licenseErrorCount } }",
            json!({ "g": group }),
        ));
        if state["group"]["licenseProcessingState"] == "COMPLETE" {
            eprintln!(
                "processed {members} members in {:.1} s, {} in error",
                started.elapsed().as_secs_f64(),
                state["group"]["licenseErrorCount"]
            );
            return group;
        }
        assert!(Instant::now() < deadline, "processing took over 10 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a sender tells the poller about one call.
struct Call {
    user: u64,
    sent: Instant,
    round_trip: Duration,
    /// How late the call was sent after its slot in the schedule.
    lag: Duration,
    error: Option<String>,
}

struct Pending {
    user: u64,
    sent: Instant,
    last_state: String,
}

struct Outcome {
    /// Latencies to `ACTIVE`, µs, sorted.
    to_active: Vec<u64>,
    never_active: Vec<Pending>,
    round_trips: Vec<u64>,
    lags: Vec<u64>,
    failed_calls: Vec<(u64, String)>,
    first_sent: Option<Instant>,
    last_sent: Option<Instant>,
    polls: usize,
    poll_round_trips: Vec<u64>,
    poll_users: usize,
}

/// Nearest-rank percentile of sorted µs values, in ms.
fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn max_ms(sorted: &[u64]) -> f64 {
    sorted.last().map_or(f64::NAN, |&us| us as f64 / 1000.0)
}

struct ChurnConfig {
    rate: f64,
    senders: usize,
    poll: Duration,
}

/// The churn itself: `users` added one per call on the schedule, polled until `ACTIVE`.
fn churn(url: &str, group: &str, users: &[u64], config: &ChurnConfig) -> Outcome {
    let next = AtomicUsize::new(0);
    let (tell, calls) = mpsc::channel::<Call>();
    let start = Instant::now() + Duration::from_millis(100);
    let period = Duration::from_secs_f64(1.0 / config.rate);
    std::thread::scope(|scope| {
        for _ in 0..config.senders {
            let tell = tell.clone();
            let next = &next;
            scope.spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&user) = users.get(k) else { break };
                    let due = start + period.mul_f64(k as f64);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    let sent = Instant::now();
                    let answer = gql(
                        &agent,
                        url,
                        "mutation ($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { id } }",
                        json!({ "g": group, "u": [user.to_string()] }),
                    );
                    let call = Call {
                        user,
                        sent,
                        round_trip: sent.elapsed(),
                        lag: sent.saturating_duration_since(due),
                        error: answer.err(),
                    };
                    if tell.send(call).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tell);
        poll(url, group, calls, config.poll)
    })
}

/// The poller: runs until every sender is done and every added user is `ACTIVE`, or until
/// [`GRACE`] after the last call.
fn poll(url: &str, group: &str, calls: mpsc::Receiver<Call>, period: Duration) -> Outcome {
    let agent = ureq::Agent::new_with_defaults();
    let mut outcome = Outcome {
        to_active: Vec::new(),
        never_active: Vec::new(),
        round_trips: Vec::new(),
        lags: Vec::new(),
        failed_calls: Vec::new(),
        first_sent: None,
        last_sent: None,
        polls: 0,
        poll_round_trips: Vec::new(),
        poll_users: 0,
    };
    let mut pending: Vec<Pending> = Vec::new();
    let mut senders_done = false;
    let mut senders_done_at = Instant::now();
    loop {
        let cycle = Instant::now();
        loop {
            match calls.try_recv() {
                Ok(call) => {
                    outcome.first_sent =
                        Some(outcome.first_sent.map_or(call.sent, |f| f.min(call.sent)));
                    outcome.last_sent =
                        Some(outcome.last_sent.map_or(call.sent, |l| l.max(call.sent)));
                    outcome.round_trips.push(call.round_trip.as_micros() as u64);
                    outcome.lags.push(call.lag.as_micros() as u64);
                    match call.error {
                        None => pending.push(Pending {
                            user: call.user,
                            sent: call.sent,
                            last_state: "none yet".into(),
                        }),
                        Some(e) => outcome.failed_calls.push((call.user, e)),
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    if !senders_done {
                        senders_done = true;
                        senders_done_at = Instant::now();
                    }
                    break;
                }
            }
        }
        if senders_done && (pending.is_empty() || senders_done_at.elapsed() > GRACE) {
            break;
        }
        let mut still: Vec<Pending> = Vec::with_capacity(pending.len());
        for batch in pending.chunks(POLL_BATCH) {
            let mut query = String::from("{");
            for p in batch {
                let _ = write!(
                    query,
                    " u{0}: user(id: \"{0}\") {{ licenseAssignmentStates {{ product {{ skuPartNumber }} assignedByGroup {{ id }} state }} }}",
                    p.user
                );
            }
            query.push_str(" }");
            let asked = Instant::now();
            let answer = gql(&agent, url, &query, json!({}));
            let answered = Instant::now();
            outcome.polls += 1;
            outcome.poll_users += batch.len();
            outcome
                .poll_round_trips
                .push((answered - asked).as_micros() as u64);
            let data = answer.unwrap_or_else(|e| panic!("poll: {e}"));
            for p in batch {
                let states = data[format!("u{}", p.user)]["licenseAssignmentStates"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let ours = states.iter().find(|s| {
                    s["assignedByGroup"]["id"] == group && s["product"]["skuPartNumber"] == PRODUCT
                });
                match ours.and_then(|s| s["state"].as_str()) {
                    Some("ACTIVE") => outcome
                        .to_active
                        .push((answered - p.sent).as_micros() as u64),
                    other => still.push(Pending {
                        user: p.user,
                        sent: p.sent,
                        last_state: other.unwrap_or("no assignment yet").to_string(),
                    }),
                }
            }
        }
        pending = still;
        std::thread::sleep(period.saturating_sub(cycle.elapsed()));
    }
    outcome.never_active = pending;
    outcome.to_active.sort_unstable();
    outcome.round_trips.sort_unstable();
    outcome.lags.sort_unstable();
    outcome.poll_round_trips.sort_unstable();
    outcome
}

fn main() {
    let Some(args) = Args::from_env() else {
        return;
    };
    let members: u64 = args.number("--group", 100_000);
    let seconds: f64 = args.number("--seconds", 30.0);
    let config = ChurnConfig {
        rate: args.number("--rate", 1000.0),
        senders: args.number("--senders", 16),
        poll: Duration::from_secs_f64(args.number("--poll-ms", 5.0) / 1000.0),
    };
    let calls = (config.rate * seconds).round() as usize;
    // The users the churn adds: after the group's, skipping those who could never be ACTIVE.
    let added: Vec<u64> = (members..)
        .filter(|&i| can_be_active(i))
        .take(calls)
        .map(|i| i + 1)
        .collect();
    let users = added.last().copied().unwrap_or(members) + 1;

    let dir = tempfile::tempdir().expect("temp dir");
    let db = generate(dir.path(), users);
    let server = Server::start(&db);
    let url = server.url();
    let group = set_up_group(&ureq::Agent::new_with_defaults(), &url, users, members);

    eprintln!(
        "churn: {calls} calls at {} /s with {} senders, polling every {} ms…",
        config.rate,
        config.senders,
        config.poll.as_secs_f64() * 1000.0
    );
    let cpu = server.cpu_seconds();
    let started = Instant::now();
    let outcome = churn(&url, &group, &added, &config);
    let server_cores = (server.cpu_seconds() - cpu) / started.elapsed().as_secs_f64();
    // Where the stragglers stand, if any.
    let mut last_states: HashMap<&str, usize> = HashMap::new();
    for p in &outcome.never_active {
        *last_states.entry(p.last_state.as_str()).or_default() += 1;
    }

    let made = outcome.round_trips.len();
    let span = match (outcome.first_sent, outcome.last_sent) {
        (Some(first), Some(last)) if last > first => (last - first).as_secs_f64(),
        _ => f64::NAN,
    };
    println!(
        "B3 churn: group of {members} members with {PRODUCT}, {} addGroupMembers/s for {seconds} s \
         ({} sender threads), one user per call",
        config.rate, config.senders
    );
    println!(
        "calls made       {made} ({} failed), achieved {:.1} calls/s over {span:.2} s; \
         late on the schedule by p99 {:.2} ms, max {:.2} ms",
        outcome.failed_calls.len(),
        (made.saturating_sub(1)) as f64 / span,
        percentile_ms(&outcome.lags, 99.0),
        max_ms(&outcome.lags)
    );
    println!(
        "call round trip  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile_ms(&outcome.round_trips, 50.0),
        percentile_ms(&outcome.round_trips, 99.0),
        max_ms(&outcome.round_trips)
    );
    println!(
        "call to ACTIVE   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} users)",
        percentile_ms(&outcome.to_active, 50.0),
        percentile_ms(&outcome.to_active, 99.0),
        max_ms(&outcome.to_active),
        outcome.to_active.len()
    );
    println!(
        "never ACTIVE     {} within the run + {} s{}",
        outcome.never_active.len(),
        GRACE.as_secs(),
        if last_states.is_empty() {
            String::new()
        } else {
            format!(" (last seen: {last_states:?})")
        }
    );
    println!(
        "polling          {} polls every {:.0} ms, {:.1} users per poll, poll round trip p50 {:.2} ms, \
         p99 {:.2} ms: a latency is at most one period + one poll round trip too long",
        outcome.polls,
        config.poll.as_secs_f64() * 1000.0,
        outcome.poll_users as f64 / outcome.polls.max(1) as f64,
        percentile_ms(&outcome.poll_round_trips, 50.0),
        percentile_ms(&outcome.poll_round_trips, 99.0)
    );
    println!("server CPU       {server_cores:.2} cores");
    for (user, error) in outcome.failed_calls.iter().take(5) {
        println!("failed call for user {user}: {error}");
    }
    let p99 = percentile_ms(&outcome.to_active, 99.0);
    let met = p99 <= 50.0 && outcome.never_active.is_empty() && outcome.failed_calls.is_empty();
    println!(
        "target: p99 from the call to ACTIVE ≤ 50 ms, every user ACTIVE: {}",
        if met { "met" } else { "NOT met" }
    );
}
