//! Alerts (licensing.md N1, N2): raised when a condition starts to hold, resolved when it
//! stops, each once, in the transaction of the change that caused it, and audited.
//!
//! The conditions are read from counts the writer keeps anyway: a product's seats
//! (`prepaid_units`, `consumed_units`) and threshold, its assignments in `COUNT_VIOLATION`
//! (`seat_violations`), a group's users in error (`group_errors`). [`settle`] runs when a
//! transaction's journal finishes, so every audited write (mutations, SCIM, processing steps)
//! leaves the alerts in step with the data: it compares every product with its standing
//! alerts, and the groups in error with theirs (through partial indexes: its cost grows with
//! the groups in error, not with the groups).
//!
//! An alert raised or resolved is an event of the history (category `NOTIFICATIONS`), goes to
//! the webhooks that asked for it (`webhooks`), and is announced to subscribers after commit
//! (`events`).

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::json;

use super::events::{self, Notice};
use super::history::{Activity, Event, Journal, Property, Target};
use super::webhooks::{self, EventType};
use super::{Result, StoreError};

/// The stored code of the error that SEATS_EXHAUSTED watches.
pub const COUNT_VIOLATION: &str = "COUNT_VIOLATION";

/// Largest threshold accepted: more seats than any tenant buys.
pub const MAX_THRESHOLD: i64 = 1_000_000_000;

/// graphql-api.md's `AlertKind`; the stored number of each is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    LowSeats = 0,
    SeatsExhausted = 1,
    LicenseErrors = 2,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::LowSeats, Kind::SeatsExhausted, Kind::LicenseErrors];

    pub fn name(self) -> &'static str {
        match self {
            Kind::LowSeats => "LOW_SEATS",
            Kind::SeatsExhausted => "SEATS_EXHAUSTED",
            Kind::LicenseErrors => "LICENSE_ERRORS",
        }
    }

    fn from_code(code: i64) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| *k as i64 == code)
            .ok_or_else(|| StoreError::Corrupt(format!("alert kind {code}")))
    }
}

/// An alert as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    pub id: i64,
    pub kind: Kind,
    pub sku: Option<String>,
    pub group: Option<i64>,
    pub raised_at: String,
    pub resolved_at: Option<String>,
    /// What raised it, in words, as it stood then.
    pub message: String,
}

impl AlertRow {
    /// The alert as GraphQL writes it (webhook bodies): the product by its `skuPartNumber`,
    /// the group by its id.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id.to_string(),
            "kind": self.kind.name(),
            "raisedDateTime": super::graphql_time(&self.raised_at),
            "resolvedDateTime": self.resolved_at.as_deref().map(super::graphql_time),
            "product": self.sku.as_ref().map(|sku| json!({ "skuPartNumber": sku })),
            "group": self.group.map(|g| json!({ "id": g.to_string() })),
            "message": self.message,
        })
    }
}

const COLUMNS: &str = "id, kind, sku, group_id, raised_at, resolved_at, message";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        kind: r.get(1)?,
        sku: r.get(2)?,
        group: r.get(3)?,
        raised_at: r.get(4)?,
        resolved_at: r.get(5)?,
        message: r.get(6)?,
    })
}

/// A row before its kind is checked.
struct Raw {
    id: i64,
    kind: i64,
    sku: Option<String>,
    group: Option<i64>,
    raised_at: String,
    resolved_at: Option<String>,
    message: String,
}

fn alert_of(raw: Raw) -> Result<AlertRow> {
    Ok(AlertRow {
        id: raw.id,
        kind: Kind::from_code(raw.kind)?,
        sku: raw.sku,
        group: raw.group,
        raised_at: raw.raised_at,
        resolved_at: raw.resolved_at,
        message: raw.message,
    })
}

/// An alert about to be raised: its subject (a group with its name) and message.
struct Raise {
    kind: Kind,
    sku: Option<String>,
    group: Option<(i64, String)>,
    message: String,
}

// ---- Thresholds ---------------------------------------------------------------------------

/// N1: the threshold of LOW_SEATS for a product the rules know (`None` clears it).
pub fn set_threshold(tx: &Transaction<'_>, sku: &str, threshold: Option<i64>) -> Result<()> {
    if let Some(t) = threshold
        && !(0..=MAX_THRESHOLD).contains(&t)
    {
        return Err(StoreError::BadInput(format!(
            "threshold {t} is out of range: give 0 to {MAX_THRESHOLD} seats, or null to clear it"
        )));
    }
    tx.execute(
        "INSERT INTO products (sku, seat_alert_threshold) VALUES (?1, ?2)
         ON CONFLICT (sku) DO UPDATE SET seat_alert_threshold = excluded.seat_alert_threshold",
        params![sku, threshold],
    )?;
    Ok(())
}

/// The threshold of a product, if one is set.
pub fn threshold(conn: &Connection, sku: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT seat_alert_threshold FROM products WHERE sku = ?1")?
        .query_row([sku], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

// ---- Settling ------------------------------------------------------------------------------

struct Seats {
    sku: String,
    prepaid: i64,
    consumed: i64,
    threshold: Option<i64>,
    violations: i64,
}

/// N2: raises the alerts whose condition holds and that do not stand, and resolves the
/// standing ones whose condition no longer holds, recording each in the journal.
pub fn settle(journal: &mut Journal<'_>) -> Result<()> {
    let tx = journal.tx();
    let products: Vec<Seats> = {
        let mut stmt = tx.prepare_cached(
            // Only the products that could raise (a threshold, or assignments short of a seat)
            // or resolve (an alert standing): every transaction settles, and the catalog has
            // hundreds of products.
            "SELECT sku, prepaid_units, consumed_units, seat_alert_threshold, seat_violations
               FROM products p
              WHERE p.seat_alert_threshold IS NOT NULL OR p.seat_violations > 0
                 OR EXISTS (SELECT 1 FROM alerts a WHERE a.kind < 2 AND a.sku = p.sku
                               AND a.resolved_at IS NULL)",
        )?;
        stmt.query_map([], |r| {
            Ok(Seats {
                sku: r.get(0)?,
                prepaid: r.get(1)?,
                consumed: r.get(2)?,
                threshold: r.get(3)?,
                violations: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let standing: Vec<AlertRow> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE resolved_at IS NULL AND kind < 2"
        ))?;
        let rows = stmt
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(alert_of).collect::<Result<_>>()?
    };
    let mut raise: Vec<Raise> = Vec::new();
    let mut resolve: Vec<AlertRow> = Vec::new();
    for p in &products {
        let available = (p.prepaid - p.consumed).max(0);
        let low = p.threshold.is_some_and(|t| available <= t);
        let exhausted = p.violations > 0;
        for (kind, holds) in [(Kind::LowSeats, low), (Kind::SeatsExhausted, exhausted)] {
            let stands = standing
                .iter()
                .find(|a| a.kind == kind && a.sku.as_deref() == Some(p.sku.as_str()));
            match (holds, stands) {
                (true, None) => {
                    let message = match kind {
                        Kind::LowSeats => format!(
                            "{}: {available} seats available, at or below the alert threshold of {} ({} bought, {} used)",
                            p.sku,
                            p.threshold.unwrap_or_default(),
                            p.prepaid,
                            p.consumed
                        ),
                        _ => format!(
                            "{}: out of seats: {} {} could not be given one (COUNT_VIOLATION); {} bought, {} used",
                            p.sku,
                            p.violations,
                            if p.violations == 1 {
                                "assignment"
                            } else {
                                "assignments"
                            },
                            p.prepaid,
                            p.consumed
                        ),
                    };
                    raise.push(Raise {
                        kind,
                        sku: Some(p.sku.clone()),
                        group: None,
                        message,
                    });
                }
                (false, Some(a)) => resolve.push(a.clone()),
                _ => {}
            }
        }
    }
    // A product alert stands for a product that has a row (rows are never deleted); one
    // whose product row is gone resolves.
    for a in &standing {
        if !products
            .iter()
            .any(|p| a.sku.as_deref() == Some(p.sku.as_str()))
        {
            resolve.push(a.clone());
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "SELECT e.group_id, coalesce(g.display_name, ''), e.users FROM group_errors e
               LEFT JOIN groups g ON g.id = e.group_id
              WHERE e.error_code = '' AND e.users > 0
                AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.group_id = e.group_id
                                   AND a.resolved_at IS NULL AND a.kind = 2)",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for found in rows {
            let (group, name, users) = found?;
            let message = format!(
                "{name} (group {group}): {users} {} in an error state",
                if users == 1 { "user" } else { "users" }
            );
            raise.push(Raise {
                kind: Kind::LicenseErrors,
                sku: None,
                group: Some((group, name)),
                message,
            });
        }
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts a WHERE a.resolved_at IS NULL AND a.kind = 2
                AND NOT EXISTS (SELECT 1 FROM group_errors e WHERE e.group_id = a.group_id
                                   AND e.error_code = '' AND e.users > 0)"
        ))?;
        let rows = stmt
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for r in rows {
            resolve.push(alert_of(r)?);
        }
    }
    let at = journal.at().to_string();
    for mut alert in resolve {
        tx.execute(
            "UPDATE alerts SET resolved_at = ?1 WHERE id = ?2",
            params![at, alert.id],
        )?;
        alert.resolved_at = Some(at.clone());
        let target = subject(&alert, None).with(vec![Property::new(
            alert.kind.name(),
            Some(alert.message.clone()),
            None,
        )]);
        journal.record(&Event::new(Activity::ResolveAlert, vec![target]))?;
        announce(journal.tx(), &alert, EventType::AlertResolved)?;
    }
    for Raise {
        kind,
        sku,
        group,
        message,
    } in raise
    {
        let id: i64 = tx.query_row(
            "INSERT INTO alerts (kind, sku, group_id, raised_at, message) VALUES (?1, ?2, ?3, ?4, ?5)
             RETURNING id",
            params![kind as i64, sku, group.as_ref().map(|g| g.0), at, message],
            |r| r.get(0),
        )?;
        let alert = AlertRow {
            id,
            kind,
            sku,
            group: group.as_ref().map(|g| g.0),
            raised_at: at.clone(),
            resolved_at: None,
            message,
        };
        let target = subject(&alert, group.map(|g| g.1)).with(vec![Property::new(
            kind.name(),
            None,
            Some(alert.message.clone()),
        )]);
        journal.record(&Event::new(Activity::RaiseAlert, vec![target]))?;
        announce(journal.tx(), &alert, EventType::AlertRaised)?;
    }
    Ok(())
}

fn subject(alert: &AlertRow, group_name: Option<String>) -> Target {
    match (&alert.sku, alert.group) {
        (Some(sku), _) => Target::product(sku),
        (None, Some(group)) => Target::group(group, group_name),
        (None, None) => Target::of("Alert", Some(alert.id.to_string()), None),
    }
}

fn announce(tx: &Transaction<'_>, alert: &AlertRow, kind: EventType) -> Result<()> {
    let at = match kind {
        EventType::AlertResolved => alert.resolved_at.as_deref().unwrap_or(&alert.raised_at),
        _ => &alert.raised_at,
    };
    webhooks::enqueue(tx, kind, &alert.to_json().to_string(), at)?;
    events::stage(Notice::Alert(alert.clone()));
    Ok(())
}

// ---- Reading -------------------------------------------------------------------------------

/// A page of alerts, newest first (by id), after the alert `after`; `active`: only standing
/// (true) or only resolved (false) ones.
pub fn page(
    conn: &Connection,
    active: Option<bool>,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<AlertRow>> {
    let condition = match active {
        Some(true) => "resolved_at IS NULL",
        Some(false) => "resolved_at IS NOT NULL",
        None => "1",
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE {condition} AND id < ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![after.unwrap_or(i64::MAX), limit as i64], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(alert_of).collect()
}

pub fn count(conn: &Connection, active: Option<bool>) -> Result<i64> {
    let condition = match active {
        Some(true) => "resolved_at IS NULL",
        Some(false) => "resolved_at IS NOT NULL",
        None => "1",
    };
    Ok(conn.query_row(
        &format!("SELECT count(*) FROM alerts WHERE {condition}"),
        [],
        |r| r.get(0),
    )?)
}
