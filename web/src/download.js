// Downloads from the nearest source: POST urls lists where a file can be read
// (hosts directly, through their relays, then the hub), each a signed URL.
// Each is tried in order — a fetch that must start within CONNECT_MS and never
// stall for STALL_MS — and the first whose bytes arrive whole (and match the
// version's SHA-256, where the browser can hash) is saved. If none does, the
// browser downloads from the hub's own origin, which fetches from hosts itself.
import { api, wsPath, contentUrl } from './api.js';

const CONNECT_MS = 5000;
const STALL_MS = 15000;
// Bigger files are not held in memory: the browser's own download from the hub.
const BLOB_MAX = 1 << 30;

// GET url into a Blob, aborted when the answer or the next bytes take too long.
async function fetchWhole(url) {
  const ctl = new AbortController();
  let timer = setTimeout(() => ctl.abort(), CONNECT_MS);
  const kick = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctl.abort(), STALL_MS);
  };
  try {
    const res = await fetch(url, { signal: ctl.signal, credentials: 'omit' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const reader = res.body.getReader();
    const parts = [];
    for (;;) {
      kick();
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
    return { blob: new Blob(parts), hash: res.headers.get('X-Roost-Hash') };
  } finally {
    clearTimeout(timer);
  }
}

async function sha256Hex(blob) {
  const d = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function save(href, name) {
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// Download version (0: current) of path, named name. Resolves with the source
// used: {via, url} of a signed URL, or {via: 'hub-origin'}.
export async function downloadFile(ws, path, name, version, size) {
  let sources = [];
  if (size <= BLOB_MAX) {
    try {
      const body = { path };
      if (version) body.version = version;
      sources = (await api('POST', wsPath(ws, '/urls'), body)).sources || [];
    } catch (e) {
      sources = []; // no URL: the hub's origin below
    }
  }
  for (const src of sources) {
    try {
      const { blob, hash } = await fetchWhole(src.url);
      // Verify where the page may hash (a secure context: https or loopback).
      if (hash && globalThis.crypto && crypto.subtle && (await sha256Hex(blob)) !== hash) {
        throw new Error('wrong bytes');
      }
      const href = URL.createObjectURL(blob);
      save(href, name);
      setTimeout(() => URL.revokeObjectURL(href), 60000);
      return { via: src.via, url: src.url };
    } catch (e) {
      console.warn('roost: download from', src.via, 'failed (' + e.message + '); trying the next source');
    }
  }
  save(contentUrl(ws, path, version), name);
  return { via: 'hub-origin' };
}

// onClick for a Download link: the link's href stays the plain hub download.
export function downloadClick(ws, entry, version) {
  return (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    const link = ev.currentTarget;
    link.setAttribute('aria-busy', 'true');
    downloadFile(ws, entry.path, entry.name, version, entry.size ?? 0)
      .then((got) => { link.dataset.source = got.via; })
      .finally(() => link.removeAttribute('aria-busy'));
  };
}
