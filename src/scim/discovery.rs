//! Discovery (RFC 7644 §4): `ServiceProviderConfig`, `ResourceTypes` and `Schemas`, telling the
//! truth (scim.md): PATCH and filters supported (`maxResults` 1000), no bulk, sorting, ETags or
//! password change; the schemas list only the attributes the server keeps.

use serde_json::{Value, json};

use super::resource::{EXTENSION_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use crate::rules::Country;
use crate::store::ops::MAX_LIST;

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_LIST },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": false },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A provisioning or admin token of the server's token files, as `Authorization: Bearer TOKEN`",
            "primary": true,
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig") },
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A user of the directory",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{ "schema": EXTENSION_SCHEMA, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A group: licenses on it go to its members",
            "schema": GROUP_SCHEMA,
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}

/// One attribute's definition (RFC 7643 §7).
fn attribute(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    })
}

fn countries() -> Value {
    Value::Array(Country::all().map(|c| json!(c.code())).collect())
}

pub fn schemas(base: &str) -> Vec<Value> {
    let mut user_name = attribute(
        "userName",
        "string",
        "The user's sign-in name (userPrincipalName): 1 to 256 characters, unique regardless of case",
    );
    user_name["required"] = json!(true);
    user_name["uniqueness"] = json!("server");
    // Every user has both: a request without them gets the userName and true.
    let mut display_name = attribute(
        "displayName",
        "string",
        "The user's name for people; when not given, name.formatted, else the userName",
    );
    display_name["required"] = json!(true);
    let mut active = attribute(
        "active",
        "boolean",
        "Whether the account is enabled (accountEnabled), true when not given; a disabled account keeps its licenses",
    );
    active["required"] = json!(true);
    let mut external = attribute("externalId", "string", "The provisioning directory's id");
    external["caseExact"] = json!(true);
    let email_value = attribute("value", "string", "The address");
    let mut email_type = attribute("type", "string", "Always `work`");
    email_type["canonicalValues"] = json!(["work"]);
    let primary = attribute(
        "primary",
        "boolean",
        "The primary address (SMTP: in proxyAddresses)",
    );
    let mut emails = attribute(
        "emails",
        "complex",
        "The user's email addresses, kept as proxyAddresses",
    );
    emails["multiValued"] = json!(true);
    emails["subAttributes"] = json!([email_value, email_type, primary]);
    let mut address_type = attribute("type", "string", "Always `work`");
    address_type["canonicalValues"] = json!(["work"]);
    let mut country = attribute(
        "country",
        "string",
        "The usage location, an ISO 3166-1 alpha-2 code",
    );
    country["canonicalValues"] = countries();
    country["caseExact"] = json!(true);
    let mut addresses = attribute(
        "addresses",
        "complex",
        "The work address, whose country is the usage location",
    );
    addresses["multiValued"] = json!(true);
    addresses["subAttributes"] = json!([address_type, country]);
    let mut usage_location = attribute(
        "usageLocation",
        "string",
        "Where the user uses its licenses, an ISO 3166-1 alpha-2 code (L4)",
    );
    usage_location["canonicalValues"] = countries();
    usage_location["caseExact"] = json!(true);
    let mut member_value = attribute("value", "string", "The member's user id");
    member_value["mutability"] = json!("immutable");
    let mut member_ref = attribute("$ref", "reference", "The member's URI");
    member_ref["mutability"] = json!("immutable");
    member_ref["referenceTypes"] = json!(["User"]);
    member_ref["caseExact"] = json!(true);
    let mut members = attribute("members", "complex", "The group's members (users)");
    members["multiValued"] = json!(true);
    members["subAttributes"] = json!([member_value, member_ref]);
    let mut group_name = attribute(
        "displayName",
        "string",
        "The group's name, unique over SCIM",
    );
    group_name["required"] = json!(true);
    group_name["uniqueness"] = json!("server");
    let schema = |id: &str, name: &str, description: &str, attributes: Vec<Value>| {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attributes,
            "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
        })
    };
    vec![
        schema(
            USER_SCHEMA,
            "User",
            "A user of the directory",
            vec![
                user_name,
                display_name,
                active,
                external.clone(),
                emails,
                addresses,
            ],
        ),
        schema(
            EXTENSION_SCHEMA,
            "GroupLicensingUser",
            "What group-based licensing needs of a user",
            vec![usage_location],
        ),
        schema(
            GROUP_SCHEMA,
            "Group",
            "A group: licenses on it go to its members",
            vec![group_name, external, members],
        ),
    ]
}

/// A list of discovery resources as a `ListResponse`.
pub fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [super::resource::LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
