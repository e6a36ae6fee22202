//! The compiled rule table: what the evaluator consults.
//!
//! Names are looked up once, at the edges (the API turning a `skuPartNumber` into a
//! [`ProductId`]); every question asked while licensing a user is a few bit operations over
//! [`PlanSet`]s. The table is immutable once built; the server shares it behind an `Arc` and swaps
//! the whole `Arc` on reload.

use std::collections::HashMap;

use super::ast::Span;
use super::country::{COUNTRY_COUNT, Country};
use super::diagnostic::{Diagnostic, Severity, Sources};
use super::planset::{PlanId, PlanSet, ProductId, SparsePlanSet};

pub use super::ast::LocationKind;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PlanInfo {
    pub name: String,
    pub display_name: String,
    /// The GUID as written in the rules, when one was given.
    pub id: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProductInfo {
    pub name: String,
    pub display_name: String,
    pub id: Option<String>,
    pub plans: PlanSet,
    /// The same plans in the order the rules list them, for display.
    pub plan_list: Vec<PlanId>,
}

/// Plans any two of which are mutually exclusive (R1).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExclusiveSet {
    pub label: String,
    pub plans: PlanSet,
    sparse: SparsePlanSet,
}

/// `plan` may be enabled only while one of `alternatives` is (R2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Prerequisite {
    pub plan: PlanId,
    /// In the order the rule lists them: messages name them in that order.
    pub alternatives: Vec<PlanId>,
    alternative_set: SparsePlanSet,
}

impl Prerequisite {
    /// Whether `enabled` holds at least one of the alternatives.
    pub fn is_met_by(&self, enabled: &PlanSet) -> bool {
        self.alternative_set.intersects(enabled)
    }

    pub fn alternative_set(&self) -> PlanSet {
        self.alternative_set.to_plan_set()
    }
}

/// `unavailable PLAN in {…}` or `available PLAN only in {…}` (R3).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LocationRule {
    pub plan: PlanId,
    pub kind: LocationKind,
    pub countries: Vec<Country>,
}

/// One pair of exclusive plans found together (C3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExclusivePair {
    /// A plan of the candidate.
    pub plan: PlanId,
    /// The plan it clashes with (a candidate too when both came in together).
    pub conflicting: PlanId,
    /// Index into [`RuleTable::exclusive_sets`]: the first set that holds the pair.
    pub set: usize,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RuleTable {
    plans: Vec<PlanInfo>,
    products: Vec<ProductInfo>,
    plan_index: HashMap<String, PlanId>,
    product_index: HashMap<String, ProductId>,
    exclusive_sets: Vec<ExclusiveSet>,
    prerequisites: Vec<Prerequisite>,
    /// Every plan that has a prerequisite: a set that misses it needs no further look.
    dependents: PlanSet,
    location_rules: Vec<LocationRule>,
    /// Per [`Country::index`], the plans that may not be enabled there.
    barred: Box<[PlanSet]>,
    files: Vec<String>,
    /// The texts the table was compiled from, and where each plan and product (by id) was
    /// declared in them: a later reload that drops one points at this declaration, which the
    /// files on disk may no longer hold. The texts are shared with the compilation, not copied.
    sources: Sources,
    plan_places: Vec<Span>,
    product_places: Vec<Span>,
}

/// The parts a [`RuleTable`] is built from; the compiler fills it after checking every rule.
#[derive(Default)]
pub(crate) struct TableParts {
    pub plans: Vec<PlanInfo>,
    pub products: Vec<ProductInfo>,
    pub exclusive_sets: Vec<(String, PlanSet)>,
    pub prerequisites: Vec<(PlanId, Vec<PlanId>)>,
    pub location_rules: Vec<LocationRule>,
    pub files: Vec<String>,
    pub sources: Sources,
    /// Where each of `plans` and `products` was declared, in the same order.
    pub plan_places: Vec<Span>,
    pub product_places: Vec<Span>,
}

impl RuleTable {
    pub(crate) fn build(parts: TableParts) -> RuleTable {
        let plan_index = parts
            .plans
            .iter()
            .enumerate()
            .filter_map(|(i, p)| PlanId::new(i).map(|id| (p.name.clone(), id)))
            .collect();
        let product_index = parts
            .products
            .iter()
            .enumerate()
            .filter_map(|(i, p)| ProductId::new(i).map(|id| (p.name.clone(), id)))
            .collect();
        let exclusive_sets = parts
            .exclusive_sets
            .into_iter()
            .map(|(label, plans)| ExclusiveSet {
                label,
                sparse: SparsePlanSet::new(&plans),
                plans,
            })
            .collect();
        let prerequisites: Vec<Prerequisite> = parts
            .prerequisites
            .into_iter()
            .map(|(plan, alternatives)| Prerequisite {
                plan,
                alternative_set: SparsePlanSet::new(&alternatives.iter().copied().collect()),
                alternatives,
            })
            .collect();
        let dependents = prerequisites.iter().map(|p| p.plan).collect();
        let mut barred = vec![PlanSet::EMPTY; COUNTRY_COUNT].into_boxed_slice();
        for rule in &parts.location_rules {
            for country in Country::all() {
                let listed = rule.countries.contains(&country);
                let bar = match rule.kind {
                    LocationKind::Unavailable => listed,
                    LocationKind::AvailableOnly => !listed,
                };
                if bar {
                    barred[country.index()].insert(rule.plan);
                }
            }
        }
        RuleTable {
            plans: parts.plans,
            products: parts.products,
            plan_index,
            product_index,
            exclusive_sets,
            prerequisites,
            dependents,
            location_rules: parts.location_rules,
            barred,
            files: parts.files,
            sources: parts.sources,
            plan_places: parts.plan_places,
            product_places: parts.product_places,
        }
    }

    pub fn plan(&self, id: PlanId) -> &PlanInfo {
        &self.plans[id.index()]
    }

    pub fn product(&self, id: ProductId) -> &ProductInfo {
        &self.products[id.index()]
    }

    pub fn plan_by_name(&self, name: &str) -> Option<PlanId> {
        self.plan_index.get(name).copied()
    }

    pub fn product_by_name(&self, name: &str) -> Option<ProductId> {
        self.product_index.get(name).copied()
    }

    pub fn plan_ids(&self) -> impl Iterator<Item = PlanId> + '_ {
        (0..self.plans.len()).filter_map(PlanId::new)
    }

    pub fn product_ids(&self) -> impl Iterator<Item = ProductId> + '_ {
        (0..self.products.len()).filter_map(ProductId::new)
    }

    pub fn plan_count(&self) -> usize {
        self.plans.len()
    }

    pub fn product_count(&self) -> usize {
        self.products.len()
    }

    pub fn exclusive_sets(&self) -> &[ExclusiveSet] {
        &self.exclusive_sets
    }

    pub fn prerequisites(&self) -> &[Prerequisite] {
        &self.prerequisites
    }

    pub fn location_rules(&self) -> &[LocationRule] {
        &self.location_rules
    }

    /// The files the table was compiled from, in the order they were read.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// A diagnostic at the name of `plan` in its declaration, as the table's own text has it;
    /// `None` for an id the table does not know.
    pub fn at_plan(&self, plan: PlanId, severity: Severity, message: String) -> Option<Diagnostic> {
        let span = *self.plan_places.get(plan.index())?;
        Some(self.sources.diagnostic(severity, span, message))
    }

    /// [`RuleTable::at_plan`] for a product.
    pub fn at_product(
        &self,
        product: ProductId,
        severity: Severity,
        message: String,
    ) -> Option<Diagnostic> {
        let span = *self.product_places.get(product.index())?;
        Some(self.sources.diagnostic(severity, span, message))
    }

    /// The plans that may not be enabled for a user located in `country` (R3).
    pub fn barred_in(&self, country: Country) -> &PlanSet {
        &self.barred[country.index()]
    }

    /// Whether no two plans of one exclusive set are both in `plans` (R1).
    pub fn is_exclusive_free(&self, plans: &PlanSet) -> bool {
        self.exclusive_sets
            .iter()
            .all(|set| set.sparse.count_common(plans) < 2)
    }

    /// Whether some exclusive pair lies in `enabled` with at least one side in `candidate` (C3).
    /// `candidate` is expected to be part of `enabled`.
    pub fn has_exclusive_pair(&self, enabled: &PlanSet, candidate: &PlanSet) -> bool {
        self.exclusive_sets
            .iter()
            .any(|set| set.sparse.intersects(candidate) && set.sparse.count_common(enabled) >= 2)
    }

    /// Every exclusive pair within `enabled` that has at least one side in `candidate`, set by
    /// set, the candidate's plan first. A pair is listed once however many sets hold it (a
    /// `conflict` that repeats a pair of an `exclusive` set, two sets that share two plans): it
    /// is one thing for the admin to fix. Only called once a violation is known
    /// ([`RuleTable::has_exclusive_pair`]), so it may allocate.
    pub fn exclusive_pairs(&self, enabled: &PlanSet, candidate: &PlanSet) -> Vec<ExclusivePair> {
        let mut pairs: Vec<ExclusivePair> = Vec::new();
        for (index, set) in self.exclusive_sets.iter().enumerate() {
            if !set.sparse.intersects(candidate) || set.sparse.count_common(enabled) < 2 {
                continue;
            }
            let present = set.plans & *enabled;
            for a in present.iter() {
                for b in present.iter().filter(|b| *b > a) {
                    let (plan, conflicting) = if candidate.contains(a) {
                        (a, b)
                    } else if candidate.contains(b) {
                        (b, a)
                    } else {
                        continue;
                    };
                    // The orientation depends on the two plans only, so a pair met again in a
                    // later set is the same (plan, conflicting).
                    if !pairs
                        .iter()
                        .any(|p| p.plan == plan && p.conflicting == conflicting)
                    {
                        pairs.push(ExclusivePair {
                            plan,
                            conflicting,
                            set: index,
                        });
                    }
                }
            }
        }
        pairs
    }

    /// Whether every plan of `enabled` that has prerequisites has one of them in `enabled` (R2).
    pub fn prerequisites_met(&self, enabled: &PlanSet) -> bool {
        !self.dependents.intersects(enabled)
            || self
                .prerequisites
                .iter()
                .all(|p| !enabled.contains(p.plan) || p.is_met_by(enabled))
    }

    /// The prerequisite rules that `enabled` breaks: the dependent plan is in it and none of its
    /// alternatives is (C4, G1).
    pub fn unmet_prerequisites<'a>(
        &'a self,
        enabled: &'a PlanSet,
    ) -> impl Iterator<Item = &'a Prerequisite> + 'a {
        let any = self.dependents.intersects(enabled);
        self.prerequisites
            .iter()
            .filter(move |p| any && enabled.contains(p.plan) && !p.is_met_by(enabled))
    }

    /// Names of the alternatives of a prerequisite, joined as Entra words it:
    /// "Exchange Online (Plan 1) or Exchange Online (Plan 2)".
    pub fn describe_alternatives(&self, prerequisite: &Prerequisite) -> String {
        prerequisite
            .alternatives
            .iter()
            .map(|p| self.plan(*p).display_name.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::RuleTable;

    /// The server shares one table between threads behind an `Arc` and swaps it whole.
    #[test]
    fn a_rule_table_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<RuleTable>();
        shareable::<std::sync::Arc<RuleTable>>();
    }
}
