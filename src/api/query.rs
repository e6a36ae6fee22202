use async_graphql::{Context, ID, Object, Result};

use chrono::{DateTime, Utc};

use crate::store::{history, read};

use super::history::{AuditCategory, AuditEventConnection, AuditResult, page as audit_page};
use super::loaders::{DirectoryKey, SeatsKey};
use super::mutation::{LicenseInput, ids, licenses};
use super::preview::{self, LicensePreview, RedundantLicenseConnection};
use super::types::{
    Directory, Group, GroupConnection, GroupEdge, LicenseProcessingState, PageInfo, Product,
    RuleSet, ServicePlan, User, UserConnection, directory_of, loader, state, table,
};
use super::{api_error, bad_input, cursor, page_args, parse_id};
use crate::store::preview::Change;

pub struct Query;

/// How `groups` orders its list.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum GroupOrder {
    /// By id, oldest group first.
    Id,
    /// Most users in error first (Q2), ties by id: the groups that need attention most.
    LicenseErrorCountDesc,
}

/// What dashboards and admins read: the tenant, its products, users and groups, and the rules.
#[Object]
impl Query {
    /// The tenant: its name and default usage location.
    async fn directory(&self, ctx: &Context<'_>) -> Result<Directory> {
        let view = loader(ctx)?
            .load_one(DirectoryKey)
            .await?
            .ok_or_else(|| async_graphql::Error::new("the directory is missing"))?;
        Ok(directory_of(&view))
    }

    /// Every service plan of the rules in force.
    #[graphql(
        complexity = "crate::api::limits::list_cost(crate::api::limits::CATALOG_LIST, child_complexity)"
    )]
    async fn service_plans(&self, ctx: &Context<'_>) -> Result<Vec<ServicePlan>> {
        let table = table(ctx)?;
        Ok(table
            .plan_ids()
            .map(|p| ServicePlan::of(table, p))
            .collect())
    }

    /// Every product of the rules in force, with its seats.
    #[graphql(
        complexity = "crate::api::limits::list_cost(crate::api::limits::CATALOG_LIST, child_complexity)"
    )]
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "True: only the products with seats bought or in use (prepaid or consumed above 0); false: only the others; omitted: the whole catalog."
        )]
        bought_or_used: Option<bool>,
    ) -> Result<Vec<Product>> {
        let table = table(ctx)?;
        let Some(wanted) = bought_or_used else {
            return Ok(table.product_ids().map(Product).collect());
        };
        let seats = loader(ctx)?.load_one(SeatsKey).await?.unwrap_or_default();
        Ok(table
            .product_ids()
            .filter(|p| {
                let (prepaid, consumed) = seats
                    .get(&table.product(*p).name)
                    .copied()
                    .unwrap_or((0, 0));
                (prepaid > 0 || consumed > 0) == wanted
            })
            .map(Product)
            .collect())
    }

    /// A product by its `skuPartNumber`; null when the rules in force have none of that name.
    async fn product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product's name, e.g. `ENTERPRISEPACK` (case-sensitive).")]
        sku_part_number: String,
    ) -> Result<Option<Product>> {
        Ok(table(ctx)?.product_by_name(&sku_part_number).map(Product))
    }

    /// A user by id or by `userPrincipalName` (case-insensitive); exactly one of them.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: Option<ID>,
        #[graphql(desc = "The user's sign-in name, compared regardless of case.")]
        user_principal_name: Option<String>,
    ) -> Result<Option<User>> {
        let store = &state(ctx)?.store;
        match (id, user_principal_name) {
            (Some(id), None) => {
                let id = parse_id(&id, "user")?;
                let exists = store
                    .read(move |c| read::user_exists(c, id))
                    .await
                    .map_err(api_error)?;
                Ok(exists.then_some(User(id)))
            }
            (None, Some(upn)) => Ok(store
                .read(move |c| read::user_by_principal_name(c, &upn))
                .await
                .map_err(api_error)?
                .map(User)),
            _ => Err(bad_input("give either id or userPrincipalName")),
        }
    }

    /// Every user of the directory, by id.
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many users to return: 100 when omitted, at most 1,000.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
        #[graphql(
            desc = "Only the users whose sign-in name starts with this text (letters compared regardless of case), in the order of their names."
        )]
        user_principal_name_starts_with: Option<String>,
    ) -> Result<UserConnection> {
        let prefix = search_text(
            user_principal_name_starts_with,
            "userPrincipalNameStartsWith",
        )?;
        // Pages of a search are in name order: their cursors are not the id list's.
        let kind = if prefix.is_some() { "un" } else { "u" };
        let (first, after) = page_args(first, after.as_deref(), kind)?;
        let page = state(ctx)?
            .store
            .read(move |c| read::user_page(c, after, first, prefix.as_deref()))
            .await
            .map_err(api_error)?;
        UserConnection::load(ctx, page, |id| cursor(kind, *id), |id| *id).await
    }

    /// A group by id; null when there is none.
    async fn group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] id: ID,
    ) -> Result<Option<Group>> {
        let id = parse_id(&id, "group")?;
        let exists = state(ctx)?
            .store
            .read(move |c| read::group_exists(c, id))
            .await
            .map_err(api_error)?;
        Ok(exists.then_some(Group::new(id)))
    }

    /// Groups by id; `hasMembersWithLicenseErrors: true` lists the groups that need attention (Q2).
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    // One argument per filter of the GraphQL field: the schema's shape, not a Rust API.
    #[allow(clippy::too_many_arguments)]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many groups to return: 100 when omitted, at most 1,000.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
        #[graphql(
            desc = "True: only the groups with users in error (Q2); false: only those without; omitted: every group."
        )]
        has_members_with_license_errors: Option<bool>,
        #[graphql(
            desc = "Only the groups whose name holds this text (letters compared regardless of case)."
        )]
        display_name_contains: Option<String>,
        #[graphql(desc = "Only the groups in this processing state (P9).")]
        license_processing_state: Option<LicenseProcessingState>,
        #[graphql(desc = "The list's order: by id when omitted.")] order_by: Option<GroupOrder>,
    ) -> Result<GroupConnection> {
        let by_errors = order_by == Some(GroupOrder::LicenseErrorCountDesc);
        // The two orders' cursors are not interchangeable.
        let kind = if by_errors { "ge" } else { "g" };
        let (first, after) = page_args(first, after.as_deref(), kind)?;
        let filter = read::GroupFilter {
            with_errors: has_members_with_license_errors,
            name_contains: search_text(display_name_contains, "displayNameContains")?,
            state: license_processing_state.map(|s| match s {
                LicenseProcessingState::Queued => "QUEUED",
                LicenseProcessingState::InProgress => "IN_PROGRESS",
                LicenseProcessingState::Complete => "COMPLETE",
            }),
            by_errors,
        };
        let page = state(ctx)?
            .store
            .read(move |c| read::group_page(c, after, first, &filter))
            .await
            .map_err(api_error)?;
        let edges: Vec<GroupEdge> = page
            .keys
            .iter()
            .map(|key| {
                let id = if by_errors { key & 0xffff_ffff } else { *key };
                GroupEdge {
                    cursor: cursor(kind, *key),
                    node: Group::new(id),
                }
            })
            .collect();
        Ok(GroupConnection {
            page_info: PageInfo {
                has_next_page: page.has_next,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: i32::try_from(page.total).unwrap_or(i32::MAX),
        })
    }

    /// W: what `assignGroupLicense` with these arguments would do once processed, computed
    /// without writing anything; refused as the mutation would be.
    async fn preview_assign_group_license(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
        #[graphql(desc = "As `assignGroupLicense`'s `addLicenses`.")] add_licenses: Vec<
            LicenseInput,
        >,
        #[graphql(desc = "As `assignGroupLicense`'s `removeLicenses`.")] remove_licenses: Vec<
            String,
        >,
    ) -> Result<LicensePreview> {
        let change = Change::AssignGroupLicense {
            group: parse_id(&group_id, "group")?,
            add: licenses(add_licenses),
            remove: remove_licenses,
        };
        preview::preview(ctx, change).await
    }

    /// W: what `addGroupMembers` with these arguments would do once processed, computed
    /// without writing anything; refused as the mutation would be.
    async fn preview_add_group_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
        #[graphql(desc = "As `addGroupMembers`'s `userIds`, in join order.")] user_ids: Vec<ID>,
    ) -> Result<LicensePreview> {
        let change = Change::AddGroupMembers {
            group: parse_id(&group_id, "group")?,
            users: ids(&user_ids, "user")?,
        };
        preview::preview(ctx, change).await
    }

    /// W: what `removeGroupMembers` with these arguments would do once processed, computed
    /// without writing anything; refused as the mutation would be.
    async fn preview_remove_group_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
        #[graphql(desc = "As `removeGroupMembers`'s `userIds`.")] user_ids: Vec<ID>,
    ) -> Result<LicensePreview> {
        let change = Change::RemoveGroupMembers {
            group: parse_id(&group_id, "group")?,
            users: ids(&user_ids, "user")?,
        };
        preview::preview(ctx, change).await
    }

    /// W: what `assignLicense` with these arguments would do, computed without writing
    /// anything; refused as the mutation would be (D1–D5).
    async fn preview_assign_license(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
        #[graphql(desc = "As `assignLicense`'s `addLicenses`.")] add_licenses: Vec<LicenseInput>,
        #[graphql(desc = "As `assignLicense`'s `removeLicenses`.")] remove_licenses: Vec<String>,
    ) -> Result<LicensePreview> {
        let change = Change::AssignLicense {
            user: parse_id(&user_id, "user")?,
            add: licenses(add_licenses),
            remove: remove_licenses,
        };
        preview::preview(ctx, change).await
    }

    /// W: what `reprocessGroup` would do, computed without writing anything.
    async fn preview_reprocess_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
    ) -> Result<LicensePreview> {
        let change = Change::ReprocessGroup {
            group: parse_id(&group_id, "group")?,
        };
        preview::preview(ctx, change).await
    }

    /// M2: the direct licenses that the users' groups already cover, by user id; removing them
    /// changes nothing the users hold (`removeRedundantDirectLicenses`).
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn redundant_direct_licenses(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return: 100 when omitted, at most 1,000.")] first: Option<
            i32,
        >,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
        #[graphql(desc = "Only the direct licenses of this product.")] sku_part_number: Option<
            String,
        >,
    ) -> Result<RedundantLicenseConnection> {
        preview::redundant_page(ctx, first, after, sku_part_number).await
    }

    /// H6: the history, newest first; the filters combine (all must hold).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return: 100 when omitted, at most 1,000.")] first: Option<
            i32,
        >,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
        #[graphql(desc = "Only events at or after this time.")] since: Option<DateTime<Utc>>,
        #[graphql(desc = "Only events at or before this time.")] until: Option<DateTime<Utc>>,
        #[graphql(desc = "Only events of this category.")] category: Option<AuditCategory>,
        #[graphql(desc = "Only events about this user.")] user_id: Option<ID>,
        #[graphql(desc = "Only events about this group (its changes, members and processing).")]
        group_id: Option<ID>,
        #[graphql(desc = "Only events about this product.")] sku_part_number: Option<String>,
        #[graphql(desc = "Only events with this result.")] result: Option<AuditResult>,
    ) -> Result<AuditEventConnection> {
        let filter = history::Filter {
            since: since.map(crate::store::stored_time),
            until: until.map(crate::store::stored_time),
            category: category.map(AuditCategory::stored),
            user: user_id.map(|id| parse_id(&id, "user")).transpose()?,
            group: group_id.map(|id| parse_id(&id, "group")).transpose()?,
            sku: sku_part_number,
            failed: result.map(|r| r == AuditResult::Failure),
        };
        audit_page(ctx, filter, first, after).await
    }

    /// N1, N2: alerts, newest first.
    #[graphql(complexity = "crate::api::limits::page_cost(first, child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "True: only those that stand; false: only resolved ones; omitted: all.")]
        active: Option<bool>,
        #[graphql(desc = "How many to return: 100 when omitted, at most 1,000.")] first: Option<
            i32,
        >,
        #[graphql(desc = "The `endCursor` of the page before; omitted for the first page.")]
        after: Option<String>,
    ) -> Result<super::notices::AlertConnection> {
        super::notices::alert_page(ctx, active, first, after).await
    }

    /// N3: every webhook, oldest first, with its delivery state.
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<super::notices::Webhook>> {
        super::notices::webhook_list(ctx).await
    }

    /// The rules in force: what they hold, their warnings, and the errors of the last reload.
    async fn rules(&self, ctx: &Context<'_>) -> Result<RuleSet> {
        Ok(RuleSet::of(&state(ctx)?.rules.snapshot()))
    }
}

/// A search argument: at most as long as the names it is compared with; blank is no search.
fn search_text(text: Option<String>, argument: &str) -> Result<Option<String>> {
    match text {
        Some(t) if t.chars().count() > crate::store::ops::MAX_TEXT => Err(bad_input(format!(
            "`{argument}` holds at most {} characters",
            crate::store::ops::MAX_TEXT
        ))),
        Some(t) if t.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}
