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

/** Registers an account over the API, funds it and connects it to the hub. */
async function connected(request, prefix) {
  const name = `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const created = await request.post('/api/v1/auth/register', { data: { username: name, password: PASSWORD } });
  const headers = { Authorization: `Bearer ${(await created.json()).access_token}` };
  const call = async (path, data) => {
    const reply = await request.post(path, { headers, data });
    expect(reply.status(), path).toBe(200);
    const body = await reply.json();
    expect(body.error, path).toBeUndefined();
    return body;
  };
  const data = await (await request.get('/rest/v1/getalldata', { headers })).json();
  await call('/api/v1/simnet/faucet', { address: data.address, sats: 500000 });
  await call('/api/v1/simnet/mine', { blocks: 1 });
  await call('/rest/v1/openchannel', { remotenode: data.addressbook[0].nodeId, amount: 100000 });
  await call('/api/v1/simnet/mine', { blocks: 6 });
  return { name, headers, call };
}

test('a person pays an invoice after reading what it asks for, once', async ({ page, request }) => {
  const payer = await connected(request, 'payer');
  const payee = await connected(request, 'payee');
  const invoice = (await payee.call('/rest/v1/createinvoice', { amount: 1234, memo: 'lunch <b>' })).payment_request;

  await page.goto('/signin');
  await expect(page.locator('body[data-hydrated]')).toBeAttached();
  await page.getByLabel('Username').fill(payer.name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('balance-lightning')).toHaveText('100000');

  await page.getByLabel('Invoice').fill(`lightning:${invoice}`);
  await page.getByRole('button', { name: 'Review' }).click();
  await expect(page.getByTestId('send-amount')).toHaveText('1234 sat');
  await expect(page.getByTestId('send-memo')).toHaveText('lunch <b>');

  await page.getByLabel('Your password').fill('Wrong-horse-7');
  await page.getByRole('button', { name: 'Pay' }).click();
  await expect(page.locator('.review .field-error').last()).toHaveText('password is not correct');

  await page.getByLabel('Your password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Pay' }).click();
  await expect(page.getByTestId('send-result')).toHaveText('Paid 1234 sat (fee 1.123)');
  await expect(page.getByRole('button', { name: 'Pay' })).toBeDisabled();
  await expect(page.getByTestId('balance-lightning')).toHaveText('98764.877');

  const received = await (await request.get('/rest/v1/getalldata', { headers: payee.headers })).json();
  expect(received.transactions[0].type).toBe('received');
  expect(received.transactions[0].amount).toBe(1234);
});
