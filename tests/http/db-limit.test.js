"use strict";
// A database size limit (`dtask serve --max-db-mb`): clients cannot fill the disk. A private
// `dtask serve` with a 2 MiB limit takes instances with 20 KB inputs until a start is refused
// 507 naming the limit; what was stored stays readable, /healthz says why it is unhealthy, the
// file stays within the limit; a purge makes room, and the hub takes and runs work again.

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
    assert.match(refused.body.error.message, /size limit is 2 MiB/);

    // what was stored is intact; the unhealthy state says why; the file kept to the limit
    const s = await state(first);
    assert.equal(s.runtimeStatus, "Completed");
    assert.equal(s.input, "small");
    assert.equal((await state(accepted[0])).input.length, 20_000);
    const health = await fetch(`${srv.url}/healthz`);
    assert.equal(health.status, 503);
    assert.match((await health.json()).error.message, /size limit/);
    assert.ok(fs.statSync(path.join(dir, "d.db")).size <= 2 * MB);

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

test("--max-db-mb is refused for PostgreSQL, naming why", { timeout: 30_000 }, () => {
  const { spawnSync } = require("node:child_process");
  const r = spawnSync(process.env.DTASK, ["serve", "--db", "postgres://nobody@127.0.0.1:1/none", "--max-db-mb", "5"],
    { encoding: "utf8", timeout: 10_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--max-db-mb is for a SQLite --db only/);
});
