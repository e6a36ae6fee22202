//! The stored state `/metrics` reports, read in one snapshot at each scrape: seats, users and
//! groups in error, and the processing queue. Read rather than counted in memory, so that the
//! figures are the database's after a restart and equal what GraphQL answers.

use std::collections::HashMap;

use rusqlite::Connection;

use super::{Result, read};

pub struct Gauges {
    /// `(prepaid, consumed)` per product name, every product the store knows.
    pub seats: HashMap<String, (i64, i64)>,
    /// Users with at least one assignment in error with the code (from a group or direct),
    /// per stored code; codes with none are absent.
    pub users_in_error: HashMap<String, i64>,
    /// Groups with at least one user in error (Q2).
    pub groups_in_error: i64,
    /// Items of the durable work queue (P8).
    pub work_items: i64,
    /// Groups whose run has started (P9 `IN_PROGRESS`).
    pub groups_in_progress: i64,
    /// Groups with work waiting and none started (P9 `QUEUED`).
    pub groups_queued: i64,
}

/// Meant to run inside one read transaction (`Store::snapshot`), so the figures agree.
pub fn read(conn: &Connection) -> Result<Gauges> {
    let seats = read::seats(conn)?;
    let users_in_error = conn
        .prepare_cached(
            "SELECT error_code, count(DISTINCT user_id) FROM assignment_errors GROUP BY error_code",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let count =
        |sql: &str| -> Result<i64> { Ok(conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?) };
    let groups_where =
        |condition: &str| count(&format!("SELECT count(*) FROM groups g WHERE {condition}"));
    Ok(Gauges {
        seats,
        users_in_error,
        groups_in_error: groups_where(read::GROUP_IN_ERROR)?,
        work_items: count("SELECT count(*) FROM work")?,
        groups_in_progress: groups_where(read::GROUP_IN_PROGRESS)?,
        groups_queued: groups_where(read::GROUP_QUEUED)?,
    })
}
