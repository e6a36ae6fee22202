//! Versioned migrations, applied at start in one transaction each; `PRAGMA user_version` is the
//! version reached.
//!
//! Plans and products are stored by name (`skuPartNumber`, `servicePlanName`), never by the
//! rule table's dense ids, which change when the rules are reloaded.
//!
//! A group's intent for its members is not stored per member: it is the group's license set and
//! its membership. `assignments` holds what processing decided (applied configuration, state,
//! error) and direct assignments; a member with no row yet for a product of one of its groups is
//! `PENDING`.

use rusqlite::Connection;

use super::Result;

const MIGRATIONS: &[&str] = &[
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
    // 2: processing a million members writes millions of assignment rows, and every index
    // costs a B-tree insert per row. Rows from one group are found through the PK (by user) or,
    // for former members, through the error index: a blocked withdrawal is always in error.
    r#"
DROP INDEX assignments_by_group;
"#,
    // 3: counts that dashboards read on every request, kept by the writer instead of counted:
    // the members of a group, and the users in error per group and code (code '' = any code).
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
    // 4: SQLite gives a new row max(id) + 1, so deleting the newest user or group and creating
    // another reused its id, and stored errors (C1's other user, C3's conflicting group) and
    // clients holding the old id came to name someone else. The highest id ever given, per
    // table: new ids start above it.
    r#"
ALTER TABLE directory ADD COLUMN last_user_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE directory ADD COLUMN last_group_id INTEGER NOT NULL DEFAULT 0;
UPDATE directory SET last_user_id = (SELECT coalesce(max(id), 0) FROM users),
                     last_group_id = (SELECT coalesce(max(id), 0) FROM groups);
"#,
];

pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
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
}
