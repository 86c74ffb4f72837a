// apps/web/common.js — helpers shared by the pages of `attnlab serve`: talking to the server,
// formatting numbers, drawing a matrix as a heatmap table, rendering markdown.
//
//   const answer = await fetchJSON("/api/grad", {variant: "qq", q: "1; 2"});  // throws ApiError
//   box.append(heatmap(answer[0].matrices.P, {name: "P", unit: true}));
//   div.innerHTML = renderMarkdown(text, {base: "/files/0/grid/"});

"use strict";

// ---- talking to the server ------------------------------------------------------------

// An answer with an error status: the server's one-line message, the input it is about
// ("q", "k", …, or "" when none) and the HTTP status (0: the server did not answer).
class ApiError extends Error {
  constructor(message, field, status) {
    super(message);
    this.field = field || "";
    this.status = status;
  }
}

// GET url (or POST body as JSON when a body is given); the parsed answer, or an ApiError
// carrying the server's {"error", "field"}.
async function fetchJSON(url, body) {
  const init = body === undefined ? {} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new ApiError("the server did not answer (is attnlab serve still running?)", "", 0);
  }
  const text = await response.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch (e) {
    if (response.ok) throw new ApiError(`${url}: the answer is not JSON`, "", response.status);
  }
  if (!response.ok) {
    const message = data && data.error ? data.error : `${url}: HTTP ${response.status}`;
    throw new ApiError(message, data && data.field, response.status);
  }
  return data;
}

// GET url as text (a markdown file); an ApiError when it is not there.
async function fetchText(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new ApiError("the server did not answer (is attnlab serve still running?)", "", 0);
  }
  if (!response.ok) throw new ApiError(`${url}: HTTP ${response.status}`, "", response.status);
  return response.text();
}

// Puts an error's message into elem (an element of class "error"); null or "" clears it.
function showError(elem, error) {
  if (!elem) return;
  elem.textContent = error ? (error.message || String(error)) : "";
}

// ---- small DOM and number helpers -----------------------------------------------------

// el("td", {class: "num", "data-key": "step"}, "12 / 100"): an element with attributes and children.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {}))
    if (value !== null && value !== undefined && value !== false) e.setAttribute(name, value === true ? "" : value);
  for (const child of children)
    if (child !== null && child !== undefined) e.append(child);
  return e;
}

function escapeHTML(text) {
  return String(text).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

// A number rounded to 3 significant digits, plainly: 0.0452, -1.21, 19, 2.98e-8; null "—".
function formatSig(v, digits = 3) {
  if (v === null || v === undefined) return "—";
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) return v.toExponential(digits - 1).replace(/\.?0+e/, "e").replace("e+", "e");
  return String(Number(v.toPrecision(digits)));
}

// A number as a person would type it: 6 significant digits, no trailing zeros
// (-0.27600002288818359 → "-0.276"; the random example's numbers have at most 4 decimals).
function readableNumber(v) {
  return String(Number(v.toPrecision(6)));
}

// ---- heatmaps ---------------------------------------------------------------------------

// White → dark blue (#08306b) for t in [0, 1]: the colours of `inspect grad --svg`.
function blueScale(t) {
  t = Math.min(1, Math.max(0, t));
  return [255 - t * (255 - 8), 255 - t * (255 - 48), 255 - t * (255 - 107)];
}

// Blue (negative) – white (0) – red (positive) for t in [-1, 1].
function divergingScale(t) {
  t = Math.min(1, Math.max(-1, t));
  const far = t < 0 ? [33, 102, 172] : [178, 24, 43];
  const a = Math.abs(t);
  return far.map(c => 255 - a * (255 - c));
}

function cssColor(rgb) {
  return `rgb(${rgb.map(Math.round).join(",")})`;
}

// Black text on a light cell, white on a dark one (relative luminance).
function textColorOn(rgb) {
  const lin = rgb.map(c => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
  });
  const luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  return luminance < 0.33 ? "#fff" : "#000";
}

// The largest |value| of a matrix (list of rows; nulls skipped).
function maxAbs(matrix) {
  let m = 0;
  for (const row of matrix)
    for (const v of row)
      if (v !== null && Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

// A matrix (list of rows of numbers) as <table class="heatmap" data-matrix=NAME>. Each <td>
// carries data-row, data-col and data-value (the number as the JSON gave it) and shows it to 3
// significant digits. opts:
//   name       data-matrix
//   unit       true: white → dark blue over [0, 1] (probabilities); otherwise blue/white/red
//              symmetric around 0, scaled by opts.max (default: this matrix's largest |value|)
//   max        the |value| that gets the darkest colour (share a scale between matrices)
//   rowLabels, colLabels   header cells (token texts); none when absent
//   diagonal   true: outline the cells i == j
//   compact    smaller cells (long attention maps)
function heatmap(matrix, opts = {}) {
  const table = el("table", {class: "heatmap" + (opts.compact ? " compact" : ""), "data-matrix": opts.name || ""});
  const scale = opts.unit ? 1 : (opts.max !== undefined ? opts.max : maxAbs(matrix));
  if (opts.colLabels) {
    const head = el("tr", {}, opts.rowLabels ? el("th") : null);
    for (const label of opts.colLabels) head.append(el("th", {class: "col-label", scope: "col"}, label));
    table.append(el("thead", {}, head));
  }
  const body = el("tbody");
  matrix.forEach((row, i) => {
    const tr = el("tr");
    if (opts.rowLabels) tr.append(el("th", {class: "row-label", scope: "row"}, opts.rowLabels[i]));
    row.forEach((v, j) => {
      const td = el("td", {"data-row": i, "data-col": j, "data-value": String(v)}, formatSig(v));
      if (v !== null && Number.isFinite(v)) {
        const rgb = opts.unit ? blueScale(v) : divergingScale(scale > 0 ? v / scale : 0);
        td.style.background = cssColor(rgb);
        td.style.color = textColorOn(rgb);
      }
      if (opts.diagonal && i === j) td.classList.add("diag");
      tr.append(td);
    });
    body.append(tr);
  });
  table.append(body);
  return table;
}

// ---- markdown ---------------------------------------------------------------------------
// Enough markdown for docs/tutorial.md and a grid's report.md: headings, paragraphs, pipe
// tables, lists (nested by indentation), fenced and indented code, block quotes, images and
// links (relative ones resolved against opts.base), `code`, **bold**, *italic*. All text is
// HTML-escaped; only http(s), mailto, relative and #anchor links are kept.
//
//   renderMarkdown(text, {base: "/files/0/grid/", rewriteURL: url => url})  →  HTML string

function slugify(text) {
  return text.toLowerCase().replace(/<[^>]*>/g, "").replace(/&[a-z#0-9]+;/g, "")
    .replace(/[^\p{L}\p{N}\s-]/gu, "").trim().replace(/\s+/g, "-");
}

// A link or image address: rewritten (opts.rewriteURL), then made absolute against opts.base
// when relative; "" when its scheme is not one we allow.
function resolveURL(url, opts) {
  if (opts.rewriteURL) url = opts.rewriteURL(url);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  if (scheme) return /^(https?|mailto)$/i.test(scheme[1]) ? url : "";
  if (url.startsWith("#") || url.startsWith("/") || !opts.base) return url;
  const absolute = new URL(url, new URL(opts.base, location.href));
  return absolute.origin === location.origin ? absolute.pathname + absolute.search + absolute.hash : absolute.href;
}

// Inline markdown of one block's text → HTML. Code spans, autolinks, images and links are cut
// out first and put back at the end (their text is not emphasis), the rest is escaped, then
// **bold** and *italic* (_x_ only between non-letters, so W_q and d_model stay as they are).
function renderInline(text, opts) {
  const kept = [];
  const keep = html => `\u0000${kept.push(html) - 1}\u0000`;
  const link = (url, label) => url ? `<a href="${escapeHTML(url)}">${label}</a>` : label;
  text = text.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (m, ticks, code) => keep(`<code>${escapeHTML(code.trim())}</code>`));
  text = text.replace(/<(https?:\/\/[^\s>]+)>/g, (m, url) => keep(link(resolveURL(url, opts), escapeHTML(url))));
  text = escapeHTML(text);
  // ![alt](src "title") and [label](href): alt and label may hold one level of brackets ("[qk] asymmetry")
  const target = String.raw`\(\s*([^\s)]+)(?:\s+&quot;[^)]*&quot;)?\s*\)`;
  text = text.replace(new RegExp(String.raw`!\[((?:[^\[\]]|\[[^\]]*\])*)\]` + target, "g"), (m, alt, src) => {
    const url = resolveURL(unescapeHTML(src), opts);
    return keep(`<img src="${escapeHTML(url)}" alt="${alt.replace(/\u0000\d+\u0000/g, "")}">`);
  });
  text = text.replace(new RegExp(String.raw`\[((?:[^\[\]]|\[[^\]]*\])*)\]` + target, "g"), (m, label, href) =>
    keep(link(resolveURL(unescapeHTML(href), opts), emphasis(label))));
  const restore = html => html.replace(/\u0000(\d+)\u0000/g, (m, i) => restore(kept[Number(i)]));  // kept pieces nest
  return restore(emphasis(text));
}

function emphasis(html) {
  html = html.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, "<strong>$1</strong>");
  html = html.replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, "$1<strong>$2</strong>");
  html = html.replace(/(^|[^*\w])\*(?=[^\s*])([^*]*?[^\s*])\*(?!\*)/g, "$1<em>$2</em>");
  return html.replace(/(^|[^\w])_(?=[^\s_])([^_]*?[^\s_])_(?!\w)/g, "$1<em>$2</em>");
}

function unescapeHTML(text) {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (m, name) => ({amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'"}[name]));
}

const MD_FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/;
const MD_HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const MD_RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const MD_ITEM = /^(\s*)([-*+]|\d+[.)])\s+/;
const MD_TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function indentOf(line) {
  return line.match(/^\s*/)[0].replace(/\t/g, "    ").length;
}

function tableCells(line) {
  let s = line.trim();
  if (s.startsWith("|")) s = s.slice(1);
  if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
  const cells = [];
  let cell = "", inCode = false;
  for (let i = 0; i < s.length; i++) {  // a | inside `code` does not split
    const c = s[i];
    if (c === "`") inCode = !inCode;
    if (c === "\\" && s[i + 1] === "|") { cell += "|"; i++; continue; }
    if (c === "|" && !inCode) { cells.push(cell.trim()); cell = ""; continue; }
    cell += c;
  }
  cells.push(cell.trim());
  return cells;
}

// Does this line begin a block other than a paragraph (so it ends a running paragraph)?
function startsBlock(line, next) {
  return MD_FENCE.test(line) || MD_HEADING.test(line) || MD_RULE.test(line) || /^\s*>/.test(line) ||
    /^\s{0,3}([-*+]|\d+[.)])\s+/.test(line) || (line.includes("|") && next !== undefined && MD_TABLE_RULE.test(next) && next.includes("-"));
}

function renderBlocks(lines, opts) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    let m;
    if ((m = MD_FENCE.exec(line))) {  // ``` fenced code ```
      const fence = m[2], lang = m[3], code = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(fence); i++) code.push(lines[i]);
      i++;
      const cls = lang ? ` class="language-${escapeHTML(lang)}"` : "";
      out.push(`<pre><code${cls}>${escapeHTML(code.join("\n"))}</code></pre>`);
    } else if ((m = MD_HEADING.exec(line))) {
      const level = m[1].length, html = renderInline(m[2], opts);
      out.push(`<h${level} id="${escapeHTML(slugify(html))}">${html}</h${level}>`);
      i++;
    } else if (MD_RULE.test(line)) {
      out.push("<hr>");
      i++;
    } else if (line.includes("|") && i + 1 < lines.length && MD_TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      const head = tableCells(line);
      const aligns = tableCells(lines[i + 1]).map(c => c.endsWith(":") ? (c.startsWith(":") ? "center" : "right") : "");
      const cell = (tag, text, k) => `<${tag}${aligns[k] ? ` style="text-align:${aligns[k]}"` : ""}>${renderInline(text, opts)}</${tag}>`;
      const rows = [];
      for (i += 2; i < lines.length && lines[i].trim() && lines[i].includes("|"); i++)
        rows.push("<tr>" + tableCells(lines[i]).map((c, k) => cell("td", c, k)).join("") + "</tr>");
      out.push(`<table><thead><tr>${head.map((c, k) => cell("th", c, k)).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`);
    } else if (/^\s*>/.test(line)) {
      const quoted = [];
      for (; i < lines.length && lines[i].trim() && /^\s*>/.test(lines[i]); i++) quoted.push(lines[i].replace(/^\s*>\s?/, ""));
      out.push(`<blockquote>${renderBlocks(quoted, opts)}</blockquote>`);
    } else if ((m = MD_ITEM.exec(line)) && indentOf(line) < 4) {
      const [html, next] = renderList(lines, i, opts);
      out.push(html);
      i = next;
    } else if (indentOf(line) >= 4) {  // indented code
      const code = [];
      for (; i < lines.length && (indentOf(lines[i]) >= 4 || !lines[i].trim()); i++) code.push(lines[i].replace(/^( {4}|\t)/, ""));
      while (code.length && !code[code.length - 1].trim()) code.pop();
      out.push(`<pre><code>${escapeHTML(code.join("\n"))}</code></pre>`);
    } else {
      const para = [line.trim()];
      for (i++; i < lines.length && lines[i].trim() && !startsBlock(lines[i], lines[i + 1]); i++) para.push(lines[i].trim());
      out.push(`<p>${renderInline(para.join("\n"), opts)}</p>`);
    }
  }
  return out.join("\n");
}

// A list starting at lines[start]; its items' text is what follows the marker, plus the lines
// indented under it (rendered as blocks again, so lists nest). Returns [html, next line].
function renderList(lines, start, opts) {
  const first = MD_ITEM.exec(lines[start]);
  const indent = first[1].length, ordered = /\d/.test(first[2]);
  const items = [];
  let i = start, loose = false;
  while (i < lines.length) {
    const m = MD_ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const contentIndent = m[0].length;
    const body = [lines[i].slice(contentIndent)];
    for (i++; i < lines.length; i++) {
      const l = lines[i];
      if (!l.trim()) {  // a blank line: the item goes on only if the next text is indented under it
        const k = lines.slice(i + 1).findIndex(x => x.trim());
        if (k < 0 || indentOf(lines[i + 1 + k]) < Math.min(contentIndent, indent + 2)) break;
        body.push("");
        loose = true;
        continue;
      }
      const item = MD_ITEM.exec(l);
      if (item && item[1].length <= indent) break;
      if (indentOf(l) <= indent && startsBlock(l, lines[i + 1])) break;
      body.push(l.slice(Math.min(indentOf(l), contentIndent)));
    }
    items.push(body);
    let k = i;
    while (k < lines.length && !lines[k].trim()) k++;
    const again = k < lines.length ? MD_ITEM.exec(lines[k]) : null;
    if (!again || again[1].length !== indent) break;
    if (k > i) loose = true;
    i = k;
  }
  const tag = ordered ? "ol" : "ul";
  const startNumber = ordered ? parseInt(first[2], 10) : 1;
  const html = items.map(body => {
    let inner = renderBlocks(body, opts);
    if (!loose) inner = inner.replace(/^<p>([\s\S]*?)<\/p>/, "$1");
    return `<li>${inner}</li>`;
  }).join("\n");
  return [`<${tag}${ordered && startNumber !== 1 ? ` start="${startNumber}"` : ""}>${html}</${tag}>`, i];
}

function renderMarkdown(text, opts = {}) {
  return renderBlocks(text.replace(/\r\n?/g, "\n").split("\n"), opts);
}
