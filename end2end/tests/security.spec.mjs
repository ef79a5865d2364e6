// The security page: the profile, ACL tokens made in the browser and used by a
// script (only for what their list allows, dead once revoked), deleting an
// account, and signing in with a Nostr extension (NIP-07, played by
// nostr-tools, an independent implementation).
import { test, expect } from '@playwright/test';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';

import { PASSWORD, open, photograph, signUp, uniqueName } from './support.mjs';

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
