// Signing in through an identity provider (a real OpenID Connect provider on
// loopback, npm's oidc-provider, configured as "Keycloak"), linking one to an
// account from the security page, and signing other browsers out.
import { test, expect } from '@playwright/test';

import { PASSWORD, open, signIn, signUp, uniqueName } from './support.mjs';

const issuer = process.env.E2E_OIDC_ISSUER;

/** Who the provider signs in next (its login screen answers for them). */
async function providerSignsInAs(request, subject) {
  const reply = await request.post(`${issuer}/_test/user`, { data: subject });
  expect(reply.status()).toBe(200);
}

// The provider signs in one person at a time: these run one after the other.
test.describe.configure({ mode: 'serial' });

test('a person signs in through the OpenID Connect provider, once and again', async ({ page, request }) => {
  const subject = uniqueName('kc');
  await providerSignsInAs(request, subject);
  await open(page, '/signin');
  await page.getByRole('link', { name: 'Sign in with Keycloak' }).click();
  // Through the provider and back, signed in to a new account named after them.
  await expect(page.getByTestId('username')).toHaveText(subject);
  expect(new URL(page.url()).pathname).toBe('/');

  await open(page, '/security');
  await expect(page.getByTestId('linked-key')).toContainText('Keycloak account');
  await expect(page.getByTestId('linked-key')).toContainText(subject);

  // Signed out and in again: the same account.
  await page.context().clearCookies();
  await open(page, '/signin');
  await page.getByRole('link', { name: 'Sign in with Keycloak' }).click();
  await expect(page.getByTestId('username')).toHaveText(subject);

  // An answer that comes back to another browser is refused, with the reason.
  await page.goto('/api/v1/auth/keycloak/token?code=stolen&state=stolen');
  await expect(page).toHaveURL(/\/signin\?provider_error=state$/);
  await expect(page.getByRole('alert').filter({ hasText: 'started in another browser' })).toBeVisible();
});

test('a password account links a provider account from the security page', async ({ page, request }) => {
  const name = uniqueName('linker');
  await signUp(page, name);
  const subject = uniqueName('kc-link');
  await providerSignsInAs(request, subject);
  await open(page, '/security');
  await page.getByRole('link', { name: 'Link a Keycloak account' }).click();
  await expect(page).toHaveURL(/\/security\?linked=keycloak$/);
  await expect(page.getByText('Your Keycloak account now signs in here.')).toBeVisible();
  await expect(page.getByTestId('linked-key')).toContainText(subject);

  // The provider now signs in to the password account.
  await page.context().clearCookies();
  await open(page, '/signin');
  await page.getByRole('link', { name: 'Sign in with Keycloak' }).click();
  await expect(page.getByTestId('username')).toHaveText(name);
});

test('another browser is signed out from the security page', async ({ page, browser }) => {
  const name = uniqueName('twice');
  await signUp(page, name);
  const elsewhere = await browser.newContext();
  const other = await elsewhere.newPage();
  await signIn(other, name);

  await open(page, '/security');
  const sessions = page.getByTestId('session');
  await expect(sessions).toHaveCount(2);
  await expect(sessions.filter({ hasText: 'This browser' })).toHaveCount(1);
  // Not without the password.
  await sessions.filter({ hasNotText: 'This browser' }).getByRole('button', { name: /^Sign out / }).click();
  await expect(page.locator('#sessions-password-error')).toHaveText('enter your password to confirm');
  await expect(sessions).toHaveCount(2);
  await page.getByLabel('Your password (to sign browsers out)').fill(PASSWORD);
  await sessions.filter({ hasNotText: 'This browser' }).getByRole('button', { name: /^Sign out / }).click();
  await expect(sessions).toHaveCount(1);

  // The other browser is signed out at its next step; this one is not.
  await open(other, '/history');
  await expect(other.getByRole('link', { name: 'Sign in', exact: true })).toBeVisible();
  await open(page, '/');
  await expect(page.getByTestId('username')).toHaveText(name);
  await elsewhere.close();
});
