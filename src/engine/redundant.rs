//! M1: when a direct license adds nothing to what the user's groups already give it, so that
//! removing it changes neither what the user holds, nor its enabled plans, nor the seats.
//!
//! Microsoft's sample migration script compares one group's plans with the direct license's;
//! here the plans of every `ACTIVE` group assignment of the product count together, so a
//! direct license covered by add-ons from two groups is found redundant too.

use crate::rules::{PlanId, PlanSet, ProductId, RuleTable};

use super::{AssignmentState, ErrorCode, GroupId, Source, UserLicenses};

/// Why a direct license is not redundant.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NotRedundant {
    /// The user has no direct assignment of the product.
    NotDirect,
    /// No group assigns the product to the user.
    NoGroup,
    /// Groups assign it, but none of those assignments is `ACTIVE`: still pending, or in error
    /// (the first error's group and code).
    NoActiveGroup {
        in_error: Option<(GroupId, ErrorCode)>,
    },
    /// The `ACTIVE` group assignments leave out plans the direct license enables.
    PlansNotCovered {
        groups: Vec<GroupId>,
        missing: Vec<PlanId>,
    },
}

/// M1: the groups whose `ACTIVE` assignments of `product` cover `user`'s direct one, in record
/// order, or why they do not.
pub fn covering_groups(
    table: &RuleTable,
    user: &UserLicenses,
    product: ProductId,
) -> Result<Vec<GroupId>, NotRedundant> {
    let Some(direct) = user.assignment(Source::Direct, product) else {
        return Err(NotRedundant::NotDirect);
    };
    let needed = direct.applied_plans(table);
    let mut groups = Vec::new();
    let mut covered = PlanSet::EMPTY;
    let mut any = false;
    let mut in_error = None;
    for a in user.assignments.iter().filter(|a| a.product == product) {
        let Source::Group(g) = a.source else {
            continue;
        };
        any = true;
        if a.state == AssignmentState::Active {
            groups.push(g);
            covered |= a.applied_plans(table);
        } else if in_error.is_none()
            && let Some(code) = a.error_code()
        {
            in_error = Some((g, code));
        }
    }
    if !any {
        return Err(NotRedundant::NoGroup);
    }
    if groups.is_empty() {
        return Err(NotRedundant::NoActiveGroup { in_error });
    }
    let mut missing = needed;
    for plan in covered.iter() {
        missing.remove(plan);
    }
    if missing.is_empty() {
        Ok(groups)
    } else {
        Err(NotRedundant::PlansNotCovered {
            groups,
            missing: missing.iter().collect(),
        })
    }
}

/// M2: every redundant direct license of `user`, in record order, with its covering groups.
pub fn redundant_direct(table: &RuleTable, user: &UserLicenses) -> Vec<(ProductId, Vec<GroupId>)> {
    user.assignments_from(Source::Direct)
        .filter_map(|a| {
            covering_groups(table, user, a.product)
                .ok()
                .map(|groups| (a.product, groups))
        })
        .collect()
}
