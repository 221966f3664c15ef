// The emulator's bench dashboard: polls the JSON API once a second and redraws what changed.
// Every value shown comes from a device or a user, so it enters the page as text only
// (textContent / setAttribute), never as markup; the server's CSP backs this up.
"use strict";

const POLL_MS = 1000;
const LOG_ROWS = 200; // rows kept in the message log table
const MAX_MESSAGES = 5000; // messages kept in memory for the log
const MAX_POINTS = 2000; // points kept per chart
const CHART_HEIGHT = 170;
const COLORS = ["#0b6bcb", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0f766e", "#a16207"];
// SenML units (RFC 8428 section 12.1) as people read them; unknown units are shown as sent.
const UNITS = { Cel: "°C", "%RH": "% RH", "%EL": "% battery", lat: "° lat", lon: "° lon" };
const OUTCOMES = {
  accepted: ["accepted", "ok"],
  unauthorized: ["bad token", "bad"],
  "unknown device": ["unknown device", "warn"],
  malformed: ["malformed", "warn"],
};
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9\-:./_]*$/;
// What became of a queued downlink (the emulator's "result", from the device's answer).
const RESULTS = {
  queued: "none",
  waiting: "none",
  applied: "ok",
  answered: "ok",
  "partly refused": "warn",
  refused: "bad",
  "never answered": "warn",
};

// How a message's times were obtained (the emulator's time_source, from the timeQuality and
// undatedReadings records the firmware ends a pack with): [label, badge class].
const TIME_SOURCES = {
  ntp: ["times from NTP", "ok"],
  ticks: ["times dated from ticks", "none"],
  rtc: ["times from the RTC", "warn"],
  none: ["no times: arrival", "warn"],
};

const state = {
  devices: [], // GET /api/devices
  registered: new Set(),
  messages: [], // every message seen, oldest first
  lastId: 0,
  perDevice: new Map(), // dvnuuid -> {series: Map, latest: Map}
  queue: [], // downlinks of the selected device
  selected: null,
  charts: new Map(), // name -> {plot, card, data}
  chartsFor: null,
  logDirty: true,
};

// -- small DOM helpers: text only --------------------------------------------------------------

function $(id) {
  return document.getElementById(id);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(tableId, rows, emptyId) {
  // A table with no rows gives way to its "nothing yet" line.
  const table = $(tableId);
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = rows.length === 0;
  $(emptyId).hidden = rows.length > 0;
}

function pad(n, width) {
  return String(n).padStart(width || 2, "0");
}

function clock(date) {
  return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
}

function timeOf(iso) {
  return iso ? clock(new Date(iso)) : "—";
}

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}

function shortId(dvnuuid) {
  return dvnuuid ? dvnuuid.slice(0, 8) + "…" : "—";
}

function nameOf(dvnuuid) {
  // The device's name from `new-device --name` (via the emulator), or null.
  const d = state.devices.find((x) => x.dvnuuid === dvnuuid);
  return d && d.name ? d.name : null;
}

function deviceLabel(dvnuuid) {
  // The name where there is one, else the short UUID.
  return nameOf(dvnuuid) || shortId(dvnuuid);
}

function unitText(u) {
  return u ? UNITS[u] || u : "";
}

function valueText(value) {
  if (typeof value === "number") return String(Number(value.toPrecision(10)));
  return String(value);
}

function badge(outcome, extra) {
  const [label, cls] = OUTCOMES[outcome] || ["no uplink yet", "none"];
  return el("span", { class: "badge " + cls, "data-outcome": outcome || "" }, extra ? extra + " " + label : label);
}

function timeBadge(source, undated) {
  // NTP's times are the rule: only the others get a badge (null for NTP or no source).
  if (!source || source === "ntp") return null;
  const [label, cls] = TIME_SOURCES[source] || ["times: " + source, "warn"];
  const text = undated ? label + " (" + undated + " undated)" : label;
  return el("span", { class: "badge " + cls, "data-time-source": source, "data-undated": undated || 0 }, text);
}

function tokenText(check) {
  if (check === "ok") return "✓ ok";
  if (check === "mismatch" || check === "missing") return "✗ " + check;
  return check || "—";
}

// An emulator that listens beyond its own machine guards its API with a token. The page gets it
// once in its address (/#token=...: a fragment never reaches the server or its log), keeps it for
// this tab only, takes it out of the address bar, and sends it with every API request.
const TOKEN_KEY = "kpnthings-emulator-api-token";

function takeToken() {
  const given = /^#token=([^&#]+)$/.exec(location.hash);
  if (!given) return false;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(given[1]));
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}

takeToken();
window.addEventListener("hashchange", () => {
  if (takeToken()) refresh(); // pasted into the address bar of an open page
});

async function api(path, init) {
  init = Object.assign({ cache: "no-store" }, init || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) init.headers = Object.assign({}, init.headers, { Authorization: "Bearer " + token });
  const resp = await fetch(path, init);
  const text = await resp.text();
  if (resp.status === 401 && /API needs its token/.test(text)) {
    const e = new Error(
      (token ? "the API token this page has is not the emulator's" : "this emulator's API needs its token") +
        ": open the dashboard address the mock-server printed at start (…/#token=…)",
    );
    e.locked = true;
    throw e;
  }
  if (!resp.ok) throw new Error(text.trim() || "HTTP " + resp.status);
  return JSON.parse(text);
}

// -- what the messages say ---------------------------------------------------------------------

function deviceData(dvnuuid) {
  let data = state.perDevice.get(dvnuuid);
  if (!data) {
    data = { series: new Map(), latest: new Map() };
    state.perDevice.set(dvnuuid, data);
  }
  return data;
}

function shortName(name, dvnuuid) {
  const bn = "urn:dev:DVNUUID:" + dvnuuid + ":";
  return name && name.startsWith(bn) ? name.slice(bn.length) : name || "";
}

function insertSorted(series, x, y) {
  // Readings from a device's outbox can arrive late and out of order: keep x ascending.
  let i = series.xs.length;
  while (i > 0 && series.xs[i - 1] > x) i--;
  series.xs.splice(i, 0, x);
  series.ys.splice(i, 0, y);
  if (series.xs.length > MAX_POINTS) {
    series.xs.shift();
    series.ys.shift();
  }
}

function absorb(message) {
  state.messages.push(message);
  if (state.messages.length > MAX_MESSAGES) state.messages.shift();
  state.lastId = Math.max(state.lastId, message.id);
  state.logDirty = true;
  // Only accepted readings count, as on KPN Things; refused ones stay in the log.
  if (message.outcome !== "accepted" || !message.records || !message.dvnuuid) return;
  const data = deviceData(message.dvnuuid);
  const fallback = Date.parse(message.received_at) / 1000;
  for (const rec of message.records) {
    const name = shortName(rec.n, message.dvnuuid);
    const t = typeof rec.t === "number" ? rec.t : fallback;
    let value;
    let key = name;
    if (typeof rec.v === "number") value = rec.v;
    else if (typeof rec.s === "number") [value, key] = [rec.s, name + " (sum)"];
    if (value !== undefined) {
      let series = data.series.get(key);
      if (!series) {
        series = { xs: [], ys: [], unit: rec.u || "" };
        data.series.set(key, series);
      }
      insertSorted(series, t, value);
    }
    let latest = value;
    let kind = "number";
    if (typeof rec.vb === "boolean") [latest, kind] = [rec.vb, "boolean"];
    else if (typeof rec.vs === "string") [latest, kind] = [rec.vs, "string"];
    else if (typeof rec.vd === "string") [latest, kind] = [rec.vd, "bytes"];
    if (latest === undefined) continue;
    const prev = data.latest.get(key);
    if (!prev || prev.t <= t) {
      data.latest.set(key, { value: latest, kind, unit: rec.u || "", t, messageId: message.id });
    }
  }
}

function downlinkRecords(body) {
  try {
    const pack = JSON.parse(body);
    return Array.isArray(pack) ? pack.filter((r) => r && typeof r.n === "string") : [];
  } catch (e) {
    return [];
  }
}

function recordValue(rec) {
  for (const key of ["vb", "v", "vs", "vd"]) if (key in rec) return rec[key];
  return undefined;
}

function actuatorNames() {
  const names = new Set();
  for (const entry of state.queue) for (const rec of downlinkRecords(entry.body)) names.add(rec.n);
  return names;
}

// -- rendering ---------------------------------------------------------------------------------

function unregisteredSenders() {
  // Requests no registered device owns: an unknown UUID, or a body too broken to name one.
  const senders = new Map();
  for (const m of state.messages) {
    if (m.dvnuuid && state.registered.has(m.dvnuuid)) continue;
    senders.set(m.dvnuuid || "", m);
  }
  return senders;
}

function healthPanel(h) {
  // The device's health records (docs/health.md): the latest of each, and the emulator's
  // warnings (emulator_health) on the line they concern, in the warning colour.
  if (!h) return null;
  const l = h.latest;
  const warned = new Set(h.warnings.map((w) => w.kind));
  const has = (name) => l[name] !== undefined && l[name] !== null;
  const line = (kind, parts) => {
    const text = parts.filter((p) => p !== null).join(" · ");
    return text ? el("span", { class: "hl" + (warned.has(kind) ? " warn" : ""), "data-health": kind }, text) : null;
  };
  return el(
    "span",
    {
      class: "line small health" + (h.warnings.length ? " warn" : ""),
      "data-warnings": h.warnings.map((w) => w.kind).join(" "),
    },
    el("span", { class: "hl title" }, "health (" + h.reports + " reports)"),
    line("heap", [
      has("heapFree") ? "heap free " + l.heapFree + " B" : null,
      has("heapLargest") ? "largest block " + l.heapLargest + " B" : null,
    ]),
    line("outbox", [
      has("outboxDepth") ? "outbox " + l.outboxDepth : null,
      has("droppedReadings") ? l.droppedReadings + " dropped" : null,
      has("deadLetters") ? l.deadLetters + " dead letters" : null,
    ]),
    line("resets", [
      has("bootCount") ? "boot #" + l.bootCount : null,
      has("resetCause") ? "reset: " + l.resetCause : null,
      has("uptime") ? "up " + Math.floor(l.uptime / 3600) + " h " + Math.floor((l.uptime % 3600) / 60) + " min" : null,
    ]),
    line("other", [
      has("wifiRssi") ? "Wi-Fi " + l.wifiRssi + " dBm" : null,
      has("firmware") ? "firmware " + l.firmware : null,
      has("lastError") ? "last error: " + l.lastError : null,
    ]),
    ...h.warnings.map((w) => el("span", { class: "hl warning", "data-warning": w.kind }, "⚠ " + w.text)),
  );
}

function renderDevices() {
  const cards = [];
  for (const d of state.devices) {
    const card = el(
      "button",
      {
        type: "button",
        class: "device" + (d.dvnuuid === state.selected ? " selected" : ""),
        "data-dvnuuid": d.dvnuuid,
        "data-outcome": d.last_outcome || "",
        title: "show this device",
      },
      d.name ? el("span", { class: "name" }, d.name) : null,
      el("span", { class: "mono id" }, d.dvnuuid),
      el("span", { class: "line" }, badge(d.last_outcome, d.last_status)),
      el(
        "span",
        { class: "line small" },
        d.last_seen ? "last seen " + timeOf(d.last_seen) + " (" + ago(d.last_seen) + ")" : "never seen",
      ),
      el(
        "span",
        { class: "line small muted" },
        "token " + tokenText(d.last_token_check) + " · " + d.messages + " messages · " +
          d.queued_downlinks + " queued",
      ),
      d.time_source
        ? el(
          "span",
          { class: "line small times", "data-time-source": d.time_source, "data-undated": d.undated_readings },
          (TIME_SOURCES[d.time_source] || ["times: " + d.time_source])[0] +
            (d.undated_readings ? " · " + d.undated_readings + " readings sent without a time" : ""),
        )
        : null,
      el(
        "span",
        { class: "line small version", "data-version": d.version || "" },
        "runs " + (d.version || "version not reported yet") +
          (d.update_offered ? " · offered " + d.update_offered : ""),
      ),
      healthPanel(d.health),
      d.last_reason ? el("span", { class: "line small reason" }, d.last_reason) : null,
    );
    card.addEventListener("click", () => select(d.dvnuuid));
    cards.push(card);
  }
  for (const [dvnuuid, m] of unregisteredSenders()) {
    cards.push(
      el(
        "div",
        { class: "device unregistered", "data-dvnuuid": dvnuuid, "data-outcome": m.outcome },
        el("span", { class: "mono id" }, dvnuuid || "(no readable device id)"),
        el("span", { class: "line" }, badge(m.outcome, m.status)),
        el("span", { class: "line small" }, "not registered · last " + timeOf(m.received_at) +
          " (" + ago(m.received_at) + ")"),
        m.reason ? el("span", { class: "line small reason" }, m.reason) : null,
      ),
    );
  }
  $("devices").replaceChildren(...cards);
  $("no-devices").hidden = state.devices.length > 0;
}

function makeChart(name, series, index) {
  const unit = unitText(series.unit);
  const latest = el("span", { class: "latest" });
  const box = el("div", { class: "chart", "data-name": name, "data-count": 0 });
  const card = el(
    "div",
    { class: "chart-card" },
    el("div", { class: "chart-head" },
      el("h3", { title: series.unit ? "SenML unit " + series.unit : null }, name,
        unit ? el("span", { class: "muted" }, " (" + unit + ")") : null),
      latest),
    box,
  );
  $("charts").append(card);
  const opts = {
    width: Math.max(240, box.clientWidth || 600),
    height: CHART_HEIGHT,
    legend: { show: false },
    scales: { x: { time: true } },
    series: [
      {},
      {
        label: name,
        stroke: COLORS[index % COLORS.length],
        width: 2,
        points: { show: true, size: 5 },
        value: (u, v) => (v === null ? "—" : valueText(v) + " " + unit),
      },
    ],
    axes: [{}, { size: 56, values: (u, splits) => splits.map((v) => valueText(v)) }],
  };
  const plot = new uPlot(opts, [[], []], box);
  return { plot, card, box, latest, count: -1, unit };
}

function renderCharts() {
  const data = state.selected ? deviceData(state.selected) : null;
  if (state.chartsFor !== state.selected) {
    for (const chart of state.charts.values()) chart.plot.destroy();
    state.charts.clear();
    $("charts").replaceChildren();
    state.chartsFor = state.selected;
  }
  const skip = actuatorNames();
  const names = data ? [...data.series.keys()].filter((n) => !skip.has(n)).sort() : [];
  for (const [name, chart] of state.charts) {
    if (!names.includes(name)) {
      chart.plot.destroy();
      chart.card.remove();
      state.charts.delete(name);
    }
  }
  names.forEach((name, i) => {
    const series = data.series.get(name);
    let chart = state.charts.get(name);
    if (!chart) {
      chart = makeChart(name, series, i);
      state.charts.set(name, chart);
    }
    if (chart.count !== series.xs.length || chart.lastX !== series.xs[series.xs.length - 1]) {
      chart.plot.setData([series.xs.slice(), series.ys.slice()]);
      chart.count = series.xs.length;
      chart.lastX = series.xs[series.xs.length - 1];
      chart.box.setAttribute("data-count", chart.count);
      const last = data.latest.get(name);
      chart.latest.textContent = last ? valueText(last.value) + (chart.unit ? " " + chart.unit : "") : "";
    }
  });
  $("no-readings").hidden = names.length > 0;
  const name = state.selected ? nameOf(state.selected) : null;
  $("detail-device").textContent = state.selected ? (name ? name + " · " : "") + state.selected : "";
}

function renderValues() {
  const data = state.selected ? deviceData(state.selected) : null;
  const skip = actuatorNames();
  const rows = [];
  if (data) {
    const names = [...data.latest.keys()].sort();
    for (const name of names) {
      const item = data.latest.get(name);
      if (item.kind === "number" || skip.has(name)) continue;
      rows.push(
        el("tr", { "data-name": name, "data-value": String(item.value) },
          el("td", {}, name),
          el("td", { class: "value " + item.kind }, valueText(item.value)),
          el("td", { class: "small" }, clock(new Date(item.t * 1000)))),
      );
    }
  }
  fill("values", rows, "no-values");
}

function askedCommands(entry) {
  // The commands of a queue entry with what the device answered to each (the emulator's
  // "commands"), or read from the body when the emulator gives none.
  if (Array.isArray(entry.commands) && entry.commands.length) return entry.commands;
  return downlinkRecords(entry.body).map((rec) => ({ n: rec.n, value: recordValue(rec), result: entry.state }));
}

function echoText(echo, want, match) {
  // The echoed state, or why there is none: refused, not answered, or not yet.
  const result = want.command.result;
  if (result === "refused") return "✗ refused: " + (want.command.reason || "no reason given");
  if (echo !== undefined) return (match ? "✓ " : "") + valueText(echo.value);
  if (result === "never answered") return "— never answered";
  if (result === "waiting" || result === "queued") return "— waiting for the answer";
  return "— not echoed yet";
}

function renderActuators() {
  const data = state.selected ? deviceData(state.selected) : null;
  const asked = new Map(); // name -> last value asked for, its queue entry and its answer
  for (const entry of state.queue) {
    for (const command of askedCommands(entry)) {
      asked.set(command.n, { value: command.value, entry, command });
    }
  }
  const rows = [];
  for (const name of [...asked.keys()].sort()) {
    const want = asked.get(name);
    const refused = want.command.result === "refused";
    // Once refused, an echo is of an earlier command: not a sign that this one took effect.
    const echo = data && !refused ? data.latest.get(name) : undefined;
    const match = echo !== undefined && echo.value === want.value;
    rows.push(
      el(
        "tr",
        {
          "data-name": name,
          "data-echoed": echo === undefined ? null : String(echo.value),
          "data-result": want.command.result || null,
          class: match ? "match" : null,
        },
        el("td", {}, name),
        el("td", {}, valueText(want.value), el("span", { class: "small muted" }, " " + want.entry.state)),
        el("td", { class: "value" + (refused ? " reason" : "") }, echoText(echo, want, match)),
        el("td", { class: "small" }, echo === undefined ? "" : clock(new Date(echo.t * 1000))),
      ),
    );
  }
  fill("actuators", rows, "no-actuators");
  const names = new Set(["led", ...asked.keys()]);
  $("actuator-names").replaceChildren(...[...names].sort().map((n) => el("option", { value: n })));
}

function answerCell(entry) {
  // What the device said: a badge for the downlink, then one line per command not applied.
  const result = entry.result || entry.state;
  const cell = el(
    "td",
    { class: "small", title: entry.answer ? "the device said: " + entry.answer : "" },
    el("span", { class: "badge " + (RESULTS[result] || "none") }, result),
  );
  if (result === "waiting" || result === "never answered") {
    const n = entry.uplinks_since || 0;
    cell.append(el("span", { class: "answer muted" }, n + (n === 1 ? " uplink" : " uplinks") + " since"));
  }
  for (const command of entry.commands || []) {
    // Each refusal with its reason; other results only where they differ from the badge.
    if (command.result !== "refused" && (command.result === "applied" || command.result === result)) continue;
    const why = command.result === "refused" ? command.reason || "refused" : command.result;
    const text = command.n + ": " + why + (command.result !== "refused" && command.reason ? " (" + command.reason + ")" : "");
    cell.append(el("span", { class: "answer" + (command.result === "refused" ? " reason" : "") }, text));
  }
  if (entry.answer_message_id) {
    cell.append(el("span", { class: "answer muted" }, "answered in #" + entry.answer_message_id));
  }
  return cell;
}

function renderQueue() {
  const rows = state.queue
    .slice()
    .reverse()
    .map((entry) => {
      const command = askedCommands(entry)
        .map((c) => c.n + " = " + valueText(c.value))
        .join(", ");
      return el(
        "tr",
        { "data-id": entry.id, "data-state": entry.state, "data-result": entry.result || null },
        el("td", {}, entry.id),
        el("td", { class: "mono", title: entry.body }, command || entry.body),
        el("td", {}, el("span", { class: "badge " + (entry.state === "delivered" ? "ok" : "none") }, entry.state)),
        el("td", { class: "small", title: entry.queued_at }, timeOf(entry.queued_at)),
        el("td", { class: "small", title: entry.delivered_at || "" },
          entry.delivered_at ? timeOf(entry.delivered_at) + " (answer to #" + entry.message_id + ")" : "—"),
        answerCell(entry),
      );
    });
  fill("queue", rows, "no-queue");
}

function renderTarget() {
  // The downlink form says which device it sends to.
  const name = state.selected ? nameOf(state.selected) : null;
  $("dl-target-name").textContent = state.selected ? name || state.selected : "no device";
  $("dl-target-id").textContent = state.selected && name ? state.selected : "";
  $("dl-target").setAttribute("data-dvnuuid", state.selected || "");
}

function renderLog() {
  if (!state.logDirty) return;
  state.logDirty = false;
  const all = $("log-all").checked;
  const rows = [];
  for (let i = state.messages.length - 1; i >= 0 && rows.length < LOG_ROWS; i--) {
    const m = state.messages[i];
    if (!all && m.dvnuuid !== state.selected) continue;
    rows.push(
      el(
        "tr",
        { "data-id": m.id, "data-outcome": m.outcome },
        el("td", {}, m.id),
        el("td", { class: "small", title: m.received_at }, timeOf(m.received_at)),
        el("td", { class: "small", title: m.dvnuuid || "" }, deviceLabel(m.dvnuuid)),
        el(
          "td",
          {},
          badge(m.outcome, m.status),
          m.duplicates
            ? el("span", { class: "badge warn", "data-duplicates": m.duplicates }, m.duplicates + " duplicate" + (m.duplicates > 1 ? "s" : ""))
            : null,
          timeBadge(m.time_source, m.undated),
        ),
        el("td", { class: "small" }, tokenText(m.token_check)),
        el("td", {}, el("pre", {}, m.body_base64 ? "(not UTF-8, base64) " + m.body_base64 : m.body)),
        el("td", {}, m.response_body ? el("pre", {}, m.response_body) : el("span", { class: "muted small" }, "(empty body)")),
      ),
    );
  }
  fill("log", rows, "no-log");
}

function render() {
  renderDevices();
  renderCharts();
  renderValues();
  renderActuators();
  renderQueue();
  renderTarget();
  renderLog();
}

function select(dvnuuid) {
  state.selected = dvnuuid;
  state.queue = [];
  state.logDirty = true;
  if (location.hash.slice(1) !== dvnuuid) history.replaceState(null, "", "#" + dvnuuid);
  render();
  refresh();
}

// -- polling -----------------------------------------------------------------------------------

function liveliest(devices) {
  // With no device in the address (#<uuid>), show the one heard from last.
  let best = null;
  for (const d of devices) {
    if (!best || (d.last_seen || "") > (best.last_seen || "")) best = d;
  }
  return best ? best.dvnuuid : null;
}

let inFlight = null;

function refresh() {
  // One request chain at a time; a click during a poll waits for that poll's answer.
  if (!inFlight) inFlight = fetchAll().finally(() => (inFlight = null));
  return inFlight;
}

async function fetchAll() {
  const conn = $("conn");
  try {
    state.devices = await api("/api/devices");
    state.registered = new Set(state.devices.map((d) => d.dvnuuid));
    if (!state.selected || !state.registered.has(state.selected)) {
      const wanted = location.hash.slice(1);
      state.selected = state.registered.has(wanted) ? wanted : liveliest(state.devices);
      state.logDirty = true;
    }
    const fresh = await api("/api/messages?limit=1000&since=" + state.lastId);
    fresh.forEach(absorb);
    const selected = state.selected;
    const updates = await api("/api/updates");
    const versions = $("up-version");
    if (versions.options.length !== updates.releases.length) {
      versions.replaceChildren(...updates.releases.slice().reverse().map((v) => el("option", { value: v }, v)));
    }
    const queue = selected ? await api("/api/devices/" + encodeURIComponent(selected) + "/downlinks") : [];
    if (selected === state.selected) state.queue = queue;
    render();
    conn.textContent = "live · updated " + clock(new Date());
    conn.setAttribute("data-state", "live");
  } catch (e) {
    conn.textContent = e.locked ? e.message : "emulator not answering: " + e.message;
    conn.setAttribute("data-state", e.locked ? "locked" : "down");
  }
}

async function pollForever() {
  for (;;) {
    await refresh();
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// -- the downlink form -------------------------------------------------------------------------

function parseValue(text) {
  // true/false -> vb, a JSON-style number -> v, "quoted" or anything else -> vs.
  const t = text.trim();
  if (/^(true|false)$/i.test(t)) return ["vb", t.toLowerCase() === "true"];
  if (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t) && Number.isFinite(Number(t))) return ["v", Number(t)];
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return ["vs", t.slice(1, -1)];
  return ["vs", t];
}

function formPack() {
  const name = $("dl-name").value.trim();
  const [key, value] = parseValue($("dl-value").value);
  const record = { n: name };
  record[key] = value;
  return [record];
}

function showPreview() {
  $("dl-preview").textContent = JSON.stringify(formPack());
}

async function submitDownlink(event) {
  event.preventDefault();
  const result = $("dl-result");
  const name = $("dl-name").value.trim();
  result.className = "small";
  if (!state.selected) {
    result.textContent = "No device to send to.";
    result.className = "small error";
    return;
  }
  if (!NAME_RE.test(name)) {
    result.textContent = "The actuator name must be letters, digits and - : . / _ (e.g. led).";
    result.className = "small error";
    return;
  }
  $("dl-submit").disabled = true;
  try {
    const entry = await api("/api/devices/" + encodeURIComponent(state.selected) + "/downlinks", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(formPack()),
    });
    result.textContent = "Queued downlink #" + entry.id + " for " + deviceLabel(state.selected) +
      ": it goes out with the answer to the next uplink.";
    result.className = "small ok-text";
  } catch (e) {
    result.textContent = "Not queued: " + e.message;
    result.className = "small error";
  } finally {
    $("dl-submit").disabled = false;
  }
  refresh();
}

async function offerUpdate(devices) {
  const result = $("up-result");
  const version = $("up-version").value;
  result.className = "small";
  if (!version) {
    result.textContent = "No signed release to offer: start the emulator with --releases DIR.";
    result.className = "small error";
    return;
  }
  if (devices !== "all" && !state.selected) {
    result.textContent = "No device to offer it to.";
    result.className = "small error";
    return;
  }
  try {
    await api("/api/updates", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ version: version, devices: devices === "all" ? "all" : [state.selected] }),
    });
    result.textContent = "Offered " + version + " to " +
      (devices === "all" ? "every device" : deviceLabel(state.selected)) + ": taken at its next boot.";
    result.className = "small ok-text";
  } catch (e) {
    result.textContent = "Not offered: " + e.message;
    result.className = "small error";
  }
  refresh();
}

function resizeCharts() {
  for (const chart of state.charts.values()) {
    chart.plot.setSize({ width: Math.max(240, chart.box.clientWidth), height: CHART_HEIGHT });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("log-all").checked = true;
  $("log-all").addEventListener("change", () => {
    state.logDirty = true;
    renderLog();
  });
  $("downlink-form").addEventListener("submit", submitDownlink);
  $("update-form").addEventListener("submit", (event) => {
    event.preventDefault();
    offerUpdate("one");
  });
  $("up-all").addEventListener("click", () => offerUpdate("all"));
  $("dl-name").addEventListener("input", showPreview);
  $("dl-value").addEventListener("input", showPreview);
  window.addEventListener("resize", resizeCharts);
  showPreview();
  pollForever();
});
