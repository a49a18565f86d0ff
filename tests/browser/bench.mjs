#!/usr/bin/env node
// The dashboard's first load in headless Chromium (Debian's /usr/bin/chromium,
// puppeteer-core over the DevTools protocol): page weight and time to the
// first live value. `cargo bench -p hearth --bench dashboard` starts the
// bridge with the server-room twin and runs this script; by hand:
//
//   HEARTH_URL=http://127.0.0.1:8099 HEARTH_TOKEN=<token> node bench.mjs [--runs 5]
//
// Each run is a fresh browser context (empty cache, empty storage) with the
// cache disabled, and the token already stored (localStorage `hearth.token`
// set before the page's scripts run, as after a sign-in). Measured:
// - page weight: the sum of `encodedDataLength` of every HTTP response
//   (`Network.loadingFinished`: bytes on the wire, headers included, gzip as
//   served) from navigation until the first live value is shown and the
//   network has been quiet for 500 ms; the decoded size beside it;
// - WebSocket bytes over the same span (frames' payloads, both ways);
// - time to first live value: from navigation start (performance.timeOrigin)
//   to the moment the server-room temperature's state element first holds a
//   number (a MutationObserver in the page notes performance.now()).
// Prints one JSON line per run and a summary line {"summary": ...}.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = process.env;
const URL_ = (env.HEARTH_URL || '').replace(/\/+$/, '');
const TOKEN = env.HEARTH_TOKEN || '';
const CHROMIUM = env.CHROMIUM || '/usr/bin/chromium';
const argRuns = process.argv.indexOf('--runs');
const RUNS = Number(argRuns > 0 ? process.argv[argRuns + 1] : env.HEARTH_BENCH_RUNS || 5);
const ENTITY = env.HEARTH_BENCH_ENTITY || 'sensor.server_room_temperature';
const WAIT = 30000;

if (!URL_ || !TOKEN) {
  console.error('usage: HEARTH_URL=http://host:port HEARTH_TOKEN=<access token> node bench.mjs [--runs N]');
  process.exit(2);
}
setTimeout(() => {
  console.error('bench.mjs timed out');
  process.exit(1);
}, 60000 + RUNS * 40000).unref();

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function oneRun(browser, n) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });

  const requests = new Map(); // requestId → {url, type, encoding, encoded, decoded, status}
  let lastNetwork = Date.now();
  let wsBytes = 0;
  cdp.on('Network.requestWillBeSent', (e) => {
    lastNetwork = Date.now();
    requests.set(e.requestId, { url: e.request.url, type: e.type, encoded: 0, decoded: 0 });
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = requests.get(e.requestId);
    if (!r) return;
    const h = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v]));
    r.status = e.response.status;
    r.encoding = h['content-encoding'] || 'identity';
    r.fromCache = e.response.fromDiskCache || e.response.fromServiceWorker || false;
  });
  cdp.on('Network.dataReceived', (e) => {
    const r = requests.get(e.requestId);
    if (r) r.decoded += e.dataLength;
  });
  cdp.on('Network.loadingFinished', (e) => {
    lastNetwork = Date.now();
    const r = requests.get(e.requestId);
    if (r) r.encoded = e.encodedDataLength;
  });
  cdp.on('Network.webSocketFrameReceived', (e) => {
    wsBytes += Buffer.byteLength(e.response.payloadData || '');
  });
  cdp.on('Network.webSocketFrameSent', (e) => {
    wsBytes += Buffer.byteLength(e.response.payloadData || '');
  });

  await page.evaluateOnNewDocument(
    (token, entity) => {
      localStorage.setItem('hearth.token', token);
      const sel = `[data-testid="state-${entity}"]`;
      const seen = () => {
        const e = document.querySelector(sel);
        if (e && /\d/.test(e.textContent) && window.__firstLive == null) {
          window.__firstLive = performance.now();
          window.__firstLiveText = e.textContent.trim();
        }
      };
      new MutationObserver(seen).observe(document, { childList: true, subtree: true, characterData: true });
    },
    TOKEN,
    ENTITY,
  );
  await page.goto(`${URL_}/#/devices`, { waitUntil: 'load', timeout: WAIT });
  await page.waitForFunction(() => window.__firstLive != null, { timeout: WAIT, polling: 50 });
  // Whatever the page still fetches after the value (a lazily loaded page module).
  const quietSince = Date.now() + WAIT;
  while (Date.now() - lastNetwork < 500 && Date.now() < quietSince) await new Promise((r) => setTimeout(r, 100));
  const timing = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return {
      first_live_ms: window.__firstLive,
      shown: window.__firstLiveText,
      dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
      load_ms: nav ? nav.loadEventEnd : null,
    };
  });
  const http = [...requests.values()].filter((r) => /^https?:/.test(r.url));
  const run = {
    run: n,
    first_live_ms: Math.round(timing.first_live_ms),
    shown: timing.shown,
    dom_content_loaded_ms: Math.round(timing.dom_content_loaded_ms),
    load_ms: Math.round(timing.load_ms),
    requests: http.length,
    bytes_encoded: http.reduce((a, r) => a + r.encoded, 0),
    bytes_decoded: http.reduce((a, r) => a + r.decoded, 0),
    not_gzip: http.filter((r) => r.encoding !== 'gzip' && r.decoded > 1024).map((r) => r.url),
    ws_bytes: wsBytes,
    console_errors: errors,
  };
  const files = http
    .map((r) => ({ url: r.url.replace(URL_, ''), status: r.status, encoding: r.encoding, encoded: r.encoded, decoded: r.decoded }))
    .sort((a, b) => b.encoded - a.encoded);
  await ctx.close();
  return { run, files };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-chromium-'));
let browser;
let failed = false;
try {
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
    protocolTimeout: 60000,
    timeout: 30000,
  });
  out({ chromium: await browser.version(), url: URL_, runs: RUNS });
  const runs = [];
  for (let n = 1; n <= RUNS; n++) {
    const { run, files } = await oneRun(browser, n);
    if (n === 1) out({ files });
    out(run);
    runs.push(run);
    if (run.console_errors.length || run.not_gzip.length) failed = true;
  }
  const pick = (k) => runs.map((r) => r[k]);
  const range = (k) => ({ min: Math.min(...pick(k)), median: median(pick(k)), max: Math.max(...pick(k)) });
  out({
    summary: {
      runs: runs.length,
      bytes_encoded: range('bytes_encoded'),
      bytes_decoded: range('bytes_decoded'),
      requests: range('requests'),
      ws_bytes: range('ws_bytes'),
      first_live_ms: range('first_live_ms'),
      dom_content_loaded_ms: range('dom_content_loaded_ms'),
      load_ms: range('load_ms'),
    },
  });
} catch (e) {
  console.error(String((e && e.stack) || e));
  failed = true;
} finally {
  if (browser) await browser.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
