#!/usr/bin/env node
// Loads GraphiQL in Debian's headless Chromium, runs a query and checks the result.
//
//   node tests/browser/graphiql.mjs BASE_URL EXPECTED SCREENSHOT [QUERY [HEADERS]]
//
// BASE_URL    the server, e.g. http://127.0.0.1:8080 (the page is BASE_URL/graphiql)
// EXPECTED    text the result pane must contain, e.g. '"hello": "offline graphiql works"'
// SCREENSHOT  where to write a PNG of the page once the result shows (also on failure)
// QUERY       the query to run (default: '{ hello }')
// HEADERS     JSON typed into GraphiQL's headers editor, e.g. '{"Authorization": "Bearer x"}'
//
// Fails (exit 1) when the result does not show within the timeout, when the page
// throws, logs an error, or when any request goes to a host other than
// 127.0.0.1 / localhost / [::1]: the page must work with no internet access.
// Requests to other hosts are also aborted, so none leaves the machine.
//
// With GRAPHIQL_ALLOW_401=1 (a server that needs a token), the page's own requests answered 401
// before the headers are typed (its first schema fetch) are not counted as errors.
//
// The browser is /usr/bin/chromium (Debian package `chromium`; override with
// CHROMIUM=/path), never a Playwright-downloaded one.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const TIMEOUT_MS = Number(process.env.GRAPHIQL_TEST_TIMEOUT_MS ?? 30000);
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const LOCAL_SCHEMES = new Set(["data:", "blob:", "about:"]);

const [base, expected, screenshot, query = "{ hello }", headers] = process.argv.slice(2);
if (!base || !expected || !screenshot) {
  console.error("usage: node graphiql.mjs BASE_URL EXPECTED SCREENSHOT [QUERY [HEADERS]]");
  process.exit(2);
}

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(
    `FAIL: ${executablePath} not found; install Debian's chromium: apt-get install chromium (or run .ci/browser-setup)`,
  );
  process.exit(1);
}

/** Whether a request to `url` stays on this machine. */
function isLocal(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (LOCAL_SCHEMES.has(parsed.protocol)) return true;
  return LOCAL_HOSTS.has(parsed.hostname);
}

const requests = [];
const foreign = [];
const problems = [];
const userDataDir = mkdtempSync(join(tmpdir(), "graphiql-chromium-"));
let context;
let page;
let result = null;

/** Replaces the text of the CodeMirror 5 editor under `selector` and checks it took. */
async function setEditor(selector, text) {
  await page.waitForSelector(selector, { state: "visible" });
  await page.evaluate(
    ([selector, text]) => document.querySelector(selector).CodeMirror.setValue(text),
    [selector, text],
  );
  const shown = await page.evaluate(
    (selector) => document.querySelector(selector).CodeMirror.getValue(),
    selector,
  );
  if (shown !== text) throw new Error(`${selector} holds ${JSON.stringify(shown)}`);
}

async function main() {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    // Playwright adds --user-data-dir=userDataDir (fresh) itself.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 800 },
    timeout: TIMEOUT_MS,
  });

  // Record every request of the context (pages, workers); let only local ones through.
  context.on("request", (request) => {
    requests.push(request.url());
    if (!isLocal(request.url())) foreign.push(request.url());
  });
  await context.route("**/*", (route) =>
    isLocal(route.request().url()) ? route.continue() : route.abort("blockedbyclient"),
  );

  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  const allow401 = process.env.GRAPHIQL_ALLOW_401 === "1";
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    if (allow401 && message.text().includes("status of 401")) return;
    problems.push(`console error: ${message.text()}`);
  });

  const response = await page.goto(new URL("/graphiql", base).toString(), {
    waitUntil: "load",
  });
  if (!response || !response.ok()) {
    throw new Error(`GET /graphiql answered ${response ? response.status() : "nothing"}`);
  }

  // GraphiQL 4 mounts CodeMirror 5 editors; the wrapper element exposes the instance.
  await setEditor(".graphiql-query-editor .CodeMirror", query);
  if (headers !== undefined) {
    await page.click('.graphiql-editor-tools button[data-name="headers"]');
    await setEditor(
      'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror',
      headers,
    );
  }

  await page.click(".graphiql-execute-button");

  const resultPane = ".graphiql-response .result-window";
  try {
    await page.waitForFunction(
      ([selector, text]) => {
        const pane = document.querySelector(selector);
        const editor = pane && pane.querySelector(".CodeMirror");
        // Both the editor's text and what is rendered on screen.
        return (
          editor !== null &&
          editor.CodeMirror.getValue().includes(text) &&
          pane.innerText.replace(/\s+/g, " ").includes(text.replace(/\s+/g, " "))
        );
      },
      [resultPane, expected],
    );
  } catch (error) {
    throw new Error(`result pane does not show ${JSON.stringify(expected)} after ${TIMEOUT_MS} ms`, {
      cause: error,
    });
  } finally {
    result = await page
      .evaluate((selector) => {
        const editor = document.querySelector(`${selector} .CodeMirror`);
        return editor ? editor.CodeMirror.getValue() : "(no result pane)";
      }, resultPane)
      .catch(() => "(unreadable)");
  }
}

let failure = null;
try {
  await main();
} catch (error) {
  failure = error;
}
if (page) {
  await page
    .screenshot({ path: screenshot, fullPage: true })
    .catch((error) => problems.push(`screenshot failed: ${error.message}`));
}
if (context) await context.close().catch(() => {});
rmSync(userDataDir, { recursive: true, force: true });

if (result !== null) console.log(`result pane:\n${result}`);
console.log(`requests (${requests.length}):`);
for (const url of requests) console.log(`  ${url.length > 120 ? `${url.slice(0, 117)}...` : url}`);
const errors = [];
if (failure) errors.push(failure.message);
if (foreign.length) errors.push(`requests left the machine: ${foreign.join(", ")}`);
errors.push(...problems);
if (errors.length) {
  for (const error of errors) console.error(`FAIL: ${error}`);
  process.exit(1);
}
console.log(`OK: GraphiQL at ${base}/graphiql ran the query and shows ${expected}; screenshot ${screenshot}`);
process.exit(0);
