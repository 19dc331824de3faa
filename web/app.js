// The attention page of `attend serve`: translates through /api/translate and draws the
// attention of every hypothesis as a weight table, a head view and a grid of layers x heads, all
// on canvases (a 300 x 300 table is one canvas, not 90,000 DOM nodes). Exports PNG, SVG, JSON and
// CSV. Transcribes WAV files (/api/transcribe) and captions images (/api/caption) with the
// attention of each character or word. window.attend exposes the state for the browser tests.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  models: [],      // /api/models
  lines: [],       // per input line: {answers: [{model, result}], selected: [hyp index per answer]}
  focus: null,     // {line, answer}: the view the export buttons and pickers act on
  hover: null,     // {kind: "query" | "key", index}: highlighted in every view
  timings: null,
};
window.attend = state;

// ---- colour ----
function weightColour(w) {
  // white -> deep blue, perceptually even enough for [0, 1] weights
  const t = Math.max(0, Math.min(1, w));
  const r = Math.round(255 - t * (255 - 23));
  const g = Math.round(255 - t * (255 - 63));
  const b = Math.round(255 - t * (255 - 140));
  return `rgb(${r},${g},${b})`;
}

// ---- attention data ----
function sitesOf(hyp) { return (hyp && hyp.attention) || []; }

// The matrix a view shows: one head, or the mean over heads.
function matrixOf(site, head) {
  if (head !== "avg") return site.heads[Number(head)];
  const h = site.heads.length, rows = site.heads[0].length, cols = rows ? site.heads[0][0].length : 0;
  const m = [];
  for (let i = 0; i < rows; ++i) {
    const row = new Array(cols).fill(0);
    for (let k = 0; k < h; ++k) for (let j = 0; j < cols; ++j) row[j] += site.heads[k][i][j] / h;
    m.push(row);
  }
  return m;
}

// Token labels of a site: [query tokens (rows), key tokens (columns)].
function labelsOf(result, hyp, site) {
  const src = result.source_tokens;
  if (site.side === "encoder") return [src, src];
  if (site.kind === "self") return [hyp.decoder_inputs, hyp.decoder_inputs];
  return [hyp.tokens, src];
}

// ---- drawing ----
const FONT = '12px "DejaVu Sans", sans-serif';

function textWidth(ctx, labels) {
  let w = 0;
  for (const l of labels) w = Math.max(w, ctx.measureText(l).width);
  return Math.ceil(w) + 8;
}

// Sizes a canvas for CSS pixels width x height on this screen; returns its 2-D context.
function sizeCanvas(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = width + "px";
  canvas.style.height = height + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

// A sized canvas painted white, with the page's font and top-left text: where every view starts.
function blankCanvas(canvas, width, height) {
  const ctx = sizeCanvas(canvas, width, height);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.font = FONT;
  ctx.fillStyle = "#1d2330";
  ctx.textBaseline = "top";
  return ctx;
}

// The weight table: keys across (labels written upwards), queries down, numbers when they fit.
// The cells are one pixel each in an image scaled up without smoothing, so a 300 x 300 table is
// one drawImage; hovering redraws only the overlay (canvas.drawHover).
function drawTable(canvas, m, rows, cols) {
  let ctx = canvas.getContext("2d");
  ctx.font = FONT;
  const n = rows.length, k = cols.length;
  const cell = Math.max(3, Math.min(34, Math.floor(900 / Math.max(k, 1))));
  const left = Math.min(160, textWidth(ctx, rows)), top = Math.min(160, textWidth(ctx, cols));
  const width = left + k * cell + 2, height = top + n * cell + 2;
  ctx = blankCanvas(canvas, width, height);
  if (n && k) {
    const cells = document.createElement("canvas");
    cells.width = k;
    cells.height = n;
    const cctx = cells.getContext("2d");
    const img = cctx.createImageData(k, n);
    for (let i = 0; i < n; ++i)
      for (let j = 0; j < k; ++j) {
        const t = Math.max(0, Math.min(1, m[i][j])), o = 4 * (i * k + j);
        img.data[o] = Math.round(255 - t * 232);
        img.data[o + 1] = Math.round(255 - t * 192);
        img.data[o + 2] = Math.round(255 - t * 115);
        img.data[o + 3] = 255;
      }
    cctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cells, left, top, k * cell, n * cell);
  }
  if (cell >= 26) {
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = '10px "DejaVu Sans", sans-serif';
    for (let i = 0; i < n; ++i)
      for (let j = 0; j < k; ++j) {
        ctx.fillStyle = m[i][j] > 0.55 ? "#fff" : "#333";
        ctx.fillText(m[i][j].toFixed(2), left + (j + 0.5) * cell, top + (i + 0.5) * cell);
      }
  }
  ctx.font = FONT;
  ctx.fillStyle = "#1d2330";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  if (cell >= 9) for (let i = 0; i < n; ++i) ctx.fillText(rows[i], left - 4, top + (i + 0.5) * cell);
  if (cell >= 9) {
    for (let j = 0; j < k; ++j) {
      ctx.save();
      ctx.translate(left + (j + 0.5) * cell, top - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ctx.fillText(cols[j], 0, 0);
      ctx.restore();
    }
  }
  canvas.hitTest = (x, y) => {
    if (x < left && y >= top && y < top + n * cell) return { kind: "query", index: Math.floor((y - top) / cell) };
    if (y < top && x >= left && x < left + k * cell) return { kind: "key", index: Math.floor((x - left) / cell) };
    if (x >= left && y >= top && x < left + k * cell && y < top + n * cell)
      return { kind: "query", index: Math.floor((y - top) / cell) };
    return null;
  };
  canvas.drawHover = (overlay) => {
    const o = sizeCanvas(overlay, width, height);
    const hover = state.hover;
    if (!hover) return;
    o.strokeStyle = "#e8590c";
    o.lineWidth = 2;
    if (hover.kind === "query" && hover.index < n) o.strokeRect(left, top + hover.index * cell, k * cell, cell);
    if (hover.kind === "key" && hover.index < k) o.strokeRect(left + hover.index * cell, top, cell, n * cell);
  };
}

// The head view: queries on the left, keys on the right, a line per pair with opacity = weight.
// Hovering a token draws its lines strongly on the overlay over the faint base.
function drawHeads(canvas, m, rows, cols) {
  let ctx = canvas.getContext("2d");
  ctx.font = FONT;
  const n = rows.length, k = cols.length;
  const step = Math.max(3, Math.min(20, Math.floor(720 / Math.max(n, k, 1))));
  const lw = Math.min(160, textWidth(ctx, rows)), rw = Math.min(160, textWidth(ctx, cols));
  const gap = 220;
  const width = lw + gap + rw, height = Math.max(n, k) * step + 10;
  const y = (i) => 5 + (i + 0.5) * step;
  ctx = blankCanvas(canvas, width, height);
  ctx.lineWidth = 2;
  for (let i = 0; i < n; ++i)
    for (let j = 0; j < k; ++j) {
      const w = m[i][j];
      if (w < 0.01) continue;
      ctx.strokeStyle = `rgba(23,63,140,${w})`;
      ctx.beginPath();
      ctx.moveTo(lw, y(i));
      ctx.lineTo(lw + gap, y(j));
      ctx.stroke();
    }
  ctx.font = FONT;
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#1d2330";
  ctx.textAlign = "right";
  if (step >= 9) for (let i = 0; i < n; ++i) ctx.fillText(rows[i], lw - 4, y(i));
  ctx.textAlign = "left";
  if (step >= 9) for (let j = 0; j < k; ++j) ctx.fillText(cols[j], lw + gap + 4, y(j));
  canvas.hitTest = (x, yy) => {
    const i = Math.floor((yy - 5) / step);
    if (x < lw && i >= 0 && i < n) return { kind: "query", index: i };
    if (x > lw + gap && i >= 0 && i < k) return { kind: "key", index: i };
    return null;
  };
  canvas.drawHover = (overlay) => {
    const o = sizeCanvas(overlay, width, height);
    const hover = state.hover;
    if (!hover) return;
    o.fillStyle = "rgba(255,255,255,0.7)";  // fade the rest
    o.fillRect(lw, 0, gap, height);
    o.lineWidth = 2.5;
    const pairs = hover.kind === "query" ? (hover.index < n ? m[hover.index].map((w, j) => [hover.index, j, w]) : [])
                                         : (hover.index < k ? m.map((r, i) => [i, hover.index, r[hover.index]]) : []);
    for (const [i, j, w] of pairs) {
      if (w < 0.01) continue;
      o.strokeStyle = `rgba(232,89,12,${Math.max(0.15, w)})`;
      o.beginPath();
      o.moveTo(lw, y(i));
      o.lineTo(lw + gap, y(j));
      o.stroke();
    }
  };
}

// Every site x head as a small heatmap (the Transformer's layers at a glance).
function drawGrid(canvas, result, hyp) {
  const sites = sitesOf(hyp);
  const heads = Math.max(...sites.map((s) => s.heads.length));
  const size = 90, pad = 18, label = 120;
  const width = label + (heads + 1) * (size + pad), height = sites.length * (size + pad) + pad;
  const ctx = blankCanvas(canvas, width, height);
  for (let h = 0; h <= heads; ++h)
    ctx.fillText(h < heads ? `head ${h}` : "average", label + h * (size + pad), 2);
  sites.forEach((site, r) => {
    const y = pad + r * (size + pad);
    ctx.fillStyle = "#1d2330";
    ctx.textBaseline = "middle";
    ctx.fillText(site.name, 4, y + size / 2);
    for (let h = 0; h <= site.heads.length; ++h) {
      const m = matrixOf(site, h < site.heads.length ? h : "avg");
      const n = m.length, k = n ? m[0].length : 0;
      const cw = size / Math.max(k, 1), ch = size / Math.max(n, 1);
      const x = label + (h < site.heads.length ? h : heads) * (size + pad);
      for (let i = 0; i < n; ++i)
        for (let j = 0; j < k; ++j) {
          ctx.fillStyle = weightColour(m[i][j]);
          ctx.fillRect(x + j * cw, y + i * ch, Math.ceil(cw), Math.ceil(ch));
        }
      ctx.strokeStyle = "#ccc";
      ctx.strokeRect(x, y, size, size);
    }
  });
  canvas.hitTest = () => null;
  canvas.drawHover = (overlay) => sizeCanvas(overlay, width, height);
}

// ---- page state ----
function currentChoice() {
  return { view: $("view").value, site: $("site").value, head: $("head").value || "avg" };
}

function refreshPickers() {
  const f = state.focus;
  const site = $("site"), head = $("head");
  const keepSite = site.value, keepHead = head.value;
  site.innerHTML = "";
  head.innerHTML = "";
  if (!f) return;
  const answer = state.lines[f.line].answers[f.answer];
  const hyp = answer.result.hypotheses[state.lines[f.line].selected[f.answer]];
  const sites = sitesOf(hyp);
  for (const s of sites) site.add(new Option(s.name, s.name));
  if (sites.length) {
    const crosses = sites.filter((s) => s.kind === "cross");
    const last = crosses.length ? crosses[crosses.length - 1].name : sites[0].name;
    site.value = sites.some((s) => s.name === keepSite) ? keepSite : last;
    const chosen = sites.find((s) => s.name === site.value);
    head.add(new Option("average of heads", "avg"));
    for (let h = 0; h < chosen.heads.length; ++h) head.add(new Option(`head ${h}`, String(h)));
    head.value = [...head.options].some((o) => o.value === keepHead) ? keepHead : "avg";
  }
}

function renderAnswer(container, lineIndex, answerIndex) {
  const line = state.lines[lineIndex];
  const answer = line.answers[answerIndex];
  const result = answer.result;
  const sel = line.selected[answerIndex];
  container.innerHTML = "";
  const h = document.createElement("h3");
  h.textContent = answer.model;
  container.appendChild(h);
  result.hypotheses.forEach((hyp, i) => {
    const div = document.createElement("div");
    div.className = "hyp" + (i === sel ? " selected" : "");
    div.textContent = hyp.text || "(empty translation)";
    const sc = document.createElement("span");
    sc.className = "score";
    sc.textContent = hyp.score.toFixed(3);
    div.appendChild(sc);
    div.addEventListener("click", () => {
      line.selected[answerIndex] = i;
      state.focus = { line: lineIndex, answer: answerIndex };
      refreshPickers();
      render();
    });
    container.appendChild(div);
  });
  const hyp = result.hypotheses[sel];
  const sites = sitesOf(hyp);
  if (!sites.length) {
    const p = document.createElement("p");
    p.className = "noattention";
    p.textContent = "This model has no attention: one fixed context vector carries the whole source.";
    container.appendChild(p);
    return;
  }
  const choice = currentChoice();
  const site = sites.find((s) => s.name === choice.site) ||
               sites.filter((s) => s.kind === "cross").pop() || sites[0];
  const head = choice.head === "avg" || Number(choice.head) < site.heads.length ? choice.head : "avg";
  const m = matrixOf(site, head);
  const [rows, cols] = labelsOf(result, hyp, site);
  const canvas = document.createElement("canvas");
  canvas.className = "view " + choice.view + "-view";
  canvas.dataset.line = lineIndex;
  canvas.dataset.answer = answerIndex;
  canvas.dataset.site = site.name;
  canvas.dataset.rows = m.length;
  canvas.dataset.cols = m.length ? m[0].length : 0;
  if (choice.view === "heads") drawHeads(canvas, m, rows, cols);
  else if (choice.view === "grid") drawGrid(canvas, result, hyp);
  else drawTable(canvas, m, rows, cols);
  canvas.matrix = m;
  canvas.sites = sites;
  canvas.labels = { rows, cols, site: site.name, head };
  const overlay = document.createElement("canvas");
  overlay.className = "overlay";
  canvas.overlay = overlay;
  canvas.drawHover(overlay);
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    const hit = canvas.hitTest(e.clientX - r.left, e.clientY - r.top);
    state.focus = { line: lineIndex, answer: answerIndex };
    if (JSON.stringify(hit) !== JSON.stringify(state.hover)) {
      state.hover = hit;
      updateHover();
    }
  });
  canvas.addEventListener("click", () => {
    state.focus = { line: lineIndex, answer: answerIndex };
    refreshPickers();
  });
  const stack = document.createElement("div");
  stack.className = "stack";
  stack.appendChild(canvas);
  stack.appendChild(overlay);
  container.appendChild(stack);
}

// Redraws the hover overlays of every view (the bases stay as they are).
function updateHover() {
  for (const c of document.querySelectorAll("canvas.view")) c.drawHover(c.overlay);
}

function render() {
  const root = $("results");
  root.innerHTML = "";
  state.lines.forEach((line, li) => {
    const div = document.createElement("div");
    div.className = "line";
    const src = document.createElement("div");
    src.className = "source";
    src.textContent = line.answers[0].result.source_tokens.join("").replace(/\u2581/g, " ").trim();
    div.appendChild(src);
    const cols = document.createElement("div");
    cols.className = "columns";
    line.answers.forEach((_, ai) => {
      const col = document.createElement("div");
      col.className = "column";
      renderAnswer(col, li, ai);
      cols.appendChild(col);
    });
    div.appendChild(cols);
    root.appendChild(div);
  });
}

// ---- talking to the server ----
function setStatus(text, error, id = "status") {
  const s = $(id);
  s.textContent = text;
  s.classList.toggle("error", Boolean(error));
}

async function postTranslate(model, text) {
  const body = {
    model, text,
    beam: Number($("beam").value), nbest: Number($("nbest").value),
    length_penalty: Number($("alpha").value), attention: true,
  };
  const res = await fetch("/api/translate", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(json.error || `HTTP ${res.status}`);
  return json;
}

async function translate() {
  const text = $("text").value;
  if (!text.trim()) { setStatus("Type a sentence first.", true); return; }
  const models = [$("model").value];
  if ($("compare").value && $("compare").value !== models[0]) models.push($("compare").value);
  setStatus("translating...");
  $("translate").disabled = true;
  try {
    const answers = await Promise.all(models.map((m) => postTranslate(m, text)));
    const n = answers[0].results.length;
    state.lines = [];
    for (let i = 0; i < n; ++i)
      state.lines.push({
        answers: answers.map((a) => ({ model: a.model, result: a.results[i] })),
        selected: answers.map(() => 0),
      });
    state.timings = answers.map((a) => a.timings);
    state.focus = n ? { line: 0, answer: 0 } : null;
    state.hover = null;
    refreshPickers();
    render();
    const t = answers[0].timings;
    setStatus(`${n} line${n === 1 ? "" : "s"} in ${t.total_ms.toFixed(0)} ms ` +
              `(decode ${t.decode_ms.toFixed(0)}, attention ${t.attention_ms.toFixed(0)})`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $("translate").disabled = false;
  }
}

// The views, by the task of the models they use ("caption" models go to the captions view).
const VIEWS = ["translation", "speech", "caption"];

async function loadModels() {
  const res = await fetch("/api/models");
  const json = await res.json();
  state.models = json.models;
  for (const m of json.models) {
    const label = `${m.name} (${m.arch}, ${(m.parameters / 1e6).toFixed(2)}M)`;
    if (m.task === "speech") $("speech-model").add(new Option(label, m.name));
    else if (m.task === "caption") $("caption-model").add(new Option(label, m.name));
    else {
      $("model").add(new Option(label, m.name));
      $("compare").add(new Option(label, m.name));
    }
  }
  // A tab for each kind of model the server holds, shown when it holds more than one kind; the
  // page opens on the first kind held. A server that only watches a run has nothing to translate
  // with (showView hides the controls).
  const held = VIEWS.filter((v) => json.models.some((m) => taskOf(m) === v));
  for (const v of VIEWS) $(`tab-${v}`).hidden = !held.includes(v);
  $("tabs").hidden = held.length < 2;
  showView(held.length ? held[0] : "translation");
}

function taskOf(m) { return m.task === "speech" || m.task === "caption" ? m.task : "translation"; }

// ---- exports ----
function focusedCanvas() {
  const f = state.focus;
  if (!f) return null;
  return document.querySelector(`canvas.view[data-line="${f.line}"][data-answer="${f.answer}"]`);
}

function download(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function baseName(c) { return `attention-${c.dataset.line}-${c.labels.site}-${c.labels.head}`; }

function csvCell(s) { return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }

function exportCsv() {
  const c = focusedCanvas();
  if (!c) return;
  const { rows, cols } = c.labels;
  const lines = [["", ...cols].map(csvCell).join(",")];
  c.matrix.forEach((r, i) => lines.push([csvCell(rows[i]), ...r.map((w) => String(w))].join(",")));
  download(baseName(c) + ".csv", new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
}

function exportJson() {
  const c = focusedCanvas();
  if (!c) return;
  const { rows, cols, site, head } = c.labels;
  const json = JSON.stringify({ site, head, queries: rows, keys: cols, weights: c.matrix });
  download(baseName(c) + ".json", new Blob([json], { type: "application/json" }));
}

function escapeXml(s) {
  return s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" }[ch]));
}

// The weight table as SVG (whatever the view on screen): cells, numbers, labels.
function tableSvg(m, rows, cols) {
  const cell = 30, left = 140, top = 140;
  const w = left + cols.length * cell, h = top + rows.length * cell;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="DejaVu Sans, sans-serif" font-size="11">`,
               `<rect width="${w}" height="${h}" fill="#fff"/>`];
  m.forEach((r, i) => r.forEach((v, j) => {
    out.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="${weightColour(v)}"/>`);
    out.push(`<text x="${left + (j + 0.5) * cell}" y="${top + (i + 0.5) * cell + 4}" text-anchor="middle" font-size="9" fill="${v > 0.55 ? "#fff" : "#333"}">${v.toFixed(2)}</text>`);
  }));
  rows.forEach((t, i) => out.push(`<text x="${left - 4}" y="${top + (i + 0.5) * cell + 4}" text-anchor="end">${escapeXml(t)}</text>`));
  cols.forEach((t, j) => out.push(`<text transform="translate(${left + (j + 0.5) * cell + 4},${top - 4}) rotate(-90)">${escapeXml(t)}</text>`));
  out.push("</svg>");
  return out.join("\n");
}

// The head view as SVG: a line per pair, opacity = weight.
function headsSvg(m, rows, cols) {
  const step = 20, lw = 140, gap = 220, w = lw + gap + 140, h = Math.max(rows.length, cols.length) * step + 10;
  const y = (i) => 5 + (i + 0.5) * step;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
               `<rect width="${w}" height="${h}" fill="#fff"/>`];
  m.forEach((r, i) => r.forEach((v, j) => {
    if (v >= 0.01) out.push(`<line x1="${lw}" y1="${y(i)}" x2="${lw + gap}" y2="${y(j)}" stroke="#173f8c" stroke-width="2" stroke-opacity="${v.toFixed(4)}"/>`);
  }));
  rows.forEach((t, i) => out.push(`<text x="${lw - 4}" y="${y(i) + 4}" text-anchor="end">${escapeXml(t)}</text>`));
  cols.forEach((t, j) => out.push(`<text x="${lw + gap + 4}" y="${y(j) + 4}">${escapeXml(t)}</text>`));
  out.push("</svg>");
  return out.join("\n");
}

// Every site x head (and their average) as small heatmaps.
function gridSvg(sites) {
  const heads = Math.max(...sites.map((s) => s.heads.length));
  const size = 90, pad = 18, label = 120;
  const w = label + (heads + 1) * (size + pad), h = sites.length * (size + pad) + pad;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
               `<rect width="${w}" height="${h}" fill="#fff"/>`];
  for (let k = 0; k <= heads; ++k)
    out.push(`<text x="${label + k * (size + pad)}" y="12">${k < heads ? "head " + k : "average"}</text>`);
  sites.forEach((site, r) => {
    const y = pad + r * (size + pad);
    out.push(`<text x="4" y="${y + size / 2}">${escapeXml(site.name)}</text>`);
    for (let k = 0; k <= site.heads.length; ++k) {
      const m = matrixOf(site, k < site.heads.length ? k : "avg");
      const n = m.length, c = n ? m[0].length : 0, cw = size / Math.max(c, 1), ch = size / Math.max(n, 1);
      const x = label + (k < site.heads.length ? k : heads) * (size + pad);
      m.forEach((row, i) => row.forEach((v, j) => out.push(
        `<rect x="${(x + j * cw).toFixed(2)}" y="${(y + i * ch).toFixed(2)}" width="${cw.toFixed(2)}" height="${ch.toFixed(2)}" fill="${weightColour(v)}"/>`)));
    }
  });
  out.push("</svg>");
  return out.join("\n");
}

// The view on screen as SVG.
function exportSvg() {
  const c = focusedCanvas();
  if (!c) return;
  let svg;
  if (c.classList.contains("heads-view")) svg = headsSvg(c.matrix, c.labels.rows, c.labels.cols);
  else if (c.classList.contains("grid-view")) svg = gridSvg(c.sites);
  else svg = tableSvg(c.matrix, c.labels.rows, c.labels.cols);
  download(baseName(c) + ".svg", new Blob([svg], { type: "image/svg+xml" }));
}

function exportPng() {
  const c = focusedCanvas();
  if (!c) return;
  c.toBlob((blob) => download(baseName(c) + ".png", blob), "image/png");
}

// ---- a measurement for the browser test: drawing and hovering an n x n table ----
window.attendBenchmark = function (n) {
  const m = [], labels = [];
  for (let i = 0; i < n; ++i) {
    labels.push("tok" + i);
    const row = [];
    let s = 0;
    for (let j = 0; j < n; ++j) { const v = Math.exp(-Math.abs(i - j) / 3); row.push(v); s += v; }
    m.push(row.map((v) => v / s));
  }
  const out = { n };
  for (const [name, draw] of [["table", drawTable], ["heads", drawHeads]]) {
    const canvas = document.createElement("canvas"), overlay = document.createElement("canvas");
    document.body.appendChild(canvas);
    document.body.appendChild(overlay);
    const t0 = performance.now();
    draw(canvas, m, labels, labels);
    canvas.getContext("2d").getImageData(0, 0, 1, 1);  // wait for the drawing to finish
    const t1 = performance.now();
    const hovers = 50;
    for (let k = 0; k < hovers; ++k) {
      state.hover = { kind: k % 2 ? "key" : "query", index: (k * 7) % n };
      canvas.drawHover(overlay);
      overlay.getContext("2d").getImageData(0, 0, 1, 1);
    }
    const t2 = performance.now();
    out[name + "_draw_ms"] = t1 - t0;
    out[name + "_hover_ms"] = (t2 - t1) / hovers;
    canvas.remove();
    overlay.remove();
  }
  state.hover = null;
  return out;
};

// ---- speech: a WAV file through /api/transcribe ----
// The answer is drawn on one canvas: the log-mel spectrogram, the path of the characters'
// attention over it with their labels above, and below it the weights as a strip aligned in
// time. Hovering a character redraws only the overlay (canvas.drawHover), as the table does.
const speech = { answer: null, hover: null };  // hover: the index of a piece
state.speech = speech;

// Matplotlib's viridis at 0, 1/4, 1/2, 3/4 and 1, linear in between (src/viz/spectrogram.cc's
// ramp): dark violet for quiet, yellow for loud; it reads in grey scale and to colour-blind eyes.
const VIRIDIS = (() => {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const ramp = [];
  for (let v = 0; v < 256; ++v) {
    const x = v / 255 * 4, i = Math.min(3, Math.floor(x)), f = x - i;
    ramp.push(stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c))));
  }
  return ramp;
})();

// A piece as drawn: SentencePiece's word boundary (and a space) made visible.
function pieceLabel(piece) { return piece.replace(/[\u2581 ]/g, "\u2423"); }

// Where each piece listened, in frames: its attention-weighted mean listener step, at that
// step's centre ((step + 0.5) * frames_per_step), clipped to the frames.
function alignmentFrames(answer) {
  const fps = answer.frames_per_step, frames = answer.spectrogram.frames;
  return answer.attention.map((row) => {
    let sum = 0, acc = 0;
    row.forEach((w, s) => { sum += w; acc += w * s; });
    const step = sum > 0 ? acc / sum : 0;
    return Math.max(0, Math.min(frames, (step + 0.5) * fps));
  });
}

// An image of width x height pixels, colour(i) giving pixel i's [r, g, b]: drawn scaled up
// without smoothing, so a 12,000-frame spectrogram is one drawImage, not a million rectangles.
function pixelCanvas(width, height, colour) {
  const c = document.createElement("canvas");
  c.width = width;
  c.height = height;
  const cctx = c.getContext("2d");
  const img = cctx.createImageData(width, height);
  for (let i = 0; i < width * height; ++i) {
    const [r, g, b] = colour(i);
    img.data[4 * i] = r;
    img.data[4 * i + 1] = g;
    img.data[4 * i + 2] = b;
    img.data[4 * i + 3] = 255;
  }
  cctx.putImageData(img, 0, 0);
  return c;
}

function drawSpeech(canvas, answer) {
  const { frames, bins, data } = answer.spectrogram;
  const fps = answer.frames_per_step, attention = answer.attention;
  const labels = answer.pieces.map(pieceLabel), n = labels.length;
  const steps = n ? attention[0].length : 0;
  let ctx = canvas.getContext("2d");
  ctx.font = FONT;
  // About 1,000 pixels across for a few seconds; longer audio scrolls at one pixel a frame.
  const ppf = Math.max(1, Math.min(6, Math.floor(1000 / Math.max(frames, 1))));
  const ppb = Math.max(1, Math.floor(200 / Math.max(bins, 1)));
  const specW = frames * ppf, specH = bins * ppb;
  const lineH = 15, gap = 6, maxRows = 4;
  const rowH = n * 14 <= 4000 ? 14 : Math.max(2, Math.floor(4000 / n));  // strip rows
  const left = Math.max(30, Math.min(120, textWidth(ctx, labels)) + gap);
  const xs = alignmentFrames(answer).map((f) => left + Math.min(f * ppf, specW - 0.5));
  // Labels above the spectrogram, centred on their x; one that would overlap the last label of
  // its row goes to the next row, or to the row that frees up first when all are taken.
  const widths = labels.map((l) => ctx.measureText(l).width);
  const order = labels.map((_, t) => t).sort((a, b) => xs[a] - xs[b] || a - b);
  const rowEnd = new Array(maxRows).fill(-Infinity), place = new Array(n);
  let rowsUsed = 1, right = left + specW;
  for (const t of order) {
    const x = Math.max(2, xs[t] - widths[t] / 2);
    let row = rowEnd.findIndex((end) => end <= x);
    if (row < 0) row = rowEnd.indexOf(Math.min(...rowEnd));
    rowEnd[row] = Math.max(rowEnd[row], x + widths[t] + 3);
    place[t] = { x, y: 4 + row * lineH };
    rowsUsed = Math.max(rowsUsed, row + 1);
    right = Math.max(right, x + widths[t]);
  }
  const top = 4 + rowsUsed * lineH + gap, stripY = top + specH + 10;
  const width = Math.ceil(right) + 8, height = stripY + n * rowH + 6;
  ctx = blankCanvas(canvas, width, height);
  ctx.imageSmoothingEnabled = false;
  // The spectrogram: time to the right, bin 0 (the lowest frequencies) at the bottom.
  ctx.drawImage(pixelCanvas(frames, bins, (i) => {
    const f = i % frames, b = bins - 1 - Math.floor(i / frames);
    return VIRIDIS[data[f * bins + b]];
  }), left, top, specW, specH);
  // The path: a white line with a dark edge (visible on every part of the ramp) and red dots (a
  // hue viridis never takes), piece t at height (t + 0.5) / n down the spectrogram.
  const ys = labels.map((_, t) => top + (t + 0.5) * specH / n);
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, specW, specH);
  ctx.clip();
  for (const [lw, colour] of [[5, "#000"], [2.4, "#fff"]]) {
    ctx.lineWidth = lw;
    ctx.strokeStyle = colour;
    ctx.beginPath();
    xs.forEach((x, t) => (t ? ctx.lineTo(x, ys[t]) : ctx.moveTo(x, ys[t])));
    ctx.stroke();
  }
  for (const [r, colour] of [[4.5, "#fff"], [3.2, "#e61414"]]) {
    ctx.fillStyle = colour;
    xs.forEach((x, t) => { ctx.beginPath(); ctx.arc(x, ys[t], r, 0, 7); ctx.fill(); });
  }
  ctx.restore();
  // The labels, each with a tick down to where it points.
  const drawn = [];
  ctx.font = FONT;
  ctx.textBaseline = "top";
  for (let t = 0; t < n; ++t) {
    ctx.fillStyle = "#1d2330";
    ctx.fillText(labels[t], place[t].x, place[t].y);
    drawn.push({ index: t, text: labels[t], x: place[t].x, y: place[t].y, w: widths[t], h: lineH });
    ctx.fillStyle = "#999";
    ctx.fillRect(Math.floor(xs[t]), top - gap + 1, 1, gap - 1);
  }
  // The strip: piece t's weight on step s in row t, under the frames that step covers (the last
  // step may cover fewer than frames_per_step: it is cut at the spectrogram's end).
  if (n && steps) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, stripY, specW, n * rowH);
    ctx.clip();
    ctx.drawImage(pixelCanvas(steps, n, (i) => {
      const w = Math.max(0, Math.min(1, attention[Math.floor(i / steps)][i % steps]));
      return [255 - w * 232, 255 - w * 192, 255 - w * 115];
    }), left, stripY, steps * fps * ppf, n * rowH);
    ctx.restore();
    if (rowH >= 6) {
      ctx.fillStyle = "#fff";  // a thin gap between rows
      for (let t = 1; t < n; ++t) ctx.fillRect(left, stripY + t * rowH - 1, specW, 1);
    }
  }
  ctx.strokeStyle = "#ccc";
  ctx.lineWidth = 1;
  ctx.strokeRect(left - 0.5, stripY - 0.5, specW + 1, n * rowH + 1);
  ctx.fillStyle = "#1d2330";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  if (rowH >= 9) for (let t = 0; t < n; ++t) ctx.fillText(labels[t], left - 4, stripY + (t + 0.5) * rowH);
  canvas.drawnLabels = drawn;
  canvas.path = xs.map((x, t) => ({ frame: (x - left) / ppf, x, y: ys[t] }));
  canvas.layout = { left, top, specW, specH, stripY, rowH, ppf, ppb, width, height };
  // A label (the nearest when labels overlap), a dot of the path, or a row of the strip.
  canvas.hitTest = (x, y) => {
    let best = null, bestD = Infinity;
    for (const d of drawn) {
      if (x < d.x - 1 || x > d.x + d.w + 1 || y < d.y || y > d.y + d.h) continue;
      const dist = Math.abs(x - (d.x + d.w / 2));
      if (dist < bestD) { best = d.index; bestD = dist; }
    }
    if (best !== null) return best;
    if (x >= left && x < left + specW && y >= top && y < top + specH) {
      for (let t = 0; t < n; ++t) {
        const dist = Math.hypot(x - xs[t], y - ys[t]);
        if (dist < 7 && dist < bestD) { best = t; bestD = dist; }
      }
      return best;
    }
    if (y >= stripY && y < stripY + n * rowH && x < left + specW) return Math.floor((y - stripY) / rowH);
    return null;
  };
  // The hovered piece: its label, dot, column (where it listened) and strip row outlined, and its
  // weights over the spectrogram as bars scaled to the largest.
  canvas.drawHover = (overlay) => {
    const o = sizeCanvas(overlay, width, height);
    const t = speech.hover;
    if (t === null || t >= n) return;
    const row = attention[t], most = Math.max(...row, 1e-9);
    o.fillStyle = "rgba(255,255,255,0.3)";
    o.strokeStyle = "#e8590c";
    o.lineWidth = 2;
    o.beginPath();
    o.moveTo(left, top + specH);
    row.forEach((w, s) => {
      const x0 = left + Math.min(s * fps * ppf, specW), x1 = left + Math.min((s + 1) * fps * ppf, specW);
      const y = top + specH - w / most * specH * 0.9;
      o.lineTo(x0, y);
      o.lineTo(x1, y);
    });
    o.lineTo(left + specW, top + specH);
    o.fill();
    o.stroke();
    o.fillStyle = "rgba(232,89,12,0.7)";
    o.fillRect(Math.floor(xs[t]) - 1, place[t].y + lineH, 2, stripY + n * rowH - place[t].y - lineH);
    o.strokeRect(place[t].x - 2, place[t].y - 1, widths[t] + 4, lineH + 1);
    o.strokeRect(left - 1, stripY + t * rowH - 1, specW + 2, rowH + 1);
    o.beginPath();
    o.arc(xs[t], ys[t], 6, 0, 7);
    o.stroke();
  };
}

// The hovered piece in words: where it listened and its largest weights.
function describeHover() {
  const a = speech.answer, t = speech.hover;
  if (!a || t === null) return "";
  const fps = a.frames_per_step, frames = a.spectrogram.frames;
  const sec = a.seconds / Math.max(frames, 1);  // seconds per frame
  const row = a.attention[t];
  const top = row.map((w, s) => [w, s]).sort((x, y) => y[0] - x[0]).slice(0, 4);
  const where = top.map(([w, s]) =>
    `step ${s} (${(s * fps * sec).toFixed(2)}\u2013${(Math.min((s + 1) * fps, frames) * sec).toFixed(2)} s) ${w.toFixed(3)}`);
  const at = alignmentFrames(a)[t] * sec;
  return `\u201c${pieceLabel(a.pieces[t])}\u201d, character ${t + 1} of ${a.pieces.length}: ` +
         `listened around ${at.toFixed(2)} s; largest weights: ${where.join(", ")}`;
}

function renderSpeech() {
  const a = speech.answer;
  $("speech-answer").hidden = !a;
  if (!a) return;
  $("speech-text").textContent = a.text;
  const canvas = $("speech-view"), overlay = $("speech-overlay");
  drawSpeech(canvas, a);
  canvas.overlay = overlay;
  canvas.drawHover(overlay);
  $("speech-hover").textContent = describeHover();
}

function setSpeechHover(t) {
  if (t === speech.hover) return;
  speech.hover = t;
  const canvas = $("speech-view");
  canvas.drawHover(canvas.overlay);
  $("speech-hover").textContent = describeHover();
}

async function transcribe() {
  const file = $("speech-file").files[0];
  if (!file) { setStatus("Choose a WAV file first.", true, "speech-status"); return; }
  if ($("speech-beam").validity.badInput) { setStatus("The beam must be a whole number.", true, "speech-status"); return; }
  const params = new URLSearchParams({ model: $("speech-model").value, beam: $("speech-beam").value });
  setStatus("transcribing...", false, "speech-status");
  $("transcribe").disabled = true;
  try {
    // The file's bytes are the body. An explicit type: the server's HTTP library caps bodies
    // sent as form data (curl's default) at 8 KiB.
    const res = await fetch("/api/transcribe?" + params, {
      method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file,
    });
    const json = await res.json();
    if (!res.ok) throw new Error(json.error || `HTTP ${res.status}`);
    speech.answer = json;
    speech.hover = null;
    renderSpeech();
    const t = json.timings;
    setStatus(`${json.seconds.toFixed(2)} s of audio, ${json.pieces.length} characters in ` +
              `${t.total_ms.toFixed(0)} ms (decode ${t.decode_ms.toFixed(0)})`, false, "speech-status");
  } catch (e) {
    setStatus(e.message, true, "speech-status");
  } finally {
    $("transcribe").disabled = false;
  }
}

// The translation, speech or captions view (the tabs show only when the server holds several
// kinds of model).
function showView(view) {
  state.view = view;
  const translating = view === "translation", speaking = view === "speech", captioning = view === "caption";
  $("controls").hidden = !translating || !state.models.some((m) => taskOf(m) === "translation");
  $("results").hidden = !translating;
  $("speech-controls").hidden = !speaking;
  $("speech-results").hidden = !speaking;
  $("caption-controls").hidden = !captioning;
  $("caption-results").hidden = !captioning;
  $("footer-translation").hidden = !translating;
  $("footer-speech").hidden = !speaking;
  $("footer-caption").hidden = !captioning;
  const what = { translation: "translation", speech: "speech recognition", caption: "image captioning" };
  $("tagline").textContent = what[view] + " with the attention that made it";
  for (const b of document.querySelectorAll("#tabs button")) {
    b.classList.toggle("active", b.dataset.view === view);
    b.setAttribute("aria-selected", String(b.dataset.view === view));
  }
}

// ---- captions: an image through /api/caption ----
// The image the model read (its pixels after resizing), scaled up without smoothing, and over it
// on a second canvas the attention of the hovered (or clicked) word: each position's weight
// spread evenly over its box, what the word does not look at dimmed and what it does tinted, as
// src/viz/image_attention.cc draws its PNGs.
const caption = { answer: null, hover: null, pinned: null };  // hover, pinned: word indices
state.caption = caption;

// The model's pixels (CHW, 0..255) as an RGB colour per pixel.
function captionPixel(image, i) {
  const plane = image.size * image.size, d = image.data;
  return image.channels === 3 ? [d[i], d[plane + i], d[2 * plane + i]] : [d[i], d[i], d[i]];
}

// Word t's weights as a heat map over the image's pixels, and its peak.
function captionHeat(answer, t) {
  const s = answer.image.size, heat = new Float64Array(s * s), row = answer.attention[t] || [];
  const clamp = (v) => Math.max(0, Math.min(s, v));
  answer.boxes.forEach((b, i) => {
    const x0 = clamp(Math.floor(b[0])), y0 = clamp(Math.floor(b[1]));
    const x1 = clamp(Math.ceil(b[2])), y1 = clamp(Math.ceil(b[3]));
    const w = (row[i] || 0) / Math.max(1, (x1 - x0) * (y1 - y0));
    for (let y = y0; y < y1; ++y) for (let x = x0; x < x1; ++x) heat[y * s + x] += w;
  });
  let peak = 0;
  for (const v of heat) peak = Math.max(peak, v);
  return { heat, peak };
}

function drawCaption(canvas, answer) {
  const s = answer.image.size;
  // About 400 CSS pixels across, an integer scale so that every pixel stays a crisp square.
  const scale = Math.max(1, Math.floor(400 / s)), side = s * scale;
  const ctx = blankCanvas(canvas, side, side);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(pixelCanvas(s, s, (i) => captionPixel(answer.image, i)), 0, 0, side, side);
  canvas.layout = { scale, side, size: s };
  // The word's attention: overlay colour and opacity such that what shows through is
  // (0.35 + 0.3 a) * pixel + 0.52 a * red, a the heat over its peak (the PNGs' blend).
  canvas.drawHover = (overlay) => {
    const o = sizeCanvas(overlay, side, side);
    const t = caption.hover !== null ? caption.hover : caption.pinned;
    overlay.drawnWord = null;
    if (t === null || !answer.boxes.length || !answer.attention[t]) return;
    const { heat, peak } = captionHeat(answer, t);
    const c = document.createElement("canvas");
    c.width = c.height = s;
    const cctx = c.getContext("2d"), img = cctx.createImageData(s, s);
    const red = [255, 40, 0];
    for (let i = 0; i < s * s; ++i) {
      const a = peak > 0 ? heat[i] / peak : 0, alpha = 0.65 - 0.3 * a;
      for (let k = 0; k < 3; ++k) img.data[4 * i + k] = Math.min(255, Math.round(0.52 * a * red[k] / alpha));
      img.data[4 * i + 3] = Math.round(alpha * 255);
    }
    cctx.putImageData(img, 0, 0);
    o.imageSmoothingEnabled = false;
    o.drawImage(c, 0, 0, side, side);
    // The box of the largest weight, outlined.
    const row = answer.attention[t];
    const j = row.indexOf(Math.max(...row)), b = answer.boxes[j];
    o.strokeStyle = "#fff";
    o.lineWidth = 2;
    o.strokeRect(b[0] * scale + 1, b[1] * scale + 1, Math.max(0, (b[2] - b[0]) * scale - 2), Math.max(0, (b[3] - b[1]) * scale - 2));
    overlay.drawnWord = t;
  };
}

// The word shown in words: where it looked most.
function describeCaptionWord() {
  const a = caption.answer;
  if (!a) return "";
  const t = caption.hover !== null ? caption.hover : caption.pinned;
  if (!a.boxes.length) return "This model does not attend: it reads the mean of the image's features, so there are no weights to show.";
  if (t === null) return "Hover a word to see where the model looked; click it to keep it.";
  const row = a.attention[t] || [];
  const top = row.map((w, j) => [w, j]).sort((x, y) => y[0] - x[0]).slice(0, 3);
  const box = (b) => `(${b.map((v) => Math.round(v)).join(", ")})`;
  return `\u201c${a.words[t]}\u201d, word ${t + 1} of ${a.words.length}: largest weights ` +
         top.map(([w, j]) => `${w.toFixed(3)} on box ${box(a.boxes[j])}`).join(", ") +
         ` of ${row.length} positions`;
}

function renderCaption() {
  const a = caption.answer;
  $("caption-answer").hidden = !a;
  if (!a) return;
  const text = $("caption-text");
  text.textContent = "";
  a.words.forEach((w, t) => {
    if (t) text.appendChild(document.createTextNode(" "));
    const span = document.createElement("span");
    span.className = "word";
    span.dataset.index = t;
    span.textContent = w;
    span.addEventListener("mouseenter", () => setCaptionHover(t));
    span.addEventListener("mouseleave", () => setCaptionHover(null));
    span.addEventListener("click", () => {
      caption.pinned = caption.pinned === t ? null : t;
      refreshCaptionHover();
    });
    text.appendChild(span);
  });
  const canvas = $("caption-view");
  drawCaption(canvas, a);
  canvas.overlay = $("caption-overlay");
  refreshCaptionHover();
}

function refreshCaptionHover() {
  const canvas = $("caption-view");
  if (canvas.drawHover) canvas.drawHover(canvas.overlay);
  for (const span of document.querySelectorAll("#caption-text .word")) {
    const t = Number(span.dataset.index);
    span.classList.toggle("hovered", t === caption.hover);
    span.classList.toggle("pinned", t === caption.pinned);
  }
  $("caption-hover").textContent = describeCaptionWord();
}

function setCaptionHover(t) {
  if (t === caption.hover) return;
  caption.hover = t;
  refreshCaptionHover();
}

async function captionImage() {
  const file = $("caption-file").files[0];
  if (!file) { setStatus("Choose an image first.", true, "caption-status"); return; }
  if ($("caption-beam").validity.badInput) { setStatus("The beam must be a whole number.", true, "caption-status"); return; }
  const params = new URLSearchParams({ model: $("caption-model").value, beam: $("caption-beam").value });
  setStatus("captioning...", false, "caption-status");
  $("caption").disabled = true;
  try {
    // The file's bytes are the body (as for a WAV file: not form data).
    const res = await fetch("/api/caption?" + params, {
      method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file,
    });
    const json = await res.json();
    if (!res.ok) throw new Error(json.error || `HTTP ${res.status}`);
    caption.answer = json;
    caption.hover = caption.pinned = null;
    renderCaption();
    const t = json.timings;
    setStatus(`${json.words.length} word${json.words.length === 1 ? "" : "s"} from a ` +
              `${json.image.size} \u00d7 ${json.image.size} image in ${t.total_ms.toFixed(0)} ms ` +
              `(decode ${t.decode_ms.toFixed(0)})`, false, "caption-status");
  } catch (e) {
    setStatus(e.message, true, "caption-status");
  } finally {
    $("caption").disabled = false;
  }
}

// ---- live training (attend serve --watch) ----
const watch = { data: null, follow: true };

// A line chart of points [[x, y]...] with its title and the last value.
function drawCurve(canvas, title, points, colour) {
  const width = 330, height = 170, l = 44, r = 10, t = 22, b = 24;
  const ctx = blankCanvas(canvas, width, height);
  const last = points.length ? points[points.length - 1][1] : null;
  ctx.fillText(title + (last === null ? "" : `: ${last.toFixed(2)}`), l, 4);
  if (points.length < 1) return;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
  const X = (x) => l + (x - x0) / (x1 - x0) * (width - l - r);
  const Y = (y) => height - b - (y - y0) / (y1 - y0) * (height - t - b);
  ctx.strokeStyle = "#ccc";
  ctx.strokeRect(l, t, width - l - r, height - t - b);
  ctx.fillStyle = "#777";
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  ctx.fillText(y1.toFixed(1), l - 3, t);
  ctx.fillText(y0.toFixed(1), l - 3, height - b);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText(String(x0), l, height - b + 4);
  ctx.fillText(String(x1), width - r, height - b + 4);
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
  ctx.stroke();
  ctx.fillStyle = colour;
  for (const [x, y] of points) { ctx.beginPath(); ctx.arc(X(x), Y(y), 2.5, 0, 7); ctx.fill(); }
}

function renderTraining() {
  const d = watch.data;
  $("watch-run").textContent = d.run + (d.error ? ` (cannot read its checkpoint: ${d.error})` : "");
  drawCurve($("curve-loss"), "training loss", d.train.map((p) => [p[0], p[1]]), "#173f8c");
  drawCurve($("curve-ppl"), "dev perplexity", d.valid.map((p) => [p[0], p[2]]), "#e8590c");
  drawCurve($("curve-bleu"), "dev BLEU", d.valid.map((p) => [p[0], p[3]]), "#2b8a3e");
  const slider = $("snapshot");
  const n = d.snapshots.length;
  slider.max = Math.max(0, n - 1);
  if (watch.follow) slider.value = Math.max(0, n - 1);
  const views = $("snapshot-views");
  views.innerHTML = "";
  if (!n) {
    $("snapshot-label").textContent = d.sentences.length ? "waiting for the first validation"
                                                          : "no sentences to follow (--watch-text)";
    return;
  }
  const snap = d.snapshots[Number(slider.value)];
  $("snapshot-label").textContent = `step ${snap.step} (${Number(slider.value) + 1} of ${n})`;
  snap.results.forEach((result, i) => {
    const col = document.createElement("div");
    col.className = "column";
    const hyp = result.hypotheses[0];
    const h = document.createElement("h3");
    h.textContent = hyp.text;
    col.appendChild(h);
    const sites = sitesOf(hyp);
    if (sites.length) {
      const site = sites.filter((s) => s.kind === "cross").pop() || sites[0];
      const canvas = document.createElement("canvas");
      canvas.className = "snapshot-view";
      canvas.dataset.step = snap.step;
      canvas.dataset.sentence = i;
      const m = matrixOf(site, "avg");
      drawTable(canvas, m, hyp.tokens, result.source_tokens);
      canvas.matrix = m;
      col.appendChild(canvas);
    }
    views.appendChild(col);
  });
}

async function pollWatch() {
  try {
    const res = await fetch("/api/watch");
    const data = await res.json();
    if (!data.watching) return;  // this server follows no run
    watch.data = data;
    $("training").hidden = false;
    renderTraining();
  } catch (e) {
    setStatus("cannot reach the server: " + e.message, true);
  }
  setTimeout(pollWatch, 1000);
}
$("snapshot").addEventListener("input", () => {
  watch.follow = Number($("snapshot").value) === Number($("snapshot").max);
  renderTraining();
});
window.attendWatch = watch;

// ---- wiring ----
$("translate").addEventListener("click", translate);
$("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) translate(); });
for (const id of ["view", "site", "head"])
  $(id).addEventListener("change", () => { if (id === "site") refreshPickers(); render(); });
$("export-png").addEventListener("click", exportPng);
$("export-svg").addEventListener("click", exportSvg);
$("export-json").addEventListener("click", exportJson);
$("export-csv").addEventListener("click", exportCsv);
$("transcribe").addEventListener("click", transcribe);
$("caption").addEventListener("click", captionImage);
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showView(b.dataset.view));
$("speech-view").addEventListener("mousemove", (e) => {
  const canvas = $("speech-view"), r = canvas.getBoundingClientRect();
  if (canvas.hitTest) setSpeechHover(canvas.hitTest(e.clientX - r.left, e.clientY - r.top));
});
$("speech-view").addEventListener("mouseleave", () => { if ($("speech-view").hitTest) setSpeechHover(null); });
pollWatch();
loadModels().then(() => { for (const id of ["status", "speech-status", "caption-status"]) setStatus("ready", false, id); })
  .catch((e) => setStatus("cannot reach the server: " + e.message, true));
