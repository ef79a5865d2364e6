// What the browser tests share: unique names, signing up and in through the
// pages, and reading the same account over the API to compare figures.
import { expect } from '@playwright/test';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PASSWORD = 'Correct-horse-7';

/** A username no other test (or earlier run on the same server) has used. */
export function uniqueName(prefix) {
  return `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** Opens a page and waits until it reacts to input. */
export async function open(page, path) {
  await page.goto(path);
  // A page's lazily loaded chunk is fetched and compiled first: on a busy
  // machine that can take a few seconds.
  await expect(page.locator('body[data-hydrated]')).toBeAttached({ timeout: 15000 });
}

/** Signs up through the page; unless told it should fail, waits for the dashboard. */
export async function signUp(page, username, { refused = false } = {}) {
  await open(page, '/signup');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  if (!refused) await expect(page.getByTestId('username')).toHaveText(username);
}

export async function signIn(page, username, password = PASSWORD) {
  await open(page, '/signin');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('username')).toHaveText(username);
}

/** The account's `getalldata`, read with the page's own session cookie. */
export async function apiData(page) {
  const reply = await page.request.get('/rest/v1/getalldata');
  expect(reply.status()).toBe(200);
  return reply.json();
}

/** An account made over the API, with a bearer token for calls. */
export async function apiAccount(request, prefix) {
  const name = uniqueName(prefix);
  const created = await request.post('/api/v1/auth/register', { data: { username: name, password: PASSWORD } });
  expect(created.status()).toBe(201);
  const headers = { Authorization: `Bearer ${(await created.json()).access_token}` };
  const call = async (path, data) => {
    const reply = await request.post(path, { headers, data });
    expect(reply.status(), path).toBe(200);
    const body = await reply.json();
    expect(body.error, path).toBeUndefined();
    return body;
  };
  const data = async () => (await request.get('/rest/v1/getalldata', { headers })).json();
  return { name, headers, call, data };
}

/** Funds an API account and opens a channel to the hub, open both ways. */
export async function connectToHub(account, sats = 100000) {
  const data = await account.data();
  await account.call('/api/v1/simnet/faucet', { address: data.address, sats: sats * 5 });
  await account.call('/api/v1/simnet/mine', { blocks: 1 });
  const hub = data.addressbook.find((c) => c.alias === 'hub');
  await account.call('/rest/v1/openchannel', { remotenode: hub.nodeId, amount: sats });
  await account.call('/api/v1/simnet/mine', { blocks: 6 });
}

/** How the pages print an amount from the API (a JSON number or decimal
 * text): the whole part grouped by thousands, `1234567.5` as `1,234,567.5`. */
export function shown(amount) {
  const [whole, fraction] = String(amount).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}

const axe = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** Runs axe-core's WCAG 2 A and AA rules on the page: no serious finding. */
export async function accessible(page, name) {
  // Evaluated by the browser's debugger protocol: the page's Content-Security-
  // Policy (rightly) refuses an injected inline script.
  await page.evaluate(readFileSync(axe, 'utf8'));
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }));
  const serious = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(serious, `accessibility of ${name}`).toEqual([]);
}

const screenshots = join(dirname(fileURLToPath(import.meta.url)), '../artifacts/screenshots');

/** Screenshots of the current page at both widths, in both colour schemes, and
 * an accessibility check in each scheme (contrast differs). */
export async function photograph(page, name) {
  mkdirSync(screenshots, { recursive: true });
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await accessible(page, `${name} (${scheme})`);
    for (const width of [360, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      // Nothing may stick out sideways on a phone.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${name} at ${width} px`).toBeLessThanOrEqual(0);
      await page.screenshot({ path: join(screenshots, `${name}-${width}-${scheme}.png`), fullPage: true });
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 900 });
}

