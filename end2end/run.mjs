// Runs the Playwright suite against a fresh release server: a free loopback port,
// an empty data directory, then a one-line summary of the results.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const dataDir = mkdtempSync(join(tmpdir(), 'ampere-e2e-'));

const env = {
  ...process.env,
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1',
  E2E_BASE_URL: `http://127.0.0.1:${port}`,
  AMPERE_BIN: join(root, 'target/release/ampere'),
  AMPERE_LISTEN: `127.0.0.1:${port}`,
  AMPERE_DATA_DIR: dataDir,
  LEPTOS_SITE_ROOT: join(root, 'target/site'),
};
const run = spawnSync(
  join(root, 'node_modules/.bin/playwright'),
  ['test', '-c', join(here, 'playwright.config.mjs'), ...process.argv.slice(2)],
  { cwd: here, env, stdio: 'inherit' },
);
rmSync(dataDir, { recursive: true, force: true });

let passed = 0;
let failed = 0;
try {
  const { stats } = JSON.parse(readFileSync(join(here, 'artifacts/results.json'), 'utf8'));
  passed = stats.expected + stats.flaky;
  failed = stats.unexpected;
} catch {
  failed = 1;
}
console.log(`end2end: ${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
