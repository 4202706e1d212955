"use strict";
// sdk-reuse: StartInstance's orchestrationIdReusePolicy, with raw gRPC calls shaped like the
// .NET and Java SDKs'. The .NET SDK's "dedupe statuses" send a policy whose replaceableStatus
// lists the statuses that may be replaced; one that lists none (dedupe every status) must
// refuse to replace a completed instance, which is left untouched, where a start with no
// policy at all (the JavaScript and Python SDKs) replaces it. A policy listing COMPLETED
// replaces a completed instance, but not a running one.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 15_000 };
const { status } = raw.grpc;
const client = raw.connect();
after(() => client.close());

const COMPLETED = "ORCHESTRATION_STATUS_COMPLETED";

// runToEnd: the next episode on S is one of ID's; complete it with OUTPUT (its own input when
// OUTPUT is undefined). Returns the episode's work item.
async function runToEnd(s, id, output) {
  const wi = await s.must(5000);
  assert.equal(wi.orchestratorRequest.instanceId, id);
  const input = raw.startedEvent(wi).executionStarted.input;
  await raw.completeOrchestration(client, wi, [raw.actions.complete(0, COMPLETED, output ?? (input && input.value))]);
  const state = await raw.waitDone(client, id);
  assert.equal(state.orchestrationStatus, COMPLETED);
  return wi;
}

const start = (name, instanceId, input, policy) =>
  raw.unary(client, "StartInstance", { instanceId, name, input: raw.str(input), orchestrationIdReusePolicy: policy });
const get = async (instanceId) =>
  (await raw.unary(client, "GetInstance", { instanceId, getInputsAndOutputs: true })).orchestrationState;

test("a reuse policy with no statuses refuses to replace a completed instance, and leaves it untouched", TIMEOUT, async () => {
  const O = raw.uid("reuse_none"), id = raw.uid("reuse-none");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await start(O, id, '"first"');
    await runToEnd(s, id);
    const before = await get(id);
    const historyBefore = await raw.history(client, id);

    const e = await raw.rejection(start(O, id, '"second"', { replaceableStatus: [] }));
    assert.equal(e.code, status.ALREADY_EXISTS, `refused with ${e.code}: ${e.details}`);
    assert.match(e.details, new RegExp(`'${id}' already exists with status Completed`));

    assert.deepEqual(await get(id), before, "the refused start changed the instance");
    assert.deepEqual(await raw.history(client, id), historyBefore, "the refused start changed the history");
    assert.equal(await s.next(500), null, "the refused start ran the orchestration again");
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a reuse policy naming COMPLETED replaces a completed instance with a new run", TIMEOUT, async () => {
  const O = raw.uid("reuse_done"), id = raw.uid("reuse-done");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await start(O, id, '"first"');
    const first = await runToEnd(s, id);
    await start(O, id, '"second"', { replaceableStatus: [COMPLETED] });
    const second = await runToEnd(s, id);
    assert.notEqual(second.orchestratorRequest.executionId.value, first.orchestratorRequest.executionId.value,
      "the replacing run kept the old execution id");
    assert.deepEqual(second.orchestratorRequest.pastEvents, [], "the replacing run was handed the old history");
    const state = await get(id);
    assert.equal(state.input.value, '"second"');
    assert.equal(state.output.value, '"second"');
    const h = await raw.history(client, id);
    assert.equal(h.filter((e) => e.executionStarted).length, 1, "the old run's history is still there");
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("without a reuse policy a completed instance is replaced; a policy naming COMPLETED does not replace a running one", TIMEOUT, async () => {
  const O = raw.uid("reuse_default"), id = raw.uid("reuse-default");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await start(O, id, '"first"');
    await runToEnd(s, id);
    await start(O, id, '"second"');   // no policy: a finished instance is replaced
    const wi = await s.must(5000);
    assert.equal(raw.startedEvent(wi).executionStarted.input.value, '"second"');
    await raw.completeOrchestration(client, wi, []);   // running now, waiting for nothing

    const e = await raw.rejection(start(O, id, '"third"', { replaceableStatus: [COMPLETED] }));
    assert.equal(e.code, status.ALREADY_EXISTS, `refused with ${e.code}: ${e.details}`);
    assert.match(e.details, /already exists with status Running/);
    const state = await get(id);
    assert.equal(state.orchestrationStatus, undefined, `expected RUNNING, got ${state.orchestrationStatus}`);   // RUNNING is 0
    assert.equal(state.input.value, '"second"');
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});
