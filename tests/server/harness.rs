//! Starts and stops the real server binary, and speaks GraphQL to it.
//!
//! [`Server::start`] runs `group-licensing serve --db … --rules … --listen 127.0.0.1:0`, waits for
//! the `listening on http://…` line and kills the process when dropped (its stderr is printed if
//! the test is failing, to show what the server said).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_group-licensing");

/// The rules of seed-scenarios.md, a folder usable as `--rules`.
pub fn scenario_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenario-rules")
}

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long ordinary background processing (a few users) may take.
pub const PROCESSING_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server; killed (SIGKILL) and reaped when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub db: PathBuf,
    pub rules: PathBuf,
    agent: ureq::Agent,
    stderr: Arc<Mutex<String>>,
    /// Keeps stdout drained after the first line.
    _stdout: Option<thread::JoinHandle<()>>,
}

/// A fresh server on an empty database in its own temporary folder.
pub struct Fresh {
    pub server: Server,
    pub dir: TempDir,
}

impl std::ops::Deref for Fresh {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

/// A server on a new database with the scenario rules.
pub fn fresh() -> Fresh {
    let dir = TempDir::new().expect("temp dir");
    let server = Server::start(&dir.path().join("t.db"), &scenario_rules());
    Fresh { server, dir }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn drain(mut from: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Ok(mut s) = into.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            }
        }
    })
}

impl Server {
    /// Starts the server on `db` with the rules folder `rules` and waits until it listens.
    pub fn start(db: &Path, rules: &Path) -> Server {
        Server::start_with(db, rules, &[])
    }

    /// [`Server::start`] with more arguments (e.g. `--demo`).
    pub fn start_with(db: &Path, rules: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--db"])
            .arg(db)
            .arg("--rules")
            .arg(rules)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .env_remove("GROUP_LICENSING_DB")
            .env_remove("GROUP_LICENSING_RULES")
            .env_remove("GROUP_LICENSING_LISTEN")
            .env_remove("GROUP_LICENSING_ADMIN_TOKEN_FILE")
            .env_remove("GROUP_LICENSING_READER_TOKEN_FILE")
            .env_remove("GROUP_LICENSING_ADMIN_TOKENS")
            .env_remove("GROUP_LICENSING_READER_TOKENS")
            .env_remove("GROUP_LICENSING_REQUEST_TIMEOUT_MS")
            .env_remove("GROUP_LICENSING_ALLOWED_ORIGINS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().expect("stderr"), stderr.clone());
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<Option<String>>();
        let reader = thread::spawn(move || read_address(stdout, tx));
        let base = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(base)) => base,
            outcome => {
                let _ = child.kill();
                let status = child.wait().ok();
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "the server did not start ({outcome:?}, exit status {status:?}); stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                );
            }
        };
        Server {
            child: Some(child),
            base,
            db: db.to_path_buf(),
            rules: rules.to_path_buf(),
            agent: agent(),
            stderr,
            _stdout: Some(reader),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends a signal by name (`HUP`, `TERM`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid}: {status}");
    }

    /// Waits for the process to end by itself; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (std's `Child::kill` on Unix), as a crash would; waits for the process to die.
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill the server");
        child.wait().expect("reap the server")
    }

    /// The whole GraphQL response (`data` and `errors`) of a POST.
    pub fn gql(&self, query: &str, variables: Value) -> Value {
        let mut response = self
            .agent
            .post(self.url("/graphql"))
            .send_json(json!({ "query": query, "variables": variables }))
            .unwrap_or_else(|e| panic!("POST /graphql failed: {e}\nquery: {query}"));
        let status = response.status();
        let body: Value = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_json()
            .unwrap_or_else(|e| panic!("response of {query} is not JSON ({status}): {e}"));
        body
    }

    /// `data` of a query or mutation that must succeed.
    pub fn ok(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables.clone());
        if let Some(errors) = body.get("errors") {
            panic!("unexpected GraphQL errors: {errors:#}\nquery: {query}\nvariables: {variables}");
        }
        body["data"].clone()
    }

    /// The first error of an operation that must fail; checks there is no data for it.
    pub fn err(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables.clone());
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            !errors.is_empty(),
            "expected a GraphQL error, got {body:#}\nquery: {query}\nvariables: {variables}"
        );
        // A failed mutation returns no data; a failed nullable query field is null.
        let no_data = match &body["data"] {
            Value::Null => true,
            Value::Object(fields) => fields.values().all(Value::is_null),
            _ => false,
        };
        assert!(no_data, "a failed operation must return no data: {body:#}");
        errors[0].clone()
    }

    // ---- Tenant setup ---------------------------------------------------------------------

    pub fn create_user(&self, upn: &str, location: Option<&str>) -> String {
        self.create_user_with(upn, location, &[])
    }

    pub fn create_user_with(&self, upn: &str, location: Option<&str>, proxies: &[&str]) -> String {
        let data = self.ok(
            "mutation($input: CreateUserInput!) { createUser(input: $input) { id userPrincipalName } }",
            json!({ "input": {
                "userPrincipalName": upn,
                "displayName": upn.split('@').next().unwrap_or(upn),
                "usageLocation": location,
                "proxyAddresses": proxies,
            }}),
        );
        str_of(&data["createUser"]["id"])
    }

    pub fn create_group(&self, name: &str) -> String {
        let data = self.ok(
            "mutation($n: String!) { createGroup(displayName: $n) { id displayName licenseProcessingState } }",
            json!({ "n": name }),
        );
        assert_eq!(data["createGroup"]["displayName"], name);
        assert_eq!(data["createGroup"]["licenseProcessingState"], "COMPLETE");
        str_of(&data["createGroup"]["id"])
    }

    pub fn set_prepaid(&self, sku: &str, units: i64) {
        let data = self.ok(
            "mutation($s: String!, $u: Int!) { setPrepaidUnits(skuPartNumber: $s, units: $u) { prepaidUnits } }",
            json!({ "s": sku, "u": units }),
        );
        assert_eq!(data["setPrepaidUnits"]["prepaidUnits"], units);
    }

    pub fn set_default_location(&self, code: &str) {
        let data = self.ok(
            "mutation($c: String) { updateDirectory(defaultUsageLocation: $c) { defaultUsageLocation } }",
            json!({ "c": code }),
        );
        assert_eq!(data["updateDirectory"]["defaultUsageLocation"], code);
    }

    /// Adds members in the order given (their join order, P1).
    pub fn add_members(&self, group: &str, users: &[&str]) -> Value {
        self.ok(
            "mutation($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { id memberCount licenseProcessingState } }",
            json!({ "g": group, "u": users }),
        )["addGroupMembers"]
            .clone()
    }

    pub fn remove_members(&self, group: &str, users: &[&str]) -> Value {
        self.ok(
            "mutation($g: ID!, $u: [ID!]!) { removeGroupMembers(groupId: $g, userIds: $u) { id memberCount licenseProcessingState } }",
            json!({ "g": group, "u": users }),
        )["removeGroupMembers"]
            .clone()
    }

    /// `assignGroupLicense`; `add` is a list of `LicenseInput`s. Returns the group.
    pub fn assign_group(&self, group: &str, add: Value, remove: &[&str]) -> Value {
        self.ok(
            ASSIGN_GROUP,
            json!({ "g": group, "add": add, "remove": remove }),
        )["assignGroupLicense"]
            .clone()
    }

    /// `assignLicense`; returns the user.
    pub fn assign_direct(&self, user: &str, add: Value, remove: &[&str]) -> Value {
        self.ok(
            ASSIGN_DIRECT,
            json!({ "u": user, "add": add, "remove": remove }),
        )["assignLicense"]
            .clone()
    }

    pub fn reprocess_group(&self, group: &str) -> Value {
        self.ok(
            "mutation($g: ID!) { reprocessGroup(groupId: $g) { id licenseProcessingState processedMembers membersToProcess } }",
            json!({ "g": group }),
        )["reprocessGroup"]
            .clone()
    }

    pub fn reprocess_user(&self, user: &str) {
        self.ok(
            "mutation($u: ID!) { reprocessUser(userId: $u) { id } }",
            json!({ "u": user }),
        );
    }

    pub fn update_user(&self, user: &str, input: Value) -> Value {
        self.ok(
            "mutation($u: ID!, $i: UpdateUserInput!) { updateUser(id: $u, input: $i) { id usageLocation effectiveUsageLocation proxyAddresses } }",
            json!({ "u": user, "i": input }),
        )["updateUser"]
            .clone()
    }

    // ---- Waiting for processing -------------------------------------------------------------

    /// Polls the group's `licenseProcessingState` until `COMPLETE`; fails the test after
    /// [`PROCESSING_TIMEOUT`].
    pub fn wait_complete(&self, group: &str) -> Value {
        self.wait_complete_within(group, PROCESSING_TIMEOUT)
    }

    pub fn wait_complete_within(&self, group: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let g = self.ok(
                "query($g: ID!) { group(id: $g) { licenseProcessingState processedMembers membersToProcess } }",
                json!({ "g": group }),
            )["group"]
                .clone();
            if g["licenseProcessingState"] == "COMPLETE" {
                return g;
            }
            assert!(
                start.elapsed() < timeout,
                "group {group} still {g} after {timeout:?}; server stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the server's work queue is empty (`/healthz` says `idle`): for work that
    /// belongs to a user rather than a group (P5 on a user change, `reprocessUser`).
    pub fn wait_idle(&self) {
        let start = Instant::now();
        loop {
            let health = self.healthz();
            if health["processing"] == "idle" {
                return;
            }
            assert!(
                start.elapsed() < PROCESSING_TIMEOUT,
                "processing still busy after {PROCESSING_TIMEOUT:?}: {health}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn healthz(&self) -> Value {
        let mut response = self
            .agent
            .get(self.url("/healthz"))
            .call()
            .expect("GET /healthz");
        assert_eq!(response.status(), 200, "healthz status");
        response.body_mut().read_json().expect("healthz JSON")
    }

    // ---- Reading ------------------------------------------------------------------------------

    /// Every `licenseAssignmentStates` entry of a user, with every field.
    pub fn states(&self, user: &str) -> Vec<Value> {
        let data = self.ok(
            &format!("query($u: ID) {{ user(id: $u) {{ licenseAssignmentStates {{ ...St }} }} }} {STATE_FRAGMENT}"),
            json!({ "u": user }),
        );
        data["user"]["licenseAssignmentStates"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no user {user}: {data}"))
    }

    /// The one assignment state of `user` for `sku` from `group` (`None`: direct).
    pub fn state_of(&self, user: &str, sku: &str, group: Option<&str>) -> Value {
        let states = self.states(user);
        let matching: Vec<&Value> = states
            .iter()
            .filter(|s| {
                s["product"]["skuPartNumber"] == sku
                    && match group {
                        None => s["assignedByGroup"].is_null(),
                        Some(g) => s["assignedByGroup"]["id"] == g,
                    }
            })
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one state of user {user} for {sku} from {group:?}, got {states:#?}"
        );
        matching[0].clone()
    }

    /// Whether the user has any assignment state for `sku` from `group`.
    pub fn has_state(&self, user: &str, sku: &str, group: Option<&str>) -> bool {
        self.states(user).iter().any(|s| {
            s["product"]["skuPartNumber"] == sku
                && match group {
                    None => s["assignedByGroup"].is_null(),
                    Some(g) => s["assignedByGroup"]["id"] == g,
                }
        })
    }

    /// `(prepaidUnits, consumedUnits, availableUnits)`.
    pub fn seats(&self, sku: &str) -> (i64, i64, i64) {
        let p = &self.ok(
            "query($s: String!) { product(skuPartNumber: $s) { prepaidUnits consumedUnits availableUnits } }",
            json!({ "s": sku }),
        )["product"];
        (
            int(&p["prepaidUnits"]),
            int(&p["consumedUnits"]),
            int(&p["availableUnits"]),
        )
    }

    /// The dashboard fields of a group (Q1), with the ids of the users in error.
    pub fn group(&self, group: &str) -> Value {
        self.ok(GROUP_QUERY, json!({ "g": group }))["group"].clone()
    }

    /// The products the user holds (L1) with their enabled plans (L2).
    pub fn held(&self, user: &str) -> Value {
        self.ok(
            "query($u: ID) { user(id: $u) { hasLicenseErrors assignedLicenses { product { skuPartNumber } enabledPlans { servicePlanName } disabledPlans { servicePlanName } } } }",
            json!({ "u": user }),
        )["user"]
            .clone()
    }

    /// Everything a client can see of the tenant, to check that a failed mutation changed
    /// nothing. Read in pages, as a client must: one query for all of it would be over the
    /// server's complexity limit.
    pub fn snapshot(&self) -> Value {
        let head = self.ok(SNAPSHOT_HEAD, json!({}));
        let mut holders = serde_json::Map::new();
        for product in head["products"].as_array().into_iter().flatten() {
            let sku = product["skuPartNumber"].as_str().unwrap_or_default();
            let users = self.ok(SNAPSHOT_HOLDERS, json!({ "s": sku }));
            holders.insert(sku.to_string(), users["product"]["licensedUsers"].clone());
        }
        json!({
            "head": head,
            "holders": holders,
            "users": self.all_pages(SNAPSHOT_USERS, "users"),
            "groups": self.all_pages(SNAPSHOT_GROUPS, "groups"),
        })
    }

    /// Every edge of a connection at the top of `query` (which takes `$after`), page by page.
    pub fn all_pages(&self, query: &str, field: &str) -> Vec<Value> {
        let (mut edges, mut after) = (Vec::new(), Value::Null);
        loop {
            let data = self.ok(query, json!({ "after": after }));
            let page = &data[field];
            edges.extend(page["edges"].as_array().cloned().unwrap_or_default());
            if page["pageInfo"]["hasNextPage"] != true {
                return edges;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("---- server {} stderr ----\n{}", self.base, self.stderr());
        }
    }
}

fn read_address(stdout: ChildStdout, tx: mpsc::Sender<Option<String>>) {
    let mut lines = BufReader::new(stdout).lines();
    let mut sent = false;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if !sent && let Some(rest) = line.strip_prefix("listening on ") {
            // `listening on http://ADDR (open … in a browser)`: the address is the first word.
            let address = rest.split_whitespace().next().unwrap_or_default();
            let _ = tx.send(Some(address.to_string()));
            sent = true;
        }
    }
    if !sent {
        let _ = tx.send(None);
    }
}

// ---- Small helpers ------------------------------------------------------------------------------

pub fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

pub fn int(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

/// `extensions.code` of a GraphQL error.
pub fn code(error: &Value) -> &str {
    error["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error without extensions.code: {error:#}"))
}

/// The service plan names of a list of `ServicePlan`s.
pub fn plan_names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a list of plans, got {list}"))
        .iter()
        .map(|p| str_of(&p["servicePlanName"]))
        .collect()
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The ids of a `UserConnection`'s nodes.
pub fn node_ids(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("not a connection: {connection}"))
        .iter()
        .map(|e| str_of(&e["node"]["id"]))
        .collect()
}

pub fn license(sku: &str, disabled: &[&str]) -> Value {
    json!({ "skuPartNumber": sku, "disabledPlans": disabled })
}

pub const STATE_FRAGMENT: &str = r#"
fragment Src on LicenseSource { direct group { id displayName } product { skuPartNumber } }
fragment St on LicenseAssignmentState {
  product { skuPartNumber }
  assignedByGroup { id displayName }
  disabledPlans { servicePlanName }
  state
  error
  errorDetail {
    message
    resolutions
    violations {
      code message
      plans { servicePlanName }
      conflictingPlan { servicePlanName }
      conflictingSource { ...Src }
      source { ...Src }
      missingPrerequisites { servicePlanName }
      usageLocation
      proxyAddress
      conflictingUser { id userPrincipalName }
      products { skuPartNumber }
    }
  }
  lastUpdatedDateTime
}
"#;

pub const ASSIGN_GROUP: &str = "mutation($g: ID!, $add: [LicenseInput!]!, $remove: [String!]!) {
  assignGroupLicense(groupId: $g, addLicenses: $add, removeLicenses: $remove) {
    id licenseProcessingState processedMembers membersToProcess
    assignedLicenses { product { skuPartNumber } disabledPlans { servicePlanName } }
  }
}";

pub const ASSIGN_DIRECT: &str = "mutation($u: ID!, $add: [LicenseInput!]!, $remove: [String!]!) {
  assignLicense(userId: $u, addLicenses: $add, removeLicenses: $remove) {
    id assignedLicenses { product { skuPartNumber } enabledPlans { servicePlanName } }
  }
}";

pub const GROUP_QUERY: &str = "query($g: ID!) { group(id: $g) {
  id displayName memberCount
  members(first: 1000) { totalCount edges { node { id } } }
  assignedLicenses { product { skuPartNumber } disabledPlans { servicePlanName } }
  licenseProcessingState processedMembers membersToProcess
  hasMembersWithLicenseErrors licenseErrorCount
  licenseErrorCounts { error count }
  membersWithLicenseErrors(first: 1000) { totalCount edges { node { id userPrincipalName } } }
} }";

const SNAPSHOT_HEAD: &str = r#"query {
  directory { displayName defaultUsageLocation }
  rules { loadedAt files planCount productCount exclusiveSetCount prerequisiteCount locationRuleCount lastReloadErrors { file line column message } }
  products { skuPartNumber prepaidUnits consumedUnits availableUnits licensedGroups { id } }
}"#;

const SNAPSHOT_HOLDERS: &str = "query($s: String!) { product(skuPartNumber: $s) { licensedUsers(first: 1000) { totalCount edges { node { id } } } } }";

const SNAPSHOT_GROUPS: &str = r#"query($after: String) {
  groups(first: 20, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node {
    id displayName memberCount members(first: 1000) { edges { node { id } } }
    assignedLicenses { product { skuPartNumber } disabledPlans { servicePlanName } }
    licenseProcessingState processedMembers membersToProcess
    hasMembersWithLicenseErrors licenseErrorCount licenseErrorCounts { error count }
    membersWithLicenseErrors(first: 1000) { edges { node { id } } }
  } } }
}"#;

const SNAPSHOT_USERS: &str = r#"query($after: String) {
  users(first: 100, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node {
    id userPrincipalName displayName usageLocation effectiveUsageLocation proxyAddresses
    accountEnabled externalId
    memberOf { id }
    assignedLicenses { product { skuPartNumber } enabledPlans { servicePlanName } disabledPlans { servicePlanName } }
    licenseAssignmentStates { ...St }
    hasLicenseErrors
  } } }
}
fragment Src on LicenseSource { direct group { id displayName } product { skuPartNumber } }
fragment St on LicenseAssignmentState {
  product { skuPartNumber } assignedByGroup { id } disabledPlans { servicePlanName } state error
  errorDetail { message resolutions violations { code message plans { servicePlanName } conflictingPlan { servicePlanName } conflictingSource { ...Src } missingPrerequisites { servicePlanName } usageLocation proxyAddress conflictingUser { id } products { skuPartNumber } } }
  lastUpdatedDateTime
}"#;

/// Copies a rules folder into `dir/name` (for tests that edit the rules).
pub fn copy_rules(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).expect("rules copy folder");
    for entry in std::fs::read_dir(from).expect("rules folder") {
        let entry = entry.expect("rules entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a rules file");
    }
    to
}

/// Sends one request over a raw connection and returns its status and the whole response.
/// `head` is the request line and the headers of the request's own (Host, Connection and the
/// body's length or chunked coding are added). The body is written by a thread of its own, so
/// that a server answering before it has read it all (413, its right) is seen answering.
pub fn raw_request(s: &Server, head: &str, body: Vec<u8>, chunked: bool) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let head = format!("{head}\r\nHost: {addr}\r\n{framing}\r\nConnection: close\r\n\r\n");
    let mut writer = stream.try_clone().expect("clone the stream");
    let sender = thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        if chunked {
            for piece in body.chunks(64 * 1024) {
                if write!(writer, "{:x}\r\n", piece.len()).is_err()
                    || writer.write_all(piece).is_err()
                    || writer.write_all(b"\r\n").is_err()
                {
                    return;
                }
            }
            let _ = writer.write_all(b"0\r\n\r\n");
        } else {
            let _ = writer.write_all(&body);
        }
    });
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let _ = sender.join();
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, text)
}

/// The Python of the virtual environment `folder/.venv`, made on first use from the pinned
/// `folder/requirements.txt` by the setup script (what `.ci/run` runs ahead of the tests). A
/// venv is built beside the final one and renamed into place, so parallel test binaries never
/// see half of one; the tests of this binary wait for each other.
pub fn pinned_python(folder: &str, setup: &str) -> PathBuf {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(folder);
    let requirements =
        std::fs::read_to_string(dir.join("requirements.txt")).expect("requirements.txt");
    let venv = dir.join(".venv");
    let marker = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(requirements.as_str()) {
        let status = Command::new("bash")
            .arg(root.join(setup))
            .status()
            .unwrap_or_else(|e| panic!("run {setup} (needs python3 with venv): {e}"));
        assert!(status.success(), "{setup} failed: {status}");
        assert_eq!(
            std::fs::read_to_string(&marker).ok().as_deref(),
            Some(requirements.as_str()),
            "{setup} left no venv with the pinned requirements"
        );
    }
    venv.join("bin/python")
}

/// `group-licensing generate`: a tenant of `users` users written into the empty `db`
/// ("All users", groups of 10 to 10,000, and the errors of a real tenant waiting to happen:
/// direct E1 holders, users in CN, duplicate addresses).
pub fn generate_tenant(db: &Path, users: u64, rules: &Path) {
    let made = Command::new(BIN)
        .args(["generate", "--db"])
        .arg(db)
        .args(["--users", &users.to_string(), "--rules"])
        .arg(rules)
        .output()
        .expect("run generate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}
