// Accounts in the browser: sign up, sign out, sign in, and the errors a person
// sees next to the field that caused them, with and without JavaScript.
import { test, expect } from '@playwright/test';

import { PASSWORD, open, photograph, signIn, signUp, uniqueName } from './support.mjs';

test('a person signs up, signs out and signs in again', async ({ page }) => {
  const name = uniqueName('alice');
  await signUp(page, name);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('username')).toHaveText(name);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/signin$/);
  // The session is gone: the start page greets a visitor again.
  await open(page, '/');
  await expect(page.getByRole('link', { name: 'Sign in' })).toBeVisible();

  await open(page, '/signin');
  await page.getByLabel('Username').fill(name.toUpperCase());
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('username')).toHaveText(name);
});

test('a wrong password is shown next to the password field', async ({ page, request }) => {
  const name = uniqueName('bob');
  const created = await request.post('/api/v1/auth/register', { data: { username: name, password: PASSWORD } });
  expect(created.status()).toBe(201);

  await open(page, '/signin');
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill('Wrong-horse-7');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#field-password-error')).toHaveText('invalid username or password');
  await expect(page.getByLabel('Password')).toHaveAttribute('aria-invalid', 'true');
  await expect(page).toHaveURL(/\/signin$/);
});

test('a taken username is refused next to the username field', async ({ page, request }) => {
  const name = uniqueName('carol');
  await request.post('/api/v1/auth/register', { data: { username: name, password: PASSWORD } });

  await signUp(page, name.toUpperCase(), { refused: true });
  await expect(page.locator('#field-username-error')).toHaveText('username is already taken');
  await expect(page).toHaveURL(/\/signup$/);
});

test('a weak password is explained before any account is made', async ({ page, request }) => {
  const name = uniqueName('dave');
  await open(page, '/signup');
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill('weakpass');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.locator('#field-password-error')).toContainText('8 to 64 characters');
  const login = await request.post('/api/v1/auth', { data: { username: name, password: 'weakpass' } });
  expect(login.status()).toBe(401);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('pages render on the server and the sign-in form works', async ({ page, request }) => {
    const name = uniqueName('erin');
    await request.post('/api/v1/auth/register', { data: { username: name, password: PASSWORD } });

    await page.goto('/signin');
    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Password').fill('Wrong-horse-7');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.locator('#field-password-error')).toHaveText('invalid username or password');

    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByTestId('username')).toHaveText(name);
  });

  test('a person signs up without JavaScript', async ({ page }) => {
    const name = uniqueName('frank');
    await page.goto('/signup');
    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page.getByTestId('username')).toHaveText(name);
  });
});

/** The newest message in the server's outbox (no SMTP server here) for `to`. */
async function mailTo(to) {
  const { readdirSync, readFileSync: read } = await import('node:fs');
  const { join: joinPath } = await import('node:path');
  const outbox = joinPath(process.env.AMPERE_DATA_DIR, 'outbox');
  let found;
  await expect
    .poll(() => {
      let names = [];
      try {
        names = readdirSync(outbox).sort();
      } catch {
        return false;
      }
      found = names
        .map((name) => read(joinPath(outbox, name), 'utf8'))
        .filter((text) => text.includes(`To: ${to}`))
        .pop();
      return Boolean(found);
    }, { timeout: 10000 })
    .toBe(true);
  // Quoted-printable: soft line breaks and escaped equals signs.
  return found.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
}

test('a forgotten password is reset through the e-mailed link', async ({ page, request }) => {
  const name = uniqueName('forgetful');
  const email = `${name}@example.com`;
  const created = await request.post('/api/v1/auth/register', { data: { username: name, password: PASSWORD, email } });
  expect(created.status()).toBe(201);

  await open(page, '/signin');
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await expect(page).toHaveURL(/\/reset-password$/);
  await expect(page.locator('body[data-hydrated]')).toBeAttached({ timeout: 15000 });
  await page.getByLabel('E-mail address').fill(email.toUpperCase());
  await page.getByRole('button', { name: 'Send the link' }).click();
  await expect(page.getByRole('status')).toContainText('If an account has this address');

  const message = await mailTo(email);
  const link = message.match(/https?:\/\/\S+\/reset-password\?key=[0-9a-f]{64}/)[0];
  await open(page, new URL(link).pathname + new URL(link).search);
  await expect(page.getByRole('heading', { name: 'Choose a new password' })).toBeVisible();
  await photograph(page, 'reset-password');
  await page.getByLabel('New password').fill('Brand-new-pass-8');
  await page.getByLabel('The same password again').fill('Brand-new-pass-9');
  await page.getByRole('button', { name: 'Set the password' }).click();
  await expect(page.locator('#field-password_repeat-error')).toHaveText('the passwords are not the same');
  await page.getByLabel('The same password again').fill('Brand-new-pass-8');
  await page.getByRole('button', { name: 'Set the password' }).click();
  await expect(page.getByRole('status')).toContainText('Your new password is set');

  // The link worked once; the new password signs in, the old one not.
  await open(page, new URL(link).pathname + new URL(link).search);
  await page.getByLabel('New password').fill('Another-pass-8');
  await page.getByLabel('The same password again').fill('Another-pass-8');
  await page.getByRole('button', { name: 'Set the password' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'not valid' })).toBeVisible();
  const old = await request.post('/api/v1/auth', { data: { username: name, password: PASSWORD } });
  expect(old.status()).toBe(401);
  await signIn(page, name, 'Brand-new-pass-8');
});
