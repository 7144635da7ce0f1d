// The hub's JSON API, same-origin. The session is an HttpOnly cookie the hub
// sets at login (docs/dashboard.md); unsafe methods carry X-Roost-CSRF.

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code || 'HTTP ' + status);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function api(method, path, body, opts = {}) {
  const headers = { 'X-Roost-CSRF': '1' };
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    payload = body;
    headers['Content-Type'] = 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch('/api/v1' + path, {
      method,
      headers,
      body: payload,
      credentials: 'same-origin',
      signal: opts.signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the hub could not be reached');
  }
  const type = res.headers.get('Content-Type') || '';
  const data = type.startsWith('application/json') ? await res.json() : null;
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401 && !opts.noRedirect) onUnauthorized();
    throw new ApiError(res.status, err.code, err.message, data);
  }
  return data;
}

export const q = (s) => encodeURIComponent(s);
export const wsPath = (ws, rel) => '/workspaces/' + ws + rel;
export const contentUrl = (ws, path, version) =>
  '/api/v1/workspaces/' + ws + '/content?path=' + q(path) + (version ? '&version=' + version : '');
