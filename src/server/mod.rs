//! The HTTP server: `POST /graphql` (JSON), `GET /graphql?query=…` for queries, GraphiQL for
//! browsers, `GET /healthz`; the processing worker beside it; SIGHUP reloads the rules;
//! SIGTERM or ctrl-c shuts down cleanly.

pub mod auth;
pub mod cache;
pub mod demo;
pub mod graphiql;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{Notify, watch};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::api::{self, ApiSchema, AppState};
use crate::rules::live::{LiveRules, Loaded};
use crate::rules::{self, Diagnostic, RulesError};
use crate::store::{self, Store, StoreError};
use auth::{Auth, AuthError, Refusal, Role, TokenSources};

/// Largest request body accepted (a query with its variables).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub struct Config {
    pub db: PathBuf,
    pub rules: PathBuf,
    pub listen: SocketAddr,
    pub demo: bool,
    /// Where the admin and reader tokens come from; none: no authentication (loopback only).
    pub tokens: TokenSources,
    /// Serve without tokens on an address other than loopback.
    pub insecure: bool,
    /// How long a query may run before it is answered with `TIMEOUT`.
    pub request_timeout: Duration,
    /// Bytes of query answers kept until the data or the rules change; 0: none.
    pub response_cache_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the rules in {dir} do not compile")]
    Rules {
        dir: String,
        errors: Vec<Diagnostic>,
        warnings: Vec<Diagnostic>,
    },
    #[error("cannot load the rules: {0}")]
    RulesFolder(RulesError),
    #[error("cannot open the database {path}: {source}")]
    Store { path: String, source: StoreError },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error(
        "refusing to serve on {addr} without tokens: anyone who can reach it could change the licensing data. Give --admin-token-file (and --reader-token-file), listen on loopback, or pass --insecure"
    )]
    Insecure { addr: SocketAddr },
    #[error("demo data: {0}")]
    Demo(StoreError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
struct HttpState {
    schema: ApiSchema,
    app: AppState,
    auth: Arc<Auth>,
    request_timeout: Duration,
    cache: Arc<cache::ResponseCache>,
}

/// Loads the rules (refusing to start on any error), opens the database, starts the worker and
/// serves until SIGTERM or ctrl-c.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    // Checked before anything is opened: a refused start leaves no trace.
    let tokens = if config.tokens.configured() {
        config.tokens.load()?
    } else {
        auth::Tokens::default()
    };
    if tokens.is_empty() && !config.listen.ip().is_loopback() && !config.insecure {
        return Err(ServerError::Insecure {
            addr: config.listen,
        });
    }
    let (admins, readers) = tokens.counts();
    let auth = Arc::new(Auth::new(config.tokens.clone(), tokens));
    let dir = config.rules.clone();
    let compiled = match tokio::task::spawn_blocking(move || rules::load_dir(&dir)).await {
        Ok(Ok(compiled)) => compiled,
        Ok(Err(RulesError::Invalid(failure))) => {
            return Err(ServerError::Rules {
                dir: config.rules.display().to_string(),
                errors: failure.errors,
                warnings: failure.warnings,
            });
        }
        Ok(Err(other)) => return Err(ServerError::RulesFolder(other)),
        Err(e) => return Err(ServerError::Io(std::io::Error::other(e))),
    };
    for w in &compiled.warnings {
        tracing::warn!("{w}");
    }
    let store = Store::open(&config.db).map_err(|source| ServerError::Store {
        path: config.db.display().to_string(),
        source,
    })?;
    let table = Arc::new(compiled.table);
    let for_store = table.clone();
    store
        .write(move |tx| store::ops::ensure_products(tx, &for_store))
        .await
        .map_err(|source| ServerError::Store {
            path: config.db.display().to_string(),
            source,
        })?;
    if config.demo {
        let (store, table) = (store.clone(), table.clone());
        let filled = tokio::task::spawn_blocking(move || demo::fill_if_empty(&store, &table))
            .await
            .map_err(|e| ServerError::Io(std::io::Error::other(e)))?
            .map_err(ServerError::Demo)?;
        if filled {
            tracing::info!("filled the empty database with the demo tenant");
        }
    }
    let live = Arc::new(LiveRules::new(
        &config.rules,
        Loaded {
            table,
            loaded_at: store::now(),
            warnings: compiled.warnings,
            last_reload_errors: Vec::new(),
        },
    ));
    let app = AppState {
        store: store.clone(),
        rules: live.clone(),
        wake: Arc::new(Notify::new()),
    };
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(crate::processing::run(
        store.clone(),
        live,
        app.wake.clone(),
        stopped.clone(),
    ));
    #[cfg(unix)]
    let terminate = {
        use tokio::signal::unix::{SignalKind, signal};
        let hangup = signal(SignalKind::hangup())?;
        tokio::spawn(reload_on_sighup(hangup, app.clone(), auth.clone(), stopped));
        signal(SignalKind::terminate())?
    };
    #[cfg(not(unix))]
    let terminate = {
        let _ = stopped;
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("listening on http://{addr}");
    if admins + readers == 0 && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "--insecure: no tokens, and not on loopback: anyone reaching this address may change the data");
    } else if admins + readers == 0 {
        tracing::info!(%addr, "no tokens configured: every local request may read and change data");
    }
    tracing::info!(%addr, db = %config.db.display(), rules = %config.rules.display(), admin_tokens = admins, reader_tokens = readers, "serving");
    let cache = Arc::new(cache::ResponseCache::new(config.response_cache_bytes));
    axum::serve(listener, router(app, auth, config.request_timeout, cache))
        .with_graceful_shutdown(shutdown_signal(terminate))
        .await?;
    let _ = stop.send(true);
    let _ = worker.await;
    // A clean stop leaves the whole database in its file (no log to replay at the next start).
    let for_checkpoint = store.clone();
    match tokio::task::spawn_blocking(move || for_checkpoint.checkpoint_blocking()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "checkpoint at shutdown"),
        Err(e) => tracing::warn!(error = %e, "checkpoint at shutdown"),
    }
    tracing::info!("stopped");
    Ok(())
}

pub fn router(
    app: AppState,
    auth: Arc<Auth>,
    request_timeout: Duration,
    cache: Arc<cache::ResponseCache>,
) -> Router {
    let state = HttpState {
        schema: api::schema(app.clone()),
        app,
        auth,
        request_timeout,
        cache,
    };
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(healthz))
        .with_state(state)
        .merge(graphiql::router())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
}

/// `POST /graphql`. The body is buffered first: axum tells a body over [`BODY_LIMIT`] (413,
/// also when it comes in chunks with no length declared) from other failures, which the GraphQL
/// extractor would all answer with 400.
async fn graphql_post(State(state): State<HttpState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let role = match state.auth.role(&parts.headers) {
        Ok(role) => role,
        Err(refusal) => return unauthenticated(refusal),
    };
    let bytes = match Bytes::from_request(Request::from_parts(parts.clone(), body), &state).await {
        Ok(bytes) => bytes,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "PAYLOAD_TOO_LARGE"
            } else {
                "BAD_REQUEST"
            };
            return error_response(status, code, &rejection.body_text());
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let request = match GraphQLRequest::<GraphQLRejection>::from_request(request, &state).await {
        Ok(request) => request,
        Err(rejection) => return rejection.into_response(),
    };
    let request = request.into_inner();
    // Only queries that passed the checks below are cached, under their exact text and
    // operation: a hit has passed them already.
    let lookup = Lookup::new(&state, &request);
    if let Some(answer) = lookup.as_ref().and_then(|l| l.hit(&state)) {
        return graphql_json(answer);
    }
    let shape = match api::limits::inspect(&request.query, request.operation_name.as_deref()) {
        Ok(shape) => shape,
        Err(refusal) => return refused(refusal),
    };
    if shape.mutation && role == Role::Reader {
        return forbidden();
    }
    run(&state, request, shape.mutation, lookup).await
}

/// The HTTP answer to a request refused by the limits (`api::limits::inspect`).
fn refused(refusal: api::limits::Refused) -> Response {
    error_response(StatusCode::BAD_REQUEST, refusal.code, &refusal.message)
}

/// Where a query's answer is, or would be, in the response cache.
struct Lookup {
    generation: cache::Generation,
    key: cache::Key,
}

impl Lookup {
    /// `None` when the cache is off. The generations are read before anything is computed.
    fn new(state: &HttpState, request: &async_graphql::Request) -> Option<Lookup> {
        state.cache.enabled().then(|| Lookup {
            generation: (state.app.store.generation(), state.app.rules.generation()),
            key: cache::Key {
                query: request.query.clone(),
                operation: request.operation_name.clone(),
                variables: serde_json::to_string(&request.variables).unwrap_or_default(),
            },
        })
    }

    fn hit(&self, state: &HttpState) -> Option<Bytes> {
        state.cache.get(self.generation, &self.key)
    }
}

/// Runs an admitted request. Queries are cut at the request timeout; a mutation is not, as
/// its transaction may already be committed: cutting the wait would only hide the outcome.
/// A query's answer may come from, and go to, the response cache.
async fn run(
    state: &HttpState,
    request: async_graphql::Request,
    mutation: bool,
    lookup: Option<Lookup>,
) -> Response {
    let finish = |mut response: async_graphql::Response| {
        api::add_codes(&mut response);
        GraphQLResponse::from(response).into_response()
    };
    if mutation {
        let request = api::prepare(request, &state.app);
        return finish(state.schema.execute(request).await);
    }
    let request = api::prepare(request, &state.app);
    let response = match tokio::time::timeout(state.request_timeout, state.schema.execute(request))
        .await
    {
        Ok(response) => response,
        Err(_) => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                &format!(
                    "the query took longer than {} ms and was stopped: ask for smaller pages or fewer fields",
                    state.request_timeout.as_millis()
                ),
            );
        }
    };
    match lookup {
        Some(Lookup { generation, key }) if response.is_ok() => {
            match serde_json::to_vec(&response) {
                Ok(bytes) => {
                    let answer = Bytes::from(bytes);
                    state.cache.put(generation, key, answer.clone());
                    graphql_json(answer)
                }
                Err(_) => finish(response),
            }
        }
        _ => finish(response),
    }
}

/// A GraphQL answer already serialized, with the content type async-graphql-axum gives one.
fn graphql_json(answer: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/graphql-response+json"),
        )],
        answer,
    )
        .into_response()
}

fn unauthenticated(refusal: Refusal) -> Response {
    let (message, challenge) = match refusal {
        Refusal::Missing => (
            "this server needs a token: send `Authorization: Bearer <token>`",
            "Bearer realm=\"group-licensing\"",
        ),
        Refusal::Invalid => (
            "the token is not valid",
            "Bearer realm=\"group-licensing\", error=\"invalid_token\"",
        ),
    };
    let mut response = error_response(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static(challenge),
    );
    response
}

fn forbidden() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        "a reader token may only run queries: mutations need an admin token",
    )
}

/// `GET /graphql`: GraphiQL for a browser that asks for HTML without a query; otherwise the
/// query in the URL. Mutations are refused over GET (405): a link must never change data.
async fn graphql_get(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    // The GraphiQL page holds no data, so it is served to anyone; its queries carry the token.
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let Some(query) = params.get("query") else {
        if wants_html {
            return Html(graphiql::page(graphiql::ENDPOINT)).into_response();
        }
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "GET /graphql needs a `query` parameter (or use POST)",
        );
    };
    // Any role may query; mutations are refused over GET below, whoever asks.
    if let Err(refusal) = state.auth.role(&headers) {
        return unauthenticated(refusal);
    }
    let mut request = async_graphql::Request::new(query.clone());
    if let Some(name) = params.get("operationName") {
        request = request.operation_name(name.clone());
    }
    if let Some(variables) = params.get("variables") {
        match serde_json::from_str::<serde_json::Value>(variables) {
            Ok(v) => request = request.variables(async_graphql::Variables::from_json(v)),
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    &format!("`variables` is not JSON: {e}"),
                );
            }
        }
    }
    let shape = match api::limits::inspect(&request.query, request.operation_name.as_deref()) {
        Ok(shape) => shape,
        Err(refusal) => return refused(refusal),
    };
    if shape.mutation {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "mutations are not allowed over GET: send them with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return response;
    }
    let lookup = Lookup::new(&state, &request);
    if let Some(answer) = lookup.as_ref().and_then(|l| l.hit(&state)) {
        return graphql_json(answer);
    }
    run(&state, request, false, lookup).await
}

pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    (status, axum::Json(body)).into_response()
}

async fn healthz(State(state): State<HttpState>) -> Response {
    match state.app.store.read(store::read::work_pending).await {
        Ok(pending) => axum::Json(serde_json::json!({
            "status": "ok",
            "processing": if pending { "busy" } else { "idle" },
        }))
        .into_response(),
        Err(e) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            &e.to_string(),
        ),
    }
}

// Signals are registered before the server says it listens: a signal sent as soon as the
// address is printed must find its handler, not the default action (which, for SIGHUP and
// SIGTERM, ends the process on the spot).
#[cfg(unix)]
type Terminate = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Terminate = ();

async fn shutdown_signal(#[allow(unused_mut, unused_variables)] mut terminate: Terminate) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        terminate.recv().await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

/// SIGHUP re-reads the rules folder, as `reloadRules` does, and the token files, for rotation
/// without a restart.
#[cfg(unix)]
async fn reload_on_sighup(
    mut hangup: tokio::signal::unix::Signal,
    app: AppState,
    auth: Arc<Auth>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the rules");
                let _ = api::reload_rules(&app).await;
                match auth.reload() {
                    Ok((0, 0)) => {}
                    Ok((admins, readers)) => tracing::info!(admin_tokens = admins, reader_tokens = readers, "SIGHUP: tokens re-read"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: token files refused; keeping the tokens in force"),
                }
            }
            _ = stopped.changed() => return,
        }
    }
}
