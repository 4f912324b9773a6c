// Logs: a live tail over the console's stream (all services or some),
// filtered by level, text and fields; a search over the stored logs; a
// trace id opens its trace.
import { get, stream } from "../api.js";
import { h, replace, errorText } from "../dom.js";

const maxLines = 2000;

export async function render(main, params) {
  const service = h("input", { id: "log-service", value: params.get("service") ?? "", placeholder: "all services", "aria-label": "Services (comma separated)" });
  const level = h("select", { id: "log-level", "aria-label": "Level" }, ["", "debug", "info", "warn", "error"].map((l) => h("option", { value: l }, l || "any level")));
  level.value = params.get("level") ?? "";
  const grep = h("input", { id: "log-grep", value: params.get("grep") ?? "", placeholder: "text or regexp", "aria-label": "Text" });
  const where = h("input", { id: "log-where", value: params.get("where") ?? "", placeholder: "field=value", "aria-label": "Field filter" });
  const since = h("input", { id: "log-since", value: "1h", size: 5, "aria-label": "Since (for search)" });
  const status = h("span", { class: "muted", role: "status" });
  const out = h("div", { id: "log-lines", class: "log mono", tabindex: 0, "aria-label": "Log lines" });
  let es = null;
  let paused = false;

  function line(l) {
    const t = new Date(l.time).toLocaleTimeString();
    return h("div", { class: l.level ? `lvl-${l.level}` : "" },
      h("span", { class: "muted" }, `${t} `), h("strong", {}, l.service), l.replica ? `[${l.replica}]` : "", " ",
      l.text,
      l.traceId ? [" ", h("a", { href: `#/traces?trace=${encodeURIComponent(l.traceId)}` }, `trace ${l.traceId.slice(0, 8)}`)] : "");
  }

  function whereOK(l) {
    const w = where.value.trim();
    if (!w) return true;
    const [k, v] = w.split("=");
    return l.fields && String(l.fields[k]) === v;
  }

  function tail() {
    if (es) es.close();
    replace(out);
    const p = { logs: service.value.trim() || "all", tail: 200 };
    if (level.value) p.level = level.value;
    if (grep.value) p.grep = grep.value;
    es = stream(p, {
      log: (l) => {
        if (paused || !whereOK(l)) return;
        const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
        out.append(line(l));
        while (out.childElementCount > maxLines) out.firstElementChild.remove();
        if (stick) out.scrollTop = out.scrollHeight;
      },
    });
    es.onerror = () => { status.textContent = "stream interrupted; reconnecting…"; };
    es.onopen = () => { status.textContent = "live"; };
  }

  async function search() {
    if (es) { es.close(); es = null; }
    status.textContent = "searching…";
    const q = new URLSearchParams({ tail: 1000, since: since.value });
    if (service.value.trim()) q.set("service", service.value.trim());
    if (level.value) q.set("level", level.value);
    if (grep.value) q.set("grep", grep.value);
    if (where.value.trim()) q.set("where", where.value.trim());
    try {
      const resp = await fetch(`/admin/v1/logs?${q}`);
      const text = await resp.text();
      if (!resp.ok) throw new Error(JSON.parse(text).error);
      const lines = text.split("\n").filter(Boolean).map((s) => JSON.parse(s));
      replace(out, lines.map(line));
      status.textContent = `${lines.length} lines found (search stops the live tail)`;
    } catch (err) { replace(out, errorText(err)); status.textContent = ""; }
  }

  main.append(h("h1", {}, "Logs"),
    h("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); tail(); } },
      service, level, grep, where,
      h("button", { type: "submit" }, "Live tail"),
      since, h("button", { type: "button", onclick: search }, "Search stored"),
      h("button", { type: "button", "aria-pressed": "false", onclick: (ev) => { paused = !paused; ev.target.setAttribute("aria-pressed", String(paused)); ev.target.textContent = paused ? "Resume" : "Pause"; } }, "Pause"),
      status),
    out);
  tail();
  return () => es && es.close();
}
