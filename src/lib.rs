//! group-licensing: group-based licensing with per-user errors, policy in a rules language.
//!
//! Layers, data flowing one way: [`rules`] (grammar → AST → compiled table).

pub mod rules;
