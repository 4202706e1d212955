// timeline.js — the instance page's picture: an SVG Gantt chart drawn from the history, one bar
// per activity call, timer and sub-orchestration, from its scheduling event to the event that
// answers it (matched by TaskScheduledId = the scheduling event's EventId). A bar with no
// answer yet is "open": it runs to now (or to the instance's end, if the instance has ended)
// and is drawn hatched. The top row is the orchestration itself, with its raised events and
// suspensions as marks. Every label is a text node (dom.js).

import { s, instanceHref, fmtDuration, fmtTime, fmtJson } from "./dom.js";

const SCHEDULES = {
  TaskScheduled: "activity",
  TimerCreated: "timer",
  SubOrchestrationInstanceCreated: "suborchestration",
};
const ANSWERS = {
  TaskCompleted: ["activity", "completed"],
  TaskFailed: ["activity", "failed"],
  TimerFired: ["timer", "completed"],
  SubOrchestrationInstanceCompleted: ["suborchestration", "completed"],
  SubOrchestrationInstanceFailed: ["suborchestration", "failed"],
};
const MARKS = new Set(["EventRaised", "ExecutionSuspended", "ExecutionResumed", "EventSent"]);
const ENDS = new Set(["ExecutionCompleted", "ExecutionTerminated"]);
const TERMINAL = new Set(["Completed", "Failed", "Terminated", "Canceled"]);

function ms(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

// spansOf: the bars and marks of INSTANCE (a status object with historyEvents), as of NOW.
export function spansOf(instance, now) {
  const events = Array.isArray(instance.historyEvents) ? instance.historyEvents : [];
  const byId = new Map();
  const bars = [];
  const marks = [];
  let start = null, end = null;
  for (const e of events) {
    const t = ms(e.Timestamp);
    if (t === null) continue;
    if (e.EventType === "ExecutionStarted" && start === null) start = t;
    if (ENDS.has(e.EventType)) end = t;
    const kind = SCHEDULES[e.EventType];
    if (kind) {
      const bar = { kind, eventId: e.EventId, name: e.Name || "", start: t, end: null,
        outcome: "open", fireAt: e.FireAt, instanceId: e.InstanceId, input: e.Input };
      if (kind === "timer") bar.name = "timer";
      bars.push(bar);
      byId.set(e.EventId, bar);
      continue;
    }
    const answer = ANSWERS[e.EventType];
    if (answer) {
      const bar = byId.get(e.TaskScheduledId);
      if (bar && bar.kind === answer[0] && bar.end === null) {
        bar.end = t;
        bar.outcome = answer[1];
        bar.result = e.Result;
        bar.failure = e.FailureDetails;
      }
      continue;
    }
    if (MARKS.has(e.EventType)) marks.push({ type: e.EventType, name: e.Name || "", at: t });
  }
  if (start === null) start = ms(instance.createdTime) ?? now;
  const ended = TERMINAL.has(instance.runtimeStatus);
  if (end === null && ended) end = ms(instance.completedTime) ?? ms(instance.lastUpdatedTime);
  const openUntil = end ?? now;
  for (const b of bars) if (b.end === null) b.until = Math.max(openUntil, b.start);
  bars.sort((a, b) => a.start - b.start || a.eventId - b.eventId);
  return { bars, marks, start, end, openUntil, ended };
}

// niceStep: a round tick interval giving at most MAXTICKS ticks over SPAN milliseconds.
function niceStep(span, maxTicks) {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3,
    120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3, 172800e3,
    604800e3, 2592000e3];
  return steps.find((st) => span / st <= maxTicks) || Math.ceil(span / maxTicks);
}

function shorten(text, max) {
  return text.length > max ? text.slice(0, Math.max(1, max - 1)) + "…" : text;
}

function barTitle(b) {
  const lines = [];
  const what = { activity: "activity", timer: "timer", suborchestration: "sub-orchestration" }[b.kind];
  lines.push(`${what} ${b.name} (EventId ${b.eventId})`);
  lines.push(`scheduled ${fmtTime(new Date(b.start).toISOString())}`);
  if (b.end !== null) lines.push(`${b.outcome} ${fmtTime(new Date(b.end).toISOString())} after ${fmtDuration(b.end - b.start)}`);
  else lines.push(`still open after ${fmtDuration(b.until - b.start)}`);
  if (b.fireAt) lines.push(`fires at ${fmtTime(b.fireAt)}`);
  if (b.instanceId) lines.push(`instance ${b.instanceId}`);
  if (b.failure) lines.push(`failure: ${b.failure.errorType || ""} ${b.failure.errorMessage || ""}`.trim());
  else if (b.result !== undefined && b.result !== null) lines.push(`result: ${shorten(fmtJson(b.result), 200)}`);
  return lines.join("\n");
}

// renderTimeline: the chart for INSTANCE as an <svg class="timeline">, WIDTH pixels wide.
export function renderTimeline(instance, width, now = Date.now()) {
  const { bars, marks, start, end, openUntil, ended } = spansOf(instance, now);
  let last = end ?? now;
  for (const b of bars) last = Math.max(last, b.end ?? b.until);
  const span = Math.max(last - start, 1);

  const W = Math.max(560, Math.floor(width));
  const labelW = Math.min(240, Math.floor(W * 0.28));
  const right = 86; // room for the duration text after the last bar
  const plotX = labelW + 8, plotW = W - plotX - right;
  const axisH = 26, rowH = bars.length > 150 ? 14 : 22, barH = rowH - 8;
  const rows = bars.length + 1;
  const H = axisH + rows * rowH + 8;
  const x = (t) => plotX + ((t - start) / span) * plotW;

  const svg = s("svg", {
    class: "timeline", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `Timeline: ${bars.length} activities, timers and sub-orchestrations`,
  });
  svg.appendChild(s("defs", null,
    s("pattern", { id: "tl-hatch", width: 8, height: 8, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)" },
    s("rect", { width: 8, height: 8, class: "tl-hatch-bg" }),
    s("line", { x1: 0, y1: 0, x2: 0, y2: 8, class: "tl-hatch-line" }))));

  // the time axis: ticks at round offsets from the start, with grid lines through the rows
  const maxTicks = Math.max(2, Math.floor(plotW / 80));
  const step = niceStep(span, maxTicks);
  const axis = s("g", { class: "tl-axis" });
  for (let k = 0; k * step <= span + 1e-9; k++) {
    const tx = x(start + k * step);
    axis.appendChild(s("line", { x1: tx, y1: axisH - 6, x2: tx, y2: H - 4, class: "tl-grid" }));
    axis.appendChild(s("text", { x: tx, y: axisH - 10, "text-anchor": k === 0 ? "start" : "middle" },
      k === 0 ? "0" : "+" + fmtDuration(k * step)));
  }
  axis.appendChild(s("line", { x1: plotX, y1: axisH - 4, x2: plotX + plotW, y2: axisH - 4, class: "tl-axis-line" }));
  if (!ended) {
    const nx = x(now);
    axis.appendChild(s("line", { x1: nx, y1: axisH - 6, x2: nx, y2: H - 4, class: "tl-now" }));
    axis.appendChild(s("text", { x: nx, y: H - 1, "text-anchor": "end", class: "tl-now-label" }, "now"));
  }
  svg.appendChild(axis);

  // row 0: the orchestration itself
  const y0 = axisH + 4;
  const inst = s("g", { class: "tl-row tl-instance-row" });
  inst.appendChild(s("text", { x: labelW, y: y0 + barH - 3, "text-anchor": "end", class: "tl-label tl-label-instance" },
    shorten(instance.name || "orchestration", 34)));
  const iEnd = end ?? openUntil;
  inst.appendChild(s("rect", {
    x: x(start), y: y0 + 3, width: Math.max(x(iEnd) - x(start), 2), height: barH - 6, rx: 2,
    class: "tl-instance" + (end === null ? " tl-open" : ""),
  }, s("title", null, `${instance.name || ""} ${instance.runtimeStatus || ""}, ${fmtDuration(iEnd - start)}`)));
  for (const m of marks) {
    const mx = x(m.at);
    inst.appendChild(s("path", {
      d: `M${mx} ${y0} l4 ${barH / 2} l-4 ${barH / 2} l-4 ${-barH / 2} z`,
      class: "tl-mark tl-mark-" + m.type,
    }, s("title", null, `${m.type}${m.name ? " " + m.name : ""} at ${fmtTime(new Date(m.at).toISOString())}`)));
  }
  svg.appendChild(inst);

  // one row per activity, timer and sub-orchestration
  bars.forEach((b, i) => {
    const y = axisH + (i + 1) * rowH + 4;
    const x1 = x(b.start), x2 = x(b.end ?? b.until);
    const w = Math.max(x2 - x1, 3);
    const g = s("g", { class: `tl-row tl-row-${b.kind}` });
    const label = b.kind === "timer" ? "timer" : b.name;
    g.appendChild(s("text", { x: labelW, y: y + barH - 3, "text-anchor": "end", class: "tl-label" },
      shorten(label, 30) + " #" + b.eventId));
    const rect = s("rect", {
      x: x1, y, width: w, height: barH, rx: 2,
      class: `tl-bar tl-${b.kind} tl-${b.outcome}` + (b.end === null ? " tl-open" : ""),
      "data-event-id": b.eventId, "data-kind": b.kind, "data-outcome": b.outcome,
    }, s("title", null, barTitle(b)));
    if (b.kind === "suborchestration" && b.instanceId) {
      g.appendChild(s("a", { href: instanceHref(b.instanceId) }, rect));
    } else {
      g.appendChild(rect);
    }
    const dur = b.end === null ? `${fmtDuration(b.until - b.start)}…` : fmtDuration(b.end - b.start);
    const after = x1 + w + 4 + dur.length * 6.5 <= W;
    g.appendChild(s("text", {
      x: after ? x1 + w + 4 : x1 - 4, y: y + barH - 3, "text-anchor": after ? "start" : "end",
      class: "tl-dur",
    }, dur));
    svg.appendChild(g);
  });
  return svg;
}

// legend: the key to the chart's colours, as HTML-free SVG swatches.
export function legend() {
  const items = [
    ["tl-activity tl-completed", "activity"], ["tl-timer tl-completed", "timer"],
    ["tl-suborchestration tl-completed", "sub-orchestration"], ["tl-failed", "failed"],
    ["tl-open", "open (not answered yet)"],
  ];
  const W = 640, svg = s("svg", { class: "tl-legend", width: W, height: 18, viewBox: `0 0 ${W} 18` });
  let xx = 0;
  for (const [cls, text] of items) {
    svg.appendChild(s("rect", { x: xx, y: 3, width: 18, height: 12, rx: 2, class: "tl-swatch " + cls }));
    svg.appendChild(s("text", { x: xx + 24, y: 13 }, text));
    xx += 24 + text.length * 6.6 + 18;
  }
  return svg;
}
