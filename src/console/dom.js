// Element helpers. Every string given to them becomes a text node or an attribute value, never
// markup: names come from admins and directories, and must show as they are written. No module
// of the console parses a string as HTML (a unit test of the server checks the sources).

/**
 * Creates an element. `attrs` holds attributes (`class`, `href`, `aria-*`, `data-*`, …),
 * properties where the attribute would not do (`value`, `checked`, `disabled`, `hidden`), and
 * `on: { event: handler }`. Children are nodes, strings (as text), arrays, or null/false
 * (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "on") {
        for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
      } else if (name === "value" || name === "checked" || name === "disabled" || name === "hidden") {
        el[name] = value;
      } else if (name === "style") {
        throw new Error("style attributes are refused by the page's CSP: use a class or setWidth");
      } else {
        el.setAttribute(name, value === true ? "" : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

/** Appends children as `h` takes them. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Sets a width in percent through the CSSOM, which the CSP allows (style attributes it does not). */
export function setWidth(el, percent) {
  el.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  return el;
}

let counter = 0;
/** A document-unique id, for label `for`, `aria-controls` and the like. */
export function uid(prefix = "c") {
  counter += 1;
  return `${prefix}-${counter}`;
}

// One formatter for every number: toLocaleString builds a new one per call, which is most of
// the time it takes to draw the catalog's 569 rows.
const NUMBERS = new Intl.NumberFormat("en-US");

/** A number with grouping (1,000,000), for counts. */
export function count(n) {
  return NUMBERS.format(n);
}

/** A file's size for people: "290 bytes", "12.4 KB", "3.1 MB". */
export function bytes(n) {
  if (n < 1024) return `${count(n)} ${n === 1 ? "byte" : "bytes"}`;
  const [value, unit] = n < 1024 * 1024 ? [n / 1024, "KB"] : [n / (1024 * 1024), "MB"];
  return `${value.toFixed(1)} ${unit}`;
}

const NAMES = new Intl.Collator("en", { sensitivity: "base", numeric: true });

/** Orders names as people read them ("Group of 10" before "Group of 100"). */
export function byName(a, b) {
  return NAMES.compare(a, b);
}

/** "1 user", "2 users". */
export function plural(n, one, many = `${one}s`) {
  return `${count(n)} ${n === 1 ? one : many}`;
}

/** A date-time of the API (RFC 3339) for people, in the browser's zone, with a machine-readable twin. */
export function time(iso) {
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString("en-GB", {
        year: "numeric",
        month: "short",
        day: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      });
  return h("time", { datetime: iso }, text);
}
