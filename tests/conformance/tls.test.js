"use strict";
// TLS: `dtask serve --tls-cert --tls-key` serves gRPC and HTTP over TLS. The official
// JavaScript SDK (client and worker, with the certificate as their trusted root) runs an
// orchestration through it; a plain-text client gets nothing; curl reads /healthz and starts an
// instance over HTTPS. The certificate is made here with openssl, for 127.0.0.1. One client holds
// at most --max-streams-per-client streams over TLS too, where gRPC's own listener takes the
// connections and the server learns the client's address from gRPC.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const { TaskHubGrpcClient, TaskHubGrpcWorker } = require("@microsoft/durabletask-js");
const raw = require("./helpers/raw");
const h = require("./helpers/harness");

test("gRPC and HTTP over TLS: the JavaScript SDK runs an orchestration, curl talks HTTPS, plain text is refused", { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-tls-"));
  const cert = path.join(dir, "cert.pem"), key = path.join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], { stdio: "ignore" });
  const httpPort = await raw.freePort();
  const srv = await raw.serve(dir, ["--tls-cert", cert, "--tls-key", key, "--http-listen", `127.0.0.1:${httpPort}`,
    "--max-streams-per-client", "1"]);
  const credentials = grpc.credentials.createSsl(fs.readFileSync(cert));
  const worker = new TaskHubGrpcWorker({ hostAddress: srv.endpoint, credentials, logger: h.makeLogger("worker") });
  const client = new TaskHubGrpcClient({ hostAddress: srv.endpoint, credentials, logger: h.makeLogger("client") });
  let started = false;
  try {
    worker.addNamedActivity("shout", (_ctx, s) => `${s}!`);
    worker.addNamedOrchestrator("tls_hello", async function* (ctx, s) {
      return yield ctx.callActivity("shout", s);
    });
    await worker.start();
    started = true;
    const id = await client.scheduleNewOrchestration("tls_hello", "secure", h.uid("tls"));
    const state = await client.waitForOrchestrationCompletion(id, true, 30);
    h.assertCompleted(state, "secure!");

    // the worker's stream is 127.0.0.1's one: another from there is refused, naming the address
    const second = raw.connect({}, srv.endpoint, credentials);
    const extra = new raw.WorkStream(second, {});
    const refused = await raw.rejection(extra.next(10_000));
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED, refused.details);
    assert.match(refused.details, /--max-streams-per-client/);
    assert.match(refused.details, /127\.0\.0\.1/);
    second.close();

    // a client that does not speak TLS gets no answer
    const plain = raw.connect({}, srv.endpoint);
    const e = await raw.rejection(raw.unary(plain, "GetInstance", { instanceId: id }));
    assert.equal(e.code, grpc.status.UNAVAILABLE, e.details);
    plain.close();

    // HTTPS with curl, trusting the same certificate; plain HTTP on that port is not answered
    const base = `https://127.0.0.1:${httpPort}`;
    assert.equal(execFileSync("curl", ["-s", "--cacert", cert, `${base}/healthz`]).toString(), "ok");
    const status = JSON.parse(execFileSync("curl", ["-s", "--cacert", cert,
      `${base}/runtime/webhooks/durabletask/instances/${id}`]).toString());
    assert.equal(status.runtimeStatus, "Completed");
    let plainHttp = "";
    try {
      plainHttp = execFileSync("curl", ["-s", "-m", "5", `http://127.0.0.1:${httpPort}/healthz`]).toString();
    } catch { /* refused or reset: what we want */ }
    assert.notEqual(plainHttp, "ok");
  } finally {
    await Promise.allSettled([client.stop(), started ? worker.stop() : undefined]);
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("dtask serve refuses a certificate without a key, and a file that is not PEM", { timeout: 30_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dt-tls-bad-"));
  try {
    const bad = path.join(dir, "bad.pem");
    fs.writeFileSync(bad, "not a certificate\n");
    const run = (args) => {
      try {
        execFileSync(process.env.DTASK, ["serve", "--no-http", "--grpc-listen", "127.0.0.1:0", "--db", path.join(dir, "d.db"), ...args],
          { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
        return { code: 0, stderr: "" };
      } catch (e) {
        return { code: e.status, stderr: String(e.stderr) };
      }
    };
    let r = run(["--tls-cert", bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--tls-cert and --tls-key go together/);
    r = run(["--tls-cert", bad, "--tls-key", bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is not PEM/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
