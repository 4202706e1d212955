"use strict";
// Rewind, as the .NET and Java clients use it (RewindInstance: the server rewrites the
// history) and as the JavaScript and Python workers can answer it (a RewindOrchestrationAction
// carrying the history they rewrote). Raw gRPC calls shaped like theirs; the worker here is
// the test, so it sees exactly what an SDK's worker would be handed.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 20_000 };
const client = raw.connect();
after(() => client.close());

const kinds = (events) => events.map((e) => e.eventType);

async function state(id) {
  return (await raw.unary(client, "GetInstance", { instanceId: id, getInputsAndOutputs: true })).orchestrationState;
}

// runToFailure: start O as ID; its episode schedules A twice (tasks 0 and 1); task 0
// succeeds, task 1 fails, and the orchestration fails with it. Returns the failed run's
// execution id.
async function runToFailure(s, O, A, id) {
  await raw.unary(client, "StartInstance", { name: O, instanceId: id });
  let wi = await s.must();
  await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, '"a"'), raw.actions.scheduleTask(1, A, '"b"')]);
  // the two activities and the orchestration's episodes come in whatever order the server
  // hands them out: episodes before the one that has both results just take them in
  let acts = 0, final = null;
  while (acts < 2 || final === null) {
    const t = await s.must();
    if (t.activityRequest) {
      if ((t.activityRequest.taskId || 0) === 0) await raw.completeActivity(client, t, '"ok"');
      else await raw.unary(client, "CompleteActivityTask", {
        instanceId: id, taskId: 1, completionToken: t.completionToken,
        failureDetails: { errorType: "Boom", errorMessage: "task 1 failed" },
      });
      acts++;
      continue;
    }
    const all = [...t.orchestratorRequest.pastEvents, ...t.orchestratorRequest.newEvents];
    if (all.some((e) => e.taskFailed) && all.some((e) => e.taskCompleted)) final = t;
    else await raw.completeOrchestration(client, t, []);
  }
  wi = final;
  await raw.completeOrchestration(client, wi, [raw.actions.complete(2, "ORCHESTRATION_STATUS_FAILED", undefined, {
    failureDetails: { errorType: "Boom", errorMessage: "task 1 failed" },
  })]);
  const st = await raw.waitDone(client, id);
  assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
  return st.executionId.value;
}

test("RewindInstance: the worker gets the failed run's history without the failure, and the failed task runs again", TIMEOUT, async () => {
  const O = raw.uid("rw"), A = raw.uid("rw-act"), id = raw.uid("rw");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    const failedExec = await runToFailure(s, O, A, id);
    await raw.unary(client, "RewindInstance", { instanceId: id, reason: raw.str("fixed it") });
    // Running at once, so a client that waits for completion next does not see the old failure
    assert.equal((await state(id)).orchestrationStatus || "ORCHESTRATION_STATUS_RUNNING", "ORCHESTRATION_STATUS_RUNNING");

    const wi = await s.must();
    const r = wi.orchestratorRequest;
    assert.notEqual(r.executionId.value, failedExec);
    const past = kinds(r.pastEvents);
    assert.ok(!past.includes("taskFailed") && !past.includes("executionCompleted"), past.join());
    const scheduled = r.pastEvents.filter((e) => e.taskScheduled).map((e) => e.eventId || 0);
    assert.deepEqual(scheduled, [0]);                    // the failed task's scheduling is gone too
    assert.equal(r.pastEvents.find((e) => e.executionStarted).executionStarted.orchestrationInstance.executionId.value, r.executionId.value);
    assert.ok(r.pastEvents.some((e) => e.taskCompleted));   // what succeeded is kept
    const rewound = r.newEvents.find((e) => e.executionRewound);
    assert.equal(rewound.executionRewound.reason.value, "fixed it");

    // replaying, the worker schedules task 1 again; it succeeds this time
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(1, A, '"b"')]);
    const t = await s.must();
    assert.equal(t.activityRequest.taskId, 1);
    await raw.completeActivity(client, t, '"ok now"');
    const last = await s.must();
    assert.ok(last.orchestratorRequest.newEvents.some((e) => e.taskCompleted));
    await raw.completeOrchestration(client, last, [raw.actions.complete(2, "ORCHESTRATION_STATUS_COMPLETED", '"done"')]);
    const st = await raw.waitDone(client, id);
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
    assert.equal(st.failureDetails, undefined);
    const h = kinds(await raw.history(client, id));
    assert.equal(h.filter((k) => k === "executionRewound").length, 1, h.join());
    assert.equal(h.filter((k) => k === "taskFailed").length, 0, h.join());
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

// The Python SDK retries a step under its first attempt's number (only each retry's timer
// takes a new one): TaskScheduled 1, TaskFailed 1, TimerCreated 2, TimerFired 2,
// TaskScheduled 1, TaskFailed 1. A rewind of that chain takes the attempts and the timer out
// together, or the replay would meet the timer where the code schedules its first attempt.
test("RewindInstance takes out a retry chain whose attempts share one number (the Python SDK's shape) with its timer", TIMEOUT, async () => {
  const O = raw.uid("rwpy"), A = raw.uid("rwpy-act"), id = raw.uid("rwpy");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  const failActivity = (t) => raw.unary(client, "CompleteActivityTask", {
    instanceId: id, taskId: t.activityRequest.taskId, completionToken: t.completionToken,
    failureDetails: { errorType: "Boom", errorMessage: "attempt failed" },
  });
  try {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id });
    await raw.completeOrchestration(client, await s.must(), [raw.actions.scheduleTask(1, A, '"x"')]);
    for (let attempt = 1; attempt <= 2; attempt++) {
      const t = await s.must();
      assert.equal(t.activityRequest.taskId, 1);
      await failActivity(t);
      const wi = await s.must();
      assert.ok(wi.orchestratorRequest.newEvents.some((e) => e.taskFailed));
      if (attempt === 2) {
        await raw.completeOrchestration(client, wi, [raw.actions.complete(3, "ORCHESTRATION_STATUS_FAILED", undefined, {
          failureDetails: { errorType: "Boom", errorMessage: "attempt failed" },
        })]);
        break;
      }
      await raw.completeOrchestration(client, wi, [{ id: 2, createTimer: { fireAt: raw.ts(Date.now()) } }]);
      const fired = await s.must();
      assert.ok(fired.orchestratorRequest.newEvents.some((e) => e.timerFired));
      await raw.completeOrchestration(client, fired, [raw.actions.scheduleTask(1, A, '"x"')]);   // the same number
    }
    assert.equal((await raw.waitDone(client, id)).orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");

    await raw.unary(client, "RewindInstance", { instanceId: id, reason: raw.str("fixed") });
    const wi = await s.must();
    const past = kinds(wi.orchestratorRequest.pastEvents);
    for (const k of ["taskScheduled", "taskFailed", "timerCreated", "timerFired", "executionCompleted"])
      assert.ok(!past.includes(k), `${k} left in ${past.join()}`);
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(1, A, '"x"')]);
    const t = await s.must();
    assert.equal(t.activityRequest.taskId, 1);
    await raw.completeActivity(client, t, '"ok"');
    const last = await s.must();
    assert.ok(last.orchestratorRequest.newEvents.some((e) => e.taskCompleted && e.taskCompleted.taskScheduledId === 1));
    await raw.completeOrchestration(client, last, [raw.actions.complete(2, "ORCHESTRATION_STATUS_COMPLETED", '"done"')]);
    assert.equal((await raw.waitDone(client, id)).orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("RewindInstance refuses an instance that is not Failed with FAILED_PRECONDITION, and a missing one with NOT_FOUND", TIMEOUT, async () => {
  const O = raw.uid("rw-live"), id = raw.uid("rw-live");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id });
    await s.must();
    let e = await raw.rejection(raw.unary(client, "RewindInstance", { instanceId: id }));
    assert.equal(e.code, raw.grpc.status.FAILED_PRECONDITION);
    assert.match(e.details, /is Pending; only a Failed instance can be rewound/);
    e = await raw.rejection(raw.unary(client, "RewindInstance", { instanceId: raw.uid("nobody") }));
    assert.equal(e.code, raw.grpc.status.NOT_FOUND);
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a worker's RewindOrchestrationAction replaces the history and wakes the instance with it", TIMEOUT, async () => {
  const O = raw.uid("rw-act"), A = raw.uid("rw-act-a"), id = raw.uid("rw-action");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id });
    let wi = await s.must();
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, '"a"')]);
    await raw.completeActivity(client, await s.must(), '"first"');
    wi = await s.must();
    // the worker answers with a rewritten history, as the JS and Python workers build it:
    // the run's start (a new execution), then the rewind marker
    const all = [...wi.orchestratorRequest.pastEvents, ...wi.orchestratorRequest.newEvents];
    const started = all.find((e) => e.executionStarted);
    started.executionStarted.orchestrationInstance.executionId = raw.str("feedfacefeedfacefeedfacefeedface");
    const newHistory = [all[0], started, { eventId: -1, timestamp: raw.ts(Date.now()), executionRewound: { reason: raw.str("by the worker") } }];
    await raw.completeOrchestration(client, wi, [{ id: -1, rewindOrchestration: { newHistory } }]);

    wi = await s.must();
    const r = wi.orchestratorRequest;
    assert.equal(r.executionId.value, "feedfacefeedfacefeedfacefeedface");
    assert.deepEqual(kinds(r.pastEvents), ["orchestratorStarted", "executionStarted"]);
    assert.equal(r.newEvents.find((e) => e.executionRewound).executionRewound.reason.value, "by the worker");
    await raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"again"')]);
    assert.equal((await raw.waitDone(client, id)).output.value, '"again"');
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a worker's rewritten history keeps the rules: a child with a malformed id or a bad activity name fails the instance, and the history stays the failed run's", TIMEOUT, async () => {
  const O = raw.uid("rw-bad"), A = raw.uid("rw-bad-a"), child = raw.uid("rw-bad-child");
  const cases = [
    [{ subOrchestrationInstanceCreated: { instanceId: child + "/x", name: O } }, /new history event 2: .*instance id/],
    [{ taskScheduled: { name: "say\nhello" } }, /new history event 2: activity name/],
    [{ eventSent: { instanceId: "", name: "ping" } }, /new history event 2: .*instance id/],
    [{ executionStarted: { name: O, orchestrationInstance: { instanceId: "x", executionId: raw.str("e\u0001") } } }, /new history event 2: execution id/],
  ];
  for (const [bad, why] of cases) {
    const id = raw.uid("rw-bad");
    const s = new raw.WorkStream(client, raw.filters([O], [A]));
    try {
      await raw.unary(client, "StartInstance", { name: O, instanceId: id });
      const wi = await s.must();
      const all = [...wi.orchestratorRequest.pastEvents, ...wi.orchestratorRequest.newEvents];
      const started = all.find((e) => e.executionStarted);
      const newHistory = [all[0], started, { eventId: 0, timestamp: raw.ts(Date.now()), ...bad },
        { eventId: -1, timestamp: raw.ts(Date.now()), executionRewound: { reason: raw.str("forged") } }];
      await raw.completeOrchestration(client, wi, [{ id: -1, rewindOrchestration: { newHistory } }]);
      const st = await raw.waitDone(client, id);
      assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
      assert.equal(st.failureDetails.errorType, "InvalidRewind");
      assert.match(st.failureDetails.errorMessage, why);
      const h = kinds(await raw.history(client, id));
      assert.ok(!h.includes("executionRewound") && !h.includes("subOrchestrationInstanceCreated"), h.join());
    } finally {
      s.close();
      await raw.terminateAll(client, [id]);
    }
  }
});

test("a result with two RewindOrchestrationActions fails the instance with InvalidRewind, applying neither", TIMEOUT, async () => {
  const O = raw.uid("rw-two"), id = raw.uid("rw-two");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id });
    const wi = await s.must();
    const all = [...wi.orchestratorRequest.pastEvents, ...wi.orchestratorRequest.newEvents];
    const started = all.find((e) => e.executionStarted);
    const newHistory = [all[0], started, { eventId: -1, timestamp: raw.ts(Date.now()), executionRewound: { reason: raw.str("twice") } }];
    await raw.completeOrchestration(client, wi, [{ id: -1, rewindOrchestration: { newHistory } }, { id: -1, rewindOrchestration: { newHistory } }]);
    const st = await raw.waitDone(client, id);
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(st.failureDetails.errorType, "InvalidRewind");
    assert.match(st.failureDetails.errorMessage, /2 rewind actions; at most one/);
    assert.ok(!kinds(await raw.history(client, id)).includes("executionRewound"));
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a rewind drops the failed run's pending work, and commands sent before the rewrite still apply after it", TIMEOUT, async () => {
  const O = raw.uid("rw-cmd"), A = raw.uid("rw-cmd-a"), id = raw.uid("rw-cmd");
  let s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    // the run fails while task 1 is still pending: its TaskScheduled must go with the rewind
    await raw.unary(client, "StartInstance", { name: O, instanceId: id });
    let wi = await s.must();
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, '"a"'), raw.actions.scheduleTask(1, A, '"b"')]);
    const t0 = await s.must();
    await raw.unary(client, "CompleteActivityTask", {
      instanceId: id, taskId: t0.activityRequest.taskId || 0, completionToken: t0.completionToken,
      failureDetails: { errorType: "Boom", errorMessage: "failed" },
    });
    for (;;) {
      wi = await s.must();
      if (wi.orchestratorRequest) break;   // the other activity may come first; left pending
    }
    await raw.completeOrchestration(client, wi, [raw.actions.complete(2, "ORCHESTRATION_STATUS_FAILED", undefined, {
      failureDetails: { errorType: "Boom", errorMessage: "failed" },
    })]);
    await raw.waitDone(client, id);
    s.close();   // no worker now: the rewrite waits for one

    await raw.unary(client, "RewindInstance", { instanceId: id, reason: raw.str("again") });
    await raw.unary(client, "RaiseEvent", { instanceId: id, name: "poke", input: raw.str("1") });
    s = new raw.WorkStream(client, raw.filters([O], [A]));
    for (;;) {
      wi = await s.must();
      if (wi.orchestratorRequest) break;
    }
    const r = wi.orchestratorRequest;
    assert.deepEqual(r.pastEvents.filter((e) => e.taskScheduled), []);   // failed and pending: both gone
    // both reach the new run (in the order they reached the inbox: the event may come first
    // when it arrived while the rewrite was being committed)
    assert.deepEqual(kinds(r.newEvents).filter((k) => k !== "orchestratorStarted").sort(), ["eventRaised", "executionRewound"]);
    await raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"ok"')]);
    assert.equal((await raw.waitDone(client, id)).orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a rewind accepted before a kill -9 of the server is applied after its restart, once", { timeout: 40_000 }, async () => {
  const fs = require("node:fs"), os = require("node:os"), path = require("node:path");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-rewind-kill-"));
  const hub = { taskhub: "crashy" };   // on a named task hub, whose database must survive too
  // leases of 5 s: should the closed stream below still lease the rewind before the kill,
  // the restarted server hands it out again 5 s on (30 s by default, past s.must's wait)
  let srv = await raw.serve(dir, ["--lease", "5"]);
  let c = raw.connect({}, srv.endpoint);
  const O = raw.uid("rw-kill"), id = raw.uid("rw-kill");
  try {
    let s = new raw.WorkStream(c, raw.filters([O], []), hub);
    await raw.unary(c, "StartInstance", { name: O, instanceId: id }, hub);
    let wi = await s.must();
    await raw.unary(c, "CompleteOrchestratorTask", {
      instanceId: id, completionToken: wi.completionToken,
      actions: [raw.actions.complete(0, "ORCHESTRATION_STATUS_FAILED", undefined, { failureDetails: { errorType: "Boom", errorMessage: "x" } })],
    }, hub);
    s.close();
    // give the server a moment to see the stream go: a stream still registered there could
    // lease the rewind, and a lease held at the kill is redelivered only when it expires
    await new Promise((r) => setTimeout(r, 1000));
    await raw.unary(c, "RewindInstance", { instanceId: id, reason: raw.str("after the crash") }, hub);
    c.close();
    await srv.stop("SIGKILL");   // before any worker could take the rewind

    srv = await raw.serve(dir, ["--lease", "5"], srv.port);
    c = raw.connect({}, srv.endpoint);
    const st = (await raw.unary(c, "GetInstance", { instanceId: id }, hub)).orchestrationState;
    assert.equal(st.orchestrationStatus || "ORCHESTRATION_STATUS_RUNNING", "ORCHESTRATION_STATUS_RUNNING");
    s = new raw.WorkStream(c, raw.filters([O], []), hub);
    wi = await s.must(20_000);
    assert.ok(!kinds(wi.orchestratorRequest.pastEvents).includes("executionCompleted"));
    assert.equal(wi.orchestratorRequest.newEvents.find((e) => e.executionRewound).executionRewound.reason.value, "after the crash");
    await raw.unary(c, "CompleteOrchestratorTask", {
      instanceId: id, completionToken: wi.completionToken,
      actions: [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"recovered"')],
    }, hub);
    s.close();
    const done = await raw.unary(c, "WaitForInstanceCompletion", { instanceId: id, getInputsAndOutputs: true }, hub);
    assert.equal(done.orchestrationState.output.value, '"recovered"');
    const h = await raw.history(c, id, hub);
    assert.equal(kinds(h).filter((k) => k === "executionRewound").length, 1, kinds(h).join());
  } finally {
    c.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
