// Cases: the agent's case form (pre-filled from ?customer_id=&call_id= when opened from
// a call), "my open cases" with due clocks, the supervisor's team board and the
// escalation queue ("escalated to me": supervisors level 1, managers/admins level 2).
//
// Invariants: due times are instants from the server; "overdue" is the server's flag,
// refreshed every few seconds, and the time left is counted from the browser's clock.
import { api, el, $, fmtDateTime, requireSession, wireSignOut, showWho } from "/assets/common.js";

const s = await requireSession();
wireSignOut($("#signout"));
showWho($("#who"), s);

const params = new URLSearchParams(location.search);
if (params.get("customer_id")) $("#c-customer").value = params.get("customer_id");
if (params.get("call_id")) $("#c-call").value = params.get("call_id");
const supervisor = s.role !== "agent";
$("#l-view").value = params.get("view") || (supervisor ? "board" : "mine");

const categories = await api("GET", "/api/v1/cases/categories");
for (const c of categories.filter((c) => c.active)) {
  $("#c-category").append(el("option", { value: c.code }, c.name));
  $("#l-category").append(el("option", { value: c.code }, c.name));
}

function left(due) {
  if (!due) return "—";
  const ms = new Date(due).getTime() - Date.now();
  const sign = ms < 0 ? "-" : "";
  const m = Math.floor(Math.abs(ms) / 60000);
  return `${sign}${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

async function refresh() {
  const q = new URLSearchParams();
  const view = $("#l-view").value;
  if (view === "mine") q.set("mine", "true");
  if (view === "escalated") q.set("escalated_to_me", "true");
  if ($("#l-stage").value) q.set("stage", $("#l-stage").value);
  if ($("#l-category").value) q.set("category", $("#l-category").value);
  if ($("#l-overdue").checked) q.set("overdue", "true");
  try {
    const page = await api("GET", `/api/v1/cases?${q}`);
    $("#case-table tbody").replaceChildren(...page.items.map((c) => el("tr",
      { dataset: { id: String(c.id), overdue: String(c.overdue), level: c.escalated_to }, class: c.overdue ? "overdue" : null },
      el("td", null, String(c.id)), el("td", null, c.subject), el("td", null, c.category || "—"),
      el("td", { dataset: { col: "stage" } }, c.stage), el("td", null, c.due_at ? fmtDateTime(c.due_at) : "—"),
      el("td", { dataset: { col: "left" } }, left(c.due_at)),
      el("td", { dataset: { col: "level" } }, c.escalated_to))));
    $("#l-error").textContent = "";
  } catch (err) {
    $("#l-error").textContent = err.message;
  }
}

$("#case-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#c-error").textContent = "";
  const body = {
    customer_id: Number($("#c-customer").value), kind: $("#c-kind").value,
    channel: $("#c-channel").value, severity: $("#c-severity").value,
    referred: $("#c-referred").checked, subject: $("#c-subject").value.trim(),
  };
  if ($("#c-category").value) body.category = $("#c-category").value;
  if ($("#c-call").value.trim()) body.call_id = $("#c-call").value.trim();
  if ($("#c-notes").value.trim()) body.notes = $("#c-notes").value.trim();
  try {
    const c = await api("POST", "/api/v1/cases", body);
    $("#c-status").textContent = `Case #${c.id} registered, due ${fmtDateTime(c.due_at)}.`;
    $("#c-subject").value = "";
    $("#c-notes").value = "";
    await refresh();
  } catch (err) {
    $("#c-error").textContent = err.message;
  }
});
for (const id of ["#l-view", "#l-stage", "#l-category", "#l-overdue"]) $(id).addEventListener("change", refresh);
await refresh();
setInterval(refresh, 3000);
