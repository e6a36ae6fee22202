//! The history over GraphQL (licensing.md H, graphql-api.md): the `AuditEvent` types, the
//! `auditEvents` lists of `Query`, `User` and `Group`, who a request acts as (H3), and the
//! events of mutations that failed (H5), which roll back and are recorded in a transaction of
//! their own.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::store::Store;
use crate::store::history::{self, Acting, Activity, Actor, Event, Filter, Target};

use super::{AppState, api_error, cursor, page_args};

/// The request's actor: a request built without one (tests of the schema alone) is local.
pub(crate) fn acting(ctx: &Context<'_>) -> Arc<Acting> {
    ctx.data_opt::<Arc<Acting>>()
        .cloned()
        .unwrap_or_else(|| Acting::new(Actor::local()))
}

/// The activity of each mutation field (H2), for the events of refusals and failures.
pub fn activity_of(field: &str) -> Option<Activity> {
    Some(match field {
        "updateDirectory" => Activity::UpdateDirectory,
        "setPrepaidUnits" => Activity::SetPrepaidUnits,
        "createUser" => Activity::AddUser,
        "updateUser" => Activity::UpdateUser,
        "deleteUser" => Activity::DeleteUser,
        "createGroup" => Activity::AddGroup,
        "deleteGroup" => Activity::DeleteGroup,
        "addGroupMembers" => Activity::AddMember,
        "removeGroupMembers" => Activity::RemoveMember,
        "assignLicense" => Activity::ChangeUserLicense,
        "assignGroupLicense" => Activity::SetGroupLicense,
        "removeRedundantDirectLicenses" => Activity::RemoveRedundant,
        "reprocessGroup" => Activity::ReprocessGroup,
        "reprocessUser" => Activity::ReprocessUser,
        "reloadRules" => Activity::ReloadRules,
        "setSeatAlertThreshold" => Activity::SetSeatAlertThreshold,
        "createWebhook" => Activity::AddWebhook,
        "deleteWebhook" => Activity::DeleteWebhook,
        _ => return None,
    })
}

/// What a mutation that fails records (H5): its activity and the targets its arguments name.
pub struct Attempt {
    pub activity: Activity,
    pub targets: Vec<Target>,
}

impl Attempt {
    pub fn new(activity: Activity) -> Attempt {
        Attempt {
            activity,
            targets: Vec::new(),
        }
    }

    /// Names a user or group by the id given, when it is one (a malformed id names nothing).
    pub fn on(mut self, kind: &'static str, id: &ID) -> Attempt {
        if let Ok(n) = id.parse::<i64>()
            && n > 0
        {
            self.targets
                .push(Target::of(kind, Some(n.to_string()), None));
        }
        self
    }

    pub fn product(mut self, sku: &str) -> Attempt {
        self.targets.push(Target::product(sku));
        self
    }
}

impl Attempt {
    fn event(self) -> Event {
        Event::new(self.activity, self.targets)
    }
}

/// The code and message of a GraphQL error, as H5 records them.
pub fn code_and_message(error: &async_graphql::Error) -> (String, String) {
    let code = error
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .and_then(|v| match v {
            async_graphql::Value::String(s) => Some(s.clone()),
            async_graphql::Value::Enum(s) => Some(s.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "INTERNAL_SERVER_ERROR".into());
    (code, error.message.clone())
}

/// Runs a mutation's body and records its failure, if it fails (H5).
pub async fn audited<R>(
    ctx: &Context<'_>,
    attempt: Attempt,
    body: impl std::future::Future<Output = Result<R>>,
) -> Result<R> {
    let result = body.await;
    if let Err(error) = &result
        && let Ok(state) = ctx.data::<AppState>()
    {
        let (code, message) = code_and_message(error);
        let event = attempt.event().failure(&code, &message);
        history::record_apart(&state.store, &acting(ctx), event).await;
    }
    result
}

// ---- Types ---------------------------------------------------------------------------------------

/// What an event is about, broadly.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuditCategory {
    /// The tenant's own settings (`updateDirectory`).
    DirectoryManagement,
    /// Users created, changed or deleted.
    UserManagement,
    /// Groups created, renamed or deleted, and their members.
    GroupManagement,
    /// Licenses set on groups and users, seats, reprocessing.
    LicenseManagement,
    /// What processing did: runs of a group and each user's licenses it changed.
    LicenseProcessing,
    /// The rules: reloads.
    Policy,
    /// Alerts and webhooks.
    Notifications,
}

impl AuditCategory {
    fn of(c: history::Category) -> AuditCategory {
        use history::Category as C;
        match c {
            C::DirectoryManagement => AuditCategory::DirectoryManagement,
            C::UserManagement => AuditCategory::UserManagement,
            C::GroupManagement => AuditCategory::GroupManagement,
            C::LicenseManagement => AuditCategory::LicenseManagement,
            C::LicenseProcessing => AuditCategory::LicenseProcessing,
            C::Policy => AuditCategory::Policy,
            C::Notifications => AuditCategory::Notifications,
        }
    }

    pub fn stored(self) -> history::Category {
        use history::Category as C;
        match self {
            AuditCategory::DirectoryManagement => C::DirectoryManagement,
            AuditCategory::UserManagement => C::UserManagement,
            AuditCategory::GroupManagement => C::GroupManagement,
            AuditCategory::LicenseManagement => C::LicenseManagement,
            AuditCategory::LicenseProcessing => C::LicenseProcessing,
            AuditCategory::Policy => C::Policy,
            AuditCategory::Notifications => C::Notifications,
        }
    }
}

/// Whether the change was made.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuditResult {
    /// Made.
    Success,
    /// Refused or failed: nothing changed; `resultReason` says why.
    Failure,
}

/// Who made a change.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuditActorKind {
    /// An admin or reader token, by its name.
    Token,
    /// A SCIM provisioning token, by its name.
    Provisioning,
    /// Processing (`group-based licensing`).
    System,
    /// A server without tokens (`local`).
    Local,
}

/// Who made a change (H3).
#[derive(SimpleObject)]
pub struct AuditActor {
    /// What kind of actor this is.
    pub kind: AuditActorKind,
    /// The token's name (never the token), `group-based licensing` or `local`.
    pub name: String,
}

/// A changed property (Graph's `modifiedProperty`).
#[derive(SimpleObject)]
pub struct AuditProperty {
    /// The property, e.g. `usageLocation`, or a product and its source (`EMS (group 7)`).
    pub display_name: String,
    /// Null: the property had no value (or the thing did not exist).
    pub old_value: Option<String>,
    /// Null: the property has no value now (or the thing is gone).
    pub new_value: Option<String>,
}

/// What an event is about: a `User`, `Group`, `Product`, `Directory`, `RuleSet` or `Webhook`.
#[derive(SimpleObject)]
pub struct AuditTarget {
    /// `User`, `Group`, `Product`, `Directory`, `RuleSet` or `Webhook`.
    #[graphql(name = "type")]
    pub kind: String,
    /// Its id (a product's: its `skuPartNumber`); null for the directory and the rules.
    pub id: Option<ID>,
    /// Its name when the event was written.
    pub display_name: Option<String>,
    /// What changed on it, with the old and new values.
    pub modified_properties: Vec<AuditProperty>,
}

/// One change, who made it and what came of it (H2).
#[derive(SimpleObject)]
pub struct AuditEvent {
    /// The event's id; ids grow with time.
    pub id: ID,
    /// When it was written, inside the change's transaction.
    pub activity_date_time: DateTime<Utc>,
    /// What the event is about, broadly.
    pub category: AuditCategory,
    /// Graph's name of the activity, e.g. `Change user license`.
    pub activity_display_name: String,
    /// Who made the change: a token's name, provisioning, processing or the local operator.
    pub initiated_by: AuditActor,
    /// What the change was made to, with the properties it changed.
    pub target_resources: Vec<AuditTarget>,
    /// Whether the change was made.
    pub result: AuditResult,
    /// FAILURE: `CODE: message`; a processing run's finish: its counts.
    pub result_reason: Option<String>,
    /// Shared by the events of one request or one processing run.
    pub correlation_id: ID,
}

impl AuditEvent {
    pub(crate) fn of(row: history::EventRow) -> AuditEvent {
        let kind = match row.actor.kind {
            history::ActorKind::Token => AuditActorKind::Token,
            history::ActorKind::Provisioning => AuditActorKind::Provisioning,
            history::ActorKind::System => AuditActorKind::System,
            history::ActorKind::Local => AuditActorKind::Local,
        };
        AuditEvent {
            id: ID(row.id.to_string()),
            activity_date_time: crate::store::parse_time(&row.at).unwrap_or_default(),
            category: AuditCategory::of(row.category),
            activity_display_name: row.activity.display_name().to_string(),
            initiated_by: AuditActor {
                kind,
                name: row.actor.name,
            },
            target_resources: row
                .targets
                .into_iter()
                .map(|t| AuditTarget {
                    kind: t.kind,
                    id: t.id.map(ID),
                    display_name: t.name,
                    modified_properties: t
                        .properties
                        .into_iter()
                        .map(|p| AuditProperty {
                            display_name: p.name,
                            old_value: p.old,
                            new_value: p.new,
                        })
                        .collect(),
                })
                .collect(),
            result: if row.failed {
                AuditResult::Failure
            } else {
                AuditResult::Success
            },
            result_reason: row.reason,
            correlation_id: ID(row.correlation.to_string()),
        }
    }
}

/// One event of a page, with its cursor.
#[derive(SimpleObject)]
pub struct AuditEventEdge {
    /// Where this event is in the list; `after` takes it to continue from here.
    pub cursor: String,
    /// The event.
    pub node: AuditEvent,
}

/// One page of events, newest first.
#[derive(SimpleObject)]
pub struct AuditEventConnection {
    /// The events of this page, newest first.
    pub edges: Vec<AuditEventEdge>,
    /// Whether more events follow, and the cursor to continue from.
    pub page_info: super::types::PageInfo,
    /// How many events the whole list holds (counted only when asked for).
    pub total_count: i32,
}

const CURSOR: &str = "ae";

/// A page of the events the filter selects, newest first.
pub async fn page(
    ctx: &Context<'_>,
    filter: Filter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AuditEventConnection> {
    let (first, after) = page_args(first, after.as_deref(), CURSOR)?;
    let before = (after > 0).then_some(after);
    let counted = ctx.look_ahead().field("totalCount").exists();
    let state = ctx.data::<AppState>()?;
    let (mut rows, total) = state
        .store
        .read(move |c| {
            let rows = history::page(c, &filter, before, first + 1)?;
            let total = if counted {
                history::count(c, &filter)?
            } else {
                0
            };
            Ok((rows, total))
        })
        .await
        .map_err(api_error)?;
    let has_next_page = rows.len() > first;
    rows.truncate(first);
    let edges: Vec<AuditEventEdge> = rows
        .into_iter()
        .map(|row| AuditEventEdge {
            cursor: cursor(CURSOR, row.id),
            node: AuditEvent::of(row),
        })
        .collect();
    Ok(AuditEventConnection {
        page_info: super::types::PageInfo {
            has_next_page,
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        },
        edges,
        total_count: i32::try_from(total).unwrap_or(i32::MAX),
    })
}

/// H5 for a request refused before it ran (a reader's mutation): one failure event per
/// mutation field of the operation, with the targets its literal id arguments name.
pub async fn record_refusal(
    store: &Store,
    acting: &Acting,
    document: &async_graphql::parser::types::ExecutableDocument,
    operation: Option<&str>,
    code: &str,
    message: &str,
) {
    use async_graphql::parser::types::Selection;
    let Some(op) = super::order::operation(document, operation) else {
        return;
    };
    for item in &op.selection_set.node.items {
        let Selection::Field(field) = &item.node else {
            continue;
        };
        let Some(activity) = activity_of(field.node.name.node.as_str()) else {
            continue;
        };
        let mut attempt = Attempt::new(activity);
        for (name, value) in &field.node.arguments {
            let kind = match name.node.as_str() {
                "id" if activity == Activity::DeleteWebhook => "Webhook",
                "id" | "userId" if activity != Activity::DeleteGroup => "User",
                "id" | "groupId" => "Group",
                _ => continue,
            };
            if let Some(async_graphql::Value::String(id)) = value.node.clone().into_const() {
                attempt = attempt.on(kind, &ID(id));
            }
        }
        history::record_apart(store, acting, attempt.event().failure(code, message)).await;
    }
}
