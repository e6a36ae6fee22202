//! Who may talk to the server from a browser, checked on every route before anything runs
//! (graphql-api.md, "HTTP": Origin and Host).
//!
//! - `Origin`: a browser names the page that sent a request. A request from the server's own
//!   origin (the scheme and `Host` of the request) or from one given with `--allowed-origin` is
//!   let through; any other page is refused with 403, so that a site the admin merely visits
//!   cannot use the admin's access. Listed origins get CORS answers, preflight included, for
//!   dashboards served elsewhere.
//! - `Host`: without tokens, anyone who reaches the server may change data, which is why it
//!   listens on loopback only. A DNS name rebound to 127.0.0.1 would still reach it from a
//!   browser, under that name: so the tokenless server answers only requests addressed to a
//!   loopback name or address (`--insecure` lifts this with the loopback rule).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::graphql::error;
use super::negotiate::{self, Media};

/// An origin as browsers write it in `Origin`: `scheme://host[:port]`, lowercase, no path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedOrigin(String);

impl AllowedOrigin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for AllowedOrigin {
    type Err = String;

    /// `--allowed-origin`: `http://` or `https://`, a host and maybe a port, nothing else (a
    /// browser never sends a path, a query or a trailing slash in `Origin`).
    fn from_str(text: &str) -> Result<AllowedOrigin, String> {
        let lower = text.trim().to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return Err(format!(
                "`{text}` is not an origin: write it as a browser does, e.g. https://dashboard.example.com or http://127.0.0.1:3000"
            ));
        };
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "`{text}`: an origin starts with http:// or https://"
            ));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', ',']) {
            return Err(format!(
                "`{text}`: an origin is a scheme, a host and maybe a port, with no path, query or trailing slash"
            ));
        }
        let (host, port) = split_port(rest);
        if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(format!("`{text}`: the host or the port is not valid"));
        }
        // Browsers leave the scheme's default port out of `Origin`.
        let default = if scheme == "http" { "80" } else { "443" };
        let origin = match port {
            Some(p) if p != default => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        };
        Ok(AllowedOrigin(origin))
    }
}

/// `host[:port]` of an authority; an IPv6 literal keeps its brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(end) = authority.strip_prefix('[').and_then(|r| r.find(']')) {
        let host = &authority[..end + 2];
        let port = authority[end + 2..].strip_prefix(':');
        return (host, port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// Whether a `Host` names this machine's loopback: `localhost` (and names under it, which
/// browsers resolve to loopback themselves), 127.0.0.0/8, or `[::1]`.
fn is_loopback_host(host: &str) -> bool {
    let (name, _) = split_port(host);
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The rules of one server.
pub struct Guard {
    allowed: Vec<AllowedOrigin>,
    /// The tokenless server, not `--insecure`: only loopback names in `Host`.
    loopback_hosts_only: bool,
}

impl Guard {
    pub fn new(allowed: Vec<AllowedOrigin>, loopback_hosts_only: bool) -> Guard {
        Guard {
            allowed,
            loopback_hosts_only,
        }
    }

    /// CORS answers for the listed origins (the others never get this far); none when no
    /// origin is listed. Tokens travel in `Authorization`, never in cookies, so credentials
    /// are not allowed.
    pub fn cors(&self) -> Option<CorsLayer> {
        if self.allowed.is_empty() {
            return None;
        }
        let origins: Vec<HeaderValue> = self
            .allowed
            .iter()
            .filter_map(|o| HeaderValue::from_str(o.as_str()).ok())
            .collect();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
                .expose_headers([header::WWW_AUTHENTICATE])
                .max_age(Duration::from_secs(600)),
        )
    }

    /// Why a request must not run, if it must not.
    fn refusal(&self, headers: &HeaderMap) -> Option<String> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if self.loopback_hosts_only && !host.is_some_and(is_loopback_host) {
            return Some(match host {
                Some(host) => format!(
                    "this server has no tokens, so it answers only requests addressed to a loopback name (localhost, 127.0.0.1, [::1]), not `{host}`: configure tokens (--admin-token-file) to serve other names"
                ),
                None => "this server has no tokens, so it answers only requests with a loopback name (localhost, 127.0.0.1, [::1]) in `Host`".to_string(),
            });
        }
        let origin = headers.get(header::ORIGIN)?;
        let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
        let own = host.map(|h| format!("http://{}", h.to_ascii_lowercase()));
        let own = own.as_deref().map(|o| o.strip_suffix(":80").unwrap_or(o));
        if own == Some(origin.as_str()) || self.allowed.iter().any(|a| a.as_str() == origin) {
            return None;
        }
        Some(format!(
            "requests from pages at `{origin}` are refused: this server answers its own pages and the origins given with --allowed-origin"
        ))
    }
}

/// The middleware: refuses with 403 what [`Guard::refusal`] refuses, before the route runs.
pub async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.refusal(request.headers()) {
        None => next.run(request).await,
        Some(message) => {
            let media = negotiate::choose(request.headers()).unwrap_or(Media::Json);
            error(media, StatusCode::FORBIDDEN, "FORBIDDEN", &message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(name.clone(), HeaderValue::from_str(value).expect("header"));
        }
        h
    }

    #[test]
    fn allowed_origins_are_written_as_browsers_write_them() {
        let parsed = |t: &str| t.parse::<AllowedOrigin>().map(|o| o.0);
        assert_eq!(
            parsed("https://Dash.Example.com").as_deref(),
            Ok("https://dash.example.com")
        );
        assert_eq!(
            parsed("http://127.0.0.1:3000").as_deref(),
            Ok("http://127.0.0.1:3000")
        );
        assert_eq!(parsed("http://host:80").as_deref(), Ok("http://host"));
        assert_eq!(parsed("https://host:443").as_deref(), Ok("https://host"));
        assert_eq!(
            parsed("http://[::1]:8081").as_deref(),
            Ok("http://[::1]:8081")
        );
        for bad in [
            "dash.example.com",
            "ftp://host",
            "https://host/",
            "https://host/path",
            "https://",
            "https://host:99999",
            "https://user@host",
            "*",
            "null",
        ] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_names_are_told_from_others() {
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "console.localhost:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "0.0.0.0:8080",
            "[::]:8080",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!is_loopback_host(refused), "{refused}");
        }
    }

    #[test]
    fn origins_other_than_the_servers_own_and_the_listed_ones_are_refused() {
        let allowed = vec!["http://127.0.0.1:3000".parse().expect("origin")];
        let guard = Guard::new(allowed, true);
        let refused =
            |pairs: &[(header::HeaderName, &str)]| guard.refusal(&headers(pairs)).is_some();
        let host = (header::HOST, "127.0.0.1:8080");
        assert!(
            !refused(std::slice::from_ref(&host)),
            "no Origin: not a cross-site browser request"
        );
        assert!(!refused(&[
            host.clone(),
            (header::ORIGIN, "http://127.0.0.1:8080")
        ]));
        assert!(!refused(&[
            host.clone(),
            (header::ORIGIN, "http://127.0.0.1:3000")
        ]));
        assert!(refused(&[
            host.clone(),
            (header::ORIGIN, "http://127.0.0.1:3001")
        ]));
        assert!(refused(&[host.clone(), (header::ORIGIN, "null")]));
        assert!(refused(&[
            host.clone(),
            (header::ORIGIN, "https://127.0.0.1:8080")
        ]));
        assert!(!refused(&[
            (header::HOST, "localhost"),
            (header::ORIGIN, "http://localhost")
        ]));
        // A rebound name is its own origin: only the Host rule stops it.
        assert!(refused(&[
            (header::HOST, "evil.example:8080"),
            (header::ORIGIN, "http://evil.example:8080")
        ]));
        assert!(refused(&[]));
        let insecure = Guard::new(Vec::new(), false);
        assert!(
            insecure
                .refusal(&headers(&[(header::HOST, "evil.example:8080")]))
                .is_none()
        );
        assert!(
            insecure
                .refusal(&headers(&[
                    (header::HOST, "evil.example:8080"),
                    (header::ORIGIN, "http://other.example")
                ]))
                .is_some()
        );
    }
}
