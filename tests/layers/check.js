#!/usr/bin/env node
// check.js — the real include graph against the documented one. docs/architecture.md has a
// table of the layers, bottom up: each layer's folder, the headers it exports and the layers
// whose headers it includes. This reads every #include of every layer (its folder under src/
// and the headers it exports) and fails, naming each difference, when a layer includes a
// header the table does not let it, when the table lists an include that no longer happens
// (the documentation must stay true), or when the table itself lets a layer include one
// listed above it. Run from make test (ctest: layers/include_graph).
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(process.argv[2] || path.join(__dirname, "..", ".."));
const doc = fs.readFileSync(path.join(root, "docs", "architecture.md"), "utf8");

// The table: | layer | folder | exports | includes |, between the two marker comments.
const start = doc.indexOf("<!-- layers:begin -->");
const end = doc.indexOf("<!-- layers:end -->");
if (start < 0 || end < start) {
  console.error("docs/architecture.md: no <!-- layers:begin --> ... <!-- layers:end --> table");
  process.exit(1);
}
const list = (cell) => cell.replace(/`/g, "").split(",").map((s) => s.trim()).filter((s) => s && s !== "—");
const layers = [];
for (const line of doc.slice(start, end).split("\n")) {
  const cells = line.split("|").slice(1, -1).map((c) => c.trim());
  if (cells.length !== 4 || cells[0] === "layer" || /^-+$/.test(cells[0])) continue;
  layers.push({ name: cells[0].replace(/`/g, ""), folder: cells[1].replace(/`/g, ""),
                exports: list(cells[2]), includes: list(cells[3]) });
}
const problems = [];
const byName = new Map(layers.map((l, i) => [l.name, { ...l, rank: i }]));
const owner = new Map();   // exported header ("durabletask/hub.h") -> layer name
for (const l of layers)
  for (const h of l.exports) {
    if (owner.has(h)) problems.push(`${h} is exported by both ${owner.get(h)} and ${l.name}`);
    owner.set(h, l.name);
  }
// the generated protobuf messages travel with codec's inside (codec/pb.h)
owner.set("durabletask.pb-c.h", "codec");

// The table is bottom up: a layer may only include layers listed before it.
for (const l of layers)
  for (const d of l.includes) {
    const dep = byName.get(d);
    if (!dep) problems.push(`${l.name} includes unknown layer ${d}`);
    else if (dep.rank >= byName.get(l.name).rank)
      problems.push(`the table lets ${l.name} include ${d}, which is not below it`);
  }

// exportedPath: where an exported header lives in the source tree.
function exportedPath(h) {
  return h.startsWith("durabletask/") ? path.join(root, "include", h) : path.join(root, "src", h);
}

const includeRe = /^\s*#\s*include\s*[<"]([^>"]+)[>"]/gm;
const real = new Map(layers.map((l) => [l.name, new Set()]));
for (const l of layers) {
  // a layer of headers only (the umbrella header) has no folder of its own: "—"
  const dir = l.folder === "—" ? null : path.join(root, l.folder);
  if (dir && !fs.existsSync(dir)) { problems.push(`${l.name}: folder ${l.folder} does not exist`); continue; }
  const files = dir ? fs.readdirSync(dir).filter((f) => /\.[ch]$/.test(f)).map((f) => path.join(dir, f)) : [];
  for (const h of l.exports) {
    const p = exportedPath(h);
    if (!fs.existsSync(p)) problems.push(`${l.name}: exported header ${h} does not exist`);
    else if (!files.includes(p)) files.push(p);
  }
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    for (const m of text.matchAll(includeRe)) {
      const inc = m[1];
      const rel = path.relative(root, file);
      if (!m[0].includes('"') && !inc.startsWith("durabletask/")) continue;   // a system header
      if (m[0].includes('"') && fs.existsSync(path.join(path.dirname(file), inc)) &&
          !owner.has(inc)) continue;                                        // the layer's own
      const to = owner.get(inc);
      if (!to) { problems.push(`${rel}: includes "${inc}", which no layer exports`); continue; }
      if (to !== l.name) real.get(l.name).add(to);
    }
  }
}

for (const l of layers) {
  const got = real.get(l.name), want = new Set(l.includes);
  for (const d of got)
    if (!want.has(d)) problems.push(`${l.name} includes ${d}, which the table does not list`);
  for (const d of want)
    if (!got.has(d)) problems.push(`the table says ${l.name} includes ${d}, but it does not`);
}

if (problems.length) {
  console.error("include graph differs from docs/architecture.md:\n  " + problems.join("\n  "));
  process.exit(1);
}
console.log(`include graph matches docs/architecture.md: ${layers.length} layers, ` +
            `${[...real.values()].reduce((n, s) => n + s.size, 0)} edges`);
