// Settings (`/settings`): the webhooks, the receivers the server sends alerts, finished
// processing runs and history events to (licensing.md N3). Each with its URL, what it is sent,
// its description, when it was made, its last delivery (the receiver's status or why none came)
// and the deliveries still waiting; the list reads itself again every few seconds while some
// wait. An admin adds one (the signing secret is shown once, in a dialog, and never again) and
// deletes one after a confirmation; a reader sees the list only.

import { gql } from "../api.js";
import { count, h, plural, replace, time, uid } from "../dom.js";
import { WEBHOOK_EVENT_LABELS } from "../labels.js";
import { Slots, act, badge, confirmDialog, emptyState, failure, keepFocus, loading, pageHeader, panel, redraw, showError, table } from "../ui.js";

const QUERY = `query ConsoleWebhooks {
  webhooks {
    id url events description createdDateTime pendingDeliveries
    lastDelivery { eventType attemptedDateTime statusCode error }
  }
}`;

const CREATE = `mutation ConsoleCreateWebhook($url: String!, $events: [WebhookEventType!]!, $description: String) {
  createWebhook(url: $url, events: $events, description: $description) { secret webhook { id url } }
}`;

const DELETE = `mutation ConsoleDeleteWebhook($id: ID!) { deleteWebhook(id: $id) }`;

/** While deliveries wait, the list follows them at this pace (they are retried for a day). */
const POLL_MS = 5000;

/** What a new webhook is sent unless the admin chooses otherwise: the alerts, both ways. */
const DEFAULT_EVENTS = new Set(["ALERT_RAISED", "ALERT_RESOLVED"]);

export function render(ctx) {
  ctx.setTitle("Settings");
  const slots = new Slots();
  const listSlot = slots.get("list");
  const list = h("div", null, loading("Loading the webhooks…"));
  let webhooks = null;
  let polling = false;
  const listPanel = h("div");
  replace(
    ctx.main,
    pageHeader({ title: "Settings", subtitle: "Webhooks: where the server sends alerts, finished processing runs and history events as they happen." }),
    listPanel,
    ctx.canEdit && createPanel(),
  );
  drawPanel();

  function drawPanel() {
    redraw(
      listPanel,
      panel({
        title: "Webhooks",
        count: webhooks?.length,
        body: [
          h(
            "p",
            { class: "panel-intro" },
            "Each delivery is a POST of JSON, signed in its X-Group-Licensing-Signature header (sha256= and the HMAC-SHA256 of the timestamp header, a dot and the body, keyed with the webhook's secret); failed ones are tried again for a day, in order.",
          ),
          listSlot,
          list,
        ],
      }),
    );
  }

  async function load() {
    let data;
    try {
      data = await gql(QUERY);
    } catch (error) {
      if (ctx.alive()) redraw(list, failure(error, "The webhooks could not be loaded."));
      return;
    }
    if (!ctx.alive()) return;
    const countChanged = webhooks?.length !== data.webhooks.length;
    webhooks = data.webhooks;
    if (countChanged) drawPanel();
    drawList();
    if (!polling && webhooks.some((w) => w.pendingDeliveries > 0)) {
      polling = true;
      ctx.later(POLL_MS, () => {
        polling = false;
        load();
      });
    }
  }

  function drawList() {
    if (webhooks.length === 0) {
      redraw(list, emptyState("No webhook is set up.", ctx.canEdit ? "Add one below to have alerts and processing runs sent to another system." : null));
      return;
    }
    const columns = [["URL"], ["Sends"], ["Description"], ["Created"], ["Last delivery"], ["Waiting", "num"]];
    if (ctx.canEdit) columns.push(["", "actions"]);
    redraw(
      list,
      table({
        caption: "Webhooks, oldest first",
        columns,
        rows: webhooks.map((w) => {
          const cells = [
            h("span", { class: "mono url" }, w.url),
            h("ul", { class: "plain event-list" }, w.events.map((e) => h("li", null, WEBHOOK_EVENT_LABELS[e] ?? e))),
            w.description ? w.description : h("span", { class: "muted" }, "—"),
            [time(w.createdDateTime), "nowrap"],
            delivery(w.lastDelivery),
            [w.pendingDeliveries > 0 ? h("span", { class: "warn-text" }, count(w.pendingDeliveries)) : h("span", { class: "zero" }, "0"), "num"],
          ];
          if (ctx.canEdit) {
            const button = h("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Delete the webhook to ${w.url}` }, "Delete");
            button.addEventListener("click", () => remove(w, button));
            cells.push([button, "actions"]);
          }
          return cells;
        }),
      }),
    );
  }

  async function remove(webhook, button) {
    const waiting = webhook.pendingDeliveries;
    const sure = await confirmDialog({
      title: "Delete this webhook?",
      message: `${webhook.url} will be sent nothing more${waiting > 0 ? `, and the ${plural(waiting, "delivery", "deliveries")} still waiting for it are dropped` : ""}. This cannot be undone.`,
      confirm: "Delete webhook",
    });
    if (!sure) return;
    const done = await act(button, listSlot, async () => {
      await gql(DELETE, { id: webhook.id });
      return `Deleted the webhook to ${webhook.url}.`;
    });
    if (done) await load();
    keepFocus(listSlot);
  }

  function createPanel() {
    const urlId = uid("hook-url");
    const urlNote = uid("hook-url-note");
    const descriptionId = uid("hook-description");
    const url = h("input", { type: "url", id: urlId, class: "wide", autocomplete: "off", spellcheck: "false", placeholder: "https://hooks.example.com/licensing", "aria-describedby": urlNote });
    const description = h("input", { type: "text", id: descriptionId, class: "wide", autocomplete: "off", placeholder: "e.g. on-call channel" });
    const boxes = Object.entries(WEBHOOK_EVENT_LABELS).map(([value, label]) => {
      const id = uid("hook-event");
      const box = h("input", { type: "checkbox", id, value, checked: DEFAULT_EVENTS.has(value) });
      return { box, item: h("li", null, h("label", { for: id }, box, h("span", null, label))) };
    });
    const button = h("button", { type: "submit", class: "btn btn-primary" }, "Create webhook");
    const slot = slots.get("create");
    const form = h(
      "form",
      {
        class: "webhook-form",
        "aria-label": "Add a webhook",
        // The server checks the URL (https, a public host) and says why it refuses one.
        novalidate: true,
        on: {
          submit: async (event) => {
            event.preventDefault();
            const address = url.value.trim();
            if (!address) {
              showError(slot, new Error("Type the URL the deliveries are to be sent to."));
              return;
            }
            const events = boxes.filter((b) => b.box.checked).map((b) => b.box.value);
            let secret = null;
            const done = await act(button, slot, async () => {
              const data = await gql(CREATE, { url: address, events, description: description.value.trim() || null });
              secret = data.createWebhook.secret;
              return `Created the webhook to ${data.createWebhook.webhook.url}. Its secret is not shown again.`;
            });
            if (!done) {
              keepFocus(slot);
              return;
            }
            url.value = "";
            description.value = "";
            await load();
            await secretDialog(secret);
            keepFocus(slot);
          },
        },
      },
      h("div", { class: "field" }, h("label", { for: urlId }, "URL"), url),
      h("fieldset", { class: "field event-choice" }, h("legend", { class: "label" }, "Send"), h("ul", { class: "plain" }, boxes.map((b) => b.item))),
      h("div", { class: "field" }, h("label", { for: descriptionId }, "Description (optional)"), description),
      h("div", { class: "form-actions" }, button),
      h(
        "p",
        { class: "form-note", id: urlNote },
        "The URL must be https on a public address, unless the server runs with --webhook-allow-private. “Every history event” sends one delivery per change, processing's included: a run over a million members sends a million.",
      ),
      slot,
    );
    return panel({ title: "Add a webhook", body: form });
  }

  load();
}

/** The last attempt to deliver: when, what, and the receiver's answer or why none came. */
function delivery(last) {
  if (!last) return h("span", { class: "muted" }, "None yet");
  const delivered = last.error === null && last.statusCode !== null && last.statusCode < 300;
  const outcome = delivered
    ? badge("ok", `Delivered, ${last.statusCode}`)
    : last.statusCode !== null
      ? badge("bad", `Refused, ${last.statusCode}`)
      : badge("bad", "No answer");
  return h(
    "div",
    { class: "delivery" },
    h("div", { class: "delivery-line" }, outcome, time(last.attemptedDateTime)),
    h("span", { class: "sub" }, WEBHOOK_EVENT_LABELS[last.eventType] ?? last.eventType),
    last.error && h("span", { class: "sub delivery-error" }, last.error),
  );
}

/**
 * The secret of a webhook just made, with the warning that this is the only time it shows.
 * Resolves when the admin closes it.
 */
function secretDialog(secret) {
  const titleId = uid("dlg");
  const textId = uid("dlg");
  const fieldId = uid("secret");
  const opener = document.activeElement;
  const field = h("input", { type: "text", id: fieldId, class: "mono secret", readonly: true, value: secret, spellcheck: "false", autocomplete: "off" });
  const status = h("p", { class: "form-note", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "btn" }, "Copy");
  copy.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(secret);
      replace(status, "Copied to the clipboard.");
    } catch {
      // The clipboard may be refused (an insecure origin, a permission): the text is selected.
      replace(status, "The browser refused the clipboard: the secret is selected, copy it with Ctrl+C.");
    }
  });
  const close = h("button", { type: "button", class: "btn btn-primary" }, "I have copied it");
  const dialog = h(
    "dialog",
    { class: "secret-dialog", "aria-labelledby": titleId, "aria-describedby": textId },
    h("h2", { id: titleId }, "Copy the webhook's secret now"),
    h(
      "p",
      { id: textId, class: "callout callout-warn" },
      "It is shown only now. The server signs every delivery with it but never shows it again: put it where the receiver checks the signature. If it is lost, delete the webhook and create a new one.",
    ),
    h("div", { class: "field" }, h("label", { for: fieldId }, "Signing secret"), h("div", { class: "inline-form" }, field, copy)),
    status,
    h("div", { class: "dialog-actions" }, close),
  );
  const done = new Promise((resolve) => {
    // The browser fires "close" a task after close(): until then the closed dialog, and the
    // secret in it, would still be in the page. Gone at once instead, by the button or Escape.
    let gone = false;
    const finish = () => {
      if (gone) return;
      gone = true;
      field.value = "";
      if (dialog.open) dialog.close();
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve();
    };
    close.addEventListener("click", finish);
    dialog.addEventListener("close", finish);
  });
  document.body.append(dialog);
  dialog.showModal();
  field.focus();
  field.select();
  return done;
}
