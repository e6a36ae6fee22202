//! The GraphQL API of graphql-api.md (async-graphql). Queries read through per-request loaders;
//! mutations run one store transaction each and wake the processing worker.
//!
//! Errors carry `extensions.code`: `BAD_USER_INPUT`, `NOT_FOUND`, `USAGE_LOCATION_REQUIRED`,
//! `GROUP_HAS_LICENSES`, `RULES_INVALID`, or a license error code with `extensions.details`
//! (the violations, as `LicenseViolation`).

mod codes;
pub use codes::{Verdict, add_codes};
mod history;
pub mod limits;
pub mod live;
mod loaders;
mod mutation;
mod notices;
pub mod order;
mod preview;
mod query;
pub mod types;

use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{ErrorExtensions, Schema};
use tokio::sync::Notify;

use crate::rules::live::{LiveRules, Loaded};
use crate::rules::{self, Diagnostic, RulesError, Severity};
use crate::store::{self, Store, StoreError};

pub use crate::store::history::Acting;
pub use history::record_refusal;
pub use loaders::Loaders;

/// The loaders of one request, caching what they read for the length of the request.
pub type RequestLoader = DataLoader<Loaders, HashMapCache>;
pub use mutation::Mutation;
pub use query::Query;

pub use live::Subscription;

pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// What every request can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub rules: Arc<LiveRules>,
    /// Wakes the processing worker after a mutation queued work.
    pub wake: Arc<Notify>,
    /// Which webhook receivers are allowed (`--webhook-allow-private`).
    pub webhooks: crate::processing::delivery::Settings,
    /// The counters of `/metrics` (reloads are counted here).
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

pub fn schema(state: AppState) -> ApiSchema {
    builder()
        .data(state)
        .data(preview::Previews::default())
        .data(preview::RedundantCounts::default())
        .limit_depth(limits::MAX_DEPTH)
        .limit_complexity(limits::MAX_COMPLEXITY)
        // The parser's own guard; `limits::inspect` already refused deeper text.
        .limit_recursive_depth(limits::MAX_NESTING)
        .finish()
}

/// The SDL of the schema (`group-licensing schema`, `schema.graphql`).
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The types and their descriptions, for every schema the server builds.
fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        // async-graphql's own text names the Rust type; this one is for the admin reading it.
        .override_output_type_description::<chrono::DateTime<chrono::Utc>>(
            "A point in time, in RFC 3339 format with its offset (UTC), e.g. 2026-05-01T12:00:00Z.",
        )
}

/// Adds what one request needs: the rule table in force when it started (every field of the
/// request sees the same one) and fresh loaders.
pub fn prepare(request: async_graphql::Request, state: &AppState) -> async_graphql::Request {
    request
        .data(state.rules.table())
        .data(DataLoader::with_cache(
            Loaders {
                store: state.store.clone(),
            },
            tokio::spawn,
            HashMapCache::default(),
        ))
}

/// A store error as a GraphQL error with its `extensions.code`.
pub fn api_error(e: StoreError) -> async_graphql::Error {
    let code = e.code();
    if code == "INTERNAL_SERVER_ERROR" {
        tracing::error!(error = %e, "store error");
    }
    async_graphql::Error::new(e.to_string()).extend_with(|_, ext| ext.set("code", code))
}

pub(crate) fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    api_error(StoreError::BadInput(message.into()))
}

/// Paging arguments (graphql-api.md): `first` defaults to 100 and is capped at 1,000; `after`
/// is a cursor this server made, for the same kind of list.
pub(crate) fn page_args(
    first: Option<i32>,
    after: Option<&str>,
    kind: &str,
) -> async_graphql::Result<(usize, i64)> {
    let first = match first {
        Some(n) if n < 0 => return Err(bad_input(format!("first must be 0 or more, got {n}"))),
        other => limits::page_size(other),
    };
    let after = match after {
        None => 0,
        Some(c) => parse_cursor(c, kind)
            .ok_or_else(|| bad_input(format!("`{c}` is not a cursor of this list")))?,
    };
    Ok((first, after))
}

/// Cursors are opaque to clients: the list kind and a key, hex-encoded.
pub(crate) fn cursor(kind: &str, key: i64) -> String {
    format!("{kind}:{key}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_cursor(cursor: &str, kind: &str) -> Option<i64> {
    if cursor.len() % 2 != 0 || cursor.len() > 64 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (k, key) = text.split_once(':')?;
    (k == kind).then(|| key.parse().ok()).flatten()
}

/// An id argument: a positive integer in a string, written as this server writes ids (`+1`
/// or `01` would otherwise name user 1 while the answer echoes an id it never gave out).
pub(crate) fn parse_id(id: &async_graphql::ID, what: &str) -> async_graphql::Result<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && n.to_string() == id.as_str())
        .ok_or_else(|| bad_input(format!("`{}` is not a {what} id", id.as_str())))
}

/// How many of a refused reload's errors are logged one by one: a catalog renamed wholesale
/// gives thousands, and every SIGHUP would write them all again.
const LOGGED_RELOAD_ERRORS: usize = 20;

/// Reloads the rules folder (the `reloadRules` mutation and SIGHUP). A table that does not
/// compile, or that would drop a product or plan still used by an assignment or a seat count,
/// is refused: the old table stays, and the diagnostics are kept for `rules.lastReloadErrors`.
pub async fn reload_rules(state: &AppState, acting: &Acting) -> Result<Loaded, Vec<Diagnostic>> {
    let before = state.rules.table();
    let outcome = reload(state).await;
    state.telemetry.reload(outcome.is_ok());
    let counts = |t: &rules::RuleTable| {
        (
            Some(t.product_count().to_string()),
            Some(t.plan_count().to_string()),
        )
    };
    let (old_products, old_plans) = counts(&before);
    let mut target = store::history::Target::of(
        "RuleSet",
        None,
        Some(state.rules.dir().display().to_string()),
    );
    let event = match &outcome {
        Ok(loaded) => {
            let (products, plans) = counts(&loaded.table);
            target.properties = vec![
                store::history::Property::new("products", old_products, products),
                store::history::Property::new("servicePlans", old_plans, plans),
            ];
            store::history::Event::new(store::history::Activity::ReloadRules, vec![target])
        }
        Err(errors) => {
            let first = errors.first().map(|d| d.one_line()).unwrap_or_default();
            store::history::Event::new(store::history::Activity::ReloadRules, vec![target]).failure(
                "RULES_INVALID",
                &format!(
                    "the rules were not reloaded: {} error(s), the first: {first}",
                    errors.len()
                ),
            )
        }
    };
    store::history::record_apart(&state.store, acting, event).await;
    outcome
}

async fn reload(state: &AppState) -> Result<Loaded, Vec<Diagnostic>> {
    let dir = state.rules.dir().to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || rules::load_dir(&dir)).await;
    let outcome = match loaded {
        Ok(Ok(compiled)) => check_in_use(state, compiled).await,
        Ok(Err(RulesError::Invalid(failure))) => Err(failure.errors),
        Ok(Err(other)) => Err(vec![folder_diagnostic(state, other.to_string())]),
        Err(e) => Err(vec![folder_diagnostic(
            state,
            format!("reload failed: {e}"),
        )]),
    };
    match outcome {
        Ok(loaded) => {
            state.rules.replace(loaded.clone());
            tracing::info!(
                plans = loaded.table.plan_count(),
                products = loaded.table.product_count(),
                "rules reloaded"
            );
            Ok(loaded)
        }
        Err(errors) => {
            tracing::warn!(
                errors = errors.len(),
                "rules reload refused; keeping the rules in force"
            );
            // A SIGHUP has no caller to answer: the log is where an operator learns why.
            for d in errors.iter().take(LOGGED_RELOAD_ERRORS) {
                tracing::warn!("rules reload error: {}", d.one_line());
            }
            if let Some(more) = errors.len().checked_sub(LOGGED_RELOAD_ERRORS)
                && more > 0
            {
                tracing::warn!(
                    "rules reload error: … and {more} more (all of them in rules.lastReloadErrors, or run `group-licensing check {}`)",
                    state.rules.dir().display()
                );
            }
            state.rules.refuse(errors.clone());
            Err(errors)
        }
    }
}

fn folder_diagnostic(state: &AppState, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: state.rules.dir().display().to_string(),
        line: 0,
        column: 0,
        message,
        source_line: String::new(),
        width: 0,
    }
}

async fn check_in_use(
    state: &AppState,
    compiled: rules::Compiled,
) -> Result<Loaded, Vec<Diagnostic>> {
    let table = Arc::new(compiled.table);
    let in_use = state.store.read(store::ops::names_in_use).await;
    let (products, plans) = match in_use {
        Ok(names) => names,
        Err(e) => return Err(vec![folder_diagnostic(state, e.to_string())]),
    };
    // What the new rules dropped is declared in the rules in force: that declaration is the one
    // the admin renamed or removed, and the files on disk no longer show it. A name they do not
    // declare either (the store can be older than them) is refused for the folder as a whole.
    let in_force = state.rules.table();
    const IN_FORCE: &str = " (this is where the rules in force declare it)";
    let mut errors = Vec::new();
    for p in products
        .iter()
        .filter(|p| table.product_by_name(p).is_none())
    {
        let message = format!(
            "product `{p}` is still used by assignments, group licenses or seat counts: the new rules must keep it"
        );
        let declared = in_force.product_by_name(p).and_then(|id| {
            in_force.at_product(id, Severity::Error, format!("{message}{IN_FORCE}"))
        });
        errors.push(declared.unwrap_or_else(|| folder_diagnostic(state, message)));
    }
    for p in plans.iter().filter(|p| table.plan_by_name(p).is_none()) {
        let message = format!(
            "service plan `{p}` is still used by assignments or group licenses: the new rules must keep it"
        );
        let declared = in_force
            .plan_by_name(p)
            .and_then(|id| in_force.at_plan(id, Severity::Error, format!("{message}{IN_FORCE}")));
        errors.push(declared.unwrap_or_else(|| folder_diagnostic(state, message)));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let for_store = table.clone();
    if let Err(e) = state
        .store
        .write(move |tx| store::ops::ensure_products(tx, &for_store))
        .await
    {
        return Err(vec![folder_diagnostic(state, e.to_string())]);
    }
    Ok(Loaded {
        table,
        loaded_at: store::now(),
        warnings: compiled.warnings,
        last_reload_errors: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_other_lists_and_junk() {
        let c = cursor("u", 42);
        assert_eq!(parse_cursor(&c, "u"), Some(42));
        assert_eq!(parse_cursor(&c, "m"), None);
        for junk in ["", "zz", "7", "u:42", &"ab".repeat(40)] {
            assert_eq!(parse_cursor(junk, "u"), None, "{junk}");
        }
    }
}
