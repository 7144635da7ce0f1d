// Storage: where a file's bytes are (GET locations: the hub's cache, each
// host's copy, copies against min_replicas), the workspace's storage settings
// (GET/PATCH workspaces/W) and the files below min_replicas (GET under-replicated).
import { useEffect, useState } from 'preact/hooks';
import { api, wsPath, q } from './api.js';
import { html, fmtBytes, fmtAgo, Modal, ErrorLine, useLive, useAction, parentOf } from './ui.js';

export const filesHref = (ws, path) =>
  '/w/' + ws + '/files' + (path === '/' ? '' : path.split('/').map(encodeURIComponent).join('/'));
// The files page of the file's folder, with its locations open.
export const whereHref = (ws, path) => filesHref(ws, parentOf(path)) + '?where=' + encodeURIComponent(path);

function Badge({ kind, children, title }) {
  return html`<span class=${'badge badge-' + kind} title=${title}>${children}</span>`;
}

// "3 copies · needs 2": the summary line of a file's locations.
function CopiesLine({ loc }) {
  if (loc.copies == null) return html`<p class="ok copies" data-copies="none">An empty file: no bytes to keep.</p>`;
  return html`<p class=${'copies ' + (loc.below_min ? 'warn' : 'ok')} data-copies=${loc.copies}>
    <strong>${loc.copies} ${loc.copies === 1 ? 'copy' : 'copies'}</strong>${
      ` of every chunk · needs ${loc.min_replicas}${loc.below_min ? ' — below the minimum' : ''}`}</p>`;
}

const STATE_TEXT = {
  current: ['ok', 'current', 'holds every chunk of this version'],
  stale: ['warn', 'older version', 'holds a whole older version, not this one'],
  partial: ['warn', 'partial', 'holds some chunks of this version'],
};

function HostRow({ host, chunks }) {
  const [kind, text, title] = STATE_TEXT[host.state] || ['warn', host.state, ''];
  return html`<tr data-host=${host.label}>
    <th scope="row">${host.label}</th>
    <td><${Badge} kind=${host.online ? 'ok' : 'off'}>${host.online ? 'online' : 'offline'}<//></td>
    <td><${Badge} kind=${kind} title=${title}>${text}<//></td>
    <td class="num">${host.chunks_held} / ${chunks}</td>
    <td>${fmtAgo(host.last_seen)}${!host.counted && html` <span class="muted" title="offline longer than the replica grace">· not counted</span>`}</td>
  </tr>`;
}

// A file's locations: polled, since heartbeats and replica reports are not on the feed.
export function LocationsDialog({ ws, path, version, feed, onClose }) {
  const rel = '/locations?path=' + q(path) + (version ? '&version=' + version : '');
  const { data: loc, error } = useLive(() => api('GET', wsPath(ws.id, rel)), [ws.id, rel],
    { feed, match: (ev) => ev.payload && ev.payload.path === path, pollMs: 3000 });
  const name = path.slice(path.lastIndexOf('/') + 1);
  return html`<${Modal} title=${'Where ' + name + ' is'} onClose=${onClose}>
    <${ErrorLine} error=${error} />
    ${loc && html`<div class="locations">
      <p class="muted">${`v${loc.version} · ${fmtBytes(loc.size)} in ${loc.chunks} ${loc.chunks === 1 ? 'chunk' : 'chunks'} · storage: ${
        loc.storage === 'hosts' ? 'on hosts (the hub caches)' : 'on the hub'}`}</p>
      <${CopiesLine} loc=${loc} />
      <h3>Hub</h3>
      <p class="hub-copy" data-chunks=${loc.hub.chunks_held}>
        <${Badge} kind=${loc.hub.chunks_held === loc.chunks && loc.chunks ? 'ok' : 'off'}>${
          loc.hub.chunks_held === loc.chunks ? (loc.chunks ? 'holds it all' : '—') : loc.hub.chunks_held ? 'holds part' : 'holds none'}<//>
        ${` ${fmtBytes(loc.hub.bytes_held)} ${loc.storage === 'hosts' ? 'in the cache' : 'stored'} (${loc.hub.chunks_held} of ${loc.chunks} chunks)`}</p>
      <h3>Hosts</h3>
      ${loc.hosts.length ? html`<table class="list hosts-table">
        <thead><tr><th scope="col">Host</th><th scope="col">Status</th><th scope="col">Copy</th>
          <th scope="col" class="num">Chunks</th><th scope="col">Last seen</th></tr></thead>
        <tbody>${loc.hosts.map((h) => html`<${HostRow} key=${h.id} host=${h} chunks=${loc.chunks} />`)}</tbody>
      </table>` : html`<p class="muted">No host holds any of it.</p>`}
      <p class="hint">A copy counts while its host has been seen within the replica grace
        (${fmtDuration(loc.replica_grace_s)}); ${loc.storage === 'hosts'
          ? "the hub's cache does not count: in hosts storage durability is on hosts"
          : "the hub's counts as one"}.</p>
    </div>`}
  <//>`;
}

export function fmtDuration(s) {
  if (s == null) return '—';
  if (s % 86400 === 0 && s) return s / 86400 + ' d';
  if (s % 3600 === 0 && s) return s / 3600 + ' h';
  if (s % 60 === 0 && s) return s / 60 + ' min';
  return s + ' s';
}

// ---- settings ----

const UNITS = { MiB: 1 << 20, GiB: 1 << 30 };
const TIME_UNITS = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };

function bestUnit(value, units) {
  const names = Object.keys(units).reverse();
  return names.find((u) => value && value % units[u] === 0) || names[names.length - 1];
}

// A whole number with its unit: {value, unit} → base units, or an error text.
function wholeOf(text, unitFactor, what, min, max) {
  if (!/^\s*\d+\s*$/.test(text)) return [null, what + ' must be a whole number'];
  const v = Number(text) * unitFactor;
  if (!Number.isSafeInteger(v) || v < min || v > max) return [null, what + ' must be between ' + min + ' and ' + max];
  return [v, null];
}

function SettingsForm({ ws, s, saved, onSaved, onEdit }) {
  const [errors, setErrors] = useState({});
  const [run, err] = useAction();
  const cacheUnit = bestUnit(s.hub_cache_bytes, UNITS);
  const graceUnit = bestUnit(s.replica_grace_s, TIME_UNITS);
  const submit = async (e) => {
    e.preventDefault();
    onEdit();
    const f = new FormData(e.target);
    const errs = {};
    const [cache, ce] = wholeOf(f.get('cache'), UNITS[f.get('cache_unit')], 'Hub cache', 0, Number.MAX_SAFE_INTEGER);
    const [minr, me] = wholeOf(f.get('min_replicas'), 1, 'Minimum copies', 1, 10);
    const [grace, ge] = wholeOf(f.get('grace'), TIME_UNITS[f.get('grace_unit')], 'Replica grace', 0, 365 * 86400);
    if (ce) errs.cache = ce;
    if (me) errs.min_replicas = me;
    if (ge) errs.grace = ge + ' seconds';

    setErrors(errs);
    if (Object.keys(errs).length) return;
    const ok = await run(() => api('PATCH', wsPath(ws.id, ''), {
      storage: f.get('storage'), hub_cache_bytes: cache, min_replicas: minr, replica_grace_s: grace,
    }));
    if (ok) await onSaved();
  };
  const fieldError = (k) => errors[k] && html`<span class="error field-error" role="alert">${errors[k]}</span>`;
  return html`<form class="settings" onSubmit=${submit} noValidate>
    <fieldset><legend>Where the bytes live</legend>
      <label class="radio"><input type="radio" name="storage" value="hub" defaultChecked=${s.storage === 'hub'} />
        <span><strong>Hub</strong> — the hub keeps every chunk; hosts are extra copies.</span></label>
      <label class="radio"><input type="radio" name="storage" value="hosts" defaultChecked=${s.storage === 'hosts'} />
        <span><strong>Hosts</strong> — hosts hold the bytes; the hub keeps a bounded cache and a copy until hosts have enough.</span></label>
    </fieldset>
    <div class="row">
      <label>Hub cache (hosts mode)<span class="with-unit">
        <input name="cache" inputMode="numeric" defaultValue=${String(s.hub_cache_bytes / UNITS[cacheUnit])}
          aria-invalid=${!!errors.cache} />
        <select name="cache_unit" aria-label="Hub cache unit" defaultValue=${cacheUnit}>
          ${Object.keys(UNITS).map((u) => html`<option selected=${u === cacheUnit}>${u}</option>`)}</select></span>
        ${fieldError('cache')}
        <span class="hint">0 keeps nothing once hosts hold enough copies.</span></label>
      <label>Minimum copies<input name="min_replicas" inputMode="numeric" defaultValue=${String(s.min_replicas)}
          aria-invalid=${!!errors.min_replicas} />
        ${fieldError('min_replicas')}
        <span class="hint">1–10: copies on hosts, and in hub storage the hub's.</span></label>
      <label>Replica grace<span class="with-unit">
        <input name="grace" inputMode="numeric" defaultValue=${String(s.replica_grace_s / TIME_UNITS[graceUnit])}
          aria-invalid=${!!errors.grace} />
        <select name="grace_unit" aria-label="Replica grace unit" defaultValue=${graceUnit}>
          ${Object.keys(TIME_UNITS).map((u) => html`<option selected=${u === graceUnit}>${u}</option>`)}</select></span>
        ${fieldError('grace')}
        <span class="hint">How long an offline host's copies still count.</span></label>
    </div>
    <${ErrorLine} error=${err} />
    <div class="actions">${saved && html`<span class="ok" role="status">Saved.</span>`}
      <button class="primary">Save storage settings</button></div>
  </form>`;
}

export function StorageSettings({ ws, feed }) {
  const admin = ws.role === 'owner' || ws.role === 'admin';
  const { data: s, error, reload } = useLive(() => api('GET', wsPath(ws.id, '')), [ws.id],
    { feed, match: (ev) => ev.kind === 'workspace.updated' });
  // The form is rebuilt from what the hub answers after each save.
  const [gen, setGen] = useState(0);
  const [saved, setSaved] = useState(false);
  return html`<section class="card" aria-labelledby="storage-h">
    <header class="card-head"><h2 id="storage-h">Storage settings</h2>
      <a href=${'/w/' + ws.id + '/settings'}>All settings</a></header>
    <${ErrorLine} error=${error} />
    ${s && (admin
      ? html`<${SettingsForm} key=${gen} ws=${ws} s=${s} saved=${saved} onEdit=${() => setSaved(false)} onSaved=${async () => {
          await reload();
          setGen((g) => g + 1);
          setSaved(true);
        }} />`
      : html`<dl class="facts">
          <dt>Storage</dt><dd>${s.storage === 'hosts' ? 'on hosts (the hub caches)' : 'on the hub'}</dd>
          <dt>Hub cache</dt><dd>${fmtBytes(s.hub_cache_bytes)}</dd>
          <dt>Minimum copies</dt><dd>${s.min_replicas}</dd>
          <dt>Replica grace</dt><dd>${fmtDuration(s.replica_grace_s)}</dd>
        </dl><p class="hint">Owners and admins change these.</p>`)}
  </section>`;
}

// ---- the files below min_replicas ----

export function UnderReplicated({ ws, feed }) {
  const [more, setMore] = useState([]);
  const [moreErr, setMoreErr] = useState(null);
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/under-replicated?limit=50')), [ws.id],
    { feed, match: (ev) => ev.kind === 'file.version' || ev.kind === 'workspace.updated' || ev.kind.startsWith('host.'), pollMs: 15000 });
  useEffect(() => {
    setMore([]);
  }, [data]);
  const files = data ? [...data.files, ...more.flatMap((p) => p.files)] : [];
  const next = more.length ? more[more.length - 1].next : data && data.next;
  const loadMore = async () => {
    try {
      const page = await api('GET', wsPath(ws.id, '/under-replicated?limit=50&after=' + q(next)));
      setMore((m) => [...m, page]);
    } catch (e) {
      setMoreErr(e);
    }
  };
  return html`<section class="card wide-card" aria-labelledby="under-h">
    <header class="card-head"><h2 id="under-h">Files below the minimum copies</h2>
      <button type="button" onClick=${reload}>Refresh</button></header>
    <${ErrorLine} error=${error || moreErr} />
    ${data && html`<p class=${data.total ? 'warn' : 'ok'} data-total=${data.total}>
      ${data.total ? html`<strong>${data.total}</strong> ${data.total === 1 ? 'file has' : 'files have'} a chunk with fewer than ${data.min_replicas} copies.`
        : 'Every file has at least ' + data.min_replicas + ' copies.'}</p>`}
    ${files.length > 0 && html`<table class="list under-table">
      <thead><tr><th scope="col">File</th><th scope="col" class="num">Size</th><th scope="col" class="num">Copies</th></tr></thead>
      <tbody>${files.map((f) => html`<tr key=${f.path} data-path=${f.path}>
        <td class="name"><a href=${whereHref(ws.id, f.path)}>${f.path}</a></td>
        <td class="num">${fmtBytes(f.size)}</td>
        <td class="num"><${Badge} kind=${f.copies ? 'warn' : 'bad'}>${f.copies} of ${data.min_replicas}<//></td></tr>`)}</tbody>
    </table>`}
    ${next && html`<div class="actions"><button type="button" onClick=${loadMore}>Show more</button></div>`}
  </section>`;
}

export function StorageView({ ws, feed }) {
  return html`<main class="grid">
    <${StorageSettings} ws=${ws} feed=${feed} />
    <${UnderReplicated} ws=${ws} feed=${feed} />
  </main>`;
}
