//! The CSV exports (graphql-api.md, "CSV exports"; licensing.md H6): thin handlers over the
//! page reads of `store::export`, streamed.
//!
//! | route | parameters | one row per |
//! | --- | --- | --- |
//! | `GET /export/license-errors.csv` | `groupId` | assignment in error from the group (Q1) |
//! | `GET /export/licensed-users.csv` | `skuPartNumber` | holder of the product (L1) |
//! | `GET /export/audit-events.csv` | `auditEvents`' filters, each optional: `since`, `until`, `category`, `userId`, `groupId`, `skuPartNumber`, `result` | audit event, newest first (H6) |
//!
//! The rules they implement:
//! - Access: the `Authorization: Bearer` token, as for `/graphql`: admin and reader tokens
//!   export, a provisioning token is refused (403), a missing or unknown one too (401). A token
//!   is never taken from the URL, where logs and browser histories would keep it.
//! - Refusals come before any row, as the JSON error body of every other route: a parameter
//!   missing, empty, malformed, repeated or unknown is `BAD_USER_INPUT` (400), an unknown group
//!   or product to export `NOT_FOUND` (404). The history's filters are checked for their form
//!   only: it keeps the events of users, groups and products deleted since. The Origin and
//!   Host rules are the router's (`guard`).
//! - The body: RFC 4180 as the `csv` crate writes it (quoting, CRLF line ends), UTF-8, a header
//!   row; a cell that would start with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
//!   leading `'`, so that a spreadsheet shows it rather than running it as a formula.
//! - Constant memory: a producer task reads a page at a time (`store::export::PAGE_USERS`
//!   users or `PAGE_EVENTS` events, each page one short read) and hands it to the response
//!   body through a channel of [`PAGES_IN_FLIGHT`] pages. A slow client fills the channel and
//!   so pauses its own producer, holding no reader meanwhile; a client that goes away ends it.
//!   A read that fails after the first page ends the body with an error, so the client sees a
//!   broken transfer rather than a file that looks whole; the failure is logged.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rusqlite::Connection;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::HttpState;
use super::auth::{Refusal, Role};
use super::graphql::error;
use super::negotiate::Media;
use crate::api::types::LicenseErrorCode;
use crate::engine;
use crate::rules::{ProductId, RuleTable};
use crate::store::export::{
    self as pages, ErrorPage, EventPage, HolderPage, PAGE_EVENTS, PAGE_USERS,
};
use crate::store::history::{Category, Filter};
use crate::store::{Store, StoreError};

/// An export's route and the query parameters it takes.
#[derive(Debug)]
pub struct Route {
    pub path: &'static str,
    pub parameters: &'static [&'static str],
    /// Those of `parameters` that must be given.
    pub required: &'static [&'static str],
}

pub const LICENSE_ERRORS: Route = Route {
    path: "/export/license-errors.csv",
    parameters: &["groupId"],
    required: &["groupId"],
};

pub const LICENSED_USERS: Route = Route {
    path: "/export/licensed-users.csv",
    parameters: &["skuPartNumber"],
    required: &["skuPartNumber"],
};

/// The filters of `auditEvents`, each optional.
pub const AUDIT_EVENTS: Route = Route {
    path: "/export/audit-events.csv",
    parameters: &[
        "since",
        "until",
        "category",
        "userId",
        "groupId",
        "skuPartNumber",
        "result",
    ],
    required: &[],
};

/// Every export, for the router and for the tests' table of bad requests.
pub const ROUTES: &[&Route] = &[&LICENSE_ERRORS, &LICENSED_USERS, &AUDIT_EVENTS];

/// Pages written but not yet sent that an export may hold, besides the one being read.
const PAGES_IN_FLIGHT: usize = 2;

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route(LICENSE_ERRORS.path, get(license_errors))
        .route(LICENSED_USERS.path, get(licensed_users))
        .route(AUDIT_EVENTS.path, get(audit_events))
}

type Parameters = Result<Query<Vec<(String, String)>>, QueryRejection>;

async fn license_errors(
    State(state): State<HttpState>,
    headers: HeaderMap,
    query: Parameters,
) -> Result<Response, ExportError> {
    admit(&state, &headers)?;
    let [group] = parameters(&LICENSE_ERRORS, query)?;
    // Required: `parameters` refused a request without it.
    let group = id(group.unwrap_or_default(), "group")?;
    let group_name = state
        .app
        .store
        .read(move |c| pages::group_name(c, group))
        .await?;
    let export = LicenseErrors {
        table: state.app.rules.table(),
        group,
        group_name,
    };
    let filename = format!("license-errors-group-{group}.csv");
    stream(state.app.store.clone(), export, filename).await
}

async fn licensed_users(
    State(state): State<HttpState>,
    headers: HeaderMap,
    query: Parameters,
) -> Result<Response, ExportError> {
    admit(&state, &headers)?;
    let [sku] = parameters(&LICENSED_USERS, query)?;
    // Required, as above.
    let sku = sku.unwrap_or_default();
    let table = state.app.rules.table();
    let product = table.product_by_name(&sku).ok_or_else(|| {
        ExportError::Store(StoreError::NotFound(format!(
            "no product `{sku}` in the rules in force (skuPartNumber is case-sensitive)"
        )))
    })?;
    let export = LicensedUsers { table, product };
    let filename = format!("licensed-users-{}.csv", file_safe(&sku));
    stream(state.app.store.clone(), export, filename).await
}

async fn audit_events(
    State(state): State<HttpState>,
    headers: HeaderMap,
    query: Parameters,
) -> Result<Response, ExportError> {
    admit(&state, &headers)?;
    let [since, until, category, user, group, sku, result] = parameters(&AUDIT_EVENTS, query)?;
    // Ids and names are checked for their form only: the history keeps the events of users,
    // groups and products deleted since.
    let filter = Filter {
        since: since.map(|t| time(&t, "since")).transpose()?,
        until: until.map(|t| time(&t, "until")).transpose()?,
        category: category
            .map(|name| {
                Category::from_name(&name).ok_or_else(|| {
                    let names: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
                    ExportError::BadRequest(format!(
                        "`{name}` is not an audit category: one of {}",
                        names.join(", ")
                    ))
                })
            })
            .transpose()?,
        user: user.map(|u| id(u, "user")).transpose()?,
        group: group.map(|g| id(g, "group")).transpose()?,
        sku,
        failed: result
            .map(|r| match r.as_str() {
                "SUCCESS" => Ok(false),
                "FAILURE" => Ok(true),
                _ => Err(ExportError::BadRequest(format!(
                    "`{r}` is not an audit result: SUCCESS or FAILURE"
                ))),
            })
            .transpose()?,
    };
    let export = AuditEvents { filter };
    stream(state.app.store.clone(), export, "audit-events.csv".into()).await
}

/// An id parameter, as GraphQL takes ids (`api::parse_id`).
fn id(text: String, what: &str) -> Result<i64, ExportError> {
    crate::api::parse_id(&async_graphql::ID(text), what)
        .map_err(|e| ExportError::BadRequest(e.message))
}

/// A time parameter, read as GraphQL's `DateTime` reads one (RFC 3339, any offset), and
/// written as the history stores times: UTC, milliseconds.
fn time(text: &str, name: &str) -> Result<String, ExportError> {
    text.parse::<chrono::DateTime<chrono::Utc>>()
        .map(crate::store::stored_time)
        .map_err(|e| {
            ExportError::BadRequest(format!(
                "`{name}` is not an RFC 3339 time such as 2026-05-01T12:00:00Z: {e}"
            ))
        })
}

/// Admin and reader tokens may export (graphql-api.md: "a reader token in the `Authorization`
/// header").
fn admit(state: &HttpState, headers: &HeaderMap) -> Result<(), ExportError> {
    match state.auth.role(headers) {
        Ok(Role::Admin | Role::Reader) => Ok(()),
        Ok(Role::Provisioning) => Err(ExportError::Provisioning),
        Err(refusal) => Err(ExportError::Unauthenticated(refusal)),
    }
}

/// The values of `route`'s parameters, in its order: each at most once and not empty, the
/// required ones given.
fn parameters<const N: usize>(
    route: &Route,
    query: Parameters,
) -> Result<[Option<String>; N], ExportError> {
    debug_assert_eq!(N, route.parameters.len(), "{}", route.path);
    let Query(pairs) = query.map_err(|rejection| {
        ExportError::BadRequest(format!("the URL's parameters: {}", rejection.body_text()))
    })?;
    let takes = || route.parameters.join(", ");
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for (name, value) in pairs {
        let Some(slot) = route
            .parameters
            .iter()
            .position(|p| *p == name)
            .and_then(|i| values.get_mut(i))
        else {
            return Err(ExportError::BadRequest(if is_token_name(&name) {
                "a token goes in the `Authorization: Bearer` header, never in the URL".into()
            } else {
                format!(
                    "unknown parameter `{name}`: {} takes {}",
                    route.path,
                    takes()
                )
            }));
        };
        if slot.is_some() {
            return Err(ExportError::BadRequest(format!(
                "`{name}` is given more than once"
            )));
        }
        *slot = Some(value);
    }
    for (name, value) in route.parameters.iter().zip(&values) {
        let blank = value.as_ref().is_some_and(|v| v.trim().is_empty());
        if route.required.contains(name) && (value.is_none() || blank) {
            return Err(ExportError::BadRequest(format!(
                "{} needs a `{name}` parameter",
                route.path
            )));
        }
        if blank {
            return Err(ExportError::BadRequest(format!(
                "`{name}` is empty: give a value or leave it out"
            )));
        }
    }
    Ok(values)
}

fn is_token_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["token", "access_token", "authorization", "bearer"].contains(&lower.as_str())
}

/// A name fit for `filename="…"`: letters, digits and `-_.` kept, anything else `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

// ---- Errors -------------------------------------------------------------------------------------

/// Why an export was refused or stopped; mapped to the wire in one place.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("{}", unauthenticated(.0).0)]
    Unauthenticated(Refusal),
    #[error("a provisioning token may only use /scim/v2: exports need an admin or reader token")]
    Provisioning,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the CSV: {0}")]
    Csv(#[from] csv::Error),
}

impl IntoResponse for ExportError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, code) = match &self {
            ExportError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            ExportError::Provisioning => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            ExportError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_USER_INPUT"),
            ExportError::Store(e) => match e.code() {
                "NOT_FOUND" => (StatusCode::NOT_FOUND, "NOT_FOUND"),
                "INTERNAL_SERVER_ERROR" => {
                    tracing::error!(error = %e, "export refused: store error");
                    (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR")
                }
                code => (StatusCode::BAD_REQUEST, code),
            },
            ExportError::Csv(e) => {
                tracing::error!(error = %e, "export refused: CSV");
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR")
            }
        };
        let mut response = error(Media::Json, status, code, &message);
        if let ExportError::Unauthenticated(refusal) = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(unauthenticated(refusal).1),
            );
        }
        response
    }
}

/// The message and the `WWW-Authenticate` challenge of a 401 (RFC 6750, 3).
fn unauthenticated(refusal: &Refusal) -> (&'static str, &'static str) {
    match refusal {
        Refusal::Missing => (
            "exports need a token: send `Authorization: Bearer <token>`",
            "Bearer realm=\"group-licensing\"",
        ),
        Refusal::Invalid => (
            "the token is not valid",
            "Bearer realm=\"group-licensing\", error=\"invalid_token\"",
        ),
    }
}

// ---- Streaming ----------------------------------------------------------------------------------

/// One export: its columns, how to read the page after a key, and how to write a page's rows.
trait Export: Send + Sync + 'static {
    type Key: Send + 'static;
    type Page: Send + 'static;

    /// The route, for the log.
    const PATH: &'static str;
    const COLUMNS: &'static [&'static str];

    /// The page after `after` (`None`: the first), in one short read.
    fn read(&self, conn: &Connection, after: Option<Self::Key>) -> Result<Self::Page, StoreError>;

    /// Writes the page's rows; returns the key the next page starts after, `None` after the
    /// last page.
    fn write(&self, page: Self::Page, csv: &mut Csv) -> Option<Self::Key>;
}

/// Answers with the export: the header and the first page are read before the answer starts,
/// so that a failure there is still an error body; the rest is sent as the producer reads it.
async fn stream<E: Export>(
    store: Store,
    export: E,
    filename: String,
) -> Result<Response, ExportError> {
    let export = Arc::new(export);
    let mut csv = Csv::new();
    csv.row(E::COLUMNS.iter().copied());
    let first = read(&store, &export, None).await?;
    let next = export.write(first, &mut csv);
    let head = csv.take()?;
    let (pages, body) = mpsc::channel(PAGES_IN_FLIGHT);
    // The channel is new and has room.
    let _ = pages.try_send(Ok(head));
    if let Some(after) = next {
        tokio::spawn(produce(store, export, after, csv, pages));
    }
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            // Directory data: no shared cache keeps a copy.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(ReceiverStream::new(body)),
    )
        .into_response())
}

type Chunk = Result<Bytes, std::io::Error>;

/// One page, in a read transaction of its own on a blocking thread: the page's rows are of
/// one moment, and the transaction lasts only as long as the page takes to read.
async fn read<E: Export>(
    store: &Store,
    export: &Arc<E>,
    after: Option<E::Key>,
) -> Result<E::Page, StoreError> {
    let export = export.clone();
    let (page, _) = store.snapshot(move |c| export.read(c, after)).await?;
    Ok(page)
}

/// Reads and sends the pages after `after` until the last, a failure, or a client gone.
async fn produce<E: Export>(
    store: Store,
    export: Arc<E>,
    mut after: E::Key,
    mut csv: Csv,
    pages: mpsc::Sender<Chunk>,
) {
    loop {
        let written = match read(&store, &export, Some(after)).await {
            Ok(page) => {
                let next = export.write(page, &mut csv);
                csv.take()
                    .map(|bytes| (bytes, next))
                    .map_err(ExportError::from)
            }
            Err(e) => Err(ExportError::from(e)),
        };
        match written {
            Ok((bytes, next)) => {
                if !bytes.is_empty() && pages.send(Ok(bytes)).await.is_err() {
                    // The client went away: nobody reads further.
                    return;
                }
                match next {
                    Some(key) => after = key,
                    None => return,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, export = E::PATH, "export stopped after its first page: the client gets a broken transfer");
                let _ = pages.send(Err(std::io::Error::other(e.to_string()))).await;
                return;
            }
        }
    }
}

/// CSV as the exports write it: RFC 4180 by the `csv` crate with CRLF line ends, and no cell a
/// spreadsheet would run as a formula.
struct Csv {
    writer: csv::Writer<Vec<u8>>,
    /// The first failure since the last `take` (none is expected: the writer writes to memory).
    failed: Option<csv::Error>,
}

impl Csv {
    fn writer() -> csv::Writer<Vec<u8>> {
        csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::with_capacity(256 * 1024))
    }

    fn new() -> Csv {
        Csv {
            writer: Csv::writer(),
            failed: None,
        }
    }

    fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) {
        let mut written = Ok(());
        for cell in cells {
            written = written.and_then(|()| self.writer.write_field(inert(cell).as_bytes()));
        }
        // An empty record after its fields ends the row.
        written = written.and_then(|()| self.writer.write_record(None::<&[u8]>));
        if let Err(e) = written
            && self.failed.is_none()
        {
            self.failed = Some(e);
        }
    }

    /// What was written since the last call.
    fn take(&mut self) -> Result<Bytes, csv::Error> {
        let full = std::mem::replace(&mut self.writer, Csv::writer());
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let bytes = full
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        Ok(Bytes::from(bytes))
    }
}

/// A cell as written: one that starts like a formula gets a leading `'` (graphql-api.md, "CSV
/// exports"); any other as it is.
fn inert(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

// ---- The exports --------------------------------------------------------------------------------

struct LicenseErrors {
    table: Arc<RuleTable>,
    group: i64,
    group_name: String,
}

impl Export for LicenseErrors {
    type Key = i64;
    type Page = ErrorPage;

    const PATH: &'static str = LICENSE_ERRORS.path;
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "userPrincipalName",
        "displayName",
        "group",
        "product",
        "state",
        "error",
        "message",
        "lastUpdatedDateTime",
    ];

    fn read(&self, conn: &Connection, after: Option<i64>) -> Result<ErrorPage, StoreError> {
        pages::error_page(
            conn,
            &self.table,
            self.group,
            after.unwrap_or(0),
            PAGE_USERS,
        )
    }

    fn write(&self, page: ErrorPage, csv: &mut Csv) -> Option<i64> {
        for entry in &page.users {
            let user = &entry.user;
            let id = user.id.to_string();
            for failed in &entry.failed {
                // The one-line message GraphQL gives as `errorDetail.message`.
                let message = match &failed.error {
                    Some(e) => engine::describe_error(&self.table, &page.names, e).message,
                    None => engine::UNREADABLE_ERROR.to_string(),
                };
                csv.row([
                    id.as_str(),
                    &user.user_principal_name,
                    &user.display_name,
                    &self.group_name,
                    &failed.sku,
                    &failed.state,
                    LicenseErrorCode::parse(&failed.error_code).name(),
                    &message,
                    &failed.updated_at,
                ]);
            }
        }
        page.next
    }
}

struct LicensedUsers {
    table: Arc<RuleTable>,
    product: ProductId,
}

impl Export for LicensedUsers {
    type Key = i64;
    type Page = HolderPage;

    const PATH: &'static str = LICENSED_USERS.path;
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "userPrincipalName",
        "displayName",
        "sources",
        "enabledPlans",
    ];

    fn read(&self, conn: &Connection, after: Option<i64>) -> Result<HolderPage, StoreError> {
        pages::holder_page(
            conn,
            &self.table,
            self.product,
            after.unwrap_or(0),
            PAGE_USERS,
        )
    }

    fn write(&self, page: HolderPage, csv: &mut Csv) -> Option<i64> {
        let plans = &self.table.product(self.product).plan_list;
        for holding in &page.holders {
            let user = &holding.user;
            let mut sources: Vec<String> = Vec::with_capacity(1 + holding.groups.len());
            if holding.direct {
                sources.push("direct".into());
            }
            sources.extend(
                holding
                    .groups
                    .iter()
                    .map(|g| match page.group_names.get(g) {
                        Some(name) => format!("group {name} ({g})"),
                        None => format!("group {g} (deleted)"),
                    }),
            );
            let enabled: Vec<&str> = plans
                .iter()
                .filter(|p| holding.enabled.contains(**p))
                .map(|p| self.table.plan(*p).name.as_str())
                .collect();
            csv.row([
                user.id.to_string().as_str(),
                &user.user_principal_name,
                &user.display_name,
                &sources.join("; "),
                &enabled.join("; "),
            ]);
        }
        page.next
    }
}

struct AuditEvents {
    filter: Filter,
}

impl Export for AuditEvents {
    type Key = i64;
    type Page = EventPage;

    const PATH: &'static str = AUDIT_EVENTS.path;
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "activityDateTime",
        "category",
        "activityDisplayName",
        "initiatedByKind",
        "initiatedByName",
        "targets",
        "modifiedProperties",
        "result",
        "resultReason",
        "correlationId",
    ];

    fn read(&self, conn: &Connection, before: Option<i64>) -> Result<EventPage, StoreError> {
        pages::event_page(conn, &self.filter, before, PAGE_EVENTS)
    }

    fn write(&self, page: EventPage, csv: &mut Csv) -> Option<i64> {
        for event in &page.events {
            let optional = |text: &Option<String>| text.clone().unwrap_or_default();
            let targets: Vec<String> = event
                .targets
                .iter()
                .map(|t| format!("{}/{}/{}", t.kind, optional(&t.id), optional(&t.name)))
                .collect();
            let properties: Vec<String> = event
                .targets
                .iter()
                .flat_map(|t| &t.properties)
                .map(|p| format!("{}: {} → {}", p.name, optional(&p.old), optional(&p.new)))
                .collect();
            csv.row([
                event.id.to_string().as_str(),
                &event.at,
                event.category.name(),
                event.activity.display_name(),
                event.actor.kind.name(),
                &event.actor.name,
                &targets.join("; "),
                &properties.join("; "),
                if event.failed { "FAILURE" } else { "SUCCESS" },
                event.reason.as_deref().unwrap_or_default(),
                event.correlation.to_string().as_str(),
            ]);
        }
        page.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_like_a_formula_get_a_quote() {
        for (cell, written) in [
            ("=1+2", "'=1+2"),
            ("+49 30", "'+49 30"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("a=b", "a=b"),
            ("", ""),
            ("'quoted", "'quoted"),
        ] {
            assert_eq!(inert(cell), written, "{cell:?}");
        }
    }

    #[test]
    fn rows_are_quoted_by_rfc_4180_with_crlf_ends() {
        let mut csv = Csv::new();
        csv.row(["a,b", "say \"hi\"", "two\nlines", "=x", "plain"]);
        csv.row(["1", "2", "3", "4", "5"]);
        let bytes = csv.take().expect("written");
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",'=x,plain\r\n1,2,3,4,5\r\n"
        );
        assert!(csv.take().expect("nothing more").is_empty());
    }

    /// Pages of one row each, the page after `fail_after` failing.
    struct Flaky {
        pages: i64,
        fail_after: Option<i64>,
    }

    impl Export for Flaky {
        type Key = i64;
        type Page = i64;

        const PATH: &'static str = "/test.csv";
        const COLUMNS: &'static [&'static str] = &["n"];

        fn read(&self, _: &Connection, after: Option<i64>) -> Result<i64, StoreError> {
            let n = after.map_or(1, |a| a + 1);
            match self.fail_after {
                Some(f) if n > f => Err(StoreError::Corrupt("the disk went away".into())),
                _ => Ok(n),
            }
        }

        fn write(&self, page: i64, csv: &mut Csv) -> Option<i64> {
            csv.row([page.to_string().as_str()]);
            (page < self.pages).then_some(page)
        }
    }

    async fn body_of(export: Flaky) -> (StatusCode, Result<Bytes, axum::Error>) {
        let dir = tempfile::tempdir().expect("a folder");
        let store = Store::open(&dir.path().join("t.db")).expect("a store");
        let response = match stream(store, export, "t.csv".into()).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        };
        let status = response.status();
        (
            status,
            axum::body::to_bytes(response.into_body(), usize::MAX).await,
        )
    }

    #[tokio::test]
    async fn every_page_is_sent_in_order_through_the_channel() {
        let (status, body) = body_of(Flaky {
            pages: 50,
            fail_after: None,
        })
        .await;
        assert_eq!(status, StatusCode::OK);
        let expected: String = std::iter::once("n\r\n".to_string())
            .chain((1..=50).map(|n| format!("{n}\r\n")))
            .collect();
        assert_eq!(String::from_utf8_lossy(&body.expect("whole")), expected);
    }

    #[tokio::test]
    async fn a_read_that_fails_after_the_first_page_breaks_the_body() {
        let (status, body) = body_of(Flaky {
            pages: 50,
            fail_after: Some(3),
        })
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_err(), "a body that looks whole: {body:?}");
    }

    #[tokio::test]
    async fn a_first_page_that_fails_is_an_error_body() {
        let (status, body) = body_of(Flaky {
            pages: 50,
            fail_after: Some(0),
        })
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let body = String::from_utf8_lossy(&body.expect("an error body")).to_string();
        assert!(body.contains("INTERNAL_SERVER_ERROR"), "{body}");
    }
}
