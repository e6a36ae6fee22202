//! Text → statements, with the pest grammar in `grammar.pest`.
//!
//! A file is parsed one statement at a time so that a mistake costs only its own statement: after
//! a parse error the parser skips to the next line that starts with a statement keyword and goes
//! on, and every error of the file is reported in one run.

use pest::Parser;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest_derive::Parser;

use super::ast::{FileId, LocationKind, Name, Span, Spanned, Statement};
use super::diagnostic::{Diagnostic, Severity, Sources};

#[derive(Parser)]
#[grammar = "rules/grammar.pest"]
struct RulesParser;

/// Where a parse error is and what it says; turned into a [`Diagnostic`] by the caller.
struct ParseError {
    at: usize,
    /// In bytes, like `at`: the two make the span that the diagnostic underlines.
    len: usize,
    message: String,
}

const STATEMENT_KEYWORDS: [&str; 7] = [
    "plan",
    "product",
    "exclusive",
    "conflict",
    "prerequisite",
    "unavailable",
    "available",
];

/// Parses one file, appending its statements to `out` and its errors to `diagnostics`.
pub fn parse_file(
    sources: &Sources,
    file: FileId,
    out: &mut Vec<Statement>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let text = sources.text(file);
    // A byte-order mark is what editors on Windows put in front of UTF-8; it is not a mistake.
    let mut pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
    // A file without mistakes is parsed in one go; statement by statement is only for recovery.
    if let Ok(pairs) = RulesParser::parse(Rule::file, &text[pos..]) {
        let build = Builder { file, offset: pos };
        for pair in pairs.flat_map(|file| file.into_inner()) {
            if pair.as_rule() != Rule::EOI {
                out.push(build.statement(pair));
            }
        }
        return;
    }
    while pos < text.len() {
        match next_statement(text, pos, file) {
            Ok(Some((statement, end))) => {
                out.push(statement);
                pos = end;
            }
            Ok(None) => break,
            Err(error) => {
                let span = Span {
                    file,
                    start: error.at,
                    end: error.at + error.len,
                };
                diagnostics.push(sources.diagnostic(Severity::Error, span, error.message));
                match resume_point(text, pos, error.at) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
}

/// Parses the statement that starts at or after `pos` (after blanks and comments). `Ok(None)` at
/// the end of the file; otherwise the statement and the offset just past it.
fn next_statement(
    text: &str,
    pos: usize,
    file: FileId,
) -> Result<Option<(Statement, usize)>, ParseError> {
    // The statement ends before the next line that starts with a statement keyword; parsing no
    // further keeps recovery linear (pest indexes the lines of all the input it is given). The
    // search starts on the statement's own line, not at the top of the file, for the same reason.
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let end = keyword_line(text, line_start, first_token(text, pos)).unwrap_or(text.len());
    let rest = &text[pos..end];
    let mut pairs =
        RulesParser::parse(Rule::one_statement, rest).map_err(|e| parse_error(text, pos, &e))?;
    let Some(pair) = pairs.next().and_then(|p| p.into_inner().next()) else {
        return Ok(None);
    };
    if pair.as_rule() == Rule::EOI {
        return Ok(None);
    }
    let end = pos + pair.as_span().end();
    let build = Builder { file, offset: pos };
    Ok(Some((build.statement(pair), end)))
}

/// Where to go on after an error at `error_at` in the statement that began at or after
/// `statement_start`: the first line, from the error's own line on, that starts with a statement
/// keyword and lies past the statement's start.
fn resume_point(text: &str, statement_start: usize, error_at: usize) -> Option<usize> {
    let line_start = text[..error_at.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    keyword_line(text, line_start, first_token(text, statement_start))
}

/// The offset of the first statement keyword that starts a line, searching the lines from the
/// one that begins at `line_start`, and lying past `after`.
fn keyword_line(text: &str, line_start: usize, after: usize) -> Option<usize> {
    let mut offset = line_start;
    for line in text[line_start..].split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let token_at = offset + indent;
        if token_at > after && starts_with_keyword(line.trim_start()) {
            return Some(token_at);
        }
        offset += line.len();
    }
    None
}

/// The offset of the first character after `pos` that is neither blank nor in a comment.
fn first_token(text: &str, mut pos: usize) -> usize {
    loop {
        let rest = &text[pos..];
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if trimmed.starts_with('#') {
            pos += trimmed.find('\n').unwrap_or(trimmed.len());
        } else {
            return pos;
        }
    }
}

fn starts_with_keyword(line: &str) -> bool {
    STATEMENT_KEYWORDS.iter().any(|kw| {
        line.strip_prefix(kw)
            .is_some_and(|after| after.starts_with([' ', '\t']))
    })
}

fn parse_error(text: &str, offset: usize, error: &pest::error::Error<Rule>) -> ParseError {
    let at = offset
        + match error.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
    let found = describe_found(text, at);
    let len = found.len;
    let message = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            if positives.contains(&Rule::closing_quote) {
                "this quoted name has no closing `\"` on its line".to_string()
            } else {
                format!(
                    "expected {}, found {}",
                    describe_expected(positives),
                    found.text
                )
            }
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    ParseError { at, len, message }
}

struct Found {
    text: String,
    /// The token's length in bytes.
    len: usize,
}

/// Names what stands at `at` the way an admin would see it: a word, a quoted name, a symbol, or
/// the end of the line or file.
fn describe_found(text: &str, at: usize) -> Found {
    let rest = &text[at.min(text.len())..];
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let Some(first) = rest.chars().next() else {
        return Found {
            text: "the end of the file".into(),
            len: 1,
        };
    };
    if first == '\n' || first == '\r' {
        return Found {
            text: "the end of the line".into(),
            len: 1,
        };
    }
    let token = if is_name_char(first) {
        rest.split(|c: char| !is_name_char(c)).next().unwrap_or("")
    } else if first == '"' {
        let line = rest.lines().next().unwrap_or(rest);
        match line[1..].find('"') {
            Some(close) => &line[..close + 2],
            None => line,
        }
    } else {
        &rest[..first.len_utf8()]
    };
    let shown: String = token.chars().take(40).collect();
    let kind = if token.starts_with('"') {
        "the quoted name"
    } else if is_name_char(first) {
        "the word"
    } else {
        "the character"
    };
    Found {
        text: format!("{kind} `{shown}`"),
        len: token.len().max(1),
    }
}

const STATEMENT_START: &str = "a statement (`plan`, `product`, `exclusive`, `conflict`, `prerequisite`, `unavailable` or `available`)";

fn describe_expected(positives: &[Rule]) -> String {
    let keywords = STATEMENT_KEYWORDS.len();
    let statement_starts = positives
        .iter()
        .filter(|r| {
            matches!(
                r,
                Rule::kw_plan
                    | Rule::kw_product
                    | Rule::kw_exclusive
                    | Rule::kw_conflict
                    | Rule::kw_prerequisite
                    | Rule::kw_unavailable
                    | Rule::kw_available
            )
        })
        .count();
    let mut words: Vec<&str> = Vec::new();
    if statement_starts == keywords {
        words.push(STATEMENT_START);
    }
    for rule in positives {
        // "or the end of the file" adds nothing once a statement is what is expected.
        if *rule == Rule::EOI && words.contains(&STATEMENT_START) {
            continue;
        }
        let word = describe_rule(*rule);
        if !word.is_empty() && !words.contains(&word) {
            words.push(word);
        }
    }
    match words.as_slice() {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// The words for a token of the grammar. Keywords that start statements are described together
/// by the caller.
fn describe_rule(rule: Rule) -> &'static str {
    match rule {
        Rule::one_statement | Rule::file => STATEMENT_START,
        Rule::bare_name | Rule::quoted => "a name",
        Rule::display_name => "a display name in double quotes",
        Rule::label => "a label in double quotes",
        Rule::string_body | Rule::escape => "the rest of the quoted name",
        Rule::closing_quote => "a closing `\"`",
        Rule::guid => "a GUID",
        Rule::country => "a country code",
        Rule::equals => "`=`",
        Rule::open_brace => "`{`",
        Rule::close_brace => "`}`",
        Rule::comma => "`,`",
        Rule::kw_with => "`with`",
        Rule::kw_requires => "`requires`",
        Rule::kw_in => "`in`",
        Rule::kw_only => "`only`",
        Rule::kw_id => "`id`",
        Rule::EOI => "the end of the file",
        // Statement keywords are described together by the caller; the structural rules are
        // never the innermost thing expected.
        _ => "",
    }
}

/// Turns pest pairs into statements. The grammar guarantees the shape of every pair it hands
/// over, so a missing child is a bug in this file, never in the input; it is still not a panic:
/// the builder falls back to empty values that the compiler would reject.
struct Builder {
    file: FileId,
    offset: usize,
}

impl Builder {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span {
            file: self.file,
            start: self.offset + s.start(),
            end: self.offset + s.end(),
        }
    }

    fn name(&self, pair: Pair<'_, Rule>) -> Name {
        let span = self.span(&pair);
        let value = match pair.as_rule() {
            Rule::quoted | Rule::display_name | Rule::label => unescape(
                pair.into_inner()
                    .find(|p| p.as_rule() == Rule::string_body)
                    .map_or("", |p| p.as_str()),
            ),
            _ => pair.as_str().to_string(),
        };
        Spanned { value, span }
    }

    fn list(&self, pair: Pair<'_, Rule>) -> Vec<Name> {
        pair.into_inner()
            .filter(|p| matches!(p.as_rule(), Rule::bare_name | Rule::quoted | Rule::country))
            .map(|p| self.name(p))
            .collect()
    }

    fn statement(&self, pair: Pair<'_, Rule>) -> Statement {
        let rule = pair.as_rule();
        let whole = self.span(&pair);
        let mut names: Vec<Name> = Vec::new();
        let mut id = None;
        let mut list = Vec::new();
        let mut list_span = whole;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::bare_name | Rule::quoted => names.push(self.name(child)),
                Rule::display_name | Rule::label => names.push(self.name(child)),
                Rule::id_clause => {
                    id = child
                        .into_inner()
                        .find(|p| p.as_rule() == Rule::guid)
                        .map(|p| self.name(p));
                }
                Rule::plan_list | Rule::country_list => {
                    list_span = self.span(&child);
                    list = self.list(child);
                }
                _ => {}
            }
        }
        let mut names = names.into_iter();
        let mut next = || {
            names.next().unwrap_or(Spanned {
                value: String::new(),
                span: whole,
            })
        };
        match rule {
            Rule::plan_decl => Statement::Plan {
                name: next(),
                display_name: next(),
                id,
            },
            Rule::product_decl => Statement::Product {
                name: next(),
                display_name: next(),
                id,
                plans: list,
            },
            Rule::exclusive_decl => Statement::Exclusive {
                label: next(),
                plans: list,
                from_conflict: false,
            },
            Rule::conflict_decl => {
                let a = next();
                let b = next();
                let label = Spanned {
                    value: format!("{} with {}", a.value, b.value),
                    span: whole,
                };
                Statement::Exclusive {
                    label,
                    plans: vec![a, b],
                    from_conflict: true,
                }
            }
            Rule::prerequisite_decl => Statement::Prerequisite {
                plan: next(),
                requires: list,
            },
            Rule::available_decl => Statement::Location {
                plan: next(),
                rule: LocationKind::AvailableOnly,
                countries: list,
                list: list_span,
            },
            _ => Statement::Location {
                plan: next(),
                rule: LocationKind::Unavailable,
                countries: list,
                list: list_span,
            },
        }
    }
}

fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `name` so that the parser reads it back as the same name: bare when it can be, quoted
/// with `\"` and `\\` escaped otherwise.
pub fn quote_name(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if bare {
        name.to_string()
    } else {
        quote_string(name)
    }
}

/// A double-quoted string literal of the rules language.
pub fn quote_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
