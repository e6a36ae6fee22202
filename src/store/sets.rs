//! A user's assignments from one source (one group, or direct) are kept together, in one row of
//! `assignment_sets` holding a small JSON array with an entry per product.
//!
//! Processing decides a group's products for a member together (P2: all or nothing), so they
//! change together; one row per member and group is one B-tree insert where a row per product
//! was three, and that insert was most of a large group's processing time (B1 in
//! BENCHMARKS.md). Product holders (L1) and users in error (Q1) are kept beside it, in
//! `holders` and `assignment_errors`, so that no read needs to look inside the arrays.

use std::borrow::Cow;
use std::fmt::Write as _;

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Result, StoreError};

/// One product of a set, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductRow {
    pub sku: String,
    /// The configuration in force (JSON array of disabled plan names); `None`: never applied.
    pub applied: Option<String>,
    /// `PENDING`, `ACTIVE`, `ACTIVE_WITH_ERROR` or `ERROR`.
    pub state: String,
    pub error_code: Option<String>,
    /// The error as JSON (see `codec`).
    pub error: Option<String>,
    pub updated_at: String,
}

impl ProductRow {
    /// Whether the two rows say the same, whenever they were written.
    pub fn same_content(&self, other: &ProductRow) -> bool {
        self.sku == other.sku
            && self.applied == other.applied
            && self.state == other.state
            && self.error_code == other.error_code
            && self.error == other.error
    }
}

#[derive(Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    sku: Cow<'a, str>,
    #[serde(borrow, default)]
    applied: Option<&'a RawValue>,
    #[serde(borrow)]
    state: Cow<'a, str>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    at: Cow<'a, str>,
}

fn push_json_string(out: &mut String, text: &str) {
    // Names, states and times need no escaping: copied as they are, without serde's detour.
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        // Serializing a str cannot fail.
        out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// The stored text of a set: `[{"sku":…,"applied":[…]|null,"state":…,"code":…,"error":{…},"at":…}]`,
/// `code` and `error` only when in error. `applied` and `error` are JSON written by `codec`.
pub fn encode(rows: &[ProductRow]) -> String {
    let mut out = String::with_capacity(rows.len() * 96);
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"sku\":");
        push_json_string(&mut out, &row.sku);
        out.push_str(",\"applied\":");
        out.push_str(row.applied.as_deref().unwrap_or("null"));
        out.push_str(",\"state\":");
        push_json_string(&mut out, &row.state);
        if let Some(code) = &row.error_code {
            out.push_str(",\"code\":");
            push_json_string(&mut out, code);
        }
        if let Some(error) = &row.error {
            out.push_str(",\"error\":");
            out.push_str(error);
        }
        out.push_str(",\"at\":");
        push_json_string(&mut out, &row.updated_at);
        out.push('}');
    }
    out.push(']');
    out
}

/// Reads a set back, its products in name order.
pub fn decode(json: &str) -> Result<Vec<ProductRow>> {
    let stored: Vec<Stored<'_>> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("assignment set {json:?}: {e}")))?;
    let mut rows: Vec<ProductRow> = stored
        .into_iter()
        .map(|s| ProductRow {
            sku: s.sku.into_owned(),
            applied: s.applied.map(|r| r.get().to_string()),
            state: s.state.into_owned(),
            error_code: s.code.map(Cow::into_owned),
            error: s.error.map(|r| r.get().to_string()),
            updated_at: s.at.into_owned(),
        })
        .collect();
    rows.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(rows)
}

/// The ids as a JSON array, for statements that take a list through `json_each(?)`: one cached
/// statement whatever the list's length, where an `IN (…)` list is a new statement to compile
/// each time.
pub fn id_array(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 8 + 2);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out.push(']');
    out
}

/// One stored set: `(user, group (0: direct), products)`.
pub type Set = (i64, i64, Vec<ProductRow>);

/// Every set of `users`, ordered by user, then group (direct first).
pub fn load(conn: &Connection, users: &[i64]) -> Result<Vec<Set>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = users.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut stmt = conn.prepare_cached(
        "SELECT s.user_id, s.group_id, s.products
           FROM json_each(?1) j JOIN assignment_sets s ON s.user_id = j.value",
    )?;
    let mut rows = stmt.query([id_array(&ids)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let products: String = r.get(2)?;
        out.push((r.get(0)?, r.get(1)?, decode(&products)?));
    }
    out.sort_by_key(|(user, group, _)| (*user, *group));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sku: &str, error: bool) -> ProductRow {
        ProductRow {
            sku: sku.into(),
            applied: (!error).then(|| r#"["YAMMER_ENTERPRISE"]"#.into()),
            state: if error { "ERROR" } else { "ACTIVE" }.into(),
            error_code: error.then(|| "COUNT_VIOLATION".into()),
            error: error.then(|| r#"{"code":"COUNT_VIOLATION","product":"E\"3"}"#.into()),
            updated_at: "2026-11-21T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_set_reads_back_as_written_in_name_order() {
        let rows = vec![row("Z\"ODD", true), row("ENTERPRISEPACK", false)];
        let text = encode(&rows);
        let back = decode(&text).expect("decodes");
        assert_eq!(back, vec![rows[1].clone(), rows[0].clone()]);
        assert!(
            text.contains(r#""applied":["YAMMER_ENTERPRISE"]"#),
            "{text}"
        );
        assert!(text.contains(r#""applied":null"#), "{text}");
    }

    #[test]
    fn a_damaged_set_is_reported_not_trusted() {
        for bad in [
            "",
            "{}",
            r#"[{"sku":"A"}]"#,
            r#"[{"sku":1,"state":"A","at":"t"}]"#,
        ] {
            assert!(
                matches!(decode(bad), Err(StoreError::Corrupt(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn id_arrays_are_json() {
        assert_eq!(id_array(&[]), "[]");
        assert_eq!(id_array(&[3, 1, 20]), "[3,1,20]");
    }
}
