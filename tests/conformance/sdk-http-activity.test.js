"use strict";
// sdk-http-activity: BuiltIn::HttpActivity, the durable HTTP call the Durable Task SDKs
// schedule by name, run by `dtask serve` itself: no worker registers it. A JavaScript
// orchestrator sends a DurableHttpRequest (as the .NET and Java SDKs shape it) and gets a
// DurableHttpResponse back from a local server: a 200, a 500 as an answer, a 202 as one
// exchange (polling is the calling SDK's). A host --http-activity-allow does not name is a
// failure naming it; a server started without the flag refuses every call at once.

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus } = require("@microsoft/durabletask-js");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 30_000 };
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

// the local server the calls go to
let web, base;
const hits = {};
before(async () => {
  web = http.createServer((req, res) => {
    hits[req.url] = (hits[req.url] || 0) + 1;
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.url === "/ok") {
        res.writeHead(200, { "Content-Type": "text/plain", "X-Test": "yes" });
        res.end(`hello ${req.method} ${req.headers["x-custom"] || ""} ${body}`);
      } else if (req.url === "/fail") {
        res.writeHead(500);
        res.end("boom");
      } else if (req.url === "/accepted") {
        res.writeHead(202, { Location: "/ok", "Retry-After": "1" });
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  await new Promise((resolve) => web.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${web.address().port}`;
});
after(() => web.close());

// withServe: a `dtask serve` of this spec's own with ARGS, its endpoint to BODY.
async function withServe(args, body) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-httpact-"));
  const s = await raw.serve(dir, args);
  try {
    return await body(s.endpoint);
  } finally {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// call: an orchestrator that schedules BuiltIn::HttpActivity with its input and returns the
// response, or the failure's type and message.
const call = async function* (ctx, request) {
  try {
    return { response: yield ctx.callActivity("BuiltIn::HttpActivity", request) };
  } catch (e) {
    return { errorType: e.details.errorType, message: e.details.message };
  }
};

// run: each of REQUESTS through `call` on the server at ENDPOINT, by a JavaScript worker that
// asks only for what it registered (so the activity is left to the server).
async function run(endpoint, requests) {
  const worker = new TaskHubGrpcWorker({ hostAddress: endpoint, logger: quiet, workItemFilters: "auto" });
  worker.addNamedOrchestrator("http_call", call);
  const client = new TaskHubGrpcClient({ hostAddress: endpoint, logger: quiet });
  await worker.start();
  try {
    const out = [];
    for (const r of requests) {
      const id = await client.scheduleNewOrchestration("http_call", r, raw.uid("http"));
      const st = await client.waitForOrchestrationCompletion(id, true, 25);
      assert.equal(OrchestrationStatus[st.runtimeStatus], "COMPLETED", st.failureDetails?.message);
      out.push(JSON.parse(st.serializedOutput));
    }
    return out;
  } finally {
    await Promise.allSettled([worker.stop(), client.stop()]);
  }
}

test("dtask serve --http-activity-allow runs BuiltIn::HttpActivity for another SDK's orchestration", TIMEOUT, () =>
  withServe(["--http-activity-allow", "127.0.0.1"], async (endpoint) => {
    const [ok, java, fail, accepted, refused] = await run(endpoint, [
      { method: "POST", uri: `${base}/ok`, headers: { "X-Custom": "js" }, content: "body", timeout: "00:00:10" },
      [{ method: "GET", uri: `${base}/ok`, asynchronousPatternEnabled: true }],   // the Java SDK's list of one
      { method: "GET", uri: `${base}/fail` },
      { method: "GET", uri: `${base}/accepted` },
      { method: "GET", uri: "http://example.com/" },
    ]);
    assert.equal(ok.response.statusCode, 200);
    assert.equal(ok.response.content, "hello POST js body");
    assert.equal(ok.response.headers["X-Test"] ?? ok.response.headers["x-test"], "yes");
    assert.equal(java.response.content, "hello GET  ");
    // an error status is an answer, not a failure
    assert.deepEqual([fail.response.statusCode, fail.response.content], [500, "boom"]);
    // one exchange per run: the 202 comes back for the caller to poll
    assert.equal(accepted.response.statusCode, 202);
    assert.equal(accepted.response.headers.Location ?? accepted.response.headers.location, "/ok");
    assert.equal(refused.errorType, "HttpActivityRefused");
    assert.match(refused.message, /host 'example\.com' is not in --http-activity-allow/);
  }));

test("without --http-activity-allow the activity fails at once and nothing is fetched", TIMEOUT, () =>
  withServe([], async (endpoint) => {
    const before = hits["/ok"] || 0;
    const [off] = await run(endpoint, [{ method: "GET", uri: `${base}/ok` }]);
    assert.equal(off.errorType, "HttpActivityDisabled");
    assert.match(off.message, /--http-activity-allow/);
    assert.equal(hits["/ok"] || 0, before);
  }));

test("dtask serve refuses a bad --http-activity-allow before it starts", TIMEOUT, async () => {
  const { spawnSync } = require("node:child_process");
  const r = spawnSync(process.env.DTASK, ["serve", "--http-activity-allow", "exa mple.com"], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /'exa mple\.com' is not a host name/);
});
