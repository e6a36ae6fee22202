//! Notices (licensing.md N) through the real server:
//!
//! - N1, N2: each alert kind raised once when its condition starts to hold and resolved once
//!   when it stops, through a sequence of changes, each audited;
//! - N3: webhooks delivered to a receiver on loopback (the test's own HTTP server): the body,
//!   headers and signature verified here with the `hmac` crate, order kept, retries after the
//!   receiver answers 500 and after a restart of the server, nothing lost and nothing for a
//!   rolled-back change; URLs refused as N3 says, one row per case;
//! - N4: a `graphql-transport-ws` client (tokio-tungstenite, written to the protocol) follows a
//!   100,000-member run to its final `COMPLETE`, gets alerts and audit events as they commit,
//!   and is closed when its token is removed by a SIGHUP.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Server, fresh, generate_tenant, int, license, str_of};
use crate::scim::{ADMIN, READER, with_tokens};

const E3: &str = "ENTERPRISEPACK";

fn alerts(s: &Server) -> Vec<Value> {
    s.ok(
        "{ alerts(first: 100) { totalCount edges { node { id kind raisedDateTime resolvedDateTime message product { skuPartNumber } group { id } } } } }",
        json!({}),
    )["alerts"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// `(kind, subject, standing)` of every alert, oldest first.
fn alert_summary(s: &Server) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = alerts(s)
        .iter()
        .map(|a| {
            let subject = if a["product"].is_null() {
                format!("group {}", str_of(&a["group"]["id"]))
            } else {
                str_of(&a["product"]["skuPartNumber"])
            };
            (str_of(&a["kind"]), subject, a["resolvedDateTime"].is_null())
        })
        .collect();
    out.reverse();
    out
}

fn alert_events(s: &Server) -> Vec<String> {
    let events = s.ok(
        "{ auditEvents(first: 100, category: NOTIFICATIONS) { edges { node { activityDisplayName targetResources { id modifiedProperties { displayName } } } } } }",
        json!({}),
    )["auditEvents"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<String> = events
        .iter()
        .map(|e| {
            let node = &e["node"];
            let target = &node["targetResources"][0];
            format!(
                "{} {} {}",
                str_of(&node["activityDisplayName"]),
                str_of(&target["modifiedProperties"][0]["displayName"]),
                str_of(&target["id"])
            )
        })
        .collect();
    out.reverse();
    out
}

fn set_threshold(s: &Server, sku: &str, threshold: Value) -> Value {
    s.ok(
        "mutation($s: String!, $t: Int) { setSeatAlertThreshold(skuPartNumber: $s, threshold: $t) { skuPartNumber seatAlertThreshold availableUnits } }",
        json!({ "s": sku, "t": threshold }),
    )["setSeatAlertThreshold"]
        .clone()
}

#[test]
fn n1_n2_each_alert_kind_is_raised_once_and_resolved_once() {
    let f = fresh();
    let s = &f.server;
    let group = s.create_group("Sales");
    let users: Vec<String> = (0..3)
        .map(|i| s.create_user(&format!("u{i}@contoso.com"), Some("US")))
        .collect();
    let ids: Vec<&str> = users.iter().map(String::as_str).collect();
    s.set_prepaid(E3, 2);
    // N1: LOW_SEATS needs a threshold; with 2 seats and none used, 2 are available.
    let product = set_threshold(s, E3, json!(1));
    assert_eq!(product["seatAlertThreshold"], 1);
    assert!(
        alerts(s).is_empty(),
        "2 available, above the threshold of 1"
    );
    s.add_members(&group, &ids);
    s.assign_group(&group, json!([license(E3, &[])]), &[]);
    s.wait_complete(&group);
    // Two seats for three members: none left (LOW_SEATS), one COUNT_VIOLATION
    // (SEATS_EXHAUSTED), a member in error (LICENSE_ERRORS).
    let g = format!("group {group}");
    let raised = vec![
        ("LOW_SEATS".to_string(), E3.to_string(), true),
        ("SEATS_EXHAUSTED".to_string(), E3.to_string(), true),
        ("LICENSE_ERRORS".to_string(), g.clone(), true),
    ];
    let mut got = alert_summary(s);
    got.sort();
    let mut want = raised.clone();
    want.sort();
    assert_eq!(got, want);
    let exhausted = alerts(s)
        .into_iter()
        .find(|a| a["kind"] == "SEATS_EXHAUSTED")
        .expect("SEATS_EXHAUSTED");
    assert_eq!(
        str_of(&exhausted["message"]),
        "ENTERPRISEPACK: out of seats: 1 assignment could not be given one (COUNT_VIOLATION); 2 bought, 2 used"
    );
    // N2: standing alerts do not repeat, however often the condition is seen again.
    s.reprocess_group(&group);
    s.wait_complete(&group);
    s.set_prepaid(E3, 2);
    assert_eq!(alert_summary(s).len(), 3);
    // Seats bought and the group processed again: all three stop holding, each resolved once.
    s.set_prepaid(E3, 10);
    s.reprocess_group(&group);
    s.wait_complete(&group);
    let resolved = alert_summary(s);
    assert_eq!(resolved.len(), 3, "{resolved:?}");
    assert!(resolved.iter().all(|a| !a.2), "{resolved:?}");
    // A threshold raised above what is available raises a new LOW_SEATS (7 available ≤ 8);
    // cleared, it resolves.
    set_threshold(s, E3, json!(8));
    let now = alert_summary(s);
    assert_eq!(now.len(), 4);
    assert_eq!(now[3], ("LOW_SEATS".to_string(), E3.to_string(), true));
    let product = set_threshold(s, E3, Value::Null);
    assert!(product["seatAlertThreshold"].is_null());
    assert!(alert_summary(s).iter().all(|a| !a.2));
    let standing = s.ok("{ alerts(active: true) { totalCount } }", json!({}));
    assert_eq!(standing["alerts"]["totalCount"], 0);
    let all = s.ok(
        "{ a: alerts(active: false) { totalCount } b: alerts { totalCount } }",
        json!({}),
    );
    assert_eq!(
        (int(&all["a"]["totalCount"]), int(&all["b"]["totalCount"])),
        (4, 4)
    );
    // N2: every raise and resolve is audited, once, with the threshold changes.
    let events = alert_events(s);
    let count = |prefix: &str| events.iter().filter(|e| e.starts_with(prefix)).count();
    assert_eq!(count("Raise alert"), 4, "{events:?}");
    assert_eq!(count("Resolve alert"), 4, "{events:?}");
    assert_eq!(count("Set seat alert threshold"), 3, "{events:?}");
    assert!(events.contains(&format!("Raise alert LICENSE_ERRORS {group}")));
    // A refused threshold changes nothing and is recorded as a failure.
    let error = s.err(
        "mutation { setSeatAlertThreshold(skuPartNumber: \"ENTERPRISEPACK\", threshold: -1) { seatAlertThreshold } }",
        json!({}),
    );
    assert_eq!(crate::harness::code(&error), "BAD_USER_INPUT");
    let unknown = s.err(
        "mutation { setSeatAlertThreshold(skuPartNumber: \"NOPE\", threshold: 1) { seatAlertThreshold } }",
        json!({}),
    );
    assert_eq!(crate::harness::code(&unknown), "BAD_USER_INPUT");
    assert!(set_threshold(s, E3, Value::Null)["seatAlertThreshold"].is_null());
}

// ---- Webhooks -------------------------------------------------------------------------------

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver on loopback: records every request and answers with `status` (500 to
/// the next `failing` requests).
pub struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<std::sync::atomic::AtomicU16>,
    failing: Arc<std::sync::atomic::AtomicU64>,
    /// Milliseconds the receiver waits before it answers.
    delay: Arc<std::sync::atomic::AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let delay = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failing = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (g, st, d, f) = (got.clone(), status.clone(), delay.clone(), failing.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (g, st, d, f) = (g.clone(), st.clone(), d.clone(), f.clone());
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let fail = f.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok();
                    let headers = headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    g.lock().expect("lock").push(Received { headers, body });
                    let wait = d.load(std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    let code = if fail { 500 } else { st.load(SeqCst) };
                    (
                        axum::http::StatusCode::from_u16(code).expect("status"),
                        "receiver says: this text must never be stored",
                    )
                }
            }),
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            got,
            status,
            failing,
            delay,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next `n` requests are answered 500, whatever the status set.
    pub fn fail_next(&self, n: u64) {
        self.failing.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    fn set_status(&self, code: u16) {
        self.status.store(code, std::sync::atomic::Ordering::SeqCst);
    }

    fn set_delay(&self, ms: u64) {
        self.delay.store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits until `done` holds of what was received.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the receiver did not get {what}: {} requests: {:?}",
                got.len(),
                audit_ids(&got)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Checks N3's headers and signature of one delivery with the webhook's secret.
fn verify(r: &Received, secret: &str) {
    let timestamp = r.header("X-Group-Licensing-Timestamp").expect("timestamp");
    let signature = r.header("X-Group-Licensing-Signature").expect("signature");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.{}", r.body).as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature, format!("sha256={hex}"));
    let ts: i64 = timestamp.parse().expect("Unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!((now - ts).abs() < 120, "signed at the attempt");
    let body = r.json();
    assert_eq!(
        r.header("X-Group-Licensing-Event-Id"),
        body["id"].as_str(),
        "the event id header is the body's id"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let keys: BTreeSet<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["data", "id", "occurredDateTime", "type"])
    );
}

pub fn create_webhook(s: &Server, url: &str, events: Value) -> (String, String) {
    let created = s.ok(
        "mutation($u: String!, $e: [WebhookEventType!]!) { createWebhook(url: $u, events: $e, description: \"test\") { secret webhook { id url events pendingDeliveries lastDelivery { statusCode } } } }",
        json!({ "u": url, "e": events }),
    )["createWebhook"]
        .clone();
    assert_eq!(created["webhook"]["url"], url);
    assert!(created["webhook"]["lastDelivery"].is_null());
    (
        str_of(&created["webhook"]["id"]),
        str_of(&created["secret"]),
    )
}

/// Every audit event's id, oldest first.
fn all_event_ids(s: &Server) -> Vec<String> {
    let mut ids: Vec<String> = s
        .all_pages(
            "query($after: String) { auditEvents(first: 1000, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            "auditEvents",
        )
        .iter()
        .map(|e| str_of(&e["node"]["id"]))
        .collect();
    ids.reverse();
    ids
}

fn audit_ids(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(Received::json)
        .filter(|b| b["type"] == "AUDIT_EVENT")
        .map(|b| str_of(&b["data"]["id"]))
        .collect()
}

#[test]
fn n3_webhooks_are_signed_ordered_retried_and_survive_a_restart() {
    let receiver = Receiver::start();
    let dir = tempfile::TempDir::new().expect("dir");
    let db = dir.path().join("w.db");
    let rules = crate::harness::scenario_rules();
    let s = Server::start_with(&db, &rules, &["--webhook-allow-private"]);
    let (webhook, secret) = create_webhook(
        &s,
        &receiver.url(),
        json!([
            "AUDIT_EVENT",
            "ALERT_RAISED",
            "ALERT_RESOLVED",
            "GROUP_PROCESSING_COMPLETE"
        ]),
    );
    let group = s.create_group("Sales");
    let ann = s.create_user("ann@contoso.com", Some("US"));
    s.add_members(&group, &[&ann]);
    s.set_prepaid(E3, 0);
    s.assign_group(&group, json!([license(E3, &[])]), &[]);
    s.wait_complete(&group);
    // A rolled-back change: the failure's own event is delivered, the change's never.
    let refused = s.err(
        "mutation { createUser(input: { userPrincipalName: \"not an address\", displayName: \"X\" }) { id } }",
        json!({}),
    );
    assert_eq!(crate::harness::code(&refused), "BAD_USER_INPUT");
    let expected = all_event_ids(&s);
    let got = receiver.wait_for("every audit event", |got| {
        audit_ids(got).len() >= expected.len()
            && got
                .iter()
                .any(|r| r.json()["type"] == "GROUP_PROCESSING_COMPLETE")
    });
    // Each once, in order (ids grow), nothing else: no event of the rolled-back user.
    assert_eq!(audit_ids(&got), expected);
    for r in &got {
        verify(r, &secret);
    }
    let bodies: Vec<Value> = got.iter().map(Received::json).collect();
    let failed = bodies
        .iter()
        .find(|b| b["type"] == "AUDIT_EVENT" && b["data"]["result"] == "FAILURE")
        .expect("the failure's event");
    assert_eq!(failed["data"]["activityDisplayName"], "Add user");
    // An audit event's data is the AuditEvent as GraphQL writes it.
    let first = &bodies[0];
    let id = str_of(&first["data"]["id"]);
    let graphql = s.ok(
        "{ auditEvents(first: 1000) { edges { node { id activityDateTime category activityDisplayName initiatedBy { kind name } targetResources { type id displayName modifiedProperties { displayName oldValue newValue } } result resultReason correlationId } } } }",
        json!({}),
    )["auditEvents"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .find(|n| str_of(&n["id"]) == id)
        .expect("the event");
    assert_eq!(first["data"], graphql);
    assert_eq!(first["occurredDateTime"], graphql["activityDateTime"]);
    // Processing complete, and the alerts of a product without seats.
    let complete = bodies
        .iter()
        .find(|b| b["type"] == "GROUP_PROCESSING_COMPLETE")
        .expect("complete");
    assert_eq!(complete["data"]["group"]["id"], group.as_str());
    assert_eq!(complete["data"]["licenseProcessingState"], "COMPLETE");
    assert_eq!(complete["data"]["licenseErrorCount"], 1);
    let raised: BTreeSet<String> = bodies
        .iter()
        .filter(|b| b["type"] == "ALERT_RAISED")
        .map(|b| str_of(&b["data"]["kind"]))
        .collect();
    assert_eq!(
        raised,
        BTreeSet::from(["LICENSE_ERRORS".to_string(), "SEATS_EXHAUSTED".to_string()])
    );
    // The receiver fails: the delivery waits, is retried, and the failure shows, without the
    // receiver's words.
    receiver.set_status(500);
    let before = receiver.received().len();
    s.set_prepaid(E3, 5);
    let got = receiver.wait_for("two attempts of the next delivery", |got| {
        got.len() >= before + 2
    });
    assert_eq!(
        got[before].body,
        got[before + 1].body,
        "the same delivery again"
    );
    assert_eq!(
        got[before].header("X-Group-Licensing-Event-Id"),
        got[before + 1].header("X-Group-Licensing-Event-Id")
    );
    let state = s.ok(
        "{ webhooks { id pendingDeliveries lastDelivery { eventType statusCode error } } }",
        json!({}),
    )["webhooks"][0]
        .clone();
    assert_eq!(state["id"], webhook.as_str());
    assert_eq!(state["lastDelivery"]["statusCode"], 500);
    assert_eq!(state["lastDelivery"]["error"], "HTTP 500");
    assert!(int(&state["pendingDeliveries"]) >= 1);
    // Stopped while deliveries wait, more changes, and a restart: nothing is lost.
    drop(s);
    receiver.set_status(200);
    let s = Server::start_with(&db, &rules, &["--webhook-allow-private"]);
    s.reprocess_group(&group);
    s.wait_complete(&group);
    let expected = all_event_ids(&s);
    let got = receiver.wait_for("every audit event after the restart", |got| {
        let ids: BTreeSet<String> = audit_ids(got).into_iter().collect();
        expected.iter().all(|id| ids.contains(id))
    });
    // At least once: repeats are of one delivery id, and in order (first sight).
    let mut seen: Vec<String> = Vec::new();
    for id in audit_ids(&got) {
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    assert_eq!(seen, expected);
    for r in &got {
        verify(r, &secret);
    }
    let state = s.ok(
        "{ webhooks { pendingDeliveries lastDelivery { statusCode error } } }",
        json!({}),
    )["webhooks"][0]
        .clone();
    assert_eq!(state["lastDelivery"]["statusCode"], 200);
    assert!(state["lastDelivery"]["error"].is_null());
    // Deleted: nothing more goes to it.
    let deleted = s.ok(
        "mutation($id: ID!) { deleteWebhook(id: $id) }",
        json!({ "id": webhook }),
    );
    assert_eq!(deleted["deleteWebhook"], webhook.as_str());
    std::thread::sleep(Duration::from_millis(300));
    let count = receiver.received().len();
    s.create_user("bob@contoso.com", None);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), count);
    assert_eq!(
        s.ok("{ webhooks { id } }", json!({}))["webhooks"],
        json!([])
    );
}

#[test]
fn n3_a_slow_receiver_holds_up_neither_processing_nor_another_webhook() {
    let slow = Receiver::start();
    let quick = Receiver::start();
    // Slower than an attempt may take (10 s): every attempt to it times out.
    slow.set_delay(12_000);
    let dir = tempfile::TempDir::new().expect("dir");
    let s = Server::start_with(
        &dir.path().join("s.db"),
        &crate::harness::scenario_rules(),
        &["--webhook-allow-private"],
    );
    let (slow_id, _) = create_webhook(&s, &slow.url(), json!(["AUDIT_EVENT"]));
    create_webhook(&s, &quick.url(), json!(["AUDIT_EVENT"]));
    let started = Instant::now();
    let group = s.create_group("Sales");
    let users: Vec<String> = (0..20)
        .map(|i| s.create_user(&format!("s{i}@contoso.com"), Some("US")))
        .collect();
    let ids: Vec<&str> = users.iter().map(String::as_str).collect();
    s.set_prepaid(E3, 100);
    s.add_members(&group, &ids);
    s.assign_group(&group, json!([license(E3, &[])]), &[]);
    s.wait_complete(&group);
    let processed = started.elapsed();
    let all = all_event_ids(&s);
    // The first, the slow webhook's creation, was written before the quick one existed.
    let expected = all[1..].to_vec();
    let got = quick.wait_for("every event at the quick receiver", |got| {
        audit_ids(got).len() >= expected.len()
    });
    let delivered = started.elapsed();
    assert_eq!(audit_ids(&got), expected);
    // The slow receiver has had one attempt at most meanwhile (its first is still waiting).
    assert!(
        slow.received().len() <= 1,
        "{} {:?} after {:?}",
        slow.received().len(),
        audit_ids(&slow.received()),
        started.elapsed()
    );
    assert!(
        processed < Duration::from_secs(8) && delivered < Duration::from_secs(8),
        "processing took {processed:?} and the quick webhook's deliveries {delivered:?}, beside a receiver that never answers in time"
    );
    let pending = s.ok("{ webhooks { id pendingDeliveries } }", json!({}))["webhooks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let slow_pending = pending
        .iter()
        .find(|w| w["id"] == slow_id.as_str())
        .map(|w| int(&w["pendingDeliveries"]))
        .unwrap_or(0);
    assert_eq!(
        slow_pending,
        all.len() as i64,
        "nothing lost for the slow one"
    );
}

#[test]
fn n3_webhook_urls_are_refused_as_n3_says() {
    let f = fresh();
    let s = &f.server;
    // (url, events, the message's words: for an address, the one it is refused for) —
    // without --webhook-allow-private.
    let rows: &[(&str, Value, &str)] = &[
        (
            "http://example.com/hook",
            json!(["AUDIT_EVENT"]),
            "must be https",
        ),
        (
            "https://127.0.0.1/hook",
            json!(["AUDIT_EVENT"]),
            "is (or resolves to) 127.0.0.1,",
        ),
        (
            "https://[::1]/hook",
            json!(["AUDIT_EVENT"]),
            "is (or resolves to) ::1,",
        ),
        (
            "https://10.1.2.3/hook",
            json!(["AUDIT_EVENT"]),
            "is (or resolves to) 10.1.2.3,",
        ),
        (
            "https://192.168.0.10/hook",
            json!(["AUDIT_EVENT"]),
            "is (or resolves to) 192.168.0.10,",
        ),
        (
            "https://169.254.169.254/latest",
            json!(["AUDIT_EVENT"]),
            "is (or resolves to) 169.254.169.254,",
        ),
        (
            "https://0.0.0.0/hook",
            json!(["AUDIT_EVENT"]),
            "is (or resolves to) 0.0.0.0,",
        ),
        (
            "https://localhost/hook",
            json!(["AUDIT_EVENT"]),
            "host `localhost` is (or resolves to)",
        ),
        (
            "ftp://example.com/hook",
            json!(["AUDIT_EVENT"]),
            "must be https",
        ),
        ("not a url", json!(["AUDIT_EVENT"]), "not a URL"),
        (
            "https://user:pw@example.com/hook",
            json!(["AUDIT_EVENT"]),
            "user name or password",
        ),
        (
            "https://93.184.215.14/hook",
            json!([]),
            "at least one event type",
        ),
    ];
    for (url, events, words) in rows {
        let error = s.err(
            "mutation($u: String!, $e: [WebhookEventType!]!) { createWebhook(url: $u, events: $e) { secret } }",
            json!({ "u": url, "e": events }),
        );
        assert_eq!(crate::harness::code(&error), "BAD_USER_INPUT", "{url}");
        let message = str_of(&error["message"]);
        assert!(message.contains(words), "{url}: {message}");
    }
    assert_eq!(
        s.ok("{ webhooks { id } }", json!({}))["webhooks"],
        json!([])
    );
    let refused = s.ok(
        "{ auditEvents(category: NOTIFICATIONS, result: FAILURE) { totalCount } }",
        json!({}),
    );
    assert_eq!(
        int(&refused["auditEvents"]["totalCount"]),
        rows.len() as i64
    );
    let missing = s.err("mutation { deleteWebhook(id: \"42\") }", json!({}));
    assert_eq!(crate::harness::code(&missing), "NOT_FOUND");
}

// ---- Subscriptions --------------------------------------------------------------------------

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a `graphql-transport-ws` connection and sends `connection_init` with `token`.
async fn connect(s: &Server, token: Option<&str>) -> Result<Socket, String> {
    let url = s.url("/graphql").replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    let payload = match token {
        Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    match next(&mut socket).await {
        Some(m) if m["type"] == "connection_ack" => Ok(socket),
        other => Err(format!("{other:?}")),
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// The next protocol message (pings answered); `None` when the connection closed.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(120), socket.next())
            .await
            .ok()??
            .ok()?;
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).ok()?;
                if value["type"] == "ping" {
                    send(socket, json!({ "type": "pong" })).await;
                    continue;
                }
                return Some(value);
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
    )
    .await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

const PROGRESS: &str = "subscription($g: ID!) { groupProcessing(groupId: $g) { group { id displayName } licenseProcessingState processedMembers membersToProcess licenseErrorCount } }";

#[test]
fn n4_a_subscriber_follows_a_100000_member_run_to_complete() {
    let members: u64 = 100_000;
    let dir = tempfile::TempDir::new().expect("dir");
    let db = dir.path().join("big.db");
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    generate_tenant(&db, members, &rules);
    let s = Server::start(&db, &rules);
    let big = s.ok("{ groups(first: 1) { edges { node { id } } } }", json!({}))["groups"]["edges"]
        [0]["node"]["id"]
        .clone();
    let big = str_of(&big);
    let rt = runtime();
    rt.block_on(async {
        let mut socket = connect(&s, None).await.expect("connected");
        subscribe(&mut socket, "p", PROGRESS, json!({ "g": big })).await;
        // The state at once, before any run.
        let first = next(&mut socket).await.expect("the current state");
        assert_eq!(first["type"], "next", "{first}");
        assert_eq!(first["id"], "p");
        let first = &first["payload"]["data"]["groupProcessing"];
        assert_eq!(first["licenseProcessingState"], "COMPLETE");
        assert_eq!(first["group"]["id"], big.as_str());
        s.reprocess_group(&big);
        let mut updates: Vec<(Instant, Value)> = Vec::new();
        loop {
            let m = next(&mut socket).await.expect("an update");
            assert_eq!(m["type"], "next", "{m}");
            let u = m["payload"]["data"]["groupProcessing"].clone();
            let done = u["licenseProcessingState"] == "COMPLETE";
            updates.push((Instant::now(), u));
            if done {
                break;
            }
        }
        let last = &updates.last().expect("updates").1;
        assert_eq!(int(&last["processedMembers"]), members as i64);
        assert_eq!(int(&last["membersToProcess"]), members as i64);
        let g = s.group(&big);
        assert_eq!(last["licenseErrorCount"], g["licenseErrorCount"]);
        // Progress in between, rising, never faster than one message per 250 ms.
        let running: Vec<&(Instant, Value)> = updates
            .iter()
            .filter(|(_, u)| u["licenseProcessingState"] == "IN_PROGRESS")
            .collect();
        assert!(
            !running.is_empty(),
            "progress while the run went: {updates:?}"
        );
        let processed: Vec<i64> = updates
            .iter()
            .map(|(_, u)| int(&u["processedMembers"]))
            .collect();
        assert!(processed.windows(2).all(|w| w[0] <= w[1]), "{processed:?}");
        for pair in running.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(gap >= Duration::from_millis(200), "updates {gap:?} apart");
        }
        send(&mut socket, json!({ "id": "p", "type": "complete" })).await;
    });
}

#[test]
fn n4_alerts_and_audit_events_stream_and_a_removed_token_closes_them() {
    let dir = tempfile::TempDir::new().expect("dir");
    let s = with_tokens(dir.path(), &[]);
    let rt = runtime();
    rt.block_on(async {
        assert!(connect(&s, None).await.is_err(), "no token: refused");
        assert!(connect(&s, Some("unknown-token-0123456789")).await.is_err());
        // The reader role may subscribe, but never run a mutation over the socket.
        let mut socket = connect(&s, Some(READER)).await.expect("a reader connects");
        subscribe(&mut socket, "m", "mutation { createGroup(input: { displayName: \"X\" }) { id } }", json!({})).await;
        let refused = next(&mut socket).await.expect("an answer");
        assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{refused}");
        let done = next(&mut socket).await.expect("its end");
        assert_eq!((done["type"].as_str(), done["id"].as_str()), (Some("complete"), Some("m")));
        subscribe(&mut socket, "a", "subscription { alerts { kind message product { skuPartNumber } } }", json!({})).await;
        subscribe(&mut socket, "e", "subscription { auditEvents(category: LICENSE_MANAGEMENT) { activityDisplayName initiatedBy { kind } targetResources { id } } }", json!({})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let admin = |q: &str| {
            let status = s
                .agent()
                .post(s.url("/graphql"))
                .header("Authorization", &format!("Bearer {ADMIN}"))
                .send_json(json!({ "query": q }))
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            assert_eq!(status, 200);
        };
        admin("mutation { setPrepaidUnits(skuPartNumber: \"ENTERPRISEPACK\", units: 3) { prepaidUnits } }");
        admin("mutation { setSeatAlertThreshold(skuPartNumber: \"ENTERPRISEPACK\", threshold: 5) { seatAlertThreshold } }");
        let mut got_alert = None;
        let mut got_event = None;
        while got_alert.is_none() || got_event.is_none() {
            let m = next(&mut socket).await.expect("a message");
            assert_eq!(m["type"], "next", "{m}");
            match m["id"].as_str() {
                Some("a") => got_alert = Some(m["payload"]["data"]["alerts"].clone()),
                Some("e") => got_event = Some(m["payload"]["data"]["auditEvents"].clone()),
                other => panic!("unexpected {other:?}: {m}"),
            }
        }
        let alert = got_alert.expect("alert");
        assert_eq!(alert["kind"], "LOW_SEATS");
        assert_eq!(alert["product"]["skuPartNumber"], E3);
        let event = got_event.expect("event");
        assert_eq!(event["activityDisplayName"], "Set prepaid units");
        assert_eq!(event["initiatedBy"]["kind"], "TOKEN");
        // The reader's token is removed and the files read again: its streams end, saying so.
        std::fs::write(dir.path().join("reader.tokens"), "another-reader-token-0123456789\n")
            .expect("rewrite");
        s.signal("HUP");
        let mut closed = BTreeSet::new();
        while closed.len() < 2 {
            let m = next(&mut socket).await.expect("a message");
            let id = str_of(&m["id"]);
            if m["type"] == "next" {
                let message = str_of(&m["payload"]["errors"][0]["message"]);
                assert!(message.contains("no longer valid"), "{m}");
            } else {
                assert_eq!(m["type"], "complete", "{m}");
                closed.insert(id);
            }
        }
    });
}
