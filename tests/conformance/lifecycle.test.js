"use strict";
// A running instance seen and steered from outside: custom status, terminate, suspend and resume.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers/harness");
const raw = require("./helpers/raw");

test("custom status set by the orchestrator is visible to the client while it runs", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        status_stages: async function* (ctx) {
          ctx.setCustomStatus({ stage: "waiting for payment", step: 1 });
          const paid = yield ctx.waitForExternalEvent("paid");
          ctx.setCustomStatus({ stage: "shipping", step: 2 });
          yield ctx.waitForExternalEvent("shipped");
          ctx.setCustomStatus("done");
          return paid;
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("status_stages", undefined, h.uid("status"));
      const s1 = await h.waitCustomStatus(client, id, { stage: "waiting for payment", step: 1 });
      assert.equal(h.statusName(s1), "RUNNING");
      await client.raiseOrchestrationEvent(id, "paid", 99);
      const s2 = await h.waitCustomStatus(client, id, { stage: "shipping", step: 2 });
      assert.equal(h.statusName(s2), "RUNNING");
      await client.raiseOrchestrationEvent(id, "shipped");
      const done = await h.waitDone(client, id);
      h.assertCompleted(done, 99);
      assert.equal(done.serializedCustomStatus, '"done"');
    },
  ),
);

test("terminating a running instance ends it as TERMINATED with the given output", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        terminate_waits_forever: async function* (ctx) {
          ctx.setCustomStatus("waiting");
          yield ctx.waitForExternalEvent("never");
          return "finished normally";
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("terminate_waits_forever", undefined, h.uid("term"));
      await h.waitCustomStatus(client, id, "waiting");
      await client.terminateOrchestration(id, { reason: "operator said stop" });
      const state = await h.waitDone(client, id);
      assert.equal(h.statusName(state), "TERMINATED");
      assert.deepEqual(JSON.parse(state.serializedOutput), { reason: "operator said stop" });
      assert.equal(state.failureDetails, undefined);

      // an event raised after termination does not revive it
      await client.raiseOrchestrationEvent(id, "never", 1).catch(() => {});
      await h.sleep(300);
      assert.equal(h.statusName(await client.getOrchestrationState(id)), "TERMINATED");
    },
  ),
);

test("terminating an instance that never started still ends it as TERMINATED", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      start: false,
      orchestrators: {
        terminate_pending: async function* () {
          return "ran";
        },
      },
    },
    async ({ client, startWorker }) => {
      const id = await client.scheduleNewOrchestration("terminate_pending", undefined, h.uid("termpend"));
      await client.terminateOrchestration(id, "stopped before start");
      await startWorker();
      const state = await h.waitDone(client, id);
      assert.equal(h.statusName(state), "TERMINATED");
      assert.equal(state.serializedOutput, '"stopped before start"');
    },
  ),
);

test("an event raised while suspended is processed only after resume", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    {
      orchestrators: {
        suspend_wait_approval: async function* (ctx) {
          ctx.setCustomStatus("waiting");
          const approval = yield ctx.waitForExternalEvent("approval");
          return { approval };
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("suspend_wait_approval", undefined, h.uid("suspend"));
      await h.waitCustomStatus(client, id, "waiting");

      await client.suspendOrchestration(id);
      // the suspension may take effect asynchronously, as with the Durable Task Scheduler
      await h.poll(async () => h.statusName(await client.getOrchestrationState(id)) === "SUSPENDED", `${id} SUSPENDED`);
      await client.raiseOrchestrationEvent(id, "approval", "yes");
      // give the server time to (wrongly) run the instance
      await h.sleep(1500);
      const suspended = await client.getOrchestrationState(id);
      assert.equal(h.statusName(suspended), "SUSPENDED", "the event was processed while suspended");
      assert.equal(suspended.serializedOutput, undefined);

      await client.resumeOrchestration(id);
      const state = await h.waitDone(client, id);
      h.assertCompleted(state, { approval: "yes" });

      const types = await h.historyTypes(client, id);
      const suspendedAt = types.indexOf("ExecutionSuspended");
      const resumedAt = types.indexOf("ExecutionResumed");
      assert.ok(suspendedAt >= 0 && resumedAt > suspendedAt, `history: ${types.join(",")}`);
    },
  ),
);

test("a wait on an instance that is started later waits for it, as an export job's client does", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(
    { orchestrators: { started_late: async function* (ctx, input) { return `late ${input}`; } } },
    async ({ client }) => {
      // the JavaScript SDK's export jobs wait on the orchestration their entity starts, and
      // may ask before the entity has started it
      const id = h.uid("late");
      const waiting = client.waitForOrchestrationCompletion(id, true, 60);
      await new Promise((r) => setTimeout(r, 500));   // the wait found nothing, and waits
      await client.scheduleNewOrchestration("started_late", 7, id);
      h.assertCompleted(await waiting, "late 7");

      // one never started ends at the caller's deadline; an id no instance can have, at once
      const rc = raw.connect();
      try {
        const t0 = Date.now();
        const e = await raw.rejection(raw.waitDone(rc, h.uid("never"), 700));
        assert.equal(e.code, raw.grpc.status.DEADLINE_EXCEEDED);
        assert.ok(Date.now() - t0 >= 650, "ended before its deadline");
        const r = await raw.unary(rc, "WaitForInstanceCompletion", { instanceId: "@entity@key" });
        assert.ok(!r.exists, "an id no instance can have exists");
      } finally {
        rc.close();
      }
    },
  ),
);

test("a terminate ends an instance in a task hub no worker serves, without one", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  // the hub ends a terminated instance itself (its code does not run), so it needs no worker:
  // a task hub of its own has none connected, whatever the rest of the suite runs
  const rc = raw.connect();
  const hub = { taskhub: h.uid("noworkers") };
  const wait = (id) => raw.unary(rc, "WaitForInstanceCompletion", { instanceId: id, getInputsAndOutputs: true }, hub);
  try {
    const id = h.uid("termalone");
    await raw.unary(rc, "StartInstance", { name: "nobody_runs_this", instanceId: id, input: raw.str("1") }, hub);
    const before = await raw.unary(rc, "GetInstance", { instanceId: id }, hub);
    assert.equal(before.orchestrationState.orchestrationStatus, "ORCHESTRATION_STATUS_PENDING");
    await raw.unary(rc, "TerminateInstance", { instanceId: id, output: raw.str('"no worker needed"'), recursive: true }, hub);
    const done = await wait(id);
    assert.equal(done.orchestrationState.orchestrationStatus, "ORCHESTRATION_STATUS_TERMINATED");
    assert.equal(done.orchestrationState.output.value, '"no worker needed"');
    const types = (await raw.history(rc, id, hub)).map((e) => e.eventType);
    assert.equal(h.count(types, "executionTerminated"), 1, types.join(","));
    assert.equal(h.count(types, "orchestratorCompleted"), 0, types.join(","));

    // a second terminate finds it finished
    const e = await raw.rejection(raw.unary(rc, "TerminateInstance", { instanceId: id }, hub));
    assert.equal(e.code, raw.grpc.status.FAILED_PRECONDITION, e.details);
  } finally {
    await raw.unary(rc, "DeleteTaskHub", {}, hub).catch(() => {});
    rc.close();
  }
});
