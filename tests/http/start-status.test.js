"use strict";
// Starting instances and reading their status: 202 with the management URIs, then the
// status (202 while it runs, 200 once finished) with payloads as JSON values, and history.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

test("start answers 202 with management URIs and the status turns 200 with hello_cities' output", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = h.uid("start");
  const res = await h.call("POST", `orchestrators/hello_cities/${id}`, { body: { n: 0.1, big: [1, 2, 3] } });
  assert.equal(res.status, 202, res.text);
  assert.equal(res.json.id, id);
  const statusUri = `${h.API}/instances/${id}`;
  assert.equal(res.json.statusQueryGetUri, statusUri);
  assert.equal(res.headers.get("location"), statusUri);
  assert.equal(res.json.sendEventPostUri, `${statusUri}/raiseEvent/{eventName}`);
  assert.equal(res.json.terminatePostUri, `${statusUri}/terminate?reason={text}`);
  assert.equal(res.json.suspendPostUri, `${statusUri}/suspend?reason={text}`);
  assert.equal(res.json.resumePostUri, `${statusUri}/resume?reason={text}`);
  assert.equal(res.json.purgeHistoryDeleteUri, statusUri);
  assert.equal(res.json.restartPostUri, `${statusUri}/restart`);

  // the Location header is a working status URI
  const first = await h.call("GET", res.headers.get("location"));
  assert.ok(first.status === 200 || first.status === 202, first.text);
  if (first.status === 202) {
    assert.notEqual(first.json.runtimeStatus, "Completed");
    assert.equal(first.headers.get("location"), statusUri);
  }

  const done = await h.waitFor(id);
  const s = done.json;
  assert.equal(s.name, "hello_cities");
  assert.equal(s.instanceId, id);
  assert.equal(s.runtimeStatus, "Completed");
  assert.deepEqual(s.output, h.HELLO_OUTPUT);               // a JSON value, not a string
  assert.equal(done.text.includes('"n":0.1'), true);          // payload text kept exactly
  assert.deepEqual(s.input, { n: 0.1, big: [1, 2, 3] });
  assert.equal(s.customStatus, null);
  assert.equal(s.failureDetails, null);
  assert.equal(s.historyEvents, undefined);
  for (const k of ["createdTime", "lastUpdatedTime", "completedTime"]) assert.match(s[k], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Date.parse(s.completedTime) >= Date.parse(s.createdTime));

  const noInput = await h.call("GET", h.statusPath(id), { query: { showInput: "false" } });
  assert.equal(noInput.status, 200);
  assert.equal("input" in noInput.json, false);
});

test("start without an id or a body generates an id and starts with no input", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const res = await h.call("POST", "orchestrators/hello_cities");
  assert.equal(res.status, 202, res.text);
  assert.match(res.json.id, /^[0-9a-f-]{36}$/);
  const done = await h.waitFor(res.json.id);
  assert.equal(done.json.input, null);
  assert.deepEqual(done.json.output, h.HELLO_OUTPUT);
});

test("an id that needs escaping round-trips through the URIs", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = `${h.uid("esc")} ü+%`;
  const res = await h.call("POST", `orchestrators/hello_cities/${encodeURIComponent(id)}`);
  assert.equal(res.status, 202, res.text);
  assert.equal(res.json.id, id);
  const done = await h.waitFor(id);
  assert.equal(done.json.instanceId, id);
  const viaLocation = await h.call("GET", res.headers.get("location"));
  assert.equal(viaLocation.json.instanceId, id);
});

test("showHistory lists the events; inputs and results only with showHistoryOutput", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = await h.start("hello_cities", h.uid("hist"));
  await h.waitFor(id);
  const plain = await h.call("GET", h.statusPath(id), { query: { showHistory: "true" } });
  assert.equal(plain.status, 200);
  const ev = plain.json.historyEvents;
  assert.ok(Array.isArray(ev));
  const types = ev.map((e) => e.EventType);
  assert.equal(types[0], "OrchestratorStarted");
  assert.equal(types[1], "ExecutionStarted");
  assert.equal(types.at(-1), "ExecutionCompleted");
  const scheduled = ev.filter((e) => e.EventType === "TaskScheduled");
  const completed = ev.filter((e) => e.EventType === "TaskCompleted");
  assert.deepEqual(scheduled.map((e) => e.EventId), [0, 1, 2]);
  assert.deepEqual(scheduled.map((e) => e.Name), ["say_hello", "say_hello", "say_hello"]);
  assert.deepEqual(completed.map((e) => e.TaskScheduledId), [0, 1, 2]);
  assert.deepEqual(completed.map((e) => e.Name), ["say_hello", "say_hello", "say_hello"]);
  assert.equal(ev.find((e) => e.EventType === "ExecutionStarted").Name, "hello_cities");
  assert.equal(ev.find((e) => e.EventType === "ExecutionCompleted").OrchestrationStatus, "Completed");
  for (const e of ev) {
    assert.equal(typeof e.EventId, "number");
    assert.match(e.Timestamp, /Z$/);
    assert.equal("Input" in e, false);
    assert.equal("Result" in e, false);
  }

  const full = await h.call("GET", h.statusPath(id), { query: { showHistory: "true", showHistoryOutput: "true" } });
  const fev = full.json.historyEvents;
  assert.deepEqual(fev.filter((e) => e.EventType === "TaskScheduled").map((e) => e.Input), ["Tokyo", "Seattle", "London"]);
  assert.deepEqual(fev.filter((e) => e.EventType === "TaskCompleted").map((e) => e.Result), h.HELLO_OUTPUT);
  assert.deepEqual(fev.find((e) => e.EventType === "ExecutionCompleted").Result, h.HELLO_OUTPUT);
});

test("start refuses a bad id, a body that is not JSON, and an id a live instance holds", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  h.assertError(await h.call("POST", "orchestrators/hello_cities/@bad"), 400, "BadRequest", "@bad");
  h.assertError(await h.call("POST", `orchestrators/hello_cities/${"x".repeat(101)}`), 400, "BadRequest");
  h.assertError(await h.call("POST", `orchestrators/hello_cities/${h.uid("nj")}`, { body: "{not json" }), 400, "BadRequest", "JSON");
  h.assertError(await h.call("POST", `orchestrators/hello_cities/${h.uid("nul")}`, { body: '"a\u0000b"' }), 400, "BadRequest");

  // c_calls_js waits for js_shout, which no worker here provides: it stays Running
  const id = await h.start("c_calls_js", h.uid("live"), "hi");
  await h.waitStatus(id, "Running");
  h.assertError(await h.call("POST", `orchestrators/c_calls_js/${id}`, { body: '"again"' }), 409, "Conflict", id);

  // a finished instance's id may be reused
  const done = await h.start("hello_cities", h.uid("reuse"));
  await h.waitFor(done);
  assert.equal(await h.start("hello_cities", done), done);
  await h.waitFor(done);
  await h.call("POST", `${h.statusPath(id)}/terminate`);
});

test("status of a missing instance is 404 naming it; bad flags are 400", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = h.uid("missing");
  h.assertError(await h.call("GET", h.statusPath(id)), 404, "NotFound", id);
  const live = await h.start("hello_cities", h.uid("flags"));
  h.assertError(await h.call("GET", h.statusPath(live), { query: { showHistory: "maybe" } }), 400, "BadRequest", "showHistory");
});
