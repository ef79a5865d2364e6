// The address book, the history with its filters and CSV export, the settings
// with the password change, and the wallet pages without JavaScript.
import { test, expect } from '@playwright/test';

import { PASSWORD, apiAccount, apiData, connectToHub, open, shown, signIn, signUp, uniqueName } from './support.mjs';

test('contacts are added, refused when wrong, and removed after a confirmation', async ({ page, request }) => {
  const friend = await apiAccount(request, 'friend');
  const friendNode = (await friend.data()).info.nodeId;
  await signUp(page, uniqueName('book'));
  await open(page, '/contacts');
  // Every account starts with the hub.
  await expect(page.getByTestId('contact')).toHaveCount(1);

  await page.getByLabel('Alias').fill('friend_i');
  await page.getByLabel('Node id').fill('02abc');
  await page.getByRole('button', { name: 'Add contact' }).click();
  await expect(page.locator('#contact-node-error')).toContainText('66-digit hex');

  await page.getByLabel('Node id').fill(friendNode);
  await page.getByRole('button', { name: 'Add contact' }).click();
  const row = page.getByTestId('contact').filter({ hasText: 'friend_i' });
  await expect(row).toContainText(friendNode);
  expect((await apiData(page)).addressbook.map((c) => c.alias)).toContain('friend_i');

  await row.getByRole('button', { name: 'Remove friend_i' }).click();
  await row.getByRole('button', { name: 'Yes, remove' }).click();
  await expect(row).toHaveCount(0);
  expect((await apiData(page)).addressbook.map((c) => c.alias)).not.toContain('friend_i');
});

test('the history filters by type, day and memo, and exports the same as CSV', async ({ page, request }) => {
  const payer = await apiAccount(request, 'hist');
  const payee = await apiAccount(request, 'histee');
  await connectToHub(payer);
  await connectToHub(payee);
  for (const [amount, memo] of [[100, 'tea'], [200, 'cake, "big"'], [300, '=HYPERLINK("x")']]) {
    const invoice = (await payee.call('/rest/v1/createinvoice', { amount, memo })).payment_request;
    await payer.call('/rest/v1/sendinvoice', { invoiceid: invoice });
  }
  await signIn(page, payer.name);
  await open(page, '/history');
  const all = (await apiData(page)).transactions;
  await expect(page.getByTestId('transaction')).toHaveCount(all.length);

  await page.getByLabel('Type').selectOption('sent');
  await page.getByLabel('Memo contains').fill('CAKE');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/type=sent.*q=CAKE/);
  await expect(page.getByTestId('transaction')).toHaveCount(1);
  await expect(page.getByTestId('transaction')).toContainText('cake, "big"');

  const today = new Date().toISOString().slice(0, 10);
  await open(page, `/history?type=sent&from=${today}&to=${today}`);
  await expect(page.getByTestId('transaction')).toHaveCount(3);
  await open(page, '/history?type=sent&from=2001-01-01&to=2001-01-02');
  await expect(page.getByText('No transactions match.')).toBeVisible();
  await open(page, '/history?from=yesterday');
  await expect(page.getByRole('alert').filter({ hasText: 'from must be a date' })).toBeVisible();

  await open(page, '/history?type=sent');
  const csv = await page.request.get(await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href'));
  expect(csv.status()).toBe(200);
  expect(csv.headers()['content-type']).toContain('text/csv');
  const lines = (await csv.text()).trim().split('\r\n');
  // Every text cell is quoted; amounts are bare numbers.
  expect(lines[0]).toBe('"time","type","amount","fee","unit","memo","status","id"');
  expect(lines).toHaveLength(4);
  expect(lines.join('\n')).toContain('"cake, ""big"""');
  // A memo that a spreadsheet would run stays text.
  expect(lines.join('\n')).toContain(`"'=HYPERLINK(""x"")"`);
  const sent = all.filter((t) => t.type === 'sent');
  expect(lines.slice(1).map((l) => l.split(',').at(-1).replaceAll('"', '')).sort()).toEqual(sent.map((t) => t.id).sort());
});

test('settings change the unit, the payment check and the password', async ({ page, request }) => {
  const name = uniqueName('sett');
  await signUp(page, name);
  await expect(page.getByTestId('username')).toHaveText(name);
  const token = (await (await request.post('/api/v1/auth', { data: { username: name, password: PASSWORD } })).json()).access_token;
  await page.getByRole('link', { name: 'Settings' }).click();

  await page.getByLabel('Show amounts in').selectOption('mbtc');
  await page.getByLabel('Ask for my password').uncheck();
  await page.getByLabel('Your password, to turn the check off').fill('Wrong-horse-7');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.locator('#settings-password-error')).toHaveText('password is not correct');
  expect((await apiData(page)).recheck_password).toBe(true);
  await page.getByLabel('Your password, to turn the check off').fill(PASSWORD);
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByText('Settings saved.')).toBeVisible();
  const data = await apiData(page);
  expect(data.denomination).toBe('mbtc');
  expect(data.recheck_password).toBe(false);

  await page.getByLabel('Current password').fill('Wrong-horse-7');
  await page.getByLabel('New password', { exact: true }).fill('Better-horse-8');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.locator('#field-old_password-error')).toHaveText('current password is not correct');
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByText('Password changed.')).toBeVisible();
  // This browser stays signed in; the token from before does not.
  expect((await page.request.get('/rest/v1/ping')).status()).toBe(200);
  expect((await request.get('/rest/v1/ping', { headers: { Authorization: `Bearer ${token}` } })).status()).toBe(401);

  await page.getByRole('main').getByRole('button', { name: 'Sign out' }).last().click();
  await expect(page).toHaveURL(/\/signin$/);
  await signIn(page, name, 'Better-horse-8');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('every wallet page renders its data on the server', async ({ page, request }) => {
    const account = await apiAccount(request, 'nojs');
    await connectToHub(account);
    const data = await account.data();
    await page.goto('/signin');
    await page.getByLabel('Username').fill(account.name);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByTestId('balance-lightning')).toHaveText(shown(data.balances.lntfunds));

    await page.goto('/channels');
    const own = page.getByTestId('channel').filter({ hasText: 'Opened by you' });
    await expect(own.getByTestId('channel-state')).toHaveText('Open');
    await expect(own.getByTestId('channel-capacity')).toHaveText('100,000 sat');
    await expect(page.getByTestId('channel')).toHaveCount(data.channels.filter((c) => c.state !== 'Closed').length);
    await page.goto('/contacts');
    await expect(page.getByTestId('contact').filter({ hasText: 'hub' })).toBeVisible();
    await page.goto('/history');
    await expect(page.getByTestId('transaction')).toHaveCount(data.transactions.length);
    // The filter is a plain GET form: it works without JavaScript too.
    await page.getByLabel('Type').selectOption('onchain');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(/type=onchain/);
    await expect(page.getByTestId('transaction')).toHaveCount(data.transactions.filter((t) => t.type.startsWith('onchain')).length);
    for (const [path, heading] of [['/receive', 'Receive over Lightning'], ['/send', 'Send over Lightning'], ['/settings', 'Settings']]) {
      await page.goto(path);
      await expect(page.getByRole('heading', { name: heading, exact: true })).toBeVisible();
    }
    // Signing out is a plain form too: the session ends, the start page greets a visitor.
    await page.getByRole('main').getByRole('button', { name: 'Sign out' }).last().click();
    await expect(page).toHaveURL(/\/signin$/);
    expect((await page.request.get('/rest/v1/getalldata')).status()).toBe(401);
    await page.goto('/');
    await expect(page.getByRole('link', { name: 'Create an account' })).toBeVisible();
  });

  test('the history shows 100 at a time, the older ones behind a link', async ({ page, request }) => {
    const account = await apiAccount(request, 'pages');
    const { address } = await account.data();
    for (let i = 0; i < 105; i += 1) {
      await account.call('/api/v1/simnet/faucet', { address, sats: 1000 + i });
    }
    await page.goto('/signin');
    await page.getByLabel('Username').fill(account.name);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByTestId('username')).toHaveText(account.name);
    await page.goto('/history?type=onchain');
    await expect(page.getByTestId('transaction')).toHaveCount(100);
    // The link keeps the filter and carries the cursor in the URL.
    await page.getByTestId('history-older').click();
    await expect(page).toHaveURL(/type=onchain.*cursor=/);
    await expect(page.getByTestId('transaction')).toHaveCount(5);
    await expect(page.getByTestId('history-older')).toHaveCount(0);
    await page.getByRole('link', { name: 'Newest' }).click();
    await expect(page.getByTestId('transaction')).toHaveCount(100);
  });
});
