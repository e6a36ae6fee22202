//! Differential test (issue 6): random sequences of GraphQL mutations played against the real
//! server and against a small reference model of spec/licensing.md (tests/differential/model.rs),
//! comparing after every step what each user holds (L1, L2), every assignment's state, error code
//! and error details (C1–C5, G1), each product's seats (L3) and each group's dashboard counts
//! (Q1). The rules are tests/fixtures/differential-rules: few products, every kind of rule.
//!
//! Each case starts a fresh server (about 50 ms), sets seats and creates users and groups, then
//! plays its operations, waiting after each one until the work queue is empty.
//!
//! Environment:
//! - `DIFFERENTIAL_CASES` (default 32): how many sequences;
//! - `DIFFERENTIAL_OPS` (default 12): the most operations per sequence after the set-up;
//! - `DIFFERENTIAL_SEED`: a fixed seed, to replay a run (the seed is printed).
//!
//! e.g. `DIFFERENTIAL_CASES=500 DIFFERENTIAL_OPS=30 cargo test --test differential -- --nocapture`.

#[path = "server/harness.rs"]
mod harness;
#[path = "support/history_replay.rs"]
mod history_replay;
#[path = "differential/model.rs"]
mod model;
#[path = "differential/preview.rs"]
mod preview;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use serde_json::{Value, json};

use harness::Server;
use model::{
    COUNTRIES, LocationChange, Model, Op, PRODUCTS, Plan, Sku, Source, SourceRef, Violation,
};

// ---- Generated operations ---------------------------------------------------------------------

/// A proxy address from a small pool, in one of three spellings of it (C1 compares them equal).
type Proxy = (usize, usize);

const ADDRESSES: [&str; 3] = ["sales@contoso.com", "info@contoso.com", "ann@contoso.com"];

fn spell((address, spelling): Proxy) -> String {
    let a = ADDRESSES[address % ADDRESSES.len()];
    match spelling % 3 {
        0 => format!("SMTP:{a}"),
        1 => format!("smtp:{}", a.to_uppercase()),
        _ => a.to_string(),
    }
}

/// A license to add: a product and a bit mask over its plans to disable.
type GenLicense = (usize, u8);

/// An operation as generated: users, groups and products are picked among those that exist
/// when it runs.
#[derive(Clone, Debug)]
enum GenOp {
    CreateUser {
        location: Option<usize>,
        proxies: Vec<Proxy>,
    },
    UpdateUser {
        user: Index,
        /// None: unchanged; Some(None): cleared.
        location: Option<Option<usize>>,
        proxies: Option<Vec<Proxy>>,
    },
    DeleteUser {
        user: Index,
    },
    CreateGroup,
    DeleteGroup {
        group: Index,
    },
    SetPrepaid {
        product: usize,
        units: u32,
    },
    SetDefaultLocation {
        country: usize,
    },
    AddMembers {
        group: Index,
        users: Vec<Index>,
    },
    RemoveMembers {
        group: Index,
        users: Vec<Index>,
    },
    AssignLicense {
        user: Index,
        add: Vec<GenLicense>,
        /// Picked among the user's direct licenses (`true`) or among all products.
        remove: Option<(Index, bool)>,
    },
    AssignGroupLicense {
        group: Index,
        add: Vec<GenLicense>,
        /// Picked among the group's licenses (`true`) or among all products.
        remove: Option<(Index, bool)>,
    },
    ReprocessGroup {
        group: Index,
    },
    ReprocessUser {
        user: Index,
    },
}

/// Most users have no proxy address; those that have one share it often enough for C1.
fn proxies() -> impl Strategy<Value = Vec<Proxy>> {
    prop_oneof![
        6 => Just(Vec::new()),
        3 => prop::collection::vec((0..ADDRESSES.len(), 0usize..3), 1..=1),
        1 => prop::collection::vec((0..ADDRESSES.len(), 0usize..3), 2..=2),
    ]
}

/// A product, the ones with a prerequisite (WA, INTUNE_A) more often: a user must hold one
/// from one source and its prerequisite from another before a withdrawal can be blocked (P3).
/// Mostly whole; a disabled plan now and then.
fn license() -> impl Strategy<Value = GenLicense> {
    let index = |sku: &str| {
        PRODUCTS
            .iter()
            .position(|(s, _)| *s == sku)
            .expect("a product of the policy")
    };
    (
        prop_oneof![
            2 => Just(index("E1")),
            2 => Just(index("E3")),
            1 => Just(index("KIOSK")),
            2 => Just(index("EMS")),
            2 => Just(index("INTUNE_A")),
            3 => Just(index("WA")),
        ],
        prop_oneof![3 => Just(0u8), 2 => any::<u8>()],
    )
}

/// Licenses to add: mostly one, sometimes two, now and then none (a pure removal, or with no
/// removal either a request that is refused).
fn license_list() -> impl Strategy<Value = Vec<GenLicense>> {
    prop_oneof![
        1 => Just(Vec::new()),
        6 => prop::collection::vec(license(), 1..=1),
        3 => prop::collection::vec(license(), 2..=2),
    ]
}

fn gen_op() -> impl Strategy<Value = GenOp> {
    let location = prop::option::weighted(0.7, 0..COUNTRIES.len());
    prop_oneof![
        1 => (location.clone(), proxies())
            .prop_map(|(location, proxies)| GenOp::CreateUser { location, proxies }),
        3 => (
            any::<Index>(),
            prop::option::weighted(0.6, prop::option::weighted(0.8, 0..COUNTRIES.len())),
            prop::option::weighted(0.4, proxies()),
        )
            .prop_map(|(user, location, proxies)| GenOp::UpdateUser { user, location, proxies }),
        1 => any::<Index>().prop_map(|user| GenOp::DeleteUser { user }),
        1 => Just(GenOp::CreateGroup),
        1 => any::<Index>().prop_map(|group| GenOp::DeleteGroup { group }),
        2 => (0..PRODUCTS.len(), 0u32..=3)
            .prop_map(|(product, units)| GenOp::SetPrepaid { product, units }),
        1 => (0..COUNTRIES.len()).prop_map(|country| GenOp::SetDefaultLocation { country }),
        4 => (any::<Index>(), prop::collection::vec(any::<Index>(), 1..=3))
            .prop_map(|(group, users)| GenOp::AddMembers { group, users }),
        2 => (any::<Index>(), prop::collection::vec(any::<Index>(), 1..=2))
            .prop_map(|(group, users)| GenOp::RemoveMembers { group, users }),
        4 => (
            any::<Index>(),
            license_list(),
            prop::option::weighted(0.35, (any::<Index>(), prop::bool::weighted(0.9))),
        )
            .prop_map(|(user, add, remove)| GenOp::AssignLicense { user, add, remove }),
        5 => (
            any::<Index>(),
            license_list(),
            prop::option::weighted(0.35, (any::<Index>(), prop::bool::weighted(0.9))),
        )
            .prop_map(|(group, add, remove)| GenOp::AssignGroupLicense { group, add, remove }),
        2 => any::<Index>().prop_map(|group| GenOp::ReprocessGroup { group }),
        1 => any::<Index>().prop_map(|user| GenOp::ReprocessUser { user }),
    ]
}

/// The tenant every case starts from, built through the API like the rest and compared after
/// every step too: seats, groups with licenses, users, and members, so that the operations
/// that follow find users licensed, in error and competing for seats.
#[derive(Clone, Debug)]
struct Setup {
    seats: Vec<u32>,
    /// Each group's first license set.
    groups: Vec<Vec<GenLicense>>,
    users: Vec<(Option<usize>, Vec<Proxy>)>,
    /// Per group, the users (by creation order) who join it, in join order.
    members: Vec<Vec<Index>>,
    /// Per user, a direct license tried once the groups are processed.
    direct: Vec<Option<Vec<GenLicense>>>,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::collection::vec(prop_oneof![1 => Just(0u32), 4 => 1u32..=3], PRODUCTS.len()),
        prop::collection::vec(prop::collection::vec(license(), 1..=2), 2..=3),
        prop::collection::vec(
            (prop::option::weighted(0.85, 0..COUNTRIES.len()), proxies()),
            3..=5,
        ),
        prop::collection::vec(prop::collection::vec(any::<Index>(), 0..=4), 3),
        prop::collection::vec(
            prop::option::weighted(
                0.6,
                prop_oneof![
                    prop::collection::vec(license(), 1..=2),
                    // A dependent plan on top of what the groups gave.
                    (prop_oneof![Just(4usize), Just(5usize)], Just(0u8)).prop_map(|l| vec![l]),
                ],
            ),
            5,
        ),
    )
        .prop_map(|(seats, groups, users, members, direct)| Setup {
            seats,
            groups,
            users,
            members,
            direct,
        })
}

impl Setup {
    /// A fresh server gives ids 1, 2, … (the model checks that it does).
    fn ops(&self) -> Vec<Op> {
        let mut ops: Vec<Op> = PRODUCTS
            .iter()
            .zip(&self.seats)
            .map(|((product, _), units)| Op::SetPrepaid {
                product,
                units: *units,
            })
            .collect();
        ops.extend(self.groups.iter().map(|_| Op::CreateGroup));
        // Two spellings of one address in one list are refused (graphql-api.md); the set-up
        // keeps the first, so that every user exists.
        ops.extend(self.users.iter().map(|(location, proxies)| {
            let mut addresses: Vec<Proxy> = Vec::new();
            for p in proxies {
                if !addresses.iter().any(|a| a.0 == p.0) {
                    addresses.push(*p);
                }
            }
            Op::CreateUser {
                location: location.map(|c| COUNTRIES[c]),
                proxies: addresses.into_iter().map(spell).collect(),
            }
        }));
        for (group, licenses) in (1u64..).zip(&self.groups) {
            ops.push(Op::AssignGroupLicense {
                group,
                add: licenses_of(licenses),
                remove: Vec::new(),
            });
        }
        let users: Vec<u64> = (1u64..).take(self.users.len()).collect();
        for (group, joining) in (1u64..).zip(self.members.iter().take(self.groups.len())) {
            let mut list: Vec<u64> = Vec::new();
            for index in joining {
                let user = users[index.index(users.len())];
                if !list.contains(&user) {
                    list.push(user);
                }
            }
            if !list.is_empty() {
                ops.push(Op::AddMembers { group, users: list });
            }
        }
        for (user, licenses) in users.iter().zip(&self.direct) {
            if let Some(licenses) = licenses {
                ops.push(Op::AssignLicense {
                    user: *user,
                    add: licenses_of(licenses),
                    remove: Vec::new(),
                });
            }
        }
        ops
    }
}

fn pick<T: Copy>(list: &[T], index: &Index) -> Option<T> {
    (!list.is_empty()).then(|| list[index.index(list.len())])
}

fn licenses_of(add: &[GenLicense]) -> Vec<(Sku, Vec<Plan>)> {
    add.iter()
        .map(|(product, mask)| {
            let (sku, plans) = PRODUCTS[product % PRODUCTS.len()];
            let disabled = plans
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, p)| *p)
                .collect();
            (sku, disabled)
        })
        .collect()
}

/// The operation with the model's ids; `None` when it has nothing to act on (no user left).
fn resolve(op: &GenOp, model: &Model) -> Option<Op> {
    let users: Vec<u64> = model.users.keys().copied().collect();
    let groups: Vec<u64> = model.groups.keys().copied().collect();
    let all_skus: Vec<Sku> = PRODUCTS.iter().map(|(s, _)| *s).collect();
    Some(match op {
        GenOp::CreateUser { location, proxies } => Op::CreateUser {
            location: location.map(|c| COUNTRIES[c]),
            proxies: proxies.iter().map(|p| spell(*p)).collect(),
        },
        GenOp::UpdateUser {
            user,
            location,
            proxies,
        } => Op::UpdateUser {
            user: pick(&users, user)?,
            location: location.map(|l| match l {
                Some(c) => LocationChange::Set(COUNTRIES[c]),
                None => LocationChange::Clear,
            }),
            proxies: proxies
                .as_ref()
                .map(|list| list.iter().map(|p| spell(*p)).collect()),
        },
        GenOp::DeleteUser { user } => Op::DeleteUser {
            user: pick(&users, user)?,
        },
        GenOp::CreateGroup => Op::CreateGroup,
        GenOp::DeleteGroup { group } => Op::DeleteGroup {
            group: pick(&groups, group)?,
        },
        GenOp::SetPrepaid { product, units } => Op::SetPrepaid {
            product: PRODUCTS[*product].0,
            units: *units,
        },
        GenOp::SetDefaultLocation { country } => Op::SetDefaultLocation {
            country: COUNTRIES[*country],
        },
        GenOp::AddMembers { group, users: list } => Op::AddMembers {
            group: pick(&groups, group)?,
            users: list
                .iter()
                .map(|u| pick(&users, u))
                .collect::<Option<_>>()?,
        },
        GenOp::RemoveMembers { group, users: list } => {
            let group = pick(&groups, group)?;
            // Mostly members, so that something is withdrawn.
            let members = model.groups[&group].members.clone();
            let from = if members.is_empty() { &users } else { &members };
            Op::RemoveMembers {
                group,
                users: list.iter().map(|u| pick(from, u)).collect::<Option<_>>()?,
            }
        }
        GenOp::AssignLicense { user, add, remove } => {
            let user = pick(&users, user)?;
            let direct: Vec<Sku> = model.users[&user]
                .assignments
                .iter()
                .filter(|a| a.source == Source::Direct)
                .map(|a| a.product)
                .collect();
            let add = licenses_of(add);
            Op::AssignLicense {
                user,
                remove: removal(remove, &direct, &all_skus, &add),
                add,
            }
        }
        GenOp::AssignGroupLicense { group, add, remove } => {
            let group = pick(&groups, group)?;
            let current: Vec<Sku> = model.groups[&group]
                .licenses
                .iter()
                .map(|(s, _)| *s)
                .collect();
            let add = licenses_of(add);
            Op::AssignGroupLicense {
                group,
                remove: removal(remove, &current, &all_skus, &add),
                add,
            }
        }
        GenOp::ReprocessGroup { group } => Op::ReprocessGroup {
            group: pick(&groups, group)?,
        },
        GenOp::ReprocessUser { user } => Op::ReprocessUser {
            user: pick(&users, user)?,
        },
    })
}

/// A product to remove: mostly one the user (or group) has and the request does not add again,
/// sometimes any product (D5, G3).
fn removal(
    remove: &Option<(Index, bool)>,
    current: &[Sku],
    all: &[Sku],
    add: &[(Sku, Vec<Plan>)],
) -> Vec<Sku> {
    let kept: Vec<Sku> = current
        .iter()
        .copied()
        .filter(|s| !add.iter().any(|(a, _)| a == s))
        .collect();
    match remove {
        None => Vec::new(),
        Some((index, true)) if !kept.is_empty() => vec![kept[index.index(kept.len())]],
        Some((_, true)) => Vec::new(),
        Some((index, false)) => vec![all[index.index(all.len())]],
    }
}

// ---- Playing an operation on the server -------------------------------------------------------

const VIOLATION: &str = "code plans { servicePlanName }
  source { direct group { id } product { skuPartNumber } }
  conflictingPlan { servicePlanName }
  conflictingSource { direct group { id } product { skuPartNumber } }
  missingPrerequisites { servicePlanName } usageLocation proxyAddress conflictingUser { id }
  products { skuPartNumber }";

/// What the server answered: the created id, or the error code with its details.
#[derive(Debug, PartialEq)]
enum Answer {
    Done(Option<u64>),
    Refused {
        code: String,
        details: Option<Value>,
    },
}

fn licenses_json(add: &[(Sku, Vec<Plan>)]) -> Value {
    Value::Array(
        add.iter()
            .map(|(s, d)| json!({ "skuPartNumber": s, "disabledPlans": d }))
            .collect(),
    )
}

fn play(server: &Server, op: &Op, upn: &str) -> Answer {
    let id = |n: u64| n.to_string();
    let (query, vars, created): (&str, Value, Option<&str>) = match op {
        Op::CreateUser { location, proxies } => (
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            json!({ "i": { "userPrincipalName": upn, "displayName": upn, "usageLocation": location, "proxyAddresses": proxies } }),
            Some("createUser"),
        ),
        Op::UpdateUser {
            user,
            location,
            proxies,
        } => {
            let mut input = serde_json::Map::new();
            match location {
                Some(LocationChange::Set(c)) => {
                    input.insert("usageLocation".into(), json!(c));
                }
                Some(LocationChange::Clear) => {
                    input.insert("clearUsageLocation".into(), json!(true));
                }
                None => {}
            }
            if let Some(p) = proxies {
                input.insert("proxyAddresses".into(), json!(p));
            }
            (
                "mutation($u: ID!, $i: UpdateUserInput!) { updateUser(id: $u, input: $i) { id } }",
                json!({ "u": id(*user), "i": input }),
                None,
            )
        }
        Op::DeleteUser { user } => (
            "mutation($u: ID!) { deleteUser(id: $u) }",
            json!({ "u": id(*user) }),
            None,
        ),
        Op::CreateGroup => (
            "mutation($n: String!) { createGroup(displayName: $n) { id } }",
            json!({ "n": upn }),
            Some("createGroup"),
        ),
        Op::DeleteGroup { group } => (
            "mutation($g: ID!) { deleteGroup(id: $g) }",
            json!({ "g": id(*group) }),
            None,
        ),
        Op::SetPrepaid { product, units } => (
            "mutation($s: String!, $n: Int!) { setPrepaidUnits(skuPartNumber: $s, units: $n) { prepaidUnits } }",
            json!({ "s": product, "n": units }),
            None,
        ),
        Op::SetDefaultLocation { country } => (
            "mutation($c: String) { updateDirectory(defaultUsageLocation: $c) { defaultUsageLocation } }",
            json!({ "c": country }),
            None,
        ),
        Op::AddMembers { group, users } => (
            "mutation($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { id } }",
            json!({ "g": id(*group), "u": users.iter().map(|u| id(*u)).collect::<Vec<_>>() }),
            None,
        ),
        Op::RemoveMembers { group, users } => (
            "mutation($g: ID!, $u: [ID!]!) { removeGroupMembers(groupId: $g, userIds: $u) { id } }",
            json!({ "g": id(*group), "u": users.iter().map(|u| id(*u)).collect::<Vec<_>>() }),
            None,
        ),
        Op::AssignLicense { user, add, remove } => (
            "mutation($u: ID!, $a: [LicenseInput!]!, $r: [String!]!) { assignLicense(userId: $u, addLicenses: $a, removeLicenses: $r) { id } }",
            json!({ "u": id(*user), "a": licenses_json(add), "r": remove }),
            None,
        ),
        Op::AssignGroupLicense { group, add, remove } => (
            "mutation($g: ID!, $a: [LicenseInput!]!, $r: [String!]!) { assignGroupLicense(groupId: $g, addLicenses: $a, removeLicenses: $r) { id } }",
            json!({ "g": id(*group), "a": licenses_json(add), "r": remove }),
            None,
        ),
        Op::ReprocessGroup { group } => (
            "mutation($g: ID!) { reprocessGroup(groupId: $g) { id } }",
            json!({ "g": id(*group) }),
            None,
        ),
        Op::ReprocessUser { user } => (
            "mutation($u: ID!) { reprocessUser(userId: $u) { id } }",
            json!({ "u": id(*user) }),
            None,
        ),
    };
    let body = server.gql(query, vars);
    if let Some(error) = body["errors"].get(0) {
        return Answer::Refused {
            code: error["extensions"]["code"]
                .as_str()
                .unwrap_or("<no code>")
                .to_string(),
            details: error["extensions"].get("details").cloned(),
        };
    }
    let created = created.map(|field| {
        body["data"][field]["id"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{field} answered no id: {body}"))
    });
    Answer::Done(created)
}

// ---- One comparable view of a tenant ----------------------------------------------------------

/// `LicenseSource`; `group` is null once the group is deleted.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct SourceView {
    direct: bool,
    group: Option<u64>,
    product: String,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct ViolationView {
    code: String,
    plans: BTreeSet<String>,
    source: Option<SourceView>,
    conflicting_plan: Option<String>,
    conflicting_source: Option<SourceView>,
    missing: BTreeSet<String>,
    usage_location: Option<String>,
    proxy_address: Option<String>,
    conflicting_user: Option<u64>,
    products: BTreeSet<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct StateView {
    disabled: BTreeSet<String>,
    state: String,
    error: String,
    /// Sorted: the spec fixes the first one's code (`error`), not the order of the rest.
    violations: Vec<ViolationView>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct UserView {
    usage_location: Option<String>,
    effective_usage_location: String,
    proxies: Vec<String>,
    member_of: BTreeSet<u64>,
    /// L1, L2: held product → enabled plans.
    held: BTreeMap<String, BTreeSet<String>>,
    /// (group, product) → state; group `None`: direct.
    states: BTreeMap<(Option<u64>, String), StateView>,
    has_errors: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct GroupView {
    members: Vec<u64>,
    member_count: i64,
    licenses: Vec<(String, BTreeSet<String>)>,
    processing: String,
    has_errors: bool,
    error_users: i64,
    error_counts: BTreeSet<(String, i64)>,
    /// "largest first" (Q1).
    counts_ordered: bool,
    in_error: BTreeSet<u64>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct TenantView {
    default_location: String,
    /// (prepaid, consumed, available)
    seats: BTreeMap<String, (i64, i64, i64)>,
    users: BTreeMap<u64, UserView>,
    groups: BTreeMap<u64, GroupView>,
}

/// The whole tenant in one query: the tenants here are small (a few users and groups), and the
/// pages are sized to stay under the server's complexity limit; a missing user or group would
/// show as a difference from the model.
fn snapshot_query() -> String {
    format!(
        "query {{
  directory {{ defaultUsageLocation }}
  products {{ skuPartNumber prepaidUnits consumedUnits availableUnits }}
  users(first: 200) {{ edges {{ node {{
    id usageLocation effectiveUsageLocation proxyAddresses memberOf {{ id }} hasLicenseErrors
    assignedLicenses {{ product {{ skuPartNumber }} enabledPlans {{ servicePlanName }} }}
    licenseAssignmentStates {{
      product {{ skuPartNumber }} assignedByGroup {{ id }} disabledPlans {{ servicePlanName }}
      state error errorDetail {{ violations {{ {VIOLATION} }} }}
    }}
  }} }} }}
  groups(first: 50) {{ edges {{ node {{
    id memberCount members(first: 200) {{ edges {{ node {{ id }} }} }}
    assignedLicenses {{ product {{ skuPartNumber }} disabledPlans {{ servicePlanName }} }}
    licenseProcessingState hasMembersWithLicenseErrors licenseErrorCount
    licenseErrorCounts {{ error count }}
    membersWithLicenseErrors(first: 200) {{ edges {{ node {{ id }} }} }}
  }} }} }}
}}"
    )
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

fn opt_text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn id_of(v: &Value) -> u64 {
    text(v).parse().unwrap_or_else(|_| panic!("not an id: {v}"))
}

fn names(list: &Value, field: &str) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {list}"))
        .iter()
        .map(|p| text(&p[field]))
        .collect()
}

fn node_ids(connection: &Value) -> Vec<u64> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("not a connection: {connection}"))
        .iter()
        .map(|e| id_of(&e["node"]["id"]))
        .collect()
}

fn source_view(v: &Value) -> Option<SourceView> {
    (!v.is_null()).then(|| SourceView {
        direct: v["direct"]
            .as_bool()
            .unwrap_or_else(|| panic!("direct: {v}")),
        group: (!v["group"].is_null()).then(|| id_of(&v["group"]["id"])),
        product: text(&v["product"]["skuPartNumber"]),
    })
}

fn violation_view(v: &Value) -> ViolationView {
    ViolationView {
        code: text(&v["code"]),
        plans: names(&v["plans"], "servicePlanName"),
        source: source_view(&v["source"]),
        conflicting_plan: opt_text(&v["conflictingPlan"]["servicePlanName"]),
        conflicting_source: source_view(&v["conflictingSource"]),
        missing: names(&v["missingPrerequisites"], "servicePlanName"),
        usage_location: opt_text(&v["usageLocation"]),
        proxy_address: opt_text(&v["proxyAddress"]),
        conflicting_user: (!v["conflictingUser"].is_null())
            .then(|| id_of(&v["conflictingUser"]["id"])),
        products: names(&v["products"], "skuPartNumber"),
    }
}

fn violations_view(list: &Value) -> Vec<ViolationView> {
    let mut out: Vec<ViolationView> = list
        .as_array()
        .map(|l| l.iter().map(violation_view).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn server_view(data: &Value) -> TenantView {
    let seats = data["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| {
            let n = |f: &str| p[f].as_i64().unwrap_or_else(|| panic!("{f}: {p}"));
            (
                text(&p["skuPartNumber"]),
                (n("prepaidUnits"), n("consumedUnits"), n("availableUnits")),
            )
        })
        .collect();
    let mut users = BTreeMap::new();
    for edge in data["users"]["edges"].as_array().expect("users") {
        let u = &edge["node"];
        let mut states = BTreeMap::new();
        for s in u["licenseAssignmentStates"].as_array().expect("states") {
            let group =
                (!s["assignedByGroup"].is_null()).then(|| id_of(&s["assignedByGroup"]["id"]));
            let key = (group, text(&s["product"]["skuPartNumber"]));
            let view = StateView {
                disabled: names(&s["disabledPlans"], "servicePlanName"),
                state: text(&s["state"]),
                error: text(&s["error"]),
                violations: violations_view(&s["errorDetail"]["violations"]),
            };
            // The first violation gives the code (LicenseErrorDetail).
            let first = &s["errorDetail"]["violations"][0]["code"];
            let consistent = match s["error"].as_str() {
                Some("NONE") => s["errorDetail"].is_null(),
                _ => *first == s["error"],
            };
            assert!(consistent, "error and its first violation disagree: {s:#}");
            let repeated = states.insert(key.clone(), view);
            assert!(repeated.is_none(), "two states for {key:?}: {u:#}");
        }
        let held = u["assignedLicenses"]
            .as_array()
            .expect("assignedLicenses")
            .iter()
            .map(|l| {
                (
                    text(&l["product"]["skuPartNumber"]),
                    names(&l["enabledPlans"], "servicePlanName"),
                )
            })
            .collect();
        users.insert(
            id_of(&u["id"]),
            UserView {
                usage_location: opt_text(&u["usageLocation"]),
                effective_usage_location: text(&u["effectiveUsageLocation"]),
                proxies: u["proxyAddresses"]
                    .as_array()
                    .expect("proxyAddresses")
                    .iter()
                    .map(text)
                    .collect(),
                member_of: u["memberOf"]
                    .as_array()
                    .expect("memberOf")
                    .iter()
                    .map(|g| id_of(&g["id"]))
                    .collect(),
                held,
                states,
                has_errors: u["hasLicenseErrors"].as_bool().expect("hasLicenseErrors"),
            },
        );
    }
    let mut groups = BTreeMap::new();
    for edge in data["groups"]["edges"].as_array().expect("groups") {
        let g = &edge["node"];
        let counts: Vec<(String, i64)> = g["licenseErrorCounts"]
            .as_array()
            .expect("licenseErrorCounts")
            .iter()
            .map(|c| (text(&c["error"]), c["count"].as_i64().expect("count")))
            .collect();
        groups.insert(
            id_of(&g["id"]),
            GroupView {
                members: node_ids(&g["members"]),
                member_count: g["memberCount"].as_i64().expect("memberCount"),
                licenses: g["assignedLicenses"]
                    .as_array()
                    .expect("assignedLicenses")
                    .iter()
                    .map(|l| {
                        (
                            text(&l["product"]["skuPartNumber"]),
                            names(&l["disabledPlans"], "servicePlanName"),
                        )
                    })
                    .collect(),
                processing: text(&g["licenseProcessingState"]),
                has_errors: g["hasMembersWithLicenseErrors"]
                    .as_bool()
                    .expect("has errors"),
                error_users: g["licenseErrorCount"].as_i64().expect("licenseErrorCount"),
                counts_ordered: counts.windows(2).all(|w| w[0].1 >= w[1].1),
                error_counts: counts.into_iter().collect(),
                in_error: node_ids(&g["membersWithLicenseErrors"])
                    .into_iter()
                    .collect(),
            },
        );
    }
    TenantView {
        default_location: text(&data["directory"]["defaultUsageLocation"]),
        seats,
        users,
        groups,
    }
}

// ---- The model's view -------------------------------------------------------------------------

fn model_source(model: &Model, at: SourceRef) -> SourceView {
    SourceView {
        direct: at.source == Source::Direct,
        group: match at.source {
            Source::Direct => None,
            Source::Group(g) => model.groups.contains_key(&g).then_some(g),
        },
        product: at.product.to_string(),
    }
}

fn set_of(plans: impl IntoIterator<Item = Plan>) -> BTreeSet<String> {
    plans.into_iter().map(str::to_string).collect()
}

/// The model's violations as views. Where the spec admits several sources for the plan at
/// fault, the one the server named is taken when it is among them.
fn model_violations(
    model: &Model,
    list: &[Violation],
    seen: &[ViolationView],
) -> Vec<ViolationView> {
    let mut used = vec![false; seen.len()];
    let mut out = Vec::new();
    for v in list {
        let (mut view, sources) = match v {
            Violation::Duplicate {
                address,
                other_user,
            } => (
                ViolationView {
                    code: v.code().into(),
                    plans: BTreeSet::new(),
                    source: None,
                    conflicting_plan: None,
                    conflicting_source: None,
                    missing: BTreeSet::new(),
                    usage_location: None,
                    proxy_address: Some(address.clone()),
                    conflicting_user: model.users.contains_key(other_user).then_some(*other_user),
                    products: BTreeSet::new(),
                },
                BTreeSet::new(),
            ),
            Violation::Location { plans, location } => (
                ViolationView {
                    code: v.code().into(),
                    plans: set_of(plans.iter().copied()),
                    source: None,
                    conflicting_plan: None,
                    conflicting_source: None,
                    missing: BTreeSet::new(),
                    usage_location: Some(location.to_string()),
                    proxy_address: None,
                    conflicting_user: None,
                    products: BTreeSet::new(),
                },
                BTreeSet::new(),
            ),
            Violation::Exclusive {
                plan,
                sources,
                conflicting_plan,
                conflicting_source,
            } => (
                ViolationView {
                    code: v.code().into(),
                    plans: set_of([*plan]),
                    source: None,
                    conflicting_plan: Some(conflicting_plan.to_string()),
                    conflicting_source: Some(model_source(model, *conflicting_source)),
                    missing: BTreeSet::new(),
                    usage_location: None,
                    proxy_address: None,
                    conflicting_user: None,
                    products: BTreeSet::new(),
                },
                sources.iter().map(|s| model_source(model, *s)).collect(),
            ),
            Violation::Dependency {
                plan,
                sources,
                missing,
            } => (
                ViolationView {
                    code: v.code().into(),
                    plans: set_of([*plan]),
                    source: None,
                    conflicting_plan: None,
                    conflicting_source: None,
                    missing: set_of(missing.iter().copied()),
                    usage_location: None,
                    proxy_address: None,
                    conflicting_user: None,
                    products: BTreeSet::new(),
                },
                sources.iter().map(|s| model_source(model, *s)).collect(),
            ),
            Violation::NoSeat { products } => (
                ViolationView {
                    code: v.code().into(),
                    plans: BTreeSet::new(),
                    source: None,
                    conflicting_plan: None,
                    conflicting_source: None,
                    missing: BTreeSet::new(),
                    usage_location: None,
                    proxy_address: None,
                    conflicting_user: None,
                    products: set_of(products.iter().copied()),
                },
                BTreeSet::new(),
            ),
        };
        if !sources.is_empty() {
            let matching = (0..seen.len()).find(|i| {
                let s = &seen[*i];
                !used[*i]
                    && s.source.as_ref().is_some_and(|src| sources.contains(src))
                    && ViolationView {
                        source: None,
                        ..s.clone()
                    } == view
            });
            view.source = match matching {
                Some(i) => {
                    used[i] = true;
                    seen[i].source.clone()
                }
                None => sources.iter().next().cloned(),
            };
        }
        out.push(view);
    }
    out.sort();
    out
}

fn model_view(model: &Model, seen: &TenantView) -> TenantView {
    let seats = PRODUCTS
        .iter()
        .map(|(sku, _)| {
            let prepaid = i64::from(model.prepaid[sku]);
            let consumed = i64::from(model.consumed(sku));
            (
                sku.to_string(),
                (prepaid, consumed, (prepaid - consumed).max(0)),
            )
        })
        .collect();
    let mut users = BTreeMap::new();
    for (id, u) in &model.users {
        let mut states = BTreeMap::new();
        for a in &u.assignments {
            let group = match a.source {
                Source::Direct => None,
                Source::Group(g) => Some(g),
            };
            let key = (group, a.product.to_string());
            let seen_violations = seen
                .users
                .get(id)
                .and_then(|s| s.states.get(&key))
                .map(|s| s.violations.clone())
                .unwrap_or_default();
            let (error, violations) = match &a.error {
                None => ("NONE".to_string(), Vec::new()),
                Some(e) => (
                    e.code().to_string(),
                    model_violations(model, &e.violations, &seen_violations),
                ),
            };
            states.insert(
                key,
                StateView {
                    disabled: set_of(a.shown_disabled()),
                    state: a.state.name().to_string(),
                    error,
                    violations,
                },
            );
        }
        users.insert(
            *id,
            UserView {
                usage_location: u.location.map(str::to_string),
                effective_usage_location: model.effective_location(*id).to_string(),
                proxies: u.proxies.clone(),
                member_of: model
                    .groups
                    .values()
                    .filter(|g| g.members.contains(id))
                    .map(|g| g.id)
                    .collect(),
                held: model
                    .held(*id)
                    .into_iter()
                    .map(|(sku, plans)| (sku.to_string(), set_of(plans)))
                    .collect(),
                states,
                has_errors: u.assignments.iter().any(|a| a.error.is_some()),
            },
        );
    }
    let mut groups = BTreeMap::new();
    for (id, g) in &model.groups {
        // Q1: in error = an assignment from g in ERROR or ACTIVE_WITH_ERROR, members and
        // former members alike.
        let mut in_error = BTreeSet::new();
        let mut per_code: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for u in model.users.values() {
            for a in u
                .assignments
                .iter()
                .filter(|a| a.source == Source::Group(*id))
            {
                if let Some(e) = &a.error {
                    in_error.insert(u.id);
                    per_code
                        .entry(e.code().to_string())
                        .or_default()
                        .insert(u.id);
                }
            }
        }
        groups.insert(
            *id,
            GroupView {
                members: g.members.clone(),
                member_count: g.members.len() as i64,
                licenses: g
                    .licenses
                    .iter()
                    .map(|(sku, disabled)| (sku.to_string(), set_of(disabled.iter().copied())))
                    .collect(),
                processing: "COMPLETE".into(),
                has_errors: !in_error.is_empty(),
                error_users: in_error.len() as i64,
                error_counts: per_code
                    .into_iter()
                    .map(|(code, users)| (code, users.len() as i64))
                    .collect(),
                counts_ordered: true,
                in_error,
            },
        );
    }
    TenantView {
        default_location: model.default_location.to_string(),
        seats,
        users,
        groups,
    }
}

/// The expected answer of a mutation, its details as [`normalize_answer`] leaves the server's.
fn model_answer(model: &Model, outcome: &model::Outcome, seen: &Answer) -> Answer {
    match outcome {
        Ok(created) => Answer::Done(*created),
        Err(refusal) => {
            let details = refusal.error.as_ref().map(|e| {
                let seen_violations = match seen {
                    Answer::Refused {
                        details: Some(d), ..
                    } => violations_view(d),
                    _ => Vec::new(),
                };
                details_json(&model_violations(model, &e.violations, &seen_violations))
            });
            Answer::Refused {
                code: refusal.code.to_string(),
                details,
            }
        }
    }
}

/// Violations back as comparable JSON, so that both answers compare alike.
fn details_json(list: &[ViolationView]) -> Value {
    Value::Array(
        list.iter()
            .map(|v| Value::String(format!("{v:?}")))
            .collect(),
    )
}

fn normalize_answer(answer: Answer) -> Answer {
    match answer {
        Answer::Refused { code, details } => Answer::Refused {
            code,
            details: details.map(|d| details_json(&violations_view(&d))),
        },
        done => done,
    }
}

// ---- Running a case ---------------------------------------------------------------------------

fn rules_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/differential-rules")
}

fn differences(expected: &TenantView, seen: &TenantView) -> String {
    let mut out = String::new();
    if expected.default_location != seen.default_location {
        let _ = writeln!(
            out,
            "directory default: model {} server {}",
            expected.default_location, seen.default_location
        );
    }
    if expected.seats != seen.seats {
        let _ = writeln!(
            out,
            "seats (prepaid, consumed, available): model {:?}\n  server {:?}",
            expected.seats, seen.seats
        );
    }
    let ids: BTreeSet<u64> = expected
        .users
        .keys()
        .chain(seen.users.keys())
        .copied()
        .collect();
    for id in ids {
        let (e, s) = (expected.users.get(&id), seen.users.get(&id));
        if e != s {
            let _ = writeln!(out, "user {id}:\n  model  {e:#?}\n  server {s:#?}");
        }
    }
    let ids: BTreeSet<u64> = expected
        .groups
        .keys()
        .chain(seen.groups.keys())
        .copied()
        .collect();
    for id in ids {
        let (e, s) = (expected.groups.get(&id), seen.groups.get(&id));
        if e != s {
            let _ = writeln!(out, "group {id}:\n  model  {e:#?}\n  server {s:#?}");
        }
    }
    out
}

/// Counts over the whole run, for the summary: what was compared, and how often each kind of
/// operation and each state and error came up (a generator that never reaches a state tests
/// nothing about it). After a failure, the runs made while shrinking it count too.
#[derive(Default)]
struct Tally {
    cases: Cell<u64>,
    steps: Cell<u64>,
    refused: Cell<u64>,
    license_errors: Cell<u64>,
    states_compared: Cell<u64>,
    /// Previews checked against what the operation then did (W4).
    previews: Cell<u64>,
    /// operation → outcome (`ok` or the error code) → count
    answers: RefCell<BTreeMap<String, BTreeMap<String, u64>>>,
    /// (state, error) → count, over every state compared
    states: RefCell<BTreeMap<(String, String), u64>>,
}

impl Tally {
    fn summary(&self) -> String {
        let mut out = String::new();
        for (op, outcomes) in self.answers.borrow().iter() {
            let _ = writeln!(out, "  {op:<20} {outcomes:?}");
        }
        for ((state, error), n) in self.states.borrow().iter() {
            let _ = writeln!(out, "  {state:<18} {error:<40} {n}");
        }
        out
    }
}

/// The newest event's id, 0 when there is none.
fn newest_event(server: &Server) -> u64 {
    let page = server.ok(
        "{ auditEvents(first: 1) { edges { node { id } } } }",
        json!({}),
    );
    let node = &page["auditEvents"]["edges"][0]["node"];
    if node.is_null() {
        0
    } else {
        id_of(&node["id"])
    }
}

/// The activity (H2) each operation records.
fn activity_of(op: &Op) -> &'static str {
    match op {
        Op::CreateUser { .. } => "Add user",
        Op::UpdateUser { .. } => "Update user",
        Op::DeleteUser { .. } => "Delete user",
        Op::CreateGroup => "Add group",
        Op::DeleteGroup { .. } => "Delete group",
        Op::SetPrepaid { .. } => "Set prepaid units",
        Op::SetDefaultLocation { .. } => "Update directory",
        Op::AddMembers { .. } => "Add member to group",
        Op::RemoveMembers { .. } => "Remove member from group",
        Op::AssignLicense { .. } => "Change user license",
        Op::AssignGroupLicense { .. } => "Set group license",
        Op::ReprocessGroup { .. } => "Reprocess group",
        Op::ReprocessUser { .. } => "Reprocess user",
    }
}

/// The events a step left: the operation's own (its activity; `FAILURE` with `CODE: message`
/// when refused, H5), then only processing's (H4).
fn check_events(server: &Server, op: &Op, answer: &Answer, after: u64) -> Result<(), String> {
    let page = server.ok(
        "{ auditEvents(first: 1000) { edges { node { id activityDisplayName category initiatedBy { kind } result resultReason } } } }",
        json!({}),
    );
    let mut events: Vec<Value> = page["auditEvents"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["node"].clone())
        .filter(|e| id_of(&e["id"]) > after)
        .collect();
    events.reverse();
    // N2: alerts the step raised or resolved are events of their own, whoever's change caused
    // them; whether the right ones stand is `check_alerts`' work.
    let alert_activity = |e: &Value| {
        e["category"] == "NOTIFICATIONS"
            && (e["activityDisplayName"] == "Raise alert"
                || e["activityDisplayName"] == "Resolve alert")
    };
    if let Some(e) = events
        .iter()
        .find(|e| alert_activity(e) && e["result"] != "SUCCESS")
    {
        return Err(format!("an alert event that failed: {e}"));
    }
    let (own, processing): (Vec<&Value>, Vec<&Value>) = events
        .iter()
        .filter(|e| !alert_activity(e))
        .partition(|e| e["initiatedBy"]["kind"] == "LOCAL");
    let activity = activity_of(op);
    if let Some(e) = own.iter().find(|e| e["activityDisplayName"] != activity) {
        return Err(format!(
            "an event of another activity than {activity:?}: {e}"
        ));
    }
    match answer {
        Answer::Refused { code, .. } => {
            let reason = text(
                &own.first()
                    .map_or(Value::Null, |e| e["resultReason"].clone()),
            );
            if own.len() != 1
                || own[0]["result"] != "FAILURE"
                || !reason.starts_with(&format!("{code}: "))
            {
                return Err(format!(
                    "a refusal ({code}) must leave one FAILURE event: {own:?}"
                ));
            }
        }
        Answer::Done(_) => {
            let most = match op {
                Op::AddMembers { users, .. } | Op::RemoveMembers { users, .. } => users.len(),
                _ => 1,
            };
            let least = usize::from(!matches!(
                op,
                Op::AddMembers { .. } | Op::RemoveMembers { .. } | Op::UpdateUser { .. }
            ));
            if own.len() < least || own.len() > most || own.iter().any(|e| e["result"] != "SUCCESS")
            {
                return Err(format!(
                    "{least} to {most} SUCCESS events expected: {own:?}"
                ));
            }
        }
    }
    let system = [
        "Start applying group based license to users",
        "Finish applying group based license to users",
        "Change user license",
    ];
    if let Some(e) = processing.iter().find(|e| {
        e["initiatedBy"]["kind"] != "SYSTEM"
            || e["category"] != "LICENSE_PROCESSING"
            || !system.contains(&text(&e["activityDisplayName"]).as_str())
    }) {
        return Err(format!("not an event of processing: {e}"));
    }
    Ok(())
}

/// N1: the alerts that stand are those the model's state calls for (no thresholds are set
/// here, so no LOW_SEATS): SEATS_EXHAUSTED per product with an assignment in
/// COUNT_VIOLATION, LICENSE_ERRORS per group with a member in error; and N2: one standing per
/// subject, each resolved alert resolved after it was raised.
fn check_alerts(server: &Server, model: &Model) -> Result<(), String> {
    let mut want: BTreeSet<(String, String)> = BTreeSet::new();
    for user in model.users.values() {
        for a in &user.assignments {
            let Some(error) = &a.error else { continue };
            if error.code() == "COUNT_VIOLATION" {
                want.insert(("SEATS_EXHAUSTED".into(), a.product.to_string()));
            }
            if let model::Source::Group(g) = a.source {
                want.insert(("LICENSE_ERRORS".into(), format!("group {g}")));
            }
        }
    }
    let page = server.ok(
        "{ alerts(first: 1000) { edges { node { kind raisedDateTime resolvedDateTime product { skuPartNumber } group { id } } } } }",
        json!({}),
    );
    let mut standing: Vec<(String, String)> = Vec::new();
    for e in page["alerts"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let a = &e["node"];
        let subject = if a["product"].is_null() {
            format!("group {}", text(&a["group"]["id"]))
        } else {
            text(&a["product"]["skuPartNumber"])
        };
        if a["resolvedDateTime"].is_null() {
            standing.push((text(&a["kind"]), subject));
        } else if text(&a["resolvedDateTime"]) < text(&a["raisedDateTime"]) {
            return Err(format!("an alert resolved before it was raised: {a}"));
        }
    }
    let got: BTreeSet<(String, String)> = standing.iter().cloned().collect();
    if got.len() != standing.len() {
        return Err(format!("an alert stands twice: {standing:?}"));
    }
    if got != want {
        return Err(format!(
            "standing alerts {got:?}, the model's state calls for {want:?}"
        ));
    }
    Ok(())
}

fn op_kind(op: &Op) -> String {
    let debug = format!("{op:?}");
    debug.split('(').next().unwrap_or_default().to_string()
}

fn run_case(setup: &Setup, ops: &[GenOp], tally: &Tally) -> Result<(), TestCaseError> {
    let mut steps: Vec<Step<'_>> = setup.ops().into_iter().map(Step::Ready).collect();
    steps.extend(ops.iter().map(Step::Later));
    run_steps(&steps, tally).map(|_| ())
}

/// Plays `steps` on a fresh server and on the model, comparing after each; returns the model.
fn run_steps(steps: &[Step<'_>], tally: &Tally) -> Result<Model, TestCaseError> {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let server = Server::start(&dir.path().join("d.db"), &rules_dir());
    let mut model = Model::new();
    let mut trace = String::new();
    let snapshot = snapshot_query();
    let mut names = 0u32;
    let mut last_seen: Option<TenantView> = None;
    for (n, step) in steps.iter().enumerate() {
        // Generated operations pick among the users and groups that exist when they run.
        let op = match step {
            Step::Ready(op) => op.clone(),
            Step::Later(g) => match resolve(g, &model) {
                Some(op) => op,
                None => continue,
            },
        };
        names += 1;
        let name = format!("user{names}@contoso.com");
        let expected = model.apply(&op);
        // W4: the preview asked now must say what committing and processing the operation does.
        let before = match (&last_seen, preview::ask(&server, &op)) {
            (_, None) => None,
            (Some(view), Some(p)) => Some((view.clone(), p)),
            (None, Some(p)) => Some((server_view(&server.ok(&snapshot, json!({}))), p)),
        };
        let events_before = newest_event(&server);
        let raw = play(&server, &op, &name);
        server.wait_idle();
        let _ = writeln!(trace, "  {n:>2}. {op:?} -> {expected:?}");
        let want = model_answer(&model, &expected, &raw);
        let answer = normalize_answer(raw);
        if want != answer {
            return Err(TestCaseError::fail(format!(
                "step {n}, {op:?}: the server answered {answer:#?}\nthe model expects {want:#?}\noperations:\n{trace}"
            )));
        }
        let outcome = match &answer {
            Answer::Refused { code, details } => {
                tally.refused.set(tally.refused.get() + 1);
                if details.is_some() {
                    tally.license_errors.set(tally.license_errors.get() + 1);
                }
                code.clone()
            }
            Answer::Done(_) => "ok".to_string(),
        };
        *tally
            .answers
            .borrow_mut()
            .entry(op_kind(&op))
            .or_default()
            .entry(outcome)
            .or_default() += 1;
        // H1–H5: the step's own events, and the whole history against the rows.
        let mut problems = Vec::new();
        if let Err(problem) = check_events(&server, &op, &answer, events_before) {
            problems.push(problem);
        }
        if let Err(problem) = check_alerts(&server, &model) {
            problems.push(problem);
        }
        let conn = rusqlite::Connection::open_with_flags(
            &server.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the database");
        history_replay::check_history(&conn, &history_replay::Told::default(), &mut problems, "");
        if !problems.is_empty() {
            return Err(TestCaseError::fail(format!(
                "step {n}, {op:?}: the history is wrong:\n{}\noperations:\n{trace}",
                problems.join("\n")
            )));
        }
        let seen = server_view(&server.ok(&snapshot, json!({})));
        if let Some((view, p)) = &before {
            preview::check(p, &op, &answer, view, &seen).map_err(|problem| {
                TestCaseError::fail(format!(
                    "step {n}, {op:?}: the preview differs from what happened:\n{problem}\noperations:\n{trace}"
                ))
            })?;
            tally.previews.set(tally.previews.get() + 1);
        }
        let expected_view = model_view(&model, &seen);
        if expected_view != seen {
            return Err(TestCaseError::fail(format!(
                "after step {n}, {op:?}, the server and the model differ:\n{}\noperations:\n{trace}",
                differences(&expected_view, &seen)
            )));
        }
        last_seen = Some(seen.clone());
        tally.steps.set(tally.steps.get() + 1);
        let states: usize = seen.users.values().map(|u| u.states.len()).sum();
        for st in seen.users.values().flat_map(|u| u.states.values()) {
            *tally
                .states
                .borrow_mut()
                .entry((st.state.clone(), st.error.clone()))
                .or_default() += 1;
        }
        tally
            .states_compared
            .set(tally.states_compared.get() + states as u64);
    }
    tally.cases.set(tally.cases.get() + 1);
    Ok(model)
}

/// One step of a case: an operation fixed in advance (the set-up, the fixed sequences), or a
/// generated one, resolved against the tenant as it is when its turn comes.
enum Step<'a> {
    Ready(Op),
    Later(&'a GenOp),
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")),
        Err(_) => default,
    }
}

#[test]
fn the_server_follows_the_reference_model_step_by_step() {
    let cases = env_number("DIFFERENTIAL_CASES", 32) as u32;
    let max_ops = env_number("DIFFERENTIAL_OPS", 12) as usize;
    let seed = env_number(
        "DIFFERENTIAL_SEED",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    eprintln!(
        "differential: {cases} cases of up to {max_ops} operations, DIFFERENTIAL_SEED={seed}"
    );
    let config = Config {
        cases,
        max_shrink_iters: 256,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let tally = Tally::default();
    let start = Instant::now();
    let strategy = (setup(), prop::collection::vec(gen_op(), 1..=max_ops.max(1)));
    let result = runner.run(&strategy, |(setup, ops)| run_case(&setup, &ops, &tally));
    eprintln!(
        "differential: {} cases, {} steps compared ({} refused, {} with license errors), {} assignment states compared, {} previews checked, {:.1} s",
        tally.cases.get(),
        tally.steps.get(),
        tally.refused.get(),
        tally.license_errors.get(),
        tally.states_compared.get(),
        tally.previews.get(),
        start.elapsed().as_secs_f64()
    );
    eprint!("{}", tally.summary());
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, (setup, ops))) => panic!(
            "the server and the model disagree (DIFFERENTIAL_SEED={seed}).\n{reason}\nminimal input: {setup:?}\n{ops:#?}"
        ),
        Err(TestError::Abort(reason)) => panic!("aborted: {reason}"),
    }
}

/// A fixed sequence through the same comparison: a withdrawal blocked by C4 (P3) and
/// unblocked later. Checks that the model reaches the state, so that the comparison covers it.
#[test]
fn a_blocked_withdrawal_step_by_step() {
    let ops = vec![
        Op::SetPrepaid {
            product: "EMS",
            units: 2,
        },
        Op::SetPrepaid {
            product: "INTUNE_A",
            units: 2,
        },
        Op::CreateGroup,
        Op::CreateGroup,
        Op::CreateUser {
            location: Some("US"),
            proxies: Vec::new(),
        },
        Op::AssignGroupLicense {
            group: 1,
            add: vec![("EMS", Vec::new())],
            remove: Vec::new(),
        },
        Op::AddMembers {
            group: 1,
            users: vec![1],
        },
        // INTUNE from a second source; its prerequisite AAD only through the group's EMS.
        Op::AssignLicense {
            user: 1,
            add: vec![("INTUNE_A", Vec::new())],
            remove: Vec::new(),
        },
        Op::RemoveMembers {
            group: 1,
            users: vec![1],
        },
    ];
    let steps: Vec<Step<'_>> = ops.into_iter().map(Step::Ready).collect();
    let tally = Tally::default();
    let model = match run_steps(&steps, &tally) {
        Ok(model) => model,
        Err(e) => panic!("{e}"),
    };
    let a = model.users[&1]
        .assignments
        .iter()
        .find(|a| a.source == Source::Group(1))
        .expect("the withdrawal is blocked, the assignment stays");
    assert_eq!(a.state, model::State::ActiveWithError);
    assert_eq!(
        a.error.as_ref().map(|e| e.code()),
        Some("DEPENDENCY_VIOLATION")
    );
}

/// P5: adding members processes them for the group, even a group with no license left: a
/// former member's withdrawal that C4 blocked (P3) is retried when it joins again.
#[test]
fn rejoining_a_group_without_licenses_retries_its_blocked_withdrawal() {
    let ops = vec![
        Op::SetPrepaid {
            product: "EMS",
            units: 2,
        },
        Op::SetPrepaid {
            product: "INTUNE_A",
            units: 2,
        },
        Op::CreateGroup,
        Op::CreateGroup,
        Op::CreateUser {
            location: Some("US"),
            proxies: Vec::new(),
        },
        Op::AssignGroupLicense {
            group: 1,
            add: vec![("EMS", Vec::new())],
            remove: Vec::new(),
        },
        Op::AssignGroupLicense {
            group: 2,
            add: vec![("EMS", Vec::new())],
            remove: Vec::new(),
        },
        Op::AddMembers {
            group: 1,
            users: vec![1],
        },
        Op::AssignLicense {
            user: 1,
            add: vec![("INTUNE_A", Vec::new())],
            remove: Vec::new(),
        },
        // Blocked: INTUNE (direct) needs AAD, which only group 1's EMS gives.
        Op::AssignGroupLicense {
            group: 1,
            add: Vec::new(),
            remove: vec!["EMS"],
        },
        Op::RemoveMembers {
            group: 1,
            users: vec![1],
        },
        // AAD through group 2 too; group 1's withdrawal could go now, but nothing retries it.
        Op::AddMembers {
            group: 2,
            users: vec![1],
        },
        // Joining group 1 again processes the user for it (P5): the withdrawal goes.
        Op::AddMembers {
            group: 1,
            users: vec![1],
        },
    ];
    let steps: Vec<Step<'_>> = ops.into_iter().map(Step::Ready).collect();
    let model = match run_steps(&steps, &Tally::default()) {
        Ok(model) => model,
        Err(e) => panic!("{e}"),
    };
    assert!(
        !model.users[&1]
            .assignments
            .iter()
            .any(|a| a.source == Source::Group(1)),
        "the model applies the withdrawal: {:#?}",
        model.users[&1]
    );
}
