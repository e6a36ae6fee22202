//! Statements → rule table, checking everything the spec lists and reporting it all in one run.

use std::collections::HashMap;

use super::ast::{LocationKind, Name, Span, Statement};
use super::country::Country;
use super::diagnostic::{Diagnostic, Severity, Sources};
use super::planset::{MAX_PLANS, PlanId, PlanSet, ProductId};
use super::table::{LocationRule, PlanInfo, ProductInfo, RuleTable, TableParts};

/// A table that compiled, with the warnings found on the way.
#[derive(Debug)]
pub struct Compiled {
    pub table: RuleTable,
    pub warnings: Vec<Diagnostic>,
}

/// Rules that did not compile: every error found, and the warnings beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileFailure {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Parses and compiles every file of `sources` as one namespace, in the order they were added.
pub fn compile(sources: &Sources) -> Result<Compiled, CompileFailure> {
    let mut diagnostics = Vec::new();
    let mut statements = Vec::new();
    for file in sources.ids() {
        super::parser::parse_file(sources, file, &mut statements, &mut diagnostics);
    }
    let mut compiler = Compiler {
        sources,
        diagnostics,
        parts: TableParts {
            files: sources.names().map(str::to_string).collect(),
            sources: sources.clone(),
            ..TableParts::default()
        },
        plan_decls: HashMap::new(),
        product_decls: HashMap::new(),
        exclusive_decls: Vec::new(),
        ids: HashMap::new(),
        suggestions_left: MAX_SUGGESTIONS,
    };
    compiler.declare(&statements);
    compiler.resolve(&statements);
    compiler.check_products();
    compiler.warn_redundant_sets();
    compiler.warn_unused_plans();

    let Compiler {
        mut diagnostics,
        parts,
        ..
    } = compiler;
    // Files in load order, then position: the order an admin reads them in.
    let file_order: HashMap<&str, usize> =
        sources.names().enumerate().map(|(i, n)| (n, i)).collect();
    diagnostics.sort_by_key(|d| (file_order.get(d.file.as_str()).copied(), d.line, d.column));
    let (errors, warnings): (Vec<_>, Vec<_>) = diagnostics.into_iter().partition(|d| d.is_error());
    if errors.is_empty() {
        Ok(Compiled {
            table: RuleTable::build(parts),
            warnings,
        })
    } else {
        Err(CompileFailure { errors, warnings })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum IdSpace {
    Plan,
    Product,
}

struct Compiler<'s> {
    sources: &'s Sources,
    diagnostics: Vec<Diagnostic>,
    parts: TableParts,
    /// Where each plan and product was declared, for "already declared at" messages.
    plan_decls: HashMap<String, (PlanId, Span)>,
    product_decls: HashMap<String, (ProductId, Span)>,
    /// Where each exclusive set of `parts` was declared, and whether as a `conflict`.
    exclusive_decls: Vec<(Span, bool)>,
    /// GUIDs in lower case, with the declaration that holds each; plans and products are
    /// separate namespaces for ids as for names (Microsoft's catalog gives one GUID to a plan and
    /// to a product).
    ids: HashMap<(IdSpace, String), (String, Span)>,
    /// "Did you mean" searches still allowed (each compares the name with every plan).
    suggestions_left: usize,
}

/// Unknown plan names that get a "did you mean": past these, a file full of unknown names (a
/// catalog renamed wholesale) would spend seconds on guesses nobody reads.
const MAX_SUGGESTIONS: usize = 100;

impl Compiler<'_> {
    fn error(&mut self, span: Span, message: String) {
        let d = self.sources.diagnostic(Severity::Error, span, message);
        self.diagnostics.push(d);
    }

    fn warning(&mut self, span: Span, message: String) {
        let d = self.sources.diagnostic(Severity::Warning, span, message);
        self.diagnostics.push(d);
    }

    fn place(&self, span: Span) -> String {
        let d = self
            .sources
            .diagnostic(Severity::Error, span, String::new());
        format!("{}:{}:{}", d.file, d.line, d.column)
    }

    /// First pass: every plan and product, so that rules may name them before or after their
    /// declaration and in any file.
    fn declare(&mut self, statements: &[Statement]) {
        for statement in statements {
            match statement {
                Statement::Plan {
                    name,
                    display_name,
                    id,
                } => self.declare_plan(name, display_name, id.as_ref()),
                Statement::Product {
                    name,
                    display_name,
                    id,
                    ..
                } => self.declare_product(name, display_name, id.as_ref()),
                _ => {}
            }
        }
    }

    fn declare_plan(&mut self, name: &Name, display_name: &Name, id: Option<&Name>) {
        if let Some((_, first)) = self.plan_decls.get(&name.value) {
            let message = format!(
                "plan `{}` is already declared at {}",
                name.value,
                self.place(*first)
            );
            self.error(name.span, message);
            return;
        }
        let Some(plan_id) = PlanId::new(self.parts.plans.len()) else {
            let message = format!(
                "too many plans: a rule table holds at most {MAX_PLANS}, and `{}` is one more",
                name.value
            );
            self.error(name.span, message);
            return;
        };
        self.check_display_name(display_name);
        let id = self.check_id(id, IdSpace::Plan, &format!("plan `{}`", name.value));
        self.plan_decls
            .insert(name.value.clone(), (plan_id, name.span));
        self.parts.plan_places.push(name.span);
        self.parts.plans.push(PlanInfo {
            name: name.value.clone(),
            display_name: display_name.value.clone(),
            id,
        });
    }

    fn declare_product(&mut self, name: &Name, display_name: &Name, id: Option<&Name>) {
        if let Some((_, first)) = self.product_decls.get(&name.value) {
            let message = format!(
                "product `{}` is already declared at {}",
                name.value,
                self.place(*first)
            );
            self.error(name.span, message);
            return;
        }
        let Some(product_id) = ProductId::new(self.parts.products.len()) else {
            return;
        };
        self.check_display_name(display_name);
        let id = self.check_id(id, IdSpace::Product, &format!("product `{}`", name.value));
        self.product_decls
            .insert(name.value.clone(), (product_id, name.span));
        self.parts.product_places.push(name.span);
        self.parts.products.push(ProductInfo {
            name: name.value.clone(),
            display_name: display_name.value.clone(),
            id,
            plans: PlanSet::EMPTY,
            plan_list: Vec::new(),
        });
    }

    fn check_display_name(&mut self, display_name: &Name) {
        if display_name.value.trim().is_empty() {
            self.error(display_name.span, "the display name is empty".into());
        }
    }

    /// Checks the GUID's form and that no other plan or product has it.
    fn check_id(&mut self, id: Option<&Name>, space: IdSpace, owner: &str) -> Option<String> {
        let id = id?;
        if !is_guid(&id.value) {
            let message = format!(
                "`{}` is not a GUID: expected 8-4-4-4-12 hexadecimal digits, like 9aaf7827-d63c-4b61-89c3-182f06f82e5c",
                id.value
            );
            self.error(id.span, message);
            return None;
        }
        let key = (space, id.value.to_ascii_lowercase());
        if let Some((other, span)) = self.ids.get(&key) {
            let message = format!(
                "id {} of {owner} is already the id of {other} at {}",
                id.value,
                self.place(*span)
            );
            self.error(id.span, message);
            return None;
        }
        self.ids.insert(key, (owner.to_string(), id.span));
        Some(id.value.clone())
    }

    /// The plan a name refers to, or an error naming the context and a likely intended name.
    fn plan_ref(&mut self, name: &Name, context: &str) -> Option<PlanId> {
        if let Some((id, _)) = self.plan_decls.get(&name.value) {
            return Some(*id);
        }
        let mut message = format!("unknown plan `{}` {context}", name.value);
        let suggestion = if self.suggestions_left > 0 {
            self.suggestions_left -= 1;
            self.suggest_plan(&name.value)
        } else {
            None
        };
        if let Some(suggestion) = suggestion {
            message.push_str(&format!(": did you mean `{suggestion}`?"));
        } else if self.product_decls.contains_key(&name.value) {
            message.push_str(": that is a product; list its plans instead");
        }
        self.error(name.span, message);
        None
    }

    /// A declared plan whose name differs from `wanted` only in case or by one or two edits.
    fn suggest_plan(&self, wanted: &str) -> Option<String> {
        let lower = wanted.to_lowercase();
        if let Some(same) = self
            .parts
            .plans
            .iter()
            .find(|p| p.name.to_lowercase() == lower)
        {
            return Some(same.name.clone());
        }
        self.parts
            .plans
            .iter()
            .filter_map(|p| {
                // Short names are too close to each other for a guess to help.
                let d = edit_distance(&p.name, wanted, (wanted.chars().count() / 4).min(2))?;
                Some((d, &p.name))
            })
            .min()
            .map(|(_, n)| n.clone())
    }

    /// Second pass: everything that refers to plans.
    fn resolve(&mut self, statements: &[Statement]) {
        // Location rules seen so far per plan, to refuse contradictory or ambiguous ones.
        let mut location_seen: HashMap<PlanId, (LocationKind, Span, usize)> = HashMap::new();
        for statement in statements {
            match statement {
                Statement::Plan { .. } => {}
                Statement::Product { name, plans, .. } => self.resolve_product(name, plans),
                Statement::Exclusive {
                    label,
                    plans,
                    from_conflict,
                } => self.resolve_exclusive(label, plans, *from_conflict),
                Statement::Prerequisite { plan, requires } => {
                    self.resolve_prerequisite(plan, requires)
                }
                Statement::Location {
                    plan,
                    rule,
                    countries,
                    list,
                } => self.resolve_location(plan, *rule, countries, *list, &mut location_seen),
            }
        }
    }

    fn resolve_product(&mut self, name: &Name, plans: &[Name]) {
        // A product rejected as a duplicate still has its plan names checked.
        let product = match self.product_decls.get(&name.value) {
            Some((id, span)) if *span == name.span => Some(*id),
            _ => None,
        };
        let context = format!("in product `{}`", name.value);
        let mut set = PlanSet::EMPTY;
        let mut list = Vec::new();
        for plan in plans {
            let Some(id) = self.plan_ref(plan, &context) else {
                continue;
            };
            if set.contains(id) {
                let message = format!(
                    "plan `{}` is listed twice in product `{}`",
                    plan.value, name.value
                );
                self.warning(plan.span, message);
                continue;
            }
            set.insert(id);
            list.push(id);
        }
        if plans.is_empty() {
            self.warning(name.span, format!("product `{}` has no plans", name.value));
        }
        if let Some(product) = product {
            let info = &mut self.parts.products[product.index()];
            info.plans = set;
            info.plan_list = list;
        }
    }

    fn resolve_exclusive(&mut self, label: &Name, plans: &[Name], from_conflict: bool) {
        let context = if from_conflict {
            "in conflict".to_string()
        } else {
            format!("in exclusive set \"{}\"", label.value)
        };
        let mut set = PlanSet::EMPTY;
        let mut unknown = false;
        for plan in plans {
            match self.plan_ref(plan, &context) {
                Some(id) => set.insert(id),
                None => unknown = true,
            }
        }
        if unknown {
            return;
        }
        if set.len() < 2 {
            let message = match (from_conflict, plans.first()) {
                (true, Some(plan)) => format!("plan `{}` cannot conflict with itself", plan.value),
                _ => format!(
                    "exclusive set \"{}\" needs at least two different plans",
                    label.value
                ),
            };
            let at = if from_conflict {
                plans.get(1).map_or(label.span, |p| p.span)
            } else {
                label.span
            };
            self.error(at, message);
            return;
        }
        self.parts.exclusive_sets.push((label.value.clone(), set));
        self.exclusive_decls.push((label.span, from_conflict));
    }

    fn resolve_prerequisite(&mut self, plan: &Name, requires: &[Name]) {
        let dependent = self.plan_ref(plan, "in prerequisite");
        let context = format!("in the prerequisites of `{}`", plan.value);
        let mut alternatives = Vec::new();
        let mut ok = dependent.is_some();
        for name in requires {
            match self.plan_ref(name, &context) {
                Some(id) if Some(id) == dependent => {
                    let message = format!("plan `{}` cannot be its own prerequisite", name.value);
                    self.error(name.span, message);
                    ok = false;
                }
                Some(id) => {
                    if !alternatives.contains(&id) {
                        alternatives.push(id);
                    }
                }
                None => ok = false,
            }
        }
        if requires.is_empty() {
            let message = format!(
                "the prerequisite of `{}` lists no plans: name at least one",
                plan.value
            );
            self.error(plan.span, message);
            ok = false;
        }
        if let (true, Some(dependent)) = (ok, dependent) {
            self.parts.prerequisites.push((dependent, alternatives));
        }
    }

    fn resolve_location(
        &mut self,
        plan: &Name,
        kind: LocationKind,
        countries: &[Name],
        list: Span,
        seen: &mut HashMap<PlanId, (LocationKind, Span, usize)>,
    ) {
        let keyword = match kind {
            LocationKind::Unavailable => "unavailable",
            LocationKind::AvailableOnly => "available … only",
        };
        let id = self.plan_ref(plan, &format!("in `{keyword} in`"));
        let mut parsed = Vec::new();
        let mut ok = id.is_some();
        for country in countries {
            match Country::parse(&country.value) {
                Some(c) => {
                    if !parsed.contains(&c) {
                        parsed.push(c);
                    }
                }
                None => {
                    let upper = country.value.to_ascii_uppercase();
                    let message = if Country::parse(&upper).is_some() {
                        format!(
                            "country codes are written in capitals: `{upper}`, not `{}`",
                            country.value
                        )
                    } else {
                        format!(
                            "unknown country code `{}`: expected an ISO 3166-1 alpha-2 code such as US, GB or DE",
                            country.value
                        )
                    };
                    self.error(country.span, message);
                    ok = false;
                }
            }
        }
        if countries.is_empty() {
            self.error(list, "the list of countries is empty".into());
            ok = false;
        }
        let Some(id) = id else { return };
        if let Some((earlier_kind, earlier_span, earlier_rule)) = seen.get(&id).copied() {
            let message = match (earlier_kind, kind) {
                (LocationKind::Unavailable, LocationKind::Unavailable) => None,
                (LocationKind::AvailableOnly, LocationKind::AvailableOnly) => Some(format!(
                    "plan `{}` already has an `available … only in` rule at {}: merge the two lists",
                    plan.value,
                    self.place(earlier_span)
                )),
                _ => Some(format!(
                    "plan `{}` cannot be both `unavailable in` some countries and `available only in` others (the other rule is at {})",
                    plan.value,
                    self.place(earlier_span)
                )),
            };
            if let Some(message) = message {
                self.error(plan.span, message);
                return;
            }
            // Two `unavailable` rules for one plan add up.
            if ok {
                let rule = &mut self.parts.location_rules[earlier_rule];
                for c in parsed {
                    if !rule.countries.contains(&c) {
                        rule.countries.push(c);
                    }
                }
            }
            return;
        }
        if ok {
            seen.insert(id, (kind, plan.span, self.parts.location_rules.len()));
            self.parts.location_rules.push(LocationRule {
                plan: id,
                kind,
                countries: parsed,
            });
        }
    }

    /// A product holding two plans of one exclusive set could never be assigned to anyone.
    fn check_products(&mut self) {
        let mut found = Vec::new();
        for product in &self.parts.products {
            for (label, set) in &self.parts.exclusive_sets {
                let both = product.plans & *set;
                let mut plans = both.iter();
                if let (Some(a), Some(b)) = (plans.next(), plans.next()) {
                    found.push((product.name.clone(), label.clone(), a, b));
                }
            }
        }
        for (product, label, a, b) in found {
            let Some((_, span)) = self.product_decls.get(&product).copied() else {
                continue;
            };
            let message = format!(
                "product `{product}` holds `{}` and `{}`, which are mutually exclusive (\"{label}\"), so it could never be assigned",
                self.parts.plans[a.index()].name,
                self.parts.plans[b.index()].name
            );
            self.error(span, message);
        }
    }

    /// A set whose plans another set already makes mutually exclusive adds no rule. It is most
    /// often a `conflict` left beside the exclusive set that came to hold its pair; left there,
    /// it reads as a second rule and hides which declaration is the one in force.
    fn warn_redundant_sets(&mut self) {
        let members: Vec<Vec<usize>> = self
            .parts
            .exclusive_sets
            .iter()
            .map(|(_, set)| set.iter().map(PlanId::index).collect())
            .collect();
        let name = |compiler: &Self, i: usize| {
            let label = &compiler.parts.exclusive_sets[i].0;
            if compiler.exclusive_decls[i].1 {
                format!("`conflict {label}`")
            } else {
                format!("exclusive set \"{label}\"")
            }
        };
        for (i, by) in implied_sets(&members).into_iter().enumerate() {
            let Some(by) = by else { continue };
            let message = format!(
                "{} adds nothing: {} at {} already makes {} mutually exclusive",
                name(self, i),
                name(self, by),
                self.place(self.exclusive_decls[by].0),
                if members[i].len() == 2 {
                    "both plans"
                } else {
                    "all its plans"
                }
            );
            self.warning(self.exclusive_decls[i].0, message);
        }
    }

    fn warn_unused_plans(&mut self) {
        let used: PlanSet = self
            .parts
            .products
            .iter()
            .fold(PlanSet::EMPTY, |acc, p| acc | p.plans);
        let mut unused: Vec<(String, Span)> = self
            .plan_decls
            .iter()
            .filter(|(_, (id, _))| !used.contains(*id))
            .map(|(name, (_, span))| (name.clone(), *span))
            .collect();
        unused.sort_by_key(|(_, span)| (span.file.0, span.start));
        for (name, span) in unused {
            self.warning(span, format!("plan `{name}` is not in any product"));
        }
    }
}

/// For each of `sets` (each a list of distinct plan indices), the set that makes it redundant, or
/// `None` when it adds a rule. A set is redundant when another holds all its plans and is
/// larger or, holding the same plans, comes first; it is then paired with the first set that
/// holds all its plans and is not redundant itself (there is one: the relation orders the sets).
/// Only sets that share a plan are compared, so a catalog of many two-plan conflicts stays cheap.
pub(crate) fn implied_sets(sets: &[Vec<usize>]) -> Vec<Option<usize>> {
    // The sets that hold each plan, in order, for binary search.
    let mut holding: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, set) in sets.iter().enumerate() {
        for plan in set {
            holding.entry(*plan).or_default().push(i);
        }
    }
    let holds = |outer: usize, plan: &usize| {
        holding
            .get(plan)
            .is_some_and(|h| h.binary_search(&outer).is_ok())
    };
    let covers = |outer: usize, inner: usize| {
        let (o, n) = (sets[outer].len(), sets[inner].len());
        outer != inner
            && (o > n || (o == n && outer < inner))
            && sets[inner].iter().all(|p| holds(outer, p))
    };
    // A set that holds all of `inner` holds its first plan.
    let candidates = |inner: usize| {
        sets[inner]
            .first()
            .and_then(|p| holding.get(p))
            .into_iter()
            .flatten()
            .copied()
    };
    let redundant: Vec<bool> = (0..sets.len())
        .map(|i| candidates(i).any(|j| covers(j, i)))
        .collect();
    (0..sets.len())
        .map(|i| {
            if redundant[i] {
                candidates(i).find(|j| !redundant[*j] && covers(*j, i))
            } else {
                None
            }
        })
        .collect()
}

/// 8-4-4-4-12 hexadecimal digits, either case.
pub(crate) fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Levenshtein distance between `a` and `b` when it is at most `limit`.
fn edit_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        if current.iter().min().is_some_and(|m| *m > limit) {
            return None;
        }
        previous = current;
    }
    previous.last().copied().filter(|d| *d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_8_4_4_4_12_hex() {
        assert!(is_guid("9aaf7827-d63c-4b61-89c3-182f06f82e5c"));
        assert!(is_guid("9AAF7827-D63C-4B61-89C3-182F06F82E5C"));
        assert!(!is_guid("9aaf7827-d63c-4b61-89c3-182f06f82e5"));
        assert!(!is_guid("9aaf7827d63c4b6189c3182f06f82e5c"));
        assert!(!is_guid("zaaf7827-d63c-4b61-89c3-182f06f82e5c"));
    }

    #[test]
    fn edit_distance_stops_at_the_limit() {
        assert_eq!(edit_distance("TEAMS1", "TEAMS1", 2), Some(0));
        assert_eq!(edit_distance("TEAMS1", "TEAM1", 2), Some(1));
        assert_eq!(
            edit_distance("EXCHANGE_S_STANDARD", "EXCHANGE_S_STANDRD", 2),
            Some(1)
        );
        assert_eq!(edit_distance("TEAMS1", "INTUNE_A", 2), None);
    }
}
