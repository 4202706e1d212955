"use strict";
// Continue-as-new: an instance restarts itself with new input and a fresh history; with
// saveEvents, events it had not consumed yet are carried into the next generation.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers/harness");

test("continue-as-new counts to 10 and the last generation's output is the result", { timeout: h.TEST_TIMEOUT_MS }, () => {
  const generations = new Map();
  return h.withHub(
    {
      activities: { can_tick: (_ctx, n) => n + 1 },
      orchestrators: {
        can_counter: async function* (ctx, n) {
          if (!ctx.isReplaying) generations.set(n, (generations.get(n) ?? 0) + 1);
          const next = yield ctx.callActivity("can_tick", n);
          if (next < 10) {
            ctx.continueAsNew(next, false);
            return;
          }
          return { final: next, executionStartedInput: n };
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("can_counter", 0, h.uid("can"));
      const state = await h.waitDone(client, id);
      h.assertCompleted(state, { final: 10, executionStartedInput: 9 });
      assert.deepEqual([...generations.keys()].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

      // the history is the last generation's only
      const history = await client.getOrchestrationHistory(id);
      const started = history.filter((e) => e.type === "ExecutionStarted");
      assert.equal(started.length, 1, "one ExecutionStarted after continue-as-new");
      assert.equal(started[0].input, "9");
      assert.equal(history.filter((e) => e.type === "TaskScheduled").length, 1);
    },
  );
});

test("each continue-as-new generation gets a fresh execution id", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        can_child_id: async function* (ctx) {
          return ctx.instanceId;
        },
        can_two_generations: async function* (ctx, input) {
          // a default-id child is named after the parent's execution id
          const child = yield ctx.callSubOrchestrator("can_child_id");
          if (input.gen === 0) {
            ctx.continueAsNew({ gen: 1, first: child }, false);
            return;
          }
          return [input.first, child];
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("can_two_generations", { gen: 0 }, h.uid("canexec"));
      const state = await h.waitDone(client, id);
      h.assertCompleted(state);
      const [first, second] = JSON.parse(state.serializedOutput);
      assert.match(first, /^[0-9a-f]{32}:0001$/);
      assert.match(second, /^[0-9a-f]{32}:0001$/);
      assert.notEqual(first, second, "both generations ran under the same execution id");
    },
  ),
);

test("continue-as-new with saveEvents carries unconsumed events into the next generation", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      start: false,
      orchestrators: {
        can_collect_three: async function* (ctx, items) {
          const item = yield ctx.waitForExternalEvent("item");
          const all = [...items, item];
          if (all.length < 3) {
            ctx.continueAsNew(all, true);
            return;
          }
          return all;
        },
      },
    },
    async ({ client, startWorker }) => {
      const id = await client.scheduleNewOrchestration("can_collect_three", [], h.uid("cansave"));
      // all three are waiting before the first generation runs: it consumes one and must
      // carry the other two over
      for (const v of ["a", "b", "c"]) await client.raiseOrchestrationEvent(id, "item", v);
      await startWorker();
      h.assertCompleted(await h.waitDone(client, id), ["a", "b", "c"]);
    },
  ),
);

test("an instance that continued as new is not reported as finished", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        can_then_wait: async function* (ctx, gen) {
          if (gen === 0) {
            ctx.continueAsNew(1, false);
            return;
          }
          ctx.setCustomStatus("generation 1");
          return yield ctx.waitForExternalEvent("finish");
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("can_then_wait", 0, h.uid("canwait"));
      const s = await h.waitCustomStatus(client, id, "generation 1");
      assert.equal(h.statusName(s), "RUNNING");
      await client.raiseOrchestrationEvent(id, "finish", "done");
      h.assertCompleted(await h.waitDone(client, id), "done");
    },
  ),
);
