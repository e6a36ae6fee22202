//! The rules layer: the policy admins write (`*.rules` files) → parsed statements → a compiled,
//! immutable [`RuleTable`] that the engine consults.
//!
//! Data flows one way: [`parser`] (pest grammar) → [`ast`] → [`mod@compile`] → [`table`]. Nothing
//! here does I/O except [`load_dir`], which reads a folder of files.

pub mod ast;
pub mod catalog;
pub mod compile;
pub mod country;
pub mod diagnostic;
pub mod live;
pub mod parser;
pub mod planset;
pub mod table;

use std::path::{Path, PathBuf};

pub use compile::{CompileFailure, Compiled, compile};
pub use country::Country;
pub use diagnostic::{Diagnostic, Severity, Sources};
pub use planset::{MAX_PLANS, PlanId, PlanSet, ProductId};
pub use table::RuleTable;

/// Why a folder of rules could not be turned into a table.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no *.rules files in {}", .0.display())]
    NoFiles(PathBuf),
    #[error("{} error(s) in the rules", .0.errors.len())]
    Invalid(CompileFailure),
}

/// Reads every `*.rules` file directly in `dir`, in name order, and compiles them as one
/// namespace. Files are named in diagnostics as `dir/file`.
pub fn load_dir(dir: &Path) -> Result<Compiled, RulesError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RulesError::Io { path, source }
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "rules") && path.is_file() {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(RulesError::NoFiles(dir.to_path_buf()));
    }
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in &paths {
        let bytes = std::fs::read(path).map_err(io(path))?;
        files.push((path.display().to_string(), bytes));
    }
    compile_files(files).map_err(RulesError::Invalid)
}

/// Compiles files given as `(name, bytes)` pairs, in the order given, as one namespace: what
/// [`load_dir`] does once it has read them. A file that is not UTF-8 is an error pointing at its
/// first bad byte; the other files are still checked.
pub fn compile_files(
    files: impl IntoIterator<Item = (String, Vec<u8>)>,
) -> Result<Compiled, CompileFailure> {
    let mut sources = Sources::default();
    let mut encoding_errors = Vec::new();
    for (name, bytes) in files {
        match String::from_utf8(bytes) {
            Ok(text) => {
                sources.add(name, text);
            }
            Err(e) => {
                // Report where the bad byte is, and still check the other files.
                let valid = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let file = sources.add(name, String::new());
                let mut one = Sources::default();
                let shown = one.add(sources.name(file), text);
                let at = String::from_utf8_lossy(&e.as_bytes()[..valid]).len();
                encoding_errors.push(one.diagnostic(
                    Severity::Error,
                    ast::Span {
                        file: shown,
                        start: at,
                        end: at + 1,
                    },
                    "this file is not valid UTF-8: save it as UTF-8".into(),
                ));
            }
        }
    }
    let compiled = compile(&sources);
    match (compiled, encoding_errors.is_empty()) {
        (Ok(compiled), true) => Ok(compiled),
        (Ok(compiled), false) => Err(CompileFailure {
            errors: encoding_errors,
            warnings: compiled.warnings,
        }),
        (Err(mut failure), _) => {
            failure.errors.extend(encoding_errors);
            Err(failure)
        }
    }
}

/// Compiles rules held in memory: `(file name, text)` pairs in the order given.
pub fn compile_texts<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Compiled, CompileFailure> {
    let mut sources = Sources::default();
    for (name, text) in files {
        sources.add(name, text);
    }
    compile(&sources)
}
