// A small line chart on a <canvas>: several series over time, gaps for missing values, a y axis rounded
// to 1/2/5 steps. Written for the dashboard; no library.
"use strict";

// A step of 1, 2 or 5 times a power of ten giving about four gridlines up to at least v.
function niceStep(v) {
  if (!(v > 0)) return 0.25;
  const raw = v / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

function fmtAxis(v) {
  if (v >= 10000) return (v / 1000).toFixed(0) + "k";
  if (v >= 1000) return (v / 1000).toFixed(1).replace(/\.0$/, "") + "k";
  if (v >= 10 || v === 0 || Number.isInteger(v)) return v.toFixed(0);
  return v.toFixed(v < 1 ? 2 : 1);
}

// figure: <figure> holding a <canvas> and a <figcaption>; series: [{label, color, values: [number|null]}];
// opts: {span: seconds shown, unit}. Sets data-max/data-last/data-points on the figure for scripts and tests.
function drawLineChart(figure, series, opts) {
  const canvas = figure.querySelector("canvas");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300, h = canvas.clientHeight || 150;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);

  let max = 0, points = 0;
  const n = Math.max(0, ...series.map(s => s.values.length));
  for (const s of series) for (const v of s.values) if (v !== null && v !== undefined && isFinite(v)) { max = Math.max(max, v); points++; }
  const step = niceStep(max * 1.02);
  const lines = Math.max(1, Math.ceil((max * 1.02) / step));
  const top = step * lines;
  const padL = 38, padR = 6, padT = 6, padB = 16;
  const pw = w - padL - padR, ph = h - padT - padB;

  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = "#687085";
  ctx.strokeStyle = "#e6e9ef";
  ctx.lineWidth = 1;
  for (let i = 0; i <= lines; i++) {
    const y = padT + ph - (ph * i) / lines;
    ctx.beginPath(); ctx.moveTo(padL, y + 0.5); ctx.lineTo(padL + pw, y + 0.5); ctx.stroke();
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    ctx.fillText(fmtAxis(step * i), padL - 4, y);
  }
  ctx.textAlign = "left"; ctx.textBaseline = "top";
  ctx.fillText("-" + Math.round(opts.span || n) + " s", padL, padT + ph + 3);
  ctx.textAlign = "right";
  ctx.fillText("now", padL + pw, padT + ph + 3);

  const slots = Math.max(n - 1, 1);
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = 1.6; ctx.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined || !isFinite(v)) { pen = false; return; }
      const x = padL + (pw * (i + (n - s.values.length))) / slots;
      const y = padT + ph - (ph * v) / top;
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
  }

  const cap = figure.querySelector("figcaption");
  cap.textContent = "";
  for (const s of series) {
    const last = [...s.values].reverse().find(v => v !== null && v !== undefined);
    const item = document.createElement("span");
    const sw = document.createElement("span");
    sw.className = "sw"; sw.style.background = s.color;
    item.appendChild(sw);
    item.appendChild(document.createTextNode(s.label + ": " + (last === undefined ? "–" : fmtAxis(last)) + (opts.unit || "")));
    cap.appendChild(item);
  }
  figure.dataset.max = String(max);
  figure.dataset.points = String(points);
  const lastValues = series.map(s => [...s.values].reverse().find(v => v !== null && v !== undefined));
  figure.dataset.last = lastValues.map(v => (v === undefined ? "" : String(v))).join(",");
}

// A chart with nothing to show: the reason instead of an empty plot.
function markUnavailable(figure, reason) {
  const canvas = figure.querySelector("canvas");
  canvas.style.display = "none";
  let na = figure.querySelector(".na");
  if (!na) { na = document.createElement("p"); na.className = "na"; figure.insertBefore(na, canvas); }
  na.textContent = reason;
  figure.querySelector("figcaption").textContent = "";
  figure.dataset.available = "false";
}

function markAvailable(figure) {
  const na = figure.querySelector(".na");
  if (na) na.remove();
  figure.querySelector("canvas").style.display = "";
  figure.dataset.available = "true";
}
