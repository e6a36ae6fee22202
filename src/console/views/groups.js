// Groups (`/groups`): search by name, filter by "has members in error" and by processing state;
// the admin center's columns (name, members, licenses, status, users in error); paged with the
// API's cursors, the total from totalCount. Filters live in the address (?q=, ?errors=, ?state=).

import { count, h, replace, uid } from "../dom.js";
import { PROCESSING_LABELS, groupStatus } from "../labels.js";
import {
  Pager,
  badge,
  emptyState,
  errorCount,
  groupLink,
  latestOnly,
  loading,
  pageHeader,
  progress,
  redraw,
  table,
} from "../ui.js";

const QUERY = `query ConsoleGroups($first: Int, $after: String, $name: String, $errors: Boolean, $state: LicenseProcessingState) {
  groups(first: $first, after: $after, displayNameContains: $name, hasMembersWithLicenseErrors: $errors, licenseProcessingState: $state) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id displayName memberCount licenseProcessingState processedMembers membersToProcess licenseErrorCount
      assignedLicenses { product { skuPartNumber displayName } }
    } }
  }
}`;

const ERRORS = { with: true, without: false };
const POLL_MS = 2000;

export function render(ctx) {
  ctx.setTitle("Groups");
  const filters = {
    q: ctx.query.get("q") ?? "",
    errors: ERRORS[ctx.query.get("errors")] === undefined ? "" : ctx.query.get("errors"),
    state: PROCESSING_LABELS[ctx.query.get("state")] ? ctx.query.get("state") : "",
  };
  const pager = new Pager(() => load());
  const results = h("div", null, loading("Loading groups…"));
  const totalBox = h("span");

  const searchId = uid("q");
  const errorsId = uid("errors");
  const stateId = uid("state");
  const search = h("input", { type: "search", id: searchId, value: filters.q, class: "wide", placeholder: "Part of a group's name" });
  const errorsSelect = h(
    "select",
    { id: errorsId },
    [
      ["", "Any"],
      ["with", "With users in error"],
      ["without", "Without users in error"],
    ].map(([value, text]) => h("option", { value, selected: filters.errors === value }, text)),
  );
  const stateSelect = h(
    "select",
    { id: stateId },
    h("option", { value: "", selected: filters.state === "" }, "Any"),
    Object.entries(PROCESSING_LABELS).map(([value, text]) => h("option", { value, selected: filters.state === value }, text)),
  );
  function apply(push) {
    filters.q = search.value.trim();
    filters.errors = errorsSelect.value;
    filters.state = stateSelect.value;
    ctx.setQuery(filters, { push });
    pager.reset();
    load();
  }
  errorsSelect.addEventListener("change", () => apply(false));
  stateSelect.addEventListener("change", () => apply(false));
  const form = h(
    "form",
    { class: "toolbar", role: "search", "aria-label": "Filter groups", on: { submit: (event) => { event.preventDefault(); apply(true); } } },
    h("div", { class: "field" }, h("label", { for: searchId }, "Name contains"), search),
    h("div", { class: "field" }, h("label", { for: errorsId }, "Members in error"), errorsSelect),
    h("div", { class: "field" }, h("label", { for: stateId }, "Processing"), stateSelect),
    h("button", { type: "submit", class: "btn" }, "Search"),
  );

  replace(
    ctx.main,
    pageHeader({ title: "Groups", subtitle: totalBox }),
    h("section", { class: "panel", "aria-label": "Groups" }, form, results),
  );

  const ask = latestOnly(ctx, results, "The groups could not be loaded.");
  let polling = false;
  async function load() {
    const data = await ask(QUERY, {
      first: pager.first,
      after: pager.after,
      name: filters.q || null,
      errors: filters.errors === "" ? null : ERRORS[filters.errors],
      state: filters.state || null,
    });
    if (!data) return;
    const { groups } = data;
    const filtered = filters.q || filters.errors || filters.state;
    replace(totalBox, filtered ? `${count(groups.totalCount)} matching` : `${count(groups.totalCount)} in the directory`);
    if (groups.edges.length === 0) {
      redraw(results, filtered ? emptyState("No group matches these filters.", "Change the name or the filters above.") : emptyState("There are no groups yet.", "Groups are created through the API or SCIM."));
      return;
    }
    redraw(
      results,
      table({
        caption: "Groups",
        columns: [["Name"], ["Members", "num"], ["Licenses"], ["Status"], ["Users in error", "num"]],
        rows: groups.edges.map(({ node }) => {
          const status = groupStatus(node);
          return [
            groupLink(node),
            [count(node.memberCount), "num"],
            node.assignedLicenses.length === 0
              ? h("span", { class: "muted" }, "None")
              : node.assignedLicenses.map((l) => h("span", { class: "chip", title: l.product.displayName }, l.product.skuPartNumber)),
            node.licenseProcessingState === "IN_PROGRESS"
              ? h("div", null, badge(status.tone, status.text), progress(node.processedMembers, node.membersToProcess, `Processing of ${node.displayName}`))
              : badge(status.tone, status.text),
            [errorCount(node.licenseErrorCount), "num"],
          ];
        }),
      }),
      pager.render(groups, "groups"),
    );
    // Progress moves on screen while a listed group is processed.
    if (!polling && groups.edges.some(({ node }) => node.licenseProcessingState !== "COMPLETE")) {
      polling = true;
      ctx.later(POLL_MS, () => {
        polling = false;
        load();
      });
    }
  }

  load();
}
