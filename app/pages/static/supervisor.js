// Supervisor view: every agent with state and time in state (filter by queue, team, state),
// force pause / log out, calls waiting per queue and live calls.
//
// Invariants:
// - Data is polled from the live REST views every POLL_MS; between polls "time in state"
//   counts up locally from the server's timestamp, so the table never jumps backwards.
// - A failed poll marks the page stale (banner) and keeps the last data visible.
// - Force actions go through a confirmation dialog and are keyboard operable.
import {
  api, el, $, fmtDuration, toMs, normState, stateBadge, requireSession, wireSignOut, showWho,
} from "/assets/common.js";

const POLL_MS = 2000;
const s = requireSession();
wireSignOut($("#signout"));
showWho($("#who"), s);

const data = { agents: [], queues: [], calls: [], fetchedAt: Date.now(), queueNames: {} };
let pendingForce = null;
let failures = 0;

function list(resp, ...keys) {
  if (Array.isArray(resp)) return resp;
  for (const k of keys) if (resp && Array.isArray(resp[k])) return resp[k];
  return [];
}

function sinceMs(obj, fetchedAt) {
  const since = toMs(obj.since ?? obj.state_since ?? obj.changed_at ?? null);
  if (since !== null) return since;
  const secs = obj.time_in_state_s ?? obj.seconds_in_state ?? null;
  return secs !== null ? fetchedAt - secs * 1000 : null;
}

async function loadFilters() {
  try {
    const [queues, teams] = await Promise.all([api("GET", "/api/v1/queues"), api("GET", "/api/v1/teams")]);
    const qsel = $("#f-queue");
    for (const q of list(queues, "items", "queues")) {
      const id = q.queue_id || q.id;
      data.queueNames[id] = q.name || id;
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
    data.calls = list(calls, "items", "calls").map((c) => ({ ...c, _since: sinceMs(c, now) ?? toMs(c.arrived_at || c.answered_at) }));
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
    const waiting = q.waiting ?? q.calls_waiting ?? 0;
    const longest = q.longest_wait_s ?? q.longest_wait ?? null;
    const target = q.sl_target_s ?? 15;
    const alert = longest !== null && longest > target;
    const ready = q.agents_ready ?? (q.agents && q.agents.ready);
    return el("div", { class: `queue-card${alert ? " alert" : ""}`, dataset: { queue: id } },
      el("div", null, el("strong", null, q.name || data.queueNames[id] || id)),
      el("div", null, el("span", { class: "big", dataset: { field: "waiting" } }, String(waiting)), " waiting"),
      el("div", { class: "hint" }, `Longest ${fmtDuration(longest)}${alert ? " · over target" : ""}`,
        ready !== undefined && ready !== null ? ` · ${ready} ready` : ""),
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
  const rows = data.agents.filter(agentMatches);
  $("#agent-count").textContent = `${rows.length} of ${data.agents.length} agents shown`;
  // Keep keyboard focus across re-renders: remember which button had it.
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  body.replaceChildren(...rows.map((a) => {
    const id = a.agent_id || a.id;
    const st = normState(a.state);
    const canPause = st !== "logged_out" && st !== "paused";
    const canLogout = st !== "logged_out";
    const name = a.name || a.display_name || id;
    return el("tr", { dataset: { agent: id, state: st } },
      el("th", { scope: "row" }, name, name !== id ? el("div", { class: "hint" }, id) : null),
      el("td", null, a.team || "—"),
      el("td", null, stateBadge(st, a.reason || a.pause_reason)),
      el("td", { class: "num", dataset: { since: a._since ?? "" } }, a._since ? fmtDuration((Date.now() - a._since) / 1000) : "—"),
      el("td", null, a.device || "—"),
      el("td", null, a.call_id ? [a.caller || a.call_id, a.queue_id ? el("div", { class: "hint" }, a.queue_id) : null] : "—"),
      el("td", null, el("div", { class: "row" },
        el("button", { type: "button", class: "secondary", disabled: !canPause, dataset: { key: `pause:${id}` },
          "aria-label": `Force pause ${name}`, onclick: () => openForce(id, name, "paused") }, "Force pause"),
        el("button", { type: "button", class: "danger", disabled: !canLogout, dataset: { key: `logout:${id}` },
          "aria-label": `Force log out ${name}`, onclick: () => openForce(id, name, "logged_out") }, "Log out"),
      )),
    );
  }));
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
  const order = { waiting: 0, queued: 0, offered: 1, ringing: 1, answered: 2, on_call: 2, talking: 2 };
  const calls = [...data.calls].sort((a, b) => (order[a.status || a.state] ?? 3) - (order[b.status || b.state] ?? 3) || (a._since ?? 0) - (b._since ?? 0));
  body.replaceChildren(...calls.map((c) => el("tr", { dataset: { call: c.call_id || c.id } },
    el("td", null, c.caller || c.caller_id || "—", c.vip ? [" ", el("span", { class: "badge vip" }, "VIP")] : null),
    el("td", null, data.queueNames[c.queue_id] || c.queue_id || "—"),
    el("td", null, String(c.status || c.state || "").replace(/_/g, " ")),
    el("td", null, c.agent_id || "—"),
    el("td", { class: "num", dataset: { since: c._since ?? "" } }, c._since ? fmtDuration((Date.now() - c._since) / 1000) : fmtDuration(c.wait_s ?? c.waiting_s)),
  )));
}

function tick() {
  for (const td of document.querySelectorAll("td[data-since]")) {
    const since = Number(td.dataset.since);
    if (since) td.textContent = fmtDuration((Date.now() - since) / 1000);
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
  $("#force-reason").value = target === "paused" ? "supervisor" : "supervisor logout";
  dialog.showModal();
  $("#force-reason").select();
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
await loadFilters();
loop();
setInterval(tick, 1000);
