"use strict";
// External events: raised before the orchestrator waits (kept until it does) and after it
// started waiting; several events of one name arrive in the order they were raised.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers/harness");

test("an event raised before the orchestrator waits for it is kept and delivered", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      start: false,
      orchestrators: {
        event_wait_approval: async function* (ctx) {
          const approval = yield ctx.waitForExternalEvent("Approval");
          return { approval };
        },
      },
    },
    async ({ client, startWorker }) => {
      // no worker is connected yet: the instance is pending when the event arrives
      const id = await client.scheduleNewOrchestration("event_wait_approval", undefined, h.uid("evbefore"));
      await client.raiseOrchestrationEvent(id, "Approval", { ok: true });
      await startWorker();
      const state = await h.waitDone(client, id);
      h.assertCompleted(state, { approval: { ok: true } });

      const raised = (await client.getOrchestrationHistory(id)).filter((e) => e.type === "EventRaised");
      assert.equal(raised.length, 1);
      assert.equal(raised[0].name, "Approval", "the event name is stored as raised");
      assert.equal(raised[0].input, '{"ok":true}');
    },
  ),
);

test("an event raised while the orchestrator waits for it resumes the orchestrator", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      activities: { event_prepare: () => "prepared" },
      orchestrators: {
        event_prepare_then_wait: async function* (ctx) {
          const prepared = yield ctx.callActivity("event_prepare");
          ctx.setCustomStatus("waiting");
          const data = yield ctx.waitForExternalEvent("go");
          return [prepared, data];
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("event_prepare_then_wait", undefined, h.uid("evafter"));
      await h.waitCustomStatus(client, id, "waiting");
      const running = await client.getOrchestrationState(id);
      assert.equal(h.statusName(running), "RUNNING");
      await client.raiseOrchestrationEvent(id, "go", 42);
      h.assertCompleted(await h.waitDone(client, id), ["prepared", 42]);
    },
  ),
);

test("an event raised without data is delivered as null", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        event_no_data: async function* (ctx) {
          const data = yield ctx.waitForExternalEvent("ping");
          return { data };
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("event_no_data", undefined, h.uid("evnull"));
      await client.raiseOrchestrationEvent(id, "ping");
      h.assertCompleted(await h.waitDone(client, id), { data: null });
    },
  ),
);

test("several events of one name are received in the order they were raised", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      start: false,
      orchestrators: {
        event_three_steps: async function* (ctx) {
          const got = [];
          for (let i = 0; i < 3; i++) got.push(yield ctx.waitForExternalEvent("step"));
          return got;
        },
      },
    },
    async ({ client, startWorker }) => {
      const id = await client.scheduleNewOrchestration("event_three_steps", undefined, h.uid("evorder"));
      for (const v of ["one", "two", "three"]) await client.raiseOrchestrationEvent(id, "step", v);
      await startWorker();
      h.assertCompleted(await h.waitDone(client, id), ["one", "two", "three"]);
    },
  ),
);
