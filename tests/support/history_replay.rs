//! H1 checked on a database: the history's events, replayed in order over what the tenant
//! held before them, give exactly the assignments and memberships its rows hold. A change
//! without its event, or an event without its change, shows as a difference.

use std::collections::BTreeMap;

/// What the history tells of the tenant: each assignment's value as a "Change user license"
/// property writes it (`EMS (group 7)` → `ACTIVE`), and each membership.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Told {
    assignments: BTreeMap<(i64, String), String>,
    members: std::collections::BTreeSet<(i64, i64)>,
}

/// The tenant as its rows hold it, in the history's terms.
pub fn held(conn: &rusqlite::Connection) -> Told {
    use group_licensing::store::{history, sets};
    let mut told = Told::default();
    let mut stmt = conn
        .prepare("SELECT user_id, group_id, products FROM assignment_sets")
        .expect("sets");
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .expect("sets");
    for row in rows {
        let (user, group, products) = row.expect("a set");
        for p in sets::decode(&products).expect("a stored set") {
            told.assignments.insert(
                (user, history::assignment_name(&p.sku, group)),
                history::assignment_value(&p.state, p.error_code.as_deref(), p.applied.as_deref()),
            );
        }
    }
    let mut stmt = conn
        .prepare("SELECT group_id, user_id FROM members")
        .expect("members");
    for row in stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("members")
    {
        told.members.insert(row.expect("a member"));
    }
    told
}

/// `baseline` (the generated tenant, written with no events) with every successful event
/// replayed over it, in order. The events are read as the API reads them
/// (`store::history::between`), so the replay checks the stored layout's reading too.
pub fn replayed(conn: &rusqlite::Connection, baseline: &Told) -> Told {
    use group_licensing::store::history::{self, Activity};
    let mut told = baseline.clone();
    let last: i64 = conn
        .query_row(
            "SELECT coalesce(max(coalesce(last_id, id)), 0) FROM audit_events",
            [],
            |r| r.get(0),
        )
        .expect("the newest event");
    let events = history::between(conn, 1, last).expect("the events");
    for event in events.iter().filter(|e| !e.failed) {
        let (activity, targets) = (event.activity, &event.targets);
        let id_of = |kind: &str| {
            targets
                .iter()
                .find(|t| t.kind == kind)
                .and_then(|t| t.id.as_deref())
                .and_then(|id| id.parse::<i64>().ok())
        };
        let (user, group) = (id_of("User"), id_of("Group"));
        if activity == Activity::AddMember || activity == Activity::RemoveMember {
            if let (Some(user), Some(group)) = (user, group) {
                if activity == Activity::AddMember {
                    told.members.insert((group, user));
                } else {
                    told.members.remove(&(group, user));
                }
            }
            continue;
        }
        // A deleted group's members leave with it, as a deleted user leaves its groups.
        if activity == Activity::DeleteGroup
            && let Some(group) = group
        {
            told.members.retain(|(g, _)| *g != group);
            continue;
        }
        let Some(user) = user else { continue };
        let Some(target) = targets.iter().find(|t| t.kind == "User") else {
            continue;
        };
        for property in &target.properties {
            let (name, new) = (&property.name, &property.new);
            // Assignment properties name a source; a user's own properties do not.
            if !(name.ends_with(" (direct)") || name.contains(" (group ")) {
                continue;
            }
            match new {
                Some(value) => told.assignments.insert((user, name.clone()), value.clone()),
                None => told.assignments.remove(&(user, name.clone())),
            };
        }
        if activity == Activity::DeleteUser {
            told.members.retain(|(_, u)| *u != user);
        }
    }
    told
}

/// H1 on a database: the history replayed over the baseline is what the rows hold.
pub fn check_history(
    conn: &rusqlite::Connection,
    baseline: &Told,
    problems: &mut Vec<String>,
    when: &str,
) {
    let (now, told) = (held(conn), replayed(conn, baseline));
    if now == told {
        return;
    }
    let differ = |a: &BTreeMap<(i64, String), String>, b: &BTreeMap<(i64, String), String>| {
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .take(5)
            .map(|(k, v)| format!("{k:?} = {v:?} / {:?}", b.get(k)))
            .collect::<Vec<_>>()
    };
    problems.push(format!(
        "{when}: the history disagrees with the rows (H1): held but not told {:?}; told but not held {:?}; members held not told {:?}; told not held {:?}",
        differ(&now.assignments, &told.assignments),
        differ(&told.assignments, &now.assignments),
        now.members.difference(&told.members).take(5).collect::<Vec<_>>(),
        told.members.difference(&now.members).take(5).collect::<Vec<_>>(),
    ));
}
