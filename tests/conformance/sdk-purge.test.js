"use strict";
// sdk-purge: PurgeInstances as the .NET, Java and Python SDKs call it, with raw gRPC calls
// shaped like theirs: by instanceId or by purgeInstanceFilter with recursive (the .NET SDK's
// PurgeInstanceOptions.Recursive) the finished sub-orchestrations an instance started go too,
// children first; by instanceBatch (bulk cleanup) the finished ids listed go, missing and live
// ones are skipped. And `dtask serve` on a port already in use exits at once with an error
// naming the address, instead of starting and sharing the port.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const raw = require("./helpers/raw");

const TIMEOUT = { timeout: 15_000 };
const client = raw.connect();
after(() => client.close());

// A tree of instances: {kids: {childId: subtree, ...}, fail}. Each instance, run by runTrees,
// starts its kids as sub-orchestrations in its first episode, then ends when all of them have
// ended: Failed if its node says fail, else Completed.
function tree(kids = {}, fail = false) {
  return { kids, fail };
}

async function runTrees(O, roots) {
  const s = new raw.WorkStream(client, raw.filters([O], []));
  const ended = new Set();
  try {
    for (const [id, node] of Object.entries(roots)) {
      await raw.unary(client, "StartInstance", { instanceId: id, name: O, input: raw.str(JSON.stringify(node)) });
    }
    while (!Object.keys(roots).every((id) => ended.has(id))) {
      const wi = await s.must(5000);
      const r = wi.orchestratorRequest;
      const all = [...(r.pastEvents || []), ...(r.newEvents || [])];
      const node = JSON.parse(all.find((e) => e.executionStarted).executionStarted.input.value);
      const kids = Object.entries(node.kids);
      const created = all.filter((e) => e.subOrchestrationInstanceCreated).length;
      const over = all.filter((e) => e.subOrchestrationInstanceCompleted || e.subOrchestrationInstanceFailed).length;
      let actions = [];
      if (created === 0 && kids.length) {
        actions = kids.map(([instanceId, sub], i) =>
          ({ id: i, createSubOrchestration: { instanceId, name: O, input: raw.str(JSON.stringify(sub)) } }));
      } else if (over === kids.length) {
        actions = [node.fail
          ? raw.actions.complete(kids.length, "ORCHESTRATION_STATUS_FAILED", undefined,
            { failureDetails: { errorType: "Boom", errorMessage: `${r.instanceId} failed on purpose` } })
          : raw.actions.complete(kids.length, "ORCHESTRATION_STATUS_COMPLETED", '"ok"')];
        ended.add(r.instanceId);
      }
      await raw.completeOrchestration(client, wi, actions);
    }
    for (const id of Object.keys(roots)) await raw.waitDone(client, id);
  } catch (e) {
    // leave nothing running for a later test's worker
    await raw.terminateAll(client, Object.entries(roots).flatMap(([id, node]) => ids(id, node)));
    throw e;
  } finally {
    s.close();
  }
}

const exists = async (instanceId) => !!(await raw.unary(client, "GetInstance", { instanceId })).exists;
const purge = (req) => raw.unary(client, "PurgeInstances", req);

// the ids of a tree rooted at ROOT with NODE, root first
function ids(root, node) {
  return [root, ...Object.entries(node.kids).flatMap(([id, sub]) => ids(id, sub))];
}

test("purging one instance with recursive purges the sub-orchestrations it started; without it they stay", TIMEOUT, async () => {
  const O = raw.uid("purge_family"), p = raw.uid("purge-p"), q = raw.uid("purge-q");
  const family = (root) => tree({ [`${root}:a`]: tree({ [`${root}:a:g`]: tree() }), [`${root}:b`]: tree() });
  const roots = { [p]: family(p), [q]: family(q) };
  await runTrees(O, roots);
  for (const id of [...ids(p, roots[p]), ...ids(q, roots[q])]) assert.ok(await exists(id), `${id} is missing`);

  const one = await purge({ instanceId: q });
  assert.equal(one.deletedInstanceCount, 1);
  assert.ok(!(await exists(q)));
  for (const id of ids(q, roots[q]).slice(1)) assert.ok(await exists(id), `${id} was purged without recursive`);

  const all = await purge({ instanceId: p, recursive: true });
  assert.equal(all.deletedInstanceCount, 4, "the root, its two children and a grandchild");
  for (const id of ids(p, roots[p])) assert.ok(!(await exists(id)), `${id} survived a recursive purge`);
  const gone = await raw.rejection(raw.history(client, `${p}:a:g`));
  assert.equal(gone.code, raw.grpc.status.NOT_FOUND, `the purged grandchild's history: ${gone.code} ${gone.details}`);
  await purge({ instanceBatch: { instanceIds: ids(q, roots[q]).slice(1) } });   // tidy up
});

test("purging by filter with recursive also purges the children the filter does not match", TIMEOUT, async () => {
  const O = raw.uid("purge_filter"), s = raw.uid("purge-s"), r = raw.uid("purge-r");
  // each root completes; its one child fails, so a filter on COMPLETED alone never matches it
  const window = async (root) => {
    const from = Date.now() - 1;
    const node = tree({ [`${root}:x`]: tree({}, true) });
    await runTrees(O, { [root]: node });
    const to = Date.now() + 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { createdTimeFrom: raw.ts(from), createdTimeTo: raw.ts(to), runtimeStatus: ["ORCHESTRATION_STATUS_COMPLETED"] };
  };
  const ws = await window(s);
  const wr = await window(r);
  const { orchestrationState: child } = await raw.unary(client, "GetInstance", { instanceId: `${s}:x` });
  assert.equal(child.orchestrationStatus, "ORCHESTRATION_STATUS_FAILED");

  const plain = await purge({ purgeInstanceFilter: ws });
  assert.equal(plain.deletedInstanceCount, 1, "the filter matches only the completed root");
  assert.ok(!(await exists(s)));
  assert.ok(await exists(`${s}:x`), "the failed child was purged without recursive");

  const deep = await purge({ purgeInstanceFilter: wr, recursive: true });
  assert.equal(deep.deletedInstanceCount, 2, "the completed root and its failed child");
  assert.ok(!(await exists(r)) && !(await exists(`${r}:x`)), "a recursive purge by filter left the tree");
  assert.ok(await exists(`${s}:x`), "the recursive purge reached outside its window's trees");
  await purge({ instanceId: `${s}:x` });   // tidy up
});

test("purging a batch of ids purges the finished ones and skips missing and live ones", TIMEOUT, async () => {
  const O = raw.uid("purge_batch"), b1 = raw.uid("purge-b1"), b2 = raw.uid("purge-b2");
  const live = raw.uid("purge-live"), missing = raw.uid("purge-missing");
  await runTrees(O, { [b1]: tree(), [b2]: tree() });
  const s = new raw.WorkStream(client, raw.filters([O], []));
  try {
    await raw.unary(client, "StartInstance", { instanceId: live, name: O, input: raw.str(JSON.stringify(tree())) });
    const wi = await s.must(5000);
    assert.equal(wi.orchestratorRequest.instanceId, live);
    await raw.completeOrchestration(client, wi, []);   // running, waiting

    const res = await purge({ instanceBatch: { instanceIds: [b1, missing, live, b2] } });
    assert.equal(res.deletedInstanceCount, 2);
    assert.ok(!(await exists(b1)) && !(await exists(b2)), "a finished instance of the batch survived");
    assert.ok(await exists(live), "the live instance of the batch was purged");
    assert.ok((await raw.history(client, live)).length > 0, "the live instance lost its history");
  } finally {
    s.close();
    await raw.terminateAll(client, [live]);
  }
});

test("a batch with an empty id is refused before any of it is purged", TIMEOUT, async () => {
  const O = raw.uid("purge_empty"), b1 = raw.uid("purge-e1");
  await runTrees(O, { [b1]: tree() });
  const e = await raw.rejection(purge({ instanceBatch: { instanceIds: [b1, ""] } }));
  assert.equal(e.code, raw.grpc.status.INVALID_ARGUMENT, e.details);
  assert.match(e.details, /instanceBatch\[1\] is empty; nothing was purged/);
  assert.ok(await exists(b1), "the batch's first id was purged before the refusal");
  await purge({ instanceId: b1 });
});

// The attack that found these: a recursive purge followed every SubOrchestrationInstanceCreated
// of a history into the child's own tree before it looked at the child. A live child was left,
// but what was below it (finished) went; and a creation the hub refused (the id was another
// caller's live instance) led the purge into that other instance, which went with its own
// children once it had finished.
test("a recursive purge stops at a live child, and takes only children whose rows name their parent", TIMEOUT, async () => {
  const O = raw.uid("purge_guard"), p = raw.uid("guard-p"), c = `${p}:c`, g = `${p}:c:g`;
  const other = raw.uid("guard-other"), p2 = raw.uid("guard-p2");
  const s = new raw.WorkStream(client, raw.filters([O], []));
  const sub = (id, input) => ({ id: 0, createSubOrchestration: { instanceId: id, name: O, input: raw.str(input) } });
  const next = async (id) => {
    const wi = await s.must(5000);
    assert.equal(wi.orchestratorRequest.instanceId, id);
    return wi;
  };
  try {
    // P starts C, C starts G; G completes; C waits on; P is terminated alone
    await raw.unary(client, "StartInstance", { instanceId: p, name: O });
    await raw.completeOrchestration(client, await next(p), [sub(c, '"c"')]);
    await raw.completeOrchestration(client, await next(c), [sub(g, '"g"')]);
    await raw.completeOrchestration(client, await next(g), [raw.actions.complete(0, "ORCHESTRATION_STATUS_COMPLETED", '"g done"')]);
    await raw.completeOrchestration(client, await next(c), []);   // running, waiting
    await raw.unary(client, "TerminateInstance", { instanceId: p });
    assert.equal((await raw.waitDone(client, p)).orchestrationStatus, "ORCHESTRATION_STATUS_TERMINATED");
    const one = await purge({ instanceId: p, recursive: true });
    assert.equal(one.deletedInstanceCount, 1, "purged below a live child");
    assert.ok(await exists(c) && await exists(g), "the live child, or what is below it, was purged");

    // P2 asks for a child under OTHER's id while OTHER runs: refused; OTHER is not P2's child
    await raw.unary(client, "StartInstance", { instanceId: other, name: O });
    await raw.completeOrchestration(client, await next(other), []);   // running, waiting
    await raw.unary(client, "StartInstance", { instanceId: p2, name: O });
    await raw.completeOrchestration(client, await next(p2), [sub(other, '"mine?"')]);
    const refused = await next(p2);
    assert.ok(refused.orchestratorRequest.newEvents.some((e) => e.subOrchestrationInstanceFailed),
      "the creation under a live instance's id was not refused");
    await raw.completeOrchestration(client, refused, [raw.actions.complete(1, "ORCHESTRATION_STATUS_COMPLETED", '"p2 done"')]);
    await raw.unary(client, "TerminateInstance", { instanceId: other });
    await raw.waitDone(client, other);
    const two = await purge({ instanceId: p2, recursive: true });
    assert.equal(two.deletedInstanceCount, 1, "purged an instance that was not its child");
    assert.ok(await exists(other), "another caller's instance went with a purge of P2");
  } finally {
    s.close();
    await raw.terminateAll(client, [c, other]);
    await purge({ instanceBatch: { instanceIds: [c, g, other] } }).catch(() => {});
  }
});

test("a second dtask serve on the port already in use exits non-zero naming the address", TIMEOUT, async () => {
  const dtask = process.env.DTASK;
  assert.ok(dtask, "DTASK is not set: run the specs through tests/conformance/run.sh");
  const endpoint = process.env.ENDPOINT;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dtask-port-"));
  const child = spawn(dtask, ["serve", "--grpc-listen", endpoint, "--no-http", "--db", path.join(dir, "dt.db")],
    { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", (d) => { out += d; });
  try {
    const code = await new Promise((resolve) => {
      const t = setTimeout(() => resolve("still running after 5 s"), 5000);
      child.on("exit", (c, sig) => { clearTimeout(t); resolve(c === null ? `killed by ${sig}` : c); });
    });
    assert.equal(typeof code, "number", `the second server: ${code}; output: ${out}`);
    assert.notEqual(code, 0, `the second server exited 0; output: ${out}`);
    assert.ok(out.includes(endpoint), `the error does not name ${endpoint}: ${out}`);
    assert.match(out, /cannot listen/);
    await raw.unary(client, "Hello", {});   // the first server serves on
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
