// entities.js — the dashboard's two entity views: the list (#/entities: id, a preview of the
// state, the orchestration holding the lock, the messages waiting, last modified; searched by
// id prefix, paged) and one entity (#/entity/@name@key: the same and its whole state). Built
// like app.js's instance views: controls once, data redrawn on each refresh, text only.

import * as api from "./api.js";
import { h, replace, entityHref, instanceHref, fmtTime, fmtJson, pausable } from "./dom.js";

const PAGE_SIZE = 20;
const PREVIEW_CHARS = 80;

// kept across visits, like the instance list's filters
const listState = { text: "", transient: true, tokens: [null], page: 0, next: null };

export function resetEntityPaging() {
  listState.tokens = [null];
  listState.page = 0;
}

function preview(e) {
  if (!("state" in e) || e.state === null || e.state === undefined) return h("span", { class: "muted" }, "(no state)");
  const text = JSON.stringify(e.state);
  return text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS) + "…" : text;
}

const idOf = (e) => `@${e.entityId.name}@${e.entityId.key}`;

// entitiesView: the list in VIEW_EL. UI: {stamp(), errorText(e)} from the app.
export function entitiesView(viewEl, ui) {
  let disposed = false, lastRows = "";
  let debounce = null;
  const search = h("input", { type: "search", id: "entity-search", value: listState.text,
    placeholder: "Entity id prefix: counter, @counter@a…", autocomplete: "off", spellcheck: "false",
    oninput: (ev) => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        listState.text = ev.target.value.trim();
        resetPaging();
      }, 300);
    } });
  const transient = h("label", { class: "chip", title: "Entities without state that hold a lock or have messages waiting" },
    h("input", { type: "checkbox", id: "entity-transient", checked: listState.transient, onchange: (ev) => {
      listState.transient = ev.target.checked;
      resetPaging();
    } }), " Include entities without state");
  const tbody = h("tbody", { id: "entities-body" });
  const table = h("table", { class: "instances entities", id: "entities" },
    h("thead", null, h("tr", null, h("th", null, "Entity id"), h("th", null, "State"),
      h("th", null, "Locked by"), h("th", null, "Backlog"), h("th", null, "Last modified"))),
    tbody);
  const prev = h("button", { type: "button", id: "entities-prev", onclick: () => {
    if (listState.page > 0) { listState.page--; refresh(true); }
  } }, "← Previous");
  const next = h("button", { type: "button", id: "entities-next", onclick: () => {
    if (listState.next) {
      listState.tokens[listState.page + 1] = listState.next;
      listState.tokens.length = listState.page + 2;
      listState.page++;
      refresh(true);
    }
  } }, "Next →");
  const pageLabel = h("span", { class: "muted", id: "entities-page" });
  const message = h("p", { class: "error", id: "entities-error", role: "alert", hidden: true });

  replace(viewEl, h("section", { class: "panel" },
    h("h2", null, "Entities"),
    h("form", { class: "filters", onsubmit: (ev) => {
      ev.preventDefault();
      clearTimeout(debounce);
      listState.text = search.value.trim();
      resetPaging();
    } }, h("div", { class: "search" }, search, h("button", { type: "submit" }, "Search")), transient),
    message, table, h("div", { class: "pager" }, prev, pageLabel, next)));
  document.title = "Entities — durabletask-c";

  function resetPaging() {
    resetEntityPaging();
    listState.next = null;
    refresh(true);
  }

  function renderRows(items) {
    const key = JSON.stringify(items);
    if (key === lastRows) return;
    lastRows = key;
    if (!items.length) {
      replace(tbody, h("tr", null, h("td", { colspan: 5, class: "muted empty" },
        listState.page > 0 ? "No more entities." : "No entities match.")));
      return;
    }
    replace(tbody, items.map((e) => h("tr", { "data-entity-id": idOf(e) },
      h("td", { class: "id" }, h("a", { href: entityHref(e.entityId.name, e.entityId.key) }, idOf(e))),
      h("td", { class: "mono state-preview" }, preview(e)),
      h("td", { class: "id locked-by" }, e.lockedBy ? h("a", { href: instanceHref(e.lockedBy) }, e.lockedBy) : "—"),
      h("td", { class: "num backlog" }, String(e.backlogQueueSize ?? 0)),
      h("td", { class: "time", title: e.lastOperationTime || "" }, fmtTime(e.lastOperationTime)))));
  }

  const wanted = () => ({ prefix: listState.text, transient: listState.transient, top: PAGE_SIZE,
    continuation: listState.tokens[listState.page] });

  const refresh = pausable(async (keep) => {
    try {
      const want = wanted();
      const page = await api.listEntities(want);
      if (disposed || !keep() || JSON.stringify(want) !== JSON.stringify(wanted())) return;
      renderRows(page.items);
      listState.next = page.next;
      prev.disabled = listState.page === 0;
      next.disabled = !page.next;
      replace(pageLabel, `Page ${listState.page + 1}`);
      message.hidden = true;
      ui.stamp();
    } catch (e) {
      if (disposed || !keep()) return;
      replace(message, ui.errorText(e));
      message.hidden = false;
    }
  }, () => disposed, ui.live);

  return { refresh, dispose() { disposed = true; clearTimeout(debounce); } };
}

// entityView: entity ID ("@name@key") in VIEW_EL: its metadata and whole state.
export function entityView(viewEl, ui, id) {
  let busy = false, disposed = false, lastText = "";
  const parts = api.splitEntityId(id);
  const summary = h("dl", { class: "summary", id: "entity-summary" });
  const notice = h("p", { class: "error", id: "entity-error", role: "alert", hidden: true });
  const state = h("pre", { class: "payload", id: "entity-state" });
  replace(viewEl,
    h("p", null, h("a", { href: "#/entities" }, "← Entities")),
    h("section", { class: "panel" },
      h("h2", { class: "instance-id" }, h("span", { class: "muted" }, "Entity "), h("span", { id: "entity-id" }, id)),
      notice, summary),
    h("section", { class: "panel" }, h("h3", null, "State"), state));
  document.title = `${id} — durabletask-c`;

  async function refresh() {
    if (disposed || busy) return;
    if (!parts) {
      replace(notice, `'${id}' is not an entity id (@name@key).`);
      notice.hidden = false;
      return;
    }
    busy = true;
    try {
      const d = await api.getEntity(parts.name, parts.key);
      if (disposed) return;
      const text = JSON.stringify(d);
      if (text !== lastText) {
        lastText = text;
        const row = (k, v, attrs) => [h("dt", null, k), h("dd", attrs, v)];
        replace(summary,
          row("Name", d.entityId.name, { id: "entity-name" }),
          row("Key", d.entityId.key, { id: "entity-key" }),
          row("Locked by", d.lockedBy ? h("a", { href: instanceHref(d.lockedBy) }, d.lockedBy) : "—", { id: "entity-locked-by" }),
          row("Backlog", String(d.backlogQueueSize ?? 0), { id: "entity-backlog" }),
          row("Last modified", fmtTime(d.lastOperationTime), { title: d.lastOperationTime || "" }));
        replace(state, fmtJson(d.state));
      }
      notice.hidden = true;
      ui.stamp();
    } catch (e) {
      if (disposed) return;
      lastText = "";
      replace(summary);
      replace(state);
      replace(notice, e.status === 404 ? `Entity ${id} has no state (it may have messages waiting: see the list).` : ui.errorText(e));
      notice.hidden = false;
    } finally {
      busy = false;
    }
  }

  return { refresh, dispose() { disposed = true; } };
}
