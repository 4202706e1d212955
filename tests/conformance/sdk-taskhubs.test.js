"use strict";
// Task hubs: every managed Durable Task SDK package (and the Durable Task Scheduler's
// emulator) sends a "taskhub" metadata entry on every call. Each hub is isolated: the same
// instance id can live in two hubs, queries and work item streams of one never see the
// other's, no header means "default". CreateTaskHub / DeleteTaskHub act on the named hub;
// `dtask serve --task-hubs a,b` serves only those and answers NOT_FOUND for any other.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 20_000 };
const client = raw.connect();
after(() => client.close());
const hub = (name) => ({ taskhub: name });

async function get(id, name) {
  return raw.unary(client, "GetInstance", { instanceId: id, getInputsAndOutputs: true }, hub(name));
}

test("the same instance id lives in two hubs, each seeing only its own; no header is the default hub", TIMEOUT, async () => {
  const alpha = raw.uid("alpha"), beta = raw.uid("beta"), O = raw.uid("hubbed"), id = raw.uid("same-id");
  const sa = new raw.WorkStream(client, raw.filters([O], []), hub(alpha));
  const sb = new raw.WorkStream(client, raw.filters([O], []), hub(beta));
  try {
    await raw.unary(client, "StartInstance", { name: O, instanceId: id, input: raw.str('"in alpha"') }, hub(alpha));
    await raw.unary(client, "StartInstance", { name: O, instanceId: id, input: raw.str('"in beta"') }, hub(beta));
    assert.equal((await get(id, alpha)).orchestrationState.input.value, '"in alpha"');
    assert.equal((await get(id, beta)).orchestrationState.input.value, '"in beta"');
    assert.ok(!(await raw.unary(client, "GetInstance", { instanceId: id })).exists);   // default hub
    assert.ok(!(await raw.unary(client, "GetInstance", { instanceId: id }, hub(""))).exists);   // empty: default

    // each hub's stream gets its own hub's episode, under a token only that hub accepts
    const wa = await sa.must(), wb = await sb.must();
    assert.equal(raw.startedEvent(wa).executionStarted.input.value, '"in alpha"');
    assert.equal(raw.startedEvent(wb).executionStarted.input.value, '"in beta"');
    const e = await raw.rejection(raw.unary(client, "CompleteOrchestratorTask",
      { instanceId: id, completionToken: wb.completionToken, actions: [] }, hub(alpha)));
    assert.equal(e.code, raw.grpc.status.NOT_FOUND);   // beta's token means nothing in alpha
    await raw.unary(client, "CompleteOrchestratorTask", {
      instanceId: id, completionToken: wb.completionToken,
      actions: [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"beta done"')],
    }, hub(beta));
    const done = await raw.unary(client, "WaitForInstanceCompletion", { instanceId: id, getInputsAndOutputs: true }, hub(beta));
    assert.equal(done.orchestrationState.output.value, '"beta done"');
    assert.equal((await get(id, alpha)).orchestrationState.orchestrationStatus, "ORCHESTRATION_STATUS_PENDING");   // untouched

    const q = await raw.unary(client, "QueryInstances", { query: { instanceIdPrefix: raw.str(id), maxInstanceCount: 10 } }, hub(alpha));
    assert.equal(q.orchestrationState.length, 1);
    assert.equal(q.orchestrationState[0].input, undefined);
  } finally {
    sa.close();
    sb.close();
    await raw.unary(client, "TerminateInstance", { instanceId: id }, hub(alpha)).catch(() => {});
    await raw.unary(client, "DeleteTaskHub", {}, hub(alpha)).catch(() => {});
    await raw.unary(client, "DeleteTaskHub", {}, hub(beta)).catch(() => {});
  }
});

test("DeleteTaskHub removes a hub with all it holds and ends its work item streams; CreateTaskHub makes one", TIMEOUT, async () => {
  const gamma = raw.uid("gamma"), O = raw.uid("gone"), id = raw.uid("gone");
  await raw.unary(client, "CreateTaskHub", { recreateIfExists: false }, hub(gamma));
  await raw.unary(client, "StartInstance", { name: O, instanceId: id }, hub(gamma));
  const s = new raw.WorkStream(client, raw.filters([O], []), hub(gamma));
  try {
    await s.must();
    await raw.unary(client, "DeleteTaskHub", {}, hub(gamma));
    const ended = await s.next(5000).then(() => null, (err) => err);
    assert.ok(ended, "the stream did not end");
    assert.equal(ended.code, raw.grpc.status.NOT_FOUND);
    assert.match(ended.details, new RegExp(`task hub '${gamma}' was deleted`));
    assert.ok(!(await get(id, gamma)).exists);   // the name now means a new, empty hub
    const e = await raw.rejection(raw.unary(client, "DeleteTaskHub", {}, hub(raw.uid("never"))));
    assert.equal(e.code, raw.grpc.status.NOT_FOUND);
    // recreateIfExists empties a hub that is there
    await raw.unary(client, "StartInstance", { name: O, instanceId: id }, hub(gamma));
    await raw.unary(client, "CreateTaskHub", { recreateIfExists: true }, hub(gamma));
    assert.ok(!(await get(id, gamma)).exists);
  } finally {
    s.close();
    await raw.unary(client, "DeleteTaskHub", {}, hub(gamma)).catch(() => {});
  }
});

test("a wait on an instance of a hub that is deleted ends NOT_FOUND, and lets the hub go", TIMEOUT, async () => {
  const delta = raw.uid("delta"), id = raw.uid("waited");
  await raw.unary(client, "CreateTaskHub", { recreateIfExists: false }, hub(delta));
  try {
    await raw.unary(client, "StartInstance", { name: raw.uid("nobody-runs-it"), instanceId: id }, hub(delta));
    const waits = [0, 1, 2].map(() =>
      raw.rejection(raw.unary(client, "WaitForInstanceCompletion", { instanceId: id }, hub(delta))));
    await get(id, delta);   // answered after the waits' requests, sent before it, were taken
    await raw.unary(client, "DeleteTaskHub", {}, hub(delta));
    for (const e of await Promise.all(waits)) {
      assert.equal(e.code, raw.grpc.status.NOT_FOUND);
      assert.match(e.details, /the task hub was deleted/);
    }
    // the name is free again: a new, empty hub
    await raw.unary(client, "CreateTaskHub", { recreateIfExists: false }, hub(delta));
    assert.ok(!(await get(id, delta)).exists);
  } finally {
    await raw.unary(client, "DeleteTaskHub", {}, hub(delta)).catch(() => {});
  }
});

test("a taskhub that cannot be a hub's name is refused with INVALID_ARGUMENT naming it", TIMEOUT, async () => {
  for (const bad of ["../etc", "a b", "-lead", "x".repeat(65)]) {
    const e = await raw.rejection(raw.unary(client, "GetInstance", { instanceId: "x" }, hub(bad)));
    assert.equal(e.code, raw.grpc.status.INVALID_ARGUMENT, `${bad}: ${e.details}`);
    assert.match(e.details, /task hub name|taskhub metadata/);
  }
});

test("dtask serve --task-hubs a,b serves only those: any other hub, the default too, is NOT_FOUND naming it", TIMEOUT, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-hubs-"));
  const srv = await raw.serve(dir, ["--task-hubs", "orders,billing"]);
  const c = raw.connect({}, srv.endpoint);
  try {
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await raw.unary(c, "StartInstance", { name: "o", instanceId: "i1" }, hub("orders")).then(() => true, () => false);
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok, "the restricted server did not answer");
    assert.ok((await raw.unary(c, "GetInstance", { instanceId: "i1" }, hub("orders"))).exists);
    assert.ok(!(await raw.unary(c, "GetInstance", { instanceId: "i1" }, hub("billing"))).exists);
    for (const other of ["shipping", undefined]) {
      const e = await raw.rejection(raw.unary(c, "GetInstance", { instanceId: "i1" }, other ? hub(other) : {}));
      assert.equal(e.code, raw.grpc.status.NOT_FOUND);
      assert.match(e.details, new RegExp(`task hub '${other || "default"}' does not exist`));
    }
    const db = raw.dbArgs(dir);
    if (db.includes("--db-schema")) {   // on PostgreSQL: hub orders is schema <schema>_orders
      const schema = `${db[db.indexOf("--db-schema") + 1]}_orders`;
      const out = execFileSync("psql", [process.env.DTASK_DB, "-tAc",
        `SELECT count(*) FROM pg_namespace WHERE nspname = '${schema}'`], { encoding: "utf8" });
      assert.equal(out.trim(), "1", `no schema ${schema}`);
    } else {
      assert.ok(fs.existsSync(path.join(dir, "dt.db.hubs", "orders.db")));
    }
  } finally {
    c.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function dtask(args) {
  return new Promise((resolve) => {
    const p = spawn(process.env.DTASK, [...args, "--server", process.env.ENDPOINT]);
    let out = "", err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => resolve({ code, out, err }));
  });
}

test("the CLI and the C worker act on the hub --taskhub names", { timeout: 30_000 }, async () => {
  const h1 = raw.uid("cli-hub"), id = raw.uid("cli");
  const worker = spawn(process.env.DTASK, ["worker", "--taskhub", h1, "--server", process.env.ENDPOINT], { stdio: "ignore" });
  try {
    let r = await dtask(["start", "hello_cities", "--id", id, "--taskhub", h1]);
    assert.equal(r.code, 0, r.err);
    r = await dtask(["wait", id, "--taskhub", h1, "--timeout", "20"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Completed/);
    r = await dtask(["status", id]);   // the default hub has no such instance
    assert.equal(r.code, 3, r.out + r.err);
    r = await dtask(["list", "--all", "--taskhub", h1]);
    assert.match(r.out, new RegExp(id));
    r = await dtask(["status", id, "--taskhub", "no/such"]);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, /--taskhub: task hub name 'no\/such'/);
  } finally {
    worker.kill("SIGTERM");
    await new Promise((res) => worker.on("exit", res));
    await raw.unary(client, "DeleteTaskHub", {}, hub(h1)).catch(() => {});
  }
});

// On PostgreSQL a hub's schema is "dtask_NAME", and a name too long for that is shortened to
// its first 40 bytes, '_' and a hash of the whole. The attack that found this: a second,
// shorter name spelled exactly as that shortened schema took the first hub's schema, so the
// two hubs mixed (and deleting the second dropped the first's data). On SQLite, where each
// hub is a file of its own, the same test shows the same isolation.
test("a hub named as another's shortened schema is a hub of its own", TIMEOUT, async () => {
  const long = `h${raw.uid("long").replace(/-/g, "_")}`.padEnd(60, "x");
  let h = 1469598103934665603n;
  for (const b of Buffer.from(`dtask_${long}`)) h = ((h ^ BigInt(b)) * 1099511628211n) & 0xffffffffffffffffn;
  const twin = `${`dtask_${long}`.slice(6, 40)}_${h.toString(16).padStart(16, "0")}`;
  const id = raw.uid("schema");
  try {
    await raw.unary(client, "StartInstance", { name: "o", instanceId: id, input: raw.str('"long"') }, hub(long));
    assert.ok((await get(id, long)).exists);
    assert.ok(!(await get(id, twin)).exists, "the twin hub sees the long-named hub's instance");
    await raw.unary(client, "DeleteTaskHub", {}, hub(twin));
    assert.ok((await get(id, long)).exists, "deleting the twin took the long-named hub's instance");
  } finally {
    await raw.unary(client, "DeleteTaskHub", {}, hub(long)).catch(() => {});
    await raw.unary(client, "DeleteTaskHub", {}, hub(twin)).catch(() => {});
  }
});
