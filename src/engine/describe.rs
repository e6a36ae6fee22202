//! Turning decisions into English: the message of an error, one message per violation, and the
//! suggested resolutions (Q4). Pure: the caller gives the [`RuleTable`] the decision was made
//! with and a way to name groups and users ([`SourceNames`]), which live in the store.

use std::collections::HashMap;

use crate::rules::{PlanId, ProductId, RuleTable};

use super::{ErrorCode, GroupId, LicenseError, Source, SourceRef, UserId, Violation};

/// Display names the store knows.
pub trait SourceNames {
    /// A group's `displayName`.
    fn group_name(&self, group: GroupId) -> String;

    /// How to name another user (C1), e.g. the `userPrincipalName`.
    fn user_name(&self, user: UserId) -> String {
        format!("user {}", user.0)
    }
}

/// Any `Fn(GroupId) -> String` names groups (users by id).
impl<F: Fn(GroupId) -> String> SourceNames for F {
    fn group_name(&self, group: GroupId) -> String {
        self(group)
    }
}

/// Names the store read for the errors at hand ([`LicenseError::named_ids`]). A stored error
/// can outlive a group or a user it names: such a group is named by its id and "(deleted)",
/// such a user by its id.
#[derive(Clone, Debug, Default)]
pub struct FoundNames {
    pub groups: HashMap<i64, String>,
    pub users: HashMap<i64, String>,
}

impl SourceNames for FoundNames {
    fn group_name(&self, group: GroupId) -> String {
        // The display name alone: the sentences say `group "…"` around it.
        self.groups
            .get(&group.0)
            .cloned()
            .unwrap_or_else(|| format!("{} (deleted)", group.0))
    }

    fn user_name(&self, user: UserId) -> String {
        self.users
            .get(&user.0)
            .cloned()
            .unwrap_or_else(|| format!("user {}", user.0))
    }
}

/// The message of a stored error that the rules in force cannot read any more (a plan or a
/// product it names was renamed): said as such rather than guessed.
pub const UNREADABLE_ERROR: &str =
    "The rules changed since this error was recorded: reprocess the user to see it again.";

/// GraphQL's `LicenseErrorDetail`, in words: `violations[i]` is the message of the error's
/// `violations[i]`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ErrorDetail {
    pub message: String,
    pub violations: Vec<String>,
    pub resolutions: Vec<String>,
}

struct Words<'a> {
    table: &'a RuleTable,
    names: &'a dyn SourceNames,
}

impl Words<'_> {
    fn plan(&self, plan: PlanId) -> String {
        if plan.index() < self.table.plan_count() {
            self.table.plan(plan).display_name.clone()
        } else {
            format!("service plan #{}", plan.index())
        }
    }

    fn plans(&self, plans: &[PlanId], joiner: &str) -> String {
        join(plans.iter().map(|p| self.plan(*p)).collect(), joiner)
    }

    fn product(&self, product: ProductId) -> String {
        if product.index() < self.table.product_count() {
            let info = self.table.product(product);
            format!("{} ({})", info.display_name, info.name)
        } else {
            format!("product #{}", product.index())
        }
    }

    fn sku(&self, product: ProductId) -> String {
        super::product_name(self.table, product)
    }

    /// "STANDARDPACK assigned directly", "ENTERPRISEPACK from group "E3 users"".
    fn source(&self, at: SourceRef) -> String {
        match at.source {
            Source::Direct => format!("{} assigned directly", self.sku(at.product)),
            Source::Group(g) => format!(
                "{} from group \"{}\"",
                self.sku(at.product),
                self.names.group_name(g)
            ),
        }
    }

    /// Where to change a license: "on the STANDARDPACK license assigned directly", "on
    /// ENTERPRISEPACK in group "E3 users"".
    fn place(&self, at: SourceRef) -> String {
        match at.source {
            Source::Direct => format!(
                "on the {} license assigned directly to the user",
                self.sku(at.product)
            ),
            Source::Group(g) => format!(
                "on {} in group \"{}\"",
                self.sku(at.product),
                self.names.group_name(g)
            ),
        }
    }

    fn violation(&self, v: &Violation) -> String {
        match v {
            Violation::DuplicateProxyAddress {
                address,
                other_user,
            } => format!(
                "The proxy address {address} is also a proxy address of {}.",
                self.names.user_name(*other_user)
            ),
            Violation::ProhibitedInLocation {
                plans,
                location,
                inherited,
            } => format!(
                "{} {} not available in {location}, {}.",
                self.plans(plans, "and"),
                if plans.len() == 1 { "is" } else { "are" },
                if *inherited {
                    "the directory's default usage location, which applies because the user has none"
                } else {
                    "the user's usage location"
                }
            ),
            Violation::MutuallyExclusive {
                plan,
                source,
                conflicting_plan,
                conflicting_source,
            } => format!(
                "{} ({}) and {} ({}) are mutually exclusive.",
                self.plan(*plan),
                self.source(*source),
                self.plan(*conflicting_plan),
                self.source(*conflicting_source)
            ),
            Violation::MissingPrerequisite {
                plan,
                source,
                missing,
            } => format!(
                "{} ({}) requires {} to be enabled as well.",
                self.plan(*plan),
                self.source(*source),
                self.plans(missing, "or")
            ),
            Violation::NoSeat { products } => format!(
                "There are not enough available licenses for {}.",
                join(products.iter().map(|p| self.product(*p)).collect(), "and")
            ),
        }
    }

    fn resolutions(&self, v: &Violation, out: &mut Vec<String>) {
        match v {
            Violation::DuplicateProxyAddress {
                address,
                other_user,
            } => out.push(format!(
                "Fix the duplicate proxy address {address}: remove or change it on this user or on {}, then reprocess the user.",
                self.names.user_name(*other_user)
            )),
            Violation::ProhibitedInLocation {
                plans,
                location,
                inherited,
            } => {
                let several = plans.len() > 1;
                let plans = self.plans(plans, "and");
                let (verb, pronoun) = if several { ("are", "them") } else { ("is", "it") };
                out.push(if *inherited {
                    format!(
                        "Set a usage location on the user where {plans} {} available (the user has none, so the directory's default {location} applies), then reprocess the user.",
                        verb
                    )
                } else {
                    format!(
                        "Set the user's usage location to a country where {plans} {} available (it is {location} now), then reprocess the user.",
                        verb
                    )
                });
                out.push(format!(
                    "Or disable {plans} on the license that includes {pronoun}."
                ));
            }
            Violation::MutuallyExclusive {
                plan,
                source,
                conflicting_plan,
                conflicting_source,
            } => {
                out.push(format!(
                    "Disable {} {}.",
                    self.plan(*conflicting_plan),
                    self.place(*conflicting_source)
                ));
                out.push(format!(
                    "Or disable {} {}.",
                    self.plan(*plan),
                    self.place(*source)
                ));
                if conflicting_source.product != source.product {
                    out.push(format!(
                        "Or remove {} if {} makes it redundant.",
                        self.source(*conflicting_source),
                        self.sku(source.product)
                    ));
                }
            }
            Violation::MissingPrerequisite {
                plan,
                source,
                missing,
            } => {
                out.push(format!(
                    "Keep {} enabled through another source (a direct license or another group) for {}, then reprocess.",
                    self.plans(missing, "or"),
                    self.plan(*plan)
                ));
                out.push(format!(
                    "Or first remove {} ({}).",
                    self.plan(*plan),
                    self.source(*source)
                ));
            }
            Violation::NoSeat { products } => {
                for p in products {
                    out.push(format!(
                        "Buy more seats of {}, or free seats by removing it from users who no longer need it, then reprocess.",
                        self.product(*p)
                    ));
                }
            }
        }
    }
}

/// "a", "a and b", "a, b and c" (or "or").
fn join(mut items: Vec<String>, joiner: &str) -> String {
    match items.len() {
        0 => String::new(),
        1 => items.pop().unwrap_or_default(),
        _ => {
            let last = items.pop().unwrap_or_default();
            format!("{} {joiner} {last}", items.join(", "))
        }
    }
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The detail of an assignment's error (or of an `assignLicense` failure): a message, one
/// message per violation, and what the admin can do (Q4).
pub fn describe_error(
    table: &RuleTable,
    names: &dyn SourceNames,
    error: &LicenseError,
) -> ErrorDetail {
    let words = Words { table, names };
    let violations: Vec<String> = error
        .violations
        .iter()
        .map(|v| words.violation(v))
        .collect();
    let mut resolutions = Vec::new();
    for v in &error.violations {
        words.resolutions(v, &mut resolutions);
    }
    let message = match violations.first() {
        Some(first) if violations.len() > 1 => format!(
            "License assignment failed: {} (and {} more problem{}).",
            first.trim_end_matches('.'),
            violations.len() - 1,
            if violations.len() == 2 { "" } else { "s" }
        ),
        Some(first) => format!("License assignment failed: {first}"),
        None => "License assignment failed.".to_string(),
    };
    ErrorDetail {
        message,
        violations,
        resolutions: dedup(resolutions),
    }
}

const GROUP_DEPENDENCY_PREFIX: &str = "License operation failed. Make sure that the group has necessary services before adding or removing a dependent service.";

/// The detail of a refused group license set (G1), worded as Entra does: for a dependency,
/// "License operation failed. Make sure that the group has necessary services before adding or
/// removing a dependent service. The service Microsoft Workplace Analytics requires Exchange
/// Online (Plan 1) or Exchange Online (Plan 2) to be enabled as well."
pub fn describe_group_error(
    table: &RuleTable,
    names: &dyn SourceNames,
    error: &LicenseError,
) -> ErrorDetail {
    let words = Words { table, names };
    let mut sentences = Vec::new();
    let mut violations = Vec::new();
    let mut resolutions = Vec::new();
    for v in &error.violations {
        let sentence = match v {
            Violation::MissingPrerequisite { plan, missing, .. } => {
                resolutions.push(format!(
                    "Keep {} enabled in the group, or remove {} from it.",
                    words.plans(missing, "or"),
                    words.plan(*plan)
                ));
                format!(
                    "The service {} requires {} to be enabled as well.",
                    words.plan(*plan),
                    words.plans(missing, "or")
                )
            }
            Violation::MutuallyExclusive {
                plan,
                source,
                conflicting_plan,
                conflicting_source,
            } => {
                resolutions.push(format!(
                    "Disable {} {} or {} {}.",
                    words.plan(*plan),
                    words.place(*source),
                    words.plan(*conflicting_plan),
                    words.place(*conflicting_source)
                ));
                format!(
                    "The services {} ({}) and {} ({}) are mutually exclusive.",
                    words.plan(*plan),
                    words.sku(source.product),
                    words.plan(*conflicting_plan),
                    words.sku(conflicting_source.product)
                )
            }
            other => words.violation(other),
        };
        if v.code() == error.code() {
            sentences.push(sentence.clone());
        }
        violations.push(sentence);
    }
    let prefix = match error.code() {
        ErrorCode::DependencyViolation => GROUP_DEPENDENCY_PREFIX,
        _ => "License operation failed.",
    };
    let mut message = prefix.to_string();
    for s in &sentences {
        message.push(' ');
        message.push_str(s);
    }
    ErrorDetail {
        message,
        violations,
        resolutions: dedup(resolutions),
    }
}
