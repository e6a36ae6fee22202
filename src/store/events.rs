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

/// The runs of one group that completed since the server started, and the last one's final
/// state: a listener that slept through the end of a run (and the start of the next) still
/// hears of its `COMPLETE`. Apart from the progress, so that waiting for it wakes a listener
/// once a run, not once a step.
#[derive(Clone, Debug, Default)]
pub struct Done {
    pub runs: u64,
    pub last: Option<Progress>,
}

/// What a listener of one group receives.
pub struct GroupFeed {
    pub progress: watch::Receiver<Option<Progress>>,
    pub done: watch::Receiver<Done>,
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

/// The senders of one group's [`GroupFeed`].
type Feeds = (watch::Sender<Option<Progress>>, watch::Sender<Done>);

/// The process's listeners.
pub struct Hub {
    groups: Mutex<HashMap<i64, Feeds>>,
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
        let Some((progress, done)) = groups.get(&p.group) else {
            return;
        };
        if progress.receiver_count() == 0 {
            // The last subscriber of the group left.
            groups.remove(&p.group);
            return;
        }
        // The end first: a listener that sees the progress of the end finds its run counted.
        if p.state == "COMPLETE" {
            done.send_modify(|d| {
                d.runs += 1;
                d.last = Some(p.clone());
            });
        }
        progress.send_replace(Some(p));
    }

    /// Follows one group's progress from now on.
    pub fn watch_group(&self, group: i64) -> GroupFeed {
        let mut groups = match self.groups.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (progress, done) = groups
            .entry(group)
            .or_insert_with(|| (watch::channel(None).0, watch::channel(Done::default()).0));
        GroupFeed {
            progress: progress.subscribe(),
            done: done.subscribe(),
        }
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
