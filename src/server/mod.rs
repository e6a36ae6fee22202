//! The HTTP server: `POST /graphql` (JSON), `GET /graphql?query=…` for queries, GraphiQL for
//! browsers, `GET /healthz`; the processing worker beside it; SIGHUP reloads the rules;
//! SIGTERM or ctrl-c shuts down cleanly.

pub mod demo;
pub mod graphiql;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
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

/// Largest request body accepted (a query with its variables).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub struct Config {
    pub db: PathBuf,
    pub rules: PathBuf,
    pub listen: SocketAddr,
    pub demo: bool,
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
    #[error("demo data: {0}")]
    Demo(StoreError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
struct HttpState {
    schema: ApiSchema,
    app: AppState,
}

/// Loads the rules (refusing to start on any error), opens the database, starts the worker and
/// serves until SIGTERM or ctrl-c.
pub async fn serve(config: Config) -> Result<(), ServerError> {
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
    tokio::spawn(reload_on_sighup(app.clone(), stopped));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("listening on http://{addr}");
    tracing::info!(%addr, db = %config.db.display(), rules = %config.rules.display(), "serving");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown_signal())
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

pub fn router(app: AppState) -> Router {
    let state = HttpState {
        schema: api::schema(app.clone()),
        app,
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
    let request = api::prepare(request.into_inner(), &state.app);
    GraphQLResponse::from(state.schema.execute(request).await).into_response()
}

/// `GET /graphql`: GraphiQL for a browser that asks for HTML without a query; otherwise the
/// query in the URL. Mutations are refused over GET (405): a link must never change data.
async fn graphql_get(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
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
    if is_mutation(query, params.get("operationName").map(String::as_str)) {
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
    let request = api::prepare(request, &state.app);
    GraphQLResponse::from(state.schema.execute(request).await).into_response()
}

/// Whether the operation that would run is a mutation. A query that does not parse is left
/// to the executor, which reports the syntax error.
fn is_mutation(query: &str, operation: Option<&str>) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    document.operations.iter().any(|(name, op)| {
        let selected = match (operation, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            (Some(_), None) => false,
            (None, _) => true,
        };
        selected && op.node.ty == OperationType::Mutation
    })
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

/// SIGHUP re-reads the rules folder, as `reloadRules` does.
async fn reload_on_sighup(app: AppState, mut stopped: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the rules");
                    let _ = api::reload_rules(&app).await;
                }
                _ = stopped.changed() => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (app, stopped.changed().await);
    }
}

#[cfg(test)]
mod tests {
    use super::is_mutation;

    #[test]
    fn mutations_are_recognised_whatever_the_operation_chosen() {
        assert!(is_mutation("mutation { reloadRules { planCount } }", None));
        assert!(!is_mutation("{ rules { planCount } }", None));
        assert!(!is_mutation("query Q { rules { planCount } }", Some("Q")));
        assert!(is_mutation(
            "query Q { rules { planCount } } mutation M { reloadRules { planCount } }",
            Some("M")
        ));
        assert!(!is_mutation("not graphql {", None));
    }
}
