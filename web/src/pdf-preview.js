// PDF first pages (issue 16), drawn by pdf.js in the page's own JavaScript. The
// hub never serves a PDF inline (src/core/content.c: a PDF viewer runs scripts
// and forms), so the browser's viewer never sees one; pdf.js only parses the
// bytes and paints a canvas. Its document scripts, eval and every fetch of its
// own (fonts, CMaps, wasm) are off: the only bytes it reads are the file's.
//
// One bundle serves two pages (CMakeLists.txt builds it apart from app.js):
// - the dashboard loads it on first use and calls window.roostPdf.draw();
// - a share page (src/hub/share_page.c) loads it from /s/_assets/ with its
//   nonce, and it draws every <canvas data-pdf-src> on the page by itself.
// The worker is pdf.worker.min.mjs next to this script, on the same origin.
import { GlobalWorkerOptions, PDFWorker, getDocument } from 'pdfjs-dist';

const here = document.currentScript && document.currentScript.src;
GlobalWorkerOptions.workerSrc = new URL('pdf.worker.min.mjs', here || location.href).href;

export const PDF_THUMB_MAX = 8 * 1024 * 1024; // a larger PDF keeps its icon in the grid
export const PDF_PREVIEW_MAX = 64 * 1024 * 1024;

// The bytes of url, refused past max (read no further than that).
async function fetchBytes(url, max) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error('the content port answered ' + res.status);
  const declared = Number(res.headers.get('Content-Length') || 0);
  if (declared > max) {
    res.body && res.body.cancel().catch(() => {});
    throw new Error('too large to preview');
  }
  const reader = res.body.getReader();
  const parts = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      reader.cancel().catch(() => {});
      throw new Error('too large to preview');
    }
    parts.push(value);
  }
  const all = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return all;
}

// One worker for every document of the page (a grid of PDFs starts one, not
// one each), and at most two drawings at a time; the rest wait their turn.
let worker = null;
const DRAWING_MAX = 2;
let drawing = 0;
const waiting = [];

async function turn(fn) {
  if (drawing >= DRAWING_MAX) await new Promise((go) => waiting.push(go));
  drawing++;
  try {
    return await fn();
  } finally {
    drawing--;
    if (waiting.length) waiting.shift()();
  }
}

// Draw page 1 of the PDF at url on canvas, to fit maxWidth × maxHeight CSS
// pixels (its style gets that size unless keepStyle: a grid tile sizes its
// canvas with CSS). Resolves to { pages, width, height } (the page in points).
function draw(url, canvas, opts = {}) {
  return turn(() => drawNow(url, canvas, opts));
}

async function drawNow(url, canvas, { maxWidth = 800, maxHeight = 800, maxBytes = PDF_PREVIEW_MAX,
  keepStyle = false } = {}) {
  const data = await fetchBytes(url, maxBytes);
  if (!worker || worker.destroyed) worker = new PDFWorker({ name: 'roost-pdf' });
  const task = getDocument({
    data,
    worker,
    isEvalSupported: false, // no new Function() for fonts or shadings
    // The document's JavaScript never runs: pdf.js's core only parses, and its
    // scripting sandbox (pdf.sandbox.mjs) is neither bundled nor served.
    disableAutoFetch: true,
    disableStream: true,
    disableRange: true,
    useWorkerFetch: false, // nothing fetched by the worker
    useSystemFonts: true, // no standard-font files fetched: local fonts stand in
    stopAtErrors: false,
  });
  try {
    const doc = await task.promise;
    const page = await doc.getPage(1);
    const base = page.getViewport({ scale: 1 });
    const ratio = window.devicePixelRatio || 1;
    const scale = Math.min(maxWidth / base.width, maxHeight / base.height, 4);
    const vp = page.getViewport({ scale: scale * ratio });
    canvas.width = Math.max(1, Math.floor(vp.width));
    canvas.height = Math.max(1, Math.floor(vp.height));
    if (!keepStyle) {
      canvas.style.width = Math.floor(base.width * scale) + 'px';
      canvas.style.aspectRatio = base.width + ' / ' + base.height;
    }
    // Annotations (links, forms) are not drawn: only the page's content.
    await page.render({ canvas, canvasContext: canvas.getContext('2d'), viewport: vp,
      annotationMode: 0 }).promise;
    return { pages: doc.numPages, width: base.width, height: base.height };
  } finally {
    task.destroy();
  }
}

window.roostPdf = { draw, PDF_THUMB_MAX, PDF_PREVIEW_MAX };

// A share page: each <canvas data-pdf-src> gets its first page; a status line
// (data-pdf-status names it) says "Page 1 of N" or why there is no preview.
function sharePage() {
  for (const canvas of document.querySelectorAll('canvas[data-pdf-src]')) {
    const status = document.getElementById(canvas.dataset.pdfStatus || '');
    const max = Number(canvas.dataset.pdfMax || 0) || PDF_PREVIEW_MAX;
    const maxWidth = Math.min(900, canvas.parentElement.clientWidth || 900);
    const maxHeight = Math.max(240, Math.round(window.innerHeight * 0.8));
    draw(canvas.dataset.pdfSrc, canvas, { maxWidth, maxHeight, maxBytes: max })
      .then((r) => {
        canvas.hidden = false;
        if (status) status.textContent = 'Page 1 of ' + r.pages + (r.pages > 1 ? ': download the PDF for the rest.' : '');
      }, (e) => {
        if (status) status.textContent = 'No preview of this PDF (' + e.message + '): download it to read it.';
      });
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', sharePage);
else sharePage();
