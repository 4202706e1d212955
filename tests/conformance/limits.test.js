"use strict";
// Size limits and poison items (issue 15, point 2), over raw gRPC as the SDKs speak it. A payload
// over DT_PAYLOAD_MAX (1 MiB) is refused on the way in with INVALID_ARGUMENT naming the limit and
// nothing stored; one a worker hands back fails what it completes (PayloadTooLarge), and the
// stream that served it goes on serving. The attack that found this: a 5 MiB payload echoed
// through activities, which kept its instance Running for ever and killed every stream it was
// sent on. A work item given back without a result DT_POISON_DELIVERIES (10) times in a row is
// parked: its instance fails (PoisonWorkItem).

const { test } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const MB = 1 << 20;
const huge = JSON.stringify("x".repeat(5 * MB));
const over = JSON.stringify("y".repeat(MB));   // 1 MiB + 2 bytes: just over
const LIMIT = /payload size limit of 1048576 bytes \(1 MiB, DT_PAYLOAD_MAX\)/;
const INVALID = (what) => (e) => e.code === raw.grpc.status.INVALID_ARGUMENT && LIMIT.test(e.details) && e.details.includes(what);

async function status(client, instanceId) {
  return (await raw.unary(client, "GetInstance", { instanceId, getInputsAndOutputs: true })).orchestrationState;
}

test("payloads over 1 MiB are refused on the way in, naming the limit, and nothing is stored", { timeout: 30_000 }, async () => {
  const client = raw.connect({ "grpc.max_send_message_length": 16 * MB });
  const orch = raw.uid("lim-in");
  try {
    await assert.rejects(raw.unary(client, "StartInstance", { name: orch, instanceId: orch, input: raw.str(huge) }), INVALID("input"));
    const got = await raw.unary(client, "GetInstance", { instanceId: orch });
    assert.ok(!got.exists, "nothing was stored");
    await raw.unary(client, "StartInstance", { name: orch, instanceId: orch, input: raw.str('"ok"') });
    await assert.rejects(raw.unary(client, "RaiseEvent", { instanceId: orch, name: "e", input: raw.str(over) }), INVALID("event data"));
    await assert.rejects(raw.unary(client, "SuspendInstance", { instanceId: orch, reason: raw.str(over) }), INVALID("reason"));
    await assert.rejects(raw.unary(client, "TerminateInstance", { instanceId: orch, output: raw.str(over) }), INVALID("terminate output"));
    await assert.rejects(raw.unary(client, "SignalEntity", { instanceId: "@lim@k", name: "op", input: raw.str(over) }), INVALID("signal input"));
    assert.equal((await status(client, orch)).orchestrationStatus, "ORCHESTRATION_STATUS_PENDING");
    await raw.terminateAll(client, [orch]);
  } finally {
    client.close();
  }
});

test("a 5 MiB payload echoed through activities fails its instance naming the limit; the stream serves on", { timeout: 30_000 }, async () => {
  // a worker as the SDKs run it: a 4 MiB receive limit, one stream for orchestrations and activities
  const client = raw.connect({ "grpc.max_send_message_length": 16 * MB });
  const echo = raw.uid("lim-echo"), act = raw.uid("lim-act"), other = raw.uid("lim-other");
  const work = new raw.WorkStream(client, raw.filters([echo, other], [act]));
  try {
    // the echo: the orchestration schedules an activity with its input, which answers 5 MiB
    await raw.unary(client, "StartInstance", { name: echo, instanceId: echo, input: raw.str('"seed"') });
    let wi = await work.must();
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, act, '"seed"')]);
    wi = await work.must();
    assert.ok(wi.activityRequest, "the activity is delivered");
    await raw.completeActivity(client, wi, huge);   // accepted: the activity fails instead
    wi = await work.must();
    const failed = wi.orchestratorRequest.newEvents.find((e) => e.taskFailed);
    assert.ok(failed, "the orchestration sees the activity fail");
    assert.equal(failed.taskFailed.failureDetails.errorType, "PayloadTooLarge");
    assert.match(failed.taskFailed.failureDetails.errorMessage, LIMIT);
    // the orchestration echoes on: a 5 MiB input to the next activity fails the instance
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(1, act, huge)]);
    const st = await raw.waitDone(client, echo);
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(st.failureDetails.errorType, "PayloadTooLarge");
    assert.match(st.failureDetails.errorMessage, /input of action 1/);
    assert.match(st.failureDetails.errorMessage, LIMIT);

    // the same stream serves other work: an orchestration and its activity complete
    await raw.unary(client, "StartInstance", { name: other, instanceId: other });
    wi = await work.must();
    assert.equal(wi.orchestratorRequest.instanceId, other);
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, act, '"small"')]);
    wi = await work.must();
    await raw.completeActivity(client, wi, '"done"');
    wi = await work.must();
    await raw.completeOrchestration(client, wi, [raw.actions.complete(1, "ORCHESTRATION_STATUS_COMPLETED", '"ok"')]);
    assert.equal((await raw.waitDone(client, other)).orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
    assert.equal(work.ended, null, "the stream is still open");
  } finally {
    work.close();
    client.close();
  }
});

test("a custom status or an output over the limit fails the instance, naming it", { timeout: 30_000 }, async () => {
  const client = raw.connect({ "grpc.max_send_message_length": 16 * MB });
  const a = raw.uid("lim-cs"), b = raw.uid("lim-out");
  const work = new raw.WorkStream(client, raw.filters([a, b], []));
  try {
    await raw.unary(client, "StartInstance", { name: a, instanceId: a });
    await raw.completeOrchestration(client, await work.must(), [], { customStatus: raw.str(over) });
    let st = await raw.waitDone(client, a);
    assert.equal(st.failureDetails.errorType, "PayloadTooLarge");
    assert.match(st.failureDetails.errorMessage, /custom status/);
    await raw.unary(client, "StartInstance", { name: b, instanceId: b });
    await raw.completeOrchestration(client, await work.must(), [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", over)]);
    st = await raw.waitDone(client, b);
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.match(st.failureDetails.errorMessage, /orchestration's result/);
    assert.equal(st.output, undefined);
  } finally {
    work.close();
    client.close();
  }
});

test("a work item given back without a result 10 times in a row is parked: its instance fails", { timeout: 30_000 }, async () => {
  const client = raw.connect();
  const orch = raw.uid("poison"), other = raw.uid("poison-ok");
  try {
    await raw.unary(client, "StartInstance", { name: orch, instanceId: orch });
    // once abandoned, then nine streams that break while they hold it
    let work = new raw.WorkStream(client, raw.filters([orch], []));
    let wi = await work.must();
    await raw.unary(client, "AbandonTaskOrchestratorWorkItem", { completionToken: wi.completionToken });
    work.close();
    for (let i = 1; i < 10; i++) {
      work = new raw.WorkStream(client, raw.filters([orch], []));
      wi = await work.must();
      assert.equal(wi.orchestratorRequest.instanceId, orch);
      work.close();
      // wait until the server has given it back (the next stream gets it again)
      await new Promise((r) => setTimeout(r, 100));
    }
    const st = await raw.waitDone(client, orch);
    assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
    assert.equal(st.failureDetails.errorType, "PoisonWorkItem");
    assert.match(st.failureDetails.errorMessage, /delivered 10 times without a result/);

    // other work goes on
    work = new raw.WorkStream(client, raw.filters([other], []));
    await raw.unary(client, "StartInstance", { name: other, instanceId: other });
    wi = await work.must();
    await raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", "1")]);
    assert.equal((await raw.waitDone(client, other)).orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
    work.close();
  } finally {
    client.close();
  }
});

// A filtered stream's search looks up each of its names while any work waits, so a filter is
// capped at DT_FILTER_MAX (1,000) names and versions of each kind; a longer one is refused with
// the limit named, and one at the cap is served.
test("a work item filter of more than 1,000 names is refused naming the limit; 1,000 are served", { timeout: 30_000 }, async () => {
  const client = raw.connect();
  const names = (n, what) => Array.from({ length: n }, (_, i) => `${what}-${i}`);
  try {
    for (const f of [raw.filters(names(1001, "o"), []), raw.filters([], [{ name: "a", versions: names(1001, "v") }]),
                     { workItemFilters: { orchestrations: [], activities: [], entities: names(1001, "e").map((name) => ({ name })) } }]) {
      const s = new raw.WorkStream(client, f);
      await assert.rejects(s.next(10_000), (e) => e.code === raw.grpc.status.INVALID_ARGUMENT && /over the 1000 a filter may list/.test(e.details));
    }
    const orch = raw.uid("lim-filter");
    const s = new raw.WorkStream(client, raw.filters([...names(999, "o"), orch], []));
    await raw.unary(client, "StartInstance", { name: orch, instanceId: orch });
    const wi = await s.must();
    assert.equal(wi.orchestratorRequest.instanceId, orch);
    await raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"ok"')]);
    s.close();
  } finally {
    client.close();
  }
});

// The attack that found this: continue-as-new's carryoverEvents skipped the rules RaiseEvent
// keeps, so a worker could carry an event named with control characters, or 3 MiB, into the
// next generation.
test("a continue-as-new carrying an event over the limit, or with a malformed name, fails its instance naming it", { timeout: 30_000 }, async () => {
  const client = raw.connect({ "grpc.max_send_message_length": 16 * MB });
  const O = raw.uid("lim-carry");
  const work = new raw.WorkStream(client, raw.filters([O], []));
  const carry = (name, input) => [raw.actions.complete(0, "ORCHESTRATION_STATUS_CONTINUED_AS_NEW", '"next"', {
    carryoverEvents: [{ eventId: -1, timestamp: raw.ts(Date.now()), eventRaised: { name, input: raw.str(input) } }],
  })];
  try {
    for (const [name, input, type, rule] of [
      ["big", over, "PayloadTooLarge", /event 0 carried by action 0/],
      ["evil\nname", "1", "InvalidName", /carried-over event name/],
      ["n".repeat(300), "1", "InvalidName", /carried-over event name/],
    ]) {
      const id = raw.uid("carry");
      await raw.unary(client, "StartInstance", { name: O, instanceId: id });
      await raw.completeOrchestration(client, await work.must(), carry(name, input));
      const st = await raw.waitDone(client, id);
      assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED", name.slice(0, 20));
      assert.equal(st.failureDetails.errorType, type);
      assert.match(st.failureDetails.errorMessage, rule);
    }
  } finally {
    work.close();
    client.close();
  }
});

test("a query with inputs pages large instances so that each page fits the 4 MiB an SDK's client receives", { timeout: 60_000 }, async () => {
  const client = raw.connect();   // grpc-js's default receive limit, as the SDKs keep it
  const O = raw.uid("big"), prefix = raw.uid("lim-page") + "-";
  const input = raw.str(JSON.stringify("p".repeat(MB - 64)));   // just under the limit
  const ids = Array.from({ length: 8 }, (_, i) => `${prefix}${i}`);
  const s = new raw.WorkStream(client, raw.filters([O]));
  try {
    for (const id of ids) await raw.unary(client, "StartInstance", { name: O, instanceId: id, input });
    for (let i = 0; i < ids.length; i++)   // completed, so that they can be purged at the end
      await raw.completeOrchestration(client, await s.must(), [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"ok"')]);
    for (const id of ids) await raw.waitDone(client, id);
    const seen = [];
    let token, pages = 0;
    do {
      const q = await raw.unary(client, "QueryInstances", { query: {
        instanceIdPrefix: raw.str(prefix), fetchInputsAndOutputs: true, maxInstanceCount: 100, continuationToken: token } });
      pages++;
      assert.ok(q.orchestrationState.length > 0 && q.orchestrationState.length < ids.length, `page ${pages}: ${q.orchestrationState.length} rows`);
      for (const st of q.orchestrationState) {
        assert.equal(st.input.value, input.value);
        seen.push(st.instanceId);
      }
      token = q.continuationToken;
    } while (token && pages < 10);
    assert.deepEqual(seen.sort(), [...ids].sort());
  } finally {
    s.close();
    // purged: other specs' queries should not meet 8 MiB of inputs
    for (const id of ids) await raw.unary(client, "PurgeInstances", { instanceId: id }).catch(() => {});
    client.close();
  }
});

// The attack that found this: reading a payload builds jansson's tree of it, up to fifty and
// more times its size (each "{}" of "[{},{},...]" a hash table), counted nowhere: concurrent
// 1 MB payloads took gigabytes. What reading JSON holds is bounded by --max-held-mb too: one
// payload alone is always read, many at once past the bound are refused.
test("JSON read at once past --max-held-mb is refused RESOURCE_EXHAUSTED, naming it; nothing refused is stored", { timeout: 60_000 }, async () => {
  const fs = require("node:fs"), os = require("node:os"), path = require("node:path");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-jsonheld-"));
  const server = await raw.serve(dir, ["--max-held-mb", "8"]);
  const c = raw.connect({ "grpc.max_send_message_length": 16 * MB }, server.endpoint);
  const objects = `[${Array(333_000).fill("{}").join(",")}]`;   // 1 MB of text, a ~90 MB tree
  const BOUND = /could not be read now: .*bound of 8 MiB for JSON being read \(--max-held-mb\); try again later/;
  try {
    // six: their 6 MB of requests fit the bound on messages held, so what refuses is JSON's
    const ids = Array.from({ length: 6 }, () => raw.uid("jh"));
    const results = await Promise.all(ids.map((instanceId) =>
      raw.unary(c, "StartInstance", { name: "jh", instanceId, input: raw.str(objects) }).then(() => null, (e) => e)));
    const refused = results.filter((e) => e !== null);
    assert.ok(refused.length > 0, "6 such payloads at once were all read");
    for (const e of refused) {
      assert.equal(e.code, raw.grpc.status.RESOURCE_EXHAUSTED, e.details);
      assert.match(e.details, BOUND);
    }
    for (let i = 0; i < ids.length; i++)
      assert.equal(!!(await raw.unary(c, "GetInstance", { instanceId: ids[i] })).exists, results[i] === null, ids[i]);
    // one alone is read, whatever the bound
    const alone = raw.uid("jh");
    await raw.unary(c, "StartInstance", { name: "jh", instanceId: alone, input: raw.str(objects) });
    assert.equal((await status(c, alone)).input.value, objects);
  } finally {
    c.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
