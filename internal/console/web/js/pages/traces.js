// Traces: search by service, operation, duration, tags and time through
// the Jaeger query API the engine serves under /jaeger/api/, and a trace's
// waterfall with each span's attributes, events and logs.
import { get } from "../api.js";
import { h, replace, table, errorText } from "../dom.js";

const base = "/jaeger/api";

const ms = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us} µs`);

export async function render(main, params) {
  main.append(h("h1", {}, "Traces"));
  let services;
  try {
    services = (await get(`${base}/services`)).data ?? [];
  } catch (err) {
    if (err.status === 404) {
      main.append(h("p", { class: "notice", id: "tracing-off" }, "tracing is not running in this nubo yet. This page lights up when the engine serves traces."));
      return;
    }
    main.append(errorText(err));
    return;
  }
  const service = h("select", { id: "trace-service", "aria-label": "Service" }, services.map((s) => h("option", { value: s }, s)));
  const operation = h("select", { id: "trace-operation", "aria-label": "Operation" }, h("option", { value: "" }, "all operations"));
  const tags = h("input", { id: "trace-tags", placeholder: 'error=true http.status_code=500', "aria-label": "Tags" });
  const minD = h("input", { id: "trace-min", placeholder: "min e.g. 100ms", size: 10, "aria-label": "Minimum duration" });
  const maxD = h("input", { id: "trace-max", placeholder: "max", size: 8, "aria-label": "Maximum duration" });
  const lookback = h("select", { "aria-label": "Time" }, ["15m", "1h", "6h", "24h"].map((l) => h("option", { value: l }, `last ${l}`)));
  lookback.value = "1h";
  const results = h("div", { id: "trace-results" }), view = h("div", { id: "trace-view" });
  main.append(
    h("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); search(); } },
      service, operation, tags, minD, maxD, lookback, h("button", { type: "submit" }, "Find traces")),
    results, view);

  async function loadOperations() {
    try {
      const ops = (await get(`${base}/services/${encodeURIComponent(service.value)}/operations`)).data ?? [];
      replace(operation, h("option", { value: "" }, "all operations"), ops.map((o) => h("option", { value: o.name ?? o }, o.name ?? o)));
    } catch { /* keep "all" */ }
  }

  async function search() {
    const end = Date.now() * 1000;
    const span = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400 }[lookback.value] * 1e6;
    const q = new URLSearchParams({ service: service.value, start: end - span, end, limit: 20 });
    if (operation.value) q.set("operation", operation.value);
    if (minD.value) q.set("minDuration", minD.value);
    if (maxD.value) q.set("maxDuration", maxD.value);
    if (tags.value.trim()) {
      const t = {};
      for (const kv of tags.value.trim().split(/\s+/)) { const [k, v] = kv.split("="); t[k] = v ?? ""; }
      q.set("tags", JSON.stringify(t));
    }
    try {
      const traces = (await get(`${base}/traces?${q}`)).data ?? [];
      replace(results, traces.length ? table([
        { label: "Trace", cell: (t) => h("a", { href: `#/traces?trace=${t.traceID}` }, rootOf(t).operationName) },
        { label: "Spans", num: true, cell: (t) => t.spans.length },
        { label: "Duration", num: true, cell: (t) => ms(rootOf(t).duration) },
        { label: "Errors", num: true, cell: (t) => t.spans.filter(isError).length },
        { label: "Started", cell: (t) => new Date(rootOf(t).startTime / 1000).toLocaleString() },
      ], traces) : h("p", { class: "muted" }, "No traces found."));
    } catch (err) { replace(results, errorText(err)); }
  }

  service.addEventListener("change", loadOperations);
  await loadOperations();
  if (params.get("trace")) await showTrace(view, params.get("trace"));
  else if (services.length) await search();
}

function rootOf(t) {
  return t.spans.find((s) => !(s.references ?? []).some((r) => r.refType === "CHILD_OF")) ?? t.spans[0];
}

function isError(s) {
  return (s.tags ?? []).some((t) => (t.key === "error" && t.value === true) || (t.key === "otel.status_code" && t.value === "ERROR"));
}

// showTrace draws a trace's waterfall: spans in tree order, each a bar
// placed by its start and length; a click shows its attributes, events
// and the logs written under it.
export async function showTrace(el, id) {
  let t;
  try { t = (await get(`${base}/traces/${encodeURIComponent(id)}`)).data?.[0]; } catch (err) { replace(el, errorText(err)); return; }
  if (!t) { replace(el, errorText(`trace ${id} not found`)); return; }
  const children = new Map();
  for (const s of t.spans) {
    const parent = (s.references ?? []).find((r) => r.refType === "CHILD_OF")?.spanID ?? "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(s);
  }
  const ids = new Set(t.spans.map((s) => s.spanID));
  const ordered = [];
  const walk = (s, depth) => {
    ordered.push([s, depth]);
    for (const c of (children.get(s.spanID) ?? []).sort((a, b) => a.startTime - b.startTime)) walk(c, depth + 1);
  };
  // Roots: no parent, or a parent not in this trace.
  for (const s of t.spans.filter((s) => { const p = (s.references ?? []).find((r) => r.refType === "CHILD_OF"); return !p || !ids.has(p.spanID); }).sort((a, b) => a.startTime - b.startTime)) walk(s, 0);
  const start = Math.min(...t.spans.map((s) => s.startTime));
  const total = Math.max(...t.spans.map((s) => s.startTime + s.duration)) - start || 1;
  const detail = h("div", { id: "span-detail" });
  const rows = ordered.map(([s, depth]) => {
    const proc = t.processes?.[s.processID]?.serviceName ?? "";
    const bar = h("div", { class: `bar${isError(s) ? " err" : ""}`, style: `margin-left:${((s.startTime - start) / total) * 100}%;width:${Math.max(0.5, (s.duration / total) * 100)}%` });
    const tr = h("tr", { tabindex: 0, "data-span": s.spanID, "aria-selected": "false" },
      h("td", { style: `padding-left:${0.5 + depth}rem` }, h("strong", {}, proc), " ", s.operationName),
      h("td", { class: "num" }, ms(s.duration)),
      h("td", { class: "track" }, bar));
    const open = () => {
      for (const r of tr.parentElement.children) r.setAttribute("aria-selected", "false");
      tr.setAttribute("aria-selected", "true");
      showSpan(detail, t, s, proc);
    };
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } });
    return tr;
  });
  replace(el, h("h2", {}, `Trace ${t.traceID}`),
    h("p", { class: "muted" }, `${t.spans.length} spans, ${ms(total)}`),
    h("table", { class: "waterfall", id: "waterfall" },
      h("thead", {}, h("tr", {}, h("th", {}, "Span"), h("th", { class: "num" }, "Duration"), h("th", {}, "Timeline"))),
      h("tbody", {}, rows)),
    detail);
}

async function showSpan(el, t, s, proc) {
  const logs = h("div", { class: "log mono" }, h("span", { class: "muted" }, "loading logs…"));
  replace(el, h("h3", {}, `${proc} ${s.operationName}`),
    h("h4", {}, "Attributes"),
    table([{ label: "Key", cell: (kv) => kv.key }, { label: "Value", cell: (kv) => String(kv.value) }], s.tags ?? [], { class: "span-tags" }),
    h("h4", {}, "Events"),
    (s.logs ?? []).length ? table([
      { label: "Time", cell: (l) => `+${ms(l.timestamp - s.startTime)}` },
      { label: "Fields", cell: (l) => (l.fields ?? []).map((f) => `${f.key}=${f.value}`).join(" ") },
    ], s.logs) : h("p", { class: "muted" }, "No events."),
    h("h4", {}, "Logs"), logs);
  try {
    const q = new URLSearchParams({ trace: t.traceID, tail: 200, since: "24h" });
    const resp = await fetch(`/admin/v1/logs?${q}`);
    const text = await resp.text();
    if (!resp.ok) throw new Error(JSON.parse(text).error);
    const lines = text.split("\n").filter(Boolean).map((x) => JSON.parse(x))
      .filter((l) => !l.fields?.span_id && !l.fields?.spanId || l.fields.span_id === s.spanID || l.fields.spanId === s.spanID);
    replace(logs, lines.length ? lines.map((l) => h("div", {}, `${l.service} ${l.text}`)) : h("span", { class: "muted" }, "No logs for this span."));
  } catch (err) { replace(logs, errorText(err)); }
}
