// Browser-side figures for `scripts/bench`: the size of what a browser downloads
// (the WASM bundle, its JS glue and the CSS; raw, gzip and brotli) and the time
// from navigation to an interactive (hydrated) dashboard in headless Chromium.
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
let main = zero;
let all = zero;
let allWasm = zero;
for (const file of files) {
  const s = sizes(file);
  row(file, s);
  all = add(all, s);
  if (file.endsWith('.wasm')) allWasm = add(allWasm, s);
  if (['ampere.wasm', 'ampere.js', 'ampere.css'].includes(file)) main = add(main, s);
}
row('main: ampere.wasm + .js + .css (dashboard)', main);
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

// Each run is a fresh context: an empty cache, as on a first visit.
const times = [];
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
  await page.goto('/');
  await page.waitForSelector('body[data-hydrated] [data-testid="balance-total"]');
  times.push(await page.evaluate(() => window.__interactive));
  await context.close();
}
await browser.close();
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
console.log(`\nnavigation to interactive dashboard, ${runs} cold loads: p50 ${at(0.5).toFixed(0)} ms, p95 ${at(0.95).toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms`);
