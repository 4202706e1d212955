"use strict";
// An entity worker in a process of its own, for a test to kill with SIGKILL in the middle of
// a batch. It runs the slowcounter entity (add takes ~20 ms) against ENDPOINT and prints one
// JSON line per operation it ran (not yet committed: the batch commits as a whole):
//   {"ready":true}       once the worker has been started
//   {"op":N}             after its N-th operation
// It exits when its stdin closes, so it never outlives the test that spawned it.

const { TaskEntity } = require("@microsoft/durabletask-js");
const { newWorker, sleep } = require("./harness");

let ops = 0;
class SlowCounter extends TaskEntity {
  initializeState() {
    return 0;
  }
  async add(n) {
    await sleep(20);
    this.state += n;
    process.stdout.write(JSON.stringify({ op: ++ops }) + "\n");
    return this.state;
  }
}

const worker = newWorker("doomed entity worker");
worker.addNamedEntity("slowcounter", () => new SlowCounter());
worker.start().then(
  () => process.stdout.write(JSON.stringify({ ready: true }) + "\n"),
  (err) => {
    process.stderr.write(`entity-worker.js: could not start: ${err && err.stack}\n`);
    process.exit(1);
  },
);

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
