// Chunked, resumable upload (docs/api.md "Upload"): chunk with FastCDC and hash,
// ask the hub which chunks it lacks, PUT those (a few at a time, retried), then
// commit the version. A retry repeats the steps and sends only what is missing.
//
// Resume across a reload: once a file is hashed its chunk list is kept in
// localStorage under its name, size and modification time (and the workspace).
// The same file picked again skips hashing, and the probe answers the chunks
// the hub already took from this user (kept 24 h, possess.c), so only the rest
// goes up. A committed upload forgets its entry.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { api, wsPath, q, ApiError } from './api.js';
import { Chunker } from './cdc.js';

const PROBE_BATCH = 1000;
const PARALLEL = 4;

async function hashFile(file, chunking, onBytes, signal) {
  const chunker = new Chunker(chunking);
  const whole = sha256.create();
  let part = sha256.create(), partSize = 0, offset = 0;
  const chunks = [];
  const reader = file.stream().getReader();
  for (;;) {
    if (signal.aborted) throw new DOMException('aborted', 'AbortError');
    const { value, done } = await reader.read();
    if (done) break;
    whole.update(value);
    let i = 0;
    while (i < value.length) {
      const { n, cut } = chunker.scan(value, i);
      part.update(value.subarray(i, i + n));
      partSize += n;
      i += n;
      if (cut) {
        chunks.push({ hash: bytesToHex(part.digest()), size: partSize, offset });
        offset += partSize;
        part = sha256.create();
        partSize = 0;
      }
    }
    onBytes(offset + partSize);
  }
  if (partSize > 0 || chunks.length === 0)
    chunks.push({ hash: bytesToHex(part.digest()), size: partSize, offset });
  if (chunks.length === 1 && chunks[0].size === 0) chunks.length = 0;
  return { hash: bytesToHex(whole.digest()), chunks };
}

async function withRetry(fn, signal) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const retriable = e instanceof ApiError && (e.status === 0 || e.status === 429 || e.status >= 500);
      if (!retriable || attempt >= 4 || signal.aborted) throw e;
      await new Promise((r) => setTimeout(r, 300 * 2 ** attempt * (0.5 + Math.random())));
    }
  }
}

const RESUME_KEY = 'roost.uploads';
const RESUME_MS = 23 * 3600 * 1000; // within the hub's upload lease (24 h)

function loadResume() {
  try {
    const all = JSON.parse(localStorage.getItem(RESUME_KEY) || '{}');
    const now = Date.now();
    for (const k of Object.keys(all)) if (!(now - all[k].at < RESUME_MS)) delete all[k];
    return all;
  } catch {
    return {};
  }
}

function storeResume(all) {
  try {
    localStorage.setItem(RESUME_KEY, JSON.stringify(all));
  } catch {
    // full or disabled: the upload still works, it only cannot resume
  }
}

const resumeId = (ws, file) => [ws, file.name, file.size, file.lastModified].join('|');

function saveResume(ws, file, path, patch) {
  const all = loadResume();
  const id = resumeId(ws, file);
  all[id] = { ...all[id], ws, path, name: file.name, size: file.size, mtime: file.lastModified,
    at: Date.now(), ...patch };
  storeResume(all);
}

export function forgetUpload(ws, file) {
  const all = loadResume();
  delete all[typeof file === 'string' ? file : resumeId(ws, file)];
  storeResume(all);
}

// Uploads of workspace ws a reload interrupted: [{id, path, name, size, mtime, sent}].
export function interruptedUploads(ws) {
  return Object.entries(loadResume()).filter(([, e]) => e.ws === ws)
    .map(([id, e]) => ({ id, path: e.path, name: e.name, size: e.size, mtime: e.mtime, sent: e.sent || 0 }));
}

// Does file look like the one an interrupted entry was made of?
export const sameFile = (entry, file) =>
  entry.name === file.name && entry.size === file.size && entry.mtime === file.lastModified;

// Bytes per second over the last few seconds, and the time left.
export class Meter {
  constructor(windowMs = 4000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  add(done, now = performance.now()) {
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[1][0] > this.windowMs) this.samples.shift();
  }

  rate() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0], [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }

  // Seconds until total at the current rate (null while unknown).
  left(done, total) {
    const r = this.rate();
    return r > 0 ? Math.max(0, (total - done) / r) : null;
  }
}

// Upload file to path in workspace ws. progress({phase, done, total, resumed,
// already}) is called as it goes; returns the committed version. resumed: the
// chunk list came from an interrupted upload of the same file; already: the
// bytes of it the hub had before this run.
export async function uploadFile(ws, chunking, file, path, progress, signal) {
  const kept = loadResume()[resumeId(ws, file)];
  const resumed = !!(kept && kept.hash && Array.isArray(kept.chunks));
  let hash, chunks;
  if (resumed) {
    ({ hash, chunks } = kept);
  } else {
    progress({ phase: 'hashing', done: 0, total: file.size });
    ({ hash, chunks } = await hashFile(
      file, chunking, (n) => progress({ phase: 'hashing', done: n, total: file.size }), signal));
  }
  saveResume(ws, file, path, { hash, chunks, sent: kept ? kept.sent || 0 : 0 });
  const missing = new Set();
  const unique = [...new Set(chunks.map((c) => c.hash))];
  for (let i = 0; i < unique.length; i += PROBE_BATCH) {
    const r = await withRetry(
      () => api('POST', wsPath(ws, '/chunks/missing'), { hashes: unique.slice(i, i + PROBE_BATCH) }, { signal }),
      signal);
    r.missing.forEach((h) => missing.add(h));
  }
  const pending = chunks.filter((c) => missing.delete(c.hash));
  const total = pending.reduce((s, c) => s + c.size, 0);
  const already = file.size - total;
  let sent = 0, next = 0, saved = 0;
  const report = (phase) => progress({ phase, done: sent, total, resumed, already });
  report('uploading');
  const worker = async () => {
    while (next < pending.length) {
      const c = pending[next++];
      await withRetry(
        () => api('PUT', wsPath(ws, '/chunks/' + c.hash), file.slice(c.offset, c.offset + c.size), { signal }),
        signal);
      sent += c.size;
      if (Date.now() - saved > 1000) { // what the "interrupted" list shows after a reload
        saved = Date.now();
        saveResume(ws, file, path, { sent: already + sent });
      }
      report('uploading');
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, pending.length) }, worker));
  report('committing');
  const body = {
    path, size: file.size, hash,
    chunks: chunks.map((c) => ({ hash: c.hash, size: c.size })),
  };
  if (file.type) body.content_type = file.type;
  const version = await withRetry(() => api('POST', wsPath(ws, '/versions'), body, { signal }), signal);
  forgetUpload(ws, file);
  return version;
}

// The files of a drop, folders walked (their tree kept in each item's rel):
// [{file, rel}]. Call it inside the drop event: the entries go stale after.
export function droppedFiles(dataTransfer) {
  const entries = [...(dataTransfer.items || [])]
    .map((it) => (it.kind === 'file' && it.webkitGetAsEntry ? it.webkitGetAsEntry() : null));
  if (!entries.length || entries.some((e) => !e))
    return Promise.resolve([...dataTransfer.files].map((file) => ({ file, rel: file.name })));
  const out = [];
  const readAll = (dir) => new Promise((resolve, reject) => {
    const reader = dir.createReader(), all = [];
    const more = () => reader.readEntries((batch) => {
      if (!batch.length) return resolve(all);
      all.push(...batch);
      more();
    }, reject);
    more();
  });
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, rel: prefix + entry.name });
    } else if (entry.isDirectory) {
      for (const child of await readAll(entry)) await walk(child, prefix + entry.name + '/');
    }
  };
  return (async () => {
    for (const e of entries) await walk(e, '');
    return out;
  })();
}

// A new version with an old version's chunks: nothing is uploaded again.
export async function restoreVersion(ws, path, version) {
  const m = await api('GET', wsPath(ws, '/manifest?path=' + q(path) + '&version=' + version));
  return api('POST', wsPath(ws, '/versions'), {
    path, size: m.size, hash: m.hash,
    chunks: m.chunks.map((c) => ({ hash: c.hash, size: c.size })),
  });
}
