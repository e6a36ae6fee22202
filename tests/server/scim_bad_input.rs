//! Every SCIM route with bad input: wrong types, bad filters, bad paths and ids, a duplicate
//! `userName` or group name, oversized bodies and lists. One table; each row names the method
//! and route it spoils and expects the status and `scimType` of `src/scim/error.rs`'s table,
//! in RFC 7644's error schema. Before and after every row the tenant is read through GraphQL and
//! SCIM: nothing may change.
//!
//! Unknown attributes are not errors: scim.md says they are ignored (not kept, not returned),
//! which `scim.rs` checks (`title`, `phoneNumbers`, `name.givenName`, the enterprise extension).
//!
//! A row per route and method is enforced: a route added to `group_licensing::scim::ROUTES`
//! without a row fails `every_scim_route_has_a_row`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::{Server, license, scenario_rules, str_of};
use crate::scim::{EXT, expect, patch_op, scim_group, scim_raw, scim_user};

const E3: &str = "ENTERPRISEPACK";
const SCIM_JSON: &str = "application/scim+json";

struct Row {
    method: &'static str,
    /// The method sent: `method` but for the rows of [`Row::method_override`].
    sent: &'static str,
    /// As in `ROUTES`: `/Users/{id}`.
    route: &'static str,
    label: &'static str,
    path: String,
    body: Option<String>,
    content_type: &'static str,
    status: u16,
    scim_type: Option<&'static str>,
}

struct Tenant {
    ann: String,
    bob: String,
    sales: String,
    licensed: String,
}

fn tenant(s: &Server) -> Tenant {
    s.set_prepaid(E3, 5);
    let ann = scim_user(s, "ann@contoso.com");
    let bob = scim_user(s, "bob@contoso.com");
    let sales = scim_group(s, "Sales", &[&ann]);
    let licensed = scim_group(s, "Licensed", &[&bob]);
    s.assign_group(&licensed, json!([license(E3, &[])]), &[]);
    s.wait_complete(&licensed);
    Tenant {
        ann,
        bob,
        sales,
        licensed,
    }
}

fn row(
    method: &'static str,
    route: &'static str,
    label: &'static str,
    path: String,
    body: Option<Value>,
    status: u16,
    scim_type: Option<&'static str>,
) -> Row {
    Row {
        method,
        sent: method,
        route,
        label,
        path,
        body: body.map(|b| b.to_string()),
        content_type: SCIM_JSON,
        status,
        scim_type,
    }
}

fn filter(text: &str) -> String {
    text.replace('%', "%25")
        .replace(' ', "%20")
        .replace('"', "%22")
        .replace('[', "%5B")
        .replace(']', "%5D")
}

const MAX_LIST: usize = 1000;
/// Over the server's 1 MiB body limit.
const OVER_BODY: usize = 1024 * 1024 + 1;

fn rows(t: &Tenant) -> Vec<Row> {
    let user = |id: &str| format!("/Users/{id}");
    let group = |id: &str| format!("/Groups/{id}");
    let ann = user(&t.ann);
    let sales = group(&t.sales);
    let inval = Some("invalidValue");
    let many_members: Vec<Value> = (0..=MAX_LIST).map(|_| json!({ "value": t.bob })).collect();
    let many_emails: Vec<Value> = (0..=MAX_LIST)
        .map(|n| json!({ "value": format!("e{n}@contoso.com") }))
        .collect();
    let many_ops: Vec<Value> = (0..=MAX_LIST)
        .map(|_| json!({ "op": "replace", "path": "displayName", "value": "X" }))
        .collect();
    let mut rows = vec![
        // Discovery.
        row(
            "GET",
            "/ResourceTypes/{id}",
            "unknown resource type",
            "/ResourceTypes/Device".into(),
            None,
            404,
            None,
        ),
        row(
            "GET",
            "/Schemas/{id}",
            "unknown schema",
            "/Schemas/urn:nope".into(),
            None,
            404,
            None,
        ),
        row(
            "GET",
            "/ServiceProviderConfig",
            "a wrong method",
            "/ServiceProviderConfig".into(),
            None,
            405,
            None,
        )
        .method_override("DELETE"),
        row(
            "GET",
            "/ResourceTypes",
            "a wrong method",
            "/ResourceTypes".into(),
            Some(json!({})),
            405,
            None,
        )
        .method_override("POST"),
        row(
            "GET",
            "/Schemas",
            "a wrong method",
            "/Schemas".into(),
            Some(json!({})),
            405,
            None,
        )
        .method_override("PUT"),
        row(
            "POST",
            "/Bulk",
            "bulk is not supported",
            "/Bulk".into(),
            Some(json!({ "Operations": [] })),
            501,
            None,
        ),
        row(
            "POST",
            "/.search",
            "searching everything is not supported",
            "/.search".into(),
            Some(json!({})),
            501,
            None,
        ),
        // GET /Users: filters and pages.
        row(
            "GET",
            "/Users",
            "a filter that does not parse",
            format!("/Users?filter={}", filter(r#"userName eq "open"#)),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Users",
            "an unknown operator",
            format!("/Users?filter={}", filter(r#"userName equals "a""#)),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Users",
            "sw is not supported",
            format!("/Users?filter={}", filter(r#"userName sw "a""#)),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Users",
            "or is not supported",
            format!(
                "/Users?filter={}",
                filter(r#"userName eq "a" or displayName eq "b""#)
            ),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Users",
            "an attribute not filterable",
            format!("/Users?filter={}", filter(r#"title eq "x""#)),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Users",
            "a value of the wrong type",
            format!("/Users?filter={}", filter("userName eq 7")),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Users",
            "a filter over 4 KiB",
            format!(
                "/Users?filter={}",
                filter(&format!(r#"userName eq "{}""#, "a".repeat(5000)))
            ),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Users",
            "parentheses nested 2,000 deep",
            format!(
                "/Users?filter={}",
                filter(&format!(
                    "{}userName eq \"a\"{}",
                    "(".repeat(2000),
                    ")".repeat(2000)
                ))
            ),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Users",
            "startIndex not a number",
            "/Users?startIndex=first".into(),
            None,
            400,
            inval,
        ),
        row(
            "GET",
            "/Users",
            "count not a number",
            "/Users?count=many".into(),
            None,
            400,
            inval,
        ),
        row(
            "GET",
            "/Users",
            "attributes with a filter",
            "/Users?attributes=emails%5Btype%20eq%20%22work%22%5D".into(),
            None,
            400,
            inval,
        ),
        // POST /Users.
        row(
            "POST",
            "/Users",
            "no userName",
            "/Users".into(),
            Some(json!({ "displayName": "X" })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "userName a number",
            "/Users".into(),
            Some(json!({ "userName": 7 })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "userName empty",
            "/Users".into(),
            Some(json!({ "userName": "  " })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "userName with a control character",
            "/Users".into(),
            Some(json!({ "userName": "a\u{1}b" })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "userName over 256 characters",
            "/Users".into(),
            Some(json!({ "userName": "n".repeat(257) })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "a duplicate userName in another case",
            "/Users".into(),
            Some(json!({ "userName": "ANN@contoso.com" })),
            409,
            Some("uniqueness"),
        ),
        row(
            "POST",
            "/Users",
            "active not a boolean",
            "/Users".into(),
            Some(json!({ "userName": "x@contoso.com", "active": "maybe" })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "displayName an object",
            "/Users".into(),
            Some(json!({ "userName": "x@contoso.com", "displayName": {} })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "emails not objects",
            "/Users".into(),
            Some(json!({ "userName": "x@contoso.com", "emails": ["x@contoso.com"] })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "an email that is no address",
            "/Users".into(),
            Some(json!({ "userName": "x@contoso.com", "emails": [{ "value": "nobody" }] })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "two primary emails",
            "/Users".into(),
            Some(
                json!({ "userName": "x@contoso.com", "emails": [{ "value": "a@contoso.com", "primary": true }, { "value": "b@contoso.com", "primary": "True" }] }),
            ),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "a country that is not ISO 3166-1",
            "/Users".into(),
            Some(
                json!({ "userName": "x@contoso.com", "addresses": [{ "type": "work", "country": "USA" }] }),
            ),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "an extension usageLocation in lower case",
            "/Users".into(),
            Some(json!({ "userName": "x@contoso.com", EXT: { "usageLocation": "us" } })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "the extension not an object",
            "/Users".into(),
            Some(json!({ "userName": "x@contoso.com", EXT: "US" })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Users",
            "more emails than maxResults",
            "/Users".into(),
            Some(json!({ "userName": "x@contoso.com", "emails": many_emails })),
            400,
            Some("tooMany"),
        ),
        row(
            "POST",
            "/Users",
            "a body that is an array",
            "/Users".into(),
            Some(json!([{ "userName": "x@contoso.com" }])),
            400,
            inval,
        ),
        Row {
            body: Some("{\"userName\": ".into()),
            ..row(
                "POST",
                "/Users",
                "a body that is not JSON",
                "/Users".into(),
                None,
                400,
                Some("invalidSyntax"),
            )
        },
        Row {
            body: Some(json!({ "userName": "x@contoso.com" }).to_string()),
            content_type: "text/plain",
            ..row(
                "POST",
                "/Users",
                "a body that is not JSON by its type",
                "/Users".into(),
                None,
                415,
                None,
            )
        },
        Row {
            body: Some(format!(
                "{{\"userName\": \"x@contoso.com\", \"title\": \"{}\"}}",
                "t".repeat(OVER_BODY)
            )),
            ..row(
                "POST",
                "/Users",
                "a body over the limit",
                "/Users".into(),
                None,
                413,
                None,
            )
        },
        // GET, PUT, PATCH, DELETE /Users/{id}: ids.
        row(
            "GET",
            "/Users/{id}",
            "an id that is no number",
            "/Users/abc".into(),
            None,
            404,
            None,
        ),
        row(
            "GET",
            "/Users/{id}",
            "id 0",
            "/Users/0".into(),
            None,
            404,
            None,
        ),
        row(
            "GET",
            "/Users/{id}",
            "a padded id",
            format!("/Users/0{}", t.ann),
            None,
            404,
            None,
        ),
        row(
            "GET",
            "/Users/{id}",
            "an unknown id",
            "/Users/999999".into(),
            None,
            404,
            None,
        ),
        row(
            "GET",
            "/Users/{id}",
            "excludedAttributes that do not parse",
            format!("{ann}?excludedAttributes=emails%5B"),
            None,
            400,
            Some("invalidPath"),
        ),
        row(
            "PUT",
            "/Users/{id}",
            "an unknown id",
            "/Users/999999".into(),
            Some(json!({ "userName": "z@contoso.com" })),
            404,
            None,
        ),
        row(
            "PUT",
            "/Users/{id}",
            "the userName of another user",
            ann.clone(),
            Some(json!({ "userName": "Bob@contoso.com" })),
            409,
            Some("uniqueness"),
        ),
        row(
            "PUT",
            "/Users/{id}",
            "no userName",
            ann.clone(),
            Some(json!({ "displayName": "Ann" })),
            400,
            inval,
        ),
        row(
            "PUT",
            "/Users/{id}",
            "emails an object of the wrong shape",
            ann.clone(),
            Some(json!({ "userName": "ann@contoso.com", "emails": { "value": 7 } })),
            400,
            inval,
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "an unknown id",
            "/Users/999999".into(),
            Some(patch_op(
                json!([{ "op": "replace", "path": "active", "value": false }]),
            )),
            404,
            None,
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "no Operations",
            ann.clone(),
            Some(json!({ "schemas": [crate::scim::PATCH_OP] })),
            400,
            Some("invalidSyntax"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "an unknown op",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "move", "path": "active", "value": false }]),
            )),
            400,
            Some("invalidSyntax"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "remove without a path",
            ann.clone(),
            Some(patch_op(json!([{ "op": "remove" }]))),
            400,
            Some("noTarget"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "a path that does not parse",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "replace", "path": "emails[type eq", "value": "x" }]),
            )),
            400,
            Some("invalidPath"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "a path that is not a string",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "replace", "path": 7, "value": "x" }]),
            )),
            400,
            Some("invalidPath"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "the id",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "replace", "path": "id", "value": "5" }]),
            )),
            400,
            Some("mutability"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "active not a boolean",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "Replace", "path": "active", "value": "Nope" }]),
            )),
            400,
            inval,
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "replace without a value",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "replace", "path": "displayName" }]),
            )),
            400,
            inval,
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "a usage location not ISO",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "replace", "path": "addresses[type eq \"work\"].country", "value": "ZZ" }]),
            )),
            400,
            inval,
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "remove userName",
            ann.clone(),
            Some(patch_op(json!([{ "op": "remove", "path": "userName" }]))),
            400,
            inval,
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "the userName of another user",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "replace", "path": "userName", "value": "bob@CONTOSO.com" }]),
            )),
            409,
            Some("uniqueness"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "a value filter with gt",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "remove", "path": "emails[value gt \"a\"]" }]),
            )),
            400,
            Some("invalidFilter"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "removing an email that is not there",
            ann.clone(),
            Some(patch_op(
                json!([{ "op": "remove", "path": "emails[value eq \"none@contoso.com\"]" }]),
            )),
            400,
            Some("noTarget"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "more operations than maxResults",
            ann.clone(),
            Some(patch_op(Value::Array(many_ops.clone()))),
            400,
            Some("tooMany"),
        ),
        row(
            "PATCH",
            "/Users/{id}",
            "a good change after a bad one",
            ann.clone(),
            Some(patch_op(json!([
                { "op": "replace", "path": "displayName", "value": "Changed" },
                { "op": "replace", "path": "active", "value": 3 }
            ]))),
            400,
            inval,
        ),
        row(
            "DELETE",
            "/Users/{id}",
            "an unknown id",
            "/Users/999999".into(),
            None,
            404,
            None,
        ),
        row(
            "DELETE",
            "/Users/{id}",
            "an id that is no number",
            "/Users/-1".into(),
            None,
            404,
            None,
        ),
        // Groups.
        row(
            "GET",
            "/Groups",
            "a filter on userName",
            format!("/Groups?filter={}", filter(r#"userName eq "a""#)),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "GET",
            "/Groups",
            "a filter on members",
            format!("/Groups?filter={}", filter(r#"members[value eq "1"]"#)),
            None,
            400,
            Some("invalidFilter"),
        ),
        row(
            "POST",
            "/Groups",
            "no displayName",
            "/Groups".into(),
            Some(json!({ "members": [] })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Groups",
            "a duplicate name in another case",
            "/Groups".into(),
            Some(json!({ "displayName": "sales" })),
            409,
            Some("uniqueness"),
        ),
        row(
            "POST",
            "/Groups",
            "an unknown member",
            "/Groups".into(),
            Some(json!({ "displayName": "New", "members": [{ "value": "999999" }] })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Groups",
            "a member value that is a number",
            "/Groups".into(),
            Some(json!({ "displayName": "New", "members": [{ "value": 1 }] })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Groups",
            "a member without value",
            "/Groups".into(),
            Some(json!({ "displayName": "New", "members": [{ "display": "Ann" }] })),
            400,
            inval,
        ),
        row(
            "POST",
            "/Groups",
            "more members than maxResults",
            "/Groups".into(),
            Some(json!({ "displayName": "New", "members": many_members })),
            400,
            Some("tooMany"),
        ),
        row(
            "GET",
            "/Groups/{id}",
            "an unknown id",
            "/Groups/999999".into(),
            None,
            404,
            None,
        ),
        row(
            "PUT",
            "/Groups/{id}",
            "an unknown id",
            "/Groups/999999".into(),
            Some(json!({ "displayName": "X" })),
            404,
            None,
        ),
        row(
            "PUT",
            "/Groups/{id}",
            "the name of another group",
            sales.clone(),
            Some(json!({ "displayName": "LICENSED" })),
            409,
            Some("uniqueness"),
        ),
        row(
            "PATCH",
            "/Groups/{id}",
            "an unknown id",
            "/Groups/999999".into(),
            Some(patch_op(
                json!([{ "op": "add", "path": "members", "value": [{ "value": t.bob }] }]),
            )),
            404,
            None,
        ),
        row(
            "PATCH",
            "/Groups/{id}",
            "an unknown member",
            sales.clone(),
            Some(patch_op(
                json!([{ "op": "Add", "path": "members", "value": [{ "value": "999999" }] }]),
            )),
            400,
            inval,
        ),
        row(
            "PATCH",
            "/Groups/{id}",
            "add with a member filter",
            sales.clone(),
            Some(patch_op(
                json!([{ "op": "add", "path": format!("members[value eq \"{}\"]", t.bob), "value": [{ "value": t.bob }] }]),
            )),
            400,
            Some("invalidPath"),
        ),
        row(
            "PATCH",
            "/Groups/{id}",
            "members selected by display",
            sales.clone(),
            Some(patch_op(
                json!([{ "op": "remove", "path": "members[display eq \"Ann\"]" }]),
            )),
            400,
            Some("invalidFilter"),
        ),
        row(
            "PATCH",
            "/Groups/{id}",
            "remove displayName",
            sales.clone(),
            Some(patch_op(json!([{ "op": "remove", "path": "displayName" }]))),
            400,
            inval,
        ),
        row(
            "PATCH",
            "/Groups/{id}",
            "rename to another group's name",
            sales.clone(),
            Some(patch_op(
                json!([{ "op": "replace", "path": "displayName", "value": "Licensed" }]),
            )),
            409,
            Some("uniqueness"),
        ),
        row(
            "PATCH",
            "/Groups/{id}",
            "more members than maxResults",
            sales.clone(),
            Some(patch_op(
                json!([{ "op": "add", "path": "members", "value": many_members }]),
            )),
            400,
            Some("tooMany"),
        ),
        row(
            "PATCH",
            "/Groups/{id}",
            "members added, then an unknown one",
            sales.clone(),
            Some(patch_op(json!([
                { "op": "add", "path": "members", "value": [{ "value": t.bob }] },
                { "op": "add", "path": "members", "value": [{ "value": "999999" }] }
            ]))),
            400,
            inval,
        ),
        row(
            "DELETE",
            "/Groups/{id}",
            "a group with licenses (G4)",
            group(&t.licensed),
            None,
            409,
            None,
        ),
        row(
            "DELETE",
            "/Groups/{id}",
            "an unknown id",
            "/Groups/999999".into(),
            None,
            404,
            None,
        ),
    ];
    rows.sort_by_key(|r| (r.route, r.method));
    rows
}

impl Row {
    /// A row that covers its route by sending another method: a discovery endpoint takes no
    /// input to spoil.
    fn method_override(self, sent: &'static str) -> Row {
        Row {
            sent,
            body: self.body.or(Some("{}".into())),
            ..self
        }
    }
}

/// The tenant as GraphQL and SCIM show it.
fn observable(s: &Server) -> Value {
    json!({
        "graphql": s.snapshot(),
        "users": expect(s, "GET", "/Users", None, 200),
        "groups": expect(s, "GET", "/Groups", None, 200),
    })
}

fn check(s: &Server, before: &mut Value, r: &Row) -> Option<String> {
    let method = r.sent;
    let label = format!(
        "{method} {} ({}): {}",
        r.route,
        r.path.chars().take(80).collect::<String>(),
        r.label
    );
    let (status, body) = scim_raw(s, None, method, &r.path, r.body.as_deref(), r.content_type);
    let mut wrong = Vec::new();
    if status != r.status {
        wrong.push(format!(
            "status {status}, expected {}: {:.300}",
            r.status,
            body.to_string()
        ));
    }
    if body["schemas"][0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
        wrong.push(format!("not the error schema: {:.300}", body.to_string()));
    }
    if body["status"] != status.to_string().as_str() {
        wrong.push(format!("`status` {} in the body", body["status"]));
    }
    if body["scimType"].as_str() != r.scim_type {
        wrong.push(format!(
            "scimType {}, expected {:?}",
            body["scimType"], r.scim_type
        ));
    }
    if body["detail"].as_str().is_none_or(|d| d.trim().is_empty()) {
        wrong.push("no detail".into());
    }
    s.wait_idle();
    let after = observable(s);
    if after != *before {
        wrong.push("the tenant changed".into());
        *before = after;
    }
    (!wrong.is_empty()).then(|| format!("{label}: {}", wrong.join("; ")))
}

#[test]
fn every_scim_route_has_a_row() {
    let t = Tenant {
        ann: "1".into(),
        bob: "2".into(),
        sales: "1".into(),
        licensed: "2".into(),
    };
    let covered: BTreeSet<(&str, &str)> = rows(&t).iter().map(|r| (r.method, r.route)).collect();
    let routes: BTreeSet<(&str, &str)> = group_licensing::scim::ROUTES.iter().copied().collect();
    let missing: Vec<_> = routes.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "SCIM routes without a bad-input row: {missing:?}"
    );
    let unknown: Vec<_> = covered.difference(&routes).collect();
    assert!(
        unknown.is_empty(),
        "rows for routes that do not exist: {unknown:?}"
    );
}

#[test]
fn every_scim_route_refuses_bad_input_with_its_status_and_changes_nothing() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let s = Server::start(&dir.path().join("t.db"), &scenario_rules());
    let t = tenant(&s);
    let mut before = observable(&s);
    let table = rows(&t);
    let failures: Vec<String> = table
        .iter()
        .filter_map(|r| check(&s, &mut before, r))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
    eprintln!(
        "SCIM bad input: {} rows refused, tenant unchanged",
        table.len()
    );
    // The same requests with good input succeed: the rows failed for what they spoil.
    let new = expect(
        &s,
        "POST",
        "/Users",
        Some(
            &json!({ "userName": "n".repeat(256), "emails": (0..MAX_LIST).map(|n| json!({ "value": format!("e{n}@contoso.com") })).collect::<Vec<_>>() }),
        ),
        201,
    );
    let members: Vec<Value> = vec![json!({ "value": t.bob }); MAX_LIST];
    let (status, _) = scim_raw(
        &s,
        None,
        "PATCH",
        &format!("/Groups/{}", t.sales),
        Some(&patch_op(json!([{ "op": "add", "path": "members", "value": members }])).to_string()),
        SCIM_JSON,
    );
    assert_eq!(status, 204);
    expect(
        &s,
        "DELETE",
        &format!("/Users/{}", str_of(&new["id"])),
        None,
        204,
    );
    expect(&s, "DELETE", &format!("/Users/{}", t.ann), None, 204);
}
