//! Puts the fields of an answer in the order the query asked for them (GraphQL spec,
//! "Serialized Map Ordering").
//!
//! async-graphql resolves the fields of an object concurrently and writes each one when it is
//! done, so an answer comes back in finishing order. This pass walks the answer beside the
//! document and rebuilds every object in the order of CollectFields: fields as written,
//! fragments expanded where they are spread, `@skip`/`@include` applied, a key placed where it
//! first appears. Type conditions are not evaluated: every object type of this schema is
//! concrete (no interfaces or unions), so a fragment that passed validation applies to every
//! object it can meet.

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Value, Variables};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The operation `operation` of `document` would run (the only one, or the one named).
pub fn operation<'d>(
    document: &'d ExecutableDocument,
    operation: Option<&str>,
) -> Option<&'d OperationDefinition> {
    match (&document.operations, operation) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Reorders `data`, the answer to `operation` of `document` with `variables`.
pub fn restore(
    data: &mut Value,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) {
    let Some(op) = operation(document, operation_name) else {
        return;
    };
    let walk = Walk {
        document,
        op,
        variables,
        layouts: RefCell::new(HashMap::new()),
    };
    walk.value(data, &[&op.selection_set.node]);
}

/// The keys of an object in the order asked, each with the selection sets of its value.
type Layout<'a> = IndexMap<&'a Name, Vec<&'a SelectionSet>>;

struct Walk<'a> {
    document: &'a ExecutableDocument,
    op: &'a OperationDefinition,
    variables: &'a Variables,
    /// Layouts by the selection sets they come from: every element of a list (a page of 1,000
    /// users, each with its states) has the same one, worked out once.
    layouts: RefCell<HashMap<Vec<*const SelectionSet>, Rc<Layout<'a>>>>,
}

/// Deepest chain of fragment spreads followed; validation refuses cycles, this only bounds a
/// document that reached here some other way.
const MAX_SPREADS: usize = 64;

impl<'a> Walk<'a> {
    fn layout(&self, sets: &[&'a SelectionSet]) -> Rc<Layout<'a>> {
        let id: Vec<*const SelectionSet> = sets.iter().map(|s| *s as *const _).collect();
        if let Some(known) = self.layouts.borrow().get(&id) {
            return known.clone();
        }
        let mut keys = Layout::new();
        for set in sets {
            self.collect(set, &mut keys, 0);
        }
        let keys = Rc::new(keys);
        self.layouts.borrow_mut().insert(id, keys.clone());
        keys
    }

    fn value(&self, value: &mut Value, sets: &[&'a SelectionSet]) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.value(item, sets);
                }
            }
            Value::Object(map) => {
                let keys = self.layout(sets);
                // Already in order: nothing to rebuild (a single field, or resolvers that
                // finished in the order asked), only the children to look at.
                let in_order = map.len() == keys.len()
                    && map
                        .keys()
                        .zip(keys.keys())
                        .all(|(have, want)| have == *want);
                if in_order {
                    for ((_, child), subsets) in map.iter_mut().zip(keys.values()) {
                        self.value(child, subsets);
                    }
                    return;
                }
                let mut ordered = IndexMap::with_capacity(map.len());
                for (key, subsets) in keys.iter() {
                    if let Some((name, mut child)) = map.swap_remove_entry(*key) {
                        self.value(&mut child, subsets);
                        ordered.insert(name, child);
                    }
                }
                // Keys the walk did not foresee come after the others rather than being
                // dropped.
                ordered.extend(std::mem::take(map));
                *map = ordered;
            }
            _ => {}
        }
    }

    fn collect(&self, set: &'a SelectionSet, keys: &mut Layout<'a>, spreads: usize) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if !self.included(&field.directives) {
                        continue;
                    }
                    let key = &field.response_key().node;
                    keys.entry(key).or_default().push(&field.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    if self.included(&fragment.directives) {
                        self.collect(&fragment.selection_set.node, keys, spreads);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    if spreads >= MAX_SPREADS || !self.included(&spread.directives) {
                        continue;
                    }
                    if let Some(fragment) = self.document.fragments.get(&spread.fragment_name.node)
                    {
                        self.collect(&fragment.node.selection_set.node, keys, spreads + 1);
                    }
                }
            }
        }
    }

    /// `@skip(if:)` and `@include(if:)`, with literals or variables; a condition that cannot
    /// be read counts as included (it only moves a key, never drops one).
    fn included(&self, directives: &[async_graphql::Positioned<Directive>]) -> bool {
        directives.iter().all(|d| {
            let d = &d.node;
            let wanted = match d.name.node.as_str() {
                "skip" => false,
                "include" => true,
                _ => return true,
            };
            let Some(condition) = d.get_argument("if") else {
                return true;
            };
            let condition = condition
                .node
                .clone()
                .into_const_with(|name| self.variable(&name).ok_or(()));
            match condition {
                Ok(Value::Boolean(b)) => b == wanted,
                _ => true,
            }
        })
    }

    /// A variable's value as given, or its default.
    fn variable(&self, name: &Name) -> Option<Value> {
        if let Some(value) = self.variables.get(name) {
            return Some(value.clone());
        }
        self.op
            .variable_definitions
            .iter()
            .find(|v| v.node.name.node == *name)
            .and_then(|v| v.node.default_value.as_ref())
            .map(|d| d.node.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (Name::new(*k), v.clone()))
                .collect(),
        )
    }

    fn keys(value: &Value) -> Vec<String> {
        match value {
            Value::Object(map) => map.keys().map(|k| k.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    fn restored(query: &str, variables: serde_json::Value, mut data: Value) -> Value {
        let document = parse_query(query).expect("parses");
        let variables = Variables::from_json(variables);
        restore(&mut data, &document, None, &variables);
        data
    }

    #[test]
    fn objects_follow_the_query_at_every_depth_and_in_lists() {
        let leaf = |a: i32| object(&[("b", Value::from(a)), ("a", Value::from(a))]);
        let data = object(&[
            ("list", Value::List(vec![leaf(1), leaf(2)])),
            ("z", Value::from(0)),
            ("alias", Value::from(1)),
        ]);
        let data = restored("{ alias: y z list { a b } }", serde_json::json!({}), data);
        assert_eq!(keys(&data), ["alias", "z", "list"]);
        let Value::Object(map) = &data else {
            panic!("object")
        };
        let Some(Value::List(items)) = map.get("list") else {
            panic!("list")
        };
        for item in items {
            assert_eq!(keys(item), ["a", "b"]);
        }
    }

    #[test]
    fn fragments_are_expanded_in_place_and_skipped_fields_do_not_count() {
        let data = object(&[
            ("c", Value::from(3)),
            ("b", Value::from(2)),
            ("a", Value::from(1)),
            ("d", Value::from(4)),
        ]);
        let query = "query ($no: Boolean = true) {
            a @skip(if: $no) b ...F ... on Query { c @include(if: false) d } a c
        } fragment F on Query { c a }";
        let data = restored(query, serde_json::json!({}), data.clone());
        assert_eq!(keys(&data), ["b", "c", "a", "d"]);
        let again = restored(
            "query ($no: Boolean = true) { a @skip(if: $no) b }",
            serde_json::json!({ "no": false }),
            object(&[("b", Value::from(2)), ("a", Value::from(1))]),
        );
        assert_eq!(keys(&again), ["a", "b"]);
    }

    #[test]
    fn a_field_asked_twice_merges_its_selections_in_order() {
        let data = object(&[(
            "g",
            object(&[
                ("y", Value::from(2)),
                ("x", Value::from(1)),
                ("w", Value::from(0)),
            ]),
        )]);
        let data = restored("{ g { x } g { w y } }", serde_json::json!({}), data);
        let Value::Object(map) = &data else {
            panic!("object")
        };
        assert_eq!(keys(map.get("g").expect("g")), ["x", "w", "y"]);
    }
}
