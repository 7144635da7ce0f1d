// Files: breadcrumbs, the folder listing, uploads with progress, and the actions
// on an entry (download, rename, move, delete, versions, share, access).
import { useEffect, useState } from 'preact/hooks';
import { api, wsPath, q, contentUrl } from './api.js';
import { html, fmtBytes, fmtTime, fmtWho, Modal, ErrorLine, CopyField, useLive, parentOf, joinPath, navigate } from './ui.js';
import { restoreVersion, droppedFiles } from './upload.js';
import { Uploads, UploadButtons, useUploads } from './uploads.js';
import { downloadClick } from './download.js';
import { LocationsDialog } from './storage.js';

const filesHref = (ws, path) =>
  '/w/' + ws + '/files' + (path === '/' ? '' : path.split('/').map(encodeURIComponent).join('/'));

function Breadcrumbs({ ws, path }) {
  const parts = path.split('/').filter(Boolean);
  const crumbs = [{ name: 'Files', path: '/' }];
  parts.forEach((p, i) => crumbs.push({ name: p, path: '/' + parts.slice(0, i + 1).join('/') }));
  return html`<nav aria-label="Breadcrumb" class="crumbs"><ol>
    ${crumbs.map((c, i) => html`<li>${i === crumbs.length - 1
      ? html`<span aria-current="page">${c.name}</span>`
      : html`<a href=${filesHref(ws.id, c.path)}>${c.name}</a>`}</li>`)}
  </ol></nav>`;
}

// A dialog with one text field; onSubmit(value) may throw to show an error.
function PromptDialog({ title, label, initial, submitLabel, onSubmit, onClose }) {
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      await onSubmit(new FormData(e.target).get('value'));
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Modal} title=${title} onClose=${onClose}>
    <form onSubmit=${submit}>
      <label>${label}<input name="value" defaultValue=${initial || ''} required autofocus
        onFocus=${(e) => {
          const v = e.target.value, dot = v.lastIndexOf('.');
          e.target.setSelectionRange(0, dot > 0 && !v.includes('/') ? dot : v.length);
        }} /></label>
      <${ErrorLine} error=${error} />
      <div class="actions"><button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary">${submitLabel}</button></div>
    </form>
  <//>`;
}

function ConfirmDialog({ title, text, confirmLabel, onConfirm, onClose }) {
  const [error, setError] = useState(null);
  return html`<${Modal} title=${title} onClose=${onClose}>
    <p>${text}</p>
    <${ErrorLine} error=${error} />
    <div class="actions"><button type="button" onClick=${onClose} autofocus>Cancel</button>
      <button type="button" class="danger" onClick=${async () => {
        try {
          await onConfirm();
          onClose();
        } catch (err) {
          setError(err);
        }
      }}>${confirmLabel}</button></div>
  <//>`;
}

function VersionsDialog({ ws, entry, feed, onClose }) {
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/versions?path=' + q(entry.path))),
    [entry.path], { feed, match: (ev) => ev.payload && ev.payload.path === entry.path });
  const [err2, setErr2] = useState(null);
  return html`<${Modal} title=${'Versions of ' + entry.name} onClose=${onClose}>
    <${ErrorLine} error=${error || err2} />
    <table class="list"><thead><tr><th>Version</th><th>Size</th><th>Saved</th><th>By</th><th><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${data && data.versions.map((v) => html`<tr>
      <td>v${v.version}${v.current ? html` <span class="tag">current</span>` : ''}</td>
      <td>${fmtBytes(v.size)}</td><td>${fmtTime(v.created_at)}</td><td>${fmtWho(v)}</td>
      <td class="row-actions"><a class="button" href=${contentUrl(ws.id, entry.path, v.version)} download=${entry.name}
        onClick=${downloadClick(ws.id, { ...entry, size: v.size }, v.version)}>Download</a>
        ${!v.current && html`<button type="button" onClick=${async () => {
          try {
            await restoreVersion(ws.id, entry.path, v.version);
          } catch (e) {
            setErr2(e);
          }
        }}>Restore</button>`}</td></tr>`)}</tbody></table>
  <//>`;
}

function ShareDialog({ ws, entry, onClose }) {
  const [link, setLink] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = { path: entry.path, scope: f.get('scope') };
    const exp = Number(f.get('expires'));
    if (exp) body.expires_in = exp;
    if (f.get('password')) body.password = f.get('password');
    try {
      setLink(await api('POST', wsPath(ws.id, '/shares'), body));
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Modal} title=${'Share ' + entry.name} onClose=${onClose}>
    ${link ? html`<${CopyField} label="Share link" value=${link.url} />
      <p class="hint">${link.scope === 'write' ? 'Anyone with the link may upload into this folder.' : 'Anyone with the link may download.'}
      ${link.expires_at ? ' Expires ' + fmtTime(link.expires_at) + '.' : ''} Revoke it on the Access page.</p>
      <div class="actions"><button type="button" onClick=${onClose}>Done</button></div>`
    : html`<form onSubmit=${submit}>
      <label>Scope<select name="scope">
        <option value="read">View and download</option>
        ${entry.type === 'folder' && html`<option value="write">Upload into the folder</option>`}
      </select></label>
      <label>Expires<select name="expires">
        <option value="3600">in 1 hour</option><option value="86400">in 1 day</option>
        <option value="604800" selected>in 7 days</option><option value="2592000">in 30 days</option>
        <option value="0">never</option></select></label>
      <label>Password (optional)<input name="password" type="password" autocomplete="new-password" /></label>
      <${ErrorLine} error=${error} />
      <div class="actions"><button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary">Create link</button></div>
    </form>`}
  <//>`;
}

// The folder tree: each open folder lists its subfolders (GET list, so only what
// the caller may see), loaded when opened and kept fresh by the feed.
function TreeNode({ ws, feed, path, name, current }) {
  const onPath = current === path || current.startsWith(path === '/' ? '/' : path + '/');
  const [open, setOpen] = useState(onPath);
  useEffect(() => {
    if (onPath) setOpen(true);
  }, [current]);
  const { data } = useLive(
    () => (open ? api('GET', wsPath(ws.id, '/list?path=' + q(path))) : Promise.resolve(null)),
    [ws.id, path, open], { feed, match: (ev) => ev.entity === 'folder' || ev.kind === 'acl.changed' });
  const folders = ((data && data.entries) || []).filter((e) => e.type === 'folder');
  return html`<li>
    <span class="tree-row">
      <button type="button" class="twisty" aria-expanded=${open}
        aria-label=${(open ? 'Collapse ' : 'Expand ') + name} onClick=${() => setOpen(!open)}>${open ? '▾' : '▸'}</button>
      <a href=${filesHref(ws.id, path)} aria-current=${current === path ? 'page' : undefined}
        ><span class="ico ico-folder" aria-hidden="true"></span>${name}</a>
    </span>
    ${open && folders.length > 0 && html`<ul>${folders.map((f) => html`<${TreeNode} key=${f.path}
      ws=${ws} feed=${feed} path=${f.path} name=${f.name} current=${current} />`)}</ul>`}
  </li>`;
}

function FolderTree({ ws, feed, current }) {
  return html`<nav class="tree" aria-label="Folders"><ul>
    <${TreeNode} ws=${ws} feed=${feed} path="/" name=${ws.name} current=${current} />
  </ul></nav>`;
}

function SearchResults({ ws, query, feed }) {
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/search?q=' + q(query))), [query],
    { feed });
  return html`<section aria-label="Search results">
    <h2>Results for “${query}”</h2>
    <${ErrorLine} error=${error} />
    ${data && !data.results.length && html`<p>Nothing found.</p>`}
    <ul class="results">${data && data.results.map((r) => html`<li>
      <span class=${'ico ico-' + r.type} aria-hidden="true"></span>
      <a href=${filesHref(ws.id, r.type === 'folder' ? r.path : parentOf(r.path))}>${r.path}</a>
      ${r.type === 'file' && html` <span class="muted">${fmtBytes(r.size)} · ${fmtTime(r.modified_at)}</span>`}
    </li>`)}</ul>
  </section>`;
}

export function FilesView({ ws, feed, route }) {
  const path = route.path || '/';
  const query = route.params.get('q') || '';
  const where = route.params.get('where'); // a file's locations, opened from a link
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/list?path=' + q(path))), [ws.id, path],
    { feed });
  const uploads = useUploads(ws);
  const [dialog, setDialog] = useState(null);
  const [drag, setDrag] = useState(false);
  const close = () => setDialog(null);

  const onDrop = (e) => {
    e.preventDefault();
    setDrag(false);
    droppedFiles(e.dataTransfer).then((files) => files.length && uploads.add(files, path));
  };
  const act = (kind, entry) => setDialog({ kind, entry });
  const entries = (data && data.entries) || [];

  return html`<div class="files-layout"><${FolderTree} ws=${ws} feed=${feed} current=${path} />
  <main class=${'files' + (drag ? ' dragging' : '')}
      onDragOver=${(e) => { e.preventDefault(); setDrag(true); }}
      onDragLeave=${(e) => { if (e.target === e.currentTarget) setDrag(false); }}
      onDrop=${onDrop}>
    <div class="toolbar">
      <${Breadcrumbs} ws=${ws} path=${path} />
      <form role="search" class="search" onSubmit=${(e) => {
        e.preventDefault();
        const v = new FormData(e.target).get('q').trim();
        navigate(filesHref(ws.id, path) + (v ? '?q=' + encodeURIComponent(v) : ''));
      }}><label><span class="sr-only">Search by name</span>
        <input name="q" type="search" placeholder="Search by name" defaultValue=${query} key=${query} /></label></form>
      <div class="buttons">
        <button type="button" onClick=${() => act('mkdir')}>New folder</button>
        <${UploadButtons} onFiles=${(files) => uploads.add(files, path)} />
      </div>
    </div>
    ${query ? html`<${SearchResults} ws=${ws} query=${query} feed=${feed} />` : html`
    ${error && error.status === 404 && path === '/'
      ? html`<p class="muted empty">Nothing in this workspace is shared with you yet.</p>`
      : html`<${ErrorLine} error=${error} />`}
    <p class="drop-hint" aria-hidden="true">Drop files or folders here to upload them to ${path}</p>
    <table class="list files-table">
      <thead><tr><th scope="col">Name</th><th scope="col" class="num">Size</th>
        <th scope="col" class="wide">Modified</th><th scope="col" class="wide">By</th>
        <th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>
        ${path !== '/' && html`<tr><td colspan="5"><a href=${filesHref(ws.id, parentOf(path))}>⬑ Parent folder</a></td></tr>`}
        ${data && !entries.length && html`<tr><td colspan="5" class="muted">This folder is empty. Drop files here or use Upload.</td></tr>`}
        ${entries.map((e) => html`<tr key=${e.path} data-path=${e.path}>
          <td class="name">${e.type === 'folder'
            ? html`<a href=${filesHref(ws.id, e.path)}><span class="ico ico-folder" aria-hidden="true"></span>${e.name}</a>`
            : html`<a href=${contentUrl(ws.id, e.path)} download=${e.name} onClick=${downloadClick(ws.id, e)}><span class="ico ico-file" aria-hidden="true"></span>${e.name}</a>`}</td>
          <td class="num">${e.type === 'file' ? fmtBytes(e.size) : ''}</td>
          <td class="wide">${fmtTime(e.modified_at)}</td>
          <td class="wide">${e.modified_by || ''}</td>
          <td class="row-actions">
            <details class="menu"><summary aria-label=${'Actions for ' + e.name}>⋯</summary>
              <div class="menu-items" onClick=${(ev) => ev.target.closest('details').removeAttribute('open')}>
                ${e.type === 'file' && html`<a class="button" href=${contentUrl(ws.id, e.path)} download=${e.name} onClick=${downloadClick(ws.id, e)}>Download</a>`}
                <button type="button" onClick=${() => act('rename', e)}>Rename</button>
                <button type="button" onClick=${() => act('move', e)}>Move</button>
                ${e.type === 'file' && html`<button type="button" onClick=${() => act('versions', e)}>Versions</button>`}
                ${e.type === 'file' && html`<button type="button" onClick=${() => act('locations', e)}>Locations</button>`}
                <button type="button" onClick=${() => act('share', e)}>Share</button>
                <a class="button" href=${'/w/' + ws.id + '/access?path=' + encodeURIComponent(e.path)}>Access</a>
                <button type="button" class="danger" onClick=${() => act('delete', e)}>Delete</button>
              </div></details>
          </td></tr>`)}
      </tbody>
    </table>`}
    <${Uploads} uploads=${uploads} />
    ${dialog && dialog.kind === 'mkdir' && html`<${PromptDialog} title="New folder" label="Folder name"
      submitLabel="Create" onClose=${close}
      onSubmit=${(name) => api('POST', wsPath(ws.id, '/folders'), { path: joinPath(path, name) })} />`}
    ${dialog && dialog.kind === 'rename' && html`<${PromptDialog} title=${'Rename ' + dialog.entry.name}
      label="New name" initial=${dialog.entry.name} submitLabel="Rename" onClose=${close}
      onSubmit=${(name) => api('POST', wsPath(ws.id, '/move'), { from: dialog.entry.path, to: joinPath(parentOf(dialog.entry.path), name) })} />`}
    ${dialog && dialog.kind === 'move' && html`<${PromptDialog} title=${'Move ' + dialog.entry.name}
      label="Move to (full path)" initial=${dialog.entry.path} submitLabel="Move" onClose=${close}
      onSubmit=${(to) => api('POST', wsPath(ws.id, '/move'), { from: dialog.entry.path, to })} />`}
    ${dialog && dialog.kind === 'delete' && html`<${ConfirmDialog} title=${'Delete ' + dialog.entry.name}
      text=${dialog.entry.type === 'folder' ? 'Delete this folder and everything in it?' : 'Delete this file?'}
      confirmLabel="Delete" onClose=${close}
      onConfirm=${() => api('DELETE', wsPath(ws.id, '/files?path=' + q(dialog.entry.path)))} />`}
    ${dialog && dialog.kind === 'versions' && html`<${VersionsDialog} ws=${ws} entry=${dialog.entry} feed=${feed} onClose=${close} />`}
    ${dialog && dialog.kind === 'locations' && html`<${LocationsDialog} ws=${ws} path=${dialog.entry.path} feed=${feed} onClose=${close} />`}
    ${where && !dialog && html`<${LocationsDialog} ws=${ws} path=${where} feed=${feed}
      onClose=${() => navigate(filesHref(ws.id, path), true)} />`}
    ${dialog && dialog.kind === 'share' && html`<${ShareDialog} ws=${ws} entry=${dialog.entry} onClose=${close} />`}
  </main></div>`;
}
