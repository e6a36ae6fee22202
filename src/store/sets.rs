//! A user's assignments from one source (one group, or direct) are kept together, in one row of
//! `assignment_sets` holding a small JSON array with an entry per product.
//!
//! Processing decides a group's products for a member together (P2: all or nothing), so they
//! change together; one row per member and group is one B-tree insert where a row per product
//! was three, and that insert was most of a large group's processing time (B1 in
//! BENCHMARKS.md). Product holders (L1) and users in error (Q1) are kept beside it, in
//! `holders` and `assignment_errors`, so that lists and counts never look inside the arrays; only
//! a user's own states do.

use std::borrow::Cow;
use std::fmt::Write as _;

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::codec::push_json_string;
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

/// A product of a set as borrowed text: what is written, from a stored row or from the engine's
/// values without copying them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields<'a> {
    pub sku: &'a str,
    pub applied: Option<&'a str>,
    pub state: &'a str,
    pub error_code: Option<&'a str>,
    pub error: Option<&'a str>,
    pub updated_at: &'a str,
}

impl Fields<'_> {
    /// Whether the two say the same, whenever they were written.
    pub fn same_content(&self, other: &Fields<'_>) -> bool {
        Fields {
            updated_at: "",
            ..*self
        } == Fields {
            updated_at: "",
            ..*other
        }
    }
}

impl ProductRow {
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            sku: &self.sku,
            applied: self.applied.as_deref(),
            state: &self.state,
            error_code: self.error_code.as_deref(),
            error: self.error.as_deref(),
            updated_at: &self.updated_at,
        }
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

/// The stored text of a set: `[{"sku":…,"applied":[…]|null,"state":…,"code":…,"error":{…},"at":…}]`,
/// `code` and `error` only when in error. `applied` and `error` are JSON written by `codec`.
pub fn encode<'a>(rows: impl IntoIterator<Item = Fields<'a>>) -> String {
    let mut out = String::with_capacity(256);
    out.push('[');
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"sku\":");
        push_json_string(&mut out, row.sku);
        out.push_str(",\"applied\":");
        out.push_str(row.applied.unwrap_or("null"));
        out.push_str(",\"state\":");
        push_json_string(&mut out, row.state);
        if let Some(code) = row.error_code {
            out.push_str(",\"code\":");
            push_json_string(&mut out, code);
        }
        if let Some(error) = row.error {
            out.push_str(",\"error\":");
            out.push_str(error);
        }
        out.push_str(",\"at\":");
        push_json_string(&mut out, row.updated_at);
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

/// How a batch of user ids is read: one range scan when the ids are dense (a chunk of a group
/// whose members joined in id order, as after a bulk import, reads contiguous rows), one key
/// look-up each otherwise.
pub enum Ids {
    /// The ids as a JSON array, for `json_each(?1)`.
    List(String),
    /// The lowest and highest id: rows between them not asked for are skipped by the caller.
    Range(i64, i64),
}

/// The ids sorted without repeats, and how to read them.
pub fn select(ids: &[i64]) -> (Vec<i64>, Ids) {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let how = match (sorted.first(), sorted.last()) {
        // A range at most twice as wide as the list reads at most as many rows again.
        (Some(&low), Some(&high)) if high.saturating_sub(low) < 2 * sorted.len() as i64 => {
            Ids::Range(low, high)
        }
        _ => Ids::List(id_array(&sorted)),
    };
    (sorted, how)
}

impl Ids {
    /// Runs the statement `list` or `range` (both taking their ids as `?1`, `range` its high end
    /// as `?2`), calling `each` for every row.
    pub fn query(
        &self,
        conn: &Connection,
        list: &str,
        range: &str,
        mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let (mut stmt, params): (_, Vec<rusqlite::types::Value>) = match self {
            Ids::List(json) => (conn.prepare_cached(list)?, vec![json.clone().into()]),
            Ids::Range(low, high) => (
                conn.prepare_cached(range)?,
                vec![(*low).into(), (*high).into()],
            ),
        };
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            each(row)?;
        }
        Ok(())
    }
}

/// One stored set: `(user, group (0: direct), products)`.
pub type Set = (i64, i64, Vec<ProductRow>);

/// Every set of `users`, ordered by user, then group (direct first).
pub fn load(conn: &Connection, users: &[i64]) -> Result<Vec<Set>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let (sorted, ids) = select(users);
    load_selected(conn, &sorted, &ids)
}

/// [`load`] for ids already [`select`]ed (`sorted`, read as `ids` says).
pub fn load_selected(conn: &Connection, sorted: &[i64], ids: &Ids) -> Result<Vec<Set>> {
    let mut out = Vec::new();
    ids.query(
        conn,
        "SELECT s.user_id, s.group_id, s.products
           FROM json_each(?1) j JOIN assignment_sets s ON s.user_id = j.value",
        "SELECT user_id, group_id, products FROM assignment_sets
          WHERE user_id BETWEEN ?1 AND ?2 ORDER BY user_id, group_id",
        |r| {
            let user: i64 = r.get(0)?;
            if sorted.binary_search(&user).is_ok() {
                let products: String = r.get(2)?;
                out.push((user, r.get(1)?, decode(&products)?));
            }
            Ok(())
        },
    )?;
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
        let rows = [row("Z\"ODD", true), row("ENTERPRISEPACK", false)];
        let text = encode(rows.iter().map(ProductRow::fields));
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
    fn close_ids_are_read_as_a_range_and_scattered_ones_one_by_one() {
        assert!(matches!(select(&[5, 3, 4, 3]).1, Ids::Range(3, 5)));
        assert_eq!(select(&[5, 3, 4, 3]).0, vec![3, 4, 5]);
        assert!(matches!(select(&[1, 3]).1, Ids::Range(1, 3)));
        assert!(matches!(select(&[1, 4]).1, Ids::Range(1, 4)));
        assert!(matches!(select(&[1, 5]).1, Ids::List(ref l) if l == "[1,5]"));
        assert!(matches!(select(&[1, 1_000_000]).1, Ids::List(_)));
        assert!(matches!(select(&[i64::MIN, i64::MAX]).1, Ids::List(_)));
    }

    #[test]
    fn a_range_read_returns_only_the_users_asked_for() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        super::super::schema::migrate(&mut conn).expect("schema");
        for user in 1..=6i64 {
            conn.execute(
                "INSERT INTO users (id, user_principal_name, display_name) VALUES (?1, ?1, ?1)",
                [user],
            )
            .expect("user");
            conn.execute(
                "INSERT INTO assignment_sets (user_id, group_id, products) VALUES (?1, 0, ?2)",
                rusqlite::params![user, encode([row("EMS", false).fields()])],
            )
            .expect("set");
        }
        for asked in [vec![5, 1, 3], vec![1, 6]] {
            let users: Vec<i64> = load(&conn, &asked)
                .expect("load")
                .into_iter()
                .map(|(user, _, _)| user)
                .collect();
            let mut want = asked.clone();
            want.sort_unstable();
            assert_eq!(users, want);
        }
    }

    #[test]
    fn id_arrays_are_json() {
        assert_eq!(id_array(&[]), "[]");
        assert_eq!(id_array(&[3, 1, 20]), "[3,1,20]");
    }
}
