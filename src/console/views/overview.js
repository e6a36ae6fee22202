// Overview (`/`): the seeds' information box. The alerts that stand, newest first (paged, and
// drawn again as the server raises and resolves them, over the `alerts` subscription); groups
// that need attention (users in error), the most users in error first, with their count and
// top reason; products bought or used with their seats, the ones out of seats first; groups
// being processed, with progress, polled every 2 s while any runs or waits.

import { gql } from "../api.js";
import { byName, count, h, plural, replace, time } from "../dom.js";
import { errorLabel } from "../labels.js";
import { subscribe } from "../live.js";
import {
  Pager,
  alertBadge,
  alertSubject,
  badge,
  emptyState,
  errorCount,
  failure,
  groupLink,
  latestOnly,
  loading,
  outOfSeats,
  pageHeader,
  panel,
  productHref,
  progress,
  redraw,
  seatBar,
  table,
} from "../ui.js";

const POLL_MS = 2000;
/** Rows per panel: the rest is one link away, in the lists that page. */
const SHOWN = 10;
/** Alerts often come in bursts (one change, several groups): one redraw for a burst. */
const ALERT_SETTLE_MS = 300;

const ALERTS = `query ConsoleAlerts($first: Int, $after: String) {
  alerts(active: true, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id kind raisedDateTime message product { skuPartNumber displayName } group { id displayName } } }
  }
}`;

const QUERY = `query ConsoleOverview($shown: Int) {
  directory { displayName defaultUsageLocation }
  standing: alerts(active: true, first: 0) { totalCount }
  attention: groups(first: $shown, hasMembersWithLicenseErrors: true, orderBy: LICENSE_ERROR_COUNT_DESC) {
    totalCount
    edges { node { id displayName memberCount licenseErrorCount licenseErrorCounts { error count } } }
  }
  products(boughtOrUsed: true) { skuPartNumber displayName prepaidUnits consumedUnits availableUnits }
  running: groups(first: $shown, licenseProcessingState: IN_PROGRESS) {
    totalCount
    edges { node { id displayName processedMembers membersToProcess } }
  }
  queued: groups(first: $shown, licenseProcessingState: QUEUED) {
    totalCount
    edges { node { id displayName membersToProcess } }
  }
}`;

export function render(ctx) {
  ctx.setTitle("Overview");
  const body = h("div", null, loading("Loading the overview…"));
  const subtitleBox = h("span");
  const alertsBody = h("div", null, loading("Loading the alerts…"));
  let alertCount = null;
  const alertsPanel = h("div");
  const pager = new Pager(() => loadAlerts(), { size: SHOWN });
  const tilesBox = h("div");
  replace(ctx.main, pageHeader({ title: "Overview", subtitle: subtitleBox }), tilesBox, alertsPanel, body);
  drawAlertsPanel();

  function drawAlertsPanel() {
    redraw(alertsPanel, panel({ id: "alerts", title: "Active alerts", count: alertCount, body: alertsBody }));
  }

  const askAlerts = latestOnly(ctx, alertsBody, "The alerts could not be loaded.");
  async function loadAlerts() {
    const data = await askAlerts(ALERTS, { first: pager.first, after: pager.after });
    if (!data) return;
    const connection = data.alerts;
    // Alerts resolved meanwhile can leave a later page empty: back to the first.
    if (connection.edges.length === 0 && pager.after !== null) {
      pager.reset();
      loadAlerts();
      return;
    }
    if (alertCount !== connection.totalCount) {
      alertCount = connection.totalCount;
      drawAlertsPanel();
    }
    if (connection.totalCount === 0) {
      redraw(alertsBody, emptyState("No alert stands.", "An alert is raised when a product runs out of seats or falls to its alert threshold, and when a group has users in error."));
      return;
    }
    redraw(
      alertsBody,
      table({
        caption: "Alerts that stand, newest first",
        columns: [["Alert"], ["About"], ["What raised it"], ["Raised"]],
        rows: connection.edges.map(({ node }) => [alertBadge(node.kind), alertSubject(node), [node.message, "message"], [time(node.raisedDateTime), "nowrap"]]),
      }),
      connection.totalCount > connection.edges.length || pager.after !== null ? pager.render(connection, "alerts") : null,
    );
  }

  // The server tells of each alert raised or resolved; the overview then reads itself again,
  // since what raised it (seats, users in error) shows in the other panels too. Without the
  // socket the alerts are as fresh as the last load.
  let settling = false;
  let polling = false;
  let live = true;
  const stop = subscribe("subscription ConsoleAlertsLive { alerts { id } }", {}, {
    next() {
      if (settling) return;
      settling = true;
      ctx.later(ALERT_SETTLE_MS, () => {
        settling = false;
        loadAlerts();
        load();
      });
    },
    end() {
      live = false;
    },
  });
  ctx.onLeave(stop);

  async function load() {
    let data;
    try {
      data = await gql(QUERY, { shown: SHOWN });
    } catch (error) {
      if (ctx.alive()) replace(body, failure(error));
      return;
    }
    if (!ctx.alive()) return;
    draw(data);
    const busy = data.running.totalCount + data.queued.totalCount;
    // One poll at a time, however many loads an alert burst adds.
    if (busy > 0 && !polling) {
      polling = true;
      ctx.later(POLL_MS, () => {
        polling = false;
        load();
        if (!live) loadAlerts();
      });
    }
  }

  function draw(data) {
    const { directory, standing, attention, products, running, queued } = data;
    const sorted = [...products].sort(
      (a, b) => Number(outOfSeats(b)) - Number(outOfSeats(a)) || b.consumedUnits / Math.max(b.prepaidUnits, 1) - a.consumedUnits / Math.max(a.prepaidUnits, 1) || byName(a.displayName, b.displayName),
    );
    const out = products.filter(outOfSeats).length;
    const busy = running.totalCount + queued.totalCount;
    const subtitle = `${directory.displayName} · users without a usage location of their own are in ${directory.defaultUsageLocation}`;
    replace(subtitleBox, subtitle);
    redraw(
      tilesBox,
      h(
        "div",
        { class: "tiles" },
        tile(standing.totalCount > 0 ? "warn" : "ok", standing.totalCount, standing.totalCount === 1 ? "alert stands" : "alerts stand", "#alerts"),
        tile(attention.totalCount > 0 ? "bad" : "ok", attention.totalCount, attention.totalCount === 1 ? "group needs attention" : "groups need attention", "/groups?errors=with"),
        tile(out > 0 ? "bad" : "ok", out, out === 1 ? "product out of seats" : "products out of seats", "/products"),
        tile("info", products.length, products.length === 1 ? "product bought or used" : "products bought or used", "/products"),
        tile(busy > 0 ? "info" : "ok", busy, busy === 1 ? "group processing" : "groups processing", "/groups?state=IN_PROGRESS"),
      ),
    );
    redraw(
      body,
      h("div", { class: "grid grid-side" }, h("div", null, attentionPanel(attention), processingPanel(running, queued)), seatsPanel(sorted)),
    );
  }

  loadAlerts();
  load();
}

function tile(tone, value, label, href) {
  return h("a", { class: `tile tile-${tone}`, href }, h("div", { class: "tile-value" }, count(value)), h("div", { class: "tile-label" }, label));
}

function attentionPanel(attention) {
  const rows = attention.edges.map(({ node }) => {
    const top = node.licenseErrorCounts[0];
    return [
      groupLink(node),
      [errorCount(node.licenseErrorCount), "num"],
      top ? `${errorLabel(top.error)}${node.licenseErrorCounts.length > 1 ? ` (+${node.licenseErrorCounts.length - 1} more)` : ""}` : "",
      [count(node.memberCount), "num"],
    ];
  });
  const more = attention.totalCount > attention.edges.length;
  return panel({
    title: "Groups that need attention",
    count: attention.totalCount,
    body:
      rows.length === 0
        ? emptyState("No group has users in error.", "Every group's licenses are assigned.")
        : table({
            caption: "Groups with users in error",
            columns: [
              ["Group"],
              ["Users in error", "num"],
              ["Top reason"],
              ["Members", "num"],
            ],
            rows,
          }),
    foot: attention.totalCount > 0 && h("a", { href: "/groups?errors=with" }, more ? `All ${plural(attention.totalCount, "group")} with users in error` : "Open in the list of groups"),
  });
}

function processingPanel(running, queued) {
  const rows = [
    ...running.edges.map(({ node }) => [
      groupLink(node),
      "In progress",
      progress(node.processedMembers, node.membersToProcess, `Processing of ${node.displayName}`),
    ]),
    ...queued.edges.map(({ node }) => [groupLink(node), "Queued", h("span", { class: "muted" }, `${plural(node.membersToProcess, "member")} to process`)]),
  ];
  const total = running.totalCount + queued.totalCount;
  return panel({
    title: "Processing",
    count: total,
    body:
      rows.length === 0
        ? emptyState("No group is being processed.", "Changes to groups and licenses are processed in the background; they show here while they run.")
        : table({ caption: "Groups being processed", columns: [["Group"], ["State"], ["Progress"]], rows }),
    foot:
      total > rows.length &&
      h("a", { href: "/groups?state=IN_PROGRESS" }, `All ${plural(running.totalCount, "group")} in progress`),
  });
}

function seatsPanel(products) {
  return panel({
    title: "Seats",
    count: products.length,
    body:
      products.length === 0
        ? emptyState("No product has seats bought or in use.", "Set a product's seats on its page.")
        : h(
            "ul",
            { class: "seat-list", "aria-label": "Products bought or used, out of seats first" },
            products.map((p) =>
              h(
                "li",
                null,
                h(
                  "div",
                  { class: "seat-line" },
                  h("span", { class: "seat-name" }, h("a", { href: productHref(p.skuPartNumber) }, p.displayName), h("span", { class: "mono" }, p.skuPartNumber)),
                  outOfSeats(p) ? badge("bad", "Out of seats") : badge("ok", `${count(p.availableUnits)} left`),
                ),
                seatBar(p),
              ),
            ),
          ),
    foot: h("a", { href: "/products" }, "All products"),
  });
}
