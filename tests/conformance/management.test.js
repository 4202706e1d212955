"use strict";
// Managing instances from the client: purge (one, and by filter), query with paging, restart.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { OrchestrationStatus, PurgeInstanceCriteria } = require("@microsoft/durabletask-js");
const h = require("./helpers/harness");

const echo = {
  orchestrators: {
    mgmt_echo: async function* (_ctx, input) {
      return input;
    },
    mgmt_wait: async function* (ctx) {
      return yield ctx.waitForExternalEvent("go");
    },
  },
};

test("purging a completed instance deletes it and its history", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(echo, async ({ client }) => {
    const id = await client.scheduleNewOrchestration("mgmt_echo", "bye", h.uid("purge"));
    h.assertCompleted(await h.waitDone(client, id), "bye");

    const result = await client.purgeOrchestration(id);
    assert.equal(result.deletedInstanceCount, 1);
    assert.equal(await client.getOrchestrationState(id), undefined);
    assert.deepEqual(await client.getOrchestrationHistory(id), []);

    const again = await client.purgeOrchestration(id);
    assert.equal(again.deletedInstanceCount, 0, "purging a purged instance deletes nothing");
  }),
);

// Purging one instance that has not finished is refused with FAILED_PRECONDITION naming it and
// its status, and deletes nothing; a count of 0 would read like "already gone". The .NET SDK
// turns this answer into InvalidOperationException (durabletask-dotnet#611) and durabletask-go's
// sidecar fails the call too; the JavaScript SDK passes the gRPC error through, so
// purgeOrchestration rejects.
const FAILED_PRECONDITION = 9; // grpc.status.FAILED_PRECONDITION

test("purging a running instance is refused with FAILED_PRECONDITION, and it keeps running to completion", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(echo, async ({ client }) => {
    const id = await client.scheduleNewOrchestration("mgmt_wait", undefined, h.uid("purgerun"));
    await client.waitForOrchestrationStart(id, false, h.WAIT_S);
    await assert.rejects(client.purgeOrchestration(id), (e) => {
      assert.equal(e.code, FAILED_PRECONDITION, `refused with ${e.code}: ${e.details}`);
      assert.match(e.details, new RegExp(`'${id}'.*Running`), "the refusal names the instance and its status");
      return true;
    });
    assert.equal(h.statusName(await client.getOrchestrationState(id)), "RUNNING");
    assert.ok((await client.getOrchestrationHistory(id)).length > 0, "the running instance lost its history");
    await client.raiseOrchestrationEvent(id, "go", "went");
    h.assertCompleted(await h.waitDone(client, id), "went");
  }),
);

test("purging by created-time window and status deletes exactly the matching instances", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(echo, async ({ client }) => {
    await h.sleep(20);
    const from = new Date();
    const done = [];
    for (let i = 0; i < 5; i++) {
      done.push(await client.scheduleNewOrchestration("mgmt_echo", i, h.uid(`purgef${i}`)));
    }
    const running = await client.scheduleNewOrchestration("mgmt_wait", undefined, h.uid("purgefrun"));
    for (const id of done) h.assertCompleted(await h.waitDone(client, id));
    await client.waitForOrchestrationStart(running, false, h.WAIT_S);
    const to = new Date(Date.now() + 5);

    const criteria = new PurgeInstanceCriteria();
    criteria.setCreatedTimeFrom(from);
    criteria.setCreatedTimeTo(to);
    criteria.setRuntimeStatusList([OrchestrationStatus.COMPLETED]);
    criteria.setTimeout(h.WAIT_S * 1000);
    const result = await client.purgeOrchestration(criteria);
    assert.equal(result.deletedInstanceCount, 5);
    for (const id of done) assert.equal(await client.getOrchestrationState(id), undefined, `${id} survived`);
    assert.equal(h.statusName(await client.getOrchestrationState(running)), "RUNNING");

    await client.terminateOrchestration(running, "cleanup");
    await h.waitDone(client, running);
  }),
);

test("getAllInstances with a small page size returns every instance exactly once", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(echo, async ({ client }) => {
    const prefix = h.uid("query");
    const ids = [];
    for (let i = 0; i < 7; i++) ids.push(await client.scheduleNewOrchestration("mgmt_echo", i, `${prefix}-${i}`));
    for (const id of ids) await h.waitDone(client, id);

    // one prefix, pages of 2: 4 pages, each at most 2
    const pages = [];
    for await (const page of client.getAllInstances({ instanceIdPrefix: prefix, pageSize: 2 }).asPages()) {
      pages.push(page.values.map((s) => s.instanceId));
    }
    assert.ok(pages.length >= 4, `7 instances came in ${pages.length} pages of at most 2`);
    for (const p of pages) assert.ok(p.length <= 2, `a page of ${p.length} for pageSize 2`);
    assert.deepEqual(pages.flat().sort(), [...ids].sort());

    // the whole store, pages of 3: ours appear once each, and no instance twice
    const seen = [];
    for await (const s of client.getAllInstances({ pageSize: 3 })) seen.push(s.instanceId);
    assert.equal(new Set(seen).size, seen.length, "an instance came back twice");
    for (const id of ids) assert.equal(h.count(seen, id), 1, `${id} seen ${h.count(seen, id)} times`);

    // payloads only when asked for
    const [withPayload] = await collect(client.getAllInstances({ instanceIdPrefix: `${prefix}-3`, fetchInputsAndOutputs: true }));
    assert.equal(withPayload.serializedInput, "3");
    assert.equal(withPayload.serializedOutput, "3");
    assert.equal(OrchestrationStatus[withPayload.runtimeStatus], "COMPLETED");
    assert.equal(withPayload.name, "mgmt_echo");
  }),
);

test("getAllInstances filters by runtime status", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(echo, async ({ client }) => {
    const prefix = h.uid("qstatus");
    const done = await client.scheduleNewOrchestration("mgmt_echo", 1, `${prefix}-done`);
    const running = await client.scheduleNewOrchestration("mgmt_wait", undefined, `${prefix}-running`);
    await h.waitDone(client, done);
    await client.waitForOrchestrationStart(running, false, h.WAIT_S);

    const ids = async (statuses) =>
      (await collect(client.getAllInstances({ instanceIdPrefix: prefix, statuses }))).map((s) => s.instanceId).sort();
    assert.deepEqual(await ids([OrchestrationStatus.COMPLETED]), [done]);
    assert.deepEqual(await ids([OrchestrationStatus.RUNNING]), [running]);
    assert.deepEqual(await ids([OrchestrationStatus.RUNNING, OrchestrationStatus.COMPLETED]), [done, running].sort());

    await client.terminateOrchestration(running, "cleanup");
    await h.waitDone(client, running);
  }),
);

test("restarting a completed instance with the same id runs it again with its original input", { timeout: h.TEST_TIMEOUT_MS }, () => {
  const runs = [];
  return h.withHub(
    {
      activities: { restart_record: (ctx, input) => runs.push({ id: ctx.orchestrationId, input }) },
      orchestrators: {
        restart_me: async function* (ctx, input) {
          const n = yield ctx.callActivity("restart_record", input);
          return { input, n };
        },
      },
    },
    async ({ client }) => {
      const id = await client.scheduleNewOrchestration("restart_me", "original", h.uid("restart"));
      h.assertCompleted(await h.waitDone(client, id), { input: "original", n: 1 });

      const again = await client.restartOrchestration(id, false);
      assert.equal(again, id);
      h.assertCompleted(await h.waitDone(client, id), { input: "original", n: 2 });
      assert.deepEqual(runs, [
        { id, input: "original" },
        { id, input: "original" },
      ]);
    },
  );
});

test("restarting a completed instance with a new id starts a second instance with the same input", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(echo, async ({ client }) => {
    const id = await client.scheduleNewOrchestration("mgmt_echo", { v: 1 }, h.uid("restartnew"));
    h.assertCompleted(await h.waitDone(client, id), { v: 1 });

    const newId = await client.restartOrchestration(id, true);
    assert.ok(newId && newId !== id, `restart returned ${newId}`);
    const state = await h.waitDone(client, newId);
    h.assertCompleted(state, { v: 1 });
    assert.equal(state.name, "mgmt_echo");
    h.assertCompleted(await client.getOrchestrationState(id), { v: 1 });
  }),
);

test("restarting an instance that does not exist fails", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(echo, async ({ client }) => {
    await assert.rejects(client.restartOrchestration(h.uid("nosuch"), false), /not found/i);
  }),
);

test("a missing instance has no state and an empty history", { timeout: h.TEST_TIMEOUT_MS }, () =>
  h.withHub(echo, async ({ client }) => {
    const id = h.uid("missing");
    assert.equal(await client.getOrchestrationState(id), undefined);
    assert.deepEqual(await client.getOrchestrationHistory(id), []);
  }),
);

async function collect(pageable) {
  const out = [];
  for await (const x of pageable) out.push(x);
  return out;
}
