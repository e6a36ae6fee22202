//! P — processing: applying a group to a user (P2), withdrawing (P3), re-validating (P4), in
//! batches in join order (P1), all of a user's groups (P5, P6), deleting a user (P7).
//!
//! "Changed" for P2 vs P4: when any of the user's assignments from the group is pending (never
//! applied, or its intended configuration differs from the applied one), the whole group is
//! applied with P2; otherwise the applied assignments are re-validated with P4. Pending
//! withdrawals of the group are applied together with the new configuration when that passes
//! (a product swapped for another in one change, as D3 allows for direct licenses); otherwise
//! the withdrawals are tried on their own first (P3) and the configuration after them (P2), so
//! that each error names its own cause.
//!
//! Processing is idempotent (P8): a second pass over the same state decides the same and
//! changes nothing. Direct assignments are never changed (P6).

use crate::rules::{PlanSet, ProductId};

use super::checks::{Location, Proposal, Provider, breaks_prerequisites, direct_first};
use super::{
    Assignment, AssignmentState, BatchSummary, DeleteOutcome, GroupId, Intent, LicenseError,
    ProcessOutcome, SeatCounter, Source, UserLicenses,
};

impl super::Engine<'_> {
    /// P2–P4: processes `user`'s assignments from `group` (current ones and pending
    /// withdrawals) against the shared `seats`.
    ///
    /// The error-free path (applying pending assignments, or re-validating unchanged ones)
    /// changes the records in place and allocates nothing.
    pub fn process_group(
        &self,
        user: &mut UserLicenses,
        group: GroupId,
        seats: &mut SeatCounter,
    ) -> ProcessOutcome {
        let source = Source::Group(group);
        let mut any = false;
        let mut pending = false;
        let mut withdraw_applied = false;
        let mut withdraw_unapplied = false;
        for a in user.assignments.iter().filter(|a| a.source == source) {
            any = true;
            match (&a.intent, &a.applied) {
                (Intent::Withdraw, Some(_)) => withdraw_applied = true,
                (Intent::Withdraw, None) => withdraw_unapplied = true,
                (Intent::Assign(want), Some(have)) => pending |= want != have,
                (Intent::Assign(_), None) => pending = true,
            }
        }
        let mut out = ProcessOutcome::default();
        if !any {
            return out;
        }
        out.had_assignments = true;

        // P3: a withdrawn assignment that was never applied is simply dropped.
        if withdraw_unapplied {
            let count = user.assignments.len();
            user.assignments.retain(|a| {
                !(a.source == source && a.intent == Intent::Withdraw && a.applied.is_none())
            });
            out.withdrawn = count_u32(count - user.assignments.len());
            out.changed = true;
        }

        if pending {
            let together = withdraw_applied && self.apply(user, group, seats, true, &mut out);
            if !together {
                if withdraw_applied {
                    self.withdraw(user, group, seats, &mut out);
                }
                self.apply(user, group, seats, false, &mut out);
            }
        } else {
            if withdraw_applied {
                self.withdraw(user, group, seats, &mut out);
            }
            self.revalidate(user, group, &mut out);
        }
        out.error = user
            .assignments
            .iter()
            .filter(|a| a.source == source)
            .find_map(Assignment::error_code);
        out
    }

    fn location(&self, user: &UserLicenses) -> Location {
        Location {
            country: user.effective_usage_location(self.default_usage_location),
            inherited: user.usage_location.is_none(),
        }
    }

    /// P2: all of the group's products together, checked with C1–C5 (candidate: the plans
    /// they enable). With `with_withdrawals`, the group's pending withdrawals are part of the
    /// change (their plans leave `after`) and are applied on success; a failure then changes
    /// nothing and records nothing (the caller retries step by step). Returns whether it
    /// applied.
    fn apply(
        &self,
        user: &mut UserLicenses,
        group: GroupId,
        seats: &mut SeatCounter,
        with_withdrawals: bool,
        out: &mut ProcessOutcome,
    ) -> bool {
        let table = self.table;
        let source = Source::Group(group);
        let mut before = PlanSet::EMPTY;
        let mut others = PlanSet::EMPTY;
        let mut candidate = PlanSet::EMPTY;
        for a in &user.assignments {
            let applied = a.applied_plans(table);
            before |= applied;
            if a.source != source {
                others |= applied;
                continue;
            }
            match &a.intent {
                Intent::Assign(disabled) => candidate |= disabled.enabled_in(table, a.product),
                // A withdrawal not part of this change (blocked) stays in force.
                Intent::Withdraw if !with_withdrawals => others |= applied,
                Intent::Withdraw => {}
            }
        }
        // C5: one seat per product the user does not hold yet (L1), whatever the sources.
        let needs_seat = |a: &Assignment| {
            a.source == source
                && matches!(a.intent, Intent::Assign(_))
                && !user.holds(a.product)
                && seats.available(a.product) == 0
        };
        let seats_ok = !user.assignments.iter().any(needs_seat);
        let proposal = Proposal {
            table,
            before,
            after: others | candidate,
            candidate,
            duplicate: user.duplicate_proxy.as_ref(),
            location: Some(self.location(user)),
            exclusive: true,
            dependencies: true,
        };

        if !proposal.passes(seats_ok) {
            if with_withdrawals {
                return false;
            }
            let error = self.apply_error(user, group, &proposal, seats);
            // All or nothing: every assignment of the group gets the error; an applied one
            // keeps its last configuration.
            for a in user.assignments.iter_mut() {
                if a.source == source && matches!(a.intent, Intent::Assign(_)) {
                    let state = if a.is_applied() {
                        AssignmentState::ActiveWithError
                    } else {
                        AssignmentState::Error
                    };
                    out.changed |= set_result(a, state, Some(&error));
                }
            }
            return false;
        }

        // Seats first, while `holds` still tells what the user held before.
        for i in 0..user.assignments.len() {
            let a = &user.assignments[i];
            if a.source == source && matches!(a.intent, Intent::Assign(_)) {
                let product = a.product;
                if !user.holds(product) && seats.take(product) {
                    out.seats_taken = out.seats_taken.saturating_add(1);
                }
                let a = &mut user.assignments[i];
                if let Intent::Assign(disabled) = &a.intent
                    && a.applied.as_ref() != Some(disabled)
                {
                    a.applied = Some(disabled.clone());
                    out.changed = true;
                }
                out.changed |= set_result(a, AssignmentState::Active, None);
            }
        }
        out.applied = true;
        if with_withdrawals {
            while let Some(i) = user
                .assignments
                .iter()
                .position(|a| a.source == source && a.intent == Intent::Withdraw)
            {
                self.remove(user, i, seats, out);
            }
        }
        true
    }

    fn apply_error(
        &self,
        user: &UserLicenses,
        group: GroupId,
        proposal: &Proposal<'_>,
        seats: &SeatCounter,
    ) -> LicenseError {
        let table = self.table;
        let source = Source::Group(group);
        let mut after = Vec::new();
        let mut candidate = Vec::new();
        for a in &user.assignments {
            match &a.intent {
                Intent::Assign(disabled) if a.source == source => candidate.push(Provider {
                    at: a.source_ref(),
                    plans: disabled.enabled_in(table, a.product),
                }),
                _ if a.is_applied() => after.push(Provider {
                    at: a.source_ref(),
                    plans: a.applied_plans(table),
                }),
                _ => {}
            }
        }
        after.extend(candidate.iter().copied());
        direct_first(&mut after);
        let mut unseated: Vec<ProductId> = Vec::new();
        for a in &user.assignments {
            if a.source == source
                && matches!(a.intent, Intent::Assign(_))
                && !user.holds(a.product)
                && seats.available(a.product) == 0
                && !unseated.contains(&a.product)
            {
                unseated.push(a.product);
            }
        }
        let fallback = candidate.first().map(|p| p.at).or_else(|| {
            user.assignments
                .iter()
                .find(|a| a.source == source)
                .map(Assignment::source_ref)
        });
        proposal.error(&after, &candidate, fallback, unseated)
    }

    /// P3: the group's pending withdrawals of applied assignments, checked with C4 on the
    /// enabled set without them. All together when that passes; otherwise one by one, as many
    /// as can go (repeated until none more can, so that a second pass finds nothing to do),
    /// and the rest stay applied, `ACTIVE_WITH_ERROR` with `DEPENDENCY_VIOLATION`.
    fn withdraw(
        &self,
        user: &mut UserLicenses,
        group: GroupId,
        seats: &mut SeatCounter,
        out: &mut ProcessOutcome,
    ) {
        let table = self.table;
        let source = Source::Group(group);
        let withdrawn = |a: &Assignment| a.source == source && a.intent == Intent::Withdraw;
        let before = user.enabled_plans(table);
        let mut after = PlanSet::EMPTY;
        for a in user.assignments.iter().filter(|a| !withdrawn(a)) {
            after |= a.applied_plans(table);
        }
        if !breaks_prerequisites(table, &before, &after) {
            while let Some(i) = user.assignments.iter().position(withdrawn) {
                self.remove(user, i, seats, out);
            }
            return;
        }
        loop {
            let mut progress = false;
            let mut i = 0;
            while i < user.assignments.len() {
                if withdrawn(&user.assignments[i]) && !self.blocks(user, i) {
                    self.remove(user, i, seats, out);
                    progress = true;
                } else {
                    i += 1;
                }
            }
            if !progress {
                break;
            }
        }
        for i in 0..user.assignments.len() {
            if withdrawn(&user.assignments[i]) {
                let error = self.withdrawal_error(user, i);
                out.withdrawals_blocked = out.withdrawals_blocked.saturating_add(1);
                out.changed |= set_result(
                    &mut user.assignments[i],
                    AssignmentState::ActiveWithError,
                    Some(&error),
                );
            }
        }
    }

    /// Sets without assignment `skip`: (enabled now, enabled without it).
    fn without(&self, user: &UserLicenses, skip: usize) -> (PlanSet, PlanSet) {
        let mut before = PlanSet::EMPTY;
        let mut after = PlanSet::EMPTY;
        for (i, a) in user.assignments.iter().enumerate() {
            let plans = a.applied_plans(self.table);
            before |= plans;
            if i != skip {
                after |= plans;
            }
        }
        (before, after)
    }

    /// Whether withdrawing assignment `i` alone would break a prerequisite (C4).
    fn blocks(&self, user: &UserLicenses, i: usize) -> bool {
        let (before, after) = self.without(user, i);
        breaks_prerequisites(self.table, &before, &after)
    }

    fn withdrawal_error(&self, user: &UserLicenses, i: usize) -> LicenseError {
        let (before, after) = self.without(user, i);
        let proposal = Proposal {
            table: self.table,
            before,
            after,
            candidate: PlanSet::EMPTY,
            duplicate: None,
            location: None,
            exclusive: false,
            dependencies: true,
        };
        let mut providers: Vec<Provider> = user
            .assignments
            .iter()
            .enumerate()
            .filter(|(j, a)| *j != i && a.is_applied())
            .map(|(_, a)| Provider {
                at: a.source_ref(),
                plans: a.applied_plans(self.table),
            })
            .collect();
        direct_first(&mut providers);
        let fallback = user.assignments[i].source_ref();
        proposal.error(&providers, &[], Some(fallback), Vec::new())
    }

    /// Removes record `i` and frees its seat when the user holds the product from nowhere
    /// else (L1, L3).
    fn remove(
        &self,
        user: &mut UserLicenses,
        i: usize,
        seats: &mut SeatCounter,
        out: &mut ProcessOutcome,
    ) {
        let a = user.assignments.remove(i);
        out.changed = true;
        out.withdrawn = out.withdrawn.saturating_add(1);
        if a.is_applied() && !user.holds(a.product) && seats.free(a.product) {
            out.seats_freed = out.seats_freed.saturating_add(1);
        }
    }

    /// P4: re-validates the group's applied, unchanged assignments with C2 and C3. A failure
    /// takes nothing away (`ACTIVE_WITH_ERROR`); a success makes them `ACTIVE` again.
    fn revalidate(&self, user: &mut UserLicenses, group: GroupId, out: &mut ProcessOutcome) {
        let table = self.table;
        let source = Source::Group(group);
        let current = |a: &Assignment| {
            a.source == source && a.is_applied() && matches!(a.intent, Intent::Assign(_))
        };
        let enabled = user.enabled_plans(table);
        let mut candidate = PlanSet::EMPTY;
        for a in user.assignments.iter().filter(|a| current(a)) {
            candidate |= a.applied_plans(table);
        }
        let location = self.location(user);
        let check = |candidate| Proposal {
            table,
            before: enabled,
            after: enabled,
            candidate,
            duplicate: None,
            location: Some(location),
            exclusive: true,
            dependencies: false,
        };
        if check(candidate).passes(true) {
            for a in user.assignments.iter_mut().filter(|a| current(a)) {
                out.changed |= set_result(a, AssignmentState::Active, None);
            }
            return;
        }
        // Some assignment fails: each one is judged on its own plans.
        let mut providers: Vec<Provider> = user
            .assignments
            .iter()
            .filter(|a| a.is_applied())
            .map(|a| Provider {
                at: a.source_ref(),
                plans: a.applied_plans(table),
            })
            .collect();
        direct_first(&mut providers);
        for i in 0..user.assignments.len() {
            if !current(&user.assignments[i]) {
                continue;
            }
            let a = &user.assignments[i];
            let own = Provider {
                at: a.source_ref(),
                plans: a.applied_plans(table),
            };
            let proposal = check(own.plans);
            let (state, error) = if proposal.passes(true) {
                (AssignmentState::Active, None)
            } else {
                let error = proposal.error(&providers, &[own], Some(own.at), Vec::new());
                (AssignmentState::ActiveWithError, Some(error))
            };
            out.changed |= set_result(&mut user.assignments[i], state, error.as_ref());
        }
    }

    /// P1: applies `group` to each user in the order given (the caller gives join order, ties
    /// by user id) against one shared seat counter, so that earlier members get scarce seats
    /// first. `each` sees every user with its outcome (the store writes back the changed ones).
    /// Linear in the number of users; allocation-free on the error-free path.
    pub fn process_batch<'u, I, F>(
        &self,
        group: GroupId,
        users: I,
        seats: &mut SeatCounter,
        mut each: F,
    ) -> BatchSummary
    where
        I: IntoIterator<Item = &'u mut UserLicenses>,
        F: FnMut(&UserLicenses, &ProcessOutcome),
    {
        let mut summary = BatchSummary::default();
        for user in users {
            let out = self.process_group(user, group, seats);
            let add = |total: &mut u32, n: u32| *total = total.saturating_add(n);
            add(&mut summary.users, 1);
            add(&mut summary.changed_users, u32::from(out.changed));
            add(
                &mut summary.users_with_errors,
                u32::from(out.error.is_some()),
            );
            add(&mut summary.seats_taken, out.seats_taken);
            add(&mut summary.seats_freed, out.seats_freed);
            each(user, &out);
        }
        summary
    }

    /// One run of `group` over `users` (P1, P5): each user is first given what the group wants
    /// of it (`licenses` for a member, a withdrawal for a former member), then processed as
    /// [`Engine::process_batch`] does. Processing and previews (W1) both run this, so a preview
    /// takes exactly the steps that processing will.
    pub fn process_members<'u, I, F>(
        &self,
        group: GroupId,
        licenses: &[super::LicenseSpec],
        users: I,
        seats: &mut SeatCounter,
        each: F,
    ) -> BatchSummary
    where
        I: IntoIterator<Item = (&'u mut UserLicenses, bool)>,
        F: FnMut(&UserLicenses, &ProcessOutcome),
    {
        let users = users.into_iter().map(|(user, member)| {
            if member {
                super::set_group_intent(user, group, licenses);
            } else {
                super::withdraw_group(user, group);
            }
            user
        });
        self.process_batch(group, users, seats, each)
    }

    /// P5 / P6 (`reprocessUser`): processes every group of the user, `groups` first in the
    /// order given (the order the user joined them), then every other group the user still has
    /// records from (former groups with a pending withdrawal), in record order.
    ///
    /// One group's outcome can change another's context (a later group applied makes an
    /// earlier one's failure a conflict too; a withdrawal applied unblocks another), so passes
    /// repeat until one changes nothing: processing the user again then changes nothing (P8).
    /// Applied configurations only move forward (each pending assignment is applied at most
    /// once, each withdrawal removed at most once), so this ends; the pass count is capped all
    /// the same.
    pub fn process_user(
        &self,
        user: &mut UserLicenses,
        groups: &[GroupId],
        seats: &mut SeatCounter,
    ) -> ProcessOutcome {
        let mut out = ProcessOutcome::default();
        for _ in 0..user.assignments.len() + 2 {
            let pass = self.process_user_once(user, groups, seats);
            out.merge(pass);
            if !pass.changed {
                break;
            }
        }
        // The first error among all the user's group assignments, in record order.
        out.error = user
            .assignments
            .iter()
            .filter(|a| !a.source.is_direct())
            .find_map(Assignment::error_code);
        out
    }

    fn process_user_once(
        &self,
        user: &mut UserLicenses,
        groups: &[GroupId],
        seats: &mut SeatCounter,
    ) -> ProcessOutcome {
        let mut out = ProcessOutcome::default();
        for group in groups {
            out.merge(self.process_group(user, *group, seats));
        }
        let mut former: Vec<GroupId> = Vec::new();
        for a in &user.assignments {
            if let Source::Group(g) = a.source
                && !groups.contains(&g)
                && !former.contains(&g)
            {
                former.push(g);
            }
        }
        for group in former {
            out.merge(self.process_group(user, group, seats));
        }
        out
    }

    /// P7: deleting a user withdraws all its assignments, with no checks, and frees its seats.
    pub fn delete_user(&self, user: &mut UserLicenses, seats: &mut SeatCounter) -> DeleteOutcome {
        delete_user(user, seats)
    }
}

/// P7 without an [`Engine`](super::Engine): no rule is consulted.
pub fn delete_user(user: &mut UserLicenses, seats: &mut SeatCounter) -> DeleteOutcome {
    let mut out = DeleteOutcome::default();
    for product in user.held_products() {
        if seats.free(product) {
            out.seats_freed = out.seats_freed.saturating_add(1);
        }
    }
    out.assignments_removed = count_u32(user.assignments.len());
    user.assignments.clear();
    out
}

/// Sets an assignment's state and error, keeping the old error when equal (no allocation when
/// nothing changes). Returns whether the record changed.
fn set_result(a: &mut Assignment, state: AssignmentState, error: Option<&LicenseError>) -> bool {
    let changed = a.state != state || a.error.as_ref() != error;
    if changed {
        a.state = state;
        a.error = error.cloned();
    }
    changed
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
