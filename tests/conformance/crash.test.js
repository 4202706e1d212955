"use strict";
// A worker killed with SIGKILL in the middle of its work: the work it held goes to the next
// worker, every instance completes with the right output, and no activity result is recorded
// twice.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const readline = require("node:readline");
const { spawn } = require("node:child_process");
const h = require("./helpers/harness");
const { STEPS, registerCrashChain, expectedOutput } = require("./helpers/crash-chain");

const INSTANCES = 3;
const STEPS_BEFORE_KILL = 4; // of INSTANCES * STEPS

test("work of a worker killed with SIGKILL completes on a second worker, each activity result recorded once", { timeout: 60_000 }, (t) =>
  h.showLogsOnFailure(() => killedWorkerTest(t)));

async function killedWorkerTest(t) {
  const client = h.newClient();
  const doomed = spawn(process.execPath, [path.join(__dirname, "helpers", "worker.js")], {
    env: process.env,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => doomed.on("exit", (code, signal) => resolve({ code, signal })));
  let survivor;
  try {
    const stepsDone = [];
    let notify = () => {};
    readline.createInterface({ input: doomed.stdout }).on("line", (line) => {
      stepsDone.push(JSON.parse(line));
      notify();
    });
    const waitForLines = (pred, what) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for the doomed worker: ${what}`)), h.WAIT_S * 1000);
        notify = () => {
          if (pred()) {
            clearTimeout(timer);
            resolve();
          }
        };
        exited.then(({ code, signal }) => reject(new Error(`doomed worker exited early (${code ?? signal})`)));
        notify();
      });

    await waitForLines(() => stepsDone.some((l) => l.ready), "ready");
    const ids = [];
    for (let i = 0; i < INSTANCES; i++) ids.push(await client.scheduleNewOrchestration("crash_chain", undefined, h.uid(`crash${i}`)));

    const stepCount = () => stepsDone.filter((l) => l.step !== undefined).length;
    await waitForLines(() => stepCount() >= STEPS_BEFORE_KILL, `${STEPS_BEFORE_KILL} steps`);
    doomed.kill("SIGKILL");
    const { signal } = await exited;
    assert.equal(signal, "SIGKILL");
    const ranBeforeKill = stepCount();
    assert.ok(ranBeforeKill < INSTANCES * STEPS, "the doomed worker finished everything before it was killed");
    t.diagnostic(`the killed worker had finished ${ranBeforeKill} of ${INSTANCES * STEPS} activity steps`);

    // nothing finishes without a worker
    for (const id of ids) {
      const s = await client.getOrchestrationState(id);
      assert.notEqual(h.statusName(s), "COMPLETED", `${id} completed with no worker alive`);
    }

    survivor = h.newWorker("survivor worker");
    registerCrashChain(survivor);
    await survivor.start();

    for (const id of ids) {
      const state = await h.waitDone(client, id, 40);
      h.assertCompleted(state, expectedOutput(id));

      const history = await client.getOrchestrationHistory(id);
      const scheduled = history.filter((e) => e.type === "TaskScheduled");
      const completed = history.filter((e) => e.type === "TaskCompleted");
      assert.equal(scheduled.length, STEPS, `${id}: ${scheduled.length} TaskScheduled`);
      assert.equal(completed.length, STEPS, `${id}: ${completed.length} TaskCompleted`);
      assert.deepEqual(
        completed.map((e) => JSON.parse(e.result)),
        expectedOutput(id),
        `${id}: each step's result once, in order`,
      );
      assert.deepEqual(
        completed.map((e) => e.taskScheduledId),
        scheduled.map((e) => e.eventId),
      );
      assert.equal(h.count(history.map((e) => e.type), "ExecutionCompleted"), 1);
    }
  } finally {
    if (doomed.exitCode === null && doomed.signalCode === null) doomed.kill("SIGKILL");
    await Promise.allSettled([client.stop(), survivor ? survivor.stop() : undefined]);
  }
}
