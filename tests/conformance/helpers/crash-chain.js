"use strict";
// The work of the crash test, registered by both the worker that gets killed (helpers/worker.js,
// a child process) and the worker that takes over (in the test's own process).

const STEPS = 5;
const STEP_MS = 400;

// Registers the orchestrator `crash_chain` (STEPS slow activities in a row, output the list of
// their results) and the activity `crash_slow_step`. ON_STEP(instanceId, step) is called after
// each activity finishes its work, just before it returns its result.
function registerCrashChain(worker, onStep = () => {}) {
  worker.addNamedActivity("crash_slow_step", async (ctx, step) => {
    await new Promise((resolve) => setTimeout(resolve, STEP_MS));
    onStep(ctx.orchestrationId, step);
    return `${ctx.orchestrationId}#${step}`;
  });
  worker.addNamedOrchestrator("crash_chain", async function* (ctx) {
    const results = [];
    for (let step = 0; step < STEPS; step++) results.push(yield ctx.callActivity("crash_slow_step", step));
    return results;
  });
}

function expectedOutput(instanceId) {
  return Array.from({ length: STEPS }, (_, step) => `${instanceId}#${step}`);
}

module.exports = { STEPS, STEP_MS, registerCrashChain, expectedOutput };
