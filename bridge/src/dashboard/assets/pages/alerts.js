// Alerts: active and past alerts (hearth/alerts/list, polled every 5 s),
// acknowledge (hearth/alerts/acknowledge).
//
// An alert raised by the anomaly-detector plugin (source `plugin:<instance>`,
// key and entity_id = the stream, e.g. sensor.server_room_temperature) gets
// the detector's score chart: the plugin publishes the score of every
// sample as `sensor.plugin_<instance>_<stream slug>_anomaly_score`
// (plugins/anomaly-detector/src/lib.rs; the plugin's device is
// `plugin-<instance>`), read back with hearth/history (kind samples) from
// six hours before the alert to its end (or now), beside the stream's own
// values and the plugin's `threshold`.
// Test ids: alert-<id>, ack-<id>, show-chart-<id>, score-chart-<id>.
import { html, useState, useEffect, useCallback } from '../vendor/preact-htm.js';
import { useHass, errorText } from '../lib/hass.js';
import { TimeChart } from '../lib/chart.js';

const BEFORE_MS = 6 * 3600 * 1000;
const SEVERITY_CLASS = { info: 'muted', warning: 'warn', critical: 'bad' };

// The score entity of an anomaly alert, if the detector publishes one.
function scoreEntity(alert, registries, states) {
  if (!alert.entity_id || !alert.source.startsWith('plugin:')) return null;
  const instance = alert.source.slice('plugin:'.length);
  const slug = alert.entity_id.replace('.', '_');
  const suffix = `_${slug}_anomaly_score`.toLowerCase();
  const device = `plugin-${instance}`;
  const entry = registries.entities.find((e) => e.device_id === device && e.entity_id.endsWith(suffix));
  if (entry) return { id: entry.entity_id, instance };
  const guess = `sensor.${`${device}_${slug}_anomaly_score`.replace(/-/g, '_').toLowerCase()}`;
  return states[guess] ? { id: guess, instance } : null;
}

async function samples(ws, entityId, start, end) {
  const msg = { type: 'hearth/history', entity_id: entityId, start_time: new Date(start).toISOString() };
  if (end != null) msg.end_time = new Date(end).toISOString();
  const r = await ws(msg);
  return (r.samples || []).map((s) => [Date.parse(s.time), s.value]);
}

function ScoreChart({ alert, score }) {
  const { ws } = useHass();
  const [series, setSeries] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let gone = false;
    const start = alert.first_seen_ms - BEFORE_MS;
    const end = alert.active ? null : alert.last_seen_ms + 3600 * 1000;
    (async () => {
      const [points, values, plugins] = await Promise.all([
        samples(ws, score.id, start, end),
        samples(ws, alert.entity_id, start, end).catch(() => []),
        ws({ type: 'hearth/plugins/list' }).catch(() => []),
      ]);
      const threshold = plugins.find((p) => p.name === score.instance)?.config?.threshold;
      const out = [{ label: 'anomaly score', unit: 'score', points }];
      if (threshold != null && points.length) {
        out.push({
          label: 'threshold',
          unit: 'score',
          points: [
            [points[0][0], threshold],
            [points[points.length - 1][0], threshold],
          ],
        });
      }
      if (values.length) {
        out.push({ label: alert.entity_id, unit: 'value', points: values });
      }
      if (!gone) setSeries(out);
    })().catch((e) => !gone && setError(errorText(e)));
    return () => {
      gone = true;
    };
  }, [alert.id, alert.first_seen_ms, alert.last_seen_ms, alert.active]);
  if (error) return html`<p class="error">Score history: ${error}</p>`;
  if (!series) return html`<p class="muted">Loading the score history…</p>`;
  return html`<${TimeChart} series=${series} height=${200} testid=${`score-chart-${alert.id}`} />`;
}

function AlertCard({ alert, onChanged }) {
  const { ws, registries, states } = useHass();
  const score = scoreEntity(alert, registries, states);
  const [open, setOpen] = useState(alert.active);
  const [error, setError] = useState('');
  const ack = async () => {
    try {
      await ws({ type: 'hearth/alerts/acknowledge', alert_id: alert.id });
      setError('');
    } catch (e) {
      setError(errorText(e));
    }
    onChanged();
  };
  return html`<section class="card" data-testid=${`alert-${alert.id}`}>
    <div class="card-head">
      <span class=${`badge ${SEVERITY_CLASS[alert.severity] || 'muted'}`}>${alert.severity}</span>
      <h3>${alert.title}</h3>
      <span class="right">
        ${alert.acknowledged ? html`<span class="badge muted">acknowledged</span>` : null}
        ${alert.active && !alert.acknowledged
          ? html`<button data-testid=${`ack-${alert.id}`} onClick=${ack}>Acknowledge</button>`
          : null}
      </span>
    </div>
    <p>${alert.message}</p>
    <p class="muted">${[
      alert.source,
      alert.entity_id,
      `first ${new Date(alert.first_seen_ms).toLocaleString()}`,
      `${alert.active ? 'last' : 'cleared'} ${new Date(alert.last_seen_ms).toLocaleString()}`,
      alert.count > 1 ? `${alert.count}×` : null,
    ]
      .filter(Boolean)
      .join(' · ')}</p>
    ${error ? html`<p class="error">${error}</p>` : null}
    ${score
      ? html`<button class="link" data-testid=${`show-chart-${alert.id}`} onClick=${() => setOpen(!open)}>
            ${open ? 'Hide' : 'Show'} the anomaly score</button>
          ${open ? html`<${ScoreChart} alert=${alert} score=${score} />` : null}`
      : null}
  </section>`;
}

export default function Page() {
  const { ws } = useHass();
  const [alerts, setAlerts] = useState(null);
  const [error, setError] = useState('');
  const refresh = useCallback(() => {
    ws({ type: 'hearth/alerts/list' })
      .then((a) => {
        setAlerts(a);
        setError('');
      })
      .catch((e) => setError(errorText(e)));
  }, []);
  useEffect(() => {
    refresh();
    const t = setInterval(refresh, 5000);
    return () => clearInterval(t);
  }, [refresh]);
  if (error) return html`<p class="error">${error}</p>`;
  if (!alerts) return html`<p class="muted">Loading…</p>`;
  const active = alerts.filter((a) => a.active);
  const past = alerts.filter((a) => !a.active).sort((a, b) => b.last_seen_ms - a.last_seen_ms);
  return html`<h2>Active (${active.length})</h2>
    ${active.length === 0 ? html`<p class="muted" data-testid="no-active-alerts">No active alert.</p>` : null}
    <div class="stack">${active.map((a) => html`<${AlertCard} key=${a.id} alert=${a} onChanged=${refresh} />`)}</div>
    <h2 class="spaced">Past (${past.length})</h2>
    ${past.length === 0 ? html`<p class="muted">None.</p>` : null}
    <div class="stack">${past.map((a) => html`<${AlertCard} key=${a.id} alert=${a} onChanged=${refresh} />`)}</div>`;
}
