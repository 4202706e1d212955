// dom.js — the only way the dashboard builds elements. Every string becomes a text node or an
// attribute value (setAttribute), never markup: instance ids, names, payloads and error messages
// come from whoever started an instance, so nothing here parses HTML. Do not add innerHTML.

const SVG_NS = "http://www.w3.org/2000/svg";

// append: add CHILDREN (nodes, strings, numbers, arrays of them; null/false skipped) to NODE.
function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
  return node;
}

// setAttrs: "on…" keys take functions (listeners), "class" a string, everything else goes
// through setAttribute as text; a value of null/undefined/false leaves the attribute out.
function setAttrs(node, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) {
      if (typeof v !== "function") throw new TypeError(`listener ${k} must be a function`);
      node.addEventListener(k.slice(2), v);
    } else if (k === "checked" || k === "disabled" || k === "value") {
      node[k] = v; // properties, so that re-rendering reflects the current state
    } else {
      node.setAttribute(k, v === true ? "" : String(v));
    }
  }
}

// h: an HTML element TAG with ATTRS and CHILDREN (text is text, whatever it contains).
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  return append(node, children);
}

// s: the same for SVG elements.
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  return append(node, children);
}

// replace: make CHILDREN the only content of NODE.
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

// instanceHref: the dashboard's link to instance ID (the id is percent-encoded, so it cannot
// leave the fragment or change the route).
export function instanceHref(id) {
  return "#/instance/" + encodeURIComponent(id);
}

// entityHref: the dashboard's link to the entity @NAME@KEY, encoded as instanceHref's.
export function entityHref(name, key) {
  return "#/entity/" + encodeURIComponent(`@${name}@${key}`);
}

// Times show in the browser's zone, or in UTC: the choice is kept in localStorage.
let utc = (() => {
  try { return localStorage.getItem("dtask.utc") === "1"; } catch { return false; }
})();
export function isUtc() { return utc; }
export function setUtc(on) {
  utc = !!on;
  try { localStorage.setItem("dtask.utc", utc ? "1" : "0"); } catch { /* private mode */ }
}

// fmtTime: an ISO timestamp as "YYYY-MM-DD HH:MM:SS.mmm" and its zone: the browser's local
// time with its offset ("+01:00"), or UTC ("UTC"); "" for none.
export function fmtTime(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const d = new Date(t);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  if (utc)
    return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
      `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.` +
      `${p(d.getUTCMilliseconds(), 3)} UTC`;
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? "-" : "+"}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)} ${zone}`;
}

// fmtDuration: milliseconds as "850 ms", "1.25 s", "3 min 4 s", "2 h 5 min", "3 d 4 h".
export function fmtDuration(ms) {
  if (!Number.isFinite(ms)) return "";
  const neg = ms < 0;
  ms = Math.abs(ms);
  let out;
  if (ms < 1000) out = `${Math.round(ms)} ms`;
  else if (ms < 60e3) out = `${+(ms / 1000).toFixed(ms < 10e3 ? 2 : 1)} s`;
  else if (ms < 3600e3) out = `${Math.floor(ms / 60e3)} min ${Math.round((ms % 60e3) / 1000)} s`;
  else if (ms < 86400e3) out = `${Math.floor(ms / 3600e3)} h ${Math.round((ms % 3600e3) / 60e3)} min`;
  else out = `${Math.floor(ms / 86400e3)} d ${Math.round((ms % 86400e3) / 3600e3)} h`;
  return neg ? "-" + out : out;
}

// fmtJson: a JSON value as indented text (undefined shows as nothing).
export function fmtJson(v) {
  if (v === undefined) return "";
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}

// coalesced: LOAD (an async function) wrapped so that calls made while one runs collapse into
// one more run after it, and none runs once STOPPED() says so. For views that refresh on a
// timer and on every filter change.
export function coalesced(load, stopped) {
  let busy = false, again = false;
  return async function run() {
    if (stopped()) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      await load();
    } finally {
      busy = false;
      if (again && !stopped()) {
        again = false;
        run();
      }
    }
  };
}

// pausable: coalesced(LOAD, STOPPED) for a list refreshed on a timer. refresh(true) is the
// user's (filters, paging, a token; the view's first load too) and is drawn whatever;
// refresh() is the timer's, whose answer is dropped if live refresh was paused meanwhile
// (LIVE() false), so a paused list does not change. LOAD(keep) draws only when keep().
export function pausable(load, stopped, live) {
  let asked = true;
  const run = coalesced(() => {
    const mine = asked;
    asked = false;
    return load(() => mine || live());
  }, stopped);
  return (force) => {
    if (force) asked = true;
    return run();
  };
}
