"use strict";
// Commands on instances: raise event, terminate, suspend, resume, restart and purge (one, and
// by filter), with Durable Functions' status codes: 202 accepted, 404 missing, 410 finished,
// 409 conflicts, 400 bad input, and JSON error bodies naming the instance.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

// running: a c_calls_js instance; it waits for js_shout, which no worker here provides, so it
// stays Running until something ends it.
async function running(prefix) {
  const id = await h.start("c_calls_js", h.uid(prefix), "hi");
  await h.waitStatus(id, "Running");
  return id;
}

async function completed(prefix) {
  const id = await h.start("hello_cities", h.uid(prefix));
  await h.waitFor(id);
  return id;
}

test("raiseEvent: 202 and the event in history with its data; 404, 410 and 400", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = await running("raise");
  const res = await h.call("POST", `${h.statusPath(id)}/raiseEvent/approval`, { body: { ok: true, n: 1.25 } });
  assert.equal(res.status, 202, res.text);
  const seen = await h.waitFor(id, (s) => s.historyEvents.some((e) => e.EventType === "EventRaised"), {
    query: { showHistory: "true", showHistoryOutput: "true" },
  });
  const raised = seen.json.historyEvents.find((e) => e.EventType === "EventRaised");
  assert.equal(raised.Name, "approval");
  assert.deepEqual(raised.Input, { ok: true, n: 1.25 });

  const noBody = await h.call("POST", `${h.statusPath(id)}/raiseEvent/nothing`);
  assert.equal(noBody.status, 202, noBody.text);

  const missing = h.uid("nobody");
  h.assertError(await h.call("POST", `${h.statusPath(missing)}/raiseEvent/x`, { body: 1 }), 404, "NotFound", missing);
  h.assertError(await h.call("POST", `${h.statusPath(id)}/raiseEvent/x`, { body: "{oops" }), 400, "BadRequest", "JSON");
  const done = await completed("raise-done");
  h.assertError(await h.call("POST", `${h.statusPath(done)}/raiseEvent/x`, { body: 1 }), 410, "Gone", done);
  await h.call("POST", `${h.statusPath(id)}/terminate`);
});

test("terminate: 202, Terminated with the reason as its output; then 410; 404 when missing", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = await running("term");
  // a reason that is not UTF-8 is refused, as a rewind's is (it was silently replaced by U+FFFD);
  // a NUL in any query value is refused naming it (it cut the value short: taskHub=a%00b was a)
  h.assertError(await h.call("POST", `${h.statusPath(id)}/terminate?reason=%FF`), 400, "BadRequest", "UTF-8");
  h.assertError(await h.call("POST", `${h.statusPath(id)}/terminate?reason=a%00b`), 400, "BadRequest", "reason", "NUL");
  h.assertError(await h.call("GET", `instances?taskHub=default%00x`), 400, "BadRequest", "taskHub", "NUL");
  assert.equal((await h.call("GET", h.statusPath(id))).json.runtimeStatus, "Running");
  const res = await h.call("POST", `${h.statusPath(id)}/terminate`, { query: { reason: 'enough "already"' } });
  assert.equal(res.status, 202, res.text);
  const done = await h.waitFor(id);
  assert.equal(done.json.runtimeStatus, "Terminated");
  assert.equal(done.json.output, 'enough "already"');
  h.assertError(await h.call("POST", `${h.statusPath(id)}/terminate`), 410, "Gone", id);
  const missing = h.uid("nobody");
  h.assertError(await h.call("POST", `${h.statusPath(missing)}/terminate`), 404, "NotFound", missing);

  const rec = await running("term-rec");
  assert.equal((await h.call("POST", `${h.statusPath(rec)}/terminate`, { query: { recursive: "true" } })).status, 202);
  assert.equal((await h.waitFor(rec)).json.runtimeStatus, "Terminated");
  h.assertError(await h.call("POST", `${h.statusPath(rec)}/terminate`, { query: { recursive: "perhaps" } }), 400, "BadRequest", "recursive");
});

test("suspend and resume: 202 each and the status follows; 404 missing, 410 finished", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = await running("susp");
  assert.equal((await h.call("POST", `${h.statusPath(id)}/suspend`, { query: { reason: "pause" } })).status, 202);
  const suspended = await h.waitStatus(id, "Suspended");
  assert.equal(suspended.status, 202);    // not finished
  assert.equal((await h.call("POST", `${h.statusPath(id)}/resume`, { query: { reason: "go" } })).status, 202);
  await h.waitStatus(id, "Running");

  const missing = h.uid("nobody");
  for (const op of ["suspend", "resume"]) {
    h.assertError(await h.call("POST", `${h.statusPath(missing)}/${op}`), 404, "NotFound", missing);
  }
  await h.call("POST", `${h.statusPath(id)}/terminate`);
  await h.waitFor(id);
  for (const op of ["suspend", "resume"]) {
    h.assertError(await h.call("POST", `${h.statusPath(id)}/${op}`), 410, "Gone", id);
  }
});

test("rewind: 202 for a Failed instance, which runs again (ExecutionRewound with the reason in history); 410 otherwise, 404 missing", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = await h.start("hello_one", h.uid("rew"), 7);   // say_hello refuses a number: Failed
  const failed = await h.waitFor(id);
  assert.equal(failed.json.runtimeStatus, "Failed");
  const started = await h.call("POST", "orchestrators/hello_one", { body: JSON.stringify("x") });
  assert.match(started.json.rewindPostUri, /\/rewind\?reason=\{text\}$/);

  // a reason that is not UTF-8 is refused (it was stored, and no worker could be sent it: the
  // instance stayed Running for ever)
  h.assertError(await h.call("POST", `${h.statusPath(id)}/rewind?reason=%FF%FEbad`), 400, "BadRequest", "UTF-8");
  assert.equal((await h.call("GET", h.statusPath(id))).json.runtimeStatus, "Failed");
  const res = await h.call("POST", `${h.statusPath(id)}/rewind`, { query: { reason: "fixed upstream" } });
  assert.equal(res.status, 202, res.text);
  // Running at once (a client waiting next sees it), then Failed again: the input is still wrong
  const again = await h.waitFor(id, (x) => x && x.runtimeStatus === "Failed", { query: { showHistory: "true", showHistoryOutput: "true" } });
  const types = again.json.historyEvents.map((e) => e.EventType);
  assert.ok(types.includes("ExecutionRewound"), types.join());
  assert.equal(types.filter((t) => t === "TaskFailed").length, 1, types.join());   // the rewound run's only
  assert.equal(again.json.historyEvents.find((e) => e.EventType === "ExecutionRewound").Input, "fixed upstream");

  const done = await h.waitFor(started.json.id);
  h.assertError(await h.call("POST", `${h.statusPath(done.json.instanceId)}/rewind`), 410, "Gone", "only a Failed instance");
  const missing = h.uid("nobody");
  h.assertError(await h.call("POST", `${h.statusPath(missing)}/rewind`), 404, "NotFound", missing);
  h.assertError(await h.call("GET", `${h.statusPath(id)}/rewind`), 405, "MethodNotAllowed", "POST");
});

test("restart: same id once finished, a new id on request; 409 while running, 404 missing", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = await completed("restart");
  const first = (await h.call("GET", h.statusPath(id))).json;
  const again = await h.call("POST", `${h.statusPath(id)}/restart`);
  assert.equal(again.status, 202, again.text);
  assert.equal(again.json.id, id);
  assert.equal(again.headers.get("location"), `${h.API}/instances/${id}`);
  const rerun = await h.waitFor(id, (s, r) => r.status === 200 && s.createdTime !== first.createdTime);
  assert.deepEqual(rerun.json.output, h.HELLO_OUTPUT);

  const fresh = await h.call("POST", `${h.statusPath(id)}/restart`, { query: { newInstanceId: "true" } });
  assert.equal(fresh.status, 202, fresh.text);
  assert.notEqual(fresh.json.id, id);
  assert.deepEqual((await h.waitFor(fresh.json.id)).json.output, h.HELLO_OUTPUT);

  const live = await running("restart-live");
  h.assertError(await h.call("POST", `${h.statusPath(live)}/restart`), 409, "Conflict", live);
  const copy = await h.call("POST", `${h.statusPath(live)}/restart`, { query: { restartWithNewInstanceId: "true" } });
  assert.equal(copy.status, 202, copy.text);
  assert.notEqual(copy.json.id, live);
  await h.waitStatus(copy.json.id, "Running");
  await h.call("POST", `${h.statusPath(live)}/terminate`);
  await h.call("POST", `${h.statusPath(copy.json.id)}/terminate`);

  const missing = h.uid("nobody");
  h.assertError(await h.call("POST", `${h.statusPath(missing)}/restart`), 404, "NotFound", missing);
});

test("purge one: 200 {instancesDeleted: 1} and gone; 404 missing; 409 while running", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = await completed("purge");
  const res = await h.call("DELETE", h.statusPath(id));
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { instancesDeleted: 1 });
  h.assertError(await h.call("GET", h.statusPath(id)), 404, "NotFound", id);
  h.assertError(await h.call("DELETE", h.statusPath(id)), 404, "NotFound", id);

  const live = await running("purge-live");
  h.assertError(await h.call("DELETE", h.statusPath(live)), 409, "Conflict", live);
  await h.call("POST", `${h.statusPath(live)}/terminate`);
});

test("purge by filter deletes the finished instances that match, and only those", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const prefix = h.uid("pf");
  const from = new Date(Date.now() - 1000).toISOString();
  const done = [];
  for (let i = 0; i < 3; i++) done.push(await h.start("hello_cities", `${prefix}-done-${i}`));
  for (const id of done) await h.waitFor(id);
  const live = await h.start("c_calls_js", `${prefix}-live`, "x");
  await h.waitStatus(live, "Running");
  const other = await completed("pf-other");    // finished, but outside the prefix

  // a window that ends before they were created matches none of them
  const none = await h.call("DELETE", "instances", { query: { instanceIdPrefix: prefix, createdTimeTo: from } });
  assert.equal(none.status, 200, none.text);
  assert.deepEqual(none.json, { instancesDeleted: 0 });

  const res = await h.call("DELETE", "instances", {
    query: { instanceIdPrefix: prefix, createdTimeFrom: from, createdTimeTo: new Date(Date.now() + 60_000).toISOString(), runtimeStatus: "Completed,Running" },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { instancesDeleted: 3 });    // the running one is kept
  const left = await h.listAll({ instanceIdPrefix: prefix });
  assert.deepEqual(left.items.map((s) => s.instanceId), [live]);
  assert.equal((await h.call("GET", h.statusPath(other))).status, 200);

  // bounds at and before the epoch are bounds, not "none given" (a purge to 1970 once deleted all)
  for (const to of ["1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]) {
    const early = await h.call("DELETE", "instances", { query: { runtimeStatus: "Completed", createdTimeTo: to } });
    assert.equal(early.status, 200, early.text);
    assert.deepEqual(early.json, { instancesDeleted: 0 }, to);
  }
  assert.equal((await h.call("GET", h.statusPath(other))).status, 200);
  const epochOnly = await h.call("DELETE", "instances", { query: { instanceIdPrefix: prefix, createdTimeFrom: "1970-01-01T00:00:00Z", runtimeStatus: "Running" } });
  assert.equal(epochOnly.status, 200, epochOnly.text);   // a filter: from the epoch on
  assert.deepEqual(epochOnly.json, { instancesDeleted: 0 });   // running ones are never purged

  h.assertError(await h.call("DELETE", "instances", { query: { createdTimeFrom: "yesterday" } }), 400, "BadRequest", "createdTimeFrom");
  h.assertError(await h.call("DELETE", "instances", { query: { runtimeStatus: "Done" } }), 400, "BadRequest", "Done");
  await h.call("POST", `${h.statusPath(live)}/terminate`);
});
