// Browser tests of the settings page, emptying the trash and deleting for good
// (issue 17, lifecycle). A real hub and host (started by run.py), Debian's
// chromium through playwright-core, no mocks.
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
const TMP = process.env.TEST_TMP;
const SHOTS = process.env.ROOST_SCREENSHOTS;
const WAIT = 15000;

let browser, page, ws;
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

async function apiGet(rel, wsId = ws) {
  return page.evaluate(async (u) => {
    const r = await fetch(u);
    return { status: r.status, body: await r.json() };
  }, '/api/v1/workspaces/' + wsId + rel);
}

function put(remote) {
  const f = path.join(TMP, 'up-' + randomBytes(4).toString('hex'));
  fs.writeFileSync(f, randomBytes(20000));
  cli('put', f, remote);
}

async function trashPaths() {
  const { body } = await apiGet('/trash?limit=1000');
  return body.entries.map((e) => e.path);
}

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
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

test('the settings page shows every setting and saves them with units', async () => {
  await page.getByRole('link', { name: 'Settings' }).click();
  const form = page.getByRole('region', { name: 'Workspace settings' });
  for (const label of ['Name', 'Default access', 'Quota', 'Largest file', 'Versions kept',
    'Keep versions for (days)', 'Trash keeps files (days)', 'Unreferenced chunks kept', 'Storage',
    'Hub cache (hosts mode)', 'Minimum copies', 'Replica grace', 'Smallest chunk', 'Average chunk',
    'Largest chunk']) {
    await form.getByLabel(label, { exact: true }).waitFor({ timeout: WAIT });
  }
  assert.equal(await form.getByLabel('Average chunk').inputValue(), '1 MiB');
  assert.equal(await form.getByLabel('Unreferenced chunks kept').inputValue(), '7d');
  await form.getByLabel('Quota').fill('10 GiB');
  await form.getByLabel('Trash keeps files (days)').fill('14');
  await form.getByLabel('Unreferenced chunks kept').fill('2d');
  await form.getByLabel('Average chunk').fill('512 KiB');
  await form.getByRole('button', { name: 'Save settings' }).click();
  await form.getByText('Saved quota_bytes, trash_days, gc_retention_s, chunk_avg.').waitFor({ timeout: WAIT });
  const { body: s } = await apiGet('');
  assert.deepEqual([s.quota_bytes, s.trash_days, s.gc_retention_s, s.chunk_avg],
    [10 * 2 ** 30, 14, 2 * 86400, 512 * 1024]);
  await shot(page, 'settings');
});

test('bad settings are refused and nothing changes', async () => {
  const form = page.getByRole('region', { name: 'Workspace settings' });
  const before = (await apiGet('')).body;
  await form.getByLabel('Quota').fill('lots');
  await form.getByRole('button', { name: 'Save settings' }).click();
  await form.getByText('Quota: cannot read “lots”').waitFor({ timeout: WAIT });
  await form.getByLabel('Quota').fill('10 GiB');
  await form.getByLabel('Average chunk').fill('3000');
  await form.getByRole('button', { name: 'Save settings' }).click();
  await form.getByText(/powers of two/).waitFor({ timeout: WAIT });
  await shot(page, 'settings-refused');
  assert.deepEqual((await apiGet('')).body, before);
});

test('a file deleted forever from its menu skips the trash', async () => {
  put('/forever/gone.bin');
  put('/forever/kept.bin');
  await page.goto(DASH + `/w/${ws}/files/forever`);
  const r = page.locator('tr[data-path="/forever/gone.bin"]');
  await r.locator('summary').click();
  await r.getByRole('button', { name: 'Delete forever' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete gone.bin forever' });
  await dialog.getByText('cannot be undone').waitFor({ timeout: WAIT });
  await shot(page, 'files-delete-forever');
  await dialog.getByRole('button', { name: 'Delete forever' }).click();
  await r.waitFor({ state: 'detached', timeout: WAIT });
  await page.locator('tr[data-path="/forever/kept.bin"]').waitFor();
  assert.ok(!(await trashPaths()).includes('/forever/gone.bin'));
});

test('the trash deletes one entry forever, then empties', async () => {
  for (const p of ['/t/a.bin', '/t/b.bin', '/t/c.bin']) {
    put(p);
    cli('rm', p);
  }
  await page.getByRole('link', { name: 'Trash' }).click();
  const trash = page.getByRole('region', { name: /Trash/ });
  await trash.locator('tr[data-path="/t/a.bin"]').waitFor({ timeout: WAIT });
  await trash.getByRole('button', { name: 'Delete /t/a.bin forever' }).click();
  let dialog = page.getByRole('dialog', { name: 'Delete /t/a.bin forever' });
  await dialog.getByRole('button', { name: 'Delete forever' }).click();
  await trash.getByText('Deleted 1 file for good').waitFor({ timeout: WAIT });
  await trash.locator('tr[data-path="/t/a.bin"]').waitFor({ state: 'detached', timeout: WAIT });
  assert.deepEqual((await trashPaths()).filter((p) => p.startsWith('/t/')).sort(), ['/t/b.bin', '/t/c.bin']);

  await trash.getByRole('button', { name: 'Empty trash' }).click();
  dialog = page.getByRole('dialog', { name: 'Empty the trash' });
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await trashPaths()).filter((p) => p.startsWith('/t/')).length, 2, 'Cancel deleted something');
  await trash.getByRole('button', { name: 'Empty trash' }).click();
  await shot(page, 'trash-empty');
  await page.getByRole('dialog', { name: 'Empty the trash' }).getByRole('button', { name: 'Empty trash' }).click();
  await trash.getByText('The trash is empty.').waitFor({ timeout: WAIT });
  assert.deepEqual(await trashPaths(), []);
});

test("the danger zone deletes a workspace once its name is typed", async () => {
  const made = JSON.parse(cli('workspaces', 'create', 'scratch', '--json'));
  await page.goto(DASH + `/w/${made.id}/settings`);
  const zone = page.getByRole('region', { name: 'Danger zone' });
  const button = zone.getByRole('button', { name: 'Delete this workspace' });
  await button.waitFor({ timeout: WAIT });
  assert.ok(await button.isDisabled());
  await zone.getByLabel(/Type the workspace/).fill('Scratch');
  assert.ok(await button.isDisabled(), 'a name typed wrong enables it');
  await zone.getByLabel(/Type the workspace/).fill('scratch');
  await shot(page, 'settings-danger-zone');
  await button.click();
  await page.waitForURL((u) => !u.pathname.startsWith(`/w/${made.id}/`), { timeout: WAIT });
  assert.equal((await apiGet('', made.id)).status, 404);
  const names = await page.evaluate(async () => (await (await fetch('/api/v1/workspaces')).json())
    .workspaces.map((w) => w.name));
  assert.ok(!names.includes('scratch'));
  assert.equal((await apiGet('')).status, 200, 'another workspace went too');
});
