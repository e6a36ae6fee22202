//! Webhook delivery (licensing.md N3): a worker beside processing that sends the outbox
//! (`store::webhooks`) to each webhook, in order, at least once.
//!
//! Each webhook with deliveries due gets a task of its own, which sends its queue's head,
//! records the attempt, and goes on to the next; so a slow or dead receiver holds up only its
//! own queue, never processing (which only writes outbox rows) or another webhook. A failed
//! attempt is retried after 1 s, then twice as long each time up to 10 minutes apart, for a
//! day; then the delivery is dropped and the next one's turn comes.
//!
//! Receivers are checked twice: the URL when the webhook is created ([`check_url`]), and every
//! address a connection goes to (a resolver that refuses private addresses, and the same check
//! of an address written in the URL), so a DNS answer changed later cannot reach the inside.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;

use crate::store::webhooks::{self, Due, Outcome};
use crate::store::{self, Store, history};
use crate::telemetry::Telemetry;

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry's delay; each next one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(600);
/// How long a delivery is retried before it is dropped.
const GIVE_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// How often the queues are looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);

/// Whether receivers on loopback and private networks (and `http`) are allowed
/// (`--webhook-allow-private`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    pub allow_private: bool,
}

/// Whether an address is one N3 keeps webhooks away from: loopback, link-local, private,
/// unspecified (and broadcast or multicast, which no receiver has).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                // 100.64.0.0/10, carrier-grade NAT: private in all but name.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// N3's checks of a webhook URL, with the DNS lookup of its host; the error says what to fix.
pub async fn check_url(raw: &str, settings: Settings) -> Result<reqwest::Url, String> {
    let url = parse_url(raw, settings)?;
    if settings.allow_private {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default().to_string();
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return refuse_private(ip, &host).map(|_| url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(addrs) => addrs.collect(),
        Err(_) => return Err(format!("the host `{host}` of the URL does not resolve")),
    };
    if found.is_empty() {
        return Err(format!("the host `{host}` of the URL does not resolve"));
    }
    for addr in found {
        refuse_private(addr.ip(), &host)?;
    }
    Ok(url)
}

fn refuse_private(ip: IpAddr, host: &str) -> Result<(), String> {
    if is_private(ip) {
        return Err(format!(
            "the URL's host `{host}` is (or resolves to) {ip}, a loopback, link-local, private or unspecified address; webhooks go to public receivers unless the server runs with --webhook-allow-private"
        ));
    }
    Ok(())
}

/// The checks that need no lookup.
fn parse_url(raw: &str, settings: Settings) -> Result<reqwest::Url, String> {
    if raw.len() > webhooks::MAX_URL {
        return Err(format!(
            "the URL is longer than {} characters",
            webhooks::MAX_URL
        ));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_private => {}
        "http" => {
            return Err(
                "the URL must be https (http only with --webhook-allow-private)".to_string(),
            );
        }
        other => return Err(format!("the URL must be https, not {other}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL must not hold a user name or password: the signature authenticates each delivery"
                .to_string(),
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_string());
    }
    Ok(url)
}

/// A resolver that drops private addresses: used for every connection unless they are
/// allowed.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_private(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client of every delivery: no redirects, no proxy (it would connect where the
/// checks cannot see), a timeout per attempt.
pub fn client(settings: Settings) -> Result<reqwest::Client, String> {
    // Installed once per process; a second call finds it installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("group-licensing/", env!("CARGO_PKG_VERSION")));
    if !settings.allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// The signature header's value (N3): HMAC-SHA256 keyed with the secret, of the timestamp, a
/// `.`, and the body, in lower-case hex.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes a key of any length.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs until `stopped` turns true.
pub async fn run(
    store: Store,
    settings: Settings,
    telemetry: Arc<Telemetry>,
    mut stopped: watch::Receiver<bool>,
) {
    let client = match client(settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks will not be delivered");
            return;
        }
    };
    let running: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let hub = store.hub().clone();
    loop {
        if *stopped.borrow() {
            break;
        }
        let mut wait = POLL;
        match store.read(webhooks::waiting).await {
            Ok(queues) => {
                let now = chrono::Utc::now();
                for (webhook, due_at) in queues {
                    let due = store::parse_time(&due_at).unwrap_or(now);
                    if due > now {
                        let until = (due - now).to_std().unwrap_or(POLL);
                        wait = wait.min(until);
                        continue;
                    }
                    let Ok(mut busy) = running.lock() else {
                        continue;
                    };
                    if !busy.insert(webhook) {
                        continue;
                    }
                    drop(busy);
                    let queue = Queue {
                        store: store.clone(),
                        client: client.clone(),
                        settings,
                        webhook,
                        running: running.clone(),
                        telemetry: telemetry.clone(),
                        stopped: stopped.clone(),
                    };
                    tokio::spawn(queue.drain());
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the webhook outbox failed; retrying"),
        }
        tokio::select! {
            _ = hub.outbox_filled() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// One webhook's queue being sent.
struct Queue {
    store: Store,
    client: reqwest::Client,
    settings: Settings,
    webhook: i64,
    running: Arc<Mutex<HashSet<i64>>>,
    telemetry: Arc<Telemetry>,
    stopped: watch::Receiver<bool>,
}

impl Queue {
    async fn drain(self) {
        loop {
            if *self.stopped.borrow() {
                break;
            }
            let webhook = self.webhook;
            let due = match self.store.read(move |c| webhooks::head(c, webhook)).await {
                Ok(Some(due)) => due,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, webhook, "reading the webhook outbox failed");
                    break;
                }
            };
            if due.next_attempt_at > store::now() {
                // Not due yet: the worker comes back for it.
                break;
            }
            let (at, outcome) = self.attempt(&due).await;
            let result = match &outcome {
                Outcome::Delivered { .. } => "delivered",
                Outcome::Failed { .. } => "failed",
                Outcome::Dropped { .. } => "dropped",
            };
            if let Outcome::Dropped { error, .. } = &outcome {
                tracing::warn!(webhook, delivery = %due.delivery_id(), %error, "webhook delivery dropped");
            }
            tracing::debug!(webhook, delivery = %due.delivery_id(), result, "webhook attempt");
            let record = due.clone();
            if let Err(e) = self
                .store
                .write(move |tx| webhooks::attempted(tx, &record, &at, &outcome))
                .await
            {
                tracing::error!(error = %e, webhook, "recording a webhook attempt failed");
                break;
            }
            // Once its outcome is stored: an attempt whose record failed is made again.
            self.telemetry.delivery(result);
        }
        if let Ok(mut busy) = self.running.lock() {
            busy.remove(&self.webhook);
        }
    }

    /// Sends `due` once; returns when it was tried and what came of it.
    async fn attempt(&self, due: &Due) -> (String, Outcome) {
        let body = match self.body(due).await {
            Ok(body) => body,
            Err(error) => {
                return (
                    store::now(),
                    Outcome::Dropped {
                        status: None,
                        error,
                    },
                );
            }
        };
        let at = store::now();
        let sent = self.send(due, &body).await;
        let outcome = match sent {
            Ok(status) if (200..300).contains(&status) => Outcome::Delivered { status },
            Ok(status) => self.retry(due, Some(status), format!("HTTP {status}")),
            Err(error) => self.retry(due, None, error),
        };
        (at, outcome)
    }

    /// The next attempt's time, or the drop of a delivery tried for a day.
    fn retry(&self, due: &Due, status: Option<i64>, error: String) -> Outcome {
        let now = chrono::Utc::now();
        let first = due
            .first_attempt_at
            .as_deref()
            .and_then(store::parse_time)
            .unwrap_or(now);
        if now - first >= GIVE_UP_AFTER {
            return Outcome::Dropped {
                status,
                error: format!("{error}; dropped after a day of retries"),
            };
        }
        let delay = FIRST_DELAY
            .saturating_mul(1u32 << due.attempts.clamp(0, 20))
            .min(MAX_DELAY);
        let retry_at =
            store::stored_time(now + chrono::TimeDelta::from_std(delay).unwrap_or_default());
        Outcome::Failed {
            status,
            error,
            retry_at,
        }
    }

    /// The JSON body `{"id", "type", "occurredDateTime", "data"}`.
    async fn body(&self, due: &Due) -> Result<String, String> {
        let (occurred, data) = match (&due.data, due.event) {
            (Some(data), _) => (store::graphql_time(&due.occurred_at), data.clone()),
            (None, Some((event, _))) => {
                let read = self
                    .store
                    .read(move |c| history::between(c, event, event))
                    .await
                    .map_err(|e| format!("reading audit event {event}: {e}"))?;
                let Some(row) = read.into_iter().next() else {
                    return Err(format!("audit event {event} is no longer in the history"));
                };
                (store::graphql_time(&row.at), row.to_json().to_string())
            }
            (None, None) => return Err("the delivery has no data".to_string()),
        };
        let text = |s: &str| serde_json::Value::String(s.to_string()).to_string();
        Ok(format!(
            "{{\"id\":{},\"type\":{},\"occurredDateTime\":{},\"data\":{data}}}",
            text(&due.delivery_id()),
            text(due.event_type.name()),
            text(&occurred)
        ))
    }

    /// POSTs the body, signed now; the status, or why there was none (never the receiver's
    /// words).
    async fn send(&self, due: &Due, body: &str) -> Result<i64, String> {
        // The URL was checked at creation; its address is checked again for this connection
        // (a host written as an address goes to no resolver).
        let url = parse_url(&due.url, self.settings)?;
        if !self.settings.allow_private
            && let Some(host) = url.host_str()
            && let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>()
        {
            refuse_private(ip, host)?;
        }
        let timestamp = chrono::Utc::now().timestamp();
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Group-Licensing-Event-Id", due.delivery_id())
            .header("X-Group-Licensing-Timestamp", timestamp.to_string())
            .header(
                "X-Group-Licensing-Signature",
                format!("sha256={}", signature(&due.secret, timestamp, body)),
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(i64::from(response.status().as_u16()))
    }
}

/// Why a request got no answer, from the client's error and its causes (none of which holds
/// the receiver's body, which is never read).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("timed out after {} s", ATTEMPT_TIMEOUT.as_secs());
    }
    let mut text = if error.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
