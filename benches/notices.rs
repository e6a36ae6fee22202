//! N: what listeners cost processing, and how soon they hear of a commit, against the real
//! release binary:
//!
//! ```sh
//! cargo bench --bench notices                                  # N = 100,000, 3 runs each
//! cargo bench --bench notices -- --sizes 1000000 --runs 3 --subscribers 1000
//! ```
//!
//! For each N, one generated tenant; runs alternate between a server with no listener and one
//! with `--subscribers` WebSocket connections (`graphql-transport-ws`) each subscribed to the
//! big group's `groupProcessing`, and a webhook (alerts raised and resolved, processing
//! complete) to a receiver on loopback, so that both meet the same moments of the machine.
//! Each run is B1 (`license_everyone`: three products on the group of all users, to
//! `COMPLETE`).
//!
//! Delays, in the runs with listeners:
//! - subscription: from the time of the run's "Finish applying" event (taken when the last
//!   step's transaction starts, so the step's own work is counted in) to each subscriber's
//!   `COMPLETE`;
//! - after the run, `--toggles` threshold changes that raise and resolve `LOW_SEATS` in turn:
//!   from each alert's `raisedDateTime` / `resolvedDateTime` (its mutation's transaction) to
//!   an `alerts` subscriber's message and to the webhook's delivery.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[path = "support/server.rs"]
mod support;

use support::{Args, Server, fresh_copy, generate, license_everyone};

fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
}

fn ms_of(time: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.timestamp_micros() as f64 / 1000.0)
        .unwrap_or(f64::NAN)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return f64::NAN;
    }
    let i = ((values.len() - 1) as f64 * p).round() as usize;
    values[i]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(base: &str) -> Socket {
    let url = format!("{}/graphql", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let init = json!({ "type": "connection_init", "payload": {} });
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .expect("init");
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) if t.contains("connection_ack") => return socket,
            Some(Ok(_)) => continue,
            other => panic!("no connection_ack: {other:?}"),
        }
    }
}

async fn subscribe(socket: &mut Socket, query: &str, variables: Value) {
    let message = json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("subscribe");
}

/// The next `next` payload's data, answering pings.
async fn next_data(socket: &mut Socket) -> Option<Value> {
    loop {
        let Message::Text(text) = socket.next().await?.ok()? else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).ok()?;
        match value["type"].as_str() {
            Some("next") => return Some(value["payload"]["data"].clone()),
            Some("ping") => {
                let pong = json!({ "type": "pong" }).to_string();
                socket.send(Message::Text(pong.into())).await.ok()?;
            }
            _ => return None,
        }
    }
}

/// The listeners of one run: subscribers of the big group, and a webhook receiver.
struct Listeners {
    runtime: tokio::runtime::Runtime,
    /// When each subscriber got `COMPLETE` (ms since the epoch), and its message count.
    completes: Arc<Mutex<Vec<(f64, usize)>>>,
    /// Each delivery's arrival (ms) and body.
    deliveries: Arc<Mutex<Vec<(f64, Value)>>>,
    receiver: SocketAddr,
}

impl Listeners {
    fn start() -> Listeners {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let deliveries: Arc<Mutex<Vec<(f64, Value)>>> = Arc::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let receiver = listener.local_addr().expect("addr");
        let got = deliveries.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let got = got.clone();
                async move {
                    let at = now_ms();
                    if let Ok(v) = serde_json::from_str::<Value>(&body) {
                        got.lock().expect("lock").push((at, v));
                    }
                    "ok"
                }
            }),
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Listeners {
            runtime,
            completes: Arc::default(),
            deliveries,
            receiver,
        }
    }

    fn subscribe_group(&self, base: &str, group: &str, subscribers: usize) {
        let query = "subscription($g: ID!) { groupProcessing(groupId: $g) { licenseProcessingState processedMembers membersToProcess licenseErrorCount } }";
        let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..subscribers {
            let (base, group) = (base.to_string(), group.to_string());
            let (completes, ready) = (self.completes.clone(), ready.clone());
            self.runtime.spawn(async move {
                let mut socket = connect(&base).await;
                subscribe(&mut socket, query, json!({ "g": group })).await;
                // The state at once: the subscription stands.
                let _ = next_data(&mut socket).await;
                ready.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut messages = 0;
                while let Some(data) = next_data(&mut socket).await {
                    messages += 1;
                    if data["groupProcessing"]["licenseProcessingState"] == "COMPLETE" {
                        completes.lock().expect("lock").push((now_ms(), messages));
                        break;
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while ready.load(std::sync::atomic::Ordering::SeqCst) < subscribers {
            assert!(Instant::now() < deadline, "subscribers did not connect");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct Run {
    seconds: f64,
    cpu: f64,
}

fn main() {
    let Some(args) = Args::from_env() else {
        return;
    };
    let sizes = args.sizes(&[100_000]);
    let runs: usize = args.number("--runs", 3);
    let subscribers: usize = args.number("--subscribers", 1000);
    let toggles: usize = args.number("--toggles", 200);
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "N: B1 with {subscribers} groupProcessing subscribers and a webhook against B1 without (median of {runs} runs each, alternating)"
    );
    for users in sizes {
        let pristine = generate(dir.path(), users);
        let mut plain: Vec<Run> = Vec::new();
        let mut listened: Vec<Run> = Vec::new();
        let mut complete_delays: Vec<f64> = Vec::new();
        let mut progress_messages: Vec<f64> = Vec::new();
        let mut webhook_complete: Vec<f64> = Vec::new();
        let mut alert_sub: Vec<f64> = Vec::new();
        let mut alert_hook: Vec<f64> = Vec::new();
        for round in 0..runs {
            // Without listeners.
            let db = fresh_copy(&pristine, dir.path());
            let server = Server::start_binary_with(Path::new(support::BIN), &db, &[]);
            let cpu = server.cpu_seconds();
            let licensed = license_everyone(&server, users);
            plain.push(Run {
                seconds: licensed.seconds,
                cpu: server.cpu_seconds() - cpu,
            });
            eprintln!("round {round}: without {:.2} s", licensed.seconds);
            drop(server);

            // With them.
            let db = fresh_copy(&pristine, dir.path());
            let server = Server::start_binary_with(
                Path::new(support::BIN),
                &db,
                &["--webhook-allow-private"],
            );
            let listeners = Listeners::start();
            let url = format!("http://{}/hook", listeners.receiver);
            server.gql(
                "mutation($u: String!) { createWebhook(url: $u, events: [ALERT_RAISED, ALERT_RESOLVED, GROUP_PROCESSING_COMPLETE]) { secret } }",
                json!({ "u": url }),
            );
            let group = server.gql("{ groups(first: 1) { edges { node { id } } } }", json!({}))
                ["groups"]["edges"][0]["node"]["id"]
                .as_str()
                .expect("group id")
                .to_string();
            listeners.subscribe_group(&server.base, &group, subscribers);
            let cpu = server.cpu_seconds();
            let licensed = license_everyone(&server, users);
            listened.push(Run {
                seconds: licensed.seconds,
                cpu: server.cpu_seconds() - cpu,
            });
            eprintln!("round {round}: with listeners {:.2} s", licensed.seconds);
            let finish = server.gql(
                "query($g: ID!) { auditEvents(groupId: $g, category: LICENSE_PROCESSING, first: 1) { edges { node { activityDisplayName activityDateTime } } } }",
                json!({ "g": group }),
            )["auditEvents"]["edges"][0]["node"]
                .clone();
            assert_eq!(
                finish["activityDisplayName"],
                "Finish applying group based license to users"
            );
            let finished = ms_of(finish["activityDateTime"].as_str().unwrap_or(""));
            let deadline = Instant::now() + Duration::from_secs(60);
            while listeners.completes.lock().expect("lock").len() < subscribers {
                assert!(
                    Instant::now() < deadline,
                    "not every subscriber got COMPLETE"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            for (at, messages) in listeners.completes.lock().expect("lock").iter() {
                complete_delays.push(at - finished);
                progress_messages.push(*messages as f64);
            }
            // The webhook's processing complete.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let got = listeners.deliveries.lock().expect("lock").clone();
                if let Some((at, body)) = got
                    .iter()
                    .find(|(_, b)| b["type"] == "GROUP_PROCESSING_COMPLETE")
                {
                    webhook_complete
                        .push(at - ms_of(body["occurredDateTime"].as_str().unwrap_or("")));
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no GROUP_PROCESSING_COMPLETE delivery"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            // Alerts: each toggle raises or resolves LOW_SEATS on EMS.
            let alerts: Arc<Mutex<Vec<(f64, Value)>>> = Arc::default();
            {
                let (base, alerts) = (server.base.clone(), alerts.clone());
                let (tx, rx) = std::sync::mpsc::channel();
                listeners.runtime.spawn(async move {
                    let mut socket = connect(&base).await;
                    subscribe(
                        &mut socket,
                        "subscription { alerts { kind raisedDateTime resolvedDateTime } }",
                        json!({}),
                    )
                    .await;
                    let _ = tx.send(());
                    while let Some(data) = next_data(&mut socket).await {
                        alerts
                            .lock()
                            .expect("lock")
                            .push((now_ms(), data["alerts"].clone()));
                    }
                });
                rx.recv_timeout(Duration::from_secs(30))
                    .expect("alerts subscriber");
                std::thread::sleep(Duration::from_millis(200));
            }
            let before_hooks = listeners.deliveries.lock().expect("lock").len();
            let before_alerts = alerts.lock().expect("lock").len();
            for i in 0..toggles {
                let threshold = if i % 2 == 0 {
                    json!(users * 10)
                } else {
                    Value::Null
                };
                server.gql(
                    "mutation($t: Int) { setSeatAlertThreshold(skuPartNumber: \"EMS\", threshold: $t) { seatAlertThreshold } }",
                    json!({ "t": threshold }),
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let hooks = listeners.deliveries.lock().expect("lock").len() - before_hooks;
                let subs = alerts.lock().expect("lock").len() - before_alerts;
                if hooks >= toggles && subs >= toggles {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "alerts: {hooks} deliveries and {subs} messages of {toggles}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let commit_of = |a: &Value| {
                let t = if a["resolvedDateTime"].is_null() {
                    &a["raisedDateTime"]
                } else {
                    &a["resolvedDateTime"]
                };
                ms_of(t.as_str().unwrap_or(""))
            };
            for (at, a) in alerts.lock().expect("lock").iter().skip(before_alerts) {
                alert_sub.push(at - commit_of(a));
            }
            for (at, body) in listeners
                .deliveries
                .lock()
                .expect("lock")
                .iter()
                .skip(before_hooks)
                .filter(|(_, b)| b["type"] == "ALERT_RAISED" || b["type"] == "ALERT_RESOLVED")
            {
                alert_hook.push(at - commit_of(&body["data"]));
            }
            drop(server);
            drop(listeners);
        }
        let without = median(plain.iter().map(|r| r.seconds).collect());
        let with = median(listened.iter().map(|r| r.seconds).collect());
        println!(
            "{users:>10} members: without {without:.2} s (CPU {:.2} s), with listeners {with:.2} s (CPU {:.2} s): {:.3}× (target ≤ 1.1×)",
            median(plain.iter().map(|r| r.cpu).collect()),
            median(listened.iter().map(|r| r.cpu).collect()),
            with / without
        );
        let line = |what: &str, values: &mut Vec<f64>| {
            println!(
                "{users:>10} members: {what}: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
                percentile(values, 0.5),
                percentile(values, 0.99),
                values.len()
            );
        };
        line(
            "run finish → each subscriber's COMPLETE",
            &mut complete_delays,
        );
        line(
            "run finish → the webhook's GROUP_PROCESSING_COMPLETE",
            &mut webhook_complete,
        );
        line("alert commit → alerts subscriber", &mut alert_sub);
        line("alert commit → webhook delivery", &mut alert_hook);
        println!(
            "{users:>10} members: messages per subscriber in a run: median {:.0}",
            median(progress_messages.clone())
        );
    }
}
