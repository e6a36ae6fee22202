//! The history (licensing.md H): audit events, written by the writer in the transaction of the
//! change they record (H1), read newest first with filters (H6), and pruned oldest first.
//!
//! Data enters through a [`Journal`], opened on the write transaction with who is acting (H3)
//! and closed with [`Journal::finish`] before the transaction commits; it leaves through
//! [`page`] and [`count`].
//!
//! The layout is chosen for processing, which writes one "Change user license" event per user
//! whose licenses changed (a million in B1):
//! - an event is one row; its targets are a small JSON array (`[[type, id, name, [[property,
//!   old, new], …]], …]`); actors are a table of their own, named once;
//! - the user and the group an event is about are columns with partial indexes, products a
//!   table of `(product, event)` (products by a number of their own, `audit_skus`): the filters
//!   of `auditEvents` walk one of them newest first;
//! - `id`s only grow (pruning always keeps the newest event, so no id is given twice) and times
//!   never go back (the writer takes the later of
//!   the clock and the last event's time), so id order is time order: a time range is an id
//!   range, found by bisection, and with only a prefix ever pruned, the events of an id range
//!   are counted by subtraction;
//! - events per category and result are kept counts, for `totalCount` of those filters.
//! - processing's "Change user license" events of a group go [`BATCH`] to a row, packed: the
//!   row's products once (`{"p": [sku, …], "e": [entry, …]}`), each entry `[user, sign-in name,
//!   [[product's place in p, source, old, new], …]]`, each value `null`, `state * 8 + code`
//!   ([`pack`]) or `[that, plans off]`; rows written before the packing read too.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use rusqlite::{CachedStatement, Connection, OptionalExtension, Transaction, params};

use super::codec::push_json_string;
use super::{Result, StoreError};

/// Who made a change (H3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// An admin or reader token, by its name.
    Token,
    /// A SCIM provisioning token, by its name.
    Provisioning,
    /// Processing.
    System,
    /// A request to a server without tokens, or a signal sent on its machine.
    Local,
}

impl ActorKind {
    pub const ALL: [ActorKind; 4] = [
        ActorKind::Token,
        ActorKind::Provisioning,
        ActorKind::System,
        ActorKind::Local,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Token => "TOKEN",
            ActorKind::Provisioning => "PROVISIONING",
            ActorKind::System => "SYSTEM",
            ActorKind::Local => "LOCAL",
        }
    }

    fn from_name(name: &str) -> Option<ActorKind> {
        ActorKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: String,
}

impl Actor {
    /// Processing (H3).
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            name: "group-based licensing".into(),
        }
    }

    /// Whoever reaches a server that has no tokens (H3).
    pub fn local() -> Actor {
        Actor {
            kind: ActorKind::Local,
            name: "local".into(),
        }
    }
}

/// The categories of graphql-api.md's `AuditCategory`. The stored number of each is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    DirectoryManagement = 0,
    UserManagement = 1,
    GroupManagement = 2,
    LicenseManagement = 3,
    LicenseProcessing = 4,
    Policy = 5,
    Notifications = 6,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::DirectoryManagement,
        Category::UserManagement,
        Category::GroupManagement,
        Category::LicenseManagement,
        Category::LicenseProcessing,
        Category::Policy,
        Category::Notifications,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::DirectoryManagement => "DIRECTORY_MANAGEMENT",
            Category::UserManagement => "USER_MANAGEMENT",
            Category::GroupManagement => "GROUP_MANAGEMENT",
            Category::LicenseManagement => "LICENSE_MANAGEMENT",
            Category::LicenseProcessing => "LICENSE_PROCESSING",
            Category::Policy => "POLICY",
            Category::Notifications => "NOTIFICATIONS",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }

    fn from_code(code: i64) -> Result<Category> {
        Category::ALL
            .into_iter()
            .find(|c| *c as i64 == code)
            .ok_or_else(|| StoreError::Corrupt(format!("audit category {code}")))
    }
}

/// The activities of H2, with Graph's names. The stored number of each is fixed: new ones go
/// at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activity {
    AddUser = 0,
    UpdateUser = 1,
    DeleteUser = 2,
    AddGroup = 3,
    UpdateGroup = 4,
    DeleteGroup = 5,
    AddMember = 6,
    RemoveMember = 7,
    SetGroupLicense = 8,
    ChangeUserLicense = 9,
    StartApplying = 10,
    FinishApplying = 11,
    ReprocessGroup = 12,
    ReprocessUser = 13,
    SetPrepaidUnits = 14,
    UpdateDirectory = 15,
    ReloadRules = 16,
    RemoveRedundant = 17,
    SetSeatAlertThreshold = 18,
    AddWebhook = 19,
    DeleteWebhook = 20,
    RaiseAlert = 21,
    ResolveAlert = 22,
}

impl Activity {
    pub const ALL: [Activity; 23] = [
        Activity::AddUser,
        Activity::UpdateUser,
        Activity::DeleteUser,
        Activity::AddGroup,
        Activity::UpdateGroup,
        Activity::DeleteGroup,
        Activity::AddMember,
        Activity::RemoveMember,
        Activity::SetGroupLicense,
        Activity::ChangeUserLicense,
        Activity::StartApplying,
        Activity::FinishApplying,
        Activity::ReprocessGroup,
        Activity::ReprocessUser,
        Activity::SetPrepaidUnits,
        Activity::UpdateDirectory,
        Activity::ReloadRules,
        Activity::RemoveRedundant,
        Activity::SetSeatAlertThreshold,
        Activity::AddWebhook,
        Activity::DeleteWebhook,
        Activity::RaiseAlert,
        Activity::ResolveAlert,
    ];

    pub fn display_name(self) -> &'static str {
        match self {
            Activity::AddUser => "Add user",
            Activity::UpdateUser => "Update user",
            Activity::DeleteUser => "Delete user",
            Activity::AddGroup => "Add group",
            Activity::UpdateGroup => "Update group",
            Activity::DeleteGroup => "Delete group",
            Activity::AddMember => "Add member to group",
            Activity::RemoveMember => "Remove member from group",
            Activity::SetGroupLicense => "Set group license",
            Activity::ChangeUserLicense => "Change user license",
            Activity::StartApplying => "Start applying group based license to users",
            Activity::FinishApplying => "Finish applying group based license to users",
            Activity::ReprocessGroup => "Reprocess group",
            Activity::ReprocessUser => "Reprocess user",
            Activity::SetPrepaidUnits => "Set prepaid units",
            Activity::UpdateDirectory => "Update directory",
            Activity::ReloadRules => "Reload rules",
            Activity::RemoveRedundant => "Remove redundant direct licenses",
            Activity::SetSeatAlertThreshold => "Set seat alert threshold",
            Activity::AddWebhook => "Add webhook",
            Activity::DeleteWebhook => "Delete webhook",
            Activity::RaiseAlert => "Raise alert",
            Activity::ResolveAlert => "Resolve alert",
        }
    }

    /// The category of the activity when an admin (or a directory) does it; processing's own
    /// events are `LICENSE_PROCESSING`.
    pub fn category(self) -> Category {
        match self {
            Activity::UpdateDirectory => Category::DirectoryManagement,
            Activity::AddUser | Activity::UpdateUser | Activity::DeleteUser => {
                Category::UserManagement
            }
            Activity::AddGroup
            | Activity::UpdateGroup
            | Activity::DeleteGroup
            | Activity::AddMember
            | Activity::RemoveMember => Category::GroupManagement,
            Activity::SetGroupLicense
            | Activity::ChangeUserLicense
            | Activity::ReprocessGroup
            | Activity::ReprocessUser
            | Activity::SetPrepaidUnits
            | Activity::RemoveRedundant => Category::LicenseManagement,
            Activity::StartApplying | Activity::FinishApplying => Category::LicenseProcessing,
            Activity::ReloadRules => Category::Policy,
            Activity::SetSeatAlertThreshold
            | Activity::AddWebhook
            | Activity::DeleteWebhook
            | Activity::RaiseAlert
            | Activity::ResolveAlert => Category::Notifications,
        }
    }

    fn from_code(code: i64) -> Result<Activity> {
        Activity::ALL
            .into_iter()
            .find(|a| *a as i64 == code)
            .ok_or_else(|| StoreError::Corrupt(format!("audit activity {code}")))
    }
}

/// A changed property of a target (Graph's `modifiedProperty`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl Property {
    pub fn new(name: &str, old: Option<String>, new: Option<String>) -> Property {
        Property {
            name: name.to_string(),
            old,
            new,
        }
    }
}

/// What an event is about: `User`, `Group`, `Product`, `Directory`, `RuleSet` or `Webhook`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub id: Option<String>,
    pub name: Option<String>,
    pub properties: Vec<Property>,
}

impl Target {
    pub fn user(id: i64, principal_name: Option<String>) -> Target {
        Target::of("User", Some(id.to_string()), principal_name)
    }

    pub fn group(id: i64, name: Option<String>) -> Target {
        Target::of("Group", Some(id.to_string()), name)
    }

    pub fn product(sku: &str) -> Target {
        Target::of("Product", Some(sku.to_string()), Some(sku.to_string()))
    }

    pub fn of(kind: &'static str, id: Option<String>, name: Option<String>) -> Target {
        Target {
            kind,
            id,
            name,
            properties: Vec::new(),
        }
    }

    pub fn with(mut self, properties: Vec<Property>) -> Target {
        self.properties = properties;
        self
    }
}

/// One event to record. The user, group and products it is about are what the filters find
/// it by; [`Event::new`] takes them from the targets, and a caller may add more (processing's
/// "Change user license" is about its group too).
#[derive(Clone, Debug)]
pub struct Event {
    pub activity: Activity,
    pub category: Category,
    pub targets: Vec<Target>,
    pub user: Option<i64>,
    pub group: Option<i64>,
    pub products: Vec<String>,
    pub failed: bool,
    /// FAILURE: `"CODE: message"` (H5); a finished run: its counts (H4).
    pub reason: Option<String>,
}

impl Event {
    pub fn new(activity: Activity, targets: Vec<Target>) -> Event {
        let id_of = |kind: &str| {
            targets
                .iter()
                .find(|t| t.kind == kind)
                .and_then(|t| t.id.as_deref())
                .and_then(|id| id.parse().ok())
        };
        let user = id_of("User");
        let group = id_of("Group");
        let products = targets
            .iter()
            .filter(|t| t.kind == "Product")
            .filter_map(|t| t.id.clone())
            .collect();
        Event {
            activity,
            category: activity.category(),
            targets,
            user,
            group,
            products,
            failed: false,
            reason: None,
        }
    }

    /// H5: the event of a mutation that failed, with its code and message.
    pub fn failure(mut self, code: &str, message: &str) -> Event {
        self.failed = true;
        self.reason = Some(format!("{code}: {message}"));
        self
    }
}

/// A "Change user license" property: the product and where it comes from (H4).
pub fn assignment_name(sku: &str, group: i64) -> String {
    if group == 0 {
        format!("{sku} (direct)")
    } else {
        format!("{sku} (group {group})")
    }
}

/// A "Change user license" value: the state, the error's code, and the plans turned off
/// (`applied`, the stored JSON array of plan names).
pub fn assignment_value(state: &str, error_code: Option<&str>, applied: Option<&str>) -> String {
    let mut text = state.to_string();
    if let Some(code) = error_code {
        let _ = write!(text, ": {code}");
    }
    if let Some(applied) = applied.filter(|a| *a != "[]")
        && let Ok(plans) = serde_json::from_str::<Vec<String>>(applied)
    {
        let _ = write!(text, "; plans off: {}", plans.join(", "));
    }
    text
}

/// Who a request acts as, and the correlation id its events share (H2, H3): the first event
/// the request writes names it, and the request's later mutations reuse it.
pub struct Acting {
    pub actor: Actor,
    correlation: Mutex<Option<i64>>,
}

impl Acting {
    pub fn new(actor: Actor) -> Arc<Acting> {
        Arc::new(Acting {
            actor,
            correlation: Mutex::new(None),
        })
    }

    pub fn correlation(&self) -> Option<i64> {
        self.correlation.lock().map(|c| *c).unwrap_or(None)
    }

    /// Kept once the transaction that wrote the events committed.
    pub fn committed(&self, correlation: Option<i64>) {
        if let (Ok(mut c), Some(id)) = (self.correlation.lock(), correlation) {
            c.get_or_insert(id);
        }
    }
}

/// Records an event in a transaction of its own: a failed mutation's (the failure itself
/// rolled back), or a change outside the database (the rules in force). A failure to record is
/// logged: the caller still hears of its own outcome.
pub async fn record_apart(store: &super::Store, acting: &Acting, event: Event) {
    let actor = acting.actor.clone();
    let correlation = acting.correlation();
    let written = store
        .write(move |tx| {
            let mut journal = Journal::open(tx, &actor, correlation, &super::now())?;
            journal.record(&event)?;
            journal.finish()
        })
        .await;
    match written {
        Ok(correlation) => acting.committed(correlation),
        Err(e) => tracing::error!(error = %e, "an audit event could not be written"),
    }
}

/// Processing's "Change user license" events kept in one row at most: enough that a run of a
/// million members writes a row per 64 users, few enough that reading one event of a row (a
/// user's history) decodes little.
pub const BATCH: usize = 64;

/// An assignment as the history shows it: its state, its error's code, and the plans it
/// turns off (the stored JSON array of their names; `None` when it turns none off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub state: &'static str,
    pub code: Option<&'static str>,
    pub off: Option<String>,
}

impl Shown {
    /// The plans turned off, from an applied configuration (`[]`: none).
    pub fn plans_off(applied: Option<&str>) -> Option<String> {
        applied.filter(|a| *a != "[]").map(str::to_string)
    }

    fn value(&self) -> String {
        assignment_value(self.state, self.code, self.off.as_deref())
    }
}

/// One assignment whose state, error or applied plans changed (H4): `None` where it did not
/// exist. Kept in these terms, and put in words only when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentChange<'a> {
    /// Borrowed from the rule table or the stored set while processing writes it: a million
    /// users in B1 would otherwise cost three copies of product names each.
    pub sku: std::borrow::Cow<'a, str>,
    /// 0: direct.
    pub group: i64,
    pub old: Option<Shown>,
    pub new: Option<Shown>,
}

impl AssignmentChange<'_> {
    /// The change with its own copy of the product's name.
    pub fn into_owned(self) -> AssignmentChange<'static> {
        AssignmentChange {
            sku: std::borrow::Cow::Owned(self.sku.into_owned()),
            group: self.group,
            old: self.old,
            new: self.new,
        }
    }

    pub fn property(&self) -> Property {
        Property {
            name: assignment_name(&self.sku, self.group),
            old: self.old.as_ref().map(Shown::value),
            new: self.new.as_ref().map(Shown::value),
        }
    }
}

/// A batch entry's assignment: product, source, and the before and after as
/// `[state, code, plans off]`.
type StoredChange = (
    String,
    i64,
    Option<(String, Option<String>, Option<String>)>,
    Option<(String, Option<String>, Option<String>)>,
);

/// Writes the events of one transaction.
///
/// Events are numbered in the order they are recorded, without gaps. Most are a row each;
/// processing's "Change user license" events of one group go [`BATCH`] to a row (`last_id`
/// says how far the row goes), so that a run's history costs a fraction of its writes.
pub struct Journal<'t> {
    actor: i64,
    /// The id of the transaction's first event.
    first: i64,
    correlation: Option<i64>,
    at: String,
    next: i64,
    insert: CachedStatement<'t>,
    user: CachedStatement<'t>,
    /// A batch's users, one statement for all of them.
    batch_user: CachedStatement<'t>,
    product: CachedStatement<'t>,
    /// Products by their number in `audit_skus`, as looked up (or added) so far.
    skus: HashMap<String, i64>,
    /// Batched events not written yet, all of `batch_group`: their entries, as the JSON
    /// array a batch row holds (without its closing bracket).
    batch: String,
    /// How many events are batched, and their users as a JSON array (for `json_each`).
    batch_len: usize,
    batch_users: String,
    /// The products the batch's entries name, by their place in this list, each with how
    /// many of the entries name it.
    batch_names: Vec<(String, i64)>,
    batch_group: i64,
    tx: &'t Transaction<'t>,
    /// Events per category and result written so far, kept in `audit_counts` at the end.
    counts: HashMap<(Category, bool), i64>,
}

/// The newest row: its first id and the last id it holds.
fn newest_row(conn: &Connection) -> Result<Option<(i64, i64, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, coalesce(last_id, id), at FROM audit_events ORDER BY id DESC LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

impl<'t> Journal<'t> {
    /// `correlation`: the id the events share (H2); `None` gives them the first one's id.
    /// `now` is the transaction's time, moved forward to the last event's if the clock went
    /// back, so that times never decrease in id order.
    pub fn open(
        tx: &'t Transaction<'t>,
        actor: &Actor,
        correlation: Option<i64>,
        now: &str,
    ) -> Result<Journal<'t>> {
        let actor = actor_id(tx, actor)?;
        let newest = newest_row(tx)?;
        let at = match &newest {
            Some((_, _, last)) if last.as_str() > now => last.clone(),
            _ => now.to_string(),
        };
        let next = newest.map_or(1, |(_, last, _)| last + 1);
        Ok(Journal {
            actor,
            first: next,
            correlation,
            at,
            next,
            insert: tx.prepare_cached(
                "INSERT INTO audit_events (id, last_id, at, category, activity, actor, failed, reason, correlation, group_id, targets)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?,
            user: tx.prepare_cached("INSERT INTO audit_users (user_id, event) VALUES (?1, ?2)")?,
            batch_user: tx.prepare_cached(
                "INSERT INTO audit_users (user_id, event) SELECT value, ?2 + key FROM json_each(?1)",
            )?,
            product: tx.prepare_cached(
                "INSERT INTO audit_products (product, row, events) VALUES (?1, ?2, ?3)",
            )?,
            skus: HashMap::new(),
            batch: String::new(),
            batch_len: 0,
            batch_users: String::new(),
            batch_names: Vec::new(),
            batch_group: 0,
            tx,
            counts: HashMap::new(),
        })
    }

    /// The transaction the events are written in.
    pub fn tx(&self) -> &'t Transaction<'t> {
        self.tx
    }

    /// The time of the transaction's events.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// The correlation id of the events written so far.
    pub fn correlation(&self) -> Option<i64> {
        self.correlation
    }

    fn take_id(&mut self, n: i64) -> i64 {
        let id = self.next;
        self.next += n;
        // The first event of a request or run is its correlation (stored as NULL: itself).
        self.correlation.get_or_insert(id);
        id
    }

    fn product_number(&mut self, sku: &str) -> Result<i64> {
        if let Some(n) = self.skus.get(sku) {
            return Ok(*n);
        }
        let n = sku_number(self.tx, sku)?;
        self.skus.insert(sku.to_string(), n);
        Ok(n)
    }

    /// Writes one event as a row of its own.
    pub fn record(&mut self, event: &Event) -> Result<i64> {
        self.flush()?;
        let id = self.take_id(1);
        let targets = encode_targets(&event.targets);
        let correlation = self.correlation.filter(|c| *c != id);
        self.insert.execute(params![
            id,
            None::<i64>,
            self.at,
            event.category as i64,
            event.activity as i64,
            self.actor,
            event.failed,
            event.reason,
            correlation,
            event.group,
            targets
        ])?;
        if let Some(user) = event.user {
            self.user.execute(params![user, id])?;
        }
        let mut done: Vec<i64> = Vec::with_capacity(event.products.len());
        for sku in &event.products {
            let product = self.product_number(sku)?;
            if !done.contains(&product) {
                self.product.execute(params![product, id, 1])?;
                done.push(product);
            }
        }
        *self
            .counts
            .entry((event.category, event.failed))
            .or_default() += 1;
        Ok(id)
    }

    /// Records processing's "Change user license" of `user` in a run of `group` (H4), to be
    /// written with the others of the run.
    pub fn record_change(
        &mut self,
        user: i64,
        principal_name: &str,
        changes: &[AssignmentChange],
        group: i64,
    ) -> Result<()> {
        if self.batch_group != group || self.batch_len >= BATCH {
            self.flush()?;
        }
        self.batch_group = group;
        // `[user, name, [[product, source, old, new], …]]`, products by their place in the
        // row's list and states packed in a number (`pack`): a third of the bytes of names.
        // Written by hand: this runs once per user processing changes, a million times in B1.
        let mut numbers = itoa::Buffer::new();
        let out = &mut self.batch;
        out.push(if out.is_empty() { '[' } else { ',' });
        out.push('[');
        out.push_str(numbers.format(user));
        out.push(',');
        push_json_string(out, principal_name);
        out.push_str(",[");
        // The places this entry named already: an event counts once per product.
        let mut named: u64 = 0;
        for (i, c) in changes.iter().enumerate() {
            let place = match self.batch_names.iter().position(|(n, _)| *n == *c.sku) {
                Some(place) => place,
                None => {
                    self.batch_names.push((c.sku.to_string(), 0));
                    self.batch_names.len() - 1
                }
            };
            let first_mention = if place < 64 {
                let bit = 1u64 << place;
                let first = named & bit == 0;
                named |= bit;
                first
            } else {
                !changes[..i].iter().any(|d| d.sku == c.sku)
            };
            if first_mention && let Some((_, n)) = self.batch_names.get_mut(place) {
                *n += 1;
            }
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            out.push_str(numbers.format(place));
            out.push(',');
            out.push_str(numbers.format(c.group));
            out.push(',');
            push_shown(out, c.old.as_ref())?;
            out.push(',');
            push_shown(out, c.new.as_ref())?;
            out.push(']');
        }
        out.push_str("]]");
        self.batch_users.push(if self.batch_users.is_empty() {
            '['
        } else {
            ','
        });
        self.batch_users.push_str(numbers.format(user));
        self.batch_len += 1;
        Ok(())
    }

    /// Writes the batched events as one row.
    fn flush(&mut self) -> Result<()> {
        if self.batch_len == 0 {
            return Ok(());
        }
        let n = std::mem::take(&mut self.batch_len) as i64;
        let mut users = std::mem::take(&mut self.batch_users);
        users.push(']');
        let entries = std::mem::take(&mut self.batch);
        let names = std::mem::take(&mut self.batch_names);
        let mut body = String::with_capacity(entries.len() + 16 * names.len() + 16);
        body.push_str("{\"p\":[");
        for (i, (name, _)) in names.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            push_json_string(&mut body, name);
        }
        body.push_str("],\"e\":");
        body.push_str(&entries);
        body.push_str("]}");
        let first = self.take_id(n);
        let correlation = self.correlation.filter(|c| *c != first);
        self.insert.execute(params![
            first,
            first + n - 1,
            self.at,
            Category::LicenseProcessing as i64,
            Activity::ChangeUserLicense as i64,
            self.actor,
            false,
            None::<String>,
            correlation,
            self.batch_group,
            body
        ])?;
        self.batch_user.execute(params![users, first])?;
        for (name, events) in &names {
            let product = self.product_number(name)?;
            self.product.execute(params![product, first, events])?;
        }
        *self
            .counts
            .entry((Category::LicenseProcessing, false))
            .or_default() += n;
        Ok(())
    }

    /// Writes what is batched and keeps the counts; returns the correlation id used, if any
    /// event was written. The transaction must not commit before.
    pub fn finish(mut self) -> Result<Option<i64>> {
        self.flush()?;
        // N2: the transaction's changes may have raised or resolved alerts, themselves events.
        super::alerts::settle(&mut self)?;
        self.flush()?;
        if self.next > self.first {
            let last = self.next - 1;
            super::webhooks::enqueue_audit(self.tx, self.first, last, &self.at)?;
            super::events::stage(super::events::Notice::Audit {
                first: self.first,
                last,
            });
        }
        let mut change = self.tx.prepare_cached(
            "INSERT INTO audit_counts (category, failed, events) VALUES (?1, ?2, ?3)
             ON CONFLICT (category, failed) DO UPDATE SET events = events + excluded.events",
        )?;
        for ((category, failed), n) in self.counts.drain() {
            change.execute(params![category as i64, failed, n])?;
        }
        Ok(self.correlation)
    }
}

/// A product's number in `audit_skus`, given at its first event.
fn sku_number(tx: &Transaction<'_>, sku: &str) -> Result<i64> {
    if let Some(n) = tx
        .prepare_cached("SELECT id FROM audit_skus WHERE sku = ?1")?
        .query_row([sku], |r| r.get(0))
        .optional()?
    {
        return Ok(n);
    }
    tx.execute("INSERT INTO audit_skus (sku) VALUES (?1)", [sku])?;
    Ok(tx.last_insert_rowid())
}

fn actor_id(tx: &Transaction<'_>, actor: &Actor) -> Result<i64> {
    let kind = actor.kind.name();
    if let Some(id) = tx
        .prepare_cached("SELECT id FROM audit_actors WHERE kind = ?1 AND name = ?2")?
        .query_row(params![kind, actor.name], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    Ok(tx
        .prepare_cached("INSERT INTO audit_actors (kind, name) VALUES (?1, ?2) RETURNING id")?
        .query_row(params![kind, actor.name], |r| r.get(0))?)
}

fn encode_targets(targets: &[Target]) -> String {
    type Row<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Vec<(&'a str, Option<&'a str>, Option<&'a str>)>,
    );
    let rows: Vec<Row<'_>> = targets
        .iter()
        .map(|t| {
            (
                t.kind,
                t.id.as_deref(),
                t.name.as_deref(),
                t.properties
                    .iter()
                    .map(|p| (p.name.as_str(), p.old.as_deref(), p.new.as_deref()))
                    .collect(),
            )
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
}

type StoredProperties = Vec<(String, Option<String>, Option<String>)>;

fn properties_of(list: StoredProperties) -> Vec<Property> {
    list.into_iter()
        .map(|(name, old, new)| Property { name, old, new })
        .collect()
}

fn decode_targets(text: &str) -> Result<Vec<StoredTarget>> {
    type Row = (String, Option<String>, Option<String>, StoredProperties);
    let rows: Vec<Row> = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("audit targets: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|(kind, id, name, properties)| StoredTarget {
            kind,
            id,
            name,
            properties: properties_of(properties),
        })
        .collect())
}

/// States of a batch entry, by the number `pack` gives them.
const STATES: [&str; 4] = ["PENDING", "ACTIVE", "ACTIVE_WITH_ERROR", "ERROR"];

/// An assignment's state and error code in one number: `state * 8 + code`, code 0 for none
/// and `i + 1` for `ErrorCode::ALL[i]`.
fn pack(shown: &Shown) -> Result<usize> {
    let state = STATES
        .iter()
        .position(|s| *s == shown.state)
        .ok_or_else(|| StoreError::Corrupt(format!("assignment state {:?}", shown.state)))?;
    let code = match shown.code {
        None => 0,
        Some(code) => {
            crate::engine::ErrorCode::ALL
                .iter()
                .position(|c| c.graphql_name() == code)
                .ok_or_else(|| StoreError::Corrupt(format!("error code {code:?}")))?
                + 1
        }
    };
    Ok(state * 8 + code)
}

fn unpack(n: usize) -> Result<(&'static str, Option<&'static str>)> {
    let corrupt = || StoreError::Corrupt(format!("audit batch: assignment value {n}"));
    let state = STATES.get(n / 8).ok_or_else(corrupt)?;
    let code = match n % 8 {
        0 => None,
        c => Some(
            crate::engine::ErrorCode::ALL
                .get(c - 1)
                .ok_or_else(corrupt)?
                .graphql_name(),
        ),
    };
    Ok((state, code))
}

/// `null`, the packed number, or `[number, plans off]`.
fn push_shown(out: &mut String, shown: Option<&Shown>) -> Result<()> {
    match shown {
        None => out.push_str("null"),
        Some(s) => {
            let mut numbers = itoa::Buffer::new();
            let n = numbers.format(pack(s)?);
            match &s.off {
                None => out.push_str(n),
                Some(off) => {
                    out.push('[');
                    out.push_str(n);
                    out.push(',');
                    push_json_string(out, off);
                    out.push(']');
                }
            }
        }
    }
    Ok(())
}

/// A packed assignment value of a batch entry, as stored.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Packed {
    Plain(usize),
    WithPlansOff(usize, String),
}

/// A packed change: the product's place in the row's list, the source, old and new values.
type PackedChange = (usize, i64, Option<Packed>, Option<Packed>);

/// A batch row as stored: the products its entries name, and the entries (user, sign-in name,
/// changes).
#[derive(serde::Deserialize)]
struct PackedBatch {
    p: Vec<String>,
    e: Vec<(i64, String, Vec<PackedChange>)>,
}

/// A batch row's events: the user, its sign-in name and the properties, one per event. Rows
/// written before the packed layout (an array of entries naming products and states in full)
/// read as well.
fn decode_batch(text: &str) -> Result<Vec<(i64, String, Vec<Property>)>> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("audit batch: {e}"));
    if !text.starts_with('{') {
        let entries: Vec<(i64, String, Vec<StoredChange>)> =
            serde_json::from_str(text).map_err(corrupt)?;
        let value = |s: &Option<(String, Option<String>, Option<String>)>| {
            s.as_ref()
                .map(|(state, code, off)| assignment_value(state, code.as_deref(), off.as_deref()))
        };
        return Ok(entries
            .into_iter()
            .map(|(user, name, changes)| {
                let properties = changes
                    .iter()
                    .map(|(sku, group, old, new)| Property {
                        name: assignment_name(sku, *group),
                        old: value(old),
                        new: value(new),
                    })
                    .collect();
                (user, name, properties)
            })
            .collect());
    }
    let batch: PackedBatch = serde_json::from_str(text).map_err(corrupt)?;
    let value = |packed: &Option<Packed>| -> Result<Option<String>> {
        let Some(packed) = packed else {
            return Ok(None);
        };
        let (n, off) = match packed {
            Packed::Plain(n) => (*n, None),
            Packed::WithPlansOff(n, off) => (*n, Some(off.as_str())),
        };
        let (state, code) = unpack(n)?;
        Ok(Some(assignment_value(state, code, off)))
    };
    let mut out = Vec::with_capacity(batch.e.len());
    for (user, name, changes) in batch.e {
        let mut properties = Vec::with_capacity(changes.len());
        for (place, group, old, new) in &changes {
            let sku = batch.p.get(*place).ok_or_else(|| {
                StoreError::Corrupt(format!("audit batch: product {place} of {}", batch.p.len()))
            })?;
            properties.push(Property {
                name: assignment_name(sku, *group),
                old: value(old)?,
                new: value(new)?,
            });
        }
        out.push((user, name, properties));
    }
    Ok(out)
}

// ---- Reading -----------------------------------------------------------------------------------

/// A target as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTarget {
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub properties: Vec<Property>,
}

/// An event as read back.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub id: i64,
    pub at: String,
    pub category: Category,
    pub activity: Activity,
    pub actor: Actor,
    pub failed: bool,
    pub reason: Option<String>,
    pub correlation: i64,
    pub targets: Vec<StoredTarget>,
}

impl EventRow {
    /// Whether the event names the product (a target, or an assignment property of it).
    fn names_product(&self, sku: &str) -> bool {
        let prefix = format!("{sku} (");
        self.targets.iter().any(|t| {
            (t.kind == "Product" && t.id.as_deref() == Some(sku))
                || t.properties
                    .iter()
                    .any(|p| p.name == sku || p.name.starts_with(&prefix))
        })
    }

    fn names_user(&self, user: i64) -> bool {
        let id = user.to_string();
        self.targets
            .iter()
            .any(|t| t.kind == "User" && t.id.as_deref() == Some(id.as_str()))
    }
}

/// The filters of `auditEvents` (H6); times are RFC 3339 as stored (UTC, milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub since: Option<String>,
    pub until: Option<String>,
    pub category: Option<Category>,
    pub user: Option<i64>,
    pub group: Option<i64>,
    pub sku: Option<String>,
    pub failed: Option<bool>,
}

/// One stored row, before its events are taken out.
struct Row {
    id: i64,
    last: i64,
    at: String,
    category: Category,
    activity: Activity,
    actor: Actor,
    failed: bool,
    reason: Option<String>,
    correlation: Option<i64>,
    group: Option<i64>,
    targets: String,
    /// A batch of processing's events (even of one).
    batch: bool,
}

const ROW: &str = "SELECT e.id, coalesce(e.last_id, e.id), e.at, e.category, e.activity, a.kind, a.name, e.failed, e.reason, e.correlation, e.group_id, e.targets, e.last_id IS NOT NULL
                     FROM audit_events e JOIN audit_actors a ON a.id = e.actor";

fn row_of(r: &rusqlite::Row<'_>) -> Result<Row> {
    let kind: String = r.get(5)?;
    Ok(Row {
        id: r.get(0)?,
        last: r.get(1)?,
        at: r.get(2)?,
        category: Category::from_code(r.get(3)?)?,
        activity: Activity::from_code(r.get(4)?)?,
        actor: Actor {
            kind: ActorKind::from_name(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("audit actor kind {kind:?}")))?,
            name: r.get(6)?,
        },
        failed: r.get(7)?,
        reason: r.get(8)?,
        correlation: r.get(9)?,
        group: r.get(10)?,
        targets: r.get(11)?,
        batch: r.get(12)?,
    })
}

/// Reads rows by a statement whose columns are [`ROW`]'s.
fn rows(stmt: &mut rusqlite::Statement<'_>, args: impl rusqlite::Params) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    let mut found = stmt.query(args)?;
    while let Some(r) = found.next()? {
        out.push(row_of(r)?);
    }
    Ok(out)
}

/// The row that holds event `id`.
fn row_holding(conn: &Connection, id: i64) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{ROW} WHERE e.id <= ?1 ORDER BY e.id DESC LIMIT 1"
    ))?;
    Ok(rows(&mut stmt, [id])?
        .into_iter()
        .next()
        .filter(|r| r.last >= id))
}

/// The row's events in `[lo, hi]`, newest first.
fn events_of(row: &Row, lo: i64, hi: i64) -> Result<Vec<EventRow>> {
    let event = |id: i64, targets: Vec<StoredTarget>| EventRow {
        id,
        at: row.at.clone(),
        category: row.category,
        activity: row.activity,
        actor: row.actor.clone(),
        failed: row.failed,
        reason: row.reason.clone(),
        correlation: row.correlation.unwrap_or(row.id),
        targets,
    };
    if !row.batch {
        return Ok(if row.id >= lo && row.id <= hi {
            vec![event(row.id, decode_targets(&row.targets)?)]
        } else {
            Vec::new()
        });
    }
    let mut out = Vec::new();
    for (i, (user, name, properties)) in decode_batch(&row.targets)?.into_iter().enumerate().rev() {
        let id = row.id + i as i64;
        if id < lo || id > hi {
            continue;
        }
        out.push(event(
            id,
            vec![StoredTarget {
                kind: "User".into(),
                id: Some(user.to_string()),
                name: Some(name),
                properties,
            }],
        ));
    }
    Ok(out)
}

/// The ids `[lo, hi]` the filter's times allow, or `None` when no event is in the range.
fn id_range(conn: &Connection, filter: &Filter) -> Result<Option<(i64, i64)>> {
    // Two lookups: SQLite reads a lone min() from the start of the table, but would scan the
    // whole table for a min and a max in one select.
    let first: Option<i64> = conn
        .prepare_cached("SELECT min(id) FROM audit_events")?
        .query_row([], |r| r.get(0))?;
    let (Some(mut lo), Some((_, mut hi, _))) = (first, newest_row(conn)?) else {
        return Ok(None);
    };
    if let Some(since) = &filter.since {
        match bisect(conn, lo, hi, |at| at >= since.as_str())? {
            Some(id) => lo = id,
            None => return Ok(None),
        }
    }
    if let Some(until) = &filter.until {
        // The last event at or before `until`: the one before the first row after it.
        match bisect(conn, lo, hi, |at| at > until.as_str())? {
            Some(id) if id == lo => return Ok(None),
            Some(id) => hi = id - 1,
            None => {}
        }
    }
    Ok((lo <= hi).then_some((lo, hi)))
}

/// The first row starting at or after id `id`, and its time.
fn at_of(conn: &Connection, id: i64) -> Result<Option<(i64, String)>> {
    Ok(conn
        .prepare_cached("SELECT id, at FROM audit_events WHERE id >= ?1 ORDER BY id LIMIT 1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Bisection over ids (times never decrease in id order, and a row's events share its time):
/// the first row in `[lo, hi]` for whose time `past` holds.
fn bisect(
    conn: &Connection,
    mut lo: i64,
    hi: i64,
    past: impl Fn(&str) -> bool,
) -> Result<Option<i64>> {
    let mut found = None;
    let mut top = hi;
    while lo <= top {
        let mid = lo + (top - lo) / 2;
        match at_of(conn, mid)? {
            Some((id, at)) if id <= top && past(&at) => {
                found = Some(id);
                top = mid - 1;
            }
            Some((id, _)) if id <= top => lo = id + 1,
            _ => top = mid - 1,
        }
    }
    Ok(found)
}

/// Whether an event passes the filter's conditions other than the one walked. A row of one
/// event has its products in the products' index; a batch's events name theirs in their
/// properties (the index says only that some event of the batch does).
fn passes(conn: &Connection, event: &EventRow, batched: bool, filter: &Filter) -> Result<bool> {
    let product = match filter.sku.as_deref() {
        None => true,
        Some(sku) if batched => event.names_product(sku),
        Some(sku) => conn
            .prepare_cached(
                "SELECT 1 FROM audit_products
                  WHERE product = (SELECT id FROM audit_skus WHERE sku = ?1) AND row = ?2",
            )?
            .exists(params![sku, event.id])?,
    };
    Ok(product
        && filter.category.is_none_or(|c| c == event.category)
        && filter.failed.is_none_or(|f| f == event.failed)
        && filter.user.is_none_or(|u| event.names_user(u)))
}

/// Walks the events the filter selects in `[lo, hi]`, newest first, until `visit` says stop.
/// The walk follows the user's index, the group's, the product's, or the rows themselves.
fn walk(
    conn: &Connection,
    filter: &Filter,
    (lo, hi): (i64, i64),
    mut visit: impl FnMut(EventRow) -> bool,
) -> Result<()> {
    const STEP: i64 = 256;
    if let Some(user) = filter.user {
        let mut stmt = conn.prepare_cached(
            "SELECT event FROM audit_users WHERE user_id = ?1 AND event BETWEEN ?2 AND ?3 ORDER BY event DESC",
        )?;
        let ids: Vec<i64> = stmt
            .query_map(params![user, lo, hi], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in ids {
            let Some(row) = row_holding(conn, id)? else {
                continue;
            };
            if filter.group.is_some_and(|g| row.group != Some(g)) {
                continue;
            }
            let batched = row.batch;
            for event in events_of(&row, id, id)? {
                if passes(conn, &event, batched, filter)? && !visit(event) {
                    return Ok(());
                }
            }
        }
        return Ok(());
    }
    // Rows newest first, a step at a time, by the group's index, the product's, or all.
    let mut top = hi;
    loop {
        let found: Vec<Row> = if let Some(group) = filter.group {
            let mut stmt = conn.prepare_cached(&format!(
                "{ROW} WHERE e.group_id = ?1 AND e.id <= ?2 AND coalesce(e.last_id, e.id) >= ?3 ORDER BY e.id DESC LIMIT ?4"
            ))?;
            rows(&mut stmt, params![group, top, lo, STEP])?
        } else if let Some(sku) = &filter.sku {
            let mut stmt = conn.prepare_cached(&format!(
                "{ROW} JOIN audit_products p ON p.row = e.id
                  WHERE p.product = (SELECT id FROM audit_skus WHERE sku = ?1) AND p.row <= ?2
                    AND coalesce(e.last_id, e.id) >= ?3
                  ORDER BY p.row DESC LIMIT ?4"
            ))?;
            rows(&mut stmt, params![sku, top, lo, STEP])?
        } else {
            let mut stmt = conn.prepare_cached(&format!(
                "{ROW} WHERE e.id <= ?1 AND coalesce(e.last_id, e.id) >= ?2
                   AND (?3 IS NULL OR e.category = ?3) AND (?4 IS NULL OR e.failed = ?4)
                 ORDER BY e.id DESC LIMIT ?5"
            ))?;
            rows(
                &mut stmt,
                params![
                    top,
                    lo,
                    filter.category.map(|c| c as i64),
                    filter.failed,
                    STEP
                ],
            )?
        };
        let Some(oldest) = found.last().map(|r| r.id) else {
            return Ok(());
        };
        for row in &found {
            let batched = row.batch;
            for event in events_of(row, lo, hi)? {
                if passes(conn, &event, batched, filter)? && !visit(event) {
                    return Ok(());
                }
            }
        }
        if oldest <= lo || (found.len() as i64) < STEP {
            return Ok(());
        }
        top = oldest - 1;
    }
}

/// The events `first..=last`, oldest first (those pruned are missing).
pub fn between(conn: &Connection, first: i64, last: i64) -> Result<Vec<EventRow>> {
    if last < first {
        return Ok(Vec::new());
    }
    let mut out = page(
        conn,
        &Filter::default(),
        Some(last.saturating_add(1)),
        (last - first + 1) as usize,
    )?;
    out.retain(|e| e.id >= first);
    out.reverse();
    Ok(out)
}

impl EventRow {
    /// The event as GraphQL writes `AuditEvent` with all its fields (webhook bodies).
    pub fn to_json(&self) -> serde_json::Value {
        let targets: Vec<serde_json::Value> = self
            .targets
            .iter()
            .map(|t| {
                serde_json::json!({
                    "type": t.kind,
                    "id": t.id,
                    "displayName": t.name,
                    "modifiedProperties": t.properties.iter().map(|p| serde_json::json!({
                        "displayName": p.name,
                        "oldValue": p.old,
                        "newValue": p.new,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "id": self.id.to_string(),
            "activityDateTime": super::graphql_time(&self.at),
            "category": self.category.name(),
            "activityDisplayName": self.activity.display_name(),
            "initiatedBy": { "kind": self.actor.kind.name(), "name": self.actor.name },
            "targetResources": targets,
            "result": if self.failed { "FAILURE" } else { "SUCCESS" },
            "resultReason": self.reason,
            "correlationId": self.correlation.to_string(),
        })
    }
}

/// Up to `limit` events of the filter older than event `before` (none: from the newest),
/// newest first.
pub fn page(
    conn: &Connection,
    filter: &Filter,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<EventRow>> {
    let Some((lo, mut hi)) = id_range(conn, filter)? else {
        return Ok(Vec::new());
    };
    if let Some(before) = before {
        hi = hi.min(before - 1);
    }
    let mut out = Vec::new();
    if lo > hi || limit == 0 {
        return Ok(out);
    }
    walk(conn, filter, (lo, hi), |event| {
        out.push(event);
        out.len() < limit
    })?;
    Ok(out)
}

/// How many events the filter selects, exactly: from kept counts and index ranges where the
/// filter allows, by walking the events otherwise.
pub fn count(conn: &Connection, filter: &Filter) -> Result<i64> {
    let timed = filter.since.is_some() || filter.until.is_some();
    let subject = filter.user.is_some() || filter.group.is_some() || filter.sku.is_some();
    let plain = filter.category.is_none() && filter.failed.is_none();
    if !subject && !timed {
        let mut sql = "SELECT coalesce(sum(events), 0) FROM audit_counts WHERE 1".to_string();
        let mut args: Vec<i64> = Vec::new();
        if let Some(c) = filter.category {
            args.push(c as i64);
            let _ = write!(sql, " AND category = ?{}", args.len());
        }
        if let Some(f) = filter.failed {
            args.push(i64::from(f));
            let _ = write!(sql, " AND failed = ?{}", args.len());
        }
        return Ok(conn.query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))?);
    }
    let Some((lo, hi)) = id_range(conn, filter)? else {
        return Ok(0);
    };
    // Time ranges begin and end at row boundaries, so a row is wholly in or out of them.
    let rows_of = |extra: &str, args: &[&dyn rusqlite::ToSql]| -> Result<i64> {
        Ok(conn.query_row(
            &format!(
                "SELECT coalesce(sum(coalesce(e.last_id, e.id) - e.id + 1), 0) FROM audit_events e
                  WHERE e.id BETWEEN ?1 AND ?2 {extra}"
            ),
            rusqlite::params_from_iter(
                [&lo as &dyn rusqlite::ToSql, &hi]
                    .into_iter()
                    .chain(args.iter().copied()),
            ),
            |r| r.get(0),
        )?)
    };
    match (filter.user, filter.group, filter.sku.as_deref(), plain) {
        (None, None, None, true) => Ok(hi - lo + 1),
        (None, None, None, false) => {
            let category = filter.category.map(|c| c as i64);
            rows_of(
                "AND (?3 IS NULL OR e.category = ?3) AND (?4 IS NULL OR e.failed = ?4)",
                &[&category, &filter.failed],
            )
        }
        (Some(user), None, None, true) => Ok(conn
            .prepare_cached(
                "SELECT count(*) FROM audit_users WHERE user_id = ?1 AND event BETWEEN ?2 AND ?3",
            )?
            .query_row(params![user, lo, hi], |r| r.get(0))?),
        (None, Some(group), None, _) => {
            let category = filter.category.map(|c| c as i64);
            rows_of(
                "AND e.group_id = ?3 AND (?4 IS NULL OR e.category = ?4) AND (?5 IS NULL OR e.failed = ?5)",
                &[&group, &category, &filter.failed],
            )
        }
        (None, None, Some(sku), true) => Ok(conn
            .prepare_cached(
                "SELECT coalesce(sum(events), 0) FROM audit_products
                  WHERE product = (SELECT id FROM audit_skus WHERE sku = ?1) AND row BETWEEN ?2 AND ?3",
            )?
            .query_row(params![sku, lo, hi], |r| r.get(0))?),
        _ => {
            let mut n = 0;
            walk(conn, filter, (lo, hi), |_| {
                n += 1;
                true
            })?;
            Ok(n)
        }
    }
}

// ---- Retention ---------------------------------------------------------------------------------

/// Removes the oldest rows (up to `limit` events) older than `cutoff`; returns how many events.
/// A small `limit` keeps each transaction short, so the writer is never held for long. The
/// newest row stays whatever its age: ids follow it, and are never given twice.
pub fn prune(tx: &Transaction<'_>, cutoff: &str, limit: usize) -> Result<usize> {
    let newest = match newest_row(tx)? {
        Some((id, _, _)) => id,
        None => return Ok(0),
    };
    let mut stmt = tx.prepare_cached(&format!(
        "{ROW} WHERE e.at < ?1 AND e.id < ?2 ORDER BY e.id LIMIT ?3"
    ))?;
    let mut doomed = rows(&mut stmt, params![cutoff, newest, limit as i64])?;
    // An event a webhook has yet to receive stays, and so does every newer one (N3).
    if let Some(pending) = super::webhooks::oldest_pending_event(tx)? {
        doomed.retain(|row| row.last < pending);
    }
    // Whole rows, up to `limit` events (at least one row).
    let mut events = 0usize;
    let mut keep = 0;
    for row in &doomed {
        let n = (row.last - row.id + 1) as usize;
        if keep > 0 && events + n > limit {
            break;
        }
        events += n;
        keep += 1;
    }
    doomed.truncate(keep);
    let (Some(lo), Some(hi)) = (doomed.first().map(|r| r.id), doomed.last().map(|r| r.last)) else {
        return Ok(0);
    };
    let mut counts: HashMap<(i64, bool), i64> = HashMap::new();
    let mut users: Vec<i64> = Vec::new();
    for row in &doomed {
        *counts.entry((row.category as i64, row.failed)).or_default() += row.last - row.id + 1;
        for event in events_of(row, lo, hi)? {
            users.extend(
                event
                    .targets
                    .iter()
                    .filter(|t| t.kind == "User")
                    .filter_map(|t| t.id.as_deref()?.parse::<i64>().ok()),
            );
        }
    }
    let mut down = tx.prepare_cached(
        "UPDATE audit_counts SET events = max(events - ?3, 0) WHERE category = ?1 AND failed = ?2",
    )?;
    for ((category, failed), n) in counts {
        down.execute(params![category, failed, n])?;
    }
    users.sort_unstable();
    users.dedup();
    let mut unlink = tx
        .prepare_cached("DELETE FROM audit_users WHERE user_id = ?1 AND event BETWEEN ?2 AND ?3")?;
    for user in users {
        unlink.execute(params![user, lo, hi])?;
    }
    // The products' index is keyed by product first: each product's range goes at once.
    let products: Vec<i64> = tx
        .prepare_cached("SELECT id FROM audit_skus")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for product in products {
        tx.prepare_cached(
            "DELETE FROM audit_products WHERE product = ?1 AND row BETWEEN ?2 AND ?3",
        )?
        .execute(params![product, lo, hi])?;
    }
    tx.execute(
        "DELETE FROM audit_events WHERE id BETWEEN ?1 AND ?2",
        [lo, hi],
    )?;
    Ok(events)
}

/// The store audit's check of the history: kept counts against the rows, ids without gaps,
/// and the users' index against the events.
pub fn audit(conn: &Connection, problems: &mut Vec<String>) -> Result<()> {
    let kept: HashMap<(i64, i64), i64> = conn
        .prepare("SELECT category, failed, events FROM audit_counts WHERE events <> 0")?
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let counted: HashMap<(i64, i64), i64> = conn
        .prepare(
            "SELECT category, failed, sum(coalesce(last_id, id) - id + 1) FROM audit_events GROUP BY 1, 2",
        )?
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if kept != counted {
        problems.push(format!(
            "audit events per category and result: kept {kept:?}, counted {counted:?}"
        ));
    }
    let (n, lo, hi): (i64, Option<i64>, Option<i64>) = conn.query_row(
        "SELECT coalesce(sum(coalesce(last_id, id) - id + 1), 0), min(id), max(coalesce(last_id, id)) FROM audit_events",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if let (Some(lo), Some(hi)) = (lo, hi)
        && hi - lo + 1 != n
    {
        problems.push(format!("audit event ids {lo}..={hi} have gaps: {n} events"));
    }
    let dangling: i64 = conn.query_row(
        "SELECT count(*) FROM audit_users u
          WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.id <= u.event AND coalesce(e.last_id, e.id) >= u.event)",
        [],
        |r| r.get(0),
    )?;
    if dangling > 0 {
        problems.push(format!("{dangling} user index entries name no event"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, super::super::Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = super::super::Store::open(&dir.path().join("h.db")).expect("open");
        (dir, store)
    }

    fn write(store: &super::super::Store, at: &str, events: Vec<Event>) -> Option<i64> {
        let at = at.to_string();
        store
            .write_blocking(move |tx| {
                let mut journal = Journal::open(tx, &Actor::local(), None, &at)?;
                for e in &events {
                    journal.record(e)?;
                }
                journal.finish()
            })
            .expect("write")
    }

    fn read<R: Send + 'static>(
        store: &super::super::Store,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> R {
        store.write_blocking(move |tx| f(tx)).expect("read")
    }

    /// The ids of the filter's first page of `limit`, and its `count`.
    fn listed(store: &super::super::Store, filter: &Filter, limit: usize) -> (Vec<i64>, i64) {
        let (f, g) = (filter.clone(), filter.clone());
        let ids = read(store, move |c| page(c, &f, None, limit))
            .iter()
            .map(|e| e.id)
            .collect();
        (ids, read(store, move |c| count(c, &g)))
    }

    fn user_event(user: i64) -> Event {
        Event::new(
            Activity::UpdateUser,
            vec![
                Target::user(user, Some(format!("u{user}@x"))).with(vec![Property::new(
                    "displayName",
                    Some("a, \"b\"".into()),
                    None,
                )]),
            ],
        )
    }

    #[test]
    fn events_of_one_journal_share_the_first_ones_id_as_correlation_and_round_trip() {
        let (_dir, store) = store();
        let correlation = write(
            &store,
            "2026-01-01T00:00:00.000Z",
            vec![user_event(1), user_event(2)],
        );
        let rows = read(&store, |c| page(c, &Filter::default(), None, 10));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, 2, "newest first");
        assert_eq!(Some(rows[0].correlation), correlation);
        assert_eq!(rows[1].correlation, rows[1].id);
        assert_eq!(
            rows[0].targets[0].properties[0].old.as_deref(),
            Some("a, \"b\"")
        );
        assert_eq!(rows[0].actor, Actor::local());
        assert_eq!(rows[0].activity, Activity::UpdateUser);
        assert_eq!(rows[0].category, Category::UserManagement);
    }

    #[test]
    fn times_never_go_back_and_time_filters_are_id_ranges() {
        let (_dir, store) = store();
        write(&store, "2026-01-01T00:00:00.000Z", vec![user_event(1)]);
        write(&store, "2026-01-03T00:00:00.000Z", vec![user_event(2)]);
        // A clock that went back: the event takes the last event's time.
        write(&store, "2026-01-02T00:00:00.000Z", vec![user_event(3)]);
        write(&store, "2026-01-05T00:00:00.000Z", vec![user_event(4)]);
        let rows = read(&store, |c| page(c, &Filter::default(), None, 10));
        assert_eq!(rows[1].at, "2026-01-03T00:00:00.000Z");
        let since = |s: &str, u: Option<&str>| Filter {
            since: Some(s.into()),
            until: u.map(String::from),
            ..Filter::default()
        };
        let cases = [
            (since("2026-01-02T00:00:00.000Z", None), vec![4, 3, 2]),
            (since("2026-01-03T00:00:00.000Z", None), vec![4, 3, 2]),
            (
                since("2026-01-01T00:00:00.000Z", Some("2026-01-03T00:00:00.000Z")),
                vec![3, 2, 1],
            ),
            (since("2026-01-06T00:00:00.000Z", None), vec![]),
            (
                since("2025-01-01T00:00:00.000Z", Some("2025-12-31T00:00:00.000Z")),
                vec![],
            ),
        ];
        for (filter, want) in cases {
            let (got, total) = listed(&store, &filter, 10);
            assert_eq!(got, want, "{filter:?}");
            assert_eq!(total, want.len() as i64, "{filter:?}");
        }
    }

    #[test]
    fn filters_walk_their_index_and_counts_are_exact() {
        let (_dir, store) = store();
        let mut events = Vec::new();
        for i in 0..30 {
            let mut e = user_event(i % 3 + 1);
            if i % 2 == 0 {
                e.products.push("EMS".into());
            }
            if i % 5 == 0 {
                e = e.failure("BAD_USER_INPUT", "no");
            }
            events.push(e);
        }
        write(&store, "2026-01-01T00:00:00.000Z", events);
        let filters = [
            (
                Filter {
                    user: Some(2),
                    ..Filter::default()
                },
                10,
            ),
            (
                Filter {
                    sku: Some("EMS".into()),
                    ..Filter::default()
                },
                15,
            ),
            (
                Filter {
                    sku: Some("EMS".into()),
                    user: Some(1),
                    ..Filter::default()
                },
                5,
            ),
            (
                Filter {
                    failed: Some(true),
                    ..Filter::default()
                },
                6,
            ),
            (
                Filter {
                    category: Some(Category::Policy),
                    ..Filter::default()
                },
                0,
            ),
        ];
        for (filter, n) in filters {
            let f = filter.clone();
            assert_eq!(read(&store, move |c| count(c, &f)), n, "{filter:?}");
            let f = filter.clone();
            let mut seen = Vec::new();
            let mut before = None;
            loop {
                let f = f.clone();
                let rows = read(&store, move |c| page(c, &f, before, 4));
                let Some(last) = rows.last() else { break };
                before = Some(last.id);
                seen.extend(rows.iter().map(|r| r.id));
            }
            assert_eq!(seen.len() as i64, n, "{filter:?}");
            assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
        }
    }

    #[test]
    fn pruning_removes_the_oldest_in_steps_and_keeps_counts_and_ids_whole() {
        let (_dir, store) = store();
        for day in 1..=9 {
            let mut e = user_event(1);
            e.products.push("EMS".into());
            write(&store, &format!("2026-01-0{day}T00:00:00.000Z"), vec![e]);
        }
        let removed = store
            .write_blocking(|tx| prune(tx, "2026-01-06T00:00:00.000Z", 2))
            .expect("prune");
        assert_eq!(removed, 2);
        let removed = store
            .write_blocking(|tx| prune(tx, "2026-01-06T00:00:00.000Z", 100))
            .expect("prune");
        assert_eq!(removed, 3);
        assert_eq!(read(&store, |c| count(c, &Filter::default())), 4);
        let by_product = Filter {
            sku: Some("EMS".into()),
            ..Filter::default()
        };
        assert_eq!(read(&store, move |c| count(c, &by_product)), 4);
        let mut problems = Vec::new();
        let problems = read(&store, move |c| {
            audit(c, &mut problems)?;
            Ok(problems)
        });
        assert!(problems.is_empty(), "{problems:?}");
        // Everything is past a retention in the future, but the newest event stays: the next
        // id follows it, and no cursor or correlation ever names two events.
        let removed = store
            .write_blocking(|tx| prune(tx, "2030-01-01T00:00:00.000Z", 100))
            .expect("prune");
        assert_eq!(removed, 3);
        write(&store, "2026-02-01T00:00:00.000Z", vec![user_event(1)]);
        let rows = read(&store, |c| page(c, &Filter::default(), None, 5));
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![10, 9], "ids are never given again");
        assert_eq!(read(&store, |c| count(c, &Filter::default())), 2);
    }

    #[test]
    fn processings_events_go_many_to_a_row_and_read_back_one_by_one() {
        let (_dir, store) = store();
        store
            .write_blocking(|tx| {
                let mut journal =
                    Journal::open(tx, &Actor::system(), None, "2026-01-01T00:00:00.000Z")?;
                journal.record(&Event::new(
                    Activity::StartApplying,
                    vec![Target::group(7, None)],
                ))?;
                for user in 1..=150 {
                    let sku = if user % 3 == 0 {
                        "EMS"
                    } else {
                        "ENTERPRISEPACK"
                    };
                    let change = AssignmentChange {
                        sku: sku.into(),
                        group: 7,
                        old: None,
                        new: Some(Shown {
                            state: "ACTIVE",
                            code: None,
                            off: None,
                        }),
                    };
                    journal.record_change(user, &format!("u{user}@x"), &[change], 7)?;
                }
                journal.record(&Event::new(
                    Activity::FinishApplying,
                    vec![Target::group(7, None)],
                ))?;
                journal.finish()
            })
            .expect("write");
        let rows: i64 = read(&store, |c| {
            Ok(c.query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))?)
        });
        assert_eq!(
            rows,
            2 + 150_usize.div_ceil(BATCH) as i64,
            "a row per {BATCH} changes"
        );
        let all = read(&store, |c| page(c, &Filter::default(), None, 1000));
        let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
        assert_eq!(ids, (1..=152).rev().collect::<Vec<_>>());
        assert!(
            all.iter().all(|e| e.correlation == 1),
            "one run, one correlation"
        );
        assert_eq!(all[1].activity, Activity::ChangeUserLicense);
        assert_eq!(all[1].category, Category::LicenseProcessing);
        assert_eq!(all[1].targets[0].id.as_deref(), Some("150"));
        assert_eq!(
            all[1].targets[0].properties,
            vec![Property::new("EMS (group 7)", None, Some("ACTIVE".into()))],
            "the change in words"
        );
        let cases = [
            (
                Filter {
                    user: Some(42),
                    ..Filter::default()
                },
                vec![43],
            ),
            (
                Filter {
                    group: Some(7),
                    ..Filter::default()
                },
                (1..=152).rev().collect(),
            ),
            (
                Filter {
                    sku: Some("EMS".into()),
                    ..Filter::default()
                },
                (1..=50).rev().map(|k| 3 * k + 1).collect(),
            ),
            (
                Filter {
                    sku: Some("EMS".into()),
                    user: Some(3),
                    ..Filter::default()
                },
                vec![4],
            ),
            (
                Filter {
                    sku: Some("EMS".into()),
                    user: Some(4),
                    ..Filter::default()
                },
                vec![],
            ),
            (
                Filter {
                    category: Some(Category::LicenseProcessing),
                    ..Filter::default()
                },
                (1..=152).rev().collect(),
            ),
            (
                Filter {
                    failed: Some(true),
                    ..Filter::default()
                },
                vec![],
            ),
        ];
        for (filter, want) in cases {
            let (got, total) = listed(&store, &filter, 1000);
            assert_eq!(got, want, "{filter:?}");
            assert_eq!(total, want.len() as i64, "count of {filter:?}");
            // Paged by three from inside a row.
            let mut seen = Vec::new();
            let mut before = None;
            loop {
                let f = filter.clone();
                let page = read(&store, move |c| page(c, &f, before, 3));
                let Some(last) = page.last() else { break };
                before = Some(last.id);
                seen.extend(page.iter().map(|e| e.id));
            }
            assert_eq!(seen, want, "paged {filter:?}");
        }
        // Pruning takes whole rows; what is left is still whole.
        store
            .write_blocking(|tx| {
                let mut journal =
                    Journal::open(tx, &Actor::local(), None, "2026-03-01T00:00:00.000Z")?;
                journal.record(&user_event(1))?;
                journal.finish()
            })
            .expect("a later event");
        let removed = store
            .write_blocking(|tx| prune(tx, "2026-02-01T00:00:00.000Z", 70))
            .expect("prune");
        assert_eq!(
            removed,
            1 + 64,
            "the start and the first batch row; the next would pass 70"
        );
        let problems = read(&store, |c| {
            let mut problems = Vec::new();
            audit(c, &mut problems)?;
            Ok(problems)
        });
        assert!(problems.is_empty(), "{problems:?}");
        let by_user = Filter {
            user: Some(10),
            ..Filter::default()
        };
        assert_eq!(
            read(&store, move |c| count(c, &by_user)),
            0,
            "its index entry went with it"
        );
        assert_eq!(read(&store, |c| count(c, &Filter::default())), 153 - 65);
    }

    #[test]
    fn batch_entries_round_trip_every_state_code_and_plans_off_and_old_rows_still_read() {
        let mut changes = Vec::new();
        for state in STATES {
            for code in std::iter::once(None).chain(
                crate::engine::ErrorCode::ALL
                    .iter()
                    .map(|c| Some(c.graphql_name())),
            ) {
                for off in [
                    None,
                    Some(r#"["EXCHANGE_S_ENTERPRISE","TEAMS\"1"]"#.to_string()),
                ] {
                    changes.push(AssignmentChange {
                        sku: if changes.len() % 2 == 0 {
                            "EMS"
                        } else {
                            "SPE_E5"
                        }
                        .into(),
                        group: (changes.len() % 3) as i64,
                        old: (changes.len() % 4 != 0).then_some(Shown {
                            state: "ACTIVE",
                            code: None,
                            off: None,
                        }),
                        new: Some(Shown {
                            state,
                            code,
                            off: off.clone(),
                        }),
                    });
                }
            }
        }
        let (_dir, store) = store();
        let written = changes.clone();
        store
            .write_blocking(move |tx| {
                let mut journal =
                    Journal::open(tx, &Actor::system(), None, "2026-01-01T00:00:00.000Z")?;
                journal.record_change(5, "ann \"the admin\"@x", &written, 7)?;
                journal.record_change(6, "bob@x", &written[..3], 7)?;
                journal.finish()
            })
            .expect("write");
        let read_back = read(&store, |c| between(c, 1, 2));
        assert_eq!(read_back.len(), 2);
        let first = &read_back[0].targets[0];
        assert_eq!(first.name.as_deref(), Some("ann \"the admin\"@x"));
        let expected: Vec<Property> = changes.iter().map(AssignmentChange::property).collect();
        assert_eq!(first.properties, expected);
        assert_eq!(read_back[1].targets[0].properties, expected[..3].to_vec());
        // A row of the layout before: names and states in full.
        store
            .write_blocking(|tx| {
                tx.execute(
                    "INSERT INTO audit_events (id, last_id, at, category, activity, actor, failed, group_id, targets)
                     VALUES (3, 3, '2026-01-01T00:00:00.000Z', ?1, ?2, 1, 0, 7, ?3)",
                    params![
                        Category::LicenseProcessing as i64,
                        Activity::ChangeUserLicense as i64,
                        r#"[[9,"old@x",[["EMS",7,null,["ACTIVE_WITH_ERROR","COUNT_VIOLATION","[\"X\"]"]]]]]"#
                    ],
                )?;
                Ok(())
            })
            .expect("an old row");
        let old = read(&store, |c| between(c, 3, 3));
        assert_eq!(
            old[0].targets[0].properties,
            vec![
                AssignmentChange {
                    sku: "EMS".into(),
                    group: 7,
                    old: None,
                    new: Some(Shown {
                        state: "ACTIVE_WITH_ERROR",
                        code: Some("COUNT_VIOLATION"),
                        off: Some(r#"["X"]"#.into()),
                    }),
                }
                .property()
            ]
        );
    }

    #[test]
    fn assignment_values_name_state_error_and_plans_off() {
        assert_eq!(assignment_value("ACTIVE", None, Some("[]")), "ACTIVE");
        assert_eq!(
            assignment_value("ERROR", Some("COUNT_VIOLATION"), None),
            "ERROR: COUNT_VIOLATION"
        );
        assert_eq!(
            assignment_value("ACTIVE", None, Some(r#"["SWAY","YAMMER_ENTERPRISE"]"#)),
            "ACTIVE; plans off: SWAY, YAMMER_ENTERPRISE"
        );
        assert_eq!(assignment_name("EMS", 0), "EMS (direct)");
        assert_eq!(assignment_name("EMS", 7), "EMS (group 7)");
    }
}
