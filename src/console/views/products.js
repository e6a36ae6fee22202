// Products (`/products`): the products with seats bought or in use, out of seats first; the
// whole catalog (hundreds of products) one switch away (?all=1), with a filter by name.

import { gql } from "../api.js";
import { byName, count, h, replace, uid } from "../dom.js";
import { badge, emptyState, failure, loading, outOfSeats, pageHeader, productCell, redraw, seatBar, table } from "../ui.js";

const QUERY = `query ConsoleProducts($boughtOrUsed: Boolean) {
  products(boughtOrUsed: $boughtOrUsed) { skuPartNumber displayName prepaidUnits consumedUnits availableUnits }
}`;

export function render(ctx) {
  const all = ctx.query.get("all") === "1";
  ctx.setTitle(all ? "Product catalog" : "Products");
  let filter = ctx.query.get("q") ?? "";
  const results = h("div", null, loading("Loading products…"));
  const totalBox = h("span");
  const filterId = uid("q");
  const input = h("input", { type: "search", id: filterId, value: filter, class: "wide", placeholder: "Name or skuPartNumber", autocomplete: "off", spellcheck: "false" });
  let products = [];
  input.addEventListener("input", () => {
    filter = input.value.trim();
    ctx.setQuery({ all: all ? "1" : "", q: filter });
    draw();
  });
  const switcher = h(
    "nav",
    { class: "segmented", "aria-label": "Which products" },
    h("a", { href: "/products", "aria-current": all ? "false" : "true" }, "Bought or used"),
    h("a", { href: "/products?all=1", "aria-current": all ? "true" : "false" }, "Whole catalog"),
  );
  replace(
    ctx.main,
    pageHeader({ title: "Products", subtitle: totalBox }),
    h(
      "section",
      { class: "panel", "aria-label": "Products" },
      h(
        "form",
        { class: "toolbar", role: "search", "aria-label": "Filter products", on: { submit: (event) => event.preventDefault() } },
        h("div", { class: "field" }, h("span", { class: "label" }, "Show"), switcher),
        h("div", { class: "field" }, h("label", { for: filterId }, "Name contains"), input),
      ),
      results,
    ),
  );

  function draw() {
    const needle = filter.toLowerCase();
    const shown = products.filter((p) => !needle || p.displayName.toLowerCase().includes(needle) || p.skuPartNumber.toLowerCase().includes(needle));
    replace(totalBox, all ? `${count(products.length)} in the catalog of the rules in force` : `${count(products.length)} with seats bought or in use`);
    if (shown.length === 0) {
      redraw(
        results,
        products.length === 0 && !all
          ? emptyState("No product has seats bought or in use.", h("a", { href: "/products?all=1" }, "Open the whole catalog to set a product's seats."))
          : emptyState(`No product matches “${filter}”.`),
      );
      return;
    }
    redraw(
      results,
      table({
        caption: all ? "Every product of the catalog" : "Products bought or used",
        columns: [["Product"], ["Seats used"], ["Prepaid", "num"], ["Consumed", "num"], ["Available", "num"], ["Status"]],
        rows: shown.map((p) => [
          productCell(p),
          seatBar(p),
          [count(p.prepaidUnits), "num"],
          [count(p.consumedUnits), "num"],
          [count(p.availableUnits), "num"],
          outOfSeats(p) ? badge("bad", "Out of seats") : p.prepaidUnits > 0 ? badge("ok", "Seats left") : badge("muted", "Not bought"),
        ]),
      }),
    );
  }

  gql(QUERY, { boughtOrUsed: all ? null : true }).then(
    (data) => {
      if (!ctx.alive()) return;
      const named = (a, b) => byName(a.displayName, b.displayName);
      products = all ? [...data.products].sort(named) : [...data.products].sort((a, b) => Number(outOfSeats(b)) - Number(outOfSeats(a)) || named(a, b));
      draw();
    },
    (error) => {
      if (ctx.alive()) replace(results, failure(error, "The products could not be loaded."));
    },
  );
}
