// Users (`/users`): find a user by the start of the sign-in name (the API's prefix search, in
// name order) or page through the directory by id; the prefix is in the address (?q=).

import { count, h, replace, uid } from "../dom.js";
import {
  Pager,
  badge,
  disabledBadge,
  emptyState,
  latestOnly,
  loading,
  pageHeader,
  redraw,
  table,
  userLink,
} from "../ui.js";

const QUERY = `query ConsoleUsers($first: Int, $after: String, $prefix: String) {
  users(first: $first, after: $after, userPrincipalNameStartsWith: $prefix) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id displayName userPrincipalName usageLocation effectiveUsageLocation hasLicenseErrors accountEnabled
      assignedLicenses { product { skuPartNumber displayName } }
    } }
  }
}`;

export function render(ctx) {
  ctx.setTitle("Users");
  let prefix = ctx.query.get("q") ?? "";
  const pager = new Pager(() => load());
  const results = h("div", null, loading("Loading users…"));
  const totalBox = h("span");
  const searchId = uid("q");
  const search = h("input", { type: "search", id: searchId, value: prefix, class: "wide", placeholder: "e.g. ann@ or ann", autocomplete: "off", spellcheck: "false" });
  const form = h(
    "form",
    {
      class: "toolbar",
      role: "search",
      "aria-label": "Find users",
      on: {
        submit: (event) => {
          event.preventDefault();
          prefix = search.value.trim();
          ctx.setQuery({ q: prefix }, { push: true });
          pager.reset();
          load();
        },
      },
    },
    h("div", { class: "field" }, h("label", { for: searchId }, "Sign-in name starts with"), search),
    h("button", { type: "submit", class: "btn" }, "Search"),
  );
  replace(ctx.main, pageHeader({ title: "Users", subtitle: totalBox }), h("section", { class: "panel", "aria-label": "Users" }, form, results));

  const ask = latestOnly(ctx, results, "The users could not be loaded.");
  async function load() {
    const data = await ask(QUERY, { first: pager.first, after: pager.after, prefix: prefix || null });
    if (!data) return;
    const { users } = data;
    replace(totalBox, prefix ? `${count(users.totalCount)} whose sign-in name starts with “${prefix}”` : `${count(users.totalCount)} in the directory`);
    if (users.edges.length === 0) {
      redraw(results, prefix ? emptyState(`No sign-in name starts with “${prefix}”.`, "Letters are compared regardless of case.") : emptyState("The directory has no users yet."));
      return;
    }
    redraw(
      results,
      table({
        caption: "Users",
        columns: [["Name"], ["Sign-in name"], ["Usage location"], ["Licenses"], ["Status"]],
        rows: users.edges.map(({ node }) => [
          userLink(node),
          node.userPrincipalName,
          node.usageLocation ?? h("span", { class: "muted" }, `${node.effectiveUsageLocation} (default)`),
          node.assignedLicenses.length === 0
            ? h("span", { class: "muted" }, "None")
            : node.assignedLicenses.map((l) => h("span", { class: "chip", title: l.product.displayName }, l.product.skuPartNumber)),
          [node.hasLicenseErrors ? badge("bad", "License errors") : badge("ok", "No errors"), disabledBadge(node) && " ", disabledBadge(node)],
        ]),
      }),
      pager.render(users, "users"),
    );
  }

  load();
}
