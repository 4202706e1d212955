"use strict";
// Sub-orchestrations: the child's output reaches the parent, a child started without an id
// gets the SDK's default id `<parent executionId>:<action id as 4 hex digits>`, and a child's
// failure reaches the parent with its details.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers/harness");

test("a sub-orchestration's output reaches its parent", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      activities: { sub_double: (_ctx, n) => n * 2 },
      orchestrators: {
        sub_child_double: async function* (ctx, n) {
          return yield ctx.callActivity("sub_double", n);
        },
        sub_parent_plus_one: async function* (ctx, n) {
          const doubled = yield ctx.callSubOrchestrator("sub_child_double", n);
          return doubled + 1;
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("sub_parent_plus_one", 20, h.uid("subout"));
      h.assertCompleted(await h.waitDone(client, id), 41);
    },
  ),
);

test("a sub-orchestration without an id gets the default id <executionId>:0001 and knows its parent", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        sub_child_whoami: async function* (ctx) {
          return { id: ctx.instanceId, parent: ctx.parent ? { ...ctx.parent } : null };
        },
        sub_parent_default_id: async function* (ctx) {
          return yield ctx.callSubOrchestrator("sub_child_whoami");
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("sub_parent_default_id", undefined, h.uid("subid"));
      const state = await h.waitDone(client, id);
      h.assertCompleted(state);
      const child = JSON.parse(state.serializedOutput);
      assert.match(child.id, /^[0-9a-f]{32}:0001$/, "default child id is <32 hex executionId>:0001");
      assert.deepEqual(child.parent, { name: "sub_parent_default_id", instanceId: id, taskScheduledId: 1 });

      const childState = await client.getOrchestrationState(child.id);
      assert.ok(childState, "the child instance exists under its default id");
      h.assertCompleted(childState);
      assert.equal(childState.name, "sub_child_whoami");

      const created = (await client.getOrchestrationHistory(id)).find(
        (e) => e.type === "SubOrchestrationInstanceCreated",
      );
      assert.equal(created.instanceId, child.id);
      assert.equal(created.name, "sub_child_whoami");

      const started = (await client.getOrchestrationHistory(id)).find((e) => e.type === "ExecutionStarted");
      assert.ok(!started.parentInstance, "a top-level instance has no parent");
    },
  ),
);

test("a sub-orchestration started with an explicit id runs under that id", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        sub_child_named: async function* (ctx, input) {
          return `${ctx.instanceId}:${input}`;
        },
        sub_parent_named: async function* (ctx) {
          return yield ctx.callSubOrchestrator("sub_child_named", "x", { instanceId: `${ctx.instanceId}-kid` });
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("sub_parent_named", undefined, h.uid("subnamed"));
      h.assertCompleted(await h.waitDone(client, id), `${id}-kid:x`);
      const child = await client.getOrchestrationState(`${id}-kid`);
      h.assertCompleted(child, `${id}-kid:x`);
    },
  ),
);

test("a failing sub-orchestration's error type and message reach the parent", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        sub_child_breaks: async function* () {
          const e = new Error("child broke: gear 7");
          e.name = "GearError";
          throw e;
        },
        sub_parent_catches: async function* (ctx) {
          try {
            yield ctx.callSubOrchestrator("sub_child_breaks", undefined, { instanceId: `${ctx.instanceId}-kid` });
            return "no error";
          } catch (e) {
            return { type: e.details.errorType, message: e.details.message };
          }
        },
        sub_parent_lets_fail: async function* (ctx) {
          return yield ctx.callSubOrchestrator("sub_child_breaks", undefined, { instanceId: `${ctx.instanceId}-kid` });
        },
      },
    },
    async ({ client }) => {
      const caught = await client.scheduleNewOrchestration("sub_parent_catches", undefined, h.uid("subfail"));
      h.assertCompleted(await h.waitDone(client, caught), { type: "GearError", message: "child broke: gear 7" });

      const child = await client.getOrchestrationState(`${caught}-kid`);
      assert.equal(h.statusName(child), "FAILED");
      assert.equal(child.failureDetails.errorType, "GearError");
      assert.equal(child.failureDetails.message, "child broke: gear 7");

      const uncaught = await client.scheduleNewOrchestration("sub_parent_lets_fail", undefined, h.uid("subfail2"));
      const state = await h.waitDone(client, uncaught);
      assert.equal(h.statusName(state), "FAILED");
      assert.ok(state.failureDetails, "a failed parent has failure details");
      assert.equal(state.failureDetails.errorType, "TaskFailedError");
      assert.match(state.failureDetails.message, /child broke: gear 7/);
    },
  ),
);
