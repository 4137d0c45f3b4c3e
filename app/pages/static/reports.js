// Reports: queue, team and agent figures per 15 minutes / hour / day / month from
// GET /api/v1/reports/<kind> (the interval rollups), a service-level-against-target chart
// and the same report as CSV (the server's export, Accept: text/csv).
//
// Invariants: every figure shown comes from the server's rows; the chart's service level
// of a period is computed from the summed counts of the rows of that period with the
// formula the server names (sl_formula), never as an average of percentages.
import { api, el, $, fmtDuration, fmtPct, requireSession, wireSignOut, showWho, session } from "/assets/common.js";

const s = await requireSession();
wireSignOut($("#signout"));
showWho($("#who"), s);

const DEFAULT_TARGET = 0.8;
let targets = {}; // queue id -> sl_target_pct

const today = new Date();
const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
const params = new URLSearchParams(location.search);
$("#r-kind").value = params.get("kind") || "queues";
$("#r-from").value = params.get("from") || iso(new Date(today.getTime() - 6 * 86400000));
$("#r-to").value = params.get("to") || iso(today);
$("#r-group").value = params.get("group") || "day";
$("#r-tz").value = params.get("tz") || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function query(format) {
  const tz = $("#r-tz").value.trim() || "UTC";
  // The dates are days of the report's time zone: from its midnight to the midnight
  // after the last day.
  const next = new Date($("#r-to").value + "T00:00:00Z");
  next.setUTCDate(next.getUTCDate() + 1);
  const from = localMidnight($("#r-from").value, tz);
  const to = localMidnight(next.toISOString().slice(0, 10), tz);
  const q = new URLSearchParams({ from, to, group: $("#r-group").value, tz });
  if (format) q.set("format", format);
  return q;
}

function localMidnight(day, tz) {
  // The UTC instant of 00:00 on `day` in `tz` (two passes settle a DST change).
  const guess = new Date(day + "T00:00:00Z");
  let t = guess.getTime();
  for (let i = 0; i < 2; i++) {
    const parts = new Intl.DateTimeFormat("en-US", { timeZone: tz, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).formatToParts(new Date(t));
    const get = (k) => Number(parts.find((p) => p.type === k).value);
    const shown = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"));
    t += guess.getTime() - shown;
  }
  return new Date(t).toISOString();
}

const COLUMNS = {
  queues: [["offered", "Offered"], ["answered", "Answered"], ["abandoned", "Abandoned"], ["short_abandoned", "Short ab."], ["service_level", "SL", "pct"], ["asa_s", "ASA", "dur"], ["aht_s", "AHT", "dur"], ["max_wait_s", "Longest wait", "dur"], ["overflowed", "Overflow"], ["transfers", "Transfers"], ["rona", "RONA"]],
  teams: [["answered", "Handled"], ["aht_s", "AHT", "dur"], ["talk_s", "Talk", "dur"], ["wrapup_s", "Wrap-up", "dur"], ["transfers", "Transfers"], ["rona", "RONA"], ["login_s", "Logged in", "dur"], ["paused_s", "Paused", "dur"], ["paused_by_reason", "Pause by reason", "reasons"], ["occupancy", "Occupancy", "pct"]],
};
COLUMNS.agents = COLUMNS.teams;

function cell(v, kind) {
  if (v === null || v === undefined) return "—";
  if (kind === "pct") return fmtPct(v);
  if (kind === "dur") return fmtDuration(v);
  if (kind === "reasons") {
    const parts = Object.entries(v).sort((a, b) => b[1] - a[1]).map(([r, s]) => `${r} ${fmtDuration(s)}`);
    return parts.length ? parts.join(" · ") : "—";
  }
  return String(v);
}

function periodLabel(p, group) {
  const text = p.slice(0, 16).replace("T", " ");
  return group === "month" ? text.slice(0, 7) : group === "day" ? text.slice(0, 10) : text;
}

function renderTable(body) {
  const cols = COLUMNS[$("#r-kind").value];
  $("#report-table thead").replaceChildren(el("tr", null, el("th", { scope: "col" }, "Period"), el("th", { scope: "col" }, "Name"), ...cols.map(([, label]) => el("th", { scope: "col" }, label))));
  $("#report-table tbody").replaceChildren(...body.rows.map((r) => el("tr", { dataset: { id: r.id, period: r.period } },
    el("td", null, periodLabel(r.period, body.group)), el("td", null, r.name || String(r.id)),
    ...cols.map(([key, , kind]) => el("td", { dataset: { col: key } }, cell(r[key], kind))))));
}

function renderChart(body) {
  const section = $("#chart-section");
  if ($("#r-kind").value !== "queues" || !body.rows.length) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const byPeriod = new Map();
  for (const r of body.rows) {
    const p = byPeriod.get(r.period) || { within: 0, denom: 0 };
    p.within += r.answered_in_sl;
    p.denom += r.answered + r.abandoned + (body.sl_formula === "offered" ? r.short_abandoned : 0);
    byPeriod.set(r.period, p);
  }
  const points = [...byPeriod.entries()].map(([period, p]) => ({ period, sl: p.denom ? p.within / p.denom : null }));
  const ids = [...new Set(body.rows.map((r) => r.id))];
  const target = Math.max(...ids.map((id) => targets[id] ?? DEFAULT_TARGET));
  const W = 960, H = 260, L = 48, R = 16, T = 12, B = 36;
  const x = (i) => L + (points.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + (1 - v) * (H - T - B);
  const NS = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, text) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v)); if (text !== undefined) n.textContent = text; return n; };
  const below = points.filter((p) => p.sl !== null && p.sl < target).length;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", id: "sl-chart-svg", "aria-label": `Service level per period against the ${Math.round(target * 100)} percent target; ${below} of ${points.length} periods below it.` });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#2d3b50" }));
    root.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", fill: "#b8c3d1", "font-size": 12 }, `${v * 100}%`));
  }
  root.append(svg("line", { x1: L, x2: W - R, y1: y(target), y2: y(target), stroke: "#ffc266", "stroke-width": 2, "stroke-dasharray": "8 6", "data-series": "target" }));
  let d = "";
  points.forEach((p, i) => {
    if (p.sl === null) return;
    d += `${d ? " L" : "M"} ${x(i).toFixed(1)} ${y(p.sl).toFixed(1)}`;
    root.append(svg("circle", { cx: x(i), cy: y(p.sl), r: 4, fill: p.sl < target ? "#ff6b6b" : "#5fd38a", "data-period": p.period, "data-sl": p.sl.toFixed(4) }));
  });
  if (d) root.append(svg("path", { d, fill: "none", stroke: "#5fd38a", "stroke-width": 3, "data-series": "sl" }));
  const step = Math.max(1, Math.ceil(points.length / 8));
  points.forEach((p, i) => { if (i % step === 0) root.append(svg("text", { x: x(i), y: H - 12, "text-anchor": "middle", fill: "#b8c3d1", "font-size": 12 }, periodLabel(p.period, body.group))); });
  $("#sl-chart").replaceChildren(root);
}

async function show(ev) {
  if (ev) ev.preventDefault();
  $("#r-error").textContent = "";
  $("#r-status").textContent = "Loading…";
  try {
    const body = await api("GET", `/api/v1/reports/${$("#r-kind").value}?${query()}`);
    renderTable(body);
    renderChart(body);
    $("#r-status").textContent = `${body.rows.length} rows · service level: ${body.sl_formula.replaceAll("_", " ")}`;
    history.replaceState(null, "", `?${new URLSearchParams({ kind: $("#r-kind").value, from: $("#r-from").value, to: $("#r-to").value, group: $("#r-group").value, tz: $("#r-tz").value })}`);
  } catch (err) {
    $("#r-status").textContent = "";
    $("#r-error").textContent = err.message;
  }
}

async function downloadCsv() {
  $("#r-error").textContent = "";
  const resp = await fetch(`/api/v1/reports/${$("#r-kind").value}?${query()}`, { headers: { Accept: "text/csv", Authorization: "Bearer " + session.get().token } });
  if (!resp.ok) {
    $("#r-error").textContent = `The CSV could not be made (${resp.status}).`;
    return;
  }
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: `${$("#r-kind").value}-${$("#r-from").value}-${$("#r-to").value}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function loadTargets() {
  try {
    const data = await api("GET", "/api/v1/queues?limit=500");
    for (const q of data.items || data) targets[q.id] = q.sl_target_pct;
  } catch {
    targets = {}; // the default target still draws
  }
}

$("#report-form").addEventListener("submit", show);
$("#r-csv").addEventListener("click", downloadCsv);
await loadTargets();
await show();
