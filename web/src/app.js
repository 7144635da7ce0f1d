// roost dashboard: the shell (session, workspace switcher, navigation, routing).
import 'uplot/dist/uPlot.min.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setUnauthorizedHandler } from './api.js';
import { html, Modal, ErrorLine, Feed, navigate, CopyField } from './ui.js';
import { FilesView } from './files.js';
import { AccessView } from './access.js';
import { HostsView } from './hosts.js';
import { ActivityView } from './activity.js';
import { TrashView } from './trash.js';
import { StorageView } from './storage.js';
import { AccountPage, ResetPage } from './account.js';

// ---- routing: /login, /invite/TOKEN, /host-invite/TOKEN, /reset/TOKEN, /account, /w/WS/{files/PATH…,access,hosts,storage,activity} ----

function useLocation() {
  const [loc, setLoc] = useState(location.pathname + location.search);
  useEffect(() => {
    const on = () => setLoc(location.pathname + location.search);
    addEventListener('popstate', on);
    addEventListener('roost:navigate', on);
    return () => {
      removeEventListener('popstate', on);
      removeEventListener('roost:navigate', on);
    };
  }, []);
  return loc;
}

// Internal links navigate without a reload.
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[href^="/"]');
  if (!a || a.hasAttribute('download') || a.target || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  if (a.getAttribute('href').startsWith('/api/')) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});

function parseRoute(loc) {
  const url = new URL(loc, location.origin);
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'login') return { name: 'login' };
  if (parts[0] === 'invite' && parts[1]) return { name: 'invite', token: parts[1] };
  if (parts[0] === 'host-invite' && parts[1]) return { name: 'invite', token: parts[1] };
  if (parts[0] === 'reset' && parts[1]) return { name: 'reset', token: parts[1] };
  if (parts[0] === 'account') return { name: 'account' };
  if (parts[0] === 'w' && parts[1]) {
    const ws = Number(parts[1]);
    const view = parts[2] || 'files';
    const path = view === 'files' ? '/' + parts.slice(3).join('/') : null;
    return { name: view, ws, path, params: url.searchParams };
  }
  return { name: 'home' };
}

// ---- login and invites ----

// What a refused single sign-on means, by the hub's error code (the hub sends
// the browser back to /login?sso_error=CODE; the words are ours, never the URL's).
const SSO_ERRORS = {
  oidc_no_account: 'Your account has no access to this hub. Ask an administrator for an invite.',
  oidc_token: 'The sign-in could not be verified. Try again; if it keeps failing, tell the hub\'s operator.',
  oidc_state: 'That sign-in expired or was started in another browser. Try again.',
  oidc_denied: 'The identity provider did not sign you in.',
  oidc_code: 'The identity provider refused the sign-in. Try again.',
  oidc_unavailable: 'The identity provider cannot be reached. Try again later.',
};

// The password, then (for an account with two-factor authentication) the
// code: the first answer is a challenge the second step spends.
function LoginPage({ onLogin }) {
  const ssoError = new URLSearchParams(location.search).get('sso_error');
  const [error, setError] = useState(
    ssoError ? new Error(SSO_ERRORS[ssoError] || 'Single sign-on failed. Try again.') : null);
  const [busy, setBusy] = useState(false);
  const [challenge, setChallenge] = useState(null);
  const [sso, setSso] = useState(null); // {enabled, name, start_url} from GET /oidc
  useEffect(() => {
    api('GET', '/oidc', undefined, { noRedirect: true }).then(setSso, () => setSso(null));
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    setBusy(true);
    try {
      if (challenge) {
        await api('POST', '/login/totp', { challenge, code: f.get('code'), client: 'dashboard' },
          { noRedirect: true });
        await onLogin();
      } else {
        const r = await api('POST', '/login', { email: f.get('email'), password: f.get('password'), client: 'dashboard' },
          { noRedirect: true });
        if (r && r.totp_required) {
          setChallenge(r.challenge);
          setError(null);
        } else await onLogin();
      }
    } catch (err) {
      if (err.code === 'challenge_invalid') setChallenge(null);
      setError(err);
    }
    setBusy(false);
  };
  return html`<main class="center">
    <form class="card auth" onSubmit=${submit}>
      <h1><img src="/icon.svg" alt="" width="28" height="28" /> roost</h1>
      ${challenge
        ? html`<label>Two-factor code<input name="code" inputmode="numeric" autocomplete="one-time-code"
            required autofocus /></label>
            <p class="muted">The six digits your authenticator app shows, or a recovery code.</p>`
        : html`<label>Email<input name="email" type="email" autocomplete="username" required autofocus /></label>
            <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>`}
      <${ErrorLine} error=${error} />
      <button class="primary" disabled=${busy}>${challenge ? 'Verify' : 'Log in'}</button>
      ${!challenge && sso?.enabled && html`<p class="or">or</p>
        <a class="button sso" href="/api/v1/oidc/start">Sign in with ${sso.name}</a>`}
    </form>
  </main>`;
}

// An invite opened in the browser: what it is for (GET /invites/TOKEN), then a
// new account (name, email, password) or an existing one's sign-in. A host
// invite is for a machine, not a browser: its page says the command to run.
function InvitePage({ token, onLogin }) {
  const [info, setInfo] = useState(null);
  const [error, setError] = useState(null);
  const [mode, setMode] = useState('new');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api('GET', '/invites/' + encodeURIComponent(token), undefined, { noRedirect: true })
      .then(setInfo, (err) => setInfo({ error: err }));
  }, [token]);
  if (!info) return html`<main class="center"><p>Loading…</p></main>`;
  if (info.error) {
    return html`<main class="center"><section class="card auth">
      <h1>This invite does not work</h1>
      <p>${info.error.message}</p>
      <p class="muted">Ask whoever invited you for a new one.</p>
      <a href="/login">Log in</a>
    </section></main>`;
  }
  if (info.kind === 'host') return html`<${HostInvitePage} info=${info} />`;
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = { token, email: f.get('email'), password: f.get('password') };
    if (mode === 'new' && f.get('name')) body.name = f.get('name');
    setBusy(true);
    try {
      const r = await api('POST', '/invites/accept', body, { noRedirect: true });
      await onLogin();
      navigate('/w/' + r.workspace.id + '/files', true);
    } catch (err) {
      if (err.code === 'invalid_credentials' && mode === 'new') {
        setMode('existing'); // the email has an account: its password joins
        setError(new Error('This email already has an account: sign in with its password.'));
      } else if (err.code === 'invalid_credentials') {
        setError(new Error('Wrong password for this account.'));
      } else setError(err);
    }
    setBusy(false);
  };
  const ws = info.workspace.name;
  return html`<main class="center">
    <form class="card auth" onSubmit=${submit}>
      <h1><img src="/icon.svg" alt="" width="28" height="28" /> Join ${ws}</h1>
      <p>You were invited to the workspace <strong>${ws}</strong> as ${info.role === 'admin' ? 'an' : 'a'} ${info.role}.</p>
      <div class="tabs" role="tablist">
        <button type="button" role="tab" aria-selected=${mode === 'new'} class=${mode === 'new' ? 'primary' : ''}
          onClick=${() => { setMode('new'); setError(null); }}>New account</button>
        <button type="button" role="tab" aria-selected=${mode === 'existing'} class=${mode === 'existing' ? 'primary' : ''}
          onClick=${() => { setMode('existing'); setError(null); }}>Sign in</button>
      </div>
      ${mode === 'new' && html`<label>Your name<input name="name" autocomplete="name" maxlength="200" /></label>`}
      <label>Email<input name="email" type="email" autocomplete="username" required /></label>
      <label>${mode === 'new' ? 'Choose a password (8 characters or more)' : 'Password'}
        <input name="password" type="password" required
          autocomplete=${mode === 'new' ? 'new-password' : 'current-password'} minlength=${mode === 'new' ? 8 : 1} /></label>
      <${ErrorLine} error=${error} />
      <button class="primary" disabled=${busy}>${mode === 'new' ? 'Create account and join' : 'Sign in and join'}</button>
    </form>
  </main>`;
}

function HostInvitePage({ info }) {
  const url = location.href;
  return html`<main class="center">
    <section class="card auth host-invite">
      <h1><img src="/icon.svg" alt="" width="28" height="28" /> Add a host to ${info.workspace.name}</h1>
      <p>This invite is for a <strong>host</strong>: a machine that keeps a synced folder of the
        workspace and serves its files. A browser cannot be a host. On that machine, run:</p>
      <${CopyField} label="Command" value=${'roost host join ' + url + ' --dir DIR --label NAME'} />
      <p class="muted">DIR is the folder to sync, NAME how the host is listed. Then${' '}
        <code>roost host run --dir DIR</code> starts it (docs/host.md). The invite works once
        and expires ${new Date(info.expires_at).toLocaleString()}.</p>
    </section>
  </main>`;
}

// ---- the shell ----

function NewWorkspace({ onClose, onCreated }) {
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      const w = await api('POST', '/workspaces', { name: new FormData(e.target).get('name') });
      onCreated(w);
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Modal} title="New workspace" onClose=${onClose}>
    <form onSubmit=${submit}>
      <label>Name<input name="name" required maxlength="100" autofocus /></label>
      <${ErrorLine} error=${error} />
      <div class="actions"><button class="primary">Create</button></div>
    </form>
  <//>`;
}

function LiveBadge({ feed }) {
  const [state, setState] = useState(feed ? feed.state : 'offline');
  useEffect(() => {
    if (!feed) return;
    setState(feed.state); // it may have opened before this subscribed
    return feed.onState(setState);
  }, [feed]);
  return html`<span class=${'live live-' + state} role="status" title="realtime feed">${state}</span>`;
}

function Shell({ me, workspaces, route, reloadWorkspaces, logout }) {
  const ws = workspaces.find((w) => w.id === route.ws);
  const [feed, setFeed] = useState(null);
  const [creating, setCreating] = useState(false);
  const [menu, setMenu] = useState(false);
  useEffect(() => {
    if (!ws) return;
    const f = new Feed(ws.id);
    setFeed(f);
    return () => f.close();
  }, [ws && ws.id]);
  useEffect(() => {
    if (!feed) return;
    return feed.subscribe((ev) => {
      if (ev.kind.startsWith('workspace.') || ev.kind.startsWith('member.')) reloadWorkspaces();
    });
  }, [feed]);
  if (!ws) {
    return html`<main class="center"><div class="card"><h1>No such workspace</h1>
      <p><a href="/">Go to your workspaces</a></p></div></main>`;
  }
  const tab = (name, label) => html`<a href=${'/w/' + ws.id + '/' + name}
    aria-current=${route.name === name ? 'page' : undefined}>${label}</a>`;
  const admin = ws.role === 'owner' || ws.role === 'admin';
  const titles = { files: 'Files', access: 'Access', hosts: 'Hosts', storage: 'Storage', activity: 'Activity', trash: 'Trash' };
  document.title = (titles[route.name] || 'roost') + ' · ' + ws.name + ' · roost';
  let view;
  const props = { ws, feed, me, route };
  if (route.name === 'files') view = html`<${FilesView} ...${props} />`;
  else if (route.name === 'access') view = html`<${AccessView} ...${props} />`;
  else if (route.name === 'hosts') view = html`<${HostsView} ...${props} />`;
  else if (route.name === 'storage') view = html`<${StorageView} ...${props} />`;
  else if (route.name === 'activity') view = html`<${ActivityView} ...${props} />`;
  else if (route.name === 'trash') view = html`<${TrashView} ...${props} />`;
  else view = html`<p>Unknown page.</p>`;
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href=${'/w/' + ws.id + '/files'}><img src="/icon.svg" alt="" width="24" height="24" />roost</a>
      <label class="ws-switch"><span class="sr-only">Workspace</span>
        <select aria-label="Workspace" value=${ws.id} onChange=${(e) => {
          if (e.target.value === 'new') {
            e.target.value = ws.id;
            setCreating(true);
          } else navigate('/w/' + e.target.value + '/' + (route.name || 'files'));
        }}>
          ${workspaces.map((w) => html`<option value=${w.id}>${w.name}</option>`)}
          <option value="new">+ New workspace…</option>
        </select></label>
      <nav aria-label="Sections" class=${menu ? 'open' : ''} onClick=${() => setMenu(false)}>
        ${tab('files', 'Files')}${tab('trash', 'Trash')}${tab('access', 'Access')}${tab('hosts', 'Hosts')}${tab('storage', 'Storage')}
        ${admin && tab('activity', 'Activity')}
      </nav>
      <div class="who">
        <${LiveBadge} feed=${feed} />
        <a class="email" href="/account" title=${me.email + ' · ' + ws.role}>${me.name || me.email}</a>
        <button type="button" onClick=${logout}>Log out</button>
      </div>
    </header>
    ${view}
    ${creating && html`<${NewWorkspace} onClose=${() => setCreating(false)} onCreated=${async (w) => {
      setCreating(false);
      await reloadWorkspaces();
      navigate('/w/' + w.id + '/files');
    }} />`}
  </div>`;
}

function App() {
  const loc = useLocation();
  const route = parseRoute(loc);
  const [session, setSession] = useState({ loading: true });
  const load = async () => {
    try {
      const me = await api('GET', '/me', undefined, { noRedirect: true });
      const { workspaces } = await api('GET', '/workspaces');
      setSession({ me, workspaces });
      return true;
    } catch (e) {
      setSession({ me: null, error: e.status === 401 ? null : e });
      return false;
    }
  };
  useEffect(() => {
    setUnauthorizedHandler(() => setSession({ me: null }));
    load();
  }, []);
  const reloadWorkspaces = async () => {
    const { workspaces } = await api('GET', '/workspaces');
    setSession((s) => ({ ...s, workspaces }));
  };
  const logout = async () => {
    try {
      await api('POST', '/logout');
    } catch {}
    setSession({ me: null });
    navigate('/login', true);
  };
  if (session.loading) return html`<main class="center"><p>Loading…</p></main>`;
  if (route.name === 'invite') return html`<${InvitePage} token=${route.token} onLogin=${load} />`;
  if (route.name === 'reset') return html`<${ResetPage} token=${route.token} />`;
  if (!session.me) {
    return html`<${LoginPage} onLogin=${async () => {
      if (await load() && route.name === 'login') navigate('/', true);
    }} />`;
  }
  if (route.name === 'account') return html`<${AccountPage} me=${session.me} reload=${load} />`;
  if (route.name === 'home' || route.name === 'login') {
    const first = session.workspaces[0];
    if (first) setTimeout(() => navigate('/w/' + first.id + '/files', true));
    else return html`<main class="center"><p>You belong to no workspace yet.</p></main>`;
    return null;
  }
  return html`<${Shell} me=${session.me} workspaces=${session.workspaces} route=${route}
    reloadWorkspaces=${reloadWorkspaces} logout=${logout} />`;
}

render(html`<${App} />`, document.getElementById('app'));
