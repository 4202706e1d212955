"use strict";
// Trace context, tags and failure properties, as the .NET, Java and Python SDKs send them:
// the client's parentTraceContext on StartInstance and the worker's on scheduleTask and
// createSubOrchestration reach the history events and the work items of the activity and of
// the child (so the SDKs' spans join one trace); the orchestrationTraceContext a worker
// returns comes back on its next episode (one orchestration span across episodes); per-action
// tags are kept on the events and the child instance; TaskFailureDetails.properties survive an
// activity failure and an orchestration failure.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const CLIENT_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TASK_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";
const CHILD_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01";
const tagsOf = (m) => Object.fromEntries(Object.entries(m.tags || {}));

test("trace context, tags and failure properties reach the events, work items and states", { timeout: 30_000 }, async () => {
  const client = raw.connect();
  const orch = raw.uid("traced"), child = raw.uid("traced-child"), act = raw.uid("traced-act");
  const work = new raw.WorkStream(client, raw.filters([orch, child], [act]));
  const ids = [orch, `${orch}-c`];
  try {
    await raw.unary(client, "StartInstance", {
      name: orch, instanceId: orch, tags: { team: "payments" },
      parentTraceContext: { traceParent: CLIENT_TP, traceState: raw.str("vendor=1") },
    });
    let wi = await work.must();
    const started = raw.startedEvent(wi).executionStarted;
    assert.equal(started.parentTraceContext.traceParent, CLIENT_TP);
    assert.equal(started.parentTraceContext.traceState.value, "vendor=1");
    assert.deepEqual(tagsOf(started), { team: "payments" });
    assert.equal(wi.orchestratorRequest.orchestrationTraceContext, undefined);   // none reported yet

    const spanStart = raw.ts(Date.parse("2026-11-30T10:00:00.250Z"));
    await raw.completeOrchestration(client, wi, [
      { id: 0, scheduleTask: { name: act, input: raw.str("1"), tags: { step: "charge" }, parentTraceContext: { traceParent: TASK_TP } } },
      { id: 1, createSubOrchestration: { instanceId: `${orch}-c`, name: child, input: raw.str("2"), tags: { kind: "child" }, parentTraceContext: { traceParent: CHILD_TP } } },
    ], { orchestrationTraceContext: { spanID: raw.str("a1b2c3d4e5f60718"), spanStartTime: spanStart } });

    // the activity and the child, in either order
    let activity, childItem;
    while (!activity || !childItem) {
      const x = await work.must();
      if (x.activityRequest) activity = x;
      else if (x.orchestratorRequest.instanceId === `${orch}-c`) childItem = x;
      else assert.fail(`unexpected work item for ${x.orchestratorRequest.instanceId}`);
    }
    assert.equal(activity.activityRequest.parentTraceContext.traceParent, TASK_TP);
    assert.deepEqual(tagsOf(activity.activityRequest), { step: "charge" });
    const childStarted = raw.startedEvent(childItem).executionStarted;
    assert.equal(childStarted.parentTraceContext.traceParent, CHILD_TP);
    assert.deepEqual(tagsOf(childStarted), { kind: "child" });
    const childState = (await raw.unary(client, "GetInstance", { instanceId: `${orch}-c` })).orchestrationState;
    assert.deepEqual(tagsOf(childState), { kind: "child" });
    await raw.completeOrchestration(client, childItem, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", "3")]);

    // the activity fails with the SDK's exception properties
    const props = {
      code: { number_value: 42 }, retryable: { bool_value: false }, region: { string_value: "eu" },
      detail: { struct_value: { fields: { path: { string_value: "/x" }, tries: { list_value: { values: [{ number_value: 1 }, { null_value: "NULL_VALUE" }] } } } } },
    };
    await raw.unary(client, "CompleteActivityTask", {
      instanceId: orch, taskId: 0, completionToken: activity.completionToken,
      failureDetails: { errorType: "PaymentDeclined", errorMessage: "declined", properties: props },
    });

    // the parent's next episodes: the span it reported comes back; the failure keeps its properties
    let failed;
    while (!failed) {
      wi = await work.must();
      assert.equal(wi.orchestratorRequest.instanceId, orch);
      const otc = wi.orchestratorRequest.orchestrationTraceContext;
      assert.equal(otc.spanID.value, "a1b2c3d4e5f60718");
      assert.equal(Number(otc.spanStartTime.seconds), spanStart.seconds);
      const events = [...wi.orchestratorRequest.pastEvents, ...wi.orchestratorRequest.newEvents];
      const scheduled = events.find((e) => e.taskScheduled);
      assert.equal(scheduled.taskScheduled.parentTraceContext.traceParent, TASK_TP);
      assert.deepEqual(tagsOf(scheduled.taskScheduled), { step: "charge" });
      const created = events.find((e) => e.subOrchestrationInstanceCreated);
      assert.deepEqual(tagsOf(created.subOrchestrationInstanceCreated), { kind: "child" });
      failed = events.find((e) => e.taskFailed);
      if (!failed) await raw.completeOrchestration(client, wi, []);
    }
    const fp = failed.taskFailed.failureDetails.properties;
    assert.equal(fp.code.number_value, 42);
    assert.equal(fp.retryable.bool_value || false, false);
    assert.equal(fp.region.string_value, "eu");
    assert.equal(fp.detail.struct_value.fields.path.string_value, "/x");
    assert.equal(fp.detail.struct_value.fields.tries.list_value.values[0].number_value, 1);
    assert.ok("null_value" in fp.detail.struct_value.fields.tries.list_value.values[1]);

    // the orchestration fails with properties of its own: kept on the instance
    await raw.completeOrchestration(client, wi, [raw.actions.complete(2, "ORCHESTRATION_STATUS_FAILED", undefined, {
      failureDetails: { errorType: "OrderFailed", errorMessage: "payment", properties: { orderId: { string_value: "o-7" } } },
      tags: { outcome: "declined", team: "billing" },
    })]);
    const st = await raw.waitDone(client, orch);
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(st.failureDetails.properties.orderId.string_value, "o-7");
    assert.deepEqual(tagsOf(st), { outcome: "declined", team: "billing" });   // the completion's tags join in

    // and the stored history has it all
    const h = await raw.history(client, orch);
    assert.equal(h.find((e) => e.executionStarted).executionStarted.parentTraceContext.traceParent, CLIENT_TP);
    assert.equal(h.find((e) => e.taskScheduled).taskScheduled.parentTraceContext.traceParent, TASK_TP);
    assert.equal(h.find((e) => e.taskFailed).taskFailed.failureDetails.properties.code.number_value, 42);
  } finally {
    await raw.terminateAll(client, ids);
    work.close();
    client.close();
  }
});

test("failure properties nested too deep are refused, naming the field", { timeout: 10_000 }, async () => {
  const client = raw.connect();
  const orch = raw.uid("bad-tags");
  try {
    // a failure property nested past the limit is refused with the field named
    let deep = { string_value: "x" };
    for (let i = 0; i < 40; i++) deep = { list_value: { values: [deep] } };
    const work = new raw.WorkStream(client, raw.filters([orch], []));
    try {
      await raw.unary(client, "StartInstance", { name: orch, instanceId: orch });
      const wi = await work.must();
      const e = await raw.rejection(raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_FAILED", undefined, {
        failureDetails: { errorType: "X", errorMessage: "y", properties: { deep } },
      })]));
      assert.equal(e.code, raw.grpc.status.INVALID_ARGUMENT);
      assert.match(e.details, /properties/);
    } finally {
      work.close();
    }
  } finally {
    await raw.terminateAll(client, [orch]);
    client.close();
  }
});

test("a client already waiting is told an orchestration failure that has properties", { timeout: 30_000 }, async () => {
  const client = raw.connect();
  const orch = raw.uid("fails-with-props");
  const work = new raw.WorkStream(client, raw.filters([orch], []));
  try {
    await raw.unary(client, "StartInstance", { name: orch, instanceId: orch });
    const wi = await work.must();
    const waiting = raw.waitDone(client, orch, 20_000);
    // answered after the wait's request, sent before it, was taken: the wait is made before
    // the failure commits
    await raw.unary(client, "GetInstance", { instanceId: orch });
    await raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_FAILED", undefined, {
      failureDetails: { errorType: "Declined", errorMessage: "no funds", properties: { code: { number_value: 7 } } },
    })]);
    const st = await waiting;
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(st.failureDetails.errorType, "Declined");
    assert.equal(st.failureDetails.properties.code.number_value, 7);
  } finally {
    await raw.terminateAll(client, [orch]);
    work.close();
    client.close();
  }
});
