// Browser tests of PDF previews (issue 16): pdf.js draws a PDF's first page on a
// canvas in the dashboard's preview, in a grid tile, and on a share page; the
// browser's own PDF viewer never sees the file, and a PDF's JavaScript never
// runs. A real hub and host (started by run.py), Debian's chromium through
// playwright-core, PDFs written by hand below.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core'); // from NODE_PATH (the build's npm ci)

const DASH = process.env.DASH_URL;
const CONTENT = process.env.CONTENT_URL;
const TMP = process.env.TEST_TMP;
const SHOTS = process.env.ROOST_SCREENSHOTS;
const OWNER = process.env.OWNER_EMAIL;
const PASSWORD = process.env.ROOST_PASSWORD;
const WAIT = 20000;

let browser, page, ws;
const requests = []; // every URL the page asked for
let dialogs = 0;
const consoleText = []; // what the page logged (pdf.js warns there when it has no worker)
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

// A PDF of 200×300 pt pages, each an orange-red panel with a heading; objects
// and the cross-reference table written out with their byte offsets. extra:
// more entries for the catalog (an /OpenAction), pad: bytes of comment.
function pdf({ pages = 1, extra = '', pad = 0 } = {}) {
  const objs = [];
  const kids = [];
  for (let i = 0; i < pages; i++) kids.push(4 + i * 2);
  objs[1] = `<</Type/Catalog/Pages 2 0 R${extra}>>`;
  objs[2] = `<</Type/Pages/Kids[${kids.map((k) => k + ' 0 R').join(' ')}]/Count ${pages}>>`;
  objs[3] = '<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>';
  for (let i = 0; i < pages; i++) {
    const draw = `0.94 0.35 0.14 rg 20 20 160 260 re f 0.1 0.2 0.5 rg 20 240 160 40 re f ` +
      `BT /F1 20 Tf 1 1 1 rg 32 252 Td (Page ${i + 1}) Tj ET`;
    objs[4 + i * 2] = `<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 300]/Resources<</Font<</F1 3 0 R>>>>` +
      `/Contents ${5 + i * 2} 0 R>>`;
    objs[5 + i * 2] = `<</Length ${draw.length}>>\nstream\n${draw}\nendstream`;
  }
  let out = '%PDF-1.4\n' + (pad ? '%' + 'x'.repeat(pad) + '\n' : '');
  const offsets = [];
  for (let n = 1; n < objs.length; n++) {
    offsets[n] = Buffer.byteLength(out);
    out += `${n} 0 obj\n${objs[n]}\nendobj\n`;
  }
  const xref = Buffer.byteLength(out);
  out += `xref\n0 ${objs.length}\n0000000000 65535 f \n`;
  for (let n = 1; n < objs.length; n++) out += String(offsets[n]).padStart(10, '0') + ' 00000 n \n';
  out += `trailer\n<</Size ${objs.length}/Root 1 0 R>>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

// JavaScript a PDF viewer would run on open: it would retitle the page, call
// home and raise a dialog. pdf.js must run none of it.
const EVIL_JS = "this.document.title='pwned'; app.alert('pwned'); " +
  "app.launchURL('" + 'http://127.0.0.1:9/pwned-launch' + "', true); " +
  "this.submitForm('http://127.0.0.1:9/pwned-submit');";
const EVIL = `/OpenAction<</S/JavaScript/JS(${EVIL_JS})>>` +
  `/Names<</JavaScript<</Names[(x)<</S/JavaScript/JS(app.alert\\('pwned2'\\))>>]>>>>`;

function put(remote, data) {
  const f = path.join(TMP, 'pdf-' + path.basename(remote).replace(/\W/g, '_'));
  fs.writeFileSync(f, data);
  cli('put', f, remote);
}

// What a canvas shows: its size and how many pixels are the panel's orange
// (the page is drawn) or not white.
async function canvasFacts(locator) {
  return locator.evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let orange = 0, ink = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] > 200 && d[i + 1] > 60 && d[i + 1] < 130 && d[i + 2] < 80) orange++;
      if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) ink++;
    }
    return { width: c.width, height: c.height, orange, ink, pixels: d.length / 4,
      shownWidth: c.getBoundingClientRect().width, shownHeight: c.getBoundingClientRect().height };
  });
}

// A page drawn whole: its pixels have the page's aspect, and (unless a tile
// fits it with object-fit) so has the box it is shown in, inside the viewport.
function assertPage(f, what, { fitted = false } = {}) {
  assert.ok(f.width > 20 && f.height > 20, what + ': canvas too small ' + JSON.stringify(f));
  assert.ok(Math.abs(f.width / f.height - 200 / 300) < 0.03, what + ': aspect ' + f.width + '×' + f.height);
  if (!fitted) {
    assert.ok(Math.abs(f.shownWidth / f.shownHeight - 200 / 300) < 0.05,
      what + ': shown aspect ' + f.shownWidth + '×' + f.shownHeight);
    assert.ok(f.shownHeight <= 900 * 0.8 + 1, what + ': taller than the window ' + f.shownHeight);
  }
  // the panel covers 160×260 of 200×300 (69%): most of it orange, minus the heading band
  assert.ok(f.orange > f.pixels * 0.4, what + ': not drawn ' + JSON.stringify(f));
}

const row = (p, filePath) => p.locator(`tr[data-path="${filePath}"]`);

async function rowAction(p, filePath, name) {
  const r = row(p, filePath);
  await r.locator('summary').click();
  await r.getByRole('button', { name }).click();
}

before(async () => {
  cli('mkdir', '-p', '/papers');
  put('/papers/report.pdf', pdf({ pages: 3 }));
  put('/papers/evil.pdf', pdf({ extra: EVIL }));
  put('/papers/huge.pdf', pdf({ pad: 9 * 1024 * 1024 }));
  put('/papers/broken.pdf', Buffer.from('%PDF-1.4\nnot really\n%%EOF\n'));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
  page = await ctx.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => {
    dialogs++;
    d.dismiss();
  });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('console', (m) => {
    consoleText.push(m.text());
    if (m.type() === 'error') console.error('console:', m.text());
  });
  await page.goto(DASH + '/');
  await page.getByLabel('Email').fill(OWNER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ timeout: WAIT });
  ws = Number(page.url().match(/\/w\/(\d+)\//)[1]);
});

after(async () => {
  await browser?.close();
});

test('the dashboard previews a PDF as its first page on a canvas, with the page count and a download', async () => {
  await page.goto(DASH + `/w/${ws}/files/papers`);
  await row(page, '/papers/report.pdf').waitFor({ timeout: WAIT });
  await rowAction(page, '/papers/report.pdf', 'Preview');
  const dlg = page.getByRole('dialog');
  await dlg.getByText('Page 1 of 3').waitFor({ timeout: WAIT });
  const canvas = dlg.locator('canvas.preview-pdf-page');
  assert.ok(await canvas.isVisible());
  assertPage(await canvasFacts(canvas), 'dashboard preview');
  const dl = dlg.getByRole('link', { name: 'Download the PDF' });
  assert.ok((await dl.getAttribute('href')).startsWith(CONTENT + '/c/'));
  // pdf.js and its worker come from the dashboard's own origin
  assert.ok(requests.includes(DASH + '/pdf-preview.js'));
  assert.ok(requests.includes(DASH + '/pdf.worker.min.mjs'));
  const res = await fetch(DASH + '/');
  assert.match(res.headers.get('content-security-policy'), /worker-src 'self';/);
  assert.doesNotMatch(res.headers.get('content-security-policy'), /unsafe-eval|worker-src[^;]*blob:/);
  // parsed in pdf.js's worker, not on the page's thread ("Setting up fake worker")
  assert.deepEqual(consoleText.filter((t) => /fake worker/i.test(t)), []);
  await shot(page, 'preview-pdf');
  await dlg.getByRole('button', { name: 'Close' }).click();
});

test('a PDF that is not one shows no page but still offers the download', async () => {
  await rowAction(page, '/papers/broken.pdf', 'Preview');
  const dlg = page.getByRole('dialog');
  await dlg.getByText('No preview of this PDF').waitFor({ timeout: WAIT });
  assert.equal(await dlg.locator('canvas:visible').count(), 0);
  await dlg.getByRole('link', { name: 'Download the PDF' }).waitFor();
  await dlg.getByRole('button', { name: 'Close' }).click();
});

test('in the grid a PDF tile shows its first page, and a PDF too big to fetch keeps its icon', async () => {
  await page.getByRole('group', { name: 'View' }).getByRole('button', { name: 'Grid' }).click();
  const tile = page.locator('li.tile[data-path="/papers/report.pdf"]');
  await tile.waitFor({ timeout: WAIT });
  const thumb = tile.locator('canvas.thumb:not(.drawing)');
  await thumb.waitFor({ timeout: WAIT });
  const f = await canvasFacts(thumb);
  assertPage(f, 'grid tile', { fitted: true });
  assert.ok(f.width <= 240 * 2 && f.shownWidth < 200, 'a thumbnail, scaled down: ' + JSON.stringify(f));
  // the whole page shows: the canvas fits its tile (object-fit: contain), nothing is cut off
  const box = await tile.locator('.tile-thumb').boundingBox();
  const cbox = await thumb.boundingBox();
  assert.ok(cbox.height <= box.height + 0.5 && cbox.width <= box.width + 0.5, JSON.stringify([box, cbox]));
  assert.equal(await thumb.evaluate((c) => getComputedStyle(c).objectFit), 'contain');
  assert.equal(await tile.locator('.thumb-icon').count(), 0);
  const huge = page.locator('li.tile[data-path="/papers/huge.pdf"]');
  assert.equal(await huge.locator('.thumb-icon').textContent(), 'PDF');
  assert.equal(await huge.locator('canvas').count(), 0);
  const broken = page.locator('li.tile[data-path="/papers/broken.pdf"]');
  await page.waitForFunction(() =>
    !document.querySelector('li.tile[data-path="/papers/broken.pdf"] canvas'), null, { timeout: WAIT });
  assert.equal(await broken.locator('.thumb-icon').textContent(), 'PDF');
  await page.locator('li.tile[data-path="/papers/evil.pdf"] canvas.thumb:not(.drawing)').waitFor({ timeout: WAIT });
  // the tiles' PDFs share one pdf.js worker: one load of it for the whole grid
  assert.equal(requests.filter((u) => u === DASH + '/pdf.worker.min.mjs').length, 1);
  await shot(page, 'files-grid-pdf');
  await tile.getByRole('button', { name: 'Preview report.pdf' }).click();
  await page.getByRole('dialog').getByText('Page 1 of 3').waitFor({ timeout: WAIT });
  await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
  await page.getByRole('group', { name: 'View' }).getByRole('button', { name: 'List' }).click();
});

test('a share page draws a shared PDF\'s first page with pdf.js from the content port', async () => {
  const url = JSON.parse(cli('share', '/papers/report.pdf', '--json')).url;
  const res = await fetch(url, { headers: { Accept: 'text/html' } });
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /worker-src 'self';/);
  assert.match(csp, /script-src 'nonce-/);
  await page.goto(url);
  await page.getByText('Page 1 of 3').waitFor({ timeout: WAIT });
  const canvas = page.locator('canvas.preview');
  assertPage(await canvasFacts(canvas), 'share page');
  const origin = new URL(url).origin;
  assert.ok(requests.includes(origin + '/s/_assets/pdf-preview.js'));
  assert.ok(requests.includes(origin + '/s/_assets/pdf.worker.min.mjs'));
  await page.getByRole('link', { name: 'Download' }).waitFor();
  assert.deepEqual(consoleText.filter((t) => /fake worker/i.test(t)), []);
  await shot(page, 'share-pdf');
});

test('a password link\'s PDF is drawn once the password is given (its cookie reaches the file)', async () => {
  const url = JSON.parse(cli('share', '/papers/report.pdf', '--password', 'paper plane', '--json')).url;
  await page.goto(url);
  await page.getByRole('heading', { name: 'This link needs a password' }).waitFor({ timeout: WAIT });
  assert.equal(await page.locator('canvas').count(), 0);
  await page.getByLabel('Password').fill('paper plane');
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByText('Page 1 of 3').waitFor({ timeout: WAIT });
  assertPage(await canvasFacts(page.locator('canvas.preview')), 'password share page');
});

test('a PDF\'s JavaScript runs nowhere: no title change, no dialog, no request it asks for', async () => {
  const before = requests.length;
  dialogs = 0;
  const url = JSON.parse(cli('share', '/papers/evil.pdf', '--json')).url;
  await page.goto(url);
  await page.getByText('Page 1 of 1').waitFor({ timeout: WAIT });
  assertPage(await canvasFacts(page.locator('canvas.preview')), 'evil on a share page');
  await page.waitForTimeout(500);
  assert.equal(await page.title(), 'evil.pdf — roost');

  await page.goto(DASH + `/w/${ws}/files/papers`);
  await page.getByRole('group', { name: 'View' }).getByRole('button', { name: 'List' }).click();
  await rowAction(page, '/papers/evil.pdf', 'Preview');
  const dlg = page.getByRole('dialog');
  await dlg.getByText('Page 1 of 1').waitFor({ timeout: WAIT });
  assertPage(await canvasFacts(dlg.locator('canvas.preview-pdf-page')), 'evil in the dashboard');
  await page.waitForTimeout(500);
  assert.doesNotMatch(await page.title(), /pwned/);
  assert.equal(dialogs, 0);
  const asked = requests.slice(before).filter((u) => u.includes('pwned') || u.includes(':9/'));
  assert.deepEqual(asked, []);
  // pdf.js's scripting sandbox is not shipped at all
  assert.equal(requests.filter((u) => u.includes('sandbox')).length, 0);
  await dlg.getByRole('button', { name: 'Close' }).click();
});
