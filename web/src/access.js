// Access: members and roles, invites, the ACL editor for a path, share links and
// the workspace's default access.
import { useState } from 'preact/hooks';
import { api, wsPath, q } from './api.js';
import { html, fmtTime, ErrorLine, CopyField, useLive, useAction, navigate, person } from './ui.js';
import { CopyLinkDialog } from './links.js';

const ROLES = ['member', 'admin', 'owner'];
const PERMS = ['none', 'read', 'write', 'manage'];

function Members({ ws, me, feed, admin }) {
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/members')), [ws.id],
    { feed, match: (ev) => ev.kind.startsWith('member.') });
  const [run, err] = useAction(reload);
  const [reset, setReset] = useState(null);
  const resetLink = async (m) => {
    const r = await run(() => api('POST', wsPath(ws.id, '/members/' + m.user_id + '/reset-link'), {}));
    if (r) setReset(r);
  };
  return html`<section class="card" aria-labelledby="members-h">
    <h2 id="members-h">Members</h2>
    <${ErrorLine} error=${error || err} />
    ${reset && html`<div class="made" role="status">
      <p>A one-use link for ${reset.email} to set a new password, until ${fmtTime(reset.expires_at)}.
        Send it to them; using it ends every login of the account.</p>
      <${CopyField} label="Reset link" value=${reset.url} />
      <button type="button" onClick=${() => setReset(null)}>Done</button></div>`}
    <table class="list"><thead><tr><th>Member</th><th>Role</th><th class="wide">Since</th><th><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${data && data.members.map((m) => html`<tr>
      <td title=${m.email}>${m.name ? html`${m.name} <span class="muted">${m.email}</span>` : m.email}${m.totp ? html` <span class="badge" title="two-factor authentication on">2FA</span>` : ''}</td>
      <td>${admin && m.user_id !== me.id
        ? html`<select aria-label=${'Role of ' + m.email} value=${m.role}
            onChange=${(e) => run(() => api('PUT', wsPath(ws.id, '/members/' + m.user_id), { role: e.target.value }))}>
            ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select>`
        : m.role}</td>
      <td class="wide">${fmtTime(m.since)}</td>
      <td class="row-actions">${admin && m.user_id !== me.id && html`<button type="button"
        onClick=${() => resetLink(m)}>Reset link</button>`}
        ${(admin || m.user_id === me.id) && html`<button type="button" class="danger"
        onClick=${() => run(() => api('DELETE', wsPath(ws.id, '/members/' + m.user_id)))}>
        ${m.user_id === me.id ? 'Leave' : 'Remove'}</button>`}</td>
    </tr>`)}</tbody></table>
  </section>`;
}

function Invites({ ws, feed }) {
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/invites')), [ws.id],
    { feed, match: (ev) => ev.kind === 'member.added' });
  const [made, setMade] = useState(null);
  const [run, err] = useAction(reload);
  const create = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const invite = await run(() => api('POST', wsPath(ws.id, '/invites'),
      { role: f.get('role'), expires_in: Number(f.get('expires')) }));
    if (invite) setMade(invite);
  };
  return html`<section class="card" aria-labelledby="invites-h">
    <h2 id="invites-h">Invites</h2>
    <form class="inline" onSubmit=${create}>
      <label>Role<select name="role">${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
      <label>Expires<select name="expires"><option value="86400">in 1 day</option>
        <option value="604800" selected>in 7 days</option><option value="2592000">in 30 days</option></select></label>
      <button class="primary">Create invite</button>
    </form>
    ${made && html`<${CopyField} label="Invite link (send it to one person)" value=${made.url} />`}
    <${ErrorLine} error=${error || err} />
    <table class="list"><thead><tr><th>Role</th><th>Created by</th><th>Expires</th><th><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${data && data.invites.map((i) => html`<tr>
      <td>${i.role}</td><td>${person(i.created_by_name, i.created_by)}</td><td>${fmtTime(i.expires_at)}</td>
      <td class="row-actions"><button type="button" class="danger" onClick=${async () => {
        await api('DELETE', wsPath(ws.id, '/invites/' + i.id));
        reload();
      }}>Revoke</button></td></tr>`)}
    ${data && !data.invites.length && html`<tr><td colspan="4" class="empty-state">No open invites. Choose a role and
      Create invite above, then send the link to the person you want to add.</td></tr>`}</tbody></table>
  </section>`;
}

function AclEditor({ ws, feed, path, admin }) {
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/acl?path=' + q(path))), [ws.id, path],
    { feed, match: (ev) => ev.kind === 'acl.changed' || ev.kind === 'workspace.updated' });
  const [run, err] = useAction(reload);
  const add = (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    run(() => api('PUT', wsPath(ws.id, '/acl'), { path, email: f.get('email'), perm: f.get('perm') }));
    e.target.reset();
  };
  const manage = data && data.effective === 'manage';
  return html`<section class="card" aria-labelledby="acl-h">
    <h2 id="acl-h">Access to a folder or file</h2>
    <form class="inline" onSubmit=${(e) => {
      e.preventDefault();
      navigate('/w/' + ws.id + '/access?path=' + encodeURIComponent(new FormData(e.target).get('path') || '/'));
    }}><label>Path<input name="path" defaultValue=${path} key=${path} /></label><button>Show</button></form>
    <${ErrorLine} error=${error || err} />
    ${data && html`<p>Your access to <code>${path}</code>: <strong>${data.effective}</strong>.
      Workspace default for members: ${admin
        ? html`<select aria-label="Default access" value=${data.default_access}
            onChange=${(e) => run(() => api('PATCH', '/workspaces/' + ws.id, { default_access: e.target.value }))}>
            ${['none', 'read', 'write'].map((p) => html`<option value=${p}>${p}</option>`)}</select>`
        : html`<strong>${data.default_access}</strong>`}</p>
    ${manage && html`<table class="list"><thead><tr><th>Member</th><th>Permission</th><th><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${(data.entries || []).map((en) => html`<tr>
        <td>${person(en.name, en.email)}</td>
        <td><select aria-label=${'Permission of ' + en.email} value=${en.perm}
          onChange=${(e) => run(() => api('PUT', wsPath(ws.id, '/acl'), { path, user_id: en.user_id, perm: e.target.value }))}>
          ${PERMS.map((p) => html`<option value=${p}>${p}</option>`)}</select></td>
        <td class="row-actions"><button type="button" class="danger"
          onClick=${() => run(() => api('DELETE', wsPath(ws.id, '/acl?path=' + q(path) + '&user=' + en.user_id)))}>Remove</button></td>
      </tr>`)}
      ${!(data.entries || []).length && html`<tr><td colspan="3" class="muted">No entries here; members get the inherited access.</td></tr>`}
      </tbody></table>
      <form class="inline" onSubmit=${add} aria-label="Add an entry">
        <label>Member email<input name="email" type="email" required /></label>
        <label>Permission<select name="perm">${PERMS.map((p) => html`<option value=${p} selected=${p === 'read'}>${p}</option>`)}</select></label>
        <button class="primary">Set access</button>
      </form>`}`}
  </section>`;
}

function Shares({ ws, feed }) {
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/shares')), [ws.id], { feed });
  const [copying, setCopying] = useState(null);
  return html`<section class="card wide-card" aria-labelledby="shares-h">
    <h2 id="shares-h">Share links</h2>
    <p class="hint">Create a link from a file's or folder's ⋯ menu on the Files page.</p>
    <${ErrorLine} error=${error} />
    <table class="list"><thead><tr><th>Path</th><th>Scope</th><th class="wide">Created by</th><th>Expires</th><th><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${data && data.shares.map((s) => html`<tr data-share=${s.id}>
      <td>${s.path}${s.password ? ' (password)' : ''}</td><td>${s.scope}</td><td class="wide">${person(s.created_by_name, s.created_by)}</td>
      <td>${s.expires_at ? fmtTime(s.expires_at) : 'never'}</td>
      <td class="row-actions"><button type="button" onClick=${() => setCopying(s)}>Copy link</button>
        <button type="button" class="danger" onClick=${async () => {
        await api('DELETE', wsPath(ws.id, '/shares/' + s.id));
        reload();
      }}>Revoke</button></td></tr>`)}
    ${data && !data.shares.length && html`<tr><td colspan="5" class="empty-state">No live share links. To share a file or
      folder, open its ⋯ menu on the <a href=${'/w/' + ws.id + '/files'}>Files</a> page and choose Share.</td></tr>`}
    </tbody></table>
    ${copying && html`<${CopyLinkDialog} ws=${ws} share=${copying} onClose=${() => setCopying(null)} onCreated=${reload} />`}
  </section>`;
}

// Whether the workspace requires two-factor authentication (owners set it,
// and must have it themselves).
function Security({ ws, me }) {
  const { data, error, reload } = useLive(() => api('GET', wsPath(ws.id, '/security')), [ws.id]);
  const [run, err] = useAction(reload);
  if (!data) return html`<${ErrorLine} error=${error} />`;
  return html`<section class="card" aria-labelledby="security-h">
    <h2 id="security-h">Sign-in</h2>
    <label class="check"><input type="checkbox" checked=${data.require_2fa}
      onChange=${(e) => run(() => api('PUT', wsPath(ws.id, '/security'), { require_2fa: e.target.checked }))} />
      Members must use two-factor authentication</label>
    <p class="muted">Members without it are asked to turn it on (<a href="/account">Account</a>) before they reach
      this workspace. ${me.totp ? '' : 'Turn it on for yourself first.'}</p>
    <${ErrorLine} error=${error || err} />
  </section>`;
}

export function AccessView({ ws, feed, me, route }) {
  const admin = ws.role === 'owner' || ws.role === 'admin';
  const path = route.params.get('path') || '/';
  return html`<main class="grid">
    <${AclEditor} ws=${ws} feed=${feed} path=${path} admin=${admin} />
    <${Members} ws=${ws} me=${me} feed=${feed} admin=${admin} />
    ${admin && html`<${Invites} ws=${ws} feed=${feed} />`}
    ${ws.role === 'owner' && html`<${Security} ws=${ws} me=${me} />`}
    <${Shares} ws=${ws} feed=${feed} />
  </main>`;
}
