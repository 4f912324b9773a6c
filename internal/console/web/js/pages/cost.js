// Cost: what each service, function and the gateway costs at the spec's
// prices (GET /admin/v1/cost, the figures nubo cost prints), and the total
// per hour over the last day from the nubo:cost_per_hour series.
import { get, prom } from "../api.js";
import { h, replace, table, errorText } from "../dom.js";
import { alignMatrix, lineChart } from "../chart.js";

const windows = ["1h", "24h", "7d", "30d"];

export async function render(main, params) {
  const since = windows.includes(params.get("since")) ? params.get("since") : "24h";
  const tableEl = h("div", { id: "cost-table" }), chartEl = h("div", { id: "cost-chart" });
  main.append(h("h1", {}, "Cost"),
    h("p", {}, "Window: ", windows.map((w) => [w === since ? h("strong", {}, w) : h("a", { href: `#/cost?since=${w}` }, w), " "])),
    tableEl, h("h2", {}, "Cost per hour, last 24 hours"), chartEl);
  let chart = null;

  async function load() {
    let rep;
    try {
      rep = await get(`/admin/v1/cost?since=${since}`);
    } catch (err) { replace(tableEl, errorText(err)); return; }
    const money = (v) => `${v.toFixed(4)} ${rep.currency}`;
    const total = rep.rows.reduce((t, r) => ({ perHour: t.perHour + r.perHour, window: t.window + r.window, monthProjected: t.monthProjected + r.monthProjected }), { perHour: 0, window: 0, monthProjected: 0 });
    replace(tableEl, rep.rows.length ? table([
      { label: "Kind", cell: (r) => r.kind },
      { label: "Name", cell: (r) => r.name || (r.kind === "total" ? "" : "—") },
      { label: "Per hour now", num: true, cell: (r) => money(r.perHour) },
      { label: `Last ${rep.window}`, num: true, cell: (r) => money(r.window) },
      { label: "Month projected", num: true, cell: (r) => `${r.monthProjected.toFixed(2)} ${rep.currency}` },
    ], [...rep.rows, { kind: "total", name: "", ...total }]) : h("p", { class: "muted" }, "No cost recorded yet: the cost series start with the next rule evaluation."));
    for (const tr of tableEl.querySelectorAll("tbody tr")) {
      const [kind, name] = [...tr.children].map((td) => td.textContent);
      tr.dataset.cost = name && name !== "—" ? `${kind}/${name}` : kind;
    }

    try {
      const end = Date.now() / 1000, span = 24 * 3600;
      const data = await prom("query_range", { query: "nubo:cost_per_hour", start: end - span, end, step: 300 });
      if (chart) { chart.destroy(); chart = null; }
      if (!data.result.length) { replace(chartEl, h("p", { class: "muted" }, "No cost history yet.")); return; }
      replace(chartEl);
      chart = lineChart(chartEl, alignMatrix([{ series: data.result, legend: `${rep.currency}/hour` }]), { height: 180, label: `${rep.currency} per hour`, from: end - span, to: end });
    } catch (err) { replace(chartEl, errorText(err)); }
  }

  await load();
  const timer = setInterval(load, 30000);
  return () => { clearInterval(timer); if (chart) chart.destroy(); };
}
