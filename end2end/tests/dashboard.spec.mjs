// The dashboard, Receive and Send pages one by one, figures checked against the
// API: balances and the denomination, an invoice to show, copy or download that
// turns paid live, and paying an invoice pasted or read from a photo.
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { PASSWORD, apiAccount, apiData, connectToHub, open, signIn, signUp, uniqueName } from './support.mjs';

test('a funded account sees its balances and switches the denomination', async ({ page }) => {
  const account = await apiAccount(page.request, 'dash');
  const data = await account.data();
  await account.call('/api/v1/simnet/faucet', { address: data.address, sats: 1234567 });
  await account.call('/api/v1/simnet/mine', { blocks: 1 });

  await signIn(page, account.name);
  await expect(page.getByTestId('balance-onchain')).toHaveText('1,234,567');
  await expect(page.getByTestId('balance-total')).toHaveText('1,234,567');
  await expect(page.getByTestId('balance-lightning')).toHaveText('0');
  await expect(page.getByTestId('address')).toHaveText(data.address);
  await expect(page.getByTestId('node-id')).toHaveText(data.info.nodeId);
  await expect(page.getByTestId('blockheight')).toHaveText(String((await apiData(page)).info.blockheight));
  const qr = page.getByRole('img', { name: 'QR code of the address' });
  await expect(qr).toBeVisible();
  expect(await qr.evaluate((img) => img.complete && img.naturalWidth > 0)).toBe(true);

  await page.getByLabel('Denomination').selectOption('btc');
  await expect(page.getByTestId('balance-onchain')).toHaveText('0.01234567');
  const after = await apiData(page);
  expect(after.denomination).toBe('btc');
  expect(after.balances.onchainfunds).toBe(0.01234567);
});

test('the faucet and miner buttons fund the wallet on a --simnet-dev server', async ({ page }) => {
  await signUp(page, uniqueName('faucet'));
  await expect(page.getByTestId('balance-total')).toHaveText('0');
  await page.getByRole('button', { name: 'Get 1,000,000 test sats' }).click();
  await expect(page.getByText('Coins sent')).toBeVisible();
  await page.getByRole('button', { name: 'Mine 1 block' }).click();
  // The balance moves by itself: the block's event refreshes the page.
  await expect(page.getByTestId('balance-onchain')).toHaveText('1,000,000');
  const data = await apiData(page);
  expect(data.balances.onchainfunds).toBe(1000000);
  await expect(page.getByTestId('blockheight')).toHaveText(String(data.info.blockheight));
});

test('an invoice to show, copy or download turns paid the moment it is paid', async ({ page, request }) => {
  const name = uniqueName('recv');
  await signUp(page, name);
  await expect(page.getByTestId('username')).toHaveText(name);
  await page.getByRole('link', { name: 'Receive' }).click();
  await expect(page).toHaveURL(/\/receive$/);

  await page.getByLabel('Amount (sat)').fill('-5');
  await page.getByRole('button', { name: 'Create invoice' }).click();
  await expect(page.locator('#receive-amount-error')).toContainText('negative');

  await page.getByLabel('Amount (sat)').fill('2500');
  await page.getByLabel('Memo').fill('coffee & <cake>');
  await page.getByRole('button', { name: 'Create invoice' }).click();
  const invoice = page.getByTestId('invoice');
  await expect(invoice).toHaveText(/^lnbcrt25u1/);
  const bolt11 = await invoice.textContent();
  await expect(page.locator('.invoice .qr svg')).toBeVisible();
  await expect(page.getByTestId('invoice-status')).toContainText(/expires in 5[89]:\d\d/);
  await expect(page.getByRole('link', { name: 'Open in a wallet' })).toHaveAttribute('href', `lightning:${bolt11}`);
  const png = await page.request.get(await page.getByRole('link', { name: 'Download PNG' }).getAttribute('href'));
  expect(png.status()).toBe(200);
  expect(png.headers()['content-type']).toBe('image/png');

  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.getByRole('button', { name: 'Copy the invoice' }).click();
  await expect(page.getByRole('button', { name: 'Copy the invoice' })).toHaveText('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(bolt11);

  // Someone else pays it over the API: the page says so without a reload.
  const payer = await apiAccount(request, 'payer');
  await connectToHub(payer);
  // The payee needs a channel too, for the hub to open one back.
  const own = await apiData(page);
  const csrf = { 'X-CSRF-Token': own._csrf };
  await page.request.post('/api/v1/simnet/faucet', { headers: csrf, data: { address: own.address, sats: 300000 } });
  await page.request.post('/api/v1/simnet/mine', { headers: csrf, data: { blocks: 1 } });
  const hub = own.addressbook.find((c) => c.alias === 'hub').nodeId;
  expect((await page.request.post('/rest/v1/openchannel', { headers: csrf, data: { remotenode: hub, amount: 100000 } })).status()).toBe(200);
  await payer.call('/api/v1/simnet/mine', { blocks: 6 });
  const paid = await payer.call('/rest/v1/sendinvoice', { invoiceid: bolt11 });
  expect(paid.payment.amount).toBe(2500);
  await expect(page.getByTestId('invoice-status')).toHaveText('Paid');
});

test('a person pays an invoice after reading what it asks for, once', async ({ page, request }) => {
  const payer = await apiAccount(request, 'payer');
  const payee = await apiAccount(request, 'payee');
  await connectToHub(payer);
  await connectToHub(payee);
  const invoice = (await payee.call('/rest/v1/createinvoice', { amount: 1234, memo: 'lunch <b>' })).payment_request;

  await signIn(page, payer.name);
  await expect(page.getByTestId('balance-lightning')).toHaveText('100,000');
  await page.getByRole('link', { name: 'Send' }).click();

  await page.getByLabel('Invoice', { exact: true }).fill('lnbcrt1nonsense');
  await page.getByRole('button', { name: 'Review' }).click();
  await expect(page.locator('#send-invoice-error')).not.toBeEmpty();

  await page.getByLabel('Invoice', { exact: true }).fill(`lightning:${invoice}`);
  await page.getByRole('button', { name: 'Review' }).click();
  await expect(page.getByTestId('send-amount')).toHaveText('1,234 sat');
  await expect(page.getByTestId('send-memo')).toHaveText('lunch <b>');
  await expect(page.getByTestId('send-payee')).toHaveText((await payee.data()).info.nodeId);
  await expect(page.getByTestId('send-expiry')).toContainText(/in \d+:\d\d/);

  await page.getByLabel('Your password').fill('Wrong-horse-7');
  await page.getByRole('button', { name: 'Pay' }).click();
  await expect(page.locator('#send-password-error')).toHaveText('password is not correct');

  await page.getByLabel('Your password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Pay' }).click();
  await expect(page.getByTestId('send-result')).toHaveText('Paid 1,234 sat (fee 1.123)');
  await expect(page.getByRole('button', { name: 'Paid' })).toBeDisabled();

  const received = await payee.data();
  expect(received.transactions[0].type).toBe('received');
  expect(received.transactions[0].amount).toBe(1234);
  const paid = await apiData(page);
  expect(paid.balances.lntfunds).toBe(98764.877);
  expect(paid.transactions.filter((t) => t.type === 'sent')).toHaveLength(1);
});

test('an invoice is read from a photo of its QR code', async ({ page, request }) => {
  const payee = await apiAccount(request, 'photo');
  const invoice = (await payee.call('/rest/v1/createinvoice', { amount: 777, memo: 'from a photo' })).payment_request;
  const png = await request.get(`/rest/v1/getqrimage?inputcode=${invoice}`, { headers: payee.headers });
  expect(png.status()).toBe(200);

  await signUp(page, uniqueName('scanner'));
  await open(page, '/send');
  await page.getByLabel('Read a photo of a QR code').setInputFiles({
    name: 'invoice.png', mimeType: 'image/png', buffer: await png.body(),
  });
  await expect(page.getByLabel('Invoice', { exact: true })).toHaveValue(invoice.toUpperCase());
  await expect(page.getByTestId('send-amount')).toHaveText('777 sat');
  await expect(page.getByTestId('send-memo')).toHaveText('from a photo');

  await page.getByLabel('Read a photo of a QR code').setInputFiles({
    name: 'not-a-photo.png', mimeType: 'image/png', buffer: Buffer.from('not a picture'),
  });
  await expect(page.locator('.scanner .field-error')).toHaveText('the photo is not a PNG, JPEG or WebP image');
});

test('the dashboard downloads at most 350 KB of code and style, gzipped', async ({ page }) => {
  // Everything it fetches from /pkg/ counts: the main bundle, its glue, the
  // style and any chunk (a split gone wrong would show here first).
  const account = await apiAccount(page.request, 'size');
  const login = await page.request.post('/rest/v1/login', { data: { username: account.name, password: PASSWORD } });
  expect(login.status()).toBe(200);
  const fetched = new Set();
  page.on('response', (reply) => {
    const path = new URL(reply.url()).pathname;
    if (path.startsWith('/pkg/')) fetched.add(path);
  });
  await open(page, '/');
  await expect(page.getByTestId('desk-balance')).toHaveText('0');
  const site = join(dirname(fileURLToPath(import.meta.url)), '../../target/site');
  const sizes = [...fetched].map((path) => [path, gzipSync(readFileSync(join(site, path)), { level: 9 }).length]);
  expect([...fetched]).toEqual(expect.arrayContaining(['/pkg/ampere.wasm', '/pkg/ampere.js', '/pkg/ampere.css']));
  const total = sizes.reduce((sum, [, size]) => sum + size, 0);
  expect(total, JSON.stringify(sizes)).toBeLessThanOrEqual(350 * 1024);
});
