"use strict";
// Ids and names from a gRPC client and from a worker's actions keep core's rules, and a
// sub-orchestration whose id is taken fails in its parent (SubOrchestrationInstanceFailed
// naming the conflict), as the Durable Task Framework answers. The worker here is the test,
// sending raw actions no SDK would check first, so what it sees is the hub's own doing.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 20_000 };
const client = raw.connect();
after(() => client.close());

async function state(id) {
  return (await raw.unary(client, "GetInstance", { instanceId: id, getInputsAndOutputs: true }));
}

test("StartInstance and RaiseEvent with a control character or an over-long name are INVALID_ARGUMENT naming the field", TIMEOUT, async () => {
  const id = raw.uid("ids-start");
  let e = await raw.rejection(raw.unary(client, "StartInstance", { name: "o\nERROR forged", instanceId: id }));
  assert.equal(e.code, raw.grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /orchestrator name has a control character \(0x0a\)/);
  e = await raw.rejection(raw.unary(client, "StartInstance", { name: "n".repeat(257), instanceId: id }));
  assert.match(e.details, /orchestrator name is 257 characters long; at most 256/);
  e = await raw.rejection(raw.unary(client, "StartInstance", { name: "o", instanceId: `${id}\u0085` }));
  assert.match(e.details, /instance id has a control character \(U\+0085\)/);
  e = await raw.rejection(raw.unary(client, "StartInstance", { name: "o", instanceId: id, version: { value: "v\t1" } }));
  assert.match(e.details, /orchestrator version has a control character/);
  assert.ok(!(await state(id)).exists);
  await raw.unary(client, "StartInstance", { name: raw.uid("nobody"), instanceId: id });
  e = await raw.rejection(raw.unary(client, "RaiseEvent", { instanceId: id, name: "ev\r\nforged" }));
  assert.equal(e.code, raw.grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /event name has a control character/);
  await raw.terminateAll(client, [id]);
});

// withWorker: a stream taking only orchestrator O's work.
async function withWorker(O, fn) {
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

const subAction = (id, instanceId, name = "child") => ({ id, createSubOrchestration: { instanceId, name } });

test("a worker's createSubOrchestration with '@bad/id' fails the orchestration naming it, and creates nothing", TIMEOUT, async () => {
  const O = raw.uid("ids-bad-sub");
  const id = raw.uid("ids-parent");
  await withWorker(O, async (s) => {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id });
    const wi = await s.must();
    await raw.completeOrchestration(client, wi, [raw.actions.scheduleTask(0, "fine", '"x"'), subAction(1, "@bad/id")]);
  });
  const st = await raw.waitDone(client, id);
  assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");
  assert.equal(st.failureDetails.errorType, "InvalidInstanceId");
  assert.match(st.failureDetails.errorMessage, /createSubOrchestration action 1: instance id '@bad\/id' contains '\/'/);
  assert.ok(!(await state("@bad/id")).exists);
  // none of the episode's actions was applied: no activity was scheduled either
  const kinds = (await raw.history(client, id)).map((e) => e.eventType);
  assert.ok(!kinds.includes("taskScheduled") && !kinds.includes("subOrchestrationInstanceCreated"), kinds.join(","));
});

test("a worker's sendEvent with a name that is not UTF-8-clean text fails the orchestration naming it", TIMEOUT, async () => {
  const O = raw.uid("ids-bad-event");
  const id = raw.uid("ids-sender");
  await withWorker(O, async (s) => {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id });
    const wi = await s.must();
    await raw.completeOrchestration(client, wi, [{ id: 0, sendEvent: { instance: { instanceId: "someone" }, name: "e\u001b[31m" } }]);
  });
  const st = await raw.waitDone(client, id);
  assert.equal(st.failureDetails.errorType, "InvalidName");
  assert.match(st.failureDetails.errorMessage, /sendEvent action 0: event name has a control character \(0x1b\)/);
});

// collide: parent O (ID) creates a child with CHILD's id (task 0); resolves to the failure
// the parent is handed next.
async function collide(O, id, child) {
  return withWorker(O, async (s) => {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id });
    let wi = await s.must();
    await raw.completeOrchestration(client, wi, [subAction(0, child)]);
    wi = await s.must();
    const failed = wi.orchestratorRequest.newEvents.find((e) => e.subOrchestrationInstanceFailed);
    assert.ok(failed, `no SubOrchestrationInstanceFailed in ${JSON.stringify(wi.orchestratorRequest.newEvents)}`);
    assert.equal(failed.subOrchestrationInstanceFailed.taskScheduledId || 0, 0);
    await raw.completeOrchestration(client, wi, [raw.actions.complete(1, "ORCHESTRATION_STATUS_COMPLETED", '"ok"')]);
    return failed.subOrchestrationInstanceFailed.failureDetails;
  });
}

test("a child id held by a live instance, a finished one or the parent itself fails the task in the parent; the holder is untouched", TIMEOUT, async () => {
  const O = raw.uid("ids-collide");
  // live: a start no worker takes stays Pending
  const live = raw.uid("ids-live");
  await raw.unary(client, "StartInstance", { name: raw.uid("nobody"), instanceId: live, input: raw.str('"mine"') });
  let f = await collide(O, raw.uid("ids-p1"), live);
  assert.equal(f.errorType, "OrchestrationAlreadyExists");
  assert.equal(f.errorMessage, `sub-orchestration '${live}' was not started: instance '${live}' already exists with status Pending`);
  let st = (await state(live)).orchestrationState;
  assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_PENDING");
  assert.equal(st.input.value, '"mine"');
  assert.equal(st.parentInstance, undefined);

  // finished: terminated by a client
  const fin = raw.uid("ids-fin");
  await raw.unary(client, "StartInstance", { name: raw.uid("nobody"), instanceId: fin, input: raw.str('"kept"') });
  await raw.unary(client, "TerminateInstance", { instanceId: fin, output: raw.str('"gone"') });
  await raw.waitDone(client, fin);
  f = await collide(O, raw.uid("ids-p2"), fin);
  assert.match(f.errorMessage, new RegExp(`instance '${fin}' already exists with status Terminated`));
  st = (await state(fin)).orchestrationState;
  assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_TERMINATED");
  assert.equal(st.input.value, '"kept"');

  // the parent's own id
  const self = raw.uid("ids-self");
  f = await collide(O, self, self);
  assert.equal(f.errorMessage, `sub-orchestration '${self}' was not started: '${self}' is the parent's own instance id`);
  st = await raw.waitDone(client, self);
  assert.equal(st.orchestrationStatus, "ORCHESTRATION_STATUS_COMPLETED");
  await raw.terminateAll(client, [live]);
});
