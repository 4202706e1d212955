"use strict";
// Entities across languages through one `dtask serve`: a JavaScript orchestrator calls an
// entity written in C, a C orchestrator calls an entity written in JavaScript, and a client
// signals the C entity and reads its state. The C side is `dtask worker` (the C SDK's remote
// worker with the demo's functions: c_counter, c_calls_js_entity).

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { EntityInstanceId, TaskEntity } = require("@microsoft/durabletask-js");
const h = require("./helpers/harness");
const { startCWorker, stopCWorker } = require("./helpers/cworker");

// js_counter: the JavaScript twin of c_counter
class JsCounter extends TaskEntity {
  initializeState() { return 0; }
  add(n) { this.state += n === undefined ? 1 : n; return this.state; }
  get() { return this.state; }
}

test("entities in C and JavaScript call each other through one hub", { timeout: 60_000 }, async () => {
  const cworker = startCWorker();
  try {
    await h.withHub(
      {
        // ask only for the work this worker registered, so the C worker gets its own
        workerOptions: { workItemFilters: "auto" },
        entities: { js_counter: () => new JsCounter() },
        orchestrators: {
          js_calls_c_entity: async function* (ctx, key) {
            const id = new EntityInstanceId("c_counter", key);
            yield ctx.entities.callEntity(id, "add", 2);
            yield ctx.entities.callEntity(id, "add", 3);
            const got = yield ctx.entities.callEntity(id, "get");
            return { from: "JavaScript", got };
          },
        },
      },
      async ({ client }) => {
        const key = h.uid("k");
        const jsId = await client.scheduleNewOrchestration("js_calls_c_entity", key, h.uid("ent-js"));
        const cId = await client.scheduleNewOrchestration("c_calls_js_entity", key, h.uid("ent-c"));
        h.assertCompleted(await h.waitDone(client, jsId), { from: "JavaScript", got: 5 });
        h.assertCompleted(await h.waitDone(client, cId), { from: "C", got: 5 });

        // the C entity's state as a client sees it, then a signal the C worker applies
        const cEntity = new EntityInstanceId("c_counter", key);
        let meta = await client.getEntity(cEntity);
        assert.equal(meta.state, 5);
        await client.signalEntity(cEntity, "add", 10);
        for (let i = 0; i < 100 && (meta = await client.getEntity(cEntity)).state !== 15; i++)
          await h.sleep(100);
        assert.equal(meta.state, 15);
        const jsEntity = await client.getEntity(new EntityInstanceId("js_counter", key));
        assert.equal(jsEntity.state, 5);
      },
    );
  } catch (e) {
    process.stderr.write(`dtask worker stderr:\n${cworker.stderrText()}\n`);
    throw e;
  } finally {
    assert.equal(await stopCWorker(cworker), 0);
  }
});
