"use strict";
// /openapi.json describes the server: it is OpenAPI 3.0, and every operation in it, called
// against the server, answers with one of the status codes it lists.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

// resolve: follow a local $ref ("#/components/...") in DOC.
function resolve(doc, obj) {
  while (obj && obj.$ref) {
    assert.match(obj.$ref, /^#\//, `only local refs: ${obj.$ref}`);
    obj = obj.$ref.slice(2).split("/").reduce((o, k) => o && o[k], doc);
    assert.ok(obj, "a $ref that points nowhere");
  }
  return obj;
}

test("the document is OpenAPI 3.0 and every $ref in it resolves", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const res = await h.call("GET", "/openapi.json");
  assert.equal(res.status, 200);
  const doc = res.json;
  assert.match(doc.openapi, /^3\.0\./);
  assert.ok(doc.info.title && doc.info.version);
  const walk = (o) => {
    if (Array.isArray(o)) return o.forEach(walk);
    if (o && typeof o === "object") {
      if (o.$ref) resolve(doc, o);
      Object.values(o).forEach(walk);
    }
  };
  walk(doc);
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of METHODS.filter((m) => item[m])) {
      assert.ok(Object.keys(item[m].responses).length > 0, `${m} ${p} lists no responses`);
      for (const param of (item[m].parameters || []).map((x) => resolve(doc, x))) {
        if (param.in === "path") assert.ok(p.includes(`{${param.name}}`), `${m} ${p}: path parameter ${param.name} not in the path`);
      }
      for (const name of [...p.matchAll(/\{(\w+)\}/g)].map((x) => x[1])) {
        assert.ok((item[m].parameters || []).map((x) => resolve(doc, x)).some((x) => x.in === "path" && x.name === name), `${m} ${p}: {${name}} is not described`);
      }
    }
  }
});

test("every operation in /openapi.json answers with a status it lists", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const doc = (await h.call("GET", "/openapi.json")).json;
  const prefix = h.uid("oa");
  const instanceId = `${prefix}-one`;
  await h.start("hello_cities", instanceId);
  await h.waitFor(instanceId);
  const values = { name: "hello_cities", instanceId, eventName: "ping", entityName: `${prefix}-counter`, entityKey: "k" };
  // query parameters that keep the calls to this spec's own instances
  const queries = { [`delete ${h.API.slice(h.BASE.length)}/instances`]: { instanceIdPrefix: prefix } };
  let calls = 0;
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of METHODS.filter((m) => item[m])) {
      const op = item[m];
      let url = p.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(values[k]));
      const q = queries[`${m} ${p}`];
      if (q) url += "?" + new URLSearchParams(q);
      const init = { method: m.toUpperCase() };
      if (op.requestBody) {
        init.body = JSON.stringify({ from: "openapi.test.js" });
        init.headers = { "content-type": "application/json" };
      }
      const res = await fetch(h.BASE + url, init);
      const text = await res.text();
      const listed = Object.keys(op.responses);
      assert.ok(listed.includes(String(res.status)), `${m.toUpperCase()} ${url} answered ${res.status} (${text.slice(0, 200)}); the document lists ${listed.join(", ")}`);
      if (res.status >= 400 && (res.headers.get("content-type") || "").startsWith("application/json")) {
        assert.ok(JSON.parse(text).error.code, `${m} ${url}: error without a code`);
      }
      calls++;
    }
  }
  assert.ok(calls >= 16, `only ${calls} operations`);
});
