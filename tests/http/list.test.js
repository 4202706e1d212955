"use strict";
// Listing instances: filters by status, creation time and id prefix, paging through the
// x-ms-continuation-token header (every instance exactly once), and counts by status.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

test("list filters by prefix, status and creation time, and pages with the continuation header", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const prefix = h.uid("list");
  const before = new Date(Date.now() - 1000).toISOString();
  const done = [];
  for (let i = 0; i < 7; i++) done.push(await h.start("hello_cities", `${prefix}-c${i}`, { i }));
  const live = [];
  for (let i = 0; i < 2; i++) live.push(await h.start("c_calls_js", `${prefix}-r${i}`, "x"));
  for (const id of done) await h.waitFor(id);
  for (const id of live) await h.waitStatus(id, "Running");
  const after = new Date(Date.now() + 60_000).toISOString();

  const all = await h.listAll({ instanceIdPrefix: prefix, top: "3" });
  const ids = all.items.map((s) => s.instanceId);
  assert.equal(ids.length, 9);
  assert.equal(new Set(ids).size, 9, "an instance came twice");
  assert.deepEqual([...ids].sort(), [...done, ...live].sort());
  assert.ok(all.pages >= 3, `only ${all.pages} pages of 3`);
  for (const s of all.items) {
    assert.equal("input" in s, false);    // showInput defaults to false for lists
    assert.ok(["Completed", "Running"].includes(s.runtimeStatus));
  }

  const one = await h.call("GET", "instances", { query: { instanceIdPrefix: prefix, top: "3" } });
  assert.equal(one.json.length, 3);
  assert.ok(one.headers.get("x-ms-continuation-token"));

  const completed = await h.listAll({ instanceIdPrefix: prefix, runtimeStatus: "Completed", showInput: "true" });
  assert.deepEqual(completed.items.map((s) => s.instanceId).sort(), [...done].sort());
  for (const s of completed.items) {
    assert.deepEqual(s.output, h.HELLO_OUTPUT);
    assert.equal(typeof s.input.i, "number");
  }
  const running = await h.listAll({ instanceIdPrefix: prefix, runtimeStatus: "Running" });
  assert.deepEqual(running.items.map((s) => s.instanceId).sort(), [...live].sort());
  const both = await h.listAll({ instanceIdPrefix: prefix, runtimeStatus: "running, completed" });
  assert.equal(both.items.length, 9);

  const inWindow = await h.listAll({ instanceIdPrefix: prefix, createdTimeFrom: before, createdTimeTo: after });
  assert.equal(inWindow.items.length, 9);
  assert.equal((await h.listAll({ instanceIdPrefix: prefix, createdTimeFrom: after })).items.length, 0);
  assert.equal((await h.listAll({ instanceIdPrefix: prefix, createdTimeTo: before })).items.length, 0);
  // bounds at and before the epoch: nothing was created by then, and no "from" is not a bound
  for (const to of ["1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z"])
    assert.equal((await h.listAll({ instanceIdPrefix: prefix, createdTimeTo: to })).items.length, 0, to);
  assert.equal((await h.listAll({ instanceIdPrefix: prefix, createdTimeFrom: "1970-01-01T00:00:00Z" })).items.length, 9);
  // an offset is honoured: the same instant written in another zone
  const beforePlus2 = new Date(Date.parse(before) + 2 * 3600_000).toISOString().replace("Z", "+02:00");
  assert.equal((await h.listAll({ instanceIdPrefix: prefix, createdTimeFrom: beforePlus2 })).items.length, 9);

  for (const id of live) await h.call("POST", `${h.statusPath(id)}/terminate`);
});

test("versions: a start may name one; status shows it and list filters by it", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const prefix = h.uid("ver");
  const started = [];
  for (const [i, version] of [["a", "1.0"], ["b", "2.0"], ["c", "2.0"], ["d", ""]].entries()) {
    const id = `${prefix}-${version[0]}`;
    const query = version[1] ? { version: version[1] } : undefined;
    const res = await h.call("POST", `orchestrators/hello_cities/${id}`, { query, body: JSON.stringify(i) });
    assert.equal(res.status, 202, res.text);
    started.push(id);
  }
  for (const id of started) await h.waitFor(id);
  const b = await h.call("GET", h.statusPath(`${prefix}-b`));
  assert.equal(b.json.version, "2.0");
  assert.equal((await h.call("GET", h.statusPath(`${prefix}-d`))).json.version, "");
  const two = await h.listAll({ instanceIdPrefix: prefix, version: "2.0" });
  assert.deepEqual(two.items.map((s) => s.instanceId).sort(), [`${prefix}-b`, `${prefix}-c`]);
  for (const s of two.items) assert.equal(s.version, "2.0");
  const one = await h.listAll({ instanceIdPrefix: prefix, version: "1.0" });
  assert.deepEqual(one.items.map((s) => s.instanceId), [`${prefix}-a`]);
  assert.equal((await h.listAll({ instanceIdPrefix: prefix, version: "3.0" })).items.length, 0);
});

test("list refuses bad parameters and continuation tokens it did not give out", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  h.assertError(await h.call("GET", "instances", { query: { runtimeStatus: "Running,Sleeping" } }), 400, "BadRequest", "Sleeping");
  h.assertError(await h.call("GET", "instances", { query: { top: "0" } }), 400, "BadRequest", "top");
  h.assertError(await h.call("GET", "instances", { query: { top: "1001" } }), 400, "BadRequest", "top");
  h.assertError(await h.call("GET", "instances", { query: { createdTimeFrom: "2026-13-01" } }), 400, "BadRequest", "createdTimeFrom");
  h.assertError(await h.call("GET", "instances", { query: { createdTimeFrom: "2026-02-01T10:00:00Z", createdTimeTo: "2026-01-01T00:00:00Z" } }), 400, "BadRequest");
  h.assertError(await h.call("GET", "instances", { headers: { "x-ms-continuation-token": "!!" } }), 400, "BadRequest", "continuation");
});

test("counts has every status and agrees with a full listing", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = await h.start("hello_cities", h.uid("count"));
  await h.waitFor(id);
  const res = await h.call("GET", "counts");
  assert.equal(res.status, 200, res.text);
  const names = ["Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated", "Pending", "Suspended"];
  assert.deepEqual(Object.keys(res.json), names);
  assert.ok(res.json.Completed >= 1);
  // instances of earlier specs may still be moving (a terminate lands a moment later): compare
  // a listing with the counts taken just before and just after it, once those two agree
  for (let attempt = 0; ; attempt++) {
    const c1 = (await h.call("GET", "counts")).json;
    const all = await h.listAll({ top: "1000" });
    const c2 = (await h.call("GET", "counts")).json;
    if (JSON.stringify(c1) !== JSON.stringify(c2)) {
      assert.ok(attempt < 100, "the counts never settled");
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const tally = Object.fromEntries(names.map((n) => [n, 0]));
    for (const s of all.items) tally[s.runtimeStatus]++;
    assert.deepEqual(c2, tally);
    break;
  }
});

test("lists are newest first; sort=id lists by id; another sort is refused", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const prefix = h.uid("sort");
  // created in this order, with ids that sort the other way round
  const ids = [`${prefix}-c`, `${prefix}-b`, `${prefix}-a`];
  for (const id of ids) {
    await h.start("hello_one", id, "x");
    await new Promise((r) => setTimeout(r, 5));   /* distinct creation times */
  }
  const newest = await h.call("GET", "instances", { query: { instanceIdPrefix: prefix } });
  assert.equal(newest.status, 200, newest.text);
  assert.deepEqual(newest.json.map((s) => s.instanceId), [...ids].reverse());
  const byId = await h.call("GET", "instances", { query: { instanceIdPrefix: prefix, sort: "id" } });
  assert.deepEqual(byId.json.map((s) => s.instanceId), [...ids].sort());
  h.assertError(await h.call("GET", "instances", { query: { sort: "name" } }), 400, "BadRequest", "sort", "name");
});
