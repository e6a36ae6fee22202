//! Every error of a response carries `extensions.code` (graphql-api.md conventions), also the
//! ones async-graphql makes itself before a resolver of ours runs: a document that does not
//! parse or validate, a variable of the wrong type, an argument out of its scalar's range
//! (`units: 2147483648`). Without this, a client could not tell "you sent something wrong" from
//! "the server failed".

use async_graphql::{Response, ServerError};

use super::limits;

/// What async-graphql's own argument coercion puts before its message (`InputValueError`).
const COERCION_PREFIX: &str = "Failed to parse \"";

/// How far a request got, as its answer shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It ran, with or without field errors.
    Executed,
    /// The document did not parse or validate, or the variables did not coerce.
    Invalid,
    /// A depth or complexity limit refused it.
    Limited,
}

/// Gives every error of `response` its code and says how far the request got. Run on the
/// finished response rather than as an async-graphql extension: any extension makes the
/// executor take its slow path for every field of every answer.
pub fn add_codes(response: &mut Response) -> Verdict {
    let mut limited = false;
    for error in &mut response.errors {
        if limits::explain(error) {
            limited = true;
        } else {
            add_code(error);
        }
    }
    // An error raised while executing has a path (a failed root field too, even when it
    // leaves `data` null); only the checks before execution make errors without one.
    let before_execution = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    match (before_execution, limited) {
        (false, _) => Verdict::Executed,
        (true, true) => Verdict::Limited,
        (true, false) => Verdict::Invalid,
    }
}

/// The client's fault when the error came before execution (no path) or from coercing an
/// argument; otherwise a resolver failed without saying why, which is the server's.
fn add_code(error: &mut ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if has_code {
        return;
    }
    let code = if error.path.is_empty() || error.message.starts_with(COERCION_PREFIX) {
        "BAD_USER_INPUT"
    } else {
        "INTERNAL_SERVER_ERROR"
    };
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{ErrorExtensionValues, PathSegment, Pos};

    fn error(message: &str, path: &[&str]) -> ServerError {
        let mut e = ServerError::new(message, Some(Pos { line: 1, column: 1 }));
        e.path = path
            .iter()
            .map(|p| PathSegment::Field((*p).to_string()))
            .collect();
        e
    }

    fn code_of(e: &ServerError) -> Option<String> {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .map(ToString::to_string)
    }

    #[test]
    fn codes_tell_the_clients_fault_from_the_servers_and_keep_existing_ones() {
        let mut validation = error("Unknown argument \"x\" on field \"reloadRules\"", &[]);
        let mut coercion = error(
            "Failed to parse \"Int\": Only integers from -2147483648 to 2147483647 are accepted.",
            &["setPrepaidUnits"],
        );
        let mut resolver = error("Data `AppState` does not exist.", &["directory"]);
        let mut coded = error("no user with id 9", &["updateUser"]);
        let mut ext = ErrorExtensionValues::default();
        ext.set("code", "NOT_FOUND");
        coded.extensions = Some(ext);
        for e in [&mut validation, &mut coercion, &mut resolver, &mut coded] {
            add_code(e);
        }
        assert_eq!(code_of(&validation).as_deref(), Some("\"BAD_USER_INPUT\""));
        assert_eq!(code_of(&coercion).as_deref(), Some("\"BAD_USER_INPUT\""));
        assert_eq!(
            code_of(&resolver).as_deref(),
            Some("\"INTERNAL_SERVER_ERROR\"")
        );
        assert_eq!(code_of(&coded).as_deref(), Some("\"NOT_FOUND\""));
    }
}
