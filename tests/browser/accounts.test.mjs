// Browser tests of accounts (issue 17, docs/accounts.md): the Account page's
// password change, an owner's reset link from the members page and the page it
// opens, and two-factor authentication — enrolment with the key the page shows
// (codes computed here with node's crypto, as an authenticator app would) and
// the login form asking for the code. A real hub (run.py), Debian's chromium
// through playwright-core, no mocks.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core'); // from NODE_PATH (the build's npm ci)

const DASH = process.env.DASH_URL;
const HUB = process.env.HUB_URL;
const TMP = process.env.TEST_TMP;
const SHOTS = process.env.ROOST_SCREENSHOTS;
const WAIT = 15000;
const PW = 'member password 1';

let browser, page, owner;
const env = { ...process.env, XDG_CONFIG_HOME: process.env.ROOST_CLI_CONFIG };

function cli(...args) {
  return execFileSync(process.env.ROOST_BIN, args, { env, encoding: 'utf8' });
}

function test(name, fn) {
  nodeTest(name, async () => {
    try {
      await fn();
    } catch (e) {
      const file = path.join(TMP, 'failed-' + name.replace(/\W+/g, '-').slice(0, 60) + '.png');
      await page?.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error('screenshot of the failure:', file);
      throw e;
    }
  });
}

async function shot(p, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
}

async function call(method, p, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(HUB + '/api/v1' + p, { method, headers, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json().catch(() => null) };
}

// RFC 6238: HMAC-SHA-1 of the 30-second step, six digits.
function totp(secret, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '')) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offset));
  const mac = crypto.createHmac('sha1', key).update(msg).digest();
  const off = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
}

let n = 0;
// A new member of the default workspace: {email, id, token}.
async function newUser(name) {
  const url = cli('invite').split('\n')[0];
  const token = url.slice(url.lastIndexOf('/') + 1);
  const email = 'acct' + ++n + '@example.test';
  const r = await call('POST', '/invites/accept', { token, email, password: PW, name });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return { email, id: r.body.user.id, token: r.body.token, ws: r.body.workspace.id };
}

async function login(p, email, password) {
  await p.goto(DASH + '/login');
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
}

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  page = await ctx.newPage();
  owner = (await call('POST', '/login', { email: process.env.OWNER_EMAIL, password: process.env.ROOST_PASSWORD })).body.token;
});

after(async () => {
  await browser?.close();
});

test('the Account page changes the password and ends the other logins', async () => {
  const u = await newUser('Pat Doe');
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const p = await ctx.newPage();
  try {
    await login(p, u.email, PW);
    await p.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
    await p.getByRole('link', { name: 'Pat Doe' }).click(); // the user's own page
    await p.getByRole('heading', { name: 'Your account' }).waitFor({ timeout: WAIT });
    await p.getByLabel('Current password').fill('not the password');
    await p.getByLabel('New password (8 characters or more)').fill('changed password 2');
    await p.getByLabel('New password again').fill('changed password 2');
    await p.getByRole('button', { name: 'Change password' }).click();
    await p.getByRole('alert').getByText('The current password is wrong.').waitFor({ timeout: WAIT });
    await p.getByLabel('Current password').fill(PW);
    await p.getByRole('button', { name: 'Change password' }).click();
    await p.getByRole('status').getByText(/Password changed; 1 other session or app password ended/).waitFor({ timeout: WAIT });
    await shot(p, 'account-password');
    assert.equal((await call('GET', '/me', undefined, u.token)).status, 401, 'the other session survived');
    assert.equal((await call('POST', '/login', { email: u.email, password: 'changed password 2' })).status, 200);
    // this browser's session stayed
    await p.reload();
    await p.getByRole('heading', { name: 'Your account' }).waitFor({ timeout: WAIT });
  } finally {
    await ctx.close();
  }
});

test('an owner makes a reset link on the members page; it works once', async () => {
  const u = await newUser('Rita Reset');
  await login(page, process.env.OWNER_EMAIL, process.env.ROOST_PASSWORD);
  await page.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
  await page.goto(DASH + '/w/' + u.ws + '/access');
  const row = page.getByRole('row', { name: /Rita Reset/ });
  await row.getByRole('button', { name: 'Reset link' }).click();
  const field = page.getByLabel('Reset link');
  await field.waitFor({ timeout: WAIT });
  const url = await field.inputValue();
  assert.ok(url.startsWith(DASH + '/reset/rst_'), url);
  await shot(page, 'members-reset-link');

  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const p = await ctx.newPage();
  try {
    await p.goto(url);
    await p.getByRole('heading', { name: 'New password' }).waitFor({ timeout: WAIT });
    await p.getByText(u.email).waitFor();
    await p.getByLabel('New password (8 characters or more)').fill('from the link 3');
    await p.getByLabel('Again').fill('from the link 3');
    await shot(p, 'reset-page');
    await p.getByRole('button', { name: 'Set password' }).click();
    await p.getByRole('heading', { name: 'Password set' }).waitFor({ timeout: WAIT });
    assert.equal((await call('GET', '/me', undefined, u.token)).status, 401, 'a session outlived the reset');
    assert.equal((await call('POST', '/login', { email: u.email, password: 'from the link 3' })).status, 200);
    // a second use
    await p.goto(url);
    await p.getByRole('heading', { name: 'This reset link does not work' }).waitFor({ timeout: WAIT });
    await p.getByRole('alert').getByText(/used already/).waitFor();
    // a forged one
    await p.goto(DASH + '/reset/rst_forged');
    await p.getByRole('alert').getByText(/not a valid reset link/).waitFor({ timeout: WAIT });
  } finally {
    await ctx.close();
  }
});

test('two-factor enrolment on the Account page, then the login asks for the code', async () => {
  const u = await newUser('Toto Pi');
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const p = await ctx.newPage();
  try {
    await login(p, u.email, PW);
    await p.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
    await p.goto(DASH + '/account');
    await p.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    const uri = await p.getByLabel('otpauth:// link').inputValue();
    const secret = await p.getByLabel('Key', { exact: true }).inputValue();
    assert.ok(uri.startsWith('otpauth://totp/roost:') && uri.includes('secret=' + secret), uri);
    await p.getByLabel('Code the app shows').fill('000000' === totp(secret, -1) ? '111111' : '000000');
    await p.getByRole('button', { name: 'Turn on' }).click();
    await p.getByRole('alert').getByText(/wrong code/).waitFor({ timeout: WAIT });
    await p.getByLabel('Code the app shows').fill(totp(secret, -1));
    await p.getByRole('button', { name: 'Turn on' }).click();
    await p.getByText(/Keep these recovery codes somewhere safe/).waitFor({ timeout: WAIT });
    assert.equal(await p.locator('.recovery-codes li').count(), 10);
    await shot(p, 'account-2fa-codes');
    await p.getByRole('button', { name: 'I have saved them' }).click();
    await p.getByText(/is on/).waitFor({ timeout: WAIT });

    // a new browser: the password, then the code
    const ctx2 = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const q = await ctx2.newPage();
    try {
      await login(q, u.email, PW);
      await q.getByLabel('Two-factor code').waitFor({ timeout: WAIT });
      await shot(q, 'login-code');
      await q.getByLabel('Two-factor code').fill('123');
      await q.getByRole('button', { name: 'Verify' }).click();
      await q.getByRole('alert').getByText(/wrong code/).waitFor({ timeout: WAIT });
      await q.getByLabel('Two-factor code').fill(totp(secret));
      await q.getByRole('button', { name: 'Verify' }).click();
      await q.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
    } finally {
      await ctx2.close();
    }
    // the owner's members page marks it
    const members = await call('GET', '/workspaces/' + u.ws + '/members', undefined, owner);
    assert.equal(members.body.members.find((m) => m.email === u.email).totp, true);
  } finally {
    await ctx.close();
  }
});
