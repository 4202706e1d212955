"use strict";
// Raw gRPC calls to `dtask serve`, shaped like the .NET, Java and Python SDKs' own, for the
// behaviour the JavaScript SDK does not reach. The messages come from our own
// proto/durabletask.proto through @grpc/proto-loader; the service is served under the
// protocol's path (/TaskHubSidecarService/<Method>), which has no package prefix, so the
// paths proto-loader derives are rewritten to it.

const path = require("node:path");
const { randomUUID } = require("node:crypto");
const grpc = require("@grpc/grpc-js");
const loader = require("@grpc/proto-loader");

const ENDPOINT = process.env.ENDPOINT;
if (!ENDPOINT) throw new Error("ENDPOINT is not set: run the specs through tests/conformance/run.sh");

const PROTO = path.join(__dirname, "..", "..", "..", "proto", "durabletask.proto");
const pkg = loader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: false, arrays: true, oneofs: true });
const service = {};
for (const [name, m] of Object.entries(pkg["dtpb.TaskHubSidecarService"])) {
  service[name] = { ...m, path: `/TaskHubSidecarService/${name}` };
}
const Client = grpc.makeGenericClientConstructor(service, "TaskHubSidecarService");

// connect: a channel to the server (or to ENDPOINT). OPTIONS are grpc-js channel options; the
// default receive limit is grpc-js's (4 MiB), the same as the .NET, Java and Python SDKs'.
function connect(options = {}, endpoint = ENDPOINT, credentials = grpc.credentials.createInsecure()) {
  return new Client(endpoint, credentials, options);
}

function metadataOf(headers) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers || {})) md.set(k, v);
  return md;
}

// unary: one call; resolves to the answer, rejects with the gRPC error (code, details).
function unary(client, method, request, headers) {
  return new Promise((resolve, reject) => {
    client[method](request, metadataOf(headers), { deadline: Date.now() + 30_000 }, (err, resp) =>
      err ? reject(err) : resolve(resp));
  });
}

// WorkStream: a GetWorkItems stream whose items are read one at a time with next(ms); health
// pings are counted and skipped unless asked for.
class WorkStream {
  constructor(client, request, headers) {
    this.items = [];
    this.waiters = [];
    this.pings = 0;
    this.ended = null;
    this.call = client.GetWorkItems(request || {}, metadataOf(headers));
    this.call.on("data", (wi) => {
      if (wi.healthPing) this.pings++;
      this.items.push(wi);
      this.wake();
    });
    this.call.on("error", (e) => { this.ended = e; this.wake(); });
    this.call.on("end", () => { this.ended = this.ended || new Error("stream ended"); this.wake(); });
  }
  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  // next: the next work item within MS (health pings skipped unless PINGS), or null.
  async next(ms = 15_000, { pings = false } = {}) {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.items.length) {
        const wi = this.items.shift();
        if (pings || !wi.healthPing) return wi;
      }
      if (this.ended) throw this.ended;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
  async must(ms = 15_000) {
    const wi = await this.next(ms);
    if (!wi) throw new Error(`no work item within ${ms} ms`);
    return wi;
  }
  close() {
    this.call.cancel();
  }
}

// filters: workItemFilters taking ORCHESTRATIONS and ACTIVITIES ({name, versions}), so a test's
// stream takes only its own work, never that of a test before it.
function filters(orchestrations = [], activities = []) {
  const f = (x) => (typeof x === "string" ? { name: x, versions: [] } : { versions: [], ...x });
  return { workItemFilters: { orchestrations: orchestrations.map(f), activities: activities.map(f), entities: [] } };
}

const uid = (what) => `${what}-${randomUUID().slice(0, 8)}`;
const str = (value) => (value === undefined || value === null ? undefined : { value });

// The orchestrator actions the SDKs send, by the protocol's field names.
const actions = {
  scheduleTask: (id, name, input, extra = {}) => ({ id, scheduleTask: { name, input: str(input), ...extra } }),
  complete: (id, status, result, extra = {}) =>
    ({ id, completeOrchestration: { orchestrationStatus: status, result: str(result), ...extra } }),
};

function startedEvent(wi) {
  const r = wi.orchestratorRequest;
  return [...(r.pastEvents || []), ...(r.newEvents || [])].find((e) => e.executionStarted);
}

module.exports = { grpc, connect, unary, WorkStream, filters, uid, str, actions, startedEvent };

// ---- small generic helpers (added with the sdk-* specs) ----

// history: the events of instance ID's current run, in order, read with StreamInstanceHistory
// (all chunks). Each event's eventType names its oneof member ("taskCompleted", ...).
function history(client, instanceId, headers) {
  return new Promise((resolve, reject) => {
    const events = [];
    const call = client.StreamInstanceHistory({ instanceId }, metadataOf(headers), { deadline: Date.now() + 30_000 });
    call.on("data", (chunk) => events.push(...(chunk.events || [])));
    call.on("error", reject);
    call.on("end", () => resolve(events));
  });
}

// waitDone: WaitForInstanceCompletion on ID, bounded by MS; resolves to its orchestrationState
// (with payloads), rejects when the instance does not exist or does not finish in time.
async function waitDone(client, instanceId, ms = 10_000) {
  const resp = await new Promise((resolve, reject) => {
    client.WaitForInstanceCompletion({ instanceId, getInputsAndOutputs: true }, new grpc.Metadata(),
      { deadline: Date.now() + ms }, (err, r) => (err ? reject(err) : resolve(r)));
  });
  if (!resp.exists) throw new Error(`instance ${instanceId} does not exist`);
  return resp.orchestrationState;
}

// ts: a Timestamp message for MS milliseconds since the epoch.
const ts = (ms) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

// rejection: the gRPC error PROMISE rejects with (code, details); throws if it succeeds.
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("the call succeeded where a refusal was expected");
}

// completeOrchestration / completeActivity: the completion calls the SDKs make for work item
// WI, under its completion token; EXTRA adds or overrides fields.
function completeOrchestration(client, wi, actions = [], extra = {}) {
  const r = wi.orchestratorRequest;
  return unary(client, "CompleteOrchestratorTask",
    { instanceId: r.instanceId, completionToken: wi.completionToken, actions, ...extra });
}

function completeActivity(client, wi, result, extra = {}) {
  const r = wi.activityRequest;
  return unary(client, "CompleteActivityTask", {
    instanceId: r.orchestrationInstance.instanceId, taskId: r.taskId || 0,
    completionToken: wi.completionToken, result: str(result), ...extra,
  });
}

// terminateAll: terminate each of IDS, ignoring refusals (finished or missing ones): a test's
// cleanup, so no instance of it is left for a later test's worker.
async function terminateAll(client, ids) {
  await Promise.allSettled(ids.map((instanceId) => unary(client, "TerminateInstance", { instanceId })));
}

Object.assign(module.exports, { history, waitDone, ts, rejection, completeOrchestration, completeActivity, terminateAll });

// serve: a `dtask serve` of a test's own (DTASK, which run.sh exports) on a free loopback
// port, or on PORT, with its database in DIR and ARGS added (no HTTP unless ARGS has an
// --http-listen). Resolves once it answers; stop it with stop(signal), which waits for it to
// exit.
const { spawn } = require("node:child_process");
const net = require("node:net");

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// dbArgs: a server's database: a SQLite file in DIR, or, when $DTASK_DB names a PostgreSQL
// database (the suite run on PostgreSQL), a schema of its own there, named after DIR.
function dbArgs(dir) {
  const db = process.env.DTASK_DB;
  if (!db || !/^postgres(ql)?:\/\//.test(db)) return ["--db", path.join(dir, "dt.db")];
  const schema = "s_" + require("node:crypto").createHash("sha1").update(dir).digest("hex").slice(0, 20);
  return ["--db", db, "--db-schema", schema];
}

async function serve(dir, args = [], port = 0) {
  port = port || (await freePort());
  const endpoint = `127.0.0.1:${port}`;
  const http = args.includes("--http-listen") ? [] : ["--no-http"];
  const proc = spawn(process.env.DTASK, ["serve", "--grpc-listen", endpoint, ...http,
    ...dbArgs(dir), "--log-level", "error", ...args], { stdio: "ignore" });
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const sock = net.connect(port, "127.0.0.1", () => { sock.destroy(); resolve(true); });
      sock.on("error", () => resolve(false));
    });
    if (up) break;
    if (i > 150) throw new Error(`dtask serve did not listen on ${endpoint}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { endpoint, port, pid: proc.pid, stop: async (signal = "SIGTERM") => { proc.kill(signal); await exited; } };
}

Object.assign(module.exports, { freePort, serve, dbArgs });
