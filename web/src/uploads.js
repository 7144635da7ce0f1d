// The Files page's uploads: the Upload and Upload folder buttons, the list of
// uploads with progress, speed and time left, and the uploads a reload
// interrupted, offered for resuming (the transfer itself is upload.js).
import { useRef, useState } from 'preact/hooks';
import { html, fmtBytes, joinPath } from './ui.js';
import { uploadFile, interruptedUploads, forgetUpload, sameFile, Meter } from './upload.js';

let uploadIds = 0;

export function fmtDuration(s) {
  if (s == null || !isFinite(s)) return '';
  s = Math.ceil(s);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60 ? (s % 60) + ' s' : '');
  return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
}

function status(u) {
  if (u.state === 'error') return u.error;
  if (u.state === 'done') return u.resumed ? 'done (resumed)' : 'done';
  if (u.state === 'queued') return 'queued';
  const pct = u.total ? Math.floor((100 * u.done) / u.total) : 0;
  let s = u.phase + ' ' + pct + '%';
  if (u.phase === 'uploading' && u.rate > 0)
    s += ' · ' + fmtBytes(u.rate) + '/s · ' + fmtDuration(u.left) + ' left';
  return s;
}

function Interrupted({ entry, onResume, onDiscard }) {
  const picker = useRef();
  const pct = entry.size ? Math.floor((100 * entry.sent) / entry.size) : 0;
  return html`<li class="upload interrupted">
    <span class="name">${entry.path}</span>
    <progress max=${entry.size || 1} value=${entry.sent} aria-label=${'Interrupted upload of ' + entry.name}></progress>
    <span class="upload-status">interrupted at ${pct}% · pick ${entry.name} again to resume</span>
    <span class="row-actions">
      <button type="button" onClick=${() => picker.current.click()}>Resume…</button>
      <input ref=${picker} type="file" hidden aria-label=${'Choose ' + entry.name + ' to resume its upload'}
        onChange=${(e) => { onResume(entry, e.target.files[0]); e.target.value = ''; }} />
      <button type="button" onClick=${() => onDiscard(entry)}>Discard</button>
    </span>
  </li>`;
}

export function Uploads({ uploads }) {
  const { items, interrupted } = uploads;
  if (!items.length && !interrupted.length) return null;
  return html`<section class="uploads" aria-label="Uploads">
    <header><h2>Uploads</h2><button type="button" onClick=${uploads.clear}>Clear finished</button></header>
    ${uploads.notice && html`<p role="alert" class="error">${uploads.notice}</p>`}
    <ul>${interrupted.map((e) => html`<${Interrupted} key=${e.id} entry=${e}
      onResume=${uploads.resume} onDiscard=${uploads.discard} />`)}
    ${items.map((u) => html`<li key=${u.id} class=${'upload ' + u.state}>
      <span class="name">${u.path}</span>
      <progress max=${u.total || 1} value=${u.done} aria-label=${'Upload of ' + u.name}></progress>
      <span class="upload-status">${status(u)}${u.resumed && u.state === 'running' && u.already > 0
        ? html` <span class="muted">(resumed: ${fmtBytes(u.already)} already on the hub)</span>` : ''}</span>
      ${u.state === 'error' && html`<button type="button" onClick=${() => uploads.retry(u)}>Retry</button>`}
      ${u.state === 'running' && html`<button type="button" onClick=${() => uploads.cancel(u)}>Cancel</button>`}
    </li>`)}</ul>
  </section>`;
}

// Upload (files) and Upload folder (its tree kept: webkitRelativePath).
export function UploadButtons({ onFiles }) {
  const files = useRef(), folder = useRef();
  const take = (e) => {
    onFiles([...e.target.files].map((file) => ({ file, rel: file.webkitRelativePath || file.name })));
    e.target.value = '';
  };
  return html`<button type="button" class="primary" onClick=${() => files.current.click()}>Upload</button>
    <input ref=${files} type="file" multiple hidden aria-label="Choose files to upload" onChange=${take} />
    <button type="button" onClick=${() => folder.current.click()}>Upload folder</button>
    <input ref=${folder} type="file" webkitdirectory multiple hidden aria-label="Choose a folder to upload"
      onChange=${take} />`;
}

export function useUploads(ws) {
  const [items, setItems] = useState([]);
  const [interrupted, setInterrupted] = useState(() => interruptedUploads(ws.id));
  const [notice, setNotice] = useState(null);
  const update = (id, patch) => setItems((list) => list.map((u) => (u.id === id ? { ...u, ...patch } : u)));
  const aborts = useRef(new Map());
  const active = useRef(new Set()); // files being uploaded: not "interrupted"
  const refresh = () => setInterrupted(interruptedUploads(ws.id)
    .filter((e) => ![...active.current].some((f) => sameFile(e, f))));
  const run = async (u) => {
    const ctl = new AbortController();
    aborts.current.set(u.id, ctl);
    active.current.add(u.file);
    const meter = new Meter();
    update(u.id, { state: 'running', error: null });
    try {
      await uploadFile(ws.id, ws.chunking, u.file, u.path, (p) => {
        if (p.phase === 'uploading') meter.add(p.done);
        update(u.id, { phase: p.phase, done: p.done, total: p.total, resumed: p.resumed, already: p.already,
          rate: meter.rate(), left: meter.left(p.done, p.total) });
      }, ctl.signal);
      update(u.id, { state: 'done' });
    } catch (e) {
      update(u.id, { state: 'error', error: ctl.signal.aborted ? 'cancelled' : e.message });
    }
    aborts.current.delete(u.id);
    active.current.delete(u.file);
    refresh();
  };
  const cancel = (u) => aborts.current.get(u.id)?.abort();
  // picked: [{file, rel}] (rel a path below dir, folders kept), or a FileList.
  const add = (picked, dir) => {
    const fresh = [...picked].map((x) => (x instanceof File ? { file: x, rel: x.name } : x)).map(({ file, rel }) => ({
      id: ++uploadIds, file, name: file.name, path: joinPath(dir, rel),
      state: 'queued', phase: 'queued', done: 0, total: file.size,
    }));
    setItems((list) => [...list, ...fresh]);
    setInterrupted((list) => list.filter((e) => !fresh.some((u) => sameFile(e, u.file))));
    // Two files at a time; each sends its chunks in parallel too.
    let next = 0;
    const lane = async () => {
      while (next < fresh.length) await run(fresh[next++]);
    };
    lane();
    lane();
  };
  const resume = (entry, file) => {
    if (!file) return;
    if (!sameFile(entry, file)) {
      setNotice(`${file.name} is not the file that was being uploaded (its name, size or date differ)`);
      return;
    }
    setNotice(null);
    const slash = entry.path.lastIndexOf('/');
    add([{ file, rel: entry.path.slice(slash + 1) }], entry.path.slice(0, slash) || '/');
  };
  const discard = (entry) => {
    forgetUpload(ws.id, entry.id);
    refresh();
  };
  return {
    items, interrupted, notice, add, resume, discard, retry: run, cancel,
    clear: () => setItems((l) => l.filter((u) => u.state !== 'done')),
  };
}
