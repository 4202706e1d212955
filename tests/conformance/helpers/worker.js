"use strict";
// A worker in a process of its own, for the crash test to kill with SIGKILL. It runs the
// crash chain against ENDPOINT and prints one JSON line per finished activity step on stdout:
//   {"ready":true}                      once the worker has been started
//   {"step":N,"instanceId":"..."}       after step N of that instance did its work
// It exits when its stdin closes, so it never outlives the test that spawned it.

const { newWorker } = require("./harness");
const { registerCrashChain } = require("./crash-chain");

const worker = newWorker("doomed worker");
registerCrashChain(worker, (instanceId, step) => {
  process.stdout.write(JSON.stringify({ step, instanceId }) + "\n");
});
worker.start().then(
  () => process.stdout.write(JSON.stringify({ ready: true }) + "\n"),
  (err) => {
    process.stderr.write(`worker.js: could not start: ${err && err.stack}\n`);
    process.exit(1);
  },
);

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
