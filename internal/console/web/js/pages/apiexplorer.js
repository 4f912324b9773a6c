// API explorer: the gateway's routes from its OpenAPI document, a form to
// call one through the gateway (stage, path and query parameters, a body
// checked against the route's model, a JWT or an API key), the answer, and
// a link to the request's trace.
import { get, send } from "../api.js";
import { h, replace, errorText } from "../dom.js";

const methods = ["get", "post", "put", "patch", "delete", "head", "options"];

// resolve follows a $ref into components.
function resolve(doc, schema) {
  const ref = schema?.$ref;
  if (!ref) return schema;
  return ref.replace(/^#\//, "").split("/").reduce((o, k) => o?.[k], doc);
}

// checkBody finds what the route's model says is wrong with a body: not
// JSON, a required property missing, a property of the wrong JSON type.
// The gateway checks it again; this says so before the call.
export function checkBody(doc, schema, text) {
  schema = resolve(doc, schema);
  if (!schema) return [];
  let v;
  try { v = JSON.parse(text); } catch (err) { return [`not JSON: ${err.message}`]; }
  const errs = [];
  if (schema.type === "object") {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return ["want a JSON object"];
    for (const r of schema.required ?? []) if (!(r in v)) errs.push(`required property ${r} is missing`);
    for (const [k, p] of Object.entries(schema.properties ?? {})) {
      if (!(k in v) || !p.type) continue;
      const t = Array.isArray(v[k]) ? "array" : v[k] === null ? "null" : typeof v[k];
      const want = p.type === "integer" ? "number" : p.type;
      if (t !== want) errs.push(`property ${k}: want ${p.type}, got ${t}`);
    }
  }
  return errs;
}

export async function render(main) {
  main.append(h("h1", {}, "API explorer"));
  let doc;
  try { doc = await get("/console/v1/openapi"); } catch (err) {
    main.append(err.status === 404 ? h("p", { class: "notice" }, err.message) : errorText(err));
    return;
  }
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths ?? {}).sort()) {
    for (const m of methods) if (item[m]) ops.push({ path, method: m.toUpperCase(), op: item[m] });
  }
  const servers = doc.servers ?? [{ url: "" }];
  const stage = h("select", { id: "api-stage", "aria-label": "Stage" }, servers.map((sv) => h("option", { value: new URL(sv.url, location.href).pathname.replace(/\/$/, "") }, sv.description || sv.url)));
  const route = h("select", { id: "api-route", "aria-label": "Route" }, ops.map((o, i) => h("option", { value: i }, `${o.method} ${o.path}`)));
  const params = h("div", { class: "row", id: "api-params" });
  const query = h("input", { id: "api-query", placeholder: "a=1&b=2", "aria-label": "Query string" });
  const auth = h("select", { id: "api-auth", "aria-label": "Credential" }, ["none", "bearer", "x-api-key"].map((a) => h("option", { value: a }, { none: "no credential", bearer: "JWT (Bearer)", "x-api-key": "API key" }[a])));
  const cred = h("input", { id: "api-cred", placeholder: "token or key", "aria-label": "Credential value" });
  const body = h("textarea", { id: "api-body", rows: 6, "aria-label": "Request body (JSON)" });
  const check = h("div", { id: "api-check" });
  const answer = h("div", { id: "api-answer" });
  main.append(
    h("form", { onsubmit: (ev) => { ev.preventDefault(); call(); } },
      h("div", { class: "row" }, stage, route), params,
      h("div", { class: "row" }, h("label", { for: "api-query" }, "Query"), query, auth, cred),
      body, check,
      h("div", { class: "row" }, h("button", { type: "submit", id: "api-send" }, "Send"))),
    answer);

  function current() { return ops[Number(route.value)]; }

  function showRoute() {
    const o = current();
    if (!o) return;
    replace(params, (o.op.parameters ?? []).filter((p) => p.in === "path").map((p) =>
      h("label", {}, `${p.name} `, h("input", { "data-param": p.name, required: true, "aria-label": `path parameter ${p.name}` }))));
    const schema = o.op.requestBody?.content?.["application/json"]?.schema;
    body.hidden = !o.op.requestBody;
    body.dataset.hasSchema = schema ? "1" : "";
    replace(check, o.op.summary ? h("p", { class: "muted" }, o.op.summary) : "");
  }

  async function call() {
    const o = current();
    let path = o.path;
    for (const input of params.querySelectorAll("[data-param]")) {
      path = path.replace(new RegExp(`\\{${input.dataset.param}\\+?\\}`), encodeURIComponent(input.value));
    }
    const schema = o.op.requestBody?.content?.["application/json"]?.schema;
    if (o.op.requestBody && schema) {
      const errs = checkBody(doc, schema, body.value || "null");
      if (errs.length) { replace(check, h("ul", { class: "error", role: "alert" }, errs.map((e) => h("li", {}, e)))); return; }
    }
    replace(check);
    const headers = {};
    if (auth.value === "bearer" && cred.value) headers.Authorization = `Bearer ${cred.value}`;
    if (auth.value === "x-api-key" && cred.value) headers["x-api-key"] = cred.value;
    if (o.op.requestBody) headers["Content-Type"] = "application/json";
    const full = `${stage.value}${path}${query.value ? `?${query.value.replace(/^\?/, "")}` : ""}`;
    replace(answer, h("p", { class: "muted" }, `${o.method} ${full}…`));
    try {
      const r = await send("POST", "/console/v1/call", { method: o.method, path: full, headers, body: o.op.requestBody ? body.value : "" });
      let shown = r.body;
      try { shown = JSON.stringify(JSON.parse(r.body), null, 2); } catch { /* not JSON */ }
      replace(answer,
        h("p", {}, h("strong", { id: "api-status", class: r.status < 400 ? "state-ok" : "state-bad" }, String(r.status)),
          ` in ${r.durationMs.toFixed(1)} ms · `, h("a", { href: `#/traces?trace=${r.traceId}` }, `trace ${r.traceId.slice(0, 8)}`)),
        h("details", {}, h("summary", {}, "headers"), h("pre", {}, Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`).join("\n"))),
        h("pre", { id: "api-response" }, shown), r.truncated ? h("p", { class: "muted" }, "(cut at 1 MiB)") : "");
    } catch (err) { replace(answer, errorText(err)); }
  }

  route.addEventListener("change", showRoute);
  showRoute();
}
