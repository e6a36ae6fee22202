//! group-licensing: group-based licensing with per-user errors, policy in a rules language.
//!
//! Layers, data flowing one way: [`rules`] (grammar → AST → compiled table) → [`engine`] (pure
//! licensing decisions).

pub mod engine;
pub mod rules;
pub mod server;
