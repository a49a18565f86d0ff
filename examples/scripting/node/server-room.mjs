#!/usr/bin/env node
// Scripting Hearth with Home Assistant's own WebSocket client library,
// home-assistant-js-websocket, unchanged: the same calls a Home Assistant
// frontend or add-on makes against HA work against Hearth.
//
//   HEARTH_TOKEN=<secret> node server-room.mjs             # watch the room, set the AC's target once
//   HEARTH_TOKEN=<secret> node server-room.mjs --check     # self-test: one JSON line, exit 0/1
//
// Environment:
//   HEARTH_URL     the bridge's HTTP address (default http://127.0.0.1:8099)
//   HEARTH_TOKEN   a long-lived access token (`hearth token create --name me`)
//   HEARTH_SENSOR  temperature sensor (default sensor.server_room_temperature)
//   HEARTH_CLIMATE climate entity (default climate.server_room_ac)
// Options:
//   --target C     target temperature to set (°C; default: 22, or 21 if the
//                  AC is already at 22)
//   --timeout S    --check gives up after S seconds (default 20)
//   --check        connect, get_states, subscribe_entities, set the target,
//                  wait until the climate entity shows it, print one JSON line

import {
  callService,
  createConnection,
  createLongLivedTokenAuth,
  ERR_CANNOT_CONNECT,
  ERR_INVALID_AUTH,
  getStates,
  subscribeEntities,
} from "home-assistant-js-websocket";

// Node 20 has no global WebSocket; the library uses whatever is there.
if (typeof globalThis.WebSocket === "undefined") {
  globalThis.WebSocket = (await import("ws")).WebSocket;
}

const SENSOR = process.env.HEARTH_SENSOR || "sensor.server_room_temperature";
const CLIMATE = process.env.HEARTH_CLIMATE || "climate.server_room_ac";

function usage(message) {
  console.error(`server-room.mjs: ${message}`);
  console.error(
    "usage: HEARTH_TOKEN=<token> [HEARTH_URL=http://127.0.0.1:8099] node server-room.mjs [--check] [--target C] [--timeout S]",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { check: false, target: undefined, timeoutS: 20 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      const n = Number(v);
      if (!Number.isFinite(n)) usage(`${flag} expects a number, got \`${v}\``);
      return n;
    };
    switch (flag) {
      case "--check":
        opts.check = true;
        break;
      case "--target":
        opts.target = value();
        break;
      case "--timeout":
        opts.timeoutS = value();
        break;
      case "-h":
      case "--help":
        usage("help");
        break;
      default:
        usage(`unknown argument \`${argv[i]}\``);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const url = (process.env.HEARTH_URL || "http://127.0.0.1:8099").replace(/\/+$/, "");
const token = process.env.HEARTH_TOKEN;
if (!token) {
  usage(
    "HEARTH_TOKEN is not set; create one with `cargo run -- token create --name script --data-dir hearth-data`",
  );
}
if (!/^https?:\/\//.test(url)) {
  usage(`HEARTH_URL must start with http:// or https:// (got \`${url}\`)`);
}

function fail(message) {
  console.error(`server-room.mjs: ${message}`);
  process.exit(1);
}

async function connect() {
  const auth = createLongLivedTokenAuth(url, token);
  try {
    return await createConnection({ auth });
  } catch (err) {
    if (err === ERR_INVALID_AUTH) {
      fail(`${url} refused the token (auth_invalid): create a new one with \`hearth token create\``);
    }
    if (err === ERR_CANNOT_CONNECT) {
      fail(`cannot connect to ${auth.wsUrl}: is the bridge running (\`cargo run -- demo\`)?`);
    }
    fail(`connecting to ${auth.wsUrl} failed: ${describe(err)}`);
  }
}

/** The library rejects with HA's `{code, message}` error objects. */
function describe(err) {
  if (err && typeof err === "object" && "message" in err) {
    return err.code ? `${err.code}: ${err.message}` : String(err.message);
  }
  return String(err);
}

function sameNumber(a, b) {
  return typeof a === "number" && Math.abs(a - b) < 1e-9;
}

/**
 * One `subscribe_entities` for the whole run; `until(test)` resolves with
 * the first value other than undefined that `test` returns for the
 * entities as the library keeps them (the initial `a` message, then `c`
 * diffs applied).
 */
function watchEntities(conn) {
  let current;
  const waiters = new Set();
  const offer = () => {
    if (current === undefined) return;
    for (const w of waiters) {
      const v = w.test(current);
      if (v !== undefined) {
        waiters.delete(w);
        w.resolve(v);
      }
    }
  };
  const unsubscribe = subscribeEntities(conn, (entities) => {
    current = entities;
    offer();
  });
  return {
    unsubscribe,
    until: (test) =>
      new Promise((resolve) => {
        waiters.add({ test, resolve });
        offer();
      }),
  };
}

async function check() {
  let step = "connect";
  const timer = setTimeout(
    () => fail(`--check timed out after ${opts.timeoutS} s (last step: ${step})`),
    opts.timeoutS * 1000,
  );
  const conn = await connect();

  step = "get_states";
  const states = await getStates(conn);
  console.log(`connected to ${url} (ha_version ${conn.haVersion}); get_states: ${states.length} entities`);

  step = `subscribe_entities: waiting for ${SENSOR}`;
  const entities = watchEntities(conn);
  const sensor = await entities.until((e) => e[SENSOR]);
  console.log(`${SENSOR} = ${sensor.state} ${sensor.attributes.unit_of_measurement ?? ""}`.trimEnd());

  step = `subscribe_entities: waiting for ${CLIMATE}`;
  const climate = await entities.until((e) => e[CLIMATE]);
  const before = climate.attributes.temperature;
  const target = opts.target ?? (sameNumber(before, 22) ? 21 : 22);
  const { min_temp: min, max_temp: max } = climate.attributes;
  if ((typeof min === "number" && target < min) || (typeof max === "number" && target > max)) {
    fail(`--target ${target} is outside ${CLIMATE}'s range ${min}–${max} °C (the bridge would clamp it)`);
  }

  // Watch before calling: the change may arrive before the call's result,
  // and the first state with the new target is the one the call caused.
  const seenPromise = entities.until((e) => {
    const c = e[CLIMATE];
    return c && sameNumber(c.attributes.temperature, target) ? c : undefined;
  });

  step = `call_service climate.set_temperature ${target}`;
  let result;
  try {
    result = await callService(conn, "climate", "set_temperature", { temperature: target }, { entity_id: CLIMATE });
  } catch (err) {
    fail(`climate.set_temperature was refused: ${describe(err)}`);
  }
  console.log(`climate.set_temperature ${target} °C on ${CLIMATE}: ok (was ${before})`);

  step = `subscribe_entities: waiting for ${CLIMATE} temperature == ${target}`;
  const seen = await seenPromise;
  clearTimeout(timer);
  console.log(
    JSON.stringify({
      ha_version: conn.haVersion,
      states: states.length,
      temperature_entity: SENSOR,
      temperature: sensor.state,
      unit: sensor.attributes.unit_of_measurement ?? null,
      climate_entity: CLIMATE,
      target_before: before ?? null,
      target_seen: seen.attributes.temperature,
      hvac_mode: seen.state,
      call_context: result?.context?.id ?? null,
      state_context: seen.context?.id ?? null,
    }),
  );
  conn.close();
  process.exit(0);
}

async function demo() {
  const conn = await connect();
  const states = await getStates(conn);
  console.log(`connected to ${url} (ha_version ${conn.haVersion}); ${states.length} entities`);
  conn.addEventListener("disconnected", () => console.log("connection lost; reconnecting…"));
  conn.addEventListener("ready", () => console.log("connected"));
  conn.addEventListener("reconnect-error", () => fail("the token was refused on reconnect"));

  let lastTemp;
  let lastClimate;
  let targetSent = false;
  subscribeEntities(conn, (entities) => {
    const sensor = entities[SENSOR];
    if (sensor && sensor.state !== lastTemp) {
      lastTemp = sensor.state;
      const unit = sensor.attributes.unit_of_measurement ?? "";
      console.log(`${new Date().toISOString()}  room ${sensor.state} ${unit}`.trimEnd());
    }
    const climate = entities[CLIMATE];
    if (climate) {
      const a = climate.attributes;
      const line = `AC ${climate.state}, ${a.hvac_action ?? "?"}, target ${a.temperature} °C`;
      if (line !== lastClimate) {
        lastClimate = line;
        console.log(`${new Date().toISOString()}  ${line}`);
      }
      if (!targetSent) {
        targetSent = true;
        const target = opts.target ?? (sameNumber(a.temperature, 22) ? 21 : 22);
        console.log(`setting ${CLIMATE} to ${target} °C`);
        callService(conn, "climate", "set_temperature", { temperature: target }, { entity_id: CLIMATE }).then(
          () => console.log(`climate.set_temperature ${target} °C: ok`),
          (err) => console.error(`climate.set_temperature ${target} °C failed: ${describe(err)}`),
        );
      }
    }
  });
  console.log("watching the server room; Ctrl-C to stop");
  process.on("SIGINT", () => {
    conn.close();
    process.exit(0);
  });
}

if (opts.check) {
  await check();
} else {
  await demo();
}
