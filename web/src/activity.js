// Activity: the audit log with filters, and storage / transfer charts (uPlot)
// from GET usage/history.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, wsPath, q } from './api.js';
import { html, fmtBytes, fmtTime, fmtWho, ErrorLine, useLive } from './ui.js';

const ACTIONS = ['', 'login', 'login.failed', 'file.version', 'file.move', 'file.delete', 'folder.create',
  'folder.move', 'folder.delete', 'acl.set', 'member.join', 'member.role', 'member.remove', 'member.leave',
  'invite.create', 'invite.revoke', 'share.create', 'share.revoke', 'share.download', 'share.zip', 'url.create',
  'host.invite', 'host.join', 'host.policy', 'workspace.create', 'workspace.update', 'file.restore',
  'trash.purge', 'version.expire', 'chunk.corrupt', 'chunk.repaired', 'chunk.replicated', 'file.corrupt',
  'host.scrub', 'replicas.rebalance'];

function Chart({ title, series, data, bars }) {
  const box = useRef();
  const plot = useRef();
  useEffect(() => {
    const width = () => Math.max(260, box.current.clientWidth - 8);
    const opts = {
      title, width: width(), height: 220,
      scales: { x: { time: true } },
      axes: [{}, { values: (u, vals) => vals.map((v) => fmtBytes(v)), size: 70 }],
      series: [{}, ...series.map((s) => ({
        label: s.label, stroke: s.color, fill: s.fill, width: 2,
        value: (u, v) => (v == null ? '—' : fmtBytes(v)),
        paths: bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
      }))],
    };
    plot.current = new uPlot(opts, data, box.current);
    const ro = new ResizeObserver(() => plot.current.setSize({ width: width(), height: 220 }));
    ro.observe(box.current);
    return () => {
      ro.disconnect();
      plot.current.destroy();
    };
  }, []);
  useEffect(() => {
    plot.current && plot.current.setData(data);
  }, [data]);
  return html`<figure class="chart" ref=${box} role="img" aria-label=${title}></figure>`;
}

function Charts({ ws, feed }) {
  const [days, setDays] = useState(30);
  const { data, error } = useLive(async () => {
    const [h, u] = await Promise.all([
      api('GET', wsPath(ws.id, '/usage/history?days=' + days)),
      api('GET', wsPath(ws.id, '/usage')),
    ]);
    return { h, u };
  }, [ws.id, days], { feed, match: (ev) => ev.kind.startsWith('file.') });
  if (!data) return html`<section class="card"><${ErrorLine} error=${error} /><p>Loading charts…</p></section>`;
  const pts = data.h.points;
  const xs = pts.map((p) => p.at / 1000);
  const storage = [xs, pts.map((p) => p.logical_bytes), pts.map((p) => p.stored_bytes)];
  const transfer = [xs, pts.map((p) => p.received_bytes), pts.map((p) => p.sent_bytes),
    pts.map((p) => p.new_stored_bytes)];
  const u = data.u;
  const ratio = u.stored_bytes ? (u.logical_bytes / u.stored_bytes).toFixed(2) : '—';
  return html`<section class="card charts" aria-labelledby="usage-h">
    <header><h2 id="usage-h">Storage</h2>
      <label>Range<select value=${days} onChange=${(e) => setDays(Number(e.target.value))}>
        <option value="2">2 days (hourly)</option><option value="30">30 days</option>
        <option value="365">1 year</option></select></label></header>
    <dl class="facts stats">
      <dt>Logical</dt><dd data-stat="logical">${fmtBytes(u.logical_bytes)}</dd>
      <dt>Stored</dt><dd data-stat="stored">${fmtBytes(u.stored_bytes)}</dd>
      <dt>Dedup ratio</dt><dd data-stat="ratio">${ratio}×</dd>
      <dt>Files</dt><dd>${u.files}</dd><dt>Versions</dt><dd>${u.versions}</dd><dt>Chunks</dt><dd>${u.chunks}</dd>
    </dl>
    <${Chart} key=${'s' + days} title="Logical vs stored bytes" data=${storage} series=${[
      { label: 'logical', color: '#2563eb', fill: 'rgba(37,99,235,0.08)' },
      { label: 'stored', color: '#16a34a', fill: 'rgba(22,163,74,0.12)' }]} />
    <${Chart} key=${'t' + days} title="Transfer: uploaded, downloaded, newly stored" bars data=${transfer} series=${[
      { label: 'uploaded', color: '#7c3aed', fill: 'rgba(124,58,237,0.35)' },
      { label: 'downloaded', color: '#0891b2', fill: 'rgba(8,145,178,0.35)' },
      { label: 'newly stored', color: '#ea580c', fill: 'rgba(234,88,12,0.5)' }]} />
  </section>`;
}

function Audit({ ws, feed }) {
  const [action, setAction] = useState('');
  const [who, setWho] = useState('');
  const [before, setBefore] = useState([]);
  const cursor = before[before.length - 1];
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/audit?limit=50' +
    (action ? '&action=' + q(action) : '') + (cursor ? '&before=' + cursor : ''))),
  [ws.id, action, cursor], { feed: cursor ? null : feed });
  const rows = ((data && data.entries) || []).filter((e) => !who || fmtWho(e).includes(who) ||
    (e.target || '').includes(who));
  return html`<section class="card wide-card" aria-labelledby="audit-h">
    <h2 id="audit-h">Audit log</h2>
    <form class="inline" onSubmit=${(e) => e.preventDefault()}>
      <label>Action<select value=${action} onChange=${(e) => { setAction(e.target.value); setBefore([]); }}>
        ${ACTIONS.map((a) => html`<option value=${a}>${a || 'all'}</option>`)}</select></label>
      <label>Actor or target contains<input type="search" value=${who} onInput=${(e) => setWho(e.target.value)} /></label>
    </form>
    <${ErrorLine} error=${error} />
    <table class="list audit"><thead><tr><th>When</th><th>Action</th><th>Target</th><th class="wide">Actor</th><th class="wide">Client</th></tr></thead>
    <tbody>${rows.map((e) => html`<tr><td>${fmtTime(e.at)}</td><td><code>${e.action}</code></td>
      <td class="target">${e.target || ''}</td><td class="wide">${fmtWho(e)}</td><td class="wide">${e.client || ''}</td></tr>`)}
    ${data && !rows.length && html`<tr><td colspan="5" class="empty-state">${action || who || cursor
      ? html`Nothing matches these filters. <button type="button" onClick=${() => { setAction(''); setWho(''); setBefore([]); }}>Clear the filters</button>`
      : 'Nothing has happened in this workspace yet: uploads, shares and member changes will be listed here.'}</td></tr>`}</tbody></table>
    <div class="actions">
      ${before.length > 0 && html`<button type="button" onClick=${() => setBefore(before.slice(0, -1))}>Newer</button>`}
      ${data && data.entries.length === 50 && html`<button type="button"
        onClick=${() => setBefore([...before, data.entries[data.entries.length - 1].id])}>Older</button>`}
    </div>
  </section>`;
}

export function ActivityView({ ws, feed }) {
  const admin = ws.role === 'owner' || ws.role === 'admin';
  return html`<main class="grid">
    <${Charts} ws=${ws} feed=${feed} />
    ${admin ? html`<${Audit} ws=${ws} feed=${feed} />` : html`<p>Only owners and admins read the audit log.</p>`}
  </main>`;
}
