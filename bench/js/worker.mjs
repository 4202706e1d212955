// worker.mjs — the serve-js benchmark mode's worker: the official Durable Task JavaScript SDK
// connected to the `dtask serve` at $DTASK_SERVER (host:port, insecure, default task hub). It
// registers the orchestrations and activities of bench/bench.c under the same names and with the
// same behaviour, so that dtask-bench's serve-js mode drives the same workloads as its serve mode.
// Prints {"ready":true} on stdout once its work-item stream is open; stops on SIGTERM or SIGINT.

import sdk from "@microsoft/durabletask-js"; // CommonJS: its exports come as the default import

const { TaskHubGrpcWorker, whenAll } = sdk;

const server = process.env.DTASK_SERVER;
if (!server) {
  process.stderr.write("worker.mjs: set DTASK_SERVER to the host:port of `dtask serve`\n");
  process.exit(2);
}

// The SDK logs every work item at info level; in a benchmark that is most of the worker's work,
// so info and debug are dropped. The one info line used is the SDK's "connected" message: the
// worker's start() returns before the stream is open, and this is the only sign that it is.
let ready = false;
const logger = {
  error: (m, ...a) => process.stderr.write(`[bench-js error] ${m} ${a.join(" ")}\n`),
  warn: (m, ...a) => process.stderr.write(`[bench-js warn] ${m} ${a.join(" ")}\n`),
  info: (m) => {
    if (!ready && String(m).startsWith("Successfully connected")) {
      ready = true;
      process.stdout.write(JSON.stringify({ ready: true }) + "\n");
    }
  },
  debug: () => {},
};

const worker = new TaskHubGrpcWorker({ hostAddress: server, logger });

// activities
worker.addNamedActivity("say_hello", async (_ctx, name) => `Hello ${name}!`);
worker.addNamedActivity("echo", async (_ctx, input) => input);

// hello: three activities in a row, output the list of their results
worker.addNamedOrchestrator("hello", async function* (ctx) {
  const a = yield ctx.callActivity("say_hello", "Tokyo");
  const b = yield ctx.callActivity("say_hello", "Seattle");
  const c = yield ctx.callActivity("say_hello", "London");
  return [a, b, c];
});

// fanout: input N, N echo activities at once, gathered; output N
worker.addNamedOrchestrator("fanout", async function* (ctx, n) {
  const tasks = [];
  for (let i = 0; i < n; i++) tasks.push(ctx.callActivity("echo", i));
  yield whenAll(tasks);
  return n;
});

// payload: one echo activity of the input, output its result
worker.addNamedOrchestrator("payload", async function* (ctx, input) {
  return yield ctx.callActivity("echo", input);
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await worker.stop();
  } catch (e) {
    process.stderr.write(`worker.mjs: stop: ${e && e.message}\n`);
  }
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

try {
  await worker.start();
} catch (e) {
  process.stderr.write(`worker.mjs: could not start: ${e && e.stack}\n`);
  process.exit(1);
}
