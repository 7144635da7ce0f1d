// Multi-select in a folder listing (issue 16): a checkbox per entry, shift-click
// for a range, select all; and the bulk actions on the selection — move, delete
// (one confirmation naming the count) and download as one ZIP (GET zip).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, wsPath, q } from './api.js';
import { html, joinPath, plural } from './ui.js';
import { PromptDialog, ConfirmDialog } from './dialogs.js';

export const ZIP_MAX_PATHS = 200; // the hub's limit for one GET zip

// The selection over entries (by path): toggle(path, shift) selects the range
// from the last clicked entry when shift is held; paths that leave the listing
// leave the selection.
export function useSelection(entries) {
  const [sel, setSel] = useState(() => new Set());
  const anchor = useRef(null);
  const paths = entries.map((e) => e.path);
  const key = paths.join('\0');
  useEffect(() => {
    setSel((s) => {
      const keep = new Set([...s].filter((p) => paths.includes(p)));
      return keep.size === s.size ? s : keep;
    });
  }, [key]);
  const toggle = (path, shift) => {
    setSel((s) => {
      const next = new Set(s);
      const on = !s.has(path);
      const from = paths.indexOf(anchor.current), to = paths.indexOf(path);
      if (shift && from >= 0 && to >= 0) {
        const [a, b] = from < to ? [from, to] : [to, from];
        for (let i = a; i <= b; i++) on ? next.add(paths[i]) : next.delete(paths[i]);
      } else if (on) next.add(path);
      else next.delete(path);
      return next;
    });
    anchor.current = path;
  };
  const all = paths.length > 0 && paths.every((p) => sel.has(p));
  const setAll = (on) => setSel(on ? new Set(paths) : new Set());
  return { sel, toggle, all, setAll, clear: () => setSel(new Set()) };
}

export function SelectBox({ entry, selection }) {
  return html`<input type="checkbox" class="pick" aria-label=${'Select ' + entry.name}
    checked=${selection.sel.has(entry.path)}
    onClick=${(e) => selection.toggle(entry.path, e.shiftKey)} />`;
}

export function SelectAll({ selection }) {
  return html`<input type="checkbox" class="pick" aria-label="Select all"
    checked=${selection.all} onChange=${(e) => selection.setAll(e.target.checked)} />`;
}

export const zipUrl = (ws, paths) =>
  '/api/v1/workspaces/' + ws + '/zip?' + paths.map((p) => 'path=' + q(p)).join('&');

// Run fn over the paths one after another; throws one error naming each failure.
async function each(paths, fn) {
  const failed = [];
  for (const p of paths) {
    try {
      await fn(p);
    } catch (e) {
      failed.push(p + ': ' + e.message);
    }
  }
  if (failed.length) throw new Error(plural(failed.length, 'item') + ' failed — ' + failed.join('; '));
}

const baseName = (p) => p.slice(p.lastIndexOf('/') + 1);

// The bar above a listing while anything is selected.
export function BulkBar({ ws, path, selection }) {
  const [dialog, setDialog] = useState(null);
  const paths = [...selection.sel];
  if (!paths.length) return null;
  const n = plural(paths.length, 'item');
  const close = () => setDialog(null);
  const tooMany = paths.length > ZIP_MAX_PATHS;
  return html`<div class="bulk" role="region" aria-label="Selection">
    <strong role="status">${n} selected</strong>
    <button type="button" onClick=${() => setDialog('move')}>Move…</button>
    ${tooMany
      ? html`<span class="hint">Select at most ${ZIP_MAX_PATHS} to download as one ZIP (or select their folder).</span>`
      : html`<a class="button" href=${zipUrl(ws.id, paths)} download>Download as ZIP</a>`}
    <button type="button" class="danger" onClick=${() => setDialog('delete')}>Delete…</button>
    <button type="button" onClick=${selection.clear}>Clear selection</button>
    ${dialog === 'move' && html`<${PromptDialog} title=${'Move ' + n} label="Move to folder"
      initial=${path} submitLabel="Move" onClose=${close}
      onSubmit=${async (dest) => {
        const to = dest.replace(/\/+$/, '') || '/';
        await each(paths, (p) => api('POST', wsPath(ws.id, '/move'), { from: p, to: joinPath(to, baseName(p)) }));
        selection.clear();
      }} />`}
    ${dialog === 'delete' && html`<${ConfirmDialog} title=${'Delete ' + n}
      text=${'Delete ' + n + '? Folders go with everything in them. Deleted files stay in the trash until it is emptied.'}
      confirmLabel=${'Delete ' + n} onClose=${close}
      onConfirm=${async () => {
        await each(paths, (p) => api('DELETE', wsPath(ws.id, '/files?path=' + q(p))));
        selection.clear();
      }} />`}
  </div>`;
}
