"use strict";
// One hub, two languages: a JavaScript orchestrator calls an activity written in C, and a C
// orchestrator calls an activity written in JavaScript. The C side is `dtask worker` (the
// C SDK's remote worker with the demo's functions), connected to the same `dtask serve`.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers/harness");
const { startCWorker, stopCWorker } = require("./helpers/cworker");

test("a JavaScript orchestrator calls a C activity and a C orchestrator a JavaScript one", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const cworker = startCWorker();
  try {
    await h.withHub(
      {
        // ask only for the work this worker registered, so the C worker gets its own
        workerOptions: { workItemFilters: "auto" },
        activities: {
          js_shout: (_ctx, text) => `${String(text).toUpperCase()}!`,
        },
        orchestrators: {
          js_calls_c: async function* (ctx, name) {
            const greeting = yield ctx.callActivity("c_greet", name);
            return { from: "JavaScript", got: greeting };
          },
        },
      },
      async ({ client }) => {
        const jsId = await client.scheduleNewOrchestration("js_calls_c", "Ada", h.uid("mixed-js"));
        const cId = await client.scheduleNewOrchestration("c_calls_js", "hello", h.uid("mixed-c"));
        const js = await h.waitDone(client, jsId);
        h.assertCompleted(js, { from: "JavaScript", got: "Hello Ada from C!" });
        const c = await h.waitDone(client, cId);
        h.assertCompleted(c, { from: "C", got: "HELLO!" });

        // each side's history shows the other language's step answered once
        const history = await client.getOrchestrationHistory(cId);
        const scheduled = history.filter((e) => e.type === "TaskScheduled");
        assert.deepEqual(scheduled.map((e) => e.name), ["js_shout"]);
        assert.equal(history.filter((e) => e.type === "TaskCompleted").length, 1);
      },
    );
  } catch (e) {
    process.stderr.write(`dtask worker stderr:\n${cworker.stderrText()}\n`);
    throw e;
  } finally {
    assert.equal(await stopCWorker(cworker), 0);
  }
});
