//! W: what-if previews. A preview runs the very steps that committing a change and processing
//! it would run ([`Engine::process_members`], [`Engine::assign_direct`]) on users the store has
//! loaded, and records, per user, how the assignments from the change's source would stand
//! afterwards. Nothing here reads or writes anything else: the store loads the users, in
//! processing order, and hands them over one chunk at a time.
//!
//! What is kept per user is small (an outcome, an error code and an index): the lists of
//! assignments afterwards are shared between the users that end the same way, which on a big
//! group is nearly all of them (every member licensed alike, or every member short of the same
//! seat). A preview of a million members so stays within tens of MiB (W6).

use std::collections::HashMap;

use crate::rules::{ProductId, RuleTable};

use super::{
    Assignment, DirectError, Engine, ErrorCode, GroupId, LicenseChange, LicenseError, LicenseSpec,
    ProcessOutcome, SeatCounter, Source, UserId, UserLicenses, Violation,
};

/// W5: how one affected user comes out, relative to the assignments from the change's source.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Outcome {
    /// Every assignment from the source is applied without error afterwards.
    Licensed,
    /// At least one is in `ERROR` or `ACTIVE_WITH_ERROR` afterwards.
    Error,
    /// Everything the source gave was withdrawn, and the withdrawal applied.
    Removed,
    /// A withdrawal would be blocked by a plan that needs it (P3).
    Blocked,
    /// States, errors and held licenses as they are now.
    Unchanged,
}

impl Outcome {
    /// Every outcome, in the order of W5's list of precedence.
    pub const ALL: [Outcome; 5] = [
        Outcome::Unchanged,
        Outcome::Blocked,
        Outcome::Removed,
        Outcome::Error,
        Outcome::Licensed,
    ];

    fn index(self) -> usize {
        match self {
            Outcome::Unchanged => 0,
            Outcome::Blocked => 1,
            Outcome::Removed => 2,
            Outcome::Error => 3,
            Outcome::Licensed => 4,
        }
    }
}

/// One affected user.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PreviewEntry {
    pub user: UserId,
    pub outcome: Outcome,
    /// The first error among the source's assignments afterwards.
    pub error: Option<ErrorCode>,
    /// Which of [`Preview::after`]'s lists is this user's.
    after: u32,
}

/// One product's seats before and after the change.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SeatChange {
    pub product: ProductId,
    pub prepaid: u32,
    pub consumed: u32,
    pub consumed_after: u32,
    /// Users who would be left with `COUNT_VIOLATION` for the product.
    pub short: u32,
}

/// How a user stands before a step, to tell its outcome after (W5): the assignments from the
/// source. A step changes no other assignment, so what the user held before is known from them
/// and the user afterwards (see [`held_alike`]).
pub struct Before {
    records: Vec<Assignment>,
}

/// Whether the user holds the same products with the same enabled plans (L1, L2) as before the
/// step, `before` being its assignments from `source` then: only those products can differ.
fn held_alike(
    table: &RuleTable,
    user: &UserLicenses,
    source: Source,
    before: &[Assignment],
) -> bool {
    let mut touched = before
        .iter()
        .chain(user.assignments_from(source))
        .map(|a| a.product);
    touched.all(|p| {
        standing(table, user, source, p, before.iter())
            == standing(table, user, source, p, user.assignments_from(source))
    })
}

/// Whether `user` holds `p`, and with which plans, were its assignments from `source` those of
/// `from`.
fn standing<'a>(
    table: &RuleTable,
    user: &'a UserLicenses,
    source: Source,
    p: ProductId,
    from: impl Iterator<Item = &'a Assignment>,
) -> (bool, crate::rules::PlanSet) {
    let others = user
        .assignments
        .iter()
        .filter(|a| a.source != source)
        .chain(from)
        .filter(|a| a.product == p);
    let mut held = false;
    let mut plans = crate::rules::PlanSet::EMPTY;
    for a in others {
        held |= a.is_applied();
        plans |= a.applied_plans(table);
    }
    (held, plans)
}

/// The result of a preview, built step by step and then [`Preview::finish`]ed.
pub struct Preview {
    source: Source,
    entries: Vec<PreviewEntry>,
    lists: Vec<Vec<Assignment>>,
    index: HashMap<Vec<Assignment>, u32>,
    seats_before: SeatCounter,
    seats_after: SeatCounter,
    short: HashMap<ProductId, u32>,
    outcomes: [u32; 5],
    errors: HashMap<ErrorCode, u32>,
    /// The list the last user recorded ended with.
    last: Option<u32>,
    finished: bool,
}

impl Preview {
    /// A preview of a change to `source`'s assignments, the seats being `seats` now.
    pub fn new(source: Source, seats: &SeatCounter) -> Preview {
        Preview {
            source,
            entries: Vec::new(),
            lists: Vec::new(),
            index: HashMap::new(),
            seats_before: seats.clone(),
            seats_after: seats.clone(),
            short: HashMap::new(),
            outcomes: [0; 5],
            errors: HashMap::new(),
            last: None,
            finished: false,
        }
    }

    pub fn source(&self) -> Source {
        self.source
    }

    /// Remembers how `user` stands before a step.
    pub fn before(&self, user: &UserLicenses) -> Before {
        Before {
            records: user.assignments_from(self.source).cloned().collect(),
        }
    }

    /// Records how `user` stands after a step. `out` is the processing outcome, for group
    /// steps.
    pub fn record(
        &mut self,
        table: &RuleTable,
        before: Before,
        user: &UserLicenses,
        out: Option<&ProcessOutcome>,
    ) {
        let source = self.source;
        let after = || user.assignments_from(source);
        let error = after().find_map(Assignment::error_code);
        let unchanged = before.records.len() == after().count()
            && before
                .records
                .iter()
                .zip(after())
                .all(|(b, a)| same_standing(b, a))
            && held_alike(table, user, source, &before.records);
        let outcome = if unchanged {
            Outcome::Unchanged
        } else if out.is_some_and(|o| o.withdrawals_blocked > 0) {
            Outcome::Blocked
        } else if after().next().is_none() {
            Outcome::Removed
        } else if error.is_some() {
            Outcome::Error
        } else {
            Outcome::Licensed
        };
        self.outcomes[outcome.index()] += 1;
        if let Some(code) = error {
            *self.errors.entry(code).or_default() += 1;
        }
        if error.is_some() {
            let mut short: Vec<ProductId> = Vec::new();
            for a in after() {
                for v in a.error.iter().flat_map(|e| &e.violations) {
                    if let Violation::NoSeat { products } = v {
                        short.extend(products.iter().copied());
                    }
                }
            }
            short.sort_unstable();
            short.dedup();
            for p in short {
                *self.short.entry(p).or_default() += 1;
            }
        }
        // Users next to each other mostly end alike (a big group licensed the same way): the
        // last list is tried before the index, which would hash the whole list.
        let after = match self.last.filter(|i| {
            self.lists
                .get(*i as usize)
                .is_some_and(|l| l.iter().eq(after()))
        }) {
            Some(i) => i,
            None => {
                let list: Vec<Assignment> = after().cloned().collect();
                let next = u32::try_from(self.lists.len()).unwrap_or(u32::MAX);
                let i = match self.index.get(&list) {
                    Some(i) => *i,
                    None => {
                        self.index.insert(list.clone(), next);
                        self.lists.push(list);
                        next
                    }
                };
                self.last = Some(i);
                i
            }
        };
        self.entries.push(PreviewEntry {
            user: user.id,
            outcome,
            error,
            after,
        });
    }

    /// Ends the preview with the seats as the steps left them: the users in id order.
    pub fn finish(&mut self, seats: &SeatCounter) {
        self.seats_after = seats.clone();
        self.entries.sort_unstable_by_key(|e| e.user);
        // A user processed twice (listed twice by a caller) counts once, as it last stood.
        self.entries.dedup_by(|later, earlier| {
            let same = later.user == earlier.user;
            if same {
                *earlier = *later;
            }
            same
        });
        self.index = HashMap::new();
        self.finished = true;
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Every affected user, by id (W5).
    pub fn entries(&self) -> &[PreviewEntry] {
        &self.entries
    }

    /// The assignments from the source that `entry`'s user would have afterwards.
    pub fn after(&self, entry: &PreviewEntry) -> &[Assignment] {
        self.lists
            .get(entry.after as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The entry of `user`, if affected.
    pub fn entry(&self, user: UserId) -> Option<&PreviewEntry> {
        self.entries
            .binary_search_by_key(&user, |e| e.user)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Users per outcome, in the order of [`Outcome::ALL`], the empty ones left out.
    pub fn outcome_counts(&self) -> Vec<(Outcome, u32)> {
        Outcome::ALL
            .iter()
            .map(|o| (*o, self.outcomes[o.index()]))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Users in error afterwards per code, largest first (ties in the codes' order).
    pub fn error_counts(&self) -> Vec<(ErrorCode, u32)> {
        let mut counts: Vec<(ErrorCode, u32)> = ErrorCode::ALL
            .iter()
            .filter_map(|c| self.errors.get(c).map(|n| (*c, *n)))
            .collect();
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        counts
    }

    /// The products whose consumption would change or that would lack seats, in the table's
    /// order.
    pub fn seat_changes(&self, table: &RuleTable) -> Vec<SeatChange> {
        table
            .product_ids()
            .filter_map(|p| {
                let before = self.seats_before.get(p);
                let after = self.seats_after.get(p);
                let short = self.short.get(&p).copied().unwrap_or(0);
                (before.consumed != after.consumed || short > 0).then_some(SeatChange {
                    product: p,
                    prepaid: before.prepaid,
                    consumed: before.consumed,
                    consumed_after: after.consumed,
                    short,
                })
            })
            .collect()
    }

    /// Roughly how many bytes the preview holds, for the bound on kept previews.
    pub fn weight(&self) -> usize {
        let lists: usize = self
            .lists
            .iter()
            .map(|l| l.len() * std::mem::size_of::<Assignment>() + 64)
            .sum();
        self.entries.len() * std::mem::size_of::<PreviewEntry>() + lists + 1024
    }
}

/// Whether an assignment stands as it did: same state, same error (W5; what the user holds is
/// compared on its own). The intent is left out: the store keeps none for groups, processing
/// derives it from the membership.
fn same_standing(before: &Assignment, after: &Assignment) -> bool {
    before.product == after.product
        && before.state == after.state
        && match (&before.error, &after.error) {
            (None, None) => true,
            (Some(a), Some(b)) => same_error(a, b),
            _ => false,
        }
}

/// Whether two errors say the same: the same code and the same violations, whatever their
/// order and the order of the lists inside them (a group's products listed in a new order give
/// the same `NoSeat`).
fn same_error(a: &LicenseError, b: &LicenseError) -> bool {
    let normal = |e: &LicenseError| -> Vec<Violation> {
        let mut list: Vec<Violation> = e
            .violations
            .iter()
            .map(|v| {
                let mut v = v.clone();
                match &mut v {
                    Violation::NoSeat { products } => products.sort_unstable(),
                    Violation::ProhibitedInLocation { plans, .. } => plans.sort_unstable(),
                    Violation::MissingPrerequisite { missing, .. } => missing.sort_unstable(),
                    _ => {}
                }
                v
            })
            .collect();
        list.sort_by_key(|v| format!("{v:?}"));
        list
    };
    a.code() == b.code() && (a == b || normal(a) == normal(b))
}

impl Engine<'_> {
    /// W1 for a group step: `users` (members or former members, in processing order) given
    /// what `group` wants of them and processed against `seats`, as a run of the group would.
    pub fn preview_members<'u, I>(
        &self,
        preview: &mut Preview,
        group: GroupId,
        licenses: &[LicenseSpec],
        users: I,
        seats: &mut SeatCounter,
    ) where
        I: IntoIterator<Item = (&'u mut UserLicenses, bool)>,
    {
        let users: Vec<(&mut UserLicenses, bool)> = users.into_iter().collect();
        let table = self.table;
        let mut before: Vec<Option<Before>> =
            users.iter().map(|(u, _)| Some(preview.before(u))).collect();
        let mut i = 0;
        self.process_members(group, licenses, users, seats, |user, out| {
            if let Some(b) = before.get_mut(i).and_then(Option::take) {
                preview.record(table, b, user, Some(out));
            }
            i += 1;
        });
    }

    /// W1 for `assignLicense`: the same step as the mutation on `user`, refused alike (W3).
    pub fn preview_direct(
        &self,
        preview: &mut Preview,
        user: &mut UserLicenses,
        change: &LicenseChange,
        seats: &mut SeatCounter,
    ) -> Result<(), DirectError> {
        let before = preview.before(user);
        self.assign_direct(user, change, seats)?;
        preview.record(self.table, before, user, None);
        Ok(())
    }
}
