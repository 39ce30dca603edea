// envplane dashboard: progressive enhancement only. Every page works without this file;
// with it, the environments list filters as you type and refreshes its rows, and an
// operation's page streams its progress (Server-Sent Events). No framework, no network
// access beyond this server.
"use strict";

function text(el, value) {
  el.textContent = value === null || value === undefined || value === "" ? "\u2014" : String(value);
}

function applyFilter(input, table) {
  const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const row of table.tBodies[0].rows) {
    if (!row.dataset.env) continue;
    const hay = row.textContent.toLowerCase();
    row.hidden = !words.every((w) => hay.includes(w));
  }
}

function money(value) {
  return value === null || value === undefined ? "\u2014" : "$" + Number(value).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function updateRow(row, r) {
  const cell = (name) => row.querySelector(`[data-col="${name}"]`);
  const status = cell("status");
  if (status) {
    status.replaceChildren();
    const badge = document.createElement("span");
    badge.className = "status s-" + r.status.replace(/ /g, "-");
    badge.textContent = r.status;
    status.append(badge);
    if (r.note) {
      const note = document.createElement("span");
      note.className = "small";
      note.textContent = r.note;
      status.append(document.createElement("br"), note);
    }
  }
  text(cell("target"), r.target);
  text(cell("release"), r.release);
  text(cell("services"), r.desired === null ? null : `${r.ready}/${r.desired}`);
  const cost = cell("cost");
  if (cost) {
    if (r.preview) text(cost, money(r.hourly) + "/h" + (r.expires_in_minutes !== null ? `, expires in ${r.expires_in_minutes} min` : ""));
    else text(cost, r.monthly === null ? null : money(r.monthly) + "/month");
  }
  const last = cell("last");
  if (last) {
    last.replaceChildren();
    if (r.last_operation) {
      const a = document.createElement("a");
      a.href = "/ui/operations/" + encodeURIComponent(r.last_operation.id);
      a.textContent = r.last_operation.kind;
      last.append(a, " " + r.last_operation.status);
    } else text(last, null);
  }
}

function pollRows(table, seconds, live) {
  const refresh = async () => {
    try {
      const answer = await fetch(table.dataset.rows, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!answer.ok) throw new Error(String(answer.status));
      const rows = await answer.json();
      for (const r of rows) {
        const row = table.querySelector(`tr[data-env="${CSS.escape(r.name)}"]`);
        if (row) updateRow(row, r);
      }
      live.textContent = "Live status: updated " + new Date().toLocaleTimeString();
    } catch (err) {
      live.textContent = "Live status: could not refresh (" + err.message + "); retrying";
    }
  };
  setInterval(refresh, seconds * 1000);
}

function describe(e) {
  switch (e.type) {
    case "operation_started": return `started ${e.kind} of ${e.environment} (${e.operation_id})`;
    case "step_started": return `[${e.position}/${e.total}] ${e.action} ${e.resource}`;
    case "step_finished": return `${e.action} ${e.resource}: ${e.status} (${Number(e.seconds).toFixed(1)}s)${e.detail ? " \u2014 " + e.detail : ""}`;
    case "log": return e.message;
    case "bytes": return `${e.what}: ${e.done} bytes` + (e.total ? ` of ${e.total}` : "");
    case "operation_finished": return `${e.kind} of ${e.environment} ${e.status}${e.error ? ": " + e.error : ""}`;
    default: return e.type;
  }
}

function streamProgress(list) {
  const state = document.getElementById("state");
  const ended = document.getElementById("ended");
  const source = new EventSource(list.dataset.events);
  let first = true;
  const add = (message) => {
    if (first) { list.replaceChildren(); first = false; }
    const item = document.createElement("li");
    item.textContent = message;
    list.append(item);
  };
  for (const type of ["operation_started", "step_started", "step_finished", "log", "bytes", "operation_finished"]) {
    source.addEventListener(type, (msg) => add(describe(JSON.parse(msg.data))));
  }
  source.addEventListener("end", (msg) => {
    const e = JSON.parse(msg.data);
    source.close();
    if (state) { state.textContent = e.state; state.className = "status s-" + e.state; }
    ended.textContent = "Ended: " + e.state + ".";
    ended.dataset.state = e.state;
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) ended.textContent = "The progress stream closed; reload to see the outcome.";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const input = document.querySelector("input[data-filter]");
  const table = input ? document.querySelector(input.dataset.filter) : null;
  if (input && table) {
    input.addEventListener("input", () => applyFilter(input, table));
    applyFilter(input, table);
  }
  const live = document.getElementById("live");
  if (table && live && table.dataset.rows) pollRows(table, Number(live.dataset.poll) || 5, live);
  const progress = document.getElementById("progress");
  if (progress && progress.dataset.events) streamProgress(progress);
});
