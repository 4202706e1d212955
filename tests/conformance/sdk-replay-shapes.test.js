"use strict";
// sdk-replay-shapes: two history shapes the Python SDK writes in plain orchestrations, driven
// with raw gRPC calls shaped like its worker's. (a) It retries an activity under the task id
// of the attempt that failed (TaskScheduled 0, TaskFailed 0, TimerCreated 1, TimerFired 1,
// TaskScheduled 0 again): the second TaskFailed 0 answers the second scheduling and must reach
// the worker and the history, or the next replay meets a retry it cannot explain and fails
// with a non-determinism error instead of the activity's failure. (b) It continues-as-new
// carrying over events it has not consumed while others wait in the inbox: the new generation
// must read ExecutionStarted, the carried-over events, then the waiting ones in arrival order.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 15_000 };
const client = raw.connect();
after(() => client.close());

// the events of an episode that matter to replay (OrchestratorStarted/Completed left out), as
// "type" or "type id"
function shape(events) {
  return events.filter((e) => !e.orchestratorStarted && !e.orchestratorCompleted).map((e) => {
    const t = e.eventType;
    const id = e.taskScheduled || e.timerCreated ? e.eventId || 0
      : e.taskFailed ? e.taskFailed.taskScheduledId || 0
        : e.timerFired ? e.timerFired.timerId || 0 : undefined;
    return id === undefined ? t : `${t} ${id}`;
  });
}

const failActivity = (t, message) => raw.completeActivity(client, t, undefined,
  { failureDetails: { errorType: "IOError", errorMessage: message } });

test("a retry scheduled under the failed attempt's task id gets its own TaskFailed, and the orchestration fails with it", TIMEOUT, async () => {
  const O = raw.uid("py_retry"), A = raw.uid("py_flaky"), id = raw.uid("retry");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    let wi = await s.must(5000);
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, '"try"')]);
    let t = await s.must(5000);
    assert.equal(t.activityRequest.taskId || 0, 0);
    await failActivity(t, "attempt 1");

    wi = await s.must(5000);
    const first = wi.orchestratorRequest.newEvents.filter((e) => e.taskFailed);
    assert.equal(first.length, 1, "the first attempt's TaskFailed did not reach the worker");
    assert.equal(first[0].taskFailed.failureDetails.errorMessage, "attempt 1");
    // the Python SDK's retry: a timer (id 1), then the activity again under id 0
    await raw.completeOrchestration(client, wi, [{ id: 1, createTimer: { fireAt: raw.ts(Date.now()) } }]);
    wi = await s.must(5000);
    assert.ok(wi.orchestratorRequest.newEvents.some((e) => e.timerFired), "the retry timer did not fire");
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, '"try"')]);
    t = await s.must(5000);
    assert.equal(t.activityRequest.taskId || 0, 0, "the retry runs under task id 0");
    await failActivity(t, "attempt 2");

    wi = await s.must(5000);
    const r = wi.orchestratorRequest;
    const second = r.newEvents.filter((e) => e.taskFailed);
    assert.equal(second.length, 1, "the retry's TaskFailed was dropped as a duplicate");
    assert.equal(second[0].taskFailed.failureDetails.errorMessage, "attempt 2");
    // the whole history as the Python SDK replays it: every scheduling has its answer
    assert.deepEqual(shape([...r.pastEvents, ...r.newEvents]), ["executionStarted", "taskScheduled 0",
      "taskFailed 0", "timerCreated 1", "timerFired 1", "taskScheduled 0", "taskFailed 0"]);
    await raw.completeOrchestration(client, wi, [raw.actions.complete(2, "ORCHESTRATION_STATUS_FAILED", undefined,
      { failureDetails: second[0].taskFailed.failureDetails })]);

    const state = await raw.waitDone(client, id);
    assert.equal(state.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(state.failureDetails.errorType, "IOError");
    assert.equal(state.failureDetails.errorMessage, "attempt 2");
    const h = await raw.history(client, id);
    assert.deepEqual(shape(h), ["executionStarted", "taskScheduled 0", "taskFailed 0", "timerCreated 1",
      "timerFired 1", "taskScheduled 0", "taskFailed 0", "executionCompleted"]);
    assert.deepEqual(h.filter((e) => e.taskFailed).map((e) => e.taskFailed.failureDetails.errorMessage),
      ["attempt 1", "attempt 2"]);
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("continue-as-new with carried-over events while others wait: ExecutionStarted, carried, then waiting, in order", TIMEOUT, async () => {
  const O = raw.uid("py_counter"), id = raw.uid("carry");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  const raised = (e) => `${e.eventRaised.name}=${e.eventRaised.input && e.eventRaised.input.value}`;
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O, input: raw.str('"gen1"') });
    const wi = await s.must(5000);
    // events 3 and 4 arrive while the episode that continues-as-new is in flight
    await raw.unary(client, "RaiseEvent", { instanceId: id, name: "e3", input: raw.str("3") });
    await raw.unary(client, "RaiseEvent", { instanceId: id, name: "e4", input: raw.str("4") });
    const carried = { eventId: -1, timestamp: raw.ts(Date.now()), eventRaised: { name: "e2", input: raw.str("2") } };
    await raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_CONTINUED_AS_NEW",
      '"gen2"', { carryoverEvents: [carried] })]);

    const next = await s.must(5000);
    const r = next.orchestratorRequest;
    assert.deepEqual(r.pastEvents, [], "the new generation was handed the old one's history");
    const events = r.newEvents[0] && r.newEvents[0].orchestratorStarted ? r.newEvents.slice(1) : r.newEvents;
    assert.deepEqual(events.map((e) => (e.eventRaised ? raised(e) : e.eventType)),
      ["executionStarted", "e2=2", "e3=3", "e4=4"]);
    assert.equal(events[0].executionStarted.input.value, '"gen2"');
    assert.notEqual(r.executionId.value, wi.orchestratorRequest.executionId.value);
    await raw.completeOrchestration(client, next, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"done"')]);

    const state = await raw.waitDone(client, id);
    assert.equal(state.orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
    const h = (await raw.history(client, id)).filter((e) => !e.orchestratorStarted && !e.orchestratorCompleted);
    assert.deepEqual(h.map((e) => (e.eventRaised ? raised(e) : e.eventType)),
      ["executionStarted", "e2=2", "e3=3", "e4=4", "executionCompleted"]);
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});
