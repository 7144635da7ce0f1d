// The grid view of a folder (issue 16): a tile per entry with its thumbnail
// (preview.js), a checkbox for the selection, and the name; a folder opens,
// a file with a preview opens it, any other file downloads.
import { contentUrl } from './api.js';
import { html, fmtBytes } from './ui.js';
import { Thumb, previewKind } from './preview.js';
import { SelectBox } from './select.js';
import { downloadClick } from './download.js';

export function FileGrid({ ws, entries, href, selection, highlight, onPreview }) {
  return html`<ul class="file-grid" aria-label="Files">${entries.map((e) => {
    const kind = previewKind(e);
    const cls = 'tile' + (selection.sel.has(e.path) ? ' selected' : '') + (highlight === e.path ? ' highlight' : '');
    const thumb = html`<${Thumb} ws=${ws} entry=${e} />`;
    return html`<li key=${e.path} class=${cls} data-path=${e.path}>
      <${SelectBox} entry=${e} selection=${selection} />
      ${e.type === 'folder'
        ? html`<a class="tile-thumb" href=${href(e.path)} tabindex="-1" aria-hidden="true">${thumb}</a>`
        : kind
          ? html`<button type="button" class="tile-thumb" aria-label=${'Preview ' + e.name} onClick=${() => onPreview(e)}>${thumb}</button>`
          : html`<a class="tile-thumb" href=${contentUrl(ws.id, e.path)} download=${e.name} tabindex="-1"
              aria-hidden="true" onClick=${downloadClick(ws.id, e)}>${thumb}</a>`}
      <span class="tile-name">${e.type === 'folder'
        ? html`<a href=${href(e.path)}>${e.name}</a>`
        : html`<a href=${contentUrl(ws.id, e.path)} download=${e.name} onClick=${downloadClick(ws.id, e)}>${e.name}</a>`}</span>
      <span class="tile-meta muted">${e.type === 'file' ? fmtBytes(e.size) : 'folder'}</span>
    </li>`;
  })}</ul>`;
}
