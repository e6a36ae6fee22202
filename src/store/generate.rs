//! `group-licensing generate`: a realistic tenant written straight into a database (not through
//! GraphQL), fast enough for a million users, for the benchmarks.
//!
//! - users spread over 30 usage locations, 1% with none (they inherit the directory's `US`) and
//!   1% in CN, where the bundled policy bars Teams (C2);
//! - one proxy address each, 0.1% of them also another user's (C1);
//! - 1% holding Office 365 E1 directly with every plan, which conflicts with E3 (C3);
//! - groups "All users" (every user, in id order) and "Group of 10", "Group of 100", … up to
//!   `users`, with no licenses: the benchmark gives them licenses and times the processing.

use rusqlite::{Transaction, params};

use crate::rules::RuleTable;

use super::holders::HolderChanges;
use super::ops::ensure_products;
use super::sets::{self, Fields};
use super::{Result, Store, StoreError, now};

/// Usage locations, spread evenly (US first, so most users are where every plan is allowed).
const COUNTRIES: [&str; 30] = [
    "US", "GB", "DE", "FR", "NL", "CA", "AU", "JP", "IN", "BR", "MX", "ES", "IT", "SE", "NO", "DK",
    "FI", "PL", "IE", "BE", "AT", "CH", "NZ", "SG", "ZA", "KR", "PT", "CZ", "IL", "AR",
];

/// The product held directly by 1% of the users (it conflicts with Office 365 E3).
pub const DIRECT_PRODUCT: &str = "STANDARDPACK";

pub struct Generated {
    pub users: u64,
    pub groups: Vec<(i64, String, u64)>,
}

/// What user `i` (0-based) looks like; kept in one place so tests can predict the tenant.
pub struct Profile {
    pub usage_location: Option<&'static str>,
    /// `Some(j)`: the user's address is user `j`'s too.
    pub duplicate_of: Option<u64>,
    pub direct_license: bool,
}

pub fn profile(i: u64) -> Profile {
    Profile {
        usage_location: match i % 100 {
            0 => None,
            1 => Some("CN"),
            _ => Some(COUNTRIES[(i / 100 % 30) as usize]),
        },
        duplicate_of: (i % 1000 == 2).then(|| i - 1),
        direct_license: i % 100 == 3,
    }
}

/// Fills an empty database with `users` users. Refuses a database that already has users or
/// groups: nothing is ever overwritten.
pub fn generate(store: &Store, table: &RuleTable, users: u64) -> Result<Generated> {
    if users == 0 {
        return Err(StoreError::BadInput("--users must be at least 1".into()));
    }
    let direct = table.product_by_name(DIRECT_PRODUCT).ok_or_else(|| {
        StoreError::BadInput(format!(
            "the rules have no product `{DIRECT_PRODUCT}`: generate uses the bundled catalog"
        ))
    })?;
    let direct_name = table.product(direct).name.clone();
    let owned = table.clone();
    store.write_blocking(move |tx| {
        let existing: i64 = tx.query_row(
            "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM groups)",
            [],
            |r| r.get(0),
        )?;
        if existing > 0 {
            return Err(StoreError::BadInput(
                "the database already has users or groups: generate writes only into an empty one"
                    .into(),
            ));
        }
        ensure_products(tx, &owned)?;
        fill(tx, users, &direct_name)
    })
}

fn fill(tx: &Transaction<'_>, users: u64, direct: &str) -> Result<Generated> {
    let now = now();
    tx.execute(
        "UPDATE directory SET display_name = 'Contoso (generated)', default_usage_location = 'US' WHERE id = 1",
        [],
    )?;
    let mut insert_user = tx.prepare(
        "INSERT INTO users (id, user_principal_name, display_name, usage_location) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut insert_proxy = tx.prepare(
        "INSERT INTO proxy_addresses (user_id, position, address, normalized) VALUES (?1, 0, ?2, ?3)",
    )?;
    let mut insert_direct =
        tx.prepare("INSERT INTO assignment_sets (user_id, group_id, products) VALUES (?1, 0, ?2)")?;
    let direct_set = sets::encode([Fields {
        sku: direct,
        applied: Some("[]"),
        state: "ACTIVE",
        error_code: None,
        error: None,
        updated_at: &now,
    }]);
    let mut holders = HolderChanges::default();
    let mut direct_count = 0i64;
    for i in 0..users {
        let id = i as i64 + 1;
        let p = profile(i);
        insert_user.execute(params![
            id,
            format!("user{i}@contoso.com"),
            format!("User {i}"),
            p.usage_location
        ])?;
        let owner = p.duplicate_of.unwrap_or(i);
        let address = format!("user{owner}@contoso.com");
        insert_proxy.execute(params![id, format!("smtp:{address}"), address])?;
        if p.direct_license {
            insert_direct.execute(params![id, direct_set])?;
            holders.set(direct, id, true);
            direct_count += 1;
        }
    }
    holders.flush(tx)?;
    // Enough E1 seats for the direct licenses, which are held.
    tx.execute(
        "UPDATE products SET prepaid_units = ?1, consumed_units = ?1 WHERE sku = ?2",
        params![direct_count, direct],
    )?;
    let mut sizes = vec![users];
    let mut size = 10;
    while size < users {
        sizes.push(size);
        size *= 10;
    }
    let mut groups = Vec::new();
    let mut insert_member = tx.prepare(
        "INSERT INTO members (group_id, user_id, seq, joined_at) VALUES (?1, ?2, ?2, ?3)",
    )?;
    for size in sizes {
        let name = if size == users {
            "All users".to_string()
        } else {
            format!("Group of {size}")
        };
        tx.execute(
            "INSERT INTO groups (display_name, next_seq, member_count) VALUES (?1, ?2, ?3)",
            params![name, size as i64 + 1, size as i64],
        )?;
        let group = tx.last_insert_rowid();
        for user in 1..=size as i64 {
            insert_member.execute(params![group, user, now])?;
        }
        groups.push((group, name, size));
    }
    Ok(Generated { users, groups })
}
