//! The HTTP server: `POST /graphql` (JSON), `GET /graphql?query=…` for queries, GraphiQL for
//! browsers, the admin console at `/`, `GET /healthz`, `GET /metrics` (Prometheus), SCIM
//! provisioning under `/scim/v2` (`crate::scim`), behind the Origin and Host rules of `guard`;
//! the processing worker beside it; SIGHUP reloads the rules; SIGTERM or ctrl-c shuts down
//! cleanly.

pub mod auth;
pub mod cache;
pub mod console;
pub mod demo;
pub mod export;
pub mod graphiql;
mod graphql;
pub mod guard;
mod metrics;
mod negotiate;
mod pages;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{Notify, watch};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::api::{self, ApiSchema, AppState};
use crate::rules::live::{LiveRules, Loaded};
use crate::rules::{self, Diagnostic, RulesError};
use crate::store::{self, Store, StoreError};
use auth::{Auth, AuthError, TokenSources};
use guard::{AllowedOrigin, Guard};
use negotiate::Media;

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
    /// Origins of pages elsewhere that may call the API (CORS), besides the server's own.
    pub allowed_origins: Vec<AllowedOrigin>,
    /// Users deleted over SCIM in an hour at most (scim.md "Access").
    pub scim_max_deletions_per_hour: u32,
    /// Days of history kept (H1); `None`: all of it.
    pub audit_retention_days: Option<u32>,
    /// Webhooks may go to http and to private addresses (N3).
    pub webhook_allow_private: bool,
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
    #[error("{0}")]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    #[error("demo data: {0}")]
    Demo(StoreError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
struct HttpState {
    schema: ApiSchema,
    /// The schema that only validates (`api::limits::validator`).
    validator: ApiSchema,
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
    // Tokens of any role, provisioning included: none means the tokenless, loopback-only server.
    let all_tokens = admins + readers + tokens.provisioning_count();
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
        webhooks: crate::processing::delivery::Settings {
            allow_private: config.webhook_allow_private,
        },
        telemetry: Arc::new(crate::telemetry::Telemetry::new()?),
    };
    let (stop, stopped) = watch::channel(false);
    // Alerts whose condition changed while the server was stopped (or before they existed)
    // are settled before anyone reads them.
    store
        .write(|tx| {
            let journal = store::history::Journal::open(
                tx,
                &store::history::Actor::system(),
                None,
                &store::now(),
            )?;
            journal.finish()
        })
        .await
        .map_err(|source| ServerError::Store {
            path: config.db.display().to_string(),
            source,
        })?;
    tokio::spawn(crate::processing::delivery::run(
        store.clone(),
        app.webhooks,
        app.telemetry.clone(),
        stopped.clone(),
    ));
    if let Some(days) = config.audit_retention_days {
        tokio::spawn(crate::processing::retention::run(
            store.clone(),
            days,
            stopped.clone(),
        ));
    }
    let worker = tokio::spawn(crate::processing::run(
        store.clone(),
        live,
        app.wake.clone(),
        app.telemetry.clone(),
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
    // Tests and scripts read the address from the start of this line; people, the rest.
    println!(
        "listening on http://{addr} (open {} in a browser)",
        browser_url(addr)
    );
    if all_tokens == 0 && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "--insecure: no tokens, and not on loopback: anyone reaching this address may change the data");
    } else if all_tokens == 0 {
        tracing::info!(%addr, "no tokens configured: every local request may read and change data");
    }
    tracing::info!(%addr, db = %config.db.display(), rules = %config.rules.display(), admin_tokens = admins, reader_tokens = readers, "serving");
    let cache = Arc::new(cache::ResponseCache::new(config.response_cache_bytes));
    let guard = Guard::new(
        config.allowed_origins.clone(),
        all_tokens == 0 && !config.insecure,
    );
    let scim = crate::scim::ScimState::new(
        app.clone(),
        auth.clone(),
        config.scim_max_deletions_per_hour,
    );
    axum::serve(
        listener,
        router(app, auth, config.request_timeout, cache, guard, scim),
    )
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

/// Where a person should point a browser: the address listened on, or loopback for an
/// address that stands for every interface.
fn browser_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}/", addr.port())
}

pub fn router(
    app: AppState,
    auth: Arc<Auth>,
    request_timeout: Duration,
    cache: Arc<cache::ResponseCache>,
    guard: Guard,
    scim: crate::scim::ScimState,
) -> Router {
    let telemetry = app.telemetry.clone();
    let state = HttpState {
        schema: api::schema(app.clone()),
        validator: api::limits::validator(),
        app,
        auth,
        request_timeout,
        cache,
    };
    let mut routes = Router::new()
        .route(
            "/graphql",
            get(graphql::get_or_subscribe).post(graphql::post),
        )
        .route("/healthz", get(healthz))
        .merge(export::router())
        .merge(metrics::router())
        .with_state(state)
        .merge(graphiql::router())
        .merge(console::router())
        .merge(pages::router())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // SCIM limits its bodies itself, to refuse them in its error schema.
        .merge(crate::scim::router(scim));
    // The guard runs first, so a refused origin never reaches CORS or a route; CORS then
    // answers the listed origins' preflights.
    if let Some(cors) = guard.cors() {
        routes = routes.layer(cors);
    }
    routes
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(guard),
            guard::check,
        ))
        // Outside the guard, so that its refusals are counted too.
        .layer(axum::middleware::from_fn_with_state(
            telemetry,
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
}

async fn healthz(State(state): State<HttpState>) -> Response {
    match state.app.store.read(store::read::work_pending).await {
        Ok(pending) => axum::Json(serde_json::json!({
            "status": "ok",
            "processing": if pending { "busy" } else { "idle" },
        }))
        .into_response(),
        Err(e) => graphql::error(
            Media::Json,
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
                // A signal comes from the machine itself (H3).
                let local = api::Acting::new(store::history::Actor::local());
                let _ = api::reload_rules(&app, &local).await;
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
