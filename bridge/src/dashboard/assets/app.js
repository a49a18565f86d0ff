// The dashboard's shell: sign-in, the connection, the header with its
// navigation and theme toggle, and the hash router (#/devices, #/energy,
// #/weather, #/controllers, #/alerts).
//
// Sign-in takes a long-lived access token (`hearth token create`, or the
// one `hearth demo` prints); it is kept in localStorage `hearth.token` until
// "Sign out". A token in the URL is not accepted (it would reach logs and
// history). The theme follows prefers-color-scheme until the toggle picks
// one, kept in localStorage `hearth.theme`.
import { html, render, useState, useEffect } from './vendor/preact-htm.js';
import { connect, HassProvider, useHass } from './lib/hass.js';
import { ERR_INVALID_AUTH } from './vendor/home-assistant-js-websocket/index.js';

const TOKEN_KEY = 'hearth.token';
const THEME_KEY = 'hearth.theme';

// Pages are loaded when first opened (a dynamic import each): the Devices
// page does not fetch the Energy and Alerts pages' chart code (lib/chart.js
// and uPlot, most of the dashboard's bytes). The specifiers are literal so
// dashboard/mod.rs's unit test can check each names a served file.
const PAGES = [
  { id: 'devices', title: 'Devices', load: () => import('./pages/devices.js') },
  { id: 'energy', title: 'Energy', load: () => import('./pages/energy.js') },
  { id: 'weather', title: 'Weather & tariff', load: () => import('./pages/weather.js') },
  { id: 'controllers', title: 'Controllers', load: () => import('./pages/controllers.js') },
  { id: 'alerts', title: 'Alerts', load: () => import('./pages/alerts.js') },
];

// Page id → the promise of its module (one fetch per page per visit), and
// the components already loaded (shown at once when the page is reopened).
const loading = new Map();
const ready = new Map();
function loadPage(id) {
  if (!loading.has(id)) {
    const page = PAGES.find((p) => p.id === id);
    const promise = page.load().then((m) => {
      ready.set(id, m.default);
      return m.default;
    });
    // A failed fetch (bridge restarting) is tried again on the next visit.
    promise.catch(() => loading.delete(id));
    loading.set(id, promise);
  }
  return loading.get(id);
}

// The page's component, null while it loads, or the error that stopped it.
function usePage(id) {
  const [failed, setFailed] = useState(null);
  const [, setLoaded] = useState(null);
  useEffect(() => {
    // Always waits for the promise, even for a page already loaded: the
    // module may have arrived between this render (no page yet) and the
    // effect, and only a state change shows it.
    let live = true;
    loadPage(id).then(
      () => live && setLoaded(id),
      (e) => live && setFailed({ id, error: e }),
    );
    return () => {
      live = false;
    };
  }, [id]);
  return { Page: ready.get(id) || null, error: failed?.id === id ? failed.error : null };
}

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: sign-in lasts as long as the tab
  }
}

// --- theme -----------------------------------------------------------------

const dark = window.matchMedia('(prefers-color-scheme: dark)');

function effectiveTheme() {
  const chosen = storage()?.getItem(THEME_KEY);
  if (chosen === 'light' || chosen === 'dark') return chosen;
  return dark.matches ? 'dark' : 'light';
}

function applyTheme() {
  document.documentElement.dataset.theme = effectiveTheme();
  window.dispatchEvent(new Event('hearth-theme'));
}

function ThemeToggle() {
  const [theme, setTheme] = useState(effectiveTheme());
  useEffect(() => {
    const follow = () => {
      applyTheme();
      setTheme(effectiveTheme());
    };
    dark.addEventListener('change', follow);
    return () => dark.removeEventListener('change', follow);
  }, []);
  const toggle = () => {
    const next = theme === 'dark' ? 'light' : 'dark';
    storage()?.setItem(THEME_KEY, next);
    applyTheme();
    setTheme(next);
  };
  const label = theme === 'dark' ? 'Light mode' : 'Dark mode';
  return html`<button class="icon-button" data-testid="theme-toggle" onClick=${toggle}
    title=${label} aria-label=${label}>${theme === 'dark' ? '☀' : '☾'}</button>`;
}

// --- routing ---------------------------------------------------------------

function currentRoute() {
  const id = location.hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return PAGES.some((p) => p.id === id) ? id : 'devices';
}

function useRoute() {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

// --- sign-in ---------------------------------------------------------------

function SignIn({ onToken, error, busy }) {
  const [token, setToken] = useState('');
  const submit = (e) => {
    e.preventDefault();
    if (token.trim()) onToken(token.trim());
  };
  return html`<main class="sign-in">
    <form class="card" onSubmit=${submit}>
      <h1>Hearth</h1>
      <p class="muted">Sign in with a long-lived access token
        (<code>hearth token create --name NAME</code> prints one).</p>
      <label for="token">Access token</label>
      <input id="token" type="password" autocomplete="current-password" spellcheck="false"
        data-testid="token-input" value=${token} onInput=${(e) => setToken(e.target.value)} />
      ${error ? html`<p class="error" role="alert" data-testid="sign-in-error">${error}</p>` : null}
      <button type="submit" class="primary" data-testid="sign-in" disabled=${busy}>
        ${busy ? 'Connecting…' : 'Sign in'}</button>
    </form>
  </main>`;
}

// --- shell -----------------------------------------------------------------

function ConnectionBadge() {
  const { connected } = useHass();
  return connected
    ? null
    : html`<span class="badge warn" data-testid="reconnecting">reconnecting…</span>`;
}

function Shell({ onSignOut }) {
  const route = useRoute();
  const [menuOpen, setMenuOpen] = useState(false);
  const { title } = PAGES.find((p) => p.id === route);
  const { Page, error } = usePage(route);
  useEffect(() => {
    document.title = `${title} · Hearth`;
    setMenuOpen(false);
  }, [route]);
  return html`<header class="top">
      <a class="brand" href="#/devices">Hearth</a>
      <button class="icon-button menu-button" aria-label="Menu" aria-expanded=${menuOpen}
        data-testid="menu-toggle" onClick=${() => setMenuOpen(!menuOpen)}>☰</button>
      <nav class=${menuOpen ? 'open' : ''}>
        ${PAGES.map(
          (p) => html`<a href=${`#/${p.id}`} data-testid=${`nav-${p.id}`}
            class=${p.id === route ? 'active' : ''}
            aria-current=${p.id === route ? 'page' : undefined}>${p.title}</a>`,
        )}
      </nav>
      <div class="tools">
        <${ConnectionBadge} />
        <${ThemeToggle} />
        <button class="link" data-testid="sign-out" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    <main class="page" data-testid=${`page-${route}`}>
      <h1>${title}</h1>
      ${Page
        ? html`<${Page} />`
        : error
          ? html`<p class="error" role="alert" data-testid="page-load-error">
              This page could not be loaded (${String(error.message || error)}).
              <button class="link" onClick=${() => location.reload()}>Reload</button></p>`
          : html`<p class="muted" data-testid="page-loading">Loading…</p>`}
    </main>`;
}

function App() {
  const [conn, setConn] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const signIn = async (token, remember) => {
    setBusy(true);
    setError('');
    try {
      const c = await connect(token);
      if (remember) storage()?.setItem(TOKEN_KEY, token);
      setConn(c);
    } catch (e) {
      // A stored token the bridge refuses is forgotten (not one it could
      // not check because it was unreachable).
      if (!remember && e.invalidAuth) storage()?.removeItem(TOKEN_KEY);
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    const saved = storage()?.getItem(TOKEN_KEY);
    if (saved) signIn(saved, false);
  }, []);

  const signOut = () => {
    storage()?.removeItem(TOKEN_KEY);
    conn?.close();
    setConn(null);
  };

  // A token revoked while signed in: the library's reconnect fails with
  // ERR_INVALID_AUTH; back to the sign-in form with a reason.
  useEffect(() => {
    if (!conn) return undefined;
    const onReconnectError = (_c, err) => {
      if (err !== ERR_INVALID_AUTH) return;
      storage()?.removeItem(TOKEN_KEY);
      conn.close();
      setConn(null);
      setError('The bridge no longer accepts this token (revoked?). Sign in again.');
    };
    conn.addEventListener('reconnect-error', onReconnectError);
    return () => conn.removeEventListener('reconnect-error', onReconnectError);
  }, [conn]);

  if (!conn) return html`<${SignIn} onToken=${(t) => signIn(t, true)} error=${error} busy=${busy} />`;
  return html`<${HassProvider} conn=${conn}><${Shell} onSignOut=${signOut} /><//>`;
}

applyTheme();
// The first page's module is fetched while the connection is made.
loadPage(currentRoute()).catch(() => {});
render(html`<${App} />`, document.getElementById('app'));
