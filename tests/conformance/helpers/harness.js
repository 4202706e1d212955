"use strict";
// Shared plumbing for the conformance specs: one worker and one client per test, pointed at
// the `dtask serve` that run.sh started (its address is in ENDPOINT), stopped on every path.

const assert = require("node:assert/strict");
const { randomUUID } = require("node:crypto");
const {
  TaskHubGrpcClient,
  TaskHubGrpcWorker,
  OrchestrationStatus,
} = require("@microsoft/durabletask-js");

const ENDPOINT = process.env.ENDPOINT;
if (!ENDPOINT) {
  throw new Error("ENDPOINT is not set: run the specs through tests/conformance/run.sh");
}

// Bounds used by every spec: a test gets TEST_TIMEOUT_MS, a wait on one instance WAIT_S.
const TEST_TIMEOUT_MS = 30_000;
const WAIT_S = 25;

const verbose = !!process.env.CONFORMANCE_VERBOSE;

// The SDK logs every work item at info level, and at error level every failure, including the
// ones a spec provokes on purpose. Its warnings and errors are kept per test and printed when the
// test fails (they often point at the server); with CONFORMANCE_VERBOSE=1 everything is printed
// as it happens.
let kept = [];

function makeLogger(who) {
  const line = (level, message, args) =>
    `[${who} ${level}] ${message}${args.length ? " " + args.map(String).join(" ") : ""}\n`;
  const keep = (level) => (m, ...a) => {
    if (verbose) process.stderr.write(line(level, m, a));
    else kept.push(line(level, m, a));
  };
  const show = (level) => (m, ...a) => verbose && process.stderr.write(line(level, m, a));
  return { error: keep("error"), warn: keep("warn"), info: show("info"), debug: show("debug") };
}

// Runs BODY; if it throws, prints the SDK warnings and errors logged meanwhile, then rethrows.
async function showLogsOnFailure(body) {
  kept = [];
  try {
    return await body();
  } catch (e) {
    if (kept.length) process.stderr.write("SDK warnings and errors during the failed test:\n" + kept.join(""));
    throw e;
  } finally {
    kept = [];
  }
}

function newWorker(who = "worker", options = {}) {
  return new TaskHubGrpcWorker({ hostAddress: ENDPOINT, logger: makeLogger(who), ...options });
}

function newClient() {
  return new TaskHubGrpcClient({ hostAddress: ENDPOINT, logger: makeLogger("client") });
}

// A unique instance id (or prefix) that names the test it belongs to.
function uid(label) {
  return `${label}-${randomUUID().replace(/-/g, "").slice(0, 12)}`;
}

// Runs BODY with a started worker (orchestrators and activities registered by name) and a
// client; stops both afterwards, whatever BODY did. With start: false the worker is registered
// but BODY starts it (for work that must be queued before any worker is connected).
async function withHub({ orchestrators = {}, activities = {}, entities = {}, start = true, workerOptions = {} }, body) {
  const worker = newWorker("worker", workerOptions);
  for (const [name, fn] of Object.entries(orchestrators)) worker.addNamedOrchestrator(name, fn);
  for (const [name, fn] of Object.entries(activities)) worker.addNamedActivity(name, fn);
  for (const [name, factory] of Object.entries(entities)) worker.addNamedEntity(name, factory);
  const client = newClient();
  let started = false;
  const startWorker = async () => {
    await worker.start();
    started = true;
  };
  try {
    if (start) await startWorker();
    return await showLogsOnFailure(() => body({ client, worker, startWorker }));
  } finally {
    const stops = [client.stop()];
    if (started) stops.push(worker.stop());
    await Promise.allSettled(stops);
  }
}

// Waits for ID to reach a terminal status and returns its state (with payloads).
async function waitDone(client, id, seconds = WAIT_S) {
  const state = await client.waitForOrchestrationCompletion(id, true, seconds);
  assert.ok(state, `instance ${id} does not exist`);
  return state;
}

// Asserts STATE completed with OUTPUT (compared as parsed JSON).
function assertCompleted(state, output) {
  assert.equal(
    OrchestrationStatus[state.runtimeStatus],
    "COMPLETED",
    `instance ${state.instanceId} is ${OrchestrationStatus[state.runtimeStatus]}` +
      (state.failureDetails ? `: ${state.failureDetails.errorType}: ${state.failureDetails.message}` : ""),
  );
  if (arguments.length > 1) {
    assert.notEqual(state.serializedOutput, undefined, "completed instance has no output");
    assert.deepEqual(JSON.parse(state.serializedOutput), output);
  }
  assert.equal(state.failureDetails, undefined, "a completed instance has no failure details");
}

function statusName(state) {
  return state ? OrchestrationStatus[state.runtimeStatus] : "missing";
}

// Polls PROBE every 100 ms until it returns a truthy value, for at most SECONDS.
async function poll(probe, what, seconds = WAIT_S) {
  const deadline = Date.now() + seconds * 1000;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`timed out after ${seconds}s waiting for ${what}`);
    await sleep(100);
  }
}

// Waits until instance ID shows custom status VALUE (a sign that it reached that point).
async function waitCustomStatus(client, id, value, seconds = WAIT_S) {
  const want = JSON.stringify(value);
  return poll(async () => {
    const s = await client.getOrchestrationState(id, true);
    return s && s.serializedCustomStatus === want ? s : undefined;
  }, `custom status ${want} on ${id}`, seconds);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The history event types of ID, in order.
async function historyTypes(client, id) {
  return (await client.getOrchestrationHistory(id)).map((e) => e.type);
}

function count(list, value) {
  return list.filter((x) => x === value).length;
}

module.exports = {
  ENDPOINT,
  TEST_TIMEOUT_MS,
  WAIT_S,
  makeLogger,
  showLogsOnFailure,
  newWorker,
  newClient,
  uid,
  withHub,
  waitDone,
  assertCompleted,
  statusName,
  poll,
  waitCustomStatus,
  sleep,
  historyTypes,
  count,
};
