// The security page: the profile, ACL tokens made in the browser and used by a
// script (only for what their list allows, dead once revoked), deleting an
// account, signing in with a Nostr extension (NIP-07, played by nostr-tools,
// an independent implementation), two-factor codes set up by scanning the QR
// code (zbar) into an authenticator (pyotp), a signed API key used by a
// script (Node's HMAC), and an application authorised on the consent page
// (Ampere as an OAuth provider) until revoked.
import { test, expect } from '@playwright/test';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { PASSWORD, apiAccount, open, photograph, signUp, uniqueName } from './support.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

test('an ACL token made on the security page calls only what its list allows', async ({ page, request }) => {
  const name = uniqueName('acl');
  await signUp(page, name);
  await open(page, '/security');

  // A new e-mail address (where reset links go) takes the password.
  await page.getByLabel('E-mail address').fill(`${name}@example.com`);
  await page.getByRole('button', { name: 'Save profile' }).click();
  await expect(page.locator('#profile-password-error')).toHaveText('enter your password to confirm');
  await page.getByLabel('Your password (to change the e-mail)').fill(PASSWORD);
  await page.getByRole('button', { name: 'Save profile' }).click();
  await expect(page.getByText('Profile saved.')).toBeVisible();

  // A malformed pattern is explained beside the field; nothing is made.
  await page.getByLabel('List name').fill('dashboard');
  await page.getByLabel('More requests, one per line').fill('GET api/v1/auth');
  await page.getByRole('button', { name: 'Create list' }).click();
  await expect(page.locator('#acl-more-error')).toContainText('absolute');
  await expect(page.getByTestId('acl')).toHaveCount(0);

  await page.getByLabel('More requests, one per line').fill('');
  await page.getByRole('checkbox', { name: 'GET /api/v1/auth', exact: true }).check();
  await page.getByRole('button', { name: 'Create list' }).click();
  await expect(page.getByTestId('acl')).toHaveCount(1);
  await expect(page.getByTestId('acl')).toContainText('GET /api/v1/auth');

  await page.getByRole('button', { name: 'New token for dashboard' }).click();
  const shown = page.getByTestId('new-acl-token');
  await expect(shown).not.toBeEmpty();
  const token = (await shown.textContent()).trim();
  await photograph(page, 'security');
  const headers = { Authorization: `Bearer ${token}` };

  const allowed = await request.get('/api/v1/auth', { headers });
  expect(allowed.status()).toBe(200);
  expect((await allowed.json()).email).toBe(`${name}@example.com`);
  const outside = await request.get('/rest/v1/getalldata', { headers });
  expect(outside.status()).toBe(403);
  const manage = await request.get('/api/v1/auth/acls', { headers });
  expect(manage.status()).toBe(403);

  await expect(page.getByTestId('acl-token')).toHaveCount(1);
  await page.getByRole('button', { name: /^Revoke token / }).click();
  await expect(page.getByTestId('acl-token')).toHaveCount(0);
  const revoked = await request.get('/api/v1/auth', { headers });
  expect(revoked.status()).toBe(401);
});

test('an account is deleted from the security page with its password', async ({ page, request }) => {
  const name = uniqueName('leaving');
  await signUp(page, name);
  await open(page, '/security');
  await page.getByLabel('Your password (to delete)').fill('Wrong-horse-7');
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page.locator('#delete-password-error')).toHaveText('password is not correct');

  await page.getByLabel('Your password (to delete)').fill(PASSWORD);
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page.getByRole('link', { name: 'Sign in' })).toBeVisible();
  const login = await request.post('/api/v1/auth', { data: { username: name, password: PASSWORD } });
  expect(login.status()).toBe(401);
});

test('a Nostr extension signs a person in, and the page lists the key', async ({ page }) => {
  const secret = generateSecretKey();
  const pubkey = getPublicKey(secret);
  // The extension: window.nostr, signing in Node with nostr-tools.
  await page.exposeFunction('__nostrSign', (event) => finalizeEvent(event, secret));
  await page.addInitScript((key) => {
    window.nostr = {
      getPublicKey: async () => key,
      signEvent: async (event) => window.__nostrSign(event),
    };
  }, pubkey);
  await open(page, '/signin');
  await page.getByRole('button', { name: 'Sign in with Nostr' }).click();
  await expect(page.getByTestId('username')).toHaveText(new RegExp(`^nostr-${pubkey.slice(0, 10)}`));

  await open(page, '/security');
  await expect(page.getByTestId('linked-key')).toContainText('Nostr key');
  await expect(page.getByTestId('linked-key')).toContainText(pubkey.slice(0, 16));
  await expect(page.getByText('No password')).toBeVisible();
  // Its only way in cannot be unlinked.
  await page.getByRole('button', { name: 'Unlink Nostr key' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'only way to sign in' })).toBeVisible();
  await expect(page.getByTestId('linked-key')).toHaveCount(1);
});

/** The 6-digit code pyotp (an independent TOTP implementation) computes from
 * an `otpauth://` URL, `steps` 30-second steps from now; waits first when a
 * step is about to end, so the server sees the step the code is of. */
async function totp(url, steps = 0) {
  const into = Date.now() % 30000;
  if (into > 26000) await new Promise((done) => setTimeout(done, 30500 - into));
  const at = Math.floor(Date.now() / 1000) + steps * 30;
  return execFileSync(join(root, '.venv/bin/python'), [
    '-c', 'import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))', url, String(at),
  ]).toString().trim();
}

/** The text of a QR code on the page, read by zbar from a screenshot of it. */
async function scan(locator) {
  const dir = mkdtempSync(join(tmpdir(), 'qr-'));
  const file = join(dir, 'qr.png');
  await locator.screenshot({ path: file });
  return execFileSync('zbarimg', ['--raw', '-q', file]).toString().trim();
}

test('two-factor codes turned on from the security page guard the next sign-in', async ({ page }) => {
  const name = uniqueName('otp');
  await signUp(page, name);
  await open(page, '/security');
  const card = page.getByRole('region', { name: 'Two-factor authentication' });
  await expect(card).toContainText('Off');
  await card.getByRole('button', { name: 'Set up two-factor authentication' }).click();

  // The person's phone scans the code; the secret typed by hand is the same.
  const url = await scan(card.getByRole('img', { name: 'QR code for your authenticator app' }));
  expect(url).toMatch(new RegExp(`^otpauth://totp/Ampere:${name}\\?`));
  const secret = (await card.getByTestId('otp-secret').textContent()).trim();
  expect(new URL(url).searchParams.get('secret')).toBe(secret);

  await card.getByLabel('Code from your app').fill('000000');
  await card.getByRole('button', { name: 'Turn on' }).click();
  await expect(card.locator('#otp-enable-code-error')).toHaveText('the code is not correct');
  await card.getByLabel('Code from your app').fill(await totp(url));
  await card.getByRole('button', { name: 'Turn on' }).click();
  await expect(card).toContainText('On: signing in with your password also asks for a code.');
  await photograph(page, 'two-factor');

  // Signing in again: the password alone is not enough.
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await expect(page).toHaveURL(/\/signin$/);
  await open(page, '/signin');
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#field-otp_code-error')).toContainText('two-factor authentication on');
  await page.getByLabel('Two-factor code').fill(await totp(url, 1));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('username')).toHaveText(name);

  // The activity log shows both sign-ins, the one refused and the one let in.
  await open(page, '/security');
  const log = page.getByTestId('activity');
  await expect(log.filter({ hasText: 'Sign-in with a password' }).filter({ hasText: 'refused' })).toHaveCount(1);
  await expect(log.filter({ hasText: 'Signed in with a password' })).toHaveCount(1);
  await expect(log.filter({ hasText: 'Turning two-factor authentication on' }).filter({ hasText: 'failed' })).toHaveCount(1);
  await expect(log.filter({ hasText: 'Two-factor authentication turned on' })).toHaveCount(1);
});

test('an API key made on the security page signs a script\'s requests until deleted', async ({ page, request }) => {
  const name = uniqueName('bot');
  await signUp(page, name);
  await open(page, '/security');
  const card = page.getByRole('region', { name: 'API keys' });
  await card.getByLabel('Pays from the wallet').check();
  await card.getByRole('button', { name: 'Make an API key' }).click();
  const kid = (await card.getByTestId('new-api-key-kid').textContent()).trim();
  const secret = (await card.getByTestId('new-api-key-secret').textContent()).trim();
  await expect(card.getByTestId('api-key')).toHaveCount(1);
  await expect(card.getByTestId('api-key')).toContainText('reads, pays from the wallet');

  // The script signs as an exchange client would (Node's own HMAC).
  const signedHeaders = () => {
    const nonce = String(Date.now());
    const signature = createHmac('sha256', secret).update(nonce + kid).digest('hex');
    return { 'X-Auth-Apikey': kid, 'X-Auth-Nonce': nonce, 'X-Auth-Signature': signature };
  };
  const me = await request.get('/api/v2/auth/resource/users/me', { headers: signedHeaders() });
  expect(me.status()).toBe(200);
  expect((await me.json()).username).toBe(name);
  const invoice = await request.post('/rest/v1/createinvoice', { headers: signedHeaders(), data: { amount: 2100, memo: 'bot' } });
  expect(invoice.status()).toBe(200);
  expect((await invoice.json()).payment_request).toMatch(/^lnbcrt21u/);
  const trade = await request.post('/lnm/user/deposit', { headers: signedHeaders(), data: { amount: 1000 } });
  expect(trade.status()).toBe(403);

  await card.getByRole('button', { name: `Delete key ${kid}` }).click();
  await expect(card.getByTestId('api-key')).toHaveCount(0);
  const gone = await request.get('/api/v2/auth/resource/users/me', { headers: signedHeaders() });
  expect(gone.status()).toBe(401);
});

test('an application is authorised on the consent page after signing in, and revoked from the security page', async ({ page, request }) => {
  // The application's callback: a loopback server that keeps what it is sent.
  const callbacks = [];
  const app = createServer((req, res) => {
    callbacks.push(new URL(req.url, 'http://127.0.0.1'));
    res.end('back at the application');
  });
  await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
  const redirect = `http://127.0.0.1:${app.address().port}/cb`;
  try {
    // The operator registers it with the binary, against the server's database.
    const printed = execFileSync(process.env.AMPERE_BIN, [
      'oauth-client', 'add', '--name', 'Lime Trader', '--redirect-url', redirect,
    ], { encoding: 'utf8' });
    const clientId = printed.match(/^client_id=(.+)$/m)[1];
    const secret = printed.match(/^client_secret=(.+)$/m)[1];

    const { name } = await apiAccount(request, 'lime');
    const state = uniqueName('state');
    const authorize = `/connect/authorize?response_type=code&client_id=${clientId}`
      + `&redirect_uri=${encodeURIComponent(redirect)}&scope=profile%20read&state=${state}`;
    // Signed out: the sign-in comes first, then the request again.
    await page.goto(authorize);
    await expect(page).toHaveURL(/\/signin\?next=/);
    await expect(page.locator('body[data-hydrated]')).toBeAttached({ timeout: 15000 });
    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByTestId('consent-client')).toHaveText('Lime Trader');
    await expect(page.getByTestId('consent-scopes')).toContainText('read your balances');
    await expect(page.getByTestId('consent-scopes')).not.toContainText('e-mail');
    await photograph(page, 'consent');
    await page.getByTestId('consent-approve').click();
    await expect(page).toHaveURL(new RegExp(`^${redirect}\\?code=`));
    // (The browser may also ask the application for its favicon.)
    const back = callbacks.filter((url) => url.pathname === '/cb').at(-1);
    expect(back.searchParams.get('state')).toBe(state);

    // The application exchanges the code (its client by HTTP Basic).
    const basic = Buffer.from(`${clientId}:${secret}`).toString('base64');
    const form = { grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: redirect };
    const exchanged = await request.post('/connect/token', { headers: { Authorization: `Basic ${basic}` }, form });
    expect(exchanged.status()).toBe(200);
    const token = (await exchanged.json()).access_token;
    const headers = { Authorization: `Bearer ${token}` };
    const me = await request.get('/userinfo', { headers });
    expect((await me.json()).login).toBe(name);

    // The person sees it on the security page, and revokes it.
    await open(page, '/security');
    const card = page.getByRole('region', { name: 'Authorised applications' });
    await expect(card.getByTestId('application')).toContainText('Lime Trader');
    await card.getByRole('button', { name: 'Revoke Lime Trader' }).click();
    await expect(card).toContainText('No application acts for you.');
    expect((await request.get('/userinfo', { headers })).status()).toBe(401);
  } finally {
    app.close();
  }
});
