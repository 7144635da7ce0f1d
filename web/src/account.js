// Your account (/account): display name, password change, two-factor
// authentication (enrol with an authenticator app, recovery codes, disable);
// and the page a password-reset link opens (/reset/TOKEN). docs/accounts.md.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { html, ErrorLine, CopyField } from './ui.js';

function NameForm({ me, onSaved }) {
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setDone(false);
    try {
      await api('PATCH', '/me', { name: new FormData(e.target).get('name') });
      setError(null);
      setDone(true);
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="card" aria-labelledby="name-h">
    <h2 id="name-h">Display name</h2>
    <form onSubmit=${submit}>
      <label>Name<input name="name" maxlength="100" value=${me.name || ''} autocomplete="name" /></label>
      <${ErrorLine} error=${error} />
      ${done && html`<p role="status">Saved.</p>`}
      <div class="actions"><button class="primary">Save name</button></div>
    </form>
  </section>`;
}

function PasswordForm() {
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    setDone(null);
    if (f.get('new') !== f.get('again')) {
      setError(new Error('The new passwords differ.'));
      return;
    }
    try {
      const r = await api('POST', '/password', { old: f.get('old'), new: f.get('new') }, { noRedirect: true });
      setError(null);
      setDone(r);
      e.target.reset();
    } catch (err) {
      setError(err.code === 'invalid_credentials' ? new Error('The current password is wrong.') : err);
    }
  };
  return html`<section class="card" aria-labelledby="pw-h">
    <h2 id="pw-h">Change password</h2>
    <form onSubmit=${submit}>
      <label>Current password<input name="old" type="password" autocomplete="current-password" required /></label>
      <label>New password (8 characters or more)<input name="new" type="password" autocomplete="new-password" minlength="8" required /></label>
      <label>New password again<input name="again" type="password" autocomplete="new-password" minlength="8" required /></label>
      <${ErrorLine} error=${error} />
      ${done && html`<p role="status">Password changed; ${done.revoked} other ${done.revoked === 1 ? 'session or app password' : 'sessions and app passwords'} ended.</p>`}
      <div class="actions"><button class="primary">Change password</button></div>
    </form>
  </section>`;
}

function TwoFactor({ onChanged }) {
  const [status, setStatus] = useState(null);
  const [setup, setSetup] = useState(null);
  const [codes, setCodes] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api('GET', '/2fa').then(setStatus, setError);
  useEffect(() => { load(); }, []);
  const start = async () => {
    try {
      setSetup(await api('POST', '/2fa/setup'));
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  const confirm = async (e) => {
    e.preventDefault();
    try {
      const r = await api('POST', '/2fa/enable', { code: new FormData(e.target).get('code') }, { noRedirect: true });
      setCodes(r.recovery_codes);
      setSetup(null);
      setError(null);
      load();
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  const disable = async (e) => {
    e.preventDefault();
    try {
      await api('POST', '/2fa/disable', { password: new FormData(e.target).get('password') }, { noRedirect: true });
      setCodes(null);
      setError(null);
      load();
      onChanged();
    } catch (err) {
      setError(err.code === 'invalid_credentials' ? new Error('The password is wrong.') : err);
    }
  };
  let body;
  if (!status) body = html`<p>Loading…</p>`;
  else if (codes) {
    body = html`<p role="status">Two-factor authentication is on. Keep these recovery codes somewhere safe:
      each works once, instead of a code, if you lose your phone. They are not shown again.</p>
      <ul class="recovery-codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>
      <p class="muted">WebDAV mounts and scripts use app passwords (<code>roost token create</code>).</p>
      <button type="button" onClick=${() => setCodes(null)}>I have saved them</button>`;
  } else if (status.enabled) {
    body = html`<p>Two-factor authentication is <strong>on</strong> (${status.recovery_codes_left} recovery codes left).</p>
      <form onSubmit=${disable}>
        <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>
        <div class="actions"><button class="danger">Turn off two-factor authentication</button></div>
      </form>`;
  } else if (setup) {
    body = html`<p>Add roost to your authenticator app (Aegis, Google Authenticator, 1Password…):
      open this link on the phone, or type the key by hand (time-based, 6 digits, 30 seconds).</p>
      <${CopyField} label="otpauth:// link" value=${setup.uri} />
      <${CopyField} label="Key" value=${setup.secret} />
      <form onSubmit=${confirm}>
        <label>Code the app shows<input name="code" inputmode="numeric" autocomplete="one-time-code"
          pattern="[0-9 ]{6,7}" required /></label>
        <div class="actions"><button class="primary">Turn on</button></div>
      </form>`;
  } else {
    body = html`<p>Two-factor authentication is <strong>off</strong>. With it, logging in takes a
      code from an app on your phone as well as your password.</p>
      <button type="button" class="primary" onClick=${start}>Set up two-factor authentication</button>`;
  }
  return html`<section class="card" aria-labelledby="tfa-h">
    <h2 id="tfa-h">Two-factor authentication</h2>
    <${ErrorLine} error=${error} />
    ${body}
  </section>`;
}

export function AccountPage({ me, reload }) {
  document.title = 'Account · roost';
  return html`<main class="account">
    <p><a href="/">← Back to your files</a></p>
    <h1>Your account</h1>
    <p class="muted">${me.email}</p>
    <${NameForm} me=${me} onSaved=${reload} />
    <${PasswordForm} />
    <${TwoFactor} onChanged=${reload} />
  </main>`;
}

// A reset link opened in the browser: whose it is, then the new password.
export function ResetPage({ token }) {
  const [info, setInfo] = useState(null);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  useEffect(() => {
    api('GET', '/password/reset/' + encodeURIComponent(token), undefined, { noRedirect: true })
      .then(setInfo, (err) => setInfo({ error: err }));
  }, [token]);
  if (!info) return html`<main class="center"><p>Loading…</p></main>`;
  if (info.error || done) {
    return html`<main class="center"><section class="card auth">
      <h1>${done ? 'Password set' : 'This reset link does not work'}</h1>
      <p role=${done ? 'status' : 'alert'}>${done ? 'Your new password is set; every earlier login has ended.' : info.error.message}</p>
      <a href="/login">Log in</a>
    </section></main>`;
  }
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    if (f.get('password') !== f.get('again')) {
      setError(new Error('The passwords differ.'));
      return;
    }
    try {
      await api('POST', '/password/reset', { token, password: f.get('password') }, { noRedirect: true });
      setDone(true);
    } catch (err) {
      setError(err);
    }
  };
  return html`<main class="center">
    <form class="card auth" onSubmit=${submit}>
      <h1><img src="/icon.svg" alt="" width="28" height="28" /> New password</h1>
      <p>For <strong>${info.email}</strong>. This link works once, until ${new Date(info.expires_at).toLocaleString()}.</p>
      <label>New password (8 characters or more)<input name="password" type="password" autocomplete="new-password" minlength="8" required autofocus /></label>
      <label>Again<input name="again" type="password" autocomplete="new-password" minlength="8" required /></label>
      <${ErrorLine} error=${error} />
      <button class="primary">Set password</button>
    </form>
  </main>`;
}
