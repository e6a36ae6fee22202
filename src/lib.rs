//! group-licensing: group-based licensing with per-user errors, policy in a rules language.
//!
//! Layers, data flowing one way:
//! - [`rules`]: the policy admins write, grammar → AST → compiled, immutable rule table;
//! - [`engine`]: pure licensing decisions over the rule table (no I/O, no clock);
//! - [`store`]: SQLite, one writer thread, read-only connections, the durable work queue;
//! - [`processing`]: the background worker that drains the queue through the engine;
//! - [`api`]: the GraphQL schema over the store;
//! - [`scim`]: SCIM 2.0 provisioning (`/scim/v2`) over the same store operations;
//! - [`server`]: HTTP, GraphiQL, signals, demo data (and the command line in `main.rs`);
//! - [`telemetry`]: the counters `/metrics` reports, a leaf every layer above the engine adds to.

pub mod api;
pub mod engine;
pub mod processing;
pub mod rules;
pub mod scim;
pub mod server;
pub mod store;
pub mod telemetry;
