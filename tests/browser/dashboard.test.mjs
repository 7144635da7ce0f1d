// Browser tests of the roost dashboard: a real hub and host (started by run.py),
// Debian's chromium driven by playwright-core, no mocks. Each test states one
// behaviour of issue 6 and asserts what a user would see.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core'); // from NODE_PATH (the build's npm ci)

const DASH = process.env.DASH_URL;
const CONTENT = process.env.CONTENT_URL; // the hub's content port, where previews come from
const OWNER = process.env.OWNER_EMAIL;
const PASSWORD = process.env.ROOST_PASSWORD;
const TMP = process.env.TEST_TMP;
const SHOTS = process.env.ROOST_SCREENSHOTS;
const MEMBER = 'ann@example.test';
const MEMBER_PW = 'ann password 123';
const WAIT = 15000;

let browser, owner, page, ws;

function cli(...args) {
  return execFileSync(process.env.ROOST_BIN, args, {
    env: { ...process.env, XDG_CONFIG_HOME: process.env.ROOST_CLI_CONFIG },
    encoding: 'utf8',
  });
}

// A test that leaves a screenshot of the owner's page in TEST_TMP when it fails.
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

async function login(p, email, password) {
  await p.goto(DASH + '/');
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
}

const row = (p, filePath) => p.locator(`tr[data-path="${filePath}"]`);

async function rowAction(p, filePath, name) {
  const r = row(p, filePath);
  await r.locator('summary').click();
  await r.getByRole(name === 'Download' || name === 'Access' ? 'link' : 'button', { name, exact: true }).click();
}

// Every form control on the page has an accessible name (a label or aria-label).
async function assertLabelled(p) {
  const unlabelled = await p.evaluate(() =>
    [...document.querySelectorAll('input:not([type=hidden]):not([hidden]), select, button')]
      .filter((el) => {
        if (el.getAttribute('aria-label') || el.closest('label')) return false;
        if (el.tagName === 'BUTTON' && el.textContent.trim()) return false;
        return !(el.id && document.querySelector(`label[for="${el.id}"]`));
      })
      .map((el) => el.outerHTML.slice(0, 80)));
  assert.deepEqual(unlabelled, []);
}

async function apiGet(p, rel) {
  return p.evaluate(async (u) => {
    const r = await fetch(u);
    return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? await r.json() : null };
  }, '/api/v1' + rel);
}

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
  owner = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  page = await owner.newPage();
  watch(page, 'owner');
});

// Script errors in the page fail loudly in the log rather than as a mystery timeout.
function watch(p, who) {
  p.on('pageerror', (e) => console.error(`[${who}] page error:`, e.message));
  p.on('console', (m) => m.type() === 'error' && console.error(`[${who}] console:`, m.text()));
}

after(async () => {
  await browser?.close();
});

test('login refuses a wrong password, then logs in with an HttpOnly session cookie', async () => {
  await page.goto(DASH + '/');
  await page.getByLabel('Email').waitFor();
  await assertLabelled(page);
  await shot(page, 'login');
  await page.getByLabel('Email').fill(OWNER);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong email or password' }).waitFor({ timeout: WAIT });
  await login(page, OWNER, PASSWORD);
  assert.match(page.url(), /\/w\/\d+\/files$/);
  ws = Number(page.url().match(/\/w\/(\d+)\//)[1]);
  const cookie = (await owner.cookies()).find((c) => c.name === 'roost_session');
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', JSON.stringify(cookie));
  assert.equal(await page.evaluate(() => document.cookie.includes('roost_session')), false);
  await page.locator('.live-live').waitFor({ timeout: WAIT }); // the feed is connected
});

test('upload a file, see it listed, download it byte for byte; chunks dedup with the CLI', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 12345); // several FastCDC chunks
  const src = path.join(TMP, 'big.bin');
  fs.writeFileSync(src, data);
  await page.getByLabel('Choose files to upload').setInputFiles(src);
  await row(page, '/big.bin').waitFor({ timeout: WAIT });
  await page.locator('.upload.done').waitFor({ timeout: WAIT });
  await assertLabelled(page);

  const downloading = page.waitForEvent('download');
  await rowAction(page, '/big.bin', 'Download');
  const dl = await downloading;
  assert.equal(dl.suggestedFilename(), 'big.bin');
  assert.ok(Buffer.compare(fs.readFileSync(await dl.path()), data) === 0, 'downloaded bytes differ');

  // The browser cut the same chunks as the CLI: a CLI copy stores nothing new.
  const m = (await apiGet(page, `/workspaces/${ws}/manifest?path=%2Fbig.bin`)).body;
  assert.ok(m.chunks.length >= 2, 'a multi-chunk file: ' + m.chunks.length);
  const u1 = (await apiGet(page, `/workspaces/${ws}/usage`)).body;
  cli('put', src, '/copy.bin');
  const u2 = (await apiGet(page, `/workspaces/${ws}/usage`)).body;
  assert.equal(u2.logical_bytes, u1.logical_bytes + data.length);
  assert.equal(u2.stored_bytes, u1.stored_bytes);
});

// The workspace's storage mode, and a wait until the host has learnt it from
// the feed (it commits by the mode it knows; its log says so each time).
async function setStorage(mode, cacheBytes) {
  const log = path.join(TMP, `host-${process.env.HOST_LABEL}.log`);
  const line = 'keeps its bytes on ' + (mode === 'hosts' ? 'hosts' : 'the hub');
  const seen = () => fs.readFileSync(log, 'utf8').split(line).length - 1;
  const before = seen();
  const status = await page.evaluate(async ([u, b]) => (await fetch(u, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json', 'X-Roost-CSRF': '1' },
    body: JSON.stringify(b),
  })).status, [`/api/v1/workspaces/${ws}`, { storage: mode, hub_cache_bytes: cacheBytes }]);
  assert.equal(status, 200);
  for (const until = Date.now() + 30000; seen() === before && Date.now() < until;)
    await page.waitForTimeout(100);
  assert.ok(seen() > before, `the host did not learn storage ${mode}`);
}

test('in hosts mode with no hub cache, a download comes from the host that holds it (POST urls sources)', async () => {
  await setStorage('hosts', 0);
  try {
    const data = randomBytes(2 * 1024 * 1024 + 777);
    fs.writeFileSync(path.join(TMP, 'host-' + process.env.HOST_LABEL, 'fromhost.bin'), data);
    await row(page, '/fromhost.bin').waitFor({ timeout: 30000 });
    let m;
    for (const until = Date.now() + 30000; Date.now() < until; await page.waitForTimeout(200)) {
      m = (await apiGet(page, `/workspaces/${ws}/manifest?path=%2Ffromhost.bin`)).body;
      if (m && m.chunks.length && m.chunks.every((c) => c.hosts.length > 0)) break;
    }
    assert.ok(m.chunks.every((c) => c.hosts.length > 0), JSON.stringify(m.chunks));
    // A pointer commit: the hub's store never had these bytes.
    const object = (h) => path.join(TMP, 'hub', 'objects', h.slice(0, 2), h);
    assert.ok(m.chunks.every((c) => !fs.existsSync(object(c.hash))), 'the hub holds a chunk');

    const downloading = page.waitForEvent('download');
    await rowAction(page, '/fromhost.bin', 'Download');
    const dl = await downloading;
    assert.equal(dl.suggestedFilename(), 'fromhost.bin');
    assert.ok(Buffer.compare(fs.readFileSync(await dl.path()), data) === 0, 'downloaded bytes differ');
    // The link says which source served it (its menu is closed again: not by role).
    const link = row(page, '/fromhost.bin').locator('a[data-source]');
    assert.equal(await link.getAttribute('data-source'), 'host');
    // The hub was not asked (nor would it keep a copy: the cache is 0).
    assert.ok(m.chunks.every((c) => !fs.existsSync(object(c.hash))));
  } finally {
    await setStorage('hub', 1024 * 1024 * 1024);
  }
});

test('many files at once, each with its own progress, land in the folder opened from the tree', async () => {
  await page.getByRole('button', { name: 'New folder' }).click();
  await page.getByRole('dialog').getByLabel('Folder name').fill('batch');
  await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
  // The folder tree picks the new folder up from the feed; it navigates too.
  const tree = page.getByRole('navigation', { name: 'Folders' });
  await tree.getByRole('link', { name: 'batch' }).click({ timeout: WAIT });
  await page.getByRole('navigation', { name: 'Breadcrumb' }).getByText('batch').waitFor();
  const files = [1, 2, 3, 4].map((i) => {
    const f = path.join(TMP, `part${i}.txt`);
    fs.writeFileSync(f, `part ${i}\n`.repeat(i * 100));
    return f;
  });
  await page.getByLabel('Choose files to upload').setInputFiles(files);
  for (let i = 1; i <= 4; i++) await row(page, `/batch/part${i}.txt`).waitFor({ timeout: WAIT });
  assert.equal(await page.locator('.upload progress').count() >= 4, true);
  await shot(page, 'files-upload');
  await page.getByRole('link', { name: 'Files' }).first().click();
  await row(page, '/big.bin').waitFor();
});

test('a file dropped on the listing is uploaded to the open folder', async () => {
  const dataTransfer = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['dropped bytes\n'], 'dropped.txt', { type: 'text/plain' }));
    return dt;
  });
  await page.dispatchEvent('main.files', 'dragover', { dataTransfer });
  await page.dispatchEvent('main.files', 'drop', { dataTransfer });
  await row(page, '/dropped.txt').waitFor({ timeout: WAIT });
  const text = await page.evaluate(async (u) => (await fetch(u)).text(),
    `/api/v1/workspaces/${ws}/content?path=%2Fdropped.txt`);
  assert.equal(text, 'dropped bytes\n');
});

test('rename, move and delete from the row menu', async () => {
  await rowAction(page, '/big.bin', 'Rename');
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel('New name').fill('renamed.bin');
  await dlg.getByRole('button', { name: 'Rename' }).click();
  await row(page, '/renamed.bin').waitFor({ timeout: WAIT });
  assert.equal(await row(page, '/big.bin').count(), 0);

  await rowAction(page, '/renamed.bin', 'Move');
  await page.getByRole('dialog').getByLabel('Move to (full path)').fill('/batch/renamed.bin');
  await page.getByRole('dialog').getByRole('button', { name: 'Move' }).click();
  await row(page, '/renamed.bin').waitFor({ state: 'detached', timeout: WAIT });
  assert.equal((await apiGet(page, `/workspaces/${ws}/info?path=%2Fbatch%2Frenamed.bin`)).status, 200);

  await rowAction(page, '/copy.bin', 'Delete');
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await row(page, '/copy.bin').waitFor({ state: 'detached', timeout: WAIT });
  assert.equal((await apiGet(page, `/workspaces/${ws}/info?path=%2Fcopy.bin`)).status, 404);
});

test('a deleted file comes back from the trash', async () => {
  await page.getByRole('link', { name: 'Trash' }).click();
  const entry = page.locator('tr[data-path="/copy.bin"]');
  await entry.waitFor({ timeout: WAIT });
  await assertLabelled(page);
  await shot(page, 'trash');
  await page.getByRole('button', { name: 'Restore /copy.bin' }).click();
  await page.getByRole('status').filter({ hasText: 'Restored /copy.bin' }).waitFor({ timeout: WAIT });
  await entry.waitFor({ state: 'detached', timeout: WAIT });
  assert.equal((await apiGet(page, `/workspaces/${ws}/info?path=%2Fcopy.bin`)).status, 200);
  await page.getByRole('link', { name: 'Files' }).click();
  await row(page, '/copy.bin').waitFor({ timeout: WAIT });
});

test('version history: an old version downloads and restores as the newest', async () => {
  const f = path.join(TMP, 'notes.txt');
  fs.writeFileSync(f, 'first draft\n');
  cli('put', f, '/notes.txt');
  fs.writeFileSync(f, 'second draft, longer\n');
  cli('put', f, '/notes.txt');
  await row(page, '/notes.txt').waitFor({ timeout: WAIT });
  await rowAction(page, '/notes.txt', 'Versions');
  const dlg = page.getByRole('dialog');
  await dlg.getByText('v2').waitFor();
  // Readable at desktop width: nothing in the dialog is cut off or scrolls sideways.
  const cut = await page.evaluate(() => {
    const d = document.querySelector('dialog.modal');
    const r = d.getBoundingClientRect();
    return d.scrollWidth - d.clientWidth + [...d.querySelectorAll('td, button, a')]
      .filter((el) => el.getBoundingClientRect().right > r.right + 1).length;
  });
  assert.equal(cut, 0, 'the versions dialog is cut off');
  await shot(page, 'versions');
  const downloading = page.waitForEvent('download');
  await dlg.locator('tr', { hasText: 'v1' }).getByRole('link', { name: 'Download' }).click();
  assert.equal(fs.readFileSync(await (await downloading).path(), 'utf8'), 'first draft\n');
  await dlg.locator('tr', { hasText: 'v1' }).getByRole('button', { name: 'Restore' }).click();
  await dlg.getByText('v3').waitFor({ timeout: WAIT }); // live: the restore arrives on the feed
  await dlg.getByRole('button', { name: 'Close' }).click();
  const text = await page.evaluate(async (u) => (await fetch(u)).text(),
    `/api/v1/workspaces/${ws}/content?path=%2Fnotes.txt`);
  assert.equal(text, 'first draft\n');
});

test('search by name finds files in any folder', async () => {
  await page.getByRole('searchbox', { name: 'Search by name' }).fill('PART3');
  await page.getByRole('searchbox', { name: 'Search by name' }).press('Enter');
  const results = page.getByRole('region', { name: 'Search results' });
  const hit = results.getByRole('link', { name: '/batch/part3.txt' });
  await hit.waitFor({ timeout: WAIT });
  assert.equal(await results.locator('tbody tr').count(), 1);
  // Path, size and date on the row (part3.txt is "part 3\n" × 300 = 2,100 bytes).
  const cells = await results.locator('tbody tr td').allTextContents();
  assert.equal(cells[1], '2.1 KiB');
  assert.match(cells[2], /\d{4}/);
  await shot(page, 'search');
  // A result opens its folder with the file highlighted.
  await hit.click();
  await page.waitForURL(/\/files\/batch\?hl=%2Fbatch%2Fpart3\.txt$/);
  await page.locator('tr.highlight[data-path="/batch/part3.txt"]').waitFor({ timeout: WAIT });
  assert.equal(await page.locator('tr.highlight').count(), 1);
  await page.getByRole('searchbox', { name: 'Search by name' }).fill('no-such-name');
  await page.getByRole('searchbox', { name: 'Search by name' }).press('Enter');
  await results.getByText('No file or folder name holds “no-such-name”').waitFor({ timeout: WAIT });
  await results.getByRole('link', { name: 'go back to the folder' }).click();
  await row(page, '/batch/part1.txt').waitFor({ timeout: WAIT });
  await page.getByRole('link', { name: 'Files' }).first().click();
});

// Files made in the page (a canvas PNG, a MediaRecorder WebM, text with markup,
// a PDF) and dropped on the listing of the open folder.
async function dropMedia(p) {
  const dt = await p.evaluateHandle(async () => {
    const c = document.createElement('canvas');
    c.width = 320;
    c.height = 200;
    const g = c.getContext('2d');
    const paint = (t) => {
      g.fillStyle = '#0ea5e9';
      g.fillRect(0, 0, 320, 200);
      g.fillStyle = '#f97316';
      g.fillRect(40 + t * 4, 50, 120, 100);
    };
    paint(0);
    const png = await new Promise((r) => c.toBlob(r, 'image/png'));
    const rec = new MediaRecorder(c.captureStream(15), { mimeType: 'video/webm' });
    const parts = [];
    rec.ondataavailable = (e) => parts.push(e.data);
    const stopped = new Promise((r) => { rec.onstop = r; });
    rec.start();
    for (let t = 0; t < 12; t++) {
      paint(t);
      await new Promise((r) => setTimeout(r, 60));
    }
    rec.stop();
    await stopped;
    const d = new DataTransfer();
    d.items.add(new File([png], 'photo.png', { type: 'image/png' }));
    d.items.add(new File(parts, 'clip.webm', { type: 'video/webm' }));
    d.items.add(new File(['<b>not bold</b> & <script>alert(1)</script>\n' + 'line\n'.repeat(5000)],
      'notes.md', { type: 'text/markdown' }));
    d.items.add(new File(['%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n'], 'paper.pdf',
      { type: 'application/pdf' }));
    return d;
  });
  await p.dispatchEvent('main.files', 'dragover', { dataTransfer: dt });
  await p.dispatchEvent('main.files', 'drop', { dataTransfer: dt });
  for (const n of ['photo.png', 'clip.webm', 'notes.md', 'paper.pdf'])
    await row(p, '/media/' + n).waitFor({ timeout: WAIT });
}

test('a folder of more than one page lists 1,000 entries and shows the rest on "Show more"', async () => {
  const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const versions = Array.from({ length: 1005 }, (_, i) =>
    ({ path: '/paged/e' + String(i).padStart(4, '0'), size: 0, hash: EMPTY, chunks: [] }));
  for (const part of [versions.slice(0, 1000), versions.slice(1000)]) { // ≤ 1,000 a batch
    const status = await page.evaluate(async ([u, b]) => (await fetch(u, {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Roost-CSRF': '1' },
      body: JSON.stringify(b),
    })).status, [`/api/v1/workspaces/${ws}/versions/batch`, { versions: part }]);
    assert.equal(status, 200);
  }
  await page.goto(`${DASH}/w/${ws}/files/paged`);
  const rows = page.locator('tbody tr[data-path^="/paged/"]');
  await row(page, '/paged/e0999').waitFor({ timeout: WAIT });
  assert.equal(await rows.count(), 1000);
  assert.equal(await row(page, '/paged/e1000').count(), 0);
  // by its class: a role query names every button of 1,000 rows' menus first, which
  // took over 30 s at load 9
  const more = page.locator('button.more-entries');
  assert.match(await more.textContent({ timeout: WAIT }), /^Show more \(1000 shown\)/);
  await more.click({ timeout: WAIT });
  await row(page, '/paged/e1004').waitFor({ timeout: WAIT });
  assert.equal(await rows.count(), 1005);
  assert.equal(await more.count(), 0);
  await page.getByRole('link', { name: 'Files' }).first().click();
});

test('previews of an image, a video and text come from the content port; a PDF shows an icon', async () => {
  cli('mkdir', '-p', '/media');
  await page.goto(DASH + `/w/${ws}/files/media`);
  await page.getByText('This folder is empty').waitFor({ timeout: WAIT });
  await dropMedia(page);
  const dlg = page.getByRole('dialog');

  await rowAction(page, '/media/photo.png', 'Preview');
  const img = dlg.locator('img.preview-image');
  await img.waitFor({ timeout: WAIT });
  await page.waitForFunction(() => document.querySelector('img.preview-image')?.naturalWidth === 320);
  const src = await img.getAttribute('src');
  assert.ok(src.startsWith(CONTENT + '/c/'), 'not from the content port: ' + src);
  const res = await fetch(src); // the headers the content port sends with it
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.match(res.headers.get('content-security-policy'), /sandbox/);
  assert.equal(res.headers.get('content-type'), 'image/png');
  await shot(page, 'preview-image');
  await dlg.getByRole('button', { name: 'Close' }).click();

  await rowAction(page, '/media/clip.webm', 'Preview');
  const video = dlg.locator('video.preview-video');
  await video.waitFor({ timeout: WAIT });
  assert.equal(await video.getAttribute('preload'), 'metadata');
  assert.ok((await video.getAttribute('src')).startsWith(CONTENT + '/c/'));
  await page.waitForFunction(() => document.querySelector('video.preview-video')?.videoWidth === 320,
    null, { timeout: WAIT });
  await dlg.getByRole('button', { name: 'Close' }).click();

  await rowAction(page, '/media/notes.md', 'Preview');
  const pre = dlg.locator('pre.preview-text');
  await pre.waitFor({ timeout: WAIT });
  const text = await pre.textContent();
  assert.ok(text.startsWith('<b>not bold</b> & <script>alert(1)</script>'), text.slice(0, 80));
  assert.equal(await pre.locator('b, script').count(), 0); // shown as text, never parsed
  assert.equal(text.length, 16 * 1024); // only the first 16 KiB
  await dlg.getByText('The first 16 KiB').waitFor();
  await shot(page, 'preview-text');
  await dlg.getByRole('button', { name: 'Close' }).click();

  await rowAction(page, '/media/paper.pdf', 'Preview');
  await dlg.getByText('No preview of this PDF').waitFor({ timeout: WAIT }); // not a real PDF
  const pdf = dlg.getByRole('link', { name: 'Download the PDF' });
  assert.ok((await pdf.getAttribute('href')).startsWith(CONTENT + '/c/'));
  await dlg.getByRole('button', { name: 'Close' }).click();
});

test('the grid view shows thumbnails and is remembered by the browser', async () => {
  await page.goto(DASH + `/w/${ws}/files/media`);
  await row(page, '/media/photo.png').waitFor({ timeout: WAIT });
  await page.getByRole('group', { name: 'View' }).getByRole('button', { name: 'Grid' }).click();
  const tile = page.locator('li.tile[data-path="/media/photo.png"]');
  await tile.waitFor({ timeout: WAIT });
  await page.waitForFunction(() =>
    document.querySelector('li.tile[data-path="/media/photo.png"] img.thumb')?.naturalWidth === 320,
  null, { timeout: WAIT });
  assert.ok((await tile.locator('img.thumb').getAttribute('src')).startsWith(CONTENT + '/c/'));
  const poster = page.locator('li.tile[data-path="/media/clip.webm"] video.thumb');
  assert.equal(await poster.getAttribute('preload'), 'metadata');
  await page.waitForFunction(() =>
    document.querySelector('li.tile[data-path="/media/clip.webm"] video.thumb')?.readyState >= 1,
  null, { timeout: WAIT });
  assert.equal(await page.locator('li.tile[data-path="/media/paper.pdf"] .thumb-icon').textContent(), 'PDF');
  assert.equal(await row(page, '/media/photo.png').count(), 0); // no table in grid view
  await assertLabelled(page);
  await page.waitForTimeout(300); // the poster frame
  await shot(page, 'files-grid');
  await page.reload();
  await page.locator('li.tile[data-path="/media/photo.png"]').waitFor({ timeout: WAIT });
  await tile.getByRole('button', { name: 'Preview photo.png' }).click();
  await page.getByRole('dialog').locator('img.preview-image').waitFor({ timeout: WAIT });
  await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
  await page.getByRole('group', { name: 'View' }).getByRole('button', { name: 'List' }).click();
  await row(page, '/media/photo.png').waitFor({ timeout: WAIT });
  assert.equal(await page.evaluate(() => localStorage.getItem('roost.filesView')), 'list');
});

const zipNames = (file) => execFileSync('python3', ['-c',
  'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print("\\n".join(sorted(z.namelist())))',
  file], { encoding: 'utf8' }).trim().split('\n');

test('multi-select: shift-click a range, download it as one ZIP, move it, delete with one confirmation', async () => {
  cli('mkdir', '-p', '/bulk/into');
  for (const i of [1, 2, 3, 4]) {
    const f = path.join(TMP, `b${i}.txt`);
    fs.writeFileSync(f, `bulk ${i}\n`);
    cli('put', f, `/bulk/b${i}.txt`);
  }
  await page.goto(DASH + `/w/${ws}/files/bulk`);
  await row(page, '/bulk/b4.txt').waitFor({ timeout: WAIT });
  await page.getByRole('checkbox', { name: 'Select b1.txt' }).click();
  await page.getByRole('checkbox', { name: 'Select b3.txt' }).click({ modifiers: ['Shift'] });
  const bar = page.getByRole('region', { name: 'Selection' });
  await bar.getByText('3 items selected').waitFor();
  for (const [n, on] of [['b1', true], ['b2', true], ['b3', true], ['b4', false]])
    assert.equal(await page.getByRole('checkbox', { name: `Select ${n}.txt` }).isChecked(), on, n);
  await shot(page, 'files-select');

  const downloading = page.waitForEvent('download');
  await bar.getByRole('link', { name: 'Download as ZIP' }).click();
  const dl = await downloading;
  assert.equal(dl.suggestedFilename(), 'roost.zip');
  assert.deepEqual(zipNames(await dl.path()), ['b1.txt', 'b2.txt', 'b3.txt']);

  await page.getByRole('checkbox', { name: 'Select b3.txt' }).click(); // b1, b2 stay
  await bar.getByText('2 items selected').waitFor();
  await bar.getByRole('button', { name: 'Move…' }).click();
  await page.getByRole('dialog').getByLabel('Move to folder').fill('/bulk/into');
  await page.getByRole('dialog').getByRole('button', { name: 'Move' }).click();
  await row(page, '/bulk/b1.txt').waitFor({ state: 'detached', timeout: WAIT });
  await row(page, '/bulk/b2.txt').waitFor({ state: 'detached', timeout: WAIT });
  for (const n of ['b1', 'b2'])
    assert.equal((await apiGet(page, `/workspaces/${ws}/info?path=%2Fbulk%2Finto%2F${n}.txt`)).status, 200);
  assert.equal(await bar.count(), 0); // the selection is cleared

  // Select all (a folder and two files), one confirmation naming the count.
  await page.getByRole('checkbox', { name: 'Select all' }).check();
  await bar.getByText('3 items selected').waitFor();
  const zipping = page.waitForEvent('download');
  await bar.getByRole('link', { name: 'Download as ZIP' }).click();
  assert.deepEqual(zipNames(await (await zipping).path()),
    ['b3.txt', 'b4.txt', 'into/b1.txt', 'into/b2.txt']);
  await bar.getByRole('button', { name: 'Delete…' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete 3 items' });
  await confirm.getByText('Delete 3 items? Folders go with everything in them.').waitFor();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await row(page, '/bulk/b4.txt').count(), 1); // cancelled: nothing deleted
  await bar.getByRole('button', { name: 'Delete…' }).click();
  await confirm.getByRole('button', { name: 'Delete 3 items' }).click();
  await page.getByText('This folder is empty').waitFor({ timeout: WAIT });
  for (const p of ['b3.txt', 'b4.txt', 'into'])
    assert.equal((await apiGet(page, `/workspaces/${ws}/info?path=%2Fbulk%2F${p}`)).status, 404);
  await page.getByRole('link', { name: 'Files' }).first().click();
});

let shareUrl;

test('a share link opens in a fresh browser without logging in', async () => {
  const f = path.join(TMP, 'handout.txt');
  fs.writeFileSync(f, 'shared words\n');
  cli('put', f, '/handout.txt');
  await row(page, '/handout.txt').waitFor({ timeout: WAIT });
  await rowAction(page, '/handout.txt', 'Share');
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel('Expires').selectOption('86400');
  await dlg.getByRole('button', { name: 'Create link' }).click();
  shareUrl = await dlg.getByLabel('Share link').inputValue();
  assert.match(shareUrl, /\/s\/[A-Za-z0-9_-]+/);
  await shot(page, 'share');
  await dlg.getByRole('button', { name: 'Done' }).click();

  const anon = await browser.newContext();
  const p = await anon.newPage();
  const resp = await p.goto(shareUrl);
  assert.equal(resp.status(), 200);
  await p.getByText('handout.txt').first().waitFor();
  const file = await p.request.get(shareUrl + '/file');
  assert.equal(await file.text(), 'shared words\n');
  await anon.close();
});

test('a revoked share link is refused', async () => {
  await page.getByRole('link', { name: 'Access' }).first().click();
  const shares = page.getByRole('region', { name: 'Share links' });
  await shares.locator('tr', { hasText: '/handout.txt' }).getByRole('button', { name: 'Revoke' }).click();
  await shares.locator('tr', { hasText: '/handout.txt' }).waitFor({ state: 'detached', timeout: WAIT });
  const anon = await browser.newContext();
  const p = await anon.newPage();
  const resp = await p.goto(shareUrl);
  assert.ok(resp.status() >= 400 && resp.status() < 500, 'status ' + resp.status());
  await anon.close();
});

test('a share link is copied again from the access page, or replaced when the hub cannot show it', async () => {
  await page.goto(DASH + `/w/${ws}/files`);
  await rowAction(page, '/notes.txt', 'Share');
  let dlg = page.getByRole('dialog');
  await dlg.getByRole('button', { name: 'Create link' }).click();
  const first = await dlg.getByLabel('Share link').inputValue();
  await dlg.getByRole('button', { name: 'Done' }).click();

  await page.getByRole('link', { name: 'Access' }).first().click();
  const shares = page.getByRole('region', { name: 'Share links' });
  const entry = shares.locator('tr', { hasText: '/notes.txt' });
  await entry.getByRole('button', { name: 'Copy link' }).click();
  dlg = page.getByRole('dialog', { name: 'Link to /notes.txt' });
  assert.equal(await dlg.getByLabel('Share link').inputValue(), first); // made in this page
  await dlg.getByRole('button', { name: 'Done' }).click();

  await page.reload(); // a fresh page never saw the link: the hub keeps only its hash
  await entry.getByRole('button', { name: 'Copy link' }).click();
  await dlg.getByText('cannot be shown again').waitFor({ timeout: WAIT });
  assert.equal(await dlg.getByLabel('Share link').count(), 0);
  await shot(page, 'share-copy-again');
  await dlg.getByRole('button', { name: 'Create a new link' }).click();
  const second = await dlg.getByLabel('Share link').inputValue();
  assert.match(second, /\/s\/[A-Za-z0-9_-]+/);
  assert.notEqual(second, first);
  await dlg.getByRole('button', { name: 'Done' }).click();
  await shares.locator('tr', { hasText: '/notes.txt' }).nth(1).waitFor({ timeout: WAIT });
  // Nothing was kept in storage: neither URL is in localStorage or sessionStorage.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!stored.includes(first.split('/s/')[1]) && !stored.includes(second.split('/s/')[1]));
  const anon = await browser.newContext();
  for (const u of [first, second]) {
    const file = await anon.request.get(u + '/file');
    assert.equal(file.status(), 200, u);
  }
  await anon.close();
  for (const id of await shares.locator('tr', { hasText: '/notes.txt' }).evaluateAll((rs) => rs.map((r) => r.dataset.share)))
    await page.evaluate(async (u) => fetch(u, { method: 'DELETE', headers: { 'X-Roost-CSRF': '1' } }),
      `/api/v1/workspaces/${ws}/shares/${id}`);
});

test('an invited member sees only what their ACL allows, and access changes arrive live', async () => {
  cli('mkdir', '-p', '/shared');
  cli('mkdir', '-p', '/private');
  const f = path.join(TMP, 'memo.txt');
  fs.writeFileSync(f, 'for the team\n');
  cli('put', f, '/shared/memo.txt');
  cli('put', f, '/private/salaries.txt');

  await page.goto(DASH + `/w/${ws}/access`);
  await page.getByLabel('Default access').selectOption('none');
  const invites = page.getByRole('region', { name: 'Invites' });
  await invites.getByLabel('Role').selectOption('member');
  await invites.getByRole('button', { name: 'Create invite' }).click();
  const inviteUrl = await invites.getByLabel(/Invite link/).inputValue();
  assert.ok(inviteUrl.startsWith(DASH + '/invite/'), inviteUrl);
  await shot(page, 'access');

  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const mp = await ctx.newPage();
  watch(mp, 'member');
  await mp.goto(inviteUrl);
  await mp.getByLabel('Email').fill(MEMBER);
  await mp.getByLabel('Password').fill(MEMBER_PW);
  await mp.getByRole('button', { name: 'Join' }).click();
  await mp.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
  await mp.getByText('Nothing in this workspace is shared with you yet').waitFor({ timeout: WAIT });
  await mp.locator('.live-live').waitFor({ timeout: WAIT });

  // The owner grants read on /shared; the member's open page shows it, no reload.
  await page.getByLabel('Path').fill('/shared');
  await page.getByRole('button', { name: 'Show' }).click();
  const acl = page.getByRole('region', { name: 'Access to a folder or file' });
  await acl.getByLabel('Member email').fill(MEMBER);
  await acl.locator('select[name=perm]').selectOption('read');
  await acl.getByRole('button', { name: 'Set access' }).click();
  await acl.locator('tr', { hasText: MEMBER }).waitFor({ timeout: WAIT });

  await row(mp, '/shared').waitFor({ timeout: WAIT });
  assert.equal(await row(mp, '/private').count(), 0);
  await row(mp, '/shared').getByRole('link').click();
  await row(mp, '/shared/memo.txt').waitFor({ timeout: WAIT });
  assert.equal((await apiGet(mp, `/workspaces/${ws}/info?path=%2Fprivate%2Fsalaries.txt`)).status, 404);
  assert.equal((await apiGet(mp, `/workspaces/${ws}/audit`)).status, 403);
  await assert.rejects(mp.getByRole('link', { name: 'Activity' }).waitFor({ timeout: 500 }));
  await ctx.close();
});

test('a change made with the CLI appears in an open page without a reload', async () => {
  await page.goto(DASH + `/w/${ws}/files`);
  await row(page, '/notes.txt').waitFor({ timeout: WAIT });
  await page.evaluate(() => { window.__noReload = true; });
  const f = path.join(TMP, 'from-cli.txt');
  fs.writeFileSync(f, 'hello from the terminal\n');
  cli('put', f, '/from-cli.txt');
  await row(page, '/from-cli.txt').waitFor({ timeout: WAIT });
  cli('mv', '/from-cli.txt', '/moved-by-cli.txt');
  await row(page, '/moved-by-cli.txt').waitFor({ timeout: WAIT });
  cli('rm', '/moved-by-cli.txt');
  await row(page, '/moved-by-cli.txt').waitFor({ state: 'detached', timeout: WAIT });
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page reloaded');
  await shot(page, 'files');
});

test('the activity page shows the audit log, filters it, and draws the charts', async () => {
  await page.getByRole('link', { name: 'Activity' }).click();
  const audit = page.getByRole('region', { name: 'Audit log' });
  await audit.locator('tbody tr', { hasText: 'file.version' }).first().waitFor({ timeout: WAIT });
  await audit.getByLabel('Action').selectOption('file.delete');
  await audit.locator('tbody tr', { hasText: 'file.version' }).first().waitFor({ state: 'detached', timeout: WAIT });
  await audit.locator('tbody tr', { hasText: '/copy.bin' }).waitFor({ timeout: WAIT });
  const actions = await audit.locator('tbody tr td:nth-child(2)').allTextContents();
  assert.ok(actions.length > 0 && actions.every((a) => a === 'file.delete'), actions.join());
  await audit.getByLabel('Action').selectOption('');
  assert.equal(await page.locator('figure.chart canvas').count() >= 2, true);
  const ratio = await page.locator('[data-stat=ratio]').textContent();
  assert.match(ratio, /^\d+\.\d\d×$/);
  await assertLabelled(page);
  await shot(page, 'activity');
});

test('the hosts page shows the host online, then offline once it stops', async () => {
  await page.getByRole('link', { name: 'Hosts' }).click();
  const card = page.locator(`[data-host="${process.env.HOST_LABEL}"]`);
  await card.locator('[data-status=online]').waitFor({ timeout: WAIT });
  await page.getByText('Replica health').waitFor();
  for (const job of ['gc', 'scrub', 'replicate'])
    await page.locator(`[data-job=${job}]`).waitFor({ timeout: WAIT });
  await assertLabelled(page);
  await shot(page, 'hosts');
  process.kill(Number(process.env.HOST_PID), 'SIGTERM');
  await card.locator('[data-status=offline]').waitFor({ timeout: 30000 });
});

test('a new workspace is created from the switcher and switched to', async () => {
  await page.getByLabel('Workspace').selectOption('new');
  await page.getByRole('dialog').getByLabel('Name').fill('design');
  await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
  await page.getByText('This folder is empty').waitFor({ timeout: WAIT });
  const id = Number(page.url().match(/\/w\/(\d+)\//)[1]);
  assert.notEqual(id, ws);
  assert.equal(await page.getByLabel('Workspace').inputValue(), String(id));
  const names = await page.getByLabel('Workspace').locator('option').allTextContents();
  assert.ok(names.includes('default') && names.includes('design'), names.join());
  // Every empty table says so, and what to do.
  await page.getByRole('link', { name: 'Trash' }).click();
  await page.getByText('The trash is empty. Files and folders you delete').waitFor({ timeout: WAIT });
  await page.getByRole('link', { name: 'Access' }).first().click();
  await page.getByRole('region', { name: 'Share links' })
    .getByText('No live share links. To share a file or folder, open its ⋯ menu').waitFor({ timeout: WAIT });
  await page.getByRole('region', { name: 'Invites' }).getByText('No open invites.').waitFor({ timeout: WAIT });
  await page.getByRole('link', { name: 'Hosts' }).click();
  await page.getByText('No hosts yet. A host is a machine').waitFor({ timeout: WAIT });
  await shot(page, 'hosts-empty');
  await page.getByRole('link', { name: 'Files' }).first().click();
  await page.getByText('This folder is empty').waitFor({ timeout: WAIT });
  await page.getByLabel('Workspace').selectOption(String(ws));
  await row(page, '/notes.txt').waitFor({ timeout: WAIT });
});

test('works at phone width', async () => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await ctx.addCookies(await owner.cookies());
  const p = await ctx.newPage();
  await p.goto(DASH + `/w/${ws}/files`);
  await row(p, '/notes.txt').waitFor({ timeout: WAIT });
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, 'the page scrolls sideways by ' + overflow + ' px');
  await shot(p, 'files-phone');
  await ctx.close();
});

test('the versions dialog is readable at phone width', async () => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await ctx.addCookies(await owner.cookies());
  const p = await ctx.newPage();
  await p.goto(DASH + `/w/${ws}/files`);
  await rowAction(p, '/notes.txt', 'Versions');
  const dlg = p.getByRole('dialog');
  await dlg.locator('tr[data-version="3"]').waitFor({ timeout: WAIT });
  const fit = await p.evaluate(() => {
    const d = document.querySelector('dialog.modal');
    const r = d.getBoundingClientRect();
    const over = [...d.querySelectorAll('td, button, a')].filter((el) => {
      const b = el.getBoundingClientRect();
      return b.width > 0 && (b.left < r.left - 1 || b.right > r.right + 1);
    }).length;
    return { dialog: r.width, scroll: d.scrollWidth - d.clientWidth, over };
  });
  assert.ok(fit.dialog <= 390, JSON.stringify(fit));
  assert.equal(fit.scroll, 0, 'the dialog scrolls sideways');
  assert.equal(fit.over, 0, 'cells outside the dialog');
  // Each field is labelled in the card layout, and the actions are reachable.
  const label = await p.evaluate(() => getComputedStyle(
    document.querySelector('tr[data-version="1"] td[data-label="Size"]'), '::before').content);
  assert.equal(label, '"Size"');
  await dlg.locator('tr[data-version="1"]').getByRole('button', { name: 'Restore' }).waitFor();
  await shot(p, 'versions-phone');
  await ctx.close();
});

test('logout ends the session', async () => {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: WAIT });
  assert.equal((await apiGet(page, '/me')).status, 401);
});
