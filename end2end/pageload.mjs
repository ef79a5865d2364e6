// Browser-side figures for `scripts/bench`: the size of what a browser downloads
// (the WASM bundle, its JS glue and the CSS; raw, gzip and brotli), the time
// from navigation to an interactive (hydrated) dashboard and trade page in
// headless Chromium, and, with 50 open positions, the long tasks the
// positions page runs while the price ticks 30 times.
// Usage: node end2end/pageload.mjs <server url> [runs]
import { chromium } from '@playwright/test';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [url, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 20);

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const pkg = join(root, 'target/site/pkg');
const sizes = (file) => {
  const bytes = readFileSync(join(pkg, file));
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
};
const row = (label, s) => console.log(`${label.padEnd(44)} ${kb(s.raw).padStart(10)} ${kb(s.gzip).padStart(10)} ${kb(s.brotli).padStart(10)}`);
const add = (a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip, brotli: a.brotli + b.brotli });
const zero = { raw: 0, gzip: 0, brotli: 0 };
console.log(`\n${'bundle (target/site/pkg)'.padEnd(44)} ${'raw'.padStart(10)} ${'gzip'.padStart(10)} ${'brotli'.padStart(10)}`);
const files = readdirSync(pkg).filter((f) => /\.(wasm|js|css)$/.test(f)).sort();
let all = zero;
let allWasm = zero;
for (const file of files) {
  const s = sizes(file);
  row(file, s);
  all = add(all, s);
  if (file.endsWith('.wasm')) allWasm = add(allWasm, s);
}
row('every .wasm (main and lazy chunks)', allWasm);
row('everything', all);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const name = `load${Date.now().toString(36)}`;
const setup = await browser.newContext({ baseURL: url });
const registered = await setup.request.post('/api/v1/auth/register', { data: { username: name, password: 'Pageload-pass-1' } });
if (registered.status() !== 201) throw new Error(`register: ${registered.status()}`);
await setup.request.post('/rest/v1/login', { data: { username: name, password: 'Pageload-pass-1' } });
const cookies = await setup.cookies();
await setup.close();

const headers = { 'Content-Type': 'application/json' };
const api = await browser.newContext({ baseURL: url });
await api.addCookies(cookies);
const csrf = (await (await api.request.get('/rest/v1/getalldata')).json())._csrf;
const call = async (path, data) => {
  const reply = await api.request.post(path, { headers: { ...headers, 'X-CSRF-Token': csrf }, data });
  if (!reply.ok()) throw new Error(`${path}: ${reply.status()} ${await reply.text()}`);
  return reply.json();
};
await call('/api/v1/simnet/price', { index: 100000 });

/** Cold loads of `path` (fresh context, empty cache) until `ready` is shown:
 * answers the times to a hydrated page, in ms. */
async function coldLoads(path, ready) {
  const times = [];
  const fetched = new Set();
  for (let i = 0; i < runs; i += 1) {
    const context = await browser.newContext({ baseURL: url });
    await context.addCookies(cookies);
    await context.addInitScript(() => {
      new MutationObserver((_, observer) => {
        if (document.body?.hasAttribute('data-hydrated')) {
          window.__interactive = performance.now();
          observer.disconnect();
        }
      }).observe(document, { attributes: true, subtree: true, childList: true });
    });
    const page = await context.newPage();
    page.on('response', (reply) => {
      const file = new URL(reply.url()).pathname;
      if (file.startsWith('/pkg/')) fetched.add(file.slice('/pkg/'.length));
    });
    await page.goto(path);
    await page.waitForSelector(`body[data-hydrated] ${ready}`);
    times.push(await page.evaluate(() => window.__interactive));
    await context.close();
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  // What the page downloaded from /pkg/ (the bundle, glue, style, chunks).
  row(`what ${path} fetched (${fetched.size} files)`, [...fetched].map(sizes).reduce(add, zero));
  return `p50 ${at(0.5).toFixed(0)} ms, p95 ${at(0.95).toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms`;
}

console.log(`\nnavigation to interactive dashboard, ${runs} cold loads: ${await coldLoads('/', '[data-testid="balance-total"]')}`);
console.log(`navigation to interactive trade page, ${runs} cold loads: ${await coldLoads('/trade', '[data-testid="ticket-submit"]')}`);

// 50 open positions, funded through the wallet as a trader would.
const data = await (await api.request.get('/rest/v1/getalldata')).json();
await call('/api/v1/simnet/faucet', { address: data.address, sats: 2000000 });
await call('/api/v1/simnet/mine', { blocks: 1 });
const hub = data.addressbook.find((c) => c.alias === 'hub');
await call('/rest/v1/openchannel', { remotenode: hub.nodeId, amount: 500000 });
await call('/api/v1/simnet/mine', { blocks: 6 });
const invoice = await call('/lnm/user/deposit', { amount: 200000 });
// Accounts made over the API confirm payments with their password.
await call('/rest/v1/sendinvoice', { invoiceid: invoice.paymentRequest, password: 'Pageload-pass-1' });
for (let i = 0; i < 50; i += 1) {
  await call('/lnm/positions', { type: 'm', side: i % 2 ? 's' : 'b', margin: 2000 + i, leverage: 10 });
}

const context = await browser.newContext({ baseURL: url });
await context.addCookies(cookies);
const page = await context.newPage();
await page.goto('/positions');
await page.waitForSelector('body[data-hydrated] [data-testid="open-position"]');
await page.evaluate(() => {
  window.__long = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__long.push(entry.duration);
  }).observe({ type: 'longtask' });
});
// 30 ticks, one every 300 ms; each waits for the page to show its P&L.
let shownTicks = 0;
for (let i = 1; i <= 30; i += 1) {
  const before = await page.getByTestId('total-open-pl').textContent();
  await call('/api/v1/simnet/price', { index: 100000 + (i % 2 ? 1 : -1) * 37 * i });
  await page.waitForFunction((text) => document.querySelector('[data-testid="total-open-pl"]').textContent !== text, before, { timeout: 5000 })
    .then(() => { shownTicks += 1; }, () => {});
  await page.waitForTimeout(300);
}
const long = await page.evaluate(() => window.__long);
const rows = await page.getByTestId('open-position').count();
await context.close();
await api.close();
await browser.close();
const worst = long.length ? Math.max(...long) : 0;
console.log(`positions page, ${rows} open positions, 30 ticks (${shownTicks} shown): ${long.length} long tasks, longest ${worst.toFixed(0)} ms`);
