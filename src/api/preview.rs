//! The what-if previews (W) and the redundant direct licenses (M) as GraphQL types.
//!
//! A preview is computed by the store on one snapshot (`store::preview`), and kept in
//! [`Previews`] under the change, the rule table and the store's generation: the later pages of
//! its users are served from it while nothing was written since (W6); after a write the same
//! query computes it again on the new data. The kept previews are bounded by their total size,
//! the oldest going first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_graphql::{Context, Enum, Object, Result, SimpleObject};

use crate::engine::preview::{Outcome, PreviewEntry};
use crate::engine::redundant::NotRedundant;
use crate::engine::{Assignment, Intent};
use crate::rules::{ProductId, RuleTable};
use crate::store::codec::encode_error;
use crate::store::preview::{Change, Previewed};
use crate::store::read::StateView;
use crate::store::{self, encode_disabled, redundant};

use super::loaders::{GroupNameKey, StatesKey};
use super::mutation::mutation_error;
use super::types::{
    ErrorCount, Group, LicenseAssignmentState, LicenseErrorCode, PageInfo, Product, User, loader,
    state, table,
};
use super::{bad_input, cursor, page_args};

/// W5: how one affected user would come out, relative to the assignments from the change's
/// source (the group, or direct); the first that applies, in this order: UNCHANGED, BLOCKED,
/// REMOVED, ERROR, LICENSED.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PreviewOutcome {
    /// Every assignment from the source applied without error afterwards.
    Licensed,
    /// At least one assignment from the source in ERROR or ACTIVE_WITH_ERROR afterwards.
    Error,
    /// Everything the source gave withdrawn, and the withdrawal applied (P3).
    Removed,
    /// A withdrawal blocked because a remaining plan needs it (P3).
    Blocked,
    /// States, errors and held licenses as they are now.
    Unchanged,
}

impl PreviewOutcome {
    fn of(outcome: Outcome) -> PreviewOutcome {
        match outcome {
            Outcome::Licensed => PreviewOutcome::Licensed,
            Outcome::Error => PreviewOutcome::Error,
            Outcome::Removed => PreviewOutcome::Removed,
            Outcome::Blocked => PreviewOutcome::Blocked,
            Outcome::Unchanged => PreviewOutcome::Unchanged,
        }
    }
}

/// How many affected users would come out one way.
#[derive(SimpleObject)]
pub struct PreviewOutcomeCount {
    /// The outcome.
    pub outcome: PreviewOutcome,
    /// How many affected users would have it.
    pub count: i32,
}

/// One product's seats now and after the change is processed.
#[derive(SimpleObject)]
pub struct SeatPreview {
    /// The product.
    pub product: Product,
    /// Seats bought.
    pub prepaid_units: i32,
    /// Seats in use now.
    pub consumed_units: i32,
    /// Seats in use once the change is processed to COMPLETE.
    pub consumed_units_after: i32,
    /// Users who would get COUNT_VIOLATION for this product.
    pub seats_short: i32,
}

/// One affected user and how its assignments would stand.
pub struct PreviewUser {
    user: i64,
    outcome: PreviewOutcome,
    states: Vec<LicenseAssignmentState>,
}

/// One affected user and how its assignments would stand after the change is processed.
#[Object]
impl PreviewUser {
    /// The user.
    async fn user(&self) -> User {
        User(self.user)
    }

    /// How the user would come out (W5).
    async fn outcome(&self) -> PreviewOutcome {
        self.outcome
    }

    /// Every assignment of the user as it would be once the change is processed, every source
    /// included; those the change does not touch as they are now.
    async fn license_assignment_states(&self) -> &[LicenseAssignmentState] {
        &self.states
    }
}

/// One affected user of a page, with its cursor.
#[derive(SimpleObject)]
pub struct PreviewUserEdge {
    /// Where this user is in the list; `after` takes it to continue from here.
    pub cursor: String,
    /// The user and how it would stand.
    pub node: PreviewUser,
}

/// A page of a preview's affected users, by user id.
#[derive(SimpleObject)]
pub struct PreviewUserConnection {
    /// The users of this page, by id.
    pub edges: Vec<PreviewUserEdge>,
    /// Whether more users follow, and the cursor to continue from.
    pub page_info: PageInfo,
    /// How many affected users match the filters, over all pages.
    pub total_count: i32,
}

/// What a change would do if it were committed now and processed to COMPLETE with no other
/// change (W1). Nothing is written to compute it (W2).
pub struct LicensePreview {
    kept: Arc<Kept>,
}

struct Kept {
    previewed: Previewed,
    table: Arc<RuleTable>,
    /// When the preview was computed: the time shown for what it changes.
    at: String,
}

fn count(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

/// What a change would do if it were committed now and processed to COMPLETE with no other
/// change (W1); nothing is written to compute it (W2).
#[Object]
impl LicensePreview {
    /// How many users the change would process (W5): for a group change every member and every
    /// former member with a pending withdrawal, for `assignLicense` the user.
    async fn users_affected(&self) -> i32 {
        count(self.kept.previewed.preview.entries().len())
    }

    /// How many affected users would come out each way; outcomes nobody has are left out.
    async fn outcome_counts(&self) -> Vec<PreviewOutcomeCount> {
        self.kept
            .previewed
            .preview
            .outcome_counts()
            .into_iter()
            .map(|(o, n)| PreviewOutcomeCount {
                outcome: PreviewOutcome::of(o),
                count: count(n),
            })
            .collect()
    }

    /// The affected users in error afterwards, per error code, largest first.
    async fn error_counts(&self) -> Vec<ErrorCount> {
        self.kept
            .previewed
            .preview
            .error_counts()
            .into_iter()
            .map(|(code, n)| ErrorCount {
                error: LicenseErrorCode::parse(code.graphql_name()),
                count: count(n),
            })
            .collect()
    }

    /// Every product whose seats in use would change, or that would lack seats.
    async fn products(&self) -> Vec<SeatPreview> {
        self.kept
            .previewed
            .preview
            .seat_changes(&self.kept.table)
            .into_iter()
            .map(|s| SeatPreview {
                product: Product(s.product),
                prepaid_units: count(s.prepaid),
                consumed_units: count(s.consumed),
                consumed_units_after: count(s.consumed_after),
                seats_short: count(s.short),
            })
            .collect()
    }

    /// Work already queued when the preview was computed. The preview assumes that work
    /// changes nothing it shows: with 0 (processing idle) it is exact (W4); otherwise commit
    /// after the queue drains, or preview again then.
    async fn queued_work_items(&self) -> i32 {
        count(self.kept.previewed.queued_before)
    }

    /// The affected users, by user id, with their assignments as they would be.
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many users to return: 100 when omitted, at most 1,000.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
        #[graphql(desc = "Only the users who would come out this way.")] outcome: Option<
            PreviewOutcome,
        >,
        #[graphql(
            desc = "Only the users whose first error afterwards would have this code; NONE: those without one."
        )]
        error: Option<LicenseErrorCode>,
    ) -> Result<PreviewUserConnection> {
        let (first, after) = page_args(first, after.as_deref(), "pv")?;
        let preview = &self.kept.previewed.preview;
        let wanted = |e: &&PreviewEntry| {
            outcome.is_none_or(|o| PreviewOutcome::of(e.outcome) == o)
                && error.is_none_or(|c| {
                    LicenseErrorCode::parse(crate::engine::ErrorCode::graphql_name_of(e.error)) == c
                })
        };
        let entries = preview.entries();
        let filtered = outcome.is_some() || error.is_some();
        let total = if filtered {
            entries.iter().filter(wanted).count()
        } else {
            entries.len()
        };
        let start = entries.partition_point(|e| e.user.0 <= after);
        let mut page: Vec<&PreviewEntry> = entries[start..]
            .iter()
            .filter(wanted)
            .take(first + 1)
            .collect();
        let has_next = page.len() > first;
        page.truncate(first);
        let ids: Vec<i64> = page.iter().map(|e| e.user.0).collect();
        let now = loader(ctx)?
            .load_many(ids.iter().copied().map(StatesKey))
            .await?;
        let table = &self.kept.table;
        let edges: Vec<PreviewUserEdge> = page
            .iter()
            .map(|e| {
                let current = now.get(&StatesKey(e.user.0)).cloned().unwrap_or_default();
                let views = splice(
                    table,
                    preview.source().group().map(|g| g.0),
                    current,
                    preview.after(e),
                    &self.kept.at,
                );
                PreviewUserEdge {
                    cursor: cursor("pv", e.user.0),
                    node: PreviewUser {
                        user: e.user.0,
                        outcome: PreviewOutcome::of(e.outcome),
                        states: views
                            .into_iter()
                            .filter_map(|view| {
                                table
                                    .product_by_name(&view.sku)
                                    .map(|p| LicenseAssignmentState::new(p, view))
                            })
                            .collect(),
                    },
                }
            })
            .collect();
        Ok(PreviewUserConnection {
            page_info: PageInfo {
                has_next_page: has_next,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: count(total),
        })
    }
}

/// The user's assignment states now, with those of the change's source (`group`, or direct)
/// replaced by how they would be: in the place the source's states had, a new source's after the
/// others (it was joined last), direct ones first (as `licenseAssignmentStates` lists them).
fn splice(
    table: &RuleTable,
    group: Option<i64>,
    current: Vec<StateView>,
    after: &[Assignment],
    at: &str,
) -> Vec<StateView> {
    let place = current.iter().position(|s| s.group == group);
    let (old, mut rest): (Vec<StateView>, Vec<StateView>) =
        current.into_iter().partition(|s| s.group == group);
    let new: Vec<StateView> = after
        .iter()
        .map(|a| {
            let sku = table.product(a.product).name.clone();
            let applied = a.applied.as_ref().map(|d| encode_disabled(table, d));
            let disabled = match &a.intent {
                Intent::Assign(d) => encode_disabled(table, d),
                Intent::Withdraw => applied.clone().unwrap_or_else(|| "[]".into()),
            };
            let error = a.error.as_ref().map(|e| encode_error(table, e));
            let state = a.state.graphql_name().to_string();
            // An assignment that stays as it stands keeps its time.
            let updated_at = old
                .iter()
                .find(|s| {
                    s.sku == sku && s.applied == applied && s.state == state && s.error == error
                })
                .map_or_else(|| at.to_string(), |s| s.updated_at.clone());
            StateView {
                group,
                sku,
                disabled,
                applied,
                state,
                error_code: a
                    .error
                    .as_ref()
                    .map(|e| e.code().graphql_name().to_string()),
                error,
                updated_at,
            }
        })
        .collect();
    let at_index = match (group, place) {
        (None, _) => 0,
        (Some(_), Some(i)) => i.min(rest.len()),
        (Some(_), None) => rest.len(),
    };
    rest.splice(at_index..at_index, new);
    rest
}

// ---- The kept previews -------------------------------------------------------------------------

/// Previews kept for paging (W6), newest last.
#[derive(Default)]
pub struct Previews {
    kept: Mutex<VecDeque<Entry>>,
}

struct Entry {
    change: Change,
    table: Arc<RuleTable>,
    generation: u64,
    preview: Arc<Kept>,
    weight: usize,
}

/// What the kept previews may hold together; one bigger than this is answered and not kept.
const KEPT_BYTES: usize = 128 * 1024 * 1024;
/// How many previews are kept at most.
const KEPT_PREVIEWS: usize = 32;

impl Previews {
    fn get(&self, change: &Change, table: &Arc<RuleTable>, generation: u64) -> Option<Arc<Kept>> {
        let mut kept = self.kept.lock().ok()?;
        // A write since makes every kept preview stale.
        kept.retain(|e| e.generation >= generation);
        kept.iter()
            .find(|e| {
                e.generation == generation && Arc::ptr_eq(&e.table, table) && e.change == *change
            })
            .map(|e| e.preview.clone())
    }

    fn put(&self, change: Change, table: Arc<RuleTable>, generation: u64, preview: Arc<Kept>) {
        let weight = preview.previewed.preview.weight();
        if weight > KEPT_BYTES {
            return;
        }
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        kept.retain(|e| e.change != change || !Arc::ptr_eq(&e.table, &table));
        kept.push_back(Entry {
            change,
            table,
            generation,
            preview,
            weight,
        });
        while kept.len() > KEPT_PREVIEWS
            || kept.iter().map(|e| e.weight).sum::<usize>() > KEPT_BYTES
        {
            kept.pop_front();
        }
    }
}

/// Answers a preview query: from the kept previews, or computed on a snapshot. Refusals are the
/// mutation's, with the same code and details (W3).
pub async fn preview(ctx: &Context<'_>, change: Change) -> Result<LicensePreview> {
    let st = state(ctx)?;
    let table = table(ctx)?.clone();
    let previews = ctx.data::<Previews>()?;
    if let Some(kept) = previews.get(&change, &table, st.store.generation()) {
        return Ok(LicensePreview { kept });
    }
    let for_read = (table.clone(), change.clone());
    let computed = st
        .store
        .snapshot(move |c| store::preview::preview(c, &for_read.0, &for_read.1))
        .await;
    let (previewed, generation) = match computed {
        Ok(done) => done,
        Err(e) => return Err(mutation_error(ctx, e).await),
    };
    let kept = Arc::new(Kept {
        previewed,
        table: table.clone(),
        at: store::now(),
    });
    if let Some(generation) = generation {
        previews.put(change, table, generation, kept.clone());
    }
    Ok(LicensePreview { kept })
}

// ---- Redundant direct licenses (M) -------------------------------------------------------------

/// A direct license that the user's groups already cover (M1): removing it changes neither what
/// the user holds, nor its enabled plans, nor the seats.
pub struct RedundantLicense {
    pub(crate) item: redundant::Redundant,
}

/// A direct license that the user's groups already cover (M1): removing it changes neither what
/// the user holds, nor its enabled plans, nor the seats.
#[Object]
impl RedundantLicense {
    /// The user.
    async fn user(&self) -> User {
        User(self.item.user)
    }

    /// The product assigned directly.
    async fn product(&self) -> Product {
        Product(self.item.product)
    }

    /// The groups whose ACTIVE assignments of the product together enable every plan the direct
    /// license enables.
    async fn covered_by(&self) -> Vec<Group> {
        self.item.groups.iter().map(|g| Group::new(g.0)).collect()
    }
}

/// One redundant direct license of a page, with its cursor.
#[derive(SimpleObject)]
pub struct RedundantLicenseEdge {
    /// Where this license is in the list; `after` takes it to continue from here.
    pub cursor: String,
    /// The license.
    pub node: RedundantLicense,
}

/// A page of redundant direct licenses, by user id.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct RedundantLicenseConnection {
    /// The licenses of this page, by user id, then product.
    pub edges: Vec<RedundantLicenseEdge>,
    /// Whether more follow, and the cursor to continue from.
    pub page_info: PageInfo,
    #[graphql(skip)]
    pub product: Option<ProductId>,
}

#[async_graphql::ComplexObject]
impl RedundantLicenseConnection {
    /// How many redundant direct licenses there are, over all pages (counted when asked: it
    /// reads every user with a direct license).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let table = table(ctx)?.clone();
        let product = self.product;
        let st = state(ctx)?;
        let counts = ctx.data::<RedundantCounts>()?;
        if let Some(n) = counts.get(&table, product, st.store.generation()) {
            return Ok(count(n));
        }
        let for_read = table.clone();
        let (n, generation) = st
            .store
            .snapshot(move |c| redundant::count(c, &for_read, product))
            .await
            .map_err(super::api_error)?;
        if let Some(generation) = generation {
            counts.put(table, product, generation, n);
        }
        Ok(count(n))
    }
}

/// The last counts of redundant direct licenses, per product filter, while nothing was written:
/// a count reads every user with a direct license, and every page of the list shows it.
#[derive(Default)]
pub struct RedundantCounts {
    kept: Mutex<Vec<KeptCount>>,
}

/// A count, with the rules, product filter and generation it was counted under.
type KeptCount = (Arc<RuleTable>, Option<ProductId>, u64, i64);

/// Product filters whose count is kept at once.
const KEPT_COUNTS: usize = 16;

impl RedundantCounts {
    fn get(
        &self,
        table: &Arc<RuleTable>,
        product: Option<ProductId>,
        generation: u64,
    ) -> Option<i64> {
        let kept = self.kept.lock().ok()?;
        kept.iter()
            .find(|(t, p, g, _)| Arc::ptr_eq(t, table) && *p == product && *g == generation)
            .map(|(_, _, _, n)| *n)
    }

    fn put(&self, table: Arc<RuleTable>, product: Option<ProductId>, generation: u64, n: i64) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        kept.retain(|(_, p, g, _)| *g >= generation && *p != product);
        kept.push((table, product, generation, n));
        if kept.len() > KEPT_COUNTS {
            kept.remove(0);
        }
    }
}

/// M2: a page of the redundant direct licenses.
pub async fn redundant_page(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    sku: Option<String>,
) -> Result<RedundantLicenseConnection> {
    let (first, after) = page_args(first, after.as_deref(), "rd")?;
    let table = table(ctx)?.clone();
    let product = match sku {
        Some(s) => Some(
            table
                .product_by_name(&s)
                .ok_or_else(|| bad_input(format!("unknown product `{s}`")))?,
        ),
        None => None,
    };
    let ((items, more), _) = state(ctx)?
        .store
        .snapshot(move |c| redundant::page(c, &table, after, first, product))
        .await
        .map_err(super::api_error)?;
    let edges: Vec<RedundantLicenseEdge> = items
        .into_iter()
        .map(|item| RedundantLicenseEdge {
            cursor: cursor("rd", item.key()),
            node: RedundantLicense { item },
        })
        .collect();
    Ok(RedundantLicenseConnection {
        page_info: PageInfo {
            has_next_page: more,
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        },
        edges,
        product,
    })
}

/// A direct license `removeRedundantDirectLicenses` left, and why.
#[derive(SimpleObject)]
pub struct SkippedDirectLicense {
    /// The user.
    pub user: User,
    /// The product.
    pub product: Product,
    /// Why it was left: what removing it would take away, or that there is nothing to remove.
    pub reason: String,
}

/// What `removeRedundantDirectLicenses` did.
#[derive(SimpleObject)]
pub struct DirectLicenseCleanup {
    /// The direct licenses removed, each with the groups that cover it.
    pub removed: Vec<RedundantLicense>,
    /// The direct licenses left as they are, each with the reason.
    pub skipped: Vec<SkippedDirectLicense>,
}

/// The cleanup as GraphQL answers it, its reasons in words.
pub async fn cleanup_of(
    ctx: &Context<'_>,
    table: &RuleTable,
    cleanup: redundant::Cleanup,
) -> Result<DirectLicenseCleanup> {
    let mut groups = Vec::new();
    for (_, _, reason) in &cleanup.skipped {
        match reason {
            NotRedundant::NoActiveGroup {
                in_error: Some((g, _)),
            } => groups.push(g.0),
            NotRedundant::PlansNotCovered { groups: gs, .. } => {
                groups.extend(gs.iter().map(|g| g.0))
            }
            _ => {}
        }
    }
    let names = loader(ctx)?
        .load_many(groups.into_iter().map(GroupNameKey))
        .await?;
    let name = |g: crate::engine::GroupId| {
        names
            .get(&GroupNameKey(g.0))
            .map_or_else(|| format!("group {}", g.0), |n| format!("\"{n}\""))
    };
    let skipped = cleanup
        .skipped
        .iter()
        .map(|(user, product, reason)| {
            let sku = &table.product(*product).name;
            let reason = match reason {
                NotRedundant::NotDirect => {
                    format!("the user has no direct license for {sku}")
                }
                NotRedundant::NoGroup => format!(
                    "no group assigns {sku} to the user: removing the direct license would take the product away"
                ),
                NotRedundant::NoActiveGroup { in_error: Some((g, code)) } => format!(
                    "the assignment of {sku} from group {} is in error ({}): removing the direct license would take the product away",
                    name(*g),
                    code.graphql_name()
                ),
                NotRedundant::NoActiveGroup { in_error: None } => format!(
                    "the groups that assign {sku} have not applied it yet: let processing finish, then try again"
                ),
                NotRedundant::PlansNotCovered { groups, missing } => {
                    let groups: Vec<String> = groups.iter().map(|g| name(*g)).collect();
                    let plans: Vec<&str> =
                        missing.iter().map(|p| table.plan(*p).name.as_str()).collect();
                    format!(
                        "the direct license enables {} that {} {} not enable: removing it would turn {} off",
                        plans.join(", "),
                        if groups.len() == 1 { "group" } else { "groups" },
                        if groups.len() == 1 {
                            format!("{} does", groups.join(", "))
                        } else {
                            format!("{} do", groups.join(", "))
                        },
                        if missing.len() == 1 { "it" } else { "them" }
                    )
                }
            };
            SkippedDirectLicense {
                user: User(*user),
                product: Product(*product),
                reason,
            }
        })
        .collect();
    Ok(DirectLicenseCleanup {
        removed: cleanup
            .removed
            .into_iter()
            .map(|item| RedundantLicense { item })
            .collect(),
        skipped,
    })
}
