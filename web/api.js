// api.js — the dashboard's calls to the HTTP API (/runtime/webhooks/durabletask/...). Keeps the
// bearer token: taken from the URL fragment (#token=…) or asked for when the server answers 401,
// held in sessionStorage (this tab only), and sent on every request.

export const BASE = "/runtime/webhooks/durabletask";
const TOKEN_KEY = "dtask.token";

// ApiError: a failed call. code and message come from the server's {"error":{code,message}}
// when it sent one, else from the HTTP status.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() {
    return this.code ? `${this.code}: ${this.message}` : this.message;
  }
}

// takeTokenFromFragment: move a "token=…" out of location.hash into sessionStorage, so it
// neither shows in the address bar nor confuses the router. Call once at start-up.
export function takeTokenFromFragment() {
  const hash = location.hash;
  const m = hash.match(/(^#|[?&])token=([^&]*)/);
  if (!m) return;
  let tok = m[2];
  try {
    tok = decodeURIComponent(tok);
  } catch { /* keep it as written */ }
  if (tok) sessionStorage.setItem(TOKEN_KEY, tok);
  let rest = hash.slice(0, m.index) + (m[1] === "#" ? "#" : "") + hash.slice(m.index + m[0].length);
  rest = rest.replace(/[?&]$/, "").replace(/^#&/, "#");
  if (rest === "#" || rest === "") rest = "#/";
  history.replaceState(null, "", location.pathname + location.search + rest);
}

export function hasToken() {
  return !!sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(tok) {
  sessionStorage.setItem(TOKEN_KEY, tok);
  declined = false;
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// askToken is set by the app: a function returning a promise of the token the user typed, or
// null if they cancelled. One question at a time, however many requests got a 401; once the
// user has cancelled, no more questions (the live refresh would ask every 2 s) until a token
// is set by hand.
let asker = null;
let pendingAsk = null;
let declined = false;
export function setTokenAsker(fn) {
  asker = fn;
}
function askToken(why) {
  if (!asker || declined) return Promise.resolve(null);
  if (!pendingAsk) {
    pendingAsk = asker(why).then((tok) => {
      if (tok === null) declined = true;
      return tok;
    }).finally(() => { pendingAsk = null; });
  }
  return pendingAsk;
}

async function errorOf(res) {
  let code = "", message = `HTTP ${res.status} ${res.statusText}`.trim();
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error) {
        code = body.error.code ? String(body.error.code) : "";
        if (body.error.message) message = String(body.error.message);
      }
    } catch {
      if (text) message += ": " + text.slice(0, 300);
    }
  } catch { /* no body */ }
  return new ApiError(res.status, code, message);
}

// The task hub every call acts on (the API's taskHub parameter); "" is the server's default.
// Kept for the tab, so a reload stays on the same hub.
const HUB_KEY = "dtask-taskhub";
let taskHub = sessionStorage.getItem(HUB_KEY) || "";
export function getTaskHub() {
  return taskHub;
}
export function setTaskHub(name) {
  taskHub = name || "";
  if (taskHub) sessionStorage.setItem(HUB_KEY, taskHub);
  else sessionStorage.removeItem(HUB_KEY);
}
function withHub(path) {
  if (!taskHub) return path;
  return path + (path.includes("?") ? "&" : "?") + "taskHub=" + encodeURIComponent(taskHub);
}

// request: METHOD PATH (under BASE, already encoded; with ROOT, from the server's root) with
// an optional JSON BODY (a string of JSON text, sent as is) and EXTRA request headers, on the
// chosen task hub. Resolves to {data, headers, status}; data is the parsed JSON answer or
// null. Rejects with ApiError. On 401 it asks for a token once and tries again.
export async function request(method, path, body, extra, root = false) {
  for (let attempt = 0; ; attempt++) {
    const headers = { ...extra };
    const tok = sessionStorage.getItem(TOKEN_KEY);
    if (tok) headers["Authorization"] = "Bearer " + tok;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch((root ? "" : BASE) + withHub(path), { method, headers, body, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "NetworkError", "cannot reach the server: " + e.message);
    }
    if (res.status === 401 && attempt === 0) {
      const err = await errorOf(res);
      const typed = await askToken(tok ? "The token was refused: " + err.message : err.message);
      if (typed === null) {
        err.message += ' (use "Set token" at the top right)';
        throw err;
      }
      sessionStorage.setItem(TOKEN_KEY, typed);
      continue;
    }
    if (!res.ok) throw await errorOf(res);
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    return { data, headers: res.headers, status: res.status };
  }
}

const enc = encodeURIComponent;

// listInstances: one page. Resolves to {items, next} (next: the continuation token or null).
export async function listInstances({ statuses, idPrefix, name, version, top, continuation }) {
  const q = new URLSearchParams();
  if (statuses && statuses.length) q.set("runtimeStatus", statuses.join(","));
  if (idPrefix) q.set("instanceIdPrefix", idPrefix);
  if (name) q.set("name", name);
  if (version) q.set("version", version);
  q.set("top", String(top));
  q.set("showInput", "false");
  const path = "/instances?" + q.toString();
  // the continuation token goes in a header, as in the Durable Functions API
  const headers = {};
  if (continuation) headers["x-ms-continuation-token"] = continuation;
  const r = await request("GET", path, undefined, headers);
  const next = r.headers.get("x-ms-continuation-token");
  return { items: Array.isArray(r.data) ? r.data : [], next: next || null };
}

// listTaskHubs: the names of the server's task hubs.
export function listTaskHubs() {
  return request("GET", "/taskhubs", undefined, undefined, true).then((r) => (Array.isArray(r.data) ? r.data : []));
}

// getNodes: this node and the nodes alive on the hub's database: {node, nodes: [{node, startedAt, lastSeen}]}.
export function getNodes() {
  return request("GET", "/nodes", undefined, undefined, true).then((r) => r.data || { node: "", nodes: [] });
}

export function getCounts() {
  return request("GET", "/counts").then((r) => r.data || {});
}

export function getInstance(id) {
  return request("GET", `/instances/${enc(id)}?showHistory=true&showHistoryOutput=true`)
    .then((r) => r.data);
}

export function raiseEvent(id, name, jsonText) {
  return request("POST", `/instances/${enc(id)}/raiseEvent/${enc(name)}`, jsonText);
}

export function terminate(id, reason) {
  return request("POST", `/instances/${enc(id)}/terminate?reason=${enc(reason || "")}`);
}

export function suspend(id, reason) {
  return request("POST", `/instances/${enc(id)}/suspend?reason=${enc(reason || "")}`);
}

export function resume(id, reason) {
  return request("POST", `/instances/${enc(id)}/resume?reason=${enc(reason || "")}`);
}

export function rewind(id, reason) {
  return request("POST", `/instances/${enc(id)}/rewind?reason=${enc(reason || "")}`);
}

export function restart(id, newInstanceId) {
  return request("POST", `/instances/${enc(id)}/restart?newInstanceId=${newInstanceId ? "true" : "false"}`);
}

export function purge(id) {
  return request("DELETE", `/instances/${enc(id)}`);
}

// ---- entities ----------------------------------------------------------------------------------

// splitEntityId: "@name@key" as {name, key} (null when it is not an entity id).
export function splitEntityId(id) {
  const at = typeof id === "string" && id.startsWith("@") ? id.indexOf("@", 1) : -1;
  return at > 1 ? { name: id.slice(1, at), key: id.slice(at + 1) } : null;
}

// listEntities: one page of entities (with their state) whose id starts with PREFIX (its
// leading "@" optional); TRANSIENT adds those without state that hold a lock or have messages
// waiting. Resolves to {items, next}.
export async function listEntities({ prefix, transient, top, continuation }) {
  const q = new URLSearchParams({ fetchState: "true", top: String(top) });
  if (prefix) q.set("entityIdPrefix", prefix);
  if (transient) q.set("includeTransient", "true");
  const headers = {};
  if (continuation) headers["x-ms-continuation-token"] = continuation;
  const r = await request("GET", "/entities?" + q.toString(), undefined, headers);
  const next = r.headers.get("x-ms-continuation-token");
  return { items: Array.isArray(r.data) ? r.data : [], next: next || null };
}

// getEntity: entity NAME/KEY with its metadata and state (rejects with a 404 while it has none).
export function getEntity(name, key) {
  return request("GET", `/entities/${enc(name)}/${enc(key)}?showMetadata=true`).then((r) => r.data);
}
