"use strict";
// sdk-payloads: large-payload tokens, with raw gRPC calls shaped like the .NET, Java and Python
// SDKs'. Their payload offload stores a large payload elsewhere and sends a token such as
// "blob:v1:container/abc" in its place; the server must pass a token through untouched wherever
// a payload goes (StartInstance input, activity input and result, RaiseEvent data,
// orchestration output), and still refuse, with INVALID_ARGUMENT naming the field, client text
// that is neither JSON nor a token.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 15_000 };
const { status } = raw.grpc;
const client = raw.connect();
after(() => client.close());

const INPUT = "blob:v1:payloads/input-1";
const ACT_RESULT = "blob:v1:payloads/activity-result-1";
const EVENT = "blob:v2:payloads/event-1";
const OUTPUT = "blob:v1:payloads/output-1";

test("large-payload tokens pass through untouched as input, activity input and result, event data and output", TIMEOUT, async () => {
  const O = raw.uid("tok_orch"), A = raw.uid("tok_act"), id = raw.uid("tok");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O, input: raw.str(INPUT) });
    let wi = await s.must(5000);
    assert.equal(raw.startedEvent(wi).executionStarted.input.value, INPUT);
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, INPUT)]);

    const t = await s.must(5000);
    assert.equal(t.activityRequest.input.value, INPUT, "the activity's input changed on the way");
    await raw.completeActivity(client, t, ACT_RESULT);
    wi = await s.must(5000);
    const done = wi.orchestratorRequest.newEvents.find((e) => e.taskCompleted);
    assert.ok(done, "the episode has no TaskCompleted");
    assert.equal(done.taskCompleted.result.value, ACT_RESULT);
    await raw.completeOrchestration(client, wi, []);   // now it waits for an event

    await raw.unary(client, "RaiseEvent", { instanceId: id, name: "data", input: raw.str(EVENT) });
    wi = await s.must(5000);
    const raised = wi.orchestratorRequest.newEvents.find((e) => e.eventRaised);
    assert.ok(raised, "the episode has no EventRaised");
    assert.equal(raised.eventRaised.input.value, EVENT);
    await raw.completeOrchestration(client, wi, [raw.actions.complete(1, "ORCHESTRATION_STATUS_COMPLETED", OUTPUT)]);

    const state = await raw.waitDone(client, id);
    assert.equal(state.orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
    assert.equal(state.input.value, INPUT);
    assert.equal(state.output.value, OUTPUT);
    const h = await raw.history(client, id);
    const payloads = h.map((e) => (e.executionStarted && e.executionStarted.input.value) ||
      (e.taskScheduled && e.taskScheduled.input.value) || (e.taskCompleted && e.taskCompleted.result.value) ||
      (e.eventRaised && e.eventRaised.input.value) || (e.executionCompleted && e.executionCompleted.result.value))
      .filter(Boolean);
    assert.deepEqual(payloads, [INPUT, INPUT, ACT_RESULT, EVENT, OUTPUT]);
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("client payloads that are neither JSON nor a token are refused with INVALID_ARGUMENT naming the field", TIMEOUT, async () => {
  const O = raw.uid("tok_bad"), id = raw.uid("tok-bad"), live = raw.uid("tok-live");
  try {
    // not JSON, and not tokens: no scheme version, no number, nothing after the version, a space
    for (const input of ["not json", "blob:container/abc", "blob:vx:container/abc", "blob:v1:", "blob:v1:has space"]) {
      const e = await raw.rejection(raw.unary(client, "StartInstance", { instanceId: id, name: O, input: raw.str(input) }));
      assert.equal(e.code, status.INVALID_ARGUMENT, `input '${input}': ${e.code} ${e.details}`);
      assert.match(e.details, /input is not valid JSON/, `input '${input}'`);
    }
    const got = await raw.unary(client, "GetInstance", { instanceId: id });
    assert.ok(!got.exists, "a refused start created the instance");

    await raw.unary(client, "StartInstance", { instanceId: live, name: O, input: raw.str(INPUT) });
    let e = await raw.rejection(raw.unary(client, "RaiseEvent", { instanceId: live, name: "x", input: raw.str("blob:v1: x") }));
    assert.equal(e.code, status.INVALID_ARGUMENT, `event data: ${e.code} ${e.details}`);
    assert.match(e.details, /event data is not valid JSON/);
    e = await raw.rejection(raw.unary(client, "TerminateInstance", { instanceId: live, output: raw.str("{oops") }));
    assert.equal(e.code, status.INVALID_ARGUMENT, `terminate output: ${e.code} ${e.details}`);
    assert.match(e.details, /terminate output is not valid JSON/);

    const h = await raw.history(client, live);
    assert.ok(!h.some((e) => e.eventRaised || e.executionTerminated), "a refused call changed the history");
    const { orchestrationState: s } = await raw.unary(client, "GetInstance", { instanceId: live, getInputsAndOutputs: true });
    assert.ok(["ORCHESTRATION_STATUS_PENDING", undefined].includes(s.orchestrationStatus),
      `the instance is ${s.orchestrationStatus} after refused calls`);   // undefined: RUNNING (0)
    assert.equal(s.input.value, INPUT);
  } finally {
    await raw.terminateAll(client, [id, live]);
  }
});

// A worker's payloads are what its data converter made of them (the SDKs let users plug in any
// serializer): the server stores and hands them back as they came, checking only what clients
// send it. The HTTP API shows a payload that is not JSON as a string.
test("a worker's activity result and output that are not JSON are kept as they came", TIMEOUT, async () => {
  const O = raw.uid("tok_wres"), A = raw.uid("tok_wres_act"), id = raw.uid("tok-wres");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    let wi = await s.must(5000);
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, '"x"')]);
    const t = await s.must(5000);
    await raw.completeActivity(client, t, "<result>7</result>");
    wi = await s.must(5000);
    const done = wi.orchestratorRequest.newEvents.find((e) => e.taskCompleted);
    assert.equal(done.taskCompleted.result.value, "<result>7</result>");
    await raw.completeOrchestration(client, wi,
      [raw.actions.complete(1, "ORCHESTRATION_STATUS_COMPLETED", "<output/>")]);
    const st = await raw.waitDone(client, id);
    assert.equal(st.output.value, "<output/>");
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});
