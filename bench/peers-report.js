// peers-report.js — bench/PEERS.md (and the same table on stdout) from one run of
// bench/peers.sh: the peers' median JSON lines (Restate, DBOS) and ours in its three modes
// (embedded, serve, and serve-js: serve with the official JavaScript SDK worker), one line per
// repetition, summarized the way the peers summarize (median of each metric over the reps).
"use strict";
const fs = require("fs");

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];

function jsonLines(file) {
  if (!file || !fs.existsSync(file)) return [];
  const out = [];
  for (const l of fs.readFileSync(file, "utf8").split("\n")) {
    if (!l.trim().startsWith("{")) continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      /* not a result line */
    }
  }
  return out;
}

// As medianOf in ../shared/peers/lib/bench-common.mjs: each metric's median on its own,
// the upper one of the middle two for an even count.
const med = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

const key = (workload, n, c) => `${workload}:${n}:${c}`;

// peers: {peer, workload, n, c, wf_per_s, p50_ms, p99_ms, errors, reps, durability}
const peerRows = jsonLines(args.peers).filter((r) => r.peer && r.workload && r.wf_per_s !== undefined);
const peerNames = ["restate", "dbos"];
const durability = {};
const results = new Map(); // key -> {workload, n, c, systems: {name: {thr, p50, p99, errors, reps}}}
function slot(workload, n, c) {
  const k = key(workload, n, c);
  if (!results.has(k)) results.set(k, { workload, n, c, systems: {} });
  return results.get(k);
}
for (const r of peerRows) {
  if (r.durability) durability[r.peer] = r.durability;
  slot(r.workload, r.n, r.c).systems[r.peer] = {
    thr: r.wf_per_s, p50: r.p50_ms, p99: r.p99_ms, errors: r.errors || 0, reps: r.reps,
  };
}

// ours: {system, mode, workload, n, concurrency, throughput_per_s, p50_ms, p99_ms, failures, rep},
// each mode a system of its own: "ours-embedded", "ours-serve" and "ours-serve-js"
const ourModes = ["embedded", "serve", "serve-js"];
const ours = ourModes.map((m) => `ours-${m}`);
const ourReps = new Map();
for (const r of jsonLines(args.ours).filter(
  (r) => r.system === "durabletask-c" && ourModes.includes(r.mode) && r.throughput_per_s !== undefined
)) {
  const w = r.workload === "fanout100" ? "fanout" : r.workload;
  const k = `${r.mode}/${key(w, r.n, r.concurrency)}`;
  if (!ourReps.has(k)) ourReps.set(k, { sys: `ours-${r.mode}`, w, n: r.n, c: r.concurrency, reps: [] });
  ourReps.get(k).reps.push(r);
}
// ours, every mode (the same hub and store); not the result lines' own older wording
const ourDurability =
  "SQLite WAL; every commit fsynced (fdatasync of the log) before anyone hears of its outcome " +
  "(client answers, waits, reads, workers' completions); group commit, and the fsync of one batch " +
  "overlaps the next batches (work they schedule may start before it)";
for (const { sys, w, n, c, reps } of ourReps.values())
  slot(w, n, c).systems[sys] = {
    thr: med(reps.map((r) => r.throughput_per_s)),
    p50: med(reps.map((r) => r.p50_ms)),
    p99: med(reps.map((r) => r.p99_ms)),
    errors: reps.reduce((a, r) => a + (r.failures || 0), 0),
    reps: reps.length,
    all: reps.map((r) => r.throughput_per_s),
  };

// the peer scripts' fate: "restate:ok dbos:failed" (absent = ../shared/peers is not there)
const status = {};
for (const s of (args.status || "").split(/\s+/).filter(Boolean)) {
  const [p, st] = s.split(":");
  status[p] = st;
}

const fmt = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Number(x).toFixed(d));
const ratio = (a, b) => (a > 0 && b > 0 ? `${(a / b).toFixed(2)}×` : "—");
const label = {
  "ours-embedded": "durabletask-c (ours, embedded)",
  "ours-serve": "durabletask-c (ours, serve)",
  "ours-serve-js": "durabletask-c (ours, serve, JavaScript SDK worker)",
  restate: "Restate",
  dbos: "DBOS (PostgreSQL)",
};
const order = ["hello", "fanout"];
const rows = [...results.values()].sort(
  (a, b) => order.indexOf(a.workload) - order.indexOf(b.workload) || a.c - b.c || a.n - b.n
);
const wl = (r) => (r.workload === "fanout" ? "fanout (100 steps)" : "hello (3 steps)");

const out = [];
const quick = args.quick === "1";
out.push(`# durabletask-c beside Restate and DBOS${quick ? " (QUICK run)" : ""}`, "");
out.push(
  `Written by \`make bench-peers\` (bench/peers.sh)${quick ? " with `QUICK=1`: small sizes, one repetition, so the numbers are rough" : ""}.`
);
out.push(
  `Plan: \`hello\` n=${args.n} at concurrency 1, 16 and 64; \`fanout\` n=${args["fan-n"]} at concurrency 1. ` +
    `Each entry runs ${args.reps} time(s); every system's row is the median of each metric over those repetitions ` +
    `(as \`medianOf\` in the peers' bench-common.mjs). The peers warm up with ${args.warmup} \`hello\` and 5 \`fanout\` ` +
    `invocations first and keep their server and their one Node process for the whole plan. Ours: embedded and ` +
    `serve start a fresh process and a fresh database for every run (serve also a fresh \`dtask serve\`); ` +
    `serve-js keeps one \`dtask serve\` (fresh database at the start) and one JavaScript worker for all its ` +
    `runs, as the peers keep their Node process warm; every run is warmed up with ${args.warmup} ` +
    `\`hello\` instances at concurrency 16, not counted.`
);
out.push("");
out.push(
  `Machine: ${args.cores} cores, ${args["mem-gb"]} GiB memory, ${args.fsync} fsync/s (500 synchronous 4 KiB writes, ` +
    `\`dd oflag=dsync\`, as bench/run.sh measures it), load average ${args.load} at the start. ` +
    `Every system shares the machine with its load generator. Ours: built from ${args.build}.`
);
out.push("");
out.push("**All systems run with their durable defaults, fsync on:**", "");
const kv = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(", ");
out.push(`- durabletask-c (ours, every mode): ${ourDurability}.`);
for (const p of peerNames) {
  if (durability[p]) out.push(`- ${label[p]}: ${kv(durability[p])}.`);
  else
    out.push(
      `- ${label[p]}: not measured (${
        status[p] === "failed" ? "its script failed" : status[p] === "absent" ? "../shared/peers is not there" : "no results"
      }).`
    );
}
out.push("");
out.push("Closed loop everywhere: CONCURRENCY callers each start a workflow and wait for its result, again and");
out.push("again; latency is from the start request to the observed completion. Restate is driven over its HTTP");
out.push("ingress with the service in a Node endpoint; DBOS runs workflows and driver in one Node process against");
out.push("PostgreSQL. Ours drives its callers as those Node drivers do, asynchronously: each caller's next call");
out.push("starts from the last one's callback, and no caller holds a thread (embedded: `dt_hub_start_async` and");
out.push("`dt_hub_wait_async`, called back on the hub's threads; served: `dt_grpc_unary_start`, called back on");
out.push("the gRPC connection's one thread). Ours runs in three modes:");
out.push("");
out.push("- **embedded**: the hub, the C SDK worker and the clients in one process (`dtask-bench embedded`);");
out.push("  the library architecture, like DBOS.");
out.push("- **serve**: `dtask serve` in its own process (gRPC on loopback, a fresh server and database per run),");
out.push("  the C SDK remote worker and the gRPC clients in the `dtask-bench serve` process; the server");
out.push("  architecture, like Restate (a server plus a worker).");
// the SDK's version as bench/run.sh reads it: bench/js/node_modules/@microsoft/durabletask-js/package.json
const jsSdk = args["js-sdk"] ? `\`@microsoft/durabletask-js\` ${args["js-sdk"]}` : "`@microsoft/durabletask-js`";
out.push("- **serve-js**: as serve, but the orchestrations and activities run in the official Durable Task");
out.push(`  JavaScript SDK (${jsSdk}) in a Node worker process of its own (bench/js/worker.mjs, one for all`);
out.push("  the serve-js runs) connected to `dtask serve` over gRPC; the gRPC clients in the `dtask-bench serve-js`");
out.push("  process. The server architecture with a Node SDK worker, like Restate with its service in a Node");
out.push("  endpoint.");
out.push("");
out.push("## Results", "");
out.push("| workload | n | concurrency | system | workflows/s | p50 ms | p99 ms | errors |");
out.push("|---|---:|---:|---|---:|---:|---:|---:|");
for (const r of rows)
  for (const s of [...ours, ...peerNames]) {
    const x = r.systems[s];
    if (!x) continue;
    out.push(`| ${wl(r)} | ${r.n} | ${r.c} | ${label[s]} | ${fmt(x.thr)} | ${fmt(x.p50, 2)} | ${fmt(x.p99, 2)} | ${x.errors} |`);
  }
out.push("");
out.push("## Ratios", "");
out.push("One table for each of our modes. Throughput: ours / peer (above 1× means ours completes more");
out.push("workflows per second). Latency: peer p50 / our p50 and peer p99 / our p99 (above 1× means ours is faster).");
const arch = {
  "ours-embedded": "embedded, the library architecture (like DBOS)",
  "ours-serve": "serve, the server architecture (like Restate)",
  "ours-serve-js": "serve-js, the server architecture with the official JavaScript SDK worker (like Restate's Node SDK path)",
};
// serve-js: "ok", or why bench/peers.sh left it out ("not installed", "worker did not connect")
const jsStatus = args["js-status"] || "ok";
for (const m of ours) {
  out.push("", `### Ours ${arch[m]}`, "");
  if (![...ourReps.values()].some((x) => x.sys === m)) {
    const why =
      m === "ours-serve-js" && jsStatus !== "ok"
        ? `skipped: ${jsStatus === "not installed" ? "node, npm or the JavaScript SDK could not be had" : jsStatus}`
        : "its runs failed";
    out.push(`No results for ${label[m]} (${why}; see the output of bench/peers.sh).`);
    continue;
  }
  out.push(
    "| workload | n | concurrency | throughput ours/Restate | throughput ours/DBOS | p50 Restate/ours | p50 DBOS/ours | p99 Restate/ours | p99 DBOS/ours |"
  );
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const o = r.systems[m] || {};
    const re = r.systems.restate || {};
    const db = r.systems.dbos || {};
    out.push(
      `| ${wl(r)} | ${r.n} | ${r.c} | ${ratio(o.thr, re.thr)} | ${ratio(o.thr, db.thr)} | ${ratio(re.p50, o.p50)} | ${ratio(db.p50, o.p50)} | ${ratio(re.p99, o.p99)} | ${ratio(db.p99, o.p99)} |`
    );
  }
}
const missing = peerNames.filter((p) => status[p] && status[p] !== "ok").map((p) => `${label[p]} (${status[p]})`);
// serve-js skipped after some runs (its worker stopped connecting): the rows it has are partial
if (jsStatus !== "ok") missing.push(`${label["ours-serve-js"]} (skipped: ${jsStatus})`);
if (missing.length) out.push("", `Not in this run (or not all of it): ${missing.join(", ")}.`);

const text = out.join("\n") + "\n";
if (args.out) fs.writeFileSync(args.out, text);
process.stdout.write(text);
