//! Diagnostics: what is wrong with a rules file, where, in words an admin understands.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::ast::{FileId, Span};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, as data: the CLI prints it, the server will show it over GraphQL.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file as it was named when loaded (e.g. `rules/policy.rules`).
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    /// The offending line, without its line break.
    pub source_line: String,
    /// How many characters the caret line underlines (at least one).
    pub width: usize,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column: message`, for a log line. A diagnostic that points at no line (line
    /// 0: the server's own, about a folder it could not read) is `file: message`.
    pub fn one_line(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.file, self.message)
        } else {
            format!(
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl fmt::Display for Diagnostic {
    /// ```text
    /// error: unknown plan `EXCHANGE_S_STANDRD`
    ///   --> rules/policy.rules:12:10
    ///    |
    /// 12 | conflict EXCHANGE_S_STANDRD with EXCHANGE_S_ENTERPRISE
    ///    |          ^^^^^^^^^^^^^^^^^^
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        writeln!(f, "{kind}: {}", self.message)?;
        writeln!(f, "{gutter}--> {}:{}:{}", self.file, self.line, self.column)?;
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{number} | {}", self.source_line)?;
        // Tabs before the caret are kept as tabs so that it lines up however the terminal
        // expands them.
        let pad: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{gutter} | {pad}{}", "^".repeat(self.width.max(1)))
    }
}

/// The files of one compilation, kept so that byte offsets can be turned into lines and columns.
/// Cloning shares the texts: the rule table keeps them, to point at a declaration later.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Sources {
    files: Vec<Arc<SourceFile>>,
}

/// The names and sizes only: a catalog's text would drown any message that prints a table.
impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.files.iter().map(|s| (&s.name, s.text.len())))
            .finish()
    }
}

#[derive(PartialEq, Eq)]
struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl Sources {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.files.push(Arc::new(SourceFile {
            name: name.into(),
            text,
            line_starts,
        }));
        FileId(self.files.len() - 1)
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.files[file.0].text
    }

    pub fn name(&self, file: FileId) -> &str {
        &self.files[file.0].name
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.name.as_str())
    }

    pub fn ids(&self) -> impl Iterator<Item = FileId> + use<> {
        (0..self.files.len()).map(FileId)
    }

    /// A diagnostic pointing at `span`; a span that runs over several lines is underlined to the
    /// end of its first line.
    pub fn diagnostic(&self, severity: Severity, span: Span, message: String) -> Diagnostic {
        let file = &self.files[span.file.0];
        let start = floor_char_boundary(&file.text, span.start.min(file.text.len()));
        let line_index = file.line_starts.partition_point(|s| *s <= start) - 1;
        let line_start = file.line_starts[line_index];
        let line_end = file.text[line_start..]
            .find('\n')
            .map_or(file.text.len(), |i| line_start + i);
        let source_line = file.text[line_start..line_end].trim_end_matches('\r');
        // The `\r`s that end a line are not shown, so a place among them (the end of a file whose
        // last line ends in `\r`) is shown just past the line rather than past its edge.
        let start = start.min(line_start + source_line.len());
        let column = file.text[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(&file.text, span.end.clamp(start, line_end));
        let width = file.text[start..end].trim_end_matches('\r').chars().count();
        Diagnostic {
            severity,
            file: file.name.clone(),
            line: line_index + 1,
            column,
            message,
            source_line: source_line.to_string(),
            width: width.max(1),
        }
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let mut sources = Sources::default();
        let file = sources.add("a.rules", "plan A = \"é\"\r\n\tplan B = \"x\" zz\n");
        let zz = sources.text(file).find("zz").expect("zz is in the text");
        let d = sources.diagnostic(
            Severity::Error,
            Span {
                file,
                start: zz,
                end: zz + 2,
            },
            "oops".into(),
        );
        assert_eq!((d.line, d.column, d.width), (2, 15, 2));
        assert_eq!(d.source_line, "\tplan B = \"x\" zz");
        assert_eq!(
            d.to_string(),
            "error: oops\n --> a.rules:2:15\n  |\n2 | \tplan B = \"x\" zz\n  | \t             ^^"
        );
        let e = "é";
        let after = sources.text(file).find(e).expect("é is in the text") + e.len();
        let d = sources.diagnostic(
            Severity::Warning,
            Span {
                file,
                start: after,
                end: after,
            },
            "w".into(),
        );
        assert_eq!((d.line, d.column, d.width), (1, 12, 1));
    }

    #[test]
    fn one_line_names_the_place_unless_there_is_none() {
        let mut sources = Sources::default();
        let file = sources.add("c.rules", "plan A = \"a\"\nplan B");
        let span = Span {
            file,
            start: 18,
            end: 19,
        };
        let d = sources.diagnostic(Severity::Error, span, "here".into());
        assert_eq!(d.one_line(), "c.rules:2:6: here");
        let folder = Diagnostic {
            line: 0,
            column: 0,
            file: "rules".into(),
            ..d
        };
        assert_eq!(folder.one_line(), "rules: here");
    }

    #[test]
    fn a_span_at_the_end_of_the_file_is_shown_on_the_last_line() {
        let mut sources = Sources::default();
        let file = sources.add("b.rules", "plan A");
        let d = sources.diagnostic(
            Severity::Error,
            Span {
                file,
                start: 6,
                end: 6,
            },
            "end".into(),
        );
        assert_eq!((d.line, d.column), (1, 7));
    }
}
