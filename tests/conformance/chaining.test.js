"use strict";
// Activity chaining and fan-out/fan-in: the orchestrator awaits activities one after another,
// or many at once, and its output is built from their results.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { whenAll } = require("@microsoft/durabletask-js");
const h = require("./helpers/harness");

test("three chained activities run in order and their results form the output", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      activities: {
        chain_greet: (_ctx, city) => `Hello ${city}!`,
      },
      orchestrators: {
        chain_three_cities: async function* (ctx) {
          const a = yield ctx.callActivity("chain_greet", "Tokyo");
          const b = yield ctx.callActivity("chain_greet", "Seattle");
          const c = yield ctx.callActivity("chain_greet", "London");
          return [a, b, c];
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("chain_three_cities", undefined, h.uid("chain"));
      const state = await h.waitDone(client, id);
      h.assertCompleted(state, ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]);
      assert.equal(state.name, "chain_three_cities");

      const history = await client.getOrchestrationHistory(id);
      const scheduled = history.filter((e) => e.type === "TaskScheduled");
      assert.deepEqual(scheduled.map((e) => e.input), ['"Tokyo"', '"Seattle"', '"London"']);
      assert.equal(h.count(history.map((e) => e.type), "TaskCompleted"), 3);
    },
  ),
);

test("an activity's input reaches it and its output reaches the orchestrator unchanged", { timeout: h.TEST_TIMEOUT_MS }, () => {
  const seen = [];
  const payload = { n: 0, s: "", t: false, list: [1, "two", null], nested: { "ü": "☃" } };
  return h.withHub(
    {
      activities: {
        chain_echo: (ctx, input) => {
          seen.push({ id: ctx.orchestrationId, input });
          return input;
        },
      },
      orchestrators: {
        chain_echo_twice: async function* (ctx, input) {
          const once = yield ctx.callActivity("chain_echo", input);
          return yield ctx.callActivity("chain_echo", once);
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("chain_echo_twice", payload, h.uid("echo"));
      const state = await h.waitDone(client, id);
      h.assertCompleted(state, payload);
      assert.deepEqual(JSON.parse(state.serializedInput), payload);
      assert.deepEqual(seen, [
        { id, input: payload },
        { id, input: payload },
      ]);
    },
  );
});

test("fan-out of 100 activities fans in with every result", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      activities: {
        fan_square: (_ctx, n) => n * n,
      },
      orchestrators: {
        fan_out_100: async function* (ctx, n) {
          const tasks = [];
          for (let i = 1; i <= n; i++) tasks.push(ctx.callActivity("fan_square", i));
          const squares = yield whenAll(tasks);
          return { count: squares.length, sum: squares.reduce((a, b) => a + b, 0), last: squares[n - 1] };
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("fan_out_100", 100, h.uid("fan"));
      const state = await h.waitDone(client, id);
      // sum of squares 1..100 = 100*101*201/6
      h.assertCompleted(state, { count: 100, sum: 338350, last: 10000 });

      const history = await client.getOrchestrationHistory(id);
      const scheduled = history.filter((e) => e.type === "TaskScheduled");
      const completed = history.filter((e) => e.type === "TaskCompleted");
      assert.equal(scheduled.length, 100);
      assert.equal(completed.length, 100);
      // every scheduled task has exactly one completion, matched by its event id
      const ids = scheduled.map((e) => e.eventId).sort((a, b) => a - b);
      assert.deepEqual(
        completed.map((e) => e.taskScheduledId).sort((a, b) => a - b),
        ids,
      );
      assert.equal(new Set(ids).size, 100);
    },
  ),
);
