// app.js — the dashboard: a hash router over four views, the instance list (#/), one instance
// (#/instance/ID), the entity list (#/entities) and one entity (#/entity/@name@key; both in
// entities.js), refreshed every 2 s unless paused. Views build their controls once and
// redraw only their data, so a refresh never eats what the user is typing. Every string from
// the server goes into the page as text, through dom.js.

import * as api from "./api.js";
import { h, replace, instanceHref, fmtTime, fmtDuration, fmtJson, pausable, isUtc, setUtc } from "./dom.js";
import { renderTimeline, legend } from "./timeline.js";
import { entitiesView, entityView, resetEntityPaging } from "./entities.js";

const STATUSES = ["Pending", "Running", "Suspended", "Completed", "Failed", "Terminated",
  "ContinuedAsNew", "Canceled"];
const TERMINAL = new Set(["Completed", "Failed", "Terminated", "Canceled"]);
const PAGE_SIZE = 20;
const REFRESH_MS = 2000;

const viewEl = document.getElementById("view");
const liveButton = document.getElementById("live-toggle");
const refreshState = document.getElementById("refresh-state");
const tokenButton = document.getElementById("token-button");
const hubPicker = document.getElementById("hub-picker");

let live = true;
let current = null;     // the view shown: {refresh(force), dispose()}

function badge(status) {
  return h("span", { class: "badge st-" + String(status || "Unknown").replace(/[^A-Za-z]/g, "") },
    status || "Unknown");
}

function errorText(e) {
  return e instanceof api.ApiError ? e.toString() : String(e && e.message ? e.message : e);
}

// ---- dialogs -------------------------------------------------------------------------------

// confirmDialog: ask before an action. FIELDS: [{name, label, type: "text"|"checkbox", value}].
// Resolves to the fields' values ({name: value}) on OK, or null on cancel.
function confirmDialog({ title, message, fields = [], ok = "OK", danger = false }) {
  const dlg = document.getElementById("confirm-dialog");
  replace(document.getElementById("confirm-title"), title);
  replace(document.getElementById("confirm-message"), message);
  const box = document.getElementById("confirm-fields");
  const inputs = {};
  replace(box, fields.map((f) => {
    const input = f.type === "checkbox"
      ? h("input", { type: "checkbox", name: f.name, checked: !!f.value })
      : h("input", { type: "text", name: f.name, value: f.value || "", placeholder: f.placeholder || "",
        autocomplete: "off", spellcheck: "false" });
    inputs[f.name] = input;
    return f.type === "checkbox"
      ? h("label", { class: "check" }, input, " ", f.label)
      : h("label", null, f.label, input);
  }));
  const okButton = document.getElementById("confirm-ok");
  replace(okButton, ok);
  okButton.className = danger ? "danger" : "primary";
  dlg.returnValue = "";
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      if (dlg.returnValue !== "ok") return resolve(null);
      const out = {};
      for (const [k, el] of Object.entries(inputs)) out[k] = el.type === "checkbox" ? el.checked : el.value;
      resolve(out);
    }, { once: true });
    dlg.showModal();
    (fields.length ? Object.values(inputs)[0] : document.getElementById("confirm-cancel")).focus();
  });
}

function askToken(why) {
  const dlg = document.getElementById("token-dialog");
  replace(document.getElementById("token-why"), why || "");
  const input = document.getElementById("token-input");
  input.value = "";
  dlg.returnValue = "";
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      const tok = dlg.returnValue === "ok" ? input.value.trim() : "";
      input.value = "";
      if (tok) api.setToken(tok);
      updateTokenButton();
      resolve(tok || null);
    }, { once: true });
    dlg.showModal();
    input.focus();
  });
}

function updateTokenButton() {
  replace(tokenButton, api.hasToken() ? "Forget token" : "Set token");
}

function dialogOpen() {
  return !!document.querySelector("dialog[open]");
}

// ---- the instance list ---------------------------------------------------------------------

// The list's filters and position outlive the view, so coming back from an instance keeps them.
const listState = {
  statuses: new Set(),
  mode: "id",          // "id": instance id prefix; "name": orchestrator name; "version": its version (exact)
  text: "",
  tokens: [null],      // continuation token of each page seen; tokens[page] fetched page `page`
  page: 0,
  next: null,
};

// listHash / readListHash: the list's filters in the URL ("#/?status=Running,Failed&by=name&q=x"),
// so a filtered list can be bookmarked, shared and reloaded.
function listHash() {
  const q = new URLSearchParams();
  if (listState.statuses.size) q.set("status", [...listState.statuses].join(","));
  if (listState.text) {
    q.set("by", listState.mode);
    q.set("q", listState.text);
  }
  const s = q.toString();
  return s ? `#/?${s}` : "#/";
}

function readListHash(hash) {
  const i = hash.indexOf("?");
  if (i < 0) return;
  const q = new URLSearchParams(hash.slice(i + 1));
  listState.statuses = new Set((q.get("status") || "").split(",").filter((st) => STATUSES.includes(st)));
  const by = q.get("by");
  listState.mode = by === "name" || by === "version" ? by : "id";
  listState.text = q.get("q") || "";
  listState.tokens = [null];
  listState.page = 0;
}

function listView() {
  // refreshes coalesce (dom.js): one asked for while one is in flight (filters changed) runs
  // once more when it ends, and the stale answer is not drawn; nor is the timer's once paused
  let disposed = false, lastCounts = "", lastRows = "";

  const counts = h("div", { class: "counts", id: "counts", "aria-label": "Instances by status" });
  const statusBoxes = STATUSES.map((st) =>
    h("label", { class: "chip" },
      h("input", { type: "checkbox", value: st, checked: listState.statuses.has(st),
        "data-status": st, onchange: (ev) => {
          if (ev.target.checked) listState.statuses.add(st); else listState.statuses.delete(st);
          resetPaging();
        } }),
      " ", st));
  const mode = h("select", { id: "search-mode", "aria-label": "Search by", onchange: (ev) => {
    listState.mode = ev.target.value;
    if (listState.text) resetPaging();
  } },
  h("option", { value: "id" }, "Instance id prefix"),
  h("option", { value: "name" }, "Orchestrator name"),
  h("option", { value: "version" }, "Version"));
  mode.value = listState.mode;
  let debounce = null;
  const search = h("input", { type: "search", id: "search", value: listState.text,
    placeholder: "Search…", autocomplete: "off", spellcheck: "false", oninput: (ev) => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        listState.text = ev.target.value.trim();
        resetPaging();
      }, 300);
    } });
  const clear = h("button", { type: "button", class: "quiet", onclick: () => {
    listState.statuses.clear();
    listState.text = "";
    search.value = "";
    for (const l of statusBoxes) l.querySelector("input").checked = false;
    resetPaging();
  } }, "Clear filters");
  const tbody = h("tbody", { id: "instances-body" });
  const table = h("table", { class: "instances", id: "instances" },
    h("thead", null, h("tr", null, h("th", null, "Instance id"), h("th", null, "Name"),
      h("th", null, "Version"), h("th", null, "Status"), h("th", null, "Created"), h("th", null, "Last updated"))),
    tbody);
  const prev = h("button", { type: "button", id: "prev-page", onclick: () => {
    if (listState.page > 0) { listState.page--; refresh(true); }
  } }, "← Previous");
  const next = h("button", { type: "button", id: "next-page", onclick: () => {
    if (listState.next) {
      listState.tokens[listState.page + 1] = listState.next;
      listState.tokens.length = listState.page + 2;
      listState.page++;
      refresh(true);
    }
  } }, "Next →");
  const pageLabel = h("span", { class: "muted", id: "page-label" });
  const message = h("p", { class: "error", id: "list-error", role: "alert", hidden: true });
  const note = h("p", { class: "muted small", id: "list-note", hidden: true });

  replace(viewEl,
    h("section", { class: "panel" }, h("h2", null, "Instances by status"), counts),
    h("section", { class: "panel" },
      h("h2", null, "Instances"),
      h("form", { class: "filters", onsubmit: (ev) => {
        ev.preventDefault();
        clearTimeout(debounce);
        listState.text = search.value.trim();
        resetPaging();
      } },
      h("fieldset", { class: "statuses" }, h("legend", null, "Status"), statusBoxes),
      h("div", { class: "search" }, mode, search, h("button", { type: "submit" }, "Search"), clear)),
      message, note, table,
      h("div", { class: "pager" }, prev, pageLabel, next)));
  document.title = "Instances — durabletask-c";

  function resetPaging() {
    listState.tokens = [null];
    listState.page = 0;
    listState.next = null;
    history.replaceState(null, "", listHash());   /* the filters stay in the URL */
    refresh(true);
  }

  function renderCounts(data) {
    const key = JSON.stringify(data);
    if (key === lastCounts) return;
    lastCounts = key;
    const names = STATUSES.filter((st) => st in data)
      .concat(Object.keys(data).filter((st) => !STATUSES.includes(st)));
    let total = 0;
    for (const k of names) total += Number(data[k]) || 0;
    replace(counts,
      h("button", { type: "button", class: "count count-all", "data-status": "All", onclick: () => {
        listState.statuses.clear();
        for (const l of statusBoxes) l.querySelector("input").checked = false;
        resetPaging();
      } }, h("span", { class: "count-n" }, String(total)), h("span", { class: "count-label" }, "All")),
      names.map((st) => h("button", { type: "button",
        class: "count st-" + st.replace(/[^A-Za-z]/g, "") + (Number(data[st]) ? "" : " zero"),
        "data-status": st, title: `Show only ${st}`, onclick: () => {
          listState.statuses = new Set([st]);
          for (const l of statusBoxes) {
            const box = l.querySelector("input");
            box.checked = box.value === st;
          }
          resetPaging();
        } }, h("span", { class: "count-n" }, String(data[st])), h("span", { class: "count-label" }, st))));
  }

  function renderRows(items) {
    const key = JSON.stringify(items);
    if (key === lastRows) return;
    lastRows = key;
    if (!items.length) {
      replace(tbody, h("tr", null, h("td", { colspan: 6, class: "muted empty" },
        listState.page > 0 ? "No more instances." : "No instances match.")));
      return;
    }
    replace(tbody, items.map((it) => h("tr", { "data-instance-id": it.instanceId },
      h("td", { class: "id" }, h("a", { href: instanceHref(it.instanceId) }, it.instanceId)),
      h("td", null, it.name ?? ""),
      h("td", { class: "version" }, it.version ?? ""),
      h("td", null, badge(it.runtimeStatus)),
      h("td", { class: "time", title: it.createdTime || "" }, fmtTime(it.createdTime)),
      h("td", { class: "time", title: it.lastUpdatedTime || "" }, fmtTime(it.lastUpdatedTime)))));
  }

  function wanted() {
    return {
      statuses: [...listState.statuses],
      idPrefix: listState.mode === "id" ? listState.text : "",
      name: listState.mode === "name" ? listState.text : "",
      version: listState.mode === "version" ? listState.text : "",
      top: PAGE_SIZE,
      continuation: listState.tokens[listState.page],
    };
  }

  const refresh = pausable(async (keep) => {
    try {
      const want = wanted();
      const [c, page] = await Promise.all([api.getCounts(), api.listInstances(want)]);
      if (disposed || !keep() || JSON.stringify(want) !== JSON.stringify(wanted())) return;
      renderCounts(c);
      // the name is matched here too, in case the server does not filter by it
      const items = want.name ? page.items.filter((it) => it.name === want.name) : page.items;
      renderRows(items);
      const unfiltered = items.length < page.items.length;
      note.hidden = !unfiltered;
      if (unfiltered)
        replace(note, `The server did not filter by name: these are the matches among ${page.items.length} instances of this page.`);
      listState.next = page.next;
      prev.disabled = listState.page === 0;
      next.disabled = !page.next;
      replace(pageLabel, `Page ${listState.page + 1}`);
      message.hidden = true;
      stamp();
    } catch (e) {
      if (disposed || !keep()) return;
      replace(message, errorText(e));
      message.hidden = false;
    }
  }, () => disposed, () => live);

  return { refresh, dispose() { disposed = true; clearTimeout(debounce); } };
}

// ---- one instance --------------------------------------------------------------------------

function payloadBlock(title, value, id) {
  const empty = value === undefined || value === null;
  return h("div", { class: "payload-block" },
    h("h3", null, title),
    h("pre", { class: "payload" + (empty ? " muted" : ""), id }, empty ? "null" : fmtJson(value)));
}

function failureBlock(f, depth = 0) {
  if (!f) return null;
  return h("div", { class: "failure", "data-depth": depth },
    h("div", null, h("strong", { class: "failure-type" }, f.errorType || "Error"), ": ",
      h("span", { class: "failure-message" }, f.errorMessage || "")),
    f.stackTrace ? h("pre", { class: "stack" }, f.stackTrace) : null,
    f.innerFailure ? h("div", { class: "inner" }, h("div", { class: "muted small" }, "caused by"),
      failureBlock(f.innerFailure, depth + 1)) : null);
}

// the history table's last column: whatever each event carries besides the common fields
const COMMON = new Set(["EventType", "EventId", "Timestamp", "Name", "TaskScheduledId"]);
function eventDetails(e, self) {
  const parts = [];
  for (const [k, v] of Object.entries(e)) {
    if (COMMON.has(k) || v === null || v === undefined) continue;
    let value;
    if (k === "InstanceId" && typeof v === "string" && v !== self) value = h("a", { href: instanceHref(v) }, v);
    else if (k === "FailureDetails") value = failureBlock(v);
    else if (k === "FireAt") value = h("span", { title: String(v) }, fmtTime(v));
    else value = h("pre", { class: "payload small" }, fmtJson(v));
    parts.push(h("div", { class: "detail" }, h("span", { class: "detail-key" }, k), value));
  }
  return parts;
}

// historyTable: EVENTS of instance SELF, times also shown as offsets from START (ms).
function historyTable(events, start, self) {
  return h("table", { class: "history", id: "history" },
    h("thead", null, h("tr", null, h("th", null, "#"), h("th", null, "Event"), h("th", null, "EventId"),
      h("th", null, "Time"), h("th", null, "Name"), h("th", { title: "TaskScheduledId" }, "Answers"),
      h("th", null, "Details"))),
    h("tbody", null, events.map((e, i) => {
      const t = Date.parse(e.Timestamp);
      const outcome = e.OrchestrationStatus
        ? " ev-status-" + String(e.OrchestrationStatus).replace(/[^A-Za-z]/g, "") : "";
      return h("tr", { class: "ev ev-" + String(e.EventType || "").replace(/[^A-Za-z]/g, "") + outcome },
        h("td", { class: "num" }, String(i)),
        h("td", null, e.EventType ?? ""),
        h("td", { class: "num" }, e.EventId === undefined || e.EventId === null || e.EventId < 0 ? "" : String(e.EventId)),
        h("td", { class: "time", title: e.Timestamp || "" }, fmtTime(e.Timestamp),
          Number.isFinite(t) && Number.isFinite(start)
            ? h("div", { class: "muted small" }, (t >= start ? "+" : "") + fmtDuration(t - start)) : null),
        h("td", null, e.Name ?? ""),
        h("td", { class: "num" }, e.TaskScheduledId === undefined || e.TaskScheduledId === null || e.TaskScheduledId < 0 ? "" : String(e.TaskScheduledId)),
        h("td", { class: "details" }, eventDetails(e, self)));
    })));
}

function instanceView(id) {
  let busy = false, again = false, disposed = false, lastText = "", gone = false, inst = null;

  const title = h("h2", { class: "instance-id" }, h("span", { class: "muted" }, "Instance "), h("span", { id: "instance-id" }, id));
  const summary = h("dl", { class: "summary", id: "summary" });
  const notice = h("p", { class: "error", id: "instance-error", role: "alert", hidden: true });
  const payloads = h("div", { class: "payloads", id: "payloads" });
  const failure = h("section", { class: "panel", id: "failure", hidden: true });
  const timelineBox = h("div", { class: "timeline-box", id: "timeline" });
  const historyBox = h("div", { class: "history-box" });
  const result = h("p", { class: "result", id: "action-result", role: "status", "aria-live": "polite" });

  // the actions: each asks first, then shows what the server answered
  const buttons = {};
  function button(key, label, cls, handler) {
    buttons[key] = h("button", { type: "button", id: "action-" + key, class: cls, onclick: handler }, label);
    return buttons[key];
  }
  async function act(label, dialog, call, after) {
    const answer = await confirmDialog(dialog);
    if (!answer) return;
    result.className = "result pending";
    replace(result, `${label}…`);
    try {
      const r = await call(answer);
      result.className = "result ok";
      replace(result, `${label}: done.`, after ? after(r) : null);
    } catch (e) {
      result.className = "result err";
      replace(result, `${label} failed: ${errorText(e)}`);
    }
    refresh();
  }
  const reasonField = [{ name: "reason", label: "Reason (optional)", type: "text" }];
  const actions = h("div", { class: "actions" },
    button("terminate", "Terminate…", "danger", () => act("Terminate", {
      title: "Terminate this instance?", message: `Instance ${id} ends as Terminated; its code runs no further.`,
      fields: reasonField, ok: "Terminate", danger: true,
    }, (a) => api.terminate(id, a.reason))),
    button("suspend", "Suspend…", "", () => act("Suspend", {
      title: "Suspend this instance?", message: `Instance ${id} pauses; events that arrive wait for the resume.`,
      fields: reasonField, ok: "Suspend",
    }, (a) => api.suspend(id, a.reason))),
    button("resume", "Resume…", "", () => act("Resume", {
      title: "Resume this instance?", message: `Instance ${id} continues.`, fields: reasonField, ok: "Resume",
    }, (a) => api.resume(id, a.reason))),
    button("rewind", "Rewind…", "", () => act("Rewind", {
      title: "Rewind this instance?", message: `Instance ${id} runs again from its last good point: its failed activities and sub-orchestrations run again, what succeeded is kept.`,
      fields: reasonField, ok: "Rewind",
    }, (a) => api.rewind(id, a.reason))),
    button("restart", "Restart…", "", () => act("Restart", {
      title: "Restart this instance?", message: `A new run of ${inst && inst.name ? inst.name : "the orchestration"} with the same input.`,
      fields: [{ name: "newId", label: "Under a new instance id (else the same id, once it has finished)", type: "checkbox", value: true }],
      ok: "Restart",
    }, (a) => api.restart(id, a.newId), (r) => {
      const d = r && r.data;
      const newId = d && typeof d === "object" ? (d.instanceId || d.id) : (typeof d === "string" ? d : null);
      if (!newId || newId === id) return null;
      return [" New instance: ", h("a", { href: instanceHref(newId), id: "restarted-link" }, newId)];
    })),
    button("purge", "Purge…", "danger", () => act("Purge", {
      title: "Purge this instance?", message: `Instance ${id} and its history are deleted for good.`,
      ok: "Purge", danger: true,
    }, () => api.purge(id), () => [" ", h("a", { href: "#/" }, "Back to the list")])));

  const eventName = h("input", { type: "text", id: "event-name", required: true, placeholder: "event name",
    autocomplete: "off", spellcheck: "false" });
  const eventData = h("textarea", { id: "event-data", rows: 3, spellcheck: "false", placeholder: "JSON, e.g. {\"approved\": true}" });
  eventData.value = "null";
  const eventError = h("p", { class: "error small", hidden: true });
  const raiseButton = h("button", { type: "submit", id: "action-raise" }, "Raise event…");
  const raiseForm = h("form", { class: "raise", id: "raise-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const name = eventName.value.trim();
    const text = eventData.value.trim() || "null";
    eventError.hidden = true;
    if (!name) {
      replace(eventError, "The event needs a name.");
      eventError.hidden = false;
      return;
    }
    try {
      JSON.parse(text);
    } catch (e) {
      replace(eventError, "The data is not JSON: " + e.message);
      eventError.hidden = false;
      return;
    }
    await act("Raise event", {
      title: "Raise this event?", message: `Event "${name}" with data ${text.length > 200 ? text.slice(0, 200) + "…" : text} goes to instance ${id}.`,
      ok: "Raise event",
    }, () => api.raiseEvent(id, name, text));
  } },
  h("label", null, "Event name", eventName), h("label", null, "Data (JSON)", eventData), raiseButton, eventError);

  replace(viewEl,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← Instances")),
    title, notice,
    h("section", { class: "panel" }, summary),
    h("section", { class: "panel" }, h("h2", null, "Actions"), actions,
      h("h3", null, "Raise an event"), raiseForm, result),
    failure,
    h("section", { class: "panel" }, payloads),
    h("section", { class: "panel" }, h("h2", null, "Timeline"), legend(), timelineBox),
    h("section", { class: "panel" }, h("h2", null, "History"), historyBox));
  document.title = `${id} — durabletask-c`;

  function setButtons(status) {
    const live = status && !TERMINAL.has(status);
    const set = (k, on, why) => {
      buttons[k].disabled = !on;
      buttons[k].title = on ? "" : why;
    };
    set("terminate", live, "It has already finished.");
    set("suspend", live && status !== "Suspended", "Only a running instance can be suspended.");
    set("resume", status === "Suspended", "Only a suspended instance can be resumed.");
    set("rewind", status === "Failed", "Only a failed instance can be rewound.");
    set("restart", !!status, "");
    set("purge", TERMINAL.has(status), "Only a finished instance can be purged.");
    raiseButton.disabled = !live;
    raiseButton.title = live ? "" : "It has already finished.";
  }

  function renderSummary(d) {
    const start = Date.parse(d.createdTime);
    const end = d.completedTime ? Date.parse(d.completedTime) : (TERMINAL.has(d.runtimeStatus) ? Date.parse(d.lastUpdatedTime) : Date.now());
    const row = (k, v, attrs) => [h("dt", null, k), h("dd", attrs, v)];
    replace(summary,
      row("Name", d.name ?? "", { id: "instance-name" }),
      row("Version", d.version || "—", { id: "instance-version" }),
      row("Status", badge(d.runtimeStatus), { id: "instance-status", "data-status": d.runtimeStatus || "" }),
      row("Created", fmtTime(d.createdTime), { title: d.createdTime || "" }),
      row("Last updated", fmtTime(d.lastUpdatedTime), { title: d.lastUpdatedTime || "" }),
      row("Completed", d.completedTime ? fmtTime(d.completedTime) : "—", { title: d.completedTime || "" }),
      row(TERMINAL.has(d.runtimeStatus) ? "Took" : "Running for",
        Number.isFinite(start) && Number.isFinite(end) ? fmtDuration(end - start) : "", null),
      d.parentInstanceId
        ? row("Parent", h("a", { href: instanceHref(d.parentInstanceId), id: "instance-parent" }, d.parentInstanceId), null)
        : []);
  }

  function renderTimelineNow() {
    if (!inst) return;
    const width = timelineBox.clientWidth || viewEl.clientWidth || 900;
    replace(timelineBox, renderTimeline(inst, width));
  }

  async function refresh() {
    if (disposed || gone) return;
    if (busy) {
      again = true;  // e.g. an action ended while a refresh was in flight: fetch once more
      return;
    }
    busy = true;
    try {
      let d;
      try {
        d = await api.getInstance(id);
      } catch (e) {
        if (disposed) return;
        if (e instanceof api.ApiError && e.status === 404) {
          gone = true;
          inst = null;
          replace(notice, `There is no instance ${id} (any more): ${e.message}`);
          notice.hidden = false;
          setButtons(null);
          buttons.restart.disabled = true;
          replace(summary);
          replace(payloads);
          replace(timelineBox);
          replace(historyBox);
          failure.hidden = true;
          return;
        }
        throw e;
      }
      if (disposed) return;
      notice.hidden = true;
      const text = JSON.stringify(d);
      const changed = text !== lastText;
      lastText = text;
      inst = d;
      if (changed) {
        renderSummary(d);
        setButtons(d.runtimeStatus);
        replace(payloads,
          payloadBlock("Input", d.input, "instance-input"),
          payloadBlock("Output", d.output, "instance-output"),
          payloadBlock("Custom status", d.customStatus, "instance-custom-status"));
        failure.hidden = !d.failureDetails;
        replace(failure, d.failureDetails ? [h("h2", null, "Failure"), failureBlock(d.failureDetails)] : []);
        const events = Array.isArray(d.historyEvents) ? d.historyEvents : [];
        // offsets count from the start, as the timeline's axis does
        const started = events.find((e) => e.EventType === "ExecutionStarted");
        const start = Date.parse(started ? started.Timestamp : d.createdTime);
        replace(historyBox, events.length ? historyTable(events, start, id)
          : h("p", { class: "muted" }, "No history yet."));
        renderTimelineNow();
      } else if (!TERMINAL.has(d.runtimeStatus)) {
        renderSummary(d);      // "running for" and the open bars grow with the clock
        renderTimelineNow();
      }
      stamp();
    } catch (e) {
      if (disposed) return;
      replace(notice, errorText(e));
      notice.hidden = false;
    } finally {
      busy = false;
      if (again && !disposed) {
        again = false;
        refresh();
      }
    }
  }

  const onResize = () => renderTimelineNow();
  window.addEventListener("resize", onResize);
  return { refresh, dispose() { disposed = true; window.removeEventListener("resize", onResize); } };
}

// ---- routing and the refresh loop ----------------------------------------------------------

function stamp() {
  replace(refreshState, live ? `updated ${new Date().toLocaleTimeString()}` : "paused");
}

function route() {
  api.takeTokenFromFragment();
  if (current) current.dispose();
  const hash = location.hash || "#/";
  const m = hash.match(/^#\/(instance|entity)\/(.+)$/);
  let id = m ? m[2] : "";
  try {
    id = decodeURIComponent(id);
  } catch { /* shown as written */ }
  const ui = { stamp, errorText, live: () => live };
  if (m && m[1] === "instance") current = instanceView(id);
  else if (m) current = entityView(viewEl, ui, id);
  else if (hash === "#/entities") current = entitiesView(viewEl, ui);
  else {
    readListHash(hash);
    current = listView();
  }
  for (const a of document.querySelectorAll("header nav a"))
    a.classList.toggle("current", a.dataset.view === (m ? m[1] + "s" : hash === "#/entities" ? "entities" : "instances"));
  current.refresh();
}

function setLive(on) {
  live = on;
  liveButton.setAttribute("aria-pressed", on ? "true" : "false");
  replace(liveButton, on ? "Pause live refresh" : "Resume live refresh");
  document.body.classList.toggle("paused", !on);
  if (on && current) current.refresh();
  stamp();
}

liveButton.addEventListener("click", () => setLive(!live));
const zoneButton = document.getElementById("zone-toggle");
function showZone() {
  zoneButton.setAttribute("aria-pressed", isUtc() ? "true" : "false");
  replace(zoneButton, isUtc() ? "Times: UTC" : "Times: local");
}
zoneButton.addEventListener("click", () => {
  setUtc(!isUtc());
  showZone();
  route();   /* every time on the page drawn again */
});
showZone();
tokenButton.addEventListener("click", async () => {
  if (api.hasToken()) {
    api.forgetToken();
    updateTokenButton();
  } else {
    if (await askToken("")) current?.refresh(true);
  }
});

// fillHubs: the picker's choices, the server's task hubs (and the one chosen, if it is new).
async function fillHubs() {
  let names = [];
  try {
    names = await api.listTaskHubs();
  } catch { /* an older server, or no token yet: the default hub only */ }
  const chosen = api.getTaskHub() || "default";
  if (!names.includes(chosen)) names.push(chosen);
  if (!names.includes("default")) names.unshift("default");
  replace(hubPicker, names.map((n) => h("option", { value: n }, n)));
  hubPicker.value = chosen;
}

hubPicker.addEventListener("change", () => {
  api.setTaskHub(hubPicker.value === "default" ? "" : hubPicker.value);
  listState.tokens = [null];   // another hub: its own pages
  listState.page = 0;
  resetEntityPaging();
  // a list stays (now of the other hub); one instance or entity is the old hub's: back to its list
  const hash = location.hash || "#/";
  const list = hash.startsWith("#/entit") ? "#/entities" : "#/";
  if (hash !== list && !(list === "#/" && (hash === "" || hash.startsWith("#/?")))) location.hash = list;
  else route();
});
hubPicker.addEventListener("focus", fillHubs);

// showNodes: which node serves this page and how many are alive on its database (many nodes
// share one PostgreSQL database; on SQLite it is this one alone), each named in the tooltip.
const nodeState = document.getElementById("node-state");
async function showNodes() {
  try {
    const r = await api.getNodes();
    const alive = Array.isArray(r.nodes) ? r.nodes : [];
    nodeState.textContent = `node ${r.node} · ${alive.length} ${alive.length === 1 ? "node" : "nodes"} alive`;
    nodeState.title = "Nodes alive on this database:\n" + alive.map((n) => `${n.node} (since ${n.startedAt})`).join("\n");
  } catch {
    nodeState.textContent = "";
  }
}

api.setTokenAsker(askToken);
api.takeTokenFromFragment();
updateTokenButton();
fillHubs();
showNodes();
setInterval(() => { if (!document.hidden) showNodes(); }, 10000);
window.addEventListener("hashchange", route);
setInterval(() => {
  if (live && current && !document.hidden && !dialogOpen()) current.refresh();
}, REFRESH_MS);
route();
