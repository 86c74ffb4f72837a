// apps/web/runs.js — the page at /runs: the table of runs (GET /api/runs every 2 s, updated in
// place so sorting, ticks and scroll stay), the loss curves of the ticked runs (GET
// /api/metrics when a run's metrics.csv changed) as an SVG chart, a grid's report.md, and a
// trained run's attention maps for a typed sentence (POST /api/attention).

"use strict";

const POLL_MS = 2000;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

const $ = id => document.getElementById(id);

const fixedOrDash = digits => v => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));

// The table's columns: the key (of the run and of td[data-key]), the text shown, the value sorted by.
const COLUMNS = [
  {key: "name", text: r => r.name},
  {key: "arch", text: r => r.arch || "—"},
  {key: "variant", text: r => r.variant || "—"},
  {key: "params", num: true, text: r => (r.params == null ? "—" : Number(r.params).toLocaleString("en-US"))},
  {key: "step", num: true, text: r => `${r.step ?? "—"} / ${r.steps ?? "—"}`},
  {key: "train_loss", num: true, text: r => fixedOrDash(4)(r.train_loss)},
  {key: "valid_loss", num: true, text: r => fixedOrDash(4)(r.valid_loss)},
  {key: "bleu", num: true, text: r => fixedOrDash(2)(r.bleu)},
  {key: "accuracy", num: true, text: r => fixedOrDash(4)(r.accuracy)},
  {key: "status", text: r => r.status || "—"},
];

const page = {
  runs: new Map(),      // id → the run as /api/runs last gave it
  order: [],            // ids in the server's order
  rows: new Map(),      // id → its <tr>
  sortKey: null,        // null: the server's order
  sortDir: 1,
  selected: new Set(),  // ids ticked for the chart
  colors: new Map(),    // id → colour, kept while ticked
  metrics: new Map(),   // id → {updated, bytes, columns}: metrics.csv as last read
  chartDirty: true,
};

// ---- the table -------------------------------------------------------------------------

function makeRow(id) {
  const box = el("input", {type: "checkbox", class: "overlay", title: "draw this run in the chart"});
  box.addEventListener("change", () => setTicked(id, box.checked));
  const tr = el("tr", {"data-run": id}, el("td", {class: "pick"}, box, el("span", {class: "swatch"})));
  for (const col of COLUMNS) tr.append(el("td", {"data-key": col.key, class: col.num ? "num" : null}));
  return tr;
}

// Changes only the cells whose text changed (a cell being read or selected stays put).
function fillRow(tr, run) {
  for (const col of COLUMNS) {
    const td = tr.querySelector(`td[data-key="${col.key}"]`);
    const text = col.text(run);
    if (td.dataset.shown === text) continue;
    td.dataset.shown = text;
    if (col.key === "status") td.replaceChildren(el("span", {class: `status ${run.status}`}, text));
    else td.textContent = text;
  }
  tr.querySelector('td[data-key="name"]').title = run.id;
}

function sortValue(run, key) {
  return key === "step" ? run.step : run[key];
}

function compareRuns(a, b) {
  const x = sortValue(a, page.sortKey), y = sortValue(b, page.sortKey);
  const missing = v => v === null || v === undefined;
  if (missing(x) || missing(y)) return missing(x) - missing(y);  // missing values last, either way
  const order = typeof x === "number" && typeof y === "number" ? x - y
    : String(x).localeCompare(String(y), undefined, {numeric: true});
  return page.sortDir * order;
}

// Puts the rows in order (moving only when the order changed) and hides those the filter leaves out.
function arrangeRows() {
  const ids = [...page.order];
  if (page.sortKey) {
    const position = new Map(ids.map((id, i) => [id, i]));
    ids.sort((a, b) => compareRuns(page.runs.get(a), page.runs.get(b)) || position.get(a) - position.get(b));
  }
  const tbody = $("runs-table").tBodies[0];
  const current = [...tbody.rows].map(tr => tr.dataset.run);
  if (current.join("\n") !== ids.join("\n"))
    for (const id of ids) tbody.append(page.rows.get(id));
  const filter = $("filter").value.trim().toLowerCase();
  for (const id of ids) page.rows.get(id).hidden = filter !== "" && !page.runs.get(id).name.toLowerCase().includes(filter);
  for (const th of document.querySelectorAll("#runs-table th[data-key]")) {
    const on = th.dataset.key === page.sortKey;
    th.setAttribute("aria-sort", on ? (page.sortDir > 0 ? "ascending" : "descending") : "none");
    th.dataset.arrow = on ? (page.sortDir > 0 ? " ▲" : " ▼") : "";
    th.textContent = th.textContent.replace(/ [▲▼]$/, "") + th.dataset.arrow;
  }
}

function updateRuns(data) {
  const seen = new Set();
  page.order = data.runs.map(r => r.id);
  for (const run of data.runs) {
    seen.add(run.id);
    page.runs.set(run.id, run);
    if (!page.rows.has(run.id)) page.rows.set(run.id, makeRow(run.id));
    fillRow(page.rows.get(run.id), run);
  }
  for (const id of [...page.rows.keys()])
    if (!seen.has(id)) {  // a run folder that went away
      page.rows.get(id).remove();
      page.rows.delete(id);
      page.runs.delete(id);
      if (page.selected.delete(id)) page.chartDirty = true;
    }
  arrangeRows();
  updateGridChoices(data.grids || []);
  updateAttentionRuns();
  if (!page.hashRead) readHash();
}

// ---- the URL: ticked runs, the grid, the chart's settings (a link shows the same chart) ----

function readHash() {
  page.hashRead = true;
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (params.get("filter")) $("filter").value = params.get("filter");
  if (["step", "wall_seconds"].includes(params.get("x"))) $("x-axis").value = params.get("x");
  $("spread").checked = params.get("spread") === "1";
  $("log-y").checked = params.get("log") === "1";
  arrangeRows();
  for (const id of (params.get("runs") || "").split(",").filter(Boolean))
    if (page.rows.has(id)) {
      page.rows.get(id).querySelector("input.overlay").checked = true;
      setTicked(id, true);
    }
  const grid = params.get("grid");
  if (grid && [...$("grid").options].some(o => o.value === grid)) {
    $("grid").value = grid;
    showReport();
  }
  page.chartDirty = true;
}

function writeHash() {
  if (!page.hashRead) return;
  const parts = [];
  if (page.selected.size) parts.push("runs=" + [...page.selected].map(encodeURIComponent).join(","));
  if ($("grid").value) parts.push("grid=" + encodeURIComponent($("grid").value));
  if ($("x-axis").value !== "step") parts.push("x=" + $("x-axis").value);
  if ($("spread").checked) parts.push("spread=1");
  if ($("log-y").checked) parts.push("log=1");
  if ($("filter").value) parts.push("filter=" + encodeURIComponent($("filter").value));
  history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
}

function setUpTable() {
  for (const th of document.querySelectorAll("#runs-table th[data-key]"))
    th.addEventListener("click", () => {
      if (page.sortKey === th.dataset.key) page.sortDir = -page.sortDir;
      else page.sortKey = th.dataset.key, page.sortDir = 1;
      arrangeRows();
    });
  $("filter").addEventListener("input", () => {
    arrangeRows();
    writeHash();
  });
}

// ---- selecting runs for the chart ------------------------------------------------------

async function setTicked(id, on) {
  const tr = page.rows.get(id);
  if (on) {
    page.selected.add(id);
    const used = new Set([...page.selected].map(s => page.colors.get(s)));
    if (!page.colors.has(id)) page.colors.set(id, PALETTE.find(c => !used.has(c)) || PALETTE[page.selected.size % PALETTE.length]);
  } else {
    page.selected.delete(id);
    page.colors.delete(id);
  }
  tr.classList.toggle("selected", on);
  tr.querySelector(".swatch").style.background = on ? page.colors.get(id) : "";
  page.chartDirty = true;
  writeHash();
  await refreshMetrics();
  drawChart();
}

// Fetches the metrics of ticked runs whose metrics.csv changed since we last read it.
async function refreshMetrics() {
  const stale = [...page.selected].filter(id => {
    const run = page.runs.get(id), have = page.metrics.get(id);
    return run && (!have || have.updated !== run.updated || have.bytes !== run.metrics_bytes);
  });
  await Promise.all(stale.map(async id => {
    const updated = page.runs.get(id).updated, bytes = page.runs.get(id).metrics_bytes;
    try {
      const answer = await fetchJSON(`/api/metrics?run=${encodeURIComponent(id)}`);
      page.metrics.set(id, {updated, bytes, columns: answer.columns});
      page.chartDirty = true;
    } catch (error) {
      showError($("runs-error"), error);
    }
  }));
}

// ---- the chart -------------------------------------------------------------------------

// About `count` round numbers covering [lo, hi].
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count, magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map(f => f * magnitude).find(s => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

// Ticks for a log axis: 1, 2, 5 (or denser when the range is narrow) times powers of ten.
function logTicks(lo, hi) {
  for (const mantissas of [[1, 2, 5], [1, 1.5, 2, 3, 4, 5, 6, 8], [1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9]]) {
    const ticks = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of mantissas) {
        const v = Number((m * Math.pow(10, e)).toPrecision(6));
        if (v >= lo && v <= hi) ticks.push(v);
      }
    if (ticks.length >= 4) return ticks;
  }
  return niceTicks(lo, hi, 5);
}

// [x, y, step] of two metrics columns, at the rows where both have a value.
function points(columns, xKey, yKey) {
  const xs = columns[xKey] || [], ys = columns[yKey] || [], steps = columns.step || [];
  const out = [];
  for (let i = 0; i < ys.length; i++)
    if (xs[i] != null && ys[i] != null) out.push([xs[i], ys[i], steps[i]]);
  return out;
}

// "qk-s2" → "qk"; null when the name has no trailing -s<N>.
function seedless(name) {
  const m = /^(.*)-s\d+$/.exec(name);
  return m ? m[1] : null;
}

// The seeds of one group at the steps every one of them logged: the mean of x (wall time
// differs between seeds) and the mean, lowest and highest y.
function sharedSteps(group, xKey, yKey) {
  const byStep = group.map(id => {
    const c = page.metrics.get(id).columns, map = new Map();
    (c.step || []).forEach((s, i) => {
      if (s != null && c[yKey] && c[yKey][i] != null && c[xKey] && c[xKey][i] != null) map.set(s, [c[xKey][i], c[yKey][i]]);
    });
    return map;
  });
  const steps = [...byStep[0].keys()].filter(s => byStep.every(m => m.has(s))).sort((a, b) => a - b);
  return steps.map(s => {
    const xy = byStep.map(m => m.get(s)), ys = xy.map(p => p[1]);
    const mean = a => a.reduce((u, v) => u + v, 0) / a.length;
    return {x: mean(xy.map(p => p[0])), y: mean(ys), lo: Math.min(...ys), hi: Math.max(...ys), step: s};
  });
}

// What to draw: one series per ticked run, or with "seed spread" one per group of seeds.
function chartSeries(xKey) {
  const ids = [...page.selected].filter(id => page.metrics.has(id) && page.runs.has(id));
  const series = [];
  const grouped = new Map();
  if ($("spread").checked)
    for (const id of ids) {
      const run = page.runs.get(id), base = seedless(run.name);
      if (base === null) continue;
      const key = `${run.grid}\n${base}`;
      if (!grouped.has(key)) grouped.set(key, []);
      grouped.get(key).push(id);
    }
  const inGroup = new Set();
  for (const [key, group] of grouped) {
    if (group.length < 2) continue;
    group.forEach(id => inGroup.add(id));
    const valid = sharedSteps(group, xKey, "valid_loss"), train = sharedSteps(group, xKey, "train_loss");
    series.push({label: `${key.split("\n")[1]} (${group.length} seeds)`, color: page.colors.get(group[0]),
                 train: train.map(p => [p.x, p.y]), valid: valid.map(p => [p.x, p.y, p.step]), band: valid});
  }
  for (const id of ids) {
    if (inGroup.has(id)) continue;
    const c = page.metrics.get(id).columns, run = page.runs.get(id);
    series.push({label: run.name, color: page.colors.get(id), train: points(c, xKey, "train_loss"),
                 valid: points(c, xKey, "valid_loss"), band: null});
  }
  return series;
}

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) e.setAttribute(name, value);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawChart() {
  if (!page.chartDirty) return;
  page.chartDirty = false;
  const svg = $("chart");
  const W = 1200, H = 440, left = 66, right = 250, top = 16, bottom = 48;
  const plotW = W - left - right, plotH = H - top - bottom;
  const xKey = $("x-axis").value, logY = $("log-y").checked;
  const series = chartSeries(xKey);
  svg.replaceChildren();
  if (!series.length) {
    svg.append(svgEl("text", {x: W / 2, y: H / 2, "text-anchor": "middle"},
      page.selected.size ? "No logged losses yet for the ticked runs." : "Tick runs in the table to draw their loss curves."));
    return;
  }
  // wall time in minutes once it passes 10 minutes
  const minutes = xKey === "wall_seconds" && Math.max(...series.flatMap(s => s.train.concat(s.valid).map(p => p[0]))) > 600;
  const xOf = v => (minutes ? v / 60 : v);
  const xs = [], ys = [];
  for (const s of series) {
    for (const p of s.train.concat(s.valid)) xs.push(xOf(p[0])), ys.push(p[1]);
    if (s.band) for (const b of s.band) ys.push(b.lo, b.hi);
  }
  const usable = ys.filter(y => Number.isFinite(y) && (!logY || y > 0));
  if (!usable.length) return;
  let x0 = Math.min(0, ...xs), x1 = Math.max(...xs);
  if (x1 === x0) x1 = x0 + 1;
  let y0 = Math.min(...usable), y1 = Math.max(...usable);
  if (y1 === y0) y0 -= 0.5, y1 += 0.5;
  const pad = logY ? Math.pow(y1 / y0, 0.04) : (y1 - y0) * 0.04;
  if (logY) y0 /= pad, y1 *= pad;
  else y0 -= pad, y1 += pad;
  const X = v => left + ((xOf(v) - x0) / (x1 - x0)) * plotW;
  const Y = v => top + plotH - (logY ? Math.log(v / y0) / Math.log(y1 / y0) : (v - y0) / (y1 - y0)) * plotH;
  const inRange = v => Number.isFinite(v) && (!logY || v > 0);

  // axes and grid
  const axes = svgEl("g", {class: "axis"});
  for (const t of logY ? logTicks(y0, y1) : niceTicks(y0, y1, 8)) {
    const y = Y(t);
    axes.append(svgEl("line", {class: "grid-line", x1: left, x2: left + plotW, y1: y, y2: y}));
    axes.append(svgEl("text", {x: left - 6, y: y + 4, "text-anchor": "end"}, formatSig(t)));
  }
  for (const t of niceTicks(x0, x1, 8)) {
    const x = left + ((t - x0) / (x1 - x0)) * plotW;
    axes.append(svgEl("line", {class: "grid-line", x1: x, x2: x, y1: top, y2: top + plotH}));
    axes.append(svgEl("line", {x1: x, x2: x, y1: top + plotH, y2: top + plotH + 4}));
    axes.append(svgEl("text", {x, y: top + plotH + 18, "text-anchor": "middle"}, formatSig(t, 4)));
  }
  axes.append(svgEl("path", {d: `M${left},${top}V${top + plotH}H${left + plotW}`, fill: "none"}));
  axes.append(svgEl("text", {x: left + plotW / 2, y: H - 8, "text-anchor": "middle"},
    xKey === "step" ? "step" : minutes ? "wall time (minutes)" : "wall time (seconds)"));
  axes.append(svgEl("text", {x: 16, y: top + plotH / 2, "text-anchor": "middle", transform: `rotate(-90 16 ${top + plotH / 2})`},
    logY ? "loss (log scale)" : "loss"));
  svg.append(axes);

  // the curves: bands first, then train (thin), then valid (thick) with a dot per evaluation
  const path = pts => pts.filter(p => inRange(p[1])).map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
  for (const s of series)
    if (s.band && s.band.length > 1) {
      const ok = s.band.filter(b => inRange(b.lo) && inRange(b.hi));
      const d = ok.map((b, i) => `${i ? "L" : "M"}${X(b.x).toFixed(1)},${Y(b.hi).toFixed(1)}`).join("") +
        ok.slice().reverse().map(b => `L${X(b.x).toFixed(1)},${Y(b.lo).toFixed(1)}`).join("") + "Z";
      svg.append(svgEl("path", {class: "band", d, fill: s.color}));
    }
  for (const s of series)
    if (s.train.length) svg.append(svgEl("path", {class: "train-line", d: path(s.train), stroke: s.color}));
  for (const s of series) {
    if (s.valid.length > 1) svg.append(svgEl("path", {class: "valid-line", d: path(s.valid), stroke: s.color}));
    for (const p of s.valid.filter(q => inRange(q[1]))) {
      const dot = svgEl("circle", {class: "valid-point", cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 3.6, fill: s.color});
      dot.append(svgEl("title", {}, `${s.label}: valid loss ${p[1].toFixed(4)} at step ${p[2]}`));
      svg.append(dot);
    }
  }
  drawLegend(svg, series, left + plotW + 20, top);
}

function drawLegend(svg, series, x, y) {
  const legend = svgEl("g", {class: "legend"});
  const clip = text => (text.length > 30 ? text.slice(0, 29) + "…" : text);
  series.forEach((s, i) => {
    const yy = y + 8 + i * 20;
    legend.append(svgEl("line", {x1: x, x2: x + 24, y1: yy, y2: yy, stroke: s.color, "stroke-width": 2.6}));
    const label = svgEl("text", {x: x + 32, y: yy + 4}, clip(s.label));
    label.append(svgEl("title", {}, s.label));
    legend.append(label);
  });
  const yy = y + 20 + series.length * 20;
  legend.append(svgEl("line", {x1: x, x2: x + 24, y1: yy, y2: yy, stroke: "#555", "stroke-width": 1}));
  legend.append(svgEl("text", {x: x + 32, y: yy + 4}, "train loss"));
  legend.append(svgEl("line", {x1: x, x2: x + 24, y1: yy + 18, y2: yy + 18, stroke: "#555", "stroke-width": 2.6}));
  legend.append(svgEl("circle", {cx: x + 12, cy: yy + 18, r: 3.6, fill: "#555"}));
  legend.append(svgEl("text", {x: x + 32, y: yy + 22}, "valid loss"));
  if (series.some(s => s.band)) {
    legend.append(svgEl("rect", {x, y: yy + 30, width: 24, height: 10, fill: "#555", opacity: 0.18}));
    legend.append(svgEl("text", {x: x + 32, y: yy + 40}, "lowest to highest seed"));
  }
  svg.append(legend);
}

function setUpChart() {
  for (const id of ["x-axis", "log-y", "spread"])
    $(id).addEventListener("change", () => {
      page.chartDirty = true;
      writeHash();
      drawChart();
    });
}

// ---- a grid's report -------------------------------------------------------------------

function updateGridChoices(grids) {
  const select = $("grid");
  const withReport = grids.filter(g => g.report);
  const have = [...select.options].slice(1).map(o => o.value);
  if (have.join("\n") === withReport.map(g => g.id).join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(el("option", {value: ""}, "— choose a grid —"),
    ...withReport.map(g => el("option", {value: g.id, title: g.id}, g.name)));
  select.value = withReport.some(g => g.id === chosen) ? chosen : "";
}

async function showReport() {
  const id = $("grid").value, box = $("report");
  showError($("report-error"), null);
  if (!id) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(el("p", {class: "muted"}, "Loading the report…"));
  try {
    const answer = await fetchJSON(`/api/report?grid=${encodeURIComponent(id)}`);
    if ($("grid").value !== id) return;  // another grid was chosen meanwhile
    box.innerHTML = renderMarkdown(answer.markdown, {base: answer.base});
  } catch (error) {
    box.replaceChildren();
    showError($("report-error"), error);
  }
}

// ---- attention maps --------------------------------------------------------------------

function updateAttentionRuns() {
  const select = $("attn-run");
  const done = page.order.map(id => page.runs.get(id)).filter(r => r.status === "finished" || r.status === "interrupted");
  const have = [...select.options].map(o => o.value);
  if (have.join("\n") === done.map(r => r.id).join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(...done.map(r => el("option", {value: r.id, title: r.id}, `${r.name} (${r.status})`)));
  if (done.some(r => r.id === chosen)) select.value = chosen;
  $("attn-go").disabled = !done.length;
}

async function showAttention() {
  const run = $("attn-run").value, text = $("attn-text").value, button = $("attn-go");
  showError($("attn-error"), null);
  if (!run) {
    showError($("attn-error"), new Error("no finished run to look at yet"));
    return;
  }
  button.disabled = true;
  button.textContent = "computing…";
  try {
    const answer = await fetchJSON("/api/attention", {run, text});
    drawAttention(answer);
  } catch (error) {
    showError($("attn-error"), error);
  } finally {
    button.disabled = false;
    button.textContent = "show attention";
  }
}

function drawAttention(answer) {
  const out = $("attn-out");
  out.replaceChildren();
  if (answer.translation !== null && answer.translation !== undefined)
    out.append(el("p", {class: "translation"}, el("strong", {}, "translation: "), answer.translation));
  for (const site of answer.sites) {
    const about = [site.variant, site.note].filter(Boolean).join("; ");
    const box = el("div", {class: "site", "data-site": site.name},
      el("h3", {}, site.name + " ", el("span", {class: "muted"}, about ? `(${about})` : "")));
    const heads = el("div", {class: "heads"});
    site.heads.forEach((head, h) => {
      const facts = [`entropy ${head.entropy.toFixed(3)} nats/row`];
      if (head.diagonal_mass !== null && head.diagonal_mass !== undefined) facts.push(`diagonal mass ${head.diagonal_mass.toFixed(3)}`);
      heads.append(el("div", {class: "figure", "data-head": h},
        el("h4", {}, `head ${h} `, el("span", {class: "shape"}, facts.join(", "))),
        heatmap(head.probs, {name: `${site.name}.h${h}`, unit: true, rowLabels: site.queries, colLabels: site.keys,
                             compact: site.keys.length > 10, diagonal: head.diagonal_mass !== null && head.diagonal_mass !== undefined})));
    });
    box.append(heads);
    out.append(box);
  }
}

function setUpAttention() {
  $("attn-go").addEventListener("click", showAttention);
  $("attn-text").addEventListener("keydown", event => {
    if (event.key === "Enter") showAttention();
  });
}

// ---- polling ---------------------------------------------------------------------------

async function poll() {
  try {
    const data = await fetchJSON("/api/runs");
    showError($("runs-error"), null);
    updateRuns(data);
    await refreshMetrics();
    drawChart();
    $("runs-status").textContent = `${data.runs.length} runs in ${data.roots.length} folder${data.roots.length === 1 ? "" : "s"}; ` +
      `read at ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    showError($("runs-error"), error);
  }
  setTimeout(poll, POLL_MS);
}

setUpTable();
setUpChart();
setUpAttention();
$("grid").addEventListener("change", () => {
  writeHash();
  showReport();
});
poll();
