"use strict";
// Durable entities over HTTP, as Durable Functions' API has them: signal (POST
// entities/{name}/{key}?op=), read the state (GET, 404 while there is none), list (GET
// entities[/{name}], paged); and ours: showMetadata, includeTransient, prefixes, clean
// (DELETE entities). The batches run in entity-worker.js, a raw gRPC entity worker.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");
const { EntityWorker, counter } = require("./entity-worker");

const ENDPOINT = process.env.GRPC_ENDPOINT;

// entityName: a fresh entity name (mixed case: the server lowercases names).
const entityName = () => h.uid("Ctr").replace("-", "");

const entityPath = (name, key) => `entities/${encodeURIComponent(name)}/${encodeURIComponent(key)}`;

function signal(name, key, op, body, query = {}) {
  return h.call("POST", entityPath(name, key), { query: { op, ...query }, body: body === undefined ? undefined : JSON.stringify(body) });
}

// waitState: poll GET of the entity until its state is WANT (deep equal).
async function waitState(name, key, want, query = {}) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await h.call("GET", entityPath(name, key), { query });
    if (res.status === 200 && JSON.stringify(res.json) === JSON.stringify(want)) return res;
    if (Date.now() > deadline) assert.fail(`entity @${name}@${key} never had state ${JSON.stringify(want)}; last: ${res.status} ${res.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitGone(name, key) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await h.call("GET", entityPath(name, key));
    if (res.status === 404) return res;
    if (Date.now() > deadline) assert.fail(`entity @${name}@${key} still has a state: ${res.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function withWorker(entities, options, fn) {
  const w = new EntityWorker(ENDPOINT, entities, options);
  w.start();
  return fn(w).finally(() => {
    w.close();
    assert.deepEqual(w.failures.map(String), []);
  });
}

test("a signal waits in the backlog (GET 404) until a worker runs it; then GET has the state", { timeout: h.TEST_TIMEOUT_MS, skip: !ENDPOINT && "GRPC_ENDPOINT is not set" }, async () => {
  const name = entityName(), lower = name.toLowerCase();
  const sent = await signal(name, "k1", "add", 5);
  assert.equal(sent.status, 202, sent.text);
  assert.equal(sent.text, "");

  // no worker yet: no state, so not there for Durable Functions; transient for us
  h.assertError(await h.call("GET", entityPath(name, "k1")), 404, "NotFound", `@${lower}@k1`);
  assert.deepEqual((await h.call("GET", `entities/${name}`)).json, []);
  const transient = await h.call("GET", `entities/${name}`, { query: { includeTransient: "true" } });
  assert.equal(transient.status, 200);
  assert.equal(transient.json.length, 1);
  assert.deepEqual(transient.json[0].entityId, { name: lower, key: "k1" });
  assert.equal(transient.json[0].backlogQueueSize, 1);
  assert.equal(transient.json[0].lockedBy, null);
  assert.ok(!("state" in transient.json[0]), "state without fetchState");

  await withWorker({ [name]: counter }, {}, async (w) => {
    const got = await waitState(name, "k1", 5);
    assert.match(got.headers.get("content-type"), /^application\/json/);
    assert.equal((await signal(name, "K1", "add", 3)).status, 202);   // another key: keys keep their case
    assert.equal((await signal(name.toUpperCase(), "k1", "add", 4)).status, 202);   // the same entity
    await waitState(name, "k1", 9);
    await waitState(name, "K1", 3);
    assert.ok(w.batches >= 3, `${w.batches} batches`);

    const meta = await h.call("GET", entityPath(name, "k1"), { query: { showMetadata: "true" } });
    assert.equal(meta.status, 200, meta.text);
    assert.deepEqual(meta.json.entityId, { name: lower, key: "k1" });
    assert.equal(meta.json.state, 9);
    assert.equal(meta.json.backlogQueueSize, 0);
    assert.equal(meta.json.lockedBy, null);
    const age = Date.now() - Date.parse(meta.json.lastOperationTime);
    assert.ok(age >= 0 && age < 60_000, meta.json.lastOperationTime);

    // the list under the name (case-insensitive), with state; by id prefix; and everything
    const listed = await h.call("GET", `entities/${name.toUpperCase()}`, { query: { fetchState: "true" } });
    assert.deepEqual(listed.json.map((e) => [e.entityId.key, e.state]), [["K1", 3], ["k1", 9]]);
    const byKey = await h.call("GET", `entities/${name}`, { query: { keyPrefix: "k" } });
    assert.deepEqual(byKey.json.map((e) => e.entityId.key), ["k1"]);
    const byId = await h.call("GET", "entities", { query: { entityIdPrefix: name } });
    assert.deepEqual(byId.json.map((e) => e.entityId.key), ["K1", "k1"]);
    const all = await h.call("GET", "entities", { query: { top: "1000" } });
    assert.ok(all.json.filter((e) => e.entityId.name === lower).length === 2, all.text);

    // "delete" leaves no state: 404 again, the step removed the row (the Durable Task
    // Scheduler's way), and cleaning storage answers its counts
    assert.equal((await signal(name, "k1", "delete")).status, 202);
    await waitGone(name, "k1");
    const cleaned = await h.call("DELETE", "entities");
    assert.equal(cleaned.status, 200, cleaned.text);
    assert.equal(typeof cleaned.json.emptyEntitiesRemoved, "number");
    assert.equal(typeof cleaned.json.orphanedLocksReleased, "number");
    const left = await h.call("GET", `entities/${name}`, { query: { includeTransient: "true" } });
    assert.deepEqual(left.json.map((e) => e.entityId.key), ["K1"]);
  });
});

test("lists page by top and x-ms-continuation-token, and filter by lastOperationTime", { timeout: h.TEST_TIMEOUT_MS, skip: !ENDPOINT && "GRPC_ENDPOINT is not set" }, async () => {
  const name = entityName();
  const before = new Date(Date.now() - 1000).toISOString();
  await withWorker({ [name]: counter }, {}, async () => {
    for (const key of ["e", "a", "d", "b", "c"]) assert.equal((await signal(name, key, "set", { key })).status, 202);
    for (const key of ["a", "b", "c", "d", "e"]) await waitState(name, key, { key });
  });
  const pages = [];
  let token = null;
  for (;;) {
    const res = await h.call("GET", `entities/${name}`, { query: { top: "2", fetchState: "true" }, headers: token ? { "x-ms-continuation-token": token } : {} });
    assert.equal(res.status, 200, res.text);
    pages.push(res.json.map((e) => `${e.entityId.key}=${e.state.key}`));
    token = res.headers.get("x-ms-continuation-token");
    if (!token) break;
    assert.ok(pages.length < 10, "paging does not end");
  }
  assert.deepEqual(pages, [["a=a", "b=b"], ["c=c", "d=d"], ["e=e"]]);

  const future = new Date(Date.now() + 3_600_000).toISOString();
  assert.deepEqual((await h.call("GET", `entities/${name}`, { query: { lastOperationTimeFrom: future } })).json, []);
  assert.deepEqual((await h.call("GET", `entities/${name}`, { query: { lastOperationTimeTo: before } })).json, []);
  const inRange = await h.call("GET", `entities/${name}`, { query: { lastOperationTimeFrom: before, lastOperationTimeTo: future } });
  assert.equal(inRange.json.length, 5);
  for (const to of ["1970-01-01T00:00:00Z", "1969-01-01T00:00:00Z"])   // bounds, not "none given"
    assert.deepEqual((await h.call("GET", `entities/${name}`, { query: { lastOperationTimeTo: to } })).json, [], to);
  h.assertError(await h.call("GET", "entities", { query: { lastOperationTimeFrom: future, lastOperationTimeTo: before } }), 400, "BadRequest", "range");

  h.assertError(await h.call("GET", `entities/${name}`, { headers: { "x-ms-continuation-token": "!!" } }), 400, "BadRequest", "x-ms-continuation-token");
  h.assertError(await h.call("GET", "entities", { query: { top: "0" } }), 400, "BadRequest", "top");
  h.assertError(await h.call("GET", "entities", { query: { fetchState: "maybe" } }), 400, "BadRequest", "fetchState", "maybe");
  h.assertError(await h.call("GET", "entities", { query: { lastOperationTimeFrom: "yesterday" } }), 400, "BadRequest", "lastOperationTimeFrom", "yesterday");
});

test("bad input is a 400 that says what was wrong", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const name = entityName();
  h.assertError(await h.call("POST", entityPath(name, "k"), { body: "1" }), 400, "BadRequest", "op");
  assert.equal((await signal(name, "k", "add")).status, 202);   // no body: no input
  h.assertError(await h.call("POST", entityPath(name, "k"), { query: { op: "add" }, body: "{not json" }), 400, "BadRequest", "JSON");
  h.assertError(await signal("na@me", "k", "add", 1), 400, "BadRequest", "na@me", "@");
  h.assertError(await signal(name, "a/b", "add", 1), 400, "BadRequest", "/");
  h.assertError(await h.call("GET", entityPath(name, "a#b")), 400, "BadRequest", "#");
  h.assertError(await h.call("POST", entityPath(name, "k"), { query: { op: "add", scheduledTime: "soon" }, body: "1" }), 400, "BadRequest", "scheduledTime", "soon");
  // the whole id "@name@key" may be 100 characters long, not 101
  const fits = "k".repeat(100 - 2 - name.length);
  assert.equal((await signal(name, fits, "add", 1)).status, 202);
  h.assertError(await signal(name, fits + "k", "add", 1), 400, "BadRequest", "101 characters", "100");
  h.assertError(await h.call("GET", entityPath(name, fits + "k")), 400, "BadRequest", "101 characters");
  h.assertError(await h.call("GET", "entities", { query: { keyPrefix: "k" } }), 400, "BadRequest", "keyPrefix", "entityIdPrefix");
  h.assertError(await h.call("GET", `entities/na@me`), 400, "BadRequest", "na@me");
  const put = await h.call("PUT", entityPath(name, "k"));
  h.assertError(put, 405, "MethodNotAllowed", "GET, POST");
  assert.equal(put.headers.get("allow"), "GET, POST");
  h.assertError(await h.call("POST", `entities/${name}`), 405, "MethodNotAllowed");
  h.assertError(await h.call("GET", `${entityPath(name, "k")}/more`), 404, "NotFound", "entities/{entityName}/{entityKey}");
  // the refused signals queued nothing: only the one that fits waits
  const queued = await h.call("GET", `entities/${name}`, { query: { includeTransient: "true" } });
  assert.deepEqual(queued.json.map((e) => [e.entityId.key, e.backlogQueueSize]), [["k", 1], [fits, 1]]);
});

test("a scheduled signal waits for its time", { timeout: h.TEST_TIMEOUT_MS, skip: !ENDPOINT && "GRPC_ENDPOINT is not set" }, async () => {
  const name = entityName();
  await withWorker({ [name]: counter }, {}, async () => {
    assert.equal((await signal(name, "k", "set", 1)).status, 202);
    await waitState(name, "k", 1);
    const at = new Date(Date.now() + 4000).toISOString();
    assert.equal((await signal(name, "k", "add", 10, { scheduledTime: at })).status, 202);
    await new Promise((r) => setTimeout(r, 500));
    const early = await h.call("GET", entityPath(name, "k"), { query: { showMetadata: "true" } });
    // read before its time (else a host stalled for seconds says nothing here; the last
    // assertion below still holds)
    if (Date.now() < Date.parse(at)) {
      assert.equal(early.json.state, 1, "ran before its time");
      assert.equal(early.json.backlogQueueSize, 1);
    }
    await waitState(name, "k", 11);
    assert.ok(Date.now() >= Date.parse(at), "ran before its time");
  });
});

test("taskHub= keeps entities apart, as it keeps instances", { timeout: h.TEST_TIMEOUT_MS, skip: !ENDPOINT && "GRPC_ENDPOINT is not set" }, async () => {
  const hub = h.uid("ehub"), name = entityName();
  assert.equal((await signal(name, "k", "add", 2, { taskHub: hub })).status, 202);
  await withWorker({ [name]: counter }, { taskHub: hub }, async () => {
    await waitState(name, "k", 2, { taskHub: hub });
  });
  h.assertError(await h.call("GET", entityPath(name, "k")), 404, "NotFound");
  assert.deepEqual((await h.call("GET", `entities/${name}`, { query: { includeTransient: "true" } })).json, []);
  const there = await h.call("GET", "entities", { query: { taskHub: hub, fetchState: "true" } });
  assert.deepEqual(there.json.map((e) => [e.entityId.key, e.state]), [["k", 2]]);
  h.assertError(await h.call("GET", "entities", { query: { taskHub: "no/such" } }), 400, "BadRequest", "no/such");
});
