// Metrics: a PromQL explorer, as Prometheus' own /graph page: an
// expression, a graph over a range and a table of the instant result.
import { prom } from "../api.js";
import { h, replace, table, errorText, num } from "../dom.js";
import { alignMatrix, lineChart, seriesName } from "../chart.js";

const ranges = { "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400 };

export async function render(main, params) {
  const expr = h("textarea", { id: "promql", rows: 2, "aria-label": "PromQL expression" }, params.get("q") ?? "up");
  const range = h("select", { id: "promql-range", "aria-label": "Range" }, Object.keys(ranges).map((r) => h("option", { value: r }, r)));
  range.value = "15m";
  const graph = h("div", { id: "promql-graph" });
  const result = h("div", { id: "promql-table" });
  let chart = null;

  async function run() {
    const q = expr.value.trim();
    if (!q) return;
    history.replaceState(null, "", `#/metrics?q=${encodeURIComponent(q)}`);
    const end = Date.now() / 1000;
    const span = ranges[range.value];
    try {
      const [instant, matrix] = await Promise.all([
        prom("query", { query: q, time: end }),
        prom("query_range", { query: q, start: end - span, end, step: Math.max(1, Math.round(span / 240)) }),
      ]);
      replace(result, instantTable(instant));
      if (chart) chart.destroy();
      replace(graph);
      if (matrix.result.length) {
        chart = lineChart(graph, alignMatrix([{ series: matrix.result }]), { height: 280, from: end - span, to: end });
      } else {
        replace(graph, h("p", { class: "muted" }, "No data over this range."));
      }
    } catch (err) {
      replace(result, errorText(err));
      replace(graph);
    }
  }

  main.append(h("h1", {}, "Metrics"),
    h("form", { onsubmit: (ev) => { ev.preventDefault(); run(); } },
      expr,
      h("div", { class: "row" }, h("button", { type: "submit" }, "Execute"), range,
        h("span", { class: "muted" }, "Ctrl+Enter runs the query"))),
    h("h2", {}, "Graph"), graph, h("h2", {}, "Table"), result);
  expr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); } });
  await run();
  return () => chart && chart.destroy();
}

// instantTable shows an instant query's result: a vector, a scalar or a
// string.
export function instantTable(data) {
  if (data.resultType === "scalar" || data.resultType === "string") {
    return table([{ label: "Value", cell: (r) => r }], [data.result[1]]);
  }
  if (!data.result.length) return h("p", { class: "muted" }, "Empty result.");
  return table([
    { label: "Series", cell: (r) => h("code", {}, seriesName(r.metric)) },
    { label: "Value", num: true, cell: (r) => num(r.value ? r.value[1] : r.values.at(-1)[1]) },
  ], data.result, { class: "result" });
}
