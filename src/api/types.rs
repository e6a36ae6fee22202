//! The object types of graphql-api.md. Users, groups and products are handles (an id); their
//! fields are read through the request's loaders.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::engine::{self, FoundNames, Violation};
use crate::rules::{PlanId, ProductId, RuleTable};
use crate::store::codec::decode_error;
use crate::store::decode_disabled;
use crate::store::read::{self, StateView};

use super::loaders::{
    DirectoryKey, GroupKey, GroupNameKey, MembershipsKey, SeatsKey, StatesKey, UserKey, UserNameKey,
};
use super::{AppState, RequestLoader, api_error, cursor, page_args};

pub(crate) fn table<'c>(ctx: &Context<'c>) -> Result<&'c Arc<RuleTable>> {
    ctx.data::<Arc<RuleTable>>()
}

pub(crate) fn loader<'c>(ctx: &Context<'c>) -> Result<&'c RequestLoader> {
    ctx.data::<RequestLoader>()
}

pub(crate) fn state<'c>(ctx: &Context<'c>) -> Result<&'c AppState> {
    ctx.data::<AppState>()
}

// ---- Enums ------------------------------------------------------------------------------------

/// Where one assignment stands: whether it is applied, and whether its latest change failed.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum LicenseAssignmentStateValue {
    /// Recorded, not processed yet: the user does not hold the product through it so far.
    Pending,
    /// Applied: the user holds the product through this assignment (L1).
    Active,
    /// Applied, but its latest change failed: the configuration last applied stays in force and
    /// `error` says why (P2, P3, P4).
    ActiveWithError,
    /// Never applied: the user does not hold the product through it, and `error` says why (P2).
    Error,
}

impl LicenseAssignmentStateValue {
    fn parse(name: &str) -> LicenseAssignmentStateValue {
        match name {
            "ACTIVE" => LicenseAssignmentStateValue::Active,
            "ACTIVE_WITH_ERROR" => LicenseAssignmentStateValue::ActiveWithError,
            "ERROR" => LicenseAssignmentStateValue::Error,
            _ => LicenseAssignmentStateValue::Pending,
        }
    }
}

/// Why an assignment or a license change failed: the first of the checks C1–C5 that failed.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum LicenseErrorCode {
    /// No error.
    None,
    /// Not enough seats: a product the user would newly hold has none available (C5).
    CountViolation,
    /// Two service plans that exclude each other would both be enabled for the user (C3, R1).
    MutuallyExclusiveViolation,
    /// An enabled service plan would have none of its prerequisite plans enabled (C4, R2).
    DependencyViolation,
    /// A service plan is not allowed in the user's effective usage location (C2, R3).
    ProhibitedInUsageLocationViolation,
    /// One of the user's proxy addresses is also another user's (C1).
    UniquenessViolation,
    /// Any other failure, as in Microsoft Graph; none of this server's checks (C1–C5) gives it.
    Other,
}

impl LicenseErrorCode {
    pub fn parse(name: &str) -> LicenseErrorCode {
        match name {
            "NONE" => LicenseErrorCode::None,
            "COUNT_VIOLATION" => LicenseErrorCode::CountViolation,
            "MUTUALLY_EXCLUSIVE_VIOLATION" => LicenseErrorCode::MutuallyExclusiveViolation,
            "DEPENDENCY_VIOLATION" => LicenseErrorCode::DependencyViolation,
            "PROHIBITED_IN_USAGE_LOCATION_VIOLATION" => {
                LicenseErrorCode::ProhibitedInUsageLocationViolation
            }
            "UNIQUENESS_VIOLATION" => LicenseErrorCode::UniquenessViolation,
            _ => LicenseErrorCode::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LicenseErrorCode::None => "NONE",
            LicenseErrorCode::CountViolation => "COUNT_VIOLATION",
            LicenseErrorCode::MutuallyExclusiveViolation => "MUTUALLY_EXCLUSIVE_VIOLATION",
            LicenseErrorCode::DependencyViolation => "DEPENDENCY_VIOLATION",
            LicenseErrorCode::ProhibitedInUsageLocationViolation => {
                "PROHIBITED_IN_USAGE_LOCATION_VIOLATION"
            }
            LicenseErrorCode::UniquenessViolation => "UNIQUENESS_VIOLATION",
            LicenseErrorCode::Other => "OTHER",
        }
    }

    fn of(code: engine::ErrorCode) -> LicenseErrorCode {
        LicenseErrorCode::parse(code.graphql_name())
    }
}

/// How far the background processing of a group has got (P9).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum LicenseProcessingState {
    /// Work for the group waits for the background worker.
    Queued,
    /// The background worker is processing the group's members.
    InProgress,
    /// Nothing is left to process for the group.
    Complete,
}

// ---- Directory, plans, products ------------------------------------------------------------------

/// The tenant this server manages.
#[derive(SimpleObject)]
pub struct Directory {
    /// The tenant's name.
    pub display_name: String,
    /// The usage location (ISO 3166-1 alpha-2) of users who have none of their own, for group
    /// licenses only: direct licenses need the user's own (L4, D2).
    pub default_usage_location: String,
}

/// One service that products bundle, such as Exchange Online (Plan 2), as the rules declare it.
#[derive(SimpleObject, Clone)]
pub struct ServicePlan {
    /// The plan's name in the rules and in Microsoft's catalog, e.g. `EXCHANGE_S_ENTERPRISE`
    /// (case-sensitive); `disabledPlans` arguments take it.
    pub service_plan_name: String,
    /// The plan's GUID in Microsoft's catalog; null when the rules give none.
    pub service_plan_id: Option<String>,
    /// The plan's name for people, e.g. "Exchange Online (Plan 2)".
    pub display_name: String,
}

impl ServicePlan {
    pub fn of(table: &RuleTable, plan: PlanId) -> ServicePlan {
        let info = table.plan(plan);
        ServicePlan {
            service_plan_name: info.name.clone(),
            service_plan_id: info.id.clone(),
            display_name: info.display_name.clone(),
        }
    }

    fn list(table: &RuleTable, plans: impl IntoIterator<Item = PlanId>) -> Vec<ServicePlan> {
        plans
            .into_iter()
            .map(|p| ServicePlan::of(table, p))
            .collect()
    }
}

/// A product (SKU) of the rule table; seats come from the database.
#[derive(Clone, Copy)]
pub struct Product(pub ProductId);

impl Product {
    async fn seats(&self, ctx: &Context<'_>) -> Result<(i64, i64)> {
        let name = &table(ctx)?.product(self.0).name;
        let seats = loader(ctx)?.load_one(SeatsKey).await?.unwrap_or_default();
        Ok(seats.get(name).copied().unwrap_or((0, 0)))
    }
}

fn int(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A product (SKU) the tenant can license: a bundle of service plans declared in the rules,
/// with the seats the tenant bought and uses (Q3).
#[Object]
impl Product {
    /// The product's name in the rules and in Microsoft's catalog, e.g. `ENTERPRISEPACK`
    /// (case-sensitive); mutations name products by it.
    async fn sku_part_number(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(table(ctx)?.product(self.0).name.clone())
    }

    /// The product's GUID in Microsoft's catalog; null when the rules give none.
    async fn sku_id(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(table(ctx)?.product(self.0).id.clone())
    }

    /// The product's name for people, e.g. "Office 365 E3".
    async fn display_name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(table(ctx)?.product(self.0).display_name.clone())
    }

    /// The service plans the product contains, in the order the rules list them.
    #[graphql(
        complexity = "crate::api::limits::list_cost(crate::api::limits::SHORT_LIST, child_complexity)"
    )]
    async fn service_plans(&self, ctx: &Context<'_>) -> Result<Vec<ServicePlan>> {
        let table = table(ctx)?;
        Ok(ServicePlan::list(
            table,
            table.product(self.0).plan_list.iter().copied(),
        ))
    }

    /// Available seats at or below which a `LOW_SEATS` alert stands (N1); null: none.
    async fn seat_alert_threshold(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        let sku = table(ctx)?.product(self.0).name.clone();
        let state = ctx.data::<super::AppState>()?;
        let found = state
            .store
            .read(move |c| crate::store::alerts::threshold(c, &sku))
            .await
            .map_err(super::api_error)?;
        Ok(found.map(int))
    }

    /// Seats the tenant bought (`setPrepaidUnits`).
    async fn prepaid_units(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.seats(ctx).await?.0))
    }

    /// Users holding the product, whatever the number of their sources (L1, L3).
    async fn consumed_units(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.seats(ctx).await?.1))
    }

    /// Seats left for new holders: `prepaidUnits` minus `consumedUnits`, never below 0 (L3).
    async fn available_units(&self, ctx: &Context<'_>) -> Result<i32> {
        let (prepaid, consumed) = self.seats(ctx).await?;
        Ok(int((prepaid - consumed).max(0)))
    }

    /// Users holding the product (directly or through groups), by id (L1).
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn licensed_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many users to return: 100 when omitted, at most 1,000.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
    ) -> Result<UserConnection> {
        let (first, after) = page_args(first, after.as_deref(), "u")?;
        let sku = table(ctx)?.product(self.0).name.clone();
        let page = state(ctx)?
            .store
            .read(move |c| read::holders_page(c, &sku, after, first))
            .await
            .map_err(api_error)?;
        UserConnection::load(ctx, page, |id| cursor("u", *id), |id| *id).await
    }

    /// Groups whose license set holds the product, by id.
    #[graphql(
        complexity = "crate::api::limits::list_cost(crate::api::limits::SHORT_LIST, child_complexity)"
    )]
    async fn licensed_groups(&self, ctx: &Context<'_>) -> Result<Vec<Group>> {
        let sku = table(ctx)?.product(self.0).name.clone();
        let ids = state(ctx)?
            .store
            .read(move |c| read::groups_with_product(c, &sku))
            .await
            .map_err(api_error)?;
        Ok(ids.into_iter().map(Group::new).collect())
    }
}

// ---- Users ------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub struct User(pub i64);

impl User {
    async fn view(&self, ctx: &Context<'_>) -> Result<read::UserView> {
        loader(ctx)?
            .load_one(UserKey(self.0))
            .await?
            .ok_or_else(|| api_error(read::not_found("user", self.0)))
    }

    async fn states(&self, ctx: &Context<'_>) -> Result<Vec<StateView>> {
        Ok(loader(ctx)?
            .load_one(StatesKey(self.0))
            .await?
            .unwrap_or_default())
    }
}

/// A user of the directory: the licenses it holds and every assignment behind them.
#[Object]
impl User {
    /// The user's id, as `user(id:)` and the mutations take it.
    async fn id(&self) -> ID {
        ID(self.0.to_string())
    }

    /// The user's sign-in name (name@domain), unique regardless of case.
    async fn user_principal_name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.view(ctx).await?.user_principal_name)
    }

    /// The user's name for people.
    async fn display_name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.view(ctx).await?.display_name)
    }

    /// The user's own usage location (ISO 3166-1 alpha-2), as set on the user; null when unset.
    /// Direct licenses need one (D2).
    async fn usage_location(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.view(ctx).await?.usage_location)
    }

    /// Where the location rules are checked for the user: its usage location, else the
    /// directory's default (L4, R3).
    async fn effective_usage_location(&self, ctx: &Context<'_>) -> Result<String> {
        match self.view(ctx).await?.usage_location {
            Some(own) => Ok(own),
            None => Ok(loader(ctx)?
                .load_one(DirectoryKey)
                .await?
                .map(|d| d.default_usage_location.clone())
                .unwrap_or_default()),
        }
    }

    /// The user's email addresses, e.g. `SMTP:ann@contoso.com`; an address another user also
    /// has fails the user's licenses with UNIQUENESS_VIOLATION (C1).
    async fn proxy_addresses(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.view(ctx).await?.proxy_addresses)
    }

    /// Whether the account is enabled (SCIM's `active`). A disabled account keeps its licenses
    /// and changes nothing in licensing, as in Entra ID; the console marks it.
    async fn account_enabled(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.view(ctx).await?.account_enabled)
    }

    /// The provisioning directory's own id for the user (SCIM's `externalId`); null when none
    /// was given.
    async fn external_id(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.view(ctx).await?.external_id)
    }

    /// The user's history, newest first (H6).
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return: 100 when omitted, at most 1,000.")] first: Option<
            i32,
        >,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
    ) -> Result<super::history::AuditEventConnection> {
        let filter = crate::store::history::Filter {
            user: Some(self.0),
            ..Default::default()
        };
        super::history::page(ctx, filter, first, after).await
    }

    /// Groups the user is a member of, in the order the user joined them.
    #[graphql(
        complexity = "crate::api::limits::list_cost(crate::api::limits::SHORT_LIST, child_complexity)"
    )]
    async fn member_of(&self, ctx: &Context<'_>) -> Result<Vec<Group>> {
        let groups = loader(ctx)?
            .load_one(MembershipsKey(self.0))
            .await?
            .unwrap_or_default();
        Ok(groups.into_iter().map(Group::new).collect())
    }

    /// What the user holds (L1): one entry per product, with the union of the enabled plans of
    /// every source (L2).
    #[graphql(
        complexity = "crate::api::limits::list_cost(crate::api::limits::SHORT_LIST, child_complexity)"
    )]
    async fn assigned_licenses(&self, ctx: &Context<'_>) -> Result<Vec<AssignedLicense>> {
        let table = table(ctx)?;
        let mut held: Vec<(ProductId, crate::rules::PlanSet)> = Vec::new();
        for s in self.states(ctx).await? {
            let (Some(applied), Some(product)) = (&s.applied, table.product_by_name(&s.sku)) else {
                continue;
            };
            let Ok(disabled) = decode_disabled(table, applied) else {
                continue;
            };
            let enabled = disabled.enabled_in(table, product);
            match held.iter_mut().find(|(p, _)| *p == product) {
                Some((_, plans)) => *plans |= enabled,
                None => held.push((product, enabled)),
            }
        }
        Ok(held
            .into_iter()
            .map(|(product, enabled)| {
                let info = table.product(product);
                AssignedLicense {
                    product: Product(product),
                    enabled_plans: ServicePlan::list(
                        table,
                        info.plan_list
                            .iter()
                            .copied()
                            .filter(|p| enabled.contains(*p)),
                    ),
                    disabled_plans: ServicePlan::list(
                        table,
                        info.plan_list
                            .iter()
                            .copied()
                            .filter(|p| !enabled.contains(*p)),
                    ),
                }
            })
            .collect())
    }

    /// Every assignment of the user, whatever its source and state (Q4).
    #[graphql(
        complexity = "crate::api::limits::list_cost(crate::api::limits::SHORT_LIST, child_complexity)"
    )]
    async fn license_assignment_states(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<LicenseAssignmentState>> {
        let table = table(ctx)?;
        Ok(self
            .states(ctx)
            .await?
            .into_iter()
            .filter_map(|view| {
                table
                    .product_by_name(&view.sku)
                    .map(|product| LicenseAssignmentState { product, view })
            })
            .collect())
    }

    /// True when at least one of the user's assignments is in error (its `error` is not NONE).
    async fn has_license_errors(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self
            .states(ctx)
            .await?
            .iter()
            .any(|s| s.error_code.is_some()))
    }
}

/// A product the user holds (L1), with the service plans its sources enable together (L2).
#[derive(SimpleObject)]
pub struct AssignedLicense {
    /// The product held.
    pub product: Product,
    /// The product's plans enabled for the user: the union over all of its sources (L2).
    pub enabled_plans: Vec<ServicePlan>,
    /// The product's plans that none of the user's sources enables.
    pub disabled_plans: Vec<ServicePlan>,
}

pub struct LicenseAssignmentState {
    product: ProductId,
    view: StateView,
}

impl LicenseAssignmentState {
    pub(crate) fn new(product: ProductId, view: StateView) -> LicenseAssignmentState {
        LicenseAssignmentState { product, view }
    }
}

/// One assignment: the intent to license the user with one product from one source, direct or
/// a group, and how it stands (Q4).
#[Object]
impl LicenseAssignmentState {
    /// The product assigned.
    async fn product(&self) -> Product {
        Product(self.product)
    }

    /// The group the assignment comes from; null when it is assigned directly.
    async fn assigned_by_group(&self) -> Option<Group> {
        self.view.group.map(Group::new)
    }

    /// The plans the source disables: the configuration it asks for (for a pending withdrawal,
    /// the one in force).
    async fn disabled_plans(&self, ctx: &Context<'_>) -> Result<Vec<ServicePlan>> {
        let table = table(ctx)?;
        let disabled = decode_disabled(table, &self.view.disabled).map_err(api_error)?;
        Ok(ServicePlan::list(table, disabled.iter()))
    }

    /// Whether the assignment is applied, and whether its latest change failed.
    async fn state(&self) -> LicenseAssignmentStateValue {
        LicenseAssignmentStateValue::parse(&self.view.state)
    }

    /// Why the assignment's latest change failed; NONE when it did not.
    async fn error(&self) -> LicenseErrorCode {
        self.view
            .error_code
            .as_deref()
            .map_or(LicenseErrorCode::None, LicenseErrorCode::parse)
    }

    /// What went wrong in words, every violation found and suggested remedies (Q4); null when
    /// `error` is NONE.
    async fn error_detail(&self, ctx: &Context<'_>) -> Result<Option<LicenseErrorDetail>> {
        let Some(json) = &self.view.error else {
            return Ok(None);
        };
        let table = table(ctx)?;
        match decode_error(table, json) {
            Ok(error) => Ok(Some(
                LicenseErrorDetail::of(ctx, table, &error, false).await?,
            )),
            // The rules changed under a stored error: say so rather than guess.
            Err(_) => Ok(Some(LicenseErrorDetail {
                message: engine::UNREADABLE_ERROR.into(),
                violations: Vec::new(),
                resolutions: vec!["Reprocess the user or the group.".into()],
            })),
        }
    }

    /// When the assignment last changed: recorded, processed, or given a new configuration.
    async fn last_updated_date_time(&self) -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.view.updated_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| async_graphql::Error::new(format!("stored time: {e}")))
    }
}

// ---- Errors -------------------------------------------------------------------------------------

/// An assignment's error for admins: what failed, every violation found, and what to do (Q4).
#[derive(SimpleObject)]
pub struct LicenseErrorDetail {
    /// One sentence an admin understands, naming the first problem found.
    pub message: String,
    /// Every violation found (C1–C5), not only the first; the first one gives the error code.
    pub violations: Vec<LicenseViolation>,
    /// Suggested remedies, such as buying seats or disabling a conflicting plan; nothing is
    /// resolved automatically (Q4).
    pub resolutions: Vec<String>,
}

impl LicenseErrorDetail {
    /// Describes `error` (for a group's own license set with `group_set`, in Entra's words).
    pub async fn of(
        ctx: &Context<'_>,
        table: &RuleTable,
        error: &engine::LicenseError,
        group_set: bool,
    ) -> Result<LicenseErrorDetail> {
        let mut groups = Vec::new();
        let mut users = Vec::new();
        error.named_ids(&mut groups, &mut users);
        // Through the loaders, so that the errors of a whole page are named in one read.
        let loader = loader(ctx)?;
        let groups = loader
            .load_many(groups.into_iter().map(GroupNameKey))
            .await?
            .into_iter()
            .map(|(k, v)| (k.0, v))
            .collect();
        let users = loader
            .load_many(users.into_iter().map(UserNameKey))
            .await?
            .into_iter()
            .map(|(k, v)| (k.0, v))
            .collect();
        let names = FoundNames { groups, users };
        let detail = if group_set {
            engine::describe_group_error(table, &names, error)
        } else {
            engine::describe_error(table, &names, error)
        };
        let violations = error
            .violations
            .iter()
            .zip(detail.violations.iter())
            .map(|(v, message)| LicenseViolation::of(table, v, message.clone(), &names))
            .collect();
        Ok(LicenseErrorDetail {
            message: detail.message,
            violations,
            resolutions: detail.resolutions,
        })
    }
}

/// Where a service plan comes from: a direct assignment or a group, and through which product.
#[derive(SimpleObject)]
pub struct LicenseSource {
    /// True when the plan comes from a direct assignment.
    pub direct: bool,
    /// The group the plan comes from; null when it is direct or the group was deleted since.
    pub group: Option<Group>,
    /// The product that brings the plan.
    pub product: Product,
}

impl LicenseSource {
    /// A stored error may outlive the group it names (deleted since): its `group` is then null.
    fn of(source: engine::SourceRef, names: &FoundNames) -> LicenseSource {
        LicenseSource {
            direct: source.source.is_direct(),
            group: source
                .source
                .group()
                .filter(|g| names.groups.contains_key(&g.0))
                .map(|g| Group::new(g.0)),
            product: Product(source.product),
        }
    }
}

/// One failed check (C1–C5) of a license change, with what it is about; the fields that do not
/// concern its check are null or empty.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LicenseViolation {
    /// The check that failed.
    pub code: LicenseErrorCode,
    /// The violation in one sentence.
    pub message: String,
    /// The plans at fault: barred in the location (C2), in conflict (C3) or lacking a
    /// prerequisite (C4); empty for C1 and C5.
    pub plans: Vec<ServicePlan>,
    /// The plan that the plan at fault clashes with (C3).
    pub conflicting_plan: Option<ServicePlan>,
    /// Where the clashing plan comes from: direct or which group, and which product (C3).
    pub conflicting_source: Option<LicenseSource>,
    /// The prerequisites of the plan at fault, none of them enabled; any one of them would do
    /// (C4).
    pub missing_prerequisites: Vec<ServicePlan>,
    /// The usage location where the plans are barred (C2).
    pub usage_location: Option<String>,
    /// The proxy address that another user also has (C1).
    pub proxy_address: Option<String>,
    /// The other user with that proxy address (C1); null when deleted since.
    pub conflicting_user: Option<User>,
    /// The products without an available seat (C5).
    pub products: Vec<Product>,
    #[graphql(skip)]
    source: Option<LicenseSource>,
}

#[ComplexObject]
impl LicenseViolation {
    /// Where the plan at fault comes from: direct or which group, and which product (C3, C4).
    async fn source(&self) -> Option<&LicenseSource> {
        self.source.as_ref()
    }
}

impl LicenseViolation {
    /// `names` holds the groups and users that still exist: a stored error may name a user or
    /// a group deleted since, which is then null rather than an error for the whole query.
    fn of(
        table: &RuleTable,
        v: &Violation,
        message: String,
        names: &FoundNames,
    ) -> LicenseViolation {
        LicenseViolation {
            code: LicenseErrorCode::of(v.code()),
            message,
            plans: ServicePlan::list(table, v.plans().iter().copied()),
            conflicting_plan: v.conflicting_plan().map(|p| ServicePlan::of(table, p)),
            conflicting_source: v.conflicting_source().map(|s| LicenseSource::of(s, names)),
            missing_prerequisites: ServicePlan::list(
                table,
                v.missing_prerequisites().iter().copied(),
            ),
            usage_location: v.usage_location().map(|c| c.code().to_string()),
            proxy_address: v.proxy_address().map(str::to_string),
            conflicting_user: v
                .conflicting_user()
                .filter(|u| names.users.contains_key(&u.0))
                .map(|u| User(u.0)),
            products: v.products().iter().map(|p| Product(*p)).collect(),
            source: v.source().map(|s| LicenseSource::of(s, names)),
        }
    }
}

// ---- Groups ---------------------------------------------------------------------------------------

/// A group. `as_of` is the group as the mutation that returns it left it (read in the
/// mutation's own transaction): the answer of a mutation tells what the mutation did (G2:
/// `licenseProcessingState: QUEUED`), not how far the worker got since.
#[derive(Clone)]
pub struct Group {
    id: i64,
    as_of: Option<Arc<read::GroupView>>,
}

impl Group {
    pub fn new(id: i64) -> Group {
        Group { id, as_of: None }
    }

    pub fn as_of(view: read::GroupView) -> Group {
        Group {
            id: view.id,
            as_of: Some(Arc::new(view)),
        }
    }

    async fn view(&self, ctx: &Context<'_>) -> Result<read::GroupView> {
        if let Some(view) = &self.as_of {
            return Ok(view.as_ref().clone());
        }
        loader(ctx)?
            .load_one(GroupKey(self.id))
            .await?
            .ok_or_else(|| api_error(read::not_found("group", self.id)))
    }
}

/// A product of a group's license set, with the plans the group disables for its members.
#[derive(SimpleObject)]
pub struct GroupLicense {
    /// The product every member gets from the group.
    pub product: Product,
    /// The product's plans the group turns off for its members.
    pub disabled_plans: Vec<ServicePlan>,
}

/// How many users of a group are in error with one error code (Q1).
#[derive(SimpleObject)]
pub struct ErrorCount {
    /// The error code.
    pub error: LicenseErrorCode,
    /// Users with at least one assignment from the group in error with this code.
    pub count: i32,
}

/// A group of users: every member is licensed with each product of its license set, in the
/// background, in the order they joined (G2, P1).
#[Object]
impl Group {
    /// The group's id, as `group(id:)` and the mutations take it.
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The group's name.
    async fn display_name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.view(ctx).await?.display_name)
    }

    /// How many users are members of the group now.
    async fn member_count(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.view(ctx).await?.member_count))
    }

    /// Members in the order they joined (P1).
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many users to return: 100 when omitted, at most 1,000.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
    ) -> Result<UserConnection> {
        let (first, after) = page_args(first, after.as_deref(), "m")?;
        let group = self.id;
        let page = state(ctx)?
            .store
            .read(move |c| read::members_page(c, group, after, first))
            .await
            .map_err(api_error)?;
        UserConnection::load(ctx, page, |(seq, _)| cursor("m", *seq), |(_, user)| *user).await
    }

    /// The group's license set: the products its members get, each with the plans it disables.
    async fn assigned_licenses(&self, ctx: &Context<'_>) -> Result<Vec<GroupLicense>> {
        let table = table(ctx)?;
        let mut out = Vec::new();
        for (sku, disabled) in self.view(ctx).await?.licenses {
            let Some(product) = table.product_by_name(&sku) else {
                continue;
            };
            let disabled = decode_disabled(table, &disabled).map_err(api_error)?;
            out.push(GroupLicense {
                product: Product(product),
                disabled_plans: ServicePlan::list(table, disabled.iter()),
            });
        }
        Ok(out)
    }

    /// Whether the background processing of the group waits, runs or is done (P9).
    async fn license_processing_state(&self, ctx: &Context<'_>) -> Result<LicenseProcessingState> {
        Ok(match self.view(ctx).await?.processing_state {
            "QUEUED" => LicenseProcessingState::Queued,
            "IN_PROGRESS" => LicenseProcessingState::InProgress,
            _ => LicenseProcessingState::Complete,
        })
    }

    /// Members processed so far by the current run, or by the last one when it is COMPLETE (P9).
    async fn processed_members(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.view(ctx).await?.processed_members))
    }

    /// Members the current run has to process, or the last one had when it is COMPLETE (P9).
    async fn members_to_process(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.view(ctx).await?.members_to_process))
    }

    /// True when `licenseErrorCount` is above 0 (Q1).
    async fn has_members_with_license_errors(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.view(ctx).await?.error_users > 0)
    }

    /// Users with at least one error from this group: members and former members whose
    /// withdrawal is blocked (Q1).
    async fn license_error_count(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.view(ctx).await?.error_users))
    }

    /// Users in error per code, largest first ("top reason for failure", Q1).
    async fn license_error_counts(&self, ctx: &Context<'_>) -> Result<Vec<ErrorCount>> {
        let group = self.id;
        let counts = state(ctx)?
            .store
            .read(move |c| read::error_counts(c, group))
            .await
            .map_err(api_error)?;
        Ok(counts
            .into_iter()
            .map(|(code, count)| ErrorCount {
                error: LicenseErrorCode::parse(&code),
                count: int(count),
            })
            .collect())
    }

    /// The group's history, newest first (H6): its changes, its members' joining and leaving,
    /// and its processing runs with each user they changed.
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return: 100 when omitted, at most 1,000.")] first: Option<
            i32,
        >,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
    ) -> Result<super::history::AuditEventConnection> {
        let filter = crate::store::history::Filter {
            group: Some(self.id),
            ..Default::default()
        };
        super::history::page(ctx, filter, first, after).await
    }

    /// Users with an assignment from this group in error, by id: members, and former members
    /// whose withdrawal is blocked (Q1).
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn members_with_license_errors(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many users to return: 100 when omitted, at most 1,000.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
        #[graphql(desc = "Only the users in error with this code; omitted: every code.")]
        error: Option<LicenseErrorCode>,
    ) -> Result<UserConnection> {
        let (first, after) = page_args(first, after.as_deref(), "e")?;
        let group = self.id;
        let code = error.map(|e| e.name());
        let page = state(ctx)?
            .store
            .read(move |c| read::error_members_page(c, group, code, after, first))
            .await
            .map_err(api_error)?;
        UserConnection::load(ctx, page, |id| cursor("e", *id), |id| *id).await
    }
}

// ---- Connections --------------------------------------------------------------------------------

/// Where a page of a list ends, and whether more follow.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// True when more items follow this page.
    pub has_next_page: bool,
    /// The cursor of the page's last item, to pass as `after` for the next page; null when the
    /// page is empty.
    pub end_cursor: Option<String>,
}

/// One user of a page, with its cursor.
#[derive(SimpleObject)]
pub struct UserEdge {
    /// Where this user is in the list; `after` takes it to continue from here.
    pub cursor: String,
    /// The user.
    pub node: User,
}

/// One page of a list of users.
#[derive(SimpleObject)]
pub struct UserConnection {
    /// The users of this page, in the list's order.
    pub edges: Vec<UserEdge>,
    /// Whether more users follow, and the cursor to continue from.
    pub page_info: PageInfo,
    /// How many users the whole list holds, over all of its pages.
    pub total_count: i32,
}

impl UserConnection {
    /// [`UserConnection::of`], after reading at once what the query asks of the page's users:
    /// their fields, states, groups, and the names their errors mention. The fields then find it
    /// in the request's loader cache, so a page costs the same few reads whatever its size
    /// (no N+1), however the executor interleaves the resolvers.
    pub async fn load<K>(
        ctx: &Context<'_>,
        page: read::Page<K>,
        cursor_of: impl Fn(&K) -> String,
        user_of: impl Fn(&K) -> i64,
    ) -> Result<UserConnection> {
        let ids: Vec<i64> = page.keys.iter().map(&user_of).collect();
        prefetch_users(ctx, &ctx.look_ahead().field("edges").field("node"), &ids).await?;
        Ok(UserConnection::of(page, cursor_of, user_of))
    }

    pub fn of<K>(
        page: read::Page<K>,
        cursor_of: impl Fn(&K) -> String,
        user_of: impl Fn(&K) -> i64,
    ) -> UserConnection {
        let edges: Vec<UserEdge> = page
            .keys
            .iter()
            .map(|k| UserEdge {
                cursor: cursor_of(k),
                node: User(user_of(k)),
            })
            .collect();
        UserConnection {
            page_info: PageInfo {
                has_next_page: page.has_next,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: int(page.total),
        }
    }
}

/// Reads, in one batch per kind, what `node` (a selection of `User`) asks of `users`.
async fn prefetch_users(
    ctx: &Context<'_>,
    node: &async_graphql::Lookahead<'_>,
    users: &[i64],
) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let loader = loader(ctx)?;
    let table = table(ctx)?;
    let wants = |field: &str| node.field(field).exists();
    if [
        "userPrincipalName",
        "displayName",
        "usageLocation",
        "effectiveUsageLocation",
        "proxyAddresses",
    ]
    .iter()
    .any(|f| wants(f))
    {
        loader.load_many(users.iter().map(|u| UserKey(*u))).await?;
    }
    let mut groups: Vec<i64> = Vec::new();
    if wants("memberOf") {
        let memberships = loader
            .load_many(users.iter().map(|u| MembershipsKey(*u)))
            .await?;
        groups.extend(memberships.values().flatten());
    }
    let states_field = node.field("licenseAssignmentStates");
    if states_field.exists() || wants("assignedLicenses") || wants("hasLicenseErrors") {
        let states = loader
            .load_many(users.iter().map(|u| StatesKey(*u)))
            .await?;
        if states_field.field("assignedByGroup").exists() {
            groups.extend(states.values().flatten().filter_map(|s| s.group));
        }
        if states_field.field("errorDetail").exists() {
            let mut named_groups = Vec::new();
            let mut named_users = Vec::new();
            for json in states.values().flatten().filter_map(|s| s.error.as_deref()) {
                let Ok(error) = decode_error(table, json) else {
                    continue;
                };
                for v in &error.violations {
                    for source in [v.source(), v.conflicting_source()].into_iter().flatten() {
                        named_groups.extend(source.source.group().map(|g| g.0));
                    }
                    named_users.extend(v.conflicting_user().map(|u| u.0));
                }
            }
            named_groups.sort_unstable();
            named_groups.dedup();
            named_users.sort_unstable();
            named_users.dedup();
            loader
                .load_many(named_groups.into_iter().map(GroupNameKey))
                .await?;
            loader
                .load_many(named_users.into_iter().map(UserNameKey))
                .await?;
        }
    }
    if !groups.is_empty() {
        groups.sort_unstable();
        groups.dedup();
        loader.load_many(groups.into_iter().map(GroupKey)).await?;
    }
    Ok(())
}

/// One group of a page, with its cursor.
#[derive(SimpleObject)]
pub struct GroupEdge {
    /// Where this group is in the list; `after` takes it to continue from here.
    pub cursor: String,
    /// The group.
    pub node: Group,
}

/// One page of a list of groups.
#[derive(SimpleObject)]
pub struct GroupConnection {
    /// The groups of this page, by id.
    pub edges: Vec<GroupEdge>,
    /// Whether more groups follow, and the cursor to continue from.
    pub page_info: PageInfo,
    /// How many groups the whole list holds, over all of its pages.
    pub total_count: i32,
}

// ---- Rules ----------------------------------------------------------------------------------------

/// A problem found in the rules files, with where it is.
#[derive(SimpleObject, Clone)]
pub struct RuleDiagnostic {
    /// The rules file, as named when loaded (e.g. `rules/policy.rules`), or the rules folder
    /// when the problem is not in one file.
    pub file: String,
    /// The line, from 1; 0 when the problem is not on one line.
    pub line: i32,
    /// The column, from 1, in characters; 0 when the problem is not on one line.
    pub column: i32,
    /// What is wrong, in words.
    pub message: String,
    /// `error` (the rules are refused) or `warning` (they load anyway).
    pub severity: String,
}

impl RuleDiagnostic {
    pub fn of(d: &crate::rules::Diagnostic) -> RuleDiagnostic {
        RuleDiagnostic {
            file: d.file.clone(),
            line: int(d.line as i64),
            column: int(d.column as i64),
            message: d.message.clone(),
            severity: match d.severity {
                crate::rules::Severity::Error => "error".into(),
                crate::rules::Severity::Warning => "warning".into(),
            },
        }
    }
}

/// The rules in force: the catalog of products and plans and the policy that licensing checks,
/// compiled from the rules folder.
#[derive(SimpleObject)]
pub struct RuleSet {
    /// When these rules were loaded.
    pub loaded_at: DateTime<Utc>,
    /// The rules files these rules come from, in the order they were read (by name).
    pub files: Vec<String>,
    /// How many service plans the rules declare.
    pub plan_count: i32,
    /// How many products the rules declare.
    pub product_count: i32,
    /// How many sets of plans that exclude each other (`exclusive`, `conflict`) there are (R1).
    pub exclusive_set_count: i32,
    /// How many `prerequisite` rules, which make a plan need another, there are (R2).
    pub prerequisite_count: i32,
    /// How many location rules (`unavailable`, `available only`) there are (R3).
    pub location_rule_count: i32,
    /// The errors of the last reload, refused so that these rules stayed in force; empty when
    /// the last reload succeeded.
    pub last_reload_errors: Vec<RuleDiagnostic>,
    /// Warnings of the rules in force, such as a plan that no product contains; they do not
    /// stop the rules from loading.
    pub warnings: Vec<RuleDiagnostic>,
}

impl RuleSet {
    pub fn of(loaded: &crate::rules::live::Loaded) -> RuleSet {
        let t = &loaded.table;
        RuleSet {
            loaded_at: crate::store::parse_time(&loaded.loaded_at).unwrap_or_default(),
            files: t.files().to_vec(),
            plan_count: int(t.plan_count() as i64),
            product_count: int(t.product_count() as i64),
            exclusive_set_count: int(t.exclusive_sets().len() as i64),
            prerequisite_count: int(t.prerequisites().len() as i64),
            location_rule_count: int(t.location_rules().len() as i64),
            last_reload_errors: loaded
                .last_reload_errors
                .iter()
                .map(RuleDiagnostic::of)
                .collect(),
            warnings: loaded.warnings.iter().map(RuleDiagnostic::of).collect(),
        }
    }
}

pub fn directory_of(view: &read::DirectoryView) -> Directory {
    Directory {
        display_name: view.display_name.clone(),
        default_usage_location: view.default_usage_location.clone(),
    }
}
