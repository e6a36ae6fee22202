//! Bearer tokens and the three roles: admin, reader, and provisioning (SCIM only, scim.md).
//!
//! Tokens come from files (one per line, `#` comments and blank lines ignored, several lines
//! for rotation; a line may name its token, `NAME TOKEN`) and from environment variables
//! (separated by commas or whitespace). A token's name is who the history says made a change
//! (licensing.md H3); an unnamed token is named by the first 8 hex digits of its SHA-256. Only the
//! SHA-256 digest of each token is kept; a presented token is hashed and compared with every
//! known digest in constant time, so neither the time taken nor the memory of the process
//! tells anything about a token's length or content. Tokens are never logged: errors about a
//! token file name the file and the line, never the token.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest accepted token: anything shorter could be guessed by trying.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest accepted token (a header is not a place for a document).
pub const MAX_TOKEN_LEN: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// May run queries.
    Reader,
    /// May run queries and mutations.
    Admin,
    /// May use `/scim/v2` only (users, groups, memberships), never GraphQL.
    Provisioning,
}

/// Where the tokens of each role come from.
#[derive(Clone, Default)]
pub struct TokenSources {
    pub admin_file: Option<PathBuf>,
    pub reader_file: Option<PathBuf>,
    /// `--provisioning-token-file`: tokens for SCIM only.
    pub provisioning_file: Option<PathBuf>,
    /// The value of `GROUP_LICENSING_ADMIN_TOKENS`.
    pub admin_env: Option<String>,
    /// The value of `GROUP_LICENSING_READER_TOKENS`.
    pub reader_env: Option<String>,
}

// A derived Debug would print the tokens given through the environment.
impl fmt::Debug for TokenSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSources")
            .field("admin_file", &self.admin_file)
            .field("reader_file", &self.reader_file)
            .field("provisioning_file", &self.provisioning_file)
            .field("admin_env", &self.admin_env.as_ref().map(|_| "<redacted>"))
            .field(
                "reader_env",
                &self.reader_env.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {reason}")]
    BadToken { origin: String, reason: String },
    #[error("{origin} holds no token")]
    Empty { origin: String },
    #[error("{origin}: a token is given both as {first} token and as {second} token")]
    BothRoles {
        origin: String,
        first: &'static str,
        second: &'static str,
    },
}

/// Digests of the tokens of each role.
#[derive(Default)]
pub struct Tokens {
    admin: Vec<Known>,
    reader: Vec<Known>,
    provisioning: Vec<Known>,
}

/// A token's digest and its name.
#[derive(Clone)]
struct Known {
    digest: [u8; 32],
    name: String,
}

/// Who a request is: its role, and the name of its token (`None` on a server without tokens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    pub name: Option<String>,
}

impl Caller {
    /// Who the history names for this caller (H3): its token's name, of the provisioning kind
    /// for a provisioning token; `local` on a server without tokens.
    pub fn actor(&self) -> crate::store::history::Actor {
        use crate::store::history::{Actor, ActorKind};
        match &self.name {
            Some(name) => Actor {
                kind: if self.role == Role::Provisioning {
                    ActorKind::Provisioning
                } else {
                    ActorKind::Token
                },
                name: name.clone(),
            },
            None => Actor::local(),
        }
    }
}

/// Longest token name.
pub const MAX_NAME_LEN: usize = 64;

impl Tokens {
    /// No token at all: the server is open to whoever can reach it (loopback only).
    pub fn is_empty(&self) -> bool {
        self.admin.is_empty() && self.reader.is_empty() && self.provisioning.is_empty()
    }

    pub fn provisioning_count(&self) -> usize {
        self.provisioning.len()
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.admin.len(), self.reader.len())
    }

    /// The role of a presented token, if it is one of ours. Every digest is compared, whatever
    /// matched before.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        self.caller_of(presented).map(|c| c.role)
    }

    /// The role and name of a presented token, if it is one of ours.
    pub fn caller_of(&self, presented: &str) -> Option<Caller> {
        let digest = digest(presented);
        let mut found: Option<Caller> = None;
        for (role, list) in [
            (Role::Admin, &self.admin),
            (Role::Reader, &self.reader),
            (Role::Provisioning, &self.provisioning),
        ] {
            for known in list {
                if bool::from(known.digest.ct_eq(&digest)) && found.is_none() {
                    found = Some(Caller {
                        role,
                        name: Some(known.name.clone()),
                    });
                }
            }
        }
        found
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenSources {
    /// Whether any source of tokens was given (then an empty source is an error).
    pub fn configured(&self) -> bool {
        self.admin_file.is_some()
            || self.reader_file.is_some()
            || self.provisioning_file.is_some()
            || self.admin_env.is_some()
            || self.reader_env.is_some()
    }

    /// Reads every source. Any bad line, an empty source, or a token given for both roles is
    /// an error: a half-read token list would lock out someone, or let someone in.
    pub fn load(&self) -> Result<Tokens, AuthError> {
        let mut tokens = Tokens::default();
        if let Some(path) = &self.admin_file {
            tokens.admin.extend(from_file(path)?);
        }
        if let Some(text) = &self.admin_env {
            tokens
                .admin
                .extend(from_env("GROUP_LICENSING_ADMIN_TOKENS", text)?);
        }
        if let Some(path) = &self.reader_file {
            tokens.reader.extend(from_file(path)?);
        }
        if let Some(text) = &self.reader_env {
            tokens
                .reader
                .extend(from_env("GROUP_LICENSING_READER_TOKENS", text)?);
        }
        if let Some(path) = &self.provisioning_file {
            tokens.provisioning.extend(from_file(path)?);
        }
        let roles = [
            ("an admin", &tokens.admin),
            ("a reader", &tokens.reader),
            ("a provisioning", &tokens.provisioning),
        ];
        for (i, (first, a)) in roles.iter().enumerate() {
            for (second, b) in &roles[i + 1..] {
                if a.iter().any(|t| b.iter().any(|u| u.digest == t.digest)) {
                    return Err(AuthError::BothRoles {
                        origin: "the configured tokens".into(),
                        first,
                        second,
                    });
                }
            }
        }
        Ok(tokens)
    }
}

fn from_file(path: &Path) -> Result<Vec<Known>, AuthError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: origin.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{origin}, line {}", n + 1);
        let mut words = line.split_whitespace();
        let (name, token) = match (words.next(), words.next(), words.next()) {
            (Some(token), None, _) => (None, token),
            (Some(name), Some(token), None) => (Some(checked_name(name, at)?), token),
            _ => {
                return Err(AuthError::BadToken {
                    origin: at(),
                    reason: "a line holds a token, or a name and a token (`NAME TOKEN`)".into(),
                });
            }
        };
        out.push(known(checked(token, at)?, name));
    }
    if out.is_empty() {
        return Err(AuthError::Empty { origin });
    }
    Ok(out)
}

fn from_env(name: &str, text: &str) -> Result<Vec<Known>, AuthError> {
    let mut out = Vec::new();
    for (n, token) in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .enumerate()
    {
        out.push(known(
            checked(token, || format!("{name}, token {}", n + 1))?,
            None,
        ));
    }
    if out.is_empty() {
        return Err(AuthError::Empty {
            origin: name.into(),
        });
    }
    Ok(out)
}

/// A token with its name, or the first 8 hex digits of its digest for a name (H3).
fn known(digest: [u8; 32], name: Option<String>) -> Known {
    let name = name.unwrap_or_else(|| digest[..4].iter().map(|b| format!("{b:02x}")).collect());
    Known { digest, name }
}

/// A token's name: letters, digits and `- _ . @` (H3), so that it reads as a name in the
/// history and in a CSV cell, and can never be mistaken for a token.
fn checked_name(name: &str, origin: impl Fn() -> String) -> Result<String, AuthError> {
    let bad = |reason: String| AuthError::BadToken {
        origin: origin(),
        reason,
    };
    if name.chars().count() > MAX_NAME_LEN {
        return Err(bad(format!(
            "a token's name has at most {MAX_NAME_LEN} characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || "-_.@".contains(c))
    {
        return Err(bad(
            "a token's name may only hold letters, digits and - _ . @".into(),
        ));
    }
    Ok(name.to_string())
}

/// A token must be usable in an `Authorization: Bearer` header as it is (RFC 6750's
/// `b64token` characters) and long enough not to be guessed.
fn checked(token: &str, origin: impl Fn() -> String) -> Result<[u8; 32], AuthError> {
    let bad = |reason: String| AuthError::BadToken {
        origin: origin(),
        reason,
    };
    if token.len() < MIN_TOKEN_LEN {
        return Err(bad(format!(
            "a token must have at least {MIN_TOKEN_LEN} characters"
        )));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(bad(format!(
            "a token must have at most {MAX_TOKEN_LEN} characters"
        )));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
    {
        return Err(bad(
            "a token may only hold letters, digits and - . _ ~ + / =".into(),
        ));
    }
    Ok(digest(token))
}

/// Why a request was refused before it ran.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer <token>`, or a token we do not know.
    Invalid,
}

/// The tokens in force; replaced whole when the files are read again (SIGHUP).
pub struct Auth {
    sources: TokenSources,
    tokens: RwLock<Arc<Tokens>>,
    /// Counts the reloads that replaced the tokens: live connections check theirs again.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Auth {
    pub fn new(sources: TokenSources, tokens: Tokens) -> Auth {
        Auth {
            sources,
            tokens: RwLock::new(Arc::new(tokens)),
            changes: tokio::sync::watch::channel(0).0,
        }
    }

    /// Changes each time the tokens in force are replaced.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn current(&self) -> Arc<Tokens> {
        match self.tokens.read() {
            Ok(t) => t.clone(),
            // A panic while swapping cannot leave a half-written Arc: the value is still whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The role of a request: everyone is admin when no token is configured.
    pub fn role(&self, headers: &HeaderMap) -> Result<Role, Refusal> {
        self.caller(headers).map(|c| c.role)
    }

    /// The role of a request and its token's name: everyone is an unnamed admin when no token
    /// is configured.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let tokens = self.current();
        if tokens.is_empty() {
            return Ok(Caller {
                role: Role::Admin,
                name: None,
            });
        }
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(Refusal::Missing)?
            .to_str()
            .map_err(|_| Refusal::Invalid)?;
        Self::caller_in(&tokens, value)
    }

    /// [`Auth::caller`] for an `Authorization` value given some other way (a WebSocket's
    /// `connection_init` payload).
    pub fn caller_of(&self, authorization: Option<&str>) -> Result<Caller, Refusal> {
        let tokens = self.current();
        if tokens.is_empty() {
            return Ok(Caller {
                role: Role::Admin,
                name: None,
            });
        }
        Self::caller_in(&tokens, authorization.ok_or(Refusal::Missing)?)
    }

    fn caller_in(tokens: &Tokens, value: &str) -> Result<Caller, Refusal> {
        let (scheme, token) = value.trim().split_once(' ').ok_or(Refusal::Invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Refusal::Invalid);
        }
        tokens.caller_of(token.trim()).ok_or(Refusal::Invalid)
    }

    /// Reads the token files again. On any error the tokens in force stay.
    pub fn reload(&self) -> Result<(usize, usize), AuthError> {
        if !self.sources.configured() {
            return Ok((0, 0));
        }
        let fresh = self.sources.load()?;
        let counts = fresh.counts();
        match self.tokens.write() {
            Ok(mut t) => *t = Arc::new(fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(fresh),
        }
        self.changes.send_modify(|n| *n += 1);
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    const A: &str = "admin-token-0123456789";
    const B: &str = "admin-token-rotated-9876";
    const R: &str = "reader-token-0123456789";

    #[test]
    fn tokens_of_each_role_are_recognised_and_others_are_not() {
        let dir = tempfile::tempdir().expect("dir");
        let sources = TokenSources {
            admin_file: Some(write(
                dir.path(),
                "a",
                &format!("# admins\n{A}\n\n  {B}  \n"),
            )),
            reader_file: Some(write(dir.path(), "r", &format!("{R}\n"))),
            ..TokenSources::default()
        };
        let tokens = sources.load().expect("load");
        assert_eq!(tokens.counts(), (2, 1));
        assert_eq!(tokens.role_of(A), Some(Role::Admin));
        assert_eq!(tokens.role_of(B), Some(Role::Admin));
        assert_eq!(tokens.role_of(R), Some(Role::Reader));
        for other in [
            "",
            "admin-token-012345678",
            "admin-token-01234567890",
            "# admins",
        ] {
            assert_eq!(tokens.role_of(other), None, "{other}");
        }
    }

    #[test]
    fn bad_token_sources_are_refused_without_echoing_the_token() {
        let dir = tempfile::tempdir().expect("dir");
        let secret_short = "short-secret";
        let cases = [
            (format!("{A}\n{secret_short}\n"), "line 2", "at least 16"),
            (
                "# nothing\n\n".to_string(),
                "holds no token",
                "holds no token",
            ),
            (
                format!("ann {A} trailing-part-here\n"),
                "line 1",
                "a name and a token",
            ),
            (
                format!("ann,bob {A}\n"),
                "line 1",
                "a token's name may only hold",
            ),
            (
                format!("{} {A}\n", "n".repeat(MAX_NAME_LEN + 1)),
                "line 1",
                "at most",
            ),
        ];
        for (text, place, reason) in cases {
            let sources = TokenSources {
                admin_file: Some(write(dir.path(), "a", &text)),
                ..TokenSources::default()
            };
            let message = match sources.load() {
                Ok(_) => panic!("accepted {text:?}"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains(place), "{message}");
            assert!(message.contains(reason), "{message}");
            assert!(
                !message.contains(secret_short) && !message.contains(A),
                "{message}"
            );
        }
        let missing = TokenSources {
            reader_file: Some(dir.path().join("missing")),
            ..TokenSources::default()
        };
        assert!(matches!(missing.load(), Err(AuthError::Read { .. })));
        let both = TokenSources {
            admin_env: Some(A.into()),
            reader_env: Some(format!("{R}, {A}")),
            ..TokenSources::default()
        };
        assert!(matches!(both.load(), Err(AuthError::BothRoles { .. })));
    }

    #[test]
    fn environment_tokens_split_on_commas_and_whitespace() {
        let sources = TokenSources {
            admin_env: Some(format!(" {A},{B}\n")),
            reader_env: Some(R.into()),
            ..TokenSources::default()
        };
        let tokens = sources.load().expect("load");
        assert_eq!(tokens.counts(), (2, 1));
        assert!(!format!("{sources:?}").contains(A));
    }

    #[test]
    fn the_authorization_header_must_be_a_known_bearer_token() {
        let sources = TokenSources {
            admin_env: Some(A.into()),
            reader_env: Some(R.into()),
            ..TokenSources::default()
        };
        let auth = Auth::new(sources.clone(), sources.load().expect("load"));
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().expect("header"));
            auth.role(&h)
        };
        assert_eq!(auth.role(&HeaderMap::new()), Err(Refusal::Missing));
        assert_eq!(with(&format!("Bearer {A}")), Ok(Role::Admin));
        assert_eq!(with(&format!("bearer  {R}")), Ok(Role::Reader));
        assert_eq!(with(&format!("Basic {A}")), Err(Refusal::Invalid));
        assert_eq!(with(A), Err(Refusal::Invalid));
        assert_eq!(with("Bearer nope-nope-nope-nope"), Err(Refusal::Invalid));
        let open = Auth::new(TokenSources::default(), Tokens::default());
        assert_eq!(open.role(&HeaderMap::new()), Ok(Role::Admin));
    }
}
