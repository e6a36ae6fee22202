//! The HTTP server: GraphQL endpoint, GraphiQL, health check.

pub mod graphiql;
