"use strict";
// Browser safety of the HTTP API in its default, token-less mode: a web page elsewhere cannot
// change state (its Origin is refused), a page reached by another name (DNS rebinding) cannot
// use the API at all (its Host is refused), and one request cannot purge every finished
// instance by accident. Requests without an Origin (curl, scripts, the SDKs) are unaffected.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const h = require("./helpers");

const base = new URL(process.env.BASE_URL || "http://127.0.0.1:4000");

// raw: a request with the headers given as they are (fetch does not let a test set Host)
function raw(method, path, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, text, json });
      });
    });
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

const API = "/runtime/webhooks/durabletask";

test("a state change from a web page elsewhere is refused; from the dashboard's own origin it goes", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = h.uid("csrf");
  const forged = await raw("POST", `${API}/orchestrators/hello_one/${id}`,
    { Origin: "http://evil.example", "content-type": "application/json" }, '"x"');
  assert.equal(forged.status, 403, forged.text);
  assert.equal(forged.json.error.code, "Forbidden");
  assert.match(forged.json.error.message, /evil\.example/);
  assert.equal((await h.call("GET", h.statusPath(id))).status, 404, "the forged start was stored");
  // an opaque origin (a sandboxed frame, a file) is refused too
  assert.equal((await raw("POST", `${API}/orchestrators/hello_one/${id}`, { Origin: "null" }, '"x"')).status, 403);
  // reading is not a state change: a cross-site GET is not refused (the browser hides the answer)
  assert.equal((await raw("GET", `${API}/instances?top=1`, { Origin: "http://evil.example" })).status, 200);
  // the dashboard's own origin, and no Origin at all (curl, scripts)
  const own = await raw("POST", `${API}/orchestrators/hello_one/${id}`,
    { Origin: `http://${base.host}`, "content-type": "application/json" }, '"x"');
  assert.equal(own.status, 202, own.text);
  await h.waitFor(id);
  const purge = await raw("DELETE", `${API}/instances/${id}`, { Origin: "https://evil.example" });
  assert.equal(purge.status, 403, purge.text);
  assert.equal((await h.call("GET", h.statusPath(id))).status, 200, "the forged purge deleted it");
  assert.equal((await h.call("DELETE", h.statusPath(id))).status, 200);
});

test("a Host that is not a name of this server is refused (DNS rebinding)", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  for (const host of [`rebind.example:${base.port}`, "attacker.test", `LOCALHOST.evil:${base.port}`]) {
    const res = await raw("GET", `${API}/instances?top=1`, { Host: host });
    assert.equal(res.status, 421, `${host}: ${res.text}`);
    assert.equal(res.json.error.code, "MisdirectedRequest");
    assert.ok(res.json.error.message.includes(host), res.json.error.message);
    assert.match(res.json.error.message, /--public-host/);
  }
  // the dashboard's files too: a rebound page must not even load it
  assert.equal((await raw("GET", "/", { Host: "rebind.example" })).status, 421);
  for (const host of [`127.0.0.1:${base.port}`, `localhost:${base.port}`, "localhost", `[::1]:${base.port}`])
    assert.equal((await raw("GET", `${API}/instances?top=1`, { Host: host })).status, 200, host);
});

test("--public-host names the server may be reached by; a purge needs a filter or all=true", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  assert.ok(process.env.DTASK, "DTASK is not set: run the specs through tests/http/run.sh");
  const srv = await h.privateServer(["--public-host", "Dtask.Example,ops.example"]);
  try {
    const get = (host) => new Promise((resolve, reject) => {
      http.get({ host: "127.0.0.1", port: srv.port, path: `${API}/instances?top=1`, headers: { Host: host } },
        (res) => { res.resume(); resolve(res.statusCode); }).on("error", reject);
    });
    assert.equal(await get(`dtask.example:${srv.port}`), 200);
    assert.equal(await get("ops.example"), 200);
    assert.equal(await get("other.example"), 421);
    // two finished instances
    const ids = [h.uid("pa"), h.uid("pb")];
    for (const id of ids) {
      const r = await fetch(`${srv.url}${API}/orchestrators/hello_one/${id}`, { method: "POST", body: '"x"',
        headers: { "content-type": "application/json" } });
      assert.equal(r.status, 202);
    }
    for (const id of ids) {
      let st;
      for (let i = 0; i < 300; i++) {
        st = await (await fetch(`${srv.url}${API}/instances/${id}`)).json();
        if (st.runtimeStatus === "Completed") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(st.runtimeStatus, "Completed");
    }
    const refused = await fetch(`${srv.url}${API}/instances`, { method: "DELETE" });
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).error.message, /all=true/);
    assert.equal((await fetch(`${srv.url}${API}/instances/${ids[0]}`)).status, 200, "the refused purge deleted");
    const all = await fetch(`${srv.url}${API}/instances?all=true`, { method: "DELETE" });
    assert.equal(all.status, 200);
    assert.equal((await all.json()).instancesDeleted, 2);
    for (const id of ids) assert.equal((await fetch(`${srv.url}${API}/instances/${id}`)).status, 404);
  } finally {
    await srv.stop();
  }
});
