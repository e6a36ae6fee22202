// Overview (`/`): the seeds' information box. Groups that need attention (users in error), the
// most users in error first, with their count and top reason; products bought or used with
// their seats, the ones out of seats first; groups being processed, with progress, polled every
// 2 s while any runs or waits.
// Active alerts and recent activity take their panels here once the API has them.

import { gql } from "../api.js";
import { byName, count, h, plural, replace } from "../dom.js";
import { errorLabel } from "../labels.js";
import { badge, emptyState, errorCount, failure, groupLink, loading, outOfSeats, pageHeader, panel, productHref, progress, redraw, seatBar, table } from "../ui.js";

const POLL_MS = 2000;
/** Rows per panel: the rest is one link away, in the lists that page. */
const SHOWN = 10;

const QUERY = `query ConsoleOverview($shown: Int) {
  directory { displayName defaultUsageLocation }
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
  replace(ctx.main, pageHeader({ title: "Overview", subtitle: subtitleBox }), body);

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
    if (busy > 0) ctx.later(POLL_MS, load);
  }

  function draw(data) {
    const { directory, attention, products, running, queued } = data;
    const sorted = [...products].sort(
      (a, b) => Number(outOfSeats(b)) - Number(outOfSeats(a)) || b.consumedUnits / Math.max(b.prepaidUnits, 1) - a.consumedUnits / Math.max(a.prepaidUnits, 1) || byName(a.displayName, b.displayName),
    );
    const out = products.filter(outOfSeats).length;
    const busy = running.totalCount + queued.totalCount;
    const subtitle = `${directory.displayName} · users without a usage location of their own are in ${directory.defaultUsageLocation}`;
    replace(subtitleBox, subtitle);
    redraw(
      body,
      h(
        "div",
        { class: "tiles" },
        tile(attention.totalCount > 0 ? "bad" : "ok", attention.totalCount, attention.totalCount === 1 ? "group needs attention" : "groups need attention", "/groups?errors=with"),
        tile(out > 0 ? "bad" : "ok", out, out === 1 ? "product out of seats" : "products out of seats", "/products"),
        tile("info", products.length, products.length === 1 ? "product bought or used" : "products bought or used", "/products"),
        tile(busy > 0 ? "info" : "ok", busy, busy === 1 ? "group processing" : "groups processing", "/groups?state=IN_PROGRESS"),
      ),
      h("div", { class: "grid grid-side" }, h("div", null, attentionPanel(attention), processingPanel(running, queued)), seatsPanel(sorted)),
    );
  }

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
