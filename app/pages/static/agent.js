// Agent desktop: log in to a device, ready / pause / log out, screen pop on offer, call
// timer, wrap-up with a disposition.
//
// Invariants:
// - The server is the source of truth for the agent's state: buttons only send requests;
//   what the page shows comes from GET .../state and the agent websocket's messages.
// - The screen pop is rendered from the `offer` message itself, before the phone rings,
//   and announced through an aria-live region.
// - Messages are read in the one shape docs/websocket.md documents (app/live/protocol.py):
//   the agent view of REST and `hello`, the `state`, `offer` and `call` frames.
// - After a call ends, Ready stays disabled until a wrap-up with a disposition is saved.
// - The phone is picked from the devices the agent may use (GET .../devices), sent by id;
//   never typed: the server refuses a dial string at login.
import {
  api, connectWs, el, $, fmtDuration, fmtDate, fmtDateTime, stateBadge,
  requireSession, wireSignOut, showWho,
} from "/assets/common.js";

const s = await requireSession();
const params = new URLSearchParams(location.search);
// Supervisors/admins may open a given agent's desktop with ?agent=<id>.
const agentId = s.agentId || params.get("agent");
wireSignOut($("#signout"));
showWho($("#who"), s);

const view = {
  state: "unknown",
  reason: null,
  since: null,
  device: null,
  offer: null, // {call, pop, ring_timeout_s, receivedAt}
  callId: null,
  answeredAt: null,
  endedAt: null,
  wrapupPending: false,
  pending: null,
};

let tick = null;
const DEVICE_KEY = `switchboard.device.${agentId}`;

function setError(msg) {
  $("#action-error").textContent = msg || "";
}

async function act(path, body, button) {
  setError("");
  if (button) button.disabled = true;
  try {
    const resp = await api("POST", `/api/v1/agents/${encodeURIComponent(agentId)}/${path}`, body ?? {});
    applyView(resp);
    return resp;
  } catch (err) {
    setError(err.message);
    return null;
  } finally {
    if (button) button.disabled = false;
    render();
  }
}

// ---------- state ----------
// An agent view (REST responses, `hello`'s `state`): the whole state.
function applyView(agent) {
  if (!agent || typeof agent !== "object") return;
  applyChange(agent.state, agent.reason, agent.call_id, agent.time_in_state_s);
  view.pending = agent.pending;
  if (agent.device) view.device = agent.device;
  render();
  // After a page reload mid-call the offer is gone: fetch the call and its pop again.
  const onCall = agent.state === "reserved" || agent.state === "on_call" || agent.state === "wrap_up";
  if (onCall && agent.call_id && !view.offer) restoreCall(agent.call_id, agent.state);
}

async function restoreCall(callId, state) {
  let data;
  try {
    data = await api("GET", `/api/v1/customers/pop?call_id=${encodeURIComponent(callId)}`);
  } catch (err) {
    return; // the call is gone meanwhile: nothing to show
  }
  if (view.offer || view.state === "ready" || view.state === "logged_out") return;
  const call = data.call;
  view.offer = { call, pop: data.pop, ringTimeout: null, receivedAt: Date.now() };
  view.callId = call.call_id;
  if (state !== "reserved" && call.answered_at) {
    view.answeredAt = Date.parse(call.answered_at) || Date.now();
    view.endedAt = state === "wrap_up" ? (Date.parse(call.ended_at) || Date.now()) : null;
  }
  renderPop();
  render();
}

// An unknown caller: the agent links the number (and this call) to a customer found by
// name, or to a new one; the pop is then fetched again.
async function linkCaller(customerId) {
  const call = view.offer.call;
  await api("POST", `/api/v1/customers/${customerId}/phones`, { phone: call.caller, call_id: call.call_id });
  const pop = await api("GET", `/api/v1/crm/lookup?phone=${encodeURIComponent(call.caller)}`);
  if (view.offer && view.offer.call.call_id === call.call_id) {
    view.offer.pop = pop;
    renderPop();
    render();
  }
}

function linkForm() {
  const msg = el("p", { class: "error", id: "link-error", role: "alert" });
  const results = el("ul", { class: "plain", id: "link-results" });
  const guard = async (fn) => {
    msg.textContent = "";
    try { await fn(); } catch (err) { msg.textContent = err.message; }
  };
  const search = el("form", { id: "link-search", class: "inline" },
    el("label", { for: "link-name" }, "Find customer by name"),
    el("input", { id: "link-name", type: "search", maxlength: "200", required: "" }),
    el("button", { type: "submit" }, "Search"));
  search.addEventListener("submit", (ev) => {
    ev.preventDefault();
    guard(async () => {
      const q = new URLSearchParams({ name: $("#link-name").value, limit: "10" });
      const page = await api("GET", `/api/v1/customers?${q}`);
      results.replaceChildren(...(page.items.length ? page.items.map((c) => {
        const b = el("button", { type: "button", class: "link-to", dataset: { customer: String(c.id) } }, `Link to ${c.name} (#${c.id})`);
        b.addEventListener("click", () => guard(() => linkCaller(c.id)));
        return el("li", null, b);
      }) : [el("li", { class: "empty" }, "No customer with that name.")]));
    });
  });
  const create = el("form", { id: "link-create", class: "inline" },
    el("label", { for: "new-customer-name" }, "New customer name"),
    el("input", { id: "new-customer-name", type: "text", maxlength: "200", required: "" }),
    el("button", { type: "submit" }, "Create and link"));
  create.addEventListener("submit", (ev) => {
    ev.preventDefault();
    guard(async () => {
      const c = await api("POST", "/api/v1/customers", { name: $("#new-customer-name").value });
      await linkCaller(c.id);
    });
  });
  return el("div", { id: "link-caller" }, search, results, create, msg);
}

function ordinal(n) {
  const tail = n % 100 >= 11 && n % 100 <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
  return `${n}${tail}`;
}

function hoursText(h) {
  return h % 24 === 0 ? (h === 24 ? "24 h" : `${h / 24} days`) : `${h} h`;
}

// "3rd contact in 24 h · 5 in 7 days": this call is one more than the stored contacts.
function repeatMark(pop) {
  const r = pop.repeat;
  if (!r || (r.contacts_short === 0 && r.contacts_long === 0)) return null;
  const text = `${ordinal(r.contacts_short + 1)} contact in ${hoursText(r.short_window_h)} · ${r.contacts_long} earlier in ${hoursText(r.long_window_h)}`;
  return el("span", { class: `badge ${r.contacts_short > 0 ? "bad" : "warn"}`, id: "pop-repeat", dataset: { short: String(r.contacts_short), long: String(r.contacts_long) } }, text);
}

// A `state` frame: the transition (the view's pending/device do not change with it).
function applyState(msg) {
  applyChange(msg.state, msg.reason, msg.call_id, null);
  // What was pending (pause or log out after the call) has been applied or dropped.
  if (view.state === "logged_out" || view.state === "ready" || view.state === "paused") view.pending = null;
  render();
}

function applyChange(state, reason, callId, elapsed) {
  const prev = view.state;
  view.state = state;
  view.reason = reason;
  // Time in state is measured on this browser's clock: from the server's elapsed seconds
  // when given, else from the moment the change reached us (server clocks may differ).
  if (elapsed !== null && elapsed !== undefined) view.since = Date.now() - Number(elapsed) * 1000;
  else if (prev !== view.state || view.since === null) view.since = Date.now();
  if (view.state === "wrap_up") view.wrapupPending = true;
  if (view.state === "logged_out") {
    view.wrapupPending = false;
    view.offer = null;
  }
  // A reservation that ended without an answer (RONA, caller hung up) clears the offer,
  // but only the offer of the call this change is about: a late message about an earlier
  // call must not wipe the pop of the call ringing now.
  if (prev === "reserved" && (view.state === "ready" || view.state === "paused") && !view.answeredAt
      && (!callId || callId === view.callId)) {
    clearOffer();
  }
}

function clearOffer() {
  view.offer = null;
  view.callId = null;
  view.answeredAt = null;
  view.endedAt = null;
  $("#offer-live").replaceChildren();
  $("#pop").hidden = true;
}

function onMessage(msg) {
  if (msg.type === "hello") {
    applyView(msg.state);
  } else if (msg.type === "state") {
    applyState(msg);
  } else if (msg.type === "offer") {
    onOffer(msg);
  } else if (msg.type === "call") {
    onCall(msg);
  }
}

function onOffer(msg) {
  const call = msg.call;
  view.offer = { call, pop: msg.pop, ringTimeout: msg.ring_timeout_s, receivedAt: Date.now() };
  view.callId = call.call_id;
  view.answeredAt = null;
  view.endedAt = null;
  view.wrapupPending = false;
  if (view.state !== "on_call") {
    view.state = "reserved";
    view.since = Date.now();
  }
  renderPop();
  render();
}

function onCall(msg) {
  const callId = msg.call_id;
  if (view.callId && callId !== view.callId) return; // about another (earlier) call
  if (msg.event === "answered") {
    view.callId = callId;
    view.answeredAt = Date.now();
    view.endedAt = null;
    view.state = "on_call";
    view.since = view.answeredAt;
  } else if (msg.event === "ended") {
    view.endedAt = Date.now();
    // Only a call this agent answered needs a wrap-up.
    if (view.answeredAt && msg.answered) view.wrapupPending = true;
    else clearOffer();
  }
  render();
}

// ---------- rendering ----------
function render() {
  const st = view.state;
  $("#state-badge").replaceChildren(stateBadge(st, view.reason));
  $("#state-since").textContent = [
    view.since ? `for ${fmtDuration((Date.now() - view.since) / 1000)}` : "",
    view.pending ? `· then ${String(view.pending).replace(/_/g, " ")}` : "",
  ].join(" ");

  const loggedOut = st === "logged_out";
  $("#login-form").hidden = !loggedOut;
  $("#session-controls").hidden = loggedOut || st === "unknown";
  $("#device-shown").textContent = view.device || "—";

  const busy = st === "reserved" || st === "on_call";
  const readyBtn = $("#ready-btn");
  readyBtn.disabled = busy || st === "ready" || view.wrapupPending;
  readyBtn.title = view.wrapupPending ? "Save the wrap-up first" : "";
  if (view.wrapupPending) readyBtn.setAttribute("aria-describedby", "wrapup-title");
  else readyBtn.removeAttribute("aria-describedby");
  $("#pause-btn").disabled = busy;
  $("#logout-btn").disabled = busy;

  $("#wrapup-form").hidden = !view.wrapupPending;
  $("#idle-note").hidden = !!view.offer || view.wrapupPending;
  renderCallBanner();
}

function renderCallBanner() {
  const live = $("#offer-live");
  if (!view.offer) {
    live.replaceChildren();
    return;
  }
  const call = view.offer.call;
  const customer = view.offer.pop ? view.offer.pop.customer : {};
  const who = customer.name || call.caller_name || call.caller || "Unknown caller";
  const number = call.caller || "";
  const queue = call.queue_name || call.queue_id;
  let cls = "offer-banner";
  let headline;
  let detail;
  if (view.endedAt && view.answeredAt) {
    cls += " ended";
    headline = `Call ended · ${who}`;
    detail = null;
  } else if (view.answeredAt) {
    cls += " connected";
    headline = `On call with ${who}`;
    detail = null;
  } else {
    headline = `Incoming call from ${who}`;
    const left = view.offer.ringTimeout ? Math.max(0, view.offer.ringTimeout - (Date.now() - view.offer.receivedAt) / 1000) : null;
    detail = left !== null ? `Your phone rings now. Answer within ${Math.ceil(left)} s.` : "Your phone rings now.";
  }
  const timer = view.answeredAt
    ? el("div", null, el("span", { class: "hint" }, view.endedAt ? "Talk time " : "Call time "), el("span", { id: "call-timer", class: "timer", role: "timer", "aria-live": "off" },
        fmtDuration(((view.endedAt || Date.now()) - view.answeredAt) / 1000)))
    : null;
  const banner = el("div", { class: cls, id: "offer-banner", dataset: { phase: view.endedAt ? "ended" : view.answeredAt ? "connected" : "offered" } },
    el("strong", { id: "offer-headline" }, headline),
    el("div", null, [number && `Number ${number}`, queue && `Queue ${queue}`, customer.vip ? "VIP customer" : null].filter(Boolean).join(" · ")),
    detail ? el("div", { class: "hint" }, detail) : null,
    timer,
  );
  // Re-render only when the text changes so screen readers don't repeat the offer every second.
  const old = live.firstElementChild;
  if (old && old.dataset.phase === banner.dataset.phase && old.querySelector("#offer-headline")?.textContent === headline) {
    const t = old.querySelector("#call-timer");
    const nt = banner.querySelector("#call-timer");
    if (t && nt) t.textContent = nt.textContent;
    const hints = old.querySelectorAll(".hint");
    const nhints = banner.querySelectorAll(".hint");
    hints.forEach((h, i) => { if (nhints[i] && h.id !== "call-timer") h.textContent = nhints[i].textContent; });
    return;
  }
  live.replaceChildren(banner);
}

// ScreenPop (app/crm.py): top-level entitled / entitlement_reason / entitled_until, and per
// product an `entitlement` {entitled, reason, until}.
function entitlementOf(pop) {
  const best = pop.products.find((p) => p.entitlement.entitled && (!pop.entitled_until || p.entitlement.until === pop.entitled_until));
  return { entitled: pop.entitled, reason: pop.entitlement_reason, until: pop.entitled_until, product: best ? best.model : null };
}

function reasonText(reason, until) {
  const r = String(reason || "").toLowerCase();
  const end = until ? fmtDate(until) : null;
  if (r.includes("plan") || r.includes("protection"))
    return end ? `Protection plan runs until ${end}` : "Under a protection plan";
  if (r.includes("90") || r.includes("purchase") || r.includes("warranty") || r.includes("recent"))
    return end ? `Within 90 days of purchase (until ${end})` : "Within 90 days of purchase";
  if (reason) return end ? `${reason} (until ${end})` : String(reason);
  return end ? `Until ${end}` : "";
}

function renderPop() {
  const pop = view.offer ? view.offer.pop : null;
  const body = $("#pop-body");
  $("#pop").hidden = false;
  if (!pop) {
    body.replaceChildren(
      el("p", { class: "empty", id: "pop-unknown" }, "No customer record for this number."),
      view.offer && view.offer.call && view.offer.call.caller ? linkForm() : null,
    );
    return;
  }
  const c = pop.customer;
  const ent = entitlementOf(pop);
  const entReason = ent.reason;
  const entBox = el("div", { class: `entitlement ${ent.entitled ? "yes" : "no"}`, id: "pop-entitlement", dataset: { entitled: ent.entitled ? "yes" : "no" } },
    el("strong", null, ent.entitled ? "Entitled to free technical support" : "Not entitled to free support"),
    ent.entitled ? el("div", null, [ent.product && `${ent.product}: `, reasonText(entReason, ent.until)].filter(Boolean).join("")) : (entReason ? el("div", null, String(entReason)) : null),
  );

  const products = pop.products;
  const productTable = products.length
    ? el("table", { id: "pop-products" },
        el("caption", { class: "visually-hidden" }, "Products"),
        el("thead", null, el("tr", null, el("th", { scope: "col" }, "Product"), el("th", { scope: "col" }, "Purchased"),
          el("th", { scope: "col" }, "Protection plan ends"), el("th", { scope: "col" }, "Support"))),
        el("tbody", null, products.map((p) => {
          const pe = p.entitlement;
          return el("tr", { dataset: { entitled: pe.entitled ? "yes" : "no" } },
            el("td", null, p.model,
              el("div", { class: "hint" }, [p.sku && p.sku !== p.model ? p.sku : null, p.serial && `S/N ${p.serial}`].filter(Boolean).join(" · "))),
            el("td", { class: "nowrap" }, fmtDate(p.purchase_date)),
            el("td", { class: "nowrap" }, p.protection_plan_end ? fmtDate(p.protection_plan_end) : "None"),
            el("td", null, el("span", { class: `badge ${pe.entitled ? "ok" : "bad"}` }, pe.entitled ? "Entitled" : "Not entitled"),
              pe.entitled ? el("div", { class: "hint" }, reasonText(pe.reason, pe.until)) : null),
          );
        })))
    : el("p", { class: "empty" }, "No products on record.");

  const interactions = pop.interactions;
  const interList = interactions.length
    ? el("ul", { class: "plain", id: "pop-interactions" }, interactions.slice(0, 5).map((i) => el("li", null,
        el("strong", null, fmtDateTime(i.at)), " · ",
        [i.channel, i.result, i.queue_id && `queue ${i.queue_id}`, i.agent_id && `agent ${i.agent_id}`, i.disposition_code].filter(Boolean).join(" · "),
        i.summary ? el("div", null, i.summary) : null,
        i.notes ? el("div", { class: "hint" }, i.notes) : null,
      )))
    : el("p", { class: "empty" }, "No earlier interactions.");

  const cases = pop.open_cases;
  const caseList = cases.length
    ? el("ul", { class: "plain", id: "pop-cases" }, cases.map((k) => el("li", null,
        el("strong", null, `#${k.id}`), " ",
        k.subject,
        " ", k.severity ? el("span", { class: `badge ${k.severity === "urgent" || k.severity === "special" ? "bad" : "warn"}` }, k.severity) : null,
        k.overdue ? [" ", el("span", { class: "badge bad" }, "Overdue")] : null,
        el("div", { class: "hint" }, [k.kind, k.stage, k.opened_at && `opened ${fmtDate(k.opened_at)}`, k.due_at && `due ${fmtDateTime(k.due_at)}`].filter(Boolean).join(" · ")),
      )))
    : el("p", { class: "empty" }, "No open cases.");

  const badges = [];
  if (c.vip) badges.push(el("span", { class: "badge vip", id: "pop-vip" }, "VIP"));
  if (c.member) badges.push(el("span", { class: "badge member", id: "pop-member" }, "Member"));
  const repeat = repeatMark(pop);
  if (repeat) badges.push(repeat);

  body.replaceChildren(
    el("div", { class: "status-line" }, el("span", { class: "customer-name", id: "pop-name" }, c.name || "Unknown customer"), badges),
    el("p", { class: "hint" }, [`Customer #${c.id}`, pop.phone].filter(Boolean).join(" · ")),
    entBox,
    el("div", { class: "pop-grid" },
      el("section", { "aria-labelledby": "h-products", class: "pop-products" }, el("h3", { id: "h-products" }, "Products"), productTable),
      el("section", { "aria-labelledby": "h-cases" }, el("h3", { id: "h-cases" }, `Open cases (${cases.length})`), caseList,
        el("a", { id: "pop-new-case", target: "_blank", rel: "opener", href: `/cases?${new URLSearchParams({ customer_id: String(c.id), ...(view.offer && view.offer.call && view.offer.call.call_id ? { call_id: view.offer.call.call_id } : {}) })}` }, "New case for this call")),
      el("section", { "aria-labelledby": "h-inter" }, el("h3", { id: "h-inter" }, "Last contacts"), interList),
    ),
  );
}

// ---------- actions ----------
$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  // Empty: the agent's own device; else the id of a registered device assigned to it.
  const deviceId = $("#device").value;
  const resp = await act("login", deviceId ? { device_id: Number(deviceId) } : {}, $("#login-btn"));
  if (resp !== null) {
    localStorage.setItem(DEVICE_KEY, deviceId);
    render();
    $("#ready-btn").focus();
  }
});

$("#ready-btn").addEventListener("click", async () => {
  if (view.wrapupPending) {
    setError("Save the wrap-up before going ready.");
    $("#disposition").focus();
    return;
  }
  await act("ready", {}, $("#ready-btn"));
});

$("#pause-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await act("pause", { reason: $("#pause-reason").value }, $("#pause-btn"));
});

$("#logout-btn").addEventListener("click", async () => {
  await act("logout", {}, $("#logout-btn"));
});

$("#wrapup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const code = $("#disposition").value.trim();
  const err = $("#wrapup-error");
  err.textContent = "";
  if (!code) {
    err.textContent = "Choose a disposition.";
    $("#disposition").setAttribute("aria-invalid", "true");
    $("#disposition").focus();
    return;
  }
  $("#disposition").removeAttribute("aria-invalid");
  // The server wraps up the agent's last call; the body takes exactly these two fields.
  const notes = $("#notes").value.trim();
  const body = notes ? { disposition_code: code, notes } : { disposition_code: code };
  const btn = $("#wrapup-btn");
  btn.disabled = true;
  try {
    const resp = await api("POST", `/api/v1/agents/${encodeURIComponent(agentId)}/wrapup`, body);
    view.wrapupPending = false;
    $("#wrapup-form").reset();
    clearOffer();
    applyView(resp);
    render();
    $("#ready-btn").focus();
  } catch (e) {
    err.textContent = e.message;
  } finally {
    btn.disabled = false;
  }
});

// A select does not submit its form on Enter by itself; the free-text field it replaced did.
$("#device").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter") {
    ev.preventDefault();
    $("#login-form").requestSubmit();
  }
});

// ---------- start ----------
async function loadDevices() {
  const sel = $("#device");
  try {
    const list = await api("GET", `/api/v1/agents/${encodeURIComponent(agentId)}/devices`);
    sel.replaceChildren();
    for (const d of list) {
      const text = d.id === null ? `Your own phone (${d.dial})` : `${d.label || "Phone"} (${d.dial})`;
      sel.append(el("option", { value: d.id === null ? "" : String(d.id) }, text));
    }
  } catch (err) {
    // Without the list the agent still logs in on its own phone (the first option).
    $("#device-hint").textContent = `The list of phones could not be loaded (${err.message}); your own phone is used.`;
  }
  const saved = localStorage.getItem(DEVICE_KEY);
  if (saved && [...sel.options].some((o) => o.value === saved)) sel.value = saved;
}

// The pause codes an admin configured (GET /api/v1/pause-codes), in their order.
async function loadPauseCodes() {
  const sel = $("#pause-reason");
  try {
    const list = await api("GET", "/api/v1/pause-codes");
    sel.replaceChildren(...list.map((p) => el("option", { value: p.code }, p.label)));
    $("#pause-hint").textContent = list.length ? "" : "No pause codes are configured.";
  } catch (err) {
    $("#pause-hint").textContent = `The pause codes could not be loaded (${err.message}).`;
  }
}

async function loadDispositions() {
  try {
    const data = await api("GET", "/api/v1/dispositions");
    const list = Array.isArray(data) ? data : data.items || data.dispositions || [];
    const sel = $("#disposition");
    for (const d of list) {
      const code = typeof d === "string" ? d : d.code || d.disposition_code;
      const label = typeof d === "string" ? d : d.label || d.name || d.description || code;
      sel.append(el("option", { value: code }, label));
    }
  } catch (err) {
    // Without the list the agent can still type a code; the server checks it exists.
    const input = el("input", { id: "disposition", name: "disposition_code", required: true, "aria-required": "true",
      "aria-describedby": "disposition-hint", autocomplete: "off", maxlength: "64" });
    $("#disposition").replaceWith(input);
    input.after(el("span", { id: "disposition-hint", class: "hint" }, `The list of dispositions could not be loaded (${err.message}); type the code.`));
  }
}

async function loadState() {
  try {
    applyView(await api("GET", `/api/v1/agents/${encodeURIComponent(agentId)}/state`));
  } catch (err) {
    setError(err.message);
  }
}

function setConn(status) {
  const c = $("#conn");
  c.dataset.status = status;
  c.textContent = status === "open" ? "Connected" : status === "connecting" ? "Connecting…" : "Connection lost · reconnecting…";
  const banner = $("#conn-banner");
  banner.classList.toggle("show", status === "lost");
  banner.textContent = status === "lost" ? "Connection to the server lost. Reconnecting… Calls may not be shown until it is back." : "";
}

if (!agentId) {
  setError("This account is not an agent. Open /agent?agent=<id> to watch an agent's desktop.");
} else {
  render();
  loadDevices();
  loadDispositions();
  loadPauseCodes();
  loadState();
  connectWs(`/ws/agents/${encodeURIComponent(agentId)}`, {
    onMessage,
    onStatus: setConn,
    // After a reconnect the server's view wins: re-read the state we may have missed.
    onOpen: () => loadState(),
    onFatal: (code, reason) => {
      setConn("lost");
      $("#conn").textContent = "Disconnected";
      $("#conn-banner").classList.add("show");
      $("#conn-banner").textContent = code === 4404 ? "This agent does not exist." : `Not allowed: ${reason || "this account may not watch this agent"}.`;
    },
  });
  tick = setInterval(render, 1000);
}
