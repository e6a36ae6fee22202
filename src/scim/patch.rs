//! PATCH (RFC 7644 §3.5.2) as real clients send it (scim.md "What real clients send"): `op`
//! in any case, no `path` with an object of attributes as `value`, value filters in paths
//! (`emails[type eq "work"].value`, `addresses[type eq "work"].country`,
//! `members[value eq "id"]`), members added and removed as lists of `{ "value": id }`.
//!
//! A user's operations apply to its [`UserDoc`] in memory, and the handler writes the
//! difference through the store's operations; a group's members are never loaded whole: their
//! changes come out as [`MemberChange`]s for the store's membership operations (P5).

use serde_json::Value;

use super::error::ScimError;
use super::filter::{self, PatchPath};
use super::resource::{
    self, EXTENSION_SCHEMA, Email, GROUP_SCHEMA, GroupDoc, USER_SCHEMA, UserDoc, as_object, field,
};
use crate::store::ops::MAX_LIST;

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug)]
pub struct Operation {
    pub kind: Kind,
    pub path: Option<PatchPath>,
    pub value: Value,
}

/// The operations of a PATCH body.
pub fn parse(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let object = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body is a JSON object".into()))?;
    let operations = field(object, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ScimError::invalid_syntax("a PATCH body needs an `Operations` array".into())
        })?;
    if operations.len() > MAX_LIST {
        return Err(ScimError::too_many(format!(
            "at most {MAX_LIST} operations in one PATCH, got {}",
            operations.len()
        )));
    }
    operations
        .iter()
        .map(|op| {
            let op = op.as_object().ok_or_else(|| {
                ScimError::invalid_syntax("each PATCH operation is a JSON object".into())
            })?;
            let kind = match field(op, "op").and_then(Value::as_str) {
                Some(k) if k.eq_ignore_ascii_case("add") => Kind::Add,
                Some(k) if k.eq_ignore_ascii_case("replace") => Kind::Replace,
                Some(k) if k.eq_ignore_ascii_case("remove") => Kind::Remove,
                other => {
                    return Err(ScimError::invalid_syntax(format!(
                        "`op` is add, replace or remove, got {}",
                        other.map_or("nothing".to_string(), |o| format!("`{o}`"))
                    )));
                }
            };
            let path = match field(op, "path") {
                None => None,
                Some(Value::String(p)) => Some(filter::parse_path(p)?),
                Some(_) => return Err(ScimError::invalid_path("`path` must be a string".into())),
            };
            let value = field(op, "value").cloned().unwrap_or(Value::Null);
            if kind != Kind::Remove && value.is_null() {
                return Err(ScimError::invalid_value(
                    "an add or replace operation needs a `value`".into(),
                ));
            }
            if kind == Kind::Remove && path.is_none() {
                return Err(ScimError::no_target(
                    "a remove operation needs a `path`".into(),
                ));
            }
            Ok(Operation { kind, path, value })
        })
        .collect()
}

/// Splits an operation without a path into one per attribute of its value (an extension's
/// object into one per attribute of the extension).
fn expand(op: &Operation) -> Result<Vec<Operation>, ScimError> {
    let Some(path) = &op.path else {
        let object = as_object(&op.value, "the value of an operation without a path")?;
        let mut out = Vec::new();
        for (key, value) in object {
            // Some clients repeat the resource's `schemas` in the value: not an attribute.
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if key.eq_ignore_ascii_case(EXTENSION_SCHEMA) {
                for (inner, v) in as_object(value, EXTENSION_SCHEMA)? {
                    if inner.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    out.push(Operation {
                        kind: op.kind,
                        path: Some(filter::parse_path(&format!("{EXTENSION_SCHEMA}:{inner}"))?),
                        value: v.clone(),
                    });
                }
            } else {
                out.push(Operation {
                    kind: op.kind,
                    path: Some(filter::parse_path(key)?),
                    value: value.clone(),
                });
            }
        }
        return Ok(out);
    };
    // The whole extension as a path: `urn:…:grouplicensing:2.0:User` parses as the attribute
    // `User` of the schema `urn:…:2.0`.
    let whole =
        path.attr.urn.as_deref().is_some_and(|u| {
            format!("{u}:{}", path.attr.name).eq_ignore_ascii_case(EXTENSION_SCHEMA)
        });
    if whole {
        if op.kind == Kind::Remove {
            return Ok(vec![Operation {
                kind: Kind::Remove,
                path: Some(filter::parse_path(&format!(
                    "{EXTENSION_SCHEMA}:usageLocation"
                ))?),
                value: Value::Null,
            }]);
        }
        return expand(&Operation {
            kind: op.kind,
            path: None,
            value: serde_json::json!({ EXTENSION_SCHEMA: op.value }),
        });
    }
    Ok(vec![Operation {
        kind: op.kind,
        path: Some(path.clone()),
        value: op.value.clone(),
    }])
}

/// Which of a core or extension schema's attributes a path names, if any of this resource's.
fn target<'a>(path: &'a PatchPath, core: &str) -> Option<(bool, &'a str)> {
    match path.attr.urn.as_deref() {
        None => Some((false, path.attr.name.as_str())),
        Some(u) if u.eq_ignore_ascii_case(core) => Some((false, path.attr.name.as_str())),
        Some(u) if u.eq_ignore_ascii_case(EXTENSION_SCHEMA) && core == USER_SCHEMA => {
            Some((true, path.attr.name.as_str()))
        }
        // Another extension (the enterprise user's): not kept.
        Some(_) => None,
    }
}

fn read_only(name: &str) -> Result<(), ScimError> {
    if ["id", "meta", "schemas"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(ScimError::mutability(format!(
            "`{name}` is read-only and cannot be changed"
        )));
    }
    Ok(())
}

/// Applies a user's operations to its document.
pub fn apply_user(doc: &mut UserDoc, operations: &[Operation]) -> Result<(), ScimError> {
    for op in operations {
        for op in expand(op)? {
            let Some(path) = &op.path else { continue };
            let Some((extension, name)) = target(path, USER_SCHEMA) else {
                continue;
            };
            read_only(name)?;
            let name = name.to_ascii_lowercase();
            if extension {
                if name == "usagelocation" {
                    doc.usage_location = match op.kind {
                        Kind::Remove => None,
                        _ => Some(resource::string(&op.value, "usageLocation")?)
                            .filter(|c| !c.is_empty()),
                    };
                }
                continue;
            }
            match (name.as_str(), sub_attribute(path).as_deref()) {
                ("username", None) => match op.kind {
                    Kind::Remove => {
                        return Err(ScimError::invalid_value(
                            "`userName` is required and cannot be removed".into(),
                        ));
                    }
                    _ => doc.user_name = resource::string(&op.value, "userName")?,
                },
                ("displayname", None) => match op.kind {
                    Kind::Remove => doc.display_name = doc.user_name.clone(),
                    _ => doc.display_name = resource::string(&op.value, "displayName")?,
                },
                ("externalid", None) => match op.kind {
                    Kind::Remove => doc.external_id = None,
                    _ => doc.external_id = Some(resource::string(&op.value, "externalId")?),
                },
                ("active", None) => match op.kind {
                    Kind::Remove => doc.active = true,
                    _ => doc.active = resource::boolean(&op.value, "active")?,
                },
                ("emails", _) => emails(doc, &op, path)?,
                ("addresses", _) => addresses(doc, &op, path)?,
                // name, phoneNumbers, title, …: not kept (scim.md).
                _ => {}
            }
        }
    }
    Ok(())
}

/// The sub-attribute a path ends with, lower case: `name.givenName`, `emails[…].value`.
fn sub_attribute(path: &PatchPath) -> Option<String> {
    path.attr
        .sub
        .as_deref()
        .or(path.sub.as_deref())
        .map(str::to_ascii_lowercase)
}

/// Drops the values at the `selected` positions.
fn drop_selected(emails: &mut Vec<Email>, selected: &[usize]) {
    let mut i = 0;
    emails.retain(|_| {
        i += 1;
        !selected.contains(&(i - 1))
    });
}

fn emails(doc: &mut UserDoc, op: &Operation, path: &PatchPath) -> Result<(), ScimError> {
    let sub = sub_attribute(path);
    let selected: Vec<usize> = match &path.filter {
        None => (0..doc.emails.len()).collect(),
        Some(f) => {
            // An unsupported filter is refused even when there is no email to try it on.
            f.selects(&Value::Null)?;
            let mut out = Vec::new();
            for (i, e) in doc.emails.iter().enumerate() {
                if f.selects(&e.json())? {
                    out.push(i);
                }
            }
            out
        }
    };
    match (op.kind, sub.as_deref()) {
        (Kind::Remove, None) => {
            if path.filter.is_some() && selected.is_empty() {
                return Err(ScimError::no_target(
                    "no email matches the path's filter".into(),
                ));
            }
            drop_selected(&mut doc.emails, &selected);
            // A list of values to remove, without a filter: those values.
            if path.filter.is_none() && !op.value.is_null() {
                return Err(ScimError::invalid_value(
                    "remove emails with a filter in the path (`emails[value eq \"…\"]`)".into(),
                ));
            }
        }
        (Kind::Remove, Some("value")) => {
            drop_selected(&mut doc.emails, &selected);
        }
        (Kind::Add | Kind::Replace, None) => {
            let new: Vec<Email> = resource::values(&op.value, "emails")?
                .into_iter()
                .map(Email::parse)
                .collect::<Result<_, _>>()?;
            if path.filter.is_some() {
                // The selected values are replaced by the new ones.
                drop_selected(&mut doc.emails, &selected);
                doc.emails.extend(new);
            } else if op.kind == Kind::Replace {
                doc.emails = new;
            } else {
                for e in new {
                    if e.primary {
                        doc.emails.iter_mut().for_each(|o| o.primary = false);
                    }
                    doc.emails
                        .retain(|o| !o.value.eq_ignore_ascii_case(&e.value));
                    doc.emails.push(e);
                }
            }
        }
        (Kind::Add | Kind::Replace, Some("value")) => {
            let value = resource::string(&op.value, "emails.value")?;
            match selected.first() {
                Some(i) => {
                    if let Some(email) = doc.emails.get_mut(*i) {
                        email.value = value;
                    }
                }
                None => {
                    // Entra ID's `emails[type eq "work"].value` for a user without one: the
                    // work address, primary when no other is.
                    let primary = !doc.emails.iter().any(|e| e.primary);
                    doc.emails.push(Email { value, primary });
                }
            }
        }
        (Kind::Add | Kind::Replace, Some("primary")) => {
            let primary = resource::boolean(&op.value, "emails.primary")?;
            if primary {
                doc.emails.iter_mut().for_each(|e| e.primary = false);
            }
            for i in &selected {
                if let Some(email) = doc.emails.get_mut(*i) {
                    email.primary = primary;
                }
            }
        }
        // type, display: not kept.
        _ => {}
    }
    Ok(())
}

fn addresses(doc: &mut UserDoc, op: &Operation, path: &PatchPath) -> Result<(), ScimError> {
    let sub = sub_attribute(path);
    // The one address kept is the work address: a filter either selects it or selects an
    // address that is not kept.
    let work = serde_json::json!({ "type": "work", "country": doc.usage_location });
    if let Some(f) = &path.filter
        && !f.selects(&work)?
    {
        return Ok(());
    }
    match (op.kind, sub.as_deref()) {
        (Kind::Remove, None | Some("country")) => doc.usage_location = None,
        (_, None) => doc.usage_location = resource::work_country(&op.value)?,
        (_, Some("country")) => {
            doc.usage_location =
                Some(resource::string(&op.value, "addresses.country")?).filter(|c| !c.is_empty())
        }
        _ => {}
    }
    Ok(())
}

/// A change of a group's members.
#[derive(Debug, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<i64>),
    Remove(Vec<i64>),
    RemoveAll,
    Replace(Vec<i64>),
}

/// Applies a group's operations to its attributes, and returns its membership changes in order.
pub fn apply_group(
    doc: &mut GroupDoc,
    operations: &[Operation],
) -> Result<Vec<MemberChange>, ScimError> {
    let mut changes = Vec::new();
    for op in operations {
        for op in expand(op)? {
            let Some(path) = &op.path else { continue };
            let Some((_, name)) = target(path, GROUP_SCHEMA) else {
                continue;
            };
            read_only(name)?;
            match (name.to_ascii_lowercase().as_str(), op.kind) {
                ("displayname", Kind::Remove) => {
                    return Err(ScimError::invalid_value(
                        "`displayName` is required and cannot be removed".into(),
                    ));
                }
                ("displayname", _) => {
                    doc.display_name = resource::string(&op.value, "displayName")?;
                }
                ("externalid", Kind::Remove) => doc.external_id = None,
                ("externalid", _) => {
                    doc.external_id = Some(resource::string(&op.value, "externalId")?);
                }
                ("members", kind) => changes.push(members(kind, path, &op.value)?),
                _ => {}
            }
        }
    }
    Ok(changes)
}

fn members(kind: Kind, path: &PatchPath, value: &Value) -> Result<MemberChange, ScimError> {
    if path.attr.sub.is_some() || path.sub.is_some() {
        return Err(ScimError::invalid_path(
            "members are changed whole (`members`, `members[value eq \"id\"]`)".into(),
        ));
    }
    match (kind, &path.filter) {
        (Kind::Add, None) => Ok(MemberChange::Add(resource::member_ids(value)?)),
        (Kind::Replace, None) => Ok(MemberChange::Replace(resource::member_ids(value)?)),
        (Kind::Remove, None) if value.is_null() => Ok(MemberChange::RemoveAll),
        (Kind::Remove, None) => Ok(MemberChange::Remove(resource::member_ids(value)?)),
        (Kind::Remove, Some(f)) => Ok(MemberChange::Remove(filtered_ids(f)?)),
        (_, Some(_)) => Err(ScimError::invalid_path(
            "a filter on members is for removing them (`members[value eq \"id\"]`)".into(),
        )),
    }
}

/// The ids of `value eq "id"` (or an `or` of such) in a members path.
fn filtered_ids(f: &filter::Filter) -> Result<Vec<i64>, ScimError> {
    use filter::{Filter, Op};
    match f {
        Filter::Compare(p, Op::Eq, Value::String(id)) if p.name.eq_ignore_ascii_case("value") => {
            // An id the server never wrote selects no member.
            Ok(resource::user_id(id).into_iter().collect())
        }
        Filter::Or(parts) => {
            let mut out = Vec::new();
            for part in parts {
                out.extend(filtered_ids(part)?);
            }
            Ok(out)
        }
        _ => Err(ScimError::invalid_filter(
            "members are selected by `value eq \"id\"` (or `or` of such)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> UserDoc {
        UserDoc {
            user_name: "ann@contoso.com".into(),
            display_name: "Ann".into(),
            external_id: None,
            active: true,
            emails: vec![Email {
                value: "ann@contoso.com".into(),
                primary: true,
            }],
            usage_location: Some("US".into()),
        }
    }

    fn patch(ops: Value) -> Vec<Operation> {
        parse(&json!({ "schemas": [PATCH_SCHEMA], "Operations": ops })).expect("parses")
    }

    #[test]
    fn entra_and_okta_shapes_apply_to_a_user() {
        let mut doc = user();
        apply_user(
            &mut doc,
            &patch(json!([
                { "op": "Replace", "path": "active", "value": "False" },
                { "op": "Add", "path": "emails[type eq \"work\"].value", "value": "ann.b@contoso.com" },
                { "op": "replace", "path": "addresses[type eq \"work\"].country", "value": "FR" },
                { "op": "Replace", "value": { "displayName": "Ann B", "externalId": "e-1", "title": "ignored" } },
                { "op": "add", "path": "name.givenName", "value": "Ann" },
            ])),
        )
        .expect("applies");
        assert!(!doc.active);
        assert_eq!(doc.emails[0].value, "ann.b@contoso.com");
        assert_eq!(doc.usage_location.as_deref(), Some("FR"));
        assert_eq!(doc.display_name, "Ann B");
        assert_eq!(doc.external_id.as_deref(), Some("e-1"));
        apply_user(
            &mut doc,
            &patch(json!([{ "op": "replace", "value": { EXTENSION_SCHEMA: { "usageLocation": "DE" } } }])),
        )
        .expect("applies");
        assert_eq!(doc.usage_location.as_deref(), Some("DE"));
    }

    #[test]
    fn members_come_out_as_changes() {
        let mut doc = GroupDoc {
            display_name: "Sales".into(),
            external_id: None,
        };
        let changes = apply_group(
            &mut doc,
            &patch(json!([
                { "op": "Add", "path": "members", "value": [{ "value": "1" }, { "value": "2" }] },
                { "op": "Remove", "path": "members[value eq \"2\"]" },
                { "op": "Remove", "path": "members", "value": [{ "value": "3" }] },
                { "op": "remove", "path": "members" },
            ])),
        )
        .expect("applies");
        assert_eq!(
            changes,
            vec![
                MemberChange::Add(vec![1, 2]),
                MemberChange::Remove(vec![2]),
                MemberChange::Remove(vec![3]),
                MemberChange::RemoveAll,
            ]
        );
    }

    #[test]
    fn bad_operations_are_refused_with_their_type() {
        let bad = |ops: Value| {
            parse(&json!({ "Operations": ops }))
                .and_then(|ops| apply_user(&mut user(), &ops))
                .err()
                .and_then(|e| e.scim_type)
        };
        assert_eq!(
            bad(json!([{ "op": "move", "path": "x", "value": 1 }])),
            Some("invalidSyntax")
        );
        assert_eq!(bad(json!([{ "op": "remove" }])), Some("noTarget"));
        assert_eq!(
            bad(json!([{ "op": "replace", "path": "emails[", "value": 1 }])),
            Some("invalidPath")
        );
        assert_eq!(
            bad(json!([{ "op": "replace", "path": "active", "value": "maybe" }])),
            Some("invalidValue")
        );
        assert_eq!(
            bad(json!([{ "op": "replace", "path": "id", "value": "9" }])),
            Some("mutability")
        );
        assert_eq!(
            bad(json!([{ "op": "replace", "path": "userName", "value": 7 }])),
            Some("invalidValue")
        );
    }
}
