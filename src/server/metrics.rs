//! `GET /metrics`: Prometheus' text format (graphql-api.md, "HTTP"). The process's counters
//! come from `crate::telemetry`; the stored state from one snapshot read at the scrape
//! (`store::gauges`), so that a scrape agrees with what GraphQL answers at the same moment.
//! Admin and reader tokens may read it (a provisioning token may not), as they may read the
//! same figures over GraphQL.
//!
//! Also the middleware that counts HTTP requests by method, route and status and times them.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, IntGaugeVec, Opts};

use super::HttpState;
use super::auth::Role;
use super::graphql::{error, provisioning_refused, unauthenticated};
use super::negotiate::Media;
use crate::engine::ErrorCode;
use crate::rules::RuleTable;
use crate::store::gauges::{self, Gauges};
use crate::telemetry::{self, NAMESPACE, Telemetry, TelemetryError};

pub(super) fn router() -> Router<HttpState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    match state.auth.role(&headers) {
        Ok(Role::Admin | Role::Reader) => {}
        Ok(Role::Provisioning) => return provisioning_refused(Media::Json),
        Err(refusal) => return unauthenticated(Media::Json, refusal),
    }
    let table = state.app.rules.table();
    let read = state.app.store.snapshot(gauges::read).await;
    let text = match read {
        Ok((stored, _)) => stored_families(&stored, &table)
            .and_then(|families| state.app.telemetry.render(families)),
        Err(e) => {
            tracing::error!(error = %e, "metrics: reading the store");
            return error(
                Media::Json,
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                &format!("the metrics could not be read: {e}"),
            );
        }
    };
    match text {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(telemetry::CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics: encoding");
            error(
                Media::Json,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                &e.to_string(),
            )
        }
    }
}

/// The series of the stored state. Products of the rules in force that are bought or used
/// only, as `products(boughtOrUsed: true)` lists them; every error code, at 0 when no user has
/// it, so that an alert rule on a code needs no special case for its absence.
fn stored_families(g: &Gauges, table: &RuleTable) -> Result<Vec<MetricFamily>, TelemetryError> {
    let per_product = |name: &str, help: &str| {
        IntGaugeVec::new(
            Opts::new(name, help).namespace(NAMESPACE),
            &["sku_part_number"],
        )
    };
    let prepaid = per_product(
        "prepaid_units",
        "Seats bought of the product (setPrepaidUnits), per product bought or used.",
    )?;
    let consumed = per_product(
        "consumed_units",
        "Users holding the product, directly or through groups (L1).",
    )?;
    let available = per_product(
        "available_units",
        "Seats left for new holders: prepaid minus consumed, never below 0 (L3).",
    )?;
    for id in table.product_ids() {
        let name = table.product(id).name.as_str();
        let (bought, used) = g.seats.get(name).copied().unwrap_or((0, 0));
        if bought <= 0 && used <= 0 {
            continue;
        }
        prepaid.with_label_values(&[name]).set(bought);
        consumed.with_label_values(&[name]).set(used);
        available
            .with_label_values(&[name])
            .set((bought - used).max(0));
    }
    let users_in_error = IntGaugeVec::new(
        Opts::new(
            "users_in_error",
            "Users with at least one assignment (from a group or direct) in error with the code.",
        )
        .namespace(NAMESPACE),
        &["code"],
    )?;
    for code in ErrorCode::ALL {
        let name = code.graphql_name();
        users_in_error
            .with_label_values(&[name])
            .set(g.users_in_error.get(name).copied().unwrap_or(0));
    }
    let single = |name: &str, help: &str, value: i64| -> Result<IntGauge, TelemetryError> {
        let gauge = IntGauge::with_opts(Opts::new(name, help).namespace(NAMESPACE))?;
        gauge.set(value);
        Ok(gauge)
    };
    let mut families = Vec::new();
    for vec in [prepaid, consumed, available, users_in_error] {
        families.extend(prometheus::core::Collector::collect(&vec));
    }
    for gauge in [
        single(
            "groups_in_error",
            "Groups with at least one user in error (Q2).",
            g.groups_in_error,
        )?,
        single(
            "queue_items",
            "Items of the durable processing queue (P8): the queue's depth.",
            g.work_items,
        )?,
        single(
            "groups_in_progress",
            "Groups whose processing run has started (IN_PROGRESS, P9).",
            g.groups_in_progress,
        )?,
        single(
            "groups_queued",
            "Groups with processing queued and not started (QUEUED, P9).",
            g.groups_queued,
        )?,
    ] {
        families.extend(prometheus::core::Collector::collect(&gauge));
    }
    Ok(families)
}

/// Methods by name; anything else is `other`, so that a client cannot grow the series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request. The route is the pattern it matched (`/scim/v2/Users/{id}`,
/// never the id), or `unmatched`, so that the series stay few whatever paths clients send.
pub(super) async fn track(
    State(telemetry): State<Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    telemetry
        .http_seconds
        .with_label_values(&[method, &route])
        .observe(started.elapsed().as_secs_f64());
    telemetry
        .http_requests
        .with_label_values(&[method, &route, response.status().as_str()])
        .inc();
    response
}
