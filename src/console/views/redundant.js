// Redundant direct licenses (`/redundant-licenses`, licensing.md M): the direct licenses that
// the users' groups already cover, so that removing them changes nothing the users hold. The
// last step of moving from direct to group licensing: put the users in a licensed group, check
// it licensed them, then remove what is now redundant. Filter by product (?sku=), select, and
// remove; the server checks each again as it removes it and says why it kept any.

import { gql } from "../api.js";
import { count, h, plural, replace, uid } from "../dom.js";
import {
  Pager,
  Slots,
  act,
  confirmDialog,
  emptyState,
  groupLink,
  keepFocus,
  latestOnly,
  loading,
  pageHeader,
  productCell,
  productInput,
  redraw,
  table,
  userLink,
} from "../ui.js";

const QUERY = `query ConsoleRedundant($first: Int, $after: String, $sku: String) {
  redundantDirectLicenses(first: $first, after: $after, skuPartNumber: $sku) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      user { id displayName userPrincipalName }
      product { skuPartNumber displayName }
      coveredBy { id displayName }
    } }
  }
}`;

const CLEANUP = `mutation ConsoleRemoveRedundant($users: [ID!]!, $skus: [String!]) {
  removeRedundantDirectLicenses(userIds: $users, skuPartNumbers: $skus) {
    removed { user { id } product { skuPartNumber } }
    skipped { user { id displayName userPrincipalName } product { skuPartNumber } reason }
  }
}`;

export function render(ctx) {
  ctx.setTitle("Redundant direct licenses");
  const slots = new Slots();
  const slot = slots.get("cleanup");
  let sku = ctx.query.get("sku") ?? "";
  const pager = new Pager(() => load());
  const list = h("div", null, loading("Looking for direct licenses that groups cover…"));
  const totalBox = h("span");
  const selected = new Map();
  const removeButton = h("button", { type: "button", class: "btn btn-danger", disabled: true }, "Remove selected");
  const inputId = uid("sku");
  const { input, list: suggestions } = productInput(inputId);
  input.value = sku;
  const filter = h(
    "form",
    {
      class: "toolbar",
      role: "search",
      "aria-label": "Filter by product",
      on: {
        submit: (event) => {
          event.preventDefault();
          sku = input.value.trim();
          ctx.setQuery({ sku });
          pager.reset();
          load();
        },
      },
    },
    h("div", { class: "field" }, h("label", { for: inputId }, "Product (skuPartNumber)"), input, suggestions),
    h("button", { type: "submit", class: "btn" }, "Filter"),
    ctx.canEdit && removeButton,
  );

  function key(node) {
    return `${node.user.id}\u0000${node.product.skuPartNumber}`;
  }

  function drawSelection() {
    removeButton.disabled = selected.size === 0;
    removeButton.textContent = selected.size === 0 ? "Remove selected" : `Remove ${plural(selected.size, "selected license")}`;
  }

  removeButton.addEventListener("click", async () => {
    const chosen = [...selected.values()];
    const sure = await confirmDialog({
      title: `Remove ${plural(chosen.length, "direct license")}?`,
      message:
        "Each is checked again as it is removed: one that the user's groups no longer cover entirely is kept, and you are told why. What the users hold does not change.",
      confirm: "Remove",
    });
    if (!sure) return;
    // One call per product, so that a user's other direct licenses are left alone.
    const byProduct = new Map();
    for (const node of chosen) {
      const users = byProduct.get(node.product.skuPartNumber) ?? [];
      users.push(node.user.id);
      byProduct.set(node.product.skuPartNumber, users);
    }
    const skipped = [];
    let removed = 0;
    const done = await act(removeButton, slot, async () => {
      for (const [product, users] of byProduct) {
        const data = await gql(CLEANUP, { users, skus: [product] });
        removed += data.removeRedundantDirectLicenses.removed.length;
        skipped.push(...data.removeRedundantDirectLicenses.skipped);
      }
      return null;
    });
    if (done) {
      selected.clear();
      const parts = [h("p", null, `Removed ${plural(removed, "direct license")}.`)];
      if (skipped.length > 0) {
        parts.push(
          h("p", null, `${plural(skipped.length, "license")} kept:`),
          table({
            caption: "Direct licenses kept",
            columns: [["User"], ["Product"], ["Why"]],
            rows: skipped.map((s) => [userLink(s.user), s.product.skuPartNumber, s.reason]),
          }),
        );
      }
      replace(slot, h("div", { class: skipped.length > 0 ? "notice notice-info" : "notice notice-ok", tabindex: "-1" }, parts));
      pager.reset();
      await load();
    }
    drawSelection();
    keepFocus(slot);
  });

  replace(
    ctx.main,
    pageHeader({
      title: "Redundant direct licenses",
      subtitle: totalBox,
    }),
    h(
      "section",
      { class: "panel", "aria-label": "Redundant direct licenses" },
      h(
        "p",
        { class: "panel-intro" },
        "Direct licenses that the users' groups already give them in full (every plan the direct license enables, from groups whose assignment is active). Removing one changes neither what the user holds nor the seats.",
      ),
      filter,
      slot,
      list,
    ),
  );

  const ask = latestOnly(ctx, list, "The redundant direct licenses could not be loaded.");
  async function load() {
    const data = await ask(QUERY, { first: pager.first, after: pager.after, sku: sku || null });
    if (!data) return;
    const connection = data.redundantDirectLicenses;
    replace(totalBox, `${count(connection.totalCount)} direct ${connection.totalCount === 1 ? "license is" : "licenses are"} covered by groups${sku ? ` (${sku})` : ""}`);
    if (connection.totalCount === 0) {
      redraw(
        list,
        emptyState(
          sku ? `No direct license of ${sku} is covered by a group.` : "No direct license is covered by a group.",
          "Put users in a licensed group and let it process: their direct licenses of the same product show here once the group covers them.",
        ),
      );
      return;
    }
    const columns = [];
    if (ctx.canEdit) columns.push(["", "select"]);
    columns.push(["User"], ["Product"], ["Covered by"]);
    redraw(
      list,
      table({
        caption: "Direct licenses covered by groups",
        columns,
        rows: connection.edges.map(({ node }) => {
          const cells = [];
          if (ctx.canEdit) {
            const box = h("input", {
              type: "checkbox",
              checked: selected.has(key(node)),
              "aria-label": `Select ${node.product.skuPartNumber} of ${node.user.displayName}`,
            });
            box.addEventListener("change", () => {
              if (box.checked) selected.set(key(node), node);
              else selected.delete(key(node));
              drawSelection();
            });
            cells.push([box, "select"]);
          }
          cells.push(
            [userLink(node.user), h("div", { class: "muted" }, node.user.userPrincipalName)],
            productCell(node.product),
            h("div", { class: "source-list" }, node.coveredBy.map((g) => groupLink(g))),
          );
          return cells;
        }),
      }),
      pager.render(connection, "licenses"),
    );
  }
  load();
}
