// Charts, all drawn by uPlot (vendored): series of Prometheus matrices,
// and sparklines of the resources page.
import uPlot from "../vendor/uplot/uPlot.esm.js";

const palette = ["#2456c8", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#0a7ea4", "#bf3989", "#57606a"];

// seriesName is a series' legend: the legend template ("{{service}}")
// filled from its labels, else its labels.
export function seriesName(metric, legend) {
  if (legend) return legend.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => metric[k] ?? "");
  const { __name__: name, ...rest } = metric;
  const labels = Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(", ");
  return `${name ?? ""}{${labels}}`;
}

// alignMatrix turns matrices of several queries into uPlot's columns: one
// shared x (seconds) and one y array per series.
export function alignMatrix(results) {
  const xs = new Set();
  for (const r of results) for (const s of r.series) for (const [t] of s.values) xs.add(t);
  const x = [...xs].sort((a, b) => a - b);
  const at = new Map(x.map((t, i) => [t, i]));
  const data = [x];
  const series = [{}];
  let i = 0;
  for (const r of results) {
    for (const s of r.series) {
      const y = new Array(x.length).fill(null);
      for (const [t, v] of s.values) y[at.get(t)] = Number(v);
      data.push(y);
      series.push({ label: seriesName(s.metric, r.legend), stroke: palette[i++ % palette.length], width: 1.5, spanGaps: false });
    }
  }
  return { data, series };
}

// lineChart draws a time series chart into el. opts: {height, unit, min,
// max, label, thresholds: [{value, color}], from, to (seconds: the x
// range, so that a series of one point is drawn in its place)}.
export function lineChart(el, { data, series }, opts = {}) {
  const width = Math.max(300, el.clientWidth || 600);
  const y = { auto: true };
  if (opts.min !== undefined || opts.max !== undefined) {
    y.range = (u, lo, hi) => [opts.min ?? lo, opts.max ?? hi];
  }
  const thresholds = opts.thresholds ?? [];
  const chart = new uPlot({
    width, height: opts.height ?? 220,
    series, scales: { y, x: opts.from ? { time: true, range: () => [opts.from, opts.to] } : { time: true } },
    axes: [{ stroke: "currentColor" }, { stroke: "currentColor", label: opts.label, values: (u, vals) => vals.map((v) => fmtUnit(v, opts.unit)) }],
    hooks: { draw: [(u) => drawThresholds(u, thresholds)] },
  }, data, el);
  return chart;
}

function drawThresholds(u, thresholds) {
  const ctx = u.ctx;
  for (const t of thresholds) {
    const yPos = u.valToPos(t.value, "y", true);
    if (!Number.isFinite(yPos)) continue;
    ctx.save();
    ctx.strokeStyle = t.color || "red";
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, yPos);
    ctx.lineTo(u.bbox.left + u.bbox.width, yPos);
    ctx.stroke();
    ctx.restore();
  }
}

// fmtUnit formats an axis value with a Grafana unit name.
export function fmtUnit(v, unit) {
  if (v === null || v === undefined) return "";
  switch (unit) {
    case "percent": return `${+v.toFixed(2)}%`;
    case "percentunit": return `${+(v * 100).toFixed(2)}%`;
    case "s": return `${+v.toPrecision(3)}s`;
    case "ms": return `${+v.toPrecision(3)}ms`;
    case "bytes": return `${+(v / 1048576).toPrecision(3)}MiB`;
    case "reqps": return `${+v.toPrecision(3)}/s`;
    default: return `${+v.toPrecision(4)}`;
  }
}

// sparkline keeps the last n values pushed to it and draws them small.
export class Sparkline {
  constructor(el, n = 60, color = palette[0]) {
    this.n = n;
    this.data = [[], []];
    this.chart = new uPlot({
      width: 120, height: 28, legend: { show: false }, cursor: { show: false },
      axes: [{ show: false }, { show: false }], scales: { x: { time: false } },
      series: [{}, { stroke: color, width: 1, fill: color + "22" }],
    }, this.data, el);
  }

  push(v) {
    const [x, y] = this.data;
    x.push((x.at(-1) ?? 0) + 1);
    y.push(v);
    if (x.length > this.n) { x.shift(); y.shift(); }
    this.chart.setData(this.data);
  }
}
