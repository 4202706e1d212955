"use strict";
// filtered.js — what one idle, filtered GetWorkItems stream costs `dtask serve`: the server's
// CPU (from /proc, % of one core) over a window with no stream, with a stream whose filter
// lists NAMES orchestrator and activity names and nothing to do, then with BACKLOG instances of
// another name waiting that it does not take (the case that used to cost a scan of the backlog
// per poll), then without the stream again. One JSON line per measurement on stdout.
// Usage: node bench/filtered.js DTASK [NAMES] [BACKLOG] [WINDOW_MS]
process.env.ENDPOINT = process.env.ENDPOINT || "unused";   // raw.js wants one; serve() picks its own
process.env.DTASK = process.argv[2];
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const raw = require("../tests/conformance/helpers/raw");

const NAMES = +(process.argv[3] || 1000);
const BACKLOG = +(process.argv[4] || 20000);
const WINDOW_MS = +(process.argv[5] || 5000);
const TICK = 100;   // clock ticks per second (USER_HZ) on Linux
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return +f[11] + +f[12];   // utime + stime
}

async function measure(pid, workload) {
  const t0 = cpuTicks(pid), w0 = Date.now();
  await sleep(WINDOW_MS);
  const pct = ((cpuTicks(pid) - t0) / TICK) / ((Date.now() - w0) / 1000) * 100;
  console.log(JSON.stringify({ mode: "filtered", workload, names: NAMES, backlog: workload.includes("backlog") ? BACKLOG : 0,
                               window_ms: WINDOW_MS, server_cpu_pct: +pct.toFixed(1) }));
}

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-filtered-"));
  const srv = await raw.serve(dir, []);
  const client = raw.connect({}, srv.endpoint);
  try {
    const pid = srv.pid;
    const names = Array.from({ length: NAMES }, (_, i) => `wanted-${i}`);
    await measure(pid, "no stream, nothing waiting");
    let stream = new raw.WorkStream(client, raw.filters(names, names));
    await sleep(500);
    await measure(pid, "filtered stream, nothing waiting");
    for (let i = 0; i < BACKLOG; i += 200)
      await Promise.all(Array.from({ length: Math.min(200, BACKLOG - i) }, (_, k) =>
        raw.unary(client, "StartInstance", { instanceId: `other-${i + k}`, name: "other" })));
    await sleep(1000);
    await measure(pid, "filtered stream, backlog of another name");
    stream.close();
    await sleep(500);
    await measure(pid, "no stream, backlog of another name");
  } finally {
    client.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
})();
