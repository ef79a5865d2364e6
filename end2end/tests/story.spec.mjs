// The whole wallet story in the browser with two people, Alice and Bob: sign up,
// faucet, a channel to the hub, mining, Alice receives from Bob, pays him,
// QuickPays him and closes her channel. At each step the figures on screen are
// compared with what the API says. Screenshots of each page at 360 px and
// 1280 px, light and dark, are kept in end2end/artifacts/screenshots/.
import { test, expect } from '@playwright/test';
import { PASSWORD, apiData, open, photograph, shown, signUp, uniqueName } from './support.mjs';

/** The dashboard's three balances equal the API's. */
async function balancesMatch(page) {
  await open(page, '/');
  const data = await apiData(page);
  await expect(page.getByTestId('balance-total')).toHaveText(shown(data.balances.btcfunds));
  await expect(page.getByTestId('balance-lightning')).toHaveText(shown(data.balances.lntfunds));
  await expect(page.getByTestId('balance-onchain')).toHaveText(shown(data.balances.onchainfunds));
  return data;
}

/** The row of the channel this account opened (the hub opens one back too). */
function channelOf(page, capacity) {
  return page.getByTestId('channel').filter({ hasText: 'Opened by you' }).filter({
    has: page.getByTestId('channel-capacity').filter({ hasText: new RegExp(`^${shown(capacity)} sat$`) }),
  });
}

/** Funds the wallet with the faucet button and opens a channel to the hub. */
async function fundAndConnect(page, capacity) {
  await open(page, '/');
  await page.getByRole('button', { name: 'Get 1,000,000 test sats' }).click();
  await expect(page.getByText('Coins sent')).toBeVisible();
  await page.getByRole('button', { name: 'Mine 1 block' }).click();
  await expect(page.getByTestId('balance-onchain')).toHaveText('1,000,000');

  await page.getByRole('link', { name: 'Channels' }).click();
  await expect(page.getByText('No channels yet')).toBeVisible();
  const hub = (await apiData(page)).addressbook.find((c) => c.alias === 'hub').nodeId;
  // The hub is offered first and already filled in.
  await expect(page.getByLabel('Node id')).toHaveValue(hub);
  await page.getByLabel('Capacity (sat)').fill(String(capacity));
  await page.getByRole('button', { name: 'Open channel' }).click();
  await expect(page.getByTestId('open-result')).toContainText('pending');
  await expect(channelOf(page, capacity).getByTestId('channel-state')).toHaveText(/^Pending \(3 blocks\)$/);
}

test('alice and bob: faucet, channels, receive, pay, QuickPay, close', async ({ browser }) => {
  test.setTimeout(180_000);
  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  const aliceName = uniqueName('alice');
  const bobName = uniqueName('bob');

  await signUp(alice, aliceName);
  await expect(alice.getByTestId('username')).toHaveText(aliceName);
  await signUp(bob, bobName);
  await expect(bob.getByTestId('username')).toHaveText(bobName);

  await fundAndConnect(alice, 400000);
  await fundAndConnect(bob, 300000);
  // Mined from Bob's page: Alice's channel opens on her screen by itself.
  await bob.getByRole('button', { name: 'Mine 6 blocks' }).click();
  const aliceChannel = channelOf(alice, 400000);
  await expect(aliceChannel.getByTestId('channel-state')).toHaveText('Open');
  await expect(aliceChannel.getByTestId('channel-local')).toHaveText('400,000 sat');
  await photograph(alice, 'channels');
  let aliceData = await balancesMatch(alice);
  expect(aliceData.balances.lntfunds).toBe(400000);
  await photograph(alice, 'dashboard');
  await balancesMatch(bob);

  // Alice receives 25,000 sat from Bob.
  await open(alice, '/receive');
  await alice.getByLabel('Amount (sat)').fill('25000');
  await alice.getByLabel('Memo').fill('rent <share>');
  await alice.getByRole('button', { name: 'Create invoice' }).click();
  const invoice = await alice.getByTestId('invoice').textContent();
  await expect(alice.getByTestId('invoice-status')).toContainText('Waiting for payment');
  await photograph(alice, 'receive');

  await open(bob, '/send');
  await bob.getByLabel('Invoice', { exact: true }).fill(invoice);
  await bob.getByRole('button', { name: 'Review' }).click();
  await expect(bob.getByTestId('send-amount')).toHaveText('25,000 sat');
  await expect(bob.getByTestId('send-memo')).toHaveText('rent <share>');
  await bob.getByLabel('Your password').fill(PASSWORD);
  await bob.getByRole('button', { name: 'Pay' }).click();
  await expect(bob.getByTestId('send-result')).toHaveText('Paid 25,000 sat (fee 3.5)');
  await expect(alice.getByTestId('invoice-status')).toHaveText('Paid');
  aliceData = await balancesMatch(alice);
  expect(aliceData.balances.lntfunds).toBe(425000);
  expect(aliceData.transactions[0]).toMatchObject({ type: 'received', amount: 25000, memo: 'rent <share>' });

  // Alice pays Bob 10,000 sat and saves him as a contact.
  await open(bob, '/receive');
  await bob.getByLabel('Amount (sat)').fill('10000');
  await bob.getByLabel('Memo').fill('thanks');
  await bob.getByRole('button', { name: 'Create invoice' }).click();
  const bobInvoice = await bob.getByTestId('invoice').textContent();
  await open(alice, '/send');
  await alice.getByLabel('Invoice', { exact: true }).fill(bobInvoice);
  await alice.getByRole('button', { name: 'Review' }).click();
  await alice.getByLabel('Save the payee as (optional)').fill('bob');
  await alice.getByLabel('Your password').fill(PASSWORD);
  await photograph(alice, 'send');
  await alice.getByRole('button', { name: 'Pay' }).click();
  await expect(alice.getByTestId('send-result')).toHaveText('Paid 10,000 sat (fee 2)');
  await expect(bob.getByTestId('invoice-status')).toHaveText('Paid');
  aliceData = await balancesMatch(alice);
  expect(aliceData.balances.lntfunds).toBe(414998);

  // QuickPay: Bob by his alias, a fresh invoice from his node.
  await open(alice, '/contacts');
  await expect(alice.getByTestId('contact').filter({ hasText: 'bob' })).toBeVisible();
  await alice.getByLabel('Contact', { exact: true }).selectOption('bob');
  await alice.getByLabel('Amount (sat)').fill('5000');
  await alice.getByLabel('Memo').fill('quick <one>');
  await alice.getByLabel('Your password').fill(PASSWORD);
  await alice.getByRole('button', { name: 'Pay' }).click();
  await expect(alice.getByTestId('quickpay-result')).toHaveText('Paid 5,000 sat to bob (fee 1.5)');
  await photograph(alice, 'contacts');
  aliceData = await balancesMatch(alice);
  expect(aliceData.balances.lntfunds).toBe(409996.5);
  const bobData = await balancesMatch(bob);
  expect(bobData.transactions[0]).toMatchObject({ type: 'received', amount: 5000, memo: 'quick <one>' });

  // History: every payment, filtered and exported.
  await open(alice, '/history');
  await expect(alice.getByTestId('transaction')).toHaveCount(aliceData.transactions.length);
  await alice.getByLabel('Type').selectOption('sent');
  await alice.getByRole('button', { name: 'Filter' }).click();
  await expect(alice.getByTestId('transaction')).toHaveCount(2);
  await photograph(alice, 'history');

  // Alice closes the channel she opened, cooperatively: her side of it returns
  // on chain.
  await open(alice, '/channels');
  const channel = channelOf(alice, 400000);
  const local = Number((await channel.getByTestId('channel-local').textContent()).replace(' sat', '').replaceAll(',', ''));
  const before = await apiData(alice);
  await channel.getByRole('button', { name: 'Close channel' }).click();
  await channel.getByLabel('Your password').fill(PASSWORD);
  await channel.getByRole('button', { name: 'Yes, close it' }).click();
  await expect(channel.getByTestId('channel-state')).toHaveText('Closing');
  await alice.getByRole('button', { name: 'Mine 1 block' }).click();
  await expect(channel).toHaveCount(0);
  // It is listed with the recently closed ones.
  await expect(alice.getByTestId('closed-channel').filter({ hasText: '400,000' })).toHaveCount(1);
  aliceData = await balancesMatch(alice);
  expect(aliceData.balances.onchainfunds).toBe(before.balances.onchainfunds + local);
  expect(aliceData.balances.lntfunds).toBe(before.balances.lntfunds - local);
  await open(alice, '/settings');
  await photograph(alice, 'settings');
});
