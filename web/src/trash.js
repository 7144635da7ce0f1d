// Trash: deleted files, restorable until the workspace's trash_days pass and
// GC purges them (docs/jobs.md). Owners and admins may empty it, or delete one
// entry for good, before then (POST trash/empty), after a confirmation.
import { useState } from 'preact/hooks';
import { api, wsPath } from './api.js';
import { html, fmtBytes, fmtTime, ErrorLine, useLive, useAction } from './ui.js';
import { ConfirmDialog } from './dialogs.js';

export function TrashView({ ws, feed }) {
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/trash?limit=500')), [ws.id],
    { feed, match: (ev) => ev.kind === 'file.deleted' || ev.kind === 'folder.deleted' || ev.kind === 'file.version' || ev.kind === 'trash.purged' });
  const [run, err] = useAction(reload);
  const [done, setDone] = useState(null);
  const [confirm, setConfirm] = useState(null); // {entry} or {all: true}
  const [purged, setPurged] = useState(null);
  const admin = ws.role === 'owner' || ws.role === 'admin';
  const purge = async (body) => {
    const r = await api('POST', wsPath(ws.id, '/trash/empty'), body);
    setDone(null);
    setPurged(r.purged);
    reload();
  };
  const restore = async (e) => {
    const r = await run(() => api('POST', wsPath(ws.id, '/trash/restore'), { id: e.id }));
    if (r) setDone(r.restored);
  };
  const list = (data && data.entries) || [];
  return html`<main class="grid">
    <section class="card" aria-labelledby="trash-h">
      <header class="card-head"><h2 id="trash-h">Trash <span class="muted">deleted files stay ${data ? data.trash_days : '…'} days</span></h2>
        ${admin && list.length > 0 && html`<button type="button" class="danger" onClick=${() => setConfirm({ all: true })}>Empty trash</button>`}</header>
      <${ErrorLine} error=${error || err} />
      ${done && html`<p class="ok" role="status">Restored ${done}</p>`}
      ${purged !== null && html`<p class="ok" role="status">Deleted ${purged} ${purged === 1 ? 'file' : 'files'} for good</p>`}
      ${data && !list.length && html`<p class="empty-state">The trash is empty. Files and folders you delete on the
        Files page stay here ${data.trash_days} days, and can be restored from here.</p>`}
      ${list.length > 0 && html`<table class="list">
        <thead><tr><th>Path</th><th class="num">Size</th><th>Deleted</th><th>Restorable until</th><th></th></tr></thead>
        <tbody>${list.map((e) => html`<tr key=${e.id} data-path=${e.path}>
          <td>${e.path}</td><td class="num">${fmtBytes(e.size)}</td><td>${fmtTime(e.deleted_at)}</td>
          <td>${fmtTime(e.expires_at)}</td>
          <td><button type="button" aria-label=${'Restore ' + e.path} onClick=${() => restore(e)}>Restore</button>
            ${admin && html` <button type="button" class="danger" aria-label=${'Delete ' + e.path + ' forever'}
              onClick=${() => setConfirm({ entry: e })}>Delete forever</button>`}</td>
        </tr>`)}</tbody></table>`}
    </section>
    ${confirm && html`<${ConfirmDialog} title=${confirm.all ? 'Empty the trash' : 'Delete ' + confirm.entry.path + ' forever'}
      text=${confirm.all ? 'Delete every file in the trash for good? This cannot be undone.'
        : 'Delete this file and all its versions for good? This cannot be undone.'}
      confirmLabel=${confirm.all ? 'Empty trash' : 'Delete forever'} onClose=${() => setConfirm(null)}
      onConfirm=${() => purge(confirm.all ? {} : { id: confirm.entry.id })} />`}
  </main>`;
}
