"use strict";
// A server killed with SIGKILL while entity batches are in flight: restarted on the same
// database, every operation it had accepted is applied exactly once — signals acknowledged
// before the kill, and calls of orchestrations running across it — no increment lost or
// doubled, each call's result seen once.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { TaskEntity, EntityInstanceId, TaskHubGrpcClient, TaskHubGrpcWorker } = require("@microsoft/durabletask-js");
const raw = require("./helpers/raw");
const h = require("./helpers/harness");

const SIGNALS = 200;
const ORCHS = 5;
const CALLS = 20;

// slowAdd: a counter whose operations take a little time, so batches are in flight long
// enough for the kill to land in the middle of them
class SlowCounter extends TaskEntity {
  initializeState() {
    return 0;
  }
  async add(n) {
    await h.sleep(3);
    this.state += n;
    return this.state;
  }
}

test("kill -9 of the server mid-batch: after a restart every signal and call is applied exactly once", { timeout: 90_000 }, (t) =>
  h.showLogsOnFailure(() => killedServerTest(t)));

async function killedServerTest(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-entity-crash-"));
  let server = await raw.serve(dir);
  const port = server.port;
  const counter = new EntityInstanceId("slowcounter", h.uid("k"));
  const id = counter.toString();
  const adder = async function* (ctx) {
    const seen = [];
    for (let i = 0; i < CALLS; i++) seen.push(yield ctx.entities.callEntity(counter, "add", 1));
    return seen;
  };
  const worker = new TaskHubGrpcWorker({ hostAddress: server.endpoint, logger: h.makeLogger("worker") });
  worker.addNamedOrchestrator("adder", adder);
  worker.addNamedEntity("slowcounter", () => new SlowCounter());
  const client = new TaskHubGrpcClient({ hostAddress: server.endpoint, logger: h.makeLogger("client") });
  let rawClient = raw.connect({}, server.endpoint);
  let workerStarted = false;
  try {
    // every signal acknowledged (durable) before any worker runs
    for (let i = 0; i < SIGNALS; i++) {
      await raw.unary(rawClient, "SignalEntity", { instanceId: id, name: "add", input: raw.str("1"), requestId: raw.uid("s") });
    }
    const ids = [];
    for (let i = 0; i < ORCHS; i++) ids.push(await client.scheduleNewOrchestration("adder", undefined, h.uid(`crashadder${i}`)));
    await worker.start();
    workerStarted = true;

    const value = async () => {
      const r = await raw.unary(rawClient, "GetEntity", { instanceId: id, includeState: true });
      return r.exists ? JSON.parse(r.entity.serializedState.value) : 0;
    };
    let before = 0;
    await h.poll(async () => (before = await value()) >= 30, "the counter at 30 or more", 30);
    await server.stop("SIGKILL");
    rawClient.close();
    assert.ok(before < SIGNALS + ORCHS * CALLS, `everything was applied before the kill (${before})`);
    t.diagnostic(`killed with the counter at ${before} of ${SIGNALS + ORCHS * CALLS}`);

    server = await raw.serve(dir, [], port);   // same port: the worker and client reconnect
    rawClient = raw.connect({}, server.endpoint);
    const all = [];
    for (const oid of ids) {
      const state = await h.waitDone(client, oid, 60);
      h.assertCompleted(state);
      const seen = JSON.parse(state.serializedOutput);
      assert.equal(seen.length, CALLS);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `${oid}: ${seen}`);
      all.push(...seen);
    }
    assert.equal(new Set(all).size, all.length, "two calls saw the same value");
    await h.poll(async () => {
      const r = await raw.unary(rawClient, "GetEntity", { instanceId: id, includeState: true });
      return r.exists && (r.entity.backlogQueueSize || 0) === 0;
    }, "the backlog drained", 40);
    assert.equal(await value(), SIGNALS + ORCHS * CALLS, "increments lost or doubled");
    for (const v of all) assert.ok(v >= 1 && v <= SIGNALS + ORCHS * CALLS);
  } finally {
    await Promise.allSettled([client.stop(), workerStarted ? worker.stop() : undefined]);
    rawClient.close();
    await server.stop("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
