//! SCIM filters (`GET /Users?filter=…`) and PATCH paths (`emails[type eq "work"].value`), with
//! the pest grammar in `filter.pest`.
//!
//! The whole grammar of RFC 7644 §3.4.2.2 is parsed, so that a filter the server does not
//! support (`userName sw "a"`, an `or`, `title eq "x"`) is told apart from one that does not
//! parse, and both are refused with `invalidFilter` (scim.md: "never a wrong answer"). What is
//! supported: for lists, `eq` on `id`, `userName`, `externalId`, `displayName` and `and` of
//! such ([`Filter::matches`]); in the value filter of a PATCH path, `eq`, `ne`, `pr`, `and`,
//! `or` and `not` over the sub-attributes of one value ([`Filter::selects`]).
//!
//! No SCIM crate is used: the registry's search could not be reached from the development
//! machine (`cargo search` failed), so none could be weighed, and the grammar is forty lines
//! of pest, a dependency the rules language already has. A well-kept crate for SCIM's filter
//! grammar is worth comparing with this one when the search can be reached.

use pest::Parser;
use pest::iterators::Pair;
use pest_derive::Parser;
use serde_json::Value;

use super::error::ScimError;
use crate::store::provision::{Column, Match};

#[derive(Parser)]
#[grammar = "scim/filter.pest"]
struct FilterParser;

/// Longest filter or path accepted: a lookup is a short text.
pub const MAX_FILTER: usize = 4096;
/// Deepest nesting of parentheses and brackets accepted: the parser and the tree are recursive,
/// and a client must not be able to exhaust a thread's stack.
pub const MAX_NESTING: usize = 16;

/// The deepest nesting of `(` and `[` outside strings.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The length and nesting limits, checked before the parser runs.
fn within_limits(text: &str, what: &str) -> Result<(), String> {
    if text.len() > MAX_FILTER {
        return Err(format!("the {what} is longer than {MAX_FILTER} bytes"));
    }
    if nesting(text) > MAX_NESTING {
        return Err(format!(
            "the {what} nests parentheses or brackets deeper than {MAX_NESTING}"
        ));
    }
    Ok(())
}

/// `[urn:…:]name[.sub]`, names as written (compared without regard to case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Compare(AttrPath, Op, Value),
    Present(AttrPath),
    /// `emails[type eq "work"]` inside a filter.
    ValuePath(AttrPath, Box<Filter>),
}

/// A PATCH path: an attribute, an optional filter on its values and a sub-attribute after it.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// `emails[type eq "work"].value`: `value`.
    pub sub: Option<String>,
}

fn syntax_message(e: &pest::error::Error<Rule>) -> String {
    let at = match e.location {
        pest::error::InputLocation::Pos(p) | pest::error::InputLocation::Span((p, _)) => p,
    };
    format!("does not parse at character {}", at + 1)
}

/// Parses a `filter` parameter.
pub fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    within_limits(text, "filter").map_err(ScimError::invalid_filter)?;
    let mut pairs = FilterParser::parse(Rule::filter, text).map_err(|e| {
        ScimError::invalid_filter(format!("the filter `{text}` {}", syntax_message(&e)))
    })?;
    let top = pairs.next().and_then(|p| p.into_inner().next());
    top.map(or_expr)
        .ok_or_else(|| ScimError::invalid_filter("an empty filter".into()))
}

/// Parses a PATCH operation's `path`.
pub fn parse_path(text: &str) -> Result<PatchPath, ScimError> {
    within_limits(text, "path").map_err(ScimError::invalid_path)?;
    let pairs = FilterParser::parse(Rule::patch_path, text).map_err(|e| {
        ScimError::invalid_path(format!("the path `{text}` {}", syntax_message(&e)))
    })?;
    let mut attr = None;
    let mut filter = None;
    let mut sub = None;
    for pair in pairs.flat_map(|p| p.into_inner()) {
        match pair.as_rule() {
            Rule::attr_path => attr = Some(attr_path(pair)),
            Rule::or_expr => filter = Some(or_expr(pair)),
            Rule::sub_attr => sub = Some(pair.as_str().to_string()),
            _ => {}
        }
    }
    let attr = attr.ok_or_else(|| ScimError::invalid_path(format!("the path `{text}`")))?;
    Ok(PatchPath { attr, filter, sub })
}

fn or_expr(pair: Pair<'_, Rule>) -> Filter {
    let mut parts: Vec<Filter> = pair
        .into_inner()
        .filter(|p| p.as_rule() == Rule::and_expr)
        .map(and_expr)
        .collect();
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Filter::Or(parts)
    }
}

fn and_expr(pair: Pair<'_, Rule>) -> Filter {
    let mut parts: Vec<Filter> = pair
        .into_inner()
        .filter(|p| p.as_rule() == Rule::term)
        .map(term)
        .collect();
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Filter::And(parts)
    }
}

fn term(pair: Pair<'_, Rule>) -> Filter {
    let Some(inner) = pair.into_inner().next() else {
        return Filter::And(Vec::new());
    };
    match inner.as_rule() {
        Rule::not_expr => Filter::Not(Box::new(first_or(inner))),
        Rule::group => first_or(inner),
        Rule::value_path => {
            let mut path = None;
            let mut filter = None;
            for p in inner.into_inner() {
                match p.as_rule() {
                    Rule::attr_path => path = Some(attr_path(p)),
                    Rule::or_expr => filter = Some(or_expr(p)),
                    _ => {}
                }
            }
            match (path, filter) {
                (Some(path), Some(filter)) => Filter::ValuePath(path, Box::new(filter)),
                _ => Filter::And(Vec::new()),
            }
        }
        _ => attr_expr(inner),
    }
}

fn first_or(pair: Pair<'_, Rule>) -> Filter {
    pair.into_inner()
        .find(|p| p.as_rule() == Rule::or_expr)
        .map_or(Filter::And(Vec::new()), or_expr)
}

fn attr_expr(pair: Pair<'_, Rule>) -> Filter {
    let mut path = None;
    let mut op = None;
    let mut value = Value::Null;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::attr_path => path = Some(attr_path(p)),
            Rule::kw_pr => {}
            Rule::compare_op => op = Some(compare_op(p.as_str())),
            Rule::comp_value => value = comp_value(p),
            _ => {}
        }
    }
    let path = path.unwrap_or(AttrPath {
        urn: None,
        name: String::new(),
        sub: None,
    });
    match op {
        Some(op) => Filter::Compare(path, op, value),
        None => Filter::Present(path),
    }
}

fn compare_op(text: &str) -> Op {
    match text.to_ascii_lowercase().as_str() {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "co" => Op::Co,
        "sw" => Op::Sw,
        "ew" => Op::Ew,
        "gt" => Op::Gt,
        "lt" => Op::Lt,
        "ge" => Op::Ge,
        _ => Op::Le,
    }
}

fn comp_value(pair: Pair<'_, Rule>) -> Value {
    let Some(inner) = pair.into_inner().next() else {
        return Value::Null;
    };
    // Strings and numbers are JSON's (RFC 7644: "JSON string"), literals in any case.
    match inner.as_rule() {
        Rule::literal => match inner.as_str().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::Null,
        },
        _ => serde_json::from_str(inner.as_str()).unwrap_or(Value::Null),
    }
}

fn attr_path(pair: Pair<'_, Rule>) -> AttrPath {
    let mut urn = None;
    let mut names = Vec::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            // Without its last colon.
            Rule::urn => urn = Some(p.as_str().trim_end_matches(':').to_string()),
            Rule::attr_name => names.push(p.as_str().to_string()),
            _ => {}
        }
    }
    let mut names = names.into_iter();
    AttrPath {
        urn,
        name: names.next().unwrap_or_default(),
        sub: names.next(),
    }
}

impl AttrPath {
    /// Whether this path names `name` of a resource whose core schema is `core` (a path may
    /// repeat the schema: `urn:ietf:params:scim:schemas:core:2.0:User:userName`).
    pub fn is(&self, core: &str, name: &str) -> bool {
        self.sub.is_none()
            && self.name.eq_ignore_ascii_case(name)
            && self
                .urn
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(core))
    }
}

impl Filter {
    /// The filter of a list request as the store's matches: `eq` with a string on one of
    /// `columns` (named as in SCIM), or `and` of such. Anything else is `invalidFilter`.
    pub fn matches(&self, core: &str, columns: &[(&str, Column)]) -> Result<Vec<Match>, ScimError> {
        let unsupported = |what: &str| {
            ScimError::invalid_filter(format!(
                "{what} is not supported: filters are `eq` on {} and `and` of such",
                columns
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        match self {
            Filter::And(parts) => {
                let mut out = Vec::new();
                for part in parts {
                    out.extend(part.matches(core, columns)?);
                }
                Ok(out)
            }
            Filter::Compare(path, Op::Eq, value) => {
                let Some((_, column)) = columns.iter().find(|(n, _)| path.is(core, n)) else {
                    return Err(unsupported(&format!("a filter on `{}`", path.name)));
                };
                match value {
                    Value::String(text) => Ok(vec![(*column, text.clone())]),
                    _ => Err(ScimError::invalid_filter(format!(
                        "`{}` is compared with a string",
                        path.name
                    ))),
                }
            }
            Filter::Compare(..) => Err(unsupported("an operator other than `eq`")),
            Filter::Or(_) => Err(unsupported("`or`")),
            Filter::Not(_) => Err(unsupported("`not`")),
            Filter::Present(_) => Err(unsupported("`pr`")),
            Filter::ValuePath(..) => Err(unsupported("a filter on values (`[...]`)")),
        }
    }

    /// Whether one value of a multi-valued attribute (an object: `{"type": "work", …}`) is
    /// selected by a PATCH path's filter. Strings compare without regard to case.
    pub fn selects(&self, value: &Value) -> Result<bool, ScimError> {
        let field = |path: &AttrPath| -> Option<&Value> {
            value.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&path.name))
                    .map(|(_, v)| v)
            })
        };
        let same = |a: &Value, b: &Value| match (a, b) {
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        };
        Ok(match self {
            Filter::And(parts) => {
                for p in parts {
                    if !p.selects(value)? {
                        return Ok(false);
                    }
                }
                true
            }
            Filter::Or(parts) => {
                for p in parts {
                    if p.selects(value)? {
                        return Ok(true);
                    }
                }
                false
            }
            Filter::Not(inner) => !inner.selects(value)?,
            Filter::Present(path) => field(path).is_some_and(|v| !v.is_null()),
            Filter::Compare(path, Op::Eq, expected) => {
                field(path).is_some_and(|v| same(v, expected))
            }
            Filter::Compare(path, Op::Ne, expected) => {
                !field(path).is_some_and(|v| same(v, expected))
            }
            Filter::Compare(..) | Filter::ValuePath(..) => {
                return Err(ScimError::invalid_filter(
                    "a value filter in a path takes `eq`, `ne`, `pr`, `and`, `or` and `not`".into(),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    #[test]
    fn the_filters_real_clients_send_parse() {
        assert_eq!(
            parse_filter(r#"userName eq "ann@contoso.com""#).expect("parses"),
            Filter::Compare(
                path("userName"),
                Op::Eq,
                Value::String("ann@contoso.com".into())
            )
        );
        assert_eq!(
            parse_filter(r#"displayName EQ "Sales" and externalId eq "x\"y""#).expect("parses"),
            Filter::And(vec![
                Filter::Compare(path("displayName"), Op::Eq, "Sales".into()),
                Filter::Compare(path("externalId"), Op::Eq, "x\"y".into()),
            ])
        );
        let urn = parse_filter(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#)
            .expect("parses");
        let Filter::Compare(p, _, _) = urn else {
            panic!("{urn:?}")
        };
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        );
        assert!(p.is("urn:ietf:params:scim:schemas:core:2.0:User", "username"));
        for other in [
            r#"emails[type eq "work" and value co "@"]"#,
            r#"not (title pr) or userType eq "Employee""#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            "active eq true",
        ] {
            parse_filter(other).unwrap_or_else(|e| panic!("{other}: {e:?}"));
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}userName eq \"a\"{}", "(".repeat(2000), ")".repeat(2000));
        assert!(parse_filter(&deep).is_err());
        let fine = format!(
            "{}userName eq \"((((((((((((((((((\"{}",
            "(".repeat(3),
            ")".repeat(3)
        );
        assert!(
            parse_filter(&fine).is_ok(),
            "parentheses inside a string do not count"
        );
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName eq "open"#,
            r#"userName equals "a""#,
            r#"userName eq "a" and"#,
            r#"(userName eq "a""#,
            r#"userNameeq "a""#,
            "userName eq bare",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patch_paths_with_value_filters_parse() {
        let p = parse_path(r#"emails[type eq "work"].value"#).expect("parses");
        assert_eq!(p.attr, path("emails"));
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert!(p.filter.is_some());
        let p = parse_path(r#"members[value eq "12"]"#).expect("parses");
        let f = p.filter.expect("filter");
        assert!(
            f.selects(&serde_json::json!({ "value": "12" }))
                .expect("eval")
        );
        assert!(
            !f.selects(&serde_json::json!({ "value": "13" }))
                .expect("eval")
        );
        let p = parse_path(
            "urn:ietf:params:scim:schemas:extension:grouplicensing:2.0:User:usageLocation",
        )
        .expect("parses");
        assert_eq!(p.attr.name, "usageLocation");
        assert_eq!(
            p.attr.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:grouplicensing:2.0:User")
        );
        assert_eq!(
            parse_path("name.givenName")
                .expect("parses")
                .attr
                .sub
                .as_deref(),
            Some("givenName")
        );
        for bad in ["", "emails[", "emails[type eq \"work\"", "a b", "1abc"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }
}
