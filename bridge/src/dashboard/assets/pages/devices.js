// Devices: every device of the device registry (config/device_registry/list)
// with its availability (hearth/devices/list) and its entities
// (config/entity_registry/list), each with its live state
// (subscribe_entities) and a control for what can be controlled:
//   switch, light, fan, input_boolean  → toggle-<entity_id> (turn_on / turn_off)
//   climate   → hvac-mode-<entity_id> (set_hvac_mode), target-<entity_id> + set-target-<entity_id>
//               (set_temperature, within min_temp..max_temp)
//   valve     → position-<entity_id> + set-position-<entity_id> (set_valve_position), or open/close
//   cover     → position-<entity_id> + set-position-<entity_id> (set_cover_position), open/close/stop
//   number    → number-<entity_id> + set-number-<entity_id> (set_value)
//   select    → select-<entity_id> (select_option)
//   button    → press-<entity_id> (press)
// Entities without a device (e.g. states posted over REST) are listed last.
import { html, useState } from '../vendor/preact-htm.js';
import { useHass, errorText } from '../lib/hass.js';

const TOGGLES = new Set(['switch', 'light', 'fan', 'input_boolean', 'siren', 'humidifier']);

function domainOf(id) {
  return id.split('.', 1)[0];
}

function friendly(state, entry) {
  return state?.attributes?.friendly_name || entry?.original_name || state?.entity_id || entry?.entity_id;
}

// "5 min ago", "in 2 h", or null beyond a week (the date says enough).
function relative(ms, now = Date.now()) {
  const s = Math.round((ms - now) / 1000);
  const abs = Math.abs(s);
  const [n, unit] =
    abs < 60 ? [s, 'second'] : abs < 3600 ? [Math.round(s / 60), 'minute']
      : abs < 86400 ? [Math.round(s / 3600), 'hour'] : [Math.round(s / 86400), 'day'];
  if (abs >= 7 * 86400) return null;
  try {
    return new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' }).format(n, unit);
  } catch {
    return null;
  }
}

// An RFC 3339 date-time with its offset, as HA's timestamp states are.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

// A timestamp state (device class `timestamp`, an event entity's last
// firing, or any state that is an RFC 3339 date-time with its offset, e.g.
// sensor.tariff_next_change, which has no device class) as a local
// date-time and how long ago or until; null if it is not one.
function timestampText(state) {
  const ms = Date.parse(state.state);
  if (!RFC3339.test(state.state) || Number.isNaN(ms)) return null;
  const when = new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const ago = relative(ms);
  return ago ? `${when} (${ago})` : when;
}

function shownState(state) {
  if (!state) return 'unknown';
  const a = state.attributes || {};
  const when = timestampText(state);
  if (when) return when;
  if (domainOf(state.entity_id) === 'climate') {
    const parts = [state.state];
    if (a.current_temperature != null) parts.push(`${a.current_temperature} °C`);
    if (a.temperature != null) parts.push(`→ ${a.temperature} °C`);
    return parts.join(' · ');
  }
  const unit = a.unit_of_measurement ? ` ${a.unit_of_measurement}` : '';
  const pos = a.current_position != null ? ` (${a.current_position} %)` : '';
  return `${state.state}${unit}${pos}`;
}

// Runs one service call, with a busy flag and the error shown in the row.
function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const run = async (promise) => {
    setBusy(true);
    setError('');
    try {
      await promise();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

function Toggle({ state, action }) {
  const { call } = useHass();
  const id = state.entity_id;
  const on = state.state === 'on';
  return html`<button class=${on ? 'primary' : ''} data-testid=${`toggle-${id}`} aria-pressed=${on}
    disabled=${action.busy || state.state === 'unavailable'}
    onClick=${() => action.run(() => call(domainOf(id), on ? 'turn_off' : 'turn_on', {}, { entity_id: id }))}>
    ${on ? 'Turn off' : 'Turn on'}</button>`;
}

// A number field with its own draft until "Set" is pressed.
function NumberSet({ id, prefix, value, min, max, step, unit, disabled, onSet }) {
  const [draft, setDraft] = useState(null);
  const shown = draft ?? (value ?? '');
  const set = () => {
    const v = Number(shown);
    if (shown === '' || Number.isNaN(v)) return;
    onSet(v).then(() => setDraft(null));
  };
  return html`<span class="controls">
    <input type="number" data-testid=${`${prefix}-${id}`} aria-label=${prefix} value=${shown}
      min=${min} max=${max} step=${step ?? 'any'} disabled=${disabled}
      onInput=${(e) => setDraft(e.target.value)}
      onKeyDown=${(e) => e.key === 'Enter' && set()} />
    ${unit ? html`<span class="muted">${unit}</span>` : null}
    <button data-testid=${`set-${prefix}-${id}`} disabled=${disabled} onClick=${set}>Set</button>
  </span>`;
}

function Climate({ state, action }) {
  const { call } = useHass();
  const id = state.entity_id;
  const a = state.attributes || {};
  const off = state.state === 'unavailable';
  const target = { entity_id: id };
  return html`<span class="controls">
    <select data-testid=${`hvac-mode-${id}`} aria-label="HVAC mode" value=${state.state}
      disabled=${action.busy || off}
      onChange=${(e) => action.run(() => call('climate', 'set_hvac_mode', { hvac_mode: e.target.value }, target))}>
      ${(a.hvac_modes || []).map((m) => html`<option value=${m} selected=${m === state.state}>${m}</option>`)}
    </select>
    <${NumberSet} id=${id} prefix="target" value=${a.temperature} min=${a.min_temp} max=${a.max_temp}
      step=${a.target_temp_step ?? 0.5} unit="°C" disabled=${action.busy || off}
      onSet=${(v) => action.run(() => call('climate', 'set_temperature', { temperature: v }, target))} />
  </span>`;
}

function Position({ state, action }) {
  const { call } = useHass();
  const id = state.entity_id;
  const domain = domainOf(id);
  const a = state.attributes || {};
  const off = state.state === 'unavailable';
  const target = { entity_id: id };
  const service = domain === 'valve' ? 'set_valve_position' : 'set_cover_position';
  const simple = (name, label) =>
    html`<button data-testid=${`${name}-${id}`} disabled=${action.busy || off}
      onClick=${() => action.run(() => call(domain, `${name}_${domain}`, {}, target))}>${label}</button>`;
  return html`<span class="controls">
    ${a.current_position != null
      ? html`<${NumberSet} id=${id} prefix="position" value=${a.current_position} min="0" max="100" step="1"
          unit="%" disabled=${action.busy || off}
          onSet=${(v) => action.run(() => call(domain, service, { position: v }, target))} />`
      : null}
    ${simple('open', 'Open')} ${simple('close', 'Close')} ${domain === 'cover' ? simple('stop', 'Stop') : null}
  </span>`;
}

function Control({ state }) {
  const { call } = useHass();
  const action = useAction();
  const id = state.entity_id;
  const domain = domainOf(id);
  const a = state.attributes || {};
  const off = state.state === 'unavailable';
  let control = null;
  if (TOGGLES.has(domain)) control = html`<${Toggle} state=${state} action=${action} />`;
  else if (domain === 'climate') control = html`<${Climate} state=${state} action=${action} />`;
  else if (domain === 'valve' || domain === 'cover') control = html`<${Position} state=${state} action=${action} />`;
  else if (domain === 'number' || domain === 'input_number')
    control = html`<${NumberSet} id=${id} prefix="number" value=${state.state} min=${a.min} max=${a.max}
      step=${a.step} unit=${a.unit_of_measurement} disabled=${action.busy || off}
      onSet=${(v) => action.run(() => call(domain, 'set_value', { value: v }, { entity_id: id }))} />`;
  else if (domain === 'select' || domain === 'input_select')
    control = html`<select data-testid=${`select-${id}`} aria-label="option" value=${state.state}
      disabled=${action.busy || off}
      onChange=${(e) => action.run(() => call(domain, 'select_option', { option: e.target.value }, { entity_id: id }))}>
      ${(a.options || []).map((o) => html`<option value=${o} selected=${o === state.state}>${o}</option>`)}
    </select>`;
  else if (domain === 'button' || domain === 'input_button')
    control = html`<button data-testid=${`press-${id}`} disabled=${action.busy || off}
      onClick=${() => action.run(() => call(domain, 'press', {}, { entity_id: id }))}>Press</button>`;
  if (!control) return null;
  return html`${control}
    ${action.error ? html`<span class="error" role="alert" data-testid=${`error-${id}`}>${action.error}</span>` : null}`;
}

// The entity's name without its device's (HA shows "Power" under the
// device "Server room AC", not "Server room AC Power").
function shortName(name, deviceName) {
  if (deviceName && name.startsWith(`${deviceName} `) && name.length > deviceName.length + 1) {
    const rest = name.slice(deviceName.length + 1);
    return rest[0].toUpperCase() + rest.slice(1);
  }
  return name;
}

function EntityRow({ id, entry, deviceName }) {
  const { states } = useHass();
  const state = states[id];
  const unavailable = !state || state.state === 'unavailable';
  return html`<div class="entity" data-testid=${`entity-${id}`}>
    <span class="name" title=${id}>${shortName(`${friendly(state, entry)}`, deviceName)}
      ${entry?.entity_category ? html` <span class="badge muted">${entry.entity_category}</span>` : null}</span>
    <span class=${`state${unavailable ? ' unavailable' : ''}`} data-testid=${`state-${id}`}
      title=${state ? `since ${new Date(state.last_changed).toLocaleString()}` : ''}>${shownState(state)}</span>
    ${state ? html`<${Control} state=${state} />` : null}
  </div>`;
}

function byCategoryThenName(states) {
  return (a, b) => {
    const ca = a.entity_category ? 1 : 0;
    const cb = b.entity_category ? 1 : 0;
    if (ca !== cb) return ca - cb;
    return `${friendly(states[a.entity_id], a)}`.localeCompare(`${friendly(states[b.entity_id], b)}`);
  };
}

function DeviceCard({ device, available, entries }) {
  const { states } = useHass();
  const sorted = [...entries].sort(byCategoryThenName(states));
  const badge =
    available === true
      ? html`<span class="badge ok" data-testid=${`available-${device.id}`}>online</span>`
      : available === false
        ? html`<span class="badge bad" data-testid=${`available-${device.id}`}>offline</span>`
        : null;
  return html`<section class="card" data-testid=${`device-${device.id}`}>
    <div class="card-head">
      <h2>${device.name_by_user || device.name}</h2>
      <span class="right">${badge}</span>
    </div>
    <p class="muted">${[device.manufacturer, device.model, device.sw_version && `v${device.sw_version}`]
      .filter(Boolean)
      .join(' · ')}</p>
    ${sorted.length === 0 ? html`<p class="muted">No entities.</p>` : null}
    ${sorted.map(
      (e) => html`<${EntityRow} key=${e.entity_id} id=${e.entity_id} entry=${e}
        deviceName=${device.name_by_user || device.name} />`,
    )}
  </section>`;
}

export default function Page() {
  const { states, registries } = useHass();
  const [filter, setFilter] = useState('');
  const available = new Map(registries.hearthDevices.map((d) => [d.id, d.available]));
  const byDevice = new Map();
  const known = new Set();
  for (const e of registries.entities) {
    known.add(e.entity_id);
    if (!byDevice.has(e.device_id)) byDevice.set(e.device_id, []);
    byDevice.get(e.device_id).push(e);
  }
  const q = filter.trim().toLowerCase();
  const matches = (device, entries) =>
    !q ||
    `${device.name} ${device.manufacturer} ${device.model}`.toLowerCase().includes(q) ||
    entries.some((e) => `${e.entity_id} ${friendly(states[e.entity_id], e)}`.toLowerCase().includes(q));
  const devices = [...registries.devices]
    .sort((a, b) => `${a.name}`.localeCompare(`${b.name}`))
    .filter((d) => matches(d, byDevice.get(d.id) || []));
  // States with no registry entry: other sources (REST, plugins not yet listed).
  const loose = Object.keys(states)
    .filter((id) => !known.has(id))
    .filter((id) => !q || id.includes(q))
    .sort()
    .map((id) => ({ entity_id: id }));
  const loading = registries.devices.length === 0 && Object.keys(states).length === 0;
  return html`<div class="toolbar">
      <input type="search" placeholder="Filter devices and entities" aria-label="Filter"
        data-testid="device-filter" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
      <span class="muted">${devices.length} devices</span>
    </div>
    ${loading ? html`<p class="muted">Loading…</p>` : null}
    <div class="cards">
      ${devices.map(
        (d) => html`<${DeviceCard} key=${d.id} device=${d} available=${available.get(d.id)}
          entries=${byDevice.get(d.id) || []} />`,
      )}
      ${loose.length
        ? html`<section class="card" data-testid="device-none">
            <div class="card-head"><h2>Other entities</h2></div>
            ${loose.map((e) => html`<${EntityRow} key=${e.entity_id} id=${e.entity_id} entry=${e} />`)}
          </section>`
        : null}
    </div>`;
}
