// The history (licensing.md H) as the console shows it: one rendering of audit events, used by
// the Activity view (`/activity`), a user's History section and a group's History tab, and the
// short list those two pages show (their latest events, more on request).
//
// Data enters as the API's `AuditEvent` (the selection is `EVENT_FIELDS`, so every place asks
// for the same fields) and leaves as elements; every name and value is set as text.
//
// What an admin reads in a row: when (local time; the UTC instant in its title), what (Graph's
// activity name and the category), who (a token's name, provisioning's, processing, or a server
// without tokens), what it was done to (linked to its page) with each changed property as
// "name: old → new", the result (a refusal in red with its "CODE: message") and the correlation
// id that the events of one request or one processing run share. The API has no filter by
// correlation: rows of the same request that follow each other are drawn as one block, and a
// processing run's start and finish link to that group's runs, which hold the run's events.

import { count, h, plural, time, uid } from "./dom.js";
import { badge, emptyState, groupHref, latestOnly, loading, productHref, redraw, table, userHref } from "./ui.js";

/** The fields of an event, as every list of the console asks for them. */
export const EVENT_FIELDS = `id activityDateTime category activityDisplayName
  initiatedBy { kind name }
  targetResources { type id displayName modifiedProperties { displayName oldValue newValue } }
  result resultReason correlationId`;

/** The API's categories in the words of Entra's audit log, in the API's order. */
export const CATEGORY_LABELS = {
  DIRECTORY_MANAGEMENT: "Directory management",
  USER_MANAGEMENT: "User management",
  GROUP_MANAGEMENT: "Group management",
  LICENSE_MANAGEMENT: "License management",
  LICENSE_PROCESSING: "License processing",
  POLICY: "Policy (rules)",
  NOTIFICATIONS: "Notifications",
};

export const RESULT_LABELS = { SUCCESS: "Success", FAILURE: "Failure" };

const ACTORS = {
  TOKEN: "Token",
  PROVISIONING: "Provisioning",
  SYSTEM: "Processing",
  LOCAL: "Local",
};

const TARGET_LABELS = { RuleSet: "Rules" };

/** Values longer than this are folded: a run's property can list dozens of plans. */
const LONG_VALUE = 120;

function who(actor) {
  const kind = ACTORS[actor.kind] ?? actor.kind;
  // Processing and a server without tokens have one name each; a token's name is the news.
  if (actor.kind === "SYSTEM" || actor.kind === "LOCAL") return h("span", { title: actor.name }, kind);
  return [kind, " ", h("span", { class: "actor-name" }, actor.name)];
}

function targetHref(target) {
  if (target.id === null || target.id === undefined) return null;
  if (target.type === "User") return userHref(target.id);
  if (target.type === "Group") return groupHref(target.id);
  if (target.type === "Product") return productHref(target.id);
  return null;
}

function value(text) {
  if (text === null || text === undefined) return h("span", { class: "muted", title: "No value" }, "—");
  if (text.length <= LONG_VALUE) return h("span", { class: "value" }, text);
  return h(
    "details",
    { class: "long-value" },
    h("summary", null, h("span", { class: "value-start" }, `${text.slice(0, LONG_VALUE - 20)}… `),
      h("span", { class: "value-toggle value-more" }, "show all"),
      h("span", { class: "value-toggle value-less" }, "show less"),
    ),
    h("span", { class: "value" }, text),
  );
}

function target(t) {
  const href = targetHref(t);
  const name = t.displayName ?? t.id ?? "";
  return h(
    "div",
    { class: "target" },
    h("span", { class: "target-type" }, TARGET_LABELS[t.type] ?? t.type),
    " ",
    href ? h("a", { href }, name) : name,
    t.modifiedProperties.length > 0 &&
      h(
        "ul",
        { class: "changes" },
        t.modifiedProperties.map((p) => h("li", null, h("span", { class: "prop-name" }, p.displayName), ": ", value(p.oldValue), " → ", value(p.newValue))),
      ),
  );
}

function result(event) {
  const failed = event.result === "FAILURE";
  return [
    // Nearly every event succeeds: a badge on each would drown the refusals.
    failed ? badge("bad", "Failure") : h("span", { class: "muted" }, "Success"),
    event.resultReason && h("p", { class: failed ? "reason bad-text" : "reason" }, event.resultReason),
  ];
}

/** The correlation id, and for a run's start or finish a link to the group's runs. */
function correlation(event) {
  const own = event.correlationId === event.id;
  const mark = h(
    "span",
    {
      class: "mono",
      title: own ? "Correlation id: this event opened its request or run" : `Correlation id: the same request or run as event ${event.correlationId}`,
    },
    `#${event.correlationId}`,
  );
  const group = event.category === "LICENSE_PROCESSING" && event.targetResources.find((t) => t.type === "Group" && t.id !== null);
  const runs = group && h("a", { class: "run-link", href: `/activity?group=${encodeURIComponent(group.id)}&category=LICENSE_PROCESSING` }, "Runs of this group");
  return [mark, runs];
}

function when(iso) {
  const el = time(iso);
  const date = new Date(iso);
  if (!Number.isNaN(date.getTime())) el.title = `${date.toISOString()} (UTC)`;
  return el;
}

/** The events as a table, newest first as the API gives them. */
export function eventTable(events, caption = "Events") {
  let previous = null;
  const rows = events.map((event) => {
    const classes = [];
    if (event.result === "FAILURE") classes.push("event-failed");
    // The events of one request are written together, so they mostly follow each other.
    if (previous !== null && previous.correlationId === event.correlationId) classes.push("same-request");
    previous = event;
    return {
      class: classes.join(" ") || null,
      cells: [
        [when(event.activityDateTime), "nowrap"],
        [[event.activityDisplayName, h("span", { class: "sub" }, CATEGORY_LABELS[event.category] ?? event.category)], "activity"],
        who(event.initiatedBy),
        event.targetResources.length === 0 ? h("span", { class: "muted" }, "—") : event.targetResources.map(target),
        [result(event), "event-result"],
        [correlation(event), "nowrap"],
      ],
    };
  });
  return table({
    caption,
    columns: [["When"], ["Activity"], ["By"], ["Target and changes"], ["Result"], ["Correlation"]],
    rows,
  });
}

/** Events a page of a user's or a group's history asks for at a time. */
export const HISTORY_PAGE = 20;
/** The API's largest page: a refresh asks again for all the events shown, up to this. */
const LARGEST_PAGE = 1000;

/**
 * The latest events of one user or group (`owner`, "user" or "group", with its `id`; the API's
 * `User.auditEvents` and `Group.auditEvents`), HISTORY_PAGE at a time ("Show more" adds the
 * next), with a link to the Activity view filtered to them. `load()` asks again for as many
 * events as are shown, so that a refresh after a change keeps the admin's place.
 */
export function historyList(ctx, owner, id) {
  const query = `query ConsoleHistory($id: ID!, $first: Int, $after: String) {
  ${owner}(id: $id) {
    auditEvents(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { ${EVENT_FIELDS} } }
    }
  }
}`;
  const allHref = `/activity?${owner}=${encodeURIComponent(id)}`;
  const list = h("div", null, loading("Loading the history…"));
  const ask = latestOnly(ctx, list, "The history could not be loaded.");
  const moreId = uid("more");
  let events = [];
  let pageInfo = null;
  let total = 0;

  async function fetchPage(first, after) {
    const data = await ask(query, { id, first, after });
    // Null too when the user or group was deleted meanwhile: its page says so.
    return data?.[owner]?.auditEvents ?? null;
  }

  async function load() {
    const connection = await fetchPage(Math.min(Math.max(HISTORY_PAGE, events.length), LARGEST_PAGE), null);
    if (!connection) return;
    events = connection.edges.map((edge) => edge.node);
    pageInfo = connection.pageInfo;
    total = connection.totalCount;
    draw();
  }

  async function more(button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    const connection = await fetchPage(HISTORY_PAGE, pageInfo.endCursor);
    if (!connection) return;
    events = events.concat(connection.edges.map((edge) => edge.node));
    pageInfo = connection.pageInfo;
    total = connection.totalCount;
    draw();
  }

  function draw() {
    const all = h("a", { href: allHref }, `Filter this ${owner}'s events in Activity`);
    if (total === 0) {
      redraw(list, emptyState(`Nothing is recorded for this ${owner} yet.`, "Changes, refusals and processing runs show here as they happen."), h("p", { class: "history-all" }, all));
      return;
    }
    const moreButton =
      pageInfo.hasNextPage &&
      h("button", { type: "button", class: "btn btn-small", id: moreId, on: { click: (event) => more(event.currentTarget) } }, `Show ${HISTORY_PAGE} more`);
    redraw(
      list,
      eventTable(events),
      h("div", { class: "pager" }, h("span", { class: "range", "aria-live": "polite" }, `${count(events.length)} of ${plural(total, "event")}`), moreButton, all),
    );
  }

  return { el: list, load };
}
