#!/usr/bin/env node
// A web page on another origin tries to use the server, as a site the admin merely visits
// could: it runs in Debian's headless Chromium, served by this script on its own loopback port.
//
//   node tests/browser/cross-origin.mjs MODE [TOKEN]
//
// MODE        "attack": the page tries three ways to run a mutation (a no-cors text/plain
//             fetch, a form POST, a JSON fetch with CORS); "dashboard": the page reads seats
//             with CORS fetches, without a token and with TOKEN, then writes them with TOKEN.
// TOKEN       an admin token for "dashboard" (sent as `Authorization: Bearer`).
//
// First prints {"page": ORIGIN}, the page's origin, and reads the server's URL (e.g.
// http://127.0.0.1:8080) from a line of standard input: the test can then start a server that
// allows that origin. Then prints one JSON line per attempt, {"attempt", "outcome", ...}; the
// Rust test checks through the API what changed. Exit 1 on a script failure, never for what
// the server answered.

import { createServer } from "node:http";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [mode, token] = process.argv.slice(2);
if (!["attack", "dashboard"].includes(mode)) {
  console.error("usage: node cross-origin.mjs attack|dashboard [TOKEN]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`FAIL: ${executablePath} not found (run .ci/browser-setup)`);
  process.exit(1);
}

const mutation = 'mutation { setPrepaidUnits(skuPartNumber: "ENTERPRISEPACK", units: 7777) { prepaidUnits } }';
const read = '{ product(skuPartNumber: "ENTERPRISEPACK") { prepaidUnits } }';

// The attacker's page. The form posts into a frame so the page stays to report.
const attackPage = (server) => `<!DOCTYPE html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" action="${server}/graphql" enctype="text/plain" target="sink">
<input name='{"query":"${mutation.replaceAll('"', '\\"')}","x":"' value='"}'>
</form>
<script>
window.attempts = (async () => {
  const out = [];
  try {
    await fetch(${JSON.stringify(server + "/graphql")}, { method: "POST", mode: "no-cors",
      headers: { "Content-Type": "text/plain" }, body: JSON.stringify({ query: ${JSON.stringify(mutation)} }) });
    out.push({ attempt: "no-cors text/plain fetch", outcome: "sent (opaque answer)" });
  } catch (e) { out.push({ attempt: "no-cors text/plain fetch", outcome: "failed: " + e }); }
  await new Promise((resolve) => {
    const sink = document.querySelector("iframe");
    sink.addEventListener("load", resolve, { once: true });
    document.getElementById("f").submit();
    setTimeout(resolve, 5000);
  });
  out.push({ attempt: "form POST", outcome: "submitted" });
  try {
    const r = await fetch(${JSON.stringify(server + "/graphql")}, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query: ${JSON.stringify(mutation)} }) });
    out.push({ attempt: "JSON fetch", outcome: "answered " + r.status });
  } catch (e) { out.push({ attempt: "JSON fetch", outcome: "blocked: " + e }); }
  return out;
})();
</script></body></html>`;

const dashboardPage = (server) => `<!DOCTYPE html><html><body><script>
window.attempts = (async () => {
  const out = [];
  const call = async (query, headers) => {
    const r = await fetch(${JSON.stringify(server + "/graphql")}, { method: "POST",
      headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify({ query }) });
    return { status: r.status, body: await r.json() };
  };
  const auth = ${JSON.stringify(token ? { Authorization: "Bearer " + token } : {})};
  for (const [attempt, query, headers] of [
    ["read without a token", ${JSON.stringify(read)}, {}],
    ["read", ${JSON.stringify(read)}, auth],
    ["write", ${JSON.stringify(mutation)}, auth],
  ]) {
    try {
      const r = await call(query, headers);
      out.push({ attempt, outcome: "answered " + r.status, body: r.body });
    } catch (e) { out.push({ attempt, outcome: "blocked: " + e }); }
  }
  return out;
})();
</script></body></html>`;

let page = "";
const site = createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(page);
});
await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${site.address().port}`;
console.log(JSON.stringify({ page: origin }));
const input = createInterface({ input: process.stdin });
// No line (the test failed to start its server): stop rather than wait for ever.
const server = (
  await new Promise((resolve, reject) => {
    input.once("line", resolve);
    input.once("close", () => reject(new Error("no server URL on standard input")));
  })
).trim();
input.close();
page = (mode === "attack" ? attackPage : dashboardPage)(server);

const userDataDir = mkdtempSync(join(tmpdir(), "cross-origin-chromium-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const tab = context.pages()[0] ?? (await context.newPage());
  await tab.goto(origin + "/");
  const attempts = await tab.evaluate(() => window.attempts);
  for (const attempt of attempts) console.log(JSON.stringify(attempt));
} catch (e) {
  console.error(`FAIL: ${e}`);
  failed = true;
} finally {
  await context?.close();
  rmSync(userDataDir, { recursive: true, force: true });
  site.close();
}
process.exit(failed ? 1 : 0);
