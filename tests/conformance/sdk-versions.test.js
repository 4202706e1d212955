"use strict";
// sdk-versions: orchestration and activity versions as the .NET, Java and Python SDKs use them,
// with raw gRPC calls shaped like theirs. StartInstance takes a version; the work item filters
// of GetWorkItems (the .NET SDK's versioned workers send them) take only the versions they list
// (an empty list takes any, "" takes instances without a version); a ScheduleTaskAction's
// version reaches the ActivityRequest; and continue-as-new with newVersion moves the instance
// to that version (the .NET SDK's ContinueAsNew with a new version).

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 15_000 };
const client = raw.connect();
after(() => client.close());

const startedVersion = (wi) => {
  const e = raw.startedEvent(wi);
  assert.ok(e, "the episode has no ExecutionStarted");
  return e.executionStarted.version ? e.executionStarted.version.value : undefined;
};

function start(name, instanceId, version, input) {
  return raw.unary(client, "StartInstance", { instanceId, name, version: raw.str(version), input: raw.str(input) });
}

test("work item filters route orchestrations and activities by version; \"\" takes unversioned ones, [] any", TIMEOUT, async () => {
  const O = raw.uid("ver_orch"), A = raw.uid("ver_act");
  const v1 = raw.uid("ver-1"), v2 = raw.uid("ver-2"), none = raw.uid("ver-none");
  const streams = [];
  const open = (f) => { const s = new raw.WorkStream(client, f); streams.push(s); return s; };
  try {
    await start(O, v2, "2.0");
    await start(O, none, undefined);
    await start(O, v1, "1.0");

    // a worker of version 1.0, for the orchestration and the activity
    const s1 = open(raw.filters([{ name: O, versions: ["1.0"] }], [{ name: A, versions: ["1.0"] }]));
    const wi = await s1.must(5000);
    assert.equal(wi.orchestratorRequest.instanceId, v1);
    assert.equal(startedVersion(wi), "1.0");
    assert.equal(await s1.next(500), null, "the 1.0 worker took a 2.0 or unversioned instance");
    await raw.completeOrchestration(client, wi, [
      raw.actions.scheduleTask(0, A, '"one"', { version: raw.str("1.0") }),
      raw.actions.scheduleTask(1, A, '"two"', { version: raw.str("2.0") }),
    ]);
    const t = await s1.must(5000);
    assert.ok(t.activityRequest, `expected an activity, got ${t.request}`);
    assert.equal(t.activityRequest.taskId || 0, 0);
    assert.equal(t.activityRequest.version && t.activityRequest.version.value, "1.0",
      "the ScheduleTaskAction's version is not in the ActivityRequest");
    assert.equal(await s1.next(500), null, "the 1.0 worker took the 2.0 activity");

    // "" for unversioned orchestrations, 2.0 for activities
    const s2 = open(raw.filters([{ name: O, versions: [""] }], [{ name: A, versions: ["2.0"] }]));
    const got = {};
    for (let i = 0; i < 2; i++) {
      const x = await s2.must(5000);
      got[x.request] = x;
    }
    assert.ok(got.orchestratorRequest && got.activityRequest, `got ${Object.keys(got)}`);
    assert.equal(got.orchestratorRequest.orchestratorRequest.instanceId, none);
    assert.equal(startedVersion(got.orchestratorRequest), undefined);
    assert.equal(got.activityRequest.activityRequest.taskId, 1);
    assert.equal(got.activityRequest.activityRequest.version.value, "2.0");
    assert.equal(await s2.next(500), null, "the \"\" worker took a versioned instance");

    // an empty list takes any version: the 2.0 instance, still waiting
    const s3 = open(raw.filters([{ name: O, versions: [] }], []));
    const any = await s3.must(5000);
    assert.equal(any.orchestratorRequest.instanceId, v2);
    assert.equal(startedVersion(any), "2.0");
  } finally {
    for (const s of streams) s.close();
    await raw.terminateAll(client, [v1, v2, none]);
  }
});

test("continue-as-new with newVersion moves the instance and its new generation to that version", TIMEOUT, async () => {
  const O = raw.uid("ver_can"), id = raw.uid("ver-can");
  const streams = [];
  const open = (f) => { const s = new raw.WorkStream(client, f); streams.push(s); return s; };
  try {
    await start(O, id, "1.0", '"gen1"');
    const s1 = open(raw.filters([{ name: O, versions: ["1.0"] }], []));
    const wi = await s1.must(5000);
    assert.equal(startedVersion(wi), "1.0");
    await raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_CONTINUED_AS_NEW",
      '"gen2"', { newVersion: raw.str("3.0") })]);
    assert.equal(await s1.next(700), null, "the 1.0 worker got the 3.0 generation");

    const { orchestrationState: state } = await raw.unary(client, "GetInstance", { instanceId: id, getInputsAndOutputs: true });
    assert.equal(state.version && state.version.value, "3.0");

    const s3 = open(raw.filters([{ name: O, versions: ["3.0"] }], []));
    const next = await s3.must(5000);
    assert.equal(next.orchestratorRequest.instanceId, id);
    assert.equal(startedVersion(next), "3.0");
    assert.equal(raw.startedEvent(next).executionStarted.input.value, '"gen2"');
    assert.notEqual(next.orchestratorRequest.executionId.value, wi.orchestratorRequest.executionId.value,
      "the new generation kept the old execution id");
    await raw.completeOrchestration(client, next, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"done"')]);

    const done = await raw.waitDone(client, id);
    assert.equal(done.orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
    assert.equal(done.version.value, "3.0");
    const started = (await raw.history(client, id)).filter((e) => e.executionStarted);
    assert.equal(started.length, 1, "the current run's history has one ExecutionStarted");
    assert.equal(started[0].executionStarted.version.value, "3.0");
  } finally {
    for (const s of streams) s.close();
    await raw.terminateAll(client, [id]);
  }
});
