// Activity (`/activity`, licensing.md H6): the history, newest first, paged with the API's
// cursors and counted with totalCount. Filters: category, result, user id, group id, product,
// and a time range typed in the browser's time zone and sent as UTC. Every filter is in the
// address (?category=, ?result=, ?user=, ?group=, ?product=, ?since=, ?until=; times as UTC
// instants), so a user's and a group's pages link here with theirs. "Export CSV" downloads
// `/export/audit-events.csv` with the filters of the list on screen.

import { count, h, replace, uid } from "../dom.js";
import { CATEGORY_LABELS, EVENT_FIELDS, RESULT_LABELS, eventTable } from "../history.js";
import { Pager, Slots, emptyState, exportButton, latestOnly, loading, pageHeader, productInput, redraw } from "../ui.js";

const QUERY = `query ConsoleActivity($first: Int, $after: String, $since: DateTime, $until: DateTime, $category: AuditCategory,
    $user: ID, $group: ID, $sku: String, $result: AuditResult) {
  auditEvents(first: $first, after: $after, since: $since, until: $until, category: $category,
      userId: $user, groupId: $group, skuPartNumber: $sku, result: $result) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { ${EVENT_FIELDS} } }
  }
}`;

/** A UTC instant of the address, or "" when it is not one. */
function instant(text) {
  if (!text) return "";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** A UTC instant as a `datetime-local` input's value, in the browser's zone. */
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The browser's offset from UTC, e.g. "UTC+01:00", for the form's note. */
function zoneName() {
  const minutes = -new Date().getTimezoneOffset();
  const sign = minutes < 0 ? "−" : "+";
  const abs = Math.abs(minutes);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

export function render(ctx) {
  ctx.setTitle("Activity");
  const q = ctx.query;
  const filters = {
    category: CATEGORY_LABELS[q.get("category")] ? q.get("category") : "",
    result: RESULT_LABELS[q.get("result")] ? q.get("result") : "",
    user: (q.get("user") ?? "").trim(),
    group: (q.get("group") ?? "").trim(),
    product: (q.get("product") ?? "").trim(),
    since: instant(q.get("since")),
    until: instant(q.get("until")),
  };
  const slots = new Slots();
  const pager = new Pager(() => load());
  const list = h("div", null, loading("Loading the activity…"));
  const totalBox = h("span");

  const ids = Object.fromEntries(Object.keys(filters).map((key) => [key, uid(key)]));
  const categorySelect = h(
    "select",
    { id: ids.category },
    h("option", { value: "" }, "All categories"),
    Object.entries(CATEGORY_LABELS).map(([value, text]) => h("option", { value, selected: filters.category === value }, text)),
  );
  const resultSelect = h(
    "select",
    { id: ids.result },
    h("option", { value: "" }, "Any result"),
    Object.entries(RESULT_LABELS).map(([value, text]) => h("option", { value, selected: filters.result === value }, text)),
  );
  const idInput = (key, placeholder) =>
    h("input", { type: "text", id: ids[key], value: filters[key], class: "id-input", inputmode: "numeric", autocomplete: "off", spellcheck: "false", placeholder });
  const userInput = idInput("user", "e.g. 7");
  const groupInput = idInput("group", "e.g. 3");
  const { input: productBox, list: productList } = productInput(ids.product);
  productBox.value = filters.product;
  productBox.classList.remove("wide");
  productBox.classList.add("sku-input");
  const zoneNote = uid("zone");
  const timeInput = (key) => h("input", { type: "datetime-local", id: ids[key], step: "1", value: localInput(filters[key]), "aria-describedby": zoneNote });
  const sinceInput = timeInput("since");
  const untilInput = timeInput("until");

  function read() {
    const utc = (input) => (input.value ? instant(input.value) : "");
    // The inputs stop at the second: "until" takes in the whole of the second typed.
    const until = utc(untilInput);
    return {
      category: categorySelect.value,
      result: resultSelect.value,
      user: userInput.value.trim(),
      group: groupInput.value.trim(),
      product: productBox.value.trim(),
      since: utc(sinceInput),
      until: until && new Date(new Date(until).getTime() + 999).toISOString(),
    };
  }

  function apply(values, push) {
    Object.assign(filters, values);
    ctx.setQuery(filters, { push });
    pager.reset();
    load();
  }

  categorySelect.addEventListener("change", () => apply(read(), false));
  resultSelect.addEventListener("change", () => apply(read(), false));

  const field = (key, label, control, extra) => h("div", { class: "field" }, h("label", { for: ids[key] }, label), control, extra);
  const clear = h(
    "button",
    {
      type: "button",
      class: "btn",
      on: {
        click: () => {
          for (const control of [categorySelect, resultSelect, userInput, groupInput, productBox, sinceInput, untilInput]) control.value = "";
          apply(read(), true);
        },
      },
    },
    "Clear filters",
  );
  const form = h(
    "form",
    {
      class: "toolbar",
      role: "search",
      "aria-label": "Filter the activity",
      on: {
        submit: (event) => {
          event.preventDefault();
          apply(read(), true);
        },
      },
    },
    field("category", "Category", categorySelect),
    field("result", "Result", resultSelect),
    field("user", "User id", userInput),
    field("group", "Group id", groupInput),
    field("product", "Product (skuPartNumber)", productBox, productList),
    h("div", { class: "toolbar-break" }),
    field("since", "From", sinceInput),
    field("until", "Until", untilInput),
    h("button", { type: "submit", class: "btn btn-primary" }, "Filter"),
    clear,
    h("p", { class: "form-note toolbar-note", id: zoneNote }, `Times are in your browser's time zone (${zoneName()}) and sent as UTC; "Until" includes that second.`),
  );

  const exportSlot = slots.get("export");
  const exportCsv = exportButton({
    path: "/export/audit-events.csv",
    params: () => ({
      since: filters.since,
      until: filters.until,
      category: filters.category,
      userId: filters.user,
      groupId: filters.group,
      skuPartNumber: filters.product,
      result: filters.result,
    }),
    what: "every event of the list below, all its pages, newest first",
    slot: exportSlot,
    id: "export-activity",
  });

  replace(
    ctx.main,
    pageHeader({ title: "Activity", subtitle: totalBox, actions: [exportCsv, exportSlot] }),
    h("section", { class: "panel", "aria-label": "Activity" }, form, list),
  );

  function filtered() {
    return Object.values(filters).some((v) => v !== "");
  }

  const ask = latestOnly(ctx, list, "The activity could not be loaded.");
  async function load() {
    const data = await ask(QUERY, {
      first: pager.first,
      after: pager.after,
      since: filters.since || null,
      until: filters.until || null,
      category: filters.category || null,
      user: filters.user || null,
      group: filters.group || null,
      sku: filters.product || null,
      result: filters.result || null,
    });
    if (!data) return;
    const connection = data.auditEvents;
    const n = connection.totalCount;
    const what = filtered() ? (n === 1 ? "event matches the filters" : "events match the filters") : n === 1 ? "event recorded" : "events recorded";
    replace(totalBox, `${count(n)} ${what}${n > 1 ? ", newest first" : ""}`);
    if (n === 0) {
      redraw(
        list,
        filtered()
          ? emptyState("No event matches these filters.", "Widen the time range or clear a filter.")
          : emptyState("No event recorded yet.", "Every change, refused change and processing run is recorded here as it happens."),
      );
      return;
    }
    redraw(list, eventTable(connection.edges.map((edge) => edge.node), "Audit events"), pager.render(connection, "events"));
  }

  load();
}
