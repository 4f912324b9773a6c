// Events: queues with their depth over time, a queue's dead letters (body,
// headers, error, attempts) with redrive, and the event store's streams,
// a stream's events and projections with lag and rebuild.
import { get, send, prom, stream } from "../api.js";
import { h, replace, table, errorText, num, ago } from "../dom.js";
import { alignMatrix, lineChart } from "../chart.js";

export async function render(main, params) {
  const msg = h("div", { role: "status" });
  const queuesEl = h("div", { id: "queues" }), depth = h("div"), dlEl = h("div", { id: "dead-letters" }), storeEl = h("div", { id: "eventstore" });
  main.append(h("h1", {}, "Events"), msg, h("h2", {}, "Queues"), queuesEl, depth, dlEl, h("h2", {}, "Event store"), storeEl);
  let chart = null;
  let chosen = params.get("queue");

  async function act(what, fn) {
    try { await fn(); replace(msg, h("span", { class: "state-ok" }, `${what}: done`)); } catch (err) { replace(msg, errorText(`${what}: ${err.message}`)); }
  }

  let lastQueues = "";
  function showQueues(qs) {
    const key = JSON.stringify(qs);
    if (key === lastQueues) return;
    lastQueues = key;
    replace(queuesEl, qs.length ? table([
      { label: "Queue", cell: (q) => h("a", { href: `#/events?queue=${encodeURIComponent(q.name)}` }, q.name) },
      { label: "Type", cell: (q) => q.type },
      { label: "Waiting", num: true, cell: (q) => num(q.waiting) },
      { label: "In flight", num: true, cell: (q) => num(q.inFlight) },
      { label: "Dead letters go to", cell: (q) => q.deadLetterQueue ? h("a", { href: `#/events?queue=${encodeURIComponent(q.deadLetterQueue)}` }, q.deadLetterQueue) : "" },
    ], qs) : h("p", { class: "muted" }, "No queues."));
  }

  async function showDepth() {
    if (chart) { chart.destroy(); chart = null; }
    const end = Date.now() / 1000;
    try {
      const data = await prom("query_range", { query: "nubo_events_pending", start: end - 3600, end, step: 15 });
      replace(depth, h("h3", {}, "Depth, last hour"));
      if (data.result.length) chart = lineChart(depth, alignMatrix([{ series: data.result, legend: "{{kind}} {{name}}" }]), { height: 180, from: end - 3600, to: end });
      else depth.append(h("p", { class: "muted" }, "No depth history yet."));
    } catch (err) { replace(depth, errorText(err)); }
  }

  async function showDeadLetters() {
    if (!chosen) { replace(dlEl); return; }
    const path = `/v1/deadletters/${encodeURIComponent(chosen)}`;
    try {
      const { deadLetters } = await get(`${path}?max=100`);
      replace(dlEl, h("h2", {}, `Dead letters in ${chosen}`),
        h("div", { class: "row" },
          h("button", { "data-action": "redrive-all", disabled: !deadLetters.length || undefined,
            onclick: () => act(`redrive all of ${chosen}`, async () => { await send("POST", `${path}/redrive`, { all: true }); await showDeadLetters(); }) }, "Redrive all")),
        deadLetters.length ? table([
          { label: "Id", cell: (d) => d.id },
          { label: "Event", cell: (d) => [h("code", {}, d.event?.type ?? ""), " ", h("span", { class: "muted" }, d.event?.id ?? "")] },
          { label: "From", cell: (d) => d.origin + (d.subscription ? ` (${d.subscription})` : "") },
          { label: "Attempts", num: true, cell: (d) => d.attempts },
          { label: "Error", cell: (d) => h("span", { class: "state-bad" }, d.lastError) },
          { label: "When", cell: (d) => ago(d.at) },
          { label: "Body", cell: (d) => h("details", {}, h("summary", {}, "show"), h("pre", {}, JSON.stringify(d.event, null, 2))) },
          { label: "", cell: (d) => h("button", { "data-action": "redrive", onclick: () => act(`redrive ${d.id}`, async () => { await send("POST", `${path}/redrive`, { ids: [d.id] }); await showDeadLetters(); }) }, "Redrive") },
        ], deadLetters, { "data-queue": chosen }) : h("p", { class: "muted", id: "no-dead-letters" }, "No dead letters."));
    } catch (err) { replace(dlEl, errorText(err)); }
  }

  async function showStore() {
    let streams;
    try { streams = await get("/v1/eventstore/streams"); } catch (err) {
      replace(storeEl, err.status === 404 ? h("p", { class: "muted" }, "The spec has no event store.") : errorText(err));
      return;
    }
    const list = streams.streams ?? [];
    const events = h("div");
    let projections = [];
    try { projections = (await get("/v1/eventstore/projections")).projections ?? []; } catch { /* none */ }
    replace(storeEl,
      list.length ? table([
        { label: "Stream", cell: (s) => h("button", { onclick: () => showStream(s.name, events) }, s.name) },
        { label: "Version", num: true, cell: (s) => s.version },
      ], list) : h("p", { class: "muted" }, "No streams yet."),
      events,
      h("h3", {}, "Projections"),
      projections.length ? table([
        { label: "Projection", cell: (p) => p.name },
        { label: "State", cell: (p) => p.state ?? p.status ?? "" },
        { label: "Lag", num: true, cell: (p) => p.lag ?? "" },
        { label: "", cell: (p) => h("button", { onclick: () => act(`rebuild ${p.name}`, () => send("POST", `/v1/eventstore/projections/${encodeURIComponent(p.name)}/rebuild`)) }, "Rebuild") },
      ], projections) : h("p", { class: "muted" }, "No projections."));
  }

  async function showStream(name, el) {
    try {
      const body = await get(`/v1/eventstore/streams/${encodeURIComponent(name)}?limit=100`);
      replace(el, h("h3", {}, `Stream ${name}`), h("pre", {}, JSON.stringify(body.events ?? body, null, 2)));
    } catch (err) { replace(el, errorText(err)); }
  }

  await Promise.all([showDeadLetters(), showStore(), showDepth()]);
  const es = stream({}, { status: (st) => showQueues(st.queues ?? []) });
  return () => { es.close(); if (chart) chart.destroy(); };
}
