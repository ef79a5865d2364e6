// Accounts in the browser: sign up, sign out, sign in, and the errors a person
// sees next to the field that caused them, with and without JavaScript.
import { test, expect } from '@playwright/test';

import { PASSWORD, open, signUp, uniqueName } from './support.mjs';

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
