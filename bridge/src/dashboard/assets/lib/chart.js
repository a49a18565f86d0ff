// Charts for the pages: Preact components over uPlot (vendor/uplot).
//
//   TimeChart({ series: [{ label, unit, points: [[t_ms, value], ...] }], height = 220, testid, timeZone })
//     lines over time; series need not share timestamps (they are merged
//     and each line joins its own points); one y axis per distinct unit (at most two).
//     Times are shown in `timeZone` (an IANA name, e.g. the bridge's
//     "Europe/Paris") when given and known to the browser, else in the browser's.
//   BarChart({ labels: ['Mon', ...], series: [{ label, unit, values: [...] }], height = 220, testid })
//     grouped bars, one group per label.
//
// Both follow the page width (ResizeObserver) and the theme: colours come
// from the CSS variables --fg, --muted, --grid and --series-1..6 of
// style.css, and the chart is redrawn when app.js announces a theme change
// (`hearth-theme` event on window).
import uPlot from '../vendor/uplot/uPlot.esm.js';
import { html, useRef, useEffect, useState } from '../vendor/preact-htm.js';

// uPlot's stylesheet comes with the charts (pages without one never load it).
const CSS = new URL('../vendor/uplot/uPlot.min.css', import.meta.url).href;
if (![...document.querySelectorAll('link[rel="stylesheet"]')].some((l) => l.href === CSS)) {
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = CSS;
  document.head.prepend(link); // before style.css, which overrides it
}

// uPlot's `tzDate` for an IANA zone, or undefined (the browser's zone) when
// none is given or the browser does not know it.
function tzDateFor(timeZone) {
  if (!timeZone) return undefined;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone });
  } catch {
    return undefined;
  }
  return (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone);
}

function palette() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const series = [];
  for (let i = 1; i <= 6; i++) series.push(v(`--series-${i}`, '#1f77b4'));
  return { fg: v('--fg', '#222'), muted: v('--muted', '#666'), grid: v('--grid', '#ddd'), series };
}

// Re-renders the caller when the theme changes.
function useTheme() {
  const [n, setN] = useState(0);
  useEffect(() => {
    const bump = () => setN((x) => x + 1);
    window.addEventListener('hearth-theme', bump);
    return () => window.removeEventListener('hearth-theme', bump);
  }, []);
  return n;
}

function axis(p, extra = {}) {
  return {
    stroke: p.muted,
    grid: { stroke: p.grid, width: 1 },
    ticks: { stroke: p.grid, width: 1 },
    ...extra,
  };
}

// Mounts a uPlot built by `make(width)` into a div that follows its width.
function useUplot(make, deps) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const width = () => Math.max(200, el.clientWidth || 300);
    const plot = make(width(), el);
    const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: plot.height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, deps);
  return box;
}

// Merges series of [t_ms, v] into uPlot's aligned columns (x in seconds).
function align(series) {
  const times = new Set();
  for (const s of series) for (const [t] of s.points) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const cols = series.map((s) => {
    const col = new Array(xs.length).fill(null);
    for (const [t, v] of s.points) col[index.get(t)] = v == null || Number.isNaN(v) ? null : v;
    return col;
  });
  return [xs.map((t) => t / 1000), ...cols];
}

export function TimeChart({ series, height = 220, testid, timeZone }) {
  const theme = useTheme();
  const units = [...new Set(series.map((s) => s.unit || ''))].slice(0, 2);
  const box = useUplot(
    (width, el) => {
      const p = palette();
      const data = align(series);
      // One sample (the first hour of a day): uPlot's time range collapses
      // to years around it and a line of one point draws nothing, so give
      // it an hour of axis and show the point.
      const single = data[0].length === 1;
      const tzDate = tzDateFor(timeZone);
      const opts = {
        width,
        height,
        ...(tzDate ? { tzDate } : {}),
        legend: { show: true },
        cursor: { drag: { x: true, y: false } },
        scales: {
          x: single ? { time: true, auto: false, range: [data[0][0] - 1800, data[0][0] + 1800] } : { time: true },
        },
        axes: [
          axis(p),
          axis(p, { scale: units[0] || 'y', label: units[0] || undefined, size: 56 }),
          ...(units.length > 1
            ? [axis(p, { scale: units[1], side: 1, grid: { show: false }, label: units[1], size: 56 })]
            : []),
        ],
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.unit ? `${s.label} (${s.unit})` : s.label,
            scale: units.includes(s.unit || '') ? s.unit || units[0] || 'y' : units[0] || 'y',
            stroke: p.series[i % p.series.length],
            width: 2,
            // Series are merged on one time axis, so each has nulls where
            // another has a sample: join across them.
            spanGaps: true,
            points: { show: single },
          })),
        ],
      };
      return new uPlot(opts, data, el);
    },
    [JSON.stringify(series), height, theme, timeZone],
  );
  const empty = series.every((s) => s.points.length === 0);
  // uPlot owns the inner div; Preact only the outer one's other children.
  return html`<div class="chart" data-testid=${testid}>
    <div ref=${box}></div>
    ${empty ? html`<p class="muted chart-empty">No data in this period.</p>` : null}
  </div>`;
}

export function BarChart({ labels, series, height = 220, testid }) {
  const theme = useTheme();
  const box = useUplot(
    (width, el) => {
      const p = palette();
      const n = Math.max(1, series.length);
      const barWidth = 0.8 / n; // in x units: a group is 0.8 of a slot
      const opts = {
        width,
        height,
        legend: { show: series.length > 1 },
        scales: {
          x: { time: false, range: [-0.5, labels.length - 0.5] },
          // Bars stand on zero (uPlot's own range starts near the smallest bar).
          y: { range: (u, min, max) => uPlot.rangeNum(Math.min(0, min), Math.max(0, max), 0.1, true) },
        },
        axes: [
          axis(p, {
            grid: { show: false },
            splits: () => labels.map((_, i) => i),
            values: (_, splits) => splits.map((i) => labels[i] ?? ''),
          }),
          axis(p, { label: series[0]?.unit || undefined, size: 56 }),
        ],
        series: [
          {},
          ...series.map((s, i) => {
            const colour = p.series[i % p.series.length];
            return {
              label: s.unit ? `${s.label} (${s.unit})` : s.label,
              stroke: colour,
              fill: colour,
              width: 0,
              points: { show: false },
              // Grouped bars: each series starts at its own offset in the slot
              // (uPlot's `disp.x0`/`disp.size` in data units).
              paths: uPlot.paths.bars({
                disp: {
                  x0: { unit: 1, values: (u) => u.data[0].map((x) => x - 0.4 + i * barWidth) },
                  size: { unit: 1, values: () => [barWidth] },
                },
              }),
            };
          }),
        ],
      };
      const data = [labels.map((_, i) => i), ...series.map((s) => s.values.map((v) => (v == null ? null : v)))];
      return new uPlot(opts, data, el);
    },
    [JSON.stringify(labels), JSON.stringify(series), height, theme],
  );
  return html`<div class="chart" data-testid=${testid}><div ref=${box}></div></div>`;
}
