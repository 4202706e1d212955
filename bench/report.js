// report.js — bench/RESULTS.md from the JSON lines of one run of bench/run.sh.
"use strict";
const fs = require("fs");
const [file, cores, memGb, fsyncs, jsSdk] = process.argv.slice(2);
const rows = fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
const out = [];
out.push("# Benchmark results", "");
out.push(`Machine: ${cores} cores, ${memGb} GiB memory, ${fsyncs} fsync/s measured at the start of the run.`);
out.push("Durability: the default, SQLite in WAL mode with every commit fsynced (`fdatasync` of the log)");
out.push("before anyone hears of its outcome: no client answer, wait, read through the hub or worker's");
out.push("completion answered before its fsync (work a commit schedules may start before it, see");
out.push("docs/architecture.md). Group commit batches concurrent work into one transaction and one");
out.push("fsync; the fsync of one batch overlaps the building of the next (docs/performance.md).");
out.push("Closed loop: CONCURRENCY clients each start an instance and wait for it; latency is from the");
out.push("start request to the observed completion. `timers`: N instances started by CONCURRENCY");
out.push("clients, every timer due at one moment; latency is from that moment to each completion and");
out.push("throughput counts from it to the last. `timerwait`: instances waiting on an hour-long timer");
out.push("in a fresh `dtask serve`; its peak RSS is the hub's memory holding them.");
out.push("Modes: `embedded` is the hub, the C SDK worker and the client in one process; `serve` is");
out.push("`dtask serve` with the C SDK's remote worker and gRPC clients in another process; `serve-js` is");
out.push(`\`dtask serve\` with the official JavaScript SDK worker (@microsoft/durabletask-js ${jsSdk || "(version unknown)"},`);
out.push("bench/js/worker.mjs) and the same gRPC clients. Peak RSS is the server's in both serve modes.");
out.push("`pg1`, `pg2`, `pg3`: one, two and three `dtask serve` nodes on one PostgreSQL 15 database (fsync=on,");
out.push("synchronous_commit=on), a C remote worker on each node and the clients spread over the nodes; peak");
out.push("RSS is the first node's.", "");
out.push("| mode | workload | n | concurrency | throughput/s | p50 ms | p99 ms | peak RSS MB |");
out.push("|---|---|---:|---:|---:|---:|---:|---:|");
for (const r of rows.filter((r) => r.throughput_per_s !== undefined))
  out.push(`| ${r.mode} | ${r.workload} | ${r.n} | ${r.concurrency} | ${r.throughput_per_s} | ${r.p50_ms} | ${r.p99_ms} | ${r.peak_rss_mb} |`);
const replay = rows.find((r) => r.workload === "long_replay");
if (replay) {
  out.push("", "Replay cost of the `long` orchestration by history length (embedded): a flat cost per");
  out.push("history event means an episode's cost grows linearly with its history.", "");
  out.push("| history events | episodes | µs per episode | ns per history event |");
  out.push("|---|---:|---:|---:|");
  for (const b of replay.bands)
    out.push(`| ${b.history_from}-${b.history_to} | ${b.episodes} | ${b.us_per_episode} | ${b.ns_per_history_event} |`);
}
const filtered = rows.filter((r) => r.mode === "filtered");
if (filtered.length) {
  out.push("", `What one idle GetWorkItems stream filtered to ${filtered[0].names} orchestrator and activity`);
  out.push("names costs `dtask serve` (bench/filtered.js): the server's CPU over the window, with nothing");
  out.push("waiting and then with a backlog of another name's instances the stream does not take.", "");
  out.push("| case | backlog | server CPU, % of a core |");
  out.push("|---|---:|---:|");
  for (const r of filtered) out.push(`| ${r.workload} | ${r.backlog} | ${r.server_cpu_pct} |`);
}
const jsRan = rows.some((r) => r.mode === "serve-js");
if (!jsRan) out.push("", "Not measured in this run: the JavaScript SDK worker mode (serve-js was skipped).");
out.push("", "Restate and DBOS on the same machine: `make bench-peers` (bench/PEERS.md).");
console.log(out.join("\n"));
