//! The licensing engine (issue 3): pure decisions over the rule table.
