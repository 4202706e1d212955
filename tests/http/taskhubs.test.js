"use strict";
// Task hubs over HTTP: the taskHub query parameter (as Durable Functions' API has it) picks
// the hub every API call and /metrics act on; the URIs a start answers with name it too;
// /taskhubs lists the hubs; a name that cannot be a hub's is 400.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

test("taskHub= selects an isolated hub for the API and /metrics, and /taskhubs lists it", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const hub = h.uid("hub"), id = h.uid("in-hub");
  const started = await h.call("POST", `orchestrators/hello_cities/${id}`, { query: { taskHub: hub } });
  assert.equal(started.status, 202, started.text);
  assert.ok(started.json.statusQueryGetUri.endsWith(`?taskHub=${hub}`), started.json.statusQueryGetUri);
  assert.ok(started.json.terminatePostUri.endsWith(`/terminate?reason={text}&taskHub=${hub}`));
  assert.equal(started.headers.get("location"), started.json.statusQueryGetUri);

  // no worker serves this hub: it stays Pending there, and the default hub has no such id
  const there = await h.call("GET", h.statusPath(id), { query: { taskHub: hub } });
  assert.equal(there.status, 202);
  assert.equal(there.json.runtimeStatus, "Pending");
  h.assertError(await h.call("GET", h.statusPath(id)), 404, "NotFound", id);
  const listed = await h.listAll({ taskHub: hub });
  assert.deepEqual(listed.items.map((s) => s.instanceId), [id]);

  const hubs = await h.call("GET", "/taskhubs");
  assert.equal(hubs.status, 200);
  assert.ok(hubs.json.includes("default") && hubs.json.includes(hub), hubs.text);

  // the hub's own metrics: its one start, its one commit, its one item waiting
  const metrics = await h.call("GET", "/metrics", { query: { taskHub: hub } });
  assert.match(metrics.text, /dtask_instances_started_total\{name="hello_cities"\} 1\n/);
  assert.match(metrics.text, /dtask_store_commit_seconds_count 1\n/);
  assert.match(metrics.text, /dtask_queue_depth\{kind="orchestration"\} 1\n/);

  h.assertError(await h.call("GET", "instances", { query: { taskHub: "no/such" } }), 400, "BadRequest", "no/such");
  assert.equal((await h.call("POST", `${h.statusPath(id)}/terminate`, { query: { taskHub: hub } })).status, 202);
});

// The attack that found this: any web page could make the server open task hubs of its own
// with a GET (an <img> naming /healthz?taskHub=x1, x2, ...: GETs have no Origin check), each a
// database file and threads kept for good, until the server's 32 were full and every other
// hub refused. A GET now reads only a hub that is there.
test("a GET naming a task hub that is not there is 404 and makes no hub; a start makes it", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const hub = h.uid("nohub");
  for (const path of ["/healthz", "/metrics", "instances", h.statusPath("x")]) {
    const res = await h.call("GET", path, { query: { taskHub: hub } });
    h.assertError(res, 404, "NotFound", hub);
  }
  const hubs = await h.call("GET", "/taskhubs");
  assert.ok(!hubs.json.includes(hub), hubs.text);

  const id = h.uid("made");
  assert.equal((await h.call("POST", `orchestrators/hello_cities/${id}`, { query: { taskHub: hub } })).status, 202);
  assert.equal((await h.call("GET", "/healthz", { query: { taskHub: hub } })).status, 200);
  assert.ok((await h.call("GET", "/taskhubs")).json.includes(hub));
  assert.equal((await h.call("POST", `${h.statusPath(id)}/terminate`, { query: { taskHub: hub } })).status, 202);
});
