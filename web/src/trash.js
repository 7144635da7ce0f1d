// Trash: deleted files, restorable until the workspace's trash_days pass and
// GC purges them (docs/jobs.md).
import { useState } from 'preact/hooks';
import { api, wsPath } from './api.js';
import { html, fmtBytes, fmtTime, ErrorLine, useLive, useAction } from './ui.js';

export function TrashView({ ws, feed }) {
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/trash?limit=500')), [ws.id],
    { feed, match: (ev) => ev.kind === 'file.deleted' || ev.kind === 'folder.deleted' || ev.kind === 'file.version' });
  const [run, err] = useAction(reload);
  const [done, setDone] = useState(null);
  const restore = async (e) => {
    const r = await run(() => api('POST', wsPath(ws.id, '/trash/restore'), { id: e.id }));
    if (r) setDone(r.restored);
  };
  const list = (data && data.entries) || [];
  return html`<main class="grid">
    <section class="card" aria-labelledby="trash-h">
      <h2 id="trash-h">Trash <span class="muted">deleted files stay ${data ? data.trash_days : '…'} days</span></h2>
      <${ErrorLine} error=${error || err} />
      ${done && html`<p class="ok" role="status">Restored ${done}</p>`}
      ${data && !list.length && html`<p class="empty-state">The trash is empty. Files and folders you delete on the
        Files page stay here ${data.trash_days} days, and can be restored from here.</p>`}
      ${list.length > 0 && html`<table class="list">
        <thead><tr><th>Path</th><th class="num">Size</th><th>Deleted</th><th>Restorable until</th><th></th></tr></thead>
        <tbody>${list.map((e) => html`<tr key=${e.id} data-path=${e.path}>
          <td>${e.path}</td><td class="num">${fmtBytes(e.size)}</td><td>${fmtTime(e.deleted_at)}</td>
          <td>${fmtTime(e.expires_at)}</td>
          <td><button type="button" aria-label=${'Restore ' + e.path} onClick=${() => restore(e)}>Restore</button></td>
        </tr>`)}</tbody></table>`}
    </section>
  </main>`;
}
