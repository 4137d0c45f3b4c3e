// Supervisor view: every agent with state and time in state (filter by queue, team, state),
// force pause / log out, calls waiting per queue and live calls.
//
// Invariants:
// - Data is polled from the live REST views every POLL_MS; between polls "time in state"
//   counts up locally from the server's timestamp, so the table never jumps backwards.
// - A failed poll marks the page stale (banner) and keeps the last data visible.
// - Force actions go through a confirmation dialog and are keyboard operable.
import {
  api, el, $, fmtDuration, normState, stateBadge, requireSession, wireSignOut, showWho,
} from "/assets/common.js";

const POLL_MS = 2000;
const MAX_ROWS = 500;
const SL_THRESHOLD_S = 15; // "answer within three rings": a queue without its own target
const s = await requireSession();
wireSignOut($("#signout"));
showWho($("#who"), s);

const data = { agents: [], queues: [], calls: [], fetchedAt: Date.now(), queueNames: {}, queueTargets: {}, pauseCodes: [] };
let pendingForce = null;
let failures = 0;

function list(resp, ...keys) {
  if (Array.isArray(resp)) return resp;
  for (const k of keys) if (resp && Array.isArray(resp[k])) return resp[k];
  return [];
}

// Elapsed seconds from the server are turned into a start time on this browser's clock,
// so a server clock that differs from the browser's does not skew "time in state".
function sinceMs(obj, fetchedAt) {
  const secs = obj.time_in_state_s ?? obj.waited_s ?? null;
  return secs !== null && secs !== undefined ? fetchedAt - Number(secs) * 1000 : null;
}

// GET /live/calls: {waiting: {queue_id: [call]}, offered: [call], connected: [call]}.
function flattenCalls(resp) {
  if (Array.isArray(resp)) return resp;
  const out = [];
  for (const [queueId, calls] of Object.entries((resp && resp.waiting) || {})) {
    for (const c of calls) out.push({ ...c, queue_id: c.queue_id || queueId, _phase: "waiting" });
  }
  for (const c of (resp && resp.offered) || []) out.push({ ...c, _phase: "ringing" });
  for (const c of (resp && resp.connected) || []) out.push({ ...c, _phase: "connected" });
  return out;
}

async function loadFilters() {
  try {
    const [queues, teams] = await Promise.all([api("GET", "/api/v1/queues"), api("GET", "/api/v1/teams")]);
    const qsel = $("#f-queue");
    for (const q of list(queues, "items", "queues")) {
      const id = q.queue_id || q.id;
      data.queueNames[id] = q.name || id;
      if (q.sl_target_s) data.queueTargets[id] = q.sl_target_s;
      qsel.append(el("option", { value: id }, q.name && q.name !== id ? `${q.name} (${id})` : id));
    }
    const tsel = $("#f-team");
    for (const t of list(teams, "items", "teams")) {
      const id = typeof t === "string" ? t : t.team || t.team_id || t.id || t.name;
      const name = typeof t === "string" ? t : t.name || id;
      tsel.append(el("option", { value: id }, name));
    }
    const params = new URLSearchParams(location.search);
    if (params.get("queue_id")) qsel.value = params.get("queue_id");
    if (params.get("team")) tsel.value = params.get("team");
    if (params.get("state")) $("#f-state").value = params.get("state");
  } catch (err) {
    $("#sup-error").textContent = `Filters could not be loaded: ${err.message}`;
  }
}

async function poll() {
  const q = new URLSearchParams();
  if ($("#f-queue").value) q.set("queue_id", $("#f-queue").value);
  if ($("#f-team").value) q.set("team", $("#f-team").value);
  const qs = q.toString() ? `?${q}` : "";
  try {
    const [agents, queues, calls] = await Promise.all([
      api("GET", `/api/v1/live/agents${qs}`),
      api("GET", "/api/v1/live/queues"),
      api("GET", "/api/v1/live/calls"),
    ]);
    const now = Date.now();
    data.agents = list(agents, "items", "agents").map((a) => ({ ...a, _since: sinceMs(a, now) }));
    data.queues = list(queues, "items", "queues");
    data.calls = flattenCalls(calls).map((c) => ({ ...c, _since: sinceMs(c, now) }));
    data.fetchedAt = now;
    failures = 0;
    setConn("open");
    renderAll();
  } catch (err) {
    failures += 1;
    if (err.status === 0) setConn("lost");
    else $("#sup-error").textContent = err.message;
  }
}

function setConn(status) {
  const c = $("#conn");
  c.dataset.status = status;
  c.textContent = status === "open" ? "Live" : "Connection lost · retrying…";
  const banner = $("#conn-banner");
  banner.classList.toggle("show", status === "lost");
  banner.textContent = status === "lost" ? "The server cannot be reached. Showing the last data received; retrying…" : "";
}

function renderAll() {
  renderQueues();
  renderAgents();
  renderCalls();
}

function renderQueues() {
  const strip = $("#queue-strip");
  const cards = data.queues.map((q) => {
    const id = q.queue_id || q.id;
    const wb = q.wallboard || q;
    const waiting = wb.waiting ?? 0;
    const longest = wb.longest_wait_s ?? null;
    const alert = waiting > 0 && longest !== null && longest > (data.queueTargets[id] ?? SL_THRESHOLD_S);
    const ready = wb.agents ? wb.agents.ready : null;
    const closed = q.open === false;
    return el("div", { class: `queue-card${alert ? " alert" : ""}`, dataset: { queue: id, waiting } },
      el("div", null, el("strong", null, q.name || data.queueNames[id] || id), closed ? [" ", el("span", { class: "badge bad" }, "Closed")] : null),
      el("div", null, el("span", { class: "big", dataset: { field: "waiting" } }, String(waiting)), " waiting"),
      el("div", { class: "hint" }, `Longest ${fmtDuration(longest)}${alert ? " · over 15 s" : ""}`,
        ready !== null && ready !== undefined ? ` · ${ready} ready` : ""),
    );
  });
  strip.replaceChildren(...(cards.length ? cards : [el("p", { class: "empty" }, "No queues.")]));
}

function agentMatches(a) {
  const want = $("#f-state").value;
  return !want || normState(a.state) === want;
}

function renderAgents() {
  const body = $("#agents-body");
  // A floor of 20,000 seats would make a table no one can read nor a browser redraw every
  // 2 s: show the first MAX_ROWS and ask for a filter.
  const matching = data.agents.filter(agentMatches);
  const rows = matching.slice(0, MAX_ROWS);
  $("#agent-count").textContent = matching.length > rows.length
    ? `${rows.length} of ${matching.length} matching agents shown — filter by queue or team to narrow`
    : `${rows.length} of ${data.agents.length} agents shown`;
  // Keep keyboard focus across re-renders: remember which button had it.
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  body.replaceChildren(...rows.map((a) => {
    // The agent view of docs/websocket.md (REST /live/agents returns the same shape).
    const id = a.agent_id;
    const st = a.state;
    const canPause = st !== "logged_out" && st !== "paused";
    const canLogout = st !== "logged_out";
    const name = a.name || id;
    return el("tr", { dataset: { agent: id, state: st } },
      el("th", { scope: "row" }, name, name !== id ? el("div", { class: "hint" }, id) : null),
      el("td", null, a.team || "—"),
      el("td", null, stateBadge(st, a.reason), a.pending ? el("div", { class: "hint" }, `then ${String(a.pending).replace(/_/g, " ")}`) : null),
      el("td", { class: "num", dataset: { since: a._since ?? "", state: st } }, a._since ? fmtDuration((Date.now() - a._since) / 1000) : "—"),
      el("td", null, a.device || "—"),
      el("td", null, a.call_id || "—"),
      el("td", null, el("div", { class: "row" },
        el("button", { type: "button", class: "secondary", disabled: !canPause, dataset: { key: `pause:${id}` },
          "aria-label": `Force pause ${name}`, onclick: () => openForce(id, name, "paused") }, "Force pause"),
        el("button", { type: "button", class: "danger", disabled: !canLogout, dataset: { key: `logout:${id}` },
          "aria-label": `Force log out ${name}`, onclick: () => openForce(id, name, "logged_out") }, "Log out"),
      )),
    );
  }));
  tick();
  if (focused) {
    const again = body.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again && !again.disabled) again.focus();
  }
}

function renderCalls() {
  const body = $("#calls-body");
  if (!data.calls.length) {
    body.replaceChildren(el("tr", null, el("td", { colspan: "5", class: "empty" }, "No calls right now.")));
    return;
  }
  const order = { waiting: 0, ringing: 1, connected: 2 };
  const label = { waiting: "Waiting", ringing: "Ringing agent", connected: "Connected" };
  const calls = [...data.calls].sort((a, b) => (order[a._phase] ?? 3) - (order[b._phase] ?? 3) || (a._since ?? 0) - (b._since ?? 0));
  body.replaceChildren(...calls.map((c) => el("tr", { dataset: { call: c.call_id, phase: c._phase } },
    el("td", null, c.caller_name ? `${c.caller_name} · ${c.caller}` : c.caller || "—",
      c.vip ? [" ", el("span", { class: "badge vip" }, "VIP")] : null,
      c.entitled ? [" ", el("span", { class: "badge ok" }, "Entitled")] : null),
    el("td", null, data.queueNames[c.queue_id] || c.queue_id || "—"),
    el("td", null, label[c._phase] || String(c.state || "").replace(/_/g, " "), c.rona_count ? el("div", { class: "hint" }, `${c.rona_count} missed`) : null),
    el("td", null, c.agent_id || "—"),
    el("td", { class: "num", dataset: { since: c._since ?? "" } }, c._since ? fmtDuration((Date.now() - c._since) / 1000) : "—"),
  )));
}

// "Who is stuck": how long a state may last before the row asks for attention.
const LONG_AFTER_S = { reserved: 30, wrap_up: 120, paused: 900, on_call: 1200 };

function tick() {
  for (const td of document.querySelectorAll("td[data-since]")) {
    const since = Number(td.dataset.since);
    if (!since) continue;
    const secs = (Date.now() - since) / 1000;
    const limit = LONG_AFTER_S[td.dataset.state];
    const long = limit !== undefined && secs > limit;
    td.classList.toggle("long", long);
    // Said in words too, not only by colour.
    td.textContent = fmtDuration(secs) + (long ? " · long" : "");
  }
}

// ---------- force dialog ----------
const dialog = $("#force-dialog");
function openForce(agentId, name, target) {
  pendingForce = { agentId, target };
  $("#force-title").textContent = target === "paused" ? "Force pause" : "Force log out";
  $("#force-what").textContent = target === "paused"
    ? `Pause ${name} now. A call in progress is not cut; the pause applies when it ends.`
    : `Log ${name} out of their phone now.`;
  $("#force-error").textContent = "";
  // A pause takes one of the configured pause codes; a log-out, a free note.
  const field = target === "paused"
    ? el("select", { id: "force-reason", name: "reason", required: true },
      ...data.pauseCodes.map((p) => el("option", { value: p.code }, p.label)))
    : el("input", { id: "force-reason", name: "reason", required: true, maxlength: "64", value: "supervisor logout" });
  $("#force-reason").replaceWith(field);
  if (target === "paused" && data.pauseCodes.some((p) => p.code === "supervisor")) field.value = "supervisor";
  dialog.showModal();
  field.focus();
}

async function loadPauseCodes() {
  try {
    data.pauseCodes = await api("GET", "/api/v1/pause-codes");
  } catch (err) {
    data.pauseCodes = [];
    $("#force-error").textContent = `The pause codes could not be loaded (${err.message}).`;
  }
}

$("#force-cancel").addEventListener("click", () => dialog.close());
$("#force-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!pendingForce) return;
  const reason = $("#force-reason").value.trim();
  if (!reason) {
    $("#force-error").textContent = "Give a reason.";
    $("#force-reason").focus();
    return;
  }
  const btn = $("#force-confirm");
  btn.disabled = true;
  try {
    await api("POST", `/api/v1/agents/${encodeURIComponent(pendingForce.agentId)}/force`, { state: pendingForce.target, reason });
    dialog.close();
    pendingForce = null;
    await poll();
  } catch (err) {
    $("#force-error").textContent = err.message;
  } finally {
    btn.disabled = false;
  }
});

for (const id of ["#f-queue", "#f-team"]) $(id).addEventListener("change", () => { updateUrl(); poll(); });
$("#f-state").addEventListener("change", () => { updateUrl(); renderAgents(); });
$("#filters").addEventListener("submit", (ev) => ev.preventDefault());

function updateUrl() {
  const q = new URLSearchParams();
  for (const [id, key] of [["#f-queue", "queue_id"], ["#f-team", "team"], ["#f-state", "state"]]) if ($(id).value) q.set(key, $(id).value);
  history.replaceState(null, "", q.toString() ? `?${q}` : location.pathname);
}

// A chain of timeouts, not setInterval: a slow poll never overlaps the next one.
async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}
await Promise.all([loadFilters(), loadPauseCodes()]);
loop();
setInterval(tick, 1000);
