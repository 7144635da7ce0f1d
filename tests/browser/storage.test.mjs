// Browser tests of the dashboard's storage views (issue 15): a file's locations,
// the Storage page's settings and the files below min_replicas. A real hub and
// host alpha (started by run.py), a second host beta started here, Debian's
// chromium through playwright-core, no mocks.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core'); // from NODE_PATH (the build's npm ci)

const DASH = process.env.DASH_URL;
const TMP = process.env.TEST_TMP;
const SHOTS = process.env.ROOST_SCREENSHOTS;
const WAIT = 15000;
const FILE = '/docs/report.bin';

let browser, page, ws, beta;
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

async function apiGet(rel) {
  return page.evaluate(async (u) => (await fetch(u)).json(), '/api/v1/workspaces/' + ws + rel);
}

async function apiPatch(body) {
  const st = await page.evaluate(async ([u, b]) => (await fetch(u, {
    method: 'PATCH', body: JSON.stringify(b),
    headers: { 'Content-Type': 'application/json', 'X-Roost-CSRF': '1' },
  })).status, ['/api/v1/workspaces/' + ws, body]);
  assert.equal(st, 200);
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A second host, joined with the CLI's owner login, holding every folder.
async function startBeta() {
  const invite = JSON.parse(cli('host', 'invite', '--json'));
  const dir = path.join(TMP, 'host-beta');
  fs.mkdirSync(dir, { recursive: true });
  cli('host', 'join', invite.url, '--dir', dir, '--label', 'beta');
  const port = await freePort();
  const log = fs.openSync(path.join(TMP, 'host-beta.log'), 'a');
  return spawn(process.env.ROOST_BIN, ['host', 'run', '--dir', dir, '--listen', '127.0.0.1:' + port,
    '--heartbeat', '1'], { env, stdio: ['ignore', log, log] });
}

function watch(p, who) {
  p.on('pageerror', (e) => console.error(`[${who}] page error:`, e.message));
  p.on('console', (m) => m.type() === 'error' && console.error(`[${who}] console:`, m.text()));
}

before(async () => {
  beta = await startBeta();
  const f = path.join(TMP, 'report.bin');
  fs.writeFileSync(f, randomBytes(3 << 20));
  cli('mkdir', '-p', '/docs');
  cli('put', f, FILE);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await ctx.newPage();
  watch(page, 'owner');
  await page.goto(DASH + '/');
  await page.getByLabel('Email').fill(process.env.OWNER_EMAIL);
  await page.getByLabel('Password').fill(process.env.ROOST_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
  ws = Number(page.url().match(/\/w\/(\d+)\//)[1]);
});

after(async () => {
  if (beta && beta.exitCode === null) beta.kill('SIGTERM');
  await browser?.close();
});

const hostRow = (dialog, label) => dialog.locator(`tr[data-host="${label}"]`);

test("a file's locations show the hub's copy and both hosts, online and current", async () => {
  await page.goto(DASH + `/w/${ws}/files/docs`);
  const r = page.locator(`tr[data-path="${FILE}"]`);
  await r.locator('summary').click();
  await r.getByRole('button', { name: 'Locations' }).click();
  const dialog = page.getByRole('dialog', { name: 'Where report.bin is' });
  for (const label of [process.env.HOST_LABEL, 'beta']) {
    await hostRow(dialog, label).getByText('current').waitFor({ timeout: 30000 });
    await hostRow(dialog, label).getByText('online').waitFor();
  }
  await dialog.locator('[data-copies="3"]').waitFor({ timeout: WAIT });
  await dialog.getByText('needs 2').waitFor();
  await dialog.locator('.hub-copy').getByText('holds it all').waitFor();
  await dialog.getByText(/3\.0 MiB stored \((\d+) of \1 chunks\)/).waitFor();
  await shot(page, 'storage-locations');
  await dialog.getByRole('button', { name: 'Close' }).click();
});

test('the storage settings refuse bad values clearly, then save good ones', async () => {
  await page.getByRole('link', { name: 'Storage' }).click();
  const form = page.getByRole('region', { name: 'Storage settings' });
  await form.getByLabel('Minimum copies').waitFor({ timeout: WAIT });
  await form.getByLabel('Minimum copies').fill('0');
  await form.getByRole('textbox', { name: /Hub cache/ }).fill('lots');
  await form.getByRole('button', { name: 'Save storage settings' }).click();
  await form.getByText('Minimum copies must be between 1 and 10').waitFor({ timeout: WAIT });
  await form.getByText('Hub cache must be a whole number').waitFor();
  await shot(page, 'storage-settings-errors');
  let s = await apiGet('');
  assert.equal(s.min_replicas, 2); // nothing was sent

  await form.getByLabel('Hosts — hosts hold the bytes', { exact: false }).check();
  await form.getByRole('textbox', { name: /Hub cache/ }).fill('512');
  await form.getByLabel('Hub cache unit').selectOption('MiB');
  await form.getByLabel('Minimum copies').fill('4');
  await form.getByRole('textbox', { name: /Replica grace/ }).fill('2');
  await form.getByLabel('Replica grace unit').selectOption('minutes');
  await form.getByRole('button', { name: 'Save storage settings' }).click();
  await form.getByText('Saved.').waitFor({ timeout: WAIT });
  s = await apiGet('');
  assert.deepEqual([s.storage, s.hub_cache_bytes, s.min_replicas, s.replica_grace_s],
    ['hosts', 512 << 20, 4, 120]);
  await shot(page, 'storage-settings');
});

test('the files below the minimum are listed and link to their locations', async () => {
  const list = page.getByRole('region', { name: 'Files below the minimum copies' });
  const r = list.locator(`tr[data-path="${FILE}"]`);
  await r.waitFor({ timeout: WAIT });
  await r.getByText('2 of 4').waitFor(); // hosts storage: the hub's cache does not count
  await list.locator('[data-total="1"]').waitFor();
  await shot(page, 'storage-under-replicated');
  await r.getByRole('link', { name: FILE }).click();
  const dialog = page.getByRole('dialog', { name: 'Where report.bin is' });
  await dialog.getByText('below the minimum').waitFor({ timeout: WAIT });

  // Host beta stops: shown offline, its copy still counted within the grace.
  beta.kill('SIGTERM');
  await hostRow(dialog, 'beta').getByText('offline').waitFor({ timeout: 30000 });
  await dialog.locator('[data-copies="2"]').waitFor();
  await dialog.getByText("the hub's cache does not count").waitFor();
  await shot(page, 'storage-locations-offline');
  await dialog.getByRole('button', { name: 'Close' }).click();
  assert.doesNotMatch(page.url(), /where=/);

  await apiPatch({ min_replicas: 2, storage: 'hub' });
  await page.getByRole('link', { name: 'Storage' }).click();
  await page.getByText('Every file has at least 2 copies.').waitFor({ timeout: WAIT });
});
