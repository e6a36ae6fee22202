//! `serve --demo`: an empty database gets a small tenant in which every error of the seeds
//! (S1–S7) can be seen, beside a few healthy groups, so that a newcomer's first query in
//! GraphiQL has something to show. Built through the same operations as the API, and processed
//! before the server answers.

use rusqlite::Transaction;

use crate::rules::RuleTable;
use crate::store::ops::{self, NewUser};
use crate::store::{self, Result, Store, StoreError};

/// Products the demo uses; all are in the bundled catalog.
const PRODUCTS: [&str; 4] = [
    "STANDARDPACK",
    "ENTERPRISEPACK",
    "EMS",
    "WORKPLACE_ANALYTICS",
];

/// Fills the database when it has no user and no group. Returns whether it did.
pub fn fill_if_empty(store: &Store, table: &RuleTable) -> Result<bool> {
    let empty = store.write_blocking(|tx| {
        let n: i64 = tx.query_row(
            "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM groups)",
            [],
            |r| r.get(0),
        )?;
        Ok(n == 0)
    })?;
    if !empty {
        return Ok(false);
    }
    if let Some(missing) = PRODUCTS.iter().find(|p| table.product_by_name(p).is_none()) {
        return Err(StoreError::BadInput(format!(
            "the demo needs product `{missing}`, which these rules do not declare (use the bundled rules)"
        )));
    }
    let owned = table.clone();
    store.write_blocking(move |tx| stage_one(tx, &owned))?;
    drain(store, table)?;
    let owned = table.clone();
    store.write_blocking(move |tx| stage_two(tx, &owned))?;
    drain(store, table)?;
    Ok(true)
}

/// Runs processing to the end, as the worker would.
fn drain(store: &Store, table: &RuleTable) -> Result<()> {
    loop {
        let owned = table.clone();
        let step = store.write_blocking(move |tx| {
            store::process::step(tx, &owned, crate::processing::CHUNK, &store::now())
        })?;
        if step.is_none() {
            return Ok(());
        }
    }
}

fn user(tx: &Transaction<'_>, name: &str, location: Option<&str>, proxies: &[&str]) -> Result<i64> {
    ops::create_user(
        tx,
        &NewUser {
            user_principal_name: format!("{name}@contoso.com"),
            display_name: capitalise(name),
            usage_location: location.map(str::to_string),
            proxy_addresses: proxies.iter().map(|p| p.to_string()).collect(),
        },
    )
}

fn capitalise(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn license(sku: &str, disabled: &[&str]) -> ops::LicenseInput {
    (
        sku.to_string(),
        disabled.iter().map(|p| p.to_string()).collect(),
    )
}

fn group(
    tx: &Transaction<'_>,
    table: &RuleTable,
    name: &str,
    licenses: &[ops::LicenseInput],
    members: &[i64],
    now: &str,
) -> Result<i64> {
    let id = ops::create_group(tx, name)?;
    if !licenses.is_empty() {
        ops::assign_group_license(tx, table, id, licenses, &[], now)?;
    }
    if !members.is_empty() {
        ops::add_group_members(tx, id, members, now)?;
    }
    Ok(id)
}

fn stage_one(tx: &Transaction<'_>, table: &RuleTable) -> Result<()> {
    let now = store::now();
    // Users without a usage location of their own are in CN, where the bundled policy bars
    // Teams (S4); every other demo user has one.
    ops::update_directory(tx, Some("Contoso (demo)"), Some("CN"))?;
    for (sku, seats) in [
        ("STANDARDPACK", 50),
        ("ENTERPRISEPACK", 11),
        ("EMS", 5),
        ("WORKPLACE_ANALYTICS", 10),
    ] {
        ops::set_prepaid_units(tx, table, sku, seats)?;
    }
    // Healthy groups.
    let staff: Vec<i64> = ["adele", "alex", "diego", "grady", "isaiah", "johanna"]
        .iter()
        .map(|n| user(tx, n, Some("US"), &[]))
        .collect::<Result<_>>()?;
    group(
        tx,
        table,
        "All staff",
        &[license("STANDARDPACK", &[])],
        &staff,
        &now,
    )?;
    group(
        tx,
        table,
        "Mobile devices",
        &[license("EMS", &[])],
        &staff[..3],
        &now,
    )?;

    // S2: dan holds E1 directly with all plans; E3 from a group conflicts.
    let dan = user(tx, "dan", Some("US"), &[])?;
    ops::assign_license(tx, table, dan, &[license("STANDARDPACK", &[])], &[], &now)?;
    group(
        tx,
        table,
        "E3 users",
        &[license("ENTERPRISEPACK", &[])],
        &[dan],
        &now,
    )?;

    // S3: all or nothing: EMS has 5 seats, 3 taken above; eve and fay take the last two, gil
    // gets neither product.
    let full: Vec<i64> = ["eve", "fay", "gil"]
        .iter()
        .map(|n| user(tx, n, Some("US"), &[]))
        .collect::<Result<_>>()?;
    group(
        tx,
        table,
        "Full suite",
        &[license("ENTERPRISEPACK", &[]), license("EMS", &[])],
        &full,
        &now,
    )?;

    // S4: gus has no usage location and inherits the directory's, CN.
    let gus = user(tx, "gus", None, &[])?;
    group(
        tx,
        table,
        "Teams",
        &[license("STANDARDPACK", &[])],
        &[gus],
        &now,
    )?;

    // S6, first half: ivy gets Exchange from a group.
    let ivy = user(tx, "ivy", Some("US"), &[])?;
    group(
        tx,
        table,
        "E3 full",
        &[license("ENTERPRISEPACK", &[])],
        &[ivy],
        &now,
    )?;

    // S7: duplicate proxy addresses.
    let jon = user(tx, "jon", Some("US"), &["smtp:sales@contoso.com"])?;
    let kim = user(tx, "kim", Some("US"), &["SMTP:sales@contoso.com"])?;
    group(
        tx,
        table,
        "Mail",
        &[license("STANDARDPACK", &[])],
        &[jon, kim],
        &now,
    )?;
    // S1: not enough seats: 11 E3 seats, 3 taken above, so the ninth member of Sales gets none
    // (first joined, first served).
    let sales: Vec<i64> = [
        "ann", "bob", "cat", "lee", "mia", "ned", "ola", "pat", "quinn",
    ]
    .iter()
    .map(|n| user(tx, n, Some("US"), &[]))
    .collect::<Result<_>>()?;
    group(
        tx,
        table,
        "Sales",
        &[license("ENTERPRISEPACK", &[])],
        &sales,
        &now,
    )?;

    Ok(())
}

fn stage_two(tx: &Transaction<'_>, table: &RuleTable) -> Result<()> {
    let now = store::now();
    let id = |name: &str| -> Result<i64> {
        Ok(tx.query_row(
            "SELECT id FROM users WHERE user_principal_name = ?1",
            [format!("{name}@contoso.com")],
            |r| r.get(0),
        )?)
    };
    // S5: an add-on with its prerequisite in the same group. One more E3 seat is bought for
    // hal first; it goes to him, not to Sales' member in error, who waits for a reprocess (P5).
    ops::set_prepaid_units(tx, table, "ENTERPRISEPACK", 12)?;
    let hal = user(tx, "hal", Some("US"), &[])?;
    let exchange_only: Vec<String> = table
        .product_by_name("ENTERPRISEPACK")
        .map(|p| {
            table
                .product(p)
                .plan_list
                .iter()
                .map(|plan| table.plan(*plan).name.clone())
                .filter(|n| n != "EXCHANGE_S_ENTERPRISE")
                .collect()
        })
        .unwrap_or_default();
    let disabled: Vec<&str> = exchange_only.iter().map(String::as_str).collect();
    group(
        tx,
        table,
        "Workplace Analytics",
        &[
            license("ENTERPRISEPACK", &disabled),
            license("WORKPLACE_ANALYTICS", &[]),
        ],
        &[hal],
        &now,
    )?;
    // S6, second half: ivy gets Workplace Analytics directly, then leaves "E3 full": the
    // withdrawal is blocked because her only Exchange plan comes from that group.
    let ivy = id("ivy")?;
    ops::assign_license(
        tx,
        table,
        ivy,
        &[license("WORKPLACE_ANALYTICS", &[])],
        &[],
        &now,
    )?;
    let e3_full: i64 = tx.query_row(
        "SELECT id FROM groups WHERE display_name = 'E3 full'",
        [],
        |r| r.get(0),
    )?;
    ops::remove_group_members(tx, e3_full, &[ivy], &now)?;
    // M: lee also has E3 directly, which Sales already gives her in full: the direct license
    // is redundant (`redundantDirectLicenses`). No seat moves: she held E3 already.
    let lee = id("lee")?;
    ops::assign_license(tx, table, lee, &[license("ENTERPRISEPACK", &[])], &[], &now)?;
    Ok(())
}
