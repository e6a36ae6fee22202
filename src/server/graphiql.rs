//! GraphiQL, served offline.
//!
//! The browser bundle (graphiql's UMD build, React and ReactDOM 18) is fetched
//! at build time from pinned npm packages by `build.rs`, verified, and embedded
//! here: the page loads nothing from outside this server. Its own markup and
//! start-up script are in this file. When the build could not fetch the bundle
//! (no npm), the page says how to get it instead.
//!
//! The page posts queries to the endpoint given to [`page`] with GraphiQL's
//! own fetcher (`GraphiQL.createFetcher`), which adds whatever the user types in
//! GraphiQL's headers editor, e.g. `{"Authorization": "Bearer …"}`.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::pages::FAVICON_PATH;

/// Where the router serves the page.
pub const PAGE_PATH: &str = "/graphiql";
/// Prefix of the asset URLs used by the page.
pub const ASSETS_PATH: &str = "/graphiql/assets";
/// The GraphQL endpoint the page served at [`PAGE_PATH`] talks to.
pub const ENDPOINT: &str = "/graphql";

/// Query shown when the editor is empty (first visit).
pub const DEFAULT_QUERY: &str = "\
# Groups with members in license error.
# Add an Authorization header in the Headers tab below if the server needs one.
{
  groups(hasMembersWithLicenseErrors: true) {
    totalCount
    edges {
      node {
        displayName
        licenseErrorCount
      }
    }
  }
}
";

/// Whether `build.rs` embedded the bundle (`GRAPHIQL_BUNDLE=embedded`) or
/// wrote empty placeholders (`missing`).
pub const BUNDLE_EMBEDDED: bool = cfg!(graphiql_bundle);

/// How the bundle was obtained, or why it is missing.
const BUNDLE_SOURCE: &str = env!("GRAPHIQL_BUNDLE_SOURCE");
/// `graphiql@… react@… react-dom@…`.
const PACKAGES: &str = env!("GRAPHIQL_PACKAGES");

macro_rules! bundle_file {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/graphiql/", $name))
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every asset: name under [`ASSETS_PATH`], bytes, content type.
static ASSETS: &[(&str, &[u8], &str)] = &[
    (
        "react.production.min.js",
        bundle_file!("react.production.min.js"),
        JS,
    ),
    (
        "react-dom.production.min.js",
        bundle_file!("react-dom.production.min.js"),
        JS,
    ),
    ("graphiql.min.js", bundle_file!("graphiql.min.js"), JS),
    ("graphiql.min.css", bundle_file!("graphiql.min.css"), CSS),
    ("graphiql-start.js", START_JS.as_bytes(), JS),
    (
        "graphiql.LICENSE.txt",
        bundle_file!("graphiql.LICENSE.txt"),
        TEXT,
    ),
    ("react.LICENSE.txt", bundle_file!("react.LICENSE.txt"), TEXT),
    (
        "react-dom.LICENSE.txt",
        bundle_file!("react-dom.LICENSE.txt"),
        TEXT,
    ),
];

/// Starts GraphiQL in `#graphiql`, posting to its `data-endpoint`. A file
/// rather than an inline script, so the page's CSP can forbid inline scripts.
const START_JS: &str = r#"(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var fetcher = GraphiQL.createFetcher({
    url: root.getAttribute("data-endpoint"),
    // Plain JSON POSTs: the server has no @defer/@stream.
    enableIncrementalDelivery: false
  });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: root.getAttribute("data-default-query"),
      // Headers typed in the editor (Authorization, ...) stay out of localStorage.
      shouldPersistHeaders: false
    })
  );
})();
"#;

/// The GraphiQL page, for a GraphQL endpoint at `endpoint` (a path such as
/// `/graphql`, or a URL on this server's origin).
pub fn page(endpoint: &str) -> String {
    if !BUNDLE_EMBEDDED {
        return missing_page(endpoint);
    }
    let endpoint = escape(endpoint);
    let default_query = escape(DEFAULT_QUERY);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>GraphiQL · group-licensing</title>
<link rel="icon" href="{FAVICON_PATH}" type="image/svg+xml">
<link rel="stylesheet" href="{ASSETS_PATH}/graphiql.min.css">
<style>
  html, body {{ height: 100%; margin: 0; }}
  #graphiql {{ height: 100vh; }}
</style>
</head>
<body>
<div id="graphiql" data-endpoint="{endpoint}" data-default-query="{default_query}">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript. The GraphQL endpoint is {endpoint} (POST, JSON).</noscript>
<script src="{ASSETS_PATH}/react.production.min.js"></script>
<script src="{ASSETS_PATH}/react-dom.production.min.js"></script>
<script src="{ASSETS_PATH}/graphiql.min.js"></script>
<script src="{ASSETS_PATH}/graphiql-start.js"></script>
</body>
</html>
"#
    )
}

/// Everything from this server; styles and fonts may also be inline or
/// `data:` (GraphiQL's stylesheet embeds its fonts that way).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'none'";

/// Files of `GROUP_LICENSING_GRAPHIQL_DIR`: name, and where it is in the npm tarballs.
const BUNDLE_FILES: [(&str, &str); 7] = [
    ("graphiql.min.js", "graphiql: package/graphiql.min.js"),
    ("graphiql.min.css", "graphiql: package/graphiql.min.css"),
    ("graphiql.LICENSE.txt", "graphiql: package/LICENSE"),
    (
        "react.production.min.js",
        "react: package/umd/react.production.min.js",
    ),
    ("react.LICENSE.txt", "react: package/LICENSE"),
    (
        "react-dom.production.min.js",
        "react-dom: package/umd/react-dom.production.min.js",
    ),
    ("react-dom.LICENSE.txt", "react-dom: package/LICENSE"),
];

/// The page when `build.rs` could not fetch the bundle.
fn missing_page(endpoint: &str) -> String {
    let endpoint = escape(endpoint);
    let reason = escape(BUNDLE_SOURCE);
    let files: String = BUNDLE_FILES
        .iter()
        .map(|(name, from)| format!("<li><code>{name}</code> ({from})</li>\n"))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>GraphiQL not included · group-licensing</title>
</head>
<body>
<h1>GraphiQL is not included in this build</h1>
<p>The GraphQL endpoint works: send <code>POST {endpoint}</code> with a JSON body
<code>{{"query": "…"}}</code>. Only the GraphiQL page is missing.</p>
<p>Its browser bundle ({PACKAGES}) is fetched from the npm registry when the server
is built, and was not this time: <code>{reason}</code>.</p>
<p>To get it, rebuild the server (<code>touch build.rs</code>, then <code>cargo build --release</code>) after one of:</p>
<ol>
<li>installing Node.js with npm (and giving the build access to the npm registry): the build
runs <code>npm pack {PACKAGES}</code> and checks each tarball against its pinned checksum;</li>
<li>or, without registry access: running that <code>npm pack</code> command on another machine
and setting <code>GROUP_LICENSING_NPM_CACHE</code> to a folder holding the three <code>.tgz</code> files;</li>
<li>or setting <code>GROUP_LICENSING_GRAPHIQL_DIR</code> to a folder holding the extracted files
(each is checked against its pinned checksum):
<ul>
{files}</ul></li>
</ol>
</body>
</html>
"#
    )
}

/// An asset of the page: its bytes and content type; `None` for names the page
/// does not use, and for every name when the bundle is missing.
pub fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    if !BUNDLE_EMBEDDED {
        return None;
    }
    ASSETS
        .iter()
        .find(|(asset, _, _)| *asset == name)
        .map(|(_, bytes, content_type)| (*bytes, *content_type))
}

/// `GET /graphiql` (the page, for the endpoint `/graphql`) and
/// `GET /graphiql/assets/{name}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PAGE_PATH, get(page_handler))
        .route(&format!("{ASSETS_PATH}/{{name}}"), get(asset_handler))
}

static PAGE: LazyLock<String> = LazyLock::new(|| page(ENDPOINT));

async fn page_handler() -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        Html(PAGE.as_str()),
    )
        .into_response()
}

async fn asset_handler(Path(name): Path<String>) -> Response {
    match asset(&name) {
        Some((bytes, content_type)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                // Names are not content-hashed: cache for a while, not forever,
                // so an upgraded server is picked up within the hour.
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such GraphiQL asset\n").into_response(),
    }
}

/// Escapes text for HTML content and double- or single-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// URLs the page refers to (`src=` and `href=`).
    fn references(html: &str) -> Vec<&str> {
        let mut refs = Vec::new();
        for attr in ["src=\"", "href=\""] {
            for (at, _) in html.match_indices(attr) {
                let rest = &html[at + attr.len()..];
                refs.push(&rest[..rest.find('"').expect("closed attribute")]);
            }
        }
        refs
    }

    #[test]
    fn page_loads_nothing_from_elsewhere() {
        let html = page("/graphql");
        for host in [
            "unpkg",
            "jsdelivr",
            "cdnjs",
            "esm.sh",
            "googleapis",
            "gstatic",
            "cdn.",
        ] {
            assert!(!html.contains(host), "page mentions {host}");
        }
        assert!(!html.contains("http://"), "page has an http:// URL");
        assert!(!html.contains("https://"), "page has an https:// URL");
        assert!(!html.contains("//"), "page has a protocol-relative URL");
        for url in references(&html).into_iter().filter(|u| *u != FAVICON_PATH) {
            let name = url
                .strip_prefix(ASSETS_PATH)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or_else(|| panic!("{url} is not under {ASSETS_PATH}"));
            assert!(
                asset(name).is_some(),
                "page uses {url}, which is not served"
            );
        }
    }

    #[test]
    fn page_escapes_the_endpoint() {
        let html = page("/graphql?a=1&b=\"<x>\"");
        assert!(!html.contains("<x>"));
        assert!(html.contains("/graphql?a=1&amp;b=&quot;&lt;x&gt;&quot;"));
    }

    #[test]
    fn page_and_start_script_fit_the_bundle() {
        let html = page("/graphql");
        if BUNDLE_EMBEDDED {
            assert!(html.contains(r#"data-endpoint="/graphql""#));
            assert!(html.contains("groups(hasMembersWithLicenseErrors: true)"));
            assert!(references(&html).len() >= 5);
            // The globals the start script uses are the ones the UMD files define.
            let graphiql = asset("graphiql.min.js").unwrap().0;
            let graphiql = std::str::from_utf8(graphiql).expect("UTF-8 bundle");
            assert!(graphiql.contains(".GraphiQL=t(e.React,e.ReactDOM)"));
            assert!(graphiql.contains("createFetcher:function"));
        } else {
            assert!(html.contains("GROUP_LICENSING_GRAPHIQL_DIR"));
            assert!(html.contains("npm"));
            assert!(references(&html).is_empty());
        }
    }

    #[test]
    fn assets_exist_when_bundled() {
        for (name, _, _) in ASSETS {
            let found = asset(name);
            assert_eq!(found.is_some(), BUNDLE_EMBEDDED, "{name}");
            if let Some((bytes, content_type)) = found {
                assert!(!bytes.is_empty(), "{name} is empty");
                assert!(content_type.contains("charset=utf-8"));
                if name.ends_with(".js") {
                    assert!(content_type.starts_with("text/javascript"));
                }
            }
        }
    }

    #[test]
    fn fallback_page_lists_every_bundled_file() {
        let mut bundled: Vec<&str> = BUNDLE_FILES.iter().map(|(name, _)| *name).collect();
        let mut served: Vec<&str> = ASSETS
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|name| *name != "graphiql-start.js")
            .collect();
        bundled.sort_unstable();
        served.sort_unstable();
        assert_eq!(bundled, served);
    }

    #[test]
    fn unknown_assets_are_none() {
        for name in [
            "",
            "nope.js",
            "../Cargo.toml",
            "graphiql.min.js.map",
            "GRAPHIQL.MIN.JS",
        ] {
            assert!(asset(name).is_none(), "{name}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn router_serves_page_and_assets() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router::<()>()).await });

        // (status, content type, cache control) of GET `path`, with a blocking client.
        let get = |path: &str| {
            let url = format!("{base}{path}");
            tokio::task::spawn_blocking(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let response = agent.get(&url).call().unwrap();
                let header = |name| {
                    response
                        .headers()
                        .get(name)
                        .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
                };
                (
                    response.status().as_u16(),
                    header(header::CONTENT_TYPE),
                    header(header::CACHE_CONTROL),
                )
            })
        };

        let (status, content_type, _) = get("/graphiql").await.unwrap();
        assert_eq!(status, 200);
        assert!(content_type.unwrap().starts_with("text/html"));

        let (status, content_type, cache) = get("/graphiql/assets/graphiql.min.css").await.unwrap();
        if BUNDLE_EMBEDDED {
            assert_eq!(status, 200);
            assert_eq!(content_type.as_deref(), Some(CSS));
            assert!(cache.unwrap().contains("max-age"));
        } else {
            assert_eq!(status, 404);
        }

        let (status, _, _) = get("/graphiql/assets/unknown.js").await.unwrap();
        assert_eq!(status, 404);
    }
}
