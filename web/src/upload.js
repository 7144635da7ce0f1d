// Chunked, resumable upload (docs/api.md "Upload"): chunk with FastCDC and hash,
// ask the hub which chunks it lacks, PUT those (a few at a time, retried), then
// commit the version. A retry repeats the steps and sends only what is missing.
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

// Upload file to path in workspace ws. progress({phase, done, total}) is called
// as it goes; returns the committed version.
export async function uploadFile(ws, chunking, file, path, progress, signal) {
  progress({ phase: 'hashing', done: 0, total: file.size });
  const { hash, chunks } = await hashFile(
    file, chunking, (n) => progress({ phase: 'hashing', done: n, total: file.size }), signal);
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
  let sent = 0, next = 0;
  progress({ phase: 'uploading', done: 0, total });
  const worker = async () => {
    while (next < pending.length) {
      const c = pending[next++];
      await withRetry(
        () => api('PUT', wsPath(ws, '/chunks/' + c.hash), file.slice(c.offset, c.offset + c.size), { signal }),
        signal);
      sent += c.size;
      progress({ phase: 'uploading', done: sent, total });
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, pending.length) }, worker));
  progress({ phase: 'committing', done: total, total });
  const body = {
    path, size: file.size, hash,
    chunks: chunks.map((c) => ({ hash: c.hash, size: c.size })),
  };
  if (file.type) body.content_type = file.type;
  return withRetry(() => api('POST', wsPath(ws, '/versions'), body, { signal }), signal);
}

// A new version with an old version's chunks: nothing is uploaded again.
export async function restoreVersion(ws, path, version) {
  const m = await api('GET', wsPath(ws, '/manifest?path=' + q(path) + '&version=' + version));
  return api('POST', wsPath(ws, '/versions'), {
    path, size: m.size, hash: m.hash,
    chunks: m.chunks.map((c) => ({ hash: c.hash, size: c.size })),
  });
}
