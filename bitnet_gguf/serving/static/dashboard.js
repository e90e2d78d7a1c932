// The dashboard: polls /metrics.json every second and redraws the tiles and charts.
"use strict";

const REFRESH_MS = 1000;
const C = { blue: "#2f6fde", orange: "#e8710a", green: "#2e7d32", red: "#c62828", purple: "#7b1fa2", grey: "#687085" };
const $ = id => document.getElementById(id);

function fmt(v, digits, unit) {
  if (v === null || v === undefined) return "–";
  return Number(v).toFixed(digits) + (unit || "");
}

function mb(bytes) { return bytes === null || bytes === undefined ? "–" : (bytes / 1048576).toFixed(0) + " MB"; }

function fmtDuration(s) {
  if (s === null || s === undefined) return "?";
  if (s < 120) return Math.round(s) + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function setTile(id, text, value, na, title) {
  const el = $(id);
  el.textContent = text;
  el.title = title || "";
  el.dataset.value = value === null || value === undefined ? "" : String(value);
  el.classList.toggle("na", Boolean(na));
}

function render(m) {
  const h = m.history || {};
  const span = (h.t && h.t.length > 1) ? h.t[h.t.length - 1] - h.t[0] : 0;
  const req = m.requests || {}, tps = m.tokens_per_s || {}, lat = m.latency_ms || {}, ttft = m.ttft_ms || {};
  const sys = m.system || {}, cpu = sys.cpu_percent || {}, rss = sys.rss_bytes || {};
  const temp = sys.temperature_c || {}, power = sys.package_power_w || {};
  const srv = m.server || {};

  $("model").textContent = (m.model && m.model.name) || "?";
  $("state").textContent = srv.state || "?";
  $("state").className = "state-" + (srv.state || "down");
  $("uptime").textContent = fmtDuration(srv.uptime_s);
  $("restarts").textContent = srv.restarts === undefined ? "?" : String(srv.restarts) +
    (srv.last_restart_s ? " (last took " + srv.last_restart_s.toFixed(1) + " s)" : "");
  $("updated").textContent = new Date((m.time || 0) * 1000).toLocaleTimeString();

  setTile("v-gen-tps", fmt(tps.generation, 1), tps.generation);
  setTile("v-prompt-tps", fmt(tps.prompt, 1), tps.prompt);
  setTile("v-latency", lat.p50 === null || lat.p50 === undefined ? "no requests" :
    fmt(lat.p50, 0) + " / " + fmt(lat.p95, 0) + " / " + fmt(lat.p99, 0) + " ms", lat.p50);
  setTile("v-ttft", fmt(ttft.p50, 0, " ms"), ttft.p50);
  setTile("v-requests", (req.active ?? "–") + " · " + (req.queued ?? "–") + " · " + (req.slots_busy ?? "–") + " / " +
    ((m.limits && m.limits.parallel) ?? "?"), req.active);
  setTile("v-counts", (req.ok ?? 0) + " · " + (req.client_errors ?? 0) + " · " + (req.server_errors ?? 0) + " · " +
    (req.cancelled ?? 0), req.ok);
  setTile("v-cpu", fmt(cpu.machine, 0, " %"), cpu.machine);
  $("cpu-count").textContent = sys.cpu_count ? " (" + sys.cpu_count + " cores)" : "";
  setTile("v-rss", mb(rss.llama_server) + " · " + mb(rss.front), rss.llama_server);
  setTile("v-temp", temp.available ? fmt(temp.value, 1, " °C") : "not available", temp.value, !temp.available, temp.detail);
  setTile("v-power", power.available ? fmt(power.value, 1, " W") : "not available", power.value, !power.available, power.detail);

  const opts = { span };
  drawLineChart($("chart-throughput"), [
    { label: "generation", color: C.blue, values: h.generation_tps || [] },
    { label: "prompt", color: C.orange, values: h.prompt_tps || [] },
  ], opts);
  drawLineChart($("chart-latency"), [
    { label: "p50", color: C.green, values: h.latency_p50_ms || [] },
    { label: "p95", color: C.orange, values: h.latency_p95_ms || [] },
    { label: "p99", color: C.red, values: h.latency_p99_ms || [] },
    { label: "first token p50", color: C.purple, values: h.ttft_p50_ms || [] },
  ], Object.assign({ unit: " ms" }, opts));
  drawLineChart($("chart-requests"), [
    { label: "active", color: C.blue, values: h.active || [] },
    { label: "queued", color: C.red, values: h.queued || [] },
    { label: "slots busy", color: C.green, values: h.slots_busy || [] },
  ], opts);
  drawLineChart($("chart-cpu"), [
    { label: "llama-server", color: C.blue, values: h.cpu_llama_server || [] },
    { label: "front", color: C.orange, values: h.cpu_front || [] },
    { label: "machine", color: C.grey, values: h.cpu_machine || [] },
  ], Object.assign({ unit: " %" }, opts));
  drawLineChart($("chart-rss"), [
    { label: "llama-server", color: C.blue, values: h.rss_llama_server_mb || [] },
    { label: "front", color: C.orange, values: h.rss_front_mb || [] },
  ], Object.assign({ unit: " MB" }, opts));
  for (const [id, reading, key, unit, color] of [["chart-temp", temp, "temperature_c", " °C", C.red],
                                                  ["chart-power", power, "power_w", " W", C.purple]]) {
    if (reading.available || (h[key] || []).some(v => v !== null)) {
      markAvailable($(id));
      drawLineChart($(id), [{ label: reading.detail || key, color, values: h[key] || [] }], Object.assign({ unit }, opts));
    } else {
      markUnavailable($(id), reading.detail || "not available on this machine");
    }
  }
  document.body.dataset.samples = String((h.t || []).length);
}

let pending = false;
async function refresh() {
  if (pending) return;
  pending = true;
  try {
    const resp = await fetch("/metrics.json", { headers: authHeaders(), cache: "no-store" });
    if (resp.status === 401) { showKeyBox(refresh); $("state").textContent = "API key needed"; return; }
    if (!resp.ok) { $("state").textContent = await errorText(resp); $("state").className = "state-down"; return; }
    render(await resp.json());
  } catch (e) {
    $("state").textContent = "unreachable";
    $("state").className = "state-down";
  } finally {
    pending = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
