// Alerts and SLOs: firing and pending alerts with ack and silence; every
// SLO with its SLI, budget left, burn rates and a budget chart.
import { get, send, prom } from "../api.js";
import { h, replace, table, errorText, ago } from "../dom.js";
import { alignMatrix, lineChart } from "../chart.js";

const pct = (v) => (v === null || v === undefined ? "no data" : `${(v * 100).toFixed(3)}%`);

export async function render(main) {
  const msg = h("div", { role: "status" });
  const alertsEl = h("div", { id: "alerts" }), silencesEl = h("div"), slosEl = h("div", { id: "slos" });
  main.append(h("h1", {}, "Alerts & SLOs"), msg, h("h2", {}, "Alerts"), alertsEl, h("h2", {}, "Silences"), silencesEl, h("h2", {}, "SLOs"), slosEl);
  let charts = [];

  async function act(what, fn) {
    try { await fn(); replace(msg, h("span", { class: "state-ok" }, `${what}: done`)); await load(); } catch (err) { replace(msg, errorText(`${what}: ${err.message}`)); }
  }

  async function load() {
    try {
      const st = await get("/admin/v1/alerts");
      const active = st.alerts.filter((a) => a.state !== "inactive");
      replace(alertsEl, active.length ? table([
        { label: "Alert", cell: (a) => a.name },
        { label: "State", cell: (a) => h("span", { class: a.state === "firing" ? "state-bad" : "state-warn" }, a.state) },
        { label: "Severity", cell: (a) => a.severity ?? "" },
        { label: "Since", cell: (a) => ago(a.activeAt) },
        { label: "Status", cell: (a) => [a.silenced ? "silenced " : "", a.acknowledged ? `acked by ${a.acknowledged.by ?? "?"}` : ""] },
        { label: "Actions", cell: (a) => [
          h("button", { onclick: () => act(`ack ${a.name}`, () => send("POST", `/admin/v1/alerts/${encodeURIComponent(a.name)}/ack`)) }, "Ack"), " ",
          h("button", { onclick: () => act(`silence ${a.name}`, () => send("POST", "/admin/v1/silences", { matchers: `alertname="${a.name}"`, for: "1h", comment: "silenced from the console" })) }, "Silence 1h")] },
      ], active) : h("p", { class: "muted" }, `No alert is pending or firing (${st.alerts.length} rules watched).`));
      const sil = st.silences.filter((s) => s.state !== "expired");
      replace(silencesEl, sil.length ? table([
        { label: "Matchers", cell: (s) => h("code", {}, s.matchers) },
        { label: "Ends", cell: (s) => new Date(s.endsAt).toLocaleString() },
        { label: "Comment", cell: (s) => s.comment ?? "" },
        { label: "", cell: (s) => h("button", { onclick: () => act("expire silence", () => send("DELETE", `/admin/v1/silences/${encodeURIComponent(s.id)}`)) }, "Expire") },
      ], sil) : h("p", { class: "muted" }, "No silences."));
    } catch (err) { replace(alertsEl, errorText(err)); }

    try {
      const { slos } = await get("/admin/v1/slos");
      for (const c of charts) c.destroy();
      charts = [];
      if (!slos.length) { replace(slosEl, h("p", { class: "muted" }, "The spec has no SLOs.")); return; }
      replace(slosEl, slos.map((s) => {
        const chart = h("div");
        const left = s.errorBudget.remaining;
        const el = h("section", { class: "panel", "data-slo": s.name },
          h("h3", {}, s.name, " ", h("span", { class: "muted" }, `${s.objective}% over ${s.window}`)),
          s.description ? h("p", {}, s.description) : "",
          h("p", {}, "SLI ", h("strong", {}, pct(s.sli)), " · budget left ",
            h("strong", { class: left === null ? "muted" : left > 0.25 ? "state-ok" : left > 0 ? "state-warn" : "state-bad" }, pct(left))),
          table([{ label: "Window", cell: (b) => b.window }, { label: "Burn rate", num: true, cell: (b) => (b.rate === null ? "no data" : b.rate.toFixed(2)) }], s.burnRates),
          chart);
        drawBudget(s.name, chart).catch((err) => replace(chart, errorText(err)));
        return el;
      }));
    } catch (err) { replace(slosEl, errorText(err)); }
  }

  async function drawBudget(name, el) {
    const end = Date.now() / 1000, span = 6 * 3600;
    const data = await prom("query_range", { query: `slo:error_budget_remaining:ratio{slo="${name}"}`, start: end - span, end, step: 60 });
    if (!data.result.length) { replace(el, h("p", { class: "muted" }, "No budget history yet.")); return; }
    charts.push(lineChart(el, alignMatrix([{ series: data.result, legend: "budget left" }]), { height: 160, unit: "percentunit", label: "budget left", from: end - span, to: end }));
  }

  await load();
  const timer = setInterval(load, 15000);
  return () => { clearInterval(timer); for (const c of charts) c.destroy(); };
}
