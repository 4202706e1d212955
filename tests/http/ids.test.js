"use strict";
// Ids and names keep one set of rules on the HTTP API as everywhere (core's dt_name_validate,
// dt_instance_id_validate): invalid UTF-8, control characters and over-long names are refused
// with 400 naming the field and the rule, and nothing is stored. (Percent-encoding is how a
// client gets raw bytes into a path or query; the server decodes it before the checks.)

const { test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

test("a start whose name or id is not UTF-8, holds a control character or is too long is 400 and stores nothing", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = h.uid("badname");
  h.assertError(await h.call("POST", `orchestrators/hello%FF/${id}`), 400, "BadRequest", "orchestrator name is not valid UTF-8");
  h.assertError(await h.call("POST", `orchestrators/hello%0AERROR%20forged/${id}`), 400, "BadRequest", "orchestrator name has a control character (0x0a)");
  h.assertError(await h.call("POST", `orchestrators/hello%C2%85/${id}`), 400, "BadRequest", "control character (U+0085)");
  // an id that shows as another: "id" + RIGHT-TO-LEFT OVERRIDE + "evil" reads "idlive"
  h.assertError(await h.call("POST", `orchestrators/hello_cities/id%E2%80%AEevil`), 400, "BadRequest", "bidirectional control character (U+202E)");
  h.assertError(await h.call("POST", `orchestrators/${"n".repeat(257)}/${id}`), 400, "BadRequest", "orchestrator name is 257 characters long; at most 256");
  h.assertError(await h.call("POST", `orchestrators/hello_cities/${id}%C3`), 400, "BadRequest", "instance id is not valid UTF-8");
  h.assertError(await h.call("POST", `orchestrators/hello_cities/${id}%07`), 400, "BadRequest", "instance id has a control character");
  assert.equal((await h.call("GET", h.statusPath(id))).status, 404);
  assert.equal((await h.call("GET", `instances/${id}%C3`)).status, 404);
  const listed = await h.listAll({ instanceIdPrefix: id });
  assert.equal(listed.items.length, 0, JSON.stringify(listed));
  // the good start still goes through
  await h.start("hello_cities", id);
  await h.waitFor(id);
});

test("raiseEvent and entity signals check their names the same way", { timeout: h.TEST_TIMEOUT_MS }, async () => {
  const id = h.uid("badevent");
  h.assertError(await h.call("POST", `${h.statusPath(id)}/raiseEvent/ev%FF`, { body: 1 }), 400, "BadRequest", "event name is not valid UTF-8");
  h.assertError(await h.call("POST", `${h.statusPath(id)}/raiseEvent/ev%0D%0Aforged`, { body: 1 }), 400, "BadRequest", "event name has a control character (0x0d)");
  h.assertError(await h.call("POST", `${h.statusPath(id)}/raiseEvent/${"e".repeat(300)}`, { body: 1 }), 400, "BadRequest", "at most 256");
  const key = h.uid("k");
  h.assertError(await h.call("POST", `entities/counter/${key}?op=add%1B%5B2J`, { body: "1" }), 400, "BadRequest", "operation name has a control character (0x1b)");
  h.assertError(await h.call("POST", `entities/counter/${key}%FF?op=add`, { body: "1" }), 400, "BadRequest", "not valid UTF-8");
  assert.equal((await h.call("GET", `entities/counter/${key}`)).status, 404);
});
