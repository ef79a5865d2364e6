// The trading desk in the browser: a trader funds it from the account's own
// wallet in one click, opens a long with a take-profit and watches its P&L move
// as the dev price endpoint moves the index, is paid when the take-profit
// hits; a short is stopped out, a limit order placed and cancelled, a long
// liquidated; the trader withdraws to the wallet. A visitor signs in with a
// phone wallet (LNURL-auth, signed by an independent secp256k1 library). At
// each step the figures on screen are compared with the API's. Screenshots of
// each desk page at 360 and 1280 px, light and dark.
//
// The server runs with the price held still (`--price-volatility 0`): only
// these stories move it, one after another.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { PASSWORD, apiAccount, connectToHub, open, photograph, shown, signIn } from './support.mjs';

test.describe.configure({ mode: 'serial' });

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** Sets the BTC/USD index (the tick runs on it at once). */
async function setIndex(account, index) {
  return account.call('/api/v1/simnet/price', { index });
}

/** The account's positions as the API lists them (`open`, `closed`). */
async function positions(page, filter) {
  const reply = await page.request.get(`/lnm/positions?${filter}`);
  expect(reply.status()).toBe(200);
  return (await reply.json()).positions;
}

async function tradingBalance(page) {
  const reply = await page.request.get('/lnm/user');
  expect(reply.status()).toBe(200);
  return Number((await reply.json()).balance);
}

/** What the account's paid withdrawals took from the trading balance, sats:
 * their amounts and their routing fees (the trader pays them). */
async function withdrawn(page) {
  const reply = await page.request.get('/lnm/user/history?type=withdraw');
  expect(reply.status()).toBe(200);
  const paid = (await reply.json()).transaction.filter((w) => w.success);
  const amounts = paid.reduce((sum, w) => sum + Number(w.amount), 0);
  const feeMsat = paid.reduce((sum, w) => sum + Number(/routing fee (\d+) msat/.exec(w.details ?? '')?.[1] ?? 0), 0);
  return amounts + Math.ceil(feeMsat / 1000);
}

/** How the pages write a P&L: `+1,234 sat`, `-1,234 sat`, `0 sat`. */
function signedSats(pl) {
  const n = Number(pl);
  return `${n > 0 ? '+' : ''}${shown(n)} sat`;
}

/** A trader with a wallet channel to the hub, signed in on `page`, holding
 * `sats` on the desk, deposited through the funding page in one click. */
async function fundedTrader(page, request, sats) {
  const trader = await apiAccount(request, 'trader');
  await connectToHub(trader, 200000);
  await setIndex(trader, 100000);
  await signIn(page, trader.name);
  await open(page, '/funding');
  await page.locator('#deposit-amount').fill(String(sats));
  // Accounts made over the API check the password before paying.
  await page.getByLabel('Your password (to pay from the wallet)').fill(PASSWORD);
  await page.getByRole('button', { name: 'Pay from my Ampere wallet' }).click();
  await expect(page.getByTestId('deposit-status')).toHaveText('Deposited: the trading balance is credited.');
  expect(await tradingBalance(page)).toBe(sats);
  await expect(page.getByTestId('trading-balance')).toHaveText(shown(sats));
  return trader;
}

/** Fills the ticket and sends it; answers the preview's figures. */
async function order(page, { side = 'Buy · long', type = 'Market', price, margin, leverage, takeprofit, stoploss }) {
  await page.getByText(side, { exact: true }).click();
  await page.getByText(type, { exact: true }).click();
  if (price !== undefined) await page.getByLabel('Limit price (USD)').fill(String(price));
  await page.getByLabel('Margin (sat)').fill(String(margin));
  await page.getByLabel('Leverage', { exact: true }).fill(String(leverage));
  await page.getByLabel('Take-profit (USD)').fill(takeprofit === undefined ? '' : String(takeprofit));
  await page.getByLabel('Stop-loss (USD)').fill(stoploss === undefined ? '' : String(stoploss));
  const preview = {
    quantity: await page.getByTestId('preview-quantity').textContent(),
    margin: await page.getByTestId('preview-margin').textContent(),
    liquidation: await page.getByTestId('preview-liquidation').textContent(),
  };
  await page.getByTestId('ticket-submit').click();
  await expect(page.getByTestId('ticket-result')).not.toBeEmpty();
  return preview;
}

test('a trader deposits from the wallet in one click and a long takes its profit', async ({ page, request }) => {
  const trader = await fundedTrader(page, request, 50000);
  await photograph(page, 'funding');

  await open(page, '/trade');
  await expect(page.getByTestId('quote-index')).toHaveText('100,000.0');
  const preview = await order(page, { margin: 10000, leverage: 10, takeprofit: 101000 });
  await expect(page.getByTestId('ticket-result')).toContainText('Opened: long');
  // The preview is what the server did.
  const [long] = await positions(page, 'open');
  expect(preview.quantity).toBe(`${shown(long.quantity)} USD`);
  expect(preview.margin).toBe(`${shown(long.margin)} sat`);
  expect(preview.liquidation).toBe(shown(long.liquidation));
  expect(long.takeprofit).toBe('101000.0');
  expect(await tradingBalance(page)).toBe(40000);
  await photograph(page, 'trade');

  // The P&L on screen follows the price, as the API values it.
  await open(page, '/positions');
  const row = page.getByTestId('open-position');
  for (const index of [100500, 99800]) {
    await setIndex(trader, index);
    const [valued] = await positions(page, 'open');
    await expect(row.getByTestId('position-pl')).toHaveText(signedSats(valued.pl));
  }
  await photograph(page, 'positions');

  // The take-profit hits: the position closes once, margin and profit return.
  await setIndex(trader, 101100);
  const closed = page.getByTestId('closed-position');
  await expect(closed.getByTestId('closed-how')).toHaveText('Take-profit hit');
  const [done] = await positions(page, 'closed');
  expect(done.closed_by).toBe('takeprofit');
  expect(Number(done.pl)).toBeGreaterThan(0);
  await expect(closed.getByTestId('closed-pl')).toHaveText(signedSats(done.pl));
  await expect(row).toHaveCount(0);
  const balance = await tradingBalance(page);
  expect(balance).toBe(50000 + Number(done.pl));
  await open(page, '/funding');
  await expect(page.getByTestId('trading-balance')).toHaveText(shown(balance));
});

test('a short is stopped out, a limit order cancelled, a long liquidated, and the rest withdrawn', async ({ page, request }) => {
  const trader = await fundedTrader(page, request, 60000);

  await open(page, '/trade');
  await expect(page.getByTestId('quote-index')).toHaveText('100,000.0');
  // A stop-loss outside its range is refused next to its field, before sending.
  await page.getByText('Sell · short', { exact: true }).click();
  await page.getByLabel('Stop-loss (USD)').fill('99000');
  await expect(page.locator('#field-stoploss-error')).not.toBeEmpty();
  await expect(page.getByTestId('ticket-submit')).toBeDisabled();

  // A margin beyond the balance is refused by the server, beside the margin;
  // the refusal goes once the margin is changed.
  await page.getByLabel('Stop-loss (USD)').fill('');
  await page.getByLabel('Margin (sat)').fill('70000');
  await page.getByLabel('Leverage', { exact: true }).fill('10');
  await page.getByTestId('ticket-submit').click();
  await expect(page.locator('#field-margin-error')).toContainText('trading balance');
  expect(await positions(page, 'open')).toHaveLength(0);
  await page.getByLabel('Margin (sat)').fill('10000');
  await expect(page.locator('#field-margin-error')).toBeEmpty();

  await order(page, { side: 'Sell · short', margin: 10000, leverage: 10, stoploss: 100500 });
  await expect(page.getByTestId('ticket-result')).toContainText('Opened: short');
  await setIndex(trader, 100600);
  await open(page, '/positions');
  await expect(page.getByTestId('closed-position').getByTestId('closed-how')).toHaveText('Stopped out');
  const [stopped] = await positions(page, 'closed');
  expect(stopped.closed_by).toBe('stoploss');
  expect(Number(stopped.pl)).toBeLessThan(0);
  await expect(page.getByTestId('closed-position').getByTestId('closed-pl')).toHaveText(signedSats(stopped.pl));

  // A limit order below the market waits; cancelled, its margin comes back.
  await setIndex(trader, 100000);
  const before = await tradingBalance(page);
  await open(page, '/trade');
  await order(page, { type: 'Limit', price: 90000, margin: 5000, leverage: 5 });
  await expect(page.getByTestId('ticket-result')).toContainText('Limit order placed');
  expect(await tradingBalance(page)).toBe(before - 5000);
  await open(page, '/positions');
  const pending = page.getByTestId('limit-order');
  await expect(pending).toHaveCount(1);
  await pending.getByRole('button', { name: 'Cancel order' }).click();
  await expect(pending).toHaveCount(0);
  expect(await tradingBalance(page)).toBe(before);

  // A long at 50× is liquidated when the price falls through its level.
  await open(page, '/trade');
  await order(page, { margin: 10000, leverage: 50 });
  await setIndex(trader, 90000);
  await open(page, '/positions');
  const liquidated = page.getByTestId('closed-position').filter({ hasText: 'Liquidated' });
  await expect(liquidated).toHaveCount(1);
  await expect(liquidated.getByTestId('closed-pl')).toHaveText('-10,000 sat');
  const balance = await tradingBalance(page);
  expect(balance).toBe(before - 10000);

  // Withdraw to the wallet in one click: the wallet's Lightning balance grows.
  await setIndex(trader, 100000);
  const walletBefore = (await trader.data()).balances.lntfunds;
  await open(page, '/funding');
  await page.locator('#withdraw-amount').fill('5000');
  // Money leaving the desk asks for the password: a wrong one pays nothing.
  await page.getByLabel('Your password (to withdraw)').fill('Wrong-horse-1');
  await page.getByTestId('withdraw-to-wallet').click();
  await expect(page.locator('#withdraw-password-error')).toHaveText('password is not correct');
  expect(await tradingBalance(page)).toBe(balance);
  await page.getByLabel('Your password (to withdraw)').fill(PASSWORD);
  await page.getByTestId('withdraw-to-wallet').click();
  await expect(page.getByTestId('withdraw-status')).toHaveText(/^Withdrawn: 5,000 sat paid( \(routing fee \d+ sat\))?\.$/);
  // The trader pays the routing fee, and the page says how much.
  const cost = await withdrawn(page);
  const fee = cost - 5000;
  expect(fee).toBeGreaterThanOrEqual(0);
  if (fee > 0) await expect(page.getByTestId('withdraw-status')).toContainText(`routing fee ${shown(fee)} sat`);
  expect(await tradingBalance(page)).toBe(balance - cost);
  expect((await trader.data()).balances.lntfunds).toBe(walletBefore + 5000);
  await expect(page.getByTestId('trading-balance')).toHaveText(shown(balance - cost));
  await expect(page.getByTestId('withdrawals').locator('tbody tr')).toHaveCount(1);

  // An LNURL-withdraw QR code, claimed by a phone wallet: paid live.
  await page.locator('#withdraw-amount').fill('3000');
  await page.getByRole('button', { name: 'As a QR code for a phone wallet' }).click();
  const link = await page.getByTestId('withdraw-lnurl').textContent();
  const { payment_request: bolt11 } = await trader.call('/rest/v1/createinvoice', { amount: 3000, memo: 'phone' });
  const claimed = JSON.parse(
    execFileSync(join(root, '.venv/bin/python'), [
      join(root, 'server/tests/wallets/wallet.py'), 'lnurl-withdraw', link, bolt11,
    ]).toString(),
  );
  expect(claimed.body.status).toBe('OK');
  await expect(page.getByTestId('withdraw-lnurl-status')).toHaveText('Paid to your phone wallet.');
  const costs = await withdrawn(page);
  expect(costs).toBeGreaterThanOrEqual(8000);
  expect(await tradingBalance(page)).toBe(balance - costs);

  await open(page, '/tokens');
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = await page.getByTestId('new-token').textContent();
  const user = await request.get('/lnm/user', { headers: { Authorization: `Bearer ${token}` } });
  expect(user.status()).toBe(200);
  expect(Number((await user.json()).balance)).toBe(balance - costs);
  await expect(page.getByTestId('token')).toHaveCount(1);
  await photograph(page, 'tokens');
  await page.getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByTestId('token').getByText('Revoked')).toBeVisible();
  const refused = await request.get('/lnm/user', { headers: { Authorization: `Bearer ${token}` } });
  expect(refused.status()).toBe(401);
});

test('on a phone every destination is in the menu, one tap away', async ({ page, request }) => {
  const account = await apiAccount(request, 'phone');
  await page.setViewportSize({ width: 360, height: 740 });
  await signIn(page, account.name);
  const nav = page.getByRole('navigation', { name: 'Main' });
  const menu = nav.locator('summary');
  await expect(menu).toBeVisible();
  await menu.click();
  const destinations = ['Dashboard', 'Receive', 'Send', 'Channels', 'Contacts', 'History',
    'Trade', 'Positions', 'Funding', 'Tokens', 'Settings'];
  for (const name of destinations) {
    const link = nav.getByRole('link', { name, exact: true });
    await expect(link).toBeVisible();
    // Within the screen: nothing to scroll sideways to find it.
    const box = await link.boundingBox();
    expect(box.x + box.width, name).toBeLessThanOrEqual(360);
  }
  await nav.getByRole('link', { name: 'Positions', exact: true }).click();
  await expect(page).toHaveURL(/\/positions$/);
  await expect(page.getByRole('heading', { name: 'Positions', level: 1 })).toBeVisible();
  // The menu closed behind the tap, and names where the person is.
  await expect(nav.getByRole('link', { name: 'Trade', exact: true })).toBeHidden();
  await expect(menu).toContainText('Positions');
});

test('a phone wallet signs a visitor in with LNURL-auth', async ({ page }) => {
  await open(page, '/signin');
  const lnurl = await page.getByTestId('lnurl-auth').textContent();
  await photograph(page, 'signin');
  // The test wallet decodes the LNURL with the `lnurl` package and signs k1
  // with coincurve (libsecp256k1): no code shared with the server.
  const answer = JSON.parse(
    execFileSync(join(root, '.venv/bin/python'), [
      join(root, 'server/tests/wallets/wallet.py'), 'lnurl-auth', lnurl, randomBytes(32).toString('hex'),
    ]).toString(),
  );
  expect(answer.status_code).toBe(200);
  expect(answer.body.status).toBe('OK');
  // The page signs itself in, live.
  await expect(page.getByTestId('username')).toBeVisible();
  const me = await page.request.get('/lnm/user');
  expect(me.status()).toBe(200);
  expect((await me.json()).account_type).toBe('lnurl');
});

test('without JavaScript the positions list, a close and a deposit invoice still work', async ({ browser, request }) => {
  const trader = await apiAccount(request, 'nojs');
  await setIndex(trader, 100000);
  // Funded and opened over the API, as a script would.
  await connectToHub(trader, 200000);
  const invoice = await request.post('/lnm/user/deposit', { headers: trader.headers, data: { amount: 20000 } });
  expect(invoice.status()).toBe(200);
  await trader.call('/rest/v1/sendinvoice', { invoiceid: (await invoice.json()).paymentRequest });
  const opened = await request.post('/lnm/positions', {
    headers: trader.headers,
    data: { type: 'm', side: 'b', margin: 5000, leverage: 10 },
  });
  expect(opened.status()).toBe(200);
  const { pid } = await opened.json();

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/signin');
  await page.getByLabel('Username').fill(trader.name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(page.getByTestId('username')).toHaveText(trader.name);

  await page.goto('/positions');
  const row = page.locator(`[data-pid="${pid}"]`);
  await expect(row.getByTestId('position-margin')).toHaveText('5,000 sat');
  await row.getByText('Close', { exact: true }).click();
  await row.getByRole('button', { name: 'Yes, close it' }).click();
  await expect(page.getByTestId('closed-position')).toHaveCount(1);
  await expect(page.getByTestId('open-position')).toHaveCount(0);

  await page.goto('/funding');
  await page.locator('#deposit-amount').fill('1234');
  await page.getByRole('button', { name: 'Show an invoice for another wallet' }).click();
  const bolt11 = await page.getByTestId('deposit-invoice').textContent();
  expect(bolt11).toMatch(/^lnbcrt12340n1/);
  await expect(page.getByTestId('deposit-invoice-status')).toHaveText('Waiting for the payment…');
  await context.close();
});
