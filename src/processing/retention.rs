//! `--audit-retention-days` (licensing.md H1): the history's events older than the retention
//! are removed, oldest first, by this worker beside processing. Each step removes at most
//! [`STEP`] events in its own short transaction and then yields, so a first prune of millions
//! of events never holds the writer for long: mutations and processing steps go in between.

use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Store, history};

/// Events removed per transaction.
pub const STEP: usize = 2_000;
/// How often the retention is applied again.
const EVERY: Duration = Duration::from_secs(600);
/// The pause between two steps of one prune.
const PAUSE: Duration = Duration::from_millis(20);

/// The cutoff time for `days` of retention, as stored times are written.
pub fn cutoff(days: u32) -> String {
    crate::store::stored_time(chrono::Utc::now() - chrono::Duration::days(i64::from(days)))
}

/// Applies the retention at start and every [`EVERY`] until `stopped` turns true.
pub async fn run(store: Store, days: u32, mut stopped: watch::Receiver<bool>) {
    loop {
        let cutoff = cutoff(days);
        let mut removed = 0usize;
        loop {
            let limit = cutoff.clone();
            match store
                .write(move |tx| history::prune(tx, &limit, STEP))
                .await
            {
                Ok(n) => {
                    removed += n;
                    if n < STEP {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "pruning the history failed; retried later");
                    break;
                }
            }
            if *stopped.borrow() {
                return;
            }
            tokio::time::sleep(PAUSE).await;
        }
        if removed > 0 {
            tracing::info!(removed, days, "history: events past the retention removed");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stopped.changed() => return,
        }
    }
}
