// Wallboard: overall and per-queue tiles, a last-hour chart, live over /ws/wallboard.
//
// Protocol (app/live/wallboard.py): `snapshot` {seq, overall, queues{id: item}} on
// subscribe, then `delta` {seq, at, overall?, queues?, removed_queues?} holding only what
// changed, each seq one higher than the last.
//
// Invariants:
// - A delta is applied only on top of the state whose seq is exactly one lower; on a gap
//   (or a delta before any snapshot) the page drops the socket and resubscribes, so it
//   resynchronises from a fresh snapshot instead of showing wrong numbers.
// - While the socket is down the page says so (banner + dimmed figures) and reconnects
//   by itself; figures are never presented as live when they are not.
// - The chart's last hour comes from the server: every snapshot carries `history`, one
//   point a minute (15-minute service level, most callers waiting), so a new screen or a
//   reload shows the hour at once; between snapshots the page adds a live sample every
//   SAMPLE_MS (kept in memory only).
import { connectWs, el, $, fmtDuration, fmtPct, asFraction, api, requireSession, wireSignOut } from "/assets/common.js";
import { drawChart } from "/assets/chart.js";

const SAMPLE_MS = 5000;
const HOUR_MS = 3600 * 1000;
const WINDOW_KEY = "switchboard.wallboard.window";
const DEFAULT_TARGET = 0.8;

await requireSession();
wireSignOut($("#signout"));

const params = new URLSearchParams(location.search);
let windowName = params.get("window") || localStorage.getItem(WINDOW_KEY) || "15m";
let state = null; // {overall, queues}
let seq = null;
let resyncs = 0;
let lastUpdate = null;
const queueInfo = {}; // id -> {name, sl_target_pct, sl_target_s}
let history = []; // [{t (ms), w, sl}], oldest first
let lastSampleAt = 0;

function serverHistory(points) {
  // Server points are per minute, `t` in epoch seconds; `w` null: not known then.
  return (Array.isArray(points) ? points : []).map((p) => ({ t: p.t * 1000, w: p.w ?? 0, sl: p.sl ?? null }));
}

// ---------- protocol ----------
function applyDelta(target, delta) {
  for (const [k, v] of Object.entries(delta)) {
    if (k === "type" || k === "seq" || k === "at") continue;
    if (k === "removed_queues") {
      for (const q of v) delete (target.queues || {})[q];
      continue;
    }
    if (v && typeof v === "object" && !Array.isArray(v) && target[k] && typeof target[k] === "object") applyDelta(target[k], v);
    else target[k] = v;
  }
}

function onMessage(msg) {
  if (msg.type === "snapshot") {
    state = { overall: msg.overall, queues: msg.queues };
    seq = msg.seq;
    history = serverHistory(msg.history);
    lastSampleAt = Date.now();
  } else if (msg.type === "delta") {
    if (state === null || seq === null || msg.seq !== seq + 1) {
      if (state !== null && seq !== null && msg.seq <= seq) return; // a duplicate: already applied
      resync();
      return;
    }
    applyDelta(state, msg);
    seq = msg.seq;
  } else {
    return;
  }
  lastUpdate = Date.now();
  document.body.dataset.seq = String(seq);
  sample();
  render();
}

function resync() {
  resyncs += 1;
  document.body.dataset.resyncs = String(resyncs);
  state = null;
  seq = null;
  conn.reconnect();
}

// ---------- rendering ----------
function kpis(item) {
  return (item && item.windows && item.windows[windowName]) || {};
}

function agentsOf(item) {
  const a = (item && item.agents) || {};
  return {
    ready: a.ready ?? 0,
    // An agent whose phone is ringing is already taken for the next call: count it busy.
    onCall: (a.on_call ?? 0) + (a.reserved ?? 0),
    wrapUp: a.wrap_up ?? 0,
    paused: a.paused ?? 0,
  };
}

function targetOf(queueId) {
  const info = queueInfo[queueId];
  return asFraction(info && info.sl_target_pct) ?? DEFAULT_TARGET;
}

function metric(label, value, key, cls) {
  return el("div", { class: `metric${cls ? " " + cls : ""}`, dataset: { metric: key } }, el("dd", null, value), el("dt", null, label));
}

function tile(id, title, item, overall) {
  const k = kpis(item);
  const ag = agentsOf(item);
  const target = overall ? DEFAULT_TARGET : targetOf(id);
  const sl = k.service_level;
  const below = sl !== null && sl !== undefined && sl < target;
  const thresholdS = (queueInfo[id] && queueInfo[id].sl_target_s) || 15;
  const longWait = (item.longest_wait_s ?? 0) > thresholdS;
  const status = sl === null || sl === undefined ? "" : below ? "below" : "ok";
  return el("section", { class: `tile${overall ? " overall" : ""}${status ? " " + status : ""}`, dataset: { queue: id, status: status || "none" }, "aria-labelledby": `t-${id}` },
    el("h2", { id: `t-${id}` }, title,
      status ? el("span", { class: "flag" }, below ? `Below target ${fmtPct(target)}` : `On target ${fmtPct(target)}`) : null),
    el("dl", { class: "metrics" },
      metric("Calls waiting", String(item.waiting ?? 0), "waiting", (item.waiting ?? 0) > 0 && longWait ? "warn" : ""),
      metric("Longest wait", fmtDuration(item.longest_wait_s ?? 0), "longest_wait", longWait ? "bad" : ""),
      metric("Service level", fmtPct(sl), "service_level", status === "below" ? "bad" : status === "ok" ? "good" : ""),
      metric("ASA", k.asa_s === null || k.asa_s === undefined ? "—" : fmtDuration(k.asa_s), "asa"),
      metric("AHT", k.aht_s === null || k.aht_s === undefined ? "—" : fmtDuration(k.aht_s), "aht"),
      metric("Abandoned", fmtPct(k.abandon_rate), "abandon_rate", (k.abandon_rate ?? 0) > 0.1 ? "bad" : ""),
      metric("Offered", String(k.offered ?? 0), "offered"),
      metric("Answered", String(k.answered ?? 0), "answered"),
      metric("Ready", String(ag.ready), "agents_ready", ag.ready === 0 && (item.waiting ?? 0) > 0 ? "bad" : ""),
      metric("On call", String(ag.onCall), "agents_on_call"),
      metric("Wrap-up", String(ag.wrapUp), "agents_wrap_up"),
      metric("Paused", String(ag.paused), "agents_paused"),
    ),
  );
}

function render() {
  if (!state) return;
  const ids = Object.keys(state.queues).sort((a, b) => (queueInfo[a]?.name || a).localeCompare(queueInfo[b]?.name || b));
  $("#tiles").replaceChildren(
    tile("overall", "All queues", state.overall, true),
    ...ids.map((id) => tile(id, queueInfo[id]?.name || id, state.queues[id], false)),
  );
  renderClock();
  renderChart();
}

function renderClock() {
  $("#updated").textContent = lastUpdate ? `Updated ${new Date(lastUpdate).toLocaleTimeString()}` : "—";
}

function renderChart() {
  // About a quarter of the screen's height: the tiles above keep the rest.
  const height = Math.max(160, Math.min(600, Math.round(window.innerHeight * 0.22)));
  drawChart($("#chart"), history, { now: Date.now(), spanMs: HOUR_MS, target: DEFAULT_TARGET, height });
  document.body.dataset.historyPoints = String(history.length);
}

function sample() {
  const now = Date.now();
  // Nothing is recorded while disconnected: the chart must not show stale figures as live.
  if (!state || connStatus !== "open" || now - lastSampleAt < SAMPLE_MS) return;
  lastSampleAt = now;
  const o = state.overall || {};
  const sl = o.windows && o.windows["15m"] ? o.windows["15m"].service_level : null;
  history.push({ t: now, w: o.waiting ?? 0, sl: sl ?? null });
  history = history.filter((p) => p.t > now - HOUR_MS);
}

// ---------- window switch ----------
function setWindow(name) {
  windowName = name;
  localStorage.setItem(WINDOW_KEY, name);
  for (const b of document.querySelectorAll(".wb-windows button")) b.setAttribute("aria-pressed", String(b.dataset.window === name));
  render();
}
for (const b of document.querySelectorAll(".wb-windows button")) b.addEventListener("click", () => setWindow(b.dataset.window));

// ---------- connection ----------
let connStatus = "connecting";
function setConn(status) {
  connStatus = status;
  const c = $("#conn");
  c.dataset.status = status;
  c.textContent = status === "open" ? "Live" : status === "connecting" ? "Connecting…" : "Connection lost · reconnecting…";
  const banner = $("#conn-banner");
  const lost = status === "lost";
  banner.classList.toggle("show", lost);
  banner.textContent = lost ? "Connection lost — reconnecting… Figures below are not live." : "";
  document.body.classList.toggle("stale", lost);
}

async function loadQueues() {
  try {
    const data = await api("GET", "/api/v1/queues");
    const list = Array.isArray(data) ? data : data.items || data.queues || [];
    for (const q of list) queueInfo[q.queue_id || q.id] = q;
    render();
  } catch {
    // Names and per-queue targets are a nicety; the ids and the default target still work.
  }
}

const conn = connectWs("/ws/wallboard", {
  onMessage,
  onStatus: setConn,
  onFatal: (code, reason) => {
    setConn("lost");
    $("#conn").textContent = "Not allowed";
    $("#conn-banner").textContent = `The wallboard needs a supervisor account (${reason || code}).`;
  },
});
setWindow(["15m", "60m", "today"].includes(windowName) ? windowName : "15m");
loadQueues();
renderChart();
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(renderChart, 150);
});
setInterval(() => {
  sample();
  renderClock();
  renderChart();
}, SAMPLE_MS);
