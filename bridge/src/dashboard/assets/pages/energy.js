// Energy: today / this week / this month from `hearth/energy/summary`
// (bridge/src/api/websocket/energy.rs documents the answer: Wh and €):
// totals, an hourly chart of consumption against solar production, cost by
// tariff period, and tables per device meter, per outlet and per user.
// Reloaded every minute and when the period changes.
import { html, useState, useEffect } from '../vendor/preact-htm.js';
import { useHass, errorText } from '../lib/hass.js';
import { TimeChart, BarChart } from '../lib/chart.js';

const PERIODS = [
  { id: 'day', label: 'Today' },
  { id: 'week', label: 'This week' },
  { id: 'month', label: 'This month' },
];
const REFRESH_MS = 60000;

export const kwh = (wh) => (wh == null ? '–' : (wh / 1000).toFixed(wh >= 100000 ? 1 : 3));
export const eur = (v) => (v == null ? '–' : `${v.toFixed(2)} €`);
const pct = (v) => (v == null ? '–' : `${Math.round(v)} %`);

// "HC 1.200 kWh · 0.18 €, HP …" for a {period: {wh, eur}} map.
function periodsText(periods) {
  const parts = Object.entries(periods || {}).map(
    ([p, v]) => `${p} ${kwh(v.wh)} kWh · ${eur(v.eur)}`,
  );
  return parts.length ? parts.join(', ') : '';
}

function Stat({ label, value, unit, testid }) {
  return html`<div class="stat" data-testid=${testid}>
    <div class="stat-value">${value}${unit ? html` <span class="stat-unit">${unit}</span>` : null}</div>
    <div class="muted">${label}</div>
  </div>`;
}

function Totals({ s }) {
  const g = s.grid;
  const consumption = g
    ? g.consumption_wh
    : s.hours.reduce((a, h) => a + (h.consumption_wh || 0), 0);
  return html`<div class="card stats">
    <${Stat} label="Consumption" value=${kwh(consumption)} unit="kWh" testid="energy-consumption" />
    ${g && g.has_solar
      ? html`<${Stat} label="Solar production" value=${kwh(g.solar_wh)} unit="kWh" testid="energy-solar" />
          <${Stat} label="Self-sufficiency" value=${pct(g.self_sufficiency_pct)} testid="energy-self-sufficiency" />`
      : null}
    ${g ? html`<${Stat} label="Grid import" value=${kwh(g.import_wh)} unit="kWh" testid="energy-import" />` : null}
    <${Stat} label="Cost" value=${eur(s.cost.eur)} testid="energy-cost" />
  </div>`;
}

function Chart({ s }) {
  const consumption = s.hours.map((h) => [h.start_ms, h.consumption_wh]);
  const series = [{ label: 'Consumption', unit: 'Wh', points: consumption }];
  if (s.hours.some((h) => h.solar_wh != null)) {
    series.push({ label: 'Solar', unit: 'Wh', points: s.hours.map((h) => [h.start_ms, h.solar_wh]) });
  }
  return html`<div class="card">
    <div class="card-head"><h2>Per hour</h2>
      <span class="muted right" data-testid="energy-chart-zone">Wh in each hour${s.timezone ? ` · ${s.timezone} time` : ''}</span></div>
    <${TimeChart} series=${series} height=${240} testid="energy-chart" timeZone=${s.timezone} />
  </div>`;
}

function Cost({ s }) {
  const rows = s.cost.periods;
  const source = {
    grid_import: 'grid import, priced when read',
    usage: 'users’ outlets, priced when read',
    meters: 'device meters, priced at the recorded tariff',
    none: 'no tariff data',
  }[s.cost.source];
  return html`<div class="card" data-testid="energy-cost-periods">
    <div class="card-head"><h2>Cost by tariff period</h2><span class="muted right">${source}</span></div>
    ${rows.length
      ? html`<${BarChart} labels=${rows.map((r) => r.period)}
            series=${[{ label: 'Cost', unit: '€', values: rows.map((r) => r.eur) }]}
            height=${160} testid="energy-cost-chart" />
          <table class="list num">
            <thead><tr><th>Period</th><th>kWh</th><th>€</th></tr></thead>
            <tbody>
              ${rows.map(
                (r) => html`<tr data-testid=${`cost-${r.period}`}>
                  <td>${r.period}</td><td>${kwh(r.wh)}</td><td>${eur(r.eur)}</td></tr>`,
              )}
            </tbody>
          </table>`
      : html`<p class="muted">No cost in this period.</p>`}
  </div>`;
}

function Table({ title, testid, head, rows, empty }) {
  return html`<div class="card" data-testid=${testid}>
    <h2>${title}</h2>
    ${rows.length
      ? html`<div class="table-scroll"><table class="list num">
          <thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead>
          <tbody>${rows}</tbody>
        </table></div>`
      : html`<p class="muted">${empty}</p>`}
  </div>`;
}

function Devices({ s }) {
  const rows = [...s.devices]
    .sort((a, b) => b.wh - a.wh)
    .map(
      (d) => html`<tr data-testid=${`energy-device-${d.entity_id}`} title=${periodsText(d.periods)}>
        <td>${d.device_name}<div class="muted small">${d.name}</div></td>
        <td>${kwh(d.wh)}</td><td>${eur(d.eur)}</td></tr>`,
    );
  return html`<${Table} title="Per device" testid="energy-devices" head=${['Device', 'kWh', '€']}
    rows=${rows} empty="No energy meters." />`;
}

function Outlets({ s, states }) {
  const rows = s.outlets.map((o) => {
    const sw = states[o.switch_entity];
    const name = sw?.attributes?.friendly_name || o.switch_entity;
    return html`<tr data-testid=${`energy-outlet-${o.energy_entity}`} title=${periodsText(o.periods)}>
      <td>${name}<div class="muted small">${sw ? sw.state : ''}</div></td>
      <td>${o.user === 'none' ? html`<span class="muted">nobody</span>` : o.user}</td>
      <td>${kwh(o.wh)}</td><td>${eur(o.eur)}</td></tr>`;
  });
  return html`<${Table} title="Per outlet" testid="energy-outlets" head=${['Outlet', 'Held by', 'kWh', '€']}
    rows=${rows} empty="No outlets in [usage]." />`;
}

function Users({ s }) {
  // Most used first (a coworking space has a score of users).
  const rows = [...s.users].sort((a, b) => b.wh - a.wh).map(
    (u) => html`<tr data-testid=${`energy-user-${u.id}`}>
      <td>${u.id === 'none' ? html`<span class="muted">nobody</span>` : u.name}</td>
      <td>${kwh(u.wh)}</td><td>${eur(u.eur)}</td>
      <td class="muted small">${periodsText(u.periods)}</td></tr>`,
  );
  return html`<${Table} title="Per user" testid="energy-users" head=${['User', 'kWh', '€', 'By period']}
    rows=${rows} empty="No users in [usage]." />`;
}

function range(s) {
  const opts = { dateStyle: 'medium' };
  const tz = s.timezone ? { timeZone: s.timezone } : {};
  const fmt = (ms) => {
    try {
      return new Date(ms).toLocaleDateString(undefined, { ...opts, ...tz });
    } catch {
      return new Date(ms).toLocaleDateString(undefined, opts);
    }
  };
  const last = s.end_ms - 1;
  return s.period === 'day' ? fmt(s.start_ms) : `${fmt(s.start_ms)} – ${fmt(last)}`;
}

export default function Page() {
  const { ws, states, connected } = useHass();
  const [period, setPeriod] = useState('day');
  const [summary, setSummary] = useState(null);
  const [error, setError] = useState('');

  useEffect(() => {
    let live = true;
    const load = () =>
      ws({ type: 'hearth/energy/summary', period })
        .then((s) => {
          if (!live) return;
          setSummary(s);
          setError('');
        })
        .catch((e) => live && setError(errorText(e)));
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [period, connected]);

  const s = summary && summary.period === period ? summary : null;
  return html`<div class="stack energy-page">
    <div class="toolbar" role="group" aria-label="Period">
      ${PERIODS.map(
        (p) => html`<button data-testid=${`energy-period-${p.id}`}
          class=${p.id === period ? 'primary' : ''} aria-pressed=${p.id === period}
          onClick=${() => setPeriod(p.id)}>${p.label}</button>`,
      )}
      ${s ? html`<span class="muted" data-testid="energy-range">${range(s)}</span>` : null}
    </div>
    ${error ? html`<p class="error" data-testid="energy-error">${error}</p>` : null}
    ${!s
      ? html`<p class="muted">Loading…</p>`
      : html`<${Totals} s=${s} />
          <${Chart} s=${s} />
          <div class="cards">
            <${Cost} s=${s} />
            <${Users} s=${s} />
            <${Outlets} s=${s} states=${states} />
            <${Devices} s=${s} />
          </div>`}
  </div>`;
}
