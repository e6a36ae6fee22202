// Product (`/products/{sku}`): the alerts that stand for it, its seats (bought, used, left; an
// admin sets the seats bought and the seat alert threshold), the groups that carry it, the
// users who hold it with where each has it from (paged; exported as CSV), and its service plans.

import { gql } from "../api.js";
import { count, h, plural, replace, time, uid } from "../dom.js";
import { groupStatus } from "../labels.js";
import {
  Pager,
  Slots,
  act,
  alertBadge,
  badge,
  emptyState,
  errorBody,
  errorCount,
  exportButton,
  groupLink,
  keepFocus,
  latestOnly,
  loadOne,
  loading,
  outOfSeats,
  pageHeader,
  panel,
  redraw,
  seatBar,
  showError,
  stateBadge,
  table,
  userLink,
} from "../ui.js";

const QUERY = `query ConsoleProduct($sku: String!) {
  product(skuPartNumber: $sku) {
    skuPartNumber skuId displayName prepaidUnits consumedUnits availableUnits seatAlertThreshold
    servicePlans { servicePlanName servicePlanId displayName }
    licensedGroups { id displayName memberCount licenseErrorCount licenseProcessingState assignedLicenses { product { skuPartNumber } } }
  }
}`;

// The API lists alerts without a filter by product. At most one alert of each kind stands for a
// product, so the newest standing ones hold this product's unless more than this many stand, which
// the page then says rather than guess.
const ALERTS_READ = 1000;
const ALERTS = `query ConsoleProductAlerts($first: Int) {
  alerts(active: true, first: $first) {
    totalCount
    pageInfo { hasNextPage }
    edges { node { id kind raisedDateTime message product { skuPartNumber } } }
  }
}`;

const THRESHOLD = `mutation ConsoleSetSeatAlert($sku: String!, $threshold: Int) {
  setSeatAlertThreshold(skuPartNumber: $sku, threshold: $threshold) { seatAlertThreshold availableUnits }
}`;

const HOLDERS = `query ConsoleProductUsers($sku: String!, $first: Int, $after: String) {
  product(skuPartNumber: $sku) {
    licensedUsers(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node {
        id displayName userPrincipalName
        licenseAssignmentStates { product { skuPartNumber } assignedByGroup { id displayName } state error }
      } }
    }
  }
}`;

export function render(ctx) {
  const sku = ctx.params[0];
  const slots = new Slots();
  const pager = new Pager(() => loadHolders());
  const holders = h("div", null, loading("Loading the users who hold it…"));
  let product = null;
  // The alerts that stand for it: null until read, or `{ alerts, partial }`, or `{ error }`.
  let standing = null;
  const alertsBox = h("div");
  // The total of the licensed users, shown in their panel's title once the first page is in.
  let holderCount = null;
  const exportSlot = slots.get("export");
  // Made once: the page redraws its panels after each change, and the answer stays beside it.
  const exportCsv = exportButton({
    path: "/export/licensed-users.csv",
    params: () => ({ skuPartNumber: sku }),
    what: `every holder of ${sku}, with their sources and enabled plans`,
    slot: exportSlot,
    id: "export-holders",
    className: "btn btn-small",
  });
  ctx.setTitle(sku);
  replace(ctx.main, loading("Loading the product…"));

  /** Reads the product and draws it; `alerts`, when given, is read meanwhile and drawn with it. */
  async function load(alerts = null) {
    const data = await loadOne(ctx, {
      query: QUERY,
      variables: { sku },
      field: "product",
      crumb: ["Products", "/products"],
      title: sku,
      missing: {
        title: "Product not found",
        text: `The rules in force have no product named ${sku}.`,
        hint: "Names are case-sensitive, e.g. ENTERPRISEPACK.",
      },
    });
    if (alerts) standing = await alerts;
    if (!data) return false;
    product = data.product;
    draw();
    drawAlerts();
    return true;
  }

  /** The alerts that stand for the product: `{ alerts, partial, total }`, or `{ error }`. */
  async function readAlerts() {
    try {
      const data = await gql(ALERTS, { first: ALERTS_READ });
      const connection = data.alerts;
      const alerts = connection.edges.map((e) => e.node).filter((a) => a.product?.skuPartNumber === sku);
      return { alerts, partial: connection.pageInfo.hasNextPage, total: connection.totalCount };
    } catch (error) {
      return { error };
    }
  }

  async function loadAlerts() {
    standing = await readAlerts();
    if (ctx.alive() && product) drawAlerts();
  }

  /**
   * After a change: the product and its alerts (which the change may have raised or resolved),
   * asked together and drawn together, so that no alert of before shows beside the new seats.
   */
  async function reload() {
    await load(readAlerts());
  }

  function drawAlerts() {
    if (standing === null) {
      redraw(alertsBox);
      return;
    }
    if (standing.error) {
      redraw(alertsBox, h("div", { class: "notice notice-error alerts-failed" }, h("p", null, "The product's alerts could not be loaded."), errorBody(standing.error)));
      return;
    }
    const items = standing.alerts.map((alert) =>
      h(
        "li",
        { class: `callout ${alert.kind === "LOW_SEATS" ? "callout-warn" : "callout-bad"}` },
        h("p", { class: "alert-line" }, alertBadge(alert.kind), h("span", null, alert.message)),
        h("p", { class: "callout-meta" }, "Raised ", time(alert.raisedDateTime)),
      ),
    );
    redraw(
      alertsBox,
      items.length > 0 && h("ul", { class: "alert-list", "aria-label": "Alerts that stand for this product" }, items),
      standing.partial &&
        h(
          "p",
          { class: "form-note" },
          `${count(standing.total)} alerts stand; this page read the newest ${count(ALERTS_READ)}, so an older one of this product may not show here. `,
          h("a", { href: "/#alerts" }, "Every alert is on the Overview"),
          ".",
        ),
    );
  }

  function draw() {
    const p = product;
    ctx.setTitle(p.displayName);
    redraw(
      ctx.main,
      pageHeader({
        crumbs: [["Products", "/products"]],
        title: p.displayName,
        badges: [
          outOfSeats(p)
            ? badge("bad", "Out of seats")
            : p.prepaidUnits > 0
              ? badge(p.seatAlertThreshold !== null && p.availableUnits <= p.seatAlertThreshold ? "warn" : "ok", `${count(p.availableUnits)} seats left`)
              : badge("muted", "No seats bought"),
        ],
        subtitle: [h("code", null, p.skuPartNumber), p.skuId && h("span", { class: "muted" }, ` · ${p.skuId}`)],
      }),
      alertsBox,
      h("div", { class: "grid grid-2" }, seatsPanel(p), groupsPanel(p)),
      panel({ title: "Licensed users", count: holderCount, tools: [exportCsv], body: [exportSlot, holders] }),
      plansPanel(p),
    );
  }

  function seatsPanel(p) {
    const body = [
      h(
        "div",
        { class: "panel-body" },
        seatBar(p),
        h(
          "dl",
          { class: "props" },
          h("dt", null, "Prepaid"),
          h("dd", null, count(p.prepaidUnits)),
          h("dt", null, "Consumed"),
          h("dd", null, count(p.consumedUnits)),
          h("dt", null, "Available"),
          h("dd", null, count(p.availableUnits)),
          h("dt", null, "Seat alert"),
          h("dd", null, p.seatAlertThreshold === null ? "None set" : `When ${plural(p.seatAlertThreshold, "seat")} or fewer are left`),
        ),
      ),
    ];
    if (ctx.canEdit) {
      const inputId = uid("units");
      const noteId = uid("units-note");
      const input = h("input", { type: "number", id: inputId, min: "0", step: "1", value: String(p.prepaidUnits), "aria-describedby": noteId });
      const button = h("button", { type: "submit", class: "btn btn-primary" }, "Set seats");
      const slot = slots.get("seats");
      body.push(
        h(
          "form",
          {
            class: "toolbar",
            "aria-label": "Seats bought",
            // Checked below, with the answer in the slot beside the button like every other.
            novalidate: true,
            on: {
              submit: async (event) => {
                event.preventDefault();
                const units = Number(input.value);
                if (!Number.isInteger(units) || units < 0) {
                  showError(slot, new Error("Seats are a whole number, 0 or more."));
                  return;
                }
                const done = await act(button, slot, async () => {
                  const data = await gql(
                    `mutation ConsoleSetSeats($sku: String!, $units: Int!) { setPrepaidUnits(skuPartNumber: $sku, units: $units) { prepaidUnits availableUnits } }`,
                    { sku, units },
                  );
                  const left = data.setPrepaidUnits.availableUnits;
                  return `Seats set to ${count(units)}: ${plural(left, "seat")} available. Users waiting for a seat get one when their group is reprocessed.`;
                });
                if (done) await reload();
                keepFocus(slot);
              },
            },
          },
          h("div", { class: "field" }, h("label", { for: inputId }, "Seats bought (prepaid units)"), input),
          button,
          h("p", { class: "form-note", id: noteId }, "Fewer seats than are used takes no license away; new holders wait for a free seat."),
          slot,
        ),
        thresholdForm(p),
      );
    }
    return panel({ title: "Seats", body });
  }

  /** The seat alert: "Low on seats" stands while the available seats are at the threshold or below. */
  function thresholdForm(p) {
    const inputId = uid("threshold");
    const noteId = uid("threshold-note");
    const input = h("input", { type: "number", id: inputId, min: "0", step: "1", value: p.seatAlertThreshold === null ? "" : String(p.seatAlertThreshold), "aria-describedby": noteId });
    const button = h("button", { type: "submit", class: "btn btn-primary" }, "Set alert");
    const slot = slots.get("threshold");
    const save = async (pressed, threshold) => {
      const done = await act(pressed, slot, async () => {
        const data = await gql(THRESHOLD, { sku, threshold });
        const { seatAlertThreshold: set, availableUnits: left } = data.setSeatAlertThreshold;
        if (set === null) return "Seat alert cleared: no “Low on seats” alert stands for this product any more.";
        const now = left <= set ? `It stands now: ${plural(left, "seat")} available.` : `${plural(left, "seat")} available now, so none stands yet.`;
        return `Seat alert set: “Low on seats” stands while ${plural(set, "seat")} or fewer are available. ${now}`;
      });
      if (done) await reload();
      keepFocus(slot);
    };
    const clear =
      p.seatAlertThreshold !== null &&
      h("button", { type: "button", class: "btn", on: { click: (event) => save(event.currentTarget, null) } }, "Clear alert");
    return h(
      "form",
      {
        class: "toolbar",
        "aria-label": "Seat alert threshold",
        // The server says what it takes (0 or more, a whole number), beside the button.
        novalidate: true,
        on: {
          submit: (event) => {
            event.preventDefault();
            const text = input.value.trim();
            if (text === "") {
              showError(slot, new Error("Type the number of available seats at which to raise the alert, or press Clear alert."));
              return;
            }
            save(button, Number(text));
          },
        },
      },
      h("div", { class: "field" }, h("label", { for: inputId }, "Seat alert at (seats left)"), input),
      button,
      clear,
      h("p", { class: "form-note", id: noteId }, "A “Low on seats” alert is raised when the seats left fall to this number, and resolved when they rise above it."),
      slot,
    );
  }

  function groupsPanel(p) {
    return panel({
      title: "Licensed groups",
      count: p.licensedGroups.length,
      body:
        p.licensedGroups.length === 0
          ? emptyState("No group carries this product.")
          : table({
              caption: "Groups whose licenses hold this product",
              columns: [["Group"], ["Members", "num"], ["Status"], ["Users in error", "num"]],
              rows: p.licensedGroups.map((g) => {
                const status = groupStatus(g);
                return [groupLink(g), [count(g.memberCount), "num"], badge(status.tone, status.text), [errorCount(g.licenseErrorCount), "num"]];
              }),
            }),
    });
  }

  function plansPanel(p) {
    return panel({
      title: "Service plans",
      count: p.servicePlans.length,
      body:
        p.servicePlans.length === 0
          ? emptyState("The rules give this product no plans.")
          : h(
              "div",
              { class: "panel-body" },
              h(
                "ul",
                { class: "plan-grid", "aria-label": "Service plans of the product" },
                p.servicePlans.map((plan) => h("li", null, h("span", { class: "plan-name" }, plan.displayName, h("span", { class: "plan-code" }, plan.servicePlanName)))),
              ),
            ),
    });
  }

  const ask = latestOnly(ctx, holders, "The licensed users could not be loaded.");
  async function loadHolders() {
    const data = await ask(HOLDERS, { sku, first: pager.first, after: pager.after });
    if (!data?.product) return;
    const connection = data.product.licensedUsers;
    if (holderCount !== connection.totalCount) {
      holderCount = connection.totalCount;
      if (product) draw();
    }
    if (connection.totalCount === 0) {
      redraw(holders, emptyState("No user holds this product."));
      return;
    }
    redraw(
      holders,
      table({
        caption: "Users who hold the product",
        columns: [["User"], ["Comes from"], ["State"]],
        rows: connection.edges.map(({ node }) => {
          const mine = node.licenseAssignmentStates.filter((s) => s.product.skuPartNumber === sku && (s.state === "ACTIVE" || s.state === "ACTIVE_WITH_ERROR"));
          return [
            [userLink(node), h("span", { class: "sub" }, node.userPrincipalName)],
            h("div", { class: "source-list" }, mine.map((s) => (s.assignedByGroup ? groupLink(s.assignedByGroup) : h("span", null, "Direct")))),
            h("div", { class: "source-list" }, mine.some((s) => s.error !== "NONE") ? stateBadge("ACTIVE_WITH_ERROR") : stateBadge("ACTIVE")),
          ];
        }),
      }),
      pager.render(connection, "users"),
    );
  }

  // All at once: one round trip before the page is drawn, not three.
  load();
  loadAlerts();
  loadHolders();
}

