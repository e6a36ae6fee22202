//! G — a group's license set: validation (G1, G3) and what it means for each member's records
//! (G2, P5).

use crate::rules::{PlanSet, RuleTable};

use super::direct::check_change;
use super::{
    Assignment, GroupId, GroupLicenseError, InputError, Intent, LicenseChange, LicenseError,
    LicenseSpec, Source, SourceRef, UserLicenses, Violation, product_name,
};

/// G3 then G1: applies `change` (adds and removes together; adding a product the group has
/// replaces its `disabledPlans`) to the group's `current` license set and validates the result
/// on its own. Returns the new set to store (G2: current order kept, new products appended);
/// on error nothing changes.
pub fn change_group_licenses(
    table: &RuleTable,
    group: GroupId,
    current: &[LicenseSpec],
    change: &LicenseChange,
) -> Result<Vec<LicenseSpec>, GroupLicenseError> {
    // G3
    check_change(table, change)?;
    for product in &change.remove {
        if !current.iter().any(|s| s.product == *product) {
            return Err(InputError::NotAssignedToGroup(product_name(table, *product)).into());
        }
    }
    let mut set: Vec<LicenseSpec> = current
        .iter()
        .filter(|s| !change.remove.contains(&s.product))
        .cloned()
        .collect();
    for spec in &change.add {
        match set.iter_mut().find(|s| s.product == spec.product) {
            Some(existing) => existing.disabled = spec.disabled.clone(),
            None => set.push(spec.clone()),
        }
    }
    // G1
    validate_group_licenses(table, group, &set).map_err(GroupLicenseError::License)?;
    Ok(set)
}

/// G1: a license set on its own: no two enabled plans of one exclusive set
/// (`MUTUALLY_EXCLUSIVE_VIOLATION`), every enabled plan's prerequisites met by the set's own
/// enabled plans (`DEPENDENCY_VIOLATION`). Every violation is listed, exclusive pairs first.
pub fn validate_group_licenses(
    table: &RuleTable,
    group: GroupId,
    set: &[LicenseSpec],
) -> Result<(), LicenseError> {
    let mut enabled = PlanSet::EMPTY;
    for spec in set {
        enabled |= spec.disabled.enabled_in(table, spec.product);
    }
    if table.is_exclusive_free(&enabled) && table.prerequisites_met(&enabled) {
        return Ok(());
    }
    // Every enabled plan comes from some product of the set, so the set is not empty here.
    let Some(first) = set.first() else {
        return Ok(());
    };
    let source_of = |plan| SourceRef {
        source: Source::Group(group),
        product: set
            .iter()
            .find(|s| s.disabled.enabled_in(table, s.product).contains(plan))
            .unwrap_or(first)
            .product,
    };
    let mut violations = Vec::new();
    for pair in table.exclusive_pairs(&enabled, &enabled) {
        violations.push(Violation::MutuallyExclusive {
            plan: pair.plan,
            source: source_of(pair.plan),
            conflicting_plan: pair.conflicting,
            conflicting_source: source_of(pair.conflicting),
        });
    }
    for rule in table.unmet_prerequisites(&enabled) {
        violations.push(Violation::MissingPrerequisite {
            plan: rule.plan,
            source: source_of(rule.plan),
            missing: rule.alternatives.clone(),
        });
    }
    Err(LicenseError { violations })
}

/// G2 / P5: records that `group` now wants `set` for `user` (the user joined, or the group's
/// license set changed). New products get a `PENDING` assignment; changed ones get the new
/// configuration as intent and keep their state; products no longer in the set get a pending
/// withdrawal (P3). Nothing is checked or applied: processing does that. Returns whether a
/// record changed.
pub fn set_group_intent(user: &mut UserLicenses, group: GroupId, set: &[LicenseSpec]) -> bool {
    let source = Source::Group(group);
    let mut changed = false;
    for a in user.assignments.iter_mut().filter(|a| a.source == source) {
        let want = match set.iter().find(|s| s.product == a.product) {
            Some(spec) => Intent::Assign(spec.disabled.clone()),
            None => Intent::Withdraw,
        };
        if a.intent != want {
            a.intent = want;
            changed = true;
        }
    }
    for spec in set {
        if user.assignment(source, spec.product).is_none() {
            user.assignments.push(Assignment::pending(
                group,
                spec.product,
                spec.disabled.clone(),
            ));
            changed = true;
        }
    }
    changed
}

/// P5: the user left `group` (or the group is gone): every assignment from it gets a pending
/// withdrawal, applied by processing (P3).
pub fn withdraw_group(user: &mut UserLicenses, group: GroupId) -> bool {
    set_group_intent(user, group, &[])
}
