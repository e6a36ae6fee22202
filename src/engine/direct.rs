//! D — direct assignment (`assignLicense`): synchronous, atomic. Also the input checks shared
//! with group license sets (D1, G3).

use crate::rules::{PlanSet, ProductId, RuleTable};

use super::checks::{Location, Proposal, Provider, direct_first};
use super::{
    Assignment, DirectError, DirectOutcome, InputError, LicenseChange, LicenseSpec, SeatCounter,
    Source, SourceRef, UserLicenses, plan_name, product_name,
};

/// Turns names as the API receives them (`skuPartNumber`, `disabledPlans`) into a
/// [`LicenseChange`], then checks it as [`check_change`] does (D1, G3).
pub fn resolve_change<S: AsRef<str>>(
    table: &RuleTable,
    add: &[(S, Vec<S>)],
    remove: &[S],
) -> Result<LicenseChange, InputError> {
    let product = |name: &S| {
        table
            .product_by_name(name.as_ref())
            .ok_or_else(|| InputError::UnknownProduct(name.as_ref().to_string()))
    };
    let mut change = LicenseChange::default();
    for (name, disabled) in add {
        let id = product(name)?;
        let mut plans = Vec::with_capacity(disabled.len());
        for plan in disabled {
            let plan = plan.as_ref();
            plans.push(
                table
                    .plan_by_name(plan)
                    .ok_or_else(|| InputError::UnknownPlan(plan.to_string()))?,
            );
        }
        change.add.push(LicenseSpec::new(id, plans));
    }
    for name in remove {
        change.remove.push(product(name)?);
    }
    check_change(table, &change)?;
    Ok(change)
}

/// D1 / G3: every product known, every disabled plan part of its product, no product listed
/// twice or both added and removed.
pub fn check_change(table: &RuleTable, change: &LicenseChange) -> Result<(), InputError> {
    let known = |p: ProductId| {
        if p.index() < table.product_count() {
            Ok(())
        } else {
            Err(InputError::UnknownProduct(product_name(table, p)))
        }
    };
    for (i, spec) in change.add.iter().enumerate() {
        known(spec.product)?;
        let plans = &table.product(spec.product).plans;
        if let Some(plan) = spec.disabled.iter().find(|p| !plans.contains(*p)) {
            return Err(InputError::PlanNotInProduct {
                plan: plan_name(table, plan),
                product: product_name(table, spec.product),
            });
        }
        if change.add[..i].iter().any(|s| s.product == spec.product) {
            return Err(InputError::DuplicateProduct(product_name(
                table,
                spec.product,
            )));
        }
    }
    for (i, product) in change.remove.iter().enumerate() {
        known(*product)?;
        if change.remove[..i].contains(product) {
            return Err(InputError::DuplicateProduct(product_name(table, *product)));
        }
        if change.add.iter().any(|s| s.product == *product) {
            return Err(InputError::AddedAndRemoved(product_name(table, *product)));
        }
    }
    Ok(())
}

impl super::Engine<'_> {
    /// D1–D5: adds and removes `change`'s licenses on `user` in one atomic step. On error
    /// nothing changes (neither the user nor the seats).
    pub fn assign_direct(
        &self,
        user: &mut UserLicenses,
        change: &LicenseChange,
        seats: &mut SeatCounter,
    ) -> Result<DirectOutcome, DirectError> {
        let table = self.table;
        // D1
        check_change(table, change)?;
        // D5: only a direct license can be removed here.
        for product in &change.remove {
            if user.assignment(Source::Direct, *product).is_none() {
                return Err(InputError::NotAssignedDirectly(product_name(table, *product)).into());
            }
        }
        // An empty call changes nothing; otherwise violations are attributed to its first product
        // when a plan's source cannot be found (it always can).
        let Some(first) = change
            .add
            .first()
            .map(|s| s.product)
            .or(change.remove.first().copied())
        else {
            return Ok(DirectOutcome::default());
        };
        // D2: direct assignment does not inherit the directory's location.
        let adding = !change.add.is_empty();
        if adding && user.usage_location.is_none() {
            return Err(DirectError::UsageLocationRequired);
        }

        // D3: the whole call, checked with C1–C5.
        let touched = |a: &Assignment| {
            a.source == Source::Direct
                && (change.remove.contains(&a.product)
                    || change.add.iter().any(|s| s.product == a.product))
        };
        let mut before = PlanSet::EMPTY;
        let mut others = PlanSet::EMPTY;
        for a in &user.assignments {
            let plans = a.applied_plans(table);
            before |= plans;
            if !touched(a) {
                others |= plans;
            }
        }
        let mut candidate = PlanSet::EMPTY;
        for spec in &change.add {
            candidate |= spec.disabled.enabled_in(table, spec.product);
        }
        let needs_seat = |p: ProductId| !user.holds(p) && seats.available(p) == 0;
        let seats_ok = !change.add.iter().any(|s| needs_seat(s.product));
        let proposal = Proposal {
            table,
            before,
            after: others | candidate,
            candidate,
            // C1 applies when the call licenses the user.
            duplicate: if adding {
                user.duplicate_proxy.as_ref()
            } else {
                None
            },
            location: user.usage_location.map(|country| Location {
                country,
                inherited: false,
            }),
            exclusive: true,
            dependencies: true,
        };
        if !proposal.passes(seats_ok) {
            let mut after: Vec<Provider> = user
                .assignments
                .iter()
                .filter(|a| a.is_applied() && !touched(a))
                .map(|a| Provider {
                    at: a.source_ref(),
                    plans: a.applied_plans(table),
                })
                .collect();
            let added: Vec<Provider> = change
                .add
                .iter()
                .map(|s| Provider {
                    at: SourceRef {
                        source: Source::Direct,
                        product: s.product,
                    },
                    plans: s.disabled.enabled_in(table, s.product),
                })
                .collect();
            after.extend(added.iter().copied());
            direct_first(&mut after);
            let unseated = change
                .add
                .iter()
                .map(|s| s.product)
                .filter(|p| needs_seat(*p))
                .collect();
            let fallback = SourceRef {
                source: Source::Direct,
                product: first,
            };
            return Err(DirectError::License(proposal.error(
                &after,
                &added,
                Some(fallback),
                unseated,
            )));
        }

        // Commit.
        let mut outcome = DirectOutcome::default();
        for spec in &change.add {
            if !user.holds(spec.product) && seats.take(spec.product) {
                outcome.seats_taken = outcome.seats_taken.saturating_add(1);
            }
        }
        for product in &change.remove {
            if let Some(i) = user
                .assignments
                .iter()
                .position(|a| a.source == Source::Direct && a.product == *product)
            {
                user.assignments.remove(i);
                outcome.changed = true;
                if !user.holds(*product) && seats.free(*product) {
                    outcome.seats_freed = outcome.seats_freed.saturating_add(1);
                }
            }
        }
        for spec in &change.add {
            let existing = user
                .assignments
                .iter_mut()
                .find(|a| a.source == Source::Direct && a.product == spec.product);
            match existing {
                Some(a) => {
                    // D4: replaces its disabledPlans.
                    let fresh = Assignment::direct(spec.product, spec.disabled.clone());
                    if *a != fresh {
                        *a = fresh;
                        outcome.changed = true;
                    }
                }
                None => {
                    user.assignments
                        .push(Assignment::direct(spec.product, spec.disabled.clone()));
                    outcome.changed = true;
                }
            }
        }
        Ok(outcome)
    }
}
