// Share links again (issue 16). The hub keeps only a hash of each link's token,
// so a link's URL cannot be read back: this page remembers, in memory only, the
// URLs it created since it was loaded, and otherwise offers a new link to the
// same path (nothing is ever written to storage in clear).
import { useState } from 'preact/hooks';
import { api, wsPath } from './api.js';
import { html, Modal, ErrorLine, CopyField, fmtTime } from './ui.js';

const made = new Map(); // share id → URL, created in this page

export function rememberLink(link) {
  if (link && link.id && link.url) made.set(link.id, link.url);
}

export function CopyLinkDialog({ ws, share, onClose, onCreated }) {
  const [fresh, setFresh] = useState(null);
  const [error, setError] = useState(null);
  const url = fresh ? fresh.url : made.get(share.id);
  const create = async () => {
    try {
      const body = { path: share.path, scope: share.scope };
      if (share.expires_at) body.expires_in = Math.max(60, Math.round((share.expires_at - Date.now()) / 1000));
      const link = await api('POST', wsPath(ws.id, '/shares'), body);
      rememberLink(link);
      setFresh(link);
      onCreated && onCreated();
    } catch (e) {
      setError(e);
    }
  };
  return html`<${Modal} title=${'Link to ' + share.path} onClose=${onClose}>
    ${url
      ? html`<${CopyField} label="Share link" value=${url} />
        ${fresh && html`<p class="hint">A new link${fresh.expires_at ? ', expiring ' + fmtTime(fresh.expires_at) : ''}. The old one still works until you revoke it.</p>`}`
      : html`<p class="notice">roost stores only a fingerprint (hash) of each share link, never the link
        itself, so this link cannot be shown again. Create a new link to <code>${share.path}</code>${' '}
        instead${share.password ? ' (it will have no password: set one from the Files page)' : ''}, and revoke
        the old one if nobody needs it.</p>`}
    <${ErrorLine} error=${error} />
    <div class="actions">
      ${!url && html`<button type="button" class="primary" onClick=${create}>Create a new link</button>`}
      <button type="button" onClick=${onClose}>Done</button></div>
  <//>`;
}
