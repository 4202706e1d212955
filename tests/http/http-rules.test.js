"use strict";
// The server's own rules: body limits (413, while receiving), unknown paths and methods,
// health, the dashboard's files, and /metrics.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

const LIMIT = 1 << 20;    // dt_http_options.max_body's default

test("a body over the limit is 413; a body at the limit is accepted", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const over = JSON.stringify("x".repeat(LIMIT));    // LIMIT + 2 bytes
  h.assertError(await h.call("POST", `orchestrators/hello_cities/${h.uid("big")}`, { body: over }), 413, "PayloadTooLarge", String(LIMIT));
  h.assertError(await h.call("POST", `instances/${h.uid("big")}/raiseEvent/e`, { body: over }), 413, "PayloadTooLarge");

  const at = JSON.stringify("y".repeat(LIMIT - 2));    // exactly LIMIT bytes
  const id = h.uid("atlimit");
  const ok = await h.call("POST", `orchestrators/hello_cities/${id}`, { body: at });
  assert.equal(ok.status, 202, ok.text.slice(0, 200));
  await h.waitFor(id);
});

// What reading bodies' JSON holds at once (jansson's trees, up to fifty and more times the
// text) is bounded by --max-held-mb for the whole server: past it, 503 naming the bound, and
// nothing stored; one body alone is always read.
test("JSON read at once past --max-held-mb is 503, naming it; one alone is taken", { timeout: 60_000 }, async () => {
  const srv = await h.privateServer(["--max-held-mb", "8"]);
  const api = `${srv.url}/runtime/webhooks/durabletask`;
  const objects = `[${Array(333_000).fill("{}").join(",")}]`;   // 1 MB of text, a ~90 MB tree
  try {
    // six: their 6 MB of bodies fit the bound on bodies held, so what refuses is JSON's
    const ids = Array.from({ length: 6 }, () => h.uid("jsonheld"));
    const answers = await Promise.all(ids.map(async (id) => {
      const r = await fetch(`${api}/orchestrators/hello_one/${id}`, { method: "POST", body: objects });
      return { status: r.status, body: await r.json() };
    }));
    const refused = answers.filter((a) => a.status !== 202);
    assert.ok(refused.length > 0, "6 such bodies at once were all read");
    for (const a of refused) {
      assert.equal(a.status, 503, JSON.stringify(a.body));
      assert.match(a.body.error.message, /input could not be read now: .*bound of 8 MiB .*--max-held-mb/);
    }
    for (let i = 0; i < ids.length; i++) {
      const got = await fetch(`${api}/instances/${ids[i]}`);
      await got.text();
      assert.equal(got.status === 404, answers[i].status !== 202, `${ids[i]}: ${got.status}`);
    }
    const alone = await fetch(`${api}/orchestrators/hello_one/${h.uid("jsonheld")}`, { method: "POST", body: objects });
    assert.equal(alone.status, 202, await alone.text());
  } finally {
    await srv.stop();
  }
});

test("a chunked body with no length is cut off at the limit while it arrives", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const chunk = new TextEncoder().encode("z".repeat(64 * 1024));
  let sent = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (sent === 0) controller.enqueue(new TextEncoder().encode('"'));
      if (sent >= 2 * LIMIT) {
        controller.enqueue(new TextEncoder().encode('"'));
        controller.close();
        return;
      }
      controller.enqueue(chunk);
      sent += chunk.length;
    },
  });
  const res = await fetch(`${h.API}/orchestrators/hello_cities/${h.uid("chunked")}`, { method: "POST", body, duplex: "half" });
  assert.equal(res.status, 413);
  assert.equal((await res.json()).error.code, "PayloadTooLarge");
});

test("unknown paths are 404 and wrong methods 405, as JSON errors", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  h.assertError(await h.call("GET", "nothing/here"), 404, "NotFound");
  h.assertError(await h.call("GET", "/no-such-file.js"), 404, "NotFound", "no-such-file.js");
  const put = await h.call("PUT", "instances");
  h.assertError(put, 405, "MethodNotAllowed", "PUT");
  assert.equal(put.headers.get("allow"), "GET, DELETE");
  h.assertError(await h.call("GET", "orchestrators/hello_cities"), 405, "MethodNotAllowed");
  h.assertError(await h.call("POST", "counts"), 405, "MethodNotAllowed");
  h.assertError(await h.call("GET", "instances/x/terminate"), 405, "MethodNotAllowed");
  for (const path of ["/healthz", "/openapi.json", "/taskhubs", "/nodes", "/metrics"]) {
    const res = await h.call("POST", path);
    h.assertError(res, 405, "MethodNotAllowed", path);
    assert.equal(res.headers.get("allow"), "GET");
  }
  h.assertError(await h.call("GET", "instances/a%zzb"), 400, "BadRequest");
});

test("healthz, the dashboard and the OpenAPI document are served", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const health = await h.call("GET", "/healthz");
  assert.equal(health.status, 200);
  assert.equal(health.text, "ok");
  const page = await fetch(`${h.BASE}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /^text\/html/);
  assert.match(await page.text(), /<html/i);
  const doc = await h.call("GET", "/openapi.json");
  assert.equal(doc.status, 200);
  assert.equal(doc.json.openapi, "3.0.3");
});

test("/metrics answers with the hub's metrics in Prometheus text format", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const res = await h.call("GET", "/metrics");
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  assert.match(res.text, /^# (HELP|TYPE) /m);
});
