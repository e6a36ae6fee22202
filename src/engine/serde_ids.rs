//! Serde for the rules layer's ids, kept here so that the rules layer stays serde-free.
//!
//! Plans and products are written as their dense indices in the [`RuleTable`]
//! (`crate::rules::RuleTable`), countries as their ISO code. Reading checks every value, so a
//! stored error can never hold an id that would make a [`PlanSet`](crate::rules::PlanSet) panic.
//! Indices are relative to the table they were built with: after a rules reload that renumbers
//! plans the store re-processes (or re-maps) rather than re-reads old errors.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rules::{Country, PlanId, ProductId};

fn plan_from(index: u16) -> Result<PlanId, String> {
    PlanId::new(usize::from(index)).ok_or_else(|| format!("plan index {index} out of range"))
}

fn product_from(index: u32) -> Result<ProductId, String> {
    usize::try_from(index)
        .ok()
        .and_then(ProductId::new)
        .ok_or_else(|| format!("product index {index} out of range"))
}

fn plan_index(plan: PlanId) -> u16 {
    u16::try_from(plan.index()).unwrap_or(u16::MAX)
}

fn product_index(product: ProductId) -> u32 {
    u32::try_from(product.index()).unwrap_or(u32::MAX)
}

pub mod plan {
    use super::*;

    pub fn serialize<S: Serializer>(plan: &PlanId, s: S) -> Result<S::Ok, S::Error> {
        plan_index(*plan).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PlanId, D::Error> {
        plan_from(u16::deserialize(d)?).map_err(D::Error::custom)
    }
}

pub mod plans {
    use super::*;

    pub fn serialize<S: Serializer>(plans: &[PlanId], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(plans.iter().map(|p| plan_index(*p)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PlanId>, D::Error> {
        Vec::<u16>::deserialize(d)?
            .into_iter()
            .map(|i| plan_from(i).map_err(D::Error::custom))
            .collect()
    }
}

pub mod product {
    use super::*;

    pub fn serialize<S: Serializer>(product: &ProductId, s: S) -> Result<S::Ok, S::Error> {
        product_index(*product).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ProductId, D::Error> {
        product_from(u32::deserialize(d)?).map_err(D::Error::custom)
    }
}

pub mod products {
    use super::*;

    pub fn serialize<S: Serializer>(products: &[ProductId], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(products.iter().map(|p| product_index(*p)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ProductId>, D::Error> {
        Vec::<u32>::deserialize(d)?
            .into_iter()
            .map(|i| product_from(i).map_err(D::Error::custom))
            .collect()
    }
}

pub mod country {
    use super::*;

    pub fn serialize<S: Serializer>(country: &Country, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(country.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Country, D::Error> {
        let code = String::deserialize(d)?;
        Country::parse(&code).ok_or_else(|| D::Error::custom(format!("unknown country `{code}`")))
    }
}
