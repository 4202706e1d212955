"use strict";
// A full disk: the store refuses writes, and that is visible and recoverable. On a small
// tmpfs (mounted here, so this needs root; skipped with a message otherwise) a private
// `dtask serve` runs until a filler file takes the last byte: a start is answered 507 naming
// the full disk, /healthz says unhealthy and why, the metrics count it; when the filler goes,
// the hub resumes by itself: starts are taken and run, /healthz is ok again.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("./helpers");

test("a full disk answers 507, /healthz and the metrics say so, and the hub resumes when space returns", { timeout: 90_000 }, async (t) => {
  if (process.getuid() !== 0) {
    t.skip("needs root, to mount a small tmpfs");
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", dir]);
  } catch (e) {
    fs.rmdirSync(dir);
    t.skip(`cannot mount a tmpfs here: ${e.message}`);
    return;
  }
  let srv;
  const filler = path.join(dir, "filler");
  try {
    srv = await h.privateServer([], dir);
    const api = `${srv.url}/runtime/webhooks/durabletask`;
    const start = (id, input) => fetch(`${api}/orchestrators/hello_one/${id}`, {
      method: "POST", body: JSON.stringify(input), headers: { "content-type": "application/json" } });
    const finished = async (id) => {
      for (let i = 0; i < 300; i++) {
        const r = await fetch(`${api}/instances/${id}`);
        if (r.status === 200) return (await r.json()).runtimeStatus;
        await new Promise((r2) => setTimeout(r2, 50));
      }
      return "not finished";
    };
    const first = h.uid("before");
    assert.equal((await start(first, "x")).status, 202);
    assert.equal(await finished(first), "Completed");

    // take every byte left
    const fd = fs.openSync(filler, "w");
    const chunk = Buffer.alloc(64 << 10, 120);
    try {
      for (;;) fs.writeSync(fd, chunk);
    } catch (e) {
      assert.equal(e.code, "ENOSPC");
    }
    try {
      for (;;) fs.writeSync(fd, chunk.subarray(0, 512));
    } catch {
      /* the last bytes */
    }
    fs.closeSync(fd);

    // starts until one is refused: the log may reuse space it has for a while
    let refused;
    for (let i = 0; i < 60 && !refused; i++) {
      const r = await start(h.uid("full"), "y".repeat(200 << 10));
      if (r.status !== 202) refused = { status: r.status, body: await r.json() };
    }
    assert.ok(refused, "no start was refused on a full disk");
    assert.equal(refused.status, 507, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, "InsufficientStorage");
    assert.match(refused.body.error.message, /full/);

    const health = await fetch(`${srv.url}/healthz`);
    assert.equal(health.status, 503);
    assert.match((await health.json()).error.message, /full/);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    const count = Number((metrics.match(/dtask_store_write_errors_total\{reason="no_space"\} (\d+)/) || [])[1]);
    assert.ok(count >= 1, "no write error counted");
    assert.match(metrics, /dtask_store_healthy 0/);

    // space returns: the hub takes work again by itself
    fs.unlinkSync(filler);
    const after = h.uid("after");
    let r;
    for (let i = 0; i < 50 && (r = await start(after, "z")).status !== 202; i++)
      await new Promise((r2) => setTimeout(r2, 100));
    assert.equal(r.status, 202, await r.text());
    assert.equal(await finished(after), "Completed");
    // healthy again once writes have gone in for 2 s after the last that failed (health does
    // not flap with each refused write)
    let healthy;
    for (let i = 0; i < 60 && (healthy = (await fetch(`${srv.url}/healthz`)).status) !== 200; i++)
      await new Promise((r2) => setTimeout(r2, 100));
    assert.equal(healthy, 200);
    assert.match(await (await fetch(`${srv.url}/metrics`)).text(), /dtask_store_healthy 1/);
  } finally {
    if (srv) await srv.stop();
    try { execFileSync("umount", [dir]); } catch { /* busy: left for the system */ }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
