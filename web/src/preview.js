// Previews and thumbnails (issue 16): images, video posters, the first KiBs of
// text, a PDF's first page. The bytes always come from a signed URL on the
// hub's content port (POST urls, the "hub" source), never from the dashboard's
// own origin: that port answers with Content-Security-Policy: sandbox and
// nosniff, so a file can never run as the dashboard. A PDF is never handed to
// the browser's viewer (it runs scripts and forms): pdf.js (pdf-preview.js,
// loaded on first use) parses the bytes and paints a canvas.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, wsPath } from './api.js';
import { html, Modal, ErrorLine, fmtBytes, fmtTime } from './ui.js';

const TEXT_MAX = 16 * 1024; // a preview shows the first 16 KiB of a text file
const URL_TTL_S = 3600;

const IMAGE = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'bmp'];
const VIDEO = ['mp4', 'webm', 'ogv', 'm4v', 'mov'];
const TEXT = ['txt', 'md', 'csv', 'tsv', 'log', 'json', 'yaml', 'yml', 'toml', 'ini', 'conf', 'xml',
  'html', 'css', 'js', 'mjs', 'ts', 'c', 'h', 'cc', 'cpp', 'hpp', 'py', 'rb', 'go', 'rs', 'java',
  'sh', 'sql', 'diff', 'patch', 'tex', 'svg'];

// 'image', 'video', 'pdf', 'text', or null: by content type, else by extension.
export function previewKind(entry) {
  if (!entry || entry.type !== 'file') return null;
  const t = (entry.content_type || '').split(';')[0].trim().toLowerCase();
  const dot = entry.name.lastIndexOf('.');
  const ext = dot > 0 ? entry.name.slice(dot + 1).toLowerCase() : '';
  if (t === 'application/pdf' || ext === 'pdf') return 'pdf';
  if ((t.startsWith('image/') && t !== 'image/svg+xml') || IMAGE.includes(ext)) return 'image';
  if (t.startsWith('video/') || VIDEO.includes(ext)) return 'video';
  if (t.startsWith('text/') || t === 'application/json' || TEXT.includes(ext)) return 'text';
  return null;
}

// Signed content-port URLs, by workspace, path and hash, reused until shortly
// before they expire. Held in memory only: nothing is stored.
const urls = new Map();

export async function signedUrl(ws, entry) {
  const key = ws + '\0' + entry.path + '\0' + (entry.hash || entry.version || '');
  const hit = urls.get(key);
  if (hit && hit.expires > Date.now() + 60000) return hit.url;
  const r = await api('POST', wsPath(ws, '/urls'), { path: entry.path, expires_in: URL_TTL_S });
  const hub = (r.sources || []).find((s) => s.via === 'hub');
  if (!hub) throw new Error('the hub offered no content URL for a preview');
  urls.set(key, { url: hub.url, expires: hub.expires_at || Date.now() + URL_TTL_S * 1000 });
  return hub.url;
}

function useSignedUrl(ws, entry) {
  const [state, setState] = useState({ url: null, error: null });
  useEffect(() => {
    let live = true;
    setState({ url: null, error: null });
    signedUrl(ws, entry).then((url) => live && setState({ url, error: null }),
      (error) => live && setState({ url: null, error }));
    return () => { live = false; };
  }, [ws, entry.path, entry.hash]);
  return state;
}

// The first TEXT_MAX bytes of url as text (the rest is never read).
async function headText(url) {
  const res = await fetch(url, { credentials: 'omit' });
  if (!res.ok) throw new Error('the content port answered ' + res.status);
  const reader = res.body.getReader();
  const parts = [];
  let n = 0, more = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    n += value.length;
    if (n >= TEXT_MAX) {
      more = true;
      reader.cancel().catch(() => {});
      break;
    }
  }
  const all = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return { text: new TextDecoder().decode(all.subarray(0, TEXT_MAX)), more };
}

function TextPreview({ url }) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    let live = true;
    headText(url).then((r) => live && setState(r), (error) => live && setState({ error }));
    return () => { live = false; };
  }, [url]);
  if (state.error) return html`<${ErrorLine} error=${state.error} />`;
  if (state.loading) return html`<p class="muted">Loading…</p>`;
  // Preact sets this as text: markup in the file is shown, never parsed.
  return html`<pre class="preview-text" tabindex="0" aria-label="File contents">${state.text}</pre>
    ${state.more && html`<p class="hint">The first ${TEXT_MAX / 1024} KiB; download the file for the rest.</p>`}`;
}

// pdf.js is a bundle of its own (CMakeLists.txt): ~400 KB the dashboard loads
// only when it first draws a PDF. Its worker is pdf.worker.min.mjs beside it.
let pdfLib = null;
function loadPdf() {
  if (!pdfLib) {
    pdfLib = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = '/pdf-preview.js';
      s.onload = () => (window.roostPdf ? resolve(window.roostPdf) : reject(new Error('pdf.js did not load')));
      s.onerror = () => {
        pdfLib = null;
        reject(new Error('could not load the PDF viewer (pdf-preview.js)'));
      };
      document.head.appendChild(s);
    });
  }
  return pdfLib;
}

// Draws page 1 of the PDF at url on a canvas; onDone gets { pages } or an error.
function PdfCanvas({ url, maxWidth, maxHeight, maxBytes, keepStyle, className, onDone }) {
  const ref = useRef(null);
  useEffect(() => {
    let live = true;
    loadPdf()
      .then((lib) => lib.draw(url, ref.current, { maxWidth, maxHeight, maxBytes, keepStyle }))
      .then((r) => live && onDone(r, null), (e) => live && onDone(null, e));
    return () => { live = false; };
  }, [url]);
  return html`<canvas ref=${ref} class=${className} width="1" height="1"></canvas>`;
}

function PdfPreview({ url, entry }) {
  const [state, setState] = useState({ loading: true });
  const width = Math.min(760, Math.max(240, window.innerWidth - 80));
  const height = Math.max(240, Math.round(window.innerHeight * 0.62));
  return html`<div class="preview-pdf">
    ${state.error
      ? html`<p class="muted">No preview of this PDF (${state.error.message}).</p>`
      : html`<div class="pdf-page" hidden=${state.loading}>
          <${PdfCanvas} url=${url} maxWidth=${width} maxHeight=${height} className="preview-pdf-page"
            onDone=${(r, error) => setState(error ? { error } : { pages: r.pages })} /></div>`}
    ${state.loading && !state.error && html`<p class="muted">Drawing the first page…</p>`}
    <p class="actions">
      ${state.pages && html`<span class="muted pdf-pages">Page 1 of ${state.pages}</span>`}
      <a class="button" href=${url} download=${entry.name} rel="noopener">Download the PDF</a></p></div>`;
}

function Body({ kind, url, entry }) {
  if (kind === 'image') return html`<img class="preview-image" src=${url} alt=${entry.name} />`;
  if (kind === 'video') return html`<video class="preview-video" src=${url} controls preload="metadata" aria-label=${entry.name}></video>`;
  if (kind === 'text') return html`<${TextPreview} url=${url} />`;
  return html`<${PdfPreview} url=${url} entry=${entry} />`;
}

export function PreviewDialog({ ws, entry, onClose }) {
  const kind = previewKind(entry);
  const { url, error } = useSignedUrl(ws.id, entry);
  return html`<${Modal} title=${entry.name} onClose=${onClose}>
    <div class="preview" data-kind=${kind}>
      <${ErrorLine} error=${error} />
      ${url && html`<${Body} kind=${kind} url=${url} entry=${entry} />`}
      <p class="muted">${fmtBytes(entry.size)} · ${fmtTime(entry.modified_at)}${entry.modified_by ? ' · ' + entry.modified_by : ''}</p>
    </div>
  <//>`;
}

// A grid tile's picture: the image itself, a video's first frame, a PDF's
// first page (if it is at most PDF_THUMB_MAX), else an icon naming the type.
// Signed URLs are asked for only when a tile is drawn.
const PDF_THUMB_MAX = 8 * 1024 * 1024;

export function Thumb({ ws, entry }) {
  const kind = previewKind(entry);
  if (entry.type === 'folder') return html`<span class="thumb-icon thumb-folder" aria-hidden="true"></span>`;
  if (kind === 'image' || kind === 'video') return html`<${MediaThumb} ws=${ws} entry=${entry} kind=${kind} />`;
  if (kind === 'pdf' && entry.size > 0 && entry.size <= PDF_THUMB_MAX) return html`<${PdfThumb} ws=${ws} entry=${entry} />`;
  return html`<${IconThumb} entry=${entry} kind=${kind} />`;
}

function IconThumb({ entry, kind }) {
  const dot = entry.name.lastIndexOf('.');
  const label = kind === 'pdf' ? 'PDF' : dot > 0 ? entry.name.slice(dot + 1, dot + 5).toUpperCase() : 'FILE';
  return html`<span class=${'thumb-icon' + (kind === 'pdf' ? ' thumb-pdf' : '')} aria-hidden="true">${label}</span>`;
}

// A PDF tile keeps its icon until (and unless) the first page is drawn.
function PdfThumb({ ws, entry }) {
  const { url } = useSignedUrl(ws.id, entry);
  const [state, setState] = useState('loading');
  if (!url || state === 'failed') return html`<${IconThumb} entry=${entry} kind="pdf" />`;
  return html`${state === 'loading' && html`<${IconThumb} entry=${entry} kind="pdf" />`}
    <${PdfCanvas} url=${url} maxWidth=${240} maxHeight=${180} maxBytes=${PDF_THUMB_MAX} keepStyle=${true}
      className=${'thumb thumb-pdf-page' + (state === 'loading' ? ' drawing' : '')}
      onDone=${(r, error) => setState(error ? 'failed' : 'drawn')} />`;
}

function MediaThumb({ ws, entry, kind }) {
  const { url } = useSignedUrl(ws.id, entry);
  if (!url) return html`<span class="thumb-icon" aria-hidden="true">…</span>`;
  return kind === 'image'
    ? html`<img class="thumb" src=${url} alt="" loading="lazy" />`
    : html`<video class="thumb" src=${url} preload="metadata" muted playsinline aria-hidden="true"></video>`;
}
