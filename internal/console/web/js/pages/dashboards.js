// Dashboards: the spec's observability.dashboards, drawn from the same
// Grafana JSON `nubo render` exports, with their variables, time range and
// refresh, each panel queried through the Prometheus API.
import { get, prom } from "../api.js";
import { h, replace, errorText, num } from "../dom.js";
import { alignMatrix, lineChart, fmtUnit } from "../chart.js";
import { instantTable } from "./metrics.js";

const ranges = ["5m", "15m", "30m", "1h", "3h", "6h", "12h", "24h", "2d", "7d"];

// seconds parses 30s, 5m, 1h, 2d.
function seconds(d) {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(d ?? "");
  return m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]] : 0;
}

// rangeOf reads Grafana's time.from ("now-1h") as a span in seconds.
function rangeOf(time) {
  return seconds(String(time?.from ?? "now-1h").replace(/^now-/, "")) || 3600;
}

// interpolate replaces $var and ${var} in a PromQL expression with the
// chosen values: one value as it is, several (or All) as a regexp
// alternation, which is how Grafana fills multi-value variables.
export function interpolate(expr, vars) {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a, b) => {
    const v = vars[a ?? b];
    if (v === undefined) return m;
    if (v.length === 1) return v[0];
    return `(${v.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`;
  });
}

async function variableOptions(v) {
  if (v.options?.length) return v.options.map((o) => o.value);
  if (v.type === "custom" && v.query) return v.query.split(",").map((s) => s.trim());
  const m = /^label_values\((?:(.+),\s*)?(\w+)\)$/.exec((v.query ?? "").trim());
  if (!m) return [];
  const q = new URLSearchParams();
  if (m[1]) q.set("match[]", m[1]);
  const body = await get(`/api/v1/label/${encodeURIComponent(m[2])}/values?${q}`);
  return body.data ?? [];
}

export async function render(main, params) {
  main.append(h("h1", {}, "Dashboards"));
  let list;
  try { list = (await get("/console/v1/dashboards")).dashboards; } catch (err) { main.append(errorText(err)); return; }
  if (!list.length) {
    main.append(h("p", { class: "notice" }, "The spec has no dashboards (observability.dashboards)."));
    return;
  }
  const pick = h("select", { id: "dashboard", "aria-label": "Dashboard" }, list.map((d) => h("option", { value: d.name }, d.dashboard.title ?? d.name)));
  pick.value = params.get("name") ?? list[0].name;
  const range = h("select", { id: "dash-range", "aria-label": "Time range" }, ranges.map((r) => h("option", { value: r }, `last ${r}`)));
  const refresh = h("select", { id: "dash-refresh", "aria-label": "Refresh" }, ["", "5s", "10s", "30s", "1m", "5m"].map((r) => h("option", { value: r }, r ? `every ${r}` : "no refresh")));
  const varsEl = h("div", { class: "row" });
  const grid = h("div", { class: "grid", id: "panels" });
  main.append(h("div", { class: "row" }, pick, range, refresh, h("button", { onclick: () => draw() }, "Refresh now")), varsEl, grid);

  let charts = [], timer = null, dash = null;
  const selects = {};

  async function load() {
    dash = list.find((d) => d.name === pick.value).dashboard;
    const span = rangeOf(dash.time);
    range.value = ranges.find((r) => seconds(r) >= span) ?? "1h";
    refresh.value = dash.refresh ?? "";
    replace(varsEl);
    for (const v of dash.templating?.list ?? []) {
      if (v.type === "datasource") continue; // one Prometheus here
      let opts = [];
      try { opts = await variableOptions(v); } catch { /* shown empty */ }
      if (v.includeAll) opts = ["$__all", ...opts];
      const sel = h("select", { "aria-label": v.label ?? v.name, multiple: v.multi || undefined, onchange: draw },
        opts.map((o) => h("option", { value: o }, o === "$__all" ? "All" : o)));
      if (sel.options.length) sel.options[0].selected = true;
      selects[v.name] = { sel, all: opts.filter((o) => o !== "$__all") };
      varsEl.append(h("label", {}, `${v.label ?? v.name} `, sel));
    }
    await draw();
  }

  function values() {
    const out = {};
    for (const [name, { sel, all }] of Object.entries(selects)) {
      let chosen = [...sel.selectedOptions].map((o) => o.value);
      if (chosen.includes("$__all")) chosen = all.length ? all : [".*"];
      if (chosen.length) out[name] = chosen;
    }
    return out;
  }

  async function draw() {
    for (const c of charts) c.destroy();
    charts = [];
    clearInterval(timer);
    if (refresh.value) timer = setInterval(draw, seconds(refresh.value) * 1000);
    const vars = values();
    const end = Date.now() / 1000, span = seconds(range.value);
    replace(grid, ...(dash.panels ?? []).map((p) => {
      const body = h("div", { class: "panel-body" });
      const el = h("section", { class: "panel", "data-panel": p.title, "aria-label": p.title }, h("h3", {}, p.title), body);
      drawPanel(p, body, vars, end, span).catch((err) => replace(body, errorText(err)));
      return el;
    }));
  }

  async function drawPanel(p, body, vars, end, span) {
    const d = p.fieldConfig?.defaults ?? {};
    const targets = (p.targets ?? []).map((t) => ({ expr: interpolate(t.expr, vars), legend: t.legendFormat }));
    const steps = d.thresholds?.steps ?? [];
    switch (p.type) {
      case "timeseries": {
        const results = await Promise.all(targets.map(async (t) => ({
          legend: t.legend,
          series: (await prom("query_range", { query: t.expr, start: end - span, end, step: Math.max(1, Math.round(span / 200)) })).result,
        })));
        if (!results.some((r) => r.series.length)) { replace(body, h("p", { class: "muted" }, "No data.")); return; }
        charts.push(lineChart(body, alignMatrix(results), {
          height: 200, from: end - span, to: end, unit: d.unit, min: d.min, max: d.max, label: d.custom?.axisLabel,
          thresholds: steps.filter((s) => s.value !== null).map((s) => ({ value: s.value, color: s.color })),
        }));
        return;
      }
      case "stat":
      case "gauge": {
        const data = await prom("query", { query: targets[0]?.expr ?? "", time: end });
        const v = data.result.length ? Number(data.result[0].value[1]) : NaN;
        if (!Number.isFinite(v)) { replace(body, h("p", { class: "muted" }, "No data.")); return; }
        let color = steps[0]?.color;
        for (const s of steps) if (s.value !== null && v >= s.value) color = s.color;
        const shown = h("div", { class: "stat", style: color && color !== "green" ? `color:${color}` : "" }, fmtUnit(v, d.unit));
        if (p.type === "stat") { replace(body, shown); return; }
        replace(body, shown, h("meter", { min: d.min ?? 0, max: d.max ?? 100, value: v, "aria-label": p.title }));
        return;
      }
      case "table": {
        const data = await prom("query", { query: targets[0]?.expr ?? "", time: end });
        replace(body, instantTable(data));
        return;
      }
      case "logs": {
        const q = new URLSearchParams({ tail: 50, since: `${span}s` });
        if (targets[0]?.expr) q.set("grep", targets[0].expr);
        const resp = await fetch(`/admin/v1/logs?${q}`);
        const lines = (await resp.text()).split("\n").filter(Boolean).map((s) => JSON.parse(s));
        replace(body, h("div", { class: "log mono" }, lines.map((l) => h("div", {}, `${l.service} ${l.text}`))));
        return;
      }
      case "traces":
        replace(body, h("a", { href: "#/traces" }, "Open the traces page"));
        return;
      default:
        replace(body, h("p", { class: "muted" }, `panel type ${p.type}: not drawn by the console`));
    }
  }

  pick.addEventListener("change", load);
  range.addEventListener("change", draw);
  refresh.addEventListener("change", draw);
  await load();
  return () => { clearInterval(timer); for (const c of charts) c.destroy(); };
}
