//! M2, M3: direct licenses that the user's groups already cover (the engine's
//! `redundant::covering_groups` decides), listed in user order and removed on request, checked
//! again in the transaction that removes them.
//!
//! Only users with a direct set and at least one group set are looked at: the `direct_sets`
//! index walks the first in id order, and the sets' primary key finds the second.

use rusqlite::{Connection, Transaction, params};

use crate::engine::redundant::{NotRedundant, covering_groups, redundant_direct};
use crate::engine::{Engine, GroupId, LicenseChange};
use crate::rules::{ProductId, RuleTable};

use super::history::{Activity, Journal};
use super::ops::{
    self, Writer, default_usage_location, load_seats, load_users, product_id, require_user,
    save_seats,
};
use super::{Result, StoreError, audited};

/// One redundant direct license.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redundant {
    pub user: i64,
    pub product: ProductId,
    pub groups: Vec<GroupId>,
}

impl Redundant {
    /// Its place in the list: by user id, then by product (a cursor's key).
    pub fn key(&self) -> i64 {
        key(self.user, self.product)
    }
}

fn key(user: i64, product: ProductId) -> i64 {
    (user << 16) | product.index() as i64
}

/// Users read at a time while walking the list.
const BATCH: usize = 500;

/// Walks the redundant direct licenses (of `product`, or all) whose key is above `after`, in
/// order, until `each` returns false.
fn walk(
    conn: &Connection,
    table: &RuleTable,
    after: i64,
    product: Option<ProductId>,
    mut each: impl FnMut(Redundant) -> bool,
) -> Result<()> {
    let mut from = (after >> 16).max(0);
    let mut stmt = conn.prepare_cached(
        "SELECT d.user_id FROM assignment_sets d
          WHERE d.group_id = 0 AND d.user_id >= ?1
            AND EXISTS (SELECT 1 FROM assignment_sets g WHERE g.user_id = d.user_id AND g.group_id > 0)
          ORDER BY d.user_id LIMIT ?2",
    )?;
    loop {
        let ids: Vec<i64> = stmt
            .query_map(params![from, BATCH as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let Some(&last) = ids.last() else {
            return Ok(());
        };
        for user in load_users(conn, table, &ids)? {
            let mut found = redundant_direct(table, &user.licenses);
            found.sort_by_key(|(p, _)| p.index());
            for (p, groups) in found {
                let item = Redundant {
                    user: user.licenses.id.0,
                    product: p,
                    groups,
                };
                if item.key() <= after || product.is_some_and(|wanted| wanted != p) {
                    continue;
                }
                if !each(item) {
                    return Ok(());
                }
            }
        }
        if ids.len() < BATCH {
            return Ok(());
        }
        from = last + 1;
    }
}

/// M2: up to `first` redundant direct licenses after the cursor key `after`, and whether more
/// follow.
pub fn page(
    conn: &Connection,
    table: &RuleTable,
    after: i64,
    first: usize,
    product: Option<ProductId>,
) -> Result<(Vec<Redundant>, bool)> {
    let mut out = Vec::with_capacity(first.min(1000));
    let mut more = false;
    walk(conn, table, after, product, |item| {
        if out.len() == first {
            more = true;
            return false;
        }
        out.push(item);
        true
    })?;
    Ok((out, more))
}

/// M2: how many there are.
pub fn count(conn: &Connection, table: &RuleTable, product: Option<ProductId>) -> Result<i64> {
    let mut n = 0;
    walk(conn, table, -1, product, |_| {
        n += 1;
        true
    })?;
    Ok(n)
}

/// What `removeRedundantDirectLicenses` did.
#[derive(Debug, Default)]
pub struct Cleanup {
    pub removed: Vec<Redundant>,
    pub skipped: Vec<(i64, ProductId, NotRedundant)>,
}

/// M3: removes the listed users' direct licenses (of `skus`, or all of them) that are redundant
/// now, in this transaction; the others are left and returned with the reason.
pub fn remove(
    tx: &Transaction<'_>,
    table: &RuleTable,
    journal: &mut Journal<'_>,
    users: &[i64],
    skus: Option<&[String]>,
    now: &str,
) -> Result<Cleanup> {
    let users = ops::distinct_ids("users", users)?;
    for user in &users {
        require_user(tx, *user)?;
    }
    let products = match skus {
        Some(list) => {
            if list.is_empty() {
                return Err(StoreError::BadInput(
                    "skuPartNumbers is empty: leave it out to take every product".into(),
                ));
            }
            ops::list_size("products", list.len())?;
            let mut ids = Vec::with_capacity(list.len());
            for sku in list {
                let p = product_id(table, sku)?;
                if !ids.contains(&p) {
                    ids.push(p);
                }
            }
            Some(ids)
        }
        None => None,
    };
    let engine = Engine::new(table, default_usage_location(tx)?);
    let mut seats = load_seats(tx, table)?;
    let mut writer = Writer::new(tx, table, now)?;
    let mut out = Cleanup::default();
    for mut user in load_users(tx, table, &users)? {
        let id = user.licenses.id.0;
        let candidates: Vec<ProductId> = match &products {
            Some(list) => list.clone(),
            None => user
                .licenses
                .assignments_from(crate::engine::Source::Direct)
                .map(|a| a.product)
                .collect(),
        };
        let mut change = LicenseChange::default();
        let mut covered = Vec::new();
        for p in candidates {
            match covering_groups(table, &user.licenses, p) {
                Ok(groups) => {
                    change.remove.push(p);
                    covered.push(Redundant {
                        user: id,
                        product: p,
                        groups,
                    });
                }
                Err(reason) => out.skipped.push((id, p, reason)),
            }
        }
        if change.remove.is_empty() {
            continue;
        }
        // The mutation's own step (D3): a redundant license removed changes no enabled plan,
        // so its checks pass; were they to fail, the whole call would fail and change nothing.
        engine.assign_direct(&mut user.licenses, &change, &mut seats)?;
        let changes = writer.write(&user)?;
        journal.record(&audited::license_event(
            Activity::RemoveRedundant,
            &user,
            &changes,
            None,
        ))?;
        out.removed.extend(covered);
    }
    writer.finish()?;
    save_seats(tx, table, &mut seats)?;
    Ok(out)
}
