// Small shared pieces: htm bound to Preact, formatting, dialogs, the live feed.
import { h } from 'preact';
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);

export function fmtBytes(n) {
  if (n == null) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0, v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)) + ' ' + u[i];
}

export function fmtTime(ms) {
  if (!ms) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtAgo(ms) {
  if (!ms) return 'never';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return fmtTime(ms);
}

// "1 item", "3 items".
export const plural = (n, word, many = word + 's') => n + ' ' + (n === 1 ? word : many);

// Who made a version or an audit row, from its by and via (the hub's
// attribution): "alice via laptop", "alice via a removed host",
// "share link #3 '/docs'", or the older created_by / actor.
export function fmtWho(e) {
  const v = e.via;
  let by = 'by' in e ? e.by : (e.created_by || e.actor);
  if (by && e.by_name) by = e.by_name + ' <' + by + '>';
  if (v && v.share_id != null) return 'share link #' + v.share_id + (v.share ? " '" + v.share + "'" : '');
  if (v && v.host_id != null) return (by || '—') + ' via ' + (v.host || 'a removed host');
  return by || '—';
}

// A person as the dashboard shows one: the display name with the email beside it
// (muted), or the email alone; '—' for nobody.
export function person(name, email) {
  if (!email) return '—';
  return name ? html`<span title=${email}>${name} <span class="muted">${email}</span></span>` : email;
}

export const parentOf = (p) => (p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/')));
export const joinPath = (dir, name) => (dir === '/' ? '/' : dir + '/') + name;

// A modal <dialog>: Escape and the Close button call onClose; focus goes inside.
export function Modal({ title, onClose, children }) {
  const ref = useRef();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const cancel = (e) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener('cancel', cancel);
    return () => d.removeEventListener('cancel', cancel);
  }, []);
  return html`<dialog ref=${ref} class="modal" aria-label=${title}>
    <header><h2>${title}</h2>
      <button type="button" class="icon" aria-label="Close" onClick=${onClose}>✕</button></header>
    ${children}
  </dialog>`;
}

export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function CopyField({ label, value }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return html`<div class="copy">
    <label>${label}<input readonly value=${value} onFocus=${(e) => e.target.select()} /></label>
    <button type="button" onClick=${copy}>${copied ? 'Copied' : 'Copy'}</button>
  </div>`;
}

// Load data with fn(); reload when deps change, when the feed reports a change
// (filtered by match(event)), and every pollMs if given.
export function useLive(fn, deps, { feed, match, pollMs } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const load = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const data = await fn();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    load();
    let timer = null;
    const off = feed
      ? feed.subscribe((ev) => {
          if (match && !match(ev)) return;
          clearTimeout(timer);
          timer = setTimeout(load, 100);
        })
      : null;
    const poll = pollMs ? setInterval(load, pollMs) : null;
    return () => {
      off && off();
      clearTimeout(timer);
      poll && clearInterval(poll);
    };
  }, [load, feed]);
  return { ...state, reload: load };
}

// The workspace's realtime feed (SSE); the cookie authenticates it. EventSource
// reconnects by itself with Last-Event-ID, so nothing is missed.
export class Feed {
  constructor(ws) {
    this.subs = new Set();
    this.state = 'connecting';
    this.stateSubs = new Set();
    this.es = new EventSource('/api/v1/workspaces/' + ws + '/events');
    this.es.onopen = () => this.setState('live');
    this.es.onerror = () => this.setState(this.es.readyState === 2 ? 'offline' : 'reconnecting');
    this.es.onmessage = (e) => this.emit(e);
    const kinds = ['folder.created', 'file.version', 'file.moved', 'folder.moved', 'file.deleted',
      'folder.deleted', 'member.added', 'member.role', 'member.removed', 'acl.changed',
      'workspace.created', 'workspace.updated', 'host.policy', 'host.joined', 'host.url'];
    for (const k of kinds) this.es.addEventListener(k, (e) => this.emit(e));
  }
  emit(e) {
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch {
      return;
    }
    this.setState('live');
    for (const fn of this.subs) fn(ev);
  }
  setState(s) {
    this.state = s;
    for (const fn of this.stateSubs) fn(s);
  }
  subscribe(fn) {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }
  onState(fn) {
    this.stateSubs.add(fn);
    return () => this.stateSubs.delete(fn);
  }
  close() {
    this.es.close();
  }
}

export function navigate(to, replace = false) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  dispatchEvent(new Event('roost:navigate'));
}


// Run an action: its error goes to err (for an ErrorLine), and on success the
// view reloads (if given a reload). Returns the action's value, or undefined.
export function useAction(reload) {
  const [err, setErr] = useState(null);
  const run = async (fn) => {
    try {
      setErr(null);
      const value = await fn();
      if (reload) reload();
      return value;
    } catch (e) {
      setErr(e);
      return undefined;
    }
  };
  return [run, err];
}
