//! Which media type a GraphQL answer is written in, from the request's `Accept` (GraphQL over
//! HTTP, "Accept" and "Legacy watershed"): `application/graphql-response+json` to a client that
//! prefers it, `application/json` to one that asks for that, for `*/*`, or says nothing. The
//! choice decides the status codes too (graphql-api.md, "HTTP").

use axum::http::{HeaderMap, HeaderValue, header};

/// The two media types a GraphQL answer can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: request errors answer 400, without `data`.
    GraphqlResponse,
    /// `application/json`: request errors answer 200, as servers did before the new type.
    Json,
}

pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
pub const JSON: &str = "application/json";

impl Media {
    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        })
    }
}

/// How well a client's `Accept` takes one media type: the quality of the most specific range
/// that matches it (RFC 9110, 12.5.1), and whether it was named rather than matched by a
/// wildcard.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Taken {
    quality: f32,
    /// 3: named, 2: `application/*`, 1: `*/*`, 0: not matched.
    specificity: u8,
    /// Position of the range among the client's, to break ties in the client's order.
    position: usize,
}

fn taken(accept: &str, wanted: &str) -> Taken {
    let mut best = Taken::default();
    for (position, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut quality = 1.0f32;
        for parameter in parts {
            if let Some((key, value)) = parameter.split_once('=')
                && key.trim().eq_ignore_ascii_case("q")
            {
                quality = value.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
            }
        }
        let specificity = if name == wanted {
            3
        } else if name == "application/*" {
            2
        } else if name == "*/*" {
            1
        } else {
            continue;
        };
        if specificity > best.specificity {
            best = Taken {
                quality,
                specificity,
                position,
            };
        }
    }
    best
}

/// The media type of the answer, or `None` when the client takes neither (406).
pub fn choose(headers: &HeaderMap) -> Option<Media> {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return Some(Media::Json);
    }
    let accept = values.join(",");
    if accept.trim().is_empty() {
        return Some(Media::Json);
    }
    let graphql = taken(&accept, GRAPHQL_RESPONSE);
    let json = taken(&accept, JSON);
    if graphql.quality <= 0.0 && json.quality <= 0.0 {
        return None;
    }
    // The new type only when the client named it and likes it at least as much; a wildcard
    // alone means "anything", and the legacy type is what every client reads.
    let prefers_graphql = graphql.specificity == 3
        && (graphql.quality > json.quality
            || (graphql.quality == json.quality
                && (json.specificity < 3 || graphql.position < json.position)));
    Some(if prefers_graphql {
        Media::GraphqlResponse
    } else {
        Media::Json
    })
}

/// Whether a POST body's `Content-Type` is one `/graphql` runs: JSON, in UTF-8 (a charset
/// parameter, if any, must say so).
pub fn is_json_body(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if name != JSON && name != GRAPHQL_RESPONSE {
        return false;
    }
    parts.all(|parameter| match parameter.split_once('=') {
        Some((key, value)) if key.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        Some(_) => true,
        None => parameter.trim().is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn the_answer_type_follows_the_clients_preference() {
        let accept = |v: &str| choose(&with(header::ACCEPT, v));
        assert_eq!(choose(&HeaderMap::new()), Some(Media::Json));
        for (value, expected) in [
            ("application/json", Some(Media::Json)),
            ("*/*", Some(Media::Json)),
            ("application/*", Some(Media::Json)),
            (GRAPHQL_RESPONSE, Some(Media::GraphqlResponse)),
            (
                "application/graphql-response+json, application/json;q=0.9",
                Some(Media::GraphqlResponse),
            ),
            (
                "application/json, application/graphql-response+json",
                Some(Media::Json),
            ),
            (
                "application/graphql-response+json, application/json",
                Some(Media::GraphqlResponse),
            ),
            (
                "application/graphql-response+json;q=0.5, application/json",
                Some(Media::Json),
            ),
            (
                "application/graphql-response+json;q=0.5, */*",
                Some(Media::Json),
            ),
            (
                "text/html,application/xhtml+xml,*/*;q=0.8",
                Some(Media::Json),
            ),
            (
                "APPLICATION/GRAPHQL-RESPONSE+JSON",
                Some(Media::GraphqlResponse),
            ),
            ("text/html", None),
            ("application/json;q=0", None),
            (
                "*/*;q=0, application/graphql-response+json",
                Some(Media::GraphqlResponse),
            ),
            ("", Some(Media::Json)),
        ] {
            assert_eq!(accept(value), expected, "Accept: {value}");
        }
    }

    #[test]
    fn only_json_bodies_in_utf8_are_run() {
        let typed = |v: &str| is_json_body(&with(header::CONTENT_TYPE, v));
        assert!(!is_json_body(&HeaderMap::new()));
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=\"UTF-8\"",
            "application/graphql-response+json",
        ] {
            assert!(typed(ok), "{ok}");
        }
        for refused in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin1",
            "application/jsonp",
            "application/graphql",
            "",
        ] {
            assert!(!typed(refused), "{refused}");
        }
    }
}
