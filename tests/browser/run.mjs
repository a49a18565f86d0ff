#!/usr/bin/env node
// Hearth's dashboard in a real headless Chromium (Debian's /usr/bin/chromium,
// driven over the DevTools protocol by puppeteer-core).
//
// bridge/tests/browser.rs starts the bridge with the server-room twin, makes
// an access token and runs this script with
//
//   HEARTH_URL=http://127.0.0.1:<port> HEARTH_TOKEN=<token> \
//   HEARTH_SHOTS=target/browser-shots HEARTH_CHECKS=stdin node run.mjs
//
// Protocol (HEARTH_CHECKS=stdin): every stdout line is one JSON object.
//   {"check": <name>, ...}  the test checks the bridge or the twin (the
//                           store, the AC, the plugin list) and answers one
//                           stdin line {"ok": true} or {"ok": false, "why": ...};
//   {"step": <name>, "ok": bool, "ms": n, ...}  one scenario's outcome;
//   {"result": {...}}       the last line: every scenario, console errors,
//                           failed requests, screenshots.
// Without HEARTH_CHECKS the checks are not made (a manual run against
// `hearth demo`); the result says so.
//
// Exit status: 0 when every scenario passed, 1 otherwise, 2 on a usage error.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const env = process.env;
const URL_ = (env.HEARTH_URL || '').replace(/\/+$/, '');
const TOKEN = env.HEARTH_TOKEN || '';
const SHOTS = path.resolve(env.HEARTH_SHOTS || 'target/browser-shots');
const CHROMIUM = env.CHROMIUM || '/usr/bin/chromium';
const CHECKS = env.HEARTH_CHECKS === 'stdin';
/** Every wait on the page is bounded by this (ms). */
const WAIT = Number(env.HEARTH_WAIT_MS || 20000);
/** How long the test may take to answer a check (ms). */
const CHECK_WAIT = Number(env.HEARTH_CHECK_WAIT_MS || 60000);

const SENSOR = 'sensor.server_room_temperature';
const CLIMATE = 'climate.server_room_ac';
const AC_SWITCH = 'switch.server_room_ac_power';
const TARGET = Number(env.HEARTH_TARGET || 22);
/** A plugin component to upload on the Controllers page (the thermostat's). */
const UPLOAD_WASM = env.HEARTH_UPLOAD_WASM || '';
const SWAP_WAIT = 60000;
const STRATEGY = 'custom-strategy';
const PAGES = ['devices', 'energy', 'weather', 'controllers', 'alerts'];
/** A selector each page shows once it has its data (none: a short settle). */
const READY = {
  devices: `entity-${SENSOR}`,
  energy: 'energy-chart',
  controllers: 'plugin-thermostat',
  weather: 'weather-card',
};
const VIEWPORTS = {
  desktop: { width: 1280, height: 800, deviceScaleFactor: 1 },
  phone: { width: 390, height: 844, deviceScaleFactor: 1, isMobile: true, hasTouch: true },
};

if (!URL_ || !TOKEN) {
  console.error('usage: HEARTH_URL=http://host:port HEARTH_TOKEN=<access token> node run.mjs');
  process.exit(2);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const tid = (id) => `[data-testid="${id}"]`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the test's answers, one line each on stdin ----
const answers = [];
let waiting = null;
if (CHECKS) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(line);
    } else answers.push(line);
  });
}

/** Asks the test to check something on the bridge's side; throws with its reason. */
async function check(name, data = {}) {
  if (!CHECKS) return { ok: true, unchecked: true };
  out({ check: name, ...data });
  const line = answers.length
    ? answers.shift()
    : await new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiting = null;
          reject(new Error(`no answer from the test to check ${name} within ${CHECK_WAIT} ms`));
        }, CHECK_WAIT);
        waiting = (l) => {
          clearTimeout(t);
          resolve(l);
        };
      });
  const answer = JSON.parse(line);
  if (!answer.ok) throw new Error(`${name}: ${answer.why || 'refused by the test'}`);
  return answer;
}

// ---- what the browser reports on every page ----
/** Which page the errors are charged to. */
let phase = 'start';
const consoleErrors = [];
const failedRequests = [];
/** Phases whose errors are expected (the wrong token on purpose). */
const EXPECTED_ERRORS = new Set(['wrong-token']);

function watch(page) {
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'assert') {
      const loc = msg.location();
      consoleErrors.push({ phase, text: msg.text(), at: loc && loc.url ? `${loc.url}:${loc.lineNumber}` : '' });
    }
  });
  page.on('pageerror', (err) => consoleErrors.push({ phase, text: `uncaught: ${err.message || err}` }));
  page.on('requestfailed', (req) =>
    failedRequests.push({ phase, url: req.url(), why: (req.failure() || {}).errorText || 'failed' }),
  );
  page.on('response', (res) => {
    if (res.status() >= 400) failedRequests.push({ phase, url: res.url(), why: `HTTP ${res.status()}` });
  });
}

// ---- page helpers ----
async function textOf(page, id) {
  return page.$eval(tid(id), (e) => e.textContent.trim());
}

/** The first number in a text ("24.3 °C" → 24.3), or null. */
function numberIn(text) {
  const m = /-?\d+(?:[.,]\d+)?/.exec(text || '');
  return m ? Number(m[0].replace(',', '.')) : null;
}

/** Clears an input (a Preact-controlled one too) and types `value`. */
async function fill(page, id, value) {
  const el = await page.waitForSelector(tid(id), { visible: true, timeout: WAIT });
  await el.click({ clickCount: 3 });
  await page.keyboard.press('Backspace');
  await el.type(String(value));
  return el;
}

/** Selects the option of a <select> whose value or label contains `want`. */
async function choose(page, id, want) {
  const el = await page.waitForSelector(tid(id), { visible: true, timeout: WAIT });
  const value = await el.evaluate((s, want) => {
    const o = [...s.options].find((o) => o.value === want) ||
      [...s.options].find((o) => o.value.includes(want) || o.textContent.includes(want));
    return o ? o.value : null;
  }, want);
  if (value == null) {
    const options = await el.evaluate((s) => [...s.options].map((o) => o.value));
    throw new Error(`${id} has no option ${want} (options: ${options.join(', ')})`);
  }
  await el.select(value);
  return value;
}

/** Opens a page by clicking its nav entry, as a user does. */
async function openByNav(page, name) {
  phase = name;
  await page.click(tid(`nav-${name}`));
  await page.waitForFunction((h) => location.hash === h, { timeout: WAIT }, `#/${name}`);
  if (READY[name]) await page.waitForSelector(tid(READY[name]), { visible: true, timeout: WAIT });
}

/** Opens a page by its route (the phone layout may fold the nav away). */
async function openByRoute(page, name) {
  phase = name;
  await page.evaluate((h) => {
    location.hash = h;
  }, `#/${name}`);
  await page.waitForFunction((h) => location.hash === h, { timeout: WAIT }, `#/${name}`);
  try {
    await page.waitForSelector(tid(`page-${name}`), { timeout: WAIT });
    if (READY[name]) await page.waitForSelector(tid(READY[name]), { visible: true, timeout: WAIT });
  } catch (e) {
    // What the page shows instead (sign-in form, an error, "Loading…").
    const shown = await page.evaluate(() => document.body.innerText.replace(/\s+/g, ' ').slice(0, 300)).catch(() => '?');
    throw new Error(`${e.message}; the page shows: ${shown}`);
  }
  await sleep(600); // charts and lists drawn, fonts settled
}

/** Relative luminance (0…1) of the page's background. */
async function background(page) {
  return page.evaluate(() => {
    const pick = (el) => getComputedStyle(el).backgroundColor;
    let c = pick(document.body);
    if (/rgba\(.*,\s*0\)$/.test(c) || c === 'transparent') c = pick(document.documentElement);
    const [r, g, b] = (c.match(/\d+(\.\d+)?/g) || ['255', '255', '255']).slice(0, 3).map(Number);
    const lin = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return { css: c, luminance: 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b) };
  });
}

// ---- the scenarios ----
const results = [];
const shots = [];

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const detail = (await fn()) || {};
    const r = { step: name, ok: true, ms: Date.now() - t0, ...detail };
    results.push(r);
    out(r);
    return true;
  } catch (e) {
    const r = { step: name, ok: false, ms: Date.now() - t0, error: String((e && e.message) || e) };
    results.push(r);
    out(r);
    return false;
  }
}

async function signIn(page) {
  phase = 'sign-in';
  // The page's CSP allows connections to its own origin only
  // (`connect-src 'self'`): the WebSocket must connect under it, with no
  // violation reported (here or, as Chromium also logs them, as console errors).
  await page.evaluateOnNewDocument(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`),
    );
  });
  const first = await page.goto(`${URL_}/`, { waitUntil: 'load', timeout: WAIT });
  const connectSrc = /connect-src[^;]*/.exec(first.headers()['content-security-policy'] || '')?.[0];
  if (connectSrc !== "connect-src 'self'") throw new Error(`the page's CSP has ${connectSrc}, not connect-src 'self'`);
  await page.waitForSelector(tid('token-input'), { visible: true, timeout: WAIT });
  // A wrong token does not get in.
  phase = 'wrong-token';
  await fill(page, 'token-input', 'not-a-valid-token');
  await page.click(tid('sign-in'));
  await page.waitForSelector(tid('sign-in-error'), { visible: true, timeout: WAIT });
  const refused = await textOf(page, 'sign-in-error');
  if (await page.$('[data-testid^="entity-"]')) throw new Error('a wrong token showed the devices');
  await page.waitForSelector(tid('token-input'), { visible: true, timeout: WAIT });
  // The right one does.
  phase = 'sign-in';
  await fill(page, 'token-input', TOKEN);
  await page.click(tid('sign-in'));
  await page.waitForFunction(
    (sel) => /\d/.test(document.querySelector(sel)?.textContent || ''),
    { timeout: WAIT },
    tid(`state-${SENSOR}`),
  );
  const stored = await page.evaluate(() => localStorage.getItem('hearth.token'));
  if (stored !== TOKEN) throw new Error(`localStorage hearth.token is ${JSON.stringify(stored)}, not the token`);
  const href = page.url();
  if (href.includes(TOKEN)) throw new Error(`the token is in the URL: ${href}`);
  const violations = await page.evaluate(() => window.__cspViolations);
  if (violations.length) throw new Error(`CSP violations: ${violations.join('; ')}`);
  // Pages load on demand: the Devices page fetched no chart code.
  const fetched = await page.evaluate(() =>
    performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname),
  );
  const charts = fetched.filter((p) => /uplot|chart\.js|pages\/(energy|alerts)\.js/i.test(p));
  if (charts.length) throw new Error(`the Devices page fetched ${charts.join(', ')}`);
  if (!fetched.some((p) => p.endsWith('/pages/devices.js'))) throw new Error(`pages/devices.js not among ${fetched.join(', ')}`);
  return { url: href, refused, connect_src: connectSrc, requests: fetched.length, shown: await textOf(page, `state-${SENSOR}`) };
}

async function liveTemperature(page) {
  phase = 'devices';
  const sel = tid(`state-${SENSOR}`);
  await page.evaluate(() => {
    window.__hearthSamePage = true;
  });
  const first = await textOf(page, `state-${SENSOR}`);
  await page.waitForFunction(
    (sel, first) => {
      const t = document.querySelector(sel)?.textContent.trim() || '';
      return t !== first && /\d/.test(t);
    },
    { timeout: WAIT, polling: 'mutation' },
    sel,
    first,
  );
  const shown = await textOf(page, `state-${SENSOR}`);
  const same = await page.evaluate(() => window.__hearthSamePage === true);
  if (!same) throw new Error('the page reloaded');
  const decimals = (/[.,](\d+)/.exec(shown) || ['', ''])[1].length;
  await check('live_value', { entity_id: SENSOR, shown, value: numberIn(shown), decimals });
  return { first, shown };
}

async function climateTarget(page) {
  phase = 'devices';
  await fill(page, `target-${CLIMATE}`, TARGET);
  await page.click(tid(`set-target-${CLIMATE}`));
  await check('climate_target', { entity_id: CLIMATE, target: TARGET });
  return { target: TARGET };
}

async function acSwitchOff(page) {
  phase = 'devices';
  // The thermostat runs the AC (the room starts above its target).
  await check('ac_running');
  const sel = tid(`state-${AC_SWITCH}`);
  await page.waitForFunction((sel) => /\bon\b/i.test(document.querySelector(sel)?.textContent || ''), {
    timeout: WAIT,
  }, sel);
  await page.click(tid(`toggle-${AC_SWITCH}`));
  await check('ac_switched_off', { entity_id: AC_SWITCH });
  return {};
}

async function hvacOff(page) {
  phase = 'devices';
  const value = await choose(page, `hvac-mode-${CLIMATE}`, 'off');
  await check('hvac_off', { entity_id: CLIMATE, mode: value });
  await page.waitForFunction(
    (sel) => /\boff\b/i.test(document.querySelector(sel)?.textContent || ''),
    { timeout: WAIT },
    tid(`state-${CLIMATE}`),
  );
  return { shown: await textOf(page, `state-${CLIMATE}`) };
}

async function swapStrategy(page) {
  await openByNav(page, 'controllers');
  const value = await choose(page, 'swap-wasm-thermostat', STRATEGY);
  await page.click(tid('swap-thermostat'));
  // The row shows the code the instance now runs, and that it runs (a
  // component's first compile takes seconds in a debug build).
  await page.waitForFunction(
    (code, status, want) =>
      document.querySelector(code)?.textContent.trim() === want &&
      document.querySelector(status)?.textContent.trim() === 'running',
    { timeout: SWAP_WAIT },
    tid('wasm-thermostat'),
    tid('status-thermostat'),
    value,
  );
  await check('swapped', { name: 'thermostat', wasm: value });
  const said = await page.$(tid('result-thermostat')).then((e) => e && e.evaluate((e) => e.textContent.trim()));
  return { wasm: value, shown: await textOf(page, 'wasm-thermostat'), said };
}

/** Swaps the thermostat back to its own code, uploaded as a .wasm file. */
async function swapUpload(page) {
  if (!UPLOAD_WASM) throw new Error('HEARTH_UPLOAD_WASM is not set');
  phase = 'controllers';
  await choose(page, 'swap-wasm-thermostat', 'upload');
  const input = await page.waitForSelector(tid('swap-file-thermostat'), { timeout: WAIT });
  await input.uploadFile(UPLOAD_WASM);
  await page.click(tid('swap-thermostat'));
  await page.waitForFunction(
    (code, status) =>
      /\.wasm$/.test(document.querySelector(code)?.textContent.trim() || '') &&
      document.querySelector(status)?.textContent.trim() === 'running',
    { timeout: SWAP_WAIT },
    tid('wasm-thermostat'),
    tid('status-thermostat'),
  );
  const wasm = await textOf(page, 'wasm-thermostat');
  await check('uploaded', { name: 'thermostat', wasm, file: UPLOAD_WASM });
  return { wasm };
}

/** What the energy chart drew: canvases, pixels in a series colour, the empty note. */
async function chartDrawn(page) {
  return page.$eval(tid('energy-chart'), (box) => {
    const css = getComputedStyle(document.documentElement);
    const hex = (s) => {
      const probe = document.createElement('span');
      probe.style.color = s;
      document.body.appendChild(probe);
      const c = getComputedStyle(probe).color;
      probe.remove();
      return (c.match(/\d+/g) || []).slice(0, 3).map(Number);
    };
    const colours = [];
    for (let i = 1; i <= 6; i++) {
      const v = css.getPropertyValue(`--series-${i}`).trim();
      if (v) colours.push(hex(v));
    }
    const canvases = [...box.querySelectorAll('canvas')];
    let drawn = 0;
    let series = 0;
    let top = Infinity;
    let bottom = -Infinity;
    for (const c of canvases) {
      const ctx = c.getContext('2d');
      if (!ctx || !c.width || !c.height) continue;
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] === 0) continue;
        drawn++;
        if (px[i + 3] < 200) continue;
        const near = colours.some(
          ([r, g, b]) => Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 24,
        );
        if (near) {
          series++;
          const y = Math.floor(i / 4 / c.width);
          top = Math.min(top, y);
          bottom = Math.max(bottom, y);
        }
      }
    }
    return {
      canvases: canvases.length,
      drawn,
      series_pixels: series,
      // A series at zero everywhere is a flat line: data means it rises.
      series_height: series ? bottom - top + 1 : 0,
      empty_note: !!box.querySelector('.chart-empty'),
      legend: [...box.querySelectorAll('.u-legend .u-series .u-label')].map((e) => e.textContent.trim()),
    };
  });
}

/** The chart legend's time at the plot's left edge (the first hour), by hovering there. */
async function firstHourShown(page) {
  const over = await page.$(`${tid('energy-chart')} .u-over`);
  const box = await over.boundingBox();
  await page.mouse.move(box.x + 2, box.y + box.height / 2);
  const text = await page.$eval(`${tid('energy-chart')} .u-legend .u-series:first-child .u-value`, (e) =>
    e.textContent.trim(),
  );
  await page.mouse.move(0, 0);
  return text;
}

async function energyChart(page) {
  // The browser in a zone far from the bridge's (Europe/Paris): the hours
  // must still be the bridge's day, midnight first, not the browser's.
  const browserZone = 'America/New_York';
  await page.emulateTimezone(browserZone);
  try {
    await openByNav(page, 'energy');
    await page.waitForSelector(`${tid('energy-chart')} canvas`, { timeout: WAIT });
    // Statistics come from the recorder's hourly rows: poll until the chart has some.
    const deadline = Date.now() + WAIT;
    let seen;
    for (;;) {
      seen = await chartDrawn(page);
      if (seen.canvases > 0 && seen.series_pixels > 20 && seen.series_height > 10 && !seen.empty_note) break;
      if (Date.now() > deadline) throw new Error(`the energy chart has no data: ${JSON.stringify(seen)}`);
      await sleep(500);
    }
    const zone = await textOf(page, 'energy-chart-zone');
    const firstHour = await firstHourShown(page);
    if (!/\b12:00\s*am\b/i.test(firstHour))
      throw new Error(`the day's first hour shows as ${JSON.stringify(firstHour)} (${zone}), not 12:00am in the bridge's zone`);
    return { ...seen, browser_zone: browserZone, zone, first_hour: firstHour };
  } finally {
    await page.emulateTimezone();
  }
}

async function weatherPage(page) {
  await openByNav(page, 'weather');
  await page.waitForFunction(
    (sel) => /\d/.test(document.querySelector(sel)?.textContent || ''),
    { timeout: WAIT },
    tid('outdoor-temperature'),
  );
  await page.waitForSelector(tid('weather-icon'), { visible: true, timeout: WAIT });
  await page.waitForSelector(tid('tariff-period'), { visible: true, timeout: WAIT });
  const shown = await textOf(page, 'outdoor-temperature');
  const condition = await page.$eval(tid('weather-icon'), (e) => e.getAttribute('data-condition'));
  const period = await textOf(page, 'tariff-period');
  const decimals = (/[.,](\d+)/.exec(shown) || ['', ''])[1].length;
  await check('weather', { shown, value: numberIn(shown), decimals, period });
  return { shown, condition, period };
}

async function screenshots(browser) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const overflow = [];
  const themes = {};
  for (const theme of ['light', 'dark']) {
    for (const [vname, viewport] of Object.entries(VIEWPORTS)) {
      // The sign-in page: a fresh context, no token stored.
      const ctx = await browser.createBrowserContext();
      const page = await ctx.newPage();
      watch(page);
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: theme }]);
      await page.setViewport(viewport);
      phase = 'sign-in';
      await page.goto(`${URL_}/`, { waitUntil: 'load', timeout: WAIT });
      await page.waitForSelector(tid('token-input'), { visible: true, timeout: WAIT });
      await sleep(300);
      const file = path.join(SHOTS, `signin-${theme}-${vname}.png`);
      await page.screenshot({ path: file, fullPage: true });
      shots.push(file);
      // Signed in: the token stored as the page itself stores it.
      await page.evaluate((t) => localStorage.setItem('hearth.token', t), TOKEN);
      await page.reload({ waitUntil: 'load', timeout: WAIT });
      for (const name of PAGES) {
        await openByRoute(page, name);
        const file = path.join(SHOTS, `${name}-${theme}-${vname}.png`);
        await page.screenshot({ path: file, fullPage: true });
        shots.push(file);
        const bg = await background(page);
        (themes[theme] ||= []).push(bg.luminance);
        if (vname === 'phone') {
          const w = await page.evaluate(() => [document.documentElement.scrollWidth, innerWidth]);
          if (w[0] > w[1] + 1) overflow.push(`${name}: ${w[0]} px wide on a ${w[1]} px screen`);
        }
      }
      await ctx.close();
    }
  }
  return { overflow, themes };
}

async function themeToggle(page) {
  phase = 'devices';
  await openByRoute(page, 'devices');
  const before = await background(page);
  await page.click(tid('theme-toggle'));
  await page
    .waitForFunction((css) => getComputedStyle(document.body).backgroundColor !== css, { timeout: 3000 }, before.css)
    .catch(() => {});
  const after = await background(page);
  if (Math.abs(after.luminance - before.luminance) < 0.3)
    throw new Error(`theme-toggle did not switch the theme: background ${before.css} → ${after.css}`);
  return { before: before.css, after: after.css };
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-chromium-'));
  let browser;
  const launched = Date.now();
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      // Root here (CI): Chromium's sandbox needs user namespaces it cannot have.
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
      protocolTimeout: 60000,
      timeout: 30000,
    });
    out({ log: `chromium ${await browser.version()} up in ${Date.now() - launched} ms` });
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    watch(page);
    await page.setViewport(VIEWPORTS.desktop);
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);

    if (await step('sign_in', () => signIn(page))) {
      await step('live_temperature', () => liveTemperature(page));
      await step('climate_target', () => climateTarget(page));
      await step('ac_switch_off', () => acSwitchOff(page));
      await step('hvac_off', () => hvacOff(page));
      await step('swap_custom_strategy', () => swapStrategy(page));
      await step('swap_uploaded_wasm', () => swapUpload(page));
      await step('energy_chart', () => energyChart(page));
      await step('weather_tariff', () => weatherPage(page));
      await step('theme_toggle', () => themeToggle(page));
    }
    await ctx.close();
    await step('screenshots', async () => {
      const r = await screenshots(browser);
      const light = Math.min(...(r.themes.light || [1]));
      const dark = Math.max(...(r.themes.dark || [0]));
      if (!(light > 0.5 && dark < 0.2))
        throw new Error(`light pages' background luminance ≥ ${light.toFixed(2)}, dark ≤ ${dark.toFixed(2)}: the dark theme does not apply`);
      if (r.overflow.length) throw new Error(`wider than a phone: ${r.overflow.join('; ')}`);
      return { count: shots.length, dir: SHOTS };
    });
    const charged = consoleErrors.filter((e) => !EXPECTED_ERRORS.has(e.phase));
    const failed = failedRequests.filter((e) => !EXPECTED_ERRORS.has(e.phase));
    await step('no_console_errors', async () => {
      if (charged.length) throw new Error(`${charged.length} console errors: ${JSON.stringify(charged.slice(0, 5))}`);
    });
    await step('no_failed_requests', async () => {
      if (failed.length) throw new Error(`${failed.length} failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
    });
  } catch (e) {
    results.push({ step: 'browser', ok: false, error: String((e && e.stack) || e) });
  } finally {
    if (browser) await browser.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  const ok = results.length > 0 && results.every((r) => r.ok);
  out({
    result: {
      ok,
      checked: CHECKS,
      steps: results,
      console_errors: consoleErrors,
      failed_requests: failedRequests,
      shots,
    },
  });
  process.exit(ok ? 0 : 1);
}

// The whole run is bounded too.
setTimeout(() => {
  out({ result: { ok: false, steps: results, error: 'run.mjs timed out' } });
  process.exit(1);
}, Number(env.HEARTH_RUN_TIMEOUT_MS || 240000)).unref();

main();
