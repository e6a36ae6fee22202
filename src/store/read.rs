//! Queries for the API. Lists are read a page at a time with keyset paging; details of many
//! users or groups are read in one statement per kind, whatever the page holds (no N+1).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{Result, StoreError};

pub struct DirectoryView {
    pub display_name: String,
    pub default_usage_location: String,
}

pub fn directory(conn: &Connection) -> Result<DirectoryView> {
    Ok(conn.query_row(
        "SELECT display_name, default_usage_location FROM directory WHERE id = 1",
        [],
        |r| {
            Ok(DirectoryView {
                display_name: r.get(0)?,
                default_usage_location: r.get(1)?,
            })
        },
    )?)
}

/// `(prepaid, consumed)` per product name.
pub fn seats(conn: &Connection) -> Result<HashMap<String, (i64, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT sku, prepaid_units, consumed_units FROM products")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A page of ids after keyset paging, with the exact total.
pub struct Page<K> {
    pub keys: Vec<K>,
    pub total: i64,
    pub has_next: bool,
}

fn page<K>(mut keys: Vec<K>, first: usize, total: i64) -> Page<K> {
    let has_next = keys.len() > first;
    keys.truncate(first);
    Page {
        keys,
        total,
        has_next,
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

// ---- Users ----------------------------------------------------------------------------------------

#[derive(Clone)]
pub struct UserView {
    pub id: i64,
    pub user_principal_name: String,
    pub display_name: String,
    pub usage_location: Option<String>,
    pub proxy_addresses: Vec<String>,
    /// SCIM's `active`: false for a disabled account, which keeps its licenses (scim.md).
    pub account_enabled: bool,
    /// SCIM's `externalId`: the provisioning directory's id for the user.
    pub external_id: Option<String>,
}

pub fn users(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, UserView>> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let marks = placeholders(ids.len());
    let mut stmt = conn.prepare(&format!(
        "SELECT id, user_principal_name, display_name, usage_location, account_enabled, external_id FROM users WHERE id IN ({marks})"
    ))?;
    let rows = stmt.query_map(params_from_iter(ids), |r| {
        Ok(UserView {
            id: r.get(0)?,
            user_principal_name: r.get(1)?,
            display_name: r.get(2)?,
            usage_location: r.get(3)?,
            proxy_addresses: Vec::new(),
            account_enabled: r.get(4)?,
            external_id: r.get(5)?,
        })
    })?;
    for row in rows {
        let user = row?;
        out.insert(user.id, user);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT user_id, address FROM proxy_addresses WHERE user_id IN ({marks}) ORDER BY user_id, position"
    ))?;
    let rows = stmt.query_map(params_from_iter(ids), |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (id, address) = row?;
        if let Some(user) = out.get_mut(&id) {
            user.proxy_addresses.push(address);
        }
    }
    Ok(out)
}

pub fn user_by_principal_name(conn: &Connection, upn: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT id FROM users WHERE user_principal_name = ?1",
            [upn.trim()],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn user_exists(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .exists([id])?)
}

/// Users by id; with `upn_prefix`, those whose principal name starts with it (ASCII letters
/// compared regardless of case, as the name's unique index compares them), in the order of
/// their names: a search reads a range of that index and never sorts. `after` is the id of the
/// last user of the page before, in either order.
pub fn user_page(
    conn: &Connection,
    after: i64,
    first: usize,
    upn_prefix: Option<&str>,
) -> Result<Page<i64>> {
    let Some(prefix) = upn_prefix.filter(|p| !p.is_empty()) else {
        let keys = conn
            .prepare_cached("SELECT id FROM users WHERE id > ?1 ORDER BY id LIMIT ?2")?
            .query_map(params![after, first as i64 + 1], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let total = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        return Ok(page(keys, first, total));
    };
    let after_name: String = if after == 0 {
        String::new()
    } else {
        conn.prepare_cached("SELECT user_principal_name FROM users WHERE id = ?1")?
            .query_row([after], |r| r.get(0))
            .optional()?
            .ok_or_else(|| {
                StoreError::BadInput(
                    "the user this cursor points after was deleted: start the search again".into(),
                )
            })?
    };
    // Every name that starts with the prefix sorts between it and the prefix followed by the
    // last code point.
    let upper = format!("{prefix}\u{10FFFF}");
    let keys = conn
        .prepare_cached(
            "SELECT id FROM users
              WHERE user_principal_name >= ?1 AND user_principal_name < ?2
                AND user_principal_name > ?3
              ORDER BY user_principal_name LIMIT ?4",
        )?
        .query_map(params![prefix, upper, after_name, first as i64 + 1], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    let total = conn
        .prepare_cached(
            "SELECT count(*) FROM users WHERE user_principal_name >= ?1 AND user_principal_name < ?2",
        )?
        .query_row(params![prefix, upper], |r| r.get(0))?;
    Ok(page(keys, first, total))
}

/// Users holding a product (L1), by id.
pub fn holders_page(conn: &Connection, sku: &str, after: i64, first: usize) -> Result<Page<i64>> {
    let keys = super::holders::page(conn, sku, after, first + 1)?;
    let total = super::holders::count(conn, sku)?;
    Ok(page(keys, first, total))
}

/// The groups of each user, in the order the user joined them.
pub fn memberships(conn: &Connection, users: &[i64]) -> Result<HashMap<i64, Vec<i64>>> {
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    if users.is_empty() {
        return Ok(out);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT user_id, group_id FROM members WHERE user_id IN ({})
          ORDER BY user_id, joined_at, group_id",
        placeholders(users.len())
    ))?;
    let rows = stmt.query_map(params_from_iter(users), |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (user, group) = row?;
        out.entry(user).or_default().push(group);
    }
    Ok(out)
}

/// One `LicenseAssignmentState` as stored, or derived when processing has not reached it.
#[derive(Clone, Debug)]
pub struct StateView {
    /// `None`: assigned directly.
    pub group: Option<i64>,
    pub sku: String,
    /// The configuration the source asks for now (JSON array of plan names); for a pending
    /// withdrawal, the one last applied.
    pub disabled: String,
    /// The configuration in force, `None` when never applied.
    pub applied: Option<String>,
    pub state: String,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub updated_at: String,
}

/// Every assignment state of each user: stored rows, plus `PENDING` for the products of the
/// user's groups that processing has not reached yet (G2).
pub fn states(conn: &Connection, users: &[i64]) -> Result<HashMap<i64, Vec<StateView>>> {
    let mut out: HashMap<i64, Vec<StateView>> = HashMap::new();
    if users.is_empty() {
        return Ok(out);
    }
    let marks = placeholders(users.len());
    // What each user's groups ask for now.
    let mut wanted: HashMap<(i64, i64, String), (String, String)> = HashMap::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT m.user_id, gl.group_id, gl.sku, gl.disabled_plans, max(m.joined_at, gl.updated_at)
               FROM members m JOIN group_licenses gl ON gl.group_id = m.group_id
              WHERE m.user_id IN ({marks})
              ORDER BY m.user_id, m.joined_at, m.group_id, gl.position"
        ))?;
        let rows = stmt.query_map(params_from_iter(users), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (user, group, sku, disabled, since) = row?;
            out.entry(user).or_default().push(StateView {
                group: Some(group),
                sku: sku.clone(),
                disabled: disabled.clone(),
                applied: None,
                state: "PENDING".into(),
                error_code: None,
                error: None,
                updated_at: since.clone(),
            });
            wanted.insert((user, group, sku), (disabled, since));
        }
    }
    let rows = super::sets::load(conn, users)?
        .into_iter()
        .flat_map(|(user, group, products)| products.into_iter().map(move |p| (user, group, p)));
    for (user, group, product) in rows {
        let super::sets::ProductRow {
            sku,
            applied,
            state,
            error_code,
            error,
            updated_at,
        } = product;
        let list = out.entry(user).or_default();
        let stored = |disabled: String| StateView {
            group: (group != 0).then_some(group),
            sku: sku.clone(),
            disabled,
            applied: applied.clone(),
            state: state.clone(),
            error_code: error_code.clone(),
            error: error.clone(),
            updated_at: updated_at.clone(),
        };
        match wanted.get(&(user, group, sku.clone())) {
            // Processing reached it: the stored state replaces the derived PENDING one.
            Some((disabled, _)) => {
                if let Some(slot) = list
                    .iter_mut()
                    .find(|s| s.group == Some(group) && s.sku == sku)
                {
                    *slot = stored(disabled.clone());
                }
            }
            None => {
                let disabled = applied.clone().unwrap_or_else(|| "[]".into());
                let view = stored(disabled);
                // Direct assignments first.
                if group == 0 {
                    list.insert(0, view);
                } else {
                    list.push(view);
                }
            }
        }
    }
    Ok(out)
}

// ---- Groups ---------------------------------------------------------------------------------------

#[derive(Clone)]
pub struct GroupView {
    pub id: i64,
    pub display_name: String,
    pub member_count: i64,
    pub processed_members: i64,
    pub members_to_process: i64,
    /// `QUEUED`, `IN_PROGRESS` or `COMPLETE` (P9).
    pub processing_state: &'static str,
    /// Users with at least one assignment from the group in error (Q1).
    pub error_users: i64,
    /// `(sku, disabled plans as JSON)` in the group's order.
    pub licenses: Vec<(String, String)>,
}

pub fn groups(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, GroupView>> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let marks = placeholders(ids.len());
    let mut stmt = conn.prepare(&format!(
        "SELECT g.id, g.display_name, g.processed_members, g.members_to_process, g.member_count,
                EXISTS (SELECT 1 FROM work w WHERE w.group_id = g.id AND w.started = 1),
                EXISTS (SELECT 1 FROM work w WHERE w.group_id = g.id),
                coalesce((SELECT e.users FROM group_errors e
                           WHERE e.group_id = g.id AND e.error_code = ''), 0)
           FROM groups g WHERE g.id IN ({marks})"
    ))?;
    let rows = stmt.query_map(params_from_iter(ids), |r| {
        let started: bool = r.get(5)?;
        let queued: bool = r.get(6)?;
        Ok(GroupView {
            id: r.get(0)?,
            display_name: r.get(1)?,
            processed_members: r.get(2)?,
            members_to_process: r.get(3)?,
            member_count: r.get(4)?,
            processing_state: if started {
                "IN_PROGRESS"
            } else if queued {
                "QUEUED"
            } else {
                "COMPLETE"
            },
            error_users: r.get(7)?,
            licenses: Vec::new(),
        })
    })?;
    for row in rows {
        let group = row?;
        out.insert(group.id, group);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT group_id, sku, disabled_plans FROM group_licenses WHERE group_id IN ({marks})
          ORDER BY group_id, position"
    ))?;
    let rows = stmt.query_map(params_from_iter(ids), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (id, sku, disabled) = row?;
        if let Some(group) = out.get_mut(&id) {
            group.licenses.push((sku, disabled));
        }
    }
    Ok(out)
}

pub fn group_exists(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM groups WHERE id = ?1")?
        .exists([id])?)
}

/// Conditions on a group `g`, as `groups(…)` filters by them and `/metrics` counts them.
/// Q2: it has users in error.
pub const GROUP_IN_ERROR: &str = "EXISTS (SELECT 1 FROM group_errors e WHERE e.group_id = g.id AND e.error_code = '' AND e.users > 0)";
pub const GROUP_NOT_IN_ERROR: &str = "NOT EXISTS (SELECT 1 FROM group_errors e WHERE e.group_id = g.id AND e.error_code = '' AND e.users > 0)";
/// P9 `IN_PROGRESS`: its run has started.
pub const GROUP_IN_PROGRESS: &str =
    "EXISTS (SELECT 1 FROM work w WHERE w.group_id = g.id AND w.started = 1)";
/// P9 `QUEUED`: work waits and none has started.
pub const GROUP_QUEUED: &str = "EXISTS (SELECT 1 FROM work w WHERE w.group_id = g.id)
     AND NOT EXISTS (SELECT 1 FROM work w WHERE w.group_id = g.id AND w.started = 1)";

/// Which groups a page of groups holds.
#[derive(Clone, Debug, Default)]
pub struct GroupFilter {
    /// Only those that have (true) or have not (false) members in error (Q2).
    pub with_errors: Option<bool>,
    /// Only those whose display name holds this text, ASCII letters compared regardless of case.
    pub name_contains: Option<String>,
    /// Only those in this processing state (P9): `QUEUED`, `IN_PROGRESS` or `COMPLETE`.
    pub state: Option<&'static str>,
    /// Most users in error first (Q2), ties by id; otherwise by id.
    pub by_errors: bool,
}

/// A place in the list of groups by users in error: `(users in error, id)` in one cursor key.
pub fn error_order_key(users: i64, id: i64) -> i64 {
    (users << 32) | (id & 0xffff_ffff)
}

/// Groups by id (or by users in error, see [`GroupFilter::by_errors`]: the keys are then
/// [`error_order_key`]s), those `filter` keeps.
pub fn group_page(
    conn: &Connection,
    after: i64,
    first: usize,
    filter: &GroupFilter,
) -> Result<Page<i64>> {
    let mut conditions: Vec<&str> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    match filter.with_errors {
        None => {}
        Some(true) => conditions.push(GROUP_IN_ERROR),
        Some(false) => conditions.push(GROUP_NOT_IN_ERROR),
    }
    if let Some(text) = filter.name_contains.as_deref().filter(|t| !t.is_empty()) {
        // instr on folded text rather than LIKE: `%` and `_` in what the admin typed are
        // letters to find, not patterns.
        conditions.push("instr(lower(g.display_name), lower(?)) > 0");
        args.push(text.to_string().into());
    }
    match filter.state {
        None => {}
        Some("IN_PROGRESS") => conditions.push(GROUP_IN_PROGRESS),
        Some("QUEUED") => conditions.push(GROUP_QUEUED),
        Some(_) => conditions.push("NOT EXISTS (SELECT 1 FROM work w WHERE w.group_id = g.id)"),
    }
    let condition = if conditions.is_empty() {
        "1".to_string()
    } else {
        conditions.join(" AND ")
    };
    let keys = if filter.by_errors {
        // Most users in error first: what needs attention first on a big tenant (Q2). Groups
        // are few beside users, so the whole list is sorted; the cursor is (count, id).
        let mut page_args: Vec<rusqlite::types::Value> = args.clone();
        let after_clause = if after > 0 {
            page_args.push((after >> 32).into());
            page_args.push((after >> 32).into());
            page_args.push((after & 0xffff_ffff).into());
            "AND (n < ? OR (n = ? AND g.id > ?))"
        } else {
            ""
        };
        page_args.push((first as i64 + 1).into());
        let rows: Vec<(i64, i64)> = conn
            .prepare(&format!(
                "SELECT g.id, n FROM (SELECT g.id AS id, coalesce((SELECT e.users FROM group_errors e WHERE e.group_id = g.id AND e.error_code = ''), 0) AS n FROM groups g WHERE {condition}) AS g
                  WHERE 1 {after_clause} ORDER BY n DESC, g.id LIMIT ?"
            ))?
            .query_map(params_from_iter(page_args), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|(id, n)| error_order_key(n, id))
            .collect()
    } else {
        let mut page_args = vec![rusqlite::types::Value::from(after)];
        page_args.extend(args.iter().cloned());
        page_args.push((first as i64 + 1).into());
        conn.prepare(&format!(
            "SELECT g.id FROM groups g WHERE g.id > ? AND {condition} ORDER BY g.id LIMIT ?"
        ))?
        .query_map(params_from_iter(page_args), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?
    };
    let total = conn.query_row(
        &format!("SELECT count(*) FROM groups g WHERE {condition}"),
        params_from_iter(args),
        |r| r.get(0),
    )?;
    Ok(page(keys, first, total))
}

/// Members in the order they joined; keys are `(seq, user id)`.
pub fn members_page(
    conn: &Connection,
    group: i64,
    after_seq: i64,
    first: usize,
) -> Result<Page<(i64, i64)>> {
    let keys = conn
        .prepare_cached(
            "SELECT seq, user_id FROM members WHERE group_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![group, after_seq, first as i64 + 1], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    // The count the writer keeps (and the audit recounts): counting a million-member group's
    // rows again for every page would read its whole membership index.
    let total = conn
        .query_row(
            "SELECT member_count FROM groups WHERE id = ?1",
            [group],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    Ok(page(keys, first, total))
}

/// Users with an assignment from the group in error (members and former members, Q1), by id;
/// with `code`, only errors of that code.
pub fn error_members_page(
    conn: &Connection,
    group: i64,
    code: Option<&str>,
    after: i64,
    first: usize,
) -> Result<Page<i64>> {
    let code_filter = if code.is_some() {
        "AND error_code = ?4"
    } else {
        "AND ?4 IS NULL"
    };
    let keys = conn
        .prepare_cached(&format!(
            "SELECT DISTINCT user_id FROM assignment_errors
              WHERE group_id = ?1 AND user_id > ?2 {code_filter}
              ORDER BY user_id LIMIT ?3"
        ))?
        .query_map(params![group, after, first as i64 + 1, code], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let total = conn
        .query_row(
            "SELECT users FROM group_errors WHERE group_id = ?1 AND error_code = ?2",
            params![group, code.unwrap_or("")],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    Ok(page(keys, first, total))
}

/// Users in error per code, largest first (Q1, "top reason for failure").
pub fn error_counts(conn: &Connection, group: i64) -> Result<Vec<(String, i64)>> {
    let rows = conn
        .prepare_cached(
            "SELECT error_code, users FROM group_errors
              WHERE group_id = ?1 AND error_code <> '' AND users > 0
              ORDER BY users DESC, error_code",
        )?
        .query_map([group], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Groups whose license set holds the product (Q3).
pub fn groups_with_product(conn: &Connection, sku: &str) -> Result<Vec<i64>> {
    Ok(conn
        .prepare_cached("SELECT group_id FROM group_licenses WHERE sku = ?1 ORDER BY group_id")?
        .query_map([sku], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Display names of groups and principal names of users, for error messages.
pub fn names(
    conn: &Connection,
    groups: &[i64],
    users: &[i64],
) -> Result<(HashMap<i64, String>, HashMap<i64, String>)> {
    let mut group_names = HashMap::new();
    let mut user_names = HashMap::new();
    if !groups.is_empty() {
        let mut stmt = conn.prepare(&format!(
            "SELECT id, display_name FROM groups WHERE id IN ({})",
            placeholders(groups.len())
        ))?;
        for row in stmt.query_map(params_from_iter(groups), |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (id, name) = row?;
            group_names.insert(id, name);
        }
    }
    if !users.is_empty() {
        let mut stmt = conn.prepare(&format!(
            "SELECT id, user_principal_name FROM users WHERE id IN ({})",
            placeholders(users.len())
        ))?;
        for row in stmt.query_map(params_from_iter(users), |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (id, name) = row?;
            user_names.insert(id, name);
        }
    }
    Ok((group_names, user_names))
}

/// Whether processing has anything queued.
pub fn work_pending(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM work LIMIT 1")?
        .exists([])?)
}

pub fn not_found(what: &str, id: i64) -> StoreError {
    StoreError::NotFound(format!("no {what} with id {id}"))
}

/// Compares everything the writer keeps beside the assignment sets with a recount from them:
/// the holder bitmaps (L1) and seats consumed (L3: users holding the product), members per
/// group, the users-in-error rows and their counts per group and code. Returns one line per
/// difference; empty when all agree. For tests and operators, not for requests: it reads every
/// set.
pub fn audit(conn: &Connection) -> Result<Vec<String>> {
    use std::collections::BTreeSet;

    let mut out = Vec::new();
    // What the sets say.
    let mut held: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut in_error: BTreeSet<(i64, i64, String)> = BTreeSet::new();
    {
        let mut stmt = conn.prepare("SELECT user_id, group_id, products FROM assignment_sets")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (user, group): (i64, i64) = (r.get(0)?, r.get(1)?);
            for product in super::sets::decode(&r.get::<_, String>(2)?)? {
                if let Some(code) = product.error_code {
                    in_error.insert((group, user, code));
                }
                if product.applied.is_some() {
                    held.insert((product.sku, user));
                }
            }
        }
    }
    let bits: BTreeSet<(String, i64)> = super::holders::all(conn)?.into_iter().collect();
    for (sku, user) in held.difference(&bits) {
        out.push(format!(
            "user {user} holds {sku} in its sets but not in the holders"
        ));
    }
    for (sku, user) in bits.difference(&held) {
        out.push(format!(
            "user {user} holds {sku} in the holders but not in its sets"
        ));
    }
    let mut consumed: HashMap<String, i64> = HashMap::new();
    for (sku, _) in &held {
        *consumed.entry(sku.clone()).or_default() += 1;
    }
    for (sku, stored) in seats(conn)? {
        let counted = consumed.remove(&sku).unwrap_or(0);
        if stored.1 != counted {
            out.push(format!(
                "product {sku} consumedUnits: {} kept by the writer, {counted} in the rows",
                stored.1
            ));
        }
    }
    for (sku, counted) in consumed {
        out.push(format!(
            "product {sku} consumedUnits: no product row, {counted} in the rows"
        ));
    }
    let rows: BTreeSet<(i64, i64, String)> = conn
        .prepare("SELECT group_id, user_id, error_code FROM assignment_errors")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (group, user, code) in in_error.symmetric_difference(&rows) {
        out.push(format!(
            "user {user} in error {code} from group {group}: {} in its sets, {} in assignment_errors",
            in_error.contains(&(*group, *user, code.clone())),
            rows.contains(&(*group, *user, code.clone()))
        ));
    }
    // Each check lists what it counts, the count kept and the recount, where they differ.
    const CHECKS: [&str; 2] = [
        "SELECT 'group ' || id || ' memberCount', stored, counted FROM (
             SELECT g.id, g.member_count AS stored,
                    (SELECT count(*) FROM members m WHERE m.group_id = g.id) AS counted
               FROM groups g)
          WHERE stored <> counted",
        "WITH counted AS (
             SELECT group_id, error_code, count(DISTINCT user_id) AS users FROM assignment_errors
              GROUP BY group_id, error_code
             UNION ALL
             SELECT group_id, '', count(DISTINCT user_id) FROM assignment_errors
              GROUP BY group_id),
         stored AS (SELECT group_id, error_code, users FROM group_errors WHERE users > 0)
         SELECT 'group ' || group_id || ' users in error \"' || error_code || '\"',
                coalesce(s.users, 0), coalesce(c.users, 0)
           FROM (SELECT group_id, error_code FROM counted UNION SELECT group_id, error_code FROM stored)
           LEFT JOIN counted c USING (group_id, error_code)
           LEFT JOIN stored s USING (group_id, error_code)
          WHERE coalesce(s.users, 0) <> coalesce(c.users, 0)",
    ];
    for sql in CHECKS {
        let mut stmt = conn.prepare(sql)?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (what, stored, counted) = row?;
            out.push(format!(
                "{what}: {stored} kept by the writer, {counted} in the rows"
            ));
        }
    }
    super::history::audit(conn, &mut out)?;
    Ok(out)
}
