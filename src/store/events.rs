//! What committed, told to whoever listens in this process (licensing.md N4): the processing
//! progress of groups, alerts raised and resolved, the ids of audit events, and that the
//! webhook outbox has something new.
//!
//! Data enters in two steps. Code running inside a write transaction *stages* a [`Notice`]
//! ([`stage`]); the writer thread publishes what was staged to the [`Hub`] only once the
//! transaction has committed, and drops it when the transaction rolls back, so no listener
//! ever hears of a change that did not happen. Data leaves through the hub's receivers:
//! GraphQL subscriptions (`api`), the webhook worker (`processing::delivery`).
//!
//! Every channel is bounded or keeps only the latest value, so a listener that does not keep
//! up costs memory of its own at most and never slows the writer.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{Notify, broadcast, watch};

use super::alerts::AlertRow;

/// A group's processing state as a dashboard shows it (P9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub group: i64,
    /// `QUEUED`, `IN_PROGRESS` or `COMPLETE`.
    pub state: &'static str,
    pub processed: i64,
    pub to_process: i64,
    pub errors: i64,
}

/// The latest progress of one group, with the last run that completed: a listener that slept
/// through the end of a run (and the start of the next) still hears of its `COMPLETE`.
#[derive(Clone, Debug, Default)]
pub struct GroupWatch {
    pub latest: Option<Progress>,
    /// Runs completed since the server started, and the last one's final state.
    pub completed: u64,
    pub last_complete: Option<Progress>,
}

/// Something a committed transaction changed.
#[derive(Clone, Debug)]
pub enum Notice {
    Progress(Progress),
    Alert(AlertRow),
    /// Audit events `first..=last` committed.
    Audit {
        first: i64,
        last: i64,
    },
    /// Deliveries were added to the webhook outbox.
    Outbox,
}

/// Alerts waiting for a slow subscriber before it is told it missed some.
const ALERT_BUFFER: usize = 256;
/// Batches of audit ids waiting for the audit subscribers' reader.
const AUDIT_BUFFER: usize = 1024;

/// The process's listeners.
pub struct Hub {
    groups: Mutex<HashMap<i64, watch::Sender<GroupWatch>>>,
    alerts: broadcast::Sender<AlertRow>,
    audit: broadcast::Sender<(i64, i64)>,
    outbox: Notify,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            groups: Mutex::new(HashMap::new()),
            alerts: broadcast::channel(ALERT_BUFFER).0,
            audit: broadcast::channel(AUDIT_BUFFER).0,
            outbox: Notify::new(),
        }
    }
}

impl Hub {
    /// Publishes what a committed transaction staged.
    pub fn publish(&self, notices: Vec<Notice>) {
        for notice in notices {
            match notice {
                Notice::Progress(p) => self.progress(p),
                Notice::Alert(a) => {
                    // No subscriber: nothing to do.
                    let _ = self.alerts.send(a);
                }
                Notice::Audit { first, last } => {
                    let _ = self.audit.send((first, last));
                }
                Notice::Outbox => self.outbox.notify_one(),
            }
        }
    }

    fn progress(&self, p: Progress) {
        let Ok(mut groups) = self.groups.lock() else {
            return;
        };
        let Some(sender) = groups.get(&p.group) else {
            return;
        };
        if sender.receiver_count() == 0 {
            // The last subscriber of the group left.
            groups.remove(&p.group);
            return;
        }
        sender.send_modify(|w| {
            if p.state == "COMPLETE" {
                w.completed += 1;
                w.last_complete = Some(p.clone());
            }
            w.latest = Some(p);
        });
    }

    /// Follows one group's progress from now on.
    pub fn watch_group(&self, group: i64) -> watch::Receiver<GroupWatch> {
        let mut groups = match self.groups.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        groups
            .entry(group)
            .or_insert_with(|| watch::channel(GroupWatch::default()).0)
            .subscribe()
    }

    pub fn alerts(&self) -> broadcast::Receiver<AlertRow> {
        self.alerts.subscribe()
    }

    /// Ids of committed audit events, a transaction's at a time.
    pub fn audit(&self) -> broadcast::Receiver<(i64, i64)> {
        self.audit.subscribe()
    }

    /// Resolves when deliveries were added to the outbox since the last call.
    pub async fn outbox_filled(&self) {
        self.outbox.notified().await
    }
}

thread_local! {
    /// What the transaction running on this thread (the writer's) has staged so far.
    static STAGED: RefCell<Vec<Notice>> = const { RefCell::new(Vec::new()) };
}

/// Keeps `notice` for publication once the running write transaction commits.
pub fn stage(notice: Notice) {
    STAGED.with(|s| s.borrow_mut().push(notice));
}

/// What the transaction staged, emptied.
pub(super) fn take() -> Vec<Notice> {
    STAGED.with(|s| std::mem::take(&mut *s.borrow_mut()))
}
