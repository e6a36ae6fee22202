//! C1–C5, in their order.
//!
//! A step describes its change as plan sets ([`Proposal`]): the user's enabled set `before`, the
//! enabled set `after` the change, and the `candidate` (the plans the change enables, or, when
//! re-validating, the plans an applied assignment enables). [`Proposal::passes`] answers with
//! bit operations only and never allocates; only once it says no does the step gather where
//! each plan comes from ([`Provider`]) and call [`Proposal::error`], which lists every
//! violation found.

use crate::rules::table::Prerequisite;
use crate::rules::{Country, PlanId, PlanSet, ProductId, RuleTable};

use super::{DuplicateProxy, LicenseError, SourceRef, Violation};

/// The usage location C2 checks against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Location {
    pub country: Country,
    /// The directory's default, the user having none (L4).
    pub inherited: bool,
}

/// One source and product, with the plans it enables: where a plan of a violation comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Provider {
    pub at: SourceRef,
    pub plans: PlanSet,
}

/// Direct licenses first (the admin's own), then groups in record order.
pub(crate) fn direct_first(providers: &mut [Provider]) {
    providers.sort_by_key(|p| !p.at.source.is_direct());
}

fn first_provider(providers: &[Provider], plan: PlanId) -> Option<SourceRef> {
    providers
        .iter()
        .find(|p| p.plans.contains(plan))
        .map(|p| p.at)
}

/// What one step would do to one user's enabled set.
#[derive(Clone, Copy)]
pub(crate) struct Proposal<'a> {
    pub table: &'a RuleTable,
    pub before: PlanSet,
    pub after: PlanSet,
    pub candidate: PlanSet,
    /// C1: `Some` when the check applies (the step newly licenses the user) and fails.
    pub duplicate: Option<&'a DuplicateProxy>,
    /// C2: `None` when the check does not apply.
    pub location: Option<Location>,
    /// C3 applies.
    pub exclusive: bool,
    /// C4 applies.
    pub dependencies: bool,
}

impl Proposal<'_> {
    /// C2: the candidate plans barred where the user is.
    fn barred(&self) -> PlanSet {
        match self.location {
            Some(location) => self.candidate & *self.table.barred_in(location.country),
            None => PlanSet::EMPTY,
        }
    }

    fn location_ok(&self) -> bool {
        match self.location {
            Some(location) => !self
                .candidate
                .intersects(self.table.barred_in(location.country)),
            None => true,
        }
    }

    /// Whether C1–C4 pass and `seats_ok` (C5, which the step evaluates). No allocation.
    pub fn passes(&self, seats_ok: bool) -> bool {
        self.duplicate.is_none()
            && self.location_ok()
            && !(self.exclusive && self.table.has_exclusive_pair(&self.after, &self.candidate))
            && !(self.dependencies && breaks_prerequisites(self.table, &self.before, &self.after))
            && seats_ok
    }

    /// Every violation, C1 to C5. `after` tells where each plan of the enabled set after the
    /// change comes from, `candidate` where each candidate plan does (direct licenses first);
    /// `fallback` names the step's own source should a plan be found in neither (it always is:
    /// a violation without a source is left out). `unseated`
    /// are the products without an available seat (C5).
    pub fn error(
        &self,
        after: &[Provider],
        candidate: &[Provider],
        fallback: Option<SourceRef>,
        unseated: Vec<ProductId>,
    ) -> LicenseError {
        let mut violations = Vec::new();
        // C1
        if let Some(dup) = self.duplicate {
            violations.push(Violation::DuplicateProxyAddress {
                address: dup.address.clone(),
                other_user: dup.other_user,
            });
        }
        // C2
        if let Some(location) = self.location {
            let barred = self.barred();
            if !barred.is_empty() {
                violations.push(Violation::ProhibitedInLocation {
                    plans: barred.iter().collect(),
                    location: location.country,
                    inherited: location.inherited,
                });
            }
        }
        // C3: each pair, once per source the conflicting plan comes through.
        if self.exclusive {
            for pair in self.table.exclusive_pairs(&self.after, &self.candidate) {
                let Some(source) = first_provider(candidate, pair.plan)
                    .or_else(|| first_provider(after, pair.plan))
                    .or(fallback)
                else {
                    continue;
                };
                let mut found = false;
                for (i, p) in after.iter().enumerate() {
                    let repeated = after[..i].iter().any(|q| q.at == p.at);
                    if p.plans.contains(pair.conflicting) && !repeated {
                        found = true;
                        violations.push(Violation::MutuallyExclusive {
                            plan: pair.plan,
                            source,
                            conflicting_plan: pair.conflicting,
                            conflicting_source: p.at,
                        });
                    }
                }
                if let (false, Some(conflicting_source)) = (found, fallback) {
                    violations.push(Violation::MutuallyExclusive {
                        plan: pair.plan,
                        source,
                        conflicting_plan: pair.conflicting,
                        conflicting_source,
                    });
                }
            }
        }
        // C4
        if self.dependencies {
            for rule in self.table.unmet_prerequisites(&self.after) {
                let source = first_provider(after, rule.plan).or(fallback);
                if let (true, Some(source)) = (is_broken(rule, &self.before), source) {
                    violations.push(Violation::MissingPrerequisite {
                        plan: rule.plan,
                        source,
                        missing: rule.alternatives.clone(),
                    });
                }
            }
        }
        // C5
        if !unseated.is_empty() {
            violations.push(Violation::NoSeat { products: unseated });
        }
        LicenseError { violations }
    }
}

/// C4: whether the change from `before` to `after` leaves a plan of `after` without any of its
/// prerequisites ([`is_broken`]). No allocation.
pub(crate) fn breaks_prerequisites(table: &RuleTable, before: &PlanSet, after: &PlanSet) -> bool {
    !table.prerequisites_met(after)
        && table
            .unmet_prerequisites(after)
            .any(|r| is_broken(r, before))
}

/// A rule unmet after the change counts unless it was already unmet before it, its plan
/// already enabled: the change did not cause that (it came from a rules reload), and refusing
/// every later change for it would block the very fixes the admin makes. A plan the change
/// newly enables must have its prerequisite (R2).
fn is_broken(rule: &Prerequisite, before: &PlanSet) -> bool {
    !before.contains(rule.plan) || rule.is_met_by(before)
}
