// The image-builder API client every page uses. Paths are relative to
// the API's base; the API token, when the user signed in with one, is
// added here and nowhere else.

export const BASE = '/api/image-builder/v1';
const TOKEN_KEY = 'kiln.token';

/** A failed API call: the HTTP status and the API's error items. */
export class ApiError extends Error {
  constructor(status, errors, requestId) {
    const first = errors && errors.length ? errors[0] : null;
    super(first ? first.detail || first.title : `The server answered ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.errors = errors || [];
    this.requestId = requestId || '';
  }
}

/** The signed-in state of this browser tab. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  // gateway: the identity comes from a trusted gateway, no token needed.
  gateway: false,
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/**
 * fieldErrors maps each error's field path to its detail; errors that
 * name no field are under ''.
 */
export function fieldErrors(err) {
  const out = new Map();
  const items = err && err.errors ? err.errors : [];
  for (const e of items) {
    const key = e.field || '';
    const text = e.detail || e.title || 'Invalid value';
    out.set(key, out.has(key) ? `${out.get(key)} ${text}` : text);
  }
  if (!items.length && err) out.set('', err.message || String(err));
  return out;
}

function url(path, query) {
  let u = BASE + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '') continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else q.append(k, String(v));
    }
    const s = q.toString();
    if (s) u += (u.includes('?') ? '&' : '?') + s;
  }
  return u;
}

async function failure(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const errors = body && Array.isArray(body.errors) ? body.errors : [{ title: resp.statusText || 'Error', detail: `The server answered ${resp.status}.` }];
  return new ApiError(resp.status, errors, (body && body.request_id) || resp.headers.get('X-Request-Id'));
}

/** onUnauthorized is called on a 401 (app.js sends the user to sign in). */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

async function send(method, path, { body, headers = {}, query, signal, token, noRedirect } = {}) {
  const h = new Headers(headers);
  const t = token !== undefined ? token : session.token;
  if (t) h.set('Authorization', `Bearer ${t}`);
  let payload = body;
  if (body !== undefined && body !== null && !(typeof body === 'string') && !(body instanceof Blob)) {
    payload = JSON.stringify(body);
    if (!h.has('Content-Type')) h.set('Content-Type', 'application/json');
  }
  if (!h.has('Accept')) h.set('Accept', 'application/json');
  let resp;
  try {
    resp = await fetch(url(path, query), { method, headers: h, body: payload, signal, credentials: 'same-origin' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, [{ title: 'Network error', detail: 'The server cannot be reached. Check your connection and try again.' }]);
  }
  if (!resp.ok) {
    const err = await failure(resp);
    if (resp.status === 401 && !noRedirect) onUnauthorized(err);
    throw err;
  }
  return resp;
}

async function json(resp) {
  if (resp.status === 204) return null;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export const api = {
  async get(path, { query, signal, token, noRedirect } = {}) {
    return json(await send('GET', path, { query, signal, token, noRedirect }));
  },
  async post(path, body, { headers, query, signal } = {}) {
    return json(await send('POST', path, { body: body === undefined ? {} : body, headers, query, signal }));
  },
  async put(path, body, { headers } = {}) {
    return json(await send('PUT', path, { body, headers }));
  },
  async del(path) {
    return json(await send('DELETE', path));
  },
  async text(path, { headers, query, signal } = {}) {
    const resp = await send('GET', path, { headers: { Accept: 'text/plain', ...headers }, query, signal });
    return resp.text();
  },
  /** blob fetches a file (e.g. an image download) with its headers. */
  async blob(path, { headers, signal } = {}) {
    const resp = await send('GET', path, { headers: { Accept: '*/*', ...headers }, signal });
    return { blob: await resp.blob(), headers: resp.headers };
  },
  /**
   * stream follows a streaming text response, calling onChunk with each
   * piece of text as it arrives and the number of bytes it was sent in
   * (what a reconnecting caller asks to skip); onOpen, when given, is
   * called once the server answered. It resolves when the response ends
   * and rejects, with a network error, when the connection drops.
   */
  async stream(path, onChunk, signal, { query, onOpen } = {}) {
    const resp = await send('GET', path, { headers: { Accept: 'text/plain' }, signal, query });
    if (onOpen) onOpen();
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const text = decoder.decode(value, { stream: true });
        onChunk(text, value.byteLength);
      }
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, [{ title: 'Network error', detail: 'The connection to the server dropped.' }]);
    }
    const rest = decoder.decode();
    if (rest) onChunk(rest, 0);
  },
};
