// Service map: the system as the spec draws it (GET /console/v1/graph),
// nodes coloured by health from the status stream, and live edges from
// the mesh's Istio-named series: requests/s, error % and p99 per pair of
// workloads. Laid out in columns by kind, drawn as SVG.
import { get, prom, stream } from "../api.js";
import { h, replace, errorText } from "../dom.js";

const ns = "http://www.w3.org/2000/svg";
const column = { ingress: 0, gateway: 0, external: 0, caller: 0, service: 1, queue: 2, topic: 2, bus: 2, schedule: 2, function: 3, database: 4, http: 4, mock: 4 };
const W = 170, H = 34, GX = 300, GY = 64;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function linkOf(n) {
  switch (n.kind) {
    case "service": case "function": return `#/logs?service=${encodeURIComponent(n.name)}`;
    case "queue": return `#/events?queue=${encodeURIComponent(n.name)}`;
    case "gateway": return "#/api";
    default: return "#/resources";
  }
}

export async function render(main) {
  main.append(h("h1", {}, "Service map"));
  const holder = h("div", { id: "map" });
  const note = h("p", { class: "muted" }, "Edges in colour carried requests in the last minute: requests/s, error %, p99.");
  main.append(note, holder);
  let graph;
  try { graph = await get("/console/v1/graph"); } catch (err) { main.append(errorText(err)); return; }
  let live = [];
  let health = {};

  function nodeFor(name) {
    return graph.nodes.find((n) => n.name === name && n.kind === "service") ?? graph.nodes.find((n) => n.name === name);
  }

  function draw() {
    const nodes = [...graph.nodes];
    for (const e of live) {
      for (const w of [e.from, e.to]) {
        if (!nodeFor(w) && !nodes.some((n) => n.name === w)) nodes.push({ id: `caller:${w}`, kind: "caller", name: w });
      }
    }
    const pos = new Map(), perCol = new Map();
    for (const n of nodes) {
      const c = column[n.kind] ?? 4;
      const r = perCol.get(c) ?? 0;
      perCol.set(c, r + 1);
      pos.set(n.id, { x: 10 + c * GX, y: 10 + r * GY });
    }
    const rows = Math.max(1, ...perCol.values());
    const cols = 1 + Math.max(0, ...perCol.keys());
    const width = 10 + cols * GX + 120, height = 20 + rows * GY;
    const svg = s("svg", { class: "map", role: "img", "aria-label": "Service map", width, height, viewBox: `0 0 ${width} ${height}` },
      s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" }, s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "currentColor" }))));
    const idOf = (w) => nodeFor(w)?.id ?? `caller:${w}`;
    // An edge is a curve from the right side of one node to the left side
    // of the other; between nodes of one column, a loop on their right.
    // It returns the path and where its label goes.
    const path = (a, b) => {
      const p = pos.get(a), q = pos.get(b);
      if (!p || !q) return null;
      const y1 = p.y + H / 2, y2 = q.y + H / 2;
      if (q.x <= p.x) {
        const x = Math.max(p.x, q.x) + W;
        return { d: `M ${p.x + W} ${y1} C ${x + 70} ${y1}, ${x + 70} ${y2}, ${q.x + W} ${y2}`, lx: x + 56, ly: (y1 + y2) / 2, anchor: "start" };
      }
      const x1 = p.x + W, x2 = q.x;
      return { d: `M ${x1} ${y1} C ${x1 + 50} ${y1}, ${x2 - 50} ${y2}, ${x2} ${y2}`, lx: (x1 + x2) / 2, ly: (y1 + y2) / 2 - 6, anchor: "middle" };
    };
    for (const e of graph.edges) {
      const pa = path(e.from, e.to);
      if (pa) svg.append(s("path", { class: `edge spec ${e.kind}`, d: pa.d }, s("title", {}, `${e.kind} ${e.label ?? ""}`)));
    }
    for (const e of live) {
      const from = idOf(e.from), to = idOf(e.to);
      const pa = path(from, to);
      if (!pa) continue;
      const label = `${e.rps.toFixed(2)}/s · ${e.err.toFixed(1)}% err${e.p99 ? ` · p99 ${e.p99.toFixed(0)} ms` : ""}`;
      svg.append(s("path", { class: `edge live${e.err > 1 ? " err" : ""}`, d: pa.d, "data-from": e.from, "data-to": e.to }, s("title", {}, label)));
      svg.append(s("text", { x: pa.lx, y: pa.ly, "text-anchor": pa.anchor, class: "edge-label" }, label));
    }
    for (const n of nodes) {
      const p = pos.get(n.id);
      const hc = health[n.id] ?? "";
      svg.append(s("a", { href: linkOf(n), class: `node ${hc}`, "data-node": n.id, "aria-label": `${n.kind} ${n.name}` },
        s("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6 }),
        s("text", { x: p.x + 8, y: p.y + 14, class: "muted" }, n.kind),
        s("text", { x: p.x + 8, y: p.y + 28 }, n.name.length > 24 ? n.name.slice(0, 23) + "…" : n.name)));
    }
    replace(holder, svg);
  }

  async function loadLive() {
    try {
      const by = "source_workload, destination_workload";
      const [rps, errs, p99] = await Promise.all([
        prom("query", { query: `sum by (${by}) (rate(istio_requests_total[1m]))` }),
        prom("query", { query: `sum by (${by}) (rate(istio_requests_total{response_code=~"5.."}[1m]))` }),
        prom("query", { query: `histogram_quantile(0.99, sum by (le, ${by}) (rate(istio_request_duration_milliseconds_bucket[1m])))` }),
      ]);
      const key = (m) => `${m.source_workload}\u0000${m.destination_workload}`;
      const errBy = new Map(errs.result.map((r) => [key(r.metric), Number(r.value[1])]));
      const p99By = new Map(p99.result.map((r) => [key(r.metric), Number(r.value[1])]));
      live = rps.result.filter((r) => Number(r.value[1]) > 0).map((r) => {
        const v = Number(r.value[1]);
        return { from: r.metric.source_workload, to: r.metric.destination_workload, rps: v,
          err: v ? ((errBy.get(key(r.metric)) ?? 0) / v) * 100 : 0, p99: p99By.get(key(r.metric)) };
      });
    } catch (err) { note.replaceWith(errorText(err)); }
    draw();
  }

  function onStatus(st) {
    health = {};
    for (const sv of st.services) health[`service:${sv.name}`] = sv.desired === 0 ? "" : sv.ready >= sv.desired ? "ok" : sv.ready > 0 ? "warn" : "bad";
    for (const f of st.functions ?? []) health[`function:${f.name}`] = f.lastError && Date.now() - Date.parse(f.lastErrorTime) < 60000 ? "warn" : "ok";
    for (const d of st.databases ?? []) health[`database:${d.name}`] = /ready|running/i.test(d.state) ? "ok" : "warn";
    draw();
  }

  await loadLive();
  const timer = setInterval(loadLive, 5000);
  const es = stream({}, { status: onStatus });
  return () => { clearInterval(timer); es.close(); };
}
