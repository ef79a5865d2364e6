// Browser-side figures for `scripts/bench`: the size of what a browser downloads
// (the WASM bundle, its JS glue and the CSS; raw, gzip and brotli) and the time
// from navigation to an interactive (hydrated) dashboard in headless Chromium.
// Usage: node end2end/pageload.mjs <server url> [runs]
import { chromium } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [url, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 20);

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log('\nbundle            raw       gzip     brotli');
for (const file of ['ampere.wasm', 'ampere.js', 'ampere.css']) {
  const bytes = readFileSync(join(root, 'target/site/pkg', file));
  const gzip = gzipSync(bytes, { level: 9 }).length;
  const brotli = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  console.log(`${file.padEnd(14)} ${kb(bytes.length).padStart(9)} ${kb(gzip).padStart(9)} ${kb(brotli).padStart(9)}`);
}

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
