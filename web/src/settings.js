// Settings: every setting of the workspace (GET/PATCH workspaces/W, as
// `roost workspace show|set`), typed with units ("10 GiB", "7d"); the hub
// validates. Owners see a danger zone that deletes the workspace after its
// name is typed (DELETE workspaces/W {confirm}).
import { useState } from 'preact/hooks';
import { api, wsPath } from './api.js';
import { html, ErrorLine, useLive, useAction, navigate } from './ui.js';

const BYTE_UNITS = { TiB: 2 ** 40, GiB: 2 ** 30, MiB: 2 ** 20, KiB: 2 ** 10 };
const TIME_UNITS = { d: 86400, h: 3600, m: 60 };

export function fmtSize(n) {
  for (const [u, f] of Object.entries(BYTE_UNITS)) if (n && n % f === 0) return n / f + ' ' + u;
  return String(n);
}
export function fmtSeconds(n) {
  for (const [u, f] of Object.entries(TIME_UNITS)) if (n && n % f === 0) return n / f + u;
  return String(n);
}

// "10 GiB", "512M", "1048576", "none" → bytes, or null (units as the CLI's parse_bytes).
export function parseSize(text, zeroWords) {
  const t = text.trim();
  if (zeroWords && /^(none|off)$/i.test(t)) return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:iB)?)?$/.exec(t);
  if (!m) return null;
  const f = m[2] ? BYTE_UNITS[m[2] + 'iB'] : 1;
  const v = Number(m[1]) * f;
  return Number.isSafeInteger(v) ? v : null;
}

// "7d", "12h", "30m", "45s", "3600" → seconds, or null.
export function parseSeconds(text) {
  const m = /^(\d+)\s*([dhms]?)$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * ({ d: 86400, h: 3600, m: 60, s: 1, '': 1 })[m[2]];
}

function parseDays(text) {
  const m = /^(\d+)\s*d?$/.exec(text.trim());
  return m ? Number(m[1]) : null;
}

function parseCount(text) {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : null;
}

// key, label, kind, hint; kinds: text, choice, size, count, days, seconds.
const FIELDS = [
  ['name', 'Name', 'text', 'How the workspace is listed.'],
  ['default_access', 'Default access', ['none', 'read', 'write'], 'Members\u2019 access where no ACL entry says otherwise.'],
  ['quota_bytes', 'Quota', 'size', 'The most the current versions may take; 0 or none: no quota.', true],
  ['max_file_bytes', 'Largest file', 'size', '0 or none: no limit.', true],
  ['keep_versions', 'Versions kept', 'count', 'Old versions kept per file; 0: every version.'],
  ['keep_days', 'Keep versions for (days)', 'days', '0: forever.'],
  ['trash_days', 'Trash keeps files (days)', 'days', 'Deleted files stay restorable this long.'],
  ['gc_retention_s', 'Unreferenced chunks kept', 'seconds', 'e.g. 7d, 12h, 30m.'],
  ['storage', 'Storage', ['hub', 'hosts'], 'Where the bytes live (the Storage page explains).'],
  ['hub_cache_bytes', 'Hub cache (hosts mode)', 'size', 'e.g. 1 GiB.'],
  ['min_replicas', 'Minimum copies', 'count', '1\u201310: on hosts (their last heartbeat within the grace) and, in hub storage, the hub.'],
  ['replica_grace_s', 'Replica grace', 'seconds', 'How long an offline host\u2019s copies still count.'],
  ['chunk_min', 'Smallest chunk', 'size', 'A power of two; new uploads use the chunk sizes.'],
  ['chunk_avg', 'Average chunk', 'size', 'A power of two between the smallest and largest.'],
  ['chunk_max', 'Largest chunk', 'size', 'A power of two, at most 64 MiB.'],
  ['oidc_domains', 'Single sign-on domains', 'list', 'Email domains whose new users sign-in admits (a.com, b.org); empty: none.'],
  ['oidc_default_role', 'Their role', ['member', 'admin'], 'The role single sign-on gives them.'],
];

function shown(kind, v) {
  if (kind === 'list') return (v || []).join(', ');
  if (kind === 'size') return fmtSize(v);
  if (kind === 'seconds') return fmtSeconds(v);
  return String(v);
}

function parse(kind, text, zeroWords) {
  if (Array.isArray(kind) || kind === 'text') return text;
  if (kind === 'list') return text.split(',').map((d) => d.trim()).filter(Boolean);
  if (kind === 'size') return parseSize(text, zeroWords);
  if (kind === 'seconds') return parseSeconds(text);
  if (kind === 'days') return parseDays(text);
  return parseCount(text);
}

function SettingsForm({ ws, s, saved, setSaved, onSaved }) {
  const [errors, setErrors] = useState({});
  const [run, err] = useAction();
  const submit = async (e) => {
    e.preventDefault();
    setSaved(null);
    const f = new FormData(e.target);
    const body = {}, errs = {};
    for (const [key, label, kind, , zeroWords] of FIELDS) {
      const v = parse(kind, String(f.get(key)), zeroWords);
      if (v === null || v === '') errs[key] = label + ': cannot read \u201c' + f.get(key) + '\u201d';
      else if (JSON.stringify(v) !== JSON.stringify(s[key])) body[key] = v;
    }
    setErrors(errs);
    if (Object.keys(errs).length) return;
    if (!Object.keys(body).length) {
      setSaved('Nothing changed.');
      return;
    }
    const ok = await run(() => api('PATCH', wsPath(ws.id, ''), body));
    if (ok) {
      await onSaved();
      setSaved('Saved ' + Object.keys(body).join(', ') + '.');
    }
  };
  return html`<form class="settings all-settings" onSubmit=${submit} noValidate>
    <div class="settings-grid">
      ${FIELDS.map(([key, label, kind, hint]) => html`<div class="field" key=${key} data-key=${key}>
        <label for=${'set-' + key}>${label}</label>
        ${Array.isArray(kind)
          ? html`<select id=${'set-' + key} name=${key} defaultValue=${s[key]} aria-describedby=${'set-' + key + '-hint'}>
              ${kind.map((o) => html`<option selected=${o === s[key]}>${o}</option>`)}</select>`
          : html`<input id=${'set-' + key} name=${key} defaultValue=${shown(kind, s[key])} aria-invalid=${!!errors[key]}
              aria-describedby=${'set-' + key + '-hint'} />`}
        ${errors[key] && html`<span class="error field-error" role="alert">${errors[key]}</span>`}
        <span class="hint" id=${'set-' + key + '-hint'}>${hint}</span></div>`)}
    </div>
    <${ErrorLine} error=${err} />
    <div class="actions">${saved && html`<span class="ok" role="status">${saved}</span>`}
      <button class="primary">Save settings</button></div>
  </form>`;
}

function DangerZone({ ws, reloadWorkspaces }) {
  const [typed, setTyped] = useState('');
  const [run, err] = useAction();
  const del = async () => {
    const ok = await run(() => api('DELETE', wsPath(ws.id, ''), { confirm: typed }));
    if (ok) {
      navigate('/', true);
      await reloadWorkspaces();
    }
  };
  return html`<section class="card danger-zone" aria-labelledby="danger-h">
    <h2 id="danger-h">Danger zone</h2>
    <p>Deleting <strong>${ws.name}</strong> deletes every file, version, share link and invite in it, for good.
      Its members lose access at once; its hosts stop syncing it and keep their local files. GC frees the space.</p>
    <label>Type the workspace\u2019s name to confirm
      <input name="confirm" value=${typed} onInput=${(e) => setTyped(e.target.value)} autocomplete="off" /></label>
    <${ErrorLine} error=${err} />
    <div class="actions"><button type="button" class="danger" disabled=${typed !== ws.name}
      onClick=${del}>Delete this workspace</button></div>
  </section>`;
}

export function SettingsView({ ws, feed, reloadWorkspaces }) {
  const admin = ws.role === 'owner' || ws.role === 'admin';
  const { data: s, error, reload } = useLive(() => api('GET', wsPath(ws.id, '')), [ws.id],
    { feed, match: (ev) => ev.kind === 'workspace.updated' });
  const [gen, setGen] = useState(0);
  const [saved, setSaved] = useState(null);
  return html`<main class="grid">
    <section class="card wide-card" aria-labelledby="settings-h">
      <h2 id="settings-h">Workspace settings</h2>
      <${ErrorLine} error=${error} />
      ${s && (admin
        ? html`<${SettingsForm} key=${gen} ws=${ws} s=${s} saved=${saved} setSaved=${setSaved} onSaved=${async () => {
            await reload();
            await reloadWorkspaces();
            setGen((g) => g + 1);
          }} />`
        : html`<dl class="facts">${FIELDS.map(([key, label, kind]) => html`<dt>${label}</dt><dd data-key=${key}>${shown(kind, s[key])}</dd>`)}</dl>
          <p class="hint">Owners and admins change these.</p>`)}
    </section>
    ${ws.role === 'owner' && html`<${DangerZone} ws=${ws} reloadWorkspaces=${reloadWorkspaces} />`}
  </main>`;
}
