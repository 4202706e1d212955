"use strict";
// sdk-health: the GetWorkItems stream kept alive the way the .NET, Java and Python SDKs need it,
// with raw gRPC calls shaped like theirs. An idle stream gets a HealthPing every
// --health-ping-interval (run.sh sets 0.3 s), so an SDK that drops a stream silent for too long
// (.NET and Python: 120 s) keeps it. And when an SDK does drop its stream and opens a new one
// while an activity runs on, then sends the result under the old completion token (the .NET
// and Python workers do), the result counts exactly once: the redelivered run and a repeat of
// the late result are acknowledged and dropped.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 15_000 };
const client = raw.connect();
after(() => client.close());

test("an idle work item stream gets a HealthPing every interval, and nothing else", TIMEOUT, async () => {
  const s = new raw.WorkStream(client, raw.filters([raw.uid("health_idle")], [raw.uid("health_idle_act")]));
  const at = [];
  s.call.on("data", (wi) => at.push({ t: Date.now(), ping: !!wi.healthPing }));
  const t0 = Date.now();
  try {
    await new Promise((resolve) => setTimeout(resolve, 3000));
  } finally {
    s.close();
  }
  assert.equal(s.ended, null, `the idle stream ended: ${s.ended}`);
  assert.ok(at.every((x) => x.ping), "an idle stream with filters of its own got a work item");
  // one ping per 0.3 s, each after a poll of at most 0.2 s: 6-7 in 3 s, at least 3 however slow
  // the stream's start (none at the default 30 s), at most 15
  assert.ok(at.length >= 3 && at.length <= 15, `${at.length} health pings in 3 s at one per 0.3 s`);
  const gaps = at.map((x, i) => x.t - (i ? at[i - 1].t : t0));
  assert.ok(gaps.every((g) => g >= 150), `pings came closer than the interval: gaps ${gaps} ms`);
});

test("a result sent under the old token after the worker reconnected counts once; the redelivered run is dropped", TIMEOUT, async () => {
  const O = raw.uid("health_long"), A = raw.uid("health_slow"), id = raw.uid("health-late");
  const f = raw.filters([O], [A]);
  let s = new raw.WorkStream(client, f);
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    const wi = await s.must(5000);
    assert.equal(wi.orchestratorRequest.instanceId, id);
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, '"job"')]);
    const old = await s.must(5000);
    assert.ok(old.activityRequest, `expected the activity, got ${old.request}`);

    // the worker drops its stream (it thinks it dead) while the activity runs on, and reconnects
    s.close();
    s = new raw.WorkStream(client, f);
    const again = await s.must(5000);   // the activity, given back and handed out anew
    assert.ok(again.activityRequest, `expected the activity again, got ${again.request}`);
    assert.equal(again.activityRequest.orchestrationInstance.instanceId, id);
    assert.notEqual(again.completionToken, old.completionToken, "redelivered under the same token");

    // the first run's result, under the token of the stream that is gone: it counts
    await raw.completeActivity(client, old, '"first run"');
    // a repeat of it: acknowledged, dropped
    await raw.completeActivity(client, old, '"first run, again"');
    const episode = await s.must(5000);
    assert.ok(episode.orchestratorRequest, `expected the episode, got ${episode.request}`);
    const done = episode.orchestratorRequest.newEvents.filter((e) => e.taskCompleted);
    assert.equal(done.length, 1, "the episode should carry exactly one TaskCompleted");
    assert.equal(done[0].taskCompleted.result.value, '"first run"');
    // the redelivered run finishes too: acknowledged, dropped
    await raw.completeActivity(client, again, '"second run"');
    await raw.completeOrchestration(client, episode,
      [raw.actions.complete(1, "ORCHESTRATION_STATUS_COMPLETED", done[0].taskCompleted.result.value)]);

    const state = await raw.waitDone(client, id);
    assert.equal(state.orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
    assert.equal(state.output.value, '"first run"');
    const h = await raw.history(client, id);
    const completed = h.filter((e) => e.taskCompleted);
    assert.equal(completed.length, 1, `history holds ${completed.length} TaskCompleted events`);
    assert.equal(completed[0].taskCompleted.taskScheduledId || 0, 0);
    assert.equal(completed[0].taskCompleted.result.value, '"first run"');
    assert.equal(await s.next(500), null, "nothing more for this worker");
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

// A late result refused (its failure details nest too deep) did not count, yet used up the
// token: the corrected one that followed was acknowledged and dropped, and the activity ran
// again.
test("a late result that is refused does not use up its token: the corrected one counts", TIMEOUT, async () => {
  const O = raw.uid("health_fix"), A = raw.uid("health_fix_act"), id = raw.uid("health-fix");
  const f = raw.filters([O], [A]);
  let s = new raw.WorkStream(client, f);
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    const wi = await s.must(5000);
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, A, '"job"')]);
    const old = await s.must(5000);
    assert.ok(old.activityRequest, `expected the activity, got ${old.request}`);
    s.close();
    s = new raw.WorkStream(client, f);
    const again = await s.must(5000);
    assert.ok(again.activityRequest, `expected the activity again, got ${again.request}`);

    let deep = { errorType: "Deep", errorMessage: "innermost" };
    for (let i = 0; i < 70; i++) deep = { errorType: "Deep", errorMessage: `level ${i}`, innerFailure: deep };
    const e = await raw.rejection(raw.completeActivity(client, old, undefined, { failureDetails: deep }));
    assert.equal(e.code, raw.grpc.status.INVALID_ARGUMENT, e.details);
    assert.match(e.details, /nest deeper than/);
    await raw.completeActivity(client, old, '"fixed"');
    const episode = await s.must(5000);
    assert.ok(episode.orchestratorRequest, `expected the episode, got ${episode.request}`);
    const done = episode.orchestratorRequest.newEvents.filter((x) => x.taskCompleted);
    assert.equal(done.length, 1);
    assert.equal(done[0].taskCompleted.result.value, '"fixed"');
    await raw.completeActivity(client, again, '"second run"');   // acknowledged, dropped
    await raw.completeOrchestration(client, episode,
      [raw.actions.complete(1, "ORCHESTRATION_STATUS_COMPLETED", '"fixed"')]);
    assert.equal((await raw.waitDone(client, id)).output.value, '"fixed"');
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

// A worker says how many items of each kind it takes at once (maxConcurrent*WorkItems); the
// attack that found this asked for 2^31-1 and held every item of the hub, each with its
// history in memory, for as long as its stream lived. A stream holds at most 1,000 of a kind.
test("a stream holds at most 1,000 items of a kind, whatever its worker asks", { timeout: 120_000 }, async () => {
  const hub = { taskhub: raw.uid("ceiling") }, O = raw.uid("ceiling_orch");
  const N = 1005;
  const s = new raw.WorkStream(client, { ...raw.filters([O], []), maxConcurrentOrchestrationWorkItems: 2147483647 }, hub);
  try {
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, k) =>
        raw.unary(client, "StartInstance", { instanceId: `c-${i + k}`, name: O }, hub)));
    }
    const held = [];
    for (let i = 0; i < 1000; i++) held.push(await s.must(20_000));
    assert.equal(await s.next(1500), null, "a 1,001st item came while 1,000 were held");
    await raw.unary(client, "CompleteOrchestratorTask", { instanceId: held[0].orchestratorRequest.instanceId,
      completionToken: held[0].completionToken, actions: [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"ok"')] }, hub);
    const more = await s.must(10_000);   // one done: room for one more
    assert.ok(more.orchestratorRequest, `expected an episode, got ${more.request}`);
    assert.equal(await s.next(500), null, "more than one came for one done");
  } finally {
    s.close();
    await raw.unary(client, "DeleteTaskHub", {}, hub).catch(() => {});
  }
});
