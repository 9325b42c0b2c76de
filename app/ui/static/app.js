// app.js — the console's page: the containers table with live CPU and
// memory, a container's details and followed logs, the start form, the
// stop/kill/remove buttons and the terminal. Only public endpoints:
//
//   GET  /containers, /containers/{id}, /containers/{id}/stats, /images
//   GET  /containers/{id}/logs?follow=true       (a streamed body)
//   POST /containers, /containers/{id}/stop|kill|exec;  DELETE /containers/{id}
//   WS   /containers/{id}/attach, /execs/{id}/attach   (terminal.js)
//
// Requests go through api.js (the token), changes come from live.js.
// Container data is shown with textContent only, never parsed as HTML.

import { api, apiJson, postJson } from "./api.js";
import { watch } from "./live.js";
import * as terminal from "./terminal.js";

const $ = (id) => document.getElementById(id);

const state = {
  containers: [],
  selected: null, // a container id
  stats: new Map(), // id -> {cpu_seconds, at, cpuPercent, memory_bytes}
  logs: null, // AbortController of the followed logs
  session: null, // the open terminal
};

// ---- the table ---------------------------------------------------------

let refreshing = null;
let again = false;

/** Re-read GET /containers; calls that come in meanwhile make one more pass. */
async function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      try {
        state.containers = await apiJson("/containers");
        renderTable();
        if (state.selected) renderDetails();
      } catch (err) {
        say(`cannot list containers: ${err.message}`, true);
      }
    } while (again);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
}

let rendered = null; // what the table shows now, to skip a re-render that changes nothing

function renderTable() {
  const showExited = $("show-exited").checked;
  const shown = state.containers
    .filter((c) => showExited || c.status !== "exited")
    .map((c) => {
      const stats = c.status === "running" ? state.stats.get(c.id) : null;
      const cells = [
        c.name,
        c.status,
        c.image,
        c.command.join(" "),
        exitText(c),
        ago(c.created_at),
        stats && stats.cpuPercent !== null ? `${stats.cpuPercent.toFixed(1)} %` : "",
        stats && stats.memory_bytes !== null ? bytes(stats.memory_bytes) : "",
      ];
      return [c, cells];
    });
  const key = JSON.stringify([state.selected, shown.map(([c, cells]) => [c.id, cells])]);
  if (key === rendered) return; // rows kept: no lost hover, selection or click
  rendered = key;
  const rows = shown.map(([c, cells]) => {
    const tr = document.createElement("tr");
    tr.dataset.id = c.id;
    tr.dataset.name = c.name;
    tr.dataset.status = c.status;
    if (c.id === state.selected) tr.classList.add("selected");
    const classes = ["name", "status", "image", "command", "exit", "created", "cpu", "memory"];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      td.className = classes[i];
      if (classes[i] === "status") td.append(badge(value));
      else td.textContent = value;
      if (classes[i] === "command") td.title = value;
      tr.append(td);
    });
    tr.addEventListener("click", () => select(c.id));
    return tr;
  });
  $("containers").tBodies[0].replaceChildren(...rows);
  $("empty").hidden = rows.length > 0;
}

/** Live counters of the running containers; CPU % from two samples. */
async function sampleStats() {
  const running = state.containers.filter((c) => c.status === "running");
  await Promise.all(
    running.map(async (c) => {
      const response = await api(`/containers/${c.id}/stats`).catch(() => null);
      if (!response || !response.ok) return;
      const now = await response.json();
      const at = performance.now();
      const before = state.stats.get(c.id);
      let cpuPercent = null;
      if (before && now.cpu_seconds !== null && before.cpu_seconds !== null) {
        cpuPercent = (100 * (now.cpu_seconds - before.cpu_seconds)) / ((at - before.at) / 1000);
      }
      state.stats.set(c.id, { ...now, at, cpuPercent });
    }),
  );
  for (const id of state.stats.keys()) {
    if (!running.some((c) => c.id === id)) state.stats.delete(id);
  }
  renderTable();
  if (state.selected) renderStats();
}

// ---- the details -------------------------------------------------------

function select(id) {
  if (state.selected !== id) {
    closeTerminal();
    state.selected = id;
    followLogs(id);
  }
  history.replaceState(null, "", id ? `#${id}` : "#");
  renderTable();
  renderDetails();
}

function current() {
  return state.containers.find((c) => c.id === state.selected) || null;
}

let detailed = null; // the record the details show now

function renderDetails() {
  const c = current();
  $("details").hidden = !state.selected;
  if (!state.selected) return;
  const key = JSON.stringify([state.selected, c]);
  if (key === detailed) return;
  detailed = key;
  if (!c) {
    $("detail-title").textContent = "(removed)";
    $("detail-fields").replaceChildren();
    return;
  }
  $("details").dataset.status = c.status;
  $("detail-title").textContent = c.name;
  const limits = Object.entries(c.limits || {})
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
  const fields = [
    ["id", c.id],
    ["status", c.status],
    ["image", c.image],
    ["command", JSON.stringify(c.command)],
    ["hostname", c.hostname],
    ["tty", c.tty ? "yes" : "no"],
    ["pid", c.pid ?? ""],
    ["exit code", exitText(c)],
    ["error", c.error ?? ""],
    ["created", when(c.created_at)],
    ["started", when(c.started_at)],
    ["finished", when(c.finished_at)],
    ["limits", limits || "none"],
    ["verdicts", verdicts(c)],
    ["CPU seconds", c.cpu_seconds ?? ""],
    ["memory peak", c.memory_peak_bytes !== null ? bytes(c.memory_peak_bytes) : ""],
    ["labels", Object.entries(c.labels).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["live", ""],
  ];
  $("detail-fields").replaceChildren(
    // Empty fields (no exit code yet, no error, ...) are left out.
    ...fields.filter(([key, value]) => value !== "" || key === "live").flatMap(([key, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.dataset.field = key;
      dd.textContent = String(value);
      return [dt, dd];
    }),
  );
  renderStats();
  const running = c.status === "running";
  $("btn-stop").disabled = !running;
  $("btn-kill").disabled = !running;
  $("btn-terminal").hidden = !(running && c.tty);
  $("btn-exec").hidden = !running;
}

function renderStats() {
  const live = document.querySelector('#detail-fields dd[data-field="live"]');
  const stats = state.stats.get(state.selected);
  if (!live) return;
  live.textContent = stats
    ? [
        stats.cpuPercent !== null ? `CPU ${stats.cpuPercent.toFixed(1)} %` : null,
        stats.memory_bytes !== null ? `memory ${bytes(stats.memory_bytes)}` : null,
        stats.pids !== null ? `${stats.pids} process${stats.pids === 1 ? "" : "es"}` : null,
      ]
        .filter(Boolean)
        .join(", ")
    : "";
}

/** Follow the container's logs until it exits, or another one is selected. */
async function followLogs(id) {
  if (state.logs) state.logs.abort();
  const controller = new AbortController();
  state.logs = controller;
  const pre = $("logs");
  pre.textContent = "";
  $("logs-state").textContent = "(following)";
  try {
    const response = await api(`/containers/${id}/logs?follow=true&tail=2000`, {
      signal: controller.signal,
    });
    if (!response.ok) throw new Error((await response.json()).detail);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = (pre.textContent + plain(value)).slice(-200_000);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    if (state.logs === controller) $("logs-state").textContent = "(ended: the container exited)";
  } catch (err) {
    if (!controller.signal.aborted) $("logs-state").textContent = `(${err.message})`;
  }
}

// ---- actions -----------------------------------------------------------

async function act(label, request) {
  try {
    say(`${label}…`);
    await request();
    say(`${label}: done`);
  } catch (err) {
    say(`${label}: ${err.message}`, true);
  }
  await refresh();
}

function bindActions() {
  $("btn-stop").addEventListener("click", () => {
    const c = current();
    act(`stop ${c.name}`, () => postJson(`/containers/${c.id}/stop?timeout=5`));
  });
  $("btn-kill").addEventListener("click", () => {
    const c = current();
    act(`kill ${c.name}`, () => postJson(`/containers/${c.id}/kill?signal=SIGKILL`));
  });
  $("btn-remove").addEventListener("click", () => {
    const c = current();
    act(`remove ${c.name}`, async () => {
      await apiJson(`/containers/${c.id}?force=true`, { method: "DELETE" });
      select(null);
    });
  });
  $("btn-close").addEventListener("click", () => select(null));
  $("btn-terminal").addEventListener("click", () => {
    const c = current();
    openTerminal(`/containers/${c.id}/attach`, `Terminal: ${c.name}`);
  });
  $("btn-exec").addEventListener("click", () => {
    const c = current();
    act(`exec in ${c.name}`, async () => {
      const exec = await postJson(`/containers/${c.id}/exec`, {
        command: ["/bin/sh"],
        tty: true,
        tty_size: { rows: 24, cols: 80 },
      });
      await openTerminal(`/execs/${exec.id}/attach`, `Exec /bin/sh in ${c.name}`);
    });
  });
  $("btn-detach").addEventListener("click", closeTerminal);
  $("show-exited").addEventListener("change", renderTable);
  $("create").addEventListener("submit", (event) => {
    event.preventDefault();
    const spec = specFrom(new FormData(event.target));
    act("start", async () => {
      const c = await postJson("/containers", spec);
      await refresh();
      select(c.id);
      if (c.tty && c.status === "running") {
        await openTerminal(`/containers/${c.id}/attach`, `Terminal: ${c.name}`);
      }
    });
  });
}

async function openTerminal(path, title) {
  closeTerminal();
  const Terminal = await terminal.load();
  $("terminal-unavailable").hidden = Boolean(Terminal);
  if (!Terminal) return;
  $("terminal-box").hidden = false;
  $("terminal-title").textContent = title;
  const session = await terminal.open($("terminal"), path, () => {
    if (state.session === session) $("terminal-box").dataset.ended = "true";
  });
  state.session = session;
  $("terminal-box").dataset.ended = "false";
}

function closeTerminal() {
  const session = state.session;
  state.session = null;
  if (session) session.close();
  $("terminal").replaceChildren();
  $("terminal-box").hidden = true;
}

/** The body of POST /containers from the form. */
function specFrom(form) {
  const spec = { command: words(form.get("command")), image: form.get("image") };
  if (form.get("name")) spec.name = form.get("name").trim();
  if (form.get("tty")) {
    spec.tty = true;
    spec.tty_size = { rows: 24, cols: 80 };
  }
  const limits = {};
  if (form.get("memory")) limits.memory_bytes = Math.round(Number(form.get("memory")) * 1048576);
  if (form.get("cpus")) limits.cpus = Number(form.get("cpus"));
  if (form.get("pids")) limits.pids = Number(form.get("pids"));
  if (form.get("timeout")) limits.timeout_seconds = Number(form.get("timeout"));
  if (Object.keys(limits).length) spec.limits = limits;
  return spec;
}

/** Split a command line into words as sh does: quotes and backslashes, no expansions. */
export function words(line) {
  const out = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote === "'") {
      if (ch === "'") quote = null;
      else word += ch;
    } else if (ch === "\\" && i + 1 < line.length && quote !== "'") {
      word = (word ?? "") + line[++i];
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word = word ?? "";
    } else if (/\s/.test(ch)) {
      if (word !== null) out.push(word);
      word = null;
    } else {
      word = (word ?? "") + ch;
    }
  }
  if (word !== null) out.push(word);
  return out;
}

// ---- formatting --------------------------------------------------------

function badge(status) {
  const span = document.createElement("span");
  span.className = `badge ${status}`;
  span.textContent = status;
  return span;
}

function exitText(c) {
  if (c.status !== "exited") return "";
  if (c.exit_code === null) return c.error ? "lost" : "";
  return c.signal ? `${c.exit_code} (${c.signal})` : String(c.exit_code);
}

function verdicts(c) {
  const out = [];
  if (c.oom_killed) out.push("OOM-killed");
  if (c.timed_out) out.push("timed out");
  if (c.output_truncated) out.push("output truncated");
  return out.join(", ") || "none";
}

function bytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function ago(iso) {
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/** Logs as text: a tty's escape sequences (colours, cursor moves) dropped. */
function plain(text) {
  // ECMA-48 CSI and OSC sequences, then lone carriage returns of \r\n.
  return text
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "")
    .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, "")
    .replace(/\r\n/g, "\n");
}

let messageTimer = null;
function say(text, error = false) {
  const el = $("message");
  el.textContent = text;
  el.className = error ? "error" : "";
  clearTimeout(messageTimer);
  if (!error) messageTimer = setTimeout(() => (el.textContent = ""), 4000);
}

// ---- start -------------------------------------------------------------

async function main() {
  bindActions();
  $("terminal-unavailable").hidden = true;
  terminal.load().then((Terminal) => {
    document.body.dataset.terminal = Terminal ? "ready" : "unavailable";
  });
  await refresh();
  const images = await apiJson("/images").catch(() => []);
  const imageSelect = document.querySelector("#create select[name=image]");
  if (images.length) imageSelect.replaceChildren(
    ...images.map((image) => {
      const option = document.createElement("option");
      option.textContent = image.name;
      return option;
    }),
  );
  // #<id> selects a container: a link to it, or the back button.
  const fromHash = () => {
    const wanted = location.hash.slice(1);
    if (state.containers.some((c) => c.id === wanted)) select(wanted);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
  let pending = null;
  watch(() => {
    // Events come in bursts (create, start, ...): one refresh per burst.
    clearTimeout(pending);
    pending = setTimeout(refresh, 50);
  });
  setInterval(sampleStats, 2000);
  sampleStats();
  document.body.dataset.ready = "true";
}

main();
