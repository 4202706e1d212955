"use strict";
// refresh.test.js — web/dom.js's pausable, run in Node (it needs no page): what a list that
// refreshes on a timer draws around a pause of live refresh. The timer's answers are dropped
// once paused, even one in flight at the pause or queued behind another load; the user's
// (filters, paging, the view's first load) are drawn paused or not.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

const domUrl = pathToFileURL(path.join(__dirname, "..", "..", "web", "dom.js")).href;

// a list whose loads each wait for the test to answer them: answer(n) ends the n-th (from 1)
function fakeList(pausable, isLive) {
  const waiting = [], drawn = [];
  const refresh = pausable(async (keep) => {
    const n = waiting.length + 1;
    await new Promise((resolve) => waiting.push(resolve));
    if (keep()) drawn.push(n);
  }, () => false, isLive);
  const answer = async (n) => {
    waiting[n - 1]();
    await new Promise((r) => setImmediate(r));   // the load ends, and a queued one starts
  };
  return { refresh, answer, drawn, started: () => waiting.length };
}

test("a timer refresh answered after a pause is not drawn; the user's are, paused or not", async () => {
  const { pausable } = await import(domUrl);
  let live = false;
  const l = fakeList(pausable, () => live);

  l.refresh();                  // 1: the view's first load, while paused: drawn
  await l.answer(1);
  live = true;
  l.refresh();                  // 2: the timer's, sent while live, answered after a pause
  live = false;
  await l.answer(2);
  l.refresh(true);              // 3: the user's (paging) while paused
  await l.answer(3);
  assert.deepEqual(l.drawn, [1, 3]);

  live = true;
  l.refresh();                  // 4: the timer's, and behind it the timer's again (5)
  l.refresh();
  live = false;
  await l.answer(4);
  assert.equal(l.started(), 5, "the queued load runs");
  await l.answer(5);
  l.refresh();                  // 6: the timer's, in flight, and the user's queued (7)
  l.refresh(true);
  await l.answer(6);
  await l.answer(7);
  assert.deepEqual(l.drawn, [1, 3, 7]);

  live = true;                  // resumed: the timer's are drawn again
  l.refresh();
  await l.answer(8);
  assert.deepEqual(l.drawn, [1, 3, 7, 8]);
});
