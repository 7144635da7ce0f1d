// Browser tests of the dashboard's uploads (issue 16): a folder keeps its tree,
// the progress shows speed and time left, and an upload a reload interrupted
// resumes when its file is picked again, sending only what the hub lacks. A
// real hub and host (started by run.py), Debian's chromium through
// playwright-core, no mocks; chunk PUTs are only slowed (page.route).
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core'); // from NODE_PATH (the build's npm ci)

const DASH = process.env.DASH_URL;
const HUB = process.env.HUB_URL;
const TMP = process.env.TEST_TMP;
const SHOTS = process.env.ROOST_SCREENSHOTS;
const WAIT = 20000;
const CHUNK_PUT = /\/api\/v1\/workspaces\/\d+\/chunks\/[0-9a-f]{64}$/;

let browser, page, ws;

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

async function shot(name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
}

async function apiGet(rel) {
  return page.evaluate(async (u) => {
    const r = await fetch(u);
    return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? await r.json() : null };
  }, '/api/v1/workspaces/' + ws + rel);
}

// The hub's count of chunk bytes it stored from uploads (GET /metrics, loopback).
async function bytesReceived() {
  const text = await (await fetch(HUB + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith('roost_chunk_bytes_received_total '));
  assert.ok(line, 'no roost_chunk_bytes_received_total in /metrics');
  return Number(line.split(' ')[1]);
}

// Chunk PUTs held back ms each, so an upload takes a few seconds.
async function throttle(ms) {
  await page.route(CHUNK_PUT, async (route) => {
    await new Promise((r) => setTimeout(r, ms));
    await route.continue().catch(() => {}); // the page may have gone (a reload)
  });
}

const untrottle = () => page.unroute(CHUNK_PUT);

function writeRandom(name, size) {
  const file = path.join(TMP, name);
  const data = randomBytes(size);
  fs.writeFileSync(file, data);
  return { file, sha: createHash('sha256').update(data).digest('hex') };
}

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(DASH + '/');
  await page.getByLabel('Email').fill(process.env.OWNER_EMAIL);
  await page.getByLabel('Password').fill(process.env.ROOST_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
  ws = Number(page.url().match(/\/w\/(\d+)\//)[1]);
});

after(async () => {
  await browser?.close();
});

test('a picked folder arrives with its tree', async () => {
  const dir = path.join(TMP, 'album');
  fs.mkdirSync(path.join(dir, 'sub', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cover.txt'), 'cover');
  fs.writeFileSync(path.join(dir, 'sub', 'a.txt'), 'alpha');
  fs.writeFileSync(path.join(dir, 'sub', 'deeper', 'b.txt'), 'bravo!');
  await page.getByLabel('Choose a folder to upload').setInputFiles(dir);
  await page.locator('tr[data-path="/album"]').waitFor({ timeout: WAIT });
  await page.locator('.upload.done').nth(2).waitFor({ timeout: WAIT });
  for (const [p, size] of [['/album/cover.txt', 5], ['/album/sub/a.txt', 5], ['/album/sub/deeper/b.txt', 6]]) {
    const r = await apiGet('/info?path=' + encodeURIComponent(p));
    assert.equal(r.status, 200, p);
    assert.equal(r.body.size, size, p);
  }
  await shot('upload-folder');
});

test('the progress shows the speed and the time left', async () => {
  const { file } = writeRandom('speed.bin', 8 * 1024 * 1024);
  await throttle(700);
  try {
    await page.getByLabel('Choose files to upload').setInputFiles(file);
    const status = page.locator('.upload.running .upload-status').filter({ hasText: /\/s · .+ left/ });
    await status.first().waitFor({ timeout: WAIT });
    assert.match(await status.first().textContent(), /uploading \d+% · [\d.]+ (B|KiB|MiB)\/s · \d+ (s|min)/);
    await shot('upload-speed');
  } finally {
    await untrottle();
  }
  await page.locator('tr[data-path="/speed.bin"]').waitFor({ timeout: WAIT });
});

test('a reload mid-upload, then the same file picked again, sends only the rest', async () => {
  const size = 16 * 1024 * 1024;
  const { file, sha } = writeRandom('resume.bin', size);
  const start = await bytesReceived();
  await throttle(1000);
  await page.getByLabel('Choose files to upload').setInputFiles(file);
  // Wait until the hub took some of it, then reload before the rest.
  const deadline = Date.now() + WAIT;
  while ((await bytesReceived()) === start) {
    assert.ok(Date.now() < deadline, 'no chunk of resume.bin reached the hub');
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.reload();
  await untrottle();
  await page.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
  const first = (await bytesReceived()) - start;
  assert.ok(first > 0 && first < size, `first run sent ${first} of ${size}`);
  assert.equal((await apiGet('/info?path=%2Fresume.bin')).status, 404, 'committed before the reload');

  const offer = page.locator('.upload.interrupted').filter({ hasText: 'resume.bin' });
  await offer.waitFor({ timeout: WAIT });
  assert.match(await offer.textContent(), /interrupted at \d+%/);
  await shot('upload-interrupted');
  const chooser = page.waitForEvent('filechooser');
  await offer.getByRole('button', { name: 'Resume…' }).click();
  await (await chooser).setFiles(file);
  await page.locator('.upload.done').filter({ hasText: 'resume.bin' }).waitFor({ timeout: WAIT });
  assert.match(await page.locator('.upload.done').filter({ hasText: 'resume.bin' }).textContent(), /resumed/);

  const second = (await bytesReceived()) - start - first;
  assert.ok(second > 0 && second <= size - first,
    `the resumed run sent ${second} bytes; the first had sent ${first} of ${size}`);
  const info = await apiGet('/info?path=%2Fresume.bin');
  assert.equal(info.status, 200);
  assert.equal(info.body.size, size);
  assert.equal(info.body.hash, sha);
  // Nothing is left to resume once it is committed.
  assert.equal(await page.evaluate(() => Object.keys(JSON.parse(localStorage.getItem('roost.uploads') || '{}')).length), 0);
  await shot('upload-resumed');
});
