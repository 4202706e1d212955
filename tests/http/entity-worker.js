"use strict";
// entity-worker.js — a tiny entity worker for the HTTP specs, with no npm packages: gRPC is
// HTTP/2 with length-prefixed protobuf messages, so node:http2 and a few lines of protobuf
// wire format (proto/durabletask.proto's field numbers) are enough to take entity work items
// from GetWorkItems and answer them with CompleteEntityTask. Entities are plain functions:
// (state, input, operation) -> {state, result}; state undefined means "no state".

const http2 = require("node:http2");

// ---- protobuf wire format ------------------------------------------------------------------

function varint(n) {
  const out = [];
  while (n > 127) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

const bytes = (no, buf) => Buffer.concat([varint(no * 8 + 2), varint(buf.length), buf]);
const str = (no, s) => bytes(no, Buffer.from(s, "utf8"));
const stringValue = (no, s) => bytes(no, str(1, s));

function readVarint(buf, i) {
  let n = 0;
  let mul = 1;
  for (;;) {
    const b = buf[i++];
    n += (b & 127) * mul;
    if (b < 128) return [n, i];
    mul *= 128;
  }
}

// decode: a message's fields as {number: [values]}: numbers for varints, Buffers otherwise.
function decode(buf) {
  const fields = {};
  let i = 0;
  while (i < buf.length) {
    let key, v;
    [key, i] = readVarint(buf, i);
    const wire = key % 8;
    if (wire === 0) [v, i] = readVarint(buf, i);
    else if (wire === 2) {
      let len;
      [len, i] = readVarint(buf, i);
      v = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) (v = buf.subarray(i, i + 8)), (i += 8);
    else if (wire === 5) (v = buf.subarray(i, i + 4)), (i += 4);
    else throw new Error(`wire type ${wire} in a message`);
    (fields[Math.floor(key / 8)] ||= []).push(v);
  }
  return fields;
}

const text = (f, no) => (f[no] ? f[no][0].toString("utf8") : undefined);
const sv = (f, no) => (f[no] ? text(decode(f[no][0]), 1) ?? "" : undefined);

// ---- gRPC over HTTP/2 ------------------------------------------------------------------------

// frames: split gRPC's length-prefixed messages off PENDING; returns [messages, rest].
function frames(pending) {
  const out = [];
  while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
    const len = pending.readUInt32BE(1);
    out.push(pending.subarray(5, 5 + len));
    pending = pending.subarray(5 + len);
  }
  return [out, pending];
}

// call: METHOD with MSG; ON_MESSAGE gets each answer; resolves at the end of the call, rejects
// with the gRPC status when it is not OK.
function call(session, method, msg, headers, onMessage) {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST", ":path": `/TaskHubSidecarService/${method}`,
      "content-type": "application/grpc", te: "trailers", ...headers,
    });
    let pending = Buffer.alloc(0);
    let status = null;
    const check = (h) => {
      if (h["grpc-status"] !== undefined) status = { code: Number(h["grpc-status"]), message: h["grpc-message"] || "" };
    };
    req.on("response", check);
    req.on("trailers", check);
    req.on("data", (d) => {
      let msgs;
      [msgs, pending] = frames(Buffer.concat([pending, d]));
      for (const m of msgs) onMessage(m);
    });
    req.on("error", reject);
    req.on("close", () => {
      if (status && status.code === 0) resolve();
      else reject(Object.assign(new Error(`${method}: gRPC status ${status ? status.code : "none"} ${status ? decodeURIComponent(status.message) : ""}`), { code: status && status.code }));
    });
    const head = Buffer.alloc(5);
    head.writeUInt32BE(msg.length, 1);
    req.end(Buffer.concat([head, msg]));
  });
}

// ---- the worker ------------------------------------------------------------------------------

// EntityWorker: takes the entity work items of ENTITIES ({name: fn}) from ENDPOINT ("host:port"),
// on task hub TASKHUB (undefined: the default). `batches` counts the batches it ran, each as its answer goes out.
class EntityWorker {
  constructor(endpoint, entities, { taskHub } = {}) {
    this.entities = Object.fromEntries(Object.entries(entities).map(([k, v]) => [k.toLowerCase(), v]));
    this.headers = taskHub ? { taskhub: taskHub } : {};
    this.session = http2.connect(`http://${endpoint}`);
    this.session.on("error", () => {});
    this.batches = 0;
    this.failures = [];
  }

  start() {
    // GetWorkItemsRequest.workItemFilters (11) with entities (3) only: no orchestrations or
    // activities come to this stream
    const filters = Buffer.concat(Object.keys(this.entities).map((n) => bytes(3, str(1, n))));
    this.done = call(this.session, "GetWorkItems", bytes(11, filters), this.headers, (m) => {
      this.onItem(m).catch((e) => this.failures.push(e));
    }).catch((e) => {
      if (!this.closing) this.failures.push(e);
    });
  }

  async onItem(m) {
    const wi = decode(m);
    if (!wi[5]) return;   // not an EntityRequest (a health ping)
    const req = decode(wi[5][0]);
    const id = text(req, 1);
    const name = id.slice(1, id.indexOf("@", 1));
    const fn = this.entities[name];
    let state = sv(req, 3);
    state = state === undefined ? undefined : JSON.parse(state);
    const results = [];
    for (const ev of req[4] || []) {
      const e = decode(ev);
      const op = decode((e[23] || e[24])[0]);   // entityOperationSignaled or Called
      const input = sv(op, 4);
      const r = fn(state, input === undefined || input === "" ? undefined : JSON.parse(input), text(op, 2));
      state = r.state;
      // OperationResult.success (1) { result (1) }
      results.push(bytes(1, bytes(1, r.result === undefined ? Buffer.alloc(0) : stringValue(1, JSON.stringify(r.result)))));
    }
    const answer = Buffer.concat([
      ...results,
      state === undefined ? Buffer.alloc(0) : stringValue(3, JSON.stringify(state)),
      str(5, text(wi, 10) || ""),
    ]);
    // counted before the answer goes: the hub may show the new state (and a spec read it)
    // before the answer's reply reaches this worker
    this.batches++;
    await call(this.session, "CompleteEntityTask", answer, this.headers, () => {});
  }

  close() {
    this.closing = true;
    this.session.destroy();
  }
}

// counter: the entity the specs use: add N, set V, get, delete.
function counter(state, input, op) {
  switch (op.toLowerCase()) {
    case "add": return { state: (state || 0) + input };
    case "set": return { state: input };
    case "get": return { state, result: state };
    case "delete": return { state: undefined };
    default: throw new Error(`counter has no operation ${op}`);
  }
}

module.exports = { EntityWorker, counter };
