//! The admin console (console.md): a page of plain ES modules in `src/console/`, embedded in the
//! binary so that it works on a machine with no internet, served at `/` and at every view's URL.
//!
//! Reading order: [`FILES`] (what is embedded), [`router`] (which URLs), [`serve`] (the headers
//! every answer carries). The console is a client of `/graphql` only: nothing here reads data.
//!
//! - Every view URL (`/groups/3`, `/products/EMS`, …) answers the same HTML shell; the page's
//!   router picks the view from the address, so a reload or a bookmark shows the same view. An id
//!   that does not exist is the page's business (it says so), not a 404 here.
//! - Assets are under `/console/…`, by their path in `src/console/`.
//! - Each answer carries a Content-Security-Policy that allows scripts, styles and requests to
//!   this origin only, and no inline script or style: every string from the server is rendered
//!   as text by the page, and even an injected tag could not run. Names are not content-hashed, so
//!   answers are revalidated (`no-cache` with an ETag): an upgraded server is seen at once, and
//!   an unchanged file costs a 304.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// Where the assets are served: `/console/app.js` is `src/console/app.js`.
pub const ASSETS_PATH: &str = "/console";

/// The URLs of the views, which all answer the shell (the page's `app.js` has the same list).
pub const VIEW_ROUTES: [&str; 11] = [
    "/",
    "/groups",
    "/groups/{id}",
    "/users",
    "/users/{id}",
    "/products",
    "/products/{sku}",
    "/redundant-licenses",
    "/rules",
    "/activity",
    "/settings",
];

/// Scripts, styles, requests and images from this origin only; no inline script or style, no
/// plugin, no `<base>`, and no page elsewhere may frame the console (clickjacking).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; object-src 'none'; base-uri 'none'; \
                       form-action 'self'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

macro_rules! file {
    ($path:literal, $type:expr) => {
        (
            $path,
            include_bytes!(concat!("../console/", $path)) as &[u8],
            $type,
        )
    };
}

/// Every file of `src/console/`: its path there, its bytes, its content type. A test checks
/// that the folder and this table list the same files.
pub static FILES: &[(&str, &[u8], &str)] = &[
    file!("index.html", HTML),
    file!("console.css", CSS),
    file!("app.js", JS),
    file!("api.js", JS),
    file!("dom.js", JS),
    file!("ui.js", JS),
    file!("labels.js", JS),
    file!("preview.js", JS),
    file!("history.js", JS),
    file!("live.js", JS),
    file!("views/overview.js", JS),
    file!("views/groups.js", JS),
    file!("views/group.js", JS),
    file!("views/users.js", JS),
    file!("views/user.js", JS),
    file!("views/products.js", JS),
    file!("views/product.js", JS),
    file!("views/redundant.js", JS),
    file!("views/rules.js", JS),
    file!("views/activity.js", JS),
    file!("views/settings.js", JS),
    file!("views/signin.js", JS),
];

const SHELL: &str = "index.html";

/// The ETag of each file, by its index in [`FILES`]: a digest of its bytes.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(_, bytes, _)| {
            let digest = Sha256::digest(bytes);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            // Hex digits and quotes only: always a valid header value.
            HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        })
        .collect()
});

fn find(path: &str) -> Option<usize> {
    FILES.iter().position(|(name, _, _)| *name == path)
}

/// The shell at every view URL, the assets under [`ASSETS_PATH`].
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for route in VIEW_ROUTES {
        router = router.route(route, get(shell));
    }
    router.route(&format!("{ASSETS_PATH}/{{*path}}"), get(asset))
}

async fn shell(headers: HeaderMap) -> Response {
    match find(SHELL) {
        Some(index) => serve(index, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn asset(Path(path): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    match find(&path) {
        Some(index) => serve(index, &headers),
        None => super::pages::not_found(uri).await,
    }
}

/// One file with its type, the console's security headers, and revalidation by ETag.
fn serve(index: usize, request: &HeaderMap) -> Response {
    let (_, bytes, content_type) = FILES[index];
    let etag = ETAGS[index].clone();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag.to_str().unwrap_or(""))
        });
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::ETAG, etag),
    ];
    if fresh {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, bytes).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// At most this many bytes of the console's own assets, gzip-compressed (console.md).
    const BUDGET: usize = 150 * 1024;

    fn files_in(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}{name}");
            if entry.file_type().expect("file type").is_dir() {
                files_in(&entry.path(), &format!("{path}/"), out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_file_of_the_folder_is_embedded_and_nothing_else() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console");
        let mut on_disk = Vec::new();
        files_in(&dir, "", &mut on_disk);
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _, _)| p.to_string()).collect();
        on_disk.sort();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "src/console and console::FILES must list the same files"
        );
        for (path, bytes, content_type) in FILES {
            assert!(!bytes.is_empty(), "{path} is empty");
            let expected = match path.rsplit('.').next() {
                Some("html") => HTML,
                Some("css") => CSS,
                Some("js") => JS,
                other => panic!("{path}: no content type for {other:?}"),
            };
            assert_eq!(*content_type, expected, "{path}");
        }
    }

    #[test]
    fn the_assets_fit_the_budget_compressed() {
        let mut total = 0;
        for (path, bytes, _) in FILES {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(bytes).expect("gzip");
            let size = gz.finish().expect("gzip").len();
            println!("{path}: {} bytes, {size} gzipped", bytes.len());
            total += size;
        }
        println!("total: {total} bytes gzipped (budget {BUDGET})");
        assert!(total <= BUDGET, "{total} bytes gzipped, over {BUDGET}");
    }

    #[test]
    fn the_shell_names_only_embedded_assets_and_no_other_host() {
        let html = std::str::from_utf8(FILES[find(SHELL).expect("shell")].1).expect("UTF-8");
        assert!(!html.contains("://"), "the shell names another host");
        assert!(
            !html.contains("<style"),
            "inline styles are refused by the CSP"
        );
        assert!(
            !html.contains(" style="),
            "inline styles are refused by the CSP"
        );
        for attr in ["src=\"", "href=\""] {
            for (at, _) in html.match_indices(attr) {
                let rest = &html[at + attr.len()..];
                let url = &rest[..rest.find('"').expect("closed attribute")];
                if url.starts_with('#') || url == "/" || url == "/favicon.svg" {
                    continue;
                }
                if let Some(path) = url.strip_prefix("/console/") {
                    assert!(find(path).is_some(), "the shell uses {url}, not embedded");
                }
            }
        }
        for (at, _) in html.match_indices("<script") {
            let tag = &html[at..at + html[at..].find('>').expect("closed tag")];
            assert!(tag.contains("src="), "inline script: {tag}");
        }
    }

    #[test]
    fn modules_import_only_embedded_modules() {
        for (path, bytes, _) in FILES.iter().filter(|(p, _, _)| p.ends_with(".js")) {
            let text = std::str::from_utf8(bytes).expect("UTF-8");
            assert!(!text.contains("innerHTML"), "{path} uses innerHTML");
            assert!(!text.contains("insertAdjacentHTML"), "{path}");
            assert!(!text.contains("document.write"), "{path}");
            assert!(!text.contains("eval("), "{path}");
            // `import … from "x";` on one line, or the `} from "x";` that ends a long one.
            let imports = text
                .lines()
                .filter(|l| l.starts_with("import ") || l.starts_with("} from "))
                .filter(|l| l.contains('"'));
            for line in imports {
                let from = line
                    .rsplit('"')
                    .nth(1)
                    .unwrap_or_else(|| panic!("{path}: {line}"));
                let base = path.rsplit_once('/').map_or("", |(dir, _)| dir);
                let resolved = resolve(base, from);
                assert!(
                    find(&resolved).is_some(),
                    "{path} imports {from} ({resolved}), not embedded"
                );
            }
        }
    }

    /// console.md: "every list is paged with the API's cursors and never loads a whole group".
    /// Every connection the console asks for names its page size (the lists one pages through
    /// also pass `after`; the overview's and the suggestions' are first pages with a total).
    #[test]
    fn every_list_the_console_asks_for_is_paged() {
        const CONNECTIONS: [&str; 7] = [
            "members",
            "membersWithLicenseErrors",
            "licensedUsers",
            "users",
            "groups",
            "auditEvents",
            "alerts",
        ];
        let mut asked = 0;
        for (path, bytes, _) in FILES.iter().filter(|(p, _, _)| p.ends_with(".js")) {
            let text = std::str::from_utf8(bytes).expect("UTF-8");
            for name in CONNECTIONS {
                for (at, _) in text.match_indices(&format!("{name}(")) {
                    let before = text[..at].chars().next_back().unwrap_or(' ');
                    if before.is_alphanumeric() || before == '_' || before == '.' {
                        continue;
                    }
                    let rest = &text[at + name.len()..];
                    let arguments = &rest[..rest.find(')').expect("closed arguments")];
                    assert!(
                        arguments.contains("first:"),
                        "{path}: `{name}{arguments})` does not name its page size"
                    );
                    asked += 1;
                }
            }
        }
        assert!(
            asked >= 13,
            "the scan found {asked} lists: it no longer reads the views"
        );
    }

    /// `from` relative to the folder `base` (both inside src/console).
    fn resolve(base: &str, from: &str) -> String {
        let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
        for part in from.split('/') {
            match part {
                "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts.join("/")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn views_answer_the_shell_and_assets_their_file_with_the_security_headers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let app = router::<()>().fallback(super::super::pages::not_found);
        tokio::spawn(async move { axum::serve(listener, app).await });

        let get = |path: &str, etag: Option<String>| {
            let url = format!("{base}{path}");
            tokio::task::spawn_blocking(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut request = agent.get(&url);
                if let Some(tag) = etag {
                    request = request.header("If-None-Match", tag);
                }
                let mut response = request.call().expect("answer");
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let head = (
                    response.status().as_u16(),
                    header("content-type"),
                    header("content-security-policy"),
                    header("x-content-type-options"),
                    header("etag"),
                );
                let body = response.body_mut().read_to_string().unwrap_or_default();
                (head, body)
            })
        };
        let shell = std::str::from_utf8(FILES[find(SHELL).expect("shell")].1).expect("UTF-8");
        for path in [
            "/",
            "/groups",
            "/groups/3",
            "/users",
            "/users/17",
            "/products",
            "/products/ENTERPRISEPACK",
            "/rules",
            "/activity",
            "/settings",
        ] {
            let ((status, content_type, csp, nosniff, _), body) =
                get(path, None).await.expect("request");
            assert_eq!(status, 200, "{path}");
            assert_eq!(content_type.as_deref(), Some(HTML), "{path}");
            let csp = csp.expect("CSP");
            assert!(csp.starts_with("default-src 'self';"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert_eq!(nosniff.as_deref(), Some("nosniff"));
            assert_eq!(body, shell, "{path}");
        }
        for (path, _, content_type) in FILES {
            let ((status, served_type, csp, _, etag), body) =
                get(&format!("/console/{path}"), None)
                    .await
                    .expect("request");
            assert_eq!(status, 200, "{path}");
            assert_eq!(served_type.as_deref(), Some(*content_type), "{path}");
            assert!(csp.is_some(), "{path}");
            assert!(!body.is_empty());
            let ((again, _, _, _, _), _) = get(&format!("/console/{path}"), etag)
                .await
                .expect("request");
            assert_eq!(again, 304, "{path}: an unchanged file is not sent again");
        }
        for path in [
            "/console/",
            "/console/nope.js",
            "/console/../Cargo.toml",
            "/console/views",
            "/groups/3/extra",
            "/activity/3",
        ] {
            let ((status, _, _, _, _), _) = get(path, None).await.expect("request");
            assert_eq!(status, 404, "{path}");
        }
    }
}
