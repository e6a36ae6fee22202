//! The icon of the tab, and a 404 that says where things are instead of an empty body. The
//! console (`console.rs`) answers `/`.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::graphiql;
use super::graphql::error;
use super::negotiate::Media;

const FAVICON: &[u8] = include_bytes!("assets/favicon.svg");
/// Where the icon is; pages name it (browsers also ask for `/favicon.ico` by themselves).
pub const FAVICON_PATH: &str = "/favicon.svg";

pub fn router() -> Router {
    Router::new()
        .route(FAVICON_PATH, get(favicon))
        // Browsers ask for this name whatever the page says; an SVG answers it as well.
        .route("/favicon.ico", get(favicon))
        .fallback(not_found)
}

async fn favicon() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        FAVICON,
    )
        .into_response()
}

pub(super) async fn not_found(uri: Uri) -> Response {
    // A path is echoed for the reader to recognise, not whole.
    let path: String = uri.path().chars().take(200).collect();
    error(
        Media::Json,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!(
            "nothing is served at {}: the console is at /, the GraphQL API (and GraphiQL, for a browser) at {}, the health check at /healthz",
            path,
            graphiql::ENDPOINT
        ),
    )
}
