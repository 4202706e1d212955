"use strict";
// Three `dtask serve` nodes on one PostgreSQL database, each with a JavaScript SDK worker and a
// C worker (`dtask worker`) of its own, share 1,000 instances: chains, fan-outs, timers,
// external events, sub-orchestrations and the C demo's hello_cities, started through all three
// nodes. One node is killed with SIGKILL mid-work. Every instance still completes, with its
// right output, and no history step is recorded twice (each task scheduled once and completed
// once, each timer fired once, each event received once); the survivors take the dead node's
// leases once they run out (--lease 3) and finish the rest. Runs only when the suite runs on
// PostgreSQL ($DTASK_DB, tests/conformance/run-pg.sh): SQLite is one machine's.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawn } = require("node:child_process");
const { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, whenAll } = require("@microsoft/durabletask-js");
const raw = require("./helpers/raw");

const onPostgres = /^postgres(ql)?:\/\//.test(process.env.DTASK_DB || "");
const N = Number(process.env.MULTINODE_INSTANCES || 1000);
const LEASE_S = 3;
const quiet = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The workload, by kind: its orchestrator, its input and the output it must end with.
const KINDS = [
  { name: "mn_chain", input: (i) => i, output: (i) => i + 3 },
  { name: "mn_fanout", input: (i) => i, output: (i) => 10 * i + 45 },
  { name: "mn_timer", input: (i) => i, output: (i) => i + 1 },
  { name: "mn_event", input: (i) => i, output: (i) => `go-${i}` },
  { name: "mn_parent", input: (i) => i, output: (i) => i + 3 + 1 },
  { name: "hello_cities", input: () => undefined, output: () => ["Hello Tokyo!", "Hello Seattle!", "Hello London!"] },
];

function jsWorker(endpoint) {
  const w = new TaskHubGrpcWorker({ hostAddress: endpoint, logger: quiet, workItemFilters: "auto" });
  w.addNamedActivity("mn_add", (_ctx, x) => x + 1);
  w.addNamedActivity("mn_echo", (_ctx, x) => x);
  w.addNamedOrchestrator("mn_chain", async function* (ctx, x) {
    for (let k = 0; k < 3; k++) x = yield ctx.callActivity("mn_add", x);
    return x;
  });
  w.addNamedOrchestrator("mn_fanout", async function* (ctx, x) {
    const parts = yield whenAll(Array.from({ length: 10 }, (_, k) => ctx.callActivity("mn_echo", x + k)));
    return parts.reduce((a, b) => a + b, 0);
  });
  w.addNamedOrchestrator("mn_timer", async function* (ctx, x) {
    yield ctx.createTimer(1);
    return yield ctx.callActivity("mn_add", x);
  });
  w.addNamedOrchestrator("mn_event", async function* (ctx) {
    return yield ctx.waitForExternalEvent("go");
  });
  w.addNamedOrchestrator("mn_parent", async function* (ctx, x) {
    const y = yield ctx.callSubOrchestrator("mn_chain", x);
    return yield ctx.callActivity("mn_add", y);
  });
  return w;
}

function cWorker(endpoint) {
  const child = spawn(process.env.DTASK, ["worker", "--server", endpoint], { stdio: "ignore" });
  return child;
}

// stepsOnce: no step of HISTORY twice: a task scheduled once per id and completed once, a timer
// fired once, a sub-orchestration created and completed once, an event received once.
function stepsOnce(id, history) {
  const seen = new Map();
  const once = (what) => {
    if (seen.has(what)) assert.fail(`${id}: ${what} is in its history twice`);
    seen.set(what, true);
  };
  for (const e of history) {
    const d = e.toObject ? e.toObject() : e;
    if (e.type === "TaskScheduled") once(`TaskScheduled ${e.eventId}`);
    else if (e.type === "TaskCompleted" || e.type === "TaskFailed") once(`result of task ${e.taskScheduledId ?? d.taskScheduledId}`);
    else if (e.type === "TimerCreated") once(`TimerCreated ${e.eventId}`);
    else if (e.type === "TimerFired") once(`TimerFired ${e.timerId ?? d.timerId}`);
    else if (e.type === "SubOrchestrationInstanceCreated") once(`child ${e.eventId}`);
    else if (e.type === "SubOrchestrationInstanceCompleted") once(`child result ${e.taskScheduledId ?? d.taskScheduledId}`);
    else if (e.type === "EventRaised") once(`event ${e.name}`);
    else if (e.type === "ExecutionCompleted") once("ExecutionCompleted");
  }
}

test("three nodes on one PostgreSQL database: 1,000 instances complete exactly once though one node is killed mid-work",
  { timeout: 600_000, skip: onPostgres ? false : "the suite runs on SQLite (run-pg.sh runs it on PostgreSQL)" },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-multinode-"));
    // the same directory gives the three the same PostgreSQL schema (helpers/raw.js)
    const nodes = [];
    for (let k = 0; k < 3; k++) nodes.push(await raw.serve(dir, ["--lease", String(LEASE_S)]));
    const workers = nodes.map((n) => jsWorker(n.endpoint));
    const cworkers = nodes.map((n) => cWorker(n.endpoint));
    const clients = nodes.map((n) => new TaskHubGrpcClient({ hostAddress: n.endpoint, logger: quiet }));
    const prefix = raw.uid("mn");
    try {
      await Promise.all(workers.map((w) => w.start()));
      // start through every node in turn
      const ids = [];
      for (let i = 0; i < N; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, k) => {
          const n = i + k, kind = KINDS[n % KINDS.length], id = `${prefix}-${n}`;
          ids.push({ id, n, kind });
          return clients[n % 3].scheduleNewOrchestration(kind.name, kind.input(n), id);
        }));
      }
      // events, raised through another node than the one that started each
      const raiseEvents = async () => {
        for (const x of ids.filter((x) => x.kind.name === "mn_event"))
          await clients[(x.n + 1) % 3].raiseOrchestrationEvent(x.id, "go", `go-${x.n}`).catch(() => {});
      };
      await raiseEvents();

      // let a third of the work finish, then kill node 0 in the middle of the rest
      const done = async (client) => {
        let n = 0;
        for (const x of ids) {
          const s = await client.getOrchestrationState(x.id, false);
          if (s && s.runtimeStatus === OrchestrationStatus.COMPLETED) n++;
        }
        return n;
      };
      const deadline = Date.now() + 300_000;
      while ((await done(clients[1])) < N / 3 && Date.now() < deadline) await sleep(500);
      await nodes[0].stop("SIGKILL");
      const killedAt = Date.now();
      await workers[0].stop().catch(() => {});
      cworkers[0].kill("SIGKILL");

      // every instance completes on the survivors, with its output, each step once
      const survivors = [clients[1], clients[2]];
      for (const x of ids) {
        const client = survivors[x.n % 2];
        const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
        const s = await client.waitForOrchestrationCompletion(x.id, true, left);
        assert.ok(s, `${x.id} (${x.kind.name}) did not complete`);
        assert.equal(OrchestrationStatus[s.runtimeStatus], "COMPLETED", `${x.id} (${x.kind.name}) ended ${s.runtimeStatus}: ${s.failureDetails?.message}`);
        assert.deepEqual(JSON.parse(s.serializedOutput), x.kind.output(x.n), `${x.id} (${x.kind.name})`);
        stepsOnce(x.id, await client.getOrchestrationHistory(x.id));
      }
      const took = (Date.now() - killedAt) / 1000;
      process.stderr.write(`multinode: ${N} instances done; the survivors finished ${took.toFixed(1)} s after the kill (lease ${LEASE_S} s)\n`);
    } finally {
      for (const c of clients) await c.stop().catch(() => {});
      for (const w of workers) await w.stop().catch(() => {});
      for (const c of cworkers) c.kill("SIGTERM");
      for (const n of nodes) await n.stop();   // node 0 too, if the body failed before killing it
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

// Each node says which it is and which nodes are alive on the database, in /nodes and
// /metrics; a node killed drops out of the others' lists once it has not been heard of for
// DT_NODE_ALIVE_MS (10 s).
test("every node reports itself and the nodes alive; a killed node drops out",
  { timeout: 120_000, skip: onPostgres ? false : "the suite runs on SQLite (run-pg.sh runs it on PostgreSQL)" },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-nodes-"));
    const nodes = [];
    for (let k = 0; k < 2; k++) {
      const http = await raw.freePort();
      const n = await raw.serve(dir, ["--http-listen", `127.0.0.1:${http}`]);
      n.http = `http://127.0.0.1:${http}`;
      nodes.push(n);
    }
    const get = async (n, p) => (await fetch(n.http + p)).text();
    try {
      let seen;
      for (let i = 0; i < 50; i++) {
        seen = JSON.parse(await get(nodes[1], "/nodes"));
        if (seen.nodes.length === 2) break;
        await sleep(200);
      }
      assert.equal(seen.nodes.length, 2, JSON.stringify(seen));
      const first = JSON.parse(await get(nodes[0], "/nodes"));
      assert.notEqual(first.node, seen.node);
      assert.deepEqual(seen.nodes.map((x) => x.node).sort(), [first.node, seen.node].sort());
      const metrics = await get(nodes[1], "/metrics");
      assert.match(metrics, /^dtask_nodes_alive 2$/m);
      assert.ok(metrics.includes(`dtask_node_info{node="${seen.node}"} 1`));
      assert.ok(metrics.includes(`dtask_node_alive_since{node="${first.node}"}`));

      await nodes[0].stop("SIGKILL");
      const killed = Date.now();
      let after;
      while (Date.now() - killed < 30_000) {
        after = JSON.parse(await get(nodes[1], "/nodes"));
        if (after.nodes.length === 1) break;
        await sleep(500);
      }
      assert.deepEqual(after.nodes.map((x) => x.node), [seen.node]);
      assert.ok(Date.now() - killed >= 5_000, "dropped before it could have been missed");
      assert.match(await get(nodes[1], "/metrics"), /^dtask_nodes_alive 1$/m);
    } finally {
      for (const n of nodes) await n.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

// PostgreSQL goes away for a few seconds in the middle of a run (scripts/pg.sh pause): the
// nodes report it (/healthz 503 naming the store, dtask_store_healthy 0), retry, and carry on
// when it is back: every instance completes, each step once.
test("PostgreSQL stopped mid-run: the nodes report the outage and carry on with nothing lost",
  { timeout: 300_000, skip: onPostgres && process.env.DTASK_PG_DIR ? false : "needs run-pg.sh's PostgreSQL (DTASK_PG_DIR)" },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-outage-"));
    const nodes = [];
    for (let k = 0; k < 2; k++) {
      const http = await raw.freePort();
      const n = await raw.serve(dir, ["--lease", String(LEASE_S), "--http-listen", `127.0.0.1:${http}`]);
      n.http = `http://127.0.0.1:${http}`;
      nodes.push(n);
    }
    const workers = nodes.map((n) => jsWorker(n.endpoint));
    const clients = nodes.map((n) => new TaskHubGrpcClient({ hostAddress: n.endpoint, logger: quiet }));
    const prefix = raw.uid("out"), M = 100, ids = [];
    try {
      await Promise.all(workers.map((w) => w.start()));
      for (let n = 0; n < M; n++) {
        const kind = KINDS[n % 5];   // the JavaScript kinds: the timers span the outage
        ids.push({ id: `${prefix}-${n}`, n, kind });
        await clients[n % 2].scheduleNewOrchestration(kind.name, kind.input(n), `${prefix}-${n}`);
      }
      const pause = spawn("bash", [path.join(__dirname, "..", "..", "scripts", "pg.sh"), "pause", process.env.DTASK_PG_DIR, "4"],
        { stdio: "ignore" });
      const paused = new Promise((resolve) => pause.on("exit", resolve));
      // while it is down, the nodes say so (each at its first write that fails: a commit, or
      // its heartbeat every 2 s for a node with no work)
      let health = null, metrics = "";
      for (let i = 0; i < 40 && !(health && health.status === 503 && /^dtask_store_healthy 0$/m.test(metrics)); i++) {
        await sleep(200);
        health = await fetch(nodes[0].http + "/healthz").then(async (r) => ({ status: r.status, text: await r.text() }));
        metrics = await (await fetch(nodes[1].http + "/metrics")).text();
      }
      assert.equal(health.status, 503, `healthz said ${health.status} ${health.text}`);
      assert.match(health.text, /store/);
      assert.match(metrics, /^dtask_store_healthy 0$/m);
      assert.equal(await paused, 0, "pg.sh pause failed");
      for (const x of ids.filter((x) => x.kind.name === "mn_event"))
        await clients[0].raiseOrchestrationEvent(x.id, "go", `go-${x.n}`);
      for (const x of ids) {
        const s = await clients[x.n % 2].waitForOrchestrationCompletion(x.id, true, 120);
        assert.ok(s, `${x.id} did not complete`);
        assert.equal(OrchestrationStatus[s.runtimeStatus], "COMPLETED", `${x.id} (${x.kind.name}): ${s.failureDetails?.message}`);
        assert.deepEqual(JSON.parse(s.serializedOutput), x.kind.output(x.n), `${x.id} (${x.kind.name})`);
        stepsOnce(x.id, await clients[0].getOrchestrationHistory(x.id));
      }
      // a node that had no work since (its peer leased it all) hears that the database is
      // back at its next heartbeat (every 2 s): healthy again within a few beats
      for (const n of nodes) {
        let status = 0;
        for (let i = 0; i < 50 && status !== 200; i++) {
          if (i) await sleep(200);
          status = (await fetch(n.http + "/healthz")).status;
        }
        assert.equal(status, 200, "a node still reports the store unhealthy 10 s after the work was done");
      }
    } finally {
      for (const c of clients) await c.stop().catch(() => {});
      for (const w of workers) await w.stop().catch(() => {});
      for (const n of nodes) await n.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
