// dashboard.test.js — the web dashboard as a person uses it, in headless Chromium against a
// real `dtask serve` with the C demo worker (run.sh starts both and the instances hello-1..3,
// completed hello_cities runs, and waiting-1, a c_calls_js run that waits for an activity no
// worker serves). Every page fails its test on a JavaScript dialog or an uncaught error, so a
// payload that got itself executed (the XSS test) cannot go unnoticed.
"use strict";

const { test, before, after, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const BASE = process.env.DASHBOARD_URL;
const API = `${BASE}/runtime/webhooks/durabletask`;
const ARTIFACTS = process.env.ARTIFACTS || path.join(__dirname, "artifacts");
if (!BASE) throw new Error("DASHBOARD_URL is not set: run this through run.sh");

let context;       // one browser profile (fresh --user-data-dir) for the whole file
let userDataDir;
let problems = []; // dialogs and page errors seen during the current test

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // run.sh gives a directory inside its own temporary one, which it removes on every path
  userDataDir = process.env.CHROMIUM_PROFILE || fs.mkdtempSync(path.join(os.tmpdir(), "dtask-chromium-"));
  // launchPersistentContext is how playwright takes --user-data-dir
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(15000);
});

after(async () => {
  if (context) await context.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const p of context.pages()) await p.close();
  const seen = problems;
  problems = [];
  assert.deepEqual(seen, [], "the page opened a dialog or threw");
});

// openPage: a new tab on the dashboard at HASH that records dialogs and uncaught errors.
async function openPage(hash = "#/") {
  const page = await context.newPage();
  page.on("dialog", async (d) => {
    problems.push(`${d.type()} dialog: ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${BASE}/${hash}`);
  return page;
}

async function api(method, p, body) {
  const res = await fetch(API + p, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function startInstance(name, id, input) {
  return api("POST", `/orchestrators/${encodeURIComponent(name)}/${encodeURIComponent(id)}`, input);
}

async function waitForStatus(id, want, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await api("GET", `/instances/${encodeURIComponent(id)}`);
    if (s.runtimeStatus === want) return s;
    if (Date.now() > deadline) throw new Error(`${id} is ${s.runtimeStatus}, not ${want}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const href = (id) => "#/instance/" + encodeURIComponent(id);
const rows = (page) => page.locator("#instances-body tr[data-instance-id]");
const rowIds = (page) => rows(page).evaluateAll((trs) => trs.map((tr) => tr.dataset.instanceId));

// confirm: answer the dashboard's confirmation dialog (a <dialog>, not window.confirm).
async function confirm(page, fill = {}) {
  const dlg = page.locator("#confirm-dialog[open]");
  await dlg.waitFor();
  for (const [name, value] of Object.entries(fill)) {
    const input = dlg.locator(`input[name="${name}"]`);
    if (typeof value === "boolean") await input.setChecked(value);
    else await input.fill(value);
  }
  await dlg.locator("#confirm-ok").click();
  await page.waitForFunction(() => !document.querySelector("#confirm-dialog").open);
}

async function statusOf(page) {
  return page.locator("#instance-status").getAttribute("data-status");
}

test("the list shows the instances and the counts by status", async () => {
  for (const id of ["hello-1", "hello-2", "hello-3"]) await waitForStatus(id, "Completed");
  await waitForStatus("waiting-1", "Running");
  const page = await openPage("#/");
  for (const id of ["hello-1", "hello-2", "hello-3", "waiting-1"])
    await page.locator(`#instances-body tr[data-instance-id="${id}"]`).waitFor();
  const row = page.locator('#instances-body tr[data-instance-id="hello-1"]');
  assert.equal(await row.locator("td").nth(1).textContent(), "hello_cities");
  assert.equal(await row.locator(".badge").textContent(), "Completed");
  const waiting = page.locator('#instances-body tr[data-instance-id="waiting-1"]');
  assert.equal(await waiting.locator(".badge").textContent(), "Running");
  await page.locator('#counts [data-status="Completed"] .count-n').filter({ hasText: /^[3-9]|\d\d/ }).waitFor();
  assert.ok(Number(await page.locator('#counts [data-status="Running"] .count-n').textContent()) >= 1);
  await page.screenshot({ path: path.join(ARTIFACTS, "list.png"), fullPage: true });
});

test("the status filter, the count buttons and the search narrow the list", async () => {
  const page = await openPage("#/");
  await rows(page).first().waitFor();
  await page.locator('input[data-status="Completed"]').check();
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll("#instances-body .badge")];
    return b.length > 0 && b.every((x) => x.textContent === "Completed");
  });
  let ids = await rowIds(page);
  assert.ok(["hello-1", "hello-2", "hello-3"].every((id) => ids.includes(id)), ids.join());
  assert.ok(!ids.includes("waiting-1"));

  await page.locator('#counts button[data-status="Running"]').click();
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll("#instances-body .badge")];
    return b.length > 0 && b.every((x) => x.textContent === "Running");
  });
  assert.ok((await rowIds(page)).includes("waiting-1"));
  assert.equal(await page.locator('input[data-status="Running"]').isChecked(), true);
  assert.equal(await page.locator('input[data-status="Completed"]').isChecked(), false);

  await page.locator("#counts button[data-status=All]").click();
  await page.locator("#search").fill("hello-");
  await page.locator("#search").press("Enter");
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll("#instances-body tr[data-instance-id]")];
    return r.length === 3 && r.every((x) => x.dataset.instanceId.startsWith("hello-"));
  });

  await page.locator("#search-mode").selectOption("name");
  await page.locator("#search").fill("c_calls_js");
  await page.locator("#search").press("Enter");
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll("#instances-body tr[data-instance-id]")];
    return r.length >= 1 && r.every((x) => x.children[1].textContent === "c_calls_js");
  });
  assert.ok((await rowIds(page)).includes("waiting-1"));
});

test("an instance page shows the output, the history and one timeline bar per activity", async () => {
  const page = await openPage("#/");
  await page.locator(`a[href="${href("hello-1")}"]`).click();
  await page.locator('#instance-status[data-status="Completed"]').waitFor();
  assert.equal(await page.locator("#instance-id").textContent(), "hello-1");
  assert.equal(await page.locator("#instance-name").textContent(), "hello_cities");
  assert.deepEqual(JSON.parse(await page.locator("#instance-output").textContent()),
    ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]);

  const svg = page.locator("#timeline svg.timeline");
  await svg.waitFor();
  const bars = svg.locator("rect.tl-bar");
  assert.equal(await bars.count(), 3, "one bar per activity call");
  assert.equal(await svg.locator("rect.tl-bar.tl-activity").count(), 3);
  assert.deepEqual(await bars.evaluateAll((r) => r.map((x) => x.dataset.outcome)),
    ["completed", "completed", "completed"]);
  assert.equal(await svg.locator(".tl-open").count(), 0, "nothing is open in a finished run");
  const labels = await svg.locator(".tl-row-activity .tl-label").allTextContents();
  assert.deepEqual(labels, ["say_hello #0", "say_hello #1", "say_hello #2"]);
  assert.ok((await svg.locator(".tl-axis text").count()) >= 2, "the time axis has ticks");

  const types = await page.locator("#history tbody tr td:nth-child(2)").allTextContents();
  assert.equal(types.filter((t) => t === "TaskScheduled").length, 3);
  assert.equal(types.filter((t) => t === "TaskCompleted").length, 3);
  assert.ok(types.includes("ExecutionStarted") && types.includes("ExecutionCompleted"));
  assert.ok((await page.locator("#history").textContent()).includes('"Hello Seattle!"'));
  // a finished instance can be purged or restarted, not terminated
  assert.equal(await page.locator("#action-terminate").isDisabled(), true);
  assert.equal(await page.locator("#action-purge").isEnabled(), true);
  await page.screenshot({ path: path.join(ARTIFACTS, "instance.png"), fullPage: true });
});

test("terminating a running instance from its page, after a refused restart", async () => {
  const page = await openPage(href("waiting-1"));
  await page.locator('#instance-status[data-status="Running"]').waitFor();
  const open = page.locator("#timeline svg.timeline rect.tl-bar.tl-activity.tl-open");
  await open.waitFor();
  assert.equal(await open.count(), 1, "the unanswered js_shout call is an open bar");
  await page.screenshot({ path: path.join(ARTIFACTS, "instance-running.png"), fullPage: true });

  // cancelling the dialog does nothing
  await page.locator("#action-terminate").click();
  await page.locator("#confirm-dialog[open]").waitFor();
  await page.locator("#confirm-cancel").click();
  await page.waitForTimeout(500);
  assert.equal(await statusOf(page), "Running");
  assert.equal(await page.locator("#action-result").textContent(), "");

  // the server's error is shown: the same id cannot be restarted while it runs
  await page.locator("#action-restart").click();
  await confirm(page, { newId: false });
  await page.locator("#action-result.err").waitFor();
  assert.match(await page.locator("#action-result").textContent(), /Restart failed: .*still Running/);

  await page.locator("#action-terminate").click();
  await confirm(page, { reason: "enough" });
  await page.locator("#action-result.ok").waitFor();
  await page.locator('#instance-status[data-status="Terminated"]').waitFor();
  assert.equal(await page.locator("#instance-output").textContent(), '"enough"');
  assert.equal((await api("GET", "/instances/waiting-1")).runtimeStatus, "Terminated");
  await page.screenshot({ path: path.join(ARTIFACTS, "instance-terminated.png"), fullPage: true });
});

test("suspend and resume from the instance page", async () => {
  await startInstance("c_calls_js", "suspend-1", "Bo");
  await waitForStatus("suspend-1", "Running");
  const page = await openPage(href("suspend-1"));
  await page.locator('#instance-status[data-status="Running"]').waitFor();
  assert.equal(await page.locator("#action-resume").isDisabled(), true);
  await page.locator("#action-suspend").click();
  await confirm(page, { reason: "lunch" });
  await page.locator('#instance-status[data-status="Suspended"]').waitFor();
  await page.locator("#action-resume:not([disabled])").click();
  await confirm(page);
  await page.locator('#instance-status[data-status="Running"]').waitFor();
  const types = await page.locator("#history tbody tr td:nth-child(2)").allTextContents();
  assert.ok(types.includes("ExecutionSuspended") && types.includes("ExecutionResumed"), types.join());
  await api("POST", "/instances/suspend-1/terminate?reason=done");
});

test("versions show in the list and on the instance page, and the list searches by them", async () => {
  await api("POST", "/orchestrators/hello_cities/ver-1?version=2.5", null);
  await waitForStatus("ver-1", "Completed");
  const page = await openPage("#/");
  await page.locator("#search-mode").selectOption("version");
  await page.locator("#search").fill("2.5");
  await page.locator("#search").press("Enter");
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll("#instances-body tr[data-instance-id]")];
    return r.length === 1 && r[0].dataset.instanceId === "ver-1" && r[0].children[2].textContent === "2.5";
  });
  await page.locator(`a[href="${href("ver-1")}"]`).click();
  await page.locator('#instance-status[data-status="Completed"]').waitFor();
  assert.equal(await page.locator("#instance-version").textContent(), "2.5");
});

test("rewind from the instance page: only a failed instance, which runs again", async () => {
  await startInstance("hello_one", "rewind-1", 7);   // say_hello refuses a number: Failed
  await waitForStatus("rewind-1", "Failed");
  const page = await openPage(href("rewind-1"));
  await page.locator('#instance-status[data-status="Failed"]').waitFor();
  await page.locator("#action-rewind:not([disabled])").click();
  await confirm(page, { reason: "from the dashboard" });
  // it runs again and, the input unchanged, fails again; the history says it was rewound
  await page.waitForFunction(() => [...document.querySelectorAll("#history tbody tr td:nth-child(2)")]
    .some((td) => td.textContent === "ExecutionRewound"));
  await page.locator('#instance-status[data-status="Failed"]').waitFor();
  const done = await openPage(href("hello-1"));
  await done.locator('#instance-status[data-status="Completed"]').waitFor();
  assert.equal(await done.locator("#action-rewind").isDisabled(), true);
});

test("the task hub picker shows each hub's own instances", async () => {
  await api("POST", "/orchestrators/hello_cities/blue-1?taskHub=blue", null);
  const page = await openPage("#/");
  await page.waitForFunction(() => [...document.querySelectorAll("#hub-picker option")].some((o) => o.value === "blue"));
  assert.equal(await page.locator("#hub-picker").inputValue(), "default");
  assert.ok(!(await rowIds(page)).includes("blue-1"));
  await page.locator("#hub-picker").selectOption("blue");
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll("#instances-body tr[data-instance-id]")];
    return r.length === 1 && r[0].dataset.instanceId === "blue-1";
  });
  await page.locator(`a[href="${href("blue-1")}"]`).click();
  await page.locator("#instance-id").waitFor();
  assert.equal(await page.locator("#instance-id").textContent(), "blue-1");
  await page.locator("#hub-picker").selectOption("default");
  await page.waitForFunction(() => document.querySelectorAll("#instances-body tr[data-instance-id]").length > 0 &&
    ![...document.querySelectorAll("#instances-body tr[data-instance-id]")].some((r) => r.dataset.instanceId === "blue-1"));
});

test("the header names the node serving the page and the nodes alive", async () => {
  const page = await openPage("#/");
  await page.waitForFunction(() => /^node \S+ · 1 node alive$/.test(document.getElementById("node-state").textContent));
  const nodes = await (await fetch(`${BASE}/nodes`)).json();
  assert.equal(nodes.nodes.length, 1);
  assert.equal(nodes.nodes[0].node, nodes.node);
  assert.match(await page.locator("#node-state").textContent(), new RegExp(nodes.node.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
});

test("paging through the list with next and previous", async () => {
  for (let i = 0; i < 23; i++) await startInstance("page_probe", `page-${String(i).padStart(2, "0")}`, i);
  const page = await openPage("#/");
  await page.locator("#search").fill("page-");
  await page.locator("#search").press("Enter");
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll("#instances-body tr[data-instance-id]")];
    return r.length === 20 && r.every((x) => x.dataset.instanceId.startsWith("page-"));
  });
  const first = await rowIds(page);
  assert.equal(await page.locator("#prev-page").isDisabled(), true);
  await page.locator("#next-page:not([disabled])").click();
  await page.waitForFunction(() =>
    document.querySelectorAll("#instances-body tr[data-instance-id]").length === 3);
  const second = await rowIds(page);
  assert.equal(new Set([...first, ...second]).size, 23, "the two pages hold every probe once");
  assert.equal(await page.locator("#page-label").textContent(), "Page 2");
  assert.equal(await page.locator("#next-page").isDisabled(), true);
  await page.locator("#prev-page").click();
  await page.waitForFunction(() =>
    document.querySelectorAll("#instances-body tr[data-instance-id]").length === 20);
  assert.deepEqual(await rowIds(page), first);
});

test("live refresh shows new instances, and stops while paused", async () => {
  const page = await openPage("#/");
  await page.locator("#search").fill("live-");
  await page.locator("#search").press("Enter");
  await page.locator("#instances-body td.empty").waitFor();
  await startInstance("hello_cities", "live-1", null);
  await page.locator('#instances-body tr[data-instance-id="live-1"]').waitFor({ timeout: 6000 });

  await page.locator("#live-toggle").click();
  assert.equal(await page.locator("#live-toggle").getAttribute("aria-pressed"), "false");
  await page.waitForTimeout(500); // a refresh sent before the pause has come back (and is not drawn)
  await startInstance("hello_cities", "live-2", null);
  await page.waitForTimeout(4500);
  assert.equal(await page.locator('#instances-body tr[data-instance-id="live-2"]').count(), 0,
    "a paused list does not change");
  await page.locator("#live-toggle").click();
  await page.locator('#instances-body tr[data-instance-id="live-2"]').waitFor({ timeout: 6000 });
});

// Payloads that run script if anything inserts them as markup. Ids may not hold '/', so the id
// uses only the <img> form; each sets window.__xss and opens an alert.
const img = (n) => `<img src=x onerror=window.__xss=${n};alert(${n})>`;
const script = (n) => `<script>window.__xss=${n};alert(${n})</script>`;

async function assertInert(page) {
  await page.waitForTimeout(800); // time for a broken <img> to fire onerror
  const found = await page.evaluate(() => ({
    xss: window.__xss,
    imgs: document.querySelectorAll("img").length,
    handlers: document.querySelectorAll("[onerror],[onload],[onclick]").length,
    scripts: document.querySelectorAll("script").length,
  }));
  assert.deepEqual(found, { xss: undefined, imgs: 0, handlers: 0, scripts: 1 });
}

test("XSS: ids, names, inputs, event payloads and reasons are shown as text", async () => {
  const runningId = `xss-run ${img(1)}`;
  const pendingId = `xss-pending ${img(2)}`;
  const evilName = `never ${script(3)}${img(4)}`;
  const evilInput = { html: `${script(5)}${img(6)}`, svg: "<svg onload=window.__xss=7;alert(7)>" };
  await startInstance("c_calls_js", runningId, `${script(8)}${img(9)}`);
  await startInstance(evilName, pendingId, evilInput);
  await waitForStatus(runningId, "Running");

  // the list
  const list = await openPage("#/");
  await list.locator("#search").fill("xss-");
  await list.locator("#search").press("Enter");
  await list.waitForFunction(() =>
    document.querySelectorAll("#instances-body tr[data-instance-id]").length === 2);
  const listText = await list.locator("#instances-body").textContent();
  assert.ok(listText.includes(runningId) && listText.includes(evilName), listText);
  await assertInert(list);
  await list.close();

  // the unserved instance: its name and input
  const pending = await openPage(href(pendingId));
  await pending.locator("#instance-status[data-status]").waitFor();
  assert.equal(await pending.locator("#instance-id").textContent(), pendingId);
  assert.equal(await pending.locator("#instance-name").textContent(), evilName);
  assert.deepEqual(JSON.parse(await pending.locator("#instance-input").textContent()), evilInput);
  await assertInert(pending);
  await pending.close();

  // the running instance: raise an event with a hostile name and payload, then terminate it
  // with a hostile reason, all through the page
  const page = await openPage(href(runningId));
  await page.locator('#instance-status[data-status="Running"]').waitFor();
  const eventName = img(10);
  const payload = { note: `${script(11)}${img(12)}`, list: ["<b>bold</b>", img(13)] };
  await page.locator("#event-name").fill(eventName);
  await page.locator("#event-data").fill(JSON.stringify(payload));
  await page.locator("#action-raise").click();
  await confirm(page);
  await page.locator("#action-result.ok").waitFor();
  const raised = page.locator("#history tr.ev-EventRaised");
  await raised.waitFor();
  assert.equal(await raised.locator("td").nth(4).textContent(), eventName);
  assert.deepEqual(JSON.parse(await raised.locator("pre.payload").textContent()), payload);
  await page.locator("#action-terminate").click();
  await confirm(page, { reason: img(14) });
  await page.locator('#instance-status[data-status="Terminated"]').waitFor();
  assert.equal(JSON.parse(await page.locator("#instance-output").textContent()), img(14));
  await assertInert(page);
  await page.screenshot({ path: path.join(ARTIFACTS, "xss.png"), fullPage: true });

  // the server refuses a bad event name; its message is shown as text too
  const errs = await openPage(href(pendingId));
  await errs.locator("#instance-status[data-status]").waitFor();
  await errs.locator("#event-name").fill("e");
  await errs.locator("#event-data").fill("{not json");
  await errs.locator("#action-raise").click();
  assert.match(await errs.locator("#raise-form .error").textContent(), /not JSON/);
  assert.equal(await errs.locator("#confirm-dialog[open]").count(), 0);
  await assertInert(errs);
});

test("restart under a new id links to the new instance; purge removes one", async () => {
  const page = await openPage(href("hello-2"));
  await page.locator('#instance-status[data-status="Completed"]').waitFor();
  await page.locator("#action-restart").click();
  await confirm(page, { newId: true });
  const link = page.locator("#restarted-link");
  await link.waitFor();
  const newId = await link.textContent();
  assert.notEqual(newId, "hello-2");
  await link.click();
  await page.locator("#instance-id").filter({ hasText: newId }).waitFor();
  await page.locator('#instance-status[data-status="Completed"]').waitFor();

  await page.goto(`${BASE}/${href("hello-3")}`);
  await page.locator('#instance-status[data-status="Completed"]').waitFor();
  await page.locator("#action-purge").click();
  await confirm(page);
  await page.locator("#action-result.ok").waitFor();
  await page.locator("#instance-error").filter({ hasText: "There is no instance hello-3" }).waitFor();
  await assert.rejects(api("GET", "/instances/hello-3"), /404/);

  // the whole list once more, now that it holds every kind of instance, for a person to see
  await page.goto(`${BASE}/#/`);
  await page.waitForFunction(() =>
    document.querySelectorAll("#instances-body tr[data-instance-id]").length === 20);
  await page.screenshot({ path: path.join(ARTIFACTS, "list-full.png"), fullPage: true });
});

test("the Entities view: backlog before a worker, state after; search by prefix; one entity's whole state", async () => {
  const { EntityWorker, counter } = require("../http/entity-worker");
  const name = "ctr" + Math.random().toString(36).slice(2, 8);
  const xssKey = "<img src=x onerror=alert(1)>";
  const eid = (key) => `@${name}@${key}`;
  const row = (page, key) => page.locator(`#entities-body tr[data-entity-id="${eid(key).replace(/"/g, '\\"')}"]`);
  await api("POST", `/entities/${name}/a?op=add`, 5);
  await api("POST", `/entities/${name}/${encodeURIComponent(xssKey)}?op=set`, { html: "<script>alert(2)</script>" });

  const page = await openPage("#/");
  await page.locator("#nav-entities").click();
  await page.locator("#entity-search").fill(name);
  await page.locator("#entity-search").press("Enter");
  // no worker yet: the signals wait, and the entities have no state
  await row(page, "a").waitFor();
  assert.equal(await row(page, "a").locator(".backlog").textContent(), "1");
  assert.equal(await row(page, "a").locator(".state-preview").textContent(), "(no state)");
  assert.equal(await row(page, "a").locator(".locked-by").textContent(), "—");
  await page.locator("#entity-transient").uncheck();
  await page.locator("#entities-body td.empty").filter({ hasText: "No entities match." }).waitFor();
  await page.locator("#entity-transient").check();
  await row(page, "a").waitFor();

  const worker = new EntityWorker(process.env.GRPC_ENDPOINT, { [name]: counter });
  worker.start();
  try {
    // live refresh brings the states in
    await row(page, "a").locator(".state-preview").filter({ hasText: /^5$/ }).waitFor();
    await row(page, xssKey).locator(".state-preview").filter({ hasText: "<script>alert(2)</script>" }).waitFor();
    assert.equal(await row(page, "a").locator(".backlog").textContent(), "0");
    await page.screenshot({ path: path.join(ARTIFACTS, "entities.png"), fullPage: true });

    // a longer prefix narrows the list to one
    await page.locator("#entity-search").fill(eid("a"));
    await page.locator("#entity-search").press("Enter");
    await page.waitForFunction((id) => {
      const r = [...document.querySelectorAll("#entities-body tr[data-entity-id]")];
      return r.length === 1 && r[0].dataset.entityId === id;
    }, eid("a"));

    await row(page, "a").locator("a").first().click();
    await page.locator("#entity-id").filter({ hasText: eid("a") }).waitFor();
    await page.locator("#entity-state").filter({ hasText: /^5$/ }).waitFor();
    assert.equal(await page.locator("#entity-backlog").textContent(), "0");
    assert.equal(await page.locator("#entity-name").textContent(), name);

    // the other one's key and state are text, never markup
    await page.goto(`${BASE}/#/entity/${encodeURIComponent(eid(xssKey))}`);
    await page.locator("#entity-key").filter({ hasText: xssKey }).waitFor();
    assert.deepEqual(JSON.parse(await page.locator("#entity-state").textContent()), { html: "<script>alert(2)</script>" });
    assert.equal(await page.locator("#entity-state img, #entity-summary img").count(), 0);

    // a signal that empties the entity: the page says it has no state
    await api("POST", `/entities/${name}/a?op=delete`);
    await page.goto(`${BASE}/#/entity/${encodeURIComponent(eid("a"))}`);
    await page.locator("#entity-error").filter({ hasText: "has no state" }).waitFor();
  } finally {
    worker.close();
  }
  assert.deepEqual(worker.failures.map(String), []);
});

test("filters live in the URL, times show their zone with a UTC toggle, a child links to its parent", async () => {
  await startInstance("hello_parent", "parent-1", "Kyoto");
  const parent = await waitForStatus("parent-1", "Completed");
  assert.equal(parent.output, "Hello Kyoto!");
  // the child's id: the only hello_one instance whose parent is parent-1
  const all = await api("GET", "/instances?top=100");
  const child = all.find((s) => s.parentInstanceId === "parent-1");
  assert.ok(child, "no instance names parent-1 as its parent");

  // a filtered list from its URL: the controls show the filters, and changing them changes it
  const page = await openPage("#/?status=Completed&by=name&q=hello_parent");
  await page.locator('#instances-body tr[data-instance-id="parent-1"]').waitFor();
  assert.equal(await page.locator('input[data-status="Completed"]').isChecked(), true);
  assert.equal(await page.locator("#search").inputValue(), "hello_parent");
  assert.equal(await page.locator("#search-mode").inputValue(), "name");
  assert.deepEqual(await rowIds(page), ["parent-1"]);
  await page.locator('input[data-status="Failed"]').check();
  await page.waitForFunction(() => location.hash.includes("Failed"));
  assert.match(decodeURIComponent(new URL(page.url()).hash), /status=Completed,Failed/);

  // times: local with their offset, then UTC after the toggle (kept for the next page)
  const created = page.locator('#instances-body tr[data-instance-id="parent-1"] td.time').first();
  assert.match(await created.textContent(), / [+-]\d\d:\d\d$/);
  await page.locator("#zone-toggle").click();
  await page.locator('#instances-body tr[data-instance-id="parent-1"]').waitFor();
  assert.match(await page.locator('#instances-body tr[data-instance-id="parent-1"] td.time').first().textContent(), / UTC$/);
  assert.equal(await page.locator("#zone-toggle").getAttribute("aria-pressed"), "true");

  // the child's page links to its parent
  await page.goto(`${BASE}/${href(child.instanceId)}`);
  const link = page.locator("#instance-parent");
  await link.waitFor();
  assert.equal(await link.textContent(), "parent-1");
  await link.click();
  await page.locator("#instance-name").filter({ hasText: "hello_parent" }).waitFor();
  await page.locator("#zone-toggle").click();   /* back to local, for the other tests */
  await page.waitForFunction(() => document.querySelector("#zone-toggle").getAttribute("aria-pressed") === "false");
});
