//! What a single GraphQL request may ask for.
//!
//! The limits are sized from the dashboard queries of the README and graphql-api.md, GraphiQL's
//! introspection query, and the benchmark's largest page (1,000 members in error, each with
//! every assignment state and its error details), with room to spare:
//!
//! | limit | value | what it must let through |
//! | --- | --- | --- |
//! | text nesting (`{`, `[`, `(`) | 64 | GraphiQL's introspection query |
//! | field depth | 20 | GraphiQL's introspection query (the deepest legitimate request) |
//! | complexity | 500,000 | a page of 1,000 members in error with every detail: 280,002 |
//! | aliases | 1,000 | 500 `createUser` in one request (the tests load tenants so) |
//! | directives on one field | 5 | 1 (`@include`/`@skip`) |
//!
//! `tests/server/security.rs` runs the introspection query and that page against the limits.
//!
//! Complexity counts one per field, times the page size (`first`, default 100, at most 1,000)
//! for a paged list and times an estimate for other lists that can be long, so a page nested
//! in a page is priced at what it could cost.
//!
//! The text is checked before it is parsed: the parser is recursive, and a request of a
//! million `[` must be refused before it reaches it.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Positioned, ServerError, Variables};

use super::ApiSchema;

pub const MAX_NESTING: usize = 64;
pub const MAX_DEPTH: usize = 20;
pub const MAX_COMPLEXITY: usize = 500_000;
pub const MAX_ALIASES: usize = 1_000;
pub const MAX_DIRECTIVES: usize = 5;

/// Items assumed for a list of the whole catalog (products, service plans).
pub const CATALOG_LIST: usize = 1_000;
/// Items assumed for a list of one user or one product (groups, assignment states).
pub const SHORT_LIST: usize = 10;

/// `first` as the server will apply it (graphql-api.md: default 100, capped at 1,000).
pub fn page_size(first: Option<i32>) -> usize {
    match first {
        None => 100,
        Some(n) => n.clamp(0, 1000) as usize,
    }
}

/// The complexity of a paged list (used by the field attributes).
pub fn page_cost(first: Option<i32>, child: usize) -> usize {
    page_size(first)
        .max(1)
        .saturating_mul(child)
        .saturating_add(1)
}

/// The complexity of an unpaged list assumed to hold `items`.
pub fn list_cost(items: usize, child: usize) -> usize {
    items.saturating_mul(child).saturating_add(1)
}

/// What the HTTP layer needs to know of a request before running it.
#[derive(Debug)]
pub struct Shape {
    /// The operation that would run is a mutation.
    pub mutation: bool,
    /// The parsed document, for the executor (which need not parse it again) and for putting
    /// the answer in order; `None` when it does not parse.
    pub document: Option<ExecutableDocument>,
}

/// A request refused by a limit: `code` goes to `extensions.code`.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

fn too_complex(message: String) -> Refused {
    Refused {
        code: "QUERY_TOO_COMPLEX",
        message,
    }
}

/// Checks the text limits and finds the kind of the operation. A document that does not parse
/// passes: the executor reports the syntax error with its position.
pub fn inspect(query: &str, operation: Option<&str>) -> Result<Shape, Refused> {
    let nesting = text_nesting(query);
    if nesting > MAX_NESTING {
        return Err(Refused {
            code: "QUERY_TOO_DEEP",
            message: format!(
                "the request nests brackets {nesting} deep; at most {MAX_NESTING} are allowed"
            ),
        });
    }
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return Ok(Shape {
            mutation: false,
            document: None,
        });
    };
    let mut count = Counts::default();
    for (_, op) in document.operations.iter() {
        count.walk(&op.node.selection_set);
    }
    for fragment in document.fragments.values() {
        count.walk(&fragment.node.selection_set);
    }
    if count.aliases > MAX_ALIASES {
        return Err(too_complex(format!(
            "the request has {} aliases; at most {MAX_ALIASES} are allowed",
            count.aliases
        )));
    }
    if count.most_directives > MAX_DIRECTIVES {
        return Err(too_complex(format!(
            "a field has {} directives; at most {MAX_DIRECTIVES} are allowed",
            count.most_directives
        )));
    }
    let mutation = document.operations.iter().any(|(name, op)| {
        let selected = match (operation, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            (Some(_), None) => false,
            (None, _) => true,
        };
        selected && op.node.ty == OperationType::Mutation
    });
    Ok(Shape {
        mutation,
        document: Some(document),
    })
}

#[derive(Default)]
struct Counts {
    aliases: usize,
    most_directives: usize,
}

impl Counts {
    // Recursion is bounded: the parser refuses selection sets nested deeper than 64.
    fn walk(&mut self, set: &Positioned<SelectionSet>) {
        for item in &set.node.items {
            match &item.node {
                Selection::Field(field) => {
                    if field.node.alias.is_some() {
                        self.aliases += 1;
                    }
                    self.most_directives = self.most_directives.max(field.node.directives.len());
                    self.walk(&field.node.selection_set);
                }
                Selection::InlineFragment(fragment) => {
                    self.most_directives = self.most_directives.max(fragment.node.directives.len());
                    self.walk(&fragment.node.selection_set);
                }
                Selection::FragmentSpread(spread) => {
                    self.most_directives = self.most_directives.max(spread.node.directives.len());
                }
            }
        }
    }
}

/// How deeply brackets nest, outside strings and comments.
fn text_nesting(query: &str) -> usize {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

// async-graphql's messages for its depth and complexity limits (`SchemaBuilder::limit_depth`,
// `limit_complexity`), which carry no code and do not say what the limit is.
const TOO_DEEP: &str = "Query is nested too deep.";
const TOO_COMPLEX: &str = "Query is too complex.";

/// Turns async-graphql's refusal of a request over [`MAX_DEPTH`] or [`MAX_COMPLEXITY`] into
/// ours, with a code and the limit; `false` if `error` is not one of them.
pub fn explain(error: &mut ServerError) -> bool {
    let (code, message) = match error.message.as_str() {
        TOO_DEEP => (
            "QUERY_TOO_DEEP",
            format!("the query nests fields too deep; at most {MAX_DEPTH} levels are allowed"),
        ),
        TOO_COMPLEX => (
            "QUERY_TOO_COMPLEX",
            format!(
                "the query could resolve too many fields; at most {MAX_COMPLEXITY} are allowed (one per field, times the page size for a paged list): ask for smaller pages or fewer fields"
            ),
        ),
        _ => return false,
    };
    error.message = message;
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    true
}

/// The schema without its depth and complexity limits, which validates a request and never
/// runs it. async-graphql checks those limits before it reports what validation found, so a
/// request with a wrong argument and a large page would hear only about its size; this tells
/// the server what else is wrong. Used only for requests a limit refused.
pub fn validator() -> ApiSchema {
    super::builder()
        .limit_recursive_depth(MAX_NESTING)
        .extension(ValidateOnly)
        .finish()
}

/// What validation finds in a request, limits aside (see [`validator`]). A request a limit
/// refused has always parsed: its document is given, not its text.
pub async fn validation_errors(
    validator: &ApiSchema,
    document: ExecutableDocument,
    operation: Option<String>,
    variables: Variables,
) -> Vec<ServerError> {
    let mut request = async_graphql::Request::new(String::new()).variables(variables);
    if let Some(name) = operation {
        request = request.operation_name(name);
    }
    request.set_parsed_query(document);
    validator.execute(request).await.errors
}

struct ValidateOnly;

impl ExtensionFactory for ValidateOnly {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ValidateOnly)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ValidateOnly {
    /// Reached only by a request that validated: it stops there, with nothing run.
    async fn execute(
        &self,
        _ctx: &ExtensionContext<'_>,
        _operation_name: Option<&str>,
        _next: NextExecute<'_>,
    ) -> async_graphql::Response {
        async_graphql::Response::new(async_graphql::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_ignores_brackets_in_strings_and_comments() {
        assert_eq!(text_nesting("{ a { b(x: [1]) } }"), 4);
        assert_eq!(text_nesting("{ a(s: \"{{{{[[[\") }"), 2);
        assert_eq!(text_nesting("# {{{{{{\n{ a }"), 1);
        assert_eq!(text_nesting("{ a(s: \"\"\" {{{ \\\"\"\" {{ \"\"\") }"), 2);
        assert_eq!(text_nesting("{ a(s: \"\\\"{{\") }"), 2);
        assert_eq!(text_nesting(&"[".repeat(1_000_000)), 1_000_000);
    }

    #[test]
    fn deep_text_is_refused_before_parsing() {
        let hostile = format!("{{ a(x: {}) }}", "[".repeat(100_000));
        let refused = inspect(&hostile, None).expect_err("refused");
        assert_eq!(refused.code, "QUERY_TOO_DEEP");
    }

    #[test]
    fn aliases_and_directives_are_counted_in_fragments_too() {
        let fields: String = (0..=MAX_ALIASES).map(|i| format!("a{i}: id ")).collect();
        let q = format!("{{ ...F }} fragment F on Query {{ {fields} }}");
        assert_eq!(
            inspect(&q, None).err().map(|r| r.code),
            Some("QUERY_TOO_COMPLEX")
        );
        let fields: String = (0..MAX_ALIASES).map(|i| format!("a{i}: id ")).collect();
        assert!(inspect(&format!("{{ {fields} }}"), None).is_ok());
        let directives = "@include(if: true) ".repeat(MAX_DIRECTIVES + 1);
        let q = format!("{{ rules {directives} {{ planCount }} }}");
        assert_eq!(
            inspect(&q, None).err().map(|r| r.code),
            Some("QUERY_TOO_COMPLEX")
        );
    }

    #[test]
    fn mutations_are_recognised_whatever_the_operation_chosen() {
        let is_mutation = |q: &str, op: Option<&str>| inspect(q, op).expect("ok").mutation;
        assert!(is_mutation("mutation { reloadRules { planCount } }", None));
        assert!(!is_mutation("{ rules { planCount } }", None));
        assert!(!is_mutation("query Q { rules { planCount } }", Some("Q")));
        assert!(is_mutation(
            "query Q { rules { planCount } } mutation M { reloadRules { planCount } }",
            Some("M")
        ));
        assert!(!is_mutation("not graphql {", None));
    }

    #[test]
    fn page_cost_follows_the_page_size_the_server_applies() {
        assert_eq!(page_cost(None, 10), 1_001);
        assert_eq!(page_cost(Some(5_000), 10), 10_001);
        assert_eq!(page_cost(Some(-3), 10), 11);
        assert_eq!(page_cost(Some(1000), usize::MAX), usize::MAX);
    }
}
