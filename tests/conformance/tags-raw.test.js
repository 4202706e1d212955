"use strict";
// Tags and trace context from a gRPC client and from a worker's actions keep core's rules
// (DT_TAGS_MAX, keys as names, DT_TRACE_PARENT_MAX, DT_TRACE_STATE_MAX, DT_SPAN_ID_MAX): a
// client's start over them is INVALID_ARGUMENT naming the field and the limit, and stores
// nothing; a worker's action over them fails its orchestration naming the action, as other
// bad actions do. Once, 14 MB of tags were accepted, and every listing after it failed.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 30_000 };
const TAGS_MAX = 64 * 1024;
const client = raw.connect();
after(() => client.close());

const W3C = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async function state(id) {
  return raw.unary(client, "GetInstance", { instanceId: id, getInputsAndOutputs: true });
}

// tagsOf: one tag whose JSON text ({"k":"vvv..."}, as the server keeps it) is LEN bytes.
const tagsOf = (len) => ({ k: "v".repeat(len - 8) });

async function refusedStart(request, pattern) {
  const id = raw.uid("tags-refused");
  const e = await raw.rejection(raw.unary(client, "StartInstance", { name: "o", instanceId: id, ...request }));
  assert.equal(e.code, raw.grpc.status.INVALID_ARGUMENT, e.details);
  assert.match(e.details, pattern);
  assert.ok(!(await state(id)).exists, "a refused start stored its instance");
}

test("StartInstance with 14 MB of tags, or one byte over DT_TAGS_MAX, is INVALID_ARGUMENT naming tags and the limit", TIMEOUT, async () => {
  await refusedStart({ tags: tagsOf(14 << 20) },
    /^tags are 14680064 bytes of JSON text, over the tags size limit of 65536 bytes \(64 KiB, DT_TAGS_MAX\)$/);
  await refusedStart({ tags: tagsOf(TAGS_MAX + 1) }, /tags are 65537 bytes of JSON text.*DT_TAGS_MAX/);
  // the listing every client makes still works (it failed for everyone once such a start was kept)
  const page = await raw.unary(client, "QueryInstances", { query: { maxInstanceCount: 10, fetchInputsAndOutputs: true } });
  assert.ok(Array.isArray(page.orchestrationState));
});

test("a tag key with a newline, a C1 control, or none at all is INVALID_ARGUMENT naming the rule", TIMEOUT, async () => {
  await refusedStart({ tags: { "team\nERROR forged": "x" } }, /^tags: a key has a control character \(0x0a\) at byte 4$/);
  await refusedStart({ tags: { "a\u0085": "x" } }, /tags: a key has a control character \(U\+0085\)/);
  await refusedStart({ tags: { ["k".repeat(257)]: "x" } }, /tags: a key is 257 characters long; at most 256/);
  await refusedStart({ tags: { "": "x" } }, /tags: a key is empty/);
});

test("an oversized or non-ASCII trace context on StartInstance is INVALID_ARGUMENT naming the field", TIMEOUT, async () => {
  await refusedStart({ parentTraceContext: { traceParent: W3C, traceState: { value: "k=" + "v".repeat(511) } } },
    /^traceState is 513 bytes long; at most 512 are allowed$/);
  await refusedStart({ parentTraceContext: { traceParent: `${W3C}-${"f".repeat(9)}` } },
    /^traceParent is 65 bytes long; at most 64 are allowed$/);
  await refusedStart({ parentTraceContext: { traceParent: W3C, traceState: { value: "k=v\r\nforged" } } },
    /traceState has a byte that is not printable ASCII \(0x0d\) at byte 3/);
});

test("a start with tags and a trace context at the limits works; GetInstance and the worker see them as given", TIMEOUT, async () => {
  const O = raw.uid("tags-ok");
  const id = raw.uid("tags-ok");
  const tags = { team: "payments", note: "line one\nline two", ["k".repeat(256)]: "ünï" };
  const parentTraceContext = { traceParent: `${W3C}-${"f".repeat(8)}`, traceState: { value: "s".repeat(512) } };
  await raw.unary(client, "StartInstance", { name: O, instanceId: id, tags, parentTraceContext });
  assert.deepEqual((await state(id)).orchestrationState.tags, tags);
  const big = raw.uid("tags-big");
  await raw.unary(client, "StartInstance", { name: raw.uid("nobody"), instanceId: big, tags: tagsOf(TAGS_MAX) });
  assert.equal((await state(big)).orchestrationState.tags.k.length, TAGS_MAX - 8);
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    const wi = await s.must();
    const started = raw.startedEvent(wi).executionStarted;
    assert.deepEqual(started.tags, tags);
    assert.equal(started.parentTraceContext.traceParent, parentTraceContext.traceParent);
    assert.equal(started.parentTraceContext.traceState.value, parentTraceContext.traceState.value);
    await raw.completeOrchestration(client, wi, [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"ok"', { tags: { added: "yes" } })]);
  } finally {
    s.close();
  }
  const done = await raw.waitDone(client, id);
  assert.equal(done.orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
  assert.deepEqual(done.tags, { ...tags, added: "yes" });
  await raw.terminateAll(client, [big]);
});

// runEpisode: start orchestrator O as ID (with START's fields) and answer its first work item
// with ACTIONS (and EXTRA); resolves to the instance once it has finished.
async function runEpisode(O, id, actions, extra = {}, start = {}) {
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id, ...start });
    const wi = await s.must();
    await raw.completeOrchestration(client, wi, actions, extra);
  } finally {
    s.close();
  }
  return raw.waitDone(client, id);
}

test("a worker's createSubOrchestration with tags over DT_TAGS_MAX fails the orchestration naming it, and creates nothing", TIMEOUT, async () => {
  const id = raw.uid("tags-parent");
  const child = raw.uid("tags-child");
  const st = await runEpisode(raw.uid("tags-sub"), id, [
    raw.actions.scheduleTask(0, "fine", '"x"'),
    { id: 1, createSubOrchestration: { instanceId: child, name: "child", tags: tagsOf(TAGS_MAX + 1) } },
  ]);
  assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
  assert.equal(st.failureDetails.errorType, "InvalidTags");
  assert.equal(st.failureDetails.errorMessage, "createSubOrchestration action 1: tags are 65537 bytes of JSON text, " +
    "over the tags size limit of 65536 bytes (64 KiB, DT_TAGS_MAX)");
  assert.ok(!(await state(child)).exists);
  // none of the episode's actions was applied
  const kinds = (await raw.history(client, id)).map((e) => e.eventType);
  assert.ok(!kinds.includes("taskScheduled") && !kinds.includes("subOrchestrationInstanceCreated"), kinds.join(","));
});

test("a worker's scheduleTask with a bad trace context or tag key fails the orchestration naming it", TIMEOUT, async () => {
  let st = await runEpisode(raw.uid("tags-trace"), raw.uid("tags-trace"), [
    raw.actions.scheduleTask(0, "act", '"x"', { parentTraceContext: { traceParent: W3C, traceState: { value: "k=caf\u00e9" } } }),
  ]);
  assert.equal(st.failureDetails.errorType, "InvalidTraceContext");
  assert.match(st.failureDetails.errorMessage, /^scheduleTask action 0: traceState has a byte that is not printable ASCII \(0xc3\) at byte 5$/);
  st = await runEpisode(raw.uid("tags-key"), raw.uid("tags-key"), [
    raw.actions.scheduleTask(0, "act", '"x"', { tags: { "a\tb": "x" } }),
  ]);
  assert.equal(st.failureDetails.errorType, "InvalidTags");
  assert.match(st.failureDetails.errorMessage, /^scheduleTask action 0: tags: a key has a control character \(0x09\) at byte 1$/);
});

test("tags a completion adds that take the instance's over DT_TAGS_MAX fail it, and its own tags are kept", TIMEOUT, async () => {
  const id = raw.uid("tags-end");
  const st = await runEpisode(raw.uid("tags-end"), id,
    [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"ok"', { tags: { w: "w".repeat(40_000) } })], {},
    { tags: tagsOf(40_000) });
  assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
  assert.equal(st.failureDetails.errorType, "InvalidTags");
  assert.match(st.failureDetails.errorMessage,
    /^completeOrchestration action 0: the instance's tags with those it adds are 80007 bytes of JSON text, over the tags size limit of 65536 bytes/);
  assert.deepEqual(Object.keys(st.tags), ["k"]);
  assert.equal(st.tags.k.length, 40_000 - 8);
});

test("a worker's orchestration span id over DT_SPAN_ID_MAX fails the orchestration naming it", TIMEOUT, async () => {
  const st = await runEpisode(raw.uid("tags-span"), raw.uid("tags-span"),
    [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"ok"')],
    { orchestrationTraceContext: { spanID: { value: "s".repeat(65) } } });
  assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
  assert.equal(st.failureDetails.errorType, "InvalidTraceContext");
  assert.equal(st.failureDetails.errorMessage, "orchestrationTraceContext: spanID is 65 bytes long; at most 64 are allowed");
});
