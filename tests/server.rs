//! Integration tests of the GraphQL server: the real `group-licensing serve` binary, started on
//! a fresh database in a temporary folder, driven over HTTP (graphql-api.md). Every seed scenario
//! (S1–S9 of seed-scenarios.md) is played through the API; rule ids refer to licensing.md.
//!
//! One test binary with modules, for build time.

#[path = "server/harness.rs"]
mod harness;

#[path = "server/bad_input.rs"]
mod bad_input;
#[path = "server/concurrency.rs"]
mod concurrency;
#[path = "server/conformance.rs"]
mod conformance;
#[path = "server/crash.rs"]
mod crash;
#[path = "server/durability.rs"]
mod durability;
#[path = "server/errors.rs"]
mod errors;
#[path = "server/exports.rs"]
mod exports;
#[path = "server/history.rs"]
mod history;
#[path = "support/history_replay.rs"]
mod history_replay;
#[path = "server/http.rs"]
mod http;
#[path = "server/lifecycle.rs"]
mod lifecycle;
#[path = "server/metrics.rs"]
mod metrics;
#[path = "server/notices.rs"]
mod notices;
#[path = "server/operations.rs"]
mod operations;
#[path = "server/previews.rs"]
mod previews;
#[path = "server/rng.rs"]
mod rng;
#[path = "server/scenarios.rs"]
mod scenarios;
#[path = "server/scim.rs"]
mod scim;
#[path = "server/scim_bad_input.rs"]
mod scim_bad_input;
#[path = "server/search.rs"]
mod search;
#[path = "server/security.rs"]
mod security;
#[path = "server/startup.rs"]
mod startup;
