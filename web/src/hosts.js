// Hosts: each host's status, space, queue and URL; its replication policies;
// the workspace's chunk replica health; host invites.
import { useState } from 'preact/hooks';
import { api, wsPath } from './api.js';
import { html, fmtBytes, fmtAgo, plural, ErrorLine, CopyField, useLive, useAction } from './ui.js';

const MODES = ['pinned', 'on-demand', 'exclude'];

function Policies({ ws, host, feed, admin }) {
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/hosts/' + host.id + '/policies')),
    [ws.id, host.id], { feed, match: (ev) => ev.kind === 'host.policy' });
  const [run, err] = useAction(reload);
  const set = (folder, mode) =>
    run(() => api('PUT', wsPath(ws.id, '/hosts/' + host.id + '/policies'), { folder, mode }));
  const list = (data && data.policies) || [];
  return html`<div class="policies">
    <h4>Replication policies <span class="muted">(default: pinned)</span></h4>
    <${ErrorLine} error=${error || err} />
    <ul>${list.map((p) => html`<li><code>${p.folder}</code>
      ${admin ? html`<select aria-label=${'Policy for ' + p.folder + ' on ' + host.label} value=${p.mode}
          onChange=${(e) => set(p.folder, e.target.value)}>
          ${MODES.map((m) => html`<option value=${m}>${m}</option>`)}</select>
        <button type="button" onClick=${() => set(p.folder, 'inherit')}>Remove</button>`
        : p.mode}</li>`)}
      ${!list.length && html`<li class="muted">No folder policies: everything is pinned.</li>`}</ul>
    ${admin && html`<form class="inline" onSubmit=${(e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      set(f.get('folder'), f.get('mode'));
    }}><label>Folder<input name="folder" required placeholder="/video" /></label>
      <label>Mode<select name="mode">${MODES.map((m) => html`<option value=${m}>${m}</option>`)}</select></label>
      <button>Set policy</button></form>`}
  </div>`;
}

// Remove a host for good: its credential and relay URL stop working, and its
// copies are made again elsewhere (DELETE hosts/ID; the list reloads on the feed).
function RemoveHost({ ws, host }) {
  const [run, err] = useAction();
  return html`<div class="remove-host">
    <button type="button" class="danger" onClick=${() => {
      if (!window.confirm('Remove host ' + host.label + '? Its credential stops working now.')) return;
      run(() => api('DELETE', wsPath(ws.id, '/hosts/' + host.id)));
    }}>Remove host</button>
    <${ErrorLine} error=${err} /></div>`;
}

function HostCard({ ws, host, feed, admin }) {
  const used = host.capacity_bytes && host.free_bytes != null ? host.capacity_bytes - host.free_bytes : null;
  return html`<article class="card host" data-host=${host.label} aria-labelledby=${'host-' + host.id}>
    <header><h3 id=${'host-' + host.id}>${host.label}</h3>
      <span class=${'status status-' + host.status} data-status=${host.status}>${host.status}</span></header>
    <dl class="facts">
      <dt>Last seen</dt><dd>${fmtAgo(host.last_seen)}</dd>
      <dt>Capacity</dt><dd>${fmtBytes(host.capacity_bytes)}</dd>
      <dt>Free</dt><dd>${fmtBytes(host.free_bytes)}
        ${used != null && html` <meter min="0" max=${host.capacity_bytes} value=${used} aria-label="space used"></meter>`}</dd>
      <dt>Queue</dt><dd>${host.queue ?? '—'}</dd>
      <dt>Last sync</dt><dd>${fmtAgo(host.last_sync)}</dd>
      <dt>Pinned</dt><dd>${Array.isArray(host.pinned) && host.pinned.length ? host.pinned.join(', ') : '—'}</dd>
      <dt>Cache</dt><dd>${host.cache_bytes != null ? fmtBytes(host.cache_bytes) : '—'}</dd>
      <dt>URL</dt><dd class="url">${host.tunnel_url || host.url || '—'}</dd>
      <dt>Version</dt><dd>${host.version || '—'}</dd>
      ${host.no_space && host.no_space.files ? html`<dt>Waiting for space</dt>
        <dd class="warn" data-no-space=${host.no_space.files}>${plural(host.no_space.files, 'file')}, ${fmtBytes(host.no_space.bytes)}</dd>` : ''}
      ${host.io_errors && host.io_errors.files ? html`<dt>Write errors</dt>
        <dd class="warn" data-io-errors=${host.io_errors.files}>${plural(host.io_errors.files, 'file')} not written: ${host.io_errors.last_error} (retrying)</dd>` : ''}
    </dl>
    <${Policies} ws=${ws} host=${host} feed=${feed} admin=${admin} />
    ${admin && html`<${RemoveHost} ws=${ws} host=${host} />`}
  </article>`;
}

function Replicas({ ws, feed }) {
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/replicas')), [ws.id],
    { feed, match: (ev) => ev.kind === 'file.version' || ev.kind.startsWith('host.'), pollMs: 15000 });
  return html`<section class="card" aria-labelledby="rep-h">
    <h2 id="rep-h">Replica health</h2>
    <${ErrorLine} error=${error} />
    ${data && html`<p class=${data.under_replicated ? 'warn' : 'ok'}>
      <strong data-under=${data.under_replicated}>${data.under_replicated}</strong> of ${data.chunks} chunks
      have fewer than ${data.min_replicas} copies ${data.storage === 'hosts' ? '(host copies: the hub\'s cache does not count)' : '(the hub counts as one)'}.</p>
      <p class="muted">${data.copies} copies of current chunks in all.</p>`}
  </section>`;
}

// The hub's background jobs (docs/jobs.md): what each did last, and damage
// scrub found that is not repaired yet.
function Jobs({ ws, feed }) {
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/jobs')), [ws.id], { feed, pollMs: 10000 });
  const show = (r) => (r ? Object.entries(r).filter(([k, v]) => typeof v === 'number' && v && k !== 'duration_ms')
    .map(([k, v]) => k.replace(/_/g, ' ') + ' ' + (k.startsWith('bytes') ? fmtBytes(v) : v)).join(', ') || 'nothing to do' : '—');
  return html`<section class="card" aria-labelledby="jobs-h">
    <h2 id="jobs-h">Background jobs</h2>
    <${ErrorLine} error=${error} />
    ${data && html`<table class="list"><thead><tr><th>Job</th><th>State</th><th>Last run</th><th>Result</th></tr></thead>
      <tbody>${!data.jobs.length && html`<tr><td colspan="4" class="empty-state">No background jobs have run yet; GC, scrub and replication run on their own schedule (docs/jobs.md).</td></tr>`}${data.jobs.map((j) => html`<tr data-job=${j.name}>
        <td>${j.name}</td><td>${j.state}</td><td>${j.finished_at ? fmtAgo(j.finished_at) : 'never'}</td>
        <td class=${j.result && (j.result.chunks_corrupt || j.result.chunks_unrepaired) ? 'warn' : ''}>
          ${j.state === 'running' ? 'in progress: ' + show(j.progress) : show(j.result)}</td></tr>`)}</tbody></table>`}
  </section>`;
}

function HostInvite({ ws }) {
  const [made, setMade] = useState(null);
  const [run, err] = useAction();
  return html`<section class="card" aria-labelledby="hinv-h">
    <h2 id="hinv-h">Add a host</h2>
    <p class="hint">Create a one-use link, then on the machine: <code>roost host join LINK --dir ~/Roost --label NAME</code>.</p>
    <button type="button" onClick=${async () => {
      const invite = await run(() => api('POST', wsPath(ws.id, '/hosts/invites'), { expires_in: 86400 }));
      if (invite) setMade(invite);
    }}>Create host invite</button>
    <${ErrorLine} error=${err} />
    ${made && html`<${CopyField} label="Host invite" value=${made.url} />`}
  </section>`;
}

export function HostsView({ ws, feed }) {
  const admin = ws.role === 'owner' || ws.role === 'admin';
  // Heartbeats are not on the feed: poll, so a host going offline shows within seconds.
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/hosts')), [ws.id],
    { feed, match: (ev) => ev.kind.startsWith('host.'), pollMs: 2000 });
  const hosts = (data && data.hosts) || [];
  return html`<main class="grid">
    <section class="hosts" aria-label="Hosts">
      <h2>Hosts <span class="muted">${hosts.filter((h) => h.status === 'online').length} of ${hosts.length} online</span></h2>
      <${ErrorLine} error=${error} />
      ${data && !hosts.length && html`<p class="empty-state">No hosts yet. A host is a machine that keeps a synced copy
        of this workspace: ${admin ? 'create a host invite below, then run roost host join on it.' : 'ask an owner or admin for a host invite.'}</p>`}
      ${hosts.map((h) => html`<${HostCard} key=${h.id} ws=${ws} host=${h} feed=${feed} admin=${admin} />`)}
    </section>
    <${Replicas} ws=${ws} feed=${feed} />
    ${admin && html`<${Jobs} ws=${ws} feed=${feed} />`}
    ${admin && html`<${HostInvite} ws=${ws} />`}
  </main>`;
}
