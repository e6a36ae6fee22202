//! What the parser produces: statements as written, with the place of every name so that the
//! compiler can point at it.

/// Index of a file in a [`Sources`](super::diagnostic::Sources) set.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileId(pub usize);

/// A byte range in one file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

pub type Name = Spanned<String>;

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Statement {
    Plan {
        name: Name,
        display_name: Name,
        id: Option<Name>,
    },
    Product {
        name: Name,
        display_name: Name,
        id: Option<Name>,
        plans: Vec<Name>,
    },
    /// `exclusive "label" { … }` and `conflict A with B`, which is a two-plan exclusive set
    /// labelled by its own text.
    Exclusive {
        label: Name,
        plans: Vec<Name>,
        /// `conflict` rather than `exclusive`, for messages only.
        from_conflict: bool,
    },
    Prerequisite {
        plan: Name,
        requires: Vec<Name>,
    },
    Location {
        plan: Name,
        rule: LocationKind,
        countries: Vec<Name>,
        /// The whole list, so that an empty one can be pointed at.
        list: Span,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LocationKind {
    /// `unavailable PLAN in { … }`
    Unavailable,
    /// `available PLAN only in { … }`
    AvailableOnly,
}
