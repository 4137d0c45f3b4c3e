// Shared helpers for the Switchboard pages: session, REST calls, a reconnecting websocket,
// safe DOM building and formatting.
//
// Invariants:
// - Server data only ever reaches the DOM as text (el()/textContent), never as HTML, so a
//   customer name like "<img onerror=...>" is shown, not run.
// - The bearer token lives in sessionStorage (per tab, gone when the tab closes); it is
//   never logged nor put in a URL: websockets carry it as the subprotocol
//   ["bearer", <token>] (docs/websocket.md), never as ?token=.
// - A 401 from the API clears the session and sends the user to sign in again.

const SESSION_KEY = "switchboard.session";

export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    } catch {
      return null;
    }
  },
  save(tokenResponse, username) {
    const s = {
      token: tokenResponse.access_token,
      role: tokenResponse.role || "",
      agentId: tokenResponse.agent_id ?? null,
      username: username || tokenResponse.username || "",
      expiresAt: tokenResponse.expires_in ? Date.now() + tokenResponse.expires_in * 1000 : null,
    };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    return s;
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
};

/**
 * The session, or a redirect to sign-in.  Use as `const s = await requireSession();`: while
 * redirecting the promise never settles, so the page's module stops there quietly.
 */
export function requireSession() {
  const s = session.get();
  if (!s || !s.token || (s.expiresAt && s.expiresAt < Date.now())) {
    session.clear();
    const next = location.pathname + location.search;
    location.replace("/signin?next=" + encodeURIComponent(next));
    return new Promise(() => {});
  }
  return Promise.resolve(s);
}

export class ApiError extends Error {
  constructor(status, problem) {
    const msg = (problem && (problem.detail || problem.title)) || `HTTP ${status}`;
    super(typeof msg === "string" ? msg : JSON.stringify(msg));
    this.status = status;
    this.problem = problem || {};
  }
}

/** Call the REST API with the session's bearer token; returns parsed JSON (or null). */
export async function api(method, path, body) {
  const s = session.get();
  const headers = { Accept: "application/json" };
  if (s && s.token) headers.Authorization = "Bearer " + s.token;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { title: "The server cannot be reached", detail: "The server cannot be reached. Check the network and try again." });
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (resp.status === 401 && !path.startsWith("/api/v1/auth/")) {
    session.clear();
    location.replace("/signin?expired=1&next=" + encodeURIComponent(location.pathname + location.search));
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, describeProblem(data));
  return data;
}

function describeProblem(data) {
  if (!data) return data;
  // FastAPI validation errors carry a list; make it one readable sentence.
  if (Array.isArray(data.detail)) {
    return { ...data, detail: data.detail.map((d) => (d.msg || JSON.stringify(d))).join("; ") };
  }
  if (Array.isArray(data.errors) && !data.detail) {
    return { ...data, detail: data.errors.map((d) => (d.msg || d.message || JSON.stringify(d))).join("; ") };
  }
  return data;
}

/**
 * A websocket that reconnects with capped exponential backoff.
 * onStatus(status) gets "connecting" | "open" | "lost"; onMessage(obj) every JSON message.
 * onFatal(code, reason) when the server refuses for good (4403 not allowed, 4404 unknown).
 * Returns {close(), reconnect(), send(obj)}; reconnect() drops the socket and opens a new one
 * at once (used to resubscribe after a sequence gap).
 */
export function connectWs(path, { onMessage, onStatus, onOpen, onFatal }) {
  let ws = null;
  let closed = false;
  let attempt = 0;
  let timer = null;

  function url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}${path}`;
  }

  function open() {
    clearTimeout(timer);
    onStatus && onStatus(attempt === 0 ? "connecting" : "lost");
    const s = session.get();
    // The token travels in Sec-WebSocket-Protocol, not in the URL (URLs end up in logs).
    // Without one, offer only "bearer": the server then closes with 4401 (sign in again).
    const sock = new WebSocket(url(), s && s.token ? ["bearer", s.token] : ["bearer"]);
    ws = sock;
    sock.onopen = () => {
      if (ws !== sock) return;
      attempt = 0;
      onStatus && onStatus("open");
      onOpen && onOpen();
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      onMessage(msg);
    };
    sock.onclose = (ev) => {
      if (ws !== sock || closed) return;
      // Close codes: docs/websocket.md.  4401: the token is no longer accepted: sign in
      // again.  4403 (role not allowed) and 4404 (unknown agent) will not change by
      // retrying: stop and tell the page.  Anything else (1001 stopping, 1013 try again
      // later, 4408 too slow, a lost connection): reconnect with backoff.
      if (ev.code === 4401) {
        session.clear();
        location.replace("/signin?expired=1&next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (ev.code === 4403 || ev.code === 4404) {
        closed = true;
        if (onFatal) onFatal(ev.code, ev.reason);
        else onStatus && onStatus("lost");
        return;
      }
      onStatus && onStatus("lost");
      attempt += 1;
      const delay = Math.min(5000, 250 * 2 ** Math.min(attempt, 5)) * (0.8 + Math.random() * 0.4);
      timer = setTimeout(open, delay);
    };
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (ws) ws.close();
    },
    reconnect() {
      if (closed) return;
      const old = ws;
      ws = null;
      if (old) old.close();
      attempt = 1;
      open();
    },
    send(obj) {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
    },
  };
}

/** Build an element: el("td", {class: "num"}, "12"). Children are nodes or text. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

/** 75 → "1:15"; 3725 → "1:02:05"; null → "—". */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "—";
  const s = Math.max(0, Math.floor(Number(seconds)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** 0.873 → "87%"; also accepts 87.3 (already a percentage); null → "—". */
export function fmtPct(v) {
  if (v === null || v === undefined || !Number.isFinite(Number(v))) return "—";
  const n = Number(v);
  const pct = n <= 1 ? n * 100 : n;
  return `${Math.round(pct)}%`;
}

/** Fraction in 0..1 from either a fraction or a percentage. */
export function asFraction(v) {
  if (v === null || v === undefined || !Number.isFinite(Number(v))) return null;
  const n = Number(v);
  return n > 1 ? n / 100 : n;
}

/** "2026-03-01" or ISO timestamp → local date "2026-03-01"; keeps unknown text as-is. */
export function fmtDate(v) {
  if (!v) return "—";
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  if (/^\d{4}-\d{2}-\d{2}$/.test(String(v))) return String(v);
  return d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function fmtDateTime(v) {
  if (!v) return "—";
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** Parse a timestamp (ISO string, epoch seconds or ms) into epoch ms, or null. */
export function toMs(v) {
  if (v === null || v === undefined || v === "") return null;
  if (typeof v === "number") return v > 1e12 ? v : v * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

export const STATE_LABELS = {
  logged_out: "Logged out",
  ready: "Ready",
  reserved: "Ringing",
  ringing: "Ringing",
  on_call: "On call",
  busy: "On call",
  wrap_up: "Wrap-up",
  wrapup: "Wrap-up",
  paused: "Paused",
};

/** Normalise the server's state names ("ON_CALL", "on-call", "wrapup") to one spelling. */
export function normState(s) {
  const k = String(s || "unknown").toLowerCase().replace(/[-\s]/g, "_");
  if (k === "wrapup") return "wrap_up";
  if (k === "busy" || k === "oncall" || k === "talking") return "on_call";
  if (k === "ringing" || k === "offered") return "reserved";
  if (k === "loggedout" || k === "offline") return "logged_out";
  return k;
}

export function stateBadge(state, reason) {
  const k = normState(state);
  const label = STATE_LABELS[k] || k.replace(/_/g, " ");
  return el("span", { class: `state state-${k}`, dataset: { state: k } }, reason && k === "paused" ? `${label}: ${reason}` : label);
}

/** Sign-out button in the top bar: the server revokes the token (every tab of this user). */
export function wireSignOut(button) {
  button.addEventListener("click", async () => {
    try {
      await api("POST", "/api/v1/auth/logout");
    } catch {
      // Signed out here either way; an unreachable server lets the token expire.
    }
    session.clear();
    location.assign("/signin");
  });
}

/** Fill the "signed in as" slot. */
export function showWho(node, s) {
  node.textContent = s.agentId ? `${s.username || s.agentId} (${s.role})` : `${s.username} (${s.role})`;
}
