//! The object types of graphql-api.md. Users, groups and products are handles (an id); their
//! fields are read through the request's loaders.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::engine::{self, GroupId, SourceNames, UserId, Violation};
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

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum LicenseAssignmentStateValue {
    Pending,
    Active,
    ActiveWithError,
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

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum LicenseErrorCode {
    None,
    CountViolation,
    MutuallyExclusiveViolation,
    DependencyViolation,
    ProhibitedInUsageLocationViolation,
    UniquenessViolation,
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

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum LicenseProcessingState {
    Queued,
    InProgress,
    Complete,
}

// ---- Directory, plans, products ------------------------------------------------------------------

#[derive(SimpleObject)]
pub struct Directory {
    pub display_name: String,
    pub default_usage_location: String,
}

#[derive(SimpleObject, Clone)]
pub struct ServicePlan {
    pub service_plan_name: String,
    pub service_plan_id: Option<String>,
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

#[Object]
impl Product {
    async fn sku_part_number(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(table(ctx)?.product(self.0).name.clone())
    }

    async fn sku_id(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(table(ctx)?.product(self.0).id.clone())
    }

    async fn display_name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(table(ctx)?.product(self.0).display_name.clone())
    }

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

    async fn prepaid_units(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.seats(ctx).await?.0))
    }

    /// Users holding the product, whatever the number of their sources (L1, L3).
    async fn consumed_units(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.seats(ctx).await?.1))
    }

    async fn available_units(&self, ctx: &Context<'_>) -> Result<i32> {
        let (prepaid, consumed) = self.seats(ctx).await?;
        Ok(int((prepaid - consumed).max(0)))
    }

    /// Users holding the product (directly or through groups), by id.
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn licensed_users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
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

    /// Groups whose license set holds the product.
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

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.to_string())
    }

    async fn user_principal_name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.view(ctx).await?.user_principal_name)
    }

    async fn display_name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.view(ctx).await?.display_name)
    }

    /// As set on the user; null when unset.
    async fn usage_location(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.view(ctx).await?.usage_location)
    }

    /// The user's usage location, else the directory's default (L4).
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

    async fn proxy_addresses(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.view(ctx).await?.proxy_addresses)
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

    async fn has_license_errors(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self
            .states(ctx)
            .await?
            .iter()
            .any(|s| s.error_code.is_some()))
    }
}

#[derive(SimpleObject)]
pub struct AssignedLicense {
    pub product: Product,
    pub enabled_plans: Vec<ServicePlan>,
    pub disabled_plans: Vec<ServicePlan>,
}

pub struct LicenseAssignmentState {
    product: ProductId,
    view: StateView,
}

#[Object]
impl LicenseAssignmentState {
    async fn product(&self) -> Product {
        Product(self.product)
    }

    /// Null: assigned directly.
    async fn assigned_by_group(&self) -> Option<Group> {
        self.view.group.map(Group::new)
    }

    /// The configuration the source asks for (for a pending withdrawal, the one in force).
    async fn disabled_plans(&self, ctx: &Context<'_>) -> Result<Vec<ServicePlan>> {
        let table = table(ctx)?;
        let disabled = decode_disabled(table, &self.view.disabled).map_err(api_error)?;
        Ok(ServicePlan::list(table, disabled.iter()))
    }

    async fn state(&self) -> LicenseAssignmentStateValue {
        LicenseAssignmentStateValue::parse(&self.view.state)
    }

    async fn error(&self) -> LicenseErrorCode {
        self.view
            .error_code
            .as_deref()
            .map_or(LicenseErrorCode::None, LicenseErrorCode::parse)
    }

    /// Null when `error` is NONE.
    async fn error_detail(&self, ctx: &Context<'_>) -> Result<Option<LicenseErrorDetail>> {
        let Some(json) = &self.view.error else {
            return Ok(None);
        };
        let table = table(ctx)?;
        match decode_error(table, json) {
            Ok(error) => Ok(Some(LicenseErrorDetail::of(ctx, table, &error, false).await?)),
            // The rules changed under a stored error: say so rather than guess.
            Err(_) => Ok(Some(LicenseErrorDetail {
                message: "The rules changed since this error was recorded: reprocess the user to see it again.".into(),
                violations: Vec::new(),
                resolutions: vec!["Reprocess the user or the group.".into()],
            })),
        }
    }

    async fn last_updated_date_time(&self) -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.view.updated_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| async_graphql::Error::new(format!("stored time: {e}")))
    }
}

// ---- Errors -------------------------------------------------------------------------------------

#[derive(SimpleObject)]
pub struct LicenseErrorDetail {
    pub message: String,
    pub violations: Vec<LicenseViolation>,
    pub resolutions: Vec<String>,
}

/// Group and user names for messages, read before describing an error.
struct Names {
    groups: std::collections::HashMap<i64, String>,
    users: std::collections::HashMap<i64, String>,
}

impl SourceNames for Names {
    fn group_name(&self, group: GroupId) -> String {
        // The display name alone: the engine's sentences say `group "…"` around it.
        self.groups
            .get(&group.0)
            .cloned()
            .unwrap_or_else(|| format!("{} (deleted)", group.0))
    }

    fn user_name(&self, user: UserId) -> String {
        self.users
            .get(&user.0)
            .cloned()
            .unwrap_or_else(|| format!("user {}", user.0))
    }
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
        for v in &error.violations {
            for source in [v.source(), v.conflicting_source()].into_iter().flatten() {
                if let Some(g) = source.source.group() {
                    groups.push(g.0);
                }
            }
            if let Some(u) = v.conflicting_user() {
                users.push(u.0);
            }
        }
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
        let names = Names { groups, users };
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

#[derive(SimpleObject)]
pub struct LicenseSource {
    pub direct: bool,
    pub group: Option<Group>,
    pub product: Product,
}

impl LicenseSource {
    /// A stored error may outlive the group it names (deleted since): its `group` is then null.
    fn of(source: engine::SourceRef, names: &Names) -> LicenseSource {
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

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LicenseViolation {
    pub code: LicenseErrorCode,
    pub message: String,
    /// The plans at fault.
    pub plans: Vec<ServicePlan>,
    /// C3: the plan it clashes with.
    pub conflicting_plan: Option<ServicePlan>,
    /// C3: where that plan comes from.
    pub conflicting_source: Option<LicenseSource>,
    /// C4.
    pub missing_prerequisites: Vec<ServicePlan>,
    /// C2.
    pub usage_location: Option<String>,
    /// C1.
    pub proxy_address: Option<String>,
    /// C1.
    pub conflicting_user: Option<User>,
    /// C5: products without seats.
    pub products: Vec<Product>,
    #[graphql(skip)]
    source: Option<LicenseSource>,
}

#[ComplexObject]
impl LicenseViolation {
    /// C3, C4: where the plan at fault comes from.
    async fn source(&self) -> Option<&LicenseSource> {
        self.source.as_ref()
    }
}

impl LicenseViolation {
    /// `names` holds the groups and users that still exist: a stored error may name a user or
    /// a group deleted since, which is then null rather than an error for the whole query.
    fn of(table: &RuleTable, v: &Violation, message: String, names: &Names) -> LicenseViolation {
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

#[derive(SimpleObject)]
pub struct GroupLicense {
    pub product: Product,
    pub disabled_plans: Vec<ServicePlan>,
}

#[derive(SimpleObject)]
pub struct ErrorCount {
    pub error: LicenseErrorCode,
    pub count: i32,
}

#[Object]
impl Group {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    async fn display_name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.view(ctx).await?.display_name)
    }

    async fn member_count(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.view(ctx).await?.member_count))
    }

    /// Members in the order they joined (P1).
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
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

    /// P9.
    async fn license_processing_state(&self, ctx: &Context<'_>) -> Result<LicenseProcessingState> {
        Ok(match self.view(ctx).await?.processing_state {
            "QUEUED" => LicenseProcessingState::Queued,
            "IN_PROGRESS" => LicenseProcessingState::InProgress,
            _ => LicenseProcessingState::Complete,
        })
    }

    /// Of the current or last run.
    async fn processed_members(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.view(ctx).await?.processed_members))
    }

    /// Of the current or last run.
    async fn members_to_process(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.view(ctx).await?.members_to_process))
    }

    async fn has_members_with_license_errors(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.view(ctx).await?.error_users > 0)
    }

    /// Users with at least one error from this group: members and former members whose
    /// withdrawal is blocked (Q1).
    async fn license_error_count(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(int(self.view(ctx).await?.error_users))
    }

    /// Users in error per code, largest first ("top reason for failure").
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

    /// Users in error from this group, by id; `error` keeps one code.
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn members_with_license_errors(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
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

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct UserEdge {
    pub cursor: String,
    pub node: User,
}

#[derive(SimpleObject)]
pub struct UserConnection {
    pub edges: Vec<UserEdge>,
    pub page_info: PageInfo,
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

#[derive(SimpleObject)]
pub struct GroupEdge {
    pub cursor: String,
    pub node: Group,
}

#[derive(SimpleObject)]
pub struct GroupConnection {
    pub edges: Vec<GroupEdge>,
    pub page_info: PageInfo,
    pub total_count: i32,
}

// ---- Rules ----------------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
pub struct RuleDiagnostic {
    pub file: String,
    pub line: i32,
    pub column: i32,
    pub message: String,
    /// `error` or `warning`.
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

#[derive(SimpleObject)]
pub struct RuleSet {
    pub loaded_at: DateTime<Utc>,
    pub files: Vec<String>,
    pub plan_count: i32,
    pub product_count: i32,
    pub exclusive_set_count: i32,
    pub prerequisite_count: i32,
    pub location_rule_count: i32,
    /// Empty when the last reload succeeded.
    pub last_reload_errors: Vec<RuleDiagnostic>,
    /// Warnings of the rules in force.
    pub warnings: Vec<RuleDiagnostic>,
}

impl RuleSet {
    pub fn of(loaded: &crate::rules::live::Loaded) -> RuleSet {
        let t = &loaded.table;
        RuleSet {
            loaded_at: DateTime::parse_from_rfc3339(&loaded.loaded_at)
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_default(),
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
