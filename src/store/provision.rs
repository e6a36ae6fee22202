//! What provisioning over SCIM (scim.md, `crate::scim`) needs of the store beyond the
//! mutations' own operations (`ops`), which it calls for everything licensing depends on:
//! creating and deleting users, memberships (P5), usage locations and proxy addresses.
//!
//! Here are only SCIM's own rules: `userName` is any text of 1–256 characters (GraphQL asks for
//! name@domain), a group's `displayName` is unique over SCIM, `active` and `externalId` are kept;
//! and the filtered, paged reads of `GET /Users` and `GET /Groups`.

use std::collections::HashSet;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use super::ops::{self, NewUser};
use super::read::{self, UserView};
use super::{Result, StoreError};

/// The attributes a SCIM filter may compare (scim.md: `eq` on these, and `and` of such).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Id,
    /// Users only: the user principal name, without regard to case.
    UserName,
    ExternalId,
    /// Without regard to case.
    DisplayName,
}

/// One `attribute eq "value"` of a filter; a list of them is their `and`.
pub type Match = (Column, String);

fn where_clause(matches: &[Match]) -> (String, Vec<Value>) {
    let mut clauses = Vec::with_capacity(matches.len());
    let mut values = Vec::with_capacity(matches.len());
    for (column, value) in matches {
        clauses.push(match column {
            // A text id that no row has (`abc`) compares unequal to every integer id.
            Column::Id => "CAST(id AS TEXT) = ?",
            Column::UserName => "user_principal_name = ?",
            Column::ExternalId => "external_id = ?",
            Column::DisplayName => "display_name = ? COLLATE NOCASE",
        });
        values.push(Value::Text(value.clone()));
    }
    if clauses.is_empty() {
        (String::new(), values)
    } else {
        (format!(" WHERE {}", clauses.join(" AND ")), values)
    }
}

/// The ids of one page of `table` (in id order) and how many match in all.
fn page(
    conn: &Connection,
    table: &str,
    matches: &[Match],
    offset: usize,
    count: usize,
) -> Result<(usize, Vec<i64>)> {
    // `table` is this module's constant.
    let (clause, mut values) = where_clause(matches);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM {table}{clause}"))?
        .query_row(params_from_iter(&values), |r| r.get(0))?;
    let mut ids = Vec::new();
    if count > 0 {
        let as_int = |n: usize| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        values.push(as_int(count));
        values.push(as_int(offset));
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id FROM {table}{clause} ORDER BY id LIMIT ? OFFSET ?"
        ))?;
        let rows = stmt.query_map(params_from_iter(&values), |r| r.get(0))?;
        ids = rows.collect::<rusqlite::Result<_>>()?;
    }
    Ok((usize::try_from(total).unwrap_or(0), ids))
}

/// `GET /Users`: the users matching every `matches` (all without), `count` of them from the
/// `offset`-th, in id order, and the number of matches.
pub fn users_page(
    conn: &Connection,
    matches: &[Match],
    offset: usize,
    count: usize,
) -> Result<(usize, Vec<UserView>)> {
    let (total, ids) = page(conn, "users", matches, offset, count)?;
    let mut found = read::users(conn, &ids)?;
    Ok((
        total,
        ids.iter().filter_map(|id| found.remove(id)).collect(),
    ))
}

pub fn user(conn: &Connection, id: i64) -> Result<UserView> {
    read::users(conn, &[id])?
        .remove(&id)
        .ok_or_else(|| read::not_found("user", id))
}

/// A group as SCIM shows it.
pub struct GroupRecord {
    pub id: i64,
    pub display_name: String,
    pub external_id: Option<String>,
    /// The members' user ids in join order; read only when asked for.
    pub members: Vec<i64>,
}

/// `GET /Groups`, as [`users_page`]; members are read only when `with_members`.
pub fn groups_page(
    conn: &Connection,
    matches: &[Match],
    offset: usize,
    count: usize,
    with_members: bool,
) -> Result<(usize, Vec<GroupRecord>)> {
    if matches.iter().any(|(c, _)| *c == Column::UserName) {
        return Err(StoreError::BadInput("groups have no userName".into()));
    }
    let (total, ids) = page(conn, "groups", matches, offset, count)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(group(conn, id, with_members)?);
    }
    Ok((total, out))
}

pub fn group(conn: &Connection, id: i64, with_members: bool) -> Result<GroupRecord> {
    let found = conn
        .prepare_cached("SELECT display_name, external_id FROM groups WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((display_name, external_id)) = found else {
        return Err(read::not_found("group", id));
    };
    let mut members = Vec::new();
    if with_members {
        members = member_ids(conn, id)?;
    }
    Ok(GroupRecord {
        id,
        display_name,
        external_id,
        members,
    })
}

/// The ids of a group's members, in join order.
pub fn member_ids(conn: &Connection, group: i64) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT user_id FROM members WHERE group_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([group], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every id must be a user's: an unknown member is the request's mistake (400), not a missing
/// resource (404).
pub fn require_users(conn: &Connection, ids: &[i64]) -> Result<()> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?;
    for id in ids {
        if !stmt.exists([id])? {
            return Err(StoreError::BadInput(format!("no user with id {id}")));
        }
    }
    Ok(())
}

/// SCIM's `userName`: any text of 1–256 characters without control characters.
fn user_name(value: &str) -> Result<String> {
    ops::text("userName", value)
}

fn taken(conn: &Connection, upn: &str, other_than: i64) -> Result<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM users WHERE user_principal_name = ?1 AND id <> ?2")?
        .query_row(params![upn, other_than], |r| r.get(0))
        .optional()?;
    match found {
        Some(_) => Err(StoreError::Conflict(format!(
            "userName `{upn}` is already taken (compared without regard to case)"
        ))),
        None => Ok(()),
    }
}

/// `POST /Users`: [`ops::create_user`] with SCIM's rule for the name, then `active` and
/// `externalId`.
pub fn create_user(tx: &Transaction<'_>, user: &NewUser, account: &Account) -> Result<i64> {
    let upn = user_name(&user.user_principal_name)?;
    taken(tx, &upn, 0)?;
    let id = ops::insert_user(tx, upn, user)?;
    set_account(tx, id, account)?;
    Ok(id)
}

/// What SCIM keeps of a user beside what GraphQL's `updateUser` changes; `None`: unchanged.
#[derive(Default, Debug)]
pub struct Account {
    pub user_name: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
}

/// Changes a user's name, `active` and `externalId`; none of them matters to licensing (a
/// disabled account keeps its licenses, scim.md), so nothing is queued.
pub fn set_account(tx: &Transaction<'_>, id: i64, account: &Account) -> Result<()> {
    ops::require_user(tx, id)?;
    if let Some(name) = &account.user_name {
        let upn = user_name(name)?;
        taken(tx, &upn, id)?;
        tx.execute(
            "UPDATE users SET user_principal_name = ?1 WHERE id = ?2",
            params![upn, id],
        )?;
    }
    if let Some(enabled) = account.enabled {
        tx.execute(
            "UPDATE users SET account_enabled = ?1 WHERE id = ?2",
            params![enabled, id],
        )?;
    }
    if let Some(external) = &account.external_id {
        let external = external
            .as_deref()
            .map(|e| ops::text("externalId", e))
            .transpose()?;
        tx.execute(
            "UPDATE users SET external_id = ?1 WHERE id = ?2",
            params![external, id],
        )?;
    }
    Ok(())
}

fn group_name_taken(conn: &Connection, name: &str, other_than: i64) -> Result<()> {
    let found: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM groups WHERE display_name = ?1 COLLATE NOCASE AND id <> ?2 LIMIT 1",
        )?
        .query_row(params![name, other_than], |r| r.get(0))
        .optional()?;
    match found {
        Some(other) => Err(StoreError::Conflict(format!(
            "a group named `{name}` exists already (id {other}); over SCIM group names are unique"
        ))),
        None => Ok(()),
    }
}

/// `POST /Groups`: [`ops::create_group`] with SCIM's unique name.
pub fn create_group(
    tx: &Transaction<'_>,
    display_name: &str,
    external_id: Option<&str>,
) -> Result<i64> {
    let name = ops::text("displayName", display_name)?;
    group_name_taken(tx, &name, 0)?;
    let id = ops::create_group(tx, &name)?;
    update_group(tx, id, None, Some(external_id))?;
    Ok(id)
}

/// Renames a group (its name still unique over SCIM) or changes its `externalId`; `None`:
/// unchanged, `Some(None)` clears the `externalId`.
pub fn update_group(
    tx: &Transaction<'_>,
    id: i64,
    display_name: Option<&str>,
    external_id: Option<Option<&str>>,
) -> Result<()> {
    ops::require_group(tx, id)?;
    if let Some(name) = display_name {
        let name = ops::text("displayName", name)?;
        group_name_taken(tx, &name, id)?;
        tx.execute(
            "UPDATE groups SET display_name = ?1 WHERE id = ?2",
            params![name, id],
        )?;
    }
    if let Some(external) = external_id {
        let external = external.map(|e| ops::text("externalId", e)).transpose()?;
        tx.execute(
            "UPDATE groups SET external_id = ?1 WHERE id = ?2",
            params![external, id],
        )?;
    }
    Ok(())
}

/// Makes the group's members exactly `wanted` (a SCIM replace): newcomers join in the order
/// given, and both changes go through the mutations' operations, which queue processing (P5).
pub fn set_members(tx: &Transaction<'_>, group: i64, wanted: &[i64], now: &str) -> Result<()> {
    let current = member_ids(tx, group)?;
    let (now_in, keep): (HashSet<i64>, HashSet<i64>) = (
        current.iter().copied().collect(),
        wanted.iter().copied().collect(),
    );
    let gone: Vec<i64> = current.into_iter().filter(|u| !keep.contains(u)).collect();
    let new: Vec<i64> = wanted
        .iter()
        .copied()
        .filter(|u| !now_in.contains(u))
        .collect();
    remove_members(tx, group, &gone, now)?;
    add_members(tx, group, &new, now)
}

/// [`ops::add_group_members`] in lists of at most `ops::MAX_LIST`; nothing for no user.
pub fn add_members(tx: &Transaction<'_>, group: i64, users: &[i64], now: &str) -> Result<()> {
    ops::require_group(tx, group)?;
    require_users(tx, users)?;
    for chunk in users.chunks(ops::MAX_LIST) {
        ops::add_group_members(tx, group, chunk, now)?;
    }
    Ok(())
}

/// [`ops::remove_group_members`] in lists of at most `ops::MAX_LIST`; nothing for no user. A
/// user that no longer exists is no member to remove (a directory may remove a deleted user).
pub fn remove_members(tx: &Transaction<'_>, group: i64, users: &[i64], now: &str) -> Result<()> {
    ops::require_group(tx, group)?;
    let mut exists = tx.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?;
    let mut known = Vec::with_capacity(users.len());
    for user in users {
        if exists.exists([user])? {
            known.push(*user);
        }
    }
    for chunk in known.chunks(ops::MAX_LIST) {
        ops::remove_group_members(tx, group, chunk, now)?;
    }
    Ok(())
}
