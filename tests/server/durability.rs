//! S9 (seed-scenarios.md): a group of 20,000 members gets ENTERPRISEPACK with 20,000 seats. The
//! mutation answers QUEUED at once (G2); the group passes through IN_PROGRESS with
//! processedMembers rising (P9); the server is killed with SIGKILL while IN_PROGRESS and started
//! again on the same database; processing resumes by itself and ends with every member ACTIVE
//! and exactly 20,000 seats consumed (P8).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Server, license, node_ids, scenario_rules, str_of};

const MEMBERS: usize = 20_000;
/// `createUser` mutations per GraphQL document.
const USERS_PER_REQUEST: usize = 500;
const E3: &str = "ENTERPRISEPACK";
/// Processing 20,000 members must end well within this.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn create_users(s: &Server, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for start in (0..count).step_by(USERS_PER_REQUEST) {
        let end = (start + USERS_PER_REQUEST).min(count);
        let mut doc = String::from("mutation {");
        for n in start..end {
            write!(
                doc,
                " u{n}: createUser(input: {{ userPrincipalName: \"big{n}@contoso.com\", displayName: \"Big {n}\", usageLocation: \"US\" }}) {{ id }}"
            )
            .expect("write");
        }
        doc.push('}');
        let data = s.ok(&doc, json!({}));
        for n in start..end {
            ids.push(str_of(&data[format!("u{n}")]["id"]));
        }
    }
    ids
}

const PROGRESS: &str =
    "query($g: ID!) { group(id: $g) { licenseProcessingState processedMembers membersToProcess } }";

/// `(state, processedMembers, membersToProcess)`.
fn progress(s: &Server, group: &str) -> (String, i64, i64) {
    let g = s.ok(PROGRESS, json!({ "g": group }))["group"].clone();
    (
        str_of(&g["licenseProcessingState"]),
        g["processedMembers"].as_i64().expect("processedMembers"),
        g["membersToProcess"].as_i64().expect("membersToProcess"),
    )
}

/// What the database holds after the crash: work items left, assignments applied, seats
/// consumed. Read directly (read-only), to prove that the kill interrupted the run.
fn after_crash(db: &std::path::Path) -> (i64, i64, i64) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database read-only");
    let work: i64 = conn
        .query_row("SELECT count(*) FROM work", [], |r| r.get(0))
        .expect("work");
    let applied: i64 = conn
        .query_row(
            "SELECT count(*) FROM assignment_sets s, json_each(s.products) p
              WHERE json_extract(p.value, '$.sku') = 'ENTERPRISEPACK'
                AND json_extract(p.value, '$.applied') IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("assignments");
    let consumed: i64 = conn
        .query_row(
            "SELECT consumed_units FROM products WHERE sku = 'ENTERPRISEPACK'",
            [],
            |r| r.get(0),
        )
        .expect("seats");
    (work, applied, consumed)
}

#[test]
fn s9_big_group_processing_state_and_resume_after_sigkill() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let db = dir.path().join("t.db");
    let s = Server::start(&db, &scenario_rules());

    let t = Instant::now();
    let ids = create_users(&s, MEMBERS);
    let users_took = t.elapsed();
    let big = s.create_group("Big");
    let t = Instant::now();
    for chunk in ids.chunks(1000) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        s.add_members(&big, &chunk);
    }
    let members_took = t.elapsed();
    // No license yet: nothing to process.
    assert_eq!(progress(&s, &big).0, "COMPLETE");
    s.set_prepaid(E3, MEMBERS as i64);

    // G2: answered at once, QUEUED.
    let t = Instant::now();
    let g = s.assign_group(&big, json!([license(E3, &[])]), &[]);
    let assign_took = t.elapsed();
    assert_eq!(g["licenseProcessingState"], "QUEUED", "{g:#}");
    assert_eq!(g["membersToProcess"], MEMBERS as i64, "{g:#}");
    assert_eq!(g["processedMembers"], 0, "{g:#}");
    assert!(
        assign_took < Duration::from_secs(2),
        "assignGroupLicense must not wait for processing: took {assign_took:?}"
    );

    // P9: IN_PROGRESS with processedMembers rising; kill while IN_PROGRESS.
    let run_start = Instant::now();
    let mut observations: Vec<(Duration, String, i64)> = Vec::new();
    let mut in_progress: Vec<i64> = Vec::new();
    loop {
        let (state, processed, to_process) = progress(&s, &big);
        observations.push((run_start.elapsed(), state.clone(), processed));
        assert_eq!(to_process, MEMBERS as i64, "membersToProcess of the run");
        match state.as_str() {
            "QUEUED" => assert_eq!(processed, 0, "{observations:?}"),
            "IN_PROGRESS" => {
                assert!(processed < MEMBERS as i64, "{observations:?}");
                if in_progress.last().is_some_and(|last| processed < *last) {
                    panic!("processedMembers went down: {observations:?}");
                }
                if in_progress.last() != Some(&processed) {
                    in_progress.push(processed);
                }
                // Rising seen (two distinct values, the second above 0): time to crash.
                if in_progress.len() >= 2 {
                    break;
                }
            }
            other => panic!(
                "the run reached {other} before IN_PROGRESS with rising processedMembers could be seen \
                 twice (after {:?}); observations: {observations:?}",
                run_start.elapsed()
            ),
        }
        assert!(run_start.elapsed() < RUN_TIMEOUT, "{observations:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    // G2: a member processing has not reached yet is PENDING; one it has passed is ACTIVE.
    let last = s.state_of(&ids[MEMBERS - 1], E3, Some(&big));
    assert_eq!(
        (last["state"].clone(), last["error"].clone()),
        (json!("PENDING"), json!("NONE")),
        "{last:#}"
    );
    let first = s.state_of(&ids[0], E3, Some(&big));
    assert_eq!(
        (first["state"].clone(), first["error"].clone()),
        (json!("ACTIVE"), json!("NONE")),
        "{first:#}"
    );
    let killed_after = run_start.elapsed();
    let in_progress_seen = observations.iter().filter(|o| o.1 == "IN_PROGRESS").count();
    let status = s.kill();
    assert!(!status.success(), "killed: {status:?}");

    // The crash interrupted the run, and what was committed is consistent (P8).
    let (work, applied, consumed) = after_crash(&db);
    assert!(work >= 1, "work is left in the queue");
    assert!(
        applied < MEMBERS as i64,
        "the run was interrupted: {applied} applied"
    );
    assert!(
        applied >= *in_progress.last().unwrap_or(&0),
        "progress was committed"
    );
    assert_eq!(
        applied, consumed,
        "seats and assignments committed together"
    );

    // Restart on the same database: processing resumes by itself (no reprocess).
    let restart = Instant::now();
    let s = Server::start(&db, &scenario_rules());
    let started_in = restart.elapsed();
    let mut after_restart: Vec<(Duration, String, i64)> = Vec::new();
    loop {
        let (state, processed, _) = progress(&s, &big);
        after_restart.push((restart.elapsed(), state.clone(), processed));
        if state == "COMPLETE" {
            break;
        }
        assert!(
            restart.elapsed() < RUN_TIMEOUT,
            "no resume after the restart: {after_restart:?}\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let resumed_took = restart.elapsed();

    // Every member ACTIVE, 20,000 seats consumed exactly, no error.
    assert_eq!(s.seats(E3), (MEMBERS as i64, MEMBERS as i64, 0));
    let g = s.ok(
        "query($g: ID!) { group(id: $g) { memberCount processedMembers membersToProcess licenseProcessingState hasMembersWithLicenseErrors licenseErrorCount licenseErrorCounts { error count } } }",
        json!({ "g": big }),
    )["group"]
        .clone();
    assert_eq!(
        g,
        json!({
            "memberCount": MEMBERS, "processedMembers": MEMBERS, "membersToProcess": MEMBERS,
            "licenseProcessingState": "COMPLETE", "hasMembersWithLicenseErrors": false,
            "licenseErrorCount": 0, "licenseErrorCounts": [],
        })
    );
    let mut seen: Vec<String> = Vec::with_capacity(MEMBERS);
    let mut after: Option<String> = None;
    loop {
        let page = s.ok(
            "query($g: ID!, $a: String) { group(id: $g) { members(first: 1000, after: $a) {
                totalCount pageInfo { hasNextPage endCursor }
                edges { node { id licenseAssignmentStates { state error product { skuPartNumber } assignedByGroup { id } } } } } } }",
            json!({ "g": big, "a": after }),
        )["group"]["members"]
            .clone();
        assert_eq!(page["totalCount"], MEMBERS as i64);
        let edges = page["edges"].as_array().expect("edges");
        assert!(edges.len() <= 1000);
        for e in edges {
            let states = &e["node"]["licenseAssignmentStates"];
            assert_eq!(
                states,
                &json!([{ "state": "ACTIVE", "error": "NONE", "product": { "skuPartNumber": E3 }, "assignedByGroup": { "id": big } }]),
                "member {}",
                e["node"]["id"]
            );
        }
        seen.extend(node_ids(&page));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = Some(str_of(&page["pageInfo"]["endCursor"]));
    }
    assert_eq!(seen, ids, "every member, in join order");
    for id in [&ids[0], &ids[MEMBERS / 2], &ids[MEMBERS - 1]] {
        let st = s.state_of(id, E3, Some(&big));
        assert_eq!(
            (st["state"].clone(), st["error"].clone()),
            (json!("ACTIVE"), json!("NONE"))
        );
    }
    let holders = s.ok(
        "{ product(skuPartNumber: \"ENTERPRISEPACK\") { licensedUsers(first: 1) { totalCount } } }",
        json!({}),
    );
    assert_eq!(
        holders["product"]["licensedUsers"]["totalCount"],
        MEMBERS as i64
    );
    // Every count the writer keeps agrees with the rows, after the crash and the resumed run.
    let conn =
        rusqlite::Connection::open_with_flags(&s.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database read-only");
    let problems = group_licensing::store::read::audit(&conn).expect("audit");
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let in_progress_after = after_restart
        .iter()
        .filter(|o| o.1 == "IN_PROGRESS")
        .count();
    eprintln!(
        "S9 timings: {MEMBERS} users created in {users_took:?}, members added in {members_took:?}, \
         assignGroupLicense answered in {assign_took:?}; {in_progress_seen} IN_PROGRESS observations \
         (processedMembers {in_progress:?}) before SIGKILL at {killed_after:?}; {applied} members applied \
         at the crash; restart listened in {started_in:?}, COMPLETE {resumed_took:?} after the restart \
         ({in_progress_after} IN_PROGRESS observations); observations before the kill: {:?}; after the \
         restart: {:?}",
        summarize(&observations),
        summarize(&after_restart),
    );
}

/// Collapses repeated observations: `(first seen, state, processed) ×count`.
fn summarize(observations: &[(Duration, String, i64)]) -> Vec<String> {
    let mut out: Vec<(Duration, String, i64, usize)> = Vec::new();
    for (t, state, processed) in observations {
        match out.last_mut() {
            Some(last) if last.1 == *state && last.2 == *processed => last.3 += 1,
            _ => out.push((*t, state.clone(), *processed, 1)),
        }
    }
    out.into_iter()
        .map(|(t, s, p, n)| format!("{:.0?} {s} {p} x{n}", t))
        .collect()
}
