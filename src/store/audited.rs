//! The events of each change (licensing.md H1, H2, H4), written in the change's transaction.
//!
//! A change is wrapped: what the history shows of its subject (a user, a group, a group's
//! members) is read before and after the change, and the difference is the event's modified
//! properties. GraphQL's mutations and SCIM's requests wrap the same store operations in the
//! same way, so an event says the same whoever made the change.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::Result;
use super::history::{Activity, AssignmentChange, Category, Event, Journal, Property, Target};
use super::ops::LoadedUser;

/// What the history shows of a user or a group: its name, then each property and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    name: String,
    fields: Vec<(&'static str, Option<String>)>,
}

fn user_snapshot(conn: &Connection, id: i64) -> Result<Option<Snapshot>> {
    let row = conn
        .prepare_cached(
            "SELECT user_principal_name, display_name, usage_location, account_enabled, external_id
               FROM users WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((upn, display, location, enabled, external)) = row else {
        return Ok(None);
    };
    let proxies: Vec<String> = conn
        .prepare_cached("SELECT address FROM proxy_addresses WHERE user_id = ?1 ORDER BY position")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(Snapshot {
        name: upn.clone(),
        fields: vec![
            ("userPrincipalName", Some(upn)),
            ("displayName", Some(display)),
            ("usageLocation", location),
            (
                "proxyAddresses",
                (!proxies.is_empty()).then(|| proxies.join("; ")),
            ),
            ("accountEnabled", Some(enabled.to_string())),
            ("externalId", external),
        ],
    }))
}

fn group_snapshot(conn: &Connection, id: i64) -> Result<Option<Snapshot>> {
    let row = conn
        .prepare_cached("SELECT display_name, external_id FROM groups WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .optional()?;
    Ok(row.map(|(name, external)| Snapshot {
        name: name.clone(),
        fields: vec![("displayName", Some(name)), ("externalId", external)],
    }))
}

/// The properties whose values differ; a side that does not exist has every value null.
fn differences(before: Option<&Snapshot>, after: Option<&Snapshot>) -> Vec<Property> {
    let fields = before.or(after).map_or(&[][..], |s| s.fields.as_slice());
    let value = |side: Option<&Snapshot>, name: &str| {
        side.and_then(|s| s.fields.iter().find(|(n, _)| *n == name))
            .and_then(|(_, v)| v.clone())
    };
    fields
        .iter()
        .filter_map(|(name, _)| {
            let (old, new) = (value(before, name), value(after, name));
            (old != new).then(|| Property::new(name, old, new))
        })
        .collect()
}

fn named(before: Option<&Snapshot>, after: Option<&Snapshot>) -> Option<String> {
    after.or(before).map(|s| s.name.clone())
}

/// Runs `op` on user `id` and records `activity` with the properties it changed; `extra`
/// turns what `op` returned into more properties (the licenses a deletion withdrew).
pub fn on_user<R>(
    tx: &Transaction<'_>,
    journal: &mut Journal<'_>,
    activity: Activity,
    id: i64,
    op: impl FnOnce(&Transaction<'_>) -> Result<R>,
    extra: impl FnOnce(&R) -> Vec<Property>,
) -> Result<R> {
    let before = user_snapshot(tx, id)?;
    let value = op(tx)?;
    let after = user_snapshot(tx, id)?;
    let mut properties = differences(before.as_ref(), after.as_ref());
    properties.extend(extra(&value));
    // An update that changed nothing is no change (H1).
    if activity == Activity::UpdateUser && properties.is_empty() {
        return Ok(value);
    }
    let target = Target::user(id, named(before.as_ref(), after.as_ref())).with(properties);
    journal.record(&Event::new(activity, vec![target]))?;
    Ok(value)
}

/// "Add user" for a user just created in this transaction: every value is new.
pub fn user_added(tx: &Transaction<'_>, journal: &mut Journal<'_>, id: i64) -> Result<()> {
    let after = user_snapshot(tx, id)?;
    let target =
        Target::user(id, named(None, after.as_ref())).with(differences(None, after.as_ref()));
    journal.record(&Event::new(Activity::AddUser, vec![target]))?;
    Ok(())
}

/// [`on_user`] for a group.
pub fn on_group<R>(
    tx: &Transaction<'_>,
    journal: &mut Journal<'_>,
    activity: Activity,
    id: i64,
    op: impl FnOnce(&Transaction<'_>) -> Result<R>,
) -> Result<R> {
    let before = group_snapshot(tx, id)?;
    let value = op(tx)?;
    let after = group_snapshot(tx, id)?;
    let properties = differences(before.as_ref(), after.as_ref());
    if activity == Activity::UpdateGroup && properties.is_empty() {
        return Ok(value);
    }
    let target = Target::group(id, named(before.as_ref(), after.as_ref())).with(properties);
    journal.record(&Event::new(activity, vec![target]))?;
    Ok(value)
}

/// "Add group" for a group just created in this transaction: every value is new.
pub fn group_added(tx: &Transaction<'_>, journal: &mut Journal<'_>, id: i64) -> Result<()> {
    let after = group_snapshot(tx, id)?;
    let target =
        Target::group(id, named(None, after.as_ref())).with(differences(None, after.as_ref()));
    journal.record(&Event::new(Activity::AddGroup, vec![target]))?;
    Ok(())
}

/// Which of `users` are members of `group`; all members when `users` is `None`.
fn members(conn: &Connection, group: i64, users: Option<&[i64]>) -> Result<Vec<i64>> {
    match users {
        Some(list) => {
            let mut member =
                conn.prepare_cached("SELECT 1 FROM members WHERE group_id = ?1 AND user_id = ?2")?;
            let mut out = Vec::new();
            for user in list {
                if member.exists(params![group, user])? {
                    out.push(*user);
                }
            }
            Ok(out)
        }
        None => super::provision::member_ids(conn, group),
    }
}

/// Runs `op` on the membership of `group` (of `users`, or of everyone when `None`) and
/// records one "Add member to group" or "Remove member from group" per user who joined or
/// left, in the order given (joiners) or by id (leavers).
pub fn on_members<R>(
    tx: &Transaction<'_>,
    journal: &mut Journal<'_>,
    group: i64,
    users: Option<&[i64]>,
    op: impl FnOnce(&Transaction<'_>) -> Result<R>,
) -> Result<R> {
    let before = members(tx, group, users)?;
    let value = op(tx)?;
    let after = members(tx, group, users)?;
    let (was, is): (HashSet<i64>, HashSet<i64>) = (
        before.iter().copied().collect(),
        after.iter().copied().collect(),
    );
    let group_name = group_snapshot(tx, group)?.map(|s| s.name);
    let mut principal = tx.prepare_cached("SELECT user_principal_name FROM users WHERE id = ?1")?;
    let mut record = |activity: Activity, user: i64| -> Result<()> {
        let name: Option<String> = principal.query_row([user], |r| r.get(0)).optional()?;
        let targets = vec![
            Target::user(user, name),
            Target::group(group, group_name.clone()),
        ];
        journal.record(&Event::new(activity, targets))?;
        Ok(())
    };
    let mut left: Vec<i64> = before.into_iter().filter(|u| !is.contains(u)).collect();
    left.sort_unstable();
    for user in left {
        record(Activity::RemoveMember, user)?;
    }
    for user in after.into_iter().filter(|u| !was.contains(u)) {
        record(Activity::AddMember, user)?;
    }
    Ok(value)
}

/// A "Change user license" (or "Remove redundant direct licenses") event: the user, with a
/// property per assignment that changed; processing's names the group too and is of the
/// `LICENSE_PROCESSING` category (H4).
pub fn license_event(
    activity: Activity,
    user: &LoadedUser,
    changes: &[AssignmentChange],
    processed_group: Option<i64>,
) -> Event {
    license_change(
        activity,
        user.licenses.id.0,
        Some(user.principal_name.clone()),
        changes,
        processed_group,
    )
}

pub fn license_change(
    activity: Activity,
    user: i64,
    principal_name: Option<String>,
    changes: &[AssignmentChange],
    processed_group: Option<i64>,
) -> Event {
    let properties = changes.iter().map(AssignmentChange::property).collect();
    let mut event = Event::new(
        activity,
        vec![Target::user(user, principal_name).with(properties)],
    );
    let mut products: Vec<String> = changes.iter().map(|c| c.sku.to_string()).collect();
    products.sort_unstable();
    products.dedup();
    event.products = products;
    if let Some(group) = processed_group {
        event.group = Some(group);
        event.category = Category::LicenseProcessing;
    }
    event
}

/// The group's products, each with the plans it turns off (`[]`: none), in the group's order.
fn group_products(conn: &Connection, group: i64) -> Result<Vec<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT sku, disabled_plans FROM group_licenses WHERE group_id = ?1 ORDER BY position",
        )?
        .query_map([group], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

/// A product on a group as a property value: assigned, with the plans it turns off.
fn group_product_value(disabled: &str) -> String {
    super::history::assignment_value("assigned", None, Some(disabled))
}

/// Runs `op` on the group's licenses and records "Set group license": a property per product
/// added, removed or reconfigured.
pub fn on_group_licenses<R>(
    tx: &Transaction<'_>,
    journal: &mut Journal<'_>,
    group: i64,
    op: impl FnOnce(&Transaction<'_>) -> Result<R>,
) -> Result<R> {
    let before = group_products(tx, group)?;
    let value = op(tx)?;
    let after = group_products(tx, group)?;
    let find = |list: &[(String, String)], sku: &str| {
        list.iter()
            .find(|(s, _)| s == sku)
            .map(|(_, d)| group_product_value(d))
    };
    let mut properties = Vec::new();
    let mut products = Vec::new();
    for (sku, _) in after.iter().chain(&before) {
        if products.contains(sku) {
            continue;
        }
        let (old, new) = (find(&before, sku), find(&after, sku));
        if old != new {
            properties.push(Property::new(sku, old, new));
            products.push(sku.clone());
        }
    }
    let name = group_snapshot(tx, group)?.map(|s| s.name);
    let mut event = Event::new(
        Activity::SetGroupLicense,
        vec![Target::group(group, name).with(properties)],
    );
    event.products = products;
    journal.record(&event)?;
    Ok(value)
}

/// Runs `op` on a product's seats and records "Set prepaid units".
pub fn on_seats<R>(
    tx: &Transaction<'_>,
    journal: &mut Journal<'_>,
    sku: &str,
    op: impl FnOnce(&Transaction<'_>) -> Result<R>,
) -> Result<R> {
    let prepaid = |tx: &Transaction<'_>| -> Result<Option<String>> {
        Ok(tx
            .prepare_cached("SELECT prepaid_units FROM products WHERE sku = ?1")?
            .query_row([sku], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|n| n.to_string()))
    };
    let before = prepaid(tx)?.or(Some("0".into()));
    let value = op(tx)?;
    let after = prepaid(tx)?;
    let properties = if before == after {
        Vec::new()
    } else {
        vec![Property::new("prepaidUnits", before, after)]
    };
    let target = Target::product(sku).with(properties);
    journal.record(&Event::new(Activity::SetPrepaidUnits, vec![target]))?;
    Ok(value)
}

/// Runs `op` on the directory and records "Update directory".
pub fn on_directory<R>(
    tx: &Transaction<'_>,
    journal: &mut Journal<'_>,
    op: impl FnOnce(&Transaction<'_>) -> Result<R>,
) -> Result<R> {
    let snapshot = |tx: &Transaction<'_>| -> Result<Snapshot> {
        let d = super::read::directory(tx)?;
        Ok(Snapshot {
            name: d.display_name.clone(),
            fields: vec![
                ("displayName", Some(d.display_name)),
                ("defaultUsageLocation", Some(d.default_usage_location)),
            ],
        })
    };
    let before = snapshot(tx)?;
    let value = op(tx)?;
    let after = snapshot(tx)?;
    let target = Target::of("Directory", None, Some(after.name.clone()))
        .with(differences(Some(&before), Some(&after)));
    journal.record(&Event::new(Activity::UpdateDirectory, vec![target]))?;
    Ok(value)
}

/// "Reprocess group" or "Reprocess user": the request, whose processing records the rest.
pub fn reprocess(
    tx: &Transaction<'_>,
    journal: &mut Journal<'_>,
    group: Option<i64>,
    user: Option<i64>,
) -> Result<()> {
    let event = match (group, user) {
        (Some(group), _) => Event::new(
            Activity::ReprocessGroup,
            vec![Target::group(
                group,
                group_snapshot(tx, group)?.map(|s| s.name),
            )],
        ),
        (None, Some(user)) => Event::new(
            Activity::ReprocessUser,
            vec![Target::user(user, user_snapshot(tx, user)?.map(|s| s.name))],
        ),
        (None, None) => return Ok(()),
    };
    journal.record(&event)?;
    Ok(())
}
