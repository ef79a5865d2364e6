// Runs the Playwright suite against a fresh release server: a free loopback port,
// an empty data directory, then a one-line summary of the results.
import { spawn, spawnSync } from 'node:child_process';
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

// A real OpenID Connect provider on loopback (npm's oidc-provider), which the
// server signs in with as "Keycloak".
const CLIENT_SECRET = 'e2e-client-secret';
const provider = spawn(
  process.execPath,
  [join(root, 'server/tests/providers/oidc.mjs'), 'ampere', CLIENT_SECRET,
    `http://127.0.0.1:${port}/api/v1/auth/keycloak/token`],
  { cwd: root, stdio: ['pipe', 'pipe', 'ignore'] },
);
const issuer = await new Promise((resolve, reject) => {
  let said = '';
  provider.stdout.on('data', (chunk) => {
    said += chunk;
    const line = said.split('\n').find((l) => l.startsWith('issuer '));
    if (line) resolve(line.slice('issuer '.length).trim());
  });
  provider.on('exit', (code) => reject(new Error(`the OpenID provider stopped (${code})`)));
});

const env = {
  ...process.env,
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1',
  E2E_BASE_URL: `http://127.0.0.1:${port}`,
  AMPERE_BIN: join(root, 'target/release/ampere'),
  AMPERE_LISTEN: `127.0.0.1:${port}`,
  AMPERE_DATA_DIR: dataDir,
  LEPTOS_SITE_ROOT: join(root, 'target/site'),
  E2E_OIDC_ISSUER: issuer,
  AMPERE_KEYCLOAK_ISSUER: issuer,
  AMPERE_KEYCLOAK_CLIENT_ID: 'ampere',
  AMPERE_KEYCLOAK_CLIENT_SECRET: CLIENT_SECRET,
};
const run = spawnSync(
  join(root, 'node_modules/.bin/playwright'),
  ['test', '-c', join(here, 'playwright.config.mjs'), ...process.argv.slice(2)],
  { cwd: here, env, stdio: 'inherit' },
);
provider.removeAllListeners('exit');
provider.kill();
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
