//! SCIM 2.0 provisioning under `/scim/v2` (scim.md; RFC 7643, RFC 7644): an identity provider
//! (Entra ID's app provisioning, Okta) creates, changes and deletes users, groups and
//! memberships, and group-based licensing follows as for the GraphQL mutations (P5).
//!
//! Reading order: `resource` (the mapping table, JSON ↔ [`resource::UserDoc`]), `filter`
//! (the pest grammar of filters and PATCH paths), `patch` (operations applied to a document,
//! members as changes), `discovery`, `error` (the one error type, mapped once to RFC 7644
//! §3.12). The handlers here are thin: parse, then one write transaction over the store's
//! operations (`store::ops`, `store::provision`), which queue processing exactly as
//! `addGroupMembers`, `removeGroupMembers`, `updateUser` and `deleteUser` do.
//!
//! Access (scim.md "Access"): provisioning and admin tokens may do everything here, reader
//! tokens only `GET`; without tokens the server is loopback-only, as for the rest (the guard of
//! `server::guard` runs before these routes). At most `--scim-max-deletions-per-hour` users are
//! deleted over SCIM in an hour ([`DeletionLimit`]).
//!
//! Bodies are `application/scim+json` or `application/json`, at most `server::BODY_LIMIT`
//! bytes; a list of members, emails or operations holds at most `maxResults` (1,000) values.

pub mod discovery;
pub mod error;
pub mod filter;
pub mod patch;
pub mod resource;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use rusqlite::Transaction;
use serde_json::{Value, json};
use tower_http::limit::RequestBodyLimitLayer;

use crate::api::AppState;
use crate::rules::RuleTable;
use crate::server::auth::{Auth, Role};
use crate::store::history::{self, Acting, Activity, Event, Journal, Target};
use crate::store::ops::{self, MAX_LIST, NewUser, UserUpdate};
use crate::store::provision::{self, Account, Column};
use crate::store::{self, audited as record, now};
use error::{ScimError, scim_json};
use patch::MemberChange;
use resource::{GROUP_SCHEMA, GroupDoc, LIST_SCHEMA, Projection, USER_SCHEMA, UserDoc};

pub const PREFIX: &str = "/scim/v2";

/// What the SCIM routes share.
#[derive(Clone)]
pub struct ScimState {
    app: AppState,
    auth: Arc<Auth>,
    deletions: Arc<DeletionLimit>,
}

impl ScimState {
    pub fn new(app: AppState, auth: Arc<Auth>, max_deletions_per_hour: u32) -> ScimState {
        ScimState {
            app,
            auth,
            deletions: Arc::new(DeletionLimit::new(max_deletions_per_hour, HOUR)),
        }
    }

    /// One write transaction over the store's operations; wakes the worker for the processing
    /// it may have queued. `f` returns a SCIM error of its own (a PATCH that does not apply)
    /// before it has written anything.
    ///
    /// Its events go to the journal it is given (H1); when it fails, `attempt` is recorded as
    /// a failure with the SCIM error's type and detail (H5).
    async fn write<R, F>(&self, acting: &Acting, attempt: Event, f: F) -> Result<R, ScimError>
    where
        R: Send + 'static,
        F: FnOnce(
                &Transaction<'_>,
                &RuleTable,
                &str,
                &mut Journal<'_>,
            ) -> store::Result<Result<R, ScimError>>
            + Send
            + 'static,
    {
        let table = self.app.rules.table();
        let (actor, correlation) = (acting.actor.clone(), acting.correlation());
        let refusal: Arc<Mutex<Option<ScimError>>> = Arc::default();
        let refused = refusal.clone();
        let written = self
            .app
            .store
            .write(move |tx| {
                let now = now();
                let mut journal = Journal::open(tx, &actor, correlation, &now)?;
                match f(tx, &table, &now, &mut journal)? {
                    Ok(value) => Ok((value, journal.finish()?)),
                    Err(e) => {
                        // A refusal rolls back whatever was written before it, events included.
                        if let Ok(mut slot) = refused.lock() {
                            *slot = Some(e);
                        }
                        Err(store::StoreError::BadInput("refused".into()))
                    }
                }
            })
            .await;
        let result = match written {
            Ok((value, correlation)) => {
                acting.committed(correlation);
                self.app.wake.notify_one();
                return Ok(value);
            }
            Err(e) => match refusal.lock().ok().and_then(|mut slot| slot.take()) {
                Some(refused) => refused,
                None => ScimError::from(e),
            },
        };
        let code = result
            .scim_type
            .map(str::to_string)
            .unwrap_or_else(|| result.status.as_u16().to_string());
        let event = attempt.failure(&code, &result.detail);
        history::record_apart(&self.app.store, acting, event).await;
        Err(result)
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// At most `max` deletions in any window of `window`: a slot is taken before a deletion and
/// given back if it fails, so concurrent deletions cannot pass the limit together.
pub struct DeletionLimit {
    max: usize,
    window: Duration,
    done: Mutex<VecDeque<Instant>>,
}

impl DeletionLimit {
    pub fn new(max: u32, window: Duration) -> DeletionLimit {
        DeletionLimit {
            max: max as usize,
            window,
            done: Mutex::new(VecDeque::new()),
        }
    }

    fn take(&self) -> Result<Instant, ScimError> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while done
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            done.pop_front();
        }
        if done.len() >= self.max {
            tracing::warn!(
                max = self.max,
                "SCIM: user deletion refused: the limit of deletions per hour is reached"
            );
            return Err(ScimError::new(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                format!(
                    "at most {} users may be deleted over SCIM in an hour (--scim-max-deletions-per-hour), a guard against accidental mass deletion; retry later or raise the limit",
                    self.max
                ),
            ));
        }
        done.push_back(now);
        Ok(now)
    }

    fn give_back(&self, slot: Instant) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = done.iter().position(|t| *t == slot) {
            done.remove(i);
        }
    }
}

/// The routes under `/scim/v2`, behind [`access`].
pub fn router(state: ScimState) -> Router {
    let route = |m: MethodRouter<ScimState>| m.fallback(method_not_allowed);
    Router::new()
        .route(
            "/scim/v2/ServiceProviderConfig",
            route(get(service_provider_config)),
        )
        .route("/scim/v2/ResourceTypes", route(get(resource_types)))
        .route("/scim/v2/ResourceTypes/{id}", route(get(resource_type)))
        .route("/scim/v2/Schemas", route(get(schemas)))
        .route("/scim/v2/Schemas/{id}", route(get(schema)))
        .route("/scim/v2/Users", route(get(list_users).post(create_user)))
        .route(
            "/scim/v2/Users/{id}",
            route(
                get(get_user)
                    .put(replace_user)
                    .patch(patch_user)
                    .delete(delete_user),
            ),
        )
        .route(
            "/scim/v2/Groups",
            route(get(list_groups).post(create_group)),
        )
        .route(
            "/scim/v2/Groups/{id}",
            route(
                get(get_group)
                    .put(replace_group)
                    .patch(patch_group)
                    .delete(delete_group),
            ),
        )
        .route("/scim/v2/Bulk", route(post(bulk)))
        .route("/scim/v2/.search", route(post(search_everything)))
        .route("/scim/v2", any(no_such_endpoint))
        .route("/scim/v2/{*rest}", any(no_such_endpoint))
        .layer(RequestBodyLimitLayer::new(crate::server::BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), access))
        .with_state(state)
}

/// Every route a test must cover, as `(method, path)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/ServiceProviderConfig"),
    ("GET", "/ResourceTypes"),
    ("GET", "/ResourceTypes/{id}"),
    ("GET", "/Schemas"),
    ("GET", "/Schemas/{id}"),
    ("GET", "/Users"),
    ("POST", "/Users"),
    ("GET", "/Users/{id}"),
    ("PUT", "/Users/{id}"),
    ("PATCH", "/Users/{id}"),
    ("DELETE", "/Users/{id}"),
    ("GET", "/Groups"),
    ("POST", "/Groups"),
    ("GET", "/Groups/{id}"),
    ("PUT", "/Groups/{id}"),
    ("PATCH", "/Groups/{id}"),
    ("DELETE", "/Groups/{id}"),
    ("POST", "/Bulk"),
    ("POST", "/.search"),
];

/// The token's role decides: provisioning and admin tokens everything, reader tokens `GET`.
async fn access(State(state): State<ScimState>, mut request: Request, next: Next) -> Response {
    let caller = state.auth.caller(request.headers());
    if let Ok(caller) = &caller {
        request.extensions_mut().insert(Acting::new(caller.actor()));
    }
    match caller.map(|c| c.role) {
        Err(_) => {
            let mut response = ScimError::new(
                StatusCode::UNAUTHORIZED,
                None,
                "SCIM needs `Authorization: Bearer TOKEN` with a provisioning or admin token"
                    .into(),
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
            response
        }
        Ok(Role::Reader) if request.method() != Method::GET && request.method() != Method::HEAD => {
            ScimError::new(
                StatusCode::FORBIDDEN,
                None,
                "a reader token may only read over SCIM: changes need a provisioning or admin token"
                    .into(),
            )
            .into_response()
        }
        Ok(_) => {
            let response = next.run(request).await;
            // The body limit answers before any handler, in plain text.
            if response.status() == StatusCode::PAYLOAD_TOO_LARGE
                && response.headers().get(header::CONTENT_TYPE)
                    != Some(&HeaderValue::from_static(error::SCIM_JSON))
            {
                return ScimError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    format!(
                        "the body is larger than {} bytes",
                        crate::server::BODY_LIMIT
                    ),
                )
                .into_response();
            }
            response
        }
    }
}

async fn method_not_allowed() -> ScimError {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "this method is not supported on this endpoint".into(),
    )
}

async fn no_such_endpoint() -> ScimError {
    ScimError::not_found("no such SCIM endpoint: see /scim/v2/ResourceTypes".into())
}

async fn bulk() -> ScimError {
    ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "bulk operations are not supported (ServiceProviderConfig: bulk.supported false)".into(),
    )
}

async fn search_everything() -> ScimError {
    ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "searching every resource type at once is not supported: GET /Users or /Groups with a filter".into(),
    )
}

/// `https://host/scim/v2`, for `meta.location`: the request's `Host`, and `https` when a proxy
/// in front says so (`X-Forwarded-Proto`).
struct Base(String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let https = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let scheme = if https { "https" } else { "http" };
        Ok(Base(format!("{scheme}://{host}{PREFIX}")))
    }
}

/// A JSON request body (`application/scim+json` or `application/json`).
struct Body(Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ScimError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/scim+json" || v == "application/json");
        if !json {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "send the body as `Content-Type: application/scim+json` (or application/json)"
                    .into(),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ScimError::new(rejection.status(), None, rejection.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
    }
}

/// What a resource handler starts from: the state, the base of `meta.location`, the query
/// parameters (names without regard to case) and the `attributes` / `excludedAttributes` they
/// ask for.
struct Scim {
    state: ScimState,
    /// Who the request acts as (the access check put it there).
    acting: Arc<Acting>,
    base: String,
    params: HashMap<String, String>,
    projection: Projection,
}

impl FromRequestParts<ScimState> for Scim {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ScimState,
    ) -> Result<Self, Self::Rejection> {
        let Base(base) = Base::from_request_parts(parts, state).await?;
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e: QueryRejection| ScimError::invalid_value(e.body_text()))?;
        let params: HashMap<String, String> = params
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let projection = Projection::new(
            params.get("attributes").map(String::as_str),
            params.get("excludedattributes").map(String::as_str),
        )?;
        let acting = parts
            .extensions
            .get::<Arc<Acting>>()
            .cloned()
            .unwrap_or_else(|| Acting::new(history::Actor::local()));
        Ok(Scim {
            state: state.clone(),
            acting,
            base,
            params,
            projection,
        })
    }
}

fn id_of(text: &str, what: &str) -> Result<i64, ScimError> {
    resource::user_id(text)
        .ok_or_else(|| ScimError::not_found(format!("no {what} with id `{text}`")))
}

fn ok(body: Value) -> Result<Response, ScimError> {
    Ok(scim_json(StatusCode::OK, &body))
}

fn created(body: Value) -> Result<Response, ScimError> {
    let mut response = scim_json(StatusCode::CREATED, &body);
    if let Some(location) = body["meta"]["location"]
        .as_str()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

// ---- Discovery --------------------------------------------------------------------------------

async fn service_provider_config(Base(base): Base) -> Result<Response, ScimError> {
    ok(discovery::service_provider_config(&base))
}

async fn resource_types(Base(base): Base) -> Result<Response, ScimError> {
    ok(discovery::list(discovery::resource_types(&base)))
}

async fn resource_type(Base(base): Base, Path(id): Path<String>) -> Result<Response, ScimError> {
    discovery::resource_types(&base)
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .map_or_else(
            || Err(ScimError::not_found(format!("no resource type `{id}`"))),
            ok,
        )
}

async fn schemas(Base(base): Base) -> Result<Response, ScimError> {
    ok(discovery::list(discovery::schemas(&base)))
}

async fn schema(Base(base): Base, Path(id): Path<String>) -> Result<Response, ScimError> {
    discovery::schemas(&base)
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .map_or_else(
            || Err(ScimError::not_found(format!("no schema `{id}`"))),
            ok,
        )
}

// ---- Lists ------------------------------------------------------------------------------------

/// `filter`, `startIndex` and `count` of a list request (RFC 7644 §3.4.2).
struct Page {
    matches: Vec<provision::Match>,
    /// 1-based.
    start: usize,
    count: usize,
}

impl Page {
    fn of(
        params: &HashMap<String, String>,
        core: &str,
        columns: &[(&str, Column)],
    ) -> Result<Page, ScimError> {
        let number = |name: &str, default: i64| -> Result<i64, ScimError> {
            params.get(name).map_or(Ok(default), |v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ScimError::invalid_value(format!("`{name}` must be an integer, got `{v}`"))
                })
            })
        };
        let matches = match params.get("filter") {
            Some(f) => filter::parse_filter(f)?.matches(core, columns)?,
            None => Vec::new(),
        };
        // RFC 7644: a start below 1 is 1, a negative count 0, and at most maxResults.
        let start = number("startindex", 1)?.max(1);
        let count = number("count", MAX_LIST as i64)?.clamp(0, MAX_LIST as i64);
        Ok(Page {
            matches,
            start: usize::try_from(start).unwrap_or(usize::MAX),
            count: usize::try_from(count).unwrap_or(0),
        })
    }

    fn response(&self, total: usize, resources: Vec<Value>) -> Value {
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": self.start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        })
    }
}

const USER_COLUMNS: &[(&str, Column)] = &[
    ("id", Column::Id),
    ("userName", Column::UserName),
    ("externalId", Column::ExternalId),
    ("displayName", Column::DisplayName),
];

const GROUP_COLUMNS: &[(&str, Column)] = &[
    ("id", Column::Id),
    ("externalId", Column::ExternalId),
    ("displayName", Column::DisplayName),
];

// ---- Users ------------------------------------------------------------------------------------

async fn list_users(cx: Scim) -> Result<Response, ScimError> {
    let page = Page::of(&cx.params, USER_SCHEMA, USER_COLUMNS)?;
    let (matches, offset, count) = (page.matches.clone(), page.start - 1, page.count);
    let (total, users) = cx
        .state
        .app
        .store
        .read(move |conn| provision::users_page(conn, &matches, offset, count))
        .await?;
    let resources = users
        .iter()
        .map(|u| {
            cx.projection
                .apply(USER_SCHEMA, UserDoc::of(u).json(u.id, &cx.base))
        })
        .collect();
    ok(page.response(total, resources))
}

async fn user_response(cx: &Scim, id: i64) -> Result<Value, ScimError> {
    let view = cx
        .state
        .app
        .store
        .read(move |conn| provision::user(conn, id))
        .await?;
    Ok(cx
        .projection
        .apply(USER_SCHEMA, UserDoc::of(&view).json(id, &cx.base)))
}

async fn get_user(cx: Scim, Path(id): Path<String>) -> Result<Response, ScimError> {
    let id = id_of(&id, "user")?;
    ok(user_response(&cx, id).await?)
}

async fn create_user(cx: Scim, Body(body): Body) -> Result<Response, ScimError> {
    let doc = UserDoc::parse(&body)?;
    let proxy_addresses = doc.proxy_addresses()?;
    let attempt = Event::new(Activity::AddUser, Vec::new());
    let id = cx
        .state
        .write(&cx.acting, attempt, move |tx, _, _, journal| {
            let user = NewUser {
                user_principal_name: doc.user_name,
                display_name: doc.display_name,
                usage_location: doc.usage_location,
                proxy_addresses,
            };
            let account = Account {
                user_name: None,
                enabled: Some(doc.active),
                external_id: Some(doc.external_id),
            };
            let id = provision::create_user(tx, &user, &account)?;
            record::user_added(tx, journal, id)?;
            Ok(Ok(id))
        })
        .await?;
    created(user_response(&cx, id).await?)
}

/// Writes what changed from `old` to `new` through the mutations' operations: `updateUser`'s
/// (a new usage location or new emails process the user again, P5), then SCIM's own.
fn write_user(
    tx: &Transaction<'_>,
    id: i64,
    old: &UserDoc,
    new: &UserDoc,
    now: &str,
) -> store::Result<Result<(), ScimError>> {
    let proxies = match (new.emails != old.emails).then(|| new.proxy_addresses()) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return Ok(Err(e)),
    };
    let update = UserUpdate {
        display_name: (new.display_name != old.display_name).then(|| new.display_name.clone()),
        usage_location: new
            .usage_location
            .clone()
            .filter(|_| new.usage_location != old.usage_location),
        clear_usage_location: old.usage_location.is_some() && new.usage_location.is_none(),
        proxy_addresses: proxies,
    };
    ops::update_user(tx, id, &update, now)?;
    let account = Account {
        user_name: (new.user_name != old.user_name).then(|| new.user_name.clone()),
        enabled: (new.active != old.active).then_some(new.active),
        external_id: (new.external_id != old.external_id).then(|| new.external_id.clone()),
    };
    provision::set_account(tx, id, &account)?;
    Ok(Ok(()))
}

/// PUT and PATCH of a user: the user's document as stored, changed by `change`, written back.
async fn change_user<F>(cx: &Scim, id: i64, change: F) -> Result<Response, ScimError>
where
    F: FnOnce(&UserDoc) -> Result<UserDoc, ScimError> + Send + 'static,
{
    let attempt = Event::new(Activity::UpdateUser, vec![Target::user(id, None)]);
    cx.state
        .write(&cx.acting, attempt, move |tx, _, now, journal| {
            let old = UserDoc::of(&provision::user(tx, id)?);
            let new = match change(&old) {
                Ok(new) => new,
                Err(e) => return Ok(Err(e)),
            };
            record::on_user(
                tx,
                journal,
                Activity::UpdateUser,
                id,
                |tx| write_user(tx, id, &old, &new, now),
                |_| Vec::new(),
            )
        })
        .await?;
    ok(user_response(cx, id).await?)
}

async fn replace_user(
    cx: Scim,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let id = id_of(&id, "user")?;
    let new = UserDoc::parse(&body)?;
    change_user(&cx, id, move |_| Ok(new)).await
}

async fn patch_user(
    cx: Scim,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let id = id_of(&id, "user")?;
    let operations = patch::parse(&body)?;
    change_user(&cx, id, move |old| {
        let mut new = old.clone();
        patch::apply_user(&mut new, &operations)?;
        Ok(new)
    })
    .await
}

async fn delete_user(
    State(state): State<ScimState>,
    Extension(acting): Extension<Arc<Acting>>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let id = id_of(&id, "user")?;
    let slot = state.deletions.take()?;
    let attempt = Event::new(Activity::DeleteUser, vec![Target::user(id, None)]);
    let result = state
        .write(&acting, attempt, move |tx, table, _, journal| {
            record::on_user(
                tx,
                journal,
                Activity::DeleteUser,
                id,
                |tx| ops::delete_user(tx, table, id),
                |withdrawn| withdrawn.iter().map(|c| c.property()).collect(),
            )?;
            Ok(Ok(()))
        })
        .await;
    if result.is_err() {
        state.deletions.give_back(slot);
    }
    result?;
    tracing::info!(user = id, "SCIM: user deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Groups -----------------------------------------------------------------------------------

async fn list_groups(cx: Scim) -> Result<Response, ScimError> {
    let page = Page::of(&cx.params, GROUP_SCHEMA, GROUP_COLUMNS)?;
    let with_members = cx.projection.returns(GROUP_SCHEMA, "members");
    let (matches, offset, count) = (page.matches.clone(), page.start - 1, page.count);
    let (total, groups) = cx
        .state
        .app
        .store
        .read(move |conn| provision::groups_page(conn, &matches, offset, count, with_members))
        .await?;
    let resources = groups
        .iter()
        .map(|g| {
            cx.projection.apply(
                GROUP_SCHEMA,
                resource::group_json(g, &cx.base, with_members),
            )
        })
        .collect();
    ok(page.response(total, resources))
}

async fn group_response(cx: &Scim, id: i64) -> Result<Value, ScimError> {
    let with_members = cx.projection.returns(GROUP_SCHEMA, "members");
    let group = cx
        .state
        .app
        .store
        .read(move |conn| provision::group(conn, id, with_members))
        .await?;
    Ok(cx.projection.apply(
        GROUP_SCHEMA,
        resource::group_json(&group, &cx.base, with_members),
    ))
}

async fn get_group(cx: Scim, Path(id): Path<String>) -> Result<Response, ScimError> {
    let id = id_of(&id, "group")?;
    ok(group_response(&cx, id).await?)
}

async fn create_group(cx: Scim, Body(body): Body) -> Result<Response, ScimError> {
    let (doc, members) = GroupDoc::parse(&body)?;
    let attempt = Event::new(Activity::AddGroup, Vec::new());
    let id = cx
        .state
        .write(&cx.acting, attempt, move |tx, _, now, journal| {
            let id = provision::create_group(tx, &doc.display_name, doc.external_id.as_deref())?;
            record::group_added(tx, journal, id)?;
            let members = members.unwrap_or_default();
            record::on_members(tx, journal, id, Some(&members), |tx| {
                provision::add_members(tx, id, &members, now)
            })?;
            Ok(Ok(id))
        })
        .await?;
    created(group_response(&cx, id).await?)
}

/// Writes a group's new name and `externalId` where they changed.
fn write_group(tx: &Transaction<'_>, id: i64, old: &GroupDoc, new: &GroupDoc) -> store::Result<()> {
    provision::update_group(
        tx,
        id,
        (new.display_name != old.display_name).then_some(new.display_name.as_str()),
        (new.external_id != old.external_id).then_some(new.external_id.as_deref()),
    )
}

fn group_doc(tx: &Transaction<'_>, id: i64) -> store::Result<GroupDoc> {
    let group = provision::group(tx, id, false)?;
    Ok(GroupDoc {
        display_name: group.display_name,
        external_id: group.external_id,
    })
}

async fn replace_group(
    cx: Scim,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let id = id_of(&id, "group")?;
    let (new, members) = GroupDoc::parse(&body)?;
    let attempt = Event::new(Activity::UpdateGroup, vec![Target::group(id, None)]);
    cx.state
        .write(&cx.acting, attempt, move |tx, _, now, journal| {
            let old = group_doc(tx, id)?;
            record::on_group(tx, journal, Activity::UpdateGroup, id, |tx| {
                write_group(tx, id, &old, &new)
            })?;
            // A replace without members leaves the group with none.
            record::on_members(tx, journal, id, None, |tx| {
                provision::set_members(tx, id, &members.unwrap_or_default(), now)
            })?;
            Ok(Ok(()))
        })
        .await?;
    ok(group_response(&cx, id).await?)
}

/// A group's PATCH answers 204 No Content (RFC 7644 §3.5.2 allows it): the whole resource would
/// list every member after each membership change.
async fn patch_group(
    State(state): State<ScimState>,
    Extension(acting): Extension<Arc<Acting>>,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let id = id_of(&id, "group")?;
    let operations = patch::parse(&body)?;
    let attempt = Event::new(Activity::UpdateGroup, vec![Target::group(id, None)]);
    state
        .write(&acting, attempt, move |tx, _, now, journal| {
            let old = group_doc(tx, id)?;
            let mut new = old.clone();
            let changes = match patch::apply_group(&mut new, &operations) {
                Ok(changes) => changes,
                Err(e) => return Ok(Err(e)),
            };
            record::on_group(tx, journal, Activity::UpdateGroup, id, |tx| {
                write_group(tx, id, &old, &new)
            })?;
            record::on_members(tx, journal, id, None, |tx| {
                apply_members(tx, id, changes, now)
            })?;
            Ok(Ok(()))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The membership changes of a group's PATCH, in order.
fn apply_members(
    tx: &Transaction<'_>,
    id: i64,
    changes: Vec<MemberChange>,
    now: &str,
) -> store::Result<()> {
    {
        {
            for change in changes {
                match change {
                    MemberChange::Add(users) => provision::add_members(tx, id, &users, now)?,
                    MemberChange::Remove(users) => {
                        provision::remove_members(tx, id, &users, now)?;
                    }
                    MemberChange::RemoveAll => {
                        let all = provision::member_ids(tx, id)?;
                        provision::remove_members(tx, id, &all, now)?;
                    }
                    MemberChange::Replace(users) => provision::set_members(tx, id, &users, now)?,
                }
            }
            Ok(())
        }
    }
}

async fn delete_group(
    State(state): State<ScimState>,
    Extension(acting): Extension<Arc<Acting>>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let id = id_of(&id, "group")?;
    let attempt = Event::new(Activity::DeleteGroup, vec![Target::group(id, None)]);
    state
        .write(&acting, attempt, move |tx, _, _, journal| {
            record::on_group(tx, journal, Activity::DeleteGroup, id, |tx| {
                ops::delete_group(tx, id)
            })?;
            Ok(Ok(()))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
