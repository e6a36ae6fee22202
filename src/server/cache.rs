//! Answers to queries, kept until the data or the rules change.
//!
//! Dashboards ask the same queries again and again, and between two writes the answer is the
//! same bytes. An answer is stored under the generation of the store and of the rules taken
//! *before* it was computed, and served only while both are still the same: a write that
//! commits while an answer is being computed makes that answer unservable at once. A writer
//! bumps the generation before its caller hears of the commit, so a client never reads, after
//! its own mutation, an answer from before it.
//!
//! Only queries that succeeded are kept (no errors, no mutations). The cache is emptied whenever
//! the generation moves, and when it would exceed its size.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;

/// The store's and the rules' generations.
pub type Generation = (u64, u64);

/// What identifies a query's answer: its text, operation name and variables (as sent).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub query: String,
    pub operation: Option<String>,
    pub variables: String,
}

pub struct ResponseCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: Generation,
    answers: HashMap<Key, Bytes>,
    bytes: usize,
}

impl ResponseCache {
    /// `max_bytes` 0 disables the cache.
    pub fn new(max_bytes: usize) -> ResponseCache {
        ResponseCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    /// The answer kept for `key`, if it was computed under `generation`.
    pub fn get(&self, generation: Generation, key: &Key) -> Option<Bytes> {
        let inner = self.inner.lock().ok()?;
        if inner.generation != generation {
            return None;
        }
        inner.answers.get(key).cloned()
    }

    /// Keeps `answer`, computed from data of `generation` (read before computing it).
    pub fn put(&self, generation: Generation, key: Key, answer: Bytes) {
        let size = answer.len() + key.query.len() + key.variables.len();
        if size > self.max_bytes / 4 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let (kept_store, kept_rules) = inner.generation;
        if generation.0 < kept_store || generation.1 < kept_rules {
            // Computed from data or rules older than answers already kept: never servable.
            return;
        }
        if generation != inner.generation || inner.bytes + size > self.max_bytes {
            inner.answers.clear();
            inner.bytes = 0;
            inner.generation = generation;
        }
        if inner.answers.insert(key, answer).is_none() {
            inner.bytes += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(q: &str) -> Key {
        Key {
            query: q.into(),
            operation: None,
            variables: "{}".into(),
        }
    }

    #[test]
    fn answers_are_served_only_in_their_generation() {
        let cache = ResponseCache::new(1 << 20);
        cache.put((1, 0), key("{ a }"), Bytes::from_static(b"A"));
        assert_eq!(
            cache.get((1, 0), &key("{ a }")),
            Some(Bytes::from_static(b"A"))
        );
        assert_eq!(cache.get((1, 0), &key("{ b }")), None);
        assert_eq!(cache.get((2, 0), &key("{ a }")), None, "after a write");
        assert_eq!(
            cache.get((1, 1), &key("{ a }")),
            None,
            "after a rules reload"
        );
        // An answer computed before a write that others have already seen is not kept.
        cache.put((2, 0), key("{ b }"), Bytes::from_static(b"B"));
        cache.put((1, 0), key("{ a }"), Bytes::from_static(b"old"));
        assert_eq!(cache.get((2, 0), &key("{ a }")), None);
        assert_eq!(
            cache.get((2, 0), &key("{ b }")),
            Some(Bytes::from_static(b"B"))
        );
        // Newer data but older rules is older too: it neither replaces nor is kept.
        cache.put((2, 1), key("{ c }"), Bytes::from_static(b"C"));
        cache.put((3, 0), key("{ d }"), Bytes::from_static(b"D"));
        assert_eq!(
            cache.get((2, 1), &key("{ c }")),
            Some(Bytes::from_static(b"C"))
        );
        assert_eq!(cache.get((3, 0), &key("{ d }")), None);
    }

    #[test]
    fn the_cache_stays_within_its_size_and_can_be_off() {
        let cache = ResponseCache::new(4_000);
        for i in 0..100 {
            cache.put(
                (0, 0),
                key(&format!("{{ f{i} }}")),
                Bytes::from(vec![b'x'; 500]),
            );
        }
        let inner = cache.inner.lock().expect("lock");
        assert!(inner.bytes <= 4_000, "{}", inner.bytes);
        drop(inner);
        let off = ResponseCache::new(0);
        assert!(!off.enabled());
        off.put((0, 0), key("{ a }"), Bytes::from_static(b"A"));
        assert_eq!(off.get((0, 0), &key("{ a }")), None);
    }
}
