"use strict";
// Entities over raw gRPC, for what the JavaScript SDK never sends: malformed entity ids and
// empty operations refused with the rule named; an orchestration's message to a malformed id
// failing it; a worker's batch result with failureDetails, or too large to receive, changing
// nothing and the batch coming back; work item filters keeping one entity's work from a
// stream that names another; a worker that takes a batch and goes away (its stream cancelled)
// — the batch goes to the next worker and is applied once, and the dead stream's token is
// refused NOT_FOUND.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const OK = 0;
const { INVALID_ARGUMENT, NOT_FOUND } = raw.grpc.status;

// entityStream: a GetWorkItems stream taking only the entities named NAMES.
function entityStream(client, names) {
  return new raw.WorkStream(client, {
    workItemFilters: { orchestrations: [], activities: [], entities: names.map((name) => ({ name })) },
  });
}

// batchOf: the EntityRequest of work item WI, with its operations as {requestId, op, input}.
function batchOf(wi) {
  const r = wi.entityRequestV2;
  assert.ok(r, `not an entity work item: ${JSON.stringify(wi).slice(0, 200)}`);
  const ops = r.operationRequests.map((e) => {
    const x = e.entityOperationSignaled || e.entityOperationCalled;
    return { requestId: x.requestId, op: x.operation, input: x.input ? x.input.value : undefined };
  });
  return { id: r.instanceId, state: r.entityState ? r.entityState.value : undefined, ops };
}

// sumResult: the EntityBatchResult a counter worker answers for batch B (each op adds its
// input), under the token of WI.
function sumResult(wi, b) {
  let v = b.state === undefined ? 0 : JSON.parse(b.state);
  const results = b.ops.map((o) => {
    v += JSON.parse(o.input);
    return { success: { result: raw.str(String(v)) } };
  });
  return { completionToken: wi.completionToken, results, actions: [], entityState: raw.str(String(v)) };
}

async function getEntity(client, instanceId) {
  const r = await raw.unary(client, "GetEntity", { instanceId, includeState: true });
  return r.exists ? r.entity : undefined;
}

const signal = (client, instanceId, name, input) =>
  raw.unary(client, "SignalEntity", { instanceId, name, input: raw.str(input), requestId: raw.uid("req") });

test("SignalEntity refuses malformed entity ids and empty operations with INVALID_ARGUMENT naming the rule", async () => {
  const client = raw.connect();
  try {
    const cases = [
      ["@nosecondat", /form @name@key/],
      ["noleadingat@x", /form @name@key/],
      ["@@key", /empty name/],
      ["@counter@" + "k".repeat(100), /characters long; at most 100/],
      ["@counter@bad\u0001key", /control character/],
      ["", /empty/],
    ];
    for (const [id, rule] of cases) {
      const e = await raw.rejection(signal(client, id, "add", "1"));
      assert.equal(e.code, INVALID_ARGUMENT, `${JSON.stringify(id)}: ${e.code} ${e.details}`);
      assert.match(e.details, rule, JSON.stringify(id));
    }
    const e = await raw.rejection(signal(client, `@counter@${raw.uid("k")}`, "", "1"));
    assert.equal(e.code, INVALID_ARGUMENT);
    assert.match(e.details, /operation/);
    // nothing was created by any of them
    const page = await raw.unary(client, "QueryEntities", { query: { instanceIdStartsWith: raw.str("@@"), includeTransient: true } });
    assert.equal((page.entities || []).length, 0);
  } finally {
    client.close();
  }
});

// The attack that found this: a 5 MiB requestId made an entity work item larger than any
// worker receives (4 MiB by default), and every worker's stream broke on it, again and again.
test("SignalEntity refuses a request id over the name rules; a sendEntityMessage with one, or a lock set over 256, fails its instance", { timeout: 30_000 }, async () => {
  const client = raw.connect({ "grpc.max_send_message_length": 16 * 1024 * 1024 });
  const O = raw.uid("badreq");
  const stream = new raw.WorkStream(client, raw.filters([O]));
  try {
    const entity = `@counter@${raw.uid("k")}`;
    for (const [rid, rule] of [["r".repeat(5 << 20), /request id.*at most 256/], ["bad\u0007id", /request id.*control character/]]) {
      const e = await raw.rejection(raw.unary(client, "SignalEntity", { instanceId: entity, name: "add", input: raw.str("1"), requestId: rid }));
      assert.equal(e.code, INVALID_ARGUMENT, e.details);
      assert.match(e.details, rule);
    }
    assert.equal(await getEntity(client, entity), undefined, "a refused signal made the entity");
    const lockSet = Array.from({ length: 257 }, (_, i) => `@counter@k${i}`);
    for (const [msg, rule] of [
      [{ entityOperationSignaled: { requestId: "r".repeat(300), operation: "add", input: raw.str("1"), targetInstanceId: raw.str(entity) } }, /entity request id/],
      [{ entityLockRequested: { criticalSectionId: raw.uid("cs"), lockSet, position: 0, parentInstanceId: raw.str("x") } }, /257 entities; at most 256/],
    ]) {
      const id = raw.uid("br");
      await raw.unary(client, "StartInstance", { instanceId: id, name: O });
      const wi = await stream.must();
      await raw.completeOrchestration(client, wi, [{ id: 0, sendEntityMessage: msg }]);
      const st = await raw.waitDone(client, id);
      assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
      assert.equal(st.failureDetails.errorType, "InvalidEntityMessage");
      assert.match(st.failureDetails.errorMessage, rule);
    }
    assert.equal(await getEntity(client, entity), undefined, "a failed episode's signal reached the entity");
  } finally {
    stream.close();
    client.close();
  }
});

// A bound at or before the epoch was taken for "no bound" and every entity came back.
test("QueryEntities: a lastModifiedTo at or before the epoch matches nothing; a range that ends before it begins is refused", async () => {
  const client = raw.connect();
  try {
    const entity = `@counter@${raw.uid("k")}`;
    await signal(client, entity, "add", "1");
    const prefix = raw.str(entity);
    const all = await raw.unary(client, "QueryEntities", { query: { instanceIdStartsWith: prefix, includeTransient: true } });
    assert.equal((all.entities || []).length, 1);
    for (const seconds of [0, -5]) {
      const page = await raw.unary(client, "QueryEntities", { query: { instanceIdStartsWith: prefix, includeTransient: true, lastModifiedTo: { seconds, nanos: 0 } } });
      assert.equal((page.entities || []).length, 0, `lastModifiedTo ${seconds}`);
    }
    const e = await raw.rejection(raw.unary(client, "QueryEntities", { query: { includeTransient: true, lastModifiedFrom: raw.ts(Date.now()), lastModifiedTo: raw.ts(Date.now() - 60_000) } }));
    assert.equal(e.code, INVALID_ARGUMENT, e.details);
    assert.match(e.details, /range ends before it begins/);
  } finally {
    client.close();
  }
});

test("an orchestration's sendEntityMessage to a malformed entity id fails it with InvalidEntityId naming the id", async () => {
  const client = raw.connect();
  const O = raw.uid("badtarget");
  const stream = new raw.WorkStream(client, raw.filters([O]));
  try {
    for (const [bad, rule] of [["@nokey", /form @name@key/], ["@@k", /empty name/]]) {
      const id = raw.uid("bt");
      await raw.unary(client, "StartInstance", { instanceId: id, name: O });
      const wi = await stream.must();
      assert.equal(wi.orchestratorRequest.instanceId, id);
      await raw.completeOrchestration(client, wi, [{
        id: 0,
        sendEntityMessage: { entityOperationSignaled: { requestId: raw.uid("r"), operation: "add", input: raw.str("1"), targetInstanceId: raw.str(bad) } },
      }]);
      const st = await raw.waitDone(client, id);
      assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
      assert.equal(st.failureDetails.errorType, "InvalidEntityId");
      assert.ok(st.failureDetails.errorMessage.includes(bad), st.failureDetails.errorMessage);
      assert.match(st.failureDetails.errorMessage, rule);
    }
  } finally {
    stream.close();
    client.close();
  }
});

test("a batch result with failureDetails changes nothing and the batch comes back; one with a state over the limit fails its operations", { timeout: 60_000 }, async () => {
  const client = raw.connect();
  const name = raw.uid("rawfail").toLowerCase();
  const id = `@${name}@k`;
  let stream;
  try {
    await signal(client, id, "add", "2");
    await signal(client, id, "add", "3");
    stream = entityStream(client, [name]);   // after the signals: both in one batch
    let wi = await stream.must();
    let b = batchOf(wi);
    assert.equal(b.id, id);
    assert.deepEqual(b.ops.map((o) => o.input), ["2", "3"]);
    const first = b.ops.map((o) => o.requestId);
    // the whole batch failed on the worker: nothing may change, not even "state deleted"
    const e = await raw.rejection(raw.unary(client, "CompleteEntityTask", {
      completionToken: wi.completionToken, results: [],
      failureDetails: { errorType: "Boom", errorMessage: "worker trouble" },
    }));
    assert.equal(e.code, INVALID_ARGUMENT, e.details);
    assert.equal(await getEntity(client, id), undefined);
    // its token is spent
    const again = await raw.rejection(raw.unary(client, "CompleteEntityTask", sumResult(wi, b)));
    assert.equal(again.code, NOT_FOUND);

    wi = await stream.must(20_000);
    b = batchOf(wi);
    assert.deepEqual(b.ops.map((o) => o.requestId), first, "the same operations come back");
    assert.equal(b.state, undefined);
    // a result whose state is over the entity state limit (2 MiB, so an entity stays
    // deliverable to workers that receive at most 4 MiB): every operation fails with
    // EntityStateTooLarge, the state stays as it was (none), the messages are consumed
    const huge = { ...sumResult(wi, b), entityState: raw.str(JSON.stringify("x".repeat(3 << 20))) };
    await raw.unary(client, "CompleteEntityTask", huge);
    assert.equal(await getEntity(client, id), undefined);
    assert.equal(await stream.next(700), null, "the batch was consumed, not given back");
    // the entity goes on: a new signal, a good result
    await signal(client, id, "add", "5");
    wi = await stream.must(20_000);
    b = batchOf(wi);
    assert.deepEqual(b.ops.map((o) => o.input), ["5"]);
    await raw.unary(client, "CompleteEntityTask", sumResult(wi, b));
    const meta = await getEntity(client, id);
    assert.equal(meta.serializedState.value, "5");
    assert.equal(meta.backlogQueueSize || 0, 0);
  } finally {
    if (stream) stream.close();
    client.close();
  }
});

test("a stream whose filters name only entity 'a' never receives entity 'b' work", { timeout: 60_000 }, async () => {
  const client = raw.connect();
  const a = raw.uid("fa").toLowerCase();
  const bName = raw.uid("fb").toLowerCase();
  const onlyA = entityStream(client, [a]);
  let onlyB;
  try {
    await signal(client, `@${bName}@1`, "add", "1");
    await signal(client, `@${a}@1`, "add", "1");
    await signal(client, `@${bName}@2`, "add", "1");
    // names are matched case-insensitively
    await signal(client, `@${a.toUpperCase()}@2`, "add", "1");
    const got = [];
    for (let i = 0; i < 2; i++) {
      const wi = await onlyA.must();
      const b = batchOf(wi);
      got.push(b.id);
      await raw.unary(client, "CompleteEntityTask", sumResult(wi, b));
    }
    assert.deepEqual(got.sort(), [`@${a}@1`, `@${a}@2`]);
    assert.equal(await onlyA.next(1_500), null, "the 'a' stream received other work");
    // b's work waited for a stream that takes it
    onlyB = entityStream(client, [bName]);
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const wi = await onlyB.must();
      ids.push(batchOf(wi).id);
      await raw.unary(client, "CompleteEntityTask", sumResult(wi, batchOf(wi)));
    }
    assert.deepEqual(ids.sort(), [`@${bName}@1`, `@${bName}@2`]);
  } finally {
    onlyA.close();
    if (onlyB) onlyB.close();
    client.close();
  }
});

test("a worker that takes a batch and goes away: the batch goes to the next worker, applies once, the old token is refused", { timeout: 60_000 }, async () => {
  const name = raw.uid("rawdie").toLowerCase();
  const id = `@${name}@k`;
  const client = raw.connect();
  const doomedClient = raw.connect(); // its own channel, as another worker process
  let doomed, next;
  try {
    for (let i = 1; i <= 5; i++) await signal(client, id, "add", String(i));
    doomed = entityStream(doomedClient, [name]);   // after the signals: all in one batch
    const wi = await doomed.must();
    const b = batchOf(wi);
    assert.equal(b.ops.length, 5);
    // the worker dies with the batch in hand: its stream is cancelled, its channel closed
    doomed.close();
    doomedClient.close();
    next = entityStream(client, [name]);
    const wi2 = await next.must(20_000);
    const b2 = batchOf(wi2);
    assert.deepEqual(b2.ops.map((o) => o.requestId), b.ops.map((o) => o.requestId));
    assert.notEqual(wi2.completionToken, wi.completionToken);
    await raw.unary(client, "CompleteEntityTask", sumResult(wi2, b2));
    // the dead worker's result, sent late under its old token, is refused and changes nothing
    const late = await raw.rejection(raw.unary(client, "CompleteEntityTask", {
      ...sumResult(wi, b), entityState: raw.str("1000"),
    }));
    assert.equal(late.code, NOT_FOUND, late.details);
    const meta = await getEntity(client, id);
    assert.equal(meta.serializedState.value, "15");
    assert.equal(meta.backlogQueueSize || 0, 0);
    assert.equal(await next.next(1_000), null, "the batch was delivered again after it was applied");
  } finally {
    if (doomed) doomed.close();
    doomedClient.close();
    if (next) next.close();
    client.close();
  }
});

void OK;
