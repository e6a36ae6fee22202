//! Users and groups as SCIM resources: the mapping table of scim.md, both ways.
//!
//! A request's JSON is read into a [`UserDoc`] or [`GroupDoc`] (attribute names without regard
//! to case, booleans also as the strings `"True"`/`"False"`, attributes the server does not keep
//! ignored), and a stored user or group is written back as SCIM JSON. What is kept:
//!
//! | SCIM | kept as |
//! | --- | --- |
//! | `userName` | `userPrincipalName` |
//! | `displayName`, else `name.formatted`, else `userName` | `displayName` |
//! | `externalId` | `externalId` |
//! | `active` | `accountEnabled` |
//! | `emails[].value` (`primary` first) | `proxyAddresses`: `SMTP:` primary, `smtp:` the others |
//! | `addresses[type eq "work"].country`, or the extension's `usageLocation` (which wins) | `usageLocation` |
//! | Group `displayName`, `externalId`, `members[].value` | the group, its members |
//!
//! Every email is returned with `type: "work"` (a proxy address has no type), every usage
//! location as the one `work` address. Anything else (`name.givenName`, `phoneNumbers`, `title`,
//! the enterprise extension, a `type` other than `work`) is ignored: neither kept nor returned.

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::filter::{self, AttrPath};
use crate::store::ops::MAX_LIST;
use crate::store::provision::GroupRecord;
use crate::store::read::UserView;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const EXTENSION_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:grouplicensing:2.0:User";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The value of `name` in a JSON object, the name compared without regard to case.
pub fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

pub fn as_object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ScimError> {
    value
        .as_object()
        .ok_or_else(|| ScimError::invalid_value(format!("{what} must be a JSON object")))
}

pub fn string(value: &Value, attr: &str) -> Result<String, ScimError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(ScimError::invalid_value(format!(
            "`{attr}` must be a string, got {}",
            kind(other)
        ))),
    }
}

/// A boolean, or the strings `true`/`false` in any case (Entra ID sends `"False"`).
pub fn boolean(value: &Value, attr: &str) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(ScimError::invalid_value(format!(
            "`{attr}` must be a boolean, got {}",
            kind(other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A multi-valued attribute's values: an array, or one value given alone.
pub fn values<'a>(value: &'a Value, attr: &str) -> Result<Vec<&'a Value>, ScimError> {
    let list: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    };
    if list.len() > MAX_LIST {
        return Err(ScimError::too_many(format!(
            "at most {MAX_LIST} values of `{attr}` in one request, got {}",
            list.len()
        )));
    }
    Ok(list)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub value: String,
    pub primary: bool,
}

impl Email {
    pub fn json(&self) -> Value {
        json!({ "value": self.value, "type": "work", "primary": self.primary })
    }

    pub fn parse(value: &Value) -> Result<Email, ScimError> {
        let object = as_object(value, "an email")?;
        let address = field(object, "value")
            .ok_or_else(|| ScimError::invalid_value("an email without `value`".into()))?;
        Ok(Email {
            value: string(address, "emails.value")?,
            primary: field(object, "primary")
                .map(|p| boolean(p, "emails.primary"))
                .transpose()?
                .unwrap_or(false),
        })
    }
}

/// What SCIM reads and writes of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDoc {
    pub user_name: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub emails: Vec<Email>,
    pub usage_location: Option<String>,
}

impl UserDoc {
    pub fn of(view: &UserView) -> UserDoc {
        let emails = view
            .proxy_addresses
            .iter()
            .map(|a| match a.get(..5) {
                Some(prefix) if prefix.eq_ignore_ascii_case("smtp:") => Email {
                    value: a.get(5..).unwrap_or_default().to_string(),
                    primary: prefix == "SMTP:",
                },
                _ => Email {
                    value: a.clone(),
                    primary: false,
                },
            })
            .collect();
        UserDoc {
            user_name: view.user_principal_name.clone(),
            display_name: view.display_name.clone(),
            external_id: view.external_id.clone(),
            active: view.account_enabled,
            emails,
            usage_location: view.usage_location.clone(),
        }
    }

    /// The proxy addresses of the emails: the primary first as `SMTP:`, the others `smtp:`.
    pub fn proxy_addresses(&self) -> Result<Vec<String>, ScimError> {
        if self.emails.iter().filter(|e| e.primary).count() > 1 {
            return Err(ScimError::invalid_value(
                "more than one email is `primary`".into(),
            ));
        }
        let primary = self.emails.iter().filter(|e| e.primary);
        let others = self.emails.iter().filter(|e| !e.primary);
        Ok(primary
            .map(|e| format!("SMTP:{}", e.value.trim()))
            .chain(others.map(|e| format!("smtp:{}", e.value.trim())))
            .collect())
    }

    /// A whole user from a `POST` or `PUT` body: what is left out is cleared or takes its
    /// default (`active`: true).
    pub fn parse(body: &Value) -> Result<UserDoc, ScimError> {
        let object = as_object(body, "a user")?;
        let user_name = field(object, "userName")
            .ok_or_else(|| ScimError::invalid_value("a user needs a `userName`".into()))?;
        let user_name = string(user_name, "userName")?;
        let display_name = match field(object, "displayName") {
            Some(v) => Some(string(v, "displayName")?),
            None => match field(object, "name") {
                Some(name) => field(as_object(name, "`name`")?, "formatted")
                    .map(|f| string(f, "name.formatted"))
                    .transpose()?,
                None => None,
            },
        };
        let mut doc = UserDoc {
            display_name: display_name
                .filter(|d| !d.trim().is_empty())
                .unwrap_or_else(|| user_name.clone()),
            user_name,
            external_id: field(object, "externalId")
                .map(|v| string(v, "externalId"))
                .transpose()?,
            active: field(object, "active")
                .map(|v| boolean(v, "active"))
                .transpose()?
                .unwrap_or(true),
            emails: Vec::new(),
            usage_location: None,
        };
        if let Some(emails) = field(object, "emails") {
            doc.emails = values(emails, "emails")?
                .into_iter()
                .map(Email::parse)
                .collect::<Result<_, _>>()?;
        }
        if let Some(addresses) = field(object, "addresses") {
            doc.usage_location = work_country(addresses)?;
        }
        if let Some(extension) = field(object, EXTENSION_SCHEMA) {
            let extension = as_object(extension, EXTENSION_SCHEMA)?;
            if let Some(location) = field(extension, "usageLocation") {
                doc.usage_location = Some(string(location, "usageLocation")?);
            }
        }
        Ok(doc)
    }

    pub fn json(&self, id: i64, base: &str) -> Value {
        let mut user = json!({
            "schemas": [USER_SCHEMA, EXTENSION_SCHEMA],
            "id": id.to_string(),
            "userName": self.user_name,
            "displayName": self.display_name,
            "active": self.active,
            "meta": {
                "resourceType": "User",
                "location": format!("{base}/Users/{id}"),
            },
        });
        if let Some(external) = &self.external_id {
            user["externalId"] = json!(external);
        }
        if !self.emails.is_empty() {
            user["emails"] = Value::Array(self.emails.iter().map(Email::json).collect());
        }
        if let Some(location) = &self.usage_location {
            user["addresses"] = json!([{ "type": "work", "country": location }]);
            user[EXTENSION_SCHEMA] = json!({ "usageLocation": location });
        }
        user
    }
}

/// The country of the `work` address, else of the only address; `None` for none or an empty
/// one.
pub fn work_country(addresses: &Value) -> Result<Option<String>, ScimError> {
    let list = values(addresses, "addresses")?;
    let mut chosen = None;
    for address in &list {
        let object = as_object(address, "an address")?;
        let work = field(object, "type")
            .map(|t| string(t, "addresses.type"))
            .transpose()?
            .is_none_or(|t| t.eq_ignore_ascii_case("work"));
        if work || list.len() == 1 {
            chosen = Some(object);
            break;
        }
    }
    let Some(address) = chosen else {
        return Ok(None);
    };
    Ok(field(address, "country")
        .map(|c| string(c, "addresses.country"))
        .transpose()?
        .filter(|c| !c.is_empty()))
}

/// What SCIM reads and writes of a group, members aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDoc {
    pub display_name: String,
    pub external_id: Option<String>,
}

/// A member's `value`: a user id as the server writes it.
pub fn member_id(value: &Value) -> Result<i64, ScimError> {
    let object = as_object(value, "a member")?;
    let id = field(object, "value")
        .ok_or_else(|| ScimError::invalid_value("a member without `value`".into()))?;
    let id = string(id, "members.value")?;
    user_id(&id).ok_or_else(|| ScimError::invalid_value(format!("no user with id `{id}`")))
}

/// An id as the server writes it (digits, no sign or leading zero), or `None`.
pub fn user_id(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && n.to_string() == text)
}

pub fn member_ids(value: &Value) -> Result<Vec<i64>, ScimError> {
    values(value, "members")?
        .into_iter()
        .map(member_id)
        .collect()
}

impl GroupDoc {
    /// A whole group from a `POST` or `PUT` body, with its members (`None`: none given).
    pub fn parse(body: &Value) -> Result<(GroupDoc, Option<Vec<i64>>), ScimError> {
        let object = as_object(body, "a group")?;
        let name = field(object, "displayName")
            .ok_or_else(|| ScimError::invalid_value("a group needs a `displayName`".into()))?;
        let doc = GroupDoc {
            display_name: string(name, "displayName")?,
            external_id: field(object, "externalId")
                .map(|v| string(v, "externalId"))
                .transpose()?,
        };
        let members = field(object, "members").map(member_ids).transpose()?;
        Ok((doc, members))
    }
}

pub fn group_json(group: &GroupRecord, base: &str, with_members: bool) -> Value {
    let mut out = json!({
        "schemas": [GROUP_SCHEMA],
        "id": group.id.to_string(),
        "displayName": group.display_name,
        "meta": {
            "resourceType": "Group",
            "location": format!("{base}/Groups/{}", group.id),
        },
    });
    if let Some(external) = &group.external_id {
        out["externalId"] = json!(external);
    }
    if with_members {
        out["members"] = Value::Array(
            group
                .members
                .iter()
                .map(|id| json!({ "value": id.to_string(), "$ref": format!("{base}/Users/{id}") }))
                .collect(),
        );
    }
    out
}

/// `attributes` and `excludedAttributes` (RFC 7644 §3.9), comma-separated paths.
pub struct Projection {
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

fn paths(text: Option<&str>) -> Result<Vec<AttrPath>, ScimError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let parsed = filter::parse_path(p)?;
            if parsed.filter.is_some() {
                return Err(ScimError::invalid_value(format!(
                    "`{p}`: attributes are named without filters"
                )));
            }
            Ok(parsed.attr)
        })
        .collect()
}

impl Projection {
    pub fn new(attributes: Option<&str>, excluded: Option<&str>) -> Result<Projection, ScimError> {
        Ok(Projection {
            attributes: paths(attributes)?,
            excluded: paths(excluded)?,
        })
    }

    /// Whether `name` (a top-level attribute of the core schema `core`) is returned.
    pub fn returns(&self, core: &str, name: &str) -> bool {
        let named = |list: &[AttrPath]| {
            list.iter().any(|p| {
                p.name.eq_ignore_ascii_case(name)
                    && p.urn
                        .as_deref()
                        .is_none_or(|u| u.eq_ignore_ascii_case(core))
            })
        };
        if !self.attributes.is_empty() {
            return named(&self.attributes);
        }
        !self
            .excluded
            .iter()
            .any(|p| p.sub.is_none() && named(std::slice::from_ref(p)))
    }

    /// The resource with only the attributes asked for; `schemas` and `id` always stay.
    pub fn apply(&self, core: &str, resource: Value) -> Value {
        let Value::Object(mut object) = resource else {
            return resource;
        };
        let is_extension = |p: &AttrPath| {
            p.urn.as_deref().is_some_and(|u| {
                format!("{u}:{}", p.name).eq_ignore_ascii_case(EXTENSION_SCHEMA)
                    || u.eq_ignore_ascii_case(EXTENSION_SCHEMA)
            })
        };
        let always = |k: &str| k == "schemas" || k == "id";
        if !self.attributes.is_empty() {
            let mut kept = Map::new();
            for (key, value) in object {
                if always(&key) {
                    kept.insert(key, value);
                    continue;
                }
                if key == EXTENSION_SCHEMA {
                    let asked: Vec<&AttrPath> =
                        self.attributes.iter().filter(|p| is_extension(p)).collect();
                    if asked.iter().any(|p| {
                        p.urn
                            .as_deref()
                            .is_some_and(|u| !u.eq_ignore_ascii_case(EXTENSION_SCHEMA))
                    }) {
                        kept.insert(key, value);
                    } else if let Value::Object(inner) = value {
                        let sub: Map<String, Value> = inner
                            .into_iter()
                            .filter(|(k, _)| asked.iter().any(|p| p.name.eq_ignore_ascii_case(k)))
                            .collect();
                        if !sub.is_empty() {
                            kept.insert(key, Value::Object(sub));
                        }
                    }
                    continue;
                }
                let asked: Vec<&AttrPath> = self
                    .attributes
                    .iter()
                    .filter(|p| {
                        p.name.eq_ignore_ascii_case(&key)
                            && p.urn
                                .as_deref()
                                .is_none_or(|u| u.eq_ignore_ascii_case(core))
                    })
                    .collect();
                if asked.is_empty() {
                    continue;
                }
                if asked.iter().any(|p| p.sub.is_none()) {
                    kept.insert(key, value);
                } else {
                    let subs: Vec<&str> = asked.iter().filter_map(|p| p.sub.as_deref()).collect();
                    kept.insert(key, only_subs(value, &subs));
                }
            }
            return Value::Object(kept);
        }
        for p in &self.excluded {
            if is_extension(p) {
                if p.urn
                    .as_deref()
                    .is_some_and(|u| !u.eq_ignore_ascii_case(EXTENSION_SCHEMA))
                {
                    object.remove(EXTENSION_SCHEMA);
                } else if let Some(Value::Object(inner)) = object.get_mut(EXTENSION_SCHEMA) {
                    inner.retain(|k, _| !k.eq_ignore_ascii_case(&p.name));
                }
                continue;
            }
            if p.urn
                .as_deref()
                .is_some_and(|u| !u.eq_ignore_ascii_case(core))
            {
                continue;
            }
            let key = object
                .keys()
                .find(|k| k.eq_ignore_ascii_case(&p.name) && !always(k))
                .cloned();
            if let Some(key) = key {
                match &p.sub {
                    None => {
                        object.remove(&key);
                    }
                    Some(sub) => {
                        if let Some(value) = object.get_mut(&key) {
                            drop_sub(value, sub);
                        }
                    }
                }
            }
        }
        Value::Object(object)
    }
}

fn only_subs(value: Value, subs: &[&str]) -> Value {
    let keep = |o: Map<String, Value>| -> Value {
        Value::Object(
            o.into_iter()
                .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
                .collect(),
        )
    };
    match value {
        Value::Object(o) => keep(o),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| match i {
                    Value::Object(o) => keep(o),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn drop_sub(value: &mut Value, sub: &str) {
    match value {
        Value::Object(o) => o.retain(|k, _| !k.eq_ignore_ascii_case(sub)),
        Value::Array(items) => {
            for item in items {
                if let Value::Object(o) = item {
                    o.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                }
            }
        }
        _ => {}
    }
}
