"use strict";
// --token-file: a second `dtask serve` that wants "Authorization: Bearer <token>" on every
// request but /healthz and the dashboard files (401 JSON without it or with a wrong one), and refuses to start with
// a missing or empty token file (exit status 2).

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const h = require("./helpers");

const DTASK = process.env.DTASK;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitHealthy(base, child) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) assert.fail(`dtask serve exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) assert.fail("dtask serve with a token did not come up");
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("with --token-file, requests need the bearer token (401 JSON without), except /healthz (naming no task hub) and the dashboard files", { timeout: h.TEST_TIMEOUT_MS, skip: !DTASK && "DTASK is not set" }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-http-auth-"));
  const token = "s3cr3t-" + Math.random().toString(36).slice(2);
  fs.writeFileSync(path.join(dir, "token"), `  ${token}\n`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let log = "";
  const child = spawn(DTASK, ["serve", "--grpc-listen", "127.0.0.1:0", "--http-listen", `127.0.0.1:${port}`,
    "--token-file", path.join(dir, "token"), "--db", path.join(dir, "dt.db")], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  try {
    await waitHealthy(base, child);
    const api = `${base}/runtime/webhooks/durabletask`;
    const cases = [
      ["no header", {}],
      ["a wrong token", { authorization: `Bearer ${token}x` }],
      ["a prefix of the token", { authorization: `Bearer ${token.slice(0, -1)}` }],
      ["another scheme", { authorization: `Basic ${token}` }],
    ];
    for (const [what, headers] of cases) {
      for (const url of [`${api}/instances`, `${api}/counts`, `${api}/entities`, `${api}/entities/counter/k`,
        `${base}/metrics`, `${base}/openapi.json`]) {
        const res = await fetch(url, { headers });
        assert.equal(res.status, 401, `${what}: ${url}`);
        assert.equal(res.headers.get("www-authenticate"), "Bearer");
        assert.equal((await res.json()).error.code, "Unauthorized");
      }
    }
    // the dashboard's own files hold no data and need no token (a browser cannot send one
    // when it opens the page); the page sends it with each API call
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /text\/html/);
    // a refused POST with a body still gets its 401, and nothing is started
    const refused = await fetch(`${api}/orchestrators/hello_cities/auth-refused`, { method: "POST", body: '"x"' });
    assert.equal(refused.status, 401);
    const unsignaled = await fetch(`${api}/entities/counter/auth?op=add`, { method: "POST", body: "1" });
    assert.equal(unsignaled.status, 401);
    const cleaned = await fetch(`${api}/entities`, { method: "DELETE" });
    assert.equal(cleaned.status, 401);

    const good = { authorization: `Bearer ${token}` };
    const list = await fetch(`${api}/instances`, { headers: good });
    assert.equal(list.status, 200);
    assert.deepEqual(await list.json(), []);
    const lower = await fetch(`${api}/counts`, { headers: { authorization: `bearer ${token}` } });
    assert.equal(lower.status, 200);
    const started = await fetch(`${api}/orchestrators/hello_cities/auth-ok`, { method: "POST", headers: good });
    assert.equal(started.status, 202);
    // the refused signal queued nothing; the accepted one is there, waiting for a worker
    const signaled = await fetch(`${api}/entities/counter/auth?op=add`, { method: "POST", headers: good, body: "1" });
    assert.equal(signaled.status, 202);
    const waiting = await fetch(`${api}/entities?includeTransient=true`, { headers: good });
    assert.deepEqual((await waiting.json()).map((e) => e.backlogQueueSize), [1]);
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    // naming a task hub opens (makes) it: that needs the token, however the name is spelled;
    // the attack that found this filled the server's 32 hubs without one
    for (const q of ["taskHub=junk1", "task%48ub=junk2", "x=1&taskHub=junk3"]) {
      const res = await fetch(`${base}/healthz?${q}`);
      assert.equal(res.status, 401, q);
    }
    const hubs = await (await fetch(`${base}/taskhubs`, { headers: good })).json();
    assert.ok(!hubs.some((n) => n.startsWith("junk")), JSON.stringify(hubs));
    // a GET reads only a hub that is there, token or not; a start in it makes it
    assert.equal((await fetch(`${base}/healthz?taskHub=mine`, { headers: good })).status, 404);
    const made = await fetch(`${api}/orchestrators/hello_cities?taskHub=mine`, { method: "POST", headers: good });
    assert.equal(made.status, 202);
    assert.equal((await fetch(`${base}/healthz?taskHub=mine`, { headers: good })).status, 200);
    assert.equal((await fetch(`${base}/healthz?x=1`)).status, 200);
    // what needs no token takes no body: the attack that found this sent /healthz bodies of
    // 1 MB without the token, counted against --max-held-mb, until other callers' were refused
    const bodied = await fetch(`${base}/healthz`, { method: "POST", body: "x".repeat(1 << 20) });
    assert.equal(bodied.status, 413);
    assert.match((await bodied.json()).error.message, /takes no request body/);
  } finally {
    child.kill("SIGTERM");
    const { code, signal } = await exited;
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(signal, null, log);
    assert.equal(code, 0, `dtask serve exited with ${code}:\n${log}`);
  }
});

test("a missing or empty token file stops dtask serve with status 2 and says why", { timeout: h.TEST_TIMEOUT_MS, skip: !DTASK && "DTASK is not set" }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-http-auth-"));
  try {
    fs.writeFileSync(path.join(dir, "empty"), " \n\t\n");
    for (const [file, says] of [["missing", "cannot read the token file"], ["empty", "is empty"]]) {
      const r = spawnSync(DTASK, ["serve", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
        "--token-file", path.join(dir, file), "--db", path.join(dir, "dt.db")], { encoding: "utf8", timeout: 20_000 });
      assert.equal(r.status, 2, `${file}: ${r.stderr}`);
      assert.ok(r.stderr.includes(says) && r.stderr.includes(path.join(dir, file)), r.stderr);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
