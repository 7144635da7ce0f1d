// Files: breadcrumbs, the folder listing, uploads with progress, and the actions
// on an entry (download, rename, move, delete, versions, share, access).
import { useEffect, useState } from 'preact/hooks';
import { api, wsPath, q, contentUrl } from './api.js';
import { html, fmtBytes, fmtTime, fmtWho, Modal, ErrorLine, CopyField, useLive, parentOf, joinPath, navigate } from './ui.js';
import { restoreVersion, droppedFiles } from './upload.js';
import { Uploads, UploadButtons, useUploads } from './uploads.js';
import { downloadClick } from './download.js';
import { LocationsDialog } from './storage.js';
import { PromptDialog, ConfirmDialog } from './dialogs.js';
import { PreviewDialog, previewKind } from './preview.js';
import { useSelection, SelectBox, SelectAll, BulkBar } from './select.js';
import { rememberLink } from './links.js';
import { FileGrid } from './grid.js';

const VIEW_KEY = 'roost.filesView'; // 'list' or 'grid', remembered per browser

function useViewMode() {
  const [mode, setMode] = useState(() => {
    try {
      return localStorage.getItem(VIEW_KEY) === 'grid' ? 'grid' : 'list';
    } catch {
      return 'list';
    }
  });
  const set = (m) => {
    setMode(m);
    try {
      localStorage.setItem(VIEW_KEY, m);
    } catch {}
  };
  return [mode, set];
}

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

function VersionsDialog({ ws, entry, feed, onClose }) {
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/versions?path=' + q(entry.path))),
    [entry.path], { feed, match: (ev) => ev.payload && ev.payload.path === entry.path });
  const [err2, setErr2] = useState(null);
  return html`<${Modal} title=${'Versions of ' + entry.name} onClose=${onClose}>
    <${ErrorLine} error=${error || err2} />
    <table class="list versions"><thead><tr><th>Version</th><th>Size</th><th>Saved</th><th>By</th><th><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${data && data.versions.map((v) => html`<tr data-version=${v.version}>
      <td class="v">v${v.version}${v.current ? html` <span class="tag">current</span>` : ''}</td>
      <td data-label="Size">${fmtBytes(v.size)}</td><td data-label="Saved">${fmtTime(v.created_at)}</td><td data-label="By">${fmtWho(v)}</td>
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
      const made = await api('POST', wsPath(ws.id, '/shares'), body);
      rememberLink(made);
      setLink(made);
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

// GET list answers a page (1,000 entries, folders first) and a cursor to the next:
// the first `pages` pages as one answer, or fewer once `enough(entries)` says so.
async function listPages(wsId, path, pages, enough = () => false) {
  let out = null;
  for (let i = 0; i < pages; i++) {
    const cursor = out && out.next_cursor;
    const r = await api('GET', wsPath(wsId, '/list?path=' + q(path) + (cursor ? '&cursor=' + q(cursor) : '')));
    out = out ? { ...r, entries: out.entries.concat(r.entries) } : r;
    if (!out.next_cursor || enough(out.entries)) break;
  }
  return out;
}

// Has a listing given every folder (they come first)?
const foldersDone = (entries) => entries.length > 0 && entries[entries.length - 1].type !== 'folder';

// The folder tree: each open folder lists its subfolders (GET list, so only what
// the caller may see), loaded when opened and kept fresh by the feed.
function TreeNode({ ws, feed, path, name, current }) {
  const onPath = current === path || current.startsWith(path === '/' ? '/' : path + '/');
  const [open, setOpen] = useState(onPath);
  useEffect(() => {
    if (onPath) setOpen(true);
  }, [current]);
  const { data } = useLive(
    () => (open ? listPages(ws.id, path, 100, foldersDone) : Promise.resolve(null)),
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

function SearchResults({ ws, query, feed, from }) {
  const { data, error } = useLive(() => api('GET', wsPath(ws.id, '/search?q=' + q(query))), [query],
    { feed });
  const results = (data && data.results) || [];
  return html`<section aria-label="Search results">
    <h2>Results for “${query}”</h2>
    <${ErrorLine} error=${error} />
    ${data && !results.length && html`<p class="empty-state">No file or folder name holds “${query}”. Try a shorter
      part of the name, or <a href=${filesHref(ws.id, from)}>go back to the folder</a>.</p>`}
    ${results.length > 0 && html`<table class="list results">
      <thead><tr><th scope="col">Path</th><th scope="col" class="num">Size</th><th scope="col" class="wide">Modified</th></tr></thead>
      <tbody>${results.map((r) => html`<tr key=${r.path}>
        <td class="name"><a href=${r.type === 'folder' ? filesHref(ws.id, r.path)
          : filesHref(ws.id, parentOf(r.path)) + '?hl=' + encodeURIComponent(r.path)}>
          <span class=${'ico ico-' + r.type} aria-hidden="true"></span>${r.path}</a></td>
        <td class="num">${r.type === 'file' ? fmtBytes(r.size) : ''}</td>
        <td class="wide">${fmtTime(r.modified_at)}</td></tr>`)}</tbody></table>`}
    ${data && data.truncated && html`<p class="hint">More match: type more of the name to narrow it down.</p>`}
  </section>`;
}

export function FilesView({ ws, feed, route }) {
  const path = route.path || '/';
  const query = route.params.get('q') || '';
  const where = route.params.get('where'); // a file's locations, opened from a link
  const hl = route.params.get('hl'); // a file to point at (from a search result)
  // Pages shown: one more each time "Show more" is pressed; a new folder starts at one.
  const [pages, setPages] = useState({ path, n: 1 });
  const shown = pages.path === path ? pages.n : 1;
  const { data, error } = useLive(() => listPages(ws.id, path, shown), [ws.id, path, shown], { feed });
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
  const selection = useSelection(entries);
  const [mode, setMode] = useViewMode();
  const href = (p) => filesHref(ws.id, p);
  // A highlighted file (from search) scrolls into view once it is listed.
  useEffect(() => {
    if (!hl || !data) return;
    const el = document.querySelector(`[data-path="${CSS.escape(hl)}"]`);
    if (el) el.scrollIntoView({ block: 'center' });
  }, [hl, data]);

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
        <div class="view-toggle" role="group" aria-label="View">
          <button type="button" aria-pressed=${mode === 'list'} onClick=${() => setMode('list')}>List</button>
          <button type="button" aria-pressed=${mode === 'grid'} onClick=${() => setMode('grid')}>Grid</button>
        </div>
        <button type="button" onClick=${() => act('mkdir')}>New folder</button>
        <${UploadButtons} onFiles=${(files) => uploads.add(files, path)} />
      </div>
    </div>
    ${query ? html`<${SearchResults} ws=${ws} query=${query} feed=${feed} from=${path} />` : html`
    ${error && error.status === 404 && path === '/'
      ? html`<p class="muted empty">Nothing in this workspace is shared with you yet.</p>`
      : html`<${ErrorLine} error=${error} />`}
    <p class="drop-hint" aria-hidden="true">Drop files or folders here to upload them to ${path}</p>
    <${BulkBar} ws=${ws} path=${path} selection=${selection} />
    ${mode === 'grid' ? html`
    ${path !== '/' && html`<p><a href=${filesHref(ws.id, parentOf(path))}>⬑ Parent folder</a></p>`}
    ${data && !entries.length && html`<p class="empty-state">This folder is empty. Drop files here or use Upload.</p>`}
    ${entries.length > 0 && html`<p class="select-all-line"><label class="inline-check"><${SelectAll} selection=${selection} /> Select all</label></p>`}
    <${FileGrid} ws=${ws} entries=${entries} href=${href} selection=${selection} highlight=${hl}
      onPreview=${(e) => act('preview', e)} />` : html`
    <table class="list files-table">
      <thead><tr><th scope="col" class="pick-col">${entries.length > 0 && html`<${SelectAll} selection=${selection} />`}</th><th scope="col">Name</th><th scope="col" class="num">Size</th>
        <th scope="col" class="wide">Modified</th><th scope="col" class="wide">By</th>
        <th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>
        ${path !== '/' && html`<tr><td></td><td colspan="5"><a href=${filesHref(ws.id, parentOf(path))}>⬑ Parent folder</a></td></tr>`}
        ${data && !entries.length && html`<tr><td colspan="6" class="empty-state">This folder is empty. Drop files here or use Upload.</td></tr>`}
        ${entries.map((e) => html`<tr key=${e.path} data-path=${e.path}
            class=${(selection.sel.has(e.path) ? 'selected' : '') + (hl === e.path ? ' highlight' : '')}>
          <td class="pick-col"><${SelectBox} entry=${e} selection=${selection} /></td>
          <td class="name">${e.type === 'folder'
            ? html`<a href=${filesHref(ws.id, e.path)}><span class="ico ico-folder" aria-hidden="true"></span>${e.name}</a>`
            : html`<a href=${contentUrl(ws.id, e.path)} download=${e.name} onClick=${downloadClick(ws.id, e)}><span class="ico ico-file" aria-hidden="true"></span>${e.name}</a>`}</td>
          <td class="num">${e.type === 'file' ? fmtBytes(e.size) : ''}</td>
          <td class="wide">${fmtTime(e.modified_at)}</td>
          <td class="wide">${e.modified_by || ''}</td>
          <td class="row-actions">
            <details class="menu"><summary aria-label=${'Actions for ' + e.name}>⋯</summary>
              <div class="menu-items" onClick=${(ev) => ev.target.closest('details').removeAttribute('open')}>
                ${previewKind(e) && html`<button type="button" onClick=${() => act('preview', e)}>Preview</button>`}
                ${e.type === 'file' && html`<a class="button" href=${contentUrl(ws.id, e.path)} download=${e.name} onClick=${downloadClick(ws.id, e)}>Download</a>`}
                <button type="button" onClick=${() => act('rename', e)}>Rename</button>
                <button type="button" onClick=${() => act('move', e)}>Move</button>
                ${e.type === 'file' && html`<button type="button" onClick=${() => act('versions', e)}>Versions</button>`}
                ${e.type === 'file' && html`<button type="button" onClick=${() => act('locations', e)}>Locations</button>`}
                <button type="button" onClick=${() => act('share', e)}>Share</button>
                <a class="button" href=${'/w/' + ws.id + '/access?path=' + encodeURIComponent(e.path)}>Access</a>
                <button type="button" class="danger" onClick=${() => act('delete', e)}>Delete</button>
                ${(ws.role === 'owner' || ws.role === 'admin') && html`<button type="button" class="danger" onClick=${() => act('forever', e)}>Delete forever</button>`}
              </div></details>
          </td></tr>`)}
      </tbody>
    </table>`}
    ${data && data.next_cursor && html`<p class="more-line"><button type="button" class="more-entries"
      onClick=${() => setPages({ path, n: shown + 1 })}>Show more (${entries.length} shown)</button></p>`}`}
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
    ${dialog && dialog.kind === 'forever' && html`<${ConfirmDialog} title=${'Delete ' + dialog.entry.name + ' forever'}
      text=${(dialog.entry.type === 'folder' ? 'Delete this folder and everything in it' : 'Delete this file and all its versions')
        + ' for good? It does not go to the trash, and this cannot be undone.'}
      confirmLabel="Delete forever" onClose=${close}
      onConfirm=${() => api('DELETE', wsPath(ws.id, '/files?permanent=1&path=' + q(dialog.entry.path)))} />`}
    ${dialog && dialog.kind === 'versions' && html`<${VersionsDialog} ws=${ws} entry=${dialog.entry} feed=${feed} onClose=${close} />`}
    ${dialog && dialog.kind === 'locations' && html`<${LocationsDialog} ws=${ws} path=${dialog.entry.path} feed=${feed} onClose=${close} />`}
    ${where && !dialog && html`<${LocationsDialog} ws=${ws} path=${where} feed=${feed}
      onClose=${() => navigate(filesHref(ws.id, path), true)} />`}
    ${dialog && dialog.kind === 'preview' && html`<${PreviewDialog} ws=${ws} entry=${dialog.entry} onClose=${close} />`}
    ${dialog && dialog.kind === 'share' && html`<${ShareDialog} ws=${ws} entry=${dialog.entry} onClose=${close} />`}
  </main></div>`;
}
