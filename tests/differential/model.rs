//! A reference model of spec/licensing.md for the differential test (tests/differential.rs):
//! slow, simple and written from the spec text rule by rule, with no code of the crate (not its
//! engine, not its rules compiler). Plans are names, sets are `BTreeSet`s, every check is a
//! plain loop over the whole tenant.
//!
//! Where the spec leaves a choice open, the model follows the choice the server documents, and
//! the comment says so ("server's choice"). Where the spec names no single answer (which of
//! several sources "the source" of a plan is), the model keeps every admissible answer and the
//! comparison accepts any of them.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

// ---- The policy: tests/fixtures/differential-rules/differential.rules, coded by hand ----------

pub type Plan = &'static str;
pub type Sku = &'static str;

/// In declaration order: C3 names a pair once, and when both plans of a pair come in with the
/// change, the plan declared first is "the plan" (server's choice; the spec says "each pair").
pub const PLANS: [Plan; 9] = [
    "EXO1", "EXO2", "EXOK", "SPO1", "SPO2", "TEAMS", "AAD", "INTUNE", "WA",
];

pub const PRODUCTS: [(Sku, &[Plan]); 6] = [
    ("E1", &["EXO1", "SPO1", "TEAMS"]),
    ("E3", &["EXO2", "SPO2", "TEAMS"]),
    ("KIOSK", &["EXOK"]),
    ("EMS", &["AAD", "INTUNE"]),
    ("INTUNE_A", &["INTUNE"]),
    ("WA", &["WA"]),
];

/// R1: any two plans of one set are mutually exclusive.
const EXCLUSIVE_SETS: [&[Plan]; 2] = [&["EXO1", "EXO2", "EXOK"], &["SPO1", "SPO2"]];

/// R2: the plan may be enabled only while one of the list is.
const PREREQUISITES: [(Plan, &[Plan]); 2] = [("WA", &["EXO1", "EXO2"]), ("INTUNE", &["AAD"])];

enum Where {
    Unavailable(&'static [&'static str]),
    AvailableOnly(&'static [&'static str]),
}

/// R3.
const LOCATION_RULES: [(Plan, Where); 2] = [
    ("TEAMS", Where::Unavailable(&["CN"])),
    ("WA", Where::AvailableOnly(&["US", "GB"])),
];

/// The countries the test uses: one where everything is allowed, one that bars TEAMS, two that
/// bar WA.
pub const COUNTRIES: [&str; 4] = ["US", "GB", "CN", "FR"];

pub fn product_plans(sku: &str) -> Option<&'static [Plan]> {
    PRODUCTS.iter().find(|(s, _)| *s == sku).map(|(_, p)| *p)
}

fn declared_at(plan: Plan) -> usize {
    PLANS.iter().position(|p| *p == plan).unwrap_or(usize::MAX)
}

/// R3: whether `plan` may be enabled for a user located in `country`.
fn allowed_in(plan: Plan, country: &str) -> bool {
    LOCATION_RULES.iter().all(|(p, rule)| {
        *p != plan
            || match rule {
                Where::Unavailable(list) => !list.contains(&country),
                Where::AvailableOnly(list) => list.contains(&country),
            }
    })
}

/// The plans of `sku` that `disabled` leaves enabled.
fn enabled_of(sku: Sku, disabled: &BTreeSet<Plan>) -> BTreeSet<Plan> {
    product_plans(sku)
        .unwrap_or(&[])
        .iter()
        .copied()
        .filter(|p| !disabled.contains(p))
        .collect()
}

// ---- Data -----------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Source {
    Direct,
    Group(u64),
}

/// A source and the product a plan comes through (`LicenseSource`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct SourceRef {
    pub source: Source,
    pub product: Sku,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Pending,
    Active,
    ActiveWithError,
    Error,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Active => "ACTIVE",
            State::ActiveWithError => "ACTIVE_WITH_ERROR",
            State::Error => "ERROR",
        }
    }
}

/// One violation found by C1–C5 or G1.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Violation {
    /// C1: the address as the user has it, and the other user.
    Duplicate { address: String, other_user: u64 },
    /// C2.
    Location {
        plans: BTreeSet<Plan>,
        location: &'static str,
    },
    /// C3: `plan` comes through one of `sources` (every source that brings it with the change);
    /// `conflicting_plan` through `conflicting_source`. One violation per source of the
    /// conflicting plan (server's choice; the spec asks for "the source" of each).
    Exclusive {
        plan: Plan,
        sources: BTreeSet<SourceRef>,
        conflicting_plan: Plan,
        conflicting_source: SourceRef,
    },
    /// C4: `plan`, enabled through one of `sources`, lacks all of `missing`.
    Dependency {
        plan: Plan,
        sources: BTreeSet<SourceRef>,
        missing: BTreeSet<Plan>,
    },
    /// C5.
    NoSeat { products: BTreeSet<Sku> },
}

impl Violation {
    pub fn code(&self) -> &'static str {
        match self {
            Violation::Duplicate { .. } => "UNIQUENESS_VIOLATION",
            Violation::Location { .. } => "PROHIBITED_IN_USAGE_LOCATION_VIOLATION",
            Violation::Exclusive { .. } => "MUTUALLY_EXCLUSIVE_VIOLATION",
            Violation::Dependency { .. } => "DEPENDENCY_VIOLATION",
            Violation::NoSeat { .. } => "COUNT_VIOLATION",
        }
    }
}

/// Every violation found, in check order: the first gives the code.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LicenseError {
    pub violations: Vec<Violation>,
}

impl LicenseError {
    pub fn code(&self) -> &'static str {
        self.violations.first().map_or("OTHER", Violation::code)
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Intent {
    /// License the user with these plans disabled.
    Assign(BTreeSet<Plan>),
    /// The source withdrew it (P3).
    Withdraw,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Assignment {
    pub product: Sku,
    pub source: Source,
    pub intent: Intent,
    /// The disabled plans of the configuration in force; `None`: never applied.
    pub applied: Option<BTreeSet<Plan>>,
    pub state: State,
    pub error: Option<LicenseError>,
}

impl Assignment {
    fn applied_plans(&self) -> BTreeSet<Plan> {
        match &self.applied {
            Some(disabled) => enabled_of(self.product, disabled),
            None => BTreeSet::new(),
        }
    }

    fn at(&self) -> SourceRef {
        SourceRef {
            source: self.source,
            product: self.product,
        }
    }

    /// `disabledPlans` as the API shows it: what the source asks for, or for a pending
    /// withdrawal the configuration in force.
    pub fn shown_disabled(&self) -> BTreeSet<Plan> {
        match (&self.intent, &self.applied) {
            (Intent::Assign(d), _) => d.clone(),
            (Intent::Withdraw, Some(d)) => d.clone(),
            (Intent::Withdraw, None) => BTreeSet::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: u64,
    pub upn: String,
    pub location: Option<&'static str>,
    pub proxies: Vec<String>,
    pub assignments: Vec<Assignment>,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: u64,
    /// The license set in its order: product and disabled plans.
    pub licenses: Vec<(Sku, BTreeSet<Plan>)>,
    /// In join order (P1).
    pub members: Vec<u64>,
}

/// How an operation failed: the `extensions.code`, and for a license error its violations.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Refusal {
    pub code: &'static str,
    pub error: Option<LicenseError>,
}

impl Refusal {
    fn input() -> Refusal {
        Refusal {
            code: "BAD_USER_INPUT",
            error: None,
        }
    }
    fn not_found() -> Refusal {
        Refusal {
            code: "NOT_FOUND",
            error: None,
        }
    }
    fn of(error: LicenseError) -> Refusal {
        Refusal {
            code: error.code(),
            error: Some(error),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LocationChange {
    Set(&'static str),
    Clear,
}

/// One mutation, with the model's ids.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    CreateUser {
        location: Option<&'static str>,
        proxies: Vec<String>,
    },
    UpdateUser {
        user: u64,
        location: Option<LocationChange>,
        proxies: Option<Vec<String>>,
    },
    DeleteUser {
        user: u64,
    },
    CreateGroup,
    DeleteGroup {
        group: u64,
    },
    SetPrepaid {
        product: Sku,
        units: u32,
    },
    SetDefaultLocation {
        country: &'static str,
    },
    AddMembers {
        group: u64,
        users: Vec<u64>,
    },
    RemoveMembers {
        group: u64,
        users: Vec<u64>,
    },
    AssignLicense {
        user: u64,
        add: Vec<(Sku, Vec<Plan>)>,
        remove: Vec<Sku>,
    },
    AssignGroupLicense {
        group: u64,
        add: Vec<(Sku, Vec<Plan>)>,
        remove: Vec<Sku>,
    },
    ReprocessGroup {
        group: u64,
    },
    ReprocessUser {
        user: u64,
    },
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let licenses = |add: &[(Sku, Vec<Plan>)]| {
            add.iter()
                .map(|(s, d)| {
                    if d.is_empty() {
                        s.to_string()
                    } else {
                        format!("{s} -{}", d.join(" -"))
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Op::CreateUser { location, proxies } => {
                write!(f, "createUser(location {location:?}, proxies {proxies:?})")
            }
            Op::UpdateUser {
                user,
                location,
                proxies,
            } => write!(
                f,
                "updateUser(user {user}, location {location:?}, proxies {proxies:?})"
            ),
            Op::DeleteUser { user } => write!(f, "deleteUser(user {user})"),
            Op::CreateGroup => write!(f, "createGroup"),
            Op::DeleteGroup { group } => write!(f, "deleteGroup(group {group})"),
            Op::SetPrepaid { product, units } => write!(f, "setPrepaidUnits({product}, {units})"),
            Op::SetDefaultLocation { country } => {
                write!(f, "updateDirectory(defaultUsageLocation {country})")
            }
            Op::AddMembers { group, users } => {
                write!(f, "addGroupMembers(group {group}, users {users:?})")
            }
            Op::RemoveMembers { group, users } => {
                write!(f, "removeGroupMembers(group {group}, users {users:?})")
            }
            Op::AssignLicense { user, add, remove } => write!(
                f,
                "assignLicense(user {user}, add [{}], remove {remove:?})",
                licenses(add)
            ),
            Op::AssignGroupLicense { group, add, remove } => write!(
                f,
                "assignGroupLicense(group {group}, add [{}], remove {remove:?})",
                licenses(add)
            ),
            Op::ReprocessGroup { group } => write!(f, "reprocessGroup(group {group})"),
            Op::ReprocessUser { user } => write!(f, "reprocessUser(user {user})"),
        }
    }
}

/// What a successful operation answers: the id it created, if any.
pub type Outcome = Result<Option<u64>, Refusal>;

/// One C1 finding.
struct Duplicate {
    address: String,
    other_user: u64,
}

/// What a step would do to one user, for C1–C5.
struct Change {
    /// Enabled set before the change.
    before: BTreeSet<Plan>,
    /// Enabled set after it.
    after: BTreeSet<Plan>,
    /// The plans the change enables (or, re-validating, the plans under review).
    candidate: BTreeSet<Plan>,
    /// Where each plan of `after` comes from.
    after_from: Vec<(SourceRef, BTreeSet<Plan>)>,
    /// Where each candidate plan comes from.
    candidate_from: Vec<(SourceRef, BTreeSet<Plan>)>,
    /// C1 applies and found this.
    duplicate: Option<Duplicate>,
    /// C2 applies, against this location.
    location: Option<&'static str>,
    c3: bool,
    c4: bool,
    /// C5: the products without seats.
    unseated: BTreeSet<Sku>,
}

impl Change {
    /// C1–C5 in their order, every violation found (licensing.md "C — checks").
    fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        // C1
        if let Some(d) = &self.duplicate {
            out.push(Violation::Duplicate {
                address: d.address.clone(),
                other_user: d.other_user,
            });
        }
        // C2 (R3): a candidate plan not allowed where the user is.
        if let Some(country) = self.location {
            let plans: BTreeSet<Plan> = self
                .candidate
                .iter()
                .copied()
                .filter(|p| !allowed_in(p, country))
                .collect();
            if !plans.is_empty() {
                out.push(Violation::Location {
                    plans,
                    location: country,
                });
            }
        }
        // C3 (R1): two plans of one set both enabled after the change, one of them a candidate.
        if self.c3 {
            for set in EXCLUSIVE_SETS {
                let mut present: Vec<Plan> = set
                    .iter()
                    .copied()
                    .filter(|p| self.after.contains(p))
                    .collect();
                present.sort_by_key(|p| declared_at(p));
                for i in 0..present.len() {
                    for j in i + 1..present.len() {
                        let (a, b) = (present[i], present[j]);
                        let (plan, other) = if self.candidate.contains(a) {
                            (a, b)
                        } else if self.candidate.contains(b) {
                            (b, a)
                        } else {
                            continue;
                        };
                        let sources = providers(&self.candidate_from, plan);
                        for conflicting_source in providers(&self.after_from, other) {
                            out.push(Violation::Exclusive {
                                plan,
                                sources: sources.clone(),
                                conflicting_plan: other,
                                conflicting_source,
                            });
                        }
                    }
                }
            }
        }
        // C4 (R2): a plan enabled after the change with none of its prerequisites. The change is
        // blamed only for a prerequisite it takes away or a plan it newly enables (server's
        // documented choice: a rule already unmet before, its plan already enabled, came from
        // elsewhere).
        if self.c4 {
            for (plan, alternatives) in PREREQUISITES {
                let unmet = |set: &BTreeSet<Plan>| !alternatives.iter().any(|a| set.contains(a));
                if !self.after.contains(plan) || !unmet(&self.after) {
                    continue;
                }
                let caused = !self.before.contains(plan) || !unmet(&self.before);
                if caused {
                    out.push(Violation::Dependency {
                        plan,
                        sources: providers(&self.after_from, plan),
                        missing: alternatives.iter().copied().collect(),
                    });
                }
            }
        }
        // C5
        if !self.unseated.is_empty() {
            out.push(Violation::NoSeat {
                products: self.unseated.clone(),
            });
        }
        out
    }
}

/// Every source that brings `plan`.
fn providers(from: &[(SourceRef, BTreeSet<Plan>)], plan: Plan) -> BTreeSet<SourceRef> {
    from.iter()
        .filter(|(_, plans)| plans.contains(plan))
        .map(|(at, _)| *at)
        .collect()
}

fn normalize_proxy(address: &str) -> String {
    let lower = address.trim().to_lowercase();
    match lower.strip_prefix("smtp:") {
        Some(rest) => rest.to_string(),
        None => lower,
    }
}

// ---- The tenant -----------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Model {
    pub default_location: &'static str,
    pub prepaid: BTreeMap<Sku, u32>,
    pub users: BTreeMap<u64, User>,
    pub groups: BTreeMap<u64, Group>,
    /// When each membership began, in one sequence for the whole tenant (P1 within a group,
    /// P6's "groups in the order u joined them" across groups).
    joined: BTreeMap<(u64, u64), u64>,
    next_join: u64,
    /// Ids are never reused: a deleted user's id names nobody.
    next_user: u64,
    next_group: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            // Terms: "default `US`".
            default_location: "US",
            prepaid: PRODUCTS.iter().map(|(s, _)| (*s, 0)).collect(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            joined: BTreeMap::new(),
            next_join: 0,
            next_user: 1,
            next_group: 1,
        }
    }

    // ---- L: what users hold ----

    /// L1.
    pub fn holds(&self, user: u64, sku: Sku) -> bool {
        self.users.get(&user).is_some_and(|u| {
            u.assignments
                .iter()
                .any(|a| a.product == sku && a.applied.is_some())
        })
    }

    /// L3: the number of users holding the product.
    pub fn consumed(&self, sku: Sku) -> u32 {
        self.users.keys().filter(|u| self.holds(**u, sku)).count() as u32
    }

    /// L3.
    pub fn available(&self, sku: Sku) -> u32 {
        self.prepaid
            .get(sku)
            .copied()
            .unwrap_or(0)
            .saturating_sub(self.consumed(sku))
    }

    /// L2: the enabled plans of each held product.
    pub fn held(&self, user: u64) -> BTreeMap<Sku, BTreeSet<Plan>> {
        let mut out: BTreeMap<Sku, BTreeSet<Plan>> = BTreeMap::new();
        if let Some(u) = self.users.get(&user) {
            for a in u.assignments.iter().filter(|a| a.applied.is_some()) {
                out.entry(a.product).or_default().extend(a.applied_plans());
            }
        }
        out
    }

    fn enabled(&self, user: u64) -> BTreeSet<Plan> {
        self.held(user).into_values().flatten().collect()
    }

    /// L4.
    pub fn effective_location(&self, user: u64) -> &'static str {
        self.users
            .get(&user)
            .and_then(|u| u.location)
            .unwrap_or(self.default_location)
    }

    /// C1: the user's first address (in its order) that another user also has, and the lowest
    /// id among those users (server's choice: the spec names "the other user").
    fn duplicate(&self, user: u64) -> Option<Duplicate> {
        let u = self.users.get(&user)?;
        for address in &u.proxies {
            let key = normalize_proxy(address);
            let other = self
                .users
                .values()
                .filter(|o| o.id != user)
                .find(|o| o.proxies.iter().any(|p| normalize_proxy(p) == key));
            if let Some(o) = other {
                return Some(Duplicate {
                    address: address.clone(),
                    other_user: o.id,
                });
            }
        }
        None
    }

    /// Every applied assignment of the user but those `skip` says, with the plans it enables.
    fn applied_from(
        &self,
        user: u64,
        skip: impl Fn(&Assignment) -> bool,
    ) -> Vec<(SourceRef, BTreeSet<Plan>)> {
        self.users[&user]
            .assignments
            .iter()
            .filter(|a| a.applied.is_some() && !skip(a))
            .map(|a| (a.at(), a.applied_plans()))
            .collect()
    }

    fn is_member(&self, user: u64, group: u64) -> bool {
        self.groups
            .get(&group)
            .is_some_and(|g| g.members.contains(&user))
    }

    // ---- Operations ----

    pub fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            Op::CreateUser { location, proxies } => self.create_user(*location, proxies),
            Op::UpdateUser {
                user,
                location,
                proxies,
            } => self.update_user(*user, location.as_ref(), proxies.as_deref()),
            Op::DeleteUser { user } => self.delete_user(*user),
            Op::CreateGroup => {
                let id = self.next_group;
                self.next_group += 1;
                self.groups.insert(
                    id,
                    Group {
                        id,
                        licenses: Vec::new(),
                        members: Vec::new(),
                    },
                );
                Ok(Some(id))
            }
            Op::DeleteGroup { group } => self.delete_group(*group),
            Op::SetPrepaid { product, units } => {
                // L3: lowering takes nothing away; P5: new seats trigger nothing.
                self.prepaid.insert(product, *units);
                Ok(None)
            }
            Op::SetDefaultLocation { country } => {
                // P5 lists what triggers processing; a new default is not among them.
                self.default_location = country;
                Ok(None)
            }
            Op::AddMembers { group, users } => self.add_members(*group, users),
            Op::RemoveMembers { group, users } => self.remove_members(*group, users),
            Op::AssignLicense { user, add, remove } => self.assign_license(*user, add, remove),
            Op::AssignGroupLicense { group, add, remove } => {
                self.assign_group_license(*group, add, remove)
            }
            Op::ReprocessGroup { group } => {
                if !self.groups.contains_key(group) {
                    return Err(Refusal::not_found());
                }
                self.run_group(*group);
                Ok(None)
            }
            Op::ReprocessUser { user } => {
                if !self.users.contains_key(user) {
                    return Err(Refusal::not_found());
                }
                self.process_user(*user);
                Ok(None)
            }
        }
    }

    fn proxies_valid(proxies: &[String]) -> bool {
        // graphql-api.md: C1's comparison makes two spellings of one address one address, so a
        // list may not hold both.
        let keys: BTreeSet<String> = proxies.iter().map(|p| normalize_proxy(p)).collect();
        keys.len() == proxies.len()
    }

    fn create_user(&mut self, location: Option<&'static str>, proxies: &[String]) -> Outcome {
        if !Model::proxies_valid(proxies) {
            return Err(Refusal::input());
        }
        let id = self.next_user;
        self.next_user += 1;
        self.users.insert(
            id,
            User {
                id,
                upn: format!("user{id}@contoso.com"),
                location,
                proxies: proxies.to_vec(),
                assignments: Vec::new(),
            },
        );
        Ok(Some(id))
    }

    fn update_user(
        &mut self,
        user: u64,
        location: Option<&LocationChange>,
        proxies: Option<&[String]>,
    ) -> Outcome {
        if !self.users.contains_key(&user) {
            return Err(Refusal::not_found());
        }
        if let Some(p) = proxies
            && !Model::proxies_valid(p)
        {
            return Err(Refusal::input());
        }
        let u = self.users.get_mut(&user).expect("checked above");
        let mut changed = false;
        let new_location = match location {
            None => u.location,
            Some(LocationChange::Set(c)) => Some(*c),
            Some(LocationChange::Clear) => None,
        };
        if new_location != u.location {
            u.location = new_location;
            changed = true;
        }
        if let Some(p) = proxies
            && p != u.proxies.as_slice()
        {
            u.proxies = p.to_vec();
            changed = true;
        }
        // P5: a new usageLocation or new proxyAddresses process all of the user's group
        // assignments.
        if changed {
            self.process_user(user);
        }
        Ok(None)
    }

    /// P7: every assignment withdrawn with no checks; seats follow (L3 counts holders).
    fn delete_user(&mut self, user: u64) -> Outcome {
        if self.users.remove(&user).is_none() {
            return Err(Refusal::not_found());
        }
        for g in self.groups.values_mut() {
            g.members.retain(|m| *m != user);
        }
        self.joined.retain(|(u, _), _| *u != user);
        Ok(None)
    }

    /// G4. A group whose licenses are gone but whose withdrawals are still blocked (P3) still
    /// licenses someone: refused too (server's choice, the same code).
    fn delete_group(&mut self, group: u64) -> Outcome {
        let Some(g) = self.groups.get(&group) else {
            return Err(Refusal::not_found());
        };
        let withdrawing = self.users.values().any(|u| {
            u.assignments
                .iter()
                .any(|a| a.source == Source::Group(group))
        });
        if !g.licenses.is_empty() || withdrawing {
            return Err(Refusal {
                code: "GROUP_HAS_LICENSES",
                error: None,
            });
        }
        self.groups.remove(&group);
        self.joined.retain(|(_, g), _| *g != group);
        Ok(None)
    }

    fn add_members(&mut self, group: u64, users: &[u64]) -> Outcome {
        if !self.groups.contains_key(&group) {
            return Err(Refusal::not_found());
        }
        if users.is_empty() || users.iter().any(|u| !self.users.contains_key(u)) {
            return Err(if users.is_empty() {
                Refusal::input()
            } else {
                Refusal::not_found()
            });
        }
        let mut added = Vec::new();
        for user in users {
            let g = self.groups.get_mut(&group).expect("checked above");
            // Already a member: keeps its place, nothing to do.
            if !g.members.contains(user) {
                g.members.push(*user);
                self.joined.insert((*user, group), self.next_join);
                self.next_join += 1;
                added.push(*user);
            }
        }
        // P5: adding members processes them for g, in the order they joined (P1).
        for user in added {
            self.process_member(user, group);
        }
        Ok(None)
    }

    fn remove_members(&mut self, group: u64, users: &[u64]) -> Outcome {
        if !self.groups.contains_key(&group) {
            return Err(Refusal::not_found());
        }
        if users.is_empty() || users.iter().any(|u| !self.users.contains_key(u)) {
            return Err(if users.is_empty() {
                Refusal::input()
            } else {
                Refusal::not_found()
            });
        }
        let mut removed = Vec::new();
        for user in users {
            let g = self.groups.get_mut(&group).expect("checked above");
            if g.members.contains(user) && !removed.contains(user) {
                g.members.retain(|m| m != user);
                self.joined.remove(&(*user, group));
                removed.push(*user);
            }
        }
        // P5: removing members withdraws g's assignments (P3).
        for user in removed {
            self.process_member(user, group);
        }
        Ok(None)
    }

    /// D1 / G3: the request itself. Returns the added licenses as sets.
    #[allow(clippy::type_complexity)]
    fn check_request(
        add: &[(Sku, Vec<Plan>)],
        remove: &[Sku],
    ) -> Result<Vec<(Sku, BTreeSet<Plan>)>, Refusal> {
        if add.is_empty() && remove.is_empty() {
            return Err(Refusal::input());
        }
        let mut out: Vec<(Sku, BTreeSet<Plan>)> = Vec::new();
        for (sku, disabled) in add {
            let plans = product_plans(sku).ok_or_else(Refusal::input)?;
            if disabled.iter().any(|d| !plans.contains(d)) {
                return Err(Refusal::input());
            }
            if out.iter().any(|(s, _)| s == sku) || remove.contains(sku) {
                return Err(Refusal::input());
            }
            out.push((*sku, disabled.iter().copied().collect()));
        }
        for (i, sku) in remove.iter().enumerate() {
            if product_plans(sku).is_none() || remove[..i].contains(sku) {
                return Err(Refusal::input());
            }
        }
        Ok(out)
    }

    /// D1–D5.
    fn assign_license(&mut self, user: u64, add: &[(Sku, Vec<Plan>)], remove: &[Sku]) -> Outcome {
        let Some(u) = self.users.get(&user) else {
            return Err(Refusal::not_found());
        };
        // D1.
        let add = Model::check_request(add, remove)?;
        // D5: only a direct license can be removed here.
        for sku in remove {
            if !u
                .assignments
                .iter()
                .any(|a| a.source == Source::Direct && a.product == *sku)
            {
                return Err(Refusal::input());
            }
        }
        // D2 (checked after D1 and D5: server's order; the spec orders none of them).
        if !add.is_empty() && u.location.is_none() {
            return Err(Refusal {
                code: "USAGE_LOCATION_REQUIRED",
                error: None,
            });
        }
        // D3: adds and removes together, checked with C1–C5; the candidate is what the added
        // licenses enable.
        let touched = |a: &Assignment| {
            a.source == Source::Direct
                && (remove.contains(&a.product) || add.iter().any(|(s, _)| *s == a.product))
        };
        let mut after_from = self.applied_from(user, touched);
        let mut candidate_from = Vec::new();
        for (sku, disabled) in &add {
            let at = SourceRef {
                source: Source::Direct,
                product: sku,
            };
            candidate_from.push((at, enabled_of(sku, disabled)));
        }
        after_from.extend(candidate_from.iter().cloned());
        let candidate: BTreeSet<Plan> =
            candidate_from.iter().flat_map(|(_, p)| p.clone()).collect();
        let after: BTreeSet<Plan> = after_from.iter().flat_map(|(_, p)| p.clone()).collect();
        let unseated = add
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| !self.holds(user, s) && self.available(s) == 0)
            .collect();
        let change = Change {
            before: self.enabled(user),
            after,
            candidate,
            after_from,
            candidate_from,
            // C1 applies when the step licenses someone (server's documented choice).
            duplicate: if add.is_empty() {
                None
            } else {
                self.duplicate(user)
            },
            // D2: the user's own location, never the directory's.
            location: u.location,
            c3: true,
            c4: true,
            unseated,
        };
        let violations = change.violations();
        if !violations.is_empty() {
            return Err(Refusal::of(LicenseError { violations }));
        }
        let u = self.users.get_mut(&user).expect("checked above");
        u.assignments
            .retain(|a| !(a.source == Source::Direct && remove.contains(&a.product)));
        for (sku, disabled) in add {
            // D4: an existing direct assignment gets the new configuration.
            u.assignments
                .retain(|a| !(a.source == Source::Direct && a.product == sku));
            u.assignments.push(Assignment {
                product: sku,
                source: Source::Direct,
                intent: Intent::Assign(disabled.clone()),
                applied: Some(disabled),
                state: State::Active,
                error: None,
            });
        }
        Ok(None)
    }

    /// G1–G3, then processing of every member (G2).
    fn assign_group_license(
        &mut self,
        group: u64,
        add: &[(Sku, Vec<Plan>)],
        remove: &[Sku],
    ) -> Outcome {
        let Some(g) = self.groups.get(&group) else {
            return Err(Refusal::not_found());
        };
        let add = Model::check_request(add, remove)?;
        // G3: removing a product the group does not have.
        if remove
            .iter()
            .any(|r| !g.licenses.iter().any(|(s, _)| s == r))
        {
            return Err(Refusal::input());
        }
        let mut set: Vec<(Sku, BTreeSet<Plan>)> = g
            .licenses
            .iter()
            .filter(|(s, _)| !remove.contains(s))
            .cloned()
            .collect();
        for (sku, disabled) in add {
            match set.iter_mut().find(|(s, _)| *s == sku) {
                Some(entry) => entry.1 = disabled,
                None => set.push((sku, disabled)),
            }
        }
        // G1: the set on its own: no exclusive pair, every prerequisite met inside it.
        let from: Vec<(SourceRef, BTreeSet<Plan>)> = set
            .iter()
            .map(|(sku, disabled)| {
                (
                    SourceRef {
                        source: Source::Group(group),
                        product: sku,
                    },
                    enabled_of(sku, disabled),
                )
            })
            .collect();
        let enabled: BTreeSet<Plan> = from.iter().flat_map(|(_, p)| p.clone()).collect();
        let change = Change {
            before: BTreeSet::new(),
            after: enabled.clone(),
            candidate: enabled,
            after_from: from.clone(),
            candidate_from: from,
            duplicate: None,
            location: None,
            c3: true,
            c4: true,
            unseated: BTreeSet::new(),
        };
        let violations = change.violations();
        if !violations.is_empty() {
            return Err(Refusal::of(LicenseError { violations }));
        }
        self.groups.get_mut(&group).expect("checked above").licenses = set;
        self.run_group(group);
        Ok(None)
    }

    // ---- P: processing ----

    /// What `group` wants for `user` now (G2, P5): its license set for a member, a withdrawal
    /// of everything for anyone else.
    fn set_intent(&mut self, user: u64, group: u64) {
        let want: Vec<(Sku, BTreeSet<Plan>)> = if self.is_member(user, group) {
            self.groups[&group].licenses.clone()
        } else {
            Vec::new()
        };
        let u = self.users.get_mut(&user).expect("a user to process");
        for a in u
            .assignments
            .iter_mut()
            .filter(|a| a.source == Source::Group(group))
        {
            a.intent = match want.iter().find(|(s, _)| *s == a.product) {
                Some((_, d)) => Intent::Assign(d.clone()),
                None => Intent::Withdraw,
            };
        }
        for (sku, disabled) in want {
            let exists = u
                .assignments
                .iter()
                .any(|a| a.source == Source::Group(group) && a.product == sku);
            if !exists {
                u.assignments.push(Assignment {
                    product: sku,
                    source: Source::Group(group),
                    intent: Intent::Assign(disabled),
                    applied: None,
                    state: State::Pending,
                    error: None,
                });
            }
        }
    }

    /// One member added or removed (P5).
    fn process_member(&mut self, user: u64, group: u64) {
        self.set_intent(user, group);
        self.process(user, group);
    }

    /// P6 `reprocessGroup`, and G2: every former member whose withdrawal from g is pending,
    /// then every member in join order (P1). Former members first, by user id (server's
    /// documented choice: the seats they free go to the members).
    fn run_group(&mut self, group: u64) {
        let former: Vec<u64> = self
            .users
            .values()
            .filter(|u| !self.is_member(u.id, group))
            .filter(|u| {
                u.assignments
                    .iter()
                    .any(|a| a.source == Source::Group(group))
            })
            .map(|u| u.id)
            .collect();
        for user in former {
            self.process_member(user, group);
        }
        let members = self.groups[&group].members.clone();
        for user in members {
            self.process_member(user, group);
        }
    }

    /// P5 / P6 `reprocessUser`: every group of the user in the order it joined them, then the
    /// groups it left with a withdrawal still pending (by group id: server's choice). One
    /// group's outcome changes another's context (a withdrawal unblocked by a license applied
    /// later), so passes repeat until one changes nothing (server's choice, which P8 asks for:
    /// processing the user again then changes nothing).
    fn process_user(&mut self, user: u64) {
        let mut groups: Vec<(u64, u64)> = self
            .joined
            .iter()
            .filter(|((u, _), _)| *u == user)
            .map(|((_, g), seq)| (*seq, *g))
            .collect();
        groups.sort();
        let groups: Vec<u64> = groups.into_iter().map(|(_, g)| g).collect();
        let mut former: Vec<u64> = Vec::new();
        for a in &self.users[&user].assignments {
            if let Source::Group(g) = a.source
                && !groups.contains(&g)
                && !former.contains(&g)
            {
                former.push(g);
            }
        }
        former.sort();
        for g in groups.iter().chain(former.iter()) {
            self.set_intent(user, *g);
        }
        let cap = self.users[&user].assignments.len() + 2;
        for _ in 0..cap {
            let before = self.users[&user].assignments.clone();
            for g in &groups {
                self.process(user, *g);
            }
            let mut former_now: Vec<u64> = Vec::new();
            for a in &self.users[&user].assignments {
                if let Source::Group(g) = a.source
                    && !groups.contains(&g)
                    && !former_now.contains(&g)
                {
                    former_now.push(g);
                }
            }
            former_now.sort();
            for g in former_now {
                self.process(user, g);
            }
            if self.users[&user].assignments == before {
                break;
            }
        }
    }

    /// P2–P4 for one user and one group, the intent already set.
    fn process(&mut self, user: u64, group: u64) {
        let src = Source::Group(group);
        // P3: a withdrawn assignment that was never applied is simply dropped.
        self.users
            .get_mut(&user)
            .expect("a user to process")
            .assignments
            .retain(|a| !(a.source == src && a.intent == Intent::Withdraw && a.applied.is_none()));
        let u = &self.users[&user];
        let changed = u.assignments.iter().any(|a| {
            a.source == src
                && match &a.intent {
                    Intent::Assign(want) => a.applied.as_ref() != Some(want),
                    Intent::Withdraw => false,
                }
        });
        let withdrawals = u
            .assignments
            .iter()
            .any(|a| a.source == src && a.intent == Intent::Withdraw);
        if changed {
            // A pending withdrawal and the group's new configuration are applied together
            // when that passes (server's documented choice: a product swapped for another in
            // one change); otherwise the withdrawal is tried first (P3), then the
            // configuration (P2).
            if withdrawals && self.apply_group(user, group, true) {
                return;
            }
            if withdrawals {
                self.withdraw(user, group);
            }
            self.apply_group(user, group, false);
        } else {
            if withdrawals {
                self.withdraw(user, group);
            }
            self.revalidate(user, group);
        }
    }

    /// P2: all of g's products together, checked with C1, C2, C3 and C5 (and C4: a changed
    /// configuration that disables a plan another source's plan needs is a withdrawal of that
    /// plan, P3). With `together`, g's pending withdrawals are part of the change; a failure
    /// then changes nothing. Returns whether it applied.
    fn apply_group(&mut self, user: u64, group: u64, together: bool) -> bool {
        let src = Source::Group(group);
        let u = &self.users[&user];
        let mine_assign = |a: &Assignment| a.source == src && matches!(a.intent, Intent::Assign(_));
        // What stays: other sources, and g's withdrawals unless they go with this change.
        let mut after_from = self.applied_from(user, |a| {
            a.source == src && (matches!(a.intent, Intent::Assign(_)) || together)
        });
        let mut candidate_from = Vec::new();
        let mut unseated = BTreeSet::new();
        for a in u.assignments.iter().filter(|a| mine_assign(a)) {
            let Intent::Assign(disabled) = &a.intent else {
                continue;
            };
            candidate_from.push((a.at(), enabled_of(a.product, disabled)));
            // C5: a product u would newly hold with no seat left.
            if !self.holds(user, a.product) && self.available(a.product) == 0 {
                unseated.insert(a.product);
            }
        }
        after_from.extend(candidate_from.iter().cloned());
        let change = Change {
            before: self.enabled(user),
            after: after_from.iter().flat_map(|(_, p)| p.clone()).collect(),
            candidate: candidate_from.iter().flat_map(|(_, p)| p.clone()).collect(),
            after_from,
            candidate_from,
            duplicate: self.duplicate(user),
            location: Some(self.effective_location(user)),
            c3: true,
            c4: true,
            unseated,
        };
        let violations = change.violations();
        let u = self.users.get_mut(&user).expect("a user to process");
        if violations.is_empty() {
            for a in u.assignments.iter_mut().filter(|a| mine_assign(a)) {
                if let Intent::Assign(d) = &a.intent {
                    a.applied = Some(d.clone());
                }
                a.state = State::Active;
                a.error = None;
            }
            if together {
                u.assignments
                    .retain(|a| !(a.source == src && a.intent == Intent::Withdraw));
            }
            return true;
        }
        if together {
            return false;
        }
        // All or nothing: every assignment from g gets the error; an applied one keeps its
        // configuration.
        let error = LicenseError { violations };
        for a in u.assignments.iter_mut().filter(|a| mine_assign(a)) {
            a.state = if a.applied.is_some() {
                State::ActiveWithError
            } else {
                State::Error
            };
            a.error = Some(error.clone());
        }
        false
    }

    /// C4 for taking the assignments `gone` away from the user's enabled set.
    fn withdrawal_violations(
        &self,
        user: u64,
        gone: &dyn Fn(&Assignment) -> bool,
    ) -> Vec<Violation> {
        let after_from = self.applied_from(user, gone);
        let change = Change {
            before: self.enabled(user),
            after: after_from.iter().flat_map(|(_, p)| p.clone()).collect(),
            candidate: BTreeSet::new(),
            after_from,
            candidate_from: Vec::new(),
            duplicate: None,
            location: None,
            c3: false,
            c4: true,
            unseated: BTreeSet::new(),
        };
        change.violations()
    }

    /// P3: g's pending withdrawals, checked with C4 on the enabled set without them. All
    /// together when that passes; otherwise each one that can go on its own goes (repeated
    /// until none more can, in product order: server's choice), and the rest stay applied,
    /// `ACTIVE_WITH_ERROR` with `DEPENDENCY_VIOLATION`.
    fn withdraw(&mut self, user: u64, group: u64) {
        let src = Source::Group(group);
        let all = |a: &Assignment| a.source == src && a.intent == Intent::Withdraw;
        if self.withdrawal_violations(user, &all).is_empty() {
            self.users
                .get_mut(&user)
                .expect("a user to process")
                .assignments
                .retain(|a| !all(a));
            return;
        }
        loop {
            let mut skus: Vec<Sku> = self.users[&user]
                .assignments
                .iter()
                .filter(|a| all(a))
                .map(|a| a.product)
                .collect();
            skus.sort();
            let mut progress = false;
            for sku in skus {
                let this = |a: &Assignment| all(a) && a.product == sku;
                if self.withdrawal_violations(user, &this).is_empty() {
                    self.users
                        .get_mut(&user)
                        .expect("a user to process")
                        .assignments
                        .retain(|a| !this(a));
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        let blocked: Vec<Sku> = self.users[&user]
            .assignments
            .iter()
            .filter(|a| all(a))
            .map(|a| a.product)
            .collect();
        for sku in blocked {
            let this = |a: &Assignment| all(a) && a.product == sku;
            let violations = self.withdrawal_violations(user, &this);
            let u = self.users.get_mut(&user).expect("a user to process");
            if let Some(a) = u.assignments.iter_mut().find(|a| this(a)) {
                a.state = State::ActiveWithError;
                a.error = Some(LicenseError { violations });
            }
        }
    }

    /// P4: g's applied, unchanged assignments re-validated with C2 and C3. A failure takes
    /// nothing away; each assignment is judged on its own plans once the group as a whole
    /// fails (server's choice).
    fn revalidate(&mut self, user: u64, group: u64) {
        let src = Source::Group(group);
        let current = |a: &Assignment| {
            a.source == src && a.applied.is_some() && matches!(a.intent, Intent::Assign(_))
        };
        let mine: Vec<(SourceRef, BTreeSet<Plan>)> = self.users[&user]
            .assignments
            .iter()
            .filter(|a| current(a))
            .map(|a| (a.at(), a.applied_plans()))
            .collect();
        let check = |candidate_from: Vec<(SourceRef, BTreeSet<Plan>)>| {
            let after_from = self.applied_from(user, |_| false);
            Change {
                before: self.enabled(user),
                after: self.enabled(user),
                candidate: candidate_from.iter().flat_map(|(_, p)| p.clone()).collect(),
                after_from,
                candidate_from,
                duplicate: None,
                location: Some(self.effective_location(user)),
                c3: true,
                c4: false,
                unseated: BTreeSet::new(),
            }
            .violations()
        };
        let whole = check(mine.clone());
        let verdicts: Vec<(SourceRef, Vec<Violation>)> = if whole.is_empty() {
            mine.iter().map(|(at, _)| (*at, Vec::new())).collect()
        } else {
            mine.iter()
                .map(|own| (own.0, check(vec![own.clone()])))
                .collect()
        };
        let u = self.users.get_mut(&user).expect("a user to process");
        for (at, violations) in verdicts {
            if let Some(a) = u
                .assignments
                .iter_mut()
                .find(|a| current(a) && a.at() == at)
            {
                if violations.is_empty() {
                    a.state = State::Active;
                    a.error = None;
                } else {
                    a.state = State::ActiveWithError;
                    a.error = Some(LicenseError { violations });
                }
            }
        }
    }
}
