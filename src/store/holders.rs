//! Who holds each product (L1), as bitmaps of user ids in chunks of [`CHUNK_USERS`]: row
//! `(sku, chunk)` of `holders` has bit `id % CHUNK_USERS` set for each holder `id` of the chunk.
//!
//! An index entry per holder and product cost a B-tree insert per member and product when a
//! large group was processed; a chunk's bits change in memory and are written once per step,
//! so a 5,000-member step writes a few rows per product. A page of holders reads the chunks in
//! order, and the count is the sum of the chunks' bits.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Result, StoreError};

/// Users per chunk: 512 bytes of bits.
pub const CHUNK_USERS: i64 = 4096;
const WORDS: usize = (CHUNK_USERS / 64) as usize;

type Bits = [u64; WORDS];

fn locate(user: i64) -> (i64, usize, u64) {
    let chunk = user.div_euclid(CHUNK_USERS);
    let offset = user.rem_euclid(CHUNK_USERS) as usize;
    (chunk, offset / 64, 1u64 << (offset % 64))
}

fn read_bits(blob: &[u8]) -> Result<Bits> {
    if blob.len() != WORDS * 8 {
        return Err(StoreError::Corrupt(format!(
            "a holders chunk of {} bytes, not {}",
            blob.len(),
            WORDS * 8
        )));
    }
    let mut bits = [0u64; WORDS];
    for (word, bytes) in bits.iter_mut().zip(blob.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        *word = u64::from_le_bytes(le);
    }
    Ok(bits)
}

/// The users whose bits are set in a chunk, in id order.
fn users_in(chunk: i64, bits: Bits) -> impl Iterator<Item = i64> {
    bits.into_iter().enumerate().flat_map(move |(w, mut word)| {
        std::iter::from_fn(move || {
            (word != 0).then(|| {
                let offset = i64::from(word.trailing_zeros());
                word &= word - 1;
                chunk * CHUNK_USERS + w as i64 * 64 + offset
            })
        })
    })
}

fn write_bits(bits: &Bits) -> Vec<u8> {
    bits.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Bits to set and bits to clear in one chunk.
type Change = (Bits, Bits);

/// Changes to apply at the end of a step: per product and chunk, the bits to set and to clear
/// (the last change of a user wins).
#[derive(Default)]
pub struct HolderChanges {
    /// Per product (a step touches a handful, so a list searched by name beats hashing it).
    chunks: Vec<(String, BTreeMap<i64, Change>)>,
}

impl HolderChanges {
    pub fn set(&mut self, sku: &str, user: i64, held: bool) {
        let (chunk, word, bit) = locate(user);
        let index = match self.chunks.iter().position(|(name, _)| name == sku) {
            Some(index) => index,
            None => {
                self.chunks.push((sku.to_string(), BTreeMap::new()));
                self.chunks.len() - 1
            }
        };
        let chunks = &mut self.chunks[index].1;
        let (set, clear) = chunks.entry(chunk).or_insert(([0; WORDS], [0; WORDS]));
        if held {
            set[word] |= bit;
            clear[word] &= !bit;
        } else {
            clear[word] |= bit;
            set[word] &= !bit;
        }
    }

    /// Writes the changes; a chunk left with no holder is deleted.
    pub fn flush(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let mut select =
            tx.prepare_cached("SELECT bits FROM holders WHERE sku = ?1 AND chunk = ?2")?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO holders (sku, chunk, bits) VALUES (?1, ?2, ?3)
             ON CONFLICT (sku, chunk) DO UPDATE SET bits = excluded.bits",
        )?;
        let mut delete = tx.prepare_cached("DELETE FROM holders WHERE sku = ?1 AND chunk = ?2")?;
        for (sku, chunks) in self.chunks.drain(..) {
            for (chunk, (set, clear)) in chunks {
                let old: Option<Vec<u8>> = select
                    .query_row(params![sku, chunk], |r| r.get(0))
                    .optional()?;
                let mut bits = match old {
                    Some(blob) => read_bits(&blob)?,
                    None => [0; WORDS],
                };
                for ((word, set), clear) in bits.iter_mut().zip(set).zip(clear) {
                    *word = (*word & !clear) | set;
                }
                if bits.iter().all(|w| *w == 0) {
                    delete.execute(params![sku, chunk])?;
                } else {
                    upsert.execute(params![sku, chunk, write_bits(&bits)])?;
                }
            }
        }
        Ok(())
    }
}

/// Holders of `sku` with an id above `after`, in id order, at most `limit`.
pub fn page(conn: &Connection, sku: &str, after: i64, limit: usize) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(limit.min(1024));
    if limit == 0 {
        return Ok(out);
    }
    let start = after.saturating_add(1);
    let mut stmt = conn.prepare_cached(
        "SELECT chunk, bits FROM holders WHERE sku = ?1 AND chunk >= ?2 ORDER BY chunk",
    )?;
    let mut rows = stmt.query(params![sku, start.div_euclid(CHUNK_USERS)])?;
    while let Some(r) = rows.next()? {
        let chunk: i64 = r.get(0)?;
        let bits = read_bits(&r.get::<_, Vec<u8>>(1)?)?;
        for user in users_in(chunk, bits).filter(|u| *u >= start) {
            out.push(user);
            if out.len() == limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// How many users hold `sku`.
pub fn count(conn: &Connection, sku: &str) -> Result<i64> {
    let mut stmt = conn.prepare_cached("SELECT bits FROM holders WHERE sku = ?1")?;
    let mut rows = stmt.query([sku])?;
    let mut total = 0i64;
    while let Some(r) = rows.next()? {
        let bits = read_bits(&r.get::<_, Vec<u8>>(0)?)?;
        total += bits.iter().map(|w| i64::from(w.count_ones())).sum::<i64>();
    }
    Ok(total)
}

/// Every `(sku, user)` the bitmaps hold, for the audit.
pub fn all(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare("SELECT sku, chunk, bits FROM holders ORDER BY sku, chunk")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let sku: String = r.get(0)?;
        let chunk: i64 = r.get(1)?;
        let bits = read_bits(&r.get::<_, Vec<u8>>(2)?)?;
        out.extend(users_in(chunk, bits).map(|u| (sku.clone(), u)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use rusqlite::Connection;

    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch(
            "CREATE TABLE holders (sku TEXT NOT NULL, chunk INTEGER NOT NULL, bits BLOB NOT NULL,
                                   PRIMARY KEY (sku, chunk)) WITHOUT ROWID;",
        )
        .expect("table");
        conn
    }

    proptest! {
        /// Whatever the changes and however they are grouped into flushes, the bitmaps hold
        /// the last word on each user, pages walk them in order, and empty chunks are gone.
        #[test]
        fn bitmaps_agree_with_a_set(
            steps in proptest::collection::vec(
                proptest::collection::vec((0usize..2, 1i64..20_000, any::<bool>()), 0..40),
                1..6,
            ),
            after in 0i64..20_000,
            limit in 0usize..50,
        ) {
            let mut conn = table();
            let mut model: BTreeSet<(&str, i64)> = BTreeSet::new();
            for changes in &steps {
                let tx = conn.transaction().expect("tx");
                let mut pending = HolderChanges::default();
                for (sku, user, held) in changes {
                    let sku = ["EMS", "ENTERPRISEPACK"][*sku];
                    pending.set(sku, *user, *held);
                    if *held { model.insert((sku, *user)); } else { model.remove(&(sku, *user)); }
                }
                pending.flush(&tx).expect("flush");
                tx.commit().expect("commit");
            }
            let all: BTreeSet<(String, i64)> = all(&conn).expect("all").into_iter().collect();
            let expected: BTreeSet<(String, i64)> =
                model.iter().map(|(s, u)| (s.to_string(), *u)).collect();
            prop_assert_eq!(&all, &expected);
            for sku in ["EMS", "ENTERPRISEPACK"] {
                let users: Vec<i64> = model.iter().filter(|(s, _)| *s == sku).map(|(_, u)| *u).collect();
                prop_assert_eq!(count(&conn, sku).expect("count"), users.len() as i64);
                let want: Vec<i64> = users.iter().copied().filter(|u| *u > after).take(limit).collect();
                prop_assert_eq!(page(&conn, sku, after, limit).expect("page"), want);
            }
            let empty: i64 = conn
                .query_row("SELECT count(*) FROM holders WHERE bits = zeroblob(512)", [], |r| r.get(0))
                .expect("empty chunks");
            prop_assert_eq!(empty, 0);
        }
    }

    #[test]
    fn a_chunk_of_the_wrong_size_is_reported() {
        let conn = table();
        conn.execute(
            "INSERT INTO holders (sku, chunk, bits) VALUES ('EMS', 0, x'00ff')",
            [],
        )
        .expect("insert");
        assert!(matches!(count(&conn, "EMS"), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            page(&conn, "EMS", 0, 10),
            Err(StoreError::Corrupt(_))
        ));
    }
}
