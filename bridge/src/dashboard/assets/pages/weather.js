// Weather and tariff, from live states only (bridge/src/feeds):
// - weather (`[weather]`, Open-Meteo): sensor.weather_outdoor_temperature
//   (°C, forecast for now) and sensor.weather_solar_irradiance (W/m², the
//   current hour's forecast). Open-Meteo's answer as Hearth reads it has no
//   condition code, so the icon is drawn from the irradiance: night below
//   5 W/m², cloudy below 100, partly sunny below 300, sunny above (a low
//   winter sun reads as cloudy). An HA `weather.*` entity, when one exists,
//   gives its condition instead. Without the feed, any outdoor temperature
//   sensor (an entity id with `outdoor` and device class temperature).
// - tariff (`[tariff]`, feeds/tariff_driver.rs): sensor.tariff_price (€/kWh,
//   attributes period, colour), sensor.tariff_period (HP/HC),
//   sensor.tempo_today / sensor.tempo_tomorrow (blue, white, red, unknown;
//   attribute date), sensor.tariff_next_change (RFC 3339, attribute price).
// Icons are inline SVG drawn in currentColor: no external assets.
import { html } from '../vendor/preact-htm.js';
import { useHass } from '../lib/hass.js';

const TEMPERATURE = 'sensor.weather_outdoor_temperature';
const IRRADIANCE = 'sensor.weather_solar_irradiance';
const WEATHER_PROBLEM = 'binary_sensor.weather_problem';
const PRICE = 'sensor.tariff_price';
const PERIOD = 'sensor.tariff_period';
const TEMPO_TODAY = 'sensor.tempo_today';
const TEMPO_TOMORROW = 'sensor.tempo_tomorrow';
const NEXT_CHANGE = 'sensor.tariff_next_change';
const TARIFF_PROBLEM = 'binary_sensor.tariff_problem';

const num = (s) => {
  if (!s) return null;
  const v = Number.parseFloat(s.state);
  return Number.isFinite(v) ? v : null;
};

// --- icons ------------------------------------------------------------

const sun = (cx = 32, cy = 32, r = 11) => html`<g class="wx-sun">
  <circle cx=${cx} cy=${cy} r=${r} fill="currentColor" />
  ${[0, 45, 90, 135, 180, 225, 270, 315].map((a) => {
    const rad = (a * Math.PI) / 180;
    const x1 = cx + Math.cos(rad) * (r + 5);
    const y1 = cy + Math.sin(rad) * (r + 5);
    const x2 = cx + Math.cos(rad) * (r + 11);
    const y2 = cy + Math.sin(rad) * (r + 11);
    return html`<line x1=${x1} y1=${y1} x2=${x2} y2=${y2} stroke="currentColor" stroke-width="3" stroke-linecap="round" />`;
  })}
</g>`;
const cloud = (dx = 0, dy = 0) => html`<path class="wx-cloud" transform=${`translate(${dx} ${dy})`}
  d="M18 50 h30 a10 10 0 0 0 0 -20 a14 14 0 0 0 -27 -3 a10 10 0 0 0 -3 23 z"
  fill="currentColor" stroke-width="2" />`;
const moon = html`<path class="wx-moon" d="M40 12 a20 20 0 1 0 12 32 a16 16 0 1 1 -12 -32 z" fill="currentColor" />`;
const drops = html`<g class="wx-rain">
  ${[22, 32, 42].map((x) => html`<line x1=${x} y1="54" x2=${x - 3} y2="61" stroke="currentColor" stroke-width="3" stroke-linecap="round" />`)}
</g>`;
const flakes = html`<g class="wx-snow">
  ${[22, 32, 42].map((x) => html`<circle cx=${x} cy="58" r="2.5" fill="currentColor" />`)}
</g>`;

// Condition → [label, svg content].
const ICONS = {
  sunny: ['Sunny', sun()],
  'clear-night': ['Clear night', moon],
  partlycloudy: ['Partly sunny', html`${sun(24, 24, 9)}${cloud(6, 6)}`],
  cloudy: ['Cloudy', cloud(0, -4)],
  rainy: ['Rain', html`${cloud(0, -6)}${drops}`],
  pouring: ['Heavy rain', html`${cloud(0, -6)}${drops}`],
  snowy: ['Snow', html`${cloud(0, -6)}${flakes}`],
  night: ['Night', moon],
};

export function WeatherIcon({ condition, size = 72 }) {
  const [label, body] = ICONS[condition] || ICONS.cloudy;
  return html`<svg class=${`wx-icon wx-${condition}`} viewBox="0 0 64 64" width=${size} height=${size}
    role="img" aria-label=${label} data-testid="weather-icon" data-condition=${condition}>
    <title>${label}</title>${body}</svg>`;
}

// The condition from an HA weather entity, else from the irradiance.
export function condition(states) {
  const weather = Object.values(states).find((s) => s.entity_id.startsWith('weather.'));
  if (weather && ICONS[weather.state]) return weather.state;
  const g = num(states[IRRADIANCE]);
  if (g == null) return null;
  if (g < 5) return 'night';
  if (g < 100) return 'cloudy';
  if (g < 300) return 'partlycloudy';
  return 'sunny';
}

function outdoorTemperature(states) {
  if (num(states[TEMPERATURE]) != null) return states[TEMPERATURE];
  return Object.values(states).find(
    (s) =>
      s.entity_id.startsWith('sensor.') &&
      s.entity_id.includes('outdoor') &&
      s.attributes?.device_class === 'temperature' &&
      num(s) != null,
  );
}

function Weather({ states }) {
  const t = outdoorTemperature(states);
  const cond = condition(states);
  const g = num(states[IRRADIANCE]);
  const problem = states[WEATHER_PROBLEM]?.state === 'on' ? states[WEATHER_PROBLEM] : null;
  return html`<div class="card weather" data-testid="weather-card">
    <div class="card-head"><h2>Outdoors</h2>
      ${problem ? html`<span class="badge bad right" title=${problem.attributes?.error || ''}>feed failing</span>` : null}
    </div>
    ${t || cond
      ? html`<div class="weather-now">
          ${cond ? html`<${WeatherIcon} condition=${cond} />` : null}
          <div>
            <div class="big-number" data-testid="outdoor-temperature">
              ${t ? `${num(t).toFixed(1)} ${t.attributes?.unit_of_measurement || '°C'}` : '–'}
            </div>
            <div class="muted">${cond ? ICONS[cond][0] : ''}${g != null ? ` · ${Math.round(g)} W/m²` : ''}</div>
            ${t ? html`<div class="muted small">${t.attributes?.friendly_name || t.entity_id}</div>` : null}
          </div>
        </div>`
      : html`<p class="muted">No weather: add <code>[weather]</code> to the config.</p>`}
  </div>`;
}

const COLOURS = { blue: 'Blue', white: 'White', red: 'Red', unknown: 'Not known yet' };

function Tempo({ label, s, testid }) {
  if (!s) return null;
  const colour = COLOURS[s.state] ? s.state : 'unknown';
  return html`<div class="tempo-day">
    <span class=${`tempo-swatch tempo-${colour}`} data-testid=${testid} data-colour=${colour}></span>
    <div><div>${label}: <strong>${COLOURS[colour]}</strong></div>
      ${s.attributes?.date ? html`<div class="muted small">${s.attributes.date}</div>` : null}</div>
  </div>`;
}

// "Tue 06:00 (Europe/Paris)" in the tariff's zone when its entity names one
// (an IANA `timezone` attribute), else in the browser's, said "local": the
// tariff's hours are the bridge's, which may not be the browser's.
function whenText(at, timeZone) {
  const opts = { weekday: 'short', hour: '2-digit', minute: '2-digit' };
  if (timeZone) {
    try {
      return `${new Intl.DateTimeFormat(undefined, { ...opts, timeZone }).format(at)} (${timeZone})`;
    } catch {
      // not a zone this browser knows: local time below
    }
  }
  return `${new Intl.DateTimeFormat(undefined, opts).format(at)} (local)`;
}

function Tariff({ states }) {
  const price = states[PRICE];
  const period = states[PERIOD]?.state || price?.attributes?.period;
  const next = states[NEXT_CHANGE];
  const nextAt = next && !Number.isNaN(Date.parse(next.state)) ? new Date(next.state) : null;
  const problem = states[TARIFF_PROBLEM]?.state === 'on' ? states[TARIFF_PROBLEM] : null;
  if (!price) {
    return html`<div class="card" data-testid="tariff-card"><h2>Tariff</h2>
      <p class="muted">No tariff: add <code>[tariff]</code> to the config.</p></div>`;
  }
  const p = num(price);
  return html`<div class="card" data-testid="tariff-card">
    <div class="card-head"><h2>Tariff</h2>
      ${problem ? html`<span class="badge bad right" title=${problem.attributes?.error || ''}>feed failing</span>` : null}
    </div>
    <div class="tariff-now">
      ${period
        ? html`<span class=${`period-badge period-${period === 'HC' ? 'hc' : 'hp'}`} data-testid="tariff-period">${period}</span>`
        : null}
      <div>
        <div class="big-number" data-testid="tariff-price">${p != null ? `${p.toFixed(4)} €/kWh` : 'unknown'}</div>
        <div class="muted">${period === 'HC' ? 'Off-peak hours' : period === 'HP' ? 'Peak hours' : ''}</div>
      </div>
    </div>
    <${Tempo} label="Today" s=${states[TEMPO_TODAY]} testid="tempo-today" />
    <${Tempo} label="Tomorrow" s=${states[TEMPO_TOMORROW]} testid="tempo-tomorrow" />
    ${nextAt
      ? html`<p class="muted small" data-testid="tariff-next">
          Next change ${whenText(nextAt, next.attributes?.timezone)}
          ${next.attributes?.price != null ? ` → ${Number(next.attributes.price).toFixed(4)} €/kWh` : ''}</p>`
      : null}
  </div>`;
}

export default function Page() {
  const { states } = useHass();
  return html`<div class="cards weather-page">
    <${Weather} states=${states} />
    <${Tariff} states=${states} />
  </div>`;
}
