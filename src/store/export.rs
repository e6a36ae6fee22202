//! The rows of the CSV exports (graphql-api.md, "CSV exports"; licensing.md H6), read one keyset
//! page at a time: the HTTP layer (`server::export`) asks for the page after the last key it
//! wrote, each page in a short read of its own, so that an export of a million rows never holds
//! a reader connection, nor more than a page of rows, for longer than that page takes.
//!
//! What the rows say is what GraphQL says of the same users, from the same stored rows:
//! - users in error of a group (Q1): `Group.membersWithLicenseErrors` pages the same keys
//!   (`read::error_members_page`: members and former members whose withdrawal is blocked), and
//!   each of their assignments from the group whose `error` is not NONE is a row, as
//!   `User.licenseAssignmentStates` gives it;
//! - holders of a product (L1): `Product.licensedUsers` pages the same bitmaps
//!   (`holders::page`); a user's sources are its applied assignments of the product and its
//!   enabled plans their union (L2), as `User.assignedLicenses` computes it;
//! - audit events (H6): `auditEvents` reads the same events newest first with the same filter
//!   (`history::page`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::Connection;

use super::codec::{decode_disabled, decode_error};
use super::history::{self, EventRow, Filter};
use super::sets::{self, Ids, ProductRow};
use super::{Result, StoreError, read};
use crate::engine::{FoundNames, LicenseError};
use crate::rules::{PlanSet, ProductId, RuleTable};

/// Users read per page: a few hundred KiB of CSV, a few milliseconds of reading.
pub const PAGE_USERS: usize = 2_000;
/// Audit events read per page, for the same reasons.
pub const PAGE_EVENTS: usize = 2_000;

/// A user as the exports name it.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: i64,
    pub user_principal_name: String,
    pub display_name: String,
}

/// One assignment in error.
#[derive(Debug)]
pub struct Failed {
    pub sku: String,
    /// `ERROR` or `ACTIVE_WITH_ERROR` (P2, P3, P4).
    pub state: String,
    pub error_code: String,
    /// The error as the engine decided it; `None` when the rules in force cannot read it.
    pub error: Option<LicenseError>,
    pub updated_at: String,
}

/// A user in error of the group, with its assignments from the group in error.
#[derive(Debug)]
pub struct UserErrors {
    pub user: Person,
    pub failed: Vec<Failed>,
}

/// A page of users in error, with the names their errors mention.
#[derive(Debug)]
pub struct ErrorPage {
    pub users: Vec<UserErrors>,
    pub names: FoundNames,
    /// The key the next page starts after; `None` when this page was the last.
    pub next: Option<i64>,
}

/// The exported group's display name; `NotFound` when there is no such group.
pub fn group_name(conn: &Connection, group: i64) -> Result<String> {
    read::names(conn, &[group], &[])?
        .0
        .remove(&group)
        .ok_or_else(|| read::not_found("group", group))
}

/// The users in error of `group` after the user `after` (0: from the start), at most `limit`.
pub fn error_page(
    conn: &Connection,
    table: &RuleTable,
    group: i64,
    after: i64,
    limit: usize,
) -> Result<ErrorPage> {
    let page = read::error_members_page(conn, group, None, after, limit)?;
    let next = page.has_next.then(|| page.keys.last().copied()).flatten();
    let (sorted, ids) = sets::select(&page.keys);
    let mut people = people(conn, &sorted, &ids)?;
    let mut failed: HashMap<i64, Vec<Failed>> = HashMap::new();
    let (mut named_groups, mut named_users) = (Vec::new(), Vec::new());
    for (user, source, products) in sets::load_selected(conn, &sorted, &ids)? {
        if source != group {
            continue;
        }
        for product in products {
            let ProductRow {
                sku,
                state,
                error_code: Some(error_code),
                error,
                updated_at,
                ..
            } = product
            else {
                continue;
            };
            let error = error.and_then(|json| decode_error(table, &json).ok());
            if let Some(e) = &error {
                e.named_ids(&mut named_groups, &mut named_users);
            }
            failed.entry(user).or_default().push(Failed {
                sku,
                state,
                error_code,
                error,
                updated_at,
            });
        }
    }
    named_groups.sort_unstable();
    named_groups.dedup();
    named_users.sort_unstable();
    named_users.dedup();
    let (groups, users) = read::names(conn, &named_groups, &named_users)?;
    let users_in_error = sorted
        .iter()
        .filter_map(|id| {
            Some(UserErrors {
                user: people.remove(id)?,
                failed: failed.remove(id)?,
            })
        })
        .collect();
    Ok(ErrorPage {
        users: users_in_error,
        names: FoundNames { groups, users },
        next,
    })
}

/// A holder of the product and where its holding comes from.
#[derive(Debug)]
pub struct Holding {
    pub user: Person,
    /// Whether a direct assignment of the product is applied.
    pub direct: bool,
    /// The groups whose assignment of the product is applied, by id.
    pub groups: Vec<i64>,
    /// The plans enabled for the user: the union over those sources (L2).
    pub enabled: PlanSet,
}

/// A page of holders, with the names of the groups they hold the product through.
#[derive(Debug)]
pub struct HolderPage {
    pub holders: Vec<Holding>,
    pub group_names: HashMap<i64, String>,
    /// The key the next page starts after; `None` when this page was the last.
    pub next: Option<i64>,
}

/// The holders of `product` after the user `after` (0: from the start), at most `limit`.
pub fn holder_page(
    conn: &Connection,
    table: &RuleTable,
    product: ProductId,
    after: i64,
    limit: usize,
) -> Result<HolderPage> {
    let sku = &table.product(product).name;
    let mut keys = super::holders::page(conn, sku, after, limit + 1)?;
    let next = if keys.len() > limit {
        keys.truncate(limit);
        keys.last().copied()
    } else {
        None
    };
    let (sorted, ids) = sets::select(&keys);
    let mut people = people(conn, &sorted, &ids)?;
    let mut holdings: HashMap<i64, Holding> = HashMap::with_capacity(sorted.len());
    for (user, source, products) in sets::load_selected(conn, &sorted, &ids)? {
        let Some(applied) = products
            .iter()
            .find(|p| p.sku == *sku)
            .and_then(|p| p.applied.as_deref())
        else {
            continue;
        };
        let holding = match holdings.entry(user) {
            Entry::Occupied(seen) => seen.into_mut(),
            Entry::Vacant(first) => {
                let Some(user) = people.remove(&user) else {
                    continue;
                };
                first.insert(Holding {
                    user,
                    direct: false,
                    groups: Vec::new(),
                    enabled: PlanSet::EMPTY,
                })
            }
        };
        // As `assignedLicenses`: a configuration the rules in force cannot read enables nothing.
        if let Ok(disabled) = decode_disabled(table, applied) {
            holding.enabled |= disabled.enabled_in(table, product);
        }
        if source == 0 {
            holding.direct = true;
        } else {
            holding.groups.push(source);
        }
    }
    let mut groups: Vec<i64> = holdings.values().flat_map(|h| h.groups.clone()).collect();
    groups.sort_unstable();
    groups.dedup();
    let (group_names, _) = read::names(conn, &groups, &[])?;
    Ok(HolderPage {
        holders: sorted.iter().filter_map(|id| holdings.remove(id)).collect(),
        group_names,
        next,
    })
}

/// A page of audit events, newest first.
#[derive(Debug)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    /// The event the next page starts before; `None` when this page was the last.
    pub next: Option<i64>,
}

/// The events of `filter` older than event `before` (`None`: from the newest), at most `limit`.
pub fn event_page(
    conn: &Connection,
    filter: &Filter,
    before: Option<i64>,
    limit: usize,
) -> Result<EventPage> {
    let mut events = history::page(conn, filter, before, limit + 1)?;
    let next = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(EventPage { events, next })
}

/// The users of `sorted` (read as `ids` says) by id; a user deleted since is left out.
fn people(conn: &Connection, sorted: &[i64], ids: &Ids) -> Result<HashMap<i64, Person>> {
    let mut out = HashMap::with_capacity(sorted.len());
    if sorted.is_empty() {
        return Ok(out);
    }
    ids.query(
        conn,
        "SELECT u.id, u.user_principal_name, u.display_name
           FROM json_each(?1) j JOIN users u ON u.id = j.value",
        "SELECT id, user_principal_name, display_name FROM users WHERE id BETWEEN ?1 AND ?2",
        |r| {
            let id: i64 = r.get(0)?;
            if sorted.binary_search(&id).is_ok() {
                out.insert(
                    id,
                    Person {
                        id,
                        user_principal_name: r.get(1)?,
                        display_name: r.get(2)?,
                    },
                );
            }
            Ok::<(), StoreError>(())
        },
    )?;
    Ok(out)
}
