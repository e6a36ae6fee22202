//! The licensing engine (issue 3): pure licensing decisions over one user's assignments.
//!
//! The engine holds no state of its own, does no I/O, reads no clock and keeps no globals. The
//! store loads a user's records into a [`UserLicenses`], loads the seat counts into a
//! [`SeatCounter`], calls one step on an [`Engine`] and writes back what changed. Every step is
//! decided first, as structured data ([`LicenseError`], [`Violation`]: ids, plan lists,
//! countries); turning a decision into English is a separate pure function ([`describe`]) that
//! is given the [`RuleTable`] and a way to name groups and users ([`SourceNames`]), because
//! display names live in the store.
//!
//! Rule ids (L1, C3, P2 …) refer to `spec/licensing.md`.
//!
//! The steps:
//! - [`Engine::assign_direct`]: D1–D5, checked with C1–C5, atomic.
//! - [`change_group_licenses`]: G3 + G1, validating a group's new license set;
//!   [`resolve_change`] turns the API's names into ids (D1, G3).
//! - [`set_group_intent`] / [`withdraw_group`]: G2 / P5, recording what a group wants for a member
//!   (join, new license set, leave). No checks: processing decides.
//! - [`Engine::process_group`]: P2 (apply), P3 (withdraw), P4 (re-validate) for one user and one
//!   group; [`Engine::process_batch`] for many users in join order (P1) against one seat counter;
//!   [`Engine::process_user`] for all of a user's groups (P5, P6).
//! - [`Engine::delete_user`] / [`delete_user`]: P7.
//! - [`preview`]: W, the steps above run on loaded users to tell what a change would do;
//!   [`redundant`]: M1, direct licenses that a user's groups already cover.
//!
//! Performance: the error-free path of processing allocates nothing. Plans are [`PlanSet`]s on the
//! stack, disabled plans are shared ([`DisabledPlans`] clones a reference count), records are
//! changed in place and the outcomes are small `Copy` summaries. Only a failing check allocates,
//! to build the [`LicenseError`].

mod checks;
pub mod describe;
mod direct;
mod group;
pub mod preview;
mod process;
pub mod redundant;
mod seats;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use crate::rules::{Country, PlanId, PlanSet, ProductId, RuleTable};

pub use describe::{
    ErrorDetail, FoundNames, SourceNames, UNREADABLE_ERROR, describe_error, describe_group_error,
};
pub use direct::{check_change, resolve_change};
pub use group::{change_group_licenses, set_group_intent, validate_group_licenses, withdraw_group};
pub use process::delete_user;
pub use seats::{Seat, SeatCounter};

// ---------------------------------------------------------------------------------------------
// Ids and sources

/// A user (a SQLite rowid in the store).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct UserId(pub i64);

/// A group (a SQLite rowid in the store).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GroupId(pub i64);

/// Where an assignment comes from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Source {
    Direct,
    Group(GroupId),
}

impl Source {
    pub fn group(self) -> Option<GroupId> {
        match self {
            Source::Direct => None,
            Source::Group(g) => Some(g),
        }
    }

    pub fn is_direct(self) -> bool {
        self == Source::Direct
    }
}

/// A source and the product a plan comes through: GraphQL's `LicenseSource`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SourceRef {
    pub source: Source,
    pub product: ProductId,
}

// ---------------------------------------------------------------------------------------------
// Configurations

/// The plans an assignment disables (`disabledPlans`), sorted and without repeats.
///
/// Cloning shares the list (a reference count), so that applying a configuration (copying the
/// intended list into the applied one) never allocates. The empty list holds no allocation.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct DisabledPlans(Option<Arc<[PlanId]>>);

impl DisabledPlans {
    /// Nothing disabled: every plan of the product is enabled.
    pub const NONE: DisabledPlans = DisabledPlans(None);

    pub fn as_slice(&self) -> &[PlanId] {
        self.0.as_deref().unwrap_or(&[])
    }

    pub fn iter(&self) -> impl Iterator<Item = PlanId> + '_ {
        self.as_slice().iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn contains(&self, plan: PlanId) -> bool {
        self.as_slice().binary_search(&plan).is_ok()
    }

    pub fn to_set(&self) -> PlanSet {
        self.iter().collect()
    }

    /// The plans of `product` that stay enabled. An id the table does not know enables nothing.
    pub fn enabled_in(&self, table: &RuleTable, product: ProductId) -> PlanSet {
        match product_plans(table, product) {
            Some(plans) => {
                let mut set = *plans;
                for plan in self.as_slice() {
                    set.remove(*plan);
                }
                set
            }
            None => PlanSet::EMPTY,
        }
    }
}

impl FromIterator<PlanId> for DisabledPlans {
    fn from_iter<I: IntoIterator<Item = PlanId>>(iter: I) -> Self {
        let mut plans: Vec<PlanId> = iter.into_iter().collect();
        plans.sort_unstable();
        plans.dedup();
        if plans.is_empty() {
            DisabledPlans(None)
        } else {
            DisabledPlans(Some(plans.into()))
        }
    }
}

impl From<&PlanSet> for DisabledPlans {
    fn from(set: &PlanSet) -> Self {
        set.iter().collect()
    }
}

impl fmt::Debug for DisabledPlans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(PlanId::index))
            .finish()
    }
}

/// One product with the plans it disables: an entry of `addLicenses`, or of a group's license
/// set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LicenseSpec {
    pub product: ProductId,
    pub disabled: DisabledPlans,
}

impl LicenseSpec {
    pub fn new(product: ProductId, disabled: impl IntoIterator<Item = PlanId>) -> LicenseSpec {
        LicenseSpec {
            product,
            disabled: disabled.into_iter().collect(),
        }
    }

    /// The whole product, nothing disabled.
    pub fn full(product: ProductId) -> LicenseSpec {
        LicenseSpec {
            product,
            disabled: DisabledPlans::NONE,
        }
    }
}

/// `assignLicense` / `assignGroupLicense`: adds and removes applied together (D3, G3).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct LicenseChange {
    pub add: Vec<LicenseSpec>,
    pub remove: Vec<ProductId>,
}

// ---------------------------------------------------------------------------------------------
// Assignments and users

/// GraphQL's `LicenseAssignmentStateValue`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AssignmentState {
    /// Recorded, not processed yet; never applied.
    Pending,
    /// Applied; the user holds the product through it.
    Active,
    /// Applied, but the latest change to it failed; the last applied configuration stays.
    ActiveWithError,
    /// Never applied; the user does not hold the product through it.
    Error,
}

impl AssignmentState {
    pub fn graphql_name(self) -> &'static str {
        match self {
            AssignmentState::Pending => "PENDING",
            AssignmentState::Active => "ACTIVE",
            AssignmentState::ActiveWithError => "ACTIVE_WITH_ERROR",
            AssignmentState::Error => "ERROR",
        }
    }
}

/// What the source currently wants.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Intent {
    /// License the user with the product, these plans disabled.
    Assign(DisabledPlans),
    /// The source withdrew it (left the group, the group's license was removed): once the
    /// withdrawal is applied the record disappears (P3, L5).
    Withdraw,
}

/// One intent to license one user with one product from one source.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Assignment {
    pub product: ProductId,
    pub source: Source,
    /// What the source wants now.
    pub intent: Intent,
    /// The configuration in force; `None` when never applied (the user does not hold the
    /// product through this assignment).
    pub applied: Option<DisabledPlans>,
    pub state: AssignmentState,
    /// Why the latest change failed (`ERROR`, `ACTIVE_WITH_ERROR`).
    pub error: Option<LicenseError>,
}

impl Assignment {
    /// A direct assignment as D3 leaves it: applied at once, `ACTIVE`.
    pub fn direct(product: ProductId, disabled: DisabledPlans) -> Assignment {
        Assignment {
            product,
            source: Source::Direct,
            intent: Intent::Assign(disabled.clone()),
            applied: Some(disabled),
            state: AssignmentState::Active,
            error: None,
        }
    }

    /// A new group assignment, recorded and not processed (`PENDING`, G2).
    pub fn pending(group: GroupId, product: ProductId, disabled: DisabledPlans) -> Assignment {
        Assignment {
            product,
            source: Source::Group(group),
            intent: Intent::Assign(disabled),
            applied: None,
            state: AssignmentState::Pending,
            error: None,
        }
    }

    /// Whether the user holds the product through this assignment (L1).
    pub fn is_applied(&self) -> bool {
        self.applied.is_some()
    }

    /// Whether the source withdrew it and the withdrawal is not applied yet (P3).
    pub fn withdrawal_pending(&self) -> bool {
        self.intent == Intent::Withdraw
    }

    /// Whether processing has something to apply: never applied, a configuration that differs
    /// from the applied one, or a withdrawal.
    pub fn is_pending(&self) -> bool {
        match (&self.intent, &self.applied) {
            (Intent::Withdraw, _) | (Intent::Assign(_), None) => true,
            (Intent::Assign(want), Some(have)) => want != have,
        }
    }

    /// The error code shown for it; `None` is GraphQL's `NONE`.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(LicenseError::code)
    }

    pub fn source_ref(&self) -> SourceRef {
        SourceRef {
            source: self.source,
            product: self.product,
        }
    }

    /// The plans the applied configuration enables (empty when not applied).
    pub fn applied_plans(&self, table: &RuleTable) -> PlanSet {
        match &self.applied {
            Some(disabled) => disabled.enabled_in(table, self.product),
            None => PlanSet::EMPTY,
        }
    }

    /// The plans the intended configuration would enable (empty for a withdrawal).
    pub fn intended_plans(&self, table: &RuleTable) -> PlanSet {
        match &self.intent {
            Intent::Assign(disabled) => disabled.enabled_in(table, self.product),
            Intent::Withdraw => PlanSet::EMPTY,
        }
    }
}

/// C1 needs the other users' addresses, which only the store has: it says whether one of the
/// user's proxy addresses is also another user's.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DuplicateProxy {
    /// As the user has it (e.g. `smtp:sales@contoso.com`).
    pub address: String,
    pub other_user: UserId,
}

/// One user's licensing state: everything a step needs to decide, and what it changes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UserLicenses {
    pub id: UserId,
    /// The user's own usage location; the directory's default applies when unset (L4).
    pub usage_location: Option<Country>,
    /// C1, supplied by the store.
    pub duplicate_proxy: Option<DuplicateProxy>,
    /// Every assignment, whatever its state (L5). Order is kept: the store's order is shown.
    pub assignments: Vec<Assignment>,
}

impl UserLicenses {
    pub fn new(id: UserId, usage_location: Option<Country>) -> UserLicenses {
        UserLicenses {
            id,
            usage_location,
            duplicate_proxy: None,
            assignments: Vec::new(),
        }
    }

    /// L1: held when at least one assignment for it is applied.
    pub fn holds(&self, product: ProductId) -> bool {
        self.assignments
            .iter()
            .any(|a| a.product == product && a.is_applied())
    }

    /// The products held, each once, in the order of their first applied assignment.
    pub fn held_products(&self) -> impl Iterator<Item = ProductId> + '_ {
        self.assignments.iter().enumerate().filter_map(|(i, a)| {
            let first = a.is_applied()
                && !self.assignments[..i]
                    .iter()
                    .any(|b| b.product == a.product && b.is_applied());
            first.then_some(a.product)
        })
    }

    /// L2: the enabled plans of one held product, the union over its applied sources.
    pub fn enabled_plans_of(&self, table: &RuleTable, product: ProductId) -> PlanSet {
        let mut set = PlanSet::EMPTY;
        for a in self.assignments.iter().filter(|a| a.product == product) {
            set |= a.applied_plans(table);
        }
        set
    }

    /// L2: the user's enabled set, the union over every applied assignment.
    pub fn enabled_plans(&self, table: &RuleTable) -> PlanSet {
        let mut set = PlanSet::EMPTY;
        for a in &self.assignments {
            set |= a.applied_plans(table);
        }
        set
    }

    /// L4 for group-based licensing.
    pub fn effective_usage_location(&self, directory_default: Country) -> Country {
        self.usage_location.unwrap_or(directory_default)
    }

    pub fn has_errors(&self) -> bool {
        self.assignments.iter().any(|a| a.error.is_some())
    }

    /// Q1: whether an assignment from `group` is in `ERROR` or `ACTIVE_WITH_ERROR` (members,
    /// and former members whose withdrawal is blocked).
    pub fn has_errors_from(&self, group: GroupId) -> bool {
        self.assignments
            .iter()
            .any(|a| a.source == Source::Group(group) && a.error.is_some())
    }

    pub fn assignment(&self, source: Source, product: ProductId) -> Option<&Assignment> {
        self.assignments
            .iter()
            .find(|a| a.source == source && a.product == product)
    }

    pub fn assignments_from(&self, source: Source) -> impl Iterator<Item = &Assignment> + '_ {
        self.assignments.iter().filter(move |a| a.source == source)
    }
}

// ---------------------------------------------------------------------------------------------
// Decisions

/// GraphQL's `LicenseErrorCode` without `NONE` (that is `Option::None`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ErrorCode {
    CountViolation,
    MutuallyExclusiveViolation,
    DependencyViolation,
    ProhibitedInUsageLocationViolation,
    UniquenessViolation,
    Other,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::CountViolation,
        ErrorCode::MutuallyExclusiveViolation,
        ErrorCode::DependencyViolation,
        ErrorCode::ProhibitedInUsageLocationViolation,
        ErrorCode::UniquenessViolation,
        ErrorCode::Other,
    ];

    pub fn graphql_name(self) -> &'static str {
        match self {
            ErrorCode::CountViolation => "COUNT_VIOLATION",
            ErrorCode::MutuallyExclusiveViolation => "MUTUALLY_EXCLUSIVE_VIOLATION",
            ErrorCode::DependencyViolation => "DEPENDENCY_VIOLATION",
            ErrorCode::ProhibitedInUsageLocationViolation => {
                "PROHIBITED_IN_USAGE_LOCATION_VIOLATION"
            }
            ErrorCode::UniquenessViolation => "UNIQUENESS_VIOLATION",
            ErrorCode::Other => "OTHER",
        }
    }

    /// `NONE` for no error.
    pub fn graphql_name_of(code: Option<ErrorCode>) -> &'static str {
        code.map_or("NONE", ErrorCode::graphql_name)
    }
}

/// One violation found by C1–C5 (or G1): GraphQL's `LicenseViolation` without its message
/// (see [`describe`]).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Violation {
    /// C1: one of the user's proxy addresses is also another user's.
    DuplicateProxyAddress { address: String, other_user: UserId },
    /// C2: candidate plans barred in the user's effective usage location (R3).
    ProhibitedInLocation {
        plans: Vec<PlanId>,
        location: Country,
        /// The location is the directory's default, the user has none (L4).
        inherited: bool,
    },
    /// C3 (and G1): `plan`, a candidate plan coming through `source`, and `conflicting_plan`,
    /// coming through `conflicting_source`, are in one exclusive set (R1).
    MutuallyExclusive {
        plan: PlanId,
        source: SourceRef,
        conflicting_plan: PlanId,
        conflicting_source: SourceRef,
    },
    /// C4 (and G1, P3): `plan`, enabled through `source`, would have none of `missing`, its
    /// alternative prerequisites, enabled (R2). `missing` is in the rule's order.
    MissingPrerequisite {
        plan: PlanId,
        source: SourceRef,
        missing: Vec<PlanId>,
    },
    /// C5: products the user would newly hold that have no available seat.
    NoSeat { products: Vec<ProductId> },
}

impl Violation {
    pub fn code(&self) -> ErrorCode {
        match self {
            Violation::DuplicateProxyAddress { .. } => ErrorCode::UniquenessViolation,
            Violation::ProhibitedInLocation { .. } => ErrorCode::ProhibitedInUsageLocationViolation,
            Violation::MutuallyExclusive { .. } => ErrorCode::MutuallyExclusiveViolation,
            Violation::MissingPrerequisite { .. } => ErrorCode::DependencyViolation,
            Violation::NoSeat { .. } => ErrorCode::CountViolation,
        }
    }

    /// `LicenseViolation.plans`: the plans at fault.
    pub fn plans(&self) -> &[PlanId] {
        match self {
            Violation::ProhibitedInLocation { plans, .. } => plans,
            Violation::MutuallyExclusive { plan, .. }
            | Violation::MissingPrerequisite { plan, .. } => std::slice::from_ref(plan),
            Violation::DuplicateProxyAddress { .. } | Violation::NoSeat { .. } => &[],
        }
    }

    /// The source (and product) of the plan at fault, for C3 and C4.
    pub fn source(&self) -> Option<SourceRef> {
        match self {
            Violation::MutuallyExclusive { source, .. }
            | Violation::MissingPrerequisite { source, .. } => Some(*source),
            _ => None,
        }
    }

    /// `LicenseViolation.conflictingPlan` (C3).
    pub fn conflicting_plan(&self) -> Option<PlanId> {
        match self {
            Violation::MutuallyExclusive {
                conflicting_plan, ..
            } => Some(*conflicting_plan),
            _ => None,
        }
    }

    /// `LicenseViolation.conflictingSource` (C3).
    pub fn conflicting_source(&self) -> Option<SourceRef> {
        match self {
            Violation::MutuallyExclusive {
                conflicting_source, ..
            } => Some(*conflicting_source),
            _ => None,
        }
    }

    /// `LicenseViolation.missingPrerequisites` (C4).
    pub fn missing_prerequisites(&self) -> &[PlanId] {
        match self {
            Violation::MissingPrerequisite { missing, .. } => missing,
            _ => &[],
        }
    }

    /// `LicenseViolation.usageLocation` (C2).
    pub fn usage_location(&self) -> Option<Country> {
        match self {
            Violation::ProhibitedInLocation { location, .. } => Some(*location),
            _ => None,
        }
    }

    /// `LicenseViolation.proxyAddress` (C1).
    pub fn proxy_address(&self) -> Option<&str> {
        match self {
            Violation::DuplicateProxyAddress { address, .. } => Some(address),
            _ => None,
        }
    }

    /// `LicenseViolation.conflictingUser` (C1).
    pub fn conflicting_user(&self) -> Option<UserId> {
        match self {
            Violation::DuplicateProxyAddress { other_user, .. } => Some(*other_user),
            _ => None,
        }
    }

    /// `LicenseViolation.products` (C5).
    pub fn products(&self) -> &[ProductId] {
        match self {
            Violation::NoSeat { products } => products,
            _ => &[],
        }
    }
}

/// Why a step failed: every violation found, in check order (C1 … C5); the first one gives the
/// error code. The store persists it by name (`store::codec`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct LicenseError {
    pub violations: Vec<Violation>,
}

impl LicenseError {
    /// The first violation's code (`OTHER` for an empty list, which the engine never builds).
    pub fn code(&self) -> ErrorCode {
        self.violations
            .first()
            .map_or(ErrorCode::Other, Violation::code)
    }

    /// Adds the groups and users the error names (the sources of C3 and C4, C1's other user)
    /// to `groups` and `users`, whose names the store reads before describing it; ids may
    /// repeat.
    pub fn named_ids(&self, groups: &mut Vec<i64>, users: &mut Vec<i64>) {
        for v in &self.violations {
            for source in [v.source(), v.conflicting_source()].into_iter().flatten() {
                groups.extend(source.source.group().map(|g| g.0));
            }
            users.extend(v.conflicting_user().map(|u| u.0));
        }
    }
}

impl fmt::Display for LicenseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} violation(s))",
            self.code().graphql_name(),
            self.violations.len()
        )
    }
}

impl std::error::Error for LicenseError {}

/// D1, D5, G3: the request itself is wrong. Names are resolved when the error is built, so the
/// message needs no table.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InputError {
    #[error("unknown product `{0}`")]
    UnknownProduct(String),
    #[error("unknown service plan `{0}`")]
    UnknownPlan(String),
    #[error("service plan `{plan}` is not part of product `{product}`")]
    PlanNotInProduct { plan: String, product: String },
    #[error("product `{0}` is listed more than once")]
    DuplicateProduct(String),
    #[error("product `{0}` is both added and removed")]
    AddedAndRemoved(String),
    /// D5: removing a product the user does not have directly.
    #[error(
        "product `{0}` is not assigned directly to this user: a license inherited from a group is changed on the group"
    )]
    NotAssignedDirectly(String),
    /// G3: removing a product the group does not have.
    #[error("the group has no license for product `{0}`")]
    NotAssignedToGroup(String),
}

impl InputError {
    /// The GraphQL `extensions.code`: all of these are `BAD_USER_INPUT` (unknown users and
    /// groups, the store's business, are `NOT_FOUND`).
    pub fn api_code(&self) -> &'static str {
        "BAD_USER_INPUT"
    }
}

/// Why `assignLicense` failed; nothing changed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DirectError {
    #[error(transparent)]
    Input(#[from] InputError),
    /// D2.
    #[error(
        "the user has no usage location: set one before assigning a license directly (the directory's default does not apply)"
    )]
    UsageLocationRequired,
    /// D3: the first violation's code is the error code.
    #[error("{0}")]
    License(LicenseError),
}

impl DirectError {
    /// The GraphQL `extensions.code`.
    pub fn api_code(&self) -> &'static str {
        match self {
            DirectError::Input(e) => e.api_code(),
            DirectError::UsageLocationRequired => "USAGE_LOCATION_REQUIRED",
            DirectError::License(e) => e.code().graphql_name(),
        }
    }
}

/// Why `assignGroupLicense` failed; nothing changed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum GroupLicenseError {
    #[error(transparent)]
    Input(#[from] InputError),
    /// G1: `MUTUALLY_EXCLUSIVE_VIOLATION` or `DEPENDENCY_VIOLATION` within the group's set.
    #[error("{0}")]
    License(LicenseError),
}

impl GroupLicenseError {
    pub fn api_code(&self) -> &'static str {
        match self {
            GroupLicenseError::Input(e) => e.api_code(),
            GroupLicenseError::License(e) => e.code().graphql_name(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outcomes: small Copy summaries

/// What `assignLicense` did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DirectOutcome {
    pub changed: bool,
    pub seats_taken: u32,
    pub seats_freed: u32,
}

/// What processing one user for one group did (P2–P4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ProcessOutcome {
    /// The user had assignments from the group (current or withdrawn).
    pub had_assignments: bool,
    /// P2 ran (something was pending) and succeeded: the group's configuration is in force.
    pub applied: bool,
    /// An assignment record from the group changed (state, applied configuration, error) or
    /// was removed: the store writes the user's records from this group back.
    pub changed: bool,
    /// After processing, the error code of the first assignment from the group in error.
    pub error: Option<ErrorCode>,
    pub seats_taken: u32,
    pub seats_freed: u32,
    /// Withdrawn assignments that disappeared (applied withdrawals and dropped never-applied
    /// ones).
    pub withdrawn: u32,
    /// Withdrawals blocked by C4, left `ACTIVE_WITH_ERROR` (P3).
    pub withdrawals_blocked: u32,
}

impl ProcessOutcome {
    fn merge(&mut self, other: ProcessOutcome) {
        self.had_assignments |= other.had_assignments;
        self.applied |= other.applied;
        self.changed |= other.changed;
        self.error = self.error.or(other.error);
        self.seats_taken = self.seats_taken.saturating_add(other.seats_taken);
        self.seats_freed = self.seats_freed.saturating_add(other.seats_freed);
        self.withdrawn = self.withdrawn.saturating_add(other.withdrawn);
        self.withdrawals_blocked = self
            .withdrawals_blocked
            .saturating_add(other.withdrawals_blocked);
    }
}

/// What a batch did (P1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct BatchSummary {
    pub users: u32,
    pub changed_users: u32,
    pub users_with_errors: u32,
    pub seats_taken: u32,
    pub seats_freed: u32,
}

/// What deleting a user did (P7).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DeleteOutcome {
    pub assignments_removed: u32,
    pub seats_freed: u32,
}

// ---------------------------------------------------------------------------------------------
// The engine

/// The rules and the directory setting every step needs. Cheap to copy; build one per step or
/// per batch.
#[derive(Clone, Copy, Debug)]
pub struct Engine<'t> {
    pub table: &'t RuleTable,
    /// The directory's `defaultUsageLocation` (L4).
    pub default_usage_location: Country,
}

impl<'t> Engine<'t> {
    pub fn new(table: &'t RuleTable, default_usage_location: Country) -> Engine<'t> {
        Engine {
            table,
            default_usage_location,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Table look-ups that never panic on ids from outside

pub(crate) fn product_plans(table: &RuleTable, product: ProductId) -> Option<&PlanSet> {
    (product.index() < table.product_count()).then(|| &table.product(product).plans)
}

pub(crate) fn product_name(table: &RuleTable, product: ProductId) -> String {
    if product.index() < table.product_count() {
        table.product(product).name.clone()
    } else {
        format!("#{}", product.index())
    }
}

pub(crate) fn plan_name(table: &RuleTable, plan: PlanId) -> String {
    if plan.index() < table.plan_count() {
        table.plan(plan).name.clone()
    } else {
        format!("#{}", plan.index())
    }
}
