// The console's entry: finds out what the token in use may do, then shows the view of the
// address. Views have their own URLs (History API): links are real <a href> that this module
// follows without a page load, the back button and a reload show the same view.
//
// A view module exports `render(ctx)`; ctx gives it the main element, the URL's parameters and
// query, what the session may do, and timers that stop when the admin leaves the view.

import { AuthError, clearToken, gql, onAuthFailure, probeRole, token } from "./api.js";
import { h, replace } from "./dom.js";
import { failure } from "./ui.js";
import * as activity from "./views/activity.js";
import * as group from "./views/group.js";
import * as groups from "./views/groups.js";
import * as overview from "./views/overview.js";
import * as product from "./views/product.js";
import * as products from "./views/products.js";
import * as redundant from "./views/redundant.js";
import * as rules from "./views/rules.js";
import * as settings from "./views/settings.js";
import * as signin from "./views/signin.js";
import * as user from "./views/user.js";
import * as users from "./views/users.js";

// The server answers the shell at these same paths (src/server/console.rs, VIEW_ROUTES).
const ROUTES = [
  { pattern: /^\/$/, view: overview, nav: "/" },
  { pattern: /^\/groups$/, view: groups, nav: "/groups" },
  { pattern: /^\/groups\/([^/]+)$/, view: group, nav: "/groups" },
  { pattern: /^\/users$/, view: users, nav: "/users" },
  { pattern: /^\/users\/([^/]+)$/, view: user, nav: "/users" },
  { pattern: /^\/products$/, view: products, nav: "/products" },
  { pattern: /^\/products\/([^/]+)$/, view: product, nav: "/products" },
  { pattern: /^\/redundant-licenses$/, view: redundant, nav: "/redundant-licenses" },
  { pattern: /^\/rules$/, view: rules, nav: "/rules" },
  { pattern: /^\/activity$/, view: activity, nav: "/activity" },
  { pattern: /^\/settings$/, view: settings, nav: "/settings" },
];

const main = document.getElementById("main");
const sessionBox = document.getElementById("session");
const tenantBox = document.getElementById("tenant");
const nav = document.querySelector("nav.nav");

/** What the console knows of its session: the token's role, and whether a token is needed. */
const session = { role: null, signedIn: false, locked: false };

/** The view on screen: what to stop when it is left. */
let current = null;

function leave() {
  if (!current) return;
  current.alive = false;
  for (const stop of current.stops) stop();
  current = null;
}

function context(params) {
  const state = { alive: true, stops: [] };
  current = state;
  return {
    main,
    params,
    query: new URLSearchParams(location.search),
    canEdit: session.role === "admin",
    role: session.role,
    alive: () => state.alive,
    /** Runs `fn` after `ms` unless the view has been left by then. */
    later(ms, fn) {
      const timer = setTimeout(() => state.alive && fn(), ms);
      state.stops.push(() => clearTimeout(timer));
    },
    onLeave(fn) {
      state.stops.push(fn);
    },
    setTitle(text) {
      document.title = text ? `${text} · group-licensing` : "group-licensing";
    },
    navigate,
    /** Writes the view's filters into the address, so that a bookmark or a reload keeps them. */
    setQuery(values, { push = false } = {}) {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(values)) {
        if (value !== null && value !== undefined && value !== "") query.set(key, value);
      }
      const text = query.toString();
      const url = `${location.pathname}${text ? `?${text}` : ""}`;
      if (url === `${location.pathname}${location.search}`) return;
      if (push) history.pushState(null, "", url);
      else history.replaceState(null, "", url);
    },
  };
}

function markNav(active) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function render() {
  leave();
  if (session.locked) return;
  const path = location.pathname;
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    markNav(route.nav);
    let params;
    try {
      params = match.slice(1).map(decodeURIComponent);
    } catch {
      break;
    }
    const ctx = context(params);
    try {
      route.view.render(ctx);
    } catch (error) {
      replace(main, failure(error));
    }
    return;
  }
  markNav(null);
  const ctx = context([]);
  ctx.setTitle("Not found");
  replace(
    main,
    h(
      "div",
      { class: "state state-empty" },
      h("h1", { tabindex: "-1" }, "No such page"),
      h("p", null, "The console has no view at ", h("code", null, path), "."),
      h("p", null, h("a", { href: "/" }, "Go to the overview")),
    ),
  );
}

/** Shows `url` as a view, as a link would. */
export function navigate(url, { replace: replacing = false } = {}) {
  if (replacing) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
  // The new view starts at the top, and a screen reader starts reading it.
  window.scrollTo(0, 0);
  main.focus({ preventScroll: true });
}

/** Left clicks on links to the console's own views are followed without a page load. */
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest?.("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  if (!ROUTES.some((route) => route.pattern.test(url.pathname))) return;
  event.preventDefault();
  navigate(`${url.pathname}${url.search}${url.hash}`);
});

window.addEventListener("popstate", () => render());

function renderSession() {
  const parts = [];
  if (session.signedIn) {
    parts.push(
      session.role === "reader"
        ? h("span", { class: "badge badge-warn", title: "This token may read only: no control changes anything." }, "Reader, read-only")
        : h("span", { class: "badge badge-info" }, "Admin"),
      h("button", { type: "button", on: { click: signOut } }, "Sign out"),
    );
  }
  replace(sessionBox, parts);
}

function signOut() {
  clearToken();
  session.signedIn = false;
  session.role = null;
  lock("Signed out. Enter a token to go on.", "info", false);
}

/** The token form takes the page, with the server's message (console.md: tokens). */
function lock(message, tone = "error", fromServer = true) {
  leave();
  session.locked = true;
  nav.hidden = true;
  renderSession();
  markNav(null);
  document.title = "Sign in · group-licensing";
  signin.render({ main, message, tone, fromServer, onToken: establish });
}

/** Finds out what the token in use (or none) may do, then shows the view of the address. */
async function establish() {
  const tried = token() !== null;
  try {
    session.role = await probeRole();
  } catch (error) {
    if (error instanceof AuthError) {
      if (tried) clearToken();
      // No token yet is the normal first visit, not a failure.
      lock(error.message, tried ? "error" : "info");
      return false;
    }
    replace(main, failure(error, "The server could not be reached."));
    return false;
  }
  session.signedIn = token() !== null;
  session.locked = false;
  nav.hidden = false;
  renderSession();
  render();
  loadTenant();
  return true;
}

async function loadTenant() {
  try {
    const data = await gql("query ConsoleTenant { directory { displayName } }");
    replace(tenantBox, data.directory.displayName);
  } catch {
    // The name is a courtesy; the views say what is wrong.
  }
}

// A 401 (token gone or rotated away) or 403 (the token may no longer change data) at any time.
onAuthFailure((error) => {
  clearToken();
  session.signedIn = false;
  lock(error.message);
});

establish();
