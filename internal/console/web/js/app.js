// The console's shell: routes on the URL's fragment (#/logs?service=x) to
// one module per page, each of which exports render(main, params) and may
// return a function that ends what it started (streams, timers).
import { get } from "./api.js";
import { h, errorText, replace } from "./dom.js";

const pages = {
  resources: "./pages/resources.js",
  map: "./pages/map.js",
  logs: "./pages/logs.js",
  traces: "./pages/traces.js",
  metrics: "./pages/metrics.js",
  dashboards: "./pages/dashboards.js",
  alerts: "./pages/alerts.js",
  events: "./pages/events.js",
  api: "./pages/apiexplorer.js",
  cost: "./pages/cost.js",
  audit: "./pages/audit.js",
};

const main = document.getElementById("page");
let cleanup = null;
let generation = 0;

async function route() {
  const [path, query] = (location.hash.replace(/^#\/?/, "") || "resources").split("?");
  const name = pages[path] ? path : "resources";
  const params = new URLSearchParams(query ?? "");
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (cleanup) { cleanup(); cleanup = null; }
  const gen = ++generation;
  replace(main, h("p", { class: "muted" }, "Loading…"));
  try {
    const mod = await import(pages[name]);
    if (gen !== generation) return;
    replace(main);
    cleanup = (await mod.render(main, params)) ?? null;
    document.title = `${main.querySelector("h1")?.textContent ?? name} · nubo`;
  } catch (err) {
    if (gen === generation) replace(main, errorText(err));
  }
  // When the page has drawn its content, in ms from navigation: the
  // browser tests measure page loads by it.
  if (gen === generation) document.documentElement.dataset.ready = performance.now().toFixed(1);
}

window.addEventListener("hashchange", () => { route(); main.focus(); });
route();
get("/admin/v1/status").then((st) => {
  document.getElementById("app-name").textContent = st.app;
}).catch(() => {});
