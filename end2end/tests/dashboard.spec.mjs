// The dashboard: balances in the account's denomination, the node, and the
// on-chain address with its QR code, checked against the API.
import { test, expect } from '@playwright/test';

const PASSWORD = 'Correct-horse-7';

test('a funded account sees its balances and switches the denomination', async ({ page, request }) => {
  const name = `dash-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const created = await request.post('/api/v1/auth/register', { data: { username: name, password: PASSWORD } });
  expect(created.status()).toBe(201);
  const auth = { Authorization: `Bearer ${(await created.json()).access_token}` };
  const data = await (await request.get('/rest/v1/getalldata', { headers: auth })).json();
  expect((await request.post('/api/v1/simnet/faucet', { headers: auth, data: { address: data.address, sats: 1234567 } })).status()).toBe(200);
  expect((await request.post('/api/v1/simnet/mine', { headers: auth, data: { blocks: 1 } })).status()).toBe(200);

  await page.goto('/signin');
  await expect(page.locator('body[data-hydrated]')).toBeAttached();
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();

  await expect(page.getByTestId('balance-onchain')).toHaveText('1234567');
  await expect(page.getByTestId('balance-total')).toHaveText('1234567');
  await expect(page.getByTestId('balance-lightning')).toHaveText('0');
  await expect(page.getByTestId('address')).toHaveText(data.address);
  await expect(page.getByTestId('node-id')).toHaveText(data.info.nodeId);
  await expect(page.locator('.qr svg')).toBeVisible();

  await page.getByLabel('Denomination').selectOption('btc');
  await expect(page.getByTestId('balance-onchain')).toHaveText('0.01234567');
  const after = await (await request.get('/rest/v1/getalldata', { headers: auth })).json();
  expect(after.denomination).toBe('btc');
  expect(after.balances.onchainfunds).toBe(0.01234567);
});

test('a person asks for a payment and gets an invoice to show, copy or download', async ({ page }) => {
  const name = `recv-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await page.goto('/signup');
  await expect(page.locator('body[data-hydrated]')).toBeAttached();
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('balance-total')).toHaveText('0');

  await page.getByLabel('Amount (sat)').fill('-5');
  await page.getByRole('button', { name: 'Create invoice' }).click();
  await expect(page.locator('#receive-amount-error')).toContainText('negative');

  await page.getByLabel('Amount (sat)').fill('2500');
  await page.getByLabel('Memo').fill('coffee & <cake>');
  await page.getByRole('button', { name: 'Create invoice' }).click();
  const invoice = page.getByTestId('invoice');
  await expect(invoice).toHaveText(/^lnbcrt25u1/);
  await expect(page.locator('.invoice .qr svg')).toBeVisible();
  await expect(page.getByRole('link', { name: 'Open in a wallet' })).toHaveAttribute('href', `lightning:${await invoice.textContent()}`);
  const png = await page.request.get(await page.getByRole('link', { name: 'Download PNG' }).getAttribute('href'));
  expect(png.status()).toBe(200);
  expect(png.headers()['content-type']).toBe('image/png');
});
