//! A tenant built straight through the store (no server), for tests that look inside it: users
//! in group "Standard" (E1, applied) and group "Enterprise" (E3, refused: every member in
//! MUTUALLY_EXCLUSIVE_VIOLATION with plans from "Standard"), processed to the end.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use group_licensing::rules::{self, RuleTable};
use group_licensing::store::ops::{self, NewUser};
use group_licensing::store::{self, Store};

pub struct Tenant {
    pub store: Store,
    pub table: Arc<RuleTable>,
    pub standard: i64,
    pub enterprise: i64,
    pub users: Vec<i64>,
}

pub fn scenario_table() -> Arc<RuleTable> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenario-rules");
    Arc::new(rules::load_dir(&dir).expect("scenario rules").table)
}

/// `users` users; with `shared_proxies`, every two users share a proxy address (C1 errors);
/// `extra_groups` more licensed groups of one member each, for realistic table sizes.
pub fn conflicted(db: &Path, users: usize, shared_proxies: bool, extra_groups: usize) -> Tenant {
    let table = scenario_table();
    let store = Store::open(db).expect("open the database");
    let t = table.clone();
    let (standard, enterprise, ids) = store
        .write_blocking(move |tx| {
            let now = store::now();
            ops::ensure_products(tx, &t)?;
            ops::set_prepaid_units(tx, &t, "STANDARDPACK", 10_000)?;
            ops::set_prepaid_units(tx, &t, "ENTERPRISEPACK", 10_000)?;
            let mut ids = Vec::new();
            for i in 0..users {
                let proxies = if shared_proxies {
                    vec![format!("smtp:shared{}@contoso.com", i / 2)]
                } else {
                    Vec::new()
                };
                ids.push(ops::create_user(
                    tx,
                    &NewUser {
                        user_principal_name: format!("user{i}@contoso.com"),
                        display_name: format!("User {i}"),
                        usage_location: Some("US".into()),
                        proxy_addresses: proxies,
                    },
                )?);
            }
            let group = |name: &str, sku: &str, members: &[i64]| {
                let g = ops::create_group(tx, name)?;
                ops::assign_group_license(tx, &t, g, &[(sku.into(), vec![])], &[], &now)?;
                ops::add_group_members(tx, g, members, &now)?;
                Ok::<_, store::StoreError>(g)
            };
            let standard = group("Standard", "STANDARDPACK", &ids)?;
            let enterprise = group("Enterprise", "ENTERPRISEPACK", &ids)?;
            for i in 0..extra_groups {
                group(
                    &format!("Team {i}"),
                    "STANDARDPACK",
                    &ids[i % users..i % users + 1],
                )?;
            }
            Ok((standard, enterprise, ids))
        })
        .expect("tenant");
    drain(&store, &table);
    Tenant {
        store,
        table,
        standard,
        enterprise,
        users: ids,
    }
}

/// Runs processing to the end, as the worker would.
pub fn drain(store: &Store, table: &Arc<RuleTable>) {
    loop {
        let t = table.clone();
        let step = store
            .write_blocking(move |tx| store::process::step(tx, &t, 1000, &store::now()))
            .expect("processing step");
        if step.is_none() {
            break;
        }
    }
}
