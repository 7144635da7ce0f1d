// Browser test of single sign-on (issue 17): a real OpenID provider (the npm
// package oidc-provider, oidc_provider.mjs, started by run.py with one client
// and a few accounts), the hub started with --oidc-issuer, Debian's chromium
// through playwright-core. Sign in with the provider from the login page, land
// in the dashboard; refusals come back to the login page in its own words.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core'); // from NODE_PATH (the build's npm ci)

const DASH = process.env.DASH_URL;
const HUB = process.env.HUB_URL;
const ISSUER = process.env.OIDC_ISSUER;
const TMP = process.env.TEST_TMP;
const SHOTS = process.env.ROOST_SCREENSHOTS;
const WAIT = 15000;

let browser, page;

function test(name, fn) {
  nodeTest(name, async () => {
    try {
      await fn();
    } catch (e) {
      const file = path.join(TMP, 'failed-' + name.replace(/\W+/g, '-').slice(0, 60) + '.png');
      await page?.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error('screenshot of the failure:', file, 'at', page?.url());
      throw e;
    }
  });
}

async function shot(p, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
}

// The owner's CLI token (run.py logged the CLI in), for workspace settings.
function ownerToken() {
  const cfg = JSON.parse(fs.readFileSync(path.join(process.env.ROOST_CLI_CONFIG, 'roost', 'config.json')));
  return cfg.token;
}

// A fresh browser (no cookies) through the login page, the provider's pages
// (oidc-provider's development login: any password) and back to the hub.
// startUrl: a URL that leads to the provider (roost login --sso prints one);
// without it, the login page's button. back: where the browser ends up.
async function signIn(login, startUrl, back = DASH) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  page = await ctx.newPage();
  if (startUrl) {
    await page.goto(startUrl);
  } else {
    await page.goto(DASH + '/login');
    const button = page.getByRole('link', { name: 'Sign in with Test ID' });
    await button.waitFor({ timeout: WAIT });
    await button.click();
  }
  await page.waitForURL((u) => u.href.startsWith(ISSUER), { timeout: WAIT });
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('any password');
  await page.locator('button[type=submit]').click();
  // the consent page, once per account and client
  const consent = page.getByRole('button', { name: 'Continue' });
  await Promise.race([
    consent.waitFor({ timeout: WAIT }).then(() => consent.click()),
    page.waitForURL((u) => u.href.startsWith(back), { timeout: WAIT }),
  ]);
  await page.waitForURL((u) => u.href.startsWith(back), { timeout: WAIT });
  return ctx;
}

before(async () => {
  assert.ok(ISSUER, 'run.py starts the OpenID provider for oidc.test.mjs');
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
});

after(async () => {
  await browser?.close();
});

test('the login page offers sign-in with the provider and lands in the dashboard', async () => {
  const ctx = await signIn('owner@example.test');
  await page.waitForURL(/\/w\/\d+\/files/, { timeout: WAIT });
  await page.locator('.email[title^="owner@example.test"]').waitFor({ timeout: WAIT });
  await shot(page, 'oidc-signed-in');
  const cookies = await ctx.cookies([DASH + '/api/v1/', DASH + '/api/v1/oidc/']);
  const session = cookies.find((c) => c.name === 'roost_session');
  assert.ok(session, 'a dashboard session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.ok(!cookies.find((c) => c.name === 'roost_oidc'), 'the flow cookie is cleared');
  await ctx.close();
});

test('an account the hub does not know is sent back to the login page, refused', async () => {
  const ctx = await signIn('stranger@elsewhere.test');
  await page.waitForURL(/\/login\?sso_error=oidc_no_account/, { timeout: WAIT });
  await page.getByText('Ask an administrator for an invite').waitFor({ timeout: WAIT });
  await shot(page, 'oidc-refused');
  assert.ok(!(await ctx.cookies(DASH + '/api/v1/')).find((c) => c.name === 'roost_session'));
  await ctx.close();
});

test('an email the provider has not verified is refused', async () => {
  const ctx = await signIn('unverified@example.test');
  await page.waitForURL(/\/login\?sso_error=oidc_token/, { timeout: WAIT });
  await page.getByText('could not be verified').waitFor({ timeout: WAIT });
  assert.ok(!(await ctx.cookies(DASH + '/api/v1/')).find((c) => c.name === 'roost_session'));
  await ctx.close();
});

test('a workspace that admits a domain lets a new person in as a member', async () => {
  const tok = ownerToken();
  const ws = (await (await fetch(HUB + '/api/v1/workspaces', {
    headers: { Authorization: 'Bearer ' + tok } })).json()).workspaces[0].id;
  const res = await fetch(HUB + '/api/v1/workspaces/' + ws, {
    method: 'PATCH',
    headers: { Authorization: 'Bearer ' + tok, 'Content-Type': 'application/json' },
    body: JSON.stringify({ oidc_domains: ['newco.test'], oidc_default_role: 'member' }),
  });
  assert.equal(res.status, 200, await res.text());
  const ctx = await signIn('ada@newco.test');
  await page.waitForURL(/\/w\/\d+\/files/, { timeout: WAIT });
  await page.locator('.email[title^="ada@newco.test"]', { hasText: 'Ada Lovelace' }).waitFor({ timeout: WAIT });
  const members = await (await fetch(HUB + '/api/v1/workspaces/' + ws + '/members', {
    headers: { Authorization: 'Bearer ' + tok } })).json();
  const ada = (members.members || []).find((m) => m.email === 'ada@newco.test');
  assert.ok(ada, JSON.stringify(members));
  assert.equal(ada.role, 'member');
  await ctx.close();
});

test('roost login --sso completes in the browser through its loopback listener', async () => {
  const cfg = fs.mkdtempSync(path.join(TMP, 'sso-cli-'));
  const cli = spawn(process.env.ROOST_BIN, ['login', '--sso', '--hub', HUB], {
    env: { ...process.env, XDG_CONFIG_HOME: cfg, ROOST_NO_BROWSER: '1' },
  });
  let out = '', err = '';
  cli.stdout.on('data', (d) => (out += d));
  cli.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => cli.on('exit', resolve));
  try {
    const deadline = Date.now() + WAIT;
    let m;
    while (!(m = out.match(/(http:\/\/\S+\/api\/v1\/oidc\/start\?\S+)/)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(m, 'roost login --sso printed no URL: ' + out + err);
    const ctx = await signIn('owner@example.test', m[1], 'http://127.0.0.1:');
    await page.getByText('Signed in to roost').waitFor({ timeout: WAIT });
    await shot(page, 'oidc-cli-signed-in');
    assert.equal(await exited, 0, err);
    assert.match(out, new RegExp('logged in to ' + HUB + ' as owner@example.test'));
    const tok = JSON.parse(fs.readFileSync(path.join(cfg, 'roost', 'config.json'))).token;
    const me = await fetch(HUB + '/api/v1/me', { headers: { Authorization: 'Bearer ' + tok } });
    assert.equal(me.status, 200);
    assert.equal((await me.json()).email, 'owner@example.test');
    await ctx.close();
  } finally {
    cli.kill();
  }
});
