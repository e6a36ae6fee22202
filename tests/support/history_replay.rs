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

/// A target as stored: type, id, name, and its properties (name, old value, new value).
type Properties = Vec<(String, Option<String>, Option<String>)>;
/// An assignment of a batch entry as stored: state, error code, plans off.
type Shown = Option<(String, Option<String>, Option<String>)>;
/// A batch row's event: user, sign-in name, and (product, group, before, after) per change.
type BatchEntry = (i64, String, Vec<(String, i64, Shown, Shown)>);
type StoredTarget = (String, Option<String>, Option<String>, Properties);

/// `baseline` (the generated tenant, written with no events) with every successful event
/// replayed over it, in order.
pub fn replayed(conn: &rusqlite::Connection, baseline: &Told) -> Told {
    use group_licensing::store::history::Activity;
    let mut told = baseline.clone();
    let mut stmt = conn
        .prepare(
            "SELECT activity, targets, last_id IS NOT NULL FROM audit_events WHERE failed = 0 ORDER BY id",
        )
        .expect("events");
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })
        .expect("events");
    // A batch row holds many events: each its user, sign-in name and properties.
    let mut events: Vec<(i64, Vec<StoredTarget>)> = Vec::new();
    for row in rows {
        let (activity, targets, batch) = row.expect("an event");
        if batch {
            let entries: Vec<BatchEntry> = serde_json::from_str(&targets).expect("a stored batch");
            let value = |s: &Shown| {
                s.as_ref().map(|(state, code, off)| {
                    group_licensing::store::history::assignment_value(
                        state,
                        code.as_deref(),
                        off.as_deref(),
                    )
                })
            };
            for (user, name, changes) in entries {
                let properties: Properties = changes
                    .iter()
                    .map(|(sku, group, old, new)| {
                        (
                            group_licensing::store::history::assignment_name(sku, *group),
                            value(old),
                            value(new),
                        )
                    })
                    .collect();
                events.push((
                    activity,
                    vec![(
                        "User".into(),
                        Some(user.to_string()),
                        Some(name),
                        properties,
                    )],
                ));
            }
        } else {
            events.push((
                activity,
                serde_json::from_str(&targets).expect("stored targets"),
            ));
        }
    }
    for (activity, targets) in events {
        let id_of = |kind: &str| {
            targets
                .iter()
                .find(|t| t.0 == kind)
                .and_then(|t| t.1.as_deref())
                .and_then(|id| id.parse::<i64>().ok())
        };
        let (user, group) = (id_of("User"), id_of("Group"));
        if activity == Activity::AddMember as i64 || activity == Activity::RemoveMember as i64 {
            if let (Some(user), Some(group)) = (user, group) {
                if activity == Activity::AddMember as i64 {
                    told.members.insert((group, user));
                } else {
                    told.members.remove(&(group, user));
                }
            }
            continue;
        }
        // A deleted group's members leave with it, as a deleted user leaves its groups.
        if activity == Activity::DeleteGroup as i64
            && let Some(group) = group
        {
            told.members.retain(|(g, _)| *g != group);
            continue;
        }
        let Some(user) = user else { continue };
        let Some((_, _, _, properties)) = targets.iter().find(|t| t.0 == "User") else {
            continue;
        };
        for (name, _, new) in properties {
            // Assignment properties name a source; a user's own properties do not.
            if !(name.ends_with(" (direct)") || name.contains(" (group ")) {
                continue;
            }
            match new {
                Some(value) => told.assignments.insert((user, name.clone()), value.clone()),
                None => told.assignments.remove(&(user, name.clone())),
            };
        }
        if activity == Activity::DeleteUser as i64 {
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
