//! Versioned migrations, applied at start in one transaction each; `PRAGMA user_version` is the
//! version reached.
//!
//! Plans and products are stored by name (`skuPartNumber`, `servicePlanName`), never by the
//! rule table's dense ids, which change when the rules are reloaded.
//!
//! A group's intent for its members is not stored per member: it is the group's license set and
//! its membership. `assignment_sets` (from version 5; `assignments` before) holds what
//! processing decided (applied configuration, state, error) and direct assignments, one row per
//! user and source (see `sets`); a member with no row yet for a product of one of its groups is
//! `PENDING`.

use rusqlite::{Connection, Transaction};

use super::Result;
use super::alerts::COUNT_VIOLATION;
use super::holders::HolderChanges;
use super::sets::{self, ProductRow};

/// A migration: statements, then (if any) a step in Rust for what SQL cannot do.
type Migration = (&'static str, Option<fn(&Transaction<'_>) -> Result<()>>);

const MIGRATIONS: &[Migration] = &[
    (
        // 1: the first schema.
        r#"
CREATE TABLE directory (
    id                     INTEGER PRIMARY KEY CHECK (id = 1),
    display_name           TEXT NOT NULL,
    default_usage_location TEXT NOT NULL
);
INSERT INTO directory (id, display_name, default_usage_location) VALUES (1, 'Contoso', 'US');

-- Seats per product. consumed_units = number of users holding the product (L3), kept by the
-- writer in the same transaction as the assignments that change it.
CREATE TABLE products (
    sku            TEXT PRIMARY KEY,
    prepaid_units  INTEGER NOT NULL DEFAULT 0 CHECK (prepaid_units >= 0),
    consumed_units INTEGER NOT NULL DEFAULT 0 CHECK (consumed_units >= 0)
) WITHOUT ROWID;

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    user_principal_name TEXT NOT NULL COLLATE NOCASE UNIQUE,
    display_name        TEXT NOT NULL,
    usage_location      TEXT
);

-- normalized: the address after an optional smtp: prefix, lower case (C1).
CREATE TABLE proxy_addresses (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    address    TEXT NOT NULL,
    normalized TEXT NOT NULL,
    PRIMARY KEY (user_id, position)
) WITHOUT ROWID;
CREATE INDEX proxy_addresses_by_normalized ON proxy_addresses (normalized, user_id);

-- processed_members / members_to_process: of the current or last run (P9).
CREATE TABLE groups (
    id                 INTEGER PRIMARY KEY,
    display_name       TEXT NOT NULL,
    next_seq           INTEGER NOT NULL DEFAULT 1,
    processed_members  INTEGER NOT NULL DEFAULT 0,
    members_to_process INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE group_licenses (
    group_id       INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    sku            TEXT NOT NULL,
    disabled_plans TEXT NOT NULL,
    position       INTEGER NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (group_id, sku)
) WITHOUT ROWID;
CREATE INDEX group_licenses_by_sku ON group_licenses (sku, group_id);

-- seq: the order members joined in (P1), per group.
CREATE TABLE members (
    group_id  INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    joined_at TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX members_in_join_order ON members (group_id, seq);
CREATE INDEX memberships_of_user ON members (user_id, group_id);

-- group_id 0: assigned directly. applied_disabled NULL: never applied.
CREATE TABLE assignments (
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_id         INTEGER NOT NULL,
    sku              TEXT NOT NULL,
    applied_disabled TEXT,
    state            TEXT NOT NULL,
    error_code       TEXT,
    error            TEXT,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (user_id, group_id, sku)
) WITHOUT ROWID;
CREATE INDEX assignments_in_error ON assignments (group_id, user_id, error_code)
    WHERE error_code IS NOT NULL;
CREATE INDEX assignments_by_group ON assignments (group_id, user_id);  -- dropped by 2
CREATE INDEX assignments_held ON assignments (sku, user_id) WHERE applied_disabled IS NOT NULL;

-- Durable processing work (P8), done in id order:
--   group_id and no user_id: every member of the group, from after_seq on, then its former
--   members with pending withdrawals;
--   group_id and user_id: one user for one group;
--   user_id and no group_id: every group of one user.
CREATE TABLE work (
    id         INTEGER PRIMARY KEY,
    group_id   INTEGER,
    user_id    INTEGER,
    after_seq  INTEGER NOT NULL DEFAULT 0,
    started    INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    CHECK (group_id IS NOT NULL OR user_id IS NOT NULL)
);
CREATE INDEX work_by_group ON work (group_id, id);
"#,
        None,
    ),
    // 2: processing a million members writes millions of assignment rows, and every index
    // costs a B-tree insert per row. Rows from one group are found through the PK (by user) or,
    // for former members, through the error index: a blocked withdrawal is always in error.
    (
        r#"
DROP INDEX assignments_by_group;
"#,
        None,
    ),
    // 3: counts that dashboards read on every request, kept by the writer instead of counted:
    // the members of a group, and the users in error per group and code (code '' = any code).
    (
        r#"
ALTER TABLE groups ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;
UPDATE groups SET member_count = (SELECT count(*) FROM members m WHERE m.group_id = groups.id);
CREATE TABLE group_errors (
    group_id   INTEGER NOT NULL,
    error_code TEXT NOT NULL,
    users      INTEGER NOT NULL CHECK (users >= 0),
    PRIMARY KEY (group_id, error_code)
) WITHOUT ROWID;
INSERT INTO group_errors (group_id, error_code, users)
    SELECT group_id, error_code, count(DISTINCT user_id) FROM assignments
     WHERE error_code IS NOT NULL GROUP BY group_id, error_code;
INSERT INTO group_errors (group_id, error_code, users)
    SELECT group_id, '', count(DISTINCT user_id) FROM assignments
     WHERE error_code IS NOT NULL GROUP BY group_id;
"#,
        None,
    ),
    // 4: SQLite gives a new row max(id) + 1, so deleting the newest user or group and creating
    // another reused its id, and stored errors (C1's other user, C3's conflicting group) and
    // clients holding the old id came to name someone else. The highest id ever given, per
    // table: new ids start above it.
    (
        r#"
ALTER TABLE directory ADD COLUMN last_user_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE directory ADD COLUMN last_group_id INTEGER NOT NULL DEFAULT 0;
UPDATE directory SET last_user_id = (SELECT coalesce(max(id), 0) FROM users),
                     last_group_id = (SELECT coalesce(max(id), 0) FROM groups);
"#,
        None,
    ),
    // 5: one row per member and group instead of one per member, group and product, and
    // holders as bitmaps instead of an index entry per holder and product: processing a
    // million members wrote three rows and six index entries for each (B1 in BENCHMARKS.md).
    // Users in error keep a small table of their own (5% of the members in B1), read by the
    // dashboards' pages. The old rows are moved by `move_assignments`.
    (
        r#"
CREATE TABLE assignment_sets (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL,
    products TEXT NOT NULL,
    PRIMARY KEY (user_id, group_id)
) WITHOUT ROWID;
-- One row per user, group and code in error; written with the user's sets, which are the truth
-- (the audit compares them).
CREATE TABLE assignment_errors (
    group_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    error_code TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id, error_code)
) WITHOUT ROWID;
CREATE TABLE holders (
    sku   TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    bits  BLOB NOT NULL,
    PRIMARY KEY (sku, chunk)
) WITHOUT ROWID;
INSERT INTO assignment_errors (group_id, user_id, error_code)
    SELECT DISTINCT group_id, user_id, error_code FROM assignments WHERE error_code IS NOT NULL;
"#,
        Some(move_assignments),
    ),
    // 6: what provisioning over SCIM keeps (scim.md): whether the account is enabled (`active`),
    // the directory's own id for a user or group (`externalId`), and an index for SCIM's
    // lookups of a group by name.
    (
        r#"
ALTER TABLE users ADD COLUMN account_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE INDEX users_by_external_id ON users (external_id) WHERE external_id IS NOT NULL;
ALTER TABLE groups ADD COLUMN external_id TEXT;
CREATE INDEX groups_by_external_id ON groups (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX groups_by_display_name ON groups (display_name COLLATE NOCASE);
"#,
        None,
    ),
    // 7: the users with a direct license, in id order, for the redundant-license list (M2):
    // only direct sets are indexed, so processing a group writes no entry here.
    (
        "CREATE INDEX direct_sets ON assignment_sets (user_id) WHERE group_id = 0;",
        None,
    ),
    // 8: the history (licensing.md H, `store::history`): events, their actors, the products
    // they are about, kept counts per category and result; and, on a work item, the
    // correlation of its run's events and the run's counts so far (H4).
    (
        r#"
CREATE TABLE audit_actors (
    id   INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (kind, name)
);
-- A row is one event, or (`last_id`) processing's events id..=last_id, of one group. No NOT
-- NULL on the events and no AUTOINCREMENT: an insert that cannot fail halfway needs no
-- statement journal. The writer fills every column and numbers the events itself; ids are
-- never given again because pruning keeps the newest row.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    last_id     INTEGER,
    at          TEXT,
    category    INTEGER,
    activity    INTEGER,
    actor       INTEGER,
    failed      INTEGER,
    reason      TEXT,
    correlation INTEGER,
    group_id    INTEGER,
    targets     TEXT
);
CREATE INDEX audit_by_group ON audit_events (group_id) WHERE group_id IS NOT NULL;
CREATE TABLE audit_users (
    user_id INTEGER NOT NULL,
    event   INTEGER NOT NULL,
    PRIMARY KEY (user_id, event)
) WITHOUT ROWID;
CREATE TABLE audit_skus (
    id  INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE
);
CREATE TABLE audit_products (
    product INTEGER NOT NULL,
    row     INTEGER NOT NULL,
    events  INTEGER NOT NULL,
    PRIMARY KEY (product, row)
) WITHOUT ROWID;
CREATE TABLE audit_counts (
    category INTEGER NOT NULL,
    failed   INTEGER NOT NULL,
    events   INTEGER NOT NULL,
    PRIMARY KEY (category, failed)
) WITHOUT ROWID;
ALTER TABLE work ADD COLUMN correlation INTEGER;
ALTER TABLE work ADD COLUMN licensed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE work ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
"#,
        None,
    ),
    // 9: notices (licensing.md N, `store::alerts`, `store::webhooks`): a product's seat alert
    // threshold and its assignments in COUNT_VIOLATION (kept by the writer, like
    // consumed_units); alerts, one standing per subject at most; webhooks and their outbox.
    (
        r#"
ALTER TABLE products ADD COLUMN seat_alert_threshold INTEGER;
ALTER TABLE products ADD COLUMN seat_violations INTEGER NOT NULL DEFAULT 0;
CREATE INDEX group_errors_failing ON group_errors (group_id) WHERE error_code = '' AND users > 0;
-- kind: 0 LOW_SEATS, 1 SEATS_EXHAUSTED (sku), 2 LICENSE_ERRORS (group_id).
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        INTEGER NOT NULL,
    sku         TEXT,
    group_id    INTEGER,
    raised_at   TEXT NOT NULL,
    resolved_at TEXT,
    message     TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_standing_products ON alerts (kind, sku)
    WHERE resolved_at IS NULL AND kind < 2;
CREATE UNIQUE INDEX alerts_standing_groups ON alerts (group_id)
    WHERE resolved_at IS NULL AND kind = 2;
-- events: a bit per WebhookEventType (`webhooks::EventType`).
CREATE TABLE webhooks (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    url               TEXT NOT NULL,
    events            INTEGER NOT NULL,
    description       TEXT,
    secret            TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    last_event_type   INTEGER,
    last_attempted_at TEXT,
    last_status       INTEGER,
    last_error        TEXT
);
-- A delivery, or (first_event) the audit events first_event..=last_event of one
-- transaction, delivered one by one from next_event on. first_attempt_at: of the delivery
-- (or event) at the head, for the day of retries.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type       INTEGER NOT NULL,
    occurred_at      TEXT NOT NULL,
    data             TEXT,
    first_event      INTEGER,
    last_event       INTEGER,
    next_event       INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at TEXT,
    next_attempt_at  TEXT NOT NULL
);
CREATE INDEX outbox_by_webhook ON outbox (webhook_id, id);
"#,
        Some(count_seat_violations),
    ),
];

/// Migration 9's count of each product's assignments in COUNT_VIOLATION.
fn count_seat_violations(tx: &Transaction<'_>) -> Result<()> {
    let mut counts: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    {
        let mut stmt = tx.prepare(
            "SELECT s.products FROM assignment_sets s
              WHERE EXISTS (SELECT 1 FROM assignment_errors e WHERE e.user_id = s.user_id
                              AND e.group_id = s.group_id AND e.error_code = 'COUNT_VIOLATION')",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let text: String = r.get(0)?;
            for row in sets::decode(&text)? {
                if row.error_code.as_deref() == Some(COUNT_VIOLATION) {
                    *counts.entry(row.sku).or_default() += 1;
                }
            }
        }
    }
    let mut update = tx.prepare("UPDATE products SET seat_violations = ?1 WHERE sku = ?2")?;
    for (sku, n) in counts {
        update.execute(rusqlite::params![n, sku])?;
    }
    Ok(())
}

/// Migration 5's move of each `assignments` row into its user's set for the source, and of
/// each applied one into the holders' bitmaps; then the old table goes.
fn move_assignments(tx: &Transaction<'_>) -> Result<()> {
    let mut holders = HolderChanges::default();
    let mut insert = tx
        .prepare("INSERT INTO assignment_sets (user_id, group_id, products) VALUES (?1, ?2, ?3)")?;
    let mut write_set = |(user, group): (i64, i64), products: &[ProductRow]| {
        let text = sets::encode(products.iter().map(ProductRow::fields));
        insert.execute(rusqlite::params![user, group, text])
    };
    let mut current: Option<(i64, i64)> = None;
    let mut products: Vec<ProductRow> = Vec::new();
    {
        let mut stmt = tx.prepare(
            "SELECT user_id, group_id, sku, applied_disabled, state, error_code, error, updated_at
               FROM assignments ORDER BY user_id, group_id, sku",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let key: (i64, i64) = (r.get(0)?, r.get(1)?);
            if current != Some(key) {
                if let Some(done) = current {
                    write_set(done, &products)?;
                }
                current = Some(key);
                products.clear();
            }
            let row = ProductRow {
                sku: r.get(2)?,
                applied: r.get(3)?,
                state: r.get(4)?,
                error_code: r.get(5)?,
                error: r.get(6)?,
                updated_at: r.get(7)?,
            };
            if row.applied.is_some() {
                holders.set(&row.sku, key.0, true);
            }
            products.push(row);
        }
    }
    if let Some(done) = current {
        write_set(done, &products)?;
    }
    holders.flush(tx)?;
    tx.execute_batch("DROP TABLE assignments;")?;
    Ok(())
}

pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_until(conn, MIGRATIONS.len())
}

/// Applies the migrations up to version `last`.
pub(super) fn migrate_until(conn: &mut Connection, last: usize) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, (sql, step)) in MIGRATIONS.iter().enumerate().take(last) {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if let Some(step) = step {
            step(&tx)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_record_the_version() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        migrate(&mut conn).expect("first run");
        migrate(&mut conn).expect("second run does nothing");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn migration_5_moves_every_assignment_into_sets_holders_and_error_rows() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        migrate_until(&mut conn, 4).expect("up to 4");
        conn.execute_batch(
            r#"
INSERT INTO users (id, user_principal_name, display_name) VALUES
    (1, 'a@x', 'A'), (2, 'b@x', 'B'), (5000, 'c@x', 'C');
INSERT INTO assignments (user_id, group_id, sku, applied_disabled, state, error_code, error, updated_at) VALUES
    (1, 0, 'STANDARDPACK', '[]', 'ACTIVE', NULL, NULL, 't1'),
    (1, 7, 'EMS', '["INTUNE_A"]', 'ACTIVE', NULL, NULL, 't2'),
    (1, 7, 'ENTERPRISEPACK', NULL, 'ERROR', 'MUTUALLY_EXCLUSIVE_VIOLATION', '{"code":"MUTUALLY_EXCLUSIVE_VIOLATION"}', 't3'),
    (2, 7, 'EMS', NULL, 'ERROR', 'COUNT_VIOLATION', '{"code":"COUNT_VIOLATION"}', 't4'),
    (5000, 7, 'EMS', '[]', 'ACTIVE', NULL, NULL, 't5');
"#,
        )
        .expect("version 4 rows");
        migrate(&mut conn).expect("to 5");

        let sets = sets::load(&conn, &[1, 2, 5000]).expect("sets");
        type Product<'a> = (&'a str, Option<&'a str>, &'a str, &'a str);
        let summary: Vec<(i64, i64, Vec<Product<'_>>)> = sets
            .iter()
            .map(|(user, group, rows)| {
                let rows = rows
                    .iter()
                    .map(|r| {
                        (
                            r.sku.as_str(),
                            r.applied.as_deref(),
                            r.state.as_str(),
                            r.updated_at.as_str(),
                        )
                    })
                    .collect();
                (*user, *group, rows)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, 0, vec![("STANDARDPACK", Some("[]"), "ACTIVE", "t1")]),
                (
                    1,
                    7,
                    vec![
                        ("EMS", Some(r#"["INTUNE_A"]"#), "ACTIVE", "t2"),
                        ("ENTERPRISEPACK", None, "ERROR", "t3"),
                    ]
                ),
                (2, 7, vec![("EMS", None, "ERROR", "t4")]),
                (5000, 7, vec![("EMS", Some("[]"), "ACTIVE", "t5")]),
            ]
        );
        assert_eq!(
            sets[1].2[1].error.as_deref(),
            Some(r#"{"code":"MUTUALLY_EXCLUSIVE_VIOLATION"}"#)
        );
        let mut held = super::super::holders::all(&conn).expect("holders");
        held.sort();
        assert_eq!(
            held,
            vec![
                ("EMS".to_string(), 1),
                ("EMS".to_string(), 5000),
                ("STANDARDPACK".to_string(), 1)
            ]
        );
        let errors: Vec<(i64, i64, String)> = conn
            .prepare("SELECT group_id, user_id, error_code FROM assignment_errors ORDER BY user_id")
            .expect("errors")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("errors")
            .collect::<rusqlite::Result<_>>()
            .expect("errors");
        assert_eq!(
            errors,
            vec![
                (7, 1, "MUTUALLY_EXCLUSIVE_VIOLATION".to_string()),
                (7, 2, "COUNT_VIOLATION".to_string())
            ]
        );
        let old: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'assignments%'",
                [],
                |r| r.get(0),
            )
            .expect("schema");
        assert_eq!(old, 0, "the old table and its indexes are gone");
    }
}
