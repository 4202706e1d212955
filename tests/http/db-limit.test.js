"use strict";
// A database size limit (`dtask serve --max-db-mb`): clients cannot fill the disk. A private
// `dtask serve` with a 2 MiB limit takes instances with 20 KB inputs until a start is refused
// 507 naming the limit (at nine tenths of it: the last tenth is kept for ending what is
// stored); what was stored stays readable, the files stay within the limit and its log's
// eighth; a purge makes room, and the hub takes and runs work again. Filled with instances
// that never finish (the attack: nothing there could be purged), they can still be
// terminated and purged: from nineteen twentieths only episodes that end an instance go in.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("./helpers");

const MB = 1 << 20;

test("--max-db-mb: writes past the limit answer 507 naming it, nothing stored is lost, a purge makes room", { timeout: 90_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-dblimit-"));
  const srv = await h.privateServer(["--max-db-mb", "2"], dir);
  const api = `${srv.url}/runtime/webhooks/durabletask`;
  const start = (id, input) => fetch(`${api}/orchestrators/hello_one/${id}`, {
    method: "POST", body: JSON.stringify(input), headers: { "content-type": "application/json" } });
  // the body read whatever the status (202 while it runs): a connection whose answer is left
  // unread is not reused, and 64 of them from one address reach --http-max-per-client
  const state = async (id) => {
    const r = await fetch(`${api}/instances/${id}?showInput=true`);
    const body = await r.json().catch(() => ({}));
    return body.runtimeStatus ? body : { runtimeStatus: `HTTP ${r.status}` };
  };
  const finished = async (id, ms) => {
    for (const until = Date.now() + ms; Date.now() < until;) {
      const s = await state(id);
      if (s.runtimeStatus === "Completed") return s;
      await new Promise((r) => setTimeout(r, 50));
    }
    return null;
  };
  try {
    const first = h.uid("first");
    assert.equal((await start(first, "small")).status, 202);
    assert.ok(await finished(first, 10_000), "the first instance did not complete");

    // 20 KB inputs (and outputs: hello_one greets its input) until one is refused
    let refused;
    const accepted = [];
    for (let i = 0; i < 200 && !refused; i++) {
      const id = h.uid("big");
      const r = await start(id, "y".repeat(20_000));
      if (r.status !== 202) {
        refused = { status: r.status, body: await r.json() };
        break;
      }
      accepted.push(id);
      await finished(id, 3_000);   // its completion may be what meets the limit
    }
    assert.ok(refused, "no start was refused under a 2 MiB limit");
    assert.ok(accepted.length >= 5 && accepted.length < 100, `accepted ${accepted.length}`);
    assert.equal(refused.status, 507, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, "InsufficientStorage");
    assert.match(refused.body.error.message, /size limit (is|of) 2 MiB/);

    // what was stored is intact; the files kept to the limit and the log to its eighth (16 MiB
    // of log before a checkpoint without one)
    const s = await state(first);
    assert.equal(s.runtimeStatus, "Completed");
    assert.equal(s.input, "small");
    assert.equal((await state(accepted[0])).input.length, 20_000);
    const size = (f) => (fs.existsSync(path.join(dir, f)) ? fs.statSync(path.join(dir, f)).size : 0);
    assert.ok(size("d.db") <= 2 * MB, `d.db is ${size("d.db")} bytes`);
    assert.ok(size("d.db-wal") <= MB, `d.db-wal is ${size("d.db-wal")} bytes`);

    // a purge of what finished makes room: work is taken and runs again
    const purged = await fetch(`${api}/instances?runtimeStatus=Completed`, { method: "DELETE" });
    assert.equal(purged.status, 200, await purged.text());
    const after = h.uid("after");
    let r;
    for (let i = 0; i < 50 && (r = await start(after, "again")).status !== 202; i++)
      await new Promise((r2) => setTimeout(r2, 100));
    assert.equal(r.status, 202, await r.text());
    assert.ok(await finished(after, 10_000), "the instance after the purge did not complete");
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
  } finally {
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("--max-db-mb: a database filled with instances that never finish can still be emptied", { timeout: 90_000 }, async () => {
  // c_calls_js waits for an activity no worker here runs: nothing it fills the database with
  // is finished, so nothing could be purged. Its starts fill nine tenths before any worker
  // runs; then the worker's first episodes (each copies its 20 KB input into history and an
  // activity) meet nineteen twentieths, where only what ends an instance goes in: the rest is
  // kept so that every instance can still be terminated, promptly, and purged.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-dbfill-"));
  const srv = await h.privateServer(["--max-db-mb", "2"], dir, { worker: false });
  const api = `${srv.url}/runtime/webhooks/durabletask`;
  const count = async (status) => {
    const r = await fetch(`${api}/instances?runtimeStatus=${status}&top=1000`);
    return (await r.json()).length;
  };
  const refusals = async () => {
    const m = await (await fetch(`${srv.url}/metrics`)).text();
    return Number((m.match(/dtask_store_write_errors_total\{reason="no_space"\} (\d+)/) || [])[1]);
  };
  try {
    const accepted = [];
    let refused;
    for (let i = 0; i < 400 && !refused; i++) {
      const id = h.uid("stuck");
      const r = await fetch(`${api}/orchestrators/c_calls_js/${id}`, {
        method: "POST", body: JSON.stringify("z".repeat(20_000)), headers: { "content-type": "application/json" } });
      const body = await r.json();
      if (r.status === 202) accepted.push(id);
      else refused = { status: r.status, body };
    }
    assert.ok(refused, "no start was refused under a 2 MiB limit");
    assert.equal(refused.status, 507, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /nine tenths of its size limit of 2 MiB/);
    // an event is new work too; a termination is not
    const ev = await fetch(`${api}/instances/${accepted[0]}/raiseEvent/go`, { method: "POST", body: "1" });
    assert.equal(ev.status, 507, await ev.text());

    // the worker's episodes grow the database until the store refuses them
    srv.startWorker();
    for (let i = 0; i < 300 && (await refusals()) === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok((await refusals()) > 0, "no episode was refused for room");
    assert.ok((await count("Running")) < accepted.length, "every instance ran: the test filled nothing");
    // a refused completion leaves its worker's stream be: what else the stream held is not
    // given back as delivered without a result, again and again, until it is parked as a
    // poison item and its instance fails (the full database, not the work, is at fault)
    for (let i = 0; i < 300 && (await refusals()) < 60; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok((await refusals()) >= 60, `only ${await refusals()} refusals`);
    assert.equal(await count("Failed"), 0, "instances failed while the database was full");
    assert.match(await (await fetch(`${srv.url}/metrics`)).text(), /dtask_poison_items_total 0\b/);
    assert.doesNotMatch(srv.workerLog(), /completion stream .* broke/, srv.workerLog());

    for (const id of accepted) {
      const t = await fetch(`${api}/instances/${id}/terminate?reason=full`, { method: "POST" });
      assert.equal(t.status, 202, await t.text());
    }
    // well within a lease's 30 s: a refused episode goes back at once, not when its lease ends
    for (let i = 0; i < 300 && (await count("Terminated")) < accepted.length; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(await count("Terminated"), accepted.length, "every instance ends terminated");
    const purged = await fetch(`${api}/instances?runtimeStatus=Terminated`, { method: "DELETE" });
    assert.equal(purged.status, 200);
    assert.equal((await purged.json()).instancesDeleted, accepted.length);
    const again = await fetch(`${api}/orchestrators/hello_one/${h.uid("again")}`, { method: "POST", body: '"x"' });
    assert.equal(again.status, 202, await again.text());
    const size = (f) => (fs.existsSync(path.join(dir, f)) ? fs.statSync(path.join(dir, f)).size : 0);
    assert.ok(size("d.db") <= 2 * MB, `d.db is ${size("d.db")} bytes`);
  } finally {
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("--max-db-mb is refused for PostgreSQL, naming why", { timeout: 30_000 }, () => {
  const { spawnSync } = require("node:child_process");
  const r = spawnSync(process.env.DTASK, ["serve", "--db", "postgres://nobody@127.0.0.1:1/none", "--max-db-mb", "5"],
    { encoding: "utf8", timeout: 10_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--max-db-mb is for a SQLite --db only/);
});
