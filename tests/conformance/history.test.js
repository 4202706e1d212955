"use strict";
// getOrchestrationHistory (StreamInstanceHistory): what a finished instance's history holds.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers/harness");

const hub = {
  activities: { hist_hello: (_ctx, name) => `Hello ${name}` },
  orchestrators: {
    hist_child: async function* (_ctx, input) {
      return `child got ${input}`;
    },
    hist_activity_timer_child: async function* (ctx) {
      const greeting = yield ctx.callActivity("hist_hello", "history");
      yield ctx.createTimer(0.2);
      const child = yield ctx.callSubOrchestrator("hist_child", greeting, { instanceId: `${ctx.instanceId}-child` });
      return child;
    },
  },
};

test("history of activity, timer and sub-orchestration has the expected events in order", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(hub, async ({ client }) => {
    const id = await client.scheduleNewOrchestration("hist_activity_timer_child", "in", h.uid("hist"));
    h.assertCompleted(await h.waitDone(client, id), "child got Hello history");

    const history = await client.getOrchestrationHistory(id);
    const types = history.map((e) => e.type);
    assert.deepEqual(types, [
      "OrchestratorStarted",
      "ExecutionStarted",
      "TaskScheduled",
      "OrchestratorStarted",
      "TaskCompleted",
      "TimerCreated",
      "OrchestratorStarted",
      "TimerFired",
      "SubOrchestrationInstanceCreated",
      "OrchestratorStarted",
      "SubOrchestrationInstanceCompleted",
      "ExecutionCompleted",
    ]);
  }),
);

test("history events carry their names, payloads, ids and links", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(hub, async ({ client }) => {
    const t0 = Date.now();
    const id = await client.scheduleNewOrchestration("hist_activity_timer_child", "in", h.uid("histf"));
    h.assertCompleted(await h.waitDone(client, id));
    const history = await client.getOrchestrationHistory(id);
    const types = history.map((e) => e.type);
    const one = (type) => {
      assert.equal(h.count(types, type), 1, `${type} appears ${h.count(types, type)} times: ${types.join(",")}`);
      return history.find((e) => e.type === type);
    };

    assert.equal(h.count(types, "OrchestratorCompleted"), 0, "OrchestratorCompleted is not stored");

    const started = one("ExecutionStarted");
    assert.equal(started.name, "hist_activity_timer_child");
    assert.equal(started.input, '"in"');
    assert.equal(started.orchestrationInstance?.instanceId, id);
    assert.match(started.orchestrationInstance?.executionId ?? "", /^[0-9a-f]{32}$/);

    const scheduled = one("TaskScheduled");
    assert.equal(scheduled.name, "hist_hello");
    assert.equal(scheduled.input, '"history"');
    const completed = one("TaskCompleted");
    assert.equal(completed.taskScheduledId, scheduled.eventId);
    assert.equal(completed.result, '"Hello history"');

    const timerCreated = one("TimerCreated");
    const timerFired = one("TimerFired");
    assert.equal(timerFired.timerId, timerCreated.eventId);

    const subCreated = one("SubOrchestrationInstanceCreated");
    assert.equal(subCreated.name, "hist_child");
    assert.equal(subCreated.instanceId, `${id}-child`);
    assert.equal(subCreated.input, '"Hello history"');
    const subCompleted = one("SubOrchestrationInstanceCompleted");
    assert.equal(subCompleted.taskScheduledId, subCreated.eventId);
    assert.equal(subCompleted.result, '"child got Hello history"');

    const end = one("ExecutionCompleted");
    assert.equal(end.orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
    assert.equal(end.result, '"child got Hello history"');
    assert.equal(history[history.length - 1], end, "ExecutionCompleted is last");

    // numbered as the Durable Task Scheduler numbers them (its export of a history shows
    // it): action events 1, 2, 3 in the order they were scheduled, ExecutionCompleted by the
    // completing action's id (4), ExecutionStarted 0, the rest -1
    assert.deepEqual([scheduled.eventId, timerCreated.eventId, subCreated.eventId, end.eventId], [1, 2, 3, 4]);
    assert.equal(started.eventId, 0);
    for (const e of history) {
      if (!["TaskScheduled", "TimerCreated", "SubOrchestrationInstanceCreated", "ExecutionCompleted", "ExecutionStarted"].includes(e.type)) {
        assert.equal(e.eventId, -1, `${e.type} has eventId ${e.eventId}`);
      }
      assert.ok(e.timestamp instanceof Date, `${e.type} has no timestamp`);
      assert.ok(e.timestamp.getTime() >= t0 - 1000 && e.timestamp.getTime() <= Date.now() + 1000,
        `${e.type} timestamp ${e.timestamp.toISOString()} is not now`);
    }

    // the child has its own history, which names its parent
    const childStarted = (await client.getOrchestrationHistory(`${id}-child`)).find((e) => e.type === "ExecutionStarted");
    assert.equal(childStarted.parentInstance?.orchestrationInstance?.instanceId, id);
    assert.equal(childStarted.parentInstance?.name, "hist_activity_timer_child");
    assert.equal(childStarted.parentInstance?.taskScheduledId, subCreated.eventId);
  }),
);

test("history of a failed instance ends with ExecutionCompleted carrying the failure", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        hist_fails: async function* () {
          throw new RangeError("out of range");
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("hist_fails", undefined, h.uid("histfail"));
      assert.equal(h.statusName(await h.waitDone(client, id)), "FAILED");
      const history = await client.getOrchestrationHistory(id);
      const end = history[history.length - 1];
      assert.equal(end.type, "ExecutionCompleted");
      assert.equal(end.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
      assert.equal(end.failureDetails?.errorType, "RangeError");
      assert.equal(end.failureDetails?.message, "out of range");
    },
  ),
);
