//! The rule table a running server uses: loaded from a folder at start, replaced whole on
//! reload, so that every reader holds one consistent table for as long as it needs it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::{Diagnostic, RuleTable};

/// What the API reports about the rules in force (`RuleSet`).
#[derive(Clone)]
pub struct Loaded {
    pub table: Arc<RuleTable>,
    /// RFC 3339, when this table was loaded.
    pub loaded_at: String,
    pub warnings: Vec<Diagnostic>,
    /// Empty when the last reload succeeded (or none was tried).
    pub last_reload_errors: Vec<Diagnostic>,
}

pub struct LiveRules {
    dir: PathBuf,
    current: RwLock<Loaded>,
    /// Changes with every replacement or refusal (what `rules` answers changes with it).
    generation: AtomicU64,
}

impl LiveRules {
    pub fn new(dir: &Path, loaded: Loaded) -> LiveRules {
        LiveRules {
            dir: dir.to_path_buf(),
            current: RwLock::new(loaded),
            generation: AtomicU64::new(0),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The table in force; callers keep the `Arc` for the whole of one operation.
    pub fn table(&self) -> Arc<RuleTable> {
        self.snapshot().table
    }

    pub fn snapshot(&self) -> Loaded {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            // A panic while holding the lock cannot leave a half-written table: the value is
            // replaced whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, loaded: Loaded) {
        match self.current.write() {
            Ok(mut guard) => *guard = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Keeps the table in force and records why a reload was refused.
    pub fn refuse(&self, errors: Vec<Diagnostic>) {
        match self.current.write() {
            Ok(mut guard) => guard.last_reload_errors = errors,
            Err(poisoned) => poisoned.into_inner().last_reload_errors = errors,
        }
        self.generation.fetch_add(1, Ordering::Release);
    }
}
