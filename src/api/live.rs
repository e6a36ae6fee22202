//! Subscriptions (licensing.md N4): streams fed by the store's hub (`store::events`), which
//! the writer publishes to after each commit.
//!
//! - `groupProcessing` sends the group's state at once, then at most one update every
//!   [`THROTTLE`] while a run goes, and every run's final state, even to a subscriber that
//!   slept through it (the hub keeps the last one apart).
//! - `alerts` and `auditEvents` read bounded channels: a subscriber that falls so far behind
//!   that the channel drops what it has not read is told so and closed, rather than sent a
//!   stream with holes in it.
//! - Every stream ends, with an error saying why, once the connection's token is no longer
//!   in force (a SIGHUP that removed it): see [`Liveness`].
//!
//! A connection's loaders live as long as it does, so they cache nothing (`connection_data`):
//! each message is answered from the store as it is then.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::futures_util::stream::{self, Stream, StreamExt};
use async_graphql::{Context, ID, Result, Subscription as SubscriptionType};
use tokio::sync::{broadcast, watch};

use crate::store::events::{GroupFeed, Progress};
use crate::store::{history, read};

use super::history::{AuditCategory, AuditEvent};
use super::notices::{Alert, GroupProcessingUpdate};
use super::{AppState, api_error, parse_id};

/// The shortest time between two progress updates of one run.
pub const THROTTLE: Duration = Duration::from_millis(250);

/// Whether the connection's caller is still let in: `changes` moves when the tokens are
/// replaced, and `valid` says whether the connection's token survived.
#[derive(Clone)]
pub struct Liveness {
    pub changes: watch::Receiver<u64>,
    pub valid: Arc<dyn Fn() -> bool + Send + Sync>,
}

/// A stream that ends, with an error, when the connection's token stops being valid.
fn guarded<T: Send + 'static>(
    liveness: Option<Liveness>,
    inner: impl Stream<Item = Result<T>> + Send + 'static,
) -> impl Stream<Item = Result<T>> + Send + 'static {
    let inner = Box::pin(inner);
    stream::unfold(Some((inner, liveness)), |state| async move {
        let (mut inner, mut liveness) = state?;
        loop {
            let changed = async {
                match liveness.as_mut() {
                    Some(l) => l.changes.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                item = inner.next() => {
                    return Some((item?, Some((inner, liveness))));
                }
                alive = changed => {
                    let still = alive && liveness.as_ref().is_some_and(|l| (l.valid)());
                    if !still {
                        let gone = async_graphql::Error::new(
                            "the token of this connection is no longer valid: subscribe again with one in force",
                        );
                        return Some((Err(gone), None));
                    }
                }
            }
        }
    })
}

fn liveness(ctx: &Context<'_>) -> Option<Liveness> {
    ctx.data_opt::<Liveness>().cloned()
}

/// Follows one group's feed.
struct Follow {
    feed: GroupFeed,
    /// Runs whose end was sent (or that ended before the subscription).
    seen: u64,
    first: Option<Progress>,
    last_sent: Instant,
}

impl Follow {
    async fn next(&mut self) -> Option<Progress> {
        if let Some(first) = self.first.take() {
            self.last_sent = Instant::now();
            return Some(first);
        }
        loop {
            tokio::select! {
                changed = self.feed.progress.changed() => changed.ok()?,
                changed = self.feed.done.changed() => changed.ok()?,
            }
            if let Some(done) = self.completed() {
                return Some(done);
            }
            // Progress waits out the throttle; a run's end that comes meanwhile goes at once.
            let deadline = tokio::time::Instant::from_std(self.last_sent + THROTTLE);
            if tokio::time::Instant::now() < deadline {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    changed = self.feed.done.changed() => changed.ok()?,
                }
                if let Some(done) = self.completed() {
                    return Some(done);
                }
            }
            let latest = self.feed.progress.borrow_and_update().clone();
            // A COMPLETE here is one `completed` has sent already.
            if let Some(p) = latest.filter(|p| p.state != "COMPLETE") {
                self.last_sent = Instant::now();
                return Some(p);
            }
        }
    }

    /// The final state of a run that completed since the last one sent, if any.
    fn completed(&mut self) -> Option<Progress> {
        let done = {
            let d = self.feed.done.borrow_and_update();
            if d.runs == self.seen {
                return None;
            }
            self.seen = d.runs;
            d.last.clone()
        };
        if done.is_some() {
            self.last_sent = Instant::now();
        }
        done
    }
}

/// Live updates; the reader role may subscribe.
pub struct Subscription;

/// Live updates over `graphql-transport-ws` on `/graphql`: processing progress, alerts and
/// audit events as they commit; the reader role may subscribe.
#[SubscriptionType]
impl Subscription {
    /// A group's processing: its state at once, then when a run starts, at most one update
    /// every 250 ms while it runs, and always its final state (`COMPLETE`).
    async fn group_processing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's id.")] group_id: ID,
    ) -> Result<impl Stream<Item = Result<GroupProcessingUpdate>> + use<>> {
        let group = parse_id(&group_id, "group")?;
        let state = ctx.data::<AppState>()?;
        // Watched before the state is read, so that nothing falls between the two.
        let feed = state.store.hub().watch_group(group);
        let seen = feed.done.borrow().runs;
        let view = state
            .store
            .read(move |c| read::groups(c, &[group]))
            .await
            .map_err(api_error)?
            .remove(&group)
            .ok_or_else(|| api_error(read::not_found("group", group)))?;
        let follow = Follow {
            feed,
            seen,
            first: Some(Progress {
                group,
                state: view.processing_state,
                processed: view.processed_members,
                to_process: view.members_to_process,
                errors: view.error_users,
            }),
            last_sent: Instant::now(),
        };
        let updates = stream::unfold(follow, |mut f| async move {
            let p = f.next().await?;
            Some((Ok(GroupProcessingUpdate(p)), f))
        });
        Ok(guarded(liveness(ctx), updates))
    }

    /// Alerts as they are raised and resolved.
    async fn alerts(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Result<Alert>> + use<>> {
        let state = ctx.data::<AppState>()?;
        let rx = state.store.hub().alerts();
        let alerts = stream::unfold(Some(rx), |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Ok(alert) => Some((Ok(Alert(alert)), Some(rx))),
                Err(broadcast::error::RecvError::Lagged(n)) => Some((
                    Err(async_graphql::Error::new(format!(
                        "this subscriber fell {n} alerts behind and is closed: subscribe again and read `alerts` for what it missed"
                    ))),
                    None,
                )),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok(guarded(liveness(ctx), alerts))
    }

    /// History events as they commit, oldest first.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only events of this category.")] category: Option<AuditCategory>,
    ) -> Result<impl Stream<Item = Result<AuditEvent>> + use<>> {
        let state = ctx.data::<AppState>()?;
        let store = state.store.clone();
        let rx = state.store.hub().audit();
        let wanted = category.map(AuditCategory::stored);
        let ranges = stream::unfold(Some(rx), move |rx| {
            let store = store.clone();
            async move {
                let mut rx = rx?;
                let lagged = |what: String| {
                    Some((
                        stream::iter(vec![Err(async_graphql::Error::new(what))]).boxed(),
                        None,
                    ))
                };
                let (first, last) = match rx.recv().await {
                    Ok(range) => range,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        return lagged(format!(
                            "this subscriber is too slow for the audit stream ({n} transactions' events were not read in time) and is closed: subscribe again and read `auditEvents` for what it missed"
                        ));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                let events = store
                    .read(move |c| history::between(c, first, last))
                    .await;
                let items: Vec<Result<AuditEvent>> = match events {
                    Ok(rows) => rows
                        .into_iter()
                        .filter(|e| wanted.is_none_or(|c| e.category == c))
                        .map(|e| Ok(AuditEvent::of(e)))
                        .collect(),
                    Err(e) => vec![Err(api_error(e))],
                };
                Some((stream::iter(items).boxed(), Some(rx)))
            }
        })
        .flatten();
        Ok(guarded(liveness(ctx), ranges))
    }
}

/// What a WebSocket connection's operations share: the rules in force when it connected,
/// loaders that cache nothing (a connection outlives any one answer), the caller and its
/// liveness.
pub fn connection_data(
    state: &AppState,
    acting: Arc<super::Acting>,
    liveness: Liveness,
) -> async_graphql::Data {
    let loader = async_graphql::dataloader::DataLoader::with_cache(
        super::Loaders {
            store: state.store.clone(),
        },
        tokio::spawn,
        async_graphql::dataloader::HashMapCache::default(),
    );
    loader.enable_all_cache(false);
    let mut data = async_graphql::Data::default();
    data.insert(state.rules.table());
    data.insert(loader);
    data.insert(acting);
    data.insert(liveness);
    data
}

/// The executor of WebSocket connections: subscriptions only, within the request limits of
/// `limits`; queries and mutations go over HTTP, where the roles are checked.
#[derive(Clone)]
pub struct SubscriptionsOnly(pub super::ApiSchema);

fn refusal(code: &str, message: &str) -> async_graphql::Response {
    let error = async_graphql::ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    async_graphql::Response::from_errors(vec![async_graphql::ServerError {
        extensions: Some(extensions),
        ..error
    }])
}

impl async_graphql::Executor for SubscriptionsOnly {
    async fn execute(&self, _request: async_graphql::Request) -> async_graphql::Response {
        refusal(
            "BAD_REQUEST",
            "over WebSocket only subscriptions run: send queries and mutations with POST /graphql",
        )
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> async_graphql::futures_util::stream::BoxStream<'static, async_graphql::Response> {
        use async_graphql::parser::types::OperationType;
        let shape = match super::limits::inspect(&request.query, request.operation_name.as_deref())
        {
            Ok(shape) => shape,
            Err(refused) => {
                return stream::once(async move { refusal(refused.code, &refused.message) })
                    .boxed();
            }
        };
        let kind = shape.document.as_ref().and_then(|d| {
            super::order::operation(d, request.operation_name.as_deref()).map(|op| op.ty)
        });
        if matches!(
            kind,
            Some(OperationType::Query) | Some(OperationType::Mutation)
        ) {
            return stream::once(async {
                refusal(
                    "BAD_REQUEST",
                    "over WebSocket only subscriptions run: send queries and mutations with POST /graphql",
                )
            })
            .boxed();
        }
        // A document that does not parse or validate is answered by the schema's own errors.
        async_graphql::Executor::execute_stream(&self.0, request, session_data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::Done;

    fn progress(state: &'static str, processed: i64) -> Progress {
        Progress {
            group: 1,
            state,
            processed,
            to_process: 10,
            errors: 0,
        }
    }

    /// N4: a run's final state is not held back by the throttle of the progress before it.
    #[tokio::test]
    async fn a_runs_end_goes_at_once_even_inside_the_throttle() {
        let (tx, updates) = watch::channel(None);
        let (done, done_rx) = watch::channel(Done::default());
        let mut follow = Follow {
            feed: GroupFeed {
                progress: updates,
                done: done_rx,
            },
            seen: 0,
            first: Some(progress("COMPLETE", 0)),
            last_sent: Instant::now(),
        };
        assert_eq!(follow.next().await.map(|p| p.state), Some("COMPLETE"));
        tx.send_replace(Some(progress("IN_PROGRESS", 5)));
        let ending = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let end = progress("COMPLETE", 10);
            done.send_modify(|d| {
                d.runs += 1;
                d.last = Some(end.clone());
            });
            tx.send_replace(Some(end));
            (tx, done)
        });
        let started = Instant::now();
        let got = follow.next().await.expect("an update");
        let waited = started.elapsed();
        assert_eq!((got.state, got.processed), ("COMPLETE", 10));
        assert!(
            waited < THROTTLE - Duration::from_millis(50),
            "the end waited {waited:?} for the throttle"
        );
        let _tx = ending.await;
    }

    /// N4: progress comes at most once per throttle, and the latest of what came meanwhile.
    #[tokio::test]
    async fn progress_is_throttled_to_the_latest() {
        let (tx, updates) = watch::channel(None);
        let (_done, done_rx) = watch::channel(Done::default());
        let mut follow = Follow {
            feed: GroupFeed {
                progress: updates,
                done: done_rx,
            },
            seen: 0,
            first: None,
            last_sent: Instant::now(),
        };
        let started = Instant::now();
        for n in 1..=5 {
            tx.send_replace(Some(progress("IN_PROGRESS", n)));
        }
        let got = follow.next().await.expect("an update");
        assert_eq!(got.processed, 5);
        assert!(started.elapsed() >= THROTTLE - Duration::from_millis(10));
    }
}
