// The dashboard's one connection to the bridge: Hearth's HA-compatible
// WebSocket API through home-assistant-js-websocket, the same client HA's
// own frontend uses. Everything a page shows or does goes through it, so a
// script with a token can do the same.
//
// app.js calls `connect(token)` after sign-in and renders the pages inside
// `<HassProvider conn=...>`; a page calls `useHass()`:
//   { conn,                       // the library's Connection
//     connected,                  // false while it reconnects
//     states,                     // {entity_id: HA state object}, live (subscribe_entities)
//     call(domain, service, data, target),   // call_service → Promise
//     ws(msg),                    // any command → Promise of its result
//     registries: { devices, entities, hearthDevices },
//                                 // config/device_registry/list, config/entity_registry/list,
//                                 // hearth/devices/list (with `available`)
//     refreshRegistries(),        // reload the three lists
//     now() }                     // the bridge's clock in ms (from the latest state change:
//                                 // the demo's clock runs faster than the wall clock)
import {
  createConnection,
  createLongLivedTokenAuth,
  subscribeEntities,
  callService,
  ERR_INVALID_AUTH,
  ERR_CANNOT_CONNECT,
} from '../vendor/home-assistant-js-websocket/index.js';
import {
  html,
  createContext,
  useContext,
  useState,
  useEffect,
  useMemo,
  useCallback,
} from '../vendor/preact-htm.js';

const HassContext = createContext(null);

// The dashboard's base URL: where index.html was served from, so it works
// behind a path prefix (Home Assistant ingress) as well as at `/`.
export function baseUrl() {
  const path = location.pathname.replace(/index\.html$/, '').replace(/\/+$/, '');
  return location.origin + path;
}

// Opens the connection; rejects with a readable message (bad token, bridge
// unreachable).
export async function connect(token) {
  const auth = createLongLivedTokenAuth(baseUrl(), token);
  try {
    return await createConnection({ auth });
  } catch (err) {
    const e = new Error(
      err === ERR_INVALID_AUTH
        ? 'The bridge refused this token.'
        : err === ERR_CANNOT_CONNECT
          ? 'Cannot reach the bridge.'
          : `Connection failed (${err}).`,
    );
    e.invalidAuth = err === ERR_INVALID_AUTH;
    throw e;
  }
}

// Latest `last_updated` among the states, in ms: the bridge's "now".
function latestChange(states) {
  let latest = 0;
  for (const s of Object.values(states)) {
    const t = Date.parse(s.last_updated);
    if (t > latest) latest = t;
  }
  return latest;
}

export function HassProvider({ conn, children }) {
  const [states, setStates] = useState({});
  const [connected, setConnected] = useState(true);
  const [registries, setRegistries] = useState({ devices: [], entities: [], hearthDevices: [] });

  const refreshRegistries = useCallback(async () => {
    const [devices, entities, hearthDevices] = await Promise.all([
      conn.sendMessagePromise({ type: 'config/device_registry/list' }),
      conn.sendMessagePromise({ type: 'config/entity_registry/list' }),
      conn.sendMessagePromise({ type: 'hearth/devices/list' }),
    ]);
    setRegistries({ devices, entities, hearthDevices });
  }, [conn]);

  useEffect(() => {
    const unsubscribe = subscribeEntities(conn, (s) => setStates(s));
    const onReady = () => {
      setConnected(true);
      refreshRegistries().catch(() => {});
    };
    const onLost = () => setConnected(false);
    conn.addEventListener('ready', onReady);
    conn.addEventListener('disconnected', onLost);
    refreshRegistries().catch(() => {});
    // Devices appear as drivers find them (adoption, plugins): a slow poll
    // keeps the lists current without an event the API does not send.
    const timer = setInterval(() => refreshRegistries().catch(() => {}), 30000);
    return () => {
      clearInterval(timer);
      conn.removeEventListener('ready', onReady);
      conn.removeEventListener('disconnected', onLost);
      unsubscribe();
    };
  }, [conn, refreshRegistries]);

  const value = useMemo(
    () => ({
      conn,
      connected,
      states,
      registries,
      refreshRegistries,
      call: (domain, service, data, target) => callService(conn, domain, service, data, target),
      ws: (msg) => conn.sendMessagePromise(msg),
      now: () => latestChange(states) || Date.now(),
    }),
    [conn, connected, states, registries, refreshRegistries],
  );
  return html`<${HassContext.Provider} value=${value}>${children}<//>`;
}

export function useHass() {
  const hass = useContext(HassContext);
  if (!hass) throw new Error('useHass() outside <HassProvider>');
  return hass;
}

// The error of a failed command as text ({code, message} from the API).
export function errorText(err) {
  if (err && typeof err === 'object' && 'message' in err) return `${err.message}`;
  return `${err}`;
}
