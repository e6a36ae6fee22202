//! How engine values are written to the database and read back: by name, never by the rule
//! table's ids, so that stored data survives a rules reload that renumbers plans.

use serde::{Deserialize, Serialize};

use crate::engine::{DisabledPlans, GroupId, LicenseError, Source, SourceRef, UserId, Violation};
use crate::rules::{Country, PlanId, ProductId, RuleTable};

use super::{Result, StoreError};

/// `text` as a JSON string, appended to `out`. Names, states and times need no escaping and are
/// copied as they are, without serde's detour: sets and the history's batches are written a
/// million times in B1.
pub fn push_json_string(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        // Serializing a str cannot fail.
        out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// Disabled plans as a JSON array of plan names, in the table's order.
pub fn encode_disabled(table: &RuleTable, disabled: &DisabledPlans) -> String {
    let names: Vec<&str> = disabled
        .iter()
        .map(|p| table.plan(p).name.as_str())
        .collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".to_string())
}

pub fn decode_disabled(table: &RuleTable, json: &str) -> Result<DisabledPlans> {
    let names: Vec<String> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("disabled plans {json:?}: {e}")))?;
    names.iter().map(|n| plan(table, n)).collect()
}

fn plan(table: &RuleTable, name: &str) -> Result<PlanId> {
    table
        .plan_by_name(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown service plan `{name}`")))
}

fn product(table: &RuleTable, name: &str) -> Result<ProductId> {
    table
        .product_by_name(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown product `{name}`")))
}

#[derive(Serialize, Deserialize)]
struct StoredSource {
    /// `None`: assigned directly.
    group: Option<i64>,
    product: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredViolation {
    DuplicateProxyAddress {
        address: String,
        other_user: i64,
    },
    ProhibitedInLocation {
        plans: Vec<String>,
        location: String,
        inherited: bool,
    },
    MutuallyExclusive {
        plan: String,
        source: StoredSource,
        conflicting_plan: String,
        conflicting_source: StoredSource,
    },
    MissingPrerequisite {
        plan: String,
        source: StoredSource,
        missing: Vec<String>,
    },
    NoSeat {
        products: Vec<String>,
    },
}

pub fn encode_error(table: &RuleTable, error: &LicenseError) -> String {
    let plan = |p: &PlanId| table.plan(*p).name.clone();
    let plans = |ps: &[PlanId]| ps.iter().map(plan).collect::<Vec<_>>();
    let source = |s: &SourceRef| StoredSource {
        group: s.source.group().map(|g| g.0),
        product: table.product(s.product).name.clone(),
    };
    let stored: Vec<StoredViolation> = error
        .violations
        .iter()
        .map(|v| match v {
            Violation::DuplicateProxyAddress {
                address,
                other_user,
            } => StoredViolation::DuplicateProxyAddress {
                address: address.clone(),
                other_user: other_user.0,
            },
            Violation::ProhibitedInLocation {
                plans: ps,
                location,
                inherited,
            } => StoredViolation::ProhibitedInLocation {
                plans: plans(ps),
                location: location.code().to_string(),
                inherited: *inherited,
            },
            Violation::MutuallyExclusive {
                plan: p,
                source: s,
                conflicting_plan,
                conflicting_source,
            } => StoredViolation::MutuallyExclusive {
                plan: plan(p),
                source: source(s),
                conflicting_plan: plan(conflicting_plan),
                conflicting_source: source(conflicting_source),
            },
            Violation::MissingPrerequisite {
                plan: p,
                source: s,
                missing,
            } => StoredViolation::MissingPrerequisite {
                plan: plan(p),
                source: source(s),
                missing: plans(missing),
            },
            Violation::NoSeat { products } => StoredViolation::NoSeat {
                products: products
                    .iter()
                    .map(|p| table.product(*p).name.clone())
                    .collect(),
            },
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".to_string())
}

pub fn decode_error(table: &RuleTable, json: &str) -> Result<LicenseError> {
    let stored: Vec<StoredViolation> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("stored error: {e}")))?;
    let plans = |names: &[String]| names.iter().map(|n| plan(table, n)).collect::<Result<_>>();
    let source = |s: &StoredSource| -> Result<SourceRef> {
        Ok(SourceRef {
            source: s
                .group
                .map_or(Source::Direct, |g| Source::Group(GroupId(g))),
            product: product(table, &s.product)?,
        })
    };
    let mut violations = Vec::with_capacity(stored.len());
    for v in &stored {
        violations.push(match v {
            StoredViolation::DuplicateProxyAddress {
                address,
                other_user,
            } => Violation::DuplicateProxyAddress {
                address: address.clone(),
                other_user: UserId(*other_user),
            },
            StoredViolation::ProhibitedInLocation {
                plans: ps,
                location,
                inherited,
            } => Violation::ProhibitedInLocation {
                plans: plans(ps)?,
                location: Country::parse(location)
                    .ok_or_else(|| StoreError::Corrupt(format!("country {location:?}")))?,
                inherited: *inherited,
            },
            StoredViolation::MutuallyExclusive {
                plan: p,
                source: s,
                conflicting_plan,
                conflicting_source,
            } => Violation::MutuallyExclusive {
                plan: plan(table, p)?,
                source: source(s)?,
                conflicting_plan: plan(table, conflicting_plan)?,
                conflicting_source: source(conflicting_source)?,
            },
            StoredViolation::MissingPrerequisite {
                plan: p,
                source: s,
                missing,
            } => Violation::MissingPrerequisite {
                plan: plan(table, p)?,
                source: source(s)?,
                missing: plans(missing)?,
            },
            StoredViolation::NoSeat { products } => Violation::NoSeat {
                products: products
                    .iter()
                    .map(|p| product(table, p))
                    .collect::<Result<_>>()?,
            },
        });
    }
    Ok(LicenseError { violations })
}

/// Names of the plans and products a stored error mentions, for the reload check.
pub fn error_names(json: &str) -> (Vec<String>, Vec<String>) {
    let mut plans = Vec::new();
    let mut products = Vec::new();
    let Ok(stored) = serde_json::from_str::<Vec<StoredViolation>>(json) else {
        return (plans, products);
    };
    for v in stored {
        match v {
            StoredViolation::DuplicateProxyAddress { .. } => {}
            StoredViolation::ProhibitedInLocation { plans: ps, .. } => plans.extend(ps),
            StoredViolation::MutuallyExclusive {
                plan,
                source,
                conflicting_plan,
                conflicting_source,
            } => {
                plans.extend([plan, conflicting_plan]);
                products.extend([source.product, conflicting_source.product]);
            }
            StoredViolation::MissingPrerequisite {
                plan,
                source,
                missing,
            } => {
                plans.push(plan);
                plans.extend(missing);
                products.push(source.product);
            }
            StoredViolation::NoSeat { products: ps } => products.extend(ps),
        }
    }
    (plans, products)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::compile_texts;

    const RULES: &str = include_str!("../../tests/fixtures/scenario-rules/scenario.rules");

    fn table(text: &str) -> RuleTable {
        compile_texts([("t.rules", text)])
            .unwrap_or_else(|f| panic!("{:?}", f.errors))
            .table
    }

    fn every_kind(t: &RuleTable) -> LicenseError {
        let plan = |n: &str| t.plan_by_name(n).expect("scenario plan");
        let product = |n: &str| t.product_by_name(n).expect("scenario product");
        LicenseError {
            violations: vec![
                Violation::DuplicateProxyAddress {
                    address: "smtp:sales@contoso.com".into(),
                    other_user: UserId(7),
                },
                Violation::ProhibitedInLocation {
                    plans: vec![plan("TEAMS1")],
                    location: Country::parse("CN").expect("CN"),
                    inherited: true,
                },
                Violation::MutuallyExclusive {
                    plan: plan("EXCHANGE_S_ENTERPRISE"),
                    source: SourceRef {
                        source: Source::Group(GroupId(3)),
                        product: product("ENTERPRISEPACK"),
                    },
                    conflicting_plan: plan("EXCHANGE_S_STANDARD"),
                    conflicting_source: SourceRef {
                        source: Source::Direct,
                        product: product("STANDARDPACK"),
                    },
                },
                Violation::MissingPrerequisite {
                    plan: plan("WORKPLACE_ANALYTICS"),
                    source: SourceRef {
                        source: Source::Direct,
                        product: product("WORKPLACE_ANALYTICS"),
                    },
                    missing: vec![plan("EXCHANGE_S_STANDARD"), plan("EXCHANGE_S_ENTERPRISE")],
                },
                Violation::NoSeat {
                    products: vec![product("EMS")],
                },
            ],
        }
    }

    #[test]
    fn stored_errors_round_trip_by_name() {
        let t = table(RULES);
        let error = every_kind(&t);
        let json = encode_error(&t, &error);
        assert!(json.contains("\"EXCHANGE_S_STANDARD\""), "{json}");
        assert_eq!(decode_error(&t, &json).expect("decodes"), error);
    }

    /// A reload that renumbers plans (here: two plans declared first) reads stored data right.
    #[test]
    fn stored_values_survive_a_table_that_renumbers_plans() {
        let before = table(RULES);
        let after = table(&format!(
            "plan NEW_A = \"a\"\nplan NEW_B = \"b\"\nproduct NEW = \"n\" {{ NEW_A, NEW_B }}\n{RULES}"
        ));
        let error = every_kind(&before);
        let json = encode_error(&before, &error);
        assert_eq!(
            encode_error(&after, &decode_error(&after, &json).expect("decodes")),
            json
        );
        let teams = before.plan_by_name("TEAMS1").expect("TEAMS1");
        let disabled: DisabledPlans = [teams].into_iter().collect();
        let stored = encode_disabled(&before, &disabled);
        assert_eq!(stored, r#"["TEAMS1"]"#);
        let read = decode_disabled(&after, &stored).expect("decodes");
        assert_eq!(
            read.iter()
                .map(|p| after.plan(p).name.as_str())
                .collect::<Vec<_>>(),
            ["TEAMS1"]
        );
    }

    #[test]
    fn names_the_rules_no_longer_know_are_reported_not_guessed() {
        let t = table(RULES);
        assert!(matches!(
            decode_disabled(&t, r#"["GONE"]"#),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_disabled(&t, "not json"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_error(&t, r#"[{"kind":"no_seat","products":["GONE"]}]"#),
            Err(StoreError::Corrupt(_))
        ));
    }
}
