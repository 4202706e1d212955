"use strict";
// Durable timers, and the timeout pattern: whenAny of an external event and a timer.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { whenAny } = require("@microsoft/durabletask-js");
const h = require("./helpers/harness");

test("a durable timer delays the orchestration by at least its duration", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        timer_two_seconds: async function* (ctx) {
          const before = ctx.currentUtcDateTime.getTime();
          yield ctx.createTimer(2);
          const after = ctx.currentUtcDateTime.getTime();
          return { before, after };
        },
      },
    },
    async ({ client }) => {
      const t0 = Date.now();
      const id = await client.scheduleNewOrchestration("timer_two_seconds", undefined, h.uid("timer"));
      const state = await h.waitDone(client, id);
      const elapsed = Date.now() - t0;
      h.assertCompleted(state);
      const { before, after } = JSON.parse(state.serializedOutput);

      assert.ok(elapsed >= 2000, `completed after ${elapsed} ms, before the 2 s timer`);
      assert.ok(after - before >= 2000, `orchestration time advanced ${after - before} ms across a 2 s timer`);
      // orchestration time is wall-clock time, not some default epoch
      assert.ok(Math.abs(before - t0) < 10_000, `orchestration time ${new Date(before).toISOString()} is not now`);
      const ranFor = state.lastUpdatedAt.getTime() - state.createdAt.getTime();
      assert.ok(ranFor >= 2000, `lastUpdatedAt - createdAt = ${ranFor} ms, under the 2 s timer`);

      const history = await client.getOrchestrationHistory(id);
      const created = history.find((e) => e.type === "TimerCreated");
      const fired = history.find((e) => e.type === "TimerFired");
      assert.ok(created, "history has TimerCreated");
      assert.ok(fired, "history has TimerFired");
      assert.equal(fired.timerId, created.eventId);
      assert.equal(fired.fireAt.getTime(), created.fireAt.getTime());
      assert.equal(created.fireAt.getTime(), before + 2000);
      // the turn after the timer runs at or after its fireAt
      const nextTurn = history.slice(history.indexOf(created)).filter((e) => e.type === "OrchestratorStarted")[0];
      assert.ok(nextTurn, "no OrchestratorStarted after TimerCreated");
      assert.ok(nextTurn.timestamp.getTime() >= created.fireAt.getTime(), "the orchestrator resumed before the timer's fireAt");
    },
  ),
);

test("when the event arrives before the timeout, whenAny returns the event", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        timeout_event_wins: async function* (ctx) {
          const timeout = ctx.createTimer(20);
          const approval = ctx.waitForExternalEvent("approval");
          ctx.setCustomStatus("waiting");
          const winner = yield whenAny([approval, timeout]);
          if (winner === approval) return { approved: approval.getResult() };
          return "timed out";
        },
      },
    },
    async ({ client }) => {
      const t0 = Date.now();
      const id = await client.scheduleNewOrchestration("timeout_event_wins", undefined, h.uid("evwins"));
      await h.waitCustomStatus(client, id, "waiting");
      await client.raiseOrchestrationEvent(id, "approval", { by: "ana" });
      const state = await h.waitDone(client, id);
      h.assertCompleted(state, { approved: { by: "ana" } });
      assert.ok(Date.now() - t0 < 20_000, "the orchestration waited for the timer anyway");
    },
  ),
);

test("when no event arrives, whenAny returns the timer after the timeout", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        timeout_timer_wins: async function* (ctx) {
          const timeout = ctx.createTimer(1);
          const approval = ctx.waitForExternalEvent("approval");
          const winner = yield whenAny([approval, timeout]);
          if (winner === approval) return { approved: approval.getResult() };
          return "timed out";
        },
      },
    },
    async ({ client }) => {
      const t0 = Date.now();
      const id = await client.scheduleNewOrchestration("timeout_timer_wins", undefined, h.uid("tmwins"));
      const state = await h.waitDone(client, id);
      h.assertCompleted(state, "timed out");
      assert.ok(Date.now() - t0 >= 1000, "the timeout fired early");
      // an event raised after completion changes nothing (the server may accept or refuse it)
      await client.raiseOrchestrationEvent(id, "approval", "late").catch(() => {});
      await h.sleep(300);
      h.assertCompleted(await client.getOrchestrationState(id), "timed out");
    },
  ),
);
