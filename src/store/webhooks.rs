//! Webhooks and their outbox (licensing.md N3).
//!
//! A delivery is written to `outbox` in the transaction of its cause ([`enqueue`],
//! [`enqueue_audit`]), so it exists exactly when its cause committed and survives restarts.
//! The worker (`processing::delivery`) takes each webhook's oldest delivery ([`head`]), sends
//! it, and records the attempt ([`attempted`]): a delivered one is removed, a failed one waits
//! for its next attempt, so deliveries go in order per webhook.
//!
//! A transaction's audit events go to a webhook as one row naming their id range (a
//! processing step writes thousands), sent one event at a time from `next_event` on.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::events::{self, Notice};
use super::{Result, StoreError};

/// graphql-api.md's `WebhookEventType`: a bit each in `webhooks.events`, the stored number in
/// `outbox.event_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    AlertRaised = 1,
    AlertResolved = 2,
    GroupProcessingComplete = 4,
    AuditEvent = 8,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::AlertRaised,
        EventType::AlertResolved,
        EventType::GroupProcessingComplete,
        EventType::AuditEvent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventType::AlertRaised => "ALERT_RAISED",
            EventType::AlertResolved => "ALERT_RESOLVED",
            EventType::GroupProcessingComplete => "GROUP_PROCESSING_COMPLETE",
            EventType::AuditEvent => "AUDIT_EVENT",
        }
    }

    fn from_code(code: i64) -> Result<EventType> {
        EventType::ALL
            .into_iter()
            .find(|t| *t as i64 == code)
            .ok_or_else(|| StoreError::Corrupt(format!("webhook event type {code}")))
    }

    fn mask(types: &[EventType]) -> i64 {
        types.iter().fold(0, |m, t| m | *t as i64)
    }

    fn of_mask(mask: i64) -> Vec<EventType> {
        EventType::ALL
            .into_iter()
            .filter(|t| mask & *t as i64 != 0)
            .collect()
    }
}

/// Webhooks a tenant may have at once.
pub const MAX_WEBHOOKS: i64 = 50;
/// Longest URL accepted.
pub const MAX_URL: usize = 2048;

/// The last attempt of a webhook's deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub event_type: EventType,
    pub at: String,
    pub status: Option<i64>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub created_at: String,
    pub last: Option<Attempt>,
    /// Deliveries not made yet (each audit event counts).
    pub pending: i64,
}

/// Registers a webhook; the URL is checked by the caller (it takes a DNS lookup).
pub fn create(
    tx: &Transaction<'_>,
    url: &str,
    types: &[EventType],
    description: Option<&str>,
    secret: &str,
    now: &str,
) -> Result<i64> {
    if types.is_empty() {
        return Err(StoreError::BadInput(
            "events must name at least one event type".into(),
        ));
    }
    let description = match description {
        Some(d) if d.trim().is_empty() => None,
        Some(d) => Some(super::ops::text("description", d)?),
        None => None,
    };
    let count: i64 = tx.query_row("SELECT count(*) FROM webhooks", [], |r| r.get(0))?;
    if count >= MAX_WEBHOOKS {
        return Err(StoreError::BadInput(format!(
            "at most {MAX_WEBHOOKS} webhooks: delete one first"
        )));
    }
    Ok(tx.query_row(
        "INSERT INTO webhooks (url, events, description, secret, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![url, EventType::mask(types), description, secret, now],
        |r| r.get(0),
    )?)
}

/// One webhook.
pub fn get(conn: &Connection, id: i64) -> Result<WebhookRow> {
    list_where(conn, "w.id = ?1", id)?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("no webhook with id {id}")))
}

/// Removes a webhook and the deliveries it still had; returns it as it was.
pub fn delete(tx: &Transaction<'_>, id: i64) -> Result<WebhookRow> {
    let found = get(tx, id)?;
    tx.execute("DELETE FROM outbox WHERE webhook_id = ?1", [id])?;
    tx.execute("DELETE FROM webhooks WHERE id = ?1", [id])?;
    Ok(found)
}

/// Every webhook, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<WebhookRow>> {
    list_where(conn, "?1 = ?1", 0)
}

fn list_where(conn: &Connection, condition: &str, arg: i64) -> Result<Vec<WebhookRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT w.id, w.url, w.events, w.description, w.created_at, w.last_event_type,
                w.last_attempted_at, w.last_status, w.last_error,
                coalesce((SELECT sum(CASE WHEN o.first_event IS NULL THEN 1
                                          ELSE o.last_event - o.next_event + 1 END)
                            FROM outbox o WHERE o.webhook_id = w.id), 0)
           FROM webhooks w WHERE {condition} ORDER BY w.id"
    ))?;
    let rows = stmt.query_map([arg], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, Option<String>>(8)?,
            r.get::<_, i64>(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for found in rows {
        let (id, url, mask, description, created_at, last_type, last_at, status, error, pending) =
            found?;
        let last = match (last_type, last_at) {
            (Some(t), Some(at)) => Some(Attempt {
                event_type: EventType::from_code(t)?,
                at,
                status,
                error,
            }),
            _ => None,
        };
        out.push(WebhookRow {
            id,
            url,
            events: EventType::of_mask(mask),
            description,
            created_at,
            last,
            pending,
        });
    }
    Ok(out)
}

/// Queues a delivery of `data` (JSON, as GraphQL writes it) to every webhook that asked for
/// `kind`.
pub fn enqueue(tx: &Transaction<'_>, kind: EventType, data: &str, occurred: &str) -> Result<()> {
    let added = tx
        .prepare_cached(
            "INSERT INTO outbox (webhook_id, event_type, occurred_at, data, next_attempt_at)
             SELECT id, ?1, ?2, ?3, ?2 FROM webhooks WHERE events & ?1 != 0",
        )?
        .execute(params![kind as i64, occurred, data])?;
    if added > 0 {
        events::stage(Notice::Outbox);
    }
    Ok(())
}

/// Queues the audit events `first..=last` to every webhook that asked for them.
pub fn enqueue_audit(tx: &Transaction<'_>, first: i64, last: i64, occurred: &str) -> Result<()> {
    let kind = EventType::AuditEvent as i64;
    let added = tx
        .prepare_cached(
            "INSERT INTO outbox (webhook_id, event_type, occurred_at, first_event, last_event,
                                 next_event, next_attempt_at)
             SELECT id, ?1, ?2, ?3, ?4, ?3, ?2 FROM webhooks WHERE events & ?1 != 0",
        )?
        .execute(params![kind, occurred, first, last])?;
    if added > 0 {
        events::stage(Notice::Outbox);
    }
    Ok(())
}

/// The oldest audit event a delivery still needs: pruning stops before it.
pub fn oldest_pending_event(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT min(next_event) FROM outbox WHERE first_event IS NOT NULL",
        [],
        |r| r.get(0),
    )?)
}

// ---- For the worker ------------------------------------------------------------------------

/// The delivery at the head of a webhook's queue.
#[derive(Clone, Debug)]
pub struct Due {
    pub outbox: i64,
    pub webhook: i64,
    pub url: String,
    pub secret: String,
    pub event_type: EventType,
    pub occurred_at: String,
    /// The body's `data`; `None` for an audit event (read by `event`).
    pub data: Option<String>,
    /// The audit event to send, and the last of its row.
    pub event: Option<(i64, i64)>,
    pub attempts: i64,
    pub first_attempt_at: Option<String>,
    pub next_attempt_at: String,
}

impl Due {
    /// The delivery's id, the same at every attempt (receivers drop repeats by it).
    pub fn delivery_id(&self) -> String {
        match self.event {
            Some((event, _)) => format!("{}-{}-{event}", self.webhook, self.outbox),
            None => format!("{}-{}", self.webhook, self.outbox),
        }
    }
}

/// Each webhook with deliveries waiting, with the time its head is due.
pub fn waiting(conn: &Connection) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, due FROM (
            SELECT w.id, (SELECT o.next_attempt_at FROM outbox o WHERE o.webhook_id = w.id
                           ORDER BY o.id LIMIT 1) AS due
              FROM webhooks w)
          WHERE due IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The oldest delivery of a webhook.
pub fn head(conn: &Connection, webhook: i64) -> Result<Option<Due>> {
    let found = conn
        .prepare_cached(
            "SELECT o.id, o.webhook_id, w.url, w.secret, o.event_type, o.occurred_at, o.data,
                    o.next_event, o.last_event, o.attempts, o.first_attempt_at, o.next_attempt_at
               FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
              WHERE o.webhook_id = ?1 ORDER BY o.id LIMIT 1",
        )?
        .query_row([webhook], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, Option<i64>>(8)?,
                r.get::<_, i64>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, String>(11)?,
            ))
        })
        .optional()?;
    let Some((
        outbox,
        webhook,
        url,
        secret,
        kind,
        occurred_at,
        data,
        next,
        last,
        attempts,
        first,
        due,
    )) = found
    else {
        return Ok(None);
    };
    Ok(Some(Due {
        outbox,
        webhook,
        url,
        secret,
        event_type: EventType::from_code(kind)?,
        occurred_at,
        data,
        event: next.zip(last),
        attempts,
        first_attempt_at: first,
        next_attempt_at: due,
    }))
}

/// What came of an attempt.
pub enum Outcome {
    Delivered {
        status: i64,
    },
    /// To be tried again at `retry_at`.
    Failed {
        status: Option<i64>,
        error: String,
        retry_at: String,
    },
    /// Given up on (a day of retries, or its event is gone): the next one's turn.
    Dropped {
        status: Option<i64>,
        error: String,
    },
}

/// Records an attempt of `due` made at `at`. A webhook deleted meanwhile records nothing.
pub fn attempted(tx: &Transaction<'_>, due: &Due, at: &str, outcome: &Outcome) -> Result<()> {
    let (status, error) = match outcome {
        Outcome::Delivered { status } => (Some(*status), None),
        Outcome::Failed { status, error, .. } | Outcome::Dropped { status, error } => {
            (*status, Some(error.as_str()))
        }
    };
    let changed = tx.execute(
        "UPDATE webhooks SET last_event_type = ?1, last_attempted_at = ?2, last_status = ?3,
                             last_error = ?4 WHERE id = ?5",
        params![due.event_type as i64, at, status, error, due.webhook],
    )?;
    if changed == 0 {
        return Ok(());
    }
    match outcome {
        Outcome::Failed { retry_at, .. } => {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1,
                                   first_attempt_at = coalesce(first_attempt_at, ?1),
                                   next_attempt_at = ?2 WHERE id = ?3",
                params![at, retry_at, due.outbox],
            )?;
        }
        Outcome::Delivered { .. } | Outcome::Dropped { .. } => match due.event {
            Some((event, last)) if event < last => {
                tx.execute(
                    "UPDATE outbox SET next_event = ?1, attempts = 0, first_attempt_at = NULL,
                                       next_attempt_at = ?2 WHERE id = ?3",
                    params![event + 1, at, due.outbox],
                )?;
            }
            _ => {
                tx.execute("DELETE FROM outbox WHERE id = ?1", [due.outbox])?;
            }
        },
    }
    Ok(())
}
