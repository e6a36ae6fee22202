use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Result};
use rusqlite::OptionalExtension;
use serde_json::{Value, json};

use crate::engine::{self, DirectError, GroupLicenseError};
use crate::processing::delivery;
use crate::rules::RuleTable;
use crate::store::audited as record;
use crate::store::history::{Activity, Event, Journal, Property, Target};
use crate::store::ops::{self, LicenseInput as StoreLicense, NewUser, UserUpdate};
use crate::store::provision::{self, Account};
use crate::store::{StoreError, now};
use crate::store::{alerts, webhooks};

use super::history::{Attempt, acting, audited};
use super::notices::{Webhook, WebhookCreated, WebhookEventType, new_secret};
use super::preview::{DirectLicenseCleanup, cleanup_of};
use super::types::{
    Directory, Group, LicenseErrorDetail, Product, RuleDiagnostic, RuleSet, ServicePlan, User,
    directory_of, state, table,
};
use super::{AppState, api_error, bad_input, parse_id, reload_rules};

pub struct Mutation;

/// A product to assign, with the service plans to turn off.
#[derive(InputObject)]
pub struct LicenseInput {
    /// The product, e.g. `ENTERPRISEPACK`.
    pub sku_part_number: String,
    /// The `servicePlanName`s of the product's plans to disable; omitted or empty enables them
    /// all.
    pub disabled_plans: Option<Vec<String>>,
}

/// A new user.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// The sign-in name, name@domain; unique regardless of case.
    pub user_principal_name: String,
    /// The name for people.
    pub display_name: String,
    /// An ISO 3166-1 alpha-2 country code such as `US`. Without one, group licenses use the
    /// directory's default (L4) and direct licenses are refused (D2).
    pub usage_location: Option<String>,
    /// Email addresses, e.g. `SMTP:ann@contoso.com`; one that another user also has fails the
    /// user's licenses with UNIQUENESS_VIOLATION (C1).
    pub proxy_addresses: Option<Vec<String>>,
    /// False creates a disabled account (SCIM's `active`); omitted: enabled.
    pub account_enabled: Option<bool>,
}

/// Changes to a user; the fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// The new name for people.
    pub display_name: Option<String>,
    /// The new usage location, an ISO 3166-1 alpha-2 code; a change processes the user's group
    /// licenses again (P5).
    pub usage_location: Option<String>,
    /// True removes the user's own usage location, so that group licenses use the directory's
    /// default (L4); not together with `usageLocation`.
    pub clear_usage_location: Option<bool>,
    /// The whole new list of proxy addresses, replacing the old one; a change processes the
    /// user's group licenses again (P5).
    pub proxy_addresses: Option<Vec<String>>,
    /// Enables or disables the account (SCIM's `active`); a disabled account keeps its licenses
    /// and nothing is processed.
    pub account_enabled: Option<bool>,
}

pub(crate) fn licenses(input: Vec<LicenseInput>) -> Vec<StoreLicense> {
    input
        .into_iter()
        .map(|l| (l.sku_part_number, l.disabled_plans.unwrap_or_default()))
        .collect()
}

pub(crate) fn ids(list: &[ID], what: &str) -> Result<Vec<i64>> {
    list.iter().map(|id| parse_id(id, what)).collect()
}

/// A failed mutation as a GraphQL error; license errors (D3, G1) carry their violations in
/// `extensions.details`.
pub(crate) async fn mutation_error(ctx: &Context<'_>, e: StoreError) -> async_graphql::Error {
    let (error, group_set) = match &e {
        StoreError::Direct(DirectError::License(error)) => (error.clone(), false),
        StoreError::GroupLicense(GroupLicenseError::License(error)) => (error.clone(), true),
        _ => return api_error(e),
    };
    let code = error.code().graphql_name();
    let Ok(table) = table(ctx) else {
        return api_error(e);
    };
    match LicenseErrorDetail::of(ctx, table, &error, group_set).await {
        Ok(detail) => {
            let details: Vec<Value> = error
                .violations
                .iter()
                .zip(detail.violations.iter())
                .map(|(v, described)| violation_json(table, v, &described.message))
                .collect();
            async_graphql::Error::new(detail.message).extend_with(|_, ext| {
                ext.set("code", code);
                if let Ok(value) = async_graphql::Value::from_json(Value::Array(details.clone())) {
                    ext.set("details", value);
                }
                if let Ok(value) = async_graphql::Value::from_json(json!(detail.resolutions)) {
                    ext.set("resolutions", value);
                }
            })
        }
        Err(_) => {
            async_graphql::Error::new(error.to_string()).extend_with(|_, ext| ext.set("code", code))
        }
    }
}

fn plan_json(table: &RuleTable, plan: crate::rules::PlanId) -> Value {
    let p = ServicePlan::of(table, plan);
    json!({
        "servicePlanName": p.service_plan_name,
        "servicePlanId": p.service_plan_id,
        "displayName": p.display_name,
    })
}

fn source_json(table: &RuleTable, source: engine::SourceRef) -> Value {
    json!({
        "direct": source.source.is_direct(),
        "group": source.source.group().map(|g| json!({ "id": g.0.to_string() })),
        "product": { "skuPartNumber": table.product(source.product).name },
    })
}

/// One violation as `LicenseViolation` would show it.
fn violation_json(table: &RuleTable, v: &engine::Violation, message: &str) -> Value {
    json!({
        "code": v.code().graphql_name(),
        "message": message,
        "plans": v.plans().iter().map(|p| plan_json(table, *p)).collect::<Vec<_>>(),
        "source": v.source().map(|s| source_json(table, s)),
        "conflictingPlan": v.conflicting_plan().map(|p| plan_json(table, p)),
        "conflictingSource": v.conflicting_source().map(|s| source_json(table, s)),
        "missingPrerequisites": v.missing_prerequisites().iter().map(|p| plan_json(table, *p)).collect::<Vec<_>>(),
        "usageLocation": v.usage_location().map(|c| c.code()),
        "proxyAddress": v.proxy_address(),
        "conflictingUser": v.conflicting_user().map(|u| json!({ "id": u.0.to_string() })),
        "products": v.products().iter().map(|p| json!({ "skuPartNumber": table.product(*p).name })).collect::<Vec<_>>(),
    })
}

/// Runs one mutation's transaction, with the journal its events go to (H1), and wakes the
/// worker for the work it may have queued.
async fn write<R, F>(ctx: &Context<'_>, f: F) -> Result<R>
where
    R: Send + 'static,
    F: FnOnce(
            &rusqlite::Transaction<'_>,
            &RuleTable,
            &str,
            &mut Journal<'_>,
        ) -> crate::store::Result<R>
        + Send
        + 'static,
{
    let state: &AppState = state(ctx)?;
    let table = table(ctx)?.clone();
    let acting = acting(ctx);
    let (actor, correlation) = (acting.actor.clone(), acting.correlation());
    let result = state
        .store
        .write(move |tx| {
            let now = now();
            let mut journal = Journal::open(tx, &actor, correlation, &now)?;
            let value = f(tx, &table, &now, &mut journal)?;
            Ok((value, journal.finish()?))
        })
        .await;
    match result {
        Ok((value, correlation)) => {
            acting.committed(correlation);
            state.wake.notify_one();
            // What an earlier field of this request read is out of date now: a later mutation
            // of the same document answers from the tenant as this one left it.
            if let Ok(loader) = super::types::loader(ctx) {
                super::loaders::forget(loader);
            }
            Ok(value)
        }
        Err(e) => Err(mutation_error(ctx, e).await),
    }
}

/// [`write`] for a mutation that answers with its group: the group is read inside the same
/// transaction, before the worker is woken, so the answer shows the work queued (G2, P9).
async fn write_group<F>(ctx: &Context<'_>, group: i64, f: F) -> Result<Group>
where
    F: FnOnce(
            &rusqlite::Transaction<'_>,
            &RuleTable,
            &str,
            &mut Journal<'_>,
        ) -> crate::store::Result<()>
        + Send
        + 'static,
{
    let view = write(ctx, move |tx, table, now, journal| {
        f(tx, table, now, journal)?;
        crate::store::read::groups(tx, &[group])?
            .remove(&group)
            .ok_or_else(|| crate::store::read::not_found("group", group))
    })
    .await?;
    Ok(Group::as_of(view))
}

/// Changes to the directory, users, groups, licenses and rules; a mutation that fails changes
/// nothing.
#[Object]
impl Mutation {
    /// Renames the tenant or changes its default usage location. A new default applies to a
    /// user's group licenses when they are next processed (`reprocessGroup`, `reprocessUser`).
    async fn update_directory(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The tenant's new name; omitted: kept.")] display_name: Option<String>,
        #[graphql(
            desc = "The new default usage location, an ISO 3166-1 alpha-2 code such as `US` (L4); omitted: kept."
        )]
        default_usage_location: Option<String>,
    ) -> Result<Directory> {
        audited(ctx, Attempt::new(Activity::UpdateDirectory), async move {
            let view = write(ctx, move |tx, _, _, journal| {
                record::on_directory(tx, journal, |tx| {
                    ops::update_directory(
                        tx,
                        display_name.as_deref(),
                        default_usage_location.as_deref(),
                    )
                })?;
                crate::store::read::directory(tx)
            })
            .await?;
            Ok(directory_of(&view))
        })
        .await
    }

    /// Seats bought for a product: 0 or more. Lowering below what is consumed takes nothing
    /// away (L3); raising it licenses no one until a reprocess (P5).
    async fn set_prepaid_units(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product, e.g. `ENTERPRISEPACK`.")] sku_part_number: String,
        #[graphql(desc = "How many seats the tenant bought: 0 or more.")] units: i32,
    ) -> Result<Product> {
        let attempt = Attempt::new(Activity::SetPrepaidUnits).product(&sku_part_number);
        audited(ctx, attempt, async move {
            let sku = sku_part_number.clone();
            write(ctx, move |tx, table, _, journal| {
                record::on_seats(tx, journal, &sku.clone(), |tx| {
                    ops::set_prepaid_units(tx, table, &sku, i64::from(units))
                })
            })
            .await?;
            let table = table(ctx)?;
            table
                .product_by_name(&sku_part_number)
                .map(Product)
                .ok_or_else(|| bad_input(format!("unknown product `{sku_part_number}`")))
        })
        .await
    }

    /// Creates a user, with no license until it joins a licensed group or gets a direct one.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user.")] input: CreateUserInput,
    ) -> Result<User> {
        let user = NewUser {
            user_principal_name: input.user_principal_name,
            display_name: input.display_name,
            usage_location: input.usage_location,
            proxy_addresses: input.proxy_addresses.unwrap_or_default(),
        };
        let account = Account {
            enabled: input.account_enabled,
            ..Account::default()
        };
        audited(ctx, Attempt::new(Activity::AddUser), async move {
            let id = write(ctx, move |tx, _, _, journal| {
                let id = ops::create_user(tx, &user)?;
                provision::set_account(tx, id, &account)?;
                record::user_added(tx, journal, id)?;
                Ok(id)
            })
            .await?;
            Ok(User(id))
        })
        .await
    }

    /// Changes a user's name, usage location or proxy addresses; a new usage location or new
    /// proxy addresses process the user's group licenses again (P5).
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
        #[graphql(desc = "What to change; the fields left out stay as they are.")]
        input: UpdateUserInput,
    ) -> Result<User> {
        let attempt = Attempt::new(Activity::UpdateUser).on("User", &id);
        audited(ctx, attempt, async move {
            let id = parse_id(&id, "user")?;
            let update = UserUpdate {
                display_name: input.display_name,
                usage_location: input.usage_location,
                clear_usage_location: input.clear_usage_location.unwrap_or(false),
                proxy_addresses: input.proxy_addresses,
            };
            let account = Account {
                enabled: input.account_enabled,
                ..Account::default()
            };
            write(ctx, move |tx, _, now, journal| {
                record::on_user(
                    tx,
                    journal,
                    Activity::UpdateUser,
                    id,
                    |tx| {
                        ops::update_user(tx, id, &update, now)?;
                        provision::set_account(tx, id, &account)
                    },
                    |_| Vec::new(),
                )
            })
            .await?;
            Ok(User(id))
        })
        .await
    }

    /// Deletes a user and returns its id: every assignment is withdrawn without checks and its
    /// seats freed (P7).
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
    ) -> Result<ID> {
        let attempt = Attempt::new(Activity::DeleteUser).on("User", &id);
        audited(ctx, attempt, async move {
            let user = parse_id(&id, "user")?;
            write(ctx, move |tx, table, _, journal| {
                record::on_user(
                    tx,
                    journal,
                    Activity::DeleteUser,
                    user,
                    |tx| ops::delete_user(tx, table, user),
                    |withdrawn| withdrawn.iter().map(|c| c.property()).collect(),
                )
            })
            .await?;
            Ok(id)
        })
        .await
    }

    /// Creates a group with no members and no licenses.
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's name.")] display_name: String,
    ) -> Result<Group> {
        audited(ctx, Attempt::new(Activity::AddGroup), async move {
            let id = write(ctx, move |tx, _, _, journal| {
                let id = ops::create_group(tx, &display_name)?;
                record::group_added(tx, journal, id)?;
                Ok(id)
            })
            .await?;
            Ok(Group::new(id))
        })
        .await
    }

    /// Deletes a group and returns its id; a group that has licenses, or whose licenses are still
    /// being withdrawn from its members, is refused with GROUP_HAS_LICENSES (G4).
    async fn delete_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] id: ID,
    ) -> Result<ID> {
        let attempt = Attempt::new(Activity::DeleteGroup).on("Group", &id);
        audited(ctx, attempt, async move {
            let group = parse_id(&id, "group")?;
            write(ctx, move |tx, _, _, journal| {
                record::on_group(tx, journal, Activity::DeleteGroup, group, |tx| {
                    ops::delete_group(tx, group)
                })
            })
            .await?;
            Ok(id)
        })
        .await
    }

    /// Members join in the order given (P1); they are licensed in the background (P5).
    async fn add_group_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
        #[graphql(
            desc = "The users to add, 1 to 1,000, in their join order; users already members keep their place."
        )]
        user_ids: Vec<ID>,
    ) -> Result<Group> {
        let attempt = Attempt::new(Activity::AddMember).on("Group", &group_id);
        audited(ctx, attempt, async move {
            let group = parse_id(&group_id, "group")?;
            let users = ids(&user_ids, "user")?;
            write_group(ctx, group, move |tx, _, now, journal| {
                let listed = users.clone();
                record::on_members(tx, journal, group, Some(&listed), |tx| {
                    ops::add_group_members(tx, group, &users, now)
                })
            })
            .await
        })
        .await
    }

    /// The members' licenses from the group are withdrawn in the background (P3, P5).
    async fn remove_group_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
        #[graphql(
            desc = "The users to remove, 1 to 1,000; users who are not members are left as they are."
        )]
        user_ids: Vec<ID>,
    ) -> Result<Group> {
        let attempt = Attempt::new(Activity::RemoveMember).on("Group", &group_id);
        audited(ctx, attempt, async move {
            let group = parse_id(&group_id, "group")?;
            let users = ids(&user_ids, "user")?;
            write_group(ctx, group, move |tx, _, now, journal| {
                let listed = users.clone();
                record::on_members(tx, journal, group, Some(&listed), |tx| {
                    ops::remove_group_members(tx, group, &users, now)
                })
            })
            .await
        })
        .await
    }

    /// Changes a user's direct licenses: adds and removes are checked together and applied at
    /// once, or refused with nothing changed (D1–D5).
    async fn assign_license(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The user's id; to be given a license it needs a usage location of its own (D2)."
        )]
        user_id: ID,
        #[graphql(
            desc = "Products to assign directly; one the user already has directly gets the new disabled plans (D4)."
        )]
        add_licenses: Vec<LicenseInput>,
        #[graphql(
            desc = "The `skuPartNumber`s of direct licenses to remove; a license from a group is changed on the group (D5)."
        )]
        remove_licenses: Vec<String>,
    ) -> Result<User> {
        let attempt = Attempt::new(Activity::ChangeUserLicense).on("User", &user_id);
        audited(ctx, attempt, async move {
            let user = parse_id(&user_id, "user")?;
            let add = licenses(add_licenses);
            write(ctx, move |tx, table, now, journal| {
                let changes = ops::assign_license(tx, table, user, &add, &remove_licenses, now)?;
                let principal: Option<String> = tx
                    .query_row(
                        "SELECT user_principal_name FROM users WHERE id = ?1",
                        [user],
                        |r| r.get(0),
                    )
                    .optional()?;
                journal.record(&record::license_change(
                    Activity::ChangeUserLicense,
                    user,
                    principal,
                    &changes,
                    None,
                ))
            })
            .await?;
            Ok(User(user))
        })
        .await
    }

    /// G1–G3: the group's new license set is validated at once; its members are processed in
    /// the background (`licenseProcessingState: QUEUED`).
    async fn assign_group_license(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
        #[graphql(
            desc = "Products to put on the group; one the group already has gets the new disabled plans (G3)."
        )]
        add_licenses: Vec<LicenseInput>,
        #[graphql(desc = "The `skuPartNumber`s of products to take off the group (G3).")]
        remove_licenses: Vec<String>,
    ) -> Result<Group> {
        let attempt = Attempt::new(Activity::SetGroupLicense).on("Group", &group_id);
        audited(ctx, attempt, async move {
            let group = parse_id(&group_id, "group")?;
            let add = licenses(add_licenses);
            write_group(ctx, group, move |tx, table, now, journal| {
                record::on_group_licenses(tx, journal, group, |tx| {
                    ops::assign_group_license(tx, table, group, &add, &remove_licenses, now)
                })
            })
            .await
        })
        .await
    }

    /// M3: removes the listed users' direct licenses that their groups already cover, checked
    /// again as it commits; the others are left as they are and returned with the reason.
    async fn remove_redundant_direct_licenses(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The users, 1 to 1,000.")] user_ids: Vec<ID>,
        #[graphql(
            desc = "Only the direct licenses of these products; omitted: every direct license of the users."
        )]
        sku_part_numbers: Option<Vec<String>>,
    ) -> Result<DirectLicenseCleanup> {
        audited(ctx, Attempt::new(Activity::RemoveRedundant), async move {
            let users = ids(&user_ids, "user")?;
            let cleanup = write(ctx, move |tx, table, now, journal| {
                crate::store::redundant::remove(
                    tx,
                    table,
                    journal,
                    &users,
                    sku_part_numbers.as_deref(),
                    now,
                )
            })
            .await?;
            cleanup_of(ctx, table(ctx)?, cleanup).await
        })
        .await
    }

    /// N1: the available seats at or below which a `LOW_SEATS` alert stands for the product;
    /// null clears it (and resolves a standing one).
    async fn set_seat_alert_threshold(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product, e.g. `ENTERPRISEPACK`.")] sku_part_number: String,
        #[graphql(desc = "Available seats: 0 or more; null: no LOW_SEATS alert.")]
        threshold: Option<i32>,
    ) -> Result<Product> {
        let attempt = Attempt::new(Activity::SetSeatAlertThreshold).product(&sku_part_number);
        audited(ctx, attempt, async move {
            let product = table(ctx)?
                .product_by_name(&sku_part_number)
                .ok_or_else(|| bad_input(format!("unknown product `{sku_part_number}`")))?;
            let sku = sku_part_number.clone();
            write(ctx, move |tx, _, _, journal| {
                let old = alerts::threshold(tx, &sku)?;
                let new = threshold.map(i64::from);
                alerts::set_threshold(tx, &sku, new)?;
                if old != new {
                    let property = Property::new(
                        "seatAlertThreshold",
                        old.map(|t| t.to_string()),
                        new.map(|t| t.to_string()),
                    );
                    let target = Target::product(&sku).with(vec![property]);
                    journal.record(&Event::new(Activity::SetSeatAlertThreshold, vec![target]))?;
                }
                Ok(())
            })
            .await?;
            Ok(Product(product))
        })
        .await
    }

    /// N3: registers a receiver of notices; the answer holds its signing secret, shown only
    /// here.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Where deliveries are POSTed: an https URL of a public host (http and private addresses only with --webhook-allow-private)."
        )]
        url: String,
        #[graphql(desc = "What it is sent: at least one type.")] events: Vec<WebhookEventType>,
        #[graphql(desc = "What the webhook is for, for the admins reading the list.")]
        description: Option<String>,
    ) -> Result<WebhookCreated> {
        let attempt = Attempt::new(Activity::AddWebhook);
        audited(ctx, attempt, async move {
            let settings = state(ctx)?.webhooks;
            let checked = delivery::check_url(&url, settings)
                .await
                .map_err(bad_input)?
                .to_string();
            let mut types: Vec<webhooks::EventType> = Vec::new();
            for t in events {
                if !types.contains(&t.stored()) {
                    types.push(t.stored());
                }
            }
            let secret = new_secret()?;
            let key = secret.clone();
            let row = write(ctx, move |tx, _, now, journal| {
                let id = webhooks::create(tx, &checked, &types, description.as_deref(), &key, now)?;
                let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
                let mut properties = vec![
                    Property::new("url", None, Some(checked.clone())),
                    Property::new("events", None, Some(names.join(", "))),
                ];
                if let Some(d) = description.as_deref().filter(|d| !d.trim().is_empty()) {
                    properties.push(Property::new("description", None, Some(d.trim().into())));
                }
                let target = Target::of("Webhook", Some(id.to_string()), Some(checked.clone()))
                    .with(properties);
                journal.record(&Event::new(Activity::AddWebhook, vec![target]))?;
                webhooks::get(tx, id)
            })
            .await?;
            Ok(WebhookCreated {
                webhook: Webhook(row),
                secret,
            })
        })
        .await
    }

    /// N3: removes a webhook and the deliveries it still had; returns its id.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook's id.")] id: ID,
    ) -> Result<ID> {
        let attempt = Attempt::new(Activity::DeleteWebhook).on("Webhook", &id);
        audited(ctx, attempt, async move {
            let n = parse_id(&id, "webhook")?;
            write(ctx, move |tx, _, _, journal| {
                let gone = webhooks::delete(tx, n)?;
                let target = Target::of("Webhook", Some(n.to_string()), Some(gone.url.clone()))
                    .with(vec![Property::new("url", Some(gone.url), None)]);
                journal.record(&Event::new(Activity::DeleteWebhook, vec![target]))?;
                Ok(())
            })
            .await?;
            Ok(id)
        })
        .await
    }

    /// Tries the group again once a cause is fixed (seats bought, rules changed): every member,
    /// and every former member whose withdrawal is pending, processed in the background (P6).
    async fn reprocess_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
    ) -> Result<Group> {
        let attempt = Attempt::new(Activity::ReprocessGroup).on("Group", &group_id);
        audited(ctx, attempt, async move {
            let group = parse_id(&group_id, "group")?;
            write_group(ctx, group, move |tx, _, now, journal| {
                ops::reprocess_group(tx, group, now)?;
                record::reprocess(tx, journal, Some(group), None)
            })
            .await
        })
        .await
    }

    /// Tries all of the user's group assignments again in the background, pending withdrawals
    /// included, groups in the order the user joined them (P6).
    async fn reprocess_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
    ) -> Result<User> {
        let attempt = Attempt::new(Activity::ReprocessUser).on("User", &user_id);
        audited(ctx, attempt, async move {
            let user = parse_id(&user_id, "user")?;
            write(ctx, move |tx, _, now, journal| {
                ops::reprocess_user(tx, user, now)?;
                record::reprocess(tx, journal, None, Some(user))
            })
            .await?;
            Ok(User(user))
        })
        .await
    }

    /// Re-reads the rules folder. On failure the rules in force stay, and the diagnostics are
    /// returned (`RULES_INVALID`) and kept in `rules.lastReloadErrors`.
    async fn reload_rules(&self, ctx: &Context<'_>) -> Result<RuleSet> {
        let state = state(ctx)?;
        match reload_rules(state, &acting(ctx)).await {
            Ok(loaded) => Ok(RuleSet::of(&loaded)),
            Err(errors) => {
                let details: Vec<Value> = errors
                    .iter()
                    .map(|d| {
                        let d = RuleDiagnostic::of(d);
                        json!({ "file": d.file, "line": d.line, "column": d.column, "message": d.message })
                    })
                    .collect();
                let message = format!(
                    "the rules were not reloaded: {} error(s); the rules in force are unchanged",
                    errors.len()
                );
                Err(async_graphql::Error::new(message).extend_with(|_, ext| {
                    ext.set("code", "RULES_INVALID");
                    if let Ok(value) =
                        async_graphql::Value::from_json(Value::Array(details.clone()))
                    {
                        ext.set("details", value);
                    }
                }))
            }
        }
    }
}
