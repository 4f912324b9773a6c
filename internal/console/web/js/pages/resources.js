// Resources: every part of the running system, live from the status
// stream, with the actions that apply (restart, scale, stop and start a
// service; invoke a function; publish an event; redrive dead letters).
import { get, send, stream } from "../api.js";
import { h, table, replace, errorText, bytes, ago, num } from "../dom.js";
import { Sparkline } from "../chart.js";

// serviceHealth is ok when every desired replica is ready.
function serviceHealth(s) {
  if (s.desired === 0) return ["muted", "stopped"];
  if (s.ready >= s.desired) return ["state-ok", "healthy"];
  if (s.ready > 0) return ["state-warn", "degraded"];
  return ["state-bad", "down"];
}

export async function render(main) {
  const msg = h("div", { role: "status" });
  const services = h("tbody");
  const fns = h("div"), dbs = h("div"), queues = h("div"), addrs = h("div"), skipped = h("div"), routes = h("div", { id: "routes" });
  const fnSelect = h("select", { id: "invoke-fn", "aria-label": "Function" });
  const fnBody = h("textarea", { id: "invoke-body", rows: 3, "aria-label": "Event data (JSON)" }, "{}");
  const fnOut = h("pre", { id: "invoke-out", hidden: true });
  const pubTo = h("select", { id: "publish-to", "aria-label": "Publish to" });
  const pubType = h("input", { id: "publish-type", value: "console.test", "aria-label": "Event type" });
  const pubBody = h("textarea", { id: "publish-body", rows: 3, "aria-label": "Event data (JSON)" }, "{}");
  main.append(
    h("h1", {}, "Resources"), msg, addrs,
    h("h2", {}, "Services"),
    h("table", { id: "services" },
      h("thead", {}, h("tr", {}, ["Service", "State", "Ready", "Replicas (pid)", "Restarts", "Last exit", "CPU", "Memory", "Actions"].map((l) => h("th", { scope: "col" }, l)))),
      services),
    h("h2", {}, "Functions"), fns,
    h("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); invoke(); } },
      h("label", { for: "invoke-fn" }, "Invoke"), fnSelect, fnBody, h("button", { type: "submit" }, "Invoke")),
    fnOut,
    h("h2", {}, "Databases"), dbs,
    h("h2", {}, "Gateway routes and ingress hosts"), routes,
    h("h2", {}, "Queues and topics"), queues,
    h("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); publish(); } },
      h("label", { for: "publish-to" }, "Publish a test event to"), pubTo, pubType, pubBody, h("button", { type: "submit" }, "Publish")),
    skipped);

  const rows = new Map(); // service name -> {tr, update}
  const lastDesired = new Map();

  async function act(what, fn) {
    replace(msg, h("span", { class: "muted" }, `${what}…`));
    try {
      await fn();
      replace(msg, h("span", { class: "state-ok" }, `${what}: done`));
    } catch (err) { replace(msg, errorText(`${what}: ${err.message}`)); }
  }

  function serviceRow(name) {
    const cells = {};
    for (const k of ["state", "ready", "replicas", "restarts", "exit", "cpu", "mem"]) cells[k] = h("td");
    const cpu = h("span", { class: "spark" }), mem = h("span", { class: "spark" });
    const cpuText = h("span"), memText = h("span");
    cells.cpu.append(cpu, cpuText);
    cells.mem.append(mem, memText);
    const sparks = { cpu: new Sparkline(cpu), mem: new Sparkline(mem, 60, "#8250df") };
    const scale = h("input", { type: "number", min: 0, max: 100, size: 3, "aria-label": `Replicas of ${name}` });
    const path = `/admin/v1/services/${encodeURIComponent(name)}`;
    const tr = h("tr", { "data-service": name },
      h("th", { scope: "row" }, h("a", { href: `#/logs?service=${encodeURIComponent(name)}` }, name)),
      cells.state, cells.ready, cells.replicas, cells.restarts, cells.exit, cells.cpu, cells.mem,
      h("td", {},
        h("button", { "data-action": "restart", onclick: () => act(`restart ${name}`, () => send("POST", `${path}/restart`)) }, "Restart"), " ",
        h("button", { "data-action": "stop", onclick: () => act(`stop ${name}`, () => send("POST", `${path}/scale`, { replicas: 0 })) }, "Stop"), " ",
        h("button", { "data-action": "start", onclick: () => act(`start ${name}`, () => send("POST", `${path}/scale`, { replicas: lastDesired.get(name) || 1 })) }, "Start"), " ",
        scale,
        h("button", { "data-action": "scale", onclick: () => act(`scale ${name}`, () => send("POST", `${path}/scale`, { replicas: Number(scale.value) })) }, "Scale")));
    services.append(tr);
    return (s) => {
      const [cls, word] = serviceHealth(s);
      replace(cells.state, h("span", { class: cls }, h("span", { class: "dot" }), word));
      replace(cells.ready, `${s.ready}/${s.desired}`);
      if (s.desired > 0) lastDesired.set(name, s.desired);
      if (document.activeElement !== scale) scale.value = s.desired;
      replace(cells.replicas, s.replicas.map((r) => h("div", { class: r.ready ? "state-ok" : "state-warn", "data-pid": r.pid ?? "" },
        `#${r.index} ${r.state}`, r.pid ? ` (${r.pid})` : "", r.port ? [" ", h("span", { class: "muted" }, `:${r.port}`)] : "")));
      replace(cells.restarts, String(s.replicas.reduce((a, r) => a + r.restarts, 0)));
      const exits = s.replicas.filter((r) => r.lastExit).map((r) => `${r.lastExit.signal || "code " + r.lastExit.code} ${ago(r.lastExit.time)}`);
      replace(cells.exit, exits.join(", "));
      const cpuNow = s.replicas.reduce((a, r) => a + (r.usage?.cpu ?? 0), 0);
      const memNow = s.replicas.reduce((a, r) => a + (r.usage?.rss ?? 0), 0);
      sparks.cpu.push(cpuNow); sparks.mem.push(memNow);
      cpuText.textContent = ` ${(cpuNow * 100).toFixed(0)}%`;
      memText.textContent = ` ${bytes(memNow)}`;
    };
  }

  let lastOthers = "";
  function update(st) {
    for (const s of st.services) {
      if (!rows.has(s.name)) rows.set(s.name, serviceRow(s.name));
      rows.get(s.name)(s);
    }
    // The rest has no inputs of its own: redrawn when it changed.
    const others = JSON.stringify([st.functions, st.databases, st.queues, st.addresses, st.skipped, st.eventStore]);
    if (others === lastOthers) return;
    lastOthers = others;
    replace(addrs, h("p", {}, Object.entries(st.addresses ?? {}).map(([k, v]) =>
      [h("span", { class: "muted" }, `${k} `), v.startsWith("http") ? h("a", { href: v, target: "_blank", rel: "noopener" }, v) : h("code", {}, v), "  "])));
    const fl = st.functions ?? [];
    replace(fns, fl.length ? table([
      { label: "Function", cell: (f) => f.name },
      { label: "Instances", num: true, cell: (f) => `${f.instances.length} (${f.min}–${f.max})` },
      { label: "In flight", num: true, cell: (f) => f.inFlight },
      { label: "Invocations", num: true, cell: (f) => num(f.invocations) },
      { label: "Errors", num: true, cell: (f) => h("span", { class: f.errors ? "state-bad" : "" }, num(f.errors)) },
      { label: "Cold starts", num: true, cell: (f) => num(f.coldStarts) },
      { label: "Last error", cell: (f) => f.lastError ? `${f.lastError} ${ago(f.lastErrorTime)}` : "" },
    ], fl, { id: "functions" }) : h("p", { class: "muted" }, "No functions."));
    syncOptions(fnSelect, fl.map((f) => f.name));
    const dl = st.databases ?? [];
    replace(dbs, dl.length ? table([
      { label: "Database", cell: (d) => d.name },
      { label: "Type", cell: (d) => `${d.type} ${d.version ?? ""}` },
      { label: "State", cell: (d) => h("span", { class: d.state === "ready" || d.state === "Ready" ? "state-ok" : "state-warn" }, d.state, d.message ? ` (${d.message})` : "") },
      { label: "Port", num: true, cell: (d) => d.port ?? "" },
      { label: "Last backup", cell: (d) => d.lastBackup ? ago(d.lastBackup.time) : "none" },
    ], dl, { id: "databases" }) : h("p", { class: "muted" }, "No databases."));
    const ql = st.queues ?? [];
    replace(queues, ql.length ? table([
      { label: "Name", cell: (q) => h("a", { href: `#/events?queue=${encodeURIComponent(q.name)}` }, q.name) },
      { label: "Type", cell: (q) => q.type },
      { label: "Depth", num: true, cell: (q) => num(q.waiting) },
      { label: "In flight", num: true, cell: (q) => num(q.inFlight) },
      { label: "Messages", num: true, cell: (q) => num(q.messages) },
      { label: "Dead letters", cell: (q) => q.deadLetterQueue ? h("a", { href: `#/events?queue=${encodeURIComponent(q.deadLetterQueue)}&dead=1` }, q.deadLetterQueue) : "" },
    ], ql, { id: "queues" }) : h("p", { class: "muted" }, "No queues or topics."));
    syncOptions(pubTo, ["bus", ...ql.map((q) => `${q.type === "topic" ? "topic" : "queue"}:${q.name}`)]);
    replace(skipped, (st.skipped ?? []).length ? [h("h2", {}, "Not run by nubo up"),
      h("ul", {}, st.skipped.map((s) => h("li", {}, h("strong", {}, s.section), ": ", s.reason)))] : "");
  }

  async function invoke() {
    await act(`invoke ${fnSelect.value}`, async () => {
      const ev = { specversion: "1.0", type: "console.invoke", source: "nubo-console", datacontenttype: "application/json", data: JSON.parse(fnBody.value || "null") };
      const out = await send("POST", `/v1/functions/${encodeURIComponent(fnSelect.value)}/invoke`, ev, "application/cloudevents+json");
      fnOut.hidden = false;
      fnOut.textContent = typeof out === "string" ? out : JSON.stringify(out, null, 2);
    });
  }

  async function publish() {
    const [kind, name] = pubTo.value.split(":");
    const path = kind === "bus" ? "/v1/events" : `/v1/${kind}s/${encodeURIComponent(name)}`;
    await act(`publish to ${pubTo.value}`, async () => {
      const ev = { specversion: "1.0", type: pubType.value, source: "nubo-console", datacontenttype: "application/json", data: JSON.parse(pubBody.value || "null") };
      await send("POST", path, ev, "application/cloudevents+json");
    });
  }

  async function showRoutes() {
    try {
      const g = await get("/console/v1/graph");
      const name = new Map(g.nodes.map((n) => [n.id, n]));
      const rs = g.edges.filter((e) => e.kind === "route");
      replace(routes, rs.length ? table([
        { label: "From", cell: (e) => name.get(e.from)?.name ?? e.from },
        { label: "Path", cell: (e) => h("code", {}, e.label ?? "") },
        { label: "To", cell: (e) => { const n = name.get(e.to); return n ? `${n.kind} ${n.name}` : e.to; } },
      ], rs) : h("p", { class: "muted" }, "No gateway routes or ingress hosts."));
    } catch (err) { replace(routes, errorText(err)); }
  }

  try { update(await get("/admin/v1/status")); } catch (err) { replace(msg, errorText(err)); }
  showRoutes();
  const es = stream({}, { status: update });
  return () => es.close();
}

// syncOptions sets a select's options, keeping the chosen one.
function syncOptions(sel, values) {
  const keep = sel.value;
  replace(sel, values.map((v) => h("option", { value: v }, v)));
  if (values.includes(keep)) sel.value = keep;
}
