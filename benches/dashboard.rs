//! B2 (dashboard reads under load), run against the real release binary:
//!
//! ```sh
//! cargo bench --bench dashboard                  # N = 100,000 users
//! cargo bench --bench dashboard -- --full        # N = 1,000,000 users
//! cargo bench --bench dashboard -- --users 20000 --seconds 5 --clients 32
//! cargo bench --bench dashboard -- --query groups     # or members: only that query
//! GROUP_LICENSING_RESPONSE_CACHE_MIB=0 cargo bench --bench dashboard   # every answer computed
//! ```
//!
//! The server keeps answers to queries until the next write (`--response-cache-mib`), so under
//! this load, where nothing is written, every answer after the first comes from its cache. With
//! `GROUP_LICENSING_RESPONSE_CACHE_MIB=0` in the environment (the server inherits it) every
//! answer is computed: both figures go in BENCHMARKS.md.
//!
//! `group-licensing generate` writes a tenant of N users and `serve` starts on it; seats for 95%
//! of the users are bought for Office 365 E3, EMS E3 and Workplace Analytics, the three are
//! assigned to the group of all users and processed to `COMPLETE` (as in B1), which leaves 5%
//! of the members in error, with details.
//!
//! Two dashboard queries are then loaded, one after the other, by 32 clients (std threads, each
//! with its own keep-alive connection) sending the same `POST /graphql` in a loop: 2 s of
//! warm-up, then 10 s in which every request's latency is recorded, and every answer is
//! compared with the one captured before the load: the same bytes, or failing that the same
//! JSON (async-graphql 7 writes an object's fields in the order their resolvers finish, so the
//! order may change: counted as "reordered", and timed); a wrong or failed answer is counted,
//! not timed. Each query is loaded a second time, in the same process and with the same client,
//! against the ceiling: a plain axum server whose `POST /graphql` reads the body and answers
//! with the captured bytes and content type. Every loop ends by itself; all traffic goes to
//! 127.0.0.1.
//!
//! Printed: p50, p99 and max latency, requests per second, the share of the ceiling's
//! throughput, and the CPU the server and the bench process (client, and the ceiling when it is
//! the one loaded) used, in cores, over warm-up and measurement. Targets (scale issue): p99 ≤
//! 10 ms, ≥ 50% of the ceiling. The clients are closed-loop (each sends its next request when
//! the last is answered), so the mean latency is about clients / throughput.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod support;

use support::{Args, Server, cpu_seconds, generate, license_everyone};

/// (a): one page of the members in error of the big group, with every detail of their errors.
const MEMBERS_IN_ERROR: &str = "query ($g: ID!) { group(id: $g) { membersWithLicenseErrors(first: 100) { totalCount edges { node { userPrincipalName licenseAssignmentStates { product { skuPartNumber } assignedByGroup { displayName } state error errorDetail { message resolutions violations { code message plans { servicePlanName } conflictingPlan { servicePlanName } conflictingSource { direct group { displayName } product { skuPartNumber } } } } } } } } } }";

/// (b): the groups that need attention, with their top reasons.
const GROUPS_IN_ERROR: &str = "{ groups(hasMembersWithLicenseErrors: true) { totalCount edges { node { id displayName licenseErrorCount licenseErrorCounts { error count } } } } }";

/// Largest answer read (the page of 100 members is about 100 KB).
const BODY_READ_LIMIT: u64 = 64 * 1024 * 1024;

/// The exact bytes and content type of the real server's answer to `body`.
trait Capture {
    fn capture(&self, body: &[u8]) -> (Bytes, HeaderValue);
}

impl Capture for Server {
    fn capture(&self, body: &[u8]) -> (Bytes, HeaderValue) {
        let mut response = self
            .agent
            .post(self.url())
            .header("content-type", "application/json")
            .send(body)
            .expect("POST /graphql");
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .expect("a content type");
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_READ_LIMIT)
            .read_to_vec()
            .expect("the answer");
        (Bytes::from(bytes), content_type)
    }
}

/// The plain axum server of the ceiling: `POST /graphql` reads the request's body and answers
/// with `answer`, precomputed. Runs on `runtime` until it is dropped.
fn start_ceiling(
    runtime: &tokio::runtime::Runtime,
    answer: Bytes,
    content_type: HeaderValue,
) -> SocketAddr {
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the ceiling");
        let addr = listener.local_addr().expect("the ceiling's address");
        let app = axum::Router::new().route(
            "/graphql",
            axum::routing::post(move |_request: Bytes| {
                let answer = answer.clone();
                let content_type = content_type.clone();
                async move { ([(header::CONTENT_TYPE, content_type)], answer) }
            }),
        );
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the ceiling serves");
        });
        addr
    })
}

struct LoadConfig {
    clients: usize,
    warmup: Duration,
    measure: Duration,
}

/// What the clients saw in the measured time.
#[derive(Default)]
struct Tally {
    /// Latencies of the right answers, in µs.
    latencies: Vec<u64>,
    /// Right answers whose bytes differ from the captured ones: the same JSON, fields in
    /// another order. Timed with the others.
    reordered: usize,
    first_reordered: Option<Vec<u8>>,
    /// Answers with other data, and failed requests: not timed.
    wrong: usize,
    first_wrong: Option<Vec<u8>>,
    failed: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.reordered += other.reordered;
        self.first_reordered = self.first_reordered.take().or(other.first_reordered);
        self.wrong += other.wrong;
        self.first_wrong = self.first_wrong.take().or(other.first_wrong);
        self.failed += other.failed;
    }
}

struct Measured {
    /// Latencies sorted.
    tally: Tally,
    seconds: f64,
    /// CPU of the bench process (clients, and the ceiling when it is the one loaded), in cores.
    bench_cores: f64,
}

impl Measured {
    /// Nearest-rank percentile, in ms.
    fn percentile_ms(&self, p: f64) -> f64 {
        let latencies = &self.tally.latencies;
        if latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1] as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.tally
            .latencies
            .last()
            .map_or(f64::NAN, |&us| us as f64 / 1000.0)
    }

    fn per_second(&self) -> f64 {
        self.tally.latencies.len() as f64 / self.seconds
    }
}

/// `config.clients` threads, each with its own keep-alive connection, send `body` to `url` in a
/// loop until the warm-up and the measured time are over; a request counts when it was sent
/// within the measured time. An answer is right when its bytes are `expected`, or failing that
/// when it is the same JSON (async-graphql does not always keep the fields in query order).
fn load(url: &str, body: &[u8], expected: &[u8], config: &LoadConfig) -> Measured {
    let expected_json: Value = serde_json::from_slice(expected).expect("the answer is JSON");
    let expected_json = &expected_json;
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + config.warmup;
    let end = measure_from + config.measure;
    let cpu_before = cpu_seconds("/proc/self/stat");
    let per_client: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.clients)
            .map(|_| {
                scope.spawn(move || {
                    let agent = ureq::Agent::new_with_defaults();
                    let mut tally = Tally {
                        latencies: Vec::with_capacity(1 << 16),
                        ..Tally::default()
                    };
                    std::thread::sleep(start.saturating_duration_since(Instant::now()));
                    loop {
                        let sent = Instant::now();
                        if sent >= end {
                            break;
                        }
                        let answer = agent
                            .post(url)
                            .header("content-type", "application/json")
                            .send(body)
                            .and_then(|mut response| {
                                response
                                    .body_mut()
                                    .with_config()
                                    .limit(BODY_READ_LIMIT)
                                    .read_to_vec()
                            });
                        let took = sent.elapsed().as_micros() as u64;
                        if sent < measure_from {
                            continue;
                        }
                        match answer {
                            Ok(bytes) if bytes == expected => tally.latencies.push(took),
                            Ok(bytes) => {
                                let same = serde_json::from_slice::<Value>(&bytes)
                                    .is_ok_and(|v| v == *expected_json);
                                if same {
                                    tally.latencies.push(took);
                                    tally.reordered += 1;
                                    tally.first_reordered.get_or_insert(bytes);
                                } else {
                                    tally.wrong += 1;
                                    tally.first_wrong.get_or_insert(bytes);
                                }
                            }
                            Err(_) => {
                                tally.failed += 1;
                                // Do not spin on a refused connection.
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread"))
            .collect()
    });
    let cpu_after = cpu_seconds("/proc/self/stat");
    let mut tally = Tally::default();
    for client in per_client {
        tally.add(client);
    }
    tally.latencies.sort_unstable();
    let total = (end - start).as_secs_f64();
    Measured {
        tally,
        seconds: config.measure.as_secs_f64(),
        // The bench process's CPU over warm-up and measurement together.
        bench_cores: (cpu_after - cpu_before) / total,
    }
}

/// Checks the captured answer of a query once, before any timing.
fn check_answer(name: &str, answer: &[u8], group: &Value) {
    let value: Value = serde_json::from_slice(answer).expect("the answer is JSON");
    assert!(value.get("errors").is_none(), "{name}: {value}");
    let data = &value["data"];
    if name == "membersWithLicenseErrors" {
        let page = &data["group"]["membersWithLicenseErrors"];
        let edges = page["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), 100, "{name}: a page of 100 members");
        assert!(page["totalCount"].as_i64().unwrap_or(0) >= 100, "{page}");
        for edge in edges {
            let states = edge["node"]["licenseAssignmentStates"]
                .as_array()
                .expect("states");
            let in_error = states
                .iter()
                .filter(|s| s["error"] != "NONE")
                .collect::<Vec<_>>();
            assert!(
                !in_error.is_empty(),
                "{name}: a member without error {edge}"
            );
            for state in in_error {
                assert!(
                    state["errorDetail"]["violations"]
                        .as_array()
                        .is_some_and(|v| !v.is_empty()),
                    "{name}: an error without details {state}"
                );
            }
        }
    } else {
        let edges = data["groups"]["edges"].as_array().expect("edges");
        assert!(
            edges.iter().any(|e| e["node"]["id"] == *group
                && e["node"]["licenseErrorCount"].as_i64().unwrap_or(0) > 0),
            "{name}: the licensed group is listed with its errors: {data}"
        );
    }
}

/// Where an answer first differs from the captured one.
fn show_difference(what: &str, got: &[u8], expected: &[u8]) {
    let at = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    let around = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.saturating_sub(60)..(at + 100).min(b.len())]).into_owned()
    };
    println!(
        "  {what} ({} bytes, from byte {at}):\n    got      …{}…\n    captured …{}…",
        got.len(),
        around(got),
        around(expected)
    );
}

fn main() {
    let Some(args) = Args::from_env() else {
        return;
    };
    let users = if args.flag("--full") {
        1_000_000
    } else {
        args.number("--users", 100_000)
    };
    let config = LoadConfig {
        clients: args.number("--clients", 32),
        warmup: Duration::from_secs(args.number("--warmup", 2)),
        measure: Duration::from_secs(args.number("--seconds", 10)),
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let db = generate(dir.path(), users);
    let server = Server::start(&db);
    let licensed = license_everyone(&server, users);
    eprintln!(
        "processed {users} members in {:.1} s, {} in error",
        licensed.seconds, licensed.errors
    );
    let group = licensed.group;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime for the ceiling");

    let queries = [
        (
            "membersWithLicenseErrors",
            json!({ "query": MEMBERS_IN_ERROR, "variables": { "g": group } }),
        ),
        (
            "groups(hasMembersWithLicenseErrors)",
            json!({ "query": GROUPS_IN_ERROR }),
        ),
    ];
    // `--query members` or `--query groups` loads only that one.
    let only = args.value("--query");
    let mut rows = Vec::new();
    for (name, request) in queries {
        if only.as_deref().is_some_and(|q| !name.starts_with(q)) {
            continue;
        }
        let body = serde_json::to_vec(&request).expect("a request body");
        let (answer, content_type) = server.capture(&body);
        check_answer(name, &answer, &group);
        let (again, _) = server.capture(&body);
        let json = |b: &[u8]| serde_json::from_slice::<Value>(b).expect("JSON");
        assert_eq!(
            json(&answer),
            json(&again),
            "{name}: the answer is the same every time"
        );
        eprintln!(
            "{name}: answer of {} bytes; loading the server…",
            answer.len()
        );
        let cpu = server.cpu_seconds();
        let real = load(&server.url(), &body, &answer, &config);
        let server_cores =
            (server.cpu_seconds() - cpu) / (config.warmup + config.measure).as_secs_f64();
        let ceiling_addr = start_ceiling(&runtime, answer.clone(), content_type);
        eprintln!("{name}: loading the ceiling…");
        let ceiling = load(
            &format!("http://{ceiling_addr}/graphql"),
            &body,
            &answer,
            &config,
        );
        rows.push((name, answer, real, server_cores, ceiling));
    }

    println!(
        "B2 dashboard reads: {users} users, {} clients, {} s warm-up + {} s measured",
        config.clients,
        config.warmup.as_secs(),
        config.measure.as_secs()
    );
    println!(
        "{:<36} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>6} {:>7} {:>13} {:>12}",
        "query",
        "server",
        "p50 ms",
        "p99 ms",
        "max ms",
        "req/s",
        "% ceiling",
        "reordered",
        "wrong",
        "failed",
        "server cores",
        "bench cores"
    );
    let mut met = true;
    for (name, answer, real, server_cores, ceiling) in &rows {
        let share = 100.0 * real.per_second() / ceiling.per_second();
        for (label, m, cores) in [("real", real, *server_cores), ("ceiling", ceiling, 0.0)] {
            println!(
                "{:<36} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>9.0} {:>10} {:>10} {:>6} {:>7} {:>13} {:>12.2}",
                name,
                label,
                m.percentile_ms(50.0),
                m.percentile_ms(99.0),
                m.max_ms(),
                m.per_second(),
                if label == "real" {
                    format!("{share:.0}%")
                } else {
                    "100%".to_string()
                },
                m.tally.reordered,
                m.tally.wrong,
                m.tally.failed,
                if label == "real" {
                    format!("{cores:.2}")
                } else {
                    "-".to_string()
                },
                m.bench_cores
            );
        }
        for (label, m) in [("real", real), ("ceiling", ceiling)] {
            let odd = [
                ("reordered", &m.tally.first_reordered),
                ("wrong", &m.tally.first_wrong),
            ];
            for (kind, first) in odd {
                if let Some(bytes) = first {
                    show_difference(&format!("{name} {label}: a {kind} answer"), bytes, answer);
                }
            }
        }
        let p99_ok = real.percentile_ms(99.0) <= 10.0;
        let share_ok = share >= 50.0;
        let clean = real.tally.wrong == 0 && real.tally.failed == 0;
        met &= p99_ok && share_ok && clean;
        println!(
            "  {name} ({} bytes): p99 ≤ 10 ms {}, ≥ 50% of the ceiling {}{}",
            answer.len(),
            if p99_ok { "met" } else { "NOT met" },
            if share_ok { "met" } else { "NOT met" },
            if clean {
                ""
            } else {
                ", with wrong or failed answers"
            }
        );
    }
    println!(
        "targets: p99 ≤ 10 ms and ≥ 50% of the ceiling's requests/s: {}",
        if met { "met" } else { "NOT met" }
    );
}
