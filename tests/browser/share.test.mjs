// Browser tests of what people outside the team see (issue 16): share pages on
// the content port (a folder, a password link, a write link) and the invite
// pages on the dashboard (a new user joins; a host invite says what to run).
// A real hub and host (started by run.py), Debian's chromium through
// playwright-core, no mocks.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core'); // from NODE_PATH (the build's npm ci)

const DASH = process.env.DASH_URL;
const TMP = process.env.TEST_TMP;
const SHOTS = process.env.ROOST_SCREENSHOTS;
const WAIT = 15000;
const EVIL = '<img src=x onerror=alert(1)>.txt';

let browser, page, alerts = 0;
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

// A 96×64 PNG: a blue-to-green gradient, so the preview is visible.
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = 30;
      raw[o + 1] = Math.round((255 * x) / w);
      raw[o + 2] = Math.round((255 * y) / h);
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function put(remote, data) {
  const f = path.join(TMP, 'up-' + path.basename(remote).replace(/\W/g, '_'));
  fs.writeFileSync(f, data);
  cli('put', f, remote);
}

const share = (...args) => JSON.parse(cli('share', ...args, '--json')).url;

before(async () => {
  cli('mkdir', '-p', '/outside/photos/2026');
  cli('mkdir', '-p', '/inbox');
  put('/outside/readme.txt', 'Hello from roost.\nThis folder is shared with a link.\n');
  put('/outside/' + EVIL, 'not a tag');
  put('/outside/photos/garden.png', png(96, 64));
  put('/outside/photos/2026/notes.txt', 'deep inside');
  put('/outside/secret.txt', 'the secret bytes');
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 }, acceptDownloads: true });
  page = await ctx.newPage();
  page.on('dialog', (d) => {
    alerts++;
    d.dismiss();
  });
});

after(async () => {
  await browser?.close();
});

test('a folder link shows names, sizes and dates, escapes names, and opens nested folders', async () => {
  const url = share('/outside');
  await page.goto(url);
  await page.getByRole('heading', { name: 'outside' }).waitFor({ timeout: WAIT });
  const table = page.locator('table');
  await table.getByRole('link', { name: 'readme.txt', exact: true }).waitFor();
  await table.getByRole('link', { name: EVIL, exact: true }).waitFor(); // the name, as text
  assert.equal(await page.locator('img[src=x]').count(), 0);
  await table.getByText('53 B').waitFor();
  await table.locator('time').first().waitFor();
  await page.getByRole('link', { name: 'Download all as ZIP' }).waitFor();
  await shot(page, 'share-folder');
  await table.getByRole('link', { name: /photos/ }).click();
  await page.getByRole('heading', { name: 'photos' }).waitFor({ timeout: WAIT });
  await page.getByRole('link', { name: /2026/ }).click();
  await page.locator('table').getByRole('link', { name: 'notes.txt', exact: true }).waitFor({ timeout: WAIT });
  const crumbs = page.getByRole('navigation', { name: 'Folder path' });
  await crumbs.getByRole('link', { name: 'photos' }).click();
  const rows = page.locator('table');
  await rows.getByRole('link', { name: 'Download garden.png' }).waitFor({ timeout: WAIT });
  // a file in a shared folder opens its own page, with its preview
  await rows.getByRole('link', { name: 'garden.png', exact: true }).click();
  await page.getByRole('img', { name: 'Preview of garden.png' }).waitFor({ timeout: WAIT });
  await page.getByRole('navigation', { name: 'Folder path' }).getByRole('link', { name: 'photos' }).waitFor();
  assert.equal(alerts, 0);
});

test('a shared image is previewed on its page', async () => {
  await page.goto(share('/outside/photos/garden.png'));
  const img = page.getByRole('img', { name: 'Preview of garden.png' });
  await img.waitFor({ timeout: WAIT });
  await page.waitForFunction(() => document.querySelector('img.preview')?.naturalWidth === 96);
  await page.getByText('Size').waitFor();
  await shot(page, 'share-file-image');
});

test('a password link asks for its password, says when it is wrong, then downloads', async () => {
  const url = share('/outside/secret.txt', '--password', 'garden gate');
  await page.goto(url);
  await page.getByRole('heading', { name: 'This link needs a password' }).waitFor({ timeout: WAIT });
  await page.getByLabel('Password').fill('wrong guess');
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByRole('alert').getByText('Wrong password.').waitFor({ timeout: WAIT });
  await shot(page, 'share-password-wrong');
  assert.ok(!page.url().includes('guess'));
  await page.getByLabel('Password').fill('garden gate');
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByRole('heading', { name: 'secret.txt' }).waitFor({ timeout: WAIT });
  assert.ok(!page.url().includes('garden'));
  await shot(page, 'share-password-open');
  const [dl] = await Promise.all([
    page.waitForEvent('download', { timeout: WAIT }),
    page.getByRole('link', { name: 'Download' }).click(),
  ]);
  assert.equal(fs.readFileSync(await dl.path(), 'utf8'), 'the secret bytes');
});

test('a write link uploads files with progress and lists them', async () => {
  await page.goto(share('/inbox', '--write'));
  await page.getByRole('heading', { name: 'inbox' }).waitFor({ timeout: WAIT });
  await page.getByText('This folder is empty.').waitFor();
  const f = path.join(TMP, 'from-a-guest.txt');
  fs.writeFileSync(f, 'dropped off by a guest\n');
  await page.getByLabel('Files to add here').setInputFiles(f);
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.getByRole('status').getByText('Uploaded 1 file.').waitFor({ timeout: WAIT });
  await shot(page, 'share-upload-done');
  await page.locator('table').getByRole('link', { name: 'from-a-guest.txt', exact: true }).waitFor({ timeout: WAIT });
  await shot(page, 'share-upload');
  assert.match(cli('ls', '/inbox'), /from-a-guest\.txt/);
});

test('an invite opens a join page; a new user joins and lands in the workspace', async () => {
  const url = cli('invite').split('\n')[0];
  assert.ok(url.startsWith(DASH + '/invite/'), url);
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const guest = await ctx.newPage();
  try {
    await guest.goto(url);
    await guest.getByRole('heading', { name: /Join / }).waitFor({ timeout: WAIT });
    await guest.getByText(/You were invited to the workspace/).waitFor();
    await guest.getByLabel('Your name').fill('Grace Guest');
    await guest.getByLabel('Email').fill('grace@example.test');
    await guest.getByLabel(/Choose a password/).fill('grace password 1');
    await shot(guest, 'invite-join');
    await guest.getByRole('button', { name: 'Create account and join' }).click();
    await guest.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
    assert.match(guest.url(), /\/w\/\d+\/files/);
    await guest.getByText('outside').first().waitFor({ timeout: WAIT });
    await shot(guest, 'invite-joined');
    // the invite was for one person
    await guest.goto(url);
    await guest.getByRole('heading', { name: 'This invite does not work' }).waitFor({ timeout: WAIT });
  } finally {
    await ctx.close();
  }
});

test('someone with an account signs in on the join page and lands in the new workspace', async () => {
  cli('workspaces', 'create', 'guests');
  const url = cli('invite', '--workspace', 'guests').split('\n')[0];
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const guest = await ctx.newPage();
  try {
    await guest.goto(url);
    await guest.getByRole('heading', { name: 'Join guests' }).waitFor({ timeout: WAIT });
    await guest.getByRole('tab', { name: 'Sign in' }).click();
    assert.equal(await guest.getByLabel('Your name').count(), 0);
    await guest.getByLabel('Email').fill('grace@example.test');
    await guest.getByLabel('Password').fill('not her password');
    await guest.getByRole('button', { name: 'Sign in and join' }).click();
    await guest.getByRole('alert').getByText('Wrong password for this account.').waitFor({ timeout: WAIT });
    await shot(guest, 'invite-signin-wrong');
    await guest.getByLabel('Password').fill('grace password 1');
    await guest.getByRole('button', { name: 'Sign in and join' }).click();
    await guest.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
    const ws = JSON.parse(cli('workspaces', '--json')).find((w) => w.name === 'guests');
    assert.match(guest.url(), new RegExp('/w/' + ws.id + '/files'));
  } finally {
    await ctx.close();
  }
});

test('a host invite page says the command to run on the host', async () => {
  const url = cli('host', 'invite').split('\n')[0];
  assert.ok(url.startsWith(DASH + '/host-invite/'), url);
  await page.goto(url);
  await page.getByRole('heading', { name: /Add a host to/ }).waitFor({ timeout: WAIT });
  const cmd = await page.getByLabel('Command').inputValue();
  assert.equal(cmd, 'roost host join ' + url + ' --dir DIR --label NAME');
  await shot(page, 'host-invite');
});
