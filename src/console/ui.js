// Pieces every view is built from: headers and panels, tables, badges and bars, the loading,
// empty and error states, action feedback, the confirmation dialog, the pager, plan checklists
// and the product picker. Each takes data and returns elements; none fetches but the pickers.

import { ApiError, AuthError, downloadCsv, gql } from "./api.js";
import { append, byName, bytes, count, h, replace, setWidth, uid } from "./dom.js";
import { ALERT_LABELS, ALERT_TONES, STATE_LABELS, STATE_TONES, errorLabel } from "./labels.js";

// ---- Structure ----------------------------------------------------------------------------

/** The top of a view: breadcrumbs, the title with its badges, a subtitle and the actions. */
export function pageHeader({ crumbs = [], title, badges = [], subtitle, actions = [] }) {
  return h(
    "header",
    { class: "page-head" },
    h(
      "div",
      { class: "titles" },
      crumbs.length > 0 &&
        h(
          "nav",
          { class: "crumbs", "aria-label": "Breadcrumb" },
          h("ol", null, crumbs.map(([text, href]) => h("li", null, h("a", { href }, text)))),
        ),
      h("div", { class: "title-line" }, h("h1", { tabindex: "-1" }, title), badges),
      subtitle && h("p", { class: "subtitle" }, subtitle),
    ),
    actions.length > 0 && h("div", { class: "actions" }, actions),
  );
}

/** A titled box; `tools` go at the right of its title, `body` below. */
export function panel({ title, count: n, tools = [], body = [], foot, id, labelId = uid("panel") }) {
  return h(
    "section",
    { class: "panel", "aria-labelledby": labelId, id },
    h(
      "div",
      { class: "panel-head" },
      h("h2", { id: labelId }, title, n !== undefined && n !== null && h("span", { class: "count" }, ` (${count(n)})`)),
      tools,
    ),
    body,
    foot && h("div", { class: "panel-foot" }, foot),
  );
}

/**
 * A table: `columns` are [label, className] pairs (className "num" right-aligns), `rows` are
 * arrays of cells, or `{ cells, class }` for a row with a class of its own. A cell is a node, a
 * string, an array of them, [content, className], or `{ cell, rowspan }` for one that spans the
 * next rows (which then leave that column out).
 */
export function table({ caption, columns, rows }) {
  const cellOf = (cell, column) => {
    if (cell && typeof cell === "object" && !Array.isArray(cell) && !(cell instanceof Node)) {
      return h("td", { class: columns[column]?.[1], rowspan: cell.rowspan > 1 ? String(cell.rowspan) : null }, cell.cell);
    }
    if (Array.isArray(cell) && cell.length === 2 && typeof cell[1] === "string") return h("td", { class: cell[1] }, cell[0]);
    return h("td", { class: columns[column]?.[1] }, cell);
  };
  // Columns a rowspan above still covers, per row.
  const covered = new Map();
  const body = rows.map((row, r) => {
    const cells = Array.isArray(row) ? row : row.cells;
    const tds = [];
    let column = 0;
    for (const cell of cells) {
      while ((covered.get(column) ?? -1) >= r) column += 1;
      tds.push(cellOf(cell, column));
      if (cell && typeof cell === "object" && cell.rowspan > 1) covered.set(column, r + cell.rowspan - 1);
      column += 1;
    }
    return h("tr", Array.isArray(row) ? null : { class: row.class }, tds);
  });
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      null,
      caption && h("caption", { class: "visually-hidden" }, caption),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          columns.map(([label, cls]) =>
            h("th", { scope: "col", class: cls }, label === "" ? h("span", { class: "visually-hidden" }, "Actions") : label),
          ),
        ),
      ),
      h("tbody", null, body),
    ),
  );
}

/**
 * Replaces what `container` shows, keeping the keyboard focus on the same link or control when
 * the new content has it again: views that poll redraw while the admin is reading.
 */
export function redraw(container, ...children) {
  const active = document.activeElement;
  let key = null;
  if (active && container.contains(active)) {
    if (active.id) key = `#${CSS.escape(active.id)}`;
    else if (active.getAttribute("href")) key = `a[href="${CSS.escape(active.getAttribute("href"))}"]`;
  }
  replace(container, ...children);
  if (key) container.querySelector(key)?.focus();
  return container;
}

// ---- Badges and bars ----------------------------------------------------------------------

export function badge(tone, text) {
  return h("span", { class: `badge badge-${tone}` }, text);
}

export function stateBadge(state) {
  return badge(STATE_TONES[state] ?? "muted", STATE_LABELS[state] ?? state);
}

/** A count of users in error: red when above zero. */
export function errorCount(n) {
  return n > 0 ? h("span", { class: "err-count" }, count(n)) : h("span", { class: "zero" }, "0");
}

/** Seats used of those bought, as a bar with the numbers beside it. */
export function seatBar(product, { text = true } = {}) {
  const { prepaidUnits: prepaid, consumedUnits: used, availableUnits: left } = product;
  const tone = prepaid === 0 && used === 0 ? "" : left === 0 ? "seats-out" : left / Math.max(prepaid, 1) < 0.1 ? "seats-low" : "seats-ok";
  const fill = setWidth(h("span", { class: "fill" }), prepaid > 0 ? (used / prepaid) * 100 : used > 0 ? 100 : 0);
  const bar = h("div", { class: `bar ${tone}`, "aria-hidden": "true" }, fill);
  if (!text) return bar;
  return h("div", { class: "seats" }, bar, h("span", { class: "seats-text" }, `${count(used)} of ${count(prepaid)} used`));
}

/** Whether a product has no seat left for a new holder (bought, or used beyond what was bought). */
export function outOfSeats(product) {
  return product.availableUnits === 0 && (product.prepaidUnits > 0 || product.consumedUnits > 0);
}

/** A group's processing: a progress bar with "N of M members". */
export function progress(done, total, label) {
  return h(
    "div",
    { class: "progress" },
    h("progress", { value: String(done), max: String(Math.max(total, 1)), "aria-label": label }),
    h("span", { class: "progress-text" }, `${count(done)} of ${count(total)} members`),
  );
}

/**
 * Moves the progress bar inside `container` to `done` of `total`, in place, so that the bar
 * glides (its CSS transition) rather than being drawn anew; false when there is no bar.
 */
export function moveProgress(container, done, total) {
  const bar = container.querySelector(".progress progress");
  const text = container.querySelector(".progress .progress-text");
  if (!bar || !text) return false;
  bar.max = Math.max(total, 1);
  bar.value = done;
  text.textContent = `${count(done)} of ${count(total)} members`;
  return true;
}

// ---- Links --------------------------------------------------------------------------------

export function groupHref(id) {
  return `/groups/${encodeURIComponent(id)}`;
}
export function userHref(id) {
  return `/users/${encodeURIComponent(id)}`;
}
export function productHref(sku) {
  return `/products/${encodeURIComponent(sku)}`;
}

export function groupLink(group) {
  return h("a", { href: groupHref(group.id) }, group.displayName);
}
export function userLink(user) {
  return h("a", { href: userHref(user.id) }, user.displayName || user.userPrincipalName);
}
/** A disabled account's mark (`accountEnabled: false`, SCIM's `active`); null for an enabled one. */
export function disabledBadge(user, text = "Disabled") {
  if (user.accountEnabled !== false) return null;
  const mark = badge("muted", text);
  mark.title = "The account is disabled: it keeps its licenses, and licensing goes on as usual";
  return mark;
}
/** A product's name linked, with its `skuPartNumber` under it. */
export function productCell(product) {
  return [h("a", { href: productHref(product.skuPartNumber) }, product.displayName), h("span", { class: "sub mono" }, product.skuPartNumber)];
}

export function alertBadge(kind) {
  return badge(ALERT_TONES[kind] ?? "muted", ALERT_LABELS[kind] ?? kind);
}

/** What an alert is about, linked: its product or its group, or what became of it. */
export function alertSubject(alert) {
  if (alert.product) return productCell(alert.product);
  if (alert.group) return groupLink(alert.group);
  return h("span", { class: "muted" }, alert.kind === "LICENSE_ERRORS" ? "A group since deleted" : "A product the rules no longer have");
}

// ---- States -------------------------------------------------------------------------------

export function loading(text = "Loading…") {
  return h("div", { class: "state state-loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export function emptyState(title, hint) {
  return h("div", { class: "state state-empty" }, h("p", { class: "state-title" }, title), hint && h("p", null, hint));
}

/** What the server said: its code and message, and its suggested resolutions when it gave any. */
export function errorBody(error) {
  if (!(error instanceof ApiError)) return [h("p", null, String(error?.message ?? error))];
  const extra = [];
  for (const detail of error.details ?? []) {
    if (detail && typeof detail === "object" && typeof detail.message === "string") {
      const where = detail.file ? `${detail.file}:${detail.line}:${detail.column}: ` : "";
      if (!error.message.includes(detail.message)) extra.push(h("li", null, where + detail.message));
    }
  }
  for (const resolution of error.resolutions ?? []) extra.push(h("li", null, resolution));
  return [h("p", null, h("span", { class: "code" }, error.code), error.message), extra.length > 0 && h("ul", null, extra)];
}

/** A view's data could not be loaded: why, and a way to ask again. */
export function failure(error, title = "This view could not be loaded.") {
  // The router draws the view of the address again on popstate, as after the back button.
  const retry = h("button", { type: "button", class: "btn btn-small", on: { click: () => dispatchEvent(new PopStateEvent("popstate")) } }, "Try again");
  return h("div", { class: "state state-error", role: "alert" }, h("p", { class: "state-title" }, title), errorBody(error), h("p", null, retry));
}

// ---- Actions ------------------------------------------------------------------------------

/**
 * Where an action tells what it did. Views keep one per place (by key) across their
 * re-renders, so that the message stays beside the control after the view refreshes.
 */
export class Slots {
  constructor() {
    this.slots = new Map();
  }
  get(key) {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = h("div", { class: "notice-slot", "aria-live": "polite" });
      this.slots.set(key, slot);
    }
    return slot;
  }
}

export function showOk(slot, ...content) {
  replace(slot, h("div", { class: "notice notice-ok", tabindex: "-1" }, content));
}

export function showInfo(slot, ...content) {
  replace(slot, h("div", { class: "notice notice-info", tabindex: "-1" }, content));
}

export function showError(slot, error) {
  replace(slot, h("div", { class: "notice notice-error", role: "alert", tabindex: "-1" }, errorBody(error)));
}

/**
 * Asks for the one thing a detail view shows and returns the answer, or null once the view
 * shows what went wrong instead: the server's failure, or `missing` when the answer has no
 * `field` (an id or a name that names nothing). Null too when the view was left meanwhile.
 */
export async function loadOne(ctx, { query, variables, field, crumb, title, missing }) {
  let data;
  try {
    data = await gql(query, variables);
  } catch (error) {
    if (ctx.alive()) replace(ctx.main, pageHeader({ crumbs: [crumb], title }), failure(error));
    return null;
  }
  if (!ctx.alive()) return null;
  if (!data[field]) {
    ctx.setTitle(missing.title);
    replace(ctx.main, pageHeader({ crumbs: [crumb], title: missing.title }), emptyState(missing.text, missing.hint));
    return null;
  }
  return data;
}

/**
 * The asker of a list that asks again and again (pages, filters): each ask resolves to the
 * server's data, or to null when the view was left, a later ask overtook it (the admin may page
 * faster than answers come, and only the latest is drawn), or it failed; a failure is drawn in
 * `into` with `title`.
 */
export function latestOnly(ctx, into, title) {
  let asked = 0;
  return async (query, variables) => {
    const mine = ++asked;
    let data;
    try {
      data = await gql(query, variables);
    } catch (error) {
      if (ctx.alive() && mine === asked) replace(into, failure(error, title));
      return null;
    }
    return ctx.alive() && mine === asked ? data : null;
  };
}

/**
 * Runs an action from `button`: the button is busy meanwhile; `work` resolves to the message
 * to show (or CANCELLED), or rejects with the server's error, shown in `slot`. Resolves to
 * whether it did something.
 * A 401/403 is left to the token form.
 */
/** What an action's `work` resolves to when the admin cancelled it: nothing ran, nothing to redraw. */
export const CANCELLED = Symbol("cancelled");

export async function act(button, slot, work) {
  const label = button?.textContent;
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  // One action's answer at a time: an older one elsewhere on the page would read as current.
  for (const other of document.querySelectorAll("main .notice-slot")) if (other !== slot) other.replaceChildren();
  replace(slot);
  try {
    const message = await work();
    if (message === CANCELLED) return false;
    if (message) showOk(slot, message);
    return true;
  } catch (error) {
    if (!(error instanceof AuthError)) showError(slot, error);
    return false;
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      if (label !== undefined) button.textContent = label;
    }
  }
}

/**
 * An "Export CSV" button: downloads the export at `path` with the parameters `params()` gives
 * at the click (api.downloadCsv, the token in the Authorization header), then says in `slot`
 * what was saved (`what`), or shows the server's refusal there.
 */
export function exportButton({ path, params = () => ({}), what, slot, id, className = "btn" }) {
  const button = h("button", { type: "button", class: className, id }, "Export CSV");
  button.addEventListener("click", async () => {
    await act(button, slot, async () => {
      const file = await downloadCsv(path, params());
      return `Downloaded ${file.name} (${bytes(file.size)}): ${what}.`;
    });
    keepFocus(slot);
  });
  return button;
}

/** After a re-render the pressed button may be gone: focus goes to the slot's message instead. */
export function keepFocus(slot) {
  if (document.activeElement && document.activeElement !== document.body && document.activeElement.isConnected) return;
  const message = slot.firstElementChild;
  if (message && slot.isConnected) message.focus();
}

/**
 * A modal dialog (keyboard and screen-reader friendly, Escape cancels) with `body`, Cancel and
 * a confirming button, shown at once. `done` resolves to true when confirmed; focus goes back to
 * what had it.
 */
export function modalDialog({ title, body, confirm, confirmClass = "btn btn-danger-solid", className, describedBy }) {
  const titleId = uid("dlg");
  const opener = document.activeElement;
  const dialog = h("dialog", { class: className, "aria-labelledby": titleId, "aria-describedby": describedBy });
  const cancel = h("button", { type: "button", class: "btn", on: { click: () => dialog.close("cancel") } }, "Cancel");
  const ok = h("button", { type: "button", class: confirmClass, on: { click: () => dialog.close("confirm") } }, confirm);
  append(dialog, [h("h2", { id: titleId }, title), body, h("div", { class: "dialog-actions" }, cancel, ok)]);
  const done = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
    });
  });
  document.body.append(dialog);
  dialog.showModal();
  cancel.focus();
  return { dialog, cancel, ok, done };
}

/** Asks before something is removed. Resolves to true when confirmed. */
export function confirmDialog({ title, message, confirm = "Remove" }) {
  const textId = uid("dlg");
  return modalDialog({ title, body: h("p", { id: textId }, message), confirm, describedBy: textId }).done;
}

// ---- Paging -------------------------------------------------------------------------------

const PAGE_SIZES = [25, 50, 100, 200];
// Kept for the tab's life, so every list opens with the size the admin chose last.
let preferredSize = 50;

/**
 * Forward cursors of one paged list: the `after` of each page seen, so "Previous" goes back
 * without the API paging backwards. Sizes are the API's `first`.
 */
export class Pager {
  /** `size`: a page size of the list's own, which the admin does not choose (a summary's). */
  constructor(onChange, { size } = {}) {
    this.onChange = onChange;
    this.fixed = size !== undefined;
    this.size = size ?? preferredSize;
    this.stack = [null];
  }
  get after() {
    return this.stack[this.stack.length - 1];
  }
  get first() {
    return this.size;
  }
  reset() {
    this.stack = [null];
  }
  /** The pager under a list, for a connection `{ totalCount, pageInfo, edges }`. */
  render(connection, noun = "items") {
    const start = (this.stack.length - 1) * this.size;
    const shown = connection.edges.length;
    const range = shown === 0 ? `0 of ${count(connection.totalCount)}` : `${count(start + 1)}–${count(start + shown)} of ${count(connection.totalCount)}`;
    const sizeId = uid("size");
    const previous = h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        disabled: this.stack.length === 1,
        on: {
          click: () => {
            this.stack.pop();
            this.onChange();
          },
        },
      },
      "Previous",
    );
    const next = h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        disabled: !connection.pageInfo.hasNextPage,
        on: {
          click: () => {
            this.stack.push(connection.pageInfo.endCursor);
            this.onChange();
          },
        },
      },
      "Next",
    );
    const select = h(
      "select",
      {
        id: sizeId,
        on: {
          change: (event) => {
            this.size = Number(event.target.value);
            preferredSize = this.size;
            this.reset();
            this.onChange();
          },
        },
      },
      PAGE_SIZES.map((n) => h("option", { value: String(n), selected: n === this.size }, String(n))),
    );
    return h(
      "nav",
      { class: "pager", "aria-label": `Pages of ${noun}` },
      h("span", { class: "range", "aria-live": "polite" }, `${range} ${noun}`),
      !this.fixed && h("label", { for: sizeId }, "Per page"),
      !this.fixed && select,
      previous,
      next,
    );
  }
}

// ---- Plans --------------------------------------------------------------------------------

/**
 * The plans of a product, each on or off. For an admin, checkboxes (checked: enabled) and
 * `disabledNames()` gives the unchecked ones; for a reader, the same list as text. Folded in a
 * <details> since products hold dozens of plans.
 */
export function planChecklist({ plans, disabled, editable, label, onChange }) {
  const off = new Set(disabled.map((p) => p.servicePlanName ?? p));
  const boxes = [];
  // By name, for the eye to find a plan among dozens (the rules' order means nothing to it).
  const sorted = [...plans].sort((a, b) => byName(a.displayName, b.displayName));
  const items = sorted.map((plan) => {
    const isOff = off.has(plan.servicePlanName);
    if (!editable) {
      return h(
        "li",
        null,
        h("span", { class: isOff ? "plan-name plan-off" : "plan-name" }, plan.displayName),
        isOff && h("span", { class: "visually-hidden" }, "(off)"),
      );
    }
    const id = uid("plan");
    const box = h("input", {
      type: "checkbox",
      id,
      checked: !isOff,
      "data-plan": plan.servicePlanName,
      on: { change: () => onChange?.() },
    });
    boxes.push(box);
    return h("li", null, h("label", { for: id, title: plan.servicePlanName }, box, h("span", { class: "plan-name" }, plan.displayName)));
  });
  const summary = off.size === 0 ? `All ${plans.length} plans on` : `${plans.length - off.size} of ${plans.length} plans on, ${off.size} off`;
  const details = h(
    "details",
    { class: "plans" },
    h("summary", null, summary, h("span", { class: "visually-hidden" }, ` (${label})`)),
    h("ul", { class: "plan-grid", "aria-label": label }, items),
  );
  return {
    el: details,
    disabledNames: () => boxes.filter((b) => !b.checked).map((b) => b.dataset.plan),
    changed: () => boxes.some((b) => b.checked === off.has(b.dataset.plan)),
    open: () => {
      details.open = true;
    },
  };
}

/** Plan names for reading: "Exchange Online (Plan 1), SharePoint (Plan 1)". */
export function planNames(plans) {
  return plans.map((p) => p.displayName).join(", ");
}

// ---- Pickers ------------------------------------------------------------------------------

let catalog = null;
/** The whole catalog, `[{ skuPartNumber, displayName }]`, fetched once per page load. */
export function productCatalog() {
  if (!catalog) {
    catalog = gql("query ConsoleCatalog { products { skuPartNumber displayName } }").then(
      (data) => data.products,
      (error) => {
        catalog = null;
        throw error;
      },
    );
  }
  return catalog;
}

/** A text input that suggests the catalog's products; the value is a `skuPartNumber`. */
export function productInput(id) {
  const listId = uid("products");
  const list = h("datalist", { id: listId });
  const input = h("input", { type: "text", id, list: listId, class: "wide", autocomplete: "off", spellcheck: "false", placeholder: "e.g. ENTERPRISEPACK" });
  productCatalog().then(
    (products) =>
      append(
        list,
        products.map((p) => h("option", { value: p.skuPartNumber }, p.displayName)),
      ),
    // The input still takes a typed name; the mutation says if it is unknown.
    () => {},
  );
  return { input, list };
}

/**
 * A form that takes a product's name and gives it to `save` (the mutation, whose answer is the
 * sentence shown in `slot`); `after` redraws the view when it succeeded.
 */
export function productForm({ label, field, submit, slot, empty, save, after, note }) {
  const inputId = uid("sku");
  const { input, list } = productInput(inputId);
  const button = h("button", { type: "submit", class: "btn btn-primary" }, submit);
  return h(
    "form",
    {
      class: "toolbar",
      "aria-label": label,
      on: {
        submit: async (event) => {
          event.preventDefault();
          const sku = input.value.trim();
          if (!sku) {
            showError(slot, new Error(empty));
            return;
          }
          const done = await act(button, slot, () => save(sku));
          if (done) await after();
          keepFocus(slot);
        },
      },
    },
    h("div", { class: "field" }, h("label", { for: inputId }, field), input, list),
    button,
    note,
    slot,
  );
}

/** A text input that suggests sign-in names as they are typed (at most 8, by prefix). */
export function userInput(id) {
  const listId = uid("users");
  const list = h("datalist", { id: listId });
  const input = h("input", { type: "text", id, list: listId, class: "wide", autocomplete: "off", spellcheck: "false", placeholder: "name@domain" });
  let timer = null;
  let asked = "";
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (text.length < 2 || text === asked) return;
    timer = setTimeout(async () => {
      asked = text;
      try {
        const data = await gql(
          "query ConsoleUserSuggest($prefix: String) { users(first: 8, userPrincipalNameStartsWith: $prefix) { edges { node { userPrincipalName displayName } } } }",
          { prefix: text },
        );
        replace(
          list,
          data.users.edges.map(({ node }) => h("option", { value: node.userPrincipalName }, node.displayName)),
        );
      } catch {
        // Suggestions are a help; the lookup on submit says what is wrong.
      }
    }, 200);
  });
  return { input, list };
}

/**
 * Tabs (WAI-ARIA pattern): arrow keys, Home and End move between them; the selected one is the
 * only one in the tab order. `onSelect(key)` fills the panel.
 */
export function tabList({ label, tabs, selected, onSelect }) {
  const buttons = tabs.map(({ key, text, badgeText, tone, panelId }) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `tab-${key}`,
        "aria-controls": panelId,
        "data-key": key,
        on: { click: () => select(key) },
      },
      text,
      badgeText !== undefined && h("span", { class: `tab-count ${tone ?? ""}` }, badgeText),
    ),
  );
  function mark(key) {
    for (const button of buttons) {
      const on = button.dataset.key === key;
      button.setAttribute("aria-selected", on ? "true" : "false");
      button.tabIndex = on ? 0 : -1;
    }
  }
  function select(key) {
    mark(key);
    onSelect(key);
  }
  mark(selected);
  const list = h("div", { class: "tabs", role: "tablist", "aria-label": label }, buttons);
  list.addEventListener("keydown", (event) => {
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    let to = null;
    if (event.key === "ArrowRight") to = (at + 1) % buttons.length;
    if (event.key === "ArrowLeft") to = (at - 1 + buttons.length) % buttons.length;
    if (event.key === "Home") to = 0;
    if (event.key === "End") to = buttons.length - 1;
    if (to === null) return;
    event.preventDefault();
    buttons[to].focus();
    select(buttons[to].dataset.key);
  });
  return list;
}

export { errorLabel };
