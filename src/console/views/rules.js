// Rules (`/rules`): the rules in force (files, what they hold, when they were loaded, their
// warnings), the errors of the last reload with file, line and column, and Reload. A reload
// that fails keeps the rules in force; its errors show both where the admin pressed Reload
// and in the panel of the last reload's errors.

import { gql } from "../api.js";
import { count, h, replace, time } from "../dom.js";
import { Slots, act, emptyState, failure, keepFocus, loading, pageHeader, panel, redraw, table } from "../ui.js";

const DIAGNOSTIC = "file line column message";
const QUERY = `query ConsoleRules {
  rules {
    loadedAt files planCount productCount exclusiveSetCount prerequisiteCount locationRuleCount
    lastReloadErrors { ${DIAGNOSTIC} }
    warnings { ${DIAGNOSTIC} }
  }
}`;

export function render(ctx) {
  ctx.setTitle("Rules");
  const slots = new Slots();
  replace(ctx.main, pageHeader({ title: "Rules" }), loading("Loading the rules…"));

  async function load() {
    let data;
    try {
      data = await gql(QUERY);
    } catch (error) {
      if (ctx.alive()) replace(ctx.main, pageHeader({ title: "Rules" }), failure(error));
      return;
    }
    if (!ctx.alive()) return;
    draw(data.rules);
  }

  function draw(rules) {
    const actions = [];
    if (ctx.canEdit) {
      const button = h("button", { type: "button", class: "btn btn-primary", id: "reload-rules" }, "Reload");
      const slot = slots.get("reload");
      button.addEventListener("click", async () => {
        await act(button, slot, async () => {
          const data = await gql(`mutation ConsoleReloadRules { reloadRules { loadedAt planCount productCount } }`);
          const r = data.reloadRules;
          return `Reloaded: ${count(r.planCount)} plans, ${count(r.productCount)} products. Reprocess groups to apply changed rules to their members.`;
        });
        // Refused or not, the last reload's errors below change.
        await load();
        keepFocus(slot);
      });
      actions.push(button, slot);
    }
    const where = (d) => (d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file);
    const tiles = [
      [rules.planCount, "service plans"],
      [rules.productCount, "products"],
      [rules.exclusiveSetCount, "exclusive sets"],
      [rules.prerequisiteCount, "prerequisites"],
      [rules.locationRuleCount, "location rules"],
    ];
    redraw(
      ctx.main,
      pageHeader({ title: "Rules", subtitle: ["Loaded ", time(rules.loadedAt), ` from ${rules.files.length} ${rules.files.length === 1 ? "file" : "files"}`], actions }),
      h(
        "div",
        { class: "tiles" },
        tiles.map(([n, label]) => h("div", { class: "tile tile-info" }, h("div", { class: "tile-value" }, count(n)), h("div", { class: "tile-label" }, label))),
      ),
      panel({
        title: "Last reload's errors",
        count: rules.lastReloadErrors.length,
        body:
          rules.lastReloadErrors.length === 0
            ? emptyState("The last reload had no error.", "The rules in force are the files as they were last loaded.")
            : [
                h(
                  "div",
                  { class: "panel-body" },
                  h("div", { class: "callout callout-bad" }, "The last reload was refused: the rules in force are still the ones loaded before. Fix these and reload."),
                ),
                table({
                  caption: "Errors of the last reload",
                  columns: [["Where"], ["Message"]],
                  rows: rules.lastReloadErrors.map((d) => [[h("code", null, where(d)), "nowrap"], d.message]),
                }),
              ],
      }),
      h(
        "div",
        { class: "grid grid-2" },
        panel({
          title: "Files",
          count: rules.files.length,
          body: table({ caption: "Rules files, in the order read", columns: [["File"]], rows: rules.files.map((f) => [h("code", null, f)]) }),
        }),
        panel({
          title: "Warnings",
          count: rules.warnings.length,
          body:
            rules.warnings.length === 0
              ? emptyState("No warnings.")
              : table({
                  caption: "Warnings of the rules in force",
                  columns: [["Where"], ["Message"]],
                  rows: rules.warnings.map((d) => [[h("code", null, where(d)), "nowrap"], d.message]),
                }),
        }),
      ),
    );
  }

  load();
}
