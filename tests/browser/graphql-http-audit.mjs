#!/usr/bin/env node
// Runs graphql-http's server audit (the GraphQL-over-HTTP specification's checks, MUST, SHOULD
// and MAY) against a running server and prints one JSON line per audit:
//
//   node tests/browser/graphql-http-audit.mjs URL
//
// URL  the GraphQL endpoint, e.g. http://127.0.0.1:8080/graphql
//
// Prints {"id", "name", "status", "reason"} per audit (status: ok, notice, warn or error) and
// exits 0 whatever the audits found: the Rust test that runs it decides.

import { serverAudits } from "graphql-http";

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node graphql-http-audit.mjs URL");
  process.exit(2);
}

for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") line.reason = result.reason;
  console.log(JSON.stringify(line));
}
