//! The SCIM layer's one error type, and its one mapping to the wire: RFC 7644 §3.12's error
//! schema with `status` and, where one fits, `scimType`, as `application/scim+json`.
//!
//! | cause | status | `scimType` |
//! | --- | --- | --- |
//! | a filter that does not parse or is not supported | 400 | `invalidFilter` |
//! | a PATCH path that does not parse | 400 | `invalidPath` |
//! | a value filter in a path that selects nothing to remove | 400 | `noTarget` |
//! | a body that is not JSON, an unknown `op`, no `Operations` | 400 | `invalidSyntax` |
//! | a value of the wrong type or outside its rule (store `BadInput`) | 400 | `invalidValue` |
//! | a read-only attribute written (`id`) | 400 | `mutability` |
//! | more values in one request than `maxResults` | 400 | `tooMany` |
//! | a token that may not do this | 401 / 403 | — |
//! | no such resource (store `NotFound`) | 404 | — |
//! | a taken `userName` or group name (store `Conflict`) | 409 | `uniqueness` |
//! | a group that still has licenses (G4) | 409 | — |
//! | a body over the limit | 413 | — |
//! | the deletion limit of the hour reached | 429 | — |
//! | the store failed | 500 / 503 | — |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<&'static str>, detail: String) -> Self {
        ScimError {
            status,
            scim_type,
            detail,
        }
    }

    fn bad(scim_type: &'static str, detail: String) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn invalid_filter(detail: String) -> Self {
        ScimError::bad("invalidFilter", detail)
    }

    pub fn invalid_path(detail: String) -> Self {
        ScimError::bad("invalidPath", detail)
    }

    pub fn invalid_syntax(detail: String) -> Self {
        ScimError::bad("invalidSyntax", detail)
    }

    pub fn invalid_value(detail: String) -> Self {
        ScimError::bad("invalidValue", detail)
    }

    pub fn no_target(detail: String) -> Self {
        ScimError::bad("noTarget", detail)
    }

    pub fn mutability(detail: String) -> Self {
        ScimError::bad("mutability", detail)
    }

    pub fn too_many(detail: String) -> Self {
        ScimError::bad("tooMany", detail)
    }

    pub fn not_found(detail: String) -> Self {
        ScimError::new(StatusCode::NOT_FOUND, None, detail)
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        let detail = e.to_string();
        match e {
            StoreError::NotFound(_) => ScimError::not_found(detail),
            StoreError::BadInput(_) | StoreError::Direct(_) | StoreError::GroupLicense(_) => {
                ScimError::invalid_value(detail)
            }
            StoreError::Conflict(_) => {
                ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
            }
            StoreError::GroupHasLicenses(_) => ScimError::new(StatusCode::CONFLICT, None, detail),
            StoreError::Closed => ScimError::new(StatusCode::SERVICE_UNAVAILABLE, None, detail),
            StoreError::Sqlite(_) | StoreError::Corrupt(_) => {
                tracing::error!(error = %detail, "SCIM request failed in the store");
                ScimError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "the server could not complete the request".into(),
                )
            }
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        scim_json(self.status, &body)
    }
}

/// A SCIM answer: the body as `application/scim+json`.
pub fn scim_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}
