//! The GraphQL contract: `schema.graphql` is what the server serves, and it holds every type,
//! field, argument and enum value of ../shared/spec/graphql-api.md with the same names and types.

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

/// Per type: field or value name → its type with arguments, as `name(arg: T, …): T`.
fn shapes(sdl: &str) -> HashMap<String, HashMap<String, String>> {
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
                    let args: Vec<String> = f
                        .arguments
                        .iter()
                        .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                        .collect();
                    members.insert(
                        f.name.node.to_string(),
                        format!("({}): {}", args.join(", "), f.ty.node),
                    );
                }
            }
            TypeKind::InputObject(i) => {
                for f in i.fields {
                    members.insert(f.node.name.node.to_string(), f.node.ty.node.to_string());
                }
            }
            TypeKind::Enum(e) => {
                for v in e.values {
                    members.insert(v.node.value.node.to_string(), String::new());
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
                Some(s) if s != shape => {
                    missing.push(format!("{type_name}.{member}: spec {shape}, served {s}"))
                }
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
