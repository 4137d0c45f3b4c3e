// Shared sign-in: POST /api/v1/auth/token, keep the token for this tab, go where asked
// (or to the page that fits the role).
import { api, session, $ } from "/assets/common.js";

const params = new URLSearchParams(location.search);
// Only same-site paths: an open redirect would let a link send a fresh token elsewhere.
function safeNext(role) {
  const next = params.get("next");
  if (next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/signin")) return next;
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
