// Group (`/groups/{id}`): its licenses with the plans they disable, its processing with a
// progress bar while it runs (moved by the `groupProcessing` subscription; polled every 2 s when
// the socket is not there or fails), and the seeds' notice "N users are in an error
// state" with the count per reason. Tabs: the users in error (opened first when there are any;
// filter by reason; exported as CSV), the members (add, remove), the licenses (add, remove, plans
// on and off) and the group's history (its changes, members and processing runs, with each user
// a run changed). Reprocess. The tab and the reason are in the address (?tab=, ?reason=).
//
// Every list is paged with the API's cursors: a group of a million members is never loaded whole.

import { gql } from "../api.js";
import { historyList } from "../history.js";
import { previewDialog } from "../preview.js";
import { count, h, plural, replace, uid } from "../dom.js";
import { ERROR_LABELS, PROCESSING_LABELS, errorLabel, groupStatus } from "../labels.js";
import { subscribe } from "../live.js";
import {
  CANCELLED,
  Pager,
  Slots,
  act,
  badge,
  emptyState,
  exportButton,
  keepFocus,
  latestOnly,
  loadOne,
  loading,
  moveProgress,
  outOfSeats,
  pageHeader,
  panel,
  planChecklist,
  planNames,
  productCell,
  productForm,
  progress,
  redraw,
  seatBar,
  showError,
  stateBadge,
  table,
  tabList,
  userInput,
  userLink,
} from "../ui.js";

const POLL_MS = 2000;

const QUERY = `query ConsoleGroup($id: ID!) {
  group(id: $id) {
    id displayName memberCount licenseProcessingState processedMembers membersToProcess
    licenseErrorCount licenseErrorCounts { error count }
    assignedLicenses {
      product { skuPartNumber displayName prepaidUnits consumedUnits availableUnits servicePlans { servicePlanName displayName } }
      disabledPlans { servicePlanName displayName }
    }
  }
}`;

const ERRORS_QUERY = `query ConsoleGroupErrors($id: ID!, $first: Int, $after: String, $error: LicenseErrorCode) {
  group(id: $id) {
    membersWithLicenseErrors(first: $first, after: $after, error: $error) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node {
        id displayName userPrincipalName
        licenseAssignmentStates { product { skuPartNumber displayName } assignedByGroup { id } state error errorDetail { message } }
      } }
    }
  }
}`;

const MEMBERS_QUERY = `query ConsoleGroupMembers($id: ID!, $first: Int, $after: String) {
  group(id: $id) {
    members(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id displayName userPrincipalName effectiveUsageLocation hasLicenseErrors } }
    }
  }
}`;

const GROUP_LICENSE = `mutation ConsoleGroupLicense($id: ID!, $add: [LicenseInput!]!, $remove: [String!]!) {
  assignGroupLicense(groupId: $id, addLicenses: $add, removeLicenses: $remove) { id licenseProcessingState }
}`;

const LIVE = `subscription ConsoleGroupProcessing($id: ID!) {
  groupProcessing(groupId: $id) { licenseProcessingState processedMembers membersToProcess licenseErrorCount }
}`;

const TABS = ["errors", "members", "licenses", "history"];

export function render(ctx) {
  const id = ctx.params[0];
  const slots = new Slots();
  const state = {
    group: null,
    tab: TABS.includes(ctx.query.get("tab")) ? ctx.query.get("tab") : null,
    reason: ERROR_LABELS[ctx.query.get("reason")] ? ctx.query.get("reason") : "",
  };
  const head = h("div");
  const summary = h("div");
  const tabsBox = h("div");
  const panelId = uid("tabpanel");
  const tabPanel = h("div", { id: panelId, role: "tabpanel" });
  const side = h("div");
  const tabs = {};
  const started = new Set();
  let polling = false;
  // While the subscription runs, the server says when a run starts, moves and ends: no polling.
  let live = false;
  // The subscription's last update (its processing fields, as the group query names them) and
  // how many have come.
  let latest = null;
  let updates = 0;
  // The group's reads: how many were asked, and the latest one drawn.
  let asked = 0;
  let drawn = 0;

  ctx.setTitle("Group");
  replace(ctx.main, loading("Loading the group…"));

  async function loadGroup() {
    const heard = updates;
    const mine = ++asked;
    const data = await loadOne(ctx, {
      query: QUERY,
      variables: { id },
      field: "group",
      crumb: ["Groups", "/groups"],
      title: "Group",
      missing: { title: "Group not found", text: `There is no group with id ${id}.`, hint: "It may have been deleted." },
    });
    if (!data) return false;
    // Updates can ask for the group twice in a row; an answer overtaken by a later one is old.
    if (mine < drawn) return true;
    drawn = mine;
    const first = state.group === null;
    const wasRunning = state.group && state.group.licenseProcessingState !== "COMPLETE";
    // An update that came while this answer was on its way is newer than the answer's progress.
    if (updates !== heard && latest) Object.assign(data.group, latest);
    state.group = data.group;
    if (first) {
      state.tab ??= data.group.licenseErrorCount > 0 ? "errors" : "members";
      replace(ctx.main, head, summary, side, h("section", { class: "panel", "aria-label": "Users, members and licenses" }, tabsBox, tabPanel));
    }
    drawHead();
    drawSummary();
    drawTabs();
    tabs.errors.fillReasons();
    const running = data.group.licenseProcessingState !== "COMPLETE";
    if (running && !polling && !live) {
      polling = true;
      ctx.later(POLL_MS, async () => {
        polling = false;
        // The users in error change as the run goes; the tab follows (at the end, loadGroup
        // reloads it itself).
        if ((await loadGroup()) && state.group.licenseProcessingState !== "COMPLETE") tabs[state.tab]?.load();
      });
    } else if (wasRunning && !running) {
      tabs[state.tab]?.load();
    }
    return true;
  }

  function drawHead() {
    const g = state.group;
    ctx.setTitle(g.displayName);
    const status = groupStatus(g);
    const actions = [];
    if (ctx.canEdit) {
      const button = h("button", { type: "button", class: "btn btn-primary", id: "reprocess-group" }, "Reprocess");
      button.addEventListener("click", async () => {
        const slot = slots.get("reprocess");
        const done = await act(button, slot, async () => {
          const sure = await previewDialog({
            title: `Reprocess ${g.displayName}?`,
            call: "previewReprocessGroup(groupId: $id)",
            params: "$id: ID!",
            variables: { id },
            source: id,
            confirm: "Reprocess",
          });
          if (!sure) return CANCELLED;
          await gql(`mutation ConsoleReprocessGroup($id: ID!) { reprocessGroup(groupId: $id) { id licenseProcessingState } }`, { id });
          return `Reprocessing ${plural(g.memberCount, "member")}: each is tried again in the background.`;
        });
        if (done) await refresh();
        keepFocus(slot);
      });
      actions.push(button, slots.get("reprocess"));
    }
    redraw(
      head,
      pageHeader({
        crumbs: [["Groups", "/groups"]],
        title: g.displayName,
        badges: [badge(status.tone, status.text)],
        subtitle: `${plural(g.memberCount, "member")} · ${plural(g.assignedLicenses.length, "license")} · group id ${g.id}`,
        actions,
      }),
    );
  }

  function drawSummary() {
    const g = state.group;
    const parts = [];
    if (g.licenseProcessingState !== "COMPLETE") {
      parts.push(
        h(
          "div",
          { class: "callout callout-info", role: "status" },
          h("p", { class: "callout-title" }, g.licenseProcessingState === "QUEUED" ? "Processing is queued" : "Processing licenses"),
          progress(g.processedMembers, g.membersToProcess, `Processing of ${g.displayName}`),
          h("p", null, `${PROCESSING_LABELS[g.licenseProcessingState]}: this page follows the run as it goes.`),
        ),
      );
    }
    if (g.licenseErrorCount > 0) {
      parts.push(
        h(
          "div",
          { class: "callout callout-bad" },
          h("p", { class: "callout-title" }, g.licenseErrorCount === 1 ? "1 user is in an error state" : `${count(g.licenseErrorCount)} users are in an error state`),
          h(
            "ul",
            { class: "reason-list", "aria-label": "Users in error per reason" },
            g.licenseErrorCounts.map(({ error, count: n }) =>
              h(
                "li",
                null,
                h(
                  "button",
                  { type: "button", class: "btn-link", on: { click: () => showReason(error) } },
                  `${errorLabel(error)}: ${count(n)}`,
                ),
              ),
            ),
          ),
          h("p", null, "Fix the cause (seats, plans, usage location, proxy addresses), then Reprocess."),
        ),
      );
    }
    redraw(summary, parts);
    redraw(side, licensesSummary(g));
  }

  function drawTabs() {
    const g = state.group;
    const focused = tabsBox.contains(document.activeElement);
    replace(
      tabsBox,
      tabList({
        label: "Group details",
        selected: state.tab,
        onSelect: select,
        tabs: [
          { key: "errors", text: "Users in error", badgeText: count(g.licenseErrorCount), tone: g.licenseErrorCount > 0 ? "bad" : "", panelId },
          { key: "members", text: "Members", badgeText: count(g.memberCount), panelId },
          { key: "licenses", text: "Licenses", badgeText: count(g.assignedLicenses.length), panelId },
          { key: "history", text: "History", panelId },
        ],
      }),
    );
    tabPanel.setAttribute("aria-labelledby", `tab-${state.tab}`);
    if (focused) tabsBox.querySelector('[aria-selected="true"]')?.focus();
    if (!tabs[state.tab] || tabPanel.firstChild !== tabs[state.tab].el) showTab();
  }

  function select(key) {
    state.tab = key;
    ctx.setQuery({ tab: key, reason: key === "errors" ? state.reason : "" });
    tabPanel.setAttribute("aria-labelledby", `tab-${key}`);
    showTab();
  }

  function showTab() {
    const key = state.tab;
    tabs[key] ??= { members: membersTab, licenses: licensesTab, history: historyTab }[key]();
    // Lists load once, then on refresh; the licenses are drawn from the group each time.
    if (!started.has(key) || key === "licenses") {
      started.add(key);
      tabs[key].load();
    }
    replace(tabPanel, tabs[key].el);
  }

  function showReason(error) {
    state.reason = error;
    if (tabs.errors) tabs.errors.setReason(error);
    state.tab = "errors";
    ctx.setQuery({ tab: "errors", reason: error });
    drawTabs();
    showTab();
    tabPanel.querySelector("select")?.focus();
  }

  /**
   * One message of the subscription: the group's processing as it stands. A run's progress
   * moves the bar in place; its end (or a run that started and ended between two messages)
   * reads the group again, since its users in error have changed.
   */
  function onProgress(update) {
    const now = update.licenseProcessingState;
    const progressOf = { licenseProcessingState: now, processedMembers: update.processedMembers, membersToProcess: update.membersToProcess };
    updates += 1;
    latest = now === "COMPLETE" ? null : progressOf;
    const g = state.group;
    // The first message may come before the group's own answer, which has the same state.
    if (!g) return;
    const was = g.licenseProcessingState;
    if (now === "COMPLETE") {
      const changed = was !== "COMPLETE" || update.processedMembers !== g.processedMembers || update.membersToProcess !== g.membersToProcess || update.licenseErrorCount !== g.licenseErrorCount;
      // loadGroup reloads the tab itself when it sees a run end; a run missed whole needs both.
      if (was !== "COMPLETE") loadGroup();
      else if (changed) refresh();
      return;
    }
    const moved = was === now && moveProgress(summary, update.processedMembers, update.membersToProcess);
    Object.assign(g, progressOf);
    if (moved) return;
    drawHead();
    drawSummary();
    // A run that starts was caused by a change (licenses, members) this page has not read yet.
    if (was === "COMPLETE") loadGroup();
  }

  /** After an action: the group, then the tab on screen. */
  async function refresh() {
    if (await loadGroup()) await tabs[state.tab]?.load();
  }

  // ---- Users in error ----

  function errorsTab() {
    const pager = new Pager(() => load());
    const list = h("div", null, loading("Loading the users in error…"));
    const reasonId = uid("reason");
    const reasonSelect = h("select", { id: reasonId });
    function fillReasons() {
      const counts = state.group?.licenseErrorCounts ?? [];
      const present = new Map(counts.map((c) => [c.error, c.count]));
      if (state.reason && !present.has(state.reason)) present.set(state.reason, 0);
      replace(
        reasonSelect,
        h("option", { value: "", selected: state.reason === "" }, "All reasons"),
        [...present].map(([code, n]) => h("option", { value: code, selected: state.reason === code }, `${errorLabel(code)} (${count(n)})`)),
      );
    }
    reasonSelect.addEventListener("change", () => {
      state.reason = reasonSelect.value;
      ctx.setQuery({ tab: "errors", reason: state.reason });
      pager.reset();
      load();
    });
    const exportSlot = slots.get("export-errors");
    const exportCsv = exportButton({
      path: "/export/license-errors.csv",
      params: () => ({ groupId: id }),
      what: "every license of this group in error, whatever the reason",
      slot: exportSlot,
      id: "export-errors",
    });
    const el = h(
      "div",
      null,
      h(
        "div",
        { class: "toolbar" },
        h("div", { class: "field" }, h("label", { for: reasonId }, "Reason"), reasonSelect),
        h("p", { class: "form-note toolbar-grow" }, "Each row is one license of this group that failed for one user; open the user to see why and how to fix it."),
        h("div", { class: "toolbar-end" }, exportCsv),
        exportSlot,
      ),
      list,
    );
    const ask = latestOnly(ctx, list, "The users in error could not be loaded.");
    async function load() {
      fillReasons();
      const data = await ask(ERRORS_QUERY, { id, first: pager.first, after: pager.after, error: state.reason || null });
      if (!data?.group) return;
      const connection = data.group.membersWithLicenseErrors;
      const rows = [];
      for (const { node } of connection.edges) {
        const failing = node.licenseAssignmentStates.filter(
          (s) => s.assignedByGroup?.id === id && s.error !== "NONE" && (!state.reason || s.error === state.reason),
        );
        failing.forEach((s, i) => {
          const user = [userLink(node), h("span", { class: "sub" }, node.userPrincipalName)];
          rows.push([
            ...(i === 0 ? [{ cell: user, rowspan: failing.length }] : []),
            productCell(s.product),
            stateBadge(s.state),
            errorLabel(s.error),
            [s.errorDetail?.message ?? "", "message"],
          ]);
        });
      }
      if (connection.totalCount === 0) {
        redraw(
          list,
          state.reason
            ? emptyState(`No user is in error for “${errorLabel(state.reason)}”.`, "Choose another reason, or all of them.")
            : emptyState("No user is in an error state.", "Every member holds this group's licenses."),
        );
        return;
      }
      redraw(
        list,
        table({ caption: "Users in error", columns: [["User"], ["Product"], ["State"], ["Reason"], ["Message"]], rows }),
        pager.render(connection, "users in error"),
      );
    }
    return {
      el,
      load,
      fillReasons,
      setReason(error) {
        state.reason = error;
        pager.reset();
        load();
      },
    };
  }

  // ---- History ----

  function historyTab() {
    const history = historyList(ctx, "group", id);
    const el = h(
      "div",
      null,
      h(
        "div",
        { class: "toolbar" },
        h("p", { class: "form-note toolbar-grow" }, "The group's own changes, its members coming and going, and its processing runs with each user a run changed; newest first."),
      ),
      history.el,
    );
    return { el, load: history.load };
  }

  // ---- Members ----

  function membersTab() {
    const pager = new Pager(() => load());
    const list = h("div", null, loading("Loading the members…"));
    const listSlot = slots.get("members");
    const parts = [];
    if (ctx.canEdit) {
      const inputId = uid("member");
      const { input, list: suggestions } = userInput(inputId);
      const button = h("button", { type: "submit", class: "btn btn-primary" }, "Add member");
      const slot = slots.get("add-member");
      const form = h(
        "form",
        {
          class: "toolbar",
          "aria-label": "Add a member",
          on: {
            submit: async (event) => {
              event.preventDefault();
              const name = input.value.trim();
              if (!name) {
                showError(slot, new Error("Type the sign-in name of the user to add."));
                return;
              }
              const done = await act(button, slot, async () => {
                const found = await gql(`query ConsoleFindUser($upn: String!) { user(userPrincipalName: $upn) { id displayName userPrincipalName } }`, { upn: name });
                if (!found.user) throw new Error(`No user has the sign-in name ${name}.`);
                const sure = await previewDialog({
                  title: `Add ${found.user.displayName} to ${state.group.displayName}?`,
                  call: "previewAddGroupMembers(groupId: $id, userIds: $users)",
                  params: "$id: ID!, $users: [ID!]!",
                  variables: { id, users: [found.user.id] },
                  source: id,
                  confirm: "Add member",
                });
                if (!sure) return CANCELLED;
                await gql(`mutation ConsoleAddMembers($id: ID!, $users: [ID!]!) { addGroupMembers(groupId: $id, userIds: $users) { id memberCount } }`, {
                  id,
                  users: [found.user.id],
                });
                return `Added ${found.user.displayName} (${found.user.userPrincipalName}). Their licenses from this group are processed in the background.`;
              });
              // Cancelled at the preview: the name stays, to try again.
              if (done) {
                input.value = "";
                await refresh();
              }
              keepFocus(slot);
            },
          },
        },
        h("div", { class: "field" }, h("label", { for: inputId }, "Add a member by sign-in name"), input, suggestions),
        button,
        slot,
      );
      parts.push(form);
    }
    parts.push(listSlot, list);
    const el = h("div", null, parts);

    async function remove(user, button) {
      const g = state.group;
      const sure = await previewDialog({
        title: `Remove ${user.displayName} from ${g.displayName}?`,
        call: "previewRemoveGroupMembers(groupId: $id, userIds: $users)",
        params: "$id: ID!, $users: [ID!]!",
        variables: { id, users: [user.id] },
        source: id,
        confirm: "Remove member",
        danger: true,
      });
      if (!sure) return;
      const done = await act(button, listSlot, async () => {
        await gql(`mutation ConsoleRemoveMembers($id: ID!, $users: [ID!]!) { removeGroupMembers(groupId: $id, userIds: $users) { id memberCount } }`, {
          id,
          users: [user.id],
        });
        return `Removed ${user.displayName} from ${g.displayName}. Their licenses from this group are withdrawn in the background.`;
      });
      if (done) await refresh();
      keepFocus(listSlot);
    }

    const ask = latestOnly(ctx, list, "The members could not be loaded.");
    async function load() {
      const data = await ask(MEMBERS_QUERY, { id, first: pager.first, after: pager.after });
      if (!data?.group) return;
      const connection = data.group.members;
      if (connection.totalCount === 0) {
        redraw(list, emptyState("This group has no members.", ctx.canEdit ? "Add one by sign-in name above." : null));
        return;
      }
      const columns = [["Name"], ["Sign-in name"], ["Usage location"], ["License errors"]];
      if (ctx.canEdit) columns.push(["", "actions"]);
      redraw(
        list,
        table({
          caption: "Members",
          columns,
          rows: connection.edges.map(({ node }) => {
            const cells = [
              userLink(node),
              node.userPrincipalName,
              node.effectiveUsageLocation,
              node.hasLicenseErrors ? badge("bad", "In error") : badge("ok", "None"),
            ];
            if (ctx.canEdit) {
              const button = h("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Remove ${node.displayName}` }, "Remove");
              button.addEventListener("click", () => remove(node, button));
              cells.push([button, "actions"]);
            }
            return cells;
          }),
        }),
        pager.render(connection, "members"),
      );
    }
    return { el, load };
  }

  // ---- Licenses ----

  function licensesTab() {
    const el = h("div");
    // The group's licenses come with the group; this tab draws them again after each load.
    async function load() {
      const g = state.group;
      const parts = [];
      if (ctx.canEdit) parts.push(addLicenseForm());
      if (g.assignedLicenses.length === 0) {
        parts.push(emptyState("This group has no licenses.", ctx.canEdit ? "Add a product above: every member gets it." : null));
      } else {
        parts.push(h("ul", { class: "license-list" }, g.assignedLicenses.map(licenseItem)));
      }
      redraw(el, parts);
    }

    function previewLicenseChange(title, add, remove, confirm, danger = false) {
      return previewDialog({
        title,
        call: "previewAssignGroupLicense(groupId: $id, addLicenses: $add, removeLicenses: $remove)",
        params: "$id: ID!, $add: [LicenseInput!]!, $remove: [String!]!",
        variables: { id, add, remove },
        source: id,
        confirm,
        danger,
      });
    }

    function addLicenseForm() {
      return productForm({
        label: "Add a product to the group",
        field: "Product to add",
        submit: "Add to group",
        slot: slots.get("add-license"),
        empty: "Choose a product to add (its skuPartNumber, e.g. ENTERPRISEPACK).",
        save: async (sku) => {
          const add = [{ skuPartNumber: sku, disabledPlans: [] }];
          if (!(await previewLicenseChange(`Add ${sku} to ${state.group.displayName}?`, add, [], "Add to group"))) return CANCELLED;
          await gql(GROUP_LICENSE, { id, add, remove: [] });
          return `Added ${sku}. Every member gets it in the background.`;
        },
        after: refresh,
      });
    }

    function licenseItem(license) {
      const g = state.group;
      const { product } = license;
      const slot = slots.get(`license:${product.skuPartNumber}`);
      const save = h("button", { type: "button", class: "btn btn-primary btn-small", disabled: true }, "Save plans");
      const plans = planChecklist({
        plans: product.servicePlans,
        disabled: license.disabledPlans,
        editable: ctx.canEdit,
        label: `Service plans of ${product.displayName} in this group`,
        onChange: () => {
          save.disabled = !plans.changed();
        },
      });
      const tools = [];
      if (ctx.canEdit) {
        save.addEventListener("click", async () => {
          const disabledPlans = plans.disabledNames();
          const done = await act(save, slot, async () => {
            const add = [{ skuPartNumber: product.skuPartNumber, disabledPlans }];
            if (!(await previewLicenseChange(`Save the plans of ${product.skuPartNumber}?`, add, [], "Save plans"))) return CANCELLED;
            await gql(GROUP_LICENSE, { id, add, remove: [] });
            return `Saved ${product.skuPartNumber}: ${disabledPlans.length === 0 ? "every plan on" : `${plural(disabledPlans.length, "plan")} off`}. Every member is processed again.`;
          });
          if (done) await refresh();
          keepFocus(slot);
        });
        const remove = h("button", { type: "button", class: "btn btn-small btn-danger" }, "Remove from group");
        remove.addEventListener("click", async () => {
          const sure = await previewLicenseChange(
            `Remove ${product.skuPartNumber} from ${g.displayName}?`,
            [],
            [product.skuPartNumber],
            "Remove product",
            true,
          );
          if (!sure) return;
          const done = await act(remove, slots.get("add-license"), async () => {
            await gql(GROUP_LICENSE, { id, add: [], remove: [product.skuPartNumber] });
            return `Removed ${product.skuPartNumber} from ${g.displayName}. It is withdrawn from the members in the background.`;
          });
          if (done) await refresh();
          keepFocus(slots.get("add-license"));
        });
        tools.push(remove);
      }
      return h(
        "li",
        { class: "license-item" },
        h("div", { class: "license-head" }, h("h3", null, productCell(product)), tools),
        h("p", { class: "license-meta" }, `${count(product.consumedUnits)} of ${count(product.prepaidUnits)} seats used, ${count(product.availableUnits)} available`),
        plans.el,
        ctx.canEdit && h("div", { class: "plans-toolbar" }, save, h("span", { class: "form-note" }, "Turn plans off for every member of the group; saving processes them again.")),
        slot,
      );
    }
    return { el, load };
  }

  // The users in error are what the group opens on when it has any: asked for together with the
  // group rather than after it, so that the page is drawn after one round trip, not two.
  tabs.errors = errorsTab();
  if (state.tab === null || state.tab === "errors") {
    started.add("errors");
    tabs.errors.load();
  }
  live = true;
  const stop = subscribe(LIVE, { id }, {
    next: (data) => {
      if (ctx.alive() && data?.groupProcessing) onProgress(data.groupProcessing);
    },
    // No socket, or it failed: the page polls while the group runs, as it would without one.
    end: () => {
      live = false;
      if (ctx.alive() && state.group && state.group.licenseProcessingState !== "COMPLETE") loadGroup();
    },
  });
  ctx.onLeave(stop);
  loadGroup();
}

/** The group's licenses at a glance: product, seats, and the plans the group turns off. */
function licensesSummary(g) {
  return panel({
    title: "Licenses",
    count: g.assignedLicenses.length,
    body:
      g.assignedLicenses.length === 0
        ? emptyState("No licenses.", "Members get nothing from this group.")
        : table({
            caption: "Licenses of the group",
            columns: [["Product"], ["Seats used"], ["Available", "num"], ["Plans off"]],
            rows: g.assignedLicenses.map((l) => [
              productCell(l.product),
              seatBar(l.product),
              [outOfSeats(l.product) ? h("span", { class: "bad-text" }, "None left") : count(l.product.availableUnits), "num"],
              l.disabledPlans.length === 0 ? h("span", { class: "muted" }, "None") : planNames(l.disabledPlans),
            ]),
          }),
  });
}
