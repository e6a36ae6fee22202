//! The background worker: drains the durable work queue in order (P1, P8), one store
//! transaction per step (about [`CHUNK`] members), so queries never wait for a whole run and a
//! crash loses nothing. It starts with whatever the queue holds, so a restart resumes.

pub mod delivery;
pub mod retention;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::rules::live::LiveRules;
use crate::store::{self, Store};
use crate::telemetry::Telemetry;

/// Members per transaction. Small enough that `processedMembers` rises visibly while a big
/// group runs (P9) and that a mutation waits for the writer only briefly; a 20,000-member run
/// takes no longer in steps of 1,000 than of 10,000.
pub const CHUNK: usize = 5_000;

/// Counts of one processing run (one queued item), for the log.
#[derive(Default)]
struct Run {
    started: Option<Instant>,
    users: u64,
    users_with_errors: u64,
    seats_taken: u64,
    seats_freed: u64,
    steps: u64,
}

/// Runs until `shutdown` turns true. `wake` is notified by mutations that queue work.
pub async fn run(
    store: Store,
    rules: Arc<LiveRules>,
    wake: Arc<Notify>,
    telemetry: Arc<Telemetry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut run = Run::default();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let table = rules.table();
        let asked = Instant::now();
        let step = store
            .write(move |tx| store::process::step(tx, &table, CHUNK, &store::now()))
            .await;
        match step {
            Ok(Some(step)) => {
                // Committed: counted now, never for a step that rolled back.
                telemetry
                    .step_seconds
                    .observe(asked.elapsed().as_secs_f64());
                telemetry.members_processed.inc_by(u64::from(step.users));
                run.started.get_or_insert_with(Instant::now);
                run.users += u64::from(step.users);
                run.users_with_errors += u64::from(step.users_with_errors);
                run.seats_taken += u64::from(step.seats_taken);
                run.seats_freed += u64::from(step.seats_freed);
                run.steps += 1;
                if step.finished {
                    let elapsed = run.started.map(|s| s.elapsed()).unwrap_or_default();
                    tracing::info!(
                        group = step.group,
                        users = run.users,
                        users_with_errors = run.users_with_errors,
                        seats_taken = run.seats_taken,
                        seats_freed = run.seats_freed,
                        transactions = run.steps,
                        elapsed_ms = elapsed.as_millis() as u64,
                        "processing run finished"
                    );
                    run = Run::default();
                }
                // Let queries and mutations in between steps.
                tokio::task::yield_now().await;
            }
            Ok(None) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = shutdown.changed() => {}
                    // Work queued by another process on the same database is found too.
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "processing step failed; retrying");
                tokio::select! {
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
