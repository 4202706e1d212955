"use strict";
// The C SDK's remote worker (`dtask worker`, with the demo's functions) as a child process
// beside the specs' JavaScript workers, for the specs that mix languages.

const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");

// startCWorker: `dtask worker --server ENDPOINT` as a child process; stopped by the caller.
function startCWorker() {
  const dtask = process.env.DTASK;
  assert.ok(dtask, "DTASK is not set: run the specs through tests/conformance/run.sh");
  const child = spawn(dtask, ["worker", "--server", process.env.ENDPOINT], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  child.stderrText = () => stderr;
  return child;
}

function stopCWorker(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}

module.exports = { startCWorker, stopCWorker };
