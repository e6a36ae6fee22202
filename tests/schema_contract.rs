//! The GraphQL contract: `schema.graphql` is what the server serves, and it holds every type,
//! field, argument and enum value of ../shared/spec/graphql-api.md with the same names and types.
//! A field may take arguments the spec does not name when they are optional (additions beside
//! the contract, which no client written against it sends).

use std::collections::HashMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

#[test]
fn schema_graphql_is_what_the_server_serves() {
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the project root");
    assert!(
        file == group_licensing::api::sdl(),
        "schema.graphql differs from the server's schema: regenerate it with\n  cargo run -- schema > schema.graphql"
    );
}

/// A field's arguments (name, type, optional) and its type; an input field's or a value's
/// type alone.
#[derive(Clone, PartialEq, Debug)]
struct Member {
    args: Vec<(String, String, bool)>,
    ty: String,
}

impl Member {
    fn shape(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|(name, ty, _)| format!("{name}: {ty}"))
            .collect();
        format!("({}): {}", args.join(", "), self.ty)
    }

    /// Served as the spec writes it, or with more arguments that are all optional: a client
    /// written against the spec never sends them (the console's searches are such additions).
    fn serves(&self, spec: &Member) -> bool {
        let spec_names: Vec<&String> = spec.args.iter().map(|(n, _, _)| n).collect();
        let kept = Member {
            args: self
                .args
                .iter()
                .filter(|(name, _, optional)| spec_names.contains(&name) || !optional)
                .cloned()
                .collect(),
            ty: self.ty.clone(),
        };
        kept.shape() == spec.shape()
    }
}

/// Per type: field or value name → its arguments and type.
fn shapes(sdl: &str) -> HashMap<String, HashMap<String, Member>> {
    let doc = parse_schema(sdl).expect("valid SDL");
    let mut out = HashMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = t.node;
        let mut members = HashMap::new();
        match t.kind {
            TypeKind::Object(o) => {
                for f in o.fields {
                    let f = f.node;
                    let args = f
                        .arguments
                        .iter()
                        .map(|a| {
                            (
                                a.node.name.node.to_string(),
                                a.node.ty.node.to_string(),
                                a.node.ty.node.nullable || a.node.default_value.is_some(),
                            )
                        })
                        .collect();
                    members.insert(
                        f.name.node.to_string(),
                        Member {
                            args,
                            ty: f.ty.node.to_string(),
                        },
                    );
                }
            }
            TypeKind::InputObject(i) => {
                for f in i.fields {
                    members.insert(
                        f.node.name.node.to_string(),
                        Member {
                            args: Vec::new(),
                            ty: f.node.ty.node.to_string(),
                        },
                    );
                }
            }
            TypeKind::Enum(e) => {
                for v in e.values {
                    members.insert(
                        v.node.value.node.to_string(),
                        Member {
                            args: Vec::new(),
                            ty: String::new(),
                        },
                    );
                }
            }
            _ => {}
        }
        out.insert(t.name.node.to_string(), members);
    }
    out
}

#[test]
fn every_type_field_argument_and_value_of_the_spec_is_served_as_written() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/spec/graphql-api.md");
    let spec = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path} (shared/ beside the project): {e}"));
    let start = spec.find("```graphql\n").expect("the spec has its SDL") + 11;
    let end = start + spec[start..].find("```").expect("the SDL block is closed");
    let wanted = shapes(&spec[start..end]);
    let served = shapes(&group_licensing::api::sdl());
    let mut missing = Vec::new();
    for (type_name, members) in &wanted {
        let Some(ours) = served.get(type_name) else {
            missing.push(format!("type {type_name}"));
            continue;
        };
        for (member, shape) in members {
            match ours.get(member) {
                None => missing.push(format!("{type_name}.{member}")),
                Some(s) if !s.serves(shape) => missing.push(format!(
                    "{type_name}.{member}: spec {}, served {}",
                    shape.shape(),
                    s.shape()
                )),
                Some(_) => {}
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "the served schema departs from graphql-api.md:\n{}",
        missing.join("\n")
    );
    assert!(wanted.len() > 20, "the spec's SDL was read");
}
