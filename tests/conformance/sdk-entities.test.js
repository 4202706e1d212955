"use strict";
// Durable entities under load and contention, with the official JavaScript SDK: one counter
// called 1,000 times by 50 orchestrations at once ends at exactly 1,000, each call seeing a
// value of its own; critical sections over the same entities never overlap and lock sets
// given in different orders all complete; an orchestration that fails or is terminated while
// holding a lock lets it go; an entity no worker registers fails its callers and nothing else.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { TaskEntity, EntityInstanceId, OrchestrationStatus } = require("@microsoft/durabletask-js");
const h = require("./helpers/harness");

class Counter extends TaskEntity {
  initializeState() {
    return 0;
  }
  add(n) {
    this.state += n;
    return this.state;
  }
  get() {
    return this.state;
  }
}

// withEntities: withHub with entities registered too (name -> class).
async function withEntities({ entities = {}, ...rest }, body) {
  return h.withHub({ ...rest, start: false }, async (ctx) => {
    for (const [name, Cls] of Object.entries(entities)) ctx.worker.addNamedEntity(name, () => new Cls());
    await ctx.startWorker();
    return body(ctx);
  });
}

async function entityState(client, id) {
  const meta = await client.getEntity(id, true);
  return meta ? meta.state : undefined;
}

test("1,000 calls of one counter from 50 orchestrations at once end at exactly 1,000, each result seen once", { timeout: 120_000 }, () => {
  const ORCHS = 50;
  const CALLS = 20;
  const counter = new EntityInstanceId("counter", h.uid("k"));
  const adder = async function* (ctx) {
    const seen = [];
    for (let i = 0; i < CALLS; i++) seen.push(yield ctx.entities.callEntity(counter, "add", 1));
    return seen;
  };
  return withEntities({ orchestrators: { adder }, entities: { counter: Counter } }, async ({ client }) => {
    const ids = [];
    for (let i = 0; i < ORCHS; i++) ids.push(await client.scheduleNewOrchestration("adder", undefined, h.uid(`adder${i}`)));
    const all = [];
    for (const id of ids) {
      const state = await h.waitDone(client, id, 100);
      h.assertCompleted(state);
      const seen = JSON.parse(state.serializedOutput);
      assert.equal(seen.length, CALLS);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `${id}: results not increasing: ${seen}`);
      all.push(...seen);
    }
    all.sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: ORCHS * CALLS }, (_, i) => i + 1), "every value from 1 to 1000 seen exactly once");
    assert.equal(await entityState(client, counter), ORCHS * CALLS);
    const meta = await client.getEntity(counter, false);
    assert.equal(meta.backlogQueueSize, 0);
    assert.equal(meta.lockedBy, undefined);
  });
});

test("critical sections over the same two entities never overlap, and lock sets in any order all complete", { timeout: 90_000 }, () => {
  const a = new EntityInstanceId("counter", h.uid("a"));
  const b = new EntityInstanceId("counter", h.uid("b"));
  const c = new EntityInstanceId("counter", h.uid("c"));
  const log = []; // [who, "enter"|"exit", time]
  let inside = 0;
  let most = 0;
  const critical = async (_ctx, who) => {
    inside++;
    most = Math.max(most, inside);
    log.push([who, "enter", Date.now()]);
    await h.sleep(25);
    log.push([who, "exit", Date.now()]);
    inside--;
    return who;
  };
  // each holder takes its lock set (in the order given) twice; inside, the activity and a
  // call to each locked entity
  const holder = async function* (ctx, input) {
    const ids = input.order.map((s) => EntityInstanceId.fromString(s));
    const out = [];
    for (let round = 0; round < 2; round++) {
      const lock = yield ctx.entities.lockEntities(...ids);
      const info = ctx.entities.isInCriticalSection();
      if (!info.inSection) throw new Error("not in a critical section after the lock was granted");
      out.push(yield ctx.callActivity("critical", `${input.who}#${round}`));
      for (const id of ids) yield ctx.entities.callEntity(id, "add", 1);
      lock.release();
    }
    return out;
  };
  return withEntities({ orchestrators: { holder }, activities: { critical }, entities: { counter: Counter } }, async ({ client }) => {
    const s = (e) => e.toString();
    const orders = [
      [s(a), s(b)], [s(b), s(a)], [s(a), s(b)], [s(b), s(a)],
      [s(a), s(b), s(c)], [s(c), s(b), s(a)], [s(b), s(c), s(a)], [s(c), s(a)],
    ];
    const ids = [];
    for (let i = 0; i < orders.length; i++) {
      ids.push(await client.scheduleNewOrchestration("holder", { who: `h${i}`, order: orders[i] }, h.uid(`holder${i}`)));
    }
    for (const id of ids) h.assertCompleted(await h.waitDone(client, id, 80));
    // every section ran, none overlapped another: enter/exit strictly alternate
    assert.equal(log.length, orders.length * 2 * 2);
    assert.equal(most, 1, "two holders were inside at once");
    for (let i = 0; i < log.length; i += 2) {
      assert.equal(log[i][1], "enter");
      assert.equal(log[i + 1][1], "exit");
      assert.equal(log[i][0], log[i + 1][0], `section of ${log[i][0]} interleaved with ${log[i + 1][0]}`);
    }
    const uses = (e) => orders.filter((o) => o.includes(s(e))).length * 2;
    assert.equal(await entityState(client, a), uses(a));
    assert.equal(await entityState(client, b), uses(b));
    assert.equal(await entityState(client, c), uses(c));
    for (const e of [a, b, c]) assert.equal((await client.getEntity(e, false)).lockedBy, undefined);
  });
});

test("an orchestration that fails or is terminated while holding a lock releases it; another then locks the entity", { timeout: 60_000 }, () => {
  const e = new EntityInstanceId("counter", h.uid("held"));
  const lockThenFail = async function* (ctx) {
    yield ctx.entities.lockEntities(e);
    yield ctx.entities.callEntity(e, "add", 1);
    throw new Error("failing inside the critical section");
  };
  const lockThenWait = async function* (ctx) {
    yield ctx.entities.lockEntities(e);
    yield ctx.entities.callEntity(e, "add", 10);
    ctx.setCustomStatus("locked");
    yield ctx.waitForExternalEvent("never");
  };
  const lockAndAdd = async function* (ctx) {
    const lock = yield ctx.entities.lockEntities(e);
    const v = yield ctx.entities.callEntity(e, "add", 100);
    lock.release();
    return v;
  };
  return withEntities({ orchestrators: { lockThenFail, lockThenWait, lockAndAdd }, entities: { counter: Counter } }, async ({ client }) => {
    const failed = await client.scheduleNewOrchestration("lockThenFail", undefined, h.uid("lockfail"));
    const fs = await h.waitDone(client, failed);
    assert.equal(OrchestrationStatus[fs.runtimeStatus], "FAILED");
    assert.match(fs.failureDetails.message, /failing inside/);
    let meta = await client.getEntity(e, true);
    assert.equal(meta.state, 1);
    assert.equal(meta.lockedBy, undefined, "the failed orchestration still holds the lock");

    const waiting = await client.scheduleNewOrchestration("lockThenWait", undefined, h.uid("lockwait"));
    await h.waitCustomStatus(client, waiting, "locked");
    meta = await client.getEntity(e, true);
    assert.equal(meta.lockedBy, waiting);
    assert.equal(meta.state, 11);
    // while it holds the lock, another's critical section waits
    const next = await client.scheduleNewOrchestration("lockAndAdd", undefined, h.uid("lockadd"));
    await client.waitForOrchestrationStart(next, false, h.WAIT_S);   // PENDING until its first episode commits
    await h.sleep(500);
    assert.equal(h.statusName(await client.getOrchestrationState(next)), "RUNNING");
    assert.equal((await client.getEntity(e, true)).state, 11);

    await client.terminateOrchestration(waiting, "stop");
    const ts = await h.waitDone(client, waiting);
    assert.equal(OrchestrationStatus[ts.runtimeStatus], "TERMINATED");
    h.assertCompleted(await h.waitDone(client, next), 111);
    meta = await client.getEntity(e, true);
    assert.equal(meta.state, 111);
    assert.equal(meta.lockedBy, undefined);
  });
});

test("calling an entity no worker registers fails the call; the worker and other entities carry on", { timeout: 60_000 }, () => {
  const known = new EntityInstanceId("counter", h.uid("ok"));
  const unknown = new EntityInstanceId("nosuchentity", h.uid("x"));
  const caller = async function* (ctx) {
    let failure;
    try {
      yield ctx.entities.callEntity(unknown, "add", 1);
    } catch (err) {
      failure = err.message;
    }
    const v = yield ctx.entities.callEntity(known, "add", 5);
    return { failure, v };
  };
  return withEntities({ orchestrators: { caller }, entities: { counter: Counter } }, async ({ client }) => {
    const id = await client.scheduleNewOrchestration("caller", undefined, h.uid("unknown"));
    const state = await h.waitDone(client, id);
    h.assertCompleted(state);
    const out = JSON.parse(state.serializedOutput);
    assert.ok(out.failure, "the call to an unregistered entity did not fail");
    assert.match(out.failure, /nosuchentity/i);
    assert.equal(out.v, 5);
    // the unknown entity's operation was consumed (not looping) and it has no state
    const meta = await client.getEntity(unknown, false);
    assert.equal(meta, undefined);
    await client.signalEntity(known, "add", 1);
    await h.poll(async () => (await entityState(client, known)) === 6, "the counter at 6");
  });
});
