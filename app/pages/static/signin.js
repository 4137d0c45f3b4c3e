// Shared sign-in: POST /api/v1/auth/token, keep the token for this tab, go where asked
// (or to the page that fits the role).
import { api, session, $ } from "/assets/common.js";

const params = new URLSearchParams(location.search);
// Only paths that resolve to this origin: an open redirect would let a link send a fresh
// token elsewhere.  Browsers read a backslash as "/" (so "/%5Cevil.example" is "//evil.example"), and
// control characters are dropped from URLs, so the check is on the resolved URL, never the text.
function sameOriginPath(next) {
  if (!next || !next.startsWith("/") || /[\\\u0000-\u001f\u007f]/.test(next)) return null;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin || url.pathname.startsWith("/signin")) return null;
  return url.pathname + url.search + url.hash;
}

function safeNext(role) {
  const next = sameOriginPath(params.get("next"));
  if (next) return next;
  if (role === "agent") return "/agent";
  if (role === "supervisor" || role === "admin" || role === "manager") return "/supervisor";
  return "/";
}

if (params.get("expired")) $("#signin-note").textContent = "Your session ended. Please sign in again.";

$("#signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const username = $("#username").value.trim();
  const password = $("#password").value;
  const error = $("#signin-error");
  error.textContent = "";
  if (!username || !password) {
    error.textContent = "Enter your user name and password.";
    (username ? $("#password") : $("#username")).focus();
    return;
  }
  const button = $("#signin-submit");
  button.disabled = true;
  try {
    const resp = await api("POST", "/api/v1/auth/token", { username, password });
    const s = session.save(resp, username);
    location.assign(safeNext(s.role));
  } catch (err) {
    error.textContent = err.status === 401 ? "User name or password is wrong." : err.message;
    $("#password").select();
  } finally {
    button.disabled = false;
  }
});
