// Controllers: the plugins the bridge runs (hearth/plugins/list, polled
// every 3 s), each with its status, calls, faults, restarts, fuel and
// memory, its last fault and its log (hearth/plugins/logs); load a new one,
// swap one (hearth/plugins/swap) for a built-in (hearth/plugins/builtins)
// or an uploaded .wasm (POST api/hearth/plugins/upload, then its path), and
// unload one (two clicks).
// Test ids: plugin-<name>, status-<name>, swap-wasm-<name> (select; the
// value `upload` shows swap-file-<name>), swap-<name>, unload-<name>,
// logs-<name>; load-name, load-wasm, load-file, load-config, load.
import { html, useState, useEffect, useCallback } from '../vendor/preact-htm.js';
import { useHass, errorText, baseUrl } from '../lib/hass.js';

const UPLOAD = 'upload';

function fmt(n) {
  if (n == null) return '–';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return `${n}`;
}

const STATUS_CLASS = { running: 'ok', restarting: 'warn', faulted: 'bad', stopped: 'muted' };

// Sends a .wasm to the bridge; resolves to the path to load or swap.
async function upload(conn, name, file) {
  const resp = await fetch(`${baseUrl()}/api/hearth/plugins/upload?name=${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${conn.options.auth.accessToken}`,
      'Content-Type': 'application/wasm',
    },
    body: file,
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.message || `upload refused (HTTP ${resp.status})`);
  return body.wasm;
}

// A select of built-ins plus "upload a .wasm", and the file input it shows.
function WasmChoice({ prefix, builtins, current, choice, setChoice, setFile }) {
  return html`<select data-testid=${prefix ? `swap-wasm-${prefix}` : 'load-wasm'} aria-label="plugin code"
      value=${choice} onChange=${(e) => setChoice(e.target.value)}>
      ${builtins.map(
        (b) => html`<option value=${`builtin:${b}`} selected=${choice === `builtin:${b}`}>
          ${b}${current === `builtin:${b}` ? ' (running)' : ''}</option>`,
      )}
      <option value=${UPLOAD} selected=${choice === UPLOAD}>upload a .wasm…</option>
    </select>
    ${choice === UPLOAD
      ? html`<input type="file" accept=".wasm,application/wasm" aria-label="plugin .wasm file"
          data-testid=${prefix ? `swap-file-${prefix}` : 'load-file'}
          onChange=${(e) => setFile(e.target.files[0] || null)} />`
      : null}`;
}

function Logs({ name }) {
  const { ws } = useHass();
  const [lines, setLines] = useState(null);
  const [error, setError] = useState('');
  const load = useCallback(() => {
    ws({ type: 'hearth/plugins/logs', name, lines: 100 })
      .then((l) => {
        setLines(l);
        setError('');
      })
      .catch((e) => setError(errorText(e)));
  }, [name]);
  useEffect(() => {
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, [load]);
  if (error) return html`<p class="error">${error}</p>`;
  if (!lines) return html`<p class="muted">Loading…</p>`;
  const text = lines
    .map((l) => `${new Date(l.time_ms).toLocaleTimeString()} ${l.level.padEnd(5)} ${l.source}: ${l.message}`)
    .join('\n');
  return html`<pre class="logs" data-testid=${`logs-${name}`}>${text || 'No log lines yet.'}</pre>`;
}

function PluginCard({ p, builtins, onChanged }) {
  const { ws, conn } = useHass();
  const [picked, setChoice] = useState('');
  // Until one is picked: the running built-in, else the first.
  const choice = picked || (p.wasm.startsWith('builtin:') ? p.wasm : `builtin:${builtins[0] || ''}`);
  const [file, setFile] = useState(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState(null);
  const [confirmUnload, setConfirmUnload] = useState(false);
  const [showLogs, setShowLogs] = useState(false);

  const act = async (what, f) => {
    setBusy(true);
    setMessage(null);
    try {
      const text = await f();
      setMessage({ ok: true, text: text || `${what}: done` });
    } catch (e) {
      setMessage({ ok: false, text: `${what}: ${errorText(e)}` });
    } finally {
      setBusy(false);
      onChanged();
    }
  };
  const swap = () =>
    act('swap', async () => {
      let wasm = choice;
      if (choice === UPLOAD) {
        if (!file) throw new Error('choose a .wasm file first');
        wasm = await upload(conn, p.name, file);
      }
      const r = await ws({ type: 'hearth/plugins/swap', name: p.name, wasm });
      return `swapped ${r.from} → ${r.to} (${r.state_carried ? 'state carried' : 'fresh state'}, ${r.prepare_ms.toFixed(0)} ms)`;
    });
  const unload = () => {
    if (!confirmUnload) {
      setConfirmUnload(true);
      return;
    }
    setConfirmUnload(false);
    act('unload', async () => {
      await ws({ type: 'hearth/plugins/unload', name: p.name });
      return `${p.name} unloaded`;
    });
  };
  const s = p.stats || {};
  return html`<section class="card" data-testid=${`plugin-${p.name}`}>
    <div class="card-head">
      <h2>${p.name}</h2>
      <span class=${`badge ${STATUS_CLASS[p.status] || 'muted'}`} data-testid=${`status-${p.name}`}>${p.status}</span>
      <span class="right muted">${p.plugin} ${p.version}</span>
    </div>
    <dl class="facts">
      <dt>Code</dt><dd data-testid=${`wasm-${p.name}`}>${p.wasm}</dd>
      <dt>Calls</dt><dd>${fmt(p.calls)} service calls · ${fmt(p.events)} events${
        p.skipped_events ? ` · ${fmt(p.skipped_events)} skipped` : ''}</dd>
      <dt>Faults</dt><dd class=${p.faults ? 'warn' : ''} data-testid=${`faults-${p.name}`}>${p.faults} faults · ${p.restarts} restarts · ${p.swaps} swaps${
        p.restart_in_s != null ? ` · restart in ${p.restart_in_s.toFixed(0)} s` : ''}</dd>
      ${p.last_fault ? html`<dt>Last fault</dt><dd class="error">${p.last_fault}</dd>` : null}
      <dt>Fuel</dt><dd>last ${fmt(s.fuel_last)} · max ${fmt(s.fuel_max)} · total ${fmt(s.fuel_total)} (limit ${fmt(p.limits?.fuel_per_call)})</dd>
      <dt>Memory</dt><dd>${fmt(s.memory_bytes)}B</dd>
      <dt>Drives</dt><dd>${p.drives.length ? p.drives.join(', ') : '–'}</dd>
    </dl>
    <div class="toolbar">
      <${WasmChoice} prefix=${p.name} builtins=${builtins} current=${p.wasm} choice=${choice}
        setChoice=${setChoice} setFile=${setFile} />
      <button class="primary" data-testid=${`swap-${p.name}`} disabled=${busy} onClick=${swap}>Swap</button>
      <button class="danger" data-testid=${`unload-${p.name}`} disabled=${busy} onClick=${unload}>
        ${confirmUnload ? 'Confirm unload' : 'Unload'}</button>
      <button class="link" data-testid=${`show-logs-${p.name}`} onClick=${() => setShowLogs(!showLogs)}>
        ${showLogs ? 'Hide log' : 'Show log'}</button>
    </div>
    ${message
      ? html`<p class=${message.ok ? 'ok' : 'error'} role="status" data-testid=${`result-${p.name}`}>${message.text}</p>`
      : null}
    ${showLogs ? html`<${Logs} name=${p.name} />` : null}
  </section>`;
}

function LoadForm({ builtins, onChanged }) {
  const { ws, conn } = useHass();
  const [name, setName] = useState('');
  const [choice, setChoice] = useState('');
  const [file, setFile] = useState(null);
  const [config, setConfig] = useState('{}');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState(null);
  const wasmChoice = choice || `builtin:${builtins[0] || ''}`;
  const load = async (e) => {
    e.preventDefault();
    setBusy(true);
    setMessage(null);
    try {
      const cfg = JSON.parse(config || '{}');
      let wasm = wasmChoice;
      if (wasm === UPLOAD) {
        if (!file) throw new Error('choose a .wasm file first');
        wasm = await upload(conn, name, file);
      }
      const st = await ws({ type: 'hearth/plugins/load', name, wasm, config: cfg });
      setMessage({ ok: true, text: `${st.name} loaded (${st.status})` });
    } catch (err) {
      setMessage({ ok: false, text: errorText(err) });
    } finally {
      setBusy(false);
      onChanged();
    }
  };
  return html`<form class="card stack" onSubmit=${load}>
    <h2>Load a plugin</h2>
    <div class="toolbar">
      <input data-testid="load-name" aria-label="instance name" placeholder="instance name" required
        pattern="[A-Za-z0-9_\\-]+" value=${name} onInput=${(e) => setName(e.target.value)} />
      <${WasmChoice} prefix="" builtins=${builtins} current="" choice=${wasmChoice}
        setChoice=${setChoice} setFile=${setFile} />
    </div>
    <label>Config (JSON)
      <textarea data-testid="load-config" rows="4" class="config" spellcheck="false" value=${config}
        onInput=${(e) => setConfig(e.target.value)}></textarea></label>
    <div><button class="primary" type="submit" data-testid="load" disabled=${busy || !name}>Load</button></div>
    ${message ? html`<p class=${message.ok ? 'ok' : 'error'} role="status" data-testid="load-result">${message.text}</p>` : null}
  </form>`;
}

export default function Page() {
  const { ws } = useHass();
  const [plugins, setPlugins] = useState(null);
  const [builtins, setBuiltins] = useState([]);
  const [error, setError] = useState('');
  const refresh = useCallback(() => {
    ws({ type: 'hearth/plugins/list' })
      .then((list) => {
        setPlugins(list);
        setError('');
      })
      .catch((e) => setError(errorText(e)));
  }, []);
  useEffect(() => {
    ws({ type: 'hearth/plugins/builtins' })
      .then(setBuiltins)
      .catch(() => setBuiltins([]));
    refresh();
    const t = setInterval(refresh, 3000);
    return () => clearInterval(t);
  }, [refresh]);
  return html`${error ? html`<p class="error">${error}</p>` : null}
    ${plugins == null ? html`<p class="muted">Loading…</p>` : null}
    ${plugins && plugins.length === 0 ? html`<p class="muted">No plugin is loaded.</p>` : null}
    <div class="cards">
      ${(plugins || []).map((p) => html`<${PluginCard} key=${p.name} p=${p} builtins=${builtins} onChanged=${refresh} />`)}
      <${LoadForm} builtins=${builtins} onChanged=${refresh} />
    </div>`;
}
