"use strict";
// Large histories, as the .NET, Java and Python workers meet them: each announces the
// HISTORY_STREAMING capability on GetWorkItems and keeps gRPC's default 4 MiB receive limit
// (grpc-js has the same). A history of over 5 MiB must reach such a worker as a work item
// with requiresHistoryStreaming set and no past events, which it then reads with
// StreamInstanceHistory (forWorkItemProcessing) in chunks each under its limit. A worker that
// did not announce the capability (the JavaScript SDK today) must not be sent a work item
// over its limit: the instance fails, saying why, and the worker's stream goes on serving.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const MB = 1 << 20;
const big = (tag) => JSON.stringify(tag + "x".repeat(900 * 1024));   // ~0.9 MiB of JSON

function readHistory(client, instanceId, executionId) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const call = client.StreamInstanceHistory({ instanceId, executionId: raw.str(executionId), forWorkItemProcessing: true });
    call.on("data", (c) => chunks.push(c));
    call.on("error", reject);
    call.on("end", () => resolve(chunks));
  });
}

function completeActivity(client, wi, result) {
  const r = wi.activityRequest;
  return raw.unary(client, "CompleteActivityTask", {
    instanceId: r.orchestrationInstance.instanceId, taskId: r.taskId,
    completionToken: wi.completionToken, result: raw.str(result),
  });
}

function completeOrchestration(client, wi, actions) {
  return raw.unary(client, "CompleteOrchestratorTask", {
    instanceId: wi.orchestratorRequest.instanceId, completionToken: wi.completionToken, actions,
  });
}

async function status(client, instanceId) {
  const r = await raw.unary(client, "GetInstance", { instanceId, getInputsAndOutputs: false });
  return r.orchestrationState;
}

const STREAMING = ["WORKER_CAPABILITY_HISTORY_STREAMING"];

test("a 5 MiB history reaches a streaming worker with a 4 MiB receive limit through StreamInstanceHistory", { timeout: 60_000 }, async () => {
  const client = raw.connect();   // grpc-js: 4 MiB receive limit, as the SDKs
  const orch = raw.uid("big"), act = raw.uid("big-act");
  const work = new raw.WorkStream(client, { ...raw.filters([orch], [act]), capabilities: STREAMING });
  try {
    await raw.unary(client, "StartInstance", { name: orch, instanceId: orch });
    let wi = await work.must();
    assert.ok(!wi.orchestratorRequest.requiresHistoryStreaming);   // small: inline
    // three activities with ~0.9 MiB inputs, each answered with ~0.9 MiB: ~5.4 MiB of history
    await completeOrchestration(client, wi, [0, 1, 2].map((i) => raw.actions.scheduleTask(i, act, big(`in${i}`))));
    let streamed = 0, done = 0;
    while (done < 3 || streamed === 0) {
      wi = await work.must(30_000);
      if (wi.activityRequest) {
        assert.equal(JSON.parse(wi.activityRequest.input.value).length, 900 * 1024 + 3);
        await completeActivity(client, wi, big(`out${wi.activityRequest.taskId}`));
        continue;
      }
      const r = wi.orchestratorRequest;
      const inNew = r.newEvents.filter((e) => e.taskCompleted).length;
      if (!r.requiresHistoryStreaming) {
        assert.ok(r.pastEvents.length > 0);
        done += inNew;
        await completeOrchestration(client, wi, []);
        continue;
      }
      // the past events are left out and streamed, every chunk under the limit
      assert.equal((r.pastEvents || []).length, 0);
      const chunks = await readHistory(client, orch, r.executionId.value);
      assert.ok(chunks.length >= 2, `${chunks.length} chunk(s)`);
      const past = chunks.flatMap((c) => c.events);
      assert.equal(past[0].eventType, "orchestratorStarted");
      assert.ok(past[1].executionStarted);
      const scheduled = past.filter((e) => e.taskScheduled);
      assert.deepEqual(scheduled.map((e) => e.eventId ?? 0), [0, 1, 2]);
      assert.equal(scheduled[2].taskScheduled.input.value, big("in2"));
      const completed = past.filter((e) => e.taskCompleted).length;
      done = completed + inNew;
      streamed++;
      if (done < 3) {
        await completeOrchestration(client, wi, []);
        continue;
      }
      const bytes = past.reduce((n, e) => n + JSON.stringify(e).length, 0) +
        r.newEvents.reduce((n, e) => n + JSON.stringify(e).length, 0);
      assert.ok(bytes > 5 * MB, `only ${bytes} bytes of history`);
      await completeOrchestration(client, wi, [raw.actions.complete(3, "ORCHESTRATION_STATUS_COMPLETED", '"done"')]);
    }
    assert.ok(streamed >= 1);
    assert.equal((await status(client, orch)).orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");

    // the history stream of a client is chunked the same way, and names a wrong execution
    const all = await readHistory(client, orch);
    assert.ok(all.length >= 2);
    await assert.rejects(readHistory(client, orch, "no-such-execution"),
      (e) => e.code === raw.grpc.status.NOT_FOUND && /no execution 'no-such-execution'/.test(e.details));
  } finally {
    work.close();
    client.close();
  }
});

test("a worker without the capability gets a clear failure for a history over its limit and keeps its stream", { timeout: 60_000 }, async () => {
  const client = raw.connect();
  const orch = raw.uid("huge"), small = raw.uid("small"), act = raw.uid("huge-act");
  const acts = new raw.WorkStream(client, raw.filters([], [act]));
  const work = new raw.WorkStream(client, raw.filters([orch, small], []));   // no capabilities
  try {
    await raw.unary(client, "StartInstance", { name: orch, instanceId: orch });
    let wi = await work.must();
    await completeOrchestration(client, wi, [0, 1, 2, 3].map((i) => raw.actions.scheduleTask(i, act, big(`in${i}`))));
    for (let i = 0; i < 4; i++) await completeActivity(client, await acts.must(), big(`out${i}`));
    // episodes stay under 4 MiB for a while; then the instance fails instead of being sent
    const deadline = Date.now() + 30_000;
    let st;
    for (;;) {
      st = await status(client, orch);
      // RUNNING is the enum's zero: the wire leaves it out, and the decoder gives undefined
      if ((st.orchestrationStatus || "ORCHESTRATION_STATUS_RUNNING") !== "ORCHESTRATION_STATUS_RUNNING") break;
      assert.ok(Date.now() < deadline, "the instance never ended");
      const next = await work.next(500);
      if (next) {
        assert.equal(next.orchestratorRequest.instanceId, orch);
        await completeOrchestration(client, next, []);
      }
    }
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(st.failureDetails.errorType, "HistoryTooLarge");
    assert.match(st.failureDetails.errorMessage, /HISTORY_STREAMING/);
    assert.match(st.failureDetails.errorMessage, /4 MiB/);

    // the same stream still serves other work
    await raw.unary(client, "StartInstance", { name: small, instanceId: small });
    wi = await work.must();
    assert.equal(wi.orchestratorRequest.instanceId, small);
    await completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", "1")]);
    assert.equal((await status(client, small)).orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
  } finally {
    acts.close();
    work.close();
    client.close();
  }
});
