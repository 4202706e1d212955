"use strict";
// helpers.js — what the HTTP specs share: the server's address (BASE_URL, set by run.sh),
// fetch wrappers for the API, unique ids, and polling for an instance to finish.

const assert = require("node:assert/strict");
const crypto = require("node:crypto");

const BASE = process.env.BASE_URL || "http://127.0.0.1:4000";
const API = `${BASE}/runtime/webhooks/durabletask`;
const TEST_TIMEOUT_MS = 60_000;

// uid: a fresh id with PREFIX, so specs never see each other's instances.
function uid(prefix) {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

// call: fetch PATH (under the API unless it starts with "/" or "http") with BODY (a string is
// sent as it is, anything else as JSON); returns
// {status, headers, text, json} (json undefined when the body is not JSON).
async function call(method, path, { body, headers, query } = {}) {
  let url = path.startsWith("http") ? path : path.startsWith("/") ? BASE + path : `${API}/${path}`;
  if (query) url += "?" + new URLSearchParams(query).toString();
  const init = { method, headers: { ...(headers || {}) } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// assertError: RES is an error answer with STATUS and CODE whose message mentions every one
// of MENTIONS.
function assertError(res, status, code, ...mentions) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json && res.json.error, `no JSON error body: ${res.text}`);
  assert.equal(res.json.error.code, code);
  assert.equal(typeof res.json.error.message, "string");
  for (const m of mentions) assert.ok(res.json.error.message.includes(m), `"${res.json.error.message}" does not mention "${m}"`);
}

// start: POST orchestrators/NAME[/ID] with INPUT as JSON (undefined: no body); asserts 202.
async function start(name, id, input) {
  const path = id ? `orchestrators/${encodeURIComponent(name)}/${encodeURIComponent(id)}` : `orchestrators/${encodeURIComponent(name)}`;
  const res = await call("POST", path, { body: input === undefined ? undefined : JSON.stringify(input) });
  assert.equal(res.status, 202, `start ${name} ${id}: ${res.status} ${res.text}`);
  return res.json.id;
}

function statusPath(id) {
  return `instances/${encodeURIComponent(id)}`;
}

// waitFor: poll the status of ID until PRED(status JSON) holds (default: finished, HTTP 200).
async function waitFor(id, pred, { timeoutMs = 20_000, query } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await call("GET", statusPath(id), { query });
    if (last.status !== 404 && (pred ? pred(last.json, last) : last.status === 200)) return last;
    if (Date.now() > deadline) assert.fail(`instance ${id} did not get there in ${timeoutMs} ms; last: ${last.status} ${last.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// waitStatus: poll until the runtime status of ID is STATUS.
function waitStatus(id, status) {
  return waitFor(id, (s) => s && s.runtimeStatus === status);
}

// listAll: every page of GET instances with QUERY, following x-ms-continuation-token.
async function listAll(query) {
  const items = [];
  let token = null;
  let pages = 0;
  for (;;) {
    const res = await call("GET", "instances", { query, headers: token ? { "x-ms-continuation-token": token } : {} });
    assert.equal(res.status, 200, res.text);
    items.push(...res.json);
    pages++;
    token = res.headers.get("x-ms-continuation-token");
    if (!token) return { items, pages };
    assert.ok(pages < 1000, "paging does not end");
  }
}

const HELLO_OUTPUT = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"];

// privateServer: a `dtask serve` of a spec's own (a fresh database in DIR, or a temporary
// one, so what the spec does touches no other spec's instances) with the demo's C worker
// (unless WORKER is false: then startWorker() starts it), and ARGS; {url, port,
// startWorker(), workerLog() (what the worker wrote to stderr), stop()}. Needs DTASK (run.sh
// sets it).
async function privateServer(args = [], dir = undefined, { worker: withWorker = true } = {}) {
  const { spawn } = require("node:child_process");
  const net = require("node:net");
  const fs = require("node:fs");
  const os = require("node:os");
  const path = require("node:path");
  const freePort = () => new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const port = await freePort(), grpcPort = await freePort();
  const own = dir === undefined;
  if (own) dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-private-"));
  const child = spawn(process.env.DTASK, ["serve", "--grpc-listen", `127.0.0.1:${grpcPort}`, "--http-listen", `127.0.0.1:${port}`,
    "--db", path.join(dir, "d.db"), "--no-http-activity", "--log-level", "error", ...args], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 150; i++) {
    try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  // the demo's C functions (hello_one), so instances finish; once the server listens (a first
  // call to a server not there yet waits out its 5 s deadline)
  let worker, workerLog = "";
  const startWorker = () => {
    worker = spawn(process.env.DTASK, ["worker", "--server", `127.0.0.1:${grpcPort}`], { stdio: ["ignore", "ignore", "pipe"] });
    worker.stderr.on("data", (d) => { if (workerLog.length < 65536) workerLog += d; });
  };
  if (withWorker) startWorker();
  return {
    url,
    port,
    startWorker,
    workerLog: () => workerLog,
    stop: () => new Promise((resolve) => {
      if (worker) worker.kill("SIGTERM");
      child.once("exit", () => { if (own) fs.rmSync(dir, { recursive: true, force: true }); resolve(); });
      child.kill("SIGTERM");
    }),
  };
}


module.exports = {
  BASE, API, TEST_TIMEOUT_MS, uid, call, assertError, start, statusPath, waitFor, waitStatus, listAll, HELLO_OUTPUT,
  privateServer,
};
