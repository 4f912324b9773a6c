// Audit: every change made to the running system (GET /admin/v1/audit, the
// trail nubo audit prints), newest first, filtered by action and time, and
// whether the hash chain holds (nubo audit verify).
import { get } from "../api.js";
import { h, replace, table, errorText } from "../dom.js";

const actions = ["", "reload", "restart", "scale", "stop", "publish", "invoke", "redrive", "silence", "secret-set", "secret-rm", "backup", "restore", "deploy"];

export async function render(main, params) {
  const action = actions.includes(params.get("action") ?? "") ? params.get("action") ?? "" : "";
  const since = params.get("since") ?? "24h";
  const chainEl = h("p", { id: "audit-chain", role: "status" }), listEl = h("div", { id: "audit-records" });
  const select = h("select", { id: "audit-action", "aria-label": "Action" }, actions.map((a) => h("option", { value: a, selected: a === action }, a || "every action")));
  const sinceInput = h("input", { id: "audit-since", value: since, size: 6, "aria-label": "Since" });
  const form = h("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/audit?${new URLSearchParams({ action: select.value, since: sinceInput.value })}`;
  } }, h("label", {}, "Action ", select), " ", h("label", {}, "Since ", sinceInput), " ", h("button", { type: "submit" }, "Show"));
  main.append(h("h1", {}, "Audit trail"), chainEl, form, listEl);

  async function load() {
    try {
      const q = new URLSearchParams({ since, limit: "500" });
      if (action) q.set("action", action);
      const tr = await get(`/admin/v1/audit?${q}`);
      replace(chainEl, tr.break
        ? h("span", { class: "state-bad" }, `The chain breaks after ${tr.verified} records: ${tr.break}`)
        : h("span", { class: "state-ok" }, `The hash chain holds: ${tr.verified} records verified.`));
      const recs = tr.records.slice().reverse();
      replace(listEl, recs.length ? table([
        { label: "#", num: true, cell: (r) => r.seq },
        { label: "Time", cell: (r) => new Date(r.time).toLocaleString() },
        { label: "Actor", cell: (r) => r.actor },
        { label: "Action", cell: (r) => r.action },
        { label: "Target", cell: (r) => r.target ?? "" },
        { label: "Result", cell: (r) => h("span", { class: r.result === "failed" ? "state-bad" : r.result === "ok" ? "state-ok" : "state-warn" }, r.result, r.error ? `: ${r.error}` : "") },
        { label: "Detail", cell: (r) => r.detail ?? "" },
      ], recs) : h("p", { class: "muted" }, "No change recorded in this window."));
      for (const [i, row] of [...listEl.querySelectorAll("tbody tr")].entries()) row.dataset.action = recs[i].action;
    } catch (err) { replace(listEl, errorText(err)); }
  }

  await load();
  const timer = setInterval(load, 15000);
  return () => clearInterval(timer);
}
