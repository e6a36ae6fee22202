//! The process's counters and histograms for `GET /metrics`: what happened since the server
//! started (members processed, steps, webhook attempts, rules reloads, HTTP requests). The
//! stored state (seats, users in error, the queue) is read from the store at each scrape
//! instead (`server::metrics`), so it is right after a restart too.
//!
//! A leaf of the crate: it knows none of the layers. Processing, the webhook worker, the API
//! and the HTTP server each get a handle and add to it after the work it counts is done (a
//! processing step once its transaction committed, a delivery once its outcome is stored).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder, proto::MetricFamily,
};

/// Every series name starts with this.
pub const NAMESPACE: &str = "group_licensing";

/// The outcomes of a webhook attempt, as `processing::delivery` names them.
pub const DELIVERY_RESULTS: [&str; 3] = ["delivered", "failed", "dropped"];
/// The outcomes of a rules reload.
pub const RELOAD_RESULTS: [&str; 2] = ["applied", "refused"];

/// Buckets of a processing step, in seconds: a step of 5,000 members takes tens of
/// milliseconds, one that waits on a slow disk seconds.
const STEP_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Buckets of an HTTP answer, in seconds (to its head: an export streams on after it).
const HTTP_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

pub struct Telemetry {
    registry: Registry,
    /// Members (and former members) a processing step went through.
    pub members_processed: IntCounter,
    /// Time of one processing step, from asking for the writer to its commit.
    pub step_seconds: Histogram,
    /// Webhook attempts by result (`DELIVERY_RESULTS`).
    pub webhook_deliveries: IntCounterVec,
    /// Rules reloads by result (`RELOAD_RESULTS`), by `reloadRules` or SIGHUP.
    pub rules_reloads: IntCounterVec,
    /// HTTP requests answered, by method, route and status.
    pub http_requests: IntCounterVec,
    /// Time to an HTTP answer's head, by method and route.
    pub http_seconds: HistogramVec,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
}

impl Telemetry {
    pub fn new() -> Result<Telemetry, TelemetryError> {
        let registry = Registry::new_custom(Some(NAMESPACE.to_string()), None)?;
        let members_processed = IntCounter::new(
            "members_processed_total",
            "Members and former members that processing steps went through since the server started.",
        )?;
        let step_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "processing_step_seconds",
                "Time of one processing step (one transaction of up to 5,000 members), from asking for the writer to the commit.",
            )
            .buckets(STEP_BUCKETS.to_vec()),
        )?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts by result: delivered (a 2xx answer), failed (to be retried), dropped (given up after a day, or the URL refused).",
            ),
            &["result"],
        )?;
        let rules_reloads = IntCounterVec::new(
            Opts::new(
                "rules_reloads_total",
                "Rules reloads (reloadRules or SIGHUP) by result: applied, or refused with the rules in force kept.",
            ),
            &["result"],
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by method, route (the route's pattern; unmatched for none) and status.",
            ),
            &["method", "route", "status"],
        )?;
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from an HTTP request to its answer's head, by method and route.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        registry.register(Box::new(members_processed.clone()))?;
        registry.register(Box::new(step_seconds.clone()))?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        registry.register(Box::new(rules_reloads.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_seconds.clone()))?;
        // Series that exist from the start, at 0: a rate or an alert on them needs no special
        // case for "never happened yet".
        for result in DELIVERY_RESULTS {
            webhook_deliveries.with_label_values(&[result]);
        }
        for result in RELOAD_RESULTS {
            rules_reloads.with_label_values(&[result]);
        }
        Ok(Telemetry {
            registry,
            members_processed,
            step_seconds,
            webhook_deliveries,
            rules_reloads,
            http_requests,
            http_seconds,
        })
    }

    /// A webhook attempt came to `result` (one of `DELIVERY_RESULTS`).
    pub fn delivery(&self, result: &str) {
        self.webhook_deliveries.with_label_values(&[result]).inc();
    }

    /// A rules reload was applied (true) or refused.
    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "refused" };
        self.rules_reloads.with_label_values(&[result]).inc();
    }

    /// Prometheus' text format (version 0.0.4) of this process's series and of `state`
    /// (series read at the scrape), sorted by name.
    pub fn render(&self, state: Vec<MetricFamily>) -> Result<String, TelemetryError> {
        let mut families = self.registry.gather();
        // A family with no series (no product bought yet) is left out: the format has no way
        // to say "none", and the encoder refuses it.
        families.extend(state.into_iter().filter(|f| !f.get_metric().is_empty()));
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out).map_err(|e| {
            TelemetryError::Prometheus(prometheus::Error::Msg(format!(
                "the text format is not UTF-8: {e}"
            )))
        })
    }
}

/// The content type of [`Telemetry::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_that_never_moved_are_there_at_zero() {
        let t = Telemetry::new().expect("the series register");
        let text = t.render(Vec::new()).expect("rendered");
        for line in [
            "group_licensing_webhook_deliveries_total{result=\"dropped\"} 0",
            "group_licensing_rules_reloads_total{result=\"refused\"} 0",
            "group_licensing_members_processed_total 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        t.reload(false);
        t.delivery("delivered");
        t.members_processed.inc_by(7);
        let text = t.render(Vec::new()).expect("rendered");
        for line in [
            "group_licensing_rules_reloads_total{result=\"refused\"} 1",
            "group_licensing_webhook_deliveries_total{result=\"delivered\"} 1",
            "group_licensing_members_processed_total 7",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
