#!/usr/bin/env node
// Drives the admin console in Debian's headless Chromium against a running server.
//
//   node tests/browser/console.mjs BASE_URL SCREENSHOT_DIR SCENARIO
//
// BASE_URL        the server, e.g. http://127.0.0.1:8080 (the console is at BASE_URL/)
// SCREENSHOT_DIR  where each view's PNG goes (SCENARIO-VIEW-WIDTH.png)
// SCENARIO        one of:
//   views   every view shows the demo tenant's real rows and numbers, filters and links keep
//           the address, back and reload show the same view, each view passes axe-core's
//           WCAG 2 A/AA rules at 1280 px and does not overflow at 1024 px
//   walk    the seeds' walk: Overview → group in error → its users in error → one user → the
//           conflicting plan and its source → fix it (plans off on the direct license) →
//           Reprocess, which finds the demo's E3 seats all taken → the product, one seat more →
//           back → Reprocess → no error left, on the page (the Rust test checks the API)
//   edit    the other actions, each with its answer beside it: members added and removed
//           (each previewed first, cancelled then confirmed), a product added and its refusal
//           shown in the preview, plans off on a group, seats set, a group's Reprocess previewed,
//           a redundant direct license removed, a usage location that clears an
//           error, a duplicate proxy address removed, a group's Reprocess followed to its end, a rules reload refused with its
//           file, line and column (CONSOLE_RULES_DIR: a copy of the rules it may edit), then
//           mended; then paging past the first page (CONSOLE_PAGING_GROUP names a group of more
//           than one page of members) with Next and Previous
//   tokens  a server with tokens (CONSOLE_READER_TOKEN, CONSOLE_ADMIN_TOKEN): the token form,
//           a wrong token's message from the server, a reader's views without a control that
//           changes anything, the token in sessionStorage only, sign-out, an admin's controls,
//           and a token refused mid-session bringing the form back with the server's message
//   notices a server with tokens (CONSOLE_ADMIN_TOKEN, CONSOLE_READER_TOKEN) and
//           --webhook-allow-private, where a group (CONSOLE_ALERT_GROUP) has users waiting for
//           Office 365 E1 seats: the Overview's alerts (paged), a product's seat alert threshold
//           refused, set (LOW_SEATS stands, on the product and the Overview) and cleared, a
//           webhook refused then created to a receiver this script runs (its secret shown once,
//           the deliveries' signature checked with it, the last delivery in the list), a
//           reader's views without controls, the webhook deleted after a confirmation
//   live    a generated tenant (group 1 "All users" of CONSOLE_LIVE_MEMBERS members, no
//           license, no alert): the Overview's alerts arriving over the `alerts` subscription; a
//           run of group 1 followed over `groupProcessing` with no polling (the bar shows a
//           value only the socket carried); the socket closed when the view is left; with the
//           socket refused, the group's Reprocess followed by polling
//   history a server with named tokens (CONSOLE_ADMIN_TOKEN, CONSOLE_READER_TOKEN) and a history
//           made before the run (a user's usage location, a refused mutation, a group of more
//           than 20 members: CONSOLE_HISTORY_GROUP): Activity's events with who, targets,
//           changes and refusals, paging, filters kept in the address, the CSV exports
//           downloaded with the token (checked row by row against the API's counts) and a
//           refused one, a user's and a group's history, a reader's Activity and export
//
// Fails (exit 1) on any failed check, any page error or console error (except the 401/403 a
// tokens run expects), and any request to a host other than 127.0.0.1 / localhost / [::1]:
// those are aborted, so nothing leaves the machine. Prints one "OK: …" line per check.
//
// The browser is /usr/bin/chromium (override with CHROMIUM=/path), never a downloaded one.

import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const TIMEOUT_MS = Number(process.env.CONSOLE_TEST_TIMEOUT_MS ?? 20000);
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const LOCAL_SCHEMES = new Set(["data:", "blob:", "about:"]);
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

const [base, shots, scenario] = process.argv.slice(2);
if (!base || !shots || !scenario) {
  console.error("usage: node console.mjs BASE_URL SCREENSHOT_DIR views|walk|edit|tokens|notices|live|history");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`FAIL: ${executablePath} not found; install Debian's chromium (apt-get install chromium)`);
  process.exit(1);
}
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

function isLocal(url) {
  try {
    const parsed = new URL(url);
    return LOCAL_SCHEMES.has(parsed.protocol) || LOCAL_HOSTS.has(parsed.hostname);
  } catch {
    return false;
  }
}

const requests = [];
const foreign = [];
const problems = [];
const passed = [];
const userDataDir = mkdtempSync(join(tmpdir(), "console-chromium-"));
let context;
let page;
let expectAuthRefusals = false;
// A status the scenario provokes on purpose (the browser logs every refused request).
let expectedStatus = null;

function ok(what) {
  passed.push(what);
  console.log(`OK: ${what}`);
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  ok(what);
}

// ---- Page helpers --------------------------------------------------------------------------

/** Waits until the view has drawn its data: no loading state left, a title shown. */
async function settled() {
  await page.waitForFunction(() => {
    const main = document.getElementById("main");
    return main && !main.querySelector(".state-loading") && main.querySelector("h1");
  });
}

async function go(path) {
  const response = await page.goto(new URL(path, base).toString(), { waitUntil: "load" });
  if (!response || !response.ok()) throw new Error(`GET ${path} answered ${response ? response.status() : "nothing"}`);
  // Marks this document: a full page load would lose it, a client-side navigation keeps it.
  await page.evaluate(() => {
    window.__consoleDocument = true;
  });
  await settled();
}

/** Reloads the page, as the browser's reload button does (a new document). */
async function reload() {
  await page.reload({ waitUntil: "load" });
  await page.evaluate(() => {
    window.__consoleDocument = true;
  });
  await settled();
}

async function mainText() {
  return page.evaluate(() => document.getElementById("main").innerText.replace(/\s+/g, " "));
}

/** Waits until the main region shows `text` (whitespace folded). */
async function shows(text, what = `the page shows “${text}”`) {
  try {
    await page.waitForFunction((t) => document.getElementById("main").innerText.replace(/\s+/g, " ").includes(t), text);
  } catch (error) {
    const now = await mainText().catch(() => "(unreadable)");
    throw new Error(`${what}: not found; the page shows: ${now.slice(0, 1500)}`, { cause: error });
  }
  ok(what);
}

async function lacks(text, what = `the page no longer shows “${text}”`) {
  await page.waitForFunction((t) => !document.getElementById("main").innerText.replace(/\s+/g, " ").includes(t), text);
  ok(what);
}

/** Follows a link in the main region by its name; checks the view changed without a page load. */
async function follow(name, expectedPath) {
  await page.locator("main").getByRole("link", { name, exact: true }).first().click();
  await page.waitForURL((url) => url.pathname === expectedPath);
  await settled();
  const same = await page.evaluate(() => window.__consoleDocument === true);
  check(same, `“${name}” opened ${expectedPath} without reloading the page`);
}

async function rows(scope = "main") {
  return page.locator(`${scope} table tbody tr`).count();
}

/** Runs axe-core's WCAG 2 A/AA rules on the page as it is; any violation fails. */
async function axe(label) {
  // Injected through the DevTools protocol: the console's CSP refuses inline scripts, as it
  // should, and the check must see the page under its real CSP.
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }),
    AXE_TAGS,
  );
  const violations = result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join("; ")}`,
  );
  if (violations.length) throw new Error(`axe-core, ${label}: ${violations.length} violation(s):\n  ${violations.join("\n  ")}`);
  ok(`axe-core: no WCAG 2 A/AA violation on ${label} (${result.passes.length} rules passed)`);
}

async function shot(name) {
  const width = page.viewportSize().width;
  await page.screenshot({ path: join(shots, `${scenario}-${name}-${width}.png`), fullPage: true });
}

/** At 1024 px the page has no horizontal scroll bar (wide tables scroll inside their panel). */
async function fits(label) {
  await page.setViewportSize({ width: 1024, height: 800 });
  await page.waitForTimeout(100);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await shot(label);
  await page.setViewportSize({ width: 1280, height: 800 });
  check(overflow <= 0, `${label} fits 1024 px wide (overflow ${overflow} px)`);
}

/** The notice an action left in the slot nearest to `scope`. */
async function notice(text, what) {
  await shows(text, what ?? `the action says “${text}”`);
}

async function editControls() {
  return page.evaluate(() => {
    const names = /^(Reprocess|Remove|Remove member|Remove from group|Save|Save plans|Set seats|Reload|Add|Add member|Add to group|Assign|Clear|Set alert|Clear alert|Create webhook|Delete)$/;
    const buttons = [...document.querySelectorAll("main button")].map((b) => b.textContent.trim()).filter((t) => names.test(t));
    const boxes = document.querySelectorAll("main input[type=checkbox]").length;
    const forms = [...document.querySelectorAll("main form")].map((f) => f.getAttribute("aria-label")).filter((l) => l && !/^(Filter|Find)/.test(l));
    return { buttons, boxes, forms };
  });
}

/** Clicks `button` and returns the file it downloads: its name, its text and its lines. */
async function downloaded(button) {
  const [download] = await Promise.all([page.waitForEvent("download"), button.click()]);
  const failed = await download.failure();
  if (failed) throw new Error(`the download failed: ${failed}`);
  const text = readFileSync(await download.path(), "utf8");
  // The exports end every line with CRLF; no cell of these tenants holds a line break.
  return { name: download.suggestedFilename(), text, lines: text.split("\r\n").filter((line) => line !== "") };
}

/** Asks the API directly (not through the page), with `token` (null: a server without tokens). */
async function api(token, query, variables = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(new URL("/graphql", base), {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function signIn(token) {
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await settled();
}

const NUMBER = new Intl.NumberFormat("en-US");

// ---- Scenarios -----------------------------------------------------------------------------

async function views() {
  // Overview: the seeds' information box.
  await go("/");
  await shows("6 groups need attention");
  await shows("Groups that need attention (6)");
  const attention = page.locator("main section", { has: page.getByRole("heading", { name: /^Groups that need attention/ }) });
  for (const [group, reason] of [
    ["E3 users", "Conflicting service plans"],
    ["Full suite", "Not enough licenses"],
    ["Teams", "Usage location not allowed"],
    ["E3 full", "Prerequisite plan missing"],
    ["Mail", "Duplicate proxy address"],
  ]) {
    const row = attention.locator("tbody tr", { hasText: group }).first();
    check((await row.innerText()).includes(reason), `the overview lists ${group} with its top reason, ${reason}`);
  }
  // The demo's alerts: its groups with users in error and its two products out of seats.
  const standing = (await api(null, "{ alerts(active: true, first: 100) { totalCount edges { node { kind message } } } }")).alerts;
  await shows(`Active alerts (${standing.totalCount})`);
  await shows(`${standing.totalCount} alerts stand`);
  const alertRows = await page.locator("main section#alerts tbody tr").allInnerTexts();
  check(
    alertRows.length === standing.totalCount && standing.edges.every(({ node }, i) => alertRows[i].includes(node.message)),
    `the overview lists the ${standing.totalCount} alerts that stand, newest first, with what raised each`,
  );
  check(alertRows.some((row) => row.startsWith("Out of seats") && row.includes("Office 365 E3")), "an alert names its kind and links its product");
  check((await page.locator('main section#alerts a[href="/groups/3"]').count()) === 1, "a group's alert links to the group");
  const seats = await page.locator(".seat-list li").allInnerTexts();
  check(seats.length === 4, "the overview lists the 4 products bought or used");
  check(seats[0].includes("Out of seats") && seats[1].includes("Out of seats") && !seats[2].includes("Out of seats"), "products out of seats come first");
  await shows("No group is being processed.");
  await axe("the overview");
  await shot("overview");
  await fits("overview");

  // Groups: search, filters, paging info, status column; the filters live in the address.
  await page.locator("nav.nav").getByRole("link", { name: "Groups" }).click();
  await settled();
  await shows("9 in the directory");
  check((await rows()) === 9, "the groups list shows the demo's 9 groups");
  await shows("1–9 of 9 groups");
  const sales = page.locator("main table tbody tr", { hasText: "Sales" });
  check((await sales.innerText()).includes("Errors and issues"), "Sales is marked “Errors and issues”");
  const staff = page.locator("main table tbody tr", { hasText: "All staff" });
  check((await staff.innerText()).includes("All licenses assigned"), "All staff is marked “All licenses assigned”");
  await page.getByLabel("Name contains").fill("e3");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL((url) => url.search === "?q=e3");
  await shows("2 matching");
  check((await rows()) === 2, "searching “e3” finds E3 users and E3 full (case-insensitive)");
  await reload();
  await shows("2 matching", "a reload keeps the search");
  check((await page.getByLabel("Name contains").inputValue()) === "e3", "the search box shows the search after a reload");
  await page.goBack();
  await settled();
  await shows("9 in the directory", "the back button returns to the whole list");
  await page.getByLabel("Members in error").selectOption("with");
  await shows("6 matching");
  check((await rows()) === 6, "“with users in error” keeps the 6 groups that need attention");
  await page.getByLabel("Members in error").selectOption("without");
  await shows("3 matching");
  await page.getByLabel("Members in error").selectOption("");
  await page.getByLabel("Processing").selectOption("IN_PROGRESS");
  await shows("No group matches these filters.", "an empty result says so");
  await page.getByLabel("Processing").selectOption("");
  await shows("9 in the directory");
  await axe("the groups list");
  await shot("groups");
  await fits("groups");

  // Group: Sales, S1: the ninth member has no seat.
  await follow("Sales", "/groups/8");
  await shows("1 user is in an error state");
  await shows("Not enough licenses: 1");
  const selected = await page.locator('[role="tab"][aria-selected="true"]').innerText();
  check(selected.startsWith("Users in error"), "a group with errors opens on its users in error");
  const quinn = page.locator("main table tbody tr", { hasText: "Quinn" });
  check((await quinn.innerText()).includes("Not enough licenses"), "Quinn is listed in error, reason “Not enough licenses”");
  await shows("Office 365 E3");
  await axe("a group, users in error");
  await shot("group-errors");
  await fits("group");
  await page.getByRole("tab", { name: /Members/ }).click();
  await shows("1–9 of 9 members");
  check((await rows("[role=tabpanel]")) === 9, "the members tab lists Sales' 9 members");
  check(new URL(page.url()).search === "?tab=members", "the tab is in the address");
  await axe("a group, members");
  await page.getByRole("tab", { name: /Licenses/ }).click();
  await shows("12 of 12 seats used, 0 available");
  await page.locator("[role=tabpanel] details.plans summary").first().click();
  await axe("a group, licenses");
  await shot("group-licenses");
  await reload();
  const again = await page.locator('[role="tab"][aria-selected="true"]').innerText();
  check(again.startsWith("Licenses"), "a reload opens the same tab");

  // Users: the prefix search, then one user.
  await page.locator("nav.nav").getByRole("link", { name: "Users" }).click();
  await settled();
  await shows("in the directory");
  await page.getByLabel("Sign-in name starts with").fill("DA");
  await page.getByRole("button", { name: "Search" }).click();
  await shows("1 whose sign-in name starts with “DA”");
  // Dan's account is disabled (the test disables it before the walk): marked in the list.
  const dan = page.locator("main table tbody tr", { hasText: "Dan" }).first();
  check((await dan.innerText()).includes("Disabled"), "the users list marks a disabled account");
  await axe("the users list");
  await shot("users");
  await follow("Dan", "/users/7");
  await shows("Errors to fix (1)");
  await shows("Conflicts with Exchange Online (Plan 1) (EXCHANGE_S_STANDARD)");
  await shows("Which comes from Office 365 E1 (STANDARDPACK), assigned directly");
  await shows("How to fix it");
  await shows("Licenses held (1)");
  await shows("Effective location US");
  await shows("Account disabled", "the user page marks a disabled account");
  await axe("a user");
  await shot("user");
  await fits("user");

  // Products: bought or used, then the whole catalog.
  await page.locator("nav.nav").getByRole("link", { name: "Products" }).click();
  await settled();
  await shows("4 with seats bought or in use");
  check((await rows()) === 4, "the products list opens on the 4 bought or used");
  await axe("the products list");
  await shot("products");
  await page.getByRole("link", { name: "Whole catalog" }).click();
  await shows("569 in the catalog");
  check((await rows()) === 569, "the whole catalog is one switch away");
  await page.getByLabel("Name contains").fill("ENTERPRISEPACK");
  await page.waitForFunction(() => document.querySelectorAll("main tbody tr").length < 10);
  check((await rows()) >= 1, "the catalog filters by name");
  await page.getByLabel("Name contains").fill("");
  await axe("the whole catalog");

  // Product: ENTERPRISEPACK.
  await go("/products/ENTERPRISEPACK");
  await shows("Out of seats");
  await shows("Prepaid 12 Consumed 12 Available 0");
  await shows("Licensed groups (5)");
  await shows("Licensed users (12)");
  await shows("1–12 of 12 users");
  await shows("Service plans (36)");
  await shows("ENTERPRISEPACK: out of seats", "the product shows the alert that stands for it");
  await shows("Seat alert None set");
  await axe("a product");
  await shot("product");
  await fits("product");

  // Rules.
  await page.locator("nav.nav").getByRole("link", { name: "Rules" }).click();
  await settled();
  await shows("723 service plans");
  await shows("569 products");
  await shows("The last reload had no error.");
  await shows("catalog.rules");
  await axe("the rules");
  await shot("rules");

  // Activity: the demo's processing runs, newest first.
  await page.locator("nav.nav").getByRole("link", { name: "Activity" }).click();
  await settled();
  await shows("events recorded, newest first");
  await shows("Start applying group based license to users");
  await shows("Users successfully assigned licenses:");
  check((await rows()) > 10, "the activity lists the demo's processing runs");
  await axe("the activity");
  await shot("activity");
  await fits("activity");

  // Settings: no webhook yet, and the form to add one.
  await page.locator("nav.nav").getByRole("link", { name: "Settings" }).click();
  await settled();
  await shows("No webhook is set up.");
  await shows("Add a webhook");
  await axe("the settings");
  await shot("settings");
  await fits("settings");

  // A group's history tab: Sales' processing run, with each user it licensed.
  await go("/groups/8?tab=history");
  await shows("Finish applying group based license to users");
  await shows("ENTERPRISEPACK (group 8): — → ERROR: COUNT_VIOLATION", "the run's change to Quinn, old → new");
  await axe("a group, history");

  // An id that does not exist, and the back button across views.
  await go("/groups/424242");
  await shows("There is no group with id 424242.");
  await axe("a missing group");
  await go("/users/7");
  await page.locator("main").getByRole("link", { name: "E3 users" }).first().click();
  await page.waitForURL((url) => url.pathname === "/groups/3");
  await settled();
  await page.goBack();
  await page.waitForURL((url) => url.pathname === "/users/7");
  await shows("Errors to fix", "the back button shows the user again");
}

async function walk() {
  await go("/");
  await follow("E3 users", "/groups/3");
  await shows("1 user is in an error state");
  await shows("Conflicting service plans: 1");
  const row = page.locator("[role=tabpanel] table tbody tr", { hasText: "Dan" });
  check((await row.innerText()).includes("Conflicting service plans"), "the group lists Dan in error for conflicting service plans");
  await shot("1-group");
  await follow("Dan", "/users/7");
  await shows("Office 365 E3 from group E3 users");
  await shows("Conflicts with Exchange Online (Plan 1) (EXCHANGE_S_STANDARD)");
  await shows("Conflicts with SharePoint (Plan 1) (SHAREPOINTSTANDARD)");
  await shows("Which comes from Office 365 E1 (STANDARDPACK), assigned directly");
  await shows("Disable Exchange Online (Plan 1) on the STANDARDPACK license assigned directly to the user.");
  await shot("2-user-in-error");

  // The conflicting source links to the direct license on the same page.
  await page.getByRole("link", { name: "Office 365 E1 (STANDARDPACK), assigned directly" }).first().click();
  await page.waitForURL((url) => url.hash === "#direct-STANDARDPACK");
  const direct = page.locator("#direct-STANDARDPACK");
  await direct.locator("summary").click();
  for (const plan of ["Exchange Online (Plan 1)", "SharePoint (Plan 1)"]) {
    await direct.getByLabel(plan, { exact: true }).uncheck();
  }
  await direct.getByRole("button", { name: "Save plans" }).click();
  await notice("Saved STANDARDPACK: 2 plans off.");
  await shows("32 of 34 plans on, 2 off", "the direct license now shows 2 plans off");
  await shows("Errors to fix", "the error stays until a reprocess (nothing is automatic)");
  await shot("3-fixed");

  // The conflict is fixed; the demo's E3 seats are all taken, which the reprocess finds next.
  await page.getByRole("button", { name: "Reprocess" }).click();
  await notice("Reprocessed: 1 assignment still in error; see why below.");
  await lacks("Conflicting service plans", "the conflict is gone");
  await shows("Not enough licenses: There are not enough available licenses for Office 365 E3 (ENTERPRISEPACK).");
  await shot("4-no-seat");
  await follow("Office 365 E3 (ENTERPRISEPACK)", "/products/ENTERPRISEPACK");
  await shows("Prepaid 12 Consumed 12 Available 0");
  await page.getByLabel("Seats bought (prepaid units)").fill("13");
  await page.getByRole("button", { name: "Set seats" }).click();
  await notice("Seats set to 13: 1 seat available.");
  await page.goBack();
  await page.waitForURL((url) => url.pathname === "/users/7");
  await shows("Not enough licenses", "back on the user, who waits for a reprocess");
  await page.getByRole("button", { name: "Reprocess" }).click();
  await notice("Reprocessed: no license error left.");
  await shows("No license errors");
  const states = await page.locator("main section", { hasText: "All assignments" }).locator("tbody tr").allInnerTexts();
  check(states.length === 2 && states.every((s) => s.includes("Active")), "both of Dan's assignments are Active");
  await axe("a user after the fix");
  await shot("5-reprocessed");

  await page.locator("main").getByRole("link", { name: "E3 users" }).first().click();
  await page.waitForURL((url) => url.pathname === "/groups/3");
  await settled();
  await shows("All licenses assigned");
  await lacks("1 user is in an error state");
  await page.getByRole("tab", { name: /Users in error/ }).click();
  await shows("No user is in an error state.");
  await shot("6-group-clear");
  await page.locator("nav.nav").getByRole("link", { name: "Overview" }).click();
  await settled();
  await shows("Groups that need attention (5)", "the overview has one group fewer to attend to");
  check(!(await page.locator("main table", { hasText: "Top reason" }).innerText()).includes("E3 users"), "E3 users left the overview's list");
}

async function edit() {
  // Members: add by sign-in name, remove with a confirmation (cancelled first).
  await go("/groups/5");
  await shows("Teams");
  await page.getByRole("tab", { name: /Members/ }).click();
  await shows("1–1 of 1 members");
  await page.getByLabel("Add a member by sign-in name").fill("nobody@contoso.com");
  await page.getByRole("button", { name: "Add member" }).click();
  await notice("No user has the sign-in name nobody@contoso.com.");
  // Adding previews first (licensing.md W): Adele would be licensed; cancelled, nothing changes.
  await page.getByLabel("Add a member by sign-in name").fill("ADELE@contoso.com");
  await page.getByRole("button", { name: "Add member" }).click();
  let dialog = page.getByRole("dialog");
  await dialog.locator(".preview-sentence").waitFor();
  check((await dialog.innerText()).includes("Add Adele to Teams?"), "adding previews first, naming the user and the group");
  const said = await dialog.locator(".preview-sentence").innerText();
  check(/^1 user will (be licensed|fail)/.test(said), `the preview says what would happen: “${said}”`);
  await dialog.getByRole("button", { name: /See the/ }).click();
  await dialog.locator(".preview-users tbody tr").first().waitFor();
  check((await dialog.locator(".preview-users tbody tr").innerText()).includes("Adele"), "the preview lists Adele with how she would stand");
  await axe("the preview dialog");
  await shot("preview-add-member");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  await shows("1–1 of 1 members", "Cancel adds nothing");
  await page.getByRole("button", { name: "Add member" }).click();
  await page.getByRole("dialog").locator(".preview-sentence").waitFor();
  await page.getByRole("dialog").getByRole("button", { name: "Add member" }).click();
  await notice("Added Adele (adele@contoso.com).");
  await shows("1–2 of 2 members");
  await shot("members-added");
  await page.getByRole("button", { name: "Remove Adele" }).click();
  dialog = page.getByRole("dialog");
  await dialog.locator(".preview-sentence").waitFor();
  check((await dialog.innerText()).includes("Remove Adele from Teams?"), "removing asks first, naming the user and the group");
  check((await dialog.locator(".preview-sentence").innerText()).startsWith("1 user will"), "and says what removing would do");
  await axe("the confirmation dialog");
  await shot("confirm");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  await shows("1–2 of 2 members", "Cancel removes nothing");
  await page.getByRole("button", { name: "Remove Adele" }).click();
  await page.getByRole("dialog").locator(".preview-sentence").waitFor();
  await page.getByRole("dialog").getByRole("button", { name: "Remove member" }).click();
  await notice("Removed Adele from Teams.");
  await shows("1–1 of 1 members");

  // Licenses: a refused product shows the server's code and message where it was added.
  await go("/groups/2?tab=licenses");
  await shows("Mobile devices");
  // The preview is refused as the mutation would be: the server's code and message, and no way
  // to confirm.
  await page.getByLabel("Product to add").fill("WORKPLACE_ANALYTICS");
  await page.getByRole("button", { name: "Add to group" }).click();
  dialog = page.getByRole("dialog");
  await dialog.locator(".notice-error").waitFor();
  const refusal = await dialog.innerText();
  check(refusal.includes("DEPENDENCY_VIOLATION"), "a refused product shows the server's code in the preview");
  check(refusal.includes("requires Exchange Online (Plan 1) or Exchange Online (Plan 2) to be enabled as well."), "and its message");
  check(await dialog.getByRole("button", { name: "Add to group" }).isDisabled(), "a refused change cannot be confirmed");
  await axe("a refused preview");
  await shot("license-refused");
  await dialog.getByRole("button", { name: "Close" }).click();
  await page.getByLabel("Product to add").fill("NOT_A_PRODUCT");
  await page.getByRole("button", { name: "Add to group" }).click();
  await page.getByRole("dialog").locator(".notice-error").waitFor();
  check((await page.getByRole("dialog").innerText()).includes("BAD_USER_INPUT"), "an unknown product is refused in the preview");
  await page.getByRole("dialog").getByRole("button", { name: "Close" }).click();
  // Plans off on the group's product.
  const item = page.locator(".license-item", { hasText: "EMS" });
  await item.locator("summary").click();
  const firstPlan = item.locator("input[type=checkbox]:checked").first();
  await firstPlan.uncheck();
  await item.getByRole("button", { name: "Save plans" }).click();
  await page.getByRole("dialog").locator(".preview-sentence").waitFor();
  await page.getByRole("dialog").getByRole("button", { name: "Save plans" }).click();
  await notice("Saved EMS: 1 plan off.");
  await shows("plans on, 1 off", "the group's license shows the plan off");

  // A product on a group, then removed from it (confirmed).
  await go("/groups/1?tab=licenses");
  await page.getByLabel("Product to add").fill("WORKPLACE_ANALYTICS");
  await page.getByRole("button", { name: "Add to group" }).click();
  await page.getByRole("dialog").locator(".preview-sentence").waitFor();
  await page.getByRole("dialog").getByRole("button", { name: "Add to group" }).click();
  await notice("Added WORKPLACE_ANALYTICS.");
  await page.locator(".license-item", { hasText: "WORKPLACE_ANALYTICS" }).getByRole("button", { name: "Remove from group" }).click();
  await page.getByRole("dialog").locator(".preview-sentence").waitFor();
  await page.getByRole("dialog").getByRole("button", { name: "Remove product" }).click();
  await notice("Removed WORKPLACE_ANALYTICS from All staff.");

  // Seats.
  await go("/products/EMS");
  await page.getByLabel("Seats bought (prepaid units)").fill("-1");
  await page.getByRole("button", { name: "Set seats" }).click();
  await notice("Seats are a whole number, 0 or more.");
  await page.getByLabel("Seats bought (prepaid units)").fill("8");
  await page.getByRole("button", { name: "Set seats" }).click();
  await notice("Seats set to 8:");
  await shows("Prepaid 8");

  // A group's Reprocess, once seats are bought: Full suite's third member (S3) gets both
  // products, and the page follows the run to its end.
  await go("/products/ENTERPRISEPACK");
  await page.getByLabel("Seats bought (prepaid units)").fill("14");
  await page.getByRole("button", { name: "Set seats" }).click();
  await notice("Seats set to 14: 2 seats available.");
  await go("/groups/4");
  await shows("1 user is in an error state");
  await page.getByRole("button", { name: "Reprocess" }).click();
  dialog = page.getByRole("dialog");
  await dialog.locator(".preview-sentence").waitFor();
  const reprocess = await dialog.locator(".preview-sentence").innerText();
  check(reprocess === "1 user will be licensed, 2 will stay as they are.", `the reprocess preview finds the third member licensed now: “${reprocess}”`);
  await shot("preview-reprocess");
  await dialog.getByRole("button", { name: "Reprocess" }).click();
  await notice("Reprocessing 3 members: each is tried again in the background.");
  await shows("All licenses assigned", "the page follows the run to its end, without a reload");
  await lacks("1 user is in an error state");
  await shows("No user is in an error state.");

  // A usage location: gus inherits CN, where Teams is barred (S4); US clears his error.
  await go("/users/11");
  await shows("Gus");
  await shows("Usage location not allowed");
  await shows("(the directory's default: the user has none of their own)");
  await page.getByLabel("Usage location", { exact: true }).fill("U1");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await notice("A usage location is a two-letter country code");
  await page.getByLabel("Usage location", { exact: true }).fill("us");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await notice("Usage location set to US, and processed again: no license error left.");
  await shows("No license errors");

  // Proxy addresses (S7): Jon's duplicate removed clears his error; a new one changes nothing.
  await go("/users/13");
  await shows("Duplicate proxy address");
  await page.getByRole("button", { name: "Remove smtp:sales@contoso.com" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Remove address" }).click();
  await notice("Removed smtp:sales@contoso.com, and processed again: no license error left.");
  await page.getByLabel("Proxy address to add").fill("smtp:jon@contoso.com");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await notice("Added smtp:jon@contoso.com, and processed again: the user's group licenses were all active, and stay so.");
  await go("/users/11");

  // Direct license: assign one, then remove it (confirmed).
  await page.getByLabel("Product to assign directly").fill("WORKPLACE_ANALYTICS");
  await page.getByRole("button", { name: "Assign" }).click();
  await notice("Assigned WORKPLACE_ANALYTICS directly.");
  await page.locator("#direct-WORKPLACE_ANALYTICS").getByRole("button", { name: "Remove" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Remove license" }).click();
  await notice("Removed the direct WORKPLACE_ANALYTICS.");

  // Redundant direct licenses (licensing.md M): Lee's direct E3 is covered by Sales.
  await page.locator("nav.nav").getByRole("link", { name: "Redundant licenses" }).click();
  await settled();
  await shows("1 direct license is covered by groups");
  const covered = page.locator("main table tbody tr", { hasText: "Lee" });
  check((await covered.innerText()).includes("Sales"), "Lee's direct E3 is listed as covered by Sales");
  await axe("the redundant direct licenses");
  await shot("redundant");
  await covered.getByRole("checkbox").check();
  await page.getByRole("button", { name: "Remove 1 selected license" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Remove", exact: true }).click();
  await notice("Removed 1 direct license.");
  await shows("No direct license is covered by a group.");

  // Rules: a reload that does not compile is refused and says where; mended, it loads.
  const rulesDir = process.env.CONSOLE_RULES_DIR;
  if (!rulesDir) throw new Error("CONSOLE_RULES_DIR is not set");
  const policy = join(rulesDir, "policy.rules");
  const good = readFileSync(policy, "utf8");
  const line = good.split("\n").length + (good.endsWith("\n") ? 0 : 1);
  writeFileSync(policy, `${good}${good.endsWith("\n") ? "" : "\n"}conflict EXCHANGE_S_STANDRD with EXCHANGE_S_ENTERPRISE\n`);
  await go("/rules");
  await page.getByRole("button", { name: "Reload" }).click();
  await notice("RULES_INVALID", "a refused reload shows the server's code");
  await shows("the rules were not reloaded: 1 error(s); the rules in force are unchanged");
  await shows("Last reload's errors (1)");
  await shows(`policy.rules:${line}:10`, "the error's file, line and column");
  await shows("unknown plan `EXCHANGE_S_STANDRD` in conflict: did you mean `EXCHANGE_S_STANDARD`?");
  await axe("the rules with a refused reload");
  await shot("rules-refused");
  writeFileSync(policy, good);
  await page.getByRole("button", { name: "Reload" }).click();
  await notice("Reloaded: 723 plans, 569 products.");
  await shows("The last reload had no error.");

  // Paging a group of more than one page: 50 a page by default.
  const group = process.env.CONSOLE_PAGING_GROUP;
  if (!group) throw new Error("CONSOLE_PAGING_GROUP is not set");
  await go(`/groups/${group}?tab=members`);
  await shows("1–50 of 120 members");
  const firstPage = await page.locator("[role=tabpanel] tbody tr").first().innerText();
  await page.getByRole("button", { name: "Next" }).click();
  await shows("51–100 of 120 members");
  const secondPage = await page.locator("[role=tabpanel] tbody tr").first().innerText();
  check(firstPage !== secondPage, "Next shows other members");
  check(secondPage.includes("paging-051@"), "the second page starts with the 51st member (the order they joined)");
  await page.getByRole("button", { name: "Next" }).click();
  await shows("101–120 of 120 members");
  check((await page.getByRole("button", { name: "Next" }).isDisabled()) === true, "Next is off on the last page");
  await page.getByRole("button", { name: "Previous" }).click();
  await shows("51–100 of 120 members", "Previous goes back one page");
  await page.getByLabel("Per page").selectOption("25");
  await shows("1–25 of 120 members", "a smaller page size starts again at the first page");
  await shot("paging");
  // The users list pages too (120 paging users and the demo's 24).
  await go("/users");
  await page.getByLabel("Per page").selectOption("100");
  await shows("1–100 of");
  await page.getByRole("button", { name: "Next" }).click();
  await shows("101–");
}

async function tokens() {
  expectAuthRefusals = true;
  const reader = process.env.CONSOLE_READER_TOKEN;
  const admin = process.env.CONSOLE_ADMIN_TOKEN;
  if (!reader || !admin) throw new Error("CONSOLE_READER_TOKEN and CONSOLE_ADMIN_TOKEN must be set");

  await go("/");
  await shows("Sign in to the console");
  await shows("The server said: this server needs a token", "the form shows the server's message");
  await axe("the token form");
  await shot("form");
  await page.getByLabel("Token").fill("not-a-token-of-this-server");
  await page.getByRole("button", { name: "Sign in" }).click();
  await shows("The server said: the token is not valid", "a wrong token brings the server's message back");

  await page.getByLabel("Token").fill(reader);
  await page.getByRole("button", { name: "Sign in" }).click();
  await settled();
  await shows("Groups that need attention");
  check((await page.locator("#session").innerText()).includes("Reader, read-only"), "the header says the token may only read");
  const storage = await page.evaluate(() => ({
    session: sessionStorage.getItem("group-licensing.token"),
    local: localStorage.length,
    cookie: document.cookie,
  }));
  check(storage.session === reader && storage.local === 0 && storage.cookie === "", "the token is in sessionStorage only (no localStorage, no cookie)");

  for (const [path, title] of [
    ["/groups/3", "E3 users"],
    ["/groups/3?tab=members", "E3 users"],
    ["/groups/3?tab=licenses", "E3 users"],
    ["/users/7", "Dan"],
    ["/products/ENTERPRISEPACK", "Office 365 E3"],
    ["/rules", "Rules"],
    ["/settings", "Webhooks"],
  ]) {
    await go(path);
    await shows(title);
    if (path.includes("licenses")) await shows("All 36 plans on");
    if (path.includes("members")) await shows("1–1 of 1 members");
    const found = await editControls();
    check(
      found.buttons.length === 0 && found.boxes === 0 && found.forms.length === 0,
      `a reader sees no control that changes anything on ${path} (${JSON.stringify(found)})`,
    );
  }
  await go("/users/7");
  await axe("a user, for a reader");
  await shot("reader-user");
  await reload();
  await shows("Dan", "a reload keeps the reader signed in (sessionStorage)");

  await page.locator("#session").getByRole("button", { name: "Sign out" }).click();
  await shows("Signed out.");
  await page.getByLabel("Token").fill(admin);
  await page.getByRole("button", { name: "Sign in" }).click();
  await settled();
  await shows("Dan", "signing in again shows the same view");
  check((await page.locator("#session").innerText()).includes("Admin"), "the header says Admin");
  const controls = await editControls();
  check(controls.buttons.includes("Reprocess") && controls.boxes > 0, "an admin sees Reprocess and the plan checkboxes");

  // The token is rotated away mid-session: the next request's 401 brings the form back.
  await page.evaluate(() => sessionStorage.setItem("group-licensing.token", "rotated-away-token-0000"));
  await page.locator("nav.nav").getByRole("link", { name: "Groups" }).click();
  await shows("Sign in to the console");
  await shows("The server said: the token is not valid", "a refused token mid-session brings the form back with the server's message");
  const cleared = await page.evaluate(() => sessionStorage.getItem("group-licensing.token"));
  check(cleared === null, "the refused token is forgotten");
}

async function historyRun() {
  expectAuthRefusals = true;
  const admin = process.env.CONSOLE_ADMIN_TOKEN;
  const reader = process.env.CONSOLE_READER_TOKEN;
  const group = process.env.CONSOLE_HISTORY_GROUP;
  if (!admin || !reader || !group) throw new Error("CONSOLE_ADMIN_TOKEN, CONSOLE_READER_TOKEN and CONSOLE_HISTORY_GROUP must be set");
  const totalOf = async (filters = "") => (await api(admin, `{ auditEvents(first: 1${filters}) { totalCount } }`)).auditEvents.totalCount;
  const total = await totalOf();
  check(total > 100, `the history holds more than two pages of events (${total})`);

  await go("/activity");
  await shows("Sign in to the console");
  await signIn(admin);
  await shows(`${NUMBER.format(total)} events recorded, newest first`);
  await shows(`1–50 of ${NUMBER.format(total)} events`, "the first page of 50, counted with totalCount");
  await shows("Token ann.admin", "an event names the token that made the change");
  await shows("usageLocation: — → US", "a changed property reads “name: old → new”, no value as “—”");
  const refusal = page.locator("main tbody tr.event-failed");
  check((await refusal.count()) === 1, "the one refused mutation is marked");
  const refusalText = await refusal.innerText();
  check(
    refusalText.includes("Set prepaid units") && refusalText.includes("Failure") && refusalText.includes("BAD_USER_INPUT: unknown product `NOT_A_PRODUCT`"),
    `the refusal shows its activity and its “CODE: message” (${refusalText.replace(/\s+/g, " ")})`,
  );
  check((await page.locator('main tbody a[href="/users/11"]').count()) > 0, "a user target links to the user");
  check((await page.locator(`main tbody a[href="/groups/${group}"]`).count()) > 0, "a group target links to the group");
  const time = page.locator("main tbody time").first();
  check(/Z \(UTC\)$/.test((await time.getAttribute("title")) ?? ""), "each time has the UTC instant in its title");

  // Paging.
  const firstRow = await page.locator("main tbody tr").first().innerText();
  await page.getByRole("button", { name: "Next" }).click();
  await shows(`51–100 of ${NUMBER.format(total)} events`);
  check((await page.locator("main tbody tr").first().innerText()) !== firstRow, "Next shows older events");
  await page.getByRole("button", { name: "Previous" }).click();
  await shows(`1–50 of ${NUMBER.format(total)} events`, "Previous goes back");

  // A filter narrows the list, is in the address, and survives a reload.
  await page.getByLabel("Result").selectOption("FAILURE");
  await page.waitForURL((url) => url.searchParams.get("result") === "FAILURE");
  await shows("1 event matches the filters");
  check((await rows()) === 1, "result FAILURE keeps the refused mutation only");
  await reload();
  await shows("1 event matches the filters", "a reload keeps the filter");
  check((await page.getByLabel("Result").inputValue()) === "FAILURE", "the filter shows after a reload");
  await axe("the activity, filtered");
  await shot("activity-failures");

  // Export CSV: the filters of the list, the token in the Authorization header.
  let file = await downloaded(page.getByRole("button", { name: "Export CSV" }));
  check(file.name === "audit-events.csv", `the download is named by the server (${file.name})`);
  check(
    file.lines[0] === "id,activityDateTime,category,activityDisplayName,initiatedByKind,initiatedByName,targets,modifiedProperties,result,resultReason,correlationId",
    "the export starts with its header row",
  );
  check(file.lines.length === 2 && file.lines[1].includes("FAILURE,BAD_USER_INPUT: unknown product `NOT_A_PRODUCT`"), "the filtered export holds the one refusal");
  await notice("Downloaded audit-events.csv");

  // A user and a category, typed: only Gus's events, then only his profile's change.
  await page.getByRole("button", { name: "Clear filters" }).click();
  await shows(`${NUMBER.format(total)} events recorded`);
  await page.getByLabel("User id").fill("11");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await page.waitForURL((url) => url.search === "?user=11");
  const gus = await totalOf(', userId: "11"');
  await shows(`${NUMBER.format(gus)} ${gus === 1 ? "event matches" : "events match"} the filters`);
  const gusRows = await page.locator("main tbody tr").allInnerTexts();
  check(gusRows.length === gus && gusRows.every((row) => row.includes("gus@contoso.com")), "the user filter keeps that user's events");
  await page.getByLabel("Category").selectOption("USER_MANAGEMENT");
  await shows("1 event matches the filters");
  await shows("Update user");
  check(new URL(page.url()).search === "?category=USER_MANAGEMENT&user=11", `both filters are in the address (${new URL(page.url()).search})`);

  // A time range: since a moment to come, nothing; typed in local time, sent as UTC.
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.getByLabel("From").fill("2099-01-01T00:00:00");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await shows("No event matches these filters.");
  check((new URL(page.url()).searchParams.get("since") ?? "").endsWith("Z"), "the time is in the address as a UTC instant");
  await axe("the activity, empty");
  await shot("activity-empty");

  // The whole history: one row per event.
  await page.getByRole("button", { name: "Clear filters" }).click();
  await shows(`${NUMBER.format(total)} events recorded`);
  file = await downloaded(page.getByRole("button", { name: "Export CSV" }));
  check(file.lines.length === total + 1, `the export without filters has a row per event (${file.lines.length - 1} of ${total})`);

  // A filter the server refuses: the list says why, and so does the export, beside its button.
  await go("/activity?user=not-an-id");
  await shows("The activity could not be loaded.");
  await shows("BAD_USER_INPUT");
  expectedStatus = 400;
  await page.getByRole("button", { name: "Export CSV" }).click();
  await page.locator(".page-head .notice-error").waitFor();
  check((await page.locator(".page-head .notice-error").innerText()).includes("BAD_USER_INPUT"), "a refused export shows the server's code beside the button");
  expectedStatus = null;
  await axe("the activity, refused");
  await shot("activity-refused");

  // A user's history, and the way to all of it.
  await go("/users/11");
  const history = page.locator("main section#history");
  await history.locator("tbody tr").first().waitFor();
  const userRows = await history.locator("tbody tr").allInnerTexts();
  check(userRows.length === gus, `the user's history lists the user's ${gus} events`);
  check(userRows.some((row) => row.includes("Update user") && row.includes("Token ann.admin")), "with the profile change and who made it");
  check(userRows.some((row) => row.includes("Change user license") && row.includes("Processing")), "and what processing changed for the user");
  await axe("a user's history");
  await shot("user-history");
  await follow("Filter this user's events in Activity", "/activity");
  check(new URL(page.url()).search === "?user=11", "the link opens Activity filtered to the user");
  await shows(`${NUMBER.format(gus)} ${gus === 1 ? "event matches" : "events match"} the filters`);

  // A group's history: 20 at a time, more on request.
  const groupTotal = await totalOf(`, groupId: "${group}"`);
  check(groupTotal > 20 && groupTotal <= 40, `the group's history takes two pages of 20 (${groupTotal})`);
  await go(`/groups/${group}?tab=history`);
  await shows(`20 of ${NUMBER.format(groupTotal)} events`);
  await shows("Add member to group");
  await page.getByRole("button", { name: "Show 20 more" }).click();
  await shows(`${groupTotal} of ${NUMBER.format(groupTotal)} events`, "“Show 20 more” adds the rest");
  check((await page.locator("[role=tabpanel] tbody tr").count()) === groupTotal, "the tab lists every event of the group");
  check((await page.getByRole("button", { name: "Show 20 more" }).count()) === 0, "and offers no more");
  check((await page.locator("[role=tabpanel] tbody tr").last().innerText()).includes("Add group"), "the oldest is the group's creation");
  await axe("a group, history");
  await shot("group-history");
  await follow("Filter this group's events in Activity", "/activity");
  check(new URL(page.url()).search === `?group=${group}`, "the link opens Activity filtered to the group");

  // A group's users in error, as CSV: Sales' one (S1, Quinn without a seat).
  await go("/groups/8");
  file = await downloaded(page.getByRole("button", { name: "Export CSV" }));
  check(file.name === "license-errors-group-8.csv", `the users in error download as ${file.name}`);
  check(file.lines[0] === "id,userPrincipalName,displayName,group,product,state,error,message,lastUpdatedDateTime", "with their header row");
  check(file.lines.length === 2 && file.lines[1].includes("quinn@contoso.com") && file.lines[1].includes("COUNT_VIOLATION"), "and Quinn's row, the group's one user in error");

  // A product's holders, as CSV.
  await go("/products/ENTERPRISEPACK");
  const holders = (await api(admin, '{ product(skuPartNumber: "ENTERPRISEPACK") { licensedUsers(first: 1) { totalCount } } }')).product.licensedUsers.totalCount;
  file = await downloaded(page.getByRole("button", { name: "Export CSV" }));
  check(file.name === "licensed-users-ENTERPRISEPACK.csv", `the holders download as ${file.name}`);
  check(file.lines[0] === "id,userPrincipalName,displayName,sources,enabledPlans", "with their header row");
  check(file.lines.length === holders + 1, `a row per holder (${file.lines.length - 1} of ${holders})`);
  await notice("Downloaded licensed-users-ENTERPRISEPACK.csv");

  // A reader reads the history and exports it; nothing on the page changes anything.
  await page.locator("#session").getByRole("button", { name: "Sign out" }).click();
  await signIn(reader);
  await go("/activity?result=FAILURE");
  await shows("1 event matches the filters");
  const found = await editControls();
  check(found.buttons.length === 0 && found.boxes === 0 && found.forms.length === 0, `a reader sees no control that changes anything on /activity (${JSON.stringify(found)})`);
  file = await downloaded(page.getByRole("button", { name: "Export CSV" }));
  check(file.lines.length === 2, "a reader's token exports too");
  await axe("the activity, for a reader");
}


/** Waits until `condition()` (in this script, not the page) holds; fails with `what`. */
async function until(condition, what, timeout = TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A webhook receiver on 127.0.0.1: every POST it gets, answered 204. */
async function receiver() {
  const received = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      response.writeHead(204);
      response.end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/licensing`, received, close: () => server.close() };
}

/** The first delivery the receiver got of `type` about an alert of `kind` for `sku`. */
function deliveryOf(received, type, kind, sku) {
  return received.find((d) => {
    try {
      const body = JSON.parse(d.body);
      return body.type === type && body.data?.kind === kind && body.data?.product?.skuPartNumber === sku;
    } catch {
      return false;
    }
  });
}

async function notices() {
  // The reader's probe of its role is refused with 403, as it should be.
  expectAuthRefusals = true;
  const admin = process.env.CONSOLE_ADMIN_TOKEN;
  const reader = process.env.CONSOLE_READER_TOKEN;
  const group = process.env.CONSOLE_ALERT_GROUP;
  if (!admin || !reader || !group) throw new Error("CONSOLE_ADMIN_TOKEN, CONSOLE_READER_TOKEN and CONSOLE_ALERT_GROUP must be set");
  const hook = await receiver();
  try {
    await noticesWith(admin, reader, group, hook);
  } finally {
    hook.close();
  }
}

async function noticesWith(admin, reader, group, hook) {
  const seats = (n) => `${NUMBER.format(n)} ${n === 1 ? "seat" : "seats"}`;
  const standing = async () => (await api(admin, "{ alerts(active: true, first: 100) { totalCount edges { node { kind message product { skuPartNumber } group { id } } } } }")).alerts;
  const before = await standing();
  const exhausted = before.edges.find(({ node }) => node.kind === "SEATS_EXHAUSTED" && node.product?.skuPartNumber === "STANDARDPACK");
  const inError = before.edges.find(({ node }) => node.kind === "LICENSE_ERRORS" && node.group?.id === group);
  check(exhausted && inError, "the API has the alerts the test raised: STANDARDPACK out of seats, the group's users in error");

  // The Overview: every alert that stands, each linked to what it is about.
  await go("/");
  await signIn(admin);
  await shows(`Active alerts (${before.totalCount})`);
  const alerts = page.locator("main section#alerts");
  const seatRow = alerts.locator("tbody tr", { has: page.locator('a[href="/products/STANDARDPACK"]') });
  check((await seatRow.innerText()).startsWith("Out of seats") && (await seatRow.innerText()).includes(exhausted.node.message), "the overview shows STANDARDPACK out of seats, with its message, linked to the product");
  const groupRow = alerts.locator("tbody tr", { has: page.locator(`a[href="/groups/${group}"]`) });
  check((await groupRow.innerText()).startsWith("Users in error") && (await groupRow.innerText()).includes(inError.node.message), "and the group's users in error, linked to the group");
  check((await groupRow.locator("time").count()) === 1, "with when it was raised");
  await axe("the overview, with alerts");
  await shot("overview-alerts");

  // Settings: a refused URL shows the server's error; a good one shows its secret once.
  await page.locator("nav.nav").getByRole("link", { name: "Settings" }).click();
  await settled();
  await shows("No webhook is set up.");
  await page.getByLabel("URL", { exact: true }).fill("ftp://hooks.example.com/licensing");
  await page.getByRole("button", { name: "Create webhook" }).click();
  await notice("BAD_USER_INPUT", "a refused URL shows the server's code");
  await shows("the URL must be https, not ftp", "and its message");
  await page.getByLabel("URL", { exact: true }).fill(hook.url);
  await page.getByLabel("Group processing finished").check();
  await page.getByLabel("Description (optional)").fill("Console test receiver");
  await page.getByRole("button", { name: "Create webhook" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  check((await dialog.innerText()).includes("It is shown only now"), "the secret comes with the warning that it is shown only now");
  const secret = await dialog.getByLabel("Signing secret").inputValue();
  check(secret.length >= 32, `the dialog shows the secret (${secret.length} characters)`);
  await axe("the secret dialog");
  await shot("secret");
  await dialog.getByRole("button", { name: "I have copied it" }).click();
  await dialog.waitFor({ state: "detached" });
  await notice(`Created the webhook to ${hook.url}. Its secret is not shown again.`);
  const row = page.locator("main tbody tr", { hasText: hook.url });
  const rowText = await row.innerText();
  check(
    ["Alert raised", "Alert resolved", "Group processing finished", "Console test receiver"].every((t) => rowText.includes(t)) && !rowText.includes("Every history event"),
    "the list shows the webhook with what it is sent and its description",
  );
  const leaks = async () => page.evaluate((s) => document.documentElement.innerText.includes(s) || [...document.querySelectorAll("input")].some((i) => i.value === s), secret);
  check(!(await leaks()), "once the dialog is closed the secret is nowhere on the page");
  await reload();
  check(!(await leaks()), "nor after a reload");

  // A product's seat alert: refused, set (LOW_SEATS stands at once), delivered to the webhook.
  const product = (await api(admin, '{ product(skuPartNumber: "WORKPLACE_ANALYTICS") { availableUnits seatAlertThreshold } }')).product;
  check(product.seatAlertThreshold === null && product.availableUnits > 0, `WORKPLACE_ANALYTICS has ${product.availableUnits} seats left and no threshold`);
  await go("/products/WORKPLACE_ANALYTICS");
  await shows("Seat alert None set");
  await page.getByLabel("Seat alert at (seats left)").fill("-1");
  await page.getByRole("button", { name: "Set alert" }).click();
  await notice("BAD_USER_INPUT", "a threshold below 0 is refused with the server's code");
  await shows("threshold -1 is out of range", "and its message");
  const threshold = product.availableUnits + 1;
  await page.getByLabel("Seat alert at (seats left)").fill(String(threshold));
  await page.getByRole("button", { name: "Set alert" }).click();
  await notice(`Seat alert set: “Low on seats” stands while ${seats(threshold)} or fewer are available. It stands now: ${seats(product.availableUnits)} available.`);
  await shows(`When ${seats(threshold)} or fewer are left`);
  const lowSeats = page.locator("main .alert-list li", { hasText: "Low on seats" });
  await lowSeats.waitFor();
  check((await lowSeats.innerText()).includes(`at or below the alert threshold of ${threshold}`), "the product shows its LOW_SEATS alert with the server's message");
  check((await page.locator("main .alert-list li").count()) === 1, "and no other: the product has seats left");
  await axe("a product with a seat alert");
  await shot("product-threshold");
  await fits("product with a seat alert");

  await until(() => deliveryOf(hook.received, "ALERT_RAISED", "LOW_SEATS", "WORKPLACE_ANALYTICS"), "the webhook receives the LOW_SEATS alert");
  const raised = deliveryOf(hook.received, "ALERT_RAISED", "LOW_SEATS", "WORKPLACE_ANALYTICS");
  const stamp = raised.headers["x-group-licensing-timestamp"];
  const expected = createHmac("sha256", secret).update(`${stamp}.${raised.body}`).digest("hex");
  check(raised.headers["x-group-licensing-signature"] === `sha256=${expected}`, "the delivery is signed with the secret the dialog showed");

  // The Overview: the new alert first, and more alerts than a page holds.
  await page.locator("nav.nav").getByRole("link", { name: "Overview" }).click();
  await settled();
  const now = await standing();
  check(now.totalCount === before.totalCount + 1, `one alert more stands (${now.totalCount})`);
  await shows(`Active alerts (${now.totalCount})`);
  check((await alerts.locator("tbody tr").first().innerText()).startsWith("Low on seats"), "the newest alert comes first");
  if (now.totalCount > 10) {
    await shows(`1–10 of ${now.totalCount} alerts`);
    await alerts.getByRole("button", { name: "Next" }).click();
    await shows(`11–${Math.min(20, now.totalCount)} of ${now.totalCount} alerts`, "the alerts page on");
    const last = await alerts.locator("tbody tr").last().innerText();
    check(last.includes(now.edges[Math.min(20, now.totalCount) - 1].node.message), "the second page holds the older alerts");
    await alerts.getByRole("button", { name: "Previous" }).click();
    await shows(`1–10 of ${now.totalCount} alerts`);
  } else {
    throw new Error(`the scenario needs more alerts than a page of 10 (it has ${now.totalCount})`);
  }

  // The list shows the last delivery.
  await page.locator("nav.nav").getByRole("link", { name: "Settings" }).click();
  await settled();
  await shows("Delivered, 204", "the list shows the receiver's answer to the last delivery");

  // A reader sees the same, and no control.
  await page.locator("#session").getByRole("button", { name: "Sign out" }).click();
  await signIn(reader);
  for (const [path, text] of [
    ["/settings", hook.url],
    ["/products/WORKPLACE_ANALYTICS", `When ${seats(threshold)} or fewer are left`],
    ["/", "Active alerts"],
  ]) {
    await go(path);
    await shows(text);
    const found = await editControls();
    check(found.buttons.length === 0 && found.boxes === 0 && found.forms.length === 0, `a reader sees no control that changes anything on ${path} (${JSON.stringify(found)})`);
  }
  await go("/settings");
  await shows(hook.url);
  await axe("the settings, for a reader");
  await shot("settings-reader");
  await page.locator("#session").getByRole("button", { name: "Sign out" }).click();
  await signIn(admin);

  // Cleared: the alert resolves, on the page and at the receiver.
  await go("/products/WORKPLACE_ANALYTICS");
  await page.getByRole("button", { name: "Clear alert" }).click();
  await notice("Seat alert cleared");
  await shows("Seat alert None set");
  check((await page.locator("main .alert-list li").count()) === 0, "the LOW_SEATS alert is gone from the product");
  await until(() => deliveryOf(hook.received, "ALERT_RESOLVED", "LOW_SEATS", "WORKPLACE_ANALYTICS"), "the webhook receives the alert's resolution");
  ok("the webhook receives the alert's resolution");

  // Deleted, after a confirmation that can be cancelled.
  await go("/settings");
  await page.getByRole("button", { name: `Delete the webhook to ${hook.url}` }).click();
  let confirm = page.getByRole("dialog");
  check((await confirm.innerText()).includes("Delete this webhook?"), "deleting asks first");
  await confirm.getByRole("button", { name: "Cancel" }).click();
  await confirm.waitFor({ state: "detached" });
  check((await page.locator("main tbody tr", { hasText: hook.url }).count()) === 1, "Cancel deletes nothing");
  await page.getByRole("button", { name: `Delete the webhook to ${hook.url}` }).click();
  confirm = page.getByRole("dialog");
  await confirm.getByRole("button", { name: "Delete webhook" }).click();
  await notice(`Deleted the webhook to ${hook.url}.`);
  await shows("No webhook is set up.");
}

async function live() {
  const members = Number(process.env.CONSOLE_LIVE_MEMBERS);
  if (!members) throw new Error("CONSOLE_LIVE_MEMBERS must be set");
  const sockets = [];
  page.on("websocket", (ws) => {
    const socket = { url: ws.url(), frames: [], closed: false };
    sockets.push(socket);
    ws.on("framereceived", (frame) => {
      try {
        socket.frames.push({ at: Date.now(), message: JSON.parse(frame.payload) });
      } catch {
        // Not JSON: the console would drop the connection; the checks below would miss it.
      }
    });
    ws.on("close", () => {
      socket.closed = true;
    });
  });
  // Every time the page reads the group over HTTP, and what it was told.
  const asks = [];
  page.on("request", (request) => {
    if (request.method() === "POST" && (request.postData() ?? "").includes("query ConsoleGroup(")) asks.push({ at: Date.now(), request });
  });
  const answers = async (since) => {
    const found = [];
    for (const ask of asks.filter((a) => a.at >= since)) {
      const response = await ask.request.response();
      const group = (await response.json()).data?.group;
      if (group) found.push({ state: group.licenseProcessingState, processed: group.processedMembers });
    }
    return found;
  };
  const updates = (since) =>
    sockets
      .flatMap((s) => s.frames)
      .filter((f) => f.at >= since && f.message.type === "next" && f.message.payload?.data?.groupProcessing)
      .map((f) => ({ at: f.at, ...f.message.payload.data.groupProcessing }));
  const assign = (id) =>
    api(null, `mutation ($g: ID!) { assignGroupLicense(groupId: $g, addLicenses: [{ skuPartNumber: "STANDARDPACK", disabledPlans: [] }], removeLicenses: []) { id } }`, { g: id });

  // The Overview of a tenant with no alert, then its alerts as the server raises them.
  check((await api(null, "{ alerts(active: true, first: 1) { totalCount } }")).alerts.totalCount === 0, "the generated tenant starts with no alert");
  await go("/");
  await shows("No alert stands.");
  await axe("the overview, no alert");
  await shot("overview-no-alert");
  const beforeAlerts = Date.now();
  await assign("4");
  const alerts = page.locator("main section#alerts");
  await alerts.locator('a[href="/groups/4"]').waitFor();
  const alertFrames = sockets.flatMap((s) => s.frames).filter((f) => f.at >= beforeAlerts && f.message.payload?.data?.alerts);
  check(alertFrames.length > 0, `the alerts came over the subscription (${alertFrames.length} messages)`);
  const raised = (await api(null, "{ alerts(active: true, first: 10) { totalCount } }")).alerts.totalCount;
  await shows(`Active alerts (${raised})`, "the overview shows every alert raised, without a reload");
  check(await page.evaluate(() => window.__consoleDocument === true), "the same document: nothing was reloaded");

  // A run of All users, which the page did not start: only the socket can tell it.
  await go("/groups/1");
  await shows("All users");
  const following = () => sockets.find((s) => s.frames.some((f) => f.message.payload?.data?.groupProcessing));
  await until(following, "the group's subscription sends its state at once");
  const groupSocket = following();
  await page.evaluate(() => {
    window.__bars = [];
    const record = () => {
      for (const bar of document.querySelectorAll("main .callout-info progress")) window.__bars.push(Number(bar.getAttribute("value")));
    };
    new MutationObserver(record).observe(document.getElementById("main"), { subtree: true, childList: true, attributes: true, attributeFilter: ["value"] });
  });
  const started = Date.now();
  await assign("1");
  await page.waitForFunction(() => [...document.querySelectorAll("main .callout-info progress")].some((bar) => bar.value > 0 && bar.value < bar.max));
  await shows("Office 365 E1", "the page shows the license that started the run");
  await shot("group-progress");
  await page.waitForFunction(() => !document.querySelector("main .callout-info progress") && !document.querySelector("main .page-head").innerText.includes("In progress"));
  const sent = updates(started);
  const moving = sent.filter((u) => u.licenseProcessingState === "IN_PROGRESS" && u.processedMembers > 0 && u.processedMembers < u.membersToProcess);
  const end = sent.find((u) => u.licenseProcessingState === "COMPLETE");
  check(moving.length > 0 && end !== undefined, `the server sent ${moving.length} progress updates and the run's end`);
  const told = await answers(started);
  const heard = new Set(told.map((a) => `${a.state}:${a.processed}`));
  const bars = await page.evaluate(() => window.__bars);
  const fromSocket = moving.filter((u) => bars.includes(u.processedMembers) && !heard.has(`IN_PROGRESS:${u.processedMembers}`));
  check(fromSocket.length > 0, `the bar showed ${fromSocket.map((u) => u.processedMembers).join(", ")} of ${members}, values only the socket carried`);
  // The run's start is news of a change the page has not read (here the license): it reads the
  // group once then, and no more until the end.
  const during = asks.filter((a) => a.at >= started && a.at < end.at);
  check(
    during.length <= 1 && during.every((a) => a.at >= sent[0].at),
    `while the run went the page read the group ${during.length} time(s), after the server said it started (no polling)`,
  );
  check(asks.some((a) => a.at >= end.at), "at the run's end it read the group again");
  const after = (await api(null, '{ group(id: "1") { licenseErrorCount licenseProcessingState } }')).group;
  check(after.licenseProcessingState === "COMPLETE", "the run is complete");
  if (after.licenseErrorCount > 0) {
    await shows(`${NUMBER.format(after.licenseErrorCount)} ${after.licenseErrorCount === 1 ? "user is" : "users are"} in an error state`, "the page shows the run's outcome");
  } else {
    await shows("All licenses assigned", "the page shows the run's outcome");
  }
  check(await page.evaluate(() => window.__consoleDocument === true), "without a reload");
  await shot("group-complete");

  // Leaving the view closes its socket.
  await page.locator("nav.nav").getByRole("link", { name: "Products" }).click();
  await settled();
  await until(() => groupSocket.closed, "leaving the group closes the socket");
  ok("leaving the group closes its socket");

  // Without the socket (refused here), the group's own Reprocess is followed by polling.
  let refused = 0;
  await page.routeWebSocket(/\/graphql$/, (ws) => {
    refused += 1;
    ws.close({ code: 1011, reason: "the test refuses live updates" });
  });
  await go("/groups/1");
  await shows("All users");
  const clicked = Date.now();
  await page.getByRole("button", { name: "Reprocess" }).click();
  const preview = page.getByRole("dialog");
  await preview.locator(".preview-sentence").waitFor();
  await preview.getByRole("button", { name: "Reprocess" }).click();
  await notice(`Reprocessing ${NUMBER.format(members)} members`);
  // The page shows the run (its answer to the mutation), then its end.
  await page.waitForFunction(() => document.querySelector("main .page-head").innerText.includes("In progress"));
  await page.waitForFunction(() => !document.querySelector("main .callout-info progress") && !document.querySelector("main .page-head").innerText.includes("In progress"));
  const polled = await answers(clicked);
  check(polled.length >= 2 && polled[0].state !== "COMPLETE" && polled[polled.length - 1].state === "COMPLETE", `polling followed the run: ${polled.map((a) => a.state).join(" → ")}`);
  check(refused > 0 && updates(clicked).length === 0, `the page tried the socket (${refused} refused) and no update came over one`);
  check(await page.evaluate(() => window.__consoleDocument === true), "without a reload");
}

const SCENARIOS = { views, walk, edit, tokens, notices, live, history: historyRun };

async function main() {
  const run = SCENARIOS[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
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
  context.on("request", (request) => {
    requests.push(request.url());
    if (!isLocal(request.url())) foreign.push(request.url());
  });
  await context.route("**/*", (route) => (isLocal(route.request().url()) ? route.continue() : route.abort("blockedbyclient")));
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    if (expectAuthRefusals && /status of 40[13]/.test(message.text())) return;
    if (expectedStatus && message.text().includes(`status of ${expectedStatus}`)) return;
    problems.push(`console error: ${message.text()}`);
  });
  await run();
}

let failure = null;
try {
  await main();
} catch (error) {
  failure = error;
}
if (page && failure) {
  await page.screenshot({ path: join(shots, `${scenario}-failure.png`), fullPage: true }).catch(() => {});
}
if (context) await context.close().catch(() => {});
rmSync(userDataDir, { recursive: true, force: true });

const paths = new Set(requests.map((url) => new URL(url).pathname.replace(/\/\d+$/, "/{id}")));
console.log(`requests: ${requests.length}, paths: ${[...paths].sort().join(" ")}`);
const errors = [];
if (failure) errors.push(failure.stack ?? failure.message);
if (foreign.length) errors.push(`requests left the machine: ${foreign.join(", ")}`);
errors.push(...problems);
if (errors.length) {
  for (const error of errors) console.error(`FAIL: ${error}`);
  process.exit(1);
}
check(requests.length > 0 && foreign.length === 0, `all ${requests.length} requests went to ${new URL(base).host}`);
console.log(`OK: console scenario ${scenario}: ${passed.length} checks passed; screenshots in ${shots}`);
process.exit(0);
