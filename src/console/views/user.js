// User (`/users/{id}`): why a user has or lacks a license, and what to do about it.
//
// - Errors to fix: every assignment in error, explained: the violations in words, the plan at
//   fault and where it comes from, the conflicting plan and its source (linked: the group, or
//   the direct license below), the missing prerequisites, the location, the duplicate address
//   and its other user, the products without seats; then the server's resolutions.
// - Licenses held, with their enabled plans and where each comes from (direct, which groups).
// - Every assignment with its state; the direct licenses (add, remove, plans on and off).
// - Profile (usage location and the effective one, proxy addresses: both editable) and groups.
// - History: the user's latest events, more on request, and the way to all of them in Activity.
// - Reprocess, after which the page follows the background run until the user's group
//   assignments have been processed again.

import { gql } from "../api.js";
import { h, plural, replace, time, uid } from "../dom.js";
import { historyList } from "../history.js";
import { errorLabel } from "../labels.js";
import {
  Slots,
  act,
  badge,
  disabledBadge,
  confirmDialog,
  emptyState,
  groupLink,
  keepFocus,
  loadOne,
  loading,
  pageHeader,
  panel,
  planChecklist,
  planNames,
  productCell,
  productForm,
  productHref,
  redraw,
  showError,
  showInfo,
  showOk,
  stateBadge,
  table,
  userLink,
} from "../ui.js";

const PLAN = "servicePlanName displayName";
const SOURCE = "direct group { id displayName } product { skuPartNumber displayName }";

const QUERY = `query ConsoleUser($id: ID!) {
  directory { defaultUsageLocation }
  user(id: $id) {
    id userPrincipalName displayName usageLocation effectiveUsageLocation proxyAddresses hasLicenseErrors accountEnabled
    memberOf { id displayName }
    assignedLicenses { product { skuPartNumber displayName } enabledPlans { ${PLAN} } disabledPlans { ${PLAN} } }
    licenseAssignmentStates {
      product { skuPartNumber displayName servicePlans { ${PLAN} } }
      assignedByGroup { id displayName }
      disabledPlans { ${PLAN} }
      state error lastUpdatedDateTime
      errorDetail {
        message resolutions
        violations {
          code message
          plans { ${PLAN} }
          source { ${SOURCE} }
          conflictingPlan { ${PLAN} }
          conflictingSource { ${SOURCE} }
          missingPrerequisites { ${PLAN} }
          usageLocation proxyAddress
          conflictingUser { id displayName userPrincipalName }
          products { skuPartNumber displayName }
        }
      }
    }
  }
}`;

const ASSIGN = `mutation ConsoleAssignLicense($id: ID!, $add: [LicenseInput!]!, $remove: [String!]!) {
  assignLicense(userId: $id, addLicenses: $add, removeLicenses: $remove) { id }
}`;

const UPDATE = `mutation ConsoleUpdateUser($id: ID!, $input: UpdateUserInput!) {
  updateUser(id: $id, input: $input) { id usageLocation effectiveUsageLocation }
}`;

/** How long the page follows a background run it started before it says to look again later. */
const FOLLOW_MS = 20000;
const FOLLOW_STEP_MS = 1000;

/** The id of a direct license's entry, which conflicting sources link to. */
function directAnchor(sku) {
  return `direct-${sku.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

export function render(ctx) {
  const id = ctx.params[0];
  const slots = new Slots();
  let user = null;
  let directory = null;
  // Kept across the page's redraws, and asked for again after each change, in the place the
  // admin had paged to.
  const history = historyList(ctx, "user", id);
  const historyPanel = panel({ title: "History", id: "history", body: history.el });
  ctx.setTitle("User");
  replace(ctx.main, loading("Loading the user…"));

  async function load() {
    const data = await loadOne(ctx, {
      query: QUERY,
      variables: { id },
      field: "user",
      crumb: ["Users", "/users"],
      title: "User",
      missing: { title: "User not found", text: `There is no user with id ${id}.`, hint: "It may have been deleted." },
    });
    if (!data) return null;
    // The first answer's history is already on its way (asked for with the user).
    if (user !== null) history.load();
    user = data.user;
    directory = data.directory;
    draw();
    return user;
  }

  /**
   * Waits for the background run that an action queued. The API says when an assignment last
   * changed, not whether a run for the user is still to come, and a run that leaves an active
   * assignment as it was does not touch it: so the page waits until every group assignment
   * that was not active has been written again, or, when all were active, for one step (a run
   * that changes one shows at once), at most FOLLOW_MS.
   */
  async function follow(slot, before, lead) {
    const started = Date.now();
    const groupStates = (u) => u.licenseAssignmentStates.filter((s) => s.assignedByGroup);
    const stamp = (s) => `${s.assignedByGroup.id}/${s.product.skuPartNumber}`;
    const old = new Map(groupStates(before).map((s) => [stamp(s), s.lastUpdatedDateTime]));
    const rewritten = new Set(groupStates(before).filter((s) => s.state !== "ACTIVE").map(stamp));
    const say = (show, text) => {
      show(slot, text);
      keepFocus(slot);
    };
    if (old.size === 0) {
      if (await load()) say(showOk, `${lead}. The user has no license from a group: nothing else to process.`);
      return;
    }
    while (ctx.alive() && Date.now() - started < FOLLOW_MS) {
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_STEP_MS));
      if (!ctx.alive()) return;
      const now = await load();
      if (!now) return;
      const states = groupStates(now);
      const changed = states.some((s) => old.get(stamp(s)) !== s.lastUpdatedDateTime) || states.length !== old.size;
      const waiting = states.filter((s) => rewritten.has(stamp(s)) && old.get(stamp(s)) === s.lastUpdatedDateTime);
      if (waiting.length === 0) {
        const left = now.licenseAssignmentStates.filter((s) => s.error !== "NONE").length;
        if (!changed) say(showOk, `${lead}: the user's group licenses were all active, and stay so.`);
        else if (left === 0) say(showOk, `${lead}: no license error left.`);
        else say(showInfo, `${lead}: ${plural(left, "assignment")} still in error; see why below.`);
        return;
      }
    }
    if (ctx.alive()) say(showInfo, `${lead}, but the background run has not reached this user yet; this page shows the state as last read. Reload later to see it.`);
  }

  function draw() {
    ctx.setTitle(user.displayName);
    const errors = user.licenseAssignmentStates.filter((s) => s.error !== "NONE");
    const actions = [];
    if (ctx.canEdit) {
      const button = h("button", { type: "button", class: "btn btn-primary", id: "reprocess-user" }, "Reprocess");
      button.addEventListener("click", async () => {
        const slot = slots.get("reprocess");
        const before = user;
        const done = await act(button, slot, async () => {
          await gql(`mutation ConsoleReprocessUser($id: ID!) { reprocessUser(userId: $id) { id } }`, { id });
          return null;
        });
        if (!done) return;
        showInfo(slot, "Reprocessing: the user's group licenses are tried again in the background…");
        await follow(slot, before, "Reprocessed");
      });
      actions.push(button, slots.get("reprocess"));
    }
    redraw(
      ctx.main,
      pageHeader({
        crumbs: [["Users", "/users"]],
        title: user.displayName,
        badges: [
          errors.length > 0 ? badge("bad", `${plural(errors.length, "license error")}`) : badge("ok", "No license errors"),
          disabledBadge(user, "Account disabled"),
        ],
        subtitle: user.userPrincipalName,
        actions,
      }),
      h(
        "div",
        { class: "grid grid-side" },
        h("div", null, errors.length > 0 && errorsPanel(errors), heldPanel(), assignmentsPanel(), directPanel()),
        h("div", null, profilePanel(), groupsPanel()),
      ),
      historyPanel,
    );
  }

  // ---- Errors, explained ----

  function errorsPanel(errors) {
    return panel({
      title: "Errors to fix",
      count: errors.length,
      body: errors.map((s) =>
        h(
          "article",
          { class: s.state === "ACTIVE_WITH_ERROR" ? "assignment with-error" : "assignment in-error", "aria-label": `${s.product.displayName} ${sourceWords(s)}` },
          h(
            "div",
            { class: "assignment-head" },
            h("h3", null, s.product.displayName, " ", h("span", { class: "muted" }, sourceWords(s))),
            stateBadge(s.state),
            badge("bad", errorLabel(s.error)),
          ),
          withdrawing(s) &&
            h(
              "p",
              { class: "callout callout-warn" },
              `${user.displayName} is no longer a member of ${s.assignedByGroup.displayName}: this license is being withdrawn, and the withdrawal waits for this error to be fixed and a Reprocess.`,
            ),
          s.errorDetail && h("p", { class: "error-message" }, s.errorDetail.message),
          s.errorDetail && violationList(s.errorDetail.violations),
          s.errorDetail?.resolutions.length > 0 &&
            h("div", { class: "resolutions" }, h("h4", null, "How to fix it"), h("ul", null, s.errorDetail.resolutions.map((r) => h("li", null, r)))),
          h("p", { class: "sub" }, "Last updated ", time(s.lastUpdatedDateTime)),
        ),
      ),
    });
  }

  function violationList(violations) {
    // Two rules can find the same clash (an `exclusive` set and a `conflict` naming the same
    // pair): the admin has one thing to fix, so it is shown once.
    const seen = new Set();
    const unique = violations.filter((v) => {
      const key = JSON.stringify(v);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return h("ul", { class: "violations", "aria-label": "Violations" }, unique.map(violation));
  }

  function violation(v) {
    const facts = [];
    const fact = (term, ...value) => facts.push(h("dt", null, term), h("dd", null, value));
    if (v.plans.length > 0) fact("Plan at fault", planNames(v.plans), v.source && [" — ", sourceLink(v.source)]);
    if (v.conflictingPlan) fact("Conflicts with", `${v.conflictingPlan.displayName} (${v.conflictingPlan.servicePlanName})`);
    if (v.conflictingSource) fact("Which comes from", sourceLink(v.conflictingSource));
    if (v.missingPrerequisites.length > 0) fact("Needs one of", planNames(v.missingPrerequisites));
    if (v.usageLocation) {
      fact("Usage location", v.usageLocation, user.usageLocation ? " (the user's own)" : " (the directory's default: the user has none of their own)");
    }
    if (v.proxyAddress) fact("Proxy address", h("code", null, v.proxyAddress));
    if (v.conflictingUser) fact("Also used by", userLink(v.conflictingUser), ` (${v.conflictingUser.userPrincipalName})`);
    if (v.products.length > 0) {
      fact(
        "Without seats",
        v.products.map((p, i) => [i > 0 && ", ", h("a", { href: productHref(p.skuPartNumber) }, `${p.displayName} (${p.skuPartNumber})`)]),
      );
    }
    return h(
      "li",
      { class: "violation" },
      h("p", null, h("span", { class: "violation-code" }, `${errorLabel(v.code)}: `), v.message),
      facts.length > 0 && h("dl", { class: "props" }, facts),
    );
  }

  /** A group's assignment that stays after the user left the group: its withdrawal is blocked (P3). */
  function withdrawing(s) {
    return s.assignedByGroup !== null && !user.memberOf.some((g) => g.id === s.assignedByGroup.id);
  }

  /** "from group Sales" / "assigned directly". */
  function sourceWords(s) {
    return s.assignedByGroup ? `from group ${s.assignedByGroup.displayName}` : "assigned directly";
  }

  /** Where a plan comes from, linked: the group's page, or this user's direct license below. */
  function sourceLink(source) {
    const product = `${source.product.displayName} (${source.product.skuPartNumber})`;
    if (source.direct) return [h("a", { href: `#${directAnchor(source.product.skuPartNumber)}` }, `${product}, assigned directly`)];
    if (source.group) return [product, " from group ", groupLink(source.group)];
    return [product, " from a group deleted since"];
  }

  // ---- Licenses held ----

  function heldPanel() {
    const sources = (sku) =>
      user.licenseAssignmentStates.filter((s) => s.product.skuPartNumber === sku && (s.state === "ACTIVE" || s.state === "ACTIVE_WITH_ERROR"));
    return panel({
      title: "Licenses held",
      count: user.assignedLicenses.length,
      body:
        user.assignedLicenses.length === 0
          ? emptyState("The user holds no license.")
          : table({
              caption: "Licenses the user holds",
              columns: [["Product"], ["Enabled plans"], ["Comes from"]],
              rows: user.assignedLicenses.map((l) => [
                productCell(l.product),
                h(
                  "details",
                  { class: "plans" },
                  h("summary", null, `${l.enabledPlans.length} of ${l.enabledPlans.length + l.disabledPlans.length} plans on`),
                  h("ul", { class: "plan-grid" }, l.enabledPlans.map((p) => h("li", null, h("span", { class: "plan-name", title: p.servicePlanName }, p.displayName)))),
                ),
                h(
                  "div",
                  { class: "source-list" },
                  sources(l.product.skuPartNumber).map((s) =>
                    s.assignedByGroup ? groupLink(s.assignedByGroup) : h("a", { href: `#${directAnchor(s.product.skuPartNumber)}` }, "Direct"),
                  ),
                ),
              ]),
            }),
    });
  }

  // ---- Every assignment ----

  function assignmentsPanel() {
    const states = user.licenseAssignmentStates;
    return panel({
      title: "All assignments",
      count: states.length,
      body:
        states.length === 0
          ? emptyState("No license is assigned to this user, directly or through a group.")
          : table({
              caption: "Every license assignment of the user",
              columns: [["Product"], ["From"], ["State"], ["Reason"], ["Plans off"], ["Updated"]],
              rows: states.map((s) => [
                productCell(s.product),
                s.assignedByGroup ? groupLink(s.assignedByGroup) : "Direct",
                stateBadge(s.state),
                s.error === "NONE" ? h("span", { class: "muted" }, "None") : errorLabel(s.error),
                s.disabledPlans.length === 0 ? h("span", { class: "muted" }, "None") : planNames(s.disabledPlans),
                [time(s.lastUpdatedDateTime), "nowrap"],
              ]),
            }),
    });
  }

  // ---- Direct licenses ----

  function directPanel() {
    const direct = user.licenseAssignmentStates.filter((s) => !s.assignedByGroup);
    const body = [];
    if (ctx.canEdit) body.push(addDirectForm());
    body.push(
      direct.length === 0
        ? emptyState("No direct licenses.", "Licenses assigned to the user, not through a group, show here.")
        : h("ul", { class: "license-list" }, direct.map(directItem)),
    );
    return panel({ title: "Direct licenses", count: direct.length, id: "direct", body });
  }

  function addDirectForm() {
    return productForm({
      label: "Assign a license directly",
      field: "Product to assign directly",
      submit: "Assign",
      slot: slots.get("add-direct"),
      empty: "Choose a product to assign (its skuPartNumber, e.g. STANDARDPACK).",
      save: async (sku) => {
        await gql(ASSIGN, { id, add: [{ skuPartNumber: sku, disabledPlans: [] }], remove: [] });
        return `Assigned ${sku} directly.`;
      },
      after: load,
      note:
        !user.usageLocation &&
        h("p", { class: "form-note" }, "Direct licenses need the user's own usage location (set it under Profile)."),
    });
  }

  function directItem(s) {
    const { product } = s;
    const slot = slots.get(`direct:${product.skuPartNumber}`);
    const save = h("button", { type: "button", class: "btn btn-primary btn-small", disabled: true }, "Save plans");
    const plans = planChecklist({
      plans: product.servicePlans,
      disabled: s.disabledPlans,
      editable: ctx.canEdit,
      label: `Service plans of the direct ${product.displayName}`,
      onChange: () => {
        save.disabled = !plans.changed();
      },
    });
    const tools = [stateBadge(s.state)];
    if (ctx.canEdit) {
      save.addEventListener("click", async () => {
        const disabledPlans = plans.disabledNames();
        const done = await act(save, slot, async () => {
          await gql(ASSIGN, { id, add: [{ skuPartNumber: product.skuPartNumber, disabledPlans }], remove: [] });
          return `Saved ${product.skuPartNumber}: ${disabledPlans.length === 0 ? "every plan on" : `${plural(disabledPlans.length, "plan")} off`}. Reprocess to retry the user's group licenses.`;
        });
        if (done) await load();
        keepFocus(slot);
      });
      const remove = h("button", { type: "button", class: "btn btn-small btn-danger" }, "Remove");
      remove.addEventListener("click", async () => {
        const sure = await confirmDialog({
          title: "Remove this direct license?",
          message: `${product.displayName} (${product.skuPartNumber}) assigned directly to ${user.displayName} is removed. Licenses from groups stay.`,
          confirm: "Remove license",
        });
        if (!sure) return;
        const where = slots.get("add-direct");
        const done = await act(remove, where, async () => {
          await gql(ASSIGN, { id, add: [], remove: [product.skuPartNumber] });
          return `Removed the direct ${product.skuPartNumber}. Reprocess to retry the user's group licenses.`;
        });
        if (done) await load();
        keepFocus(where);
      });
      tools.push(remove);
    }
    return h(
      "li",
      { class: "license-item", id: directAnchor(product.skuPartNumber), tabindex: "-1" },
      h("div", { class: "license-head" }, h("h3", null, productCell(product)), tools),
      s.error !== "NONE" && h("p", { class: "license-meta bad-text" }, errorLabel(s.error)),
      plans.el,
      ctx.canEdit && h("div", { class: "plans-toolbar" }, save, h("span", { class: "form-note" }, "Unchecked plans are off for this user's direct license.")),
      slot,
    );
  }

  // ---- Profile and groups ----

  /**
   * Changes the profile; a new usage location or new proxy addresses process the user's group
   * licenses again by themselves (P5), and the page follows that run.
   */
  async function updateProfile(button, slot, values, message) {
    const before = user;
    const done = await act(button, slot, async () => {
      await gql(UPDATE, { id, input: values });
      return `${message}; the user's group licenses are processed again…`;
    });
    if (done) await follow(slot, before, `${message}, and processed again`);
    else keepFocus(slot);
  }

  function proxyList() {
    if (user.proxyAddresses.length === 0) return h("span", { class: "muted" }, "None");
    return h(
      "ul",
      { class: "plain proxy-list" },
      user.proxyAddresses.map((address) => {
        if (!ctx.canEdit) return h("li", null, h("code", null, address));
        const remove = h("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Remove ${address}` }, "Remove");
        remove.addEventListener("click", async () => {
          const sure = await confirmDialog({
            title: "Remove this proxy address?",
            message: `${address} is removed from ${user.displayName}. The user's group licenses are processed again.`,
            confirm: "Remove address",
          });
          if (!sure) return;
          const rest = user.proxyAddresses.filter((a) => a !== address);
          await updateProfile(remove, slots.get("proxy"), { proxyAddresses: rest }, `Removed ${address}`);
        });
        return h("li", null, h("code", null, address), " ", remove);
      }),
    );
  }

  function proxyForm() {
    const inputId = uid("proxy");
    const input = h("input", { type: "text", id: inputId, class: "wide", autocomplete: "off", spellcheck: "false", placeholder: "smtp:name@domain" });
    const button = h("button", { type: "submit", class: "btn" }, "Add");
    const slot = slots.get("proxy");
    return h(
      "form",
      {
        class: "toolbar",
        "aria-label": "Add a proxy address",
        on: {
          submit: (event) => {
            event.preventDefault();
            const address = input.value.trim();
            if (!address) {
              showError(slot, new Error("Type the address to add, e.g. smtp:name@contoso.com."));
              return;
            }
            updateProfile(button, slot, { proxyAddresses: [...user.proxyAddresses, address] }, `Added ${address}`);
          },
        },
      },
      h("div", { class: "field" }, h("label", { for: inputId }, "Proxy address to add"), input),
      button,
      slot,
    );
  }

  function profilePanel() {
    const own = user.usageLocation;
    const facts = [
      h("dt", null, "Sign-in name"),
      h("dd", null, user.userPrincipalName),
      h("dt", null, "Display name"),
      h("dd", null, user.displayName),
      h("dt", null, "Usage location"),
      h("dd", null, own ?? h("span", { class: "muted" }, "Not set")),
      h("dt", null, "Effective location"),
      h("dd", null, user.effectiveUsageLocation, own ? "" : h("span", { class: "muted" }, ` (the directory's default, ${directory.defaultUsageLocation})`)),
      h("dt", null, "Proxy addresses"),
      h(
        "dd",
        null,
        proxyList(),
      ),
    ];
    return panel({
      title: "Profile",
      body: [h("div", { class: "panel-body" }, h("dl", { class: "props" }, facts)), ctx.canEdit && usageForm(), ctx.canEdit && proxyForm()],
    });
  }

  function usageForm() {
    const inputId = uid("location");
    const noteId = uid("location-note");
    const input = h("input", {
      type: "text",
      id: inputId,
      class: "upper",
      maxlength: "2",
      value: user.usageLocation ?? "",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": noteId,
    });
    const slot = slots.get("usage");
    const save = h("button", { type: "submit", class: "btn" }, "Save");
    const change = (button, values, message) => updateProfile(button, slot, values, message);
    const clear =
      user.usageLocation &&
      h(
        "button",
        {
          type: "button",
          class: "btn",
          on: { click: (event) => change(event.currentTarget, { clearUsageLocation: true }, "Usage location cleared (the directory's default applies)") },
        },
        "Clear",
      );
    return h(
      "form",
      {
        class: "toolbar",
        "aria-label": "Change the usage location",
        on: {
          submit: (event) => {
            event.preventDefault();
            const code = input.value.trim().toUpperCase();
            if (!/^[A-Z]{2}$/.test(code)) {
              showError(slot, new Error("A usage location is a two-letter country code (ISO 3166-1 alpha-2), e.g. US."));
              return;
            }
            change(save, { usageLocation: code }, `Usage location set to ${code}`);
          },
        },
      },
      h("div", { class: "field" }, h("label", { for: inputId }, "Usage location"), input),
      save,
      clear,
      h("p", { class: "form-note", id: noteId }, "Two letters, e.g. US. A change processes the user's group licenses again."),
      slot,
    );
  }

  function groupsPanel() {
    return panel({
      title: "Groups",
      count: user.memberOf.length,
      body:
        user.memberOf.length === 0
          ? emptyState("Not a member of any group.")
          : table({ caption: "Groups the user is a member of", columns: [["Group"]], rows: user.memberOf.map((g) => [groupLink(g)]) }),
    });
  }

  load();
  history.load();
}
