// pushstream console: a static page over the Stream API (/v1). No framework, no build step.
// Every call sends the token the user logged in with (sessionStorage, this tab only)
// as X-StorageApi-Token; the page itself holds no data.
"use strict";

const TOKEN_KEY = "pushstream.console.token";
const TOKEN_HEADER = "X-StorageApi-Token";
const BRANCH = "default";
// Relative to the page (/console), so a reverse proxy's path prefix is kept.
const API_ROOT = new URL("v1/", document.baseURI);
const REFRESH_MS = 2000;
const CHART_SAMPLES = 60; // 2 minutes of samples at REFRESH_MS
const FLUSH_WAIT_SECONDS = 60;
const LEVELS = ["local", "staging", "target"];
const COLUMN_TYPES = ["uuid", "datetime", "ip", "body", "headers", "path", "template"];
const DATA_TYPES = ["string", "integer", "number", "boolean", "timestamp", "date", "json"];

const state = {
  sources: [], // the aggregation endpoint's sources, with sinks and statistics
  selected: null, // {sourceId, sinkId} of the sink shown in the detail panel
  failedFiles: null, // the selected sink's files whose import fails (statistics/files?failedFiles=true)
  settingsOf: null, // {sourceId, sinkId?} whose settings are shown
  history: new Map(), // "source/sink" -> [{at, total, target}] samples for the chart
  lastRendered: "",
  timer: null,
  refreshing: null, // the promise of the refresh running now
  refreshAgain: false,
};

// ---------------------------------------------------------------- DOM helpers

const $ = (selector) => document.querySelector(selector);

/** An element with attributes (on* are listeners) and children (strings become text, never HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(node, visible) {
  node.hidden = !visible;
}

let messageTimer = null;

/** A message above the panels; errors stay until the next message. */
function say(text, kind = "info") {
  const node = $("#message");
  node.textContent = text;
  node.className = kind;
  node.dataset.kind = kind;
  show(node, true);
  clearTimeout(messageTimer);
  if (kind !== "error") messageTimer = setTimeout(() => show(node, false), 8000);
}

function formatBytes(bytes) {
  if (!bytes) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/**
 * Calls /v1/<path>. `json` is sent as JSON, `body` as is with `contentType`.
 * Resolves to the parsed answer; rejects with an ApiError holding the API's message.
 */
async function api(method, path, { json, body, contentType, secret } = {}) {
  const headers = { [TOKEN_HEADER]: secret ?? token() };
  let payload;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  } else if (body !== undefined) {
    headers["Content-Type"] = contentType;
    payload = body;
  }
  let response;
  try {
    response = await fetch(new URL(path, API_ROOT), { method, headers, body: payload, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "network", `The server cannot be reached (${error.message}).`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const message = data && typeof data === "object" && data.message ? data.message : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, (data && data.error) || "", message);
  }
  return data;
}

const sourcePath = (sourceId) => `branches/${BRANCH}/sources/${encodeURIComponent(sourceId)}`;
const sinkPath = (sourceId, sinkId) => `${sourcePath(sourceId)}/sinks/${encodeURIComponent(sinkId)}`;

/** Waits for a configuration task (the API answers changes with 202 and a task). */
async function finished(task) {
  let current = task;
  while (!current.isFinished) {
    await sleep(150);
    current = await api("GET", `tasks/${current.taskId}`);
  }
  if (current.status !== "success") {
    throw new ApiError(0, "task", current.error || current.result || `The task ${current.taskId} failed.`);
  }
  return current;
}

/** Runs an action of a button: disables it meanwhile, reports errors, refreshes after. */
async function act(button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (error) {
    say(error.message, "error");
  } finally {
    if (button) button.disabled = false;
  }
  await refresh();
}

// ---------------------------------------------------------------- log in / out

async function logIn(event) {
  event.preventDefault();
  const secret = $("#login-token").value.trim();
  const error = $("#login-error");
  show(error, false);
  $("#login-button").disabled = true;
  try {
    await api("GET", `branches/${BRANCH}/sources?limit=1`, { secret });
    sessionStorage.setItem(TOKEN_KEY, secret);
    $("#login-token").value = "";
    enter();
  } catch (failure) {
    error.textContent =
      failure.status === 401 ? `Log in failed: ${failure.message} Check the token and try again.` : `Log in failed: ${failure.message}`;
    show(error, true);
  } finally {
    $("#login-button").disabled = false;
  }
}

function logOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  state.timer = null;
  state.sources = [];
  state.selected = null;
  state.settingsOf = null;
  state.history.clear();
  state.lastRendered = "";
  // Nothing of the last session stays on the page for the next token.
  show($("#settings-panel"), false);
  show($("#detail-panel"), false);
  $("#test-result").replaceChildren();
  $("#message").hidden = true;
  show($("#console"), false);
  show($("#logout"), false);
  show($("#login-panel"), true);
  $("#live").textContent = "";
}

function enter() {
  show($("#login-panel"), false);
  show($("#console"), true);
  show($("#logout"), true);
  refresh();
  clearInterval(state.timer);
  state.timer = setInterval(refresh, REFRESH_MS);
}

// ---------------------------------------------------------------- refresh

/**
 * Refreshes what the page shows. One refresh runs at a time (a slow server gets no
 * pile of calls); asked for meanwhile, it runs once more after the current one, so
 * the state after an action is always shown.
 */
function refresh() {
  if (state.refreshing) {
    state.refreshAgain = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    try {
      do {
        state.refreshAgain = false;
        await refreshOnce();
      } while (state.refreshAgain);
    } finally {
      state.refreshing = null;
    }
  })();
  return state.refreshing;
}

async function refreshOnce() {
  if (!token()) return;
  let answer;
  try {
    answer = await api("GET", `branches/${BRANCH}/aggregation/sources?limit=100`);
  } catch (error) {
    if (error.status === 401) {
      logOut();
      const node = $("#login-error");
      node.textContent = `Logged out: ${error.message}`;
      show(node, true);
      return;
    }
    $("#live").textContent = `not updated: ${error.message}`;
    return;
  }
  state.sources = answer.sources;
  // The failing imports of the selected sink from the statistics API: all of them,
  // not only among the sink's recent files that the aggregation lists.
  const selected = findSink(state.selected);
  state.failedFiles = null;
  if (selected) {
    try {
      const path = sinkPath(selected.source.sourceId, selected.sink.sinkId);
      const files = (await api("GET", `${path}/statistics/files?failedFiles=true`)).files;
      state.failedFiles = { sourceId: selected.source.sourceId, sinkId: selected.sink.sinkId, files };
    } catch (error) {
      $("#live").textContent = `not updated: ${error.message}`;
    }
  }
  const now = Date.now();
  for (const source of answer.sources) {
    for (const sink of source.sinks) {
      const key = `${source.sourceId}/${sink.sinkId}`;
      const samples = state.history.get(key) || [];
      // One sample per refresh period: the extra refresh after an action would make a spike of a short interval.
      if (samples.length && now - samples[samples.length - 1].at < REFRESH_MS - 200) continue;
      const levels = sink.statistics.levels;
      samples.push({ at: now, total: sink.statistics.total.recordsCount, target: levels.target ? levels.target.recordsCount : 0 });
      if (samples.length > CHART_SAMPLES + 1) samples.shift();
      state.history.set(key, samples);
    }
  }
  $("#live").textContent = `updated ${new Date(now).toLocaleTimeString()}`;
  // Redraw the lists only when something changed, so buttons stay put between changes.
  const rendered = JSON.stringify(answer.sources);
  if (rendered !== state.lastRendered) {
    state.lastRendered = rendered;
    renderSources();
    renderSourceChoices();
  }
  renderDetail();
}

// ---------------------------------------------------------------- sources and sinks

function disabledLabel(entity) {
  return entity.disabled ? el("span", { class: "badge off" }, "disabled") : el("span", { class: "badge on" }, "enabled");
}

function levelCount(statistics, level) {
  const found = statistics.levels[level];
  return found ? found.recordsCount : 0;
}

function renderSources() {
  const container = $("#sources");
  container.replaceChildren();
  if (!state.sources.length) {
    container.append(el("p", { class: "muted" }, "No sources yet: create one below."));
    return;
  }
  for (const source of state.sources) {
    const url = source.http ? source.http.url : "";
    const urlInput = el("input", { class: "url", readonly: true, value: url, "aria-label": `URL of ${source.sourceId}` });
    const card = el(
      "article",
      { class: "source", id: `source-${source.sourceId}`, dataset: { source: source.sourceId } },
      el("div", { class: "title" }, el("h3", {}, source.name), el("code", {}, source.sourceId), disabledLabel(source)),
      source.description ? el("p", { class: "muted" }, source.description) : null,
      el(
        "div",
        { class: "row" },
        urlInput,
        el("button", { type: "button", class: "copy", onclick: (e) => copyUrl(e.currentTarget, urlInput) }, "Copy URL"),
      ),
      el(
        "div",
        { class: "row actions" },
        el("button", { type: "button", class: "flush", onclick: (e) => flush(e.currentTarget, source.sourceId) }, "Flush"),
        source.disabled
          ? el("button", { type: "button", class: "enable", onclick: (e) => setEnabled(e.currentTarget, source.sourceId, null, true) }, "Enable")
          : el("button", { type: "button", class: "disable", onclick: (e) => setEnabled(e.currentTarget, source.sourceId, null, false) }, "Disable"),
        el("button", { type: "button", class: "settings", onclick: () => showSettings(source.sourceId, null) }, "Settings"),
        el("button", { type: "button", class: "test", onclick: () => chooseTest(source.sourceId) }, "Test a payload"),
      ),
      renderSinks(source),
    );
    container.append(card);
  }
}

function renderSinks(source) {
  if (!source.sinks.length) return el("p", { class: "muted" }, "No sinks: events are accepted and not stored. Create one below.");
  const rows = source.sinks.map((sink) => {
    const statistics = sink.statistics;
    const selected = state.selected && state.selected.sourceId === source.sourceId && state.selected.sinkId === sink.sinkId;
    return el(
      "tr",
      { class: selected ? "sink selected" : "sink", id: `sink-${source.sourceId}-${sink.sinkId}`, dataset: { source: source.sourceId, sink: sink.sinkId } },
      el("td", {}, el("a", { href: "#", class: "select", onclick: (e) => (e.preventDefault(), select(source.sourceId, sink.sinkId)) }, sink.sinkId)),
      el("td", {}, el("code", {}, sink.table ? sink.table.tableId : "")),
      el("td", { class: "mapping-summary" }, sink.table ? sink.table.mapping.columns.map((c) => c.name).join(", ") : ""),
      el("td", {}, disabledLabel(sink)),
      el("td", { class: "num count-total" }, statistics.total.recordsCount),
      ...LEVELS.map((level) => el("td", { class: `num count-${level}` }, levelCount(statistics, level))),
      el(
        "td",
        { class: "actions" },
        el("button", { type: "button", class: "flush", onclick: (e) => flush(e.currentTarget, source.sourceId, sink.sinkId) }, "Flush"),
        sink.disabled
          ? el("button", { type: "button", class: "enable", onclick: (e) => setEnabled(e.currentTarget, source.sourceId, sink.sinkId, true) }, "Enable")
          : el("button", { type: "button", class: "disable", onclick: (e) => setEnabled(e.currentTarget, source.sourceId, sink.sinkId, false) }, "Disable"),
      ),
    );
  });
  return el(
    "table",
    { class: "grid sinks" },
    el("thead", {}, el("tr", {}, ["Sink", "Table", "Columns", "State", "Received", "Local", "Staging", "Imported", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows),
  );
}

async function copyUrl(button, input) {
  const url = input.value;
  try {
    await navigator.clipboard.writeText(url);
  } catch {
    // No clipboard API (plain http on another host than localhost): the selection and the old command.
    input.select();
    if (!document.execCommand("copy")) {
      say("The browser refused the clipboard: the URL is selected, copy it with Ctrl+C.", "error");
      return;
    }
  }
  button.textContent = "Copied";
  setTimeout(() => (button.textContent = "Copy URL"), 2000);
  say("The URL is in the clipboard (it contains the source's secret).");
}

async function flush(button, sourceId, sinkId) {
  await act(button, async () => {
    const path = sinkId ? sinkPath(sourceId, sinkId) : sourcePath(sourceId);
    say(`Flushing ${sinkId ? `${sourceId}/${sinkId}` : sourceId}…`);
    const result = await api("POST", `${path}/flush?wait=${FLUSH_WAIT_SECONDS}`);
    const files = result.files;
    const imported = files.filter((f) => f.state === "imported").length;
    const failed = files.filter((f) => f.retryReason);
    if (!files.length) say("Flushed: nothing was waiting.", "success");
    else if (result.imported) say(`Flushed: ${imported} of ${files.length} file(s) imported.`, "success");
    else if (failed.length) say(`Flushed: ${imported} of ${files.length} file(s) imported; failed: ${failed.map((f) => f.retryReason).join("; ")}`, "error");
    else say(`Flushed: ${imported} of ${files.length} file(s) imported, the rest is still importing.`, "info");
  });
}

async function setEnabled(button, sourceId, sinkId, enabled) {
  await act(button, async () => {
    const path = sinkId ? sinkPath(sourceId, sinkId) : sourcePath(sourceId);
    await finished(await api("PUT", `${path}/${enabled ? "enable" : "disable"}`));
    say(`${sinkId ? `Sink ${sinkId}` : `Source ${sourceId}`} ${enabled ? "enabled" : "disabled"}.`, "success");
  });
}

// ---------------------------------------------------------------- the selected sink

function select(sourceId, sinkId) {
  state.selected = { sourceId, sinkId };
  state.lastRendered = ""; // redraw to mark the selection
  showSettings(sourceId, sinkId);
  refresh();
}

function findSink(selected) {
  if (!selected) return null;
  const source = state.sources.find((s) => s.sourceId === selected.sourceId);
  const sink = source && source.sinks.find((s) => s.sinkId === selected.sinkId);
  return sink ? { source, sink } : null;
}

function renderDetail() {
  const found = findSink(state.selected);
  show($("#detail-panel"), Boolean(found));
  if (!found) return;
  const { source, sink } = found;
  const statistics = sink.statistics;
  $("#detail-title").textContent = `Sink ${source.sourceId}/${sink.sinkId} → ${sink.table ? sink.table.tableId : ""}`;

  const levelRows = [...LEVELS.map((name) => [name, statistics.levels[name]]), ["total", statistics.total]].map(([name, level]) =>
    el(
      "tr",
      { dataset: { level: name } },
      el("th", {}, name),
      el("td", { class: "num records" }, level ? level.recordsCount : 0),
      el("td", { class: "num" }, formatBytes(level ? level.compressedSize : 0)),
      el("td", { class: "num" }, formatBytes(level ? level.uncompressedSize : 0)),
      el("td", {}, (level && level.firstRecordAt) || ""),
      el("td", {}, (level && level.lastRecordAt) || ""),
    ),
  );
  $("#levels tbody").replaceChildren(...levelRows);
  const rejected = $("#rejected");
  show(rejected, Boolean(statistics.rejected));
  if (statistics.rejected) rejected.textContent = `${statistics.rejected.recordsCount} row(s) refused by the target database (pushstream rejected lists them).`;

  drawChart(state.history.get(`${source.sourceId}/${sink.sinkId}`) || []);

  const files = statistics.files || [];
  // The open file without records yet is not waiting for anything.
  const records = (file) => (file.statistics ? file.statistics.total.recordsCount : 0);
  const waiting = files.filter((f) => f.state !== "imported" && (records(f) > 0 || f.retryReason));
  // Imports failing now (a file imported after retries keeps its last reason, and is done).
  const known = state.failedFiles;
  const failed =
    known && known.sourceId === source.sourceId && known.sinkId === sink.sinkId
      ? known.files
      : files.filter((f) => f.retryReason && f.state !== "imported");
  $("#files-waiting").replaceChildren(
    waiting.length
      ? filesTable(waiting, false)
      : el("p", { class: "muted", id: "no-files-waiting" }, "No file waiting: everything received is imported."),
  );
  $("#files-failed").replaceChildren(
    failed.length ? filesTable(failed, true) : el("p", { class: "muted", id: "no-failed-imports" }, "No failed import."),
  );
  $("#mapping").replaceChildren(mappingTable(sink));
}

function filesTable(files, withReasons) {
  const headers = ["State", "Opened", "Records", "Size", "Attempts"];
  if (withReasons) headers.push("Reason", "Next attempt");
  return el(
    "table",
    { class: "grid files" },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      files.map((file) => {
        const total = file.statistics ? file.statistics.total : null;
        return el(
          "tr",
          { class: "file", dataset: { state: file.state } },
          el("td", {}, file.state),
          el("td", {}, file.openedAt),
          el("td", { class: "num" }, total ? total.recordsCount : 0),
          el("td", { class: "num" }, formatBytes(total ? total.uncompressedSize : 0)),
          el("td", { class: "num" }, file.retryAttempt || 0),
          withReasons ? el("td", { class: "reason" }, file.retryReason || "") : null,
          withReasons ? el("td", {}, file.retryAfter || "") : null,
        );
      }),
    ),
  );
}

function describeColumn(column) {
  if (column.type === "path") return `path ${column.path}${column.defaultValue !== undefined ? ` (default ${column.defaultValue})` : ""}`;
  if (column.type === "template") return `template ${column.template ? column.template.content : ""}`;
  return column.type;
}

function mappingTable(sink) {
  if (!sink.table) return el("p", { class: "muted" }, "No table.");
  const mapping = sink.table.mapping;
  const notes = [];
  if (mapping.mergeStrategy) notes.push(`merge strategy ${mapping.mergeStrategy}`);
  if (mapping.eventTimeColumn) notes.push(`event time in ${mapping.eventTimeColumn}`);
  if (mapping.systemColumns) notes.push("system columns");
  return el(
    "div",
    {},
    el(
      "table",
      { class: "grid" },
      el("thead", {}, el("tr", {}, ["Column", "From", "Data type", "Primary key", "Raw string"].map((h) => el("th", {}, h)))),
      el(
        "tbody",
        {},
        mapping.columns.map((column) =>
          el(
            "tr",
            {},
            el("td", {}, el("code", {}, column.name)),
            el("td", {}, el("code", {}, describeColumn(column))),
            el("td", {}, column.dataType || "string"),
            el("td", {}, column.primaryKey ? "yes" : ""),
            el("td", {}, column.rawString ? "yes" : ""),
          ),
        ),
      ),
    ),
    notes.length ? el("p", { class: "muted" }, notes.join(", ")) : null,
  );
}

// A plain SVG line chart of the rates between consecutive samples.
function drawChart(samples) {
  const width = 640;
  const height = 160;
  const pad = 30;
  const rates = [];
  for (let i = 1; i < samples.length; i += 1) {
    const seconds = (samples[i].at - samples[i - 1].at) / 1000 || 1;
    rates.push({
      received: Math.max(0, samples[i].total - samples[i - 1].total) / seconds,
      imported: Math.max(0, samples[i].target - samples[i - 1].target) / seconds,
    });
  }
  const peak = Math.max(1, ...rates.map((r) => Math.max(r.received, r.imported)));
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, CHART_SAMPLES - 1);
  const y = (value) => height - pad - (value * (height - 2 * pad)) / peak;
  const svg = (tag, attrs) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  };
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": "Throughput" });
  root.append(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }));
  root.append(svg("line", { x1: pad, y1: pad, x2: pad, y2: height - pad, class: "axis" }));
  const label = (text, attrs) => {
    const node = svg("text", attrs);
    node.textContent = text;
    return node;
  };
  root.append(label(peak.toFixed(peak < 10 ? 1 : 0), { x: pad - 4, y: pad + 4, "text-anchor": "end", class: "tick" }));
  root.append(label("0", { x: pad - 4, y: height - pad + 4, "text-anchor": "end", class: "tick" }));
  const span = `−${Math.round((CHART_SAMPLES * REFRESH_MS) / 60000)} min`;
  root.append(label(span, { x: pad, y: height - pad + 16, "text-anchor": "start", class: "tick" }));
  root.append(label("now", { x: width - pad, y: height - pad + 16, "text-anchor": "end", class: "tick" }));
  for (const [series, name] of [["received", "received"], ["imported", "imported"]]) {
    if (rates.length) {
      const offset = CHART_SAMPLES - rates.length;
      const points = rates.map((r, i) => `${x(offset + i).toFixed(1)},${y(r[series]).toFixed(1)}`).join(" ");
      root.append(svg("polyline", { points, class: `line ${name}`, fill: "none" }));
    }
  }
  root.append(label("received/s", { x: width - pad, y: 14, "text-anchor": "end", class: "legend received" }));
  root.append(label("imported/s", { x: width - pad - 90, y: 14, "text-anchor": "end", class: "legend imported" }));
  $("#chart").replaceChildren(root);
}

// ---------------------------------------------------------------- settings

async function showSettings(sourceId, sinkId) {
  state.settingsOf = { sourceId, sinkId };
  const path = sinkId ? sinkPath(sourceId, sinkId) : sourcePath(sourceId);
  $("#settings-title").textContent = `Settings of ${sinkId ? `sink ${sourceId}/${sinkId}` : `source ${sourceId}`}`;
  show($("#settings-panel"), true);
  let answer;
  try {
    answer = await api("GET", `${path}/settings`);
  } catch (error) {
    say(error.message, "error");
    return;
  }
  const rows = answer.settings.map((setting) => {
    const input = el("input", { value: formatSetting(setting.value), disabled: setting.protected, "aria-label": setting.key });
    return el(
      "tr",
      { class: setting.protected ? "protected" : null, dataset: { key: setting.key } },
      el("td", {}, el("code", {}, setting.key), setting.overwritten ? el("span", { class: "badge on" }, "set here") : null),
      el("td", {}, input),
      el("td", { class: "muted" }, formatSetting(setting.defaultValue)),
      el(
        "td",
        { class: "actions" },
        setting.protected
          ? el("span", { class: "muted" }, "protected")
          : [
              el("button", { type: "button", onclick: (e) => saveSetting(e.currentTarget, path, setting, input.value) }, "Save"),
              setting.overwritten
                ? el("button", { type: "button", onclick: (e) => saveSetting(e.currentTarget, path, setting, null) }, "Reset")
                : null,
            ],
      ),
      el("td", { class: "muted" }, setting.description),
    );
  });
  $("#settings tbody").replaceChildren(...rows);
}

function formatSetting(value) {
  if (value === undefined || value === null) return "";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** The text of an input as the setting's type; null (Reset, or an empty input) resets the key to the inherited value. */
function parseSetting(setting, text) {
  if (text === null || text.trim() === "") return null;
  const trimmed = text.trim();
  switch (setting.type) {
    case "int":
    case "float":
      return Number(trimmed);
    case "bool":
      return trimmed === "true";
    case "[]string":
      return trimmed ? trimmed.split(",").map((s) => s.trim()) : [];
    case "[]int":
    case "[]float":
      return trimmed ? trimmed.split(",").map((s) => Number(s.trim())) : [];
    default:
      return text;
  }
}

async function saveSetting(button, path, setting, text) {
  await act(button, async () => {
    const value = parseSetting(setting, text);
    await finished(await api("PATCH", `${path}/settings`, { json: { settings: [{ key: setting.key, value }] } }));
    say(`${setting.key} ${value === null ? "reset" : "saved"}.`, "success");
    const { sourceId, sinkId } = state.settingsOf;
    await showSettings(sourceId, sinkId);
  });
}

// ---------------------------------------------------------------- create a source, a sink

function renderSourceChoices() {
  for (const select of [$("#sink-source"), $("#test-source")]) {
    const current = select.value;
    select.replaceChildren(...state.sources.map((s) => el("option", { value: s.sourceId }, `${s.name} (${s.sourceId})`)));
    if (state.sources.some((s) => s.sourceId === current)) select.value = current;
  }
}

function chooseTest(sourceId) {
  $("#test-source").value = sourceId;
  $("#test-panel").scrollIntoView();
  $("#test-body").focus();
}

async function createSource(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const body = { type: "http", name: $("#source-name").value.trim() };
  if ($("#source-id").value.trim()) body.sourceId = $("#source-id").value.trim();
  if ($("#source-description").value.trim()) body.description = $("#source-description").value.trim();
  await act($("#create-source-button"), async () => {
    const task = await finished(await api("POST", `branches/${BRANCH}/sources`, { json: body }));
    form.reset();
    say(`Source ${task.outputs ? task.outputs.sourceId : body.name} created.`, "success");
  });
}

function columnRow(column = {}) {
  const type = el("select", { class: "column-type", "aria-label": "From" }, COLUMN_TYPES.map((t) => el("option", { value: t, selected: t === column.type }, t)));
  const detail = el("input", { class: "column-detail", placeholder: "user.id or Body(\"event\")", value: column.detail || "" });
  const dataType = el("select", { class: "column-data-type", "aria-label": "Data type" }, DATA_TYPES.map((t) => el("option", { value: t }, t)));
  const raw = el("input", { type: "checkbox", class: "column-raw-string", "aria-label": "Raw string" });
  const syncDetail = () => {
    const fromBody = ["path", "template"].includes(type.value);
    detail.disabled = !fromBody;
    raw.disabled = !fromBody;
  };
  type.addEventListener("change", syncDetail);
  syncDetail();
  const row = el(
    "tr",
    { class: "column" },
    el("td", {}, el("input", { class: "column-name", required: true, maxlength: 64, value: column.name || "", "aria-label": "Column" })),
    el("td", {}, type),
    el("td", {}, detail),
    el("td", {}, dataType),
    el("td", {}, el("input", { type: "checkbox", class: "column-primary-key", "aria-label": "Primary key" })),
    el("td", {}, raw),
    el("td", {}, el("button", { type: "button", class: "remove-column", onclick: () => row.remove() }, "Remove")),
  );
  return row;
}

function resetColumns() {
  $("#sink-columns tbody").replaceChildren(
    columnRow({ name: "id", type: "uuid" }),
    columnRow({ name: "received", type: "datetime" }),
    columnRow({ name: "body", type: "body" }),
  );
}

function readColumns() {
  return [...document.querySelectorAll("#sink-columns tbody tr")].map((row) => {
    const column = { type: row.querySelector(".column-type").value, name: row.querySelector(".column-name").value.trim() };
    const detail = row.querySelector(".column-detail").value;
    if (column.type === "path") column.path = detail.trim();
    if (column.type === "template") column.template = { language: "jsonnet", content: detail };
    const dataType = row.querySelector(".column-data-type").value;
    if (dataType !== "string") column.dataType = dataType;
    if (row.querySelector(".column-primary-key").checked) column.primaryKey = true;
    const raw = row.querySelector(".column-raw-string");
    if (raw.checked && !raw.disabled) column.rawString = true;
    return column;
  });
}

async function createSink(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const sourceId = $("#sink-source").value;
  const body = {
    type: "table",
    name: $("#sink-name").value.trim(),
    table: { type: "keboola", tableId: $("#sink-table").value.trim(), mapping: { columns: readColumns() } },
  };
  if ($("#sink-id").value.trim()) body.sinkId = $("#sink-id").value.trim();
  await act($("#create-sink-button"), async () => {
    if (!sourceId) throw new ApiError(0, "form", "Create a source first.");
    if (!body.table.mapping.columns.length) throw new ApiError(0, "form", "A sink needs at least one column.");
    const task = await finished(await api("POST", `${sourcePath(sourceId)}/sinks`, { json: body }));
    const sinkId = task.outputs ? task.outputs.sinkId : body.sinkId;
    form.reset();
    $("#sink-source").value = sourceId;
    resetColumns();
    say(`Sink ${sinkId} created.`, "success");
    if (sinkId) {
      state.selected = { sourceId, sinkId };
      state.lastRendered = "";
      showSettings(sourceId, sinkId);
    }
  });
}

// ---------------------------------------------------------------- test a payload

async function testPayload(event) {
  event.preventDefault();
  const sourceId = $("#test-source").value;
  const result = $("#test-result");
  await act($("#test-button"), async () => {
    if (!sourceId) throw new ApiError(0, "form", "Create a source first.");
    let answer;
    try {
      answer = await api("POST", `${sourcePath(sourceId)}/test`, { body: $("#test-body").value, contentType: $("#test-content-type").value });
    } catch (error) {
      result.replaceChildren(el("p", { class: "error", id: "test-error" }, error.message));
      return;
    }
    if (!answer.tables.length) {
      result.replaceChildren(el("p", { class: "muted" }, "No enabled sink: nothing would be written."));
      return;
    }
    result.replaceChildren(
      ...answer.tables.map((table) =>
        el(
          "div",
          { class: "test-table", dataset: { sink: table.sinkId } },
          el("h3", {}, `${table.sinkId} → ${table.tableId}`),
          el(
            "table",
            { class: "grid" },
            el("thead", {}, el("tr", {}, table.rows[0].columns.map((c) => el("th", {}, c.name)))),
            el(
              "tbody",
              {},
              table.rows.map((row) =>
                el("tr", {}, row.columns.map((c) => el("td", { dataset: { column: c.name } }, el("code", {}, c.value)))),
              ),
            ),
          ),
        ),
      ),
    );
  });
}

// ---------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", logIn);
  $("#logout").addEventListener("click", logOut);
  $("#create-source").addEventListener("submit", createSource);
  $("#create-sink").addEventListener("submit", createSink);
  $("#add-column").addEventListener("click", () => $("#sink-columns tbody").append(columnRow({ type: "path" })));
  $("#test-form").addEventListener("submit", testPayload);
  $("#show-protected").addEventListener("change", (e) => $("#settings").classList.toggle("hide-protected", !e.currentTarget.checked));
  resetColumns();
  if (token()) enter();
});
