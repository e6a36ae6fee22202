//! Mutations, each run inside one write transaction: validate, change, queue the processing it
//! causes (P5), all or nothing.

use std::collections::HashMap;

use rusqlite::{CachedStatement, Connection, OptionalExtension, Transaction, params};

use crate::engine::{
    self, Assignment, AssignmentState, DuplicateProxy, Engine, GroupId, Intent, LicenseSpec,
    SeatCounter, Source, UserId, UserLicenses,
};
use crate::rules::{Country, ProductId, RuleTable};

use super::alerts::COUNT_VIOLATION;
use super::codec::{decode_disabled, decode_error, encode_disabled, encode_error};
use super::history::{AssignmentChange, Shown};
use super::holders::HolderChanges;
use super::sets::{self, ProductRow};
use super::{Result, StoreError};

/// How long a list a mutation takes at once (members, licenses).
pub const MAX_LIST: usize = 1000;
/// Longest name, display name or proxy address accepted.
pub const MAX_TEXT: usize = 256;

// ---- Validation ---------------------------------------------------------------------------------

pub fn parse_country(code: &str) -> Result<Country> {
    Country::parse(code).ok_or_else(|| {
        StoreError::BadInput(format!(
            "`{code}` is not an ISO 3166-1 alpha-2 country code (two capital letters, like US)"
        ))
    })
}

pub(super) fn text(field: &str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(StoreError::BadInput(format!("{field} must not be empty")));
    }
    if trimmed.chars().count() > MAX_TEXT {
        return Err(StoreError::BadInput(format!(
            "{field} is longer than {MAX_TEXT} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(StoreError::BadInput(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(trimmed.to_string())
}

pub(crate) fn list_size(what: &str, len: usize) -> Result<()> {
    if len > MAX_LIST {
        return Err(StoreError::BadInput(format!(
            "at most {MAX_LIST} {what} at once, got {len}"
        )));
    }
    Ok(())
}

/// `name@domain`: one `@` with something on each side (`@`, `a@` or `a@b@c` would pass a
/// mere search for `@`).
fn is_address(text: &str) -> bool {
    text.split_once('@').is_some_and(|(name, domain)| {
        !name.is_empty() && !domain.is_empty() && !domain.contains('@')
    })
}

/// C1 compares addresses after an optional `smtp:` prefix, case-insensitively.
pub fn normalize_proxy(address: &str) -> String {
    let lower = address.trim().to_lowercase();
    lower
        .strip_prefix("smtp:")
        .map(str::to_string)
        .unwrap_or(lower)
}

fn proxy_addresses(addresses: &[String]) -> Result<Vec<(String, String)>> {
    list_size("proxy addresses", addresses.len())?;
    let mut out: Vec<(String, String)> = Vec::with_capacity(addresses.len());
    for address in addresses {
        let address = text("a proxy address", address)?;
        if address.chars().any(char::is_whitespace) {
            return Err(StoreError::BadInput(format!(
                "proxy address `{address}` must not contain spaces"
            )));
        }
        let normalized = normalize_proxy(&address);
        if !is_address(&normalized) {
            return Err(StoreError::BadInput(format!(
                "proxy address `{address}` is not an address (expected e.g. smtp:ann@contoso.com)"
            )));
        }
        if out.iter().any(|(_, n)| *n == normalized) {
            return Err(StoreError::BadInput(format!(
                "proxy address `{address}` is listed twice"
            )));
        }
        out.push((address, normalized));
    }
    Ok(out)
}

pub fn require_user(conn: &Connection, id: i64) -> Result<()> {
    let found: Option<i64> = conn
        .query_row("SELECT id FROM users WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(format!("no user with id {id}")))
}

pub fn require_group(conn: &Connection, id: i64) -> Result<()> {
    let found: Option<i64> = conn
        .query_row("SELECT id FROM groups WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(format!("no group with id {id}")))
}

// ---- Directory and seats -----------------------------------------------------------------------

pub fn default_usage_location(conn: &Connection) -> Result<Country> {
    let code: String = conn.query_row(
        "SELECT default_usage_location FROM directory WHERE id = 1",
        [],
        |r| r.get(0),
    )?;
    Country::parse(&code).ok_or_else(|| StoreError::Corrupt(format!("directory location {code:?}")))
}

pub fn update_directory(
    tx: &Transaction<'_>,
    display_name: Option<&str>,
    default_usage_location: Option<&str>,
) -> Result<()> {
    let name = display_name.map(|n| text("displayName", n)).transpose()?;
    let location = default_usage_location.map(parse_country).transpose()?;
    if let Some(name) = name {
        tx.execute(
            "UPDATE directory SET display_name = ?1 WHERE id = 1",
            [name],
        )?;
    }
    if let Some(location) = location {
        tx.execute(
            "UPDATE directory SET default_usage_location = ?1 WHERE id = 1",
            [location.code()],
        )?;
    }
    Ok(())
}

/// Makes sure every product of the table has a seats row.
pub fn ensure_products(tx: &Transaction<'_>, table: &RuleTable) -> Result<()> {
    let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO products (sku) VALUES (?1)")?;
    for p in table.product_ids() {
        insert.execute([&table.product(p).name])?;
    }
    Ok(())
}

pub fn set_prepaid_units(
    tx: &Transaction<'_>,
    table: &RuleTable,
    sku: &str,
    units: i64,
) -> Result<()> {
    if table.product_by_name(sku).is_none() {
        return Err(StoreError::BadInput(format!("unknown product `{sku}`")));
    }
    if units < 0 {
        return Err(StoreError::BadInput(format!(
            "units must be 0 or more, got {units}"
        )));
    }
    if units > i64::from(u32::MAX) {
        return Err(StoreError::BadInput(format!("units {units} is too large")));
    }
    // L3: lowering below what is consumed takes nothing away.
    tx.execute(
        "INSERT INTO products (sku, prepaid_units) VALUES (?1, ?2)
         ON CONFLICT (sku) DO UPDATE SET prepaid_units = excluded.prepaid_units",
        params![sku, units],
    )?;
    Ok(())
}

pub fn load_seats(conn: &Connection, table: &RuleTable) -> Result<SeatCounter> {
    let mut seats = SeatCounter::new(table.product_count());
    let mut stmt =
        conn.prepare_cached("SELECT sku, prepaid_units, consumed_units FROM products")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (sku, prepaid, consumed) = row?;
        if let Some(p) = table.product_by_name(&sku) {
            seats.set_prepaid(p, u32::try_from(prepaid).unwrap_or(u32::MAX));
            seats.set_consumed(p, u32::try_from(consumed).unwrap_or(u32::MAX));
        }
    }
    seats.clear_deltas();
    Ok(seats)
}

pub fn save_seats(tx: &Transaction<'_>, table: &RuleTable, seats: &mut SeatCounter) -> Result<()> {
    let mut update = tx.prepare_cached(
        "INSERT INTO products (sku, consumed_units) VALUES (?1, max(?2, 0))
         ON CONFLICT (sku) DO UPDATE SET consumed_units = max(consumed_units + ?2, 0)",
    )?;
    for (product, delta) in seats.deltas() {
        if delta != 0 {
            update.execute(params![table.product(product).name, delta])?;
        }
    }
    seats.clear_deltas();
    Ok(())
}

// ---- Users ---------------------------------------------------------------------------------------

pub struct NewUser {
    pub user_principal_name: String,
    pub display_name: String,
    pub usage_location: Option<String>,
    pub proxy_addresses: Vec<String>,
}

pub fn create_user(tx: &Transaction<'_>, user: &NewUser) -> Result<i64> {
    let upn = text("userPrincipalName", &user.user_principal_name)?;
    if upn.chars().any(char::is_whitespace) || !is_address(&upn) {
        return Err(StoreError::BadInput(format!(
            "userPrincipalName `{upn}` is not of the form name@domain"
        )));
    }
    insert_user(tx, upn, user)
}

/// The rest of [`create_user`], for a sign-in name already checked by the caller's rule (SCIM's
/// `userName` is any text: `store::provision`).
pub(super) fn insert_user(tx: &Transaction<'_>, upn: String, user: &NewUser) -> Result<i64> {
    let display_name = text("displayName", &user.display_name)?;
    let location = user
        .usage_location
        .as_deref()
        .map(parse_country)
        .transpose()?;
    let proxies = proxy_addresses(&user.proxy_addresses)?;
    let taken: Option<i64> = tx
        .query_row(
            "SELECT id FROM users WHERE user_principal_name = ?1",
            [&upn],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "userPrincipalName `{upn}` is already taken (compared without regard to case)"
        )));
    }
    let id = next_id(tx, "users", "last_user_id")?;
    tx.execute(
        "INSERT INTO users (id, user_principal_name, display_name, usage_location) VALUES (?1, ?2, ?3, ?4)",
        params![id, upn, display_name, location.map(Country::code)],
    )?;
    write_proxies(tx, id, &proxies)?;
    Ok(id)
}

fn write_proxies(tx: &Transaction<'_>, user: i64, proxies: &[(String, String)]) -> Result<()> {
    tx.execute("DELETE FROM proxy_addresses WHERE user_id = ?1", [user])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO proxy_addresses (user_id, position, address, normalized) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (i, (address, normalized)) in proxies.iter().enumerate() {
        insert.execute(params![user, i as i64, address, normalized])?;
    }
    Ok(())
}

#[derive(Default)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub usage_location: Option<String>,
    pub clear_usage_location: bool,
    pub proxy_addresses: Option<Vec<String>>,
}

/// Changes a user; a new usage location or new proxy addresses process all of the user's group
/// assignments again (P5).
pub fn update_user(tx: &Transaction<'_>, id: i64, update: &UserUpdate, now: &str) -> Result<()> {
    require_user(tx, id)?;
    if update.clear_usage_location && update.usage_location.is_some() {
        return Err(StoreError::BadInput(
            "give either usageLocation or clearUsageLocation, not both".into(),
        ));
    }
    let display_name = update
        .display_name
        .as_deref()
        .map(|n| text("displayName", n))
        .transpose()?;
    let location = update
        .usage_location
        .as_deref()
        .map(parse_country)
        .transpose()?;
    let proxies = update
        .proxy_addresses
        .as_deref()
        .map(proxy_addresses)
        .transpose()?;
    if let Some(name) = display_name {
        tx.execute(
            "UPDATE users SET display_name = ?1 WHERE id = ?2",
            params![name, id],
        )?;
    }
    let old_location: Option<String> = tx.query_row(
        "SELECT usage_location FROM users WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let new_location = if update.clear_usage_location {
        None
    } else {
        location
            .map(|c| c.code().to_string())
            .or(old_location.clone())
    };
    let mut reprocess = false;
    if new_location != old_location {
        tx.execute(
            "UPDATE users SET usage_location = ?1 WHERE id = ?2",
            params![new_location, id],
        )?;
        reprocess = true;
    }
    if let Some(proxies) = proxies {
        let old: Vec<String> = tx
            .prepare_cached(
                "SELECT address FROM proxy_addresses WHERE user_id = ?1 ORDER BY position",
            )?
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let new: Vec<String> = proxies.iter().map(|(a, _)| a.clone()).collect();
        if old != new {
            write_proxies(tx, id, &proxies)?;
            reprocess = true;
        }
    }
    if reprocess && has_group_work(tx, id)? {
        enqueue_user(tx, id, now)?;
    }
    Ok(())
}

/// Whether a user has anything processing could act on: a membership or a group assignment.
fn has_group_work(conn: &Connection, user: i64) -> Result<bool> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM members WHERE user_id = ?1)
                         OR EXISTS (SELECT 1 FROM assignment_sets WHERE user_id = ?1 AND group_id <> 0)",
            [user],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

/// P7: withdraws every assignment with no checks and frees the seats; returns the assignments
/// withdrawn.
pub fn delete_user(
    tx: &Transaction<'_>,
    table: &RuleTable,
    id: i64,
) -> Result<Vec<AssignmentChange<'static>>> {
    require_user(tx, id)?;
    let mut changes = Vec::new();
    let mut seats = load_seats(tx, table)?;
    let mut loaded = load_users(tx, table, &[id])?;
    if let Some(user) = loaded.first_mut() {
        engine::delete_user(&mut user.licenses, &mut seats);
        // Deletes the sets, clears the user's holder bits and takes the user out of the error
        // counts.
        let now = super::now();
        let mut writer = Writer::new(tx, table, &now)?;
        changes = writer
            .write(user)?
            .into_iter()
            .map(AssignmentChange::into_owned)
            .collect();
        writer.finish()?;
    }
    save_seats(tx, table, &mut seats)?;
    tx.execute(
        "UPDATE groups SET member_count = member_count - 1
          WHERE id IN (SELECT group_id FROM members WHERE user_id = ?1)",
        [id],
    )?;
    tx.execute("DELETE FROM work WHERE user_id = ?1", [id])?;
    tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
    Ok(changes)
}

// ---- Groups ---------------------------------------------------------------------------------------

pub fn create_group(tx: &Transaction<'_>, display_name: &str) -> Result<i64> {
    let name = text("displayName", display_name)?;
    let id = next_id(tx, "groups", "last_group_id")?;
    tx.execute(
        "INSERT INTO groups (id, display_name) VALUES (?1, ?2)",
        params![id, name],
    )?;
    Ok(id)
}

/// A new id for `table`, above every id it ever gave: a deleted user's or group's id never
/// comes to name another. Rows written without the counter (`generate`) count through
/// `max(id)`.
fn next_id(tx: &Transaction<'_>, table: &str, counter: &str) -> Result<i64> {
    // Both names are this module's constants, never input.
    Ok(tx.query_row(
        &format!(
            "UPDATE directory SET {counter} = max({counter}, (SELECT coalesce(max(id), 0) FROM {table})) + 1
              WHERE id = 1 RETURNING {counter}"
        ),
        [],
        |r| r.get(0),
    )?)
}

/// G4: a group with licenses, or with assignments still being withdrawn, cannot be deleted.
pub fn delete_group(tx: &Transaction<'_>, id: i64) -> Result<()> {
    require_group(tx, id)?;
    let licenses: i64 = tx.query_row(
        "SELECT count(*) FROM group_licenses WHERE group_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if licenses > 0 {
        return Err(StoreError::GroupHasLicenses(""));
    }
    // With no license left, the group's assignments are either being withdrawn (work queued) or
    // blocked (in error, P3); none other can remain once processing is done.
    let withdrawing: bool = tx
        .prepare_cached(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM work WHERE group_id = ?1)
                         OR EXISTS (SELECT 1 FROM assignment_errors WHERE group_id = ?1)",
        )?
        .exists([id])?;
    if withdrawing {
        return Err(StoreError::GroupHasLicenses(
            " being withdrawn from its members",
        ));
    }
    tx.execute("DELETE FROM work WHERE group_id = ?1", [id])?;
    tx.execute("DELETE FROM group_errors WHERE group_id = ?1", [id])?;
    tx.execute("DELETE FROM groups WHERE id = ?1", [id])?;
    Ok(())
}

pub(crate) fn distinct_ids(what: &str, ids: &[i64]) -> Result<Vec<i64>> {
    if ids.is_empty() {
        return Err(StoreError::BadInput(format!("the list of {what} is empty")));
    }
    list_size(what, ids.len())?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    Ok(out)
}

fn group_has_licenses(conn: &Connection, group: i64) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM group_licenses WHERE group_id = ?1",
        [group],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// The users of a membership change, each once, in the order given: the group and every user
/// must exist.
fn member_list(conn: &Connection, group: i64, users: &[i64]) -> Result<Vec<i64>> {
    require_group(conn, group)?;
    let users = distinct_ids("users", users)?;
    for user in &users {
        require_user(conn, *user)?;
    }
    Ok(users)
}

/// Who `addGroupMembers` would add: the users not yet members, in the order given (their join
/// order, P1), each with whether it is queued for processing (P5). Refuses what the mutation
/// refuses; previews (W3) ask the same.
pub fn members_to_add(conn: &Connection, group: i64, users: &[i64]) -> Result<Vec<(i64, bool)>> {
    let users = member_list(conn, group, users)?;
    let licensed = group_has_licenses(conn, group)?;
    let mut member =
        conn.prepare_cached("SELECT 1 FROM members WHERE group_id = ?1 AND user_id = ?2")?;
    // A former member may come back with a withdrawal from the group still blocked (P3), even
    // once the group has no license left: processing it again retries the withdrawal.
    let mut rows =
        conn.prepare_cached("SELECT 1 FROM assignment_sets WHERE group_id = ?1 AND user_id = ?2")?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        if !member.exists(params![group, user])? {
            out.push((user, licensed || rows.exists(params![group, user])?));
        }
    }
    Ok(out)
}

/// Who `removeGroupMembers` would remove: the users that are members, each with whether it has
/// assignments from the group to withdraw (and so is queued, P3, P5).
pub fn members_to_remove(conn: &Connection, group: i64, users: &[i64]) -> Result<Vec<(i64, bool)>> {
    let users = member_list(conn, group, users)?;
    let mut member =
        conn.prepare_cached("SELECT 1 FROM members WHERE group_id = ?1 AND user_id = ?2")?;
    let mut rows =
        conn.prepare_cached("SELECT 1 FROM assignment_sets WHERE group_id = ?1 AND user_id = ?2")?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        if member.exists(params![group, user])? {
            out.push((user, rows.exists(params![group, user])?));
        }
    }
    Ok(out)
}

/// Adds users in the order given (their join order, P1) and queues their processing (P5).
/// Users already members keep their place.
pub fn add_group_members(tx: &Transaction<'_>, group: i64, users: &[i64], now: &str) -> Result<()> {
    let joining = members_to_add(tx, group, users)?;
    let mut seq: i64 = tx.query_row("SELECT next_seq FROM groups WHERE id = ?1", [group], |r| {
        r.get(0)
    })?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO members (group_id, user_id, seq, joined_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (user, queued) in &joining {
        insert.execute(params![group, user, seq, now])?;
        seq += 1;
        if *queued {
            enqueue_member(tx, group, *user, now)?;
        }
    }
    tx.execute(
        "UPDATE groups SET next_seq = ?1, member_count = member_count + ?2 WHERE id = ?3",
        params![seq, joining.len() as i64, group],
    )?;
    Ok(())
}

/// Removes members; their assignments from the group are withdrawn by processing (P3, P5).
pub fn remove_group_members(
    tx: &Transaction<'_>,
    group: i64,
    users: &[i64],
    now: &str,
) -> Result<()> {
    let leaving = members_to_remove(tx, group, users)?;
    let mut delete =
        tx.prepare_cached("DELETE FROM members WHERE group_id = ?1 AND user_id = ?2")?;
    for (user, queued) in &leaving {
        delete.execute(params![group, user])?;
        if *queued {
            enqueue_member(tx, group, *user, now)?;
        }
    }
    tx.execute(
        "UPDATE groups SET member_count = member_count - ?1 WHERE id = ?2",
        params![leaving.len() as i64, group],
    )?;
    Ok(())
}

pub fn group_licenses(
    conn: &Connection,
    table: &RuleTable,
    group: i64,
) -> Result<Vec<LicenseSpec>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sku, disabled_plans FROM group_licenses WHERE group_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([group], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (sku, disabled) = row?;
        let product = table
            .product_by_name(&sku)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown product `{sku}`")))?;
        out.push(LicenseSpec {
            product,
            disabled: decode_disabled(table, &disabled)?,
        });
    }
    Ok(out)
}

/// A license as the API receives it: `skuPartNumber` and the names of the plans to disable.
pub type LicenseInput = (String, Vec<String>);

fn check_license_lists(add: &[LicenseInput], remove: &[String]) -> Result<()> {
    if add.is_empty() && remove.is_empty() {
        return Err(StoreError::BadInput(
            "nothing to do: addLicenses and removeLicenses are both empty".into(),
        ));
    }
    list_size("licenses", add.len() + remove.len())?;
    Ok(())
}

/// G1, G3: the group's license set now and as `assignGroupLicense` would make it, or the
/// mutation's refusal; previews (W3) ask the same.
pub fn group_license_change(
    conn: &Connection,
    table: &RuleTable,
    group: i64,
    add: &[LicenseInput],
    remove: &[String],
) -> Result<(Vec<LicenseSpec>, Vec<LicenseSpec>)> {
    require_group(conn, group)?;
    check_license_lists(add, remove)?;
    let change = engine::resolve_change(table, add, remove)
        .map_err(|e| StoreError::GroupLicense(e.into()))?;
    let current = group_licenses(conn, table, group)?;
    let new = engine::change_group_licenses(table, GroupId(group), &current, &change)?;
    Ok((current, new))
}

/// G1–G3: validates the group's new license set, stores it and queues every member (G2).
pub fn assign_group_license(
    tx: &Transaction<'_>,
    table: &RuleTable,
    group: i64,
    add: &[LicenseInput],
    remove: &[String],
    now: &str,
) -> Result<()> {
    let (current, new) = group_license_change(tx, table, group, add, remove)?;
    let old_times: HashMap<String, String> = tx
        .prepare_cached("SELECT sku, updated_at FROM group_licenses WHERE group_id = ?1")?
        .query_map([group], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    tx.execute("DELETE FROM group_licenses WHERE group_id = ?1", [group])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO group_licenses (group_id, sku, disabled_plans, position, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (position, spec) in new.iter().enumerate() {
        let sku = &table.product(spec.product).name;
        // A product whose configuration did not change keeps its time.
        let unchanged = current.iter().any(|c| c == spec);
        let updated_at = match old_times.get(sku) {
            Some(old) if unchanged => old.as_str(),
            _ => now,
        };
        insert.execute(params![
            group,
            sku,
            encode_disabled(table, &spec.disabled),
            position as i64,
            updated_at
        ])?;
    }
    enqueue_group(tx, group, now)?;
    Ok(())
}

pub fn reprocess_group(tx: &Transaction<'_>, group: i64, now: &str) -> Result<()> {
    require_group(tx, group)?;
    enqueue_group(tx, group, now)
}

pub fn reprocess_user(tx: &Transaction<'_>, user: i64, now: &str) -> Result<()> {
    require_user(tx, user)?;
    enqueue_user(tx, user, now)
}

// ---- Direct assignment (D1–D5) ----------------------------------------------------------------

/// D1: the change `assignLicense` was asked for, with its names resolved, or the mutation's
/// refusal; previews (W3) ask the same.
pub fn direct_change(
    conn: &Connection,
    table: &RuleTable,
    user: i64,
    add: &[LicenseInput],
    remove: &[String],
) -> Result<engine::LicenseChange> {
    require_user(conn, user)?;
    check_license_lists(add, remove)?;
    engine::resolve_change(table, add, remove).map_err(|e| StoreError::Direct(e.into()))
}

/// D1–D5: checked and applied at once; on error nothing changes. Returns what changed.
pub fn assign_license(
    tx: &Transaction<'_>,
    table: &RuleTable,
    user: i64,
    add: &[LicenseInput],
    remove: &[String],
    now: &str,
) -> Result<Vec<AssignmentChange<'static>>> {
    let change = direct_change(tx, table, user, add, remove)?;
    let default = default_usage_location(tx)?;
    let mut seats = load_seats(tx, table)?;
    let mut loaded = load_users(tx, table, &[user])?;
    let Some(target) = loaded.first_mut() else {
        return Err(StoreError::NotFound(format!("no user with id {user}")));
    };
    Engine::new(table, default).assign_direct(&mut target.licenses, &change, &mut seats)?;
    let mut writer = Writer::new(tx, table, now)?;
    let changes = writer
        .write(target)?
        .into_iter()
        .map(AssignmentChange::into_owned)
        .collect();
    writer.finish()?;
    save_seats(tx, table, &mut seats)?;
    Ok(changes)
}

// ---- Work queue (P5, P8, P9) -----------------------------------------------------------------

fn reset_progress_if_idle(tx: &Transaction<'_>, group: i64) -> Result<()> {
    let pending: bool = tx
        .prepare_cached("SELECT 1 FROM work WHERE group_id = ?1 LIMIT 1")?
        .exists([group])?;
    if !pending {
        tx.execute(
            "UPDATE groups SET processed_members = 0, members_to_process = 0 WHERE id = ?1",
            [group],
        )?;
    }
    Ok(())
}

/// Queues every member of the group; a group-wide run that has not started yet already covers
/// this one.
pub fn enqueue_group(tx: &Transaction<'_>, group: i64, now: &str) -> Result<()> {
    let waiting: bool = tx
        .prepare_cached(
            "SELECT 1 FROM work WHERE group_id = ?1 AND user_id IS NULL AND started = 0 LIMIT 1",
        )?
        .exists([group])?;
    if waiting {
        return Ok(());
    }
    reset_progress_if_idle(tx, group)?;
    let members: i64 = tx.query_row(
        "SELECT member_count FROM groups WHERE id = ?1",
        [group],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE groups SET members_to_process = members_to_process + ?1 WHERE id = ?2",
        params![members, group],
    )?;
    tx.execute(
        "INSERT INTO work (group_id, created_at) VALUES (?1, ?2)",
        params![group, now],
    )?;
    Ok(())
}

fn enqueue_member(tx: &Transaction<'_>, group: i64, user: i64, now: &str) -> Result<()> {
    reset_progress_if_idle(tx, group)?;
    tx.execute(
        "UPDATE groups SET members_to_process = members_to_process + 1 WHERE id = ?1",
        [group],
    )?;
    tx.execute(
        "INSERT INTO work (group_id, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![group, user, now],
    )?;
    Ok(())
}

fn enqueue_user(tx: &Transaction<'_>, user: i64, now: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO work (user_id, created_at) VALUES (?1, ?2)",
        params![user, now],
    )?;
    Ok(())
}

// ---- Loading and saving a user's licenses ----------------------------------------------------

/// A user's licenses as the engine sees them, with the sets they were read from.
pub struct LoadedUser {
    pub licenses: UserLicenses,
    /// The sign-in name, for the history's targets.
    pub principal_name: String,
    /// `(group (0: direct), products)` as stored, by group: the reference for what changed.
    sets: Vec<(i64, Vec<ProductRow>)>,
}

fn state_from(name: &str) -> Result<AssignmentState> {
    Ok(match name {
        "PENDING" => AssignmentState::Pending,
        "ACTIVE" => AssignmentState::Active,
        "ACTIVE_WITH_ERROR" => AssignmentState::ActiveWithError,
        "ERROR" => AssignmentState::Error,
        other => return Err(StoreError::Corrupt(format!("assignment state {other:?}"))),
    })
}

/// Loads the users `ids` (in that order; unknown ids are left out) with every assignment
/// they have, from every source. Group assignments get their applied configuration as intent:
/// the caller sets the intent of the group it processes.
pub fn load_users(conn: &Connection, table: &RuleTable, ids: &[i64]) -> Result<Vec<LoadedUser>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (sorted, selection) = sets::select(ids);
    let mut users: HashMap<i64, LoadedUser> = HashMap::with_capacity(sorted.len());
    selection.query(
        conn,
        "SELECT u.id, u.usage_location, u.user_principal_name FROM json_each(?1) j JOIN users u ON u.id = j.value",
        "SELECT id, usage_location, user_principal_name FROM users WHERE id BETWEEN ?1 AND ?2",
        |r| {
            let id: i64 = r.get(0)?;
            if sorted.binary_search(&id).is_err() {
                return Ok(());
            }
            let location = r
                .get::<_, Option<String>>(1)?
                .map(|c| {
                    Country::parse(&c)
                        .ok_or_else(|| StoreError::Corrupt(format!("usage location {c:?}")))
                })
                .transpose()?;
            users.insert(
                id,
                LoadedUser {
                    licenses: UserLicenses::new(UserId(id), location),
                    principal_name: r.get(2)?,
                    sets: Vec::new(),
                },
            );
            Ok(())
        },
    )?;
    // C1: the first of the user's addresses that another user also has.
    selection.query(
        conn,
        "SELECT p.user_id, p.address, min(q.user_id)
           FROM json_each(?1) j JOIN proxy_addresses p ON p.user_id = j.value
           JOIN proxy_addresses q ON q.normalized = p.normalized AND q.user_id <> p.user_id
          GROUP BY p.user_id, p.position ORDER BY p.user_id, p.position",
        "SELECT p.user_id, p.address, min(q.user_id)
           FROM proxy_addresses p
           JOIN proxy_addresses q ON q.normalized = p.normalized AND q.user_id <> p.user_id
          WHERE p.user_id BETWEEN ?1 AND ?2
          GROUP BY p.user_id, p.position ORDER BY p.user_id, p.position",
        |r| {
            if let Some(user) = users.get_mut(&r.get::<_, i64>(0)?)
                && user.licenses.duplicate_proxy.is_none()
            {
                user.licenses.duplicate_proxy = Some(DuplicateProxy {
                    address: r.get(1)?,
                    other_user: UserId(r.get(2)?),
                });
            }
            Ok(())
        },
    )?;
    for (user_id, group_id, products) in sets::load_selected(conn, &sorted, &selection)? {
        let Some(user) = users.get_mut(&user_id) else {
            continue;
        };
        let source = if group_id == 0 {
            Source::Direct
        } else {
            Source::Group(GroupId(group_id))
        };
        for row in &products {
            let product = table
                .product_by_name(&row.sku)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown product `{}`", row.sku)))?;
            let applied = row
                .applied
                .as_deref()
                .map(|j| decode_disabled(table, j))
                .transpose()?;
            let error = row
                .error
                .as_deref()
                .map(|j| decode_error(table, j))
                .transpose()?;
            user.licenses.assignments.push(Assignment {
                product,
                source,
                intent: Intent::Assign(applied.clone().unwrap_or_default()),
                applied,
                state: state_from(&row.state)?,
                error,
            });
        }
        user.sets.push((group_id, products));
    }
    Ok(ids.iter().filter_map(|id| users.remove(id)).collect())
}

/// Writes back what changed in users' assignments, for one transaction: the statements are
/// prepared once for the many users of a processing step, and holder bits and error counts
/// gather until [`Writer::finish`].
pub struct Writer<'t> {
    tx: &'t Transaction<'t>,
    table: &'t RuleTable,
    now: &'t str,
    upsert: CachedStatement<'t>,
    delete: CachedStatement<'t>,
    add_error: CachedStatement<'t>,
    remove_error: CachedStatement<'t>,
    holders: HolderChanges,
    /// Change in users in error per group and code ('' for any code).
    error_counts: HashMap<(i64, &'static str), i64>,
    /// Change in assignments in COUNT_VIOLATION per product (N1's SEATS_EXHAUSTED).
    violations: HashMap<String, i64>,
}

/// One product of a set about to be written: its text borrowed from the rule table and the
/// engine's values where it can be (an empty configuration, the most common, is `[]`).
struct NewProduct<'a> {
    sku: &'a str,
    applied: Option<std::borrow::Cow<'a, str>>,
    state: &'static str,
    error_code: Option<&'static str>,
    error: Option<String>,
    updated_at: &'a str,
}

impl NewProduct<'_> {
    fn fields(&self) -> sets::Fields<'_> {
        sets::Fields {
            sku: self.sku,
            applied: self.applied.as_deref(),
            state: self.state,
            error_code: self.error_code,
            error: self.error.as_deref(),
            updated_at: self.updated_at,
        }
    }
}

impl<'t> Writer<'t> {
    pub fn new(tx: &'t Transaction<'t>, table: &'t RuleTable, now: &'t str) -> Result<Self> {
        Ok(Writer {
            tx,
            table,
            now,
            upsert: tx.prepare_cached(
                "INSERT INTO assignment_sets (user_id, group_id, products) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id, group_id) DO UPDATE SET products = excluded.products",
            )?,
            delete: tx.prepare_cached(
                "DELETE FROM assignment_sets WHERE user_id = ?1 AND group_id = ?2",
            )?,
            add_error: tx.prepare_cached(
                "INSERT OR IGNORE INTO assignment_errors (group_id, user_id, error_code) VALUES (?1, ?2, ?3)",
            )?,
            remove_error: tx.prepare_cached(
                "DELETE FROM assignment_errors WHERE group_id = ?1 AND user_id = ?2 AND error_code = ?3",
            )?,
            holders: HolderChanges::default(),
            error_counts: HashMap::new(),
            violations: HashMap::new(),
        })
    }

    /// Writes back what changed in `user`'s assignments (once per load: the sets it was read
    /// from are the reference). A set that changed is written whole; its new and changed
    /// products get the writer's `now` as their `lastUpdatedDateTime`, unchanged ones keep
    /// theirs; a set left empty is deleted. Returns what changed, for the history (H4).
    pub fn write<'u>(&mut self, user: &'u LoadedUser) -> Result<Vec<AssignmentChange<'u>>>
    where
        't: 'u,
    {
        let table = self.table;
        let id = user.licenses.id.0;
        let mut after: Vec<(i64, Vec<NewProduct<'_>>)> = Vec::new();
        for a in &user.licenses.assignments {
            let group = a.source.group().map_or(0, |g| g.0);
            let product = NewProduct {
                sku: &table.product(a.product).name,
                applied: a.applied.as_ref().map(|d| {
                    if d.is_empty() {
                        "[]".into()
                    } else {
                        encode_disabled(table, d).into()
                    }
                }),
                state: a.state.graphql_name(),
                error_code: a.error.as_ref().map(|e| e.code().graphql_name()),
                error: a.error.as_ref().map(|e| encode_error(table, e)),
                updated_at: self.now,
            };
            match after.iter_mut().find(|(g, _)| *g == group) {
                Some((_, products)) => products.push(product),
                None => after.push((group, vec![product])),
            }
        }
        let before = |group: i64| {
            user.sets
                .iter()
                .find(|(g, _)| *g == group)
                .map_or(&[][..], |(_, rows)| rows.as_slice())
        };
        for (group, products) in &mut after {
            products.sort_by(|a, b| a.sku.cmp(b.sku));
            let old = before(*group);
            for product in products.iter_mut() {
                if let Some(kept) = old
                    .iter()
                    .find(|o| o.fields().same_content(&product.fields()))
                {
                    product.updated_at = &kept.updated_at;
                }
            }
        }
        let changes = assignment_changes(&user.sets, &after)?;
        for (group, products) in &after {
            let old = before(*group);
            let unchanged = old.len() == products.len()
                && old
                    .iter()
                    .zip(products)
                    .all(|(o, p)| o.fields() == p.fields());
            if !unchanged {
                let text = sets::encode(products.iter().map(NewProduct::fields));
                self.upsert.execute(params![id, group, text])?;
            }
        }
        for (group, _) in &user.sets {
            if !after.iter().any(|(g, _)| g == group) {
                self.delete.execute(params![id, group])?;
            }
        }
        // L1: a user holds a product when any source's configuration of it is applied.
        let held_before = |sku: &str| {
            user.sets
                .iter()
                .flat_map(|(_, rows)| rows)
                .any(|r| r.sku == sku && r.applied.is_some())
        };
        let held_after = |sku: &str| {
            after
                .iter()
                .flat_map(|(_, products)| products)
                .any(|p| p.sku == sku && p.applied.is_some())
        };
        let skus = user
            .sets
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|r| r.sku.as_str()))
            .chain(
                after
                    .iter()
                    .flat_map(|(_, products)| products.iter().map(|p| p.sku)),
            );
        for sku in skus {
            let (was, is) = (held_before(sku), held_after(sku));
            if was != is {
                self.holders.set(sku, id, is);
            }
        }
        for (_, rows) in &user.sets {
            for r in rows
                .iter()
                .filter(|r| r.error_code.as_deref() == Some(COUNT_VIOLATION))
            {
                *self.violations.entry(r.sku.clone()).or_default() -= 1;
            }
        }
        for (_, products) in &after {
            for p in products
                .iter()
                .filter(|p| p.error_code == Some(COUNT_VIOLATION))
            {
                *self.violations.entry(p.sku.to_string()).or_default() += 1;
            }
        }
        // Users in error per group and code: the user counts once per group and code, whatever
        // the number of products.
        let mut before_errors: Vec<(i64, &'static str)> = Vec::new();
        for (group, rows) in &user.sets {
            for code in rows.iter().filter_map(|r| r.error_code.as_deref()) {
                before_errors.push((*group, error_code_name(code)?));
            }
        }
        let mut after_errors: Vec<(i64, &'static str)> = Vec::new();
        for (group, products) in &after {
            after_errors.extend(
                products
                    .iter()
                    .filter_map(|p| p.error_code.map(|c| (*group, c))),
            );
        }
        if !(before_errors.is_empty() && after_errors.is_empty()) {
            self.count_errors(id, before_errors, after_errors)?;
        }
        Ok(changes)
    }

    /// Keeps `assignment_errors` (a row per group and code the user is in error with) in step
    /// with one user's sets, and gathers the change of `group_errors`.
    fn count_errors(
        &mut self,
        user: i64,
        before: Vec<(i64, &'static str)>,
        after: Vec<(i64, &'static str)>,
    ) -> Result<()> {
        let pairs = |mut list: Vec<(i64, &'static str)>| {
            let groups: Vec<(i64, &'static str)> = list.iter().map(|(g, _)| (*g, "")).collect();
            list.extend(groups);
            list.sort_unstable();
            list.dedup();
            list
        };
        let (before, after) = (pairs(before), pairs(after));
        for pair in before.iter().filter(|p| !after.contains(p)) {
            *self.error_counts.entry(*pair).or_default() -= 1;
            if !pair.1.is_empty() {
                self.remove_error.execute(params![pair.0, user, pair.1])?;
            }
        }
        for pair in after.iter().filter(|p| !before.contains(p)) {
            *self.error_counts.entry(*pair).or_default() += 1;
            if !pair.1.is_empty() {
                self.add_error.execute(params![pair.0, user, pair.1])?;
            }
        }
        Ok(())
    }

    /// Writes the holder bits and error counts gathered; the transaction must not end before.
    pub fn finish(mut self) -> Result<()> {
        self.holders.flush(self.tx)?;
        let mut change = self.tx.prepare_cached(
            "INSERT INTO group_errors (group_id, error_code, users) VALUES (?1, ?2, max(?3, 0))
             ON CONFLICT (group_id, error_code) DO UPDATE SET users = max(users + ?3, 0)",
        )?;
        for ((group, code), delta) in self.error_counts.drain() {
            if delta != 0 {
                change.execute(params![group, code, delta])?;
            }
        }
        let mut violations = self.tx.prepare_cached(
            "INSERT INTO products (sku, seat_violations) VALUES (?1, max(?2, 0))
             ON CONFLICT (sku) DO UPDATE SET seat_violations = max(seat_violations + ?2, 0)",
        )?;
        for (sku, delta) in self.violations.drain() {
            if delta != 0 {
                violations.execute(params![sku, delta])?;
            }
        }
        Ok(())
    }
}

/// The assignments that differ between the stored sets and the new ones, in the order of the
/// new ones (then the removed ones).
fn assignment_changes<'a>(
    before: &'a [(i64, Vec<ProductRow>)],
    after: &[(i64, Vec<NewProduct<'a>>)],
) -> Result<Vec<AssignmentChange<'a>>> {
    let old_of = |group: i64, sku: &str| {
        before
            .iter()
            .filter(|(g, _)| *g == group)
            .flat_map(|(_, rows)| rows)
            .find(|r| r.sku == sku)
    };
    let shown_before = |o: &ProductRow| -> Result<Shown> {
        Ok(Shown {
            state: state_from(&o.state)?.graphql_name(),
            code: o.error_code.as_deref().map(error_code_name).transpose()?,
            off: Shown::plans_off(o.applied.as_deref()),
        })
    };
    let mut out = Vec::new();
    for (group, products) in after {
        for p in products {
            let old = old_of(*group, p.sku);
            let same = old.is_some_and(|o| {
                o.state == p.state
                    && o.error_code.as_deref() == p.error_code
                    && o.applied.as_deref() == p.applied.as_deref()
            });
            if !same {
                out.push(AssignmentChange {
                    sku: std::borrow::Cow::Borrowed(p.sku),
                    group: *group,
                    old: old.map(shown_before).transpose()?,
                    new: Some(Shown {
                        state: p.state,
                        code: p.error_code,
                        off: Shown::plans_off(p.applied.as_deref()),
                    }),
                });
            }
        }
    }
    for (group, rows) in before {
        for o in rows {
            let kept = after
                .iter()
                .any(|(g, products)| g == group && products.iter().any(|p| p.sku == o.sku));
            if !kept {
                out.push(AssignmentChange {
                    sku: std::borrow::Cow::Borrowed(o.sku.as_str()),
                    group: *group,
                    old: Some(shown_before(o)?),
                    new: None,
                });
            }
        }
    }
    Ok(out)
}

/// The code's name as the engine spells it, for a code read back from a stored set.
fn error_code_name(code: &str) -> Result<&'static str> {
    engine::ErrorCode::ALL
        .iter()
        .map(|c| c.graphql_name())
        .find(|name| *name == code)
        .ok_or_else(|| StoreError::Corrupt(format!("error code {code:?}")))
}

/// The groups a user is a member of, in the order the user joined them.
pub fn memberships(conn: &Connection, user: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT group_id FROM members WHERE user_id = ?1 ORDER BY joined_at, group_id",
    )?;
    let rows = stmt.query_map([user], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Products that no rule table may drop while something refers to them, and the plans named in
/// stored configurations and errors.
pub fn names_in_use(conn: &Connection) -> Result<(Vec<String>, Vec<String>)> {
    let mut products: Vec<String> = conn
        .prepare(
            "SELECT sku FROM products WHERE prepaid_units > 0 OR consumed_units > 0
             UNION SELECT sku FROM group_licenses UNION SELECT DISTINCT sku FROM holders",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut plans: Vec<String> = Vec::new();
    fn add_json(plans: &mut Vec<String>, json: &str) {
        if let Ok(names) = serde_json::from_str::<Vec<String>>(json) {
            plans.extend(names);
        }
    }
    for json in conn
        .prepare("SELECT DISTINCT disabled_plans FROM group_licenses")?
        .query_map([], |r| r.get::<_, String>(0))?
    {
        add_json(&mut plans, &json?);
    }
    // Every stored set is read: a product can be named by a set that holds nothing (never
    // applied, in error), and errors name plans and products of their own. Sets written in the
    // same step are mostly the same text, so each distinct text is decoded once.
    let mut seen = std::collections::HashSet::new();
    let mut stmt = conn.prepare("SELECT products FROM assignment_sets")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let text: String = r.get(0)?;
        if seen.contains(&text) {
            continue;
        }
        for row in sets::decode(&text)? {
            if let Some(applied) = &row.applied {
                add_json(&mut plans, applied);
            }
            if let Some(error) = &row.error {
                let (p, q) = super::codec::error_names(error);
                plans.extend(p);
                products.extend(q);
            }
            products.push(row.sku);
        }
        seen.insert(text);
    }
    plans.sort();
    plans.dedup();
    products.sort();
    products.dedup();
    Ok((products, plans))
}

/// For the API: a product id by name, or `BAD_USER_INPUT`.
pub fn product_id(table: &RuleTable, sku: &str) -> Result<ProductId> {
    table
        .product_by_name(sku)
        .ok_or_else(|| StoreError::BadInput(format!("unknown product `{sku}`")))
}
