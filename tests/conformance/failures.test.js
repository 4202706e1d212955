"use strict";
// Failures: an activity's error fails the instance with details the client can read, an
// orchestrator's own error keeps its type and message, and retry policies re-run activities.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { RetryPolicy } = require("@microsoft/durabletask-js");
const h = require("./helpers/harness");

class InventoryError extends Error {
  constructor(message) {
    super(message);
    this.name = "InventoryError";
  }
}

test("an activity's uncaught error fails the instance with failure details the client sees", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      activities: {
        fail_reserve: (_ctx, item) => {
          throw new InventoryError(`out of stock: ${item}`);
        },
      },
      orchestrators: {
        fail_order: async function* (ctx, item) {
          yield ctx.callActivity("fail_reserve", item);
          return "reserved";
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("fail_order", "widget", h.uid("actfail"));
      const state = await h.waitDone(client, id);
      assert.equal(h.statusName(state), "FAILED");
      assert.equal(state.serializedOutput, undefined, "a failed instance has no output");
      assert.ok(state.failureDetails, "a failed instance has failure details");
      assert.equal(state.failureDetails.errorType, "TaskFailedError");
      assert.match(state.failureDetails.message, /out of stock: widget/);
      assert.throws(() => state.raiseIfFailed());

      const history = await client.getOrchestrationHistory(id);
      const failed = history.find((e) => e.type === "TaskFailed");
      assert.ok(failed, "history has TaskFailed");
      assert.equal(failed.failureDetails.errorType, "InventoryError");
      assert.equal(failed.failureDetails.message, "out of stock: widget");
      const done = history.find((e) => e.type === "ExecutionCompleted");
      assert.ok(done, "history ends with ExecutionCompleted");
      assert.equal(done.failureDetails.errorType, "TaskFailedError");
    },
  ),
);

test("an orchestrator that catches an activity error sees its type and message", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      activities: {
        fail_reserve_caught: () => {
          throw new InventoryError("out of stock: gadget");
        },
      },
      orchestrators: {
        fail_order_caught: async function* (ctx) {
          try {
            yield ctx.callActivity("fail_reserve_caught");
            return "reserved";
          } catch (e) {
            return { type: e.details.errorType, message: e.details.message, hasStack: !!e.details.stackTrace };
          }
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("fail_order_caught", undefined, h.uid("actcaught"));
      h.assertCompleted(await h.waitDone(client, id), {
        type: "InventoryError",
        message: "out of stock: gadget",
        hasStack: true,
      });
    },
  ),
);

test("an orchestrator's own error fails the instance with that error's type and message", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        fail_validate: async function* (_ctx, input) {
          const e = new Error(`bad order ${input}`);
          e.name = "ValidationError";
          throw e;
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("fail_validate", 7, h.uid("orchfail"));
      const state = await h.waitDone(client, id);
      assert.equal(h.statusName(state), "FAILED");
      assert.equal(state.failureDetails.errorType, "ValidationError");
      assert.equal(state.failureDetails.message, "bad order 7");
      assert.match(state.failureDetails.stackTrace ?? "", /ValidationError: bad order 7/);
    },
  ),
);

test("a retry policy re-runs an activity that fails twice until it succeeds", { timeout: h.TEST_TIMEOUT_MS }, () => {
  const attempts = new Map();
  return h.withHub(
    {
      activities: {
        retry_flaky: (ctx) => {
          const n = (attempts.get(ctx.orchestrationId) ?? 0) + 1;
          attempts.set(ctx.orchestrationId, n);
          if (n <= 2) throw new Error(`transient failure ${n}`);
          return `ok on attempt ${n}`;
        },
      },
      orchestrators: {
        retry_until_ok: async function* (ctx) {
          const retry = new RetryPolicy({
            maxNumberOfAttempts: 5,
            firstRetryIntervalInMilliseconds: 200,
            backoffCoefficient: 1,
          });
          return yield ctx.callActivity("retry_flaky", undefined, { retry });
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("retry_until_ok", undefined, h.uid("retry"));
      h.assertCompleted(await h.waitDone(client, id), "ok on attempt 3");
      assert.equal(attempts.get(id), 3);

      const types = await h.historyTypes(client, id);
      assert.equal(h.count(types, "TaskScheduled"), 3, `history: ${types.join(",")}`);
      assert.equal(h.count(types, "TaskFailed"), 2);
      assert.equal(h.count(types, "TaskCompleted"), 1);
      // each retry waits on a durable timer
      assert.equal(h.count(types, "TimerCreated"), 2);
      assert.equal(h.count(types, "TimerFired"), 2);
    },
  );
});

test("a rewind after a retry policy gave up runs the step again from its first attempt; a step whose retry succeeded is not run again", { timeout: h.TEST_TIMEOUT_MS }, () => {
  const runs = { flaky: 0, broken: 0 };
  let fixed = false;
  return h.withHub(
    {
      activities: {
        rw_flaky: () => {
          if (++runs.flaky === 1) throw new Error("flaky once");
          return "flaky ok";
        },
        rw_broken: () => {
          runs.broken++;
          if (!fixed) throw new Error("broken until fixed");
          return "fixed";
        },
      },
      orchestrators: {
        rw_retries: async function* (ctx) {
          const retry = new RetryPolicy({ maxNumberOfAttempts: 2, firstRetryIntervalInMilliseconds: 100 });
          const a = yield ctx.callActivity("rw_flaky", undefined, { retry });
          const b = yield ctx.callActivity("rw_broken", undefined, { retry });
          return [a, b];
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("rw_retries", undefined, h.uid("rwretry"));
      assert.equal(h.statusName(await h.waitDone(client, id)), "FAILED");
      assert.deepEqual(runs, { flaky: 2, broken: 2 });

      fixed = true;
      await client.rewindInstance(id, "fixed it");
      const state = await h.waitDone(client, id);
      assert.equal(h.statusName(state), "COMPLETED", JSON.stringify(state.failureDetails));
      assert.deepEqual(JSON.parse(state.serializedOutput), ["flaky ok", "fixed"]);
      assert.deepEqual(runs, { flaky: 2, broken: 3 });   // one new attempt; the kept step not re-run

      // the step whose retry succeeded keeps its failed attempt and its timer; the other's
      // attempts and timer went, and its one new attempt succeeded
      const types = await h.historyTypes(client, id);
      assert.equal(h.count(types, "TaskFailed"), 1, `history: ${types.join(",")}`);
      assert.equal(h.count(types, "TimerCreated"), 1);
      assert.equal(h.count(types, "TimerFired"), 1);
      assert.equal(h.count(types, "TaskScheduled"), 3);
      assert.equal(h.count(types, "TaskCompleted"), 2);
    },
  );
});

test("a rewind reaches a child still running when its parent failed: it reports to the rewound run", { timeout: h.TEST_TIMEOUT_MS }, () => {
  let fixed = false;
  return h.withHub(
    {
      orchestrators: {
        rwc_waiter: async function* (ctx) {
          return yield ctx.waitForExternalEvent("go");
        },
        rwc_failer: async function* () {
          if (!fixed) throw new Error("not yet");
          return "ok";
        },
        rwc_parent: async function* (ctx) {
          const w = ctx.callSubOrchestrator("rwc_waiter", undefined, { instanceId: `${ctx.instanceId}-w` });
          const a = yield ctx.callSubOrchestrator("rwc_failer");
          const b = yield w;
          return [a, b];
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("rwc_parent", undefined, h.uid("rwchild"));
      assert.equal(h.statusName(await h.waitDone(client, id)), "FAILED");
      fixed = true;
      await client.rewindInstance(id, "fixed it");
      await client.raiseOrchestrationEvent(`${id}-w`, "go", "went");
      const state = await h.waitDone(client, id);
      assert.equal(h.statusName(state), "COMPLETED", JSON.stringify(state.failureDetails));
      assert.deepEqual(JSON.parse(state.serializedOutput), ["ok", "went"]);
    },
  );
});

test("a retry policy gives up after its maximum attempts and the instance fails", { timeout: h.TEST_TIMEOUT_MS }, () => {
  const attempts = new Map();
  return h.withHub(
    {
      activities: {
        retry_always_fails: (ctx) => {
          const n = (attempts.get(ctx.orchestrationId) ?? 0) + 1;
          attempts.set(ctx.orchestrationId, n);
          throw new Error(`permanent failure ${n}`);
        },
      },
      orchestrators: {
        retry_gives_up: async function* (ctx) {
          const retry = new RetryPolicy({ maxNumberOfAttempts: 3, firstRetryIntervalInMilliseconds: 100 });
          return yield ctx.callActivity("retry_always_fails", undefined, { retry });
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("retry_gives_up", undefined, h.uid("retrymax"));
      const state = await h.waitDone(client, id);
      assert.equal(h.statusName(state), "FAILED");
      assert.match(state.failureDetails.message, /permanent failure 3/);
      assert.equal(attempts.get(id), 3);
      const types = await h.historyTypes(client, id);
      assert.equal(h.count(types, "TaskScheduled"), 3);
      assert.equal(h.count(types, "TaskFailed"), 3);
    },
  );
});
