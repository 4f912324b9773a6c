// The console's only way to the engine: the same JSON APIs the CLI uses,
// with the run's token on every state-changing request.
const token = document.querySelector('meta[name="nubo-token"]')?.content ?? "";

// ApiError carries the engine's {"error": "..."} message and the status.
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function answer(resp) {
  const text = await resp.text();
  let body = text;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!resp.ok) {
    const msg = body && typeof body === "object" && body.error ? body.error : `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, msg);
  }
  return body;
}

// get fetches a JSON document.
export async function get(path, opts = {}) {
  return answer(await fetch(path, { headers: { Accept: "application/json" }, signal: opts.signal }));
}

// send makes a state-changing request; body is JSON unless a string.
export async function send(method, path, body, contentType = "application/json") {
  const headers = { "Nubo-Console-Token": token, "Nubo-Actor": "console" };
  let data;
  if (body !== undefined) {
    headers["Content-Type"] = contentType;
    data = typeof body === "string" ? body : JSON.stringify(body);
  }
  return answer(await fetch(path, { method, headers, body: data }));
}

// prom runs a Prometheus API query (/api/v1/query or query_range) and
// returns its data, or throws the API's error.
export async function prom(kind, params, opts = {}) {
  const q = new URLSearchParams(params);
  const body = await get(`/api/v1/${kind}?${q}`, opts);
  if (body.status !== "success") throw new ApiError(422, body.error || "query failed");
  return body.data;
}

// stream opens the console's server-sent events; handlers maps an event
// name to a function of its parsed data. It returns the EventSource, to
// close when the page goes.
export function stream(params, handlers) {
  const es = new EventSource(`/console/v1/stream?${new URLSearchParams(params)}`);
  for (const [name, fn] of Object.entries(handlers)) {
    es.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
  }
  return es;
}
