//! `/graphql` over HTTP, as graphql-api.md ("HTTP") and the GraphQL-over-HTTP specification
//! say: `POST` with a JSON body, `GET` with the query in the URL (never a mutation), the answer
//! in the media type the client prefers (`negotiate`), and a status that follows from the media
//! type and from how far the request got:
//!
//! | request | `application/graphql-response+json` | `application/json` |
//! | --- | --- | --- |
//! | body or parameters malformed | 400 | 400 |
//! | document does not parse or validate, variables do not coerce | 400, no `data` | 200, no `data` |
//! | a request limit | 400 | 400 |
//! | executed, with or without field errors | 200 | 200 |
//!
//! Every refusal is a GraphQL error with `extensions.code`, in the negotiated media type.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::negotiate::{self, Media};
use super::{HttpState, graphiql};
use crate::api::{self, Verdict};
use crate::server::auth::{Refusal, Role};

/// `POST /graphql`. Nothing about the request is read before its media types are checked: a
/// body a browser may send across origins without asking first (`text/plain`, a form) is
/// refused unread, so a page elsewhere cannot make the server run anything.
pub(super) async fn post(State(state): State<HttpState>, request: Request) -> Response {
    let Some(media) = negotiate::choose(request.headers()) else {
        return not_acceptable();
    };
    if !negotiate::is_json_body(request.headers()) {
        return error(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "POST /graphql takes a JSON body: send `Content-Type: application/json`",
        );
    }
    let (parts, body) = request.into_parts();
    let caller = match state.auth.caller(&parts.headers) {
        Ok(caller) if caller.role == Role::Provisioning => return provisioning_refused(media),
        Ok(caller) => caller,
        Err(refusal) => return unauthenticated(media, refusal),
    };
    let acting = api::Acting::new(caller.actor());
    // Buffered whole first: axum tells a body over the limit (413, also when it comes in
    // chunks with no length declared) from one that broke off.
    let bytes = match Bytes::from_request(Request::from_parts(parts, body), &state).await {
        Ok(bytes) => bytes,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "PAYLOAD_TOO_LARGE"
            } else {
                "BAD_REQUEST"
            };
            return error(media, status, code, &rejection.body_text());
        }
    };
    let request = match parse_body(&bytes) {
        Ok(request) => request,
        Err(message) => return bad_input(media, &message),
    };
    // Only queries that passed the checks below are cached, under their exact text and
    // operation: a hit has passed them already.
    let lookup = Lookup::new(&state, &request);
    if let Some(answer) = lookup.as_ref().and_then(|l| l.hit(&state)) {
        return json(media, StatusCode::OK, answer);
    }
    let shape = match api::limits::inspect(&request.query, request.operation_name.as_deref()) {
        Ok(shape) => shape,
        Err(refusal) => return refused(media, refusal),
    };
    if shape.mutation && caller.role == Role::Reader {
        const READER: &str = "a reader token may only run queries: mutations need an admin token";
        // H5: an authenticated refusal is in the history, once per mutation field asked for.
        if let Some(document) = &shape.document {
            api::record_refusal(
                &state.app.store,
                &acting,
                document,
                request.operation_name.as_deref(),
                "FORBIDDEN",
                READER,
            )
            .await;
        }
        return error(media, StatusCode::FORBIDDEN, "FORBIDDEN", READER);
    }
    run(&state, media, request, shape, lookup, acting).await
}

/// A provisioning token is for `/scim/v2` only (scim.md "Access").
pub(super) fn provisioning_refused(media: Media) -> Response {
    error(
        media,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        "a provisioning token may only use /scim/v2: GraphQL needs an admin or reader token",
    )
}

/// `GET /graphql`: GraphiQL for a browser that asks for HTML without a query; otherwise the
/// query in the URL. Mutations are refused over GET (405): a link must never change data.
pub(super) async fn get(
    State(state): State<HttpState>,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => {
            let media = negotiate::choose(&headers).unwrap_or(Media::Json);
            return bad_input(
                media,
                &format!("the URL's parameters: {}", rejection.body_text()),
            );
        }
    };
    // The GraphiQL page holds no data, so it is served to anyone; its queries carry the token.
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html && !params.contains_key("query") {
        return Html(graphiql::page(graphiql::ENDPOINT)).into_response();
    }
    let Some(media) = negotiate::choose(&headers) else {
        return not_acceptable();
    };
    let Some(query) = params.get("query") else {
        return bad_input(
            media,
            "GET /graphql needs a `query` parameter (or use POST)",
        );
    };
    // Any role may query; mutations are refused over GET below, whoever asks.
    let acting = match state.auth.caller(&headers) {
        Ok(caller) if caller.role == Role::Provisioning => return provisioning_refused(media),
        Ok(caller) => api::Acting::new(caller.actor()),
        Err(refusal) => return unauthenticated(media, refusal),
    };
    let mut request = async_graphql::Request::new(query.clone());
    if let Some(name) = params.get("operationName") {
        request = request.operation_name(name.clone());
    }
    match json_object(&params, "variables") {
        Ok(Some(value)) => request = request.variables(async_graphql::Variables::from_json(value)),
        Ok(None) => {}
        Err(message) => return bad_input(media, &message),
    }
    if let Err(message) = json_object(&params, "extensions") {
        return bad_input(media, &message);
    }
    let shape = match api::limits::inspect(&request.query, request.operation_name.as_deref()) {
        Ok(shape) => shape,
        Err(refusal) => return refused(media, refusal),
    };
    if shape.mutation {
        let mut response = error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "mutations are not allowed over GET: send them with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let lookup = Lookup::new(&state, &request);
    if let Some(answer) = lookup.as_ref().and_then(|l| l.hit(&state)) {
        return json(media, StatusCode::OK, answer);
    }
    run(&state, media, request, shape, lookup, acting).await
}

/// A URL parameter that holds a JSON object (or `null`, as good as absent).
fn json_object(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<serde_json::Value>, String> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Some(value)),
        Ok(serde_json::Value::Null) => Ok(None),
        Ok(_) => Err(format!("`{name}` must be a JSON object")),
        Err(e) => Err(format!("`{name}` is not JSON: {e}")),
    }
}

/// A request the limits refused (`api::limits::inspect`), as the client's answer.
fn refused(media: Media, refusal: api::limits::Refused) -> Response {
    error(
        media,
        StatusCode::BAD_REQUEST,
        refusal.code,
        &refusal.message,
    )
}

/// A POST body as GraphQL over HTTP defines it: a JSON object with a `query` string, and
/// optionally `operationName` (a string), `variables` and `extensions` (objects); `null` is as
/// good as absent. Anything else is the client's mistake, said in words.
fn parse_body(bytes: &[u8]) -> Result<async_graphql::Request, String> {
    use serde_json::Value;
    let body: Value = serde_json::from_slice(bytes).map_err(|e| {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            "the body is empty: send a JSON object with a `query` string".to_string()
        } else {
            format!("the body is not JSON: {e}")
        }
    })?;
    let Value::Object(mut body) = body else {
        return Err(
            "the body must be a JSON object with a `query` string (a batch of requests is not supported)"
                .into(),
        );
    };
    let query = match body.remove("query") {
        Some(Value::String(query)) => query,
        None | Some(Value::Null) => {
            return Err("the body has no `query`: send the GraphQL document as a string".into());
        }
        Some(_) => return Err("`query` must be a string holding the GraphQL document".into()),
    };
    let mut request = async_graphql::Request::new(query);
    match body.remove("operationName") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err("`operationName` must be a string".into()),
    }
    match body.remove("variables") {
        None | Some(Value::Null) => {}
        Some(value @ Value::Object(_)) => {
            request = request.variables(async_graphql::Variables::from_json(value));
        }
        Some(_) => return Err("`variables` must be a JSON object of the variables' values".into()),
    }
    match body.remove("extensions") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(_) => return Err("`extensions` must be a JSON object".into()),
    }
    Ok(request)
}

/// Where a query's answer is, or would be, in the response cache.
struct Lookup {
    generation: super::cache::Generation,
    key: super::cache::Key,
}

impl Lookup {
    /// `None` when the cache is off. The generations are read before anything is computed.
    fn new(state: &HttpState, request: &async_graphql::Request) -> Option<Lookup> {
        state.cache.enabled().then(|| Lookup {
            generation: (state.app.store.generation(), state.app.rules.generation()),
            key: super::cache::Key {
                query: request.query.clone(),
                operation: request.operation_name.clone(),
                variables: serde_json::to_string(&request.variables).unwrap_or_default(),
            },
        })
    }

    fn hit(&self, state: &HttpState) -> Option<Bytes> {
        state.cache.get(self.generation, &self.key)
    }
}

/// Runs an admitted request. Queries are cut at the request timeout; a mutation is not, as
/// its transaction may already be committed: cutting the wait would only hide the outcome.
/// A query's answer may come from, and go to, the response cache.
async fn run(
    state: &HttpState,
    media: Media,
    mut request: async_graphql::Request,
    shape: api::limits::Shape,
    lookup: Option<Lookup>,
    acting: std::sync::Arc<api::Acting>,
) -> Response {
    // Kept for putting the answer's fields in order, and for a second look at a request a
    // limit refused; async-graphql is given the parsed document instead of parsing it again.
    let operation = request.operation_name.clone();
    let variables = request.variables.clone();
    if let Some(document) = &shape.document {
        request.set_parsed_query(document.clone());
    }
    let request = api::prepare(request, &state.app).data(acting);
    let mut response = if shape.mutation {
        state.schema.execute(request).await
    } else {
        match tokio::time::timeout(state.request_timeout, state.schema.execute(request)).await {
            Ok(response) => response,
            Err(_) => {
                return error(
                    media,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "TIMEOUT",
                    &format!(
                        "the query took longer than {} ms and was stopped: ask for smaller pages or fewer fields",
                        state.request_timeout.as_millis()
                    ),
                );
            }
        }
    };
    let mut verdict = api::add_codes(&mut response);
    // async-graphql checks its limits before it reports what validation found: a request
    // that is wrong as well as large is told what is wrong. (A refused request has parsed.)
    if verdict == Verdict::Limited
        && let Some(document) = &shape.document
    {
        let errors = api::limits::validation_errors(
            &state.validator,
            document.clone(),
            operation.clone(),
            variables.clone(),
        )
        .await;
        if !errors.is_empty() {
            response = async_graphql::Response::from_errors(errors);
            verdict = api::add_codes(&mut response);
        }
    }
    match verdict {
        Verdict::Executed => {}
        Verdict::Invalid => {
            let status = match media {
                Media::GraphqlResponse => StatusCode::BAD_REQUEST,
                Media::Json => StatusCode::OK,
            };
            return errors_only(media, status, &response);
        }
        Verdict::Limited => return errors_only(media, StatusCode::BAD_REQUEST, &response),
    }
    if let Some(document) = &shape.document {
        api::order::restore(
            &mut response.data,
            document,
            operation.as_deref(),
            &variables,
        );
    }
    let bytes = match serde_json::to_vec(&response) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => {
            tracing::error!(error = %e, "serializing an answer");
            return error(
                media,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "the answer could not be written",
            );
        }
    };
    if let Some(Lookup { generation, key }) = lookup
        && !shape.mutation
        && response.is_ok()
    {
        state.cache.put(generation, key, bytes.clone());
    }
    json(media, StatusCode::OK, bytes)
}

/// An answer that never began executing: its errors, and no `data` entry (GraphQL spec,
/// "Response Format": an error raised before execution leaves `data` out).
fn errors_only(media: Media, status: StatusCode, response: &async_graphql::Response) -> Response {
    #[derive(serde::Serialize)]
    struct ErrorsOnly<'a> {
        errors: &'a [async_graphql::ServerError],
    }
    written(
        media,
        status,
        &ErrorsOnly {
            errors: &response.errors,
        },
    )
}

/// A body of ours, with its members in the order the structure declares them (a
/// `serde_json::Value` would sort them: `extensions` before `message`).
fn written(media: Media, status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json(media, status, Bytes::from(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "serializing an answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A GraphQL answer already serialized.
fn json(media: Media, status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, media.content_type())], body).into_response()
}

/// A refusal as a GraphQL error with its code.
pub(crate) fn error(media: Media, status: StatusCode, code: &str, message: &str) -> Response {
    #[derive(serde::Serialize)]
    struct Code<'a> {
        code: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Error<'a> {
        message: &'a str,
        extensions: Code<'a>,
    }
    #[derive(serde::Serialize)]
    struct Errors<'a> {
        errors: [Error<'a>; 1],
    }
    let body = Errors {
        errors: [Error {
            message,
            extensions: Code { code },
        }],
    };
    written(media, status, &body)
}

fn bad_input(media: Media, message: &str) -> Response {
    error(media, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", message)
}

/// The client takes neither JSON type: said in JSON anyway, the one format left to explain.
fn not_acceptable() -> Response {
    error(
        Media::Json,
        StatusCode::NOT_ACCEPTABLE,
        "NOT_ACCEPTABLE",
        "answers are JSON: accept application/graphql-response+json or application/json",
    )
}

pub(super) fn unauthenticated(media: Media, refusal: Refusal) -> Response {
    let (message, challenge) = match refusal {
        Refusal::Missing => (
            "this server needs a token: send `Authorization: Bearer <token>`",
            "Bearer realm=\"group-licensing\"",
        ),
        Refusal::Invalid => (
            "the token is not valid",
            "Bearer realm=\"group-licensing\", error=\"invalid_token\"",
        ),
    };
    let mut response = error(media, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// `GET /graphql`: a WebSocket upgrade is a subscription connection; anything else, a query
/// in the URL.
pub(super) async fn get_or_subscribe(State(state): State<HttpState>, request: Request) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return subscribe(state, request).await;
    }
    let params = Query::<HashMap<String, String>>::try_from_uri(request.uri());
    let headers = request.headers().clone();
    get(State(state), headers, params).await
}

/// The WebSocket protocol of subscriptions (graphql-api.md).
const TRANSPORT_WS: &str = "graphql-transport-ws";

/// N4: a `graphql-transport-ws` connection. The token comes in `connection_init`'s payload
/// (`{"Authorization": "Bearer …"}`); admins and readers may subscribe; the connection's
/// streams end when the token is no longer in force.
async fn subscribe(state: HttpState, request: Request) -> Response {
    use axum::extract::FromRequestParts;
    use axum::extract::ws::WebSocketUpgrade;
    let (mut parts, _) = request.into_parts();
    let offered = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == TRANSPORT_WS));
    if !offered {
        return error(
            Media::Json,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "subscriptions use the graphql-transport-ws protocol: offer it in Sec-WebSocket-Protocol",
        );
    }
    // Only the one protocol is spoken, whatever else the client offers.
    parts.headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(TRANSPORT_WS),
    );
    let protocol =
        match async_graphql_axum::GraphQLProtocol::from_request_parts(&mut parts, &state).await {
            Ok(p) => p,
            Err(status) => return status.into_response(),
        };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let executor = api::live::SubscriptionsOnly(state.schema.clone());
    let (app, auth) = (state.app.clone(), state.auth.clone());
    upgrade
        .protocols([TRANSPORT_WS])
        .on_upgrade(move |socket| {
            async_graphql_axum::GraphQLWebSocket::new(socket, executor, protocol)
                .on_connection_init(move |payload| async move {
                    let authorization = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                    let caller = auth.caller_of(authorization.as_deref()).map_err(|_| {
                        async_graphql::Error::new(
                            "connection_init needs the payload {\"Authorization\": \"Bearer <token>\"} with an admin or reader token",
                        )
                    })?;
                    if caller.role == Role::Provisioning {
                        return Err(async_graphql::Error::new(
                            "a provisioning token may only use SCIM (/scim/v2)",
                        ));
                    }
                    let role = caller.role;
                    let check = auth.clone();
                    let liveness = api::live::Liveness {
                        changes: auth.changes(),
                        valid: std::sync::Arc::new(move || {
                            check
                                .caller_of(authorization.as_deref())
                                .is_ok_and(|c| c.role == role)
                        }),
                    };
                    Ok(api::live::connection_data(
                        &app,
                        api::Acting::new(caller.actor()),
                        liveness,
                    ))
                })
                .serve()
        })
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_member_by_member() {
        let ok = parse_body(
            br#"{"query":"{ a }","operationName":null,"variables":{"x":1},"extensions":{}}"#,
        )
        .expect("accepted");
        assert_eq!(ok.query, "{ a }");
        for (body, says) in [
            (&b""[..], "empty"),
            (b"  \n", "empty"),
            (b"{\"query\": ", "not JSON"),
            (b"[{\"query\":\"{ a }\"}]", "JSON object"),
            (b"\"{ a }\"", "JSON object"),
            (b"{}", "no `query`"),
            (b"{\"query\": null}", "no `query`"),
            (b"{\"query\": 7}", "`query` must be a string"),
            (
                b"{\"query\": \"{ a }\", \"operationName\": 1}",
                "`operationName`",
            ),
            (
                b"{\"query\": \"{ a }\", \"variables\": \"{}\"}",
                "`variables`",
            ),
            (b"{\"query\": \"{ a }\", \"variables\": [1]}", "`variables`"),
            (
                b"{\"query\": \"{ a }\", \"extensions\": false}",
                "`extensions`",
            ),
        ] {
            let message = parse_body(body).err().unwrap_or_default();
            assert!(
                message.contains(says),
                "{:?}: {message:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
