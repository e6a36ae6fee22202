//! Notices over GraphQL (licensing.md N, graphql-api.md): alerts and their thresholds,
//! webhooks, and the processing updates that subscriptions send. The store keeps them
//! (`store::alerts`, `store::webhooks`); this module only gives them their GraphQL shape.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::store::alerts::{self, AlertRow, Kind};
use crate::store::events::Progress;
use crate::store::webhooks::{self, EventType, WebhookRow};

use super::types::{Group, LicenseProcessingState, PageInfo, Product, loader, table};
use super::{AppState, api_error, cursor, page_args};

fn time(stored: &str) -> DateTime<Utc> {
    crate::store::parse_time(stored).unwrap_or_default()
}

/// What an alert is about.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AlertKind {
    /// A product's available seats are at its `seatAlertThreshold` or below.
    LowSeats,
    /// At least one assignment of a product stands in `COUNT_VIOLATION`.
    SeatsExhausted,
    /// A group has members in an error state.
    LicenseErrors,
}

impl AlertKind {
    fn of(kind: Kind) -> AlertKind {
        match kind {
            Kind::LowSeats => AlertKind::LowSeats,
            Kind::SeatsExhausted => AlertKind::SeatsExhausted,
            Kind::LicenseErrors => AlertKind::LicenseErrors,
        }
    }
}

/// A condition an admin should act on (N1): raised once when it starts to hold, resolved
/// once when it stops (N2).
pub struct Alert(pub AlertRow);

/// A condition an admin should act on (N1): raised once when it starts to hold, resolved
/// once when it stops (N2).
#[Object]
impl Alert {
    /// The alert's id; ids grow with time.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What the alert is about.
    async fn kind(&self) -> AlertKind {
        AlertKind::of(self.0.kind)
    }

    /// When its condition started to hold.
    async fn raised_date_time(&self) -> DateTime<Utc> {
        time(&self.0.raised_at)
    }

    /// When its condition stopped holding; null while it stands.
    async fn resolved_date_time(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at.as_deref().map(time)
    }

    /// The product of a `LOW_SEATS` or `SEATS_EXHAUSTED` alert (null when the rules no longer
    /// know it).
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let Some(sku) = &self.0.sku else {
            return Ok(None);
        };
        Ok(table(ctx)?.product_by_name(sku).map(Product))
    }

    /// The group of a `LICENSE_ERRORS` alert (null once the group is deleted).
    async fn group(&self, ctx: &Context<'_>) -> Result<Option<Group>> {
        let Some(id) = self.0.group else {
            return Ok(None);
        };
        let view = loader(ctx)?.load_one(super::loaders::GroupKey(id)).await?;
        Ok(view.map(Group::as_of))
    }

    /// What raised it, as it stood then, e.g. `EMS: 2 seats available, at or below the alert
    /// threshold of 5 (100 bought, 98 used)`.
    async fn message(&self) -> &str {
        &self.0.message
    }
}

/// One alert of a page, with its cursor.
#[derive(SimpleObject)]
pub struct AlertEdge {
    /// Where this alert is in the list; `after` takes it to continue from here.
    pub cursor: String,
    /// The alert.
    pub node: Alert,
}

/// One page of alerts, newest first.
#[derive(SimpleObject)]
pub struct AlertConnection {
    /// The alerts of this page, newest first.
    pub edges: Vec<AlertEdge>,
    /// Whether more alerts follow, and the cursor to continue from.
    pub page_info: PageInfo,
    /// How many alerts the whole list holds.
    pub total_count: i32,
}

const ALERT_CURSOR: &str = "al";

pub async fn alert_page(
    ctx: &Context<'_>,
    active: Option<bool>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AlertConnection> {
    let (first, after) = page_args(first, after.as_deref(), ALERT_CURSOR)?;
    let after = (after > 0).then_some(after);
    let state = ctx.data::<AppState>()?;
    let (mut rows, total) = state
        .store
        .read(move |c| {
            Ok((
                alerts::page(c, active, after, first + 1)?,
                alerts::count(c, active)?,
            ))
        })
        .await
        .map_err(api_error)?;
    let has_next_page = rows.len() > first;
    rows.truncate(first);
    let edges: Vec<AlertEdge> = rows
        .into_iter()
        .map(|row| AlertEdge {
            cursor: cursor(ALERT_CURSOR, row.id),
            node: Alert(row),
        })
        .collect();
    Ok(AlertConnection {
        page_info: PageInfo {
            has_next_page,
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        },
        edges,
        total_count: i32::try_from(total).unwrap_or(i32::MAX),
    })
}

/// What a webhook may be sent.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookEventType {
    /// An alert was raised (`data`: the `Alert`).
    AlertRaised,
    /// An alert was resolved (`data`: the `Alert`).
    AlertResolved,
    /// A group's processing finished (`data`: its `GroupProcessingUpdate`).
    GroupProcessingComplete,
    /// An event was written to the history (`data`: the `AuditEvent`).
    AuditEvent,
}

impl WebhookEventType {
    pub fn of(t: EventType) -> WebhookEventType {
        match t {
            EventType::AlertRaised => WebhookEventType::AlertRaised,
            EventType::AlertResolved => WebhookEventType::AlertResolved,
            EventType::GroupProcessingComplete => WebhookEventType::GroupProcessingComplete,
            EventType::AuditEvent => WebhookEventType::AuditEvent,
        }
    }

    pub fn stored(self) -> EventType {
        match self {
            WebhookEventType::AlertRaised => EventType::AlertRaised,
            WebhookEventType::AlertResolved => EventType::AlertResolved,
            WebhookEventType::GroupProcessingComplete => EventType::GroupProcessingComplete,
            WebhookEventType::AuditEvent => EventType::AuditEvent,
        }
    }
}

/// The last attempt to deliver to a webhook.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    /// What was being delivered.
    pub event_type: WebhookEventType,
    /// When the attempt was made.
    pub attempted_date_time: DateTime<Utc>,
    /// The receiver's HTTP status; null when none came (no connection, a timeout).
    pub status_code: Option<i32>,
    /// Why the attempt failed (never the receiver's body); null when it succeeded.
    pub error: Option<String>,
}

/// A receiver of notices (N3).
pub struct Webhook(pub WebhookRow);

/// A receiver of notices (N3): deliveries are signed POSTs, in order, at least once.
#[Object]
impl Webhook {
    /// The webhook's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// What it is sent.
    async fn events(&self) -> Vec<WebhookEventType> {
        self.0
            .events
            .iter()
            .copied()
            .map(WebhookEventType::of)
            .collect()
    }

    /// What the admin wrote about it.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// When it was created.
    async fn created_date_time(&self) -> DateTime<Utc> {
        time(&self.0.created_at)
    }

    /// The last attempt to deliver to it; null before the first.
    async fn last_delivery(&self) -> Result<Option<WebhookDelivery>> {
        Ok(self.0.last.as_ref().map(|a| WebhookDelivery {
            event_type: WebhookEventType::of(a.event_type),
            attempted_date_time: time(&a.at),
            status_code: a.status.and_then(|s| i32::try_from(s).ok()),
            error: a.error.clone(),
        }))
    }

    /// Deliveries waiting to be made (each audit event counts).
    async fn pending_deliveries(&self) -> i32 {
        i32::try_from(self.0.pending).unwrap_or(i32::MAX)
    }
}

/// A webhook just created, with its secret.
#[derive(SimpleObject)]
pub struct WebhookCreated {
    /// The webhook.
    pub webhook: Webhook,
    /// The key of every delivery's signature (`X-Group-Licensing-Signature`): shown only
    /// here, once; keep it where the receiver can read it.
    pub secret: String,
}

pub async fn webhook_list(ctx: &Context<'_>) -> Result<Vec<Webhook>> {
    let state = ctx.data::<AppState>()?;
    let rows = state.store.read(webhooks::list).await.map_err(api_error)?;
    Ok(rows.into_iter().map(Webhook).collect())
}

/// A new webhook secret: 32 random bytes in hex.
pub fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| async_graphql::Error::new(format!("no randomness for a secret: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A group's processing, as `groupProcessing` sends it (P9).
pub struct GroupProcessingUpdate(pub Progress);

/// A group's processing, as `groupProcessing` sends it (P9).
#[Object]
impl GroupProcessingUpdate {
    /// The group.
    async fn group(&self) -> Group {
        Group::new(self.0.group)
    }

    /// Where its processing stands.
    async fn license_processing_state(&self) -> LicenseProcessingState {
        match self.0.state {
            "QUEUED" => LicenseProcessingState::Queued,
            "IN_PROGRESS" => LicenseProcessingState::InProgress,
            _ => LicenseProcessingState::Complete,
        }
    }

    /// Members processed so far by the current run, or by the last one when it is COMPLETE.
    async fn processed_members(&self) -> i32 {
        i32::try_from(self.0.processed).unwrap_or(i32::MAX)
    }

    /// Members the current (or last) run has to process.
    async fn members_to_process(&self) -> i32 {
        i32::try_from(self.0.to_process).unwrap_or(i32::MAX)
    }

    /// Members with at least one of the group's assignments in error.
    async fn license_error_count(&self) -> i32 {
        i32::try_from(self.0.errors).unwrap_or(i32::MAX)
    }
}
