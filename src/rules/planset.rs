//! Fixed-size sets of service plans.
//!
//! Every question the evaluator asks about plans (do two exclusive plans meet? is a prerequisite
//! missing? is a plan barred here?) is a handful of word-wide AND/OR operations over these sets.
//! The size is fixed so that a set is `Copy`, lives on the stack and never allocates: the engine's
//! error-free path must not touch the heap.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not, Sub, SubAssign};

/// How many service plans one rule table may declare. Microsoft's whole catalog holds about 730;
/// the rest is headroom for admins' own plans. The compiler reports an error past this limit.
pub const MAX_PLANS: usize = 1024;
const WORDS: usize = MAX_PLANS / 64;

/// Dense index of a service plan in a [`RuleTable`](super::RuleTable).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PlanId(u16);

impl PlanId {
    /// `None` when `index` is at or past [`MAX_PLANS`].
    pub fn new(index: usize) -> Option<PlanId> {
        if index < MAX_PLANS {
            u16::try_from(index).ok().map(PlanId)
        } else {
            None
        }
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Dense index of a product (SKU) in a [`RuleTable`](super::RuleTable).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ProductId(u32);

impl ProductId {
    pub fn new(index: usize) -> Option<ProductId> {
        u32::try_from(index).ok().map(ProductId)
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of plans, one bit per [`PlanId`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlanSet {
    words: [u64; WORDS],
}

impl Default for PlanSet {
    fn default() -> Self {
        PlanSet::EMPTY
    }
}

impl PlanSet {
    pub const EMPTY: PlanSet = PlanSet { words: [0; WORDS] };

    pub fn single(plan: PlanId) -> PlanSet {
        let mut set = PlanSet::EMPTY;
        set.insert(plan);
        set
    }

    pub fn insert(&mut self, plan: PlanId) {
        self.words[plan.index() / 64] |= 1 << (plan.index() % 64);
    }

    pub fn remove(&mut self, plan: PlanId) {
        self.words[plan.index() / 64] &= !(1 << (plan.index() % 64));
    }

    pub fn contains(&self, plan: PlanId) -> bool {
        self.words[plan.index() / 64] & (1 << (plan.index() % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn intersects(&self, other: &PlanSet) -> bool {
        self.words
            .iter()
            .zip(other.words.iter())
            .any(|(a, b)| a & b != 0)
    }

    pub fn is_subset(&self, other: &PlanSet) -> bool {
        self.words
            .iter()
            .zip(other.words.iter())
            .all(|(a, b)| a & !b == 0)
    }

    /// The plans in ascending [`PlanId`] order.
    pub fn iter(&self) -> PlanSetIter<'_> {
        PlanSetIter {
            words: &self.words,
            word: 0,
            bits: self.words[0],
        }
    }
}

impl FromIterator<PlanId> for PlanSet {
    fn from_iter<I: IntoIterator<Item = PlanId>>(iter: I) -> Self {
        let mut set = PlanSet::EMPTY;
        for plan in iter {
            set.insert(plan);
        }
        set
    }
}

impl fmt::Debug for PlanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(PlanId::index))
            .finish()
    }
}

pub struct PlanSetIter<'a> {
    words: &'a [u64; WORDS],
    word: usize,
    bits: u64,
}

impl Iterator for PlanSetIter<'_> {
    type Item = PlanId;

    fn next(&mut self) -> Option<PlanId> {
        loop {
            if self.bits != 0 {
                let bit = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                return Some(PlanId((self.word * 64 + bit) as u16));
            }
            self.word += 1;
            if self.word >= WORDS {
                return None;
            }
            self.bits = self.words[self.word];
        }
    }
}

macro_rules! word_op {
    ($trait:ident, $method:ident, $assign_trait:ident, $assign_method:ident, |$a:ident, $b:ident| $body:expr) => {
        impl $trait for PlanSet {
            type Output = PlanSet;
            fn $method(mut self, rhs: PlanSet) -> PlanSet {
                self.$assign_method(rhs);
                self
            }
        }
        impl $trait<&PlanSet> for &PlanSet {
            type Output = PlanSet;
            fn $method(self, rhs: &PlanSet) -> PlanSet {
                let mut out = *self;
                out.$assign_method(*rhs);
                out
            }
        }
        impl $assign_trait for PlanSet {
            fn $assign_method(&mut self, rhs: PlanSet) {
                for ($a, $b) in self.words.iter_mut().zip(rhs.words.iter()) {
                    *$a = $body;
                }
            }
        }
    };
}

word_op!(BitOr, bitor, BitOrAssign, bitor_assign, |a, b| *a | b);
word_op!(BitAnd, bitand, BitAndAssign, bitand_assign, |a, b| *a & b);
word_op!(Sub, sub, SubAssign, sub_assign, |a, b| *a & !b);

impl Not for PlanSet {
    type Output = PlanSet;
    fn not(mut self) -> PlanSet {
        for w in self.words.iter_mut() {
            *w = !*w;
        }
        self
    }
}

/// A plan set stored as its non-zero words only. Exclusive sets and prerequisite lists hold a
/// few plans each, so testing them against a full [`PlanSet`] touches two or three words instead
/// of all of them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SparsePlanSet {
    words: Box<[(u16, u64)]>,
}

impl SparsePlanSet {
    pub fn new(set: &PlanSet) -> SparsePlanSet {
        SparsePlanSet {
            words: set
                .words
                .iter()
                .enumerate()
                .filter(|(_, w)| **w != 0)
                .map(|(i, w)| (i as u16, *w))
                .collect(),
        }
    }

    pub fn intersects(&self, set: &PlanSet) -> bool {
        self.words
            .iter()
            .any(|(i, w)| set.words[usize::from(*i)] & w != 0)
    }

    /// How many plans this set and `set` have in common.
    pub fn count_common(&self, set: &PlanSet) -> u32 {
        self.words
            .iter()
            .map(|(i, w)| (set.words[usize::from(*i)] & w).count_ones())
            .sum()
    }

    pub fn to_plan_set(&self) -> PlanSet {
        let mut set = PlanSet::EMPTY;
        for (i, w) in self.words.iter() {
            set.words[usize::from(*i)] = *w;
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(i: usize) -> PlanId {
        PlanId::new(i).expect("test index in range")
    }

    #[test]
    fn plan_id_range_is_checked() {
        assert!(PlanId::new(MAX_PLANS - 1).is_some());
        assert!(PlanId::new(MAX_PLANS).is_none());
    }

    fn arb_set() -> impl Strategy<Value = std::collections::BTreeSet<usize>> {
        proptest::collection::btree_set(0..MAX_PLANS, 0..40)
    }

    proptest! {
        #[test]
        fn set_operations_agree_with_btreeset(a in arb_set(), b in arb_set()) {
            let sa: PlanSet = a.iter().map(|i| id(*i)).collect();
            let sb: PlanSet = b.iter().map(|i| id(*i)).collect();
            let back = |s: PlanSet| s.iter().map(PlanId::index).collect::<Vec<_>>();
            prop_assert_eq!(back(sa), a.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(back(sa | sb), a.union(&b).copied().collect::<Vec<_>>());
            prop_assert_eq!(back(sa & sb), a.intersection(&b).copied().collect::<Vec<_>>());
            prop_assert_eq!(back(sa - sb), a.difference(&b).copied().collect::<Vec<_>>());
            prop_assert_eq!(sa.len(), a.len());
            prop_assert_eq!(sa.intersects(&sb), !a.is_disjoint(&b));
            prop_assert_eq!(sa.is_subset(&sb), a.is_subset(&b));
            let sparse = SparsePlanSet::new(&sa);
            prop_assert_eq!(sparse.to_plan_set(), sa);
            prop_assert_eq!(sparse.intersects(&sb), !a.is_disjoint(&b));
            prop_assert_eq!(sparse.count_common(&sb) as usize, a.intersection(&b).count());
        }
    }
}
