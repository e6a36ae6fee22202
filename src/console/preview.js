// The preview shown before a license change is saved (licensing.md W): a dialog that asks the
// API what the change would do once processed (`preview…` queries, nothing written), says it in
// one sentence ("312 users will be licensed, 14 will fail: 9 not enough licenses, 5 conflicting
// service plans"), shows the seats before and after and, on request, the users one page at a
// time with how they would stand. The admin then confirms or cancels; a change the server would
// refuse is shown with the server's error and cannot be confirmed.

import { gql } from "./api.js";
import { count, h, plural, replace } from "./dom.js";
import { errorLabel } from "./labels.js";
import { Pager, badge, emptyState, errorBody, loading, modalDialog, productCell, stateBadge, table, userLink } from "./ui.js";

export const OUTCOME_LABELS = {
  LICENSED: "Licensed",
  ERROR: "Will fail",
  REMOVED: "Removed",
  BLOCKED: "Withdrawal blocked",
  UNCHANGED: "Unchanged",
};

const OUTCOME_TONES = { LICENSED: "ok", ERROR: "bad", REMOVED: "info", BLOCKED: "warn", UNCHANGED: "muted" };

const SUMMARY = `usersAffected queuedWorkItems
  outcomeCounts { outcome count } errorCounts { error count }
  products { product { skuPartNumber displayName } prepaidUnits consumedUnits consumedUnitsAfter seatsShort }`;

const USERS = `users(first: $first, after: $after, outcome: $outcome) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { outcome user { id displayName userPrincipalName }
    licenseAssignmentStates { product { skuPartNumber } assignedByGroup { id } state error errorDetail { message } } } }
}`;

/**
 * The preview in one sentence, as an admin would say it; `from` names the change's source
 * ("this group", "direct assignment").
 */
export function sentence(preview, from = "this group") {
  const n = Object.fromEntries(preview.outcomeCounts.map((c) => [c.outcome, c.count]));
  const parts = [];
  // The first figure carries the noun: "312 users will be licensed, 14 will fail".
  const who = (k) => (parts.length === 0 ? plural(k, "user") : count(k));
  if (n.LICENSED) parts.push(`${who(n.LICENSED)} will be licensed`);
  if (n.ERROR) {
    const reasons = preview.errorCounts.map((c) => `${count(c.count)} ${errorLabel(c.error).toLowerCase()}`);
    parts.push(`${who(n.ERROR)} will fail${reasons.length > 0 ? ` (${reasons.join(", ")})` : ""}`);
  }
  if (n.REMOVED) parts.push(`${who(n.REMOVED)} will lose the licenses from ${from}`);
  if (n.BLOCKED) parts.push(`${who(n.BLOCKED)} will keep them for now: another of their plans needs one (the withdrawal is blocked)`);
  if (n.UNCHANGED) parts.push(`${who(n.UNCHANGED)} will stay as they are`);
  if (parts.length === 0) return "No user is affected: nothing would change.";
  return `${parts.join(", ")}.`;
}

function seatsTable(products) {
  if (products.length === 0) return h("p", { class: "muted" }, "No seat count changes.");
  return table({
    caption: "Seats before and after",
    columns: [["Product"], ["In use now", "num"], ["In use after", "num"], ["Bought", "num"], ["Short", "num"]],
    rows: products.map((p) => [
      productCell(p.product),
      [count(p.consumedUnits), "num"],
      [count(p.consumedUnitsAfter), "num"],
      [count(p.prepaidUnits), "num"],
      [p.seatsShort > 0 ? h("span", { class: "bad-text" }, count(p.seatsShort)) : "0", "num"],
    ]),
  });
}

/**
 * Shows the preview of a change and resolves to whether the admin confirmed it.
 * `call` is the preview field with its arguments (`previewReprocessGroup(groupId: $id)`),
 * `params` their declarations (`$id: ID!`), `source` the group the change is about (null for a
 * direct license): the states shown are that source's.
 */
export function previewDialog({ title, call, params, variables, source, confirm, danger = false }) {
  const query = `query ConsolePreview(${params}, $first: Int, $after: String, $outcome: PreviewOutcome) { p: ${call} { ${SUMMARY} ${USERS} } }`;
  const body = h("div", { class: "preview-body", "aria-live": "polite" }, loading("Working out what this would do…"));
  const { cancel, ok, done } = modalDialog({
    title,
    body,
    confirm,
    confirmClass: danger ? "btn btn-danger-solid" : "btn btn-primary",
    className: "preview-dialog",
  });
  // Nothing to confirm until the preview is there (and never when the server refuses it).
  ok.disabled = true;
  const pager = new Pager(() => loadUsers());
  const users = h("div", { class: "preview-users" });
  let outcome = null;
  let asked = 0;

  async function loadUsers() {
    const mine = ++asked;
    replace(users, loading("Loading the users…"));
    let data;
    try {
      data = await gql(query, { ...variables, first: pager.first, after: pager.after, outcome });
    } catch (error) {
      if (mine === asked) replace(users, h("div", { class: "notice notice-error", role: "alert" }, errorBody(error)));
      return;
    }
    if (mine !== asked) return;
    const connection = data.p.users;
    if (connection.totalCount === 0) {
      replace(users, emptyState("No user comes out this way."));
      return;
    }
    replace(
      users,
      table({
        caption: outcome ? `Users: ${OUTCOME_LABELS[outcome].toLowerCase()}` : "Users affected",
        columns: [["User"], ["Outcome"], ["Afterwards"]],
        rows: connection.edges.map(({ node }) => {
          const mine = node.licenseAssignmentStates.filter((s) => (s.assignedByGroup?.id ?? null) === source);
          return [
            [userLink(node.user), h("div", { class: "muted" }, node.user.userPrincipalName)],
            badge(OUTCOME_TONES[node.outcome], OUTCOME_LABELS[node.outcome]),
            mine.length === 0
              ? h("span", { class: "muted" }, "Nothing from this source")
              : h(
                  "ul",
                  { class: "plain" },
                  mine.map((s) =>
                    h("li", null, h("span", { class: "code" }, s.product.skuPartNumber), " ", stateBadge(s.state), s.errorDetail && h("div", { class: "muted" }, s.errorDetail.message)),
                  ),
                ),
          ];
        }),
      }),
      pager.render(connection, "users"),
    );
  }

  function filters(preview) {
    const choices = [[null, `All (${count(preview.usersAffected)})`], ...preview.outcomeCounts.map((c) => [c.outcome, `${OUTCOME_LABELS[c.outcome]} (${count(c.count)})`])];
    const buttons = choices.map(([value, label]) =>
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          "aria-pressed": String(value === outcome),
          on: {
            click: () => {
              outcome = value;
              for (const [i, b] of buttons.entries()) b.setAttribute("aria-pressed", String(choices[i][0] === value));
              pager.reset();
              loadUsers();
            },
          },
        },
        label,
      ),
    );
    return h("div", { class: "toolbar", role: "group", "aria-label": "Show the users who" }, buttons);
  }

  (async () => {
    let data;
    try {
      data = await gql(query, { ...variables, first: pager.first, after: null, outcome: null });
    } catch (error) {
      replace(body, h("div", { class: "notice notice-error", role: "alert" }, h("p", null, "The server would refuse this change:"), errorBody(error)));
      cancel.textContent = "Close";
      return;
    }
    const p = data.p;
    const errors = p.outcomeCounts.find((c) => c.outcome === "ERROR");
    const see = h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        on: {
          click: () => {
            see.remove();
            outcome = errors ? "ERROR" : null;
            replace(details, filters(p), users);
            loadUsers();
          },
        },
      },
      errors ? `See the ${plural(errors.count, "user")} who would fail` : "See the users",
    );
    const details = h("div", null, p.usersAffected > 0 && see);
    replace(
      body,
      h("p", { class: "preview-sentence" }, sentence(p, source === null ? "direct assignment" : "this group")),
      p.queuedWorkItems > 0 &&
        h("p", { class: "notice notice-info" }, `${plural(p.queuedWorkItems, "change")} still wait for processing: this preview assumes they change nothing here. Preview again once processing is idle to be sure.`),
      seatsTable(p.products),
      details,
    );
    ok.disabled = false;
  })();
  return done;
}
