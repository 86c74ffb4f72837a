// apps/web/explorer.js — the gradient explorer at `/`: one attention head whose matrices you
// edit. Each edit sends them to POST /api/grad (what `attnlab inspect grad --json` prints for
// those flags) and draws the answer: one column per variant, with S, P, G, the gradients, the
// two paths into Q for QQᵀ, and the checks. The page's whole state is in the URL after '#':
//
//   /#variant=qq&causal=0&seed=1&q=1%3B%202&dout=1%200%3B%200%201    (the tutorial's §1 head)

"use strict";

const VARIANT_LISTS = {qk: ["qk"], qq: ["qq"], "qq-noself": ["qq-noself"], both: ["qk", "qq"], all: ["qk", "qq", "qq-noself"]};

const VARIANT_NOTES = {
  qk: "S = Q Kᵀ/√d: queries and keys are separate matrices, so each gets one path: dQ = G K/√d, dK = Gᵀ Q/√d.",
  qq: "S = Q Qᵀ/√d: K is Q itself. Q enters the product twice, and the tape adds both paths into dQ.",
  "qq-noself": "qq with each token's own score masked (as in Reformer): a token attends only to the others.",
};

// The editors' matrices as rows of cell texts (what is typed; sent as typed). dout is dL/dP
// without V and dL/dO with V; both are kept, so ticking "with V" back and forth loses nothing.
const state = {
  variant: "both", causal: false, seed: 1, withV: false, withO: false,
  Q: [], K: [], V: [], W_o: [], dP: [], dO: [],
};

let latestRequest = 0;  // only the newest answer is drawn
let renders = 0;

const $ = id => document.getElementById(id);

// ---- matrices as text ------------------------------------------------------------------

// "1 2; 3 4" → [["1","2"],["3","4"]] (rows by ';' or new lines, values by spaces or commas).
function parseMatrixText(text) {
  return text.split(/[;\n]/).map(row => row.split(/[\s,]+/).filter(Boolean)).filter(row => row.length);
}

// [["1","2"],["3","4"]] → "1 2; 3 4"; null when nothing is typed at all.
function matrixText(rows) {
  if (!rows.length || rows.every(row => row.every(cell => !cell.trim()))) return null;
  return rows.map(row => row.map(cell => cell.trim()).join(" ")).join("; ");
}

function shapeOf(rows) {
  return [rows.length, rows.length ? rows[0].length : 0];
}

// Small deterministic numbers (one decimal in [-1, 1]) from the seed, for V, W_o and dL/dO: inputs
// you can change, not results. salt tells the matrices apart; mulberry32 makes the sequence.
function smallNumbers(rows, cols, seed, salt) {
  let s = (Math.imul(seed + 1, 2654435761) ^ Math.imul(salt, 40503)) >>> 0;
  const next = () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({length: rows}, () => Array.from({length: cols}, () => String(Math.round((next() * 2 - 1) * 10) / 10)));
}

// rows resized to r × c: what fits is kept, the rest taken from fill (an r × c matrix).
function resized(rows, r, c, fill) {
  return fill.map((fillRow, i) => fillRow.map((x, j) => (rows[i] && rows[i][j] !== undefined ? rows[i][j] : x)));
}


const SALT = {K: 2, V: 3, W_o: 4, dO: 5, dP: 6, Q: 7};

function usesK() {
  return VARIANT_LISTS[state.variant].includes("qk");
}

// Fills what the current settings need but is missing (K for qk; V, W_o, dL/dO with V), in
// shapes that fit Q: small numbers from the seed (W_o only when asked for: O = P V without it).
function completeState() {
  const [t, d] = shapeOf(state.Q);
  if (usesK() && shapeOf(state.K).join() !== shapeOf(state.Q).join())
    state.K = resized(state.K, t, d, smallNumbers(t, d, state.seed, SALT.K));
  if (shapeOf(state.dP).join() !== [t, t].join())
    state.dP = resized(state.dP, t, t, smallNumbers(t, t, state.seed, SALT.dP));
  if (state.withV) {
    if (state.V.length !== t) state.V = resized(state.V, t, d, smallNumbers(t, d, state.seed, SALT.V));
    const dv = shapeOf(state.V)[1];
    if (state.withO && state.W_o.length !== dv) state.W_o = resized(state.W_o, dv, dv, smallNumbers(dv, dv, state.seed, SALT.W_o));
    const out = state.withO ? shapeOf(state.W_o)[1] : dv;
    if (shapeOf(state.dO).join() !== [t, out].join())
      state.dO = resized(state.dO, t, out, smallNumbers(t, out, state.seed, SALT.dO));
  }
}

// tokens × d changed by hand: every matrix takes the new shape, keeping what fits.
function resizeAll(t, d) {
  const fit = (name, r, c) => { state[name] = resized(state[name], r, c, smallNumbers(r, c, state.seed, SALT[name])); };
  fit("Q", t, d);
  if (state.K.length || usesK()) fit("K", t, d);
  fit("dP", t, t);
  if (state.withV || state.V.length) {
    fit("V", t, d);
    if (state.withO) fit("W_o", d, d);
    fit("dO", t, d);
  }
}

// ---- the URL ---------------------------------------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const get = name => params.get(name);
  const number = (name, fallback, lo, hi) => {
    const v = parseInt(get(name), 10);
    return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
  };
  return {
    variant: VARIANT_LISTS[get("variant")] ? get("variant") : "both",
    causal: get("causal") === "1" || get("causal") === "true",
    seed: number("seed", 1, 0, 2 ** 31 - 1),
    tokens: number("tokens", 3, 1, 8),
    dim: number("dim", 2, 1, 8),
    q: get("q"), k: get("k"), v: get("v"), o: get("o"), dout: get("dout"),
  };
}

function writeHash() {
  const parts = [`variant=${state.variant}`, `causal=${state.causal ? 1 : 0}`, `seed=${state.seed}`];
  const add = (name, rows) => {
    const text = matrixText(rows);
    if (text !== null) parts.push(`${name}=${encodeURIComponent(text)}`);
  };
  add("q", state.Q);
  if (state.K.length) add("k", state.K);
  if (state.withV) {
    add("v", state.V);
    if (state.withO) add("o", state.W_o);
  }
  add("dout", state.withV ? state.dO : state.dP);
  history.replaceState(null, "", "#" + parts.join("&"));
}

// ---- the editors -----------------------------------------------------------------------

const EDITORS = [  // editor id, the matrix in state it shows
  {id: "edit-Q", key: () => "Q"},
  {id: "edit-K", key: () => "K"},
  {id: "edit-V", key: () => "V"},
  {id: "edit-W_o", key: () => "W_o"},
  {id: "edit-dout", key: () => (state.withV ? "dO" : "dP")},
];

function buildEditors() {
  $("edit-K").hidden = !usesK();
  $("edit-V").hidden = !state.withV;
  $("edit-W_o").hidden = !(state.withV && state.withO);
  $("with-o").disabled = !state.withV;
  $("edit-dout").querySelector(".name").textContent = state.withV ? "dL/dO" : "dL/dP";
  for (const editor of EDITORS) {
    const box = $(editor.id), key = editor.key();
    const rows = state[key];
    const [r, c] = shapeOf(rows);
    box.querySelector(".shape").textContent = `(${r}×${c})`;
    const grid = box.querySelector(".grid");
    grid.style.gridTemplateColumns = `repeat(${c}, auto)`;
    grid.replaceChildren();
    rows.forEach((row, i) => row.forEach((cell, j) => {
      const input = el("input", {class: "cell", "data-row": i, "data-col": j, value: cell, inputmode: "decimal",
                                 spellcheck: "false", "aria-label": `${key} row ${i + 1} column ${j + 1}`});
      input.addEventListener("input", event => {
        state[editor.key()][i][j] = input.value;
        compute(event.timeStamp || performance.now());
      });
      input.addEventListener("keydown", event => moveFocus(event, grid, i, j, r));
      grid.append(input);
    }));
  }
  $("tokens").value = shapeOf(state.Q)[0];
  $("dim").value = shapeOf(state.Q)[1];
  $("loss-note").textContent = state.withV
    ? (state.withO ? "O = P V W_o and L = Σ O ⊙ dL/dO: the upstream gradient reaches P through V and W_o."
                   : "O = P V and L = Σ O ⊙ dL/dO: the upstream gradient reaches P through V.")
    : "L = Σ P ⊙ dL/dP: with dL/dP the identity, L = Σᵢ Pᵢᵢ, how much each token attends to itself.";
}

// Up and down arrows move between rows of an editor (left and right stay within the text).
function moveFocus(event, grid, i, j, rows) {
  const step = event.key === "ArrowUp" ? -1 : event.key === "ArrowDown" || event.key === "Enter" ? 1 : 0;
  if (!step || i + step < 0 || i + step >= rows) return;
  event.preventDefault();
  grid.querySelector(`input[data-row="${i + step}"][data-col="${j}"]`).focus();
}

// ---- asking the server -----------------------------------------------------------------

function requestBody() {
  const body = {variant: state.variant, causal: state.causal, seed: state.seed, q: matrixText(state.Q)};
  if (usesK()) body.k = matrixText(state.K);
  if (state.withV) {
    body.v = matrixText(state.V);
    if (state.withO) body.o = matrixText(state.W_o);
  }
  body.dout = matrixText(state.withV ? state.dO : state.dP);
  for (const name of ["k", "v", "o", "dout"])
    if (body[name] === null) delete body[name];  // nothing typed: not given (the server draws dL/dP from the seed)
  return body;
}

function clearErrors() {
  for (const e of document.querySelectorAll(".error")) e.textContent = "";
}

function showApiError(error) {
  clearErrors();
  const beside = error.field ? document.querySelector(`.error[data-field="${error.field}"]`) : null;
  showError(beside && !beside.closest("[hidden]") ? beside : $("general-error"), error);
}

// Sends what the editors hold and draws the answer, unless a newer request was sent meanwhile.
// A 400 keeps the last good results and shows the message beside the editor it is about.
async function compute(startedAt) {
  writeHash();
  const id = ++latestRequest;
  try {
    const answer = await fetchJSON("/api/grad", requestBody());
    if (id !== latestRequest) return;
    clearErrors();
    drawResults(answer);
    markRendered(startedAt);
  } catch (error) {
    if (id !== latestRequest) return;
    if (error.status === 503) {  // busy: try again shortly, if nothing newer came
      setTimeout(() => { if (id === latestRequest) compute(startedAt); }, 300);
      return;
    }
    showApiError(error);
  }
}

function markRendered(startedAt) {
  const ms = Math.max(0, Math.round(performance.now() - startedAt));
  renders++;
  const status = $("status");
  status.dataset.renders = String(renders);
  status.dataset.latencyMs = String(ms);
  status.textContent = `updated in ${ms} ms`;
}

// The random example of `inspect grad --tokens T --dim D --seed S`: its Q = X W_q, K = X W_k and
// dL/dP become the editors' contents (to 6 significant digits: their numbers have at most 4 decimals).
async function randomExample(startedAt) {
  const tokens = clampInput("tokens", 1, 8), dim = clampInput("dim", 1, 8);
  const id = ++latestRequest;
  try {
    const answer = await fetchJSON("/api/grad", {variant: "qk", tokens, dim, seed: state.seed, causal: state.causal});
    if (id !== latestRequest) return;
    const m = answer[0].matrices;
    const text = rows => rows.map(row => row.map(v => (v === null ? "0" : readableNumber(v))));
    state.Q = text(m.Q);
    state.K = text(m.K);
    state.dP = text(m["dL/dP"]);
    if (state.withV) {
      state.V = smallNumbers(tokens, dim, state.seed, SALT.V);
      state.W_o = state.withO ? smallNumbers(dim, dim, state.seed, SALT.W_o) : [];
      state.dO = smallNumbers(tokens, dim, state.seed, SALT.dO);
    }
    clearErrors();
    buildEditors();
    compute(startedAt);
  } catch (error) {
    if (id === latestRequest) showApiError(error);
  }
}

function clampInput(id, lo, hi) {
  const v = parseInt($(id).value, 10);
  const clamped = Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : lo;
  $(id).value = clamped;
  return clamped;
}

// ---- drawing the answer ----------------------------------------------------------------

const TITLES = {
  S: variant => (variant === "qk" ? "S = Q Kᵀ/√d" : "S = Q Qᵀ/√d"),
  P: () => "P = softmax(S)",
  O: (variant, r) => (r.matrices.W_o ? "O = P V W_o" : "O = P V"),
  G: () => "G = dL/dS",
  "dQ as query": () => "dQ as query = G·Q/√d",
  "dQ as key": () => "dQ as key = Gᵀ·Q/√d",
  dQ: () => "dQ", dK: () => "dK", dV: () => "dV", dW_o: () => "dW_o",
};

// One colour scale per matrix name across the columns (and dQ's two paths on dQ's scale), so
// that equal colours are equal numbers: qq's small G looks small next to qk's.
function sharedScales(answer) {
  const scales = {};
  for (const r of answer)
    for (const [name, m] of Object.entries(r.matrices)) {
      const key = name.startsWith("dQ") ? "dQ" : name;
      scales[key] = Math.max(scales[key] || 0, maxAbs(m));
    }
  return scales;
}

function figure(r, name, scales) {
  const m = r.matrices[name];
  const [rows, cols] = shapeOf(m);
  return el("div", {class: "figure", "data-name": name},
    el("h4", {}, TITLES[name](r.variant, r) + " ", el("span", {class: "shape"}, `(${rows}×${cols})`)),
    heatmap(m, {name, unit: name === "P", max: scales[name.startsWith("dQ") ? "dQ" : name],
                diagonal: (name === "S" || name === "P") && rows === cols}));
}

function figures(r, names, scales) {
  return el("div", {class: "row"}, ...names.filter(n => r.matrices[n]).map(n => figure(r, n, scales)));
}

// qq's dQ as the sum of its two paths, side by side: as query + as key = dQ.
function pathsBlock(r, scales) {
  return el("div", {},
    el("div", {class: "paths"},  // a sign stays with the matrix after it when the line wraps
      figure(r, "dQ as query", scales),
      el("div", {class: "term"}, el("span", {class: "op"}, "+"), figure(r, "dQ as key", scales)),
      el("div", {class: "term"}, el("span", {class: "op"}, "="), figure(r, "dQ", scales))),
    el("p", {class: "caption"}, "∂Q = (G + Gᵀ)Q/√d: Q is the query of row i and the key of column i, " +
      "so its gradient has two paths, and the tape adds them."));
}

function variantColumn(r, scales) {
  const section = el("section", {"data-variant": r.variant},
    el("h2", {}, r.variant),
    el("p", {class: "note"}, VARIANT_NOTES[r.variant] || ""),
    el("h3", {}, "Forward"),
    figures(r, ["S", "P", "O"], scales));
  if (r.causal)
    section.append(el("p", {class: "note"}, "Causal mask: scores above the diagonal get −∞ before the softmax, " +
      "so P is 0 there (S is shown before the mask)."));
  section.append(el("h3", {}, "Backward"), figures(r, ["G"], scales));
  if (r.matrices["dQ as query"]) section.append(pathsBlock(r, scales));
  else section.append(figures(r, ["dQ", "dK"], scales));
  section.append(figures(r, ["dV", "dW_o"], scales));
  section.append(el("h3", {}, "Checks"), checksList(r));
  return section;
}

function exp2(v) {
  return v === null || v === undefined ? "—" : v === 0 ? "0" : v.toExponential(2);
}

function fixed(values, digits) {
  return values.map(v => (v === null ? "—" : v.toFixed(digits))).join("  ");
}

// One line of the checks: a mark (✓ small, ✗ should be small and is not, – no claim) and text.
function checkItem(name, verdict, text) {
  const marks = {ok: "✓", bad: "✗", info: "–"};
  return el("li", {class: "check", "data-check": name, "data-ok": verdict === "ok" ? "1" : "0"},
    el("span", {class: "mark " + verdict}, marks[verdict]), text);
}

// small: a check that must be ~0 (float rounding); info: a number that need not be 0.
const small = (v, limit = 1e-4) => (v !== null && v !== undefined && Math.abs(v) < limit ? "ok" : "bad");
const smallOrInfo = v => (v !== null && v !== undefined && Math.abs(v) < 1e-4 ? "ok" : "info");

function checksList(r) {
  const c = r.checks, qq = r.variant !== "qk";
  const list = el("ul", {class: "checks"});
  list.append(checkItem("identity_error", small(c.identity_error), qq
    ? `dQ from the tape vs (G + Gᵀ)Q/√d by hand: max |difference| = ${exp2(c.identity_error)}`
    : `dQ vs G K/√d and dK vs Gᵀ Q/√d by hand: max |difference| = ${exp2(c.identity_error)}`));
  list.append(qq
    ? checkItem("symmetry_error", small(c.symmetry_error), `S symmetric: max |S − Sᵀ| = ${exp2(c.symmetry_error)}`)
    : checkItem("symmetry_error", smallOrInfo(c.symmetry_error),
                `S symmetric? max |S − Sᵀ| = ${c.symmetry_error.toFixed(4)} (Q Kᵀ need not be)`));
  if (c.diagonal_error !== undefined)
    list.append(checkItem("diagonal_error", small(c.diagonal_error),
                          `diagonal Sᵢᵢ vs |qᵢ|²/√d: max |difference| = ${exp2(c.diagonal_error)}`));
  if (c.eigenvalues) {
    const largest = Math.max(1, ...c.eigenvalues.map(Math.abs));  // rounding grows with S
    const psd = c.eigenvalues.every(e => e >= -1e-5 * largest);
    list.append(checkItem("eigenvalues", psd ? "ok" : "bad",
      `eigenvalues of S: ${fixed(c.eigenvalues, 4)} (all ≥ 0 up to rounding: S = Q Qᵀ/√d is positive semi-definite)`));
  }
  if (c.masked_asymmetry !== undefined)
    list.append(checkItem("masked_asymmetry", smallOrInfo(c.masked_asymmetry),
      `causal mask: max |P − Pᵀ| = ${c.masked_asymmetry.toFixed(4)} (masked scores are not symmetric${qq ? ", even though Q Qᵀ is" : ""})`));
  const S = r.matrices.S;
  list.append(checkItem("diagonal_s", "info", `diagonal of S: ${fixed(S.map((row, i) => row[i]), 4)}`));
  const share = c.diagonal_share || [];
  const mean = share.reduce((a, b) => a + b, 0) / Math.max(1, share.length);
  list.append(checkItem("diagonal_share", "info", `diagonal of P (each token's attention to itself): ${fixed(share, 3)} ` +
    `(mean ${mean.toFixed(3)}${r.variant === "qq-noself" ? "; 0 wherever another token is visible" : ""})`));
  const fd = c.finite_differences || {};
  // float32 central differences with h = 0.005 agree with the tape to about 1e-3: 1e-2 is the bar
  list.append(checkItem("finite_differences", small(fd.max_relative_error, 1e-2),
    `finite differences (h = ${fd.step}, ${fd.entries} of ${fd.of} entries): max |tape − numeric| / max(1, |·|) = ` +
    exp2(fd.max_relative_error)));
  return list;
}

function drawResults(answer) {
  const box = $("results");
  const left = box.scrollLeft;
  const scales = sharedScales(answer);
  box.replaceChildren(...answer.map(r => variantColumn(r, scales)));
  box.scrollLeft = left;
}

// ---- starting, and the controls --------------------------------------------------------

function loadFromHash(startedAt) {
  const h = readHash();
  state.variant = h.variant;
  state.causal = h.causal;
  state.seed = h.seed;
  state.withV = h.v !== null;
  state.withO = state.withV && h.o !== null;
  $("variant").value = state.variant;
  $("causal").checked = state.causal;
  $("seed").value = state.seed;
  $("with-v").checked = state.withV;
  $("with-o").checked = state.withO;
  $("tokens").value = h.tokens;
  $("dim").value = h.dim;
  const rows = text => (text === null ? [] : parseMatrixText(text));
  state.K = rows(h.k);
  state.V = rows(h.v);
  state.W_o = state.withO ? rows(h.o) : [];
  state.dP = state.withV ? [] : rows(h.dout);
  state.dO = state.withV ? rows(h.dout) : [];
  if (h.q === null) {  // no matrices in the link: the random example of tokens, dim and seed
    state.Q = [];
    randomExample(startedAt);
    return;
  }
  state.Q = rows(h.q);
  completeState();
  buildEditors();
  compute(startedAt);
}

function setUpControls() {
  $("variant").addEventListener("change", event => {
    state.variant = $("variant").value;
    completeState();
    buildEditors();
    compute(event.timeStamp);
  });
  $("causal").addEventListener("change", event => {
    state.causal = $("causal").checked;
    compute(event.timeStamp);
  });
  $("with-v").addEventListener("change", event => {
    state.withV = $("with-v").checked;
    completeState();
    buildEditors();
    compute(event.timeStamp);
  });
  $("with-o").addEventListener("change", event => {
    state.withO = $("with-o").checked;
    if (!state.withO) state.W_o = [];
    completeState();
    buildEditors();
    compute(event.timeStamp);
  });
  for (const id of ["tokens", "dim"])
    $(id).addEventListener("change", event => {
      resizeAll(clampInput("tokens", 1, 8), clampInput("dim", 1, 8));
      completeState();
      buildEditors();
      compute(event.timeStamp);
    });
  $("seed").addEventListener("change", () => {
    state.seed = Math.max(0, parseInt($("seed").value, 10) || 0);
    $("seed").value = state.seed;
    writeHash();
  });
  $("random").addEventListener("click", event => {
    state.seed = Math.max(0, parseInt($("seed").value, 10) || 0);
    randomExample(event.timeStamp);
  });
  $("copy-link").addEventListener("click", copyLink);
  window.addEventListener("hashchange", () => loadFromHash(performance.now()));  // a link pasted into this tab
}

async function copyLink() {
  const button = $("copy-link");
  try {
    await navigator.clipboard.writeText(location.href);
  } catch (e) {  // no clipboard API (a plain-http address other than localhost): the old way
    const area = el("textarea", {}, location.href);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "link copied";
  setTimeout(() => { button.textContent = "copy link"; }, 1500);
}

setUpControls();
loadFromHash(performance.now());
