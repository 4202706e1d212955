"use strict";
// A server killed with SIGKILL while entity batches are in flight: restarted on the same
// database, every operation it had accepted is applied exactly once — signals acknowledged
// before the kill, and calls of orchestrations running across it — no increment lost or
// doubled, each call's result seen once. And a worker process killed with SIGKILL in the
// middle of a batch: the batch goes to the next worker and is applied once.

const { test } = require("node:test");
const { spawn } = require("node:child_process");
const readline = require("node:readline");
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
  // leases of 5 s (renewed while work is in flight): what the killed server had leased is
  // handed out again 5 s on, not 30
  const LEASE = ["--lease", "5"];
  let server = await raw.serve(dir, LEASE);
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

    server = await raw.serve(dir, LEASE, port);   // same port: the worker and client reconnect
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

test("kill -9 of a worker mid-batch: the batch goes to the next worker and is applied once", { timeout: 60_000 }, (t) =>
  h.showLogsOnFailure(() => killedWorkerTest(t)));

async function killedWorkerTest(t) {
  const N = 150;
  const rawClient = raw.connect();
  const id = new EntityInstanceId("slowcounter", h.uid("kw")).toString();
  // the signals first, so the worker's batches are full ones (50 operations of 20 ms): the
  // kill lands well inside one, not as a short batch's result is on its way
  for (let i = 0; i < N; i++)
    await raw.unary(rawClient, "SignalEntity", { instanceId: id, name: "add", input: raw.str("1"), requestId: raw.uid("s") });
  const doomed = spawn(process.execPath, [path.join(__dirname, "helpers", "entity-worker.js")], {
    env: process.env,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => doomed.on("exit", (code, signal) => resolve({ code, signal })));
  let survivor;
  try {
    const lines = [];
    readline.createInterface({ input: doomed.stdout }).on("line", (l) => lines.push(JSON.parse(l)));
    await h.poll(async () => lines.some((l) => l.ready), "the doomed worker ready", 20);
    const value = async () => {
      const r = await raw.unary(rawClient, "GetEntity", { instanceId: id, includeState: true });
      return r.exists ? JSON.parse(r.entity.serializedState.value) : 0;
    };
    // kill it in the middle of a batch: it ran operations of a batch not committed yet
    await h.poll(async () => {
      const ran = lines.filter((l) => l.op).length;
      return ran > 0 && ran > (await value()) + 5;
    }, "a batch half run", 30);
    doomed.kill("SIGKILL");
    assert.equal((await exited).signal, "SIGKILL");
    const committed = await value();
    const ran = lines.filter((l) => l.op).length;
    assert.ok(ran > committed, `the killed worker ran ${ran}, committed ${committed}`);
    t.diagnostic(`killed with ${ran} operations run and ${committed} committed`);

    survivor = h.newWorker("survivor");
    survivor.addNamedEntity("slowcounter", () => new SlowCounter());
    await survivor.start();
    await h.poll(async () => {
      const r = await raw.unary(rawClient, "GetEntity", { instanceId: id, includeState: true });
      return r.exists && (r.entity.backlogQueueSize || 0) === 0;
    }, "the backlog drained", 40);
    assert.equal(await value(), N, "operations lost or applied twice");
  } finally {
    if (doomed.exitCode === null && doomed.signalCode === null) doomed.kill("SIGKILL");
    if (survivor) await survivor.stop();
    rawClient.close();
  }
}
