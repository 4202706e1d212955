"use strict";
// sdk-completions: how an orchestration episode's completion is taken, with raw gRPC calls
// shaped like the .NET, Java and Python SDKs'. A completion too large for one message is split
// by the .NET and Java SDKs into chunks (same token, isPartial on all but the last, chunkIndex
// 0, 1, ...): nothing is applied until the last chunk, then all of it at once; a chunk out of
// order is refused and the episode redelivered. A worker that abandons what it is handed (the
// SDKs' versioning "reject" mode) gets it back after a growing back-off, not in a hot loop. A
// completion with an action this server does not serve fails the instance as
// InvalidWorkerResponse, as the Durable Task Scheduler does, instead of redelivering it for ever.
// A completion that names another instance or task than its token's work item is refused,
// naming both, with nothing changed: the token does not silently decide.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 15_000 };
const { status } = raw.grpc;
const client = raw.connect();
after(() => client.close());

// chunk: one chunk of a chunked completion of WI, as the .NET and Java SDKs send it.
function chunk(wi, actions, index, partial) {
  return raw.completeOrchestration(client, wi, actions, { isPartial: partial, chunkIndex: { value: index } });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// withHeldServer: BODY({ c, part }) against a server of its own started with ARGS (a small
// --max-held-mb), c a client that may send 8 MiB; part(wi, k, last) sends chunk K of WI's
// completion: four scheduleTask actions of 768 KiB inputs (3 MiB), or one small one as LAST.
async function withHeldServer(args, body) {
  const fs = require("node:fs"), os = require("node:os"), path = require("node:path");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-chunks-"));
  const server = await raw.serve(dir, args);
  const c = raw.connect({ "grpc.max_send_message_length": 8 << 20 }, server.endpoint);
  const input = JSON.stringify("c".repeat(768 << 10));
  const part = (wi, k, last = false) => raw.completeOrchestration(c, wi,
    last ? [raw.actions.scheduleTask(4 * k, "a", '"small"')]
      : [0, 1, 2, 3].map((i) => raw.actions.scheduleTask(4 * k + i, "a", input)),
    { isPartial: !last, chunkIndex: { value: k } });
  try {
    await body({ c, part });
  } finally {
    c.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const scheduled = async (id) => (await raw.history(client, id)).filter((e) => e.taskScheduled);

test("a chunked completion is applied whole with its last chunk, and not before", TIMEOUT, async () => {
  const O = raw.uid("chunks_fan"), A = raw.uid("chunks_act"), id = raw.uid("chunks");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    const wi = await s.must(5000);
    const act = (i) => raw.actions.scheduleTask(i, A, JSON.stringify(`step ${i}`));
    await chunk(wi, [act(0)], 0, true);
    await chunk(wi, [act(1)], 1, true);
    assert.equal((await scheduled(id)).length, 0, "a partial completion was applied");
    assert.equal(await s.next(400), null, "an activity of a partial completion was handed out");

    await chunk(wi, [act(2)], 2, false);
    const h = await scheduled(id);
    assert.deepEqual(h.map((e) => [e.eventId || 0, e.taskScheduled.input.value]),
      [[0, '"step 0"'], [1, '"step 1"'], [2, '"step 2"']]);
    const got = [];
    for (let i = 0; i < 3; i++) {
      const t = await s.must(5000);
      assert.ok(t.activityRequest, `expected an activity, got ${t.request}`);
      got.push([t.activityRequest.taskId || 0, t.activityRequest.input.value]);
    }
    got.sort((a, b) => a[0] - b[0]);
    assert.deepEqual(got, [[0, '"step 0"'], [1, '"step 1"'], [2, '"step 2"']]);

    // the token is spent with the last chunk
    const e = await raw.rejection(chunk(wi, [act(3)], 3, false));
    assert.equal(e.code, status.NOT_FOUND, `a chunk after the last: ${e.code} ${e.details}`);
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a completion without a chunk index after chunks have come is refused, and the chunks are kept for their last", TIMEOUT, async () => {
  // it would end the episode with its own actions only, the chunks before it silently lost
  const O = raw.uid("chunks_cut"), A = raw.uid("chunks_cut_act"), id = raw.uid("chunkcut");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    const wi = await s.must(5000);
    const act = (i) => raw.actions.scheduleTask(i, A, JSON.stringify(`part ${i}`));
    await chunk(wi, [act(0)], 0, true);
    await chunk(wi, [act(1)], 1, true);
    const e = await raw.rejection(raw.completeOrchestration(client, wi, [act(2)]));
    assert.equal(e.code, status.INVALID_ARGUMENT, e.details);
    assert.match(e.details, /has 2 chunk\(s\) of a chunked completion in: it ends with chunk 2/);
    assert.match(e.details, /nothing was changed/);
    assert.equal((await scheduled(id)).length, 0, "something was applied");

    await chunk(wi, [act(2)], 2, false);
    assert.deepEqual((await scheduled(id)).map((x) => x.taskScheduled.input.value),
      ['"part 0"', '"part 1"', '"part 2"']);
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a completion naming another instance or task than its token's is refused, and the work item waits for the right one", TIMEOUT, async () => {
  const O = raw.uid("ids_orch"), A = raw.uid("ids_act"), id = raw.uid("ids"), other = raw.uid("ids-other");
  let s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    const wi = await s.must(5000);
    const schedule = [raw.actions.scheduleTask(0, A, '"job"')];
    let e = await raw.rejection(raw.completeOrchestration(client, wi, schedule, { instanceId: other }));
    assert.equal(e.code, status.INVALID_ARGUMENT, `${e.code} ${e.details}`);
    assert.match(e.details, new RegExp(`instance '${id}'.*not of instance '${other}'`));
    e = await raw.rejection(chunk({ ...wi, orchestratorRequest: { instanceId: other } }, schedule, 0, true));
    assert.equal(e.code, status.INVALID_ARGUMENT, `a chunk: ${e.code} ${e.details}`);
    assert.equal((await scheduled(id)).length, 0, "a refused completion was applied");
    await raw.completeOrchestration(client, wi, schedule);   // the right one still goes

    const act = await s.must(5000);
    assert.ok(act.activityRequest, `expected the activity, got ${act.request}`);
    e = await raw.rejection(raw.completeActivity(client, act, '"x"', { taskId: 7 }));
    assert.equal(e.code, status.INVALID_ARGUMENT, `${e.code} ${e.details}`);
    assert.match(e.details, /\(task 0\), not of instance .*\(task 7\)/);
    e = await raw.rejection(raw.completeActivity(client, act, '"x"', { instanceId: other }));
    assert.equal(e.code, status.INVALID_ARGUMENT, `${e.code} ${e.details}`);
    // an activity's token on an episode's completion is no episode's: unknown, whatever it names
    e = await raw.rejection(raw.unary(client, "CompleteOrchestratorTask",
      { instanceId: other, completionToken: act.completionToken, actions: [] }));
    assert.equal(e.code, status.NOT_FOUND, `${e.code} ${e.details}`);
    // the same once the token is only remembered (its stream ended): a late result
    s.close();
    s = new raw.WorkStream(client, raw.filters([O], [A]));
    const again = await s.must(5000);
    assert.ok(again.activityRequest, `expected the activity again, got ${again.request}`);
    e = await raw.rejection(raw.completeActivity(client, act, '"x"', { instanceId: other }));
    assert.equal(e.code, status.INVALID_ARGUMENT, `a late result: ${e.code} ${e.details}`);
    await raw.completeActivity(client, again, '"done"');
    const episode = await s.must(5000);
    const done = episode.orchestratorRequest.newEvents.filter((x) => x.taskCompleted);
    assert.deepEqual(done.map((x) => x.taskCompleted.result.value), ['"done"']);
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a chunk out of order is refused naming the chunk due, and the episode is redelivered under a new token", TIMEOUT, async () => {
  const O = raw.uid("chunks_order"), A = raw.uid("chunks_order_act"), id = raw.uid("chunk-order");
  const s = new raw.WorkStream(client, raw.filters([O], [A]));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    const wi = await s.must(5000);
    const acts = [raw.actions.scheduleTask(0, A, '"a"'), raw.actions.scheduleTask(1, A, '"b"')];
    await chunk(wi, [acts[0]], 0, true);
    const e = await raw.rejection(chunk(wi, [acts[1]], 2, false));
    assert.equal(e.code, status.INVALID_ARGUMENT, `refused with ${e.code}: ${e.details}`);
    assert.match(e.details, /chunk 2 of a chunked completion arrived where chunk 1 was due/);
    assert.equal((await scheduled(id)).length, 0, "part of a refused completion was applied");

    const again = await s.must(5000);
    assert.ok(again.orchestratorRequest, `expected the episode again, got ${again.request}`);
    assert.equal(again.orchestratorRequest.instanceId, id);
    assert.notEqual(again.completionToken, wi.completionToken);
    assert.ok(raw.startedEvent(again), "the redelivered episode is the same first episode");
    await raw.completeOrchestration(client, again, acts);
    assert.equal((await scheduled(id)).length, 2);
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("an abandoned episode comes back after a growing back-off, not in a hot loop", TIMEOUT, async () => {
  const O = raw.uid("picky"), id = raw.uid("abandon");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    const t0 = Date.now();
    let last = t0;
    const gaps = [], tokens = new Set();
    while (Date.now() - t0 < 3000 && gaps.length < 20) {
      const wi = await s.next(3000 - (Date.now() - t0));
      if (!wi) break;
      const now = Date.now();
      gaps.push(now - last);
      last = now;
      assert.equal(wi.orchestratorRequest.instanceId, id);
      tokens.add(wi.completionToken);
      await raw.unary(client, "AbandonTaskOrchestratorWorkItem", { completionToken: wi.completionToken });
    }
    // at once, then after 0.25, 0.5, 1 and 2 s: 3 to 5 deliveries in 3 s
    assert.ok(gaps.length >= 3 && gaps.length <= 5, `${gaps.length} deliveries in 3 s (gaps ${gaps} ms)`);
    assert.equal(tokens.size, gaps.length, "a redelivery reused a completion token");
    assert.ok(gaps[1] >= 200, `redelivered ${gaps[1]} ms after the first abandon, before the first back-off`);
    for (let i = 2; i < gaps.length; i++) {
      assert.ok(gaps[i] >= gaps[i - 1], `the back-off shrank: gaps ${gaps} ms`);
    }
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

test("a completion with an action this server cannot apply fails the instance as InvalidWorkerResponse, once", TIMEOUT, async () => {
  const O = raw.uid("entity_user"), id = raw.uid("refused");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await raw.unary(client, "StartInstance", { instanceId: id, name: O });
    const wi = await s.must(5000);
    // a sendEntityMessage with no signal, call, lock or unlock in it
    const empty = { id: 0, sendEntityMessage: {} };
    const e = await raw.rejection(raw.completeOrchestration(client, wi, [empty]));
    assert.equal(e.code, status.INVALID_ARGUMENT, `refused with ${e.code}: ${e.details}`);
    assert.match(e.details, /sendEntityMessage has no message set/);
    assert.match(e.details, /the instance was failed/);

    const state = await raw.waitDone(client, id, 5000);
    assert.equal(state.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(state.failureDetails.errorType, "InvalidWorkerResponse");
    assert.match(state.failureDetails.errorMessage, /sendEntityMessage/);
    assert.equal(await s.next(700), null, "the refused episode was delivered again");
  } finally {
    s.close();
    await raw.terminateAll(client, [id]);
  }
});

// The attack that found this: a worker that takes many items and sends each a few partial
// chunks made the server keep every chunk (up to 256 MiB an item) outside --max-held-mb:
// 4 items of 12 chunks took it from 42 MB to 1.2 GB. Kept chunks now count against the bound.
test("chunks kept for partial completions count against --max-held-mb: past it a chunk is refused, its item given back", { timeout: 60_000 }, () =>
  withHeldServer(["--max-held-mb", "16"], async ({ c, part }) => {
    const O = raw.uid("held_chunks");
    const ids = [];
    for (let i = 0; i < 8; i++) {
      ids.push(raw.uid("hc"));
      await raw.unary(c, "StartInstance", { instanceId: ids[i], name: O });
    }
    const s = new raw.WorkStream(c, { ...raw.filters([O]), maxConcurrentOrchestrationWorkItems: 100 });
    const items = [];
    for (let i = 0; i < 8; i++) items.push(await s.must(5000));
    let refused = null, kept = 0;
    for (let k = 0; k < 3 && !refused; k++) {
      for (const wi of items) {
        const e = await part(wi, k).then(() => null, (err) => err);
        if (e) { refused = e; break; }
        kept += 3;
      }
    }
    assert.ok(refused, "every chunk was kept");
    assert.equal(refused.code, status.RESOURCE_EXHAUSTED, refused.details);
    assert.match(refused.details, /--max-held-mb/);
    assert.ok(kept <= 16, `${kept} MiB of chunks kept under a 16 MiB bound`);
    s.close();   // the items go back, and what their chunks held with them

    // room again: a chunked completion of the same size goes through whole
    const s2 = new raw.WorkStream(c, raw.filters([O]));
    const wi = await s2.must(10_000);
    await part(wi, 0);
    await part(wi, 1);
    await part(wi, 2, true);
    const h = (await raw.history(c, wi.orchestratorRequest.instanceId)).filter((e) => e.taskScheduled);
    assert.equal(h.length, 9);
    s2.close();

    // a completion that could never be kept (over half the bound: its last chunk is held
    // twice for a while) fails its instance at once, naming the bound, not redelivered
    // until it is poisoned
    const s3 = new raw.WorkStream(c, raw.filters([O]));
    const big = await s3.must(10_000);
    await part(big, 0);
    await part(big, 1);
    const e = await part(big, 2).then(() => null, (err) => err);
    assert.ok(e, "a third 3 MiB chunk was kept under a 16 MiB bound");
    assert.equal(e.code, status.INVALID_ARGUMENT, e.details);
    assert.match(e.details, /half of the server's --max-held-mb.*failed with InvalidWorkerResponse/);
    const st = await raw.waitDone(c, big.orchestratorRequest.instanceId);
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(st.failureDetails.errorType, "InvalidWorkerResponse");
    assert.match(st.failureDetails.errorMessage, /at most 4096 chunks and 8388608 bytes/);
    s3.close();
  }),
);

// The attack that found this: chunks of tiny actions (a timer with no fields is a few bytes on
// the wire, a hundred and more kept) were counted by their bytes on the wire, so an item's
// chunks could keep some thirty times the bound. What they keep is counted now.
test("chunks count what they keep, not their bytes on the wire: tiny actions past the bound are refused", { timeout: 60_000 }, () =>
  withHeldServer(["--max-held-mb", "16"], async ({ c, part }) => {
    const O = raw.uid("tiny_chunks"), id = raw.uid("tiny");
    const PER = 20_000;
    const timers = (k) => Array.from({ length: PER }, (_, i) => ({ id: k * PER + i, createTimer: { fireAt: {} } }));
    await raw.unary(c, "StartInstance", { instanceId: id, name: O });
    const s = new raw.WorkStream(c, raw.filters([O]));
    const wi = await s.must(5000);
    let refused = null, sent = 0;
    for (let k = 0; k < 8 && !refused; k++) {
      refused = await raw.completeOrchestration(c, wi, timers(k), { isPartial: true, chunkIndex: { value: k } })
        .then(() => null, (err) => err);
      if (!refused) sent++;
    }
    // 8 chunks are about 2 MB on the wire, well under the 8 MiB a completion may keep
    assert.ok(refused, `all 8 chunks of ${PER} timers were kept under a 16 MiB bound`);
    assert.ok(sent >= 1, "the first chunk, a few MB kept, was refused");
    assert.equal(refused.code, status.INVALID_ARGUMENT, refused.details);
    assert.match(refused.details, /bytes kept in memory/);
    const st = await raw.waitDone(c, id);
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(st.failureDetails.errorType, "InvalidWorkerResponse");
    s.close();
  }),
);

// The attack that found this: a worker that sends the first chunks of its items' completions
// and then nothing, its stream kept open, held the server's bound for as long as it liked, and
// every other client was refused. Now, when more than half the bound is held, a completion
// whose next chunk is later than a request may take (--request-timeout) goes back.
test("chunks a worker stopped sending go back when the bound is pressed, and are left alone when it is not", { timeout: 60_000 }, () =>
  withHeldServer(["--max-held-mb", "16", "--request-timeout", "1"], async ({ c, part }) => {
    const O = raw.uid("stale_chunks");
    const a = raw.uid("stale-a"), b = raw.uid("stale-b");
    await raw.unary(c, "StartInstance", { instanceId: a, name: O });
    await raw.unary(c, "StartInstance", { instanceId: b, name: O });
    const s = new raw.WorkStream(c, raw.filters([O]));
    const first = [await s.must(5000), await s.must(5000)];
    const wa = first.find((w) => w.orchestratorRequest.instanceId === a);
    const wb = first.find((w) => w.orchestratorRequest.instanceId === b);

    // 3 MiB kept, under half the bound: a pause longer than a request may take is no matter
    await part(wa, 0);
    await sleep(2500);
    await part(wa, 1);   // 6 MiB now: still under half
    await sleep(1500);
    assert.equal(await s.next(10), null, "an item came back while the bound was not pressed");

    // 9 MiB: over half; the one that waited longest (a's) goes back, which ends the pressure,
    // so b's, just sent, stays
    await part(wb, 0);
    const again = await s.must(15_000);
    assert.equal(again.orchestratorRequest.instanceId, a);
    assert.notEqual(again.completionToken, wa.completionToken, "redelivered under the old token");
    const e = await raw.rejection(part(wa, 2, true));
    assert.equal(e.code, status.NOT_FOUND, `the old token still took a chunk: ${e.details}`);
    await sleep(1500);
    assert.equal(await s.next(10), null, "b's chunks went back too, with the bound no longer pressed");
    await part(wb, 1, true);
    assert.equal((await raw.history(c, b)).filter((x) => x.taskScheduled).length, 5);

    // and what a's held is free: a new chunked completion of 6 MiB goes through whole
    await part(again, 0);
    await part(again, 1);
    await part(again, 2, true);
    assert.equal((await raw.history(c, a)).filter((x) => x.taskScheduled).length, 9);
    s.close();
  }),
);
