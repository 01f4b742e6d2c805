// The same-origin JSON API: the fetch wrapper (bearer token from session.js, a fresh
// Idempotency-Key per call, timeout, answers from an earlier session turned into a 'stale'
// error), query strings, ApiError (with the field an HTTP 400 names) and error text for people.

import { session } from './session.js';

// Page size of the escrow lists.
export const PAGE = 20;

// What to do when the server stops accepting the token; main.js signs out.
let unauthorized = () => {};
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    const m = /^([A-Za-z][A-Za-z0-9_]*(?:(?:\.[A-Za-z0-9_]+)|(?:\[\d+\]))*): ([\s\S]+)$/.exec(message || '');
    this.field = status === 400 && m ? m[1] : null;
    this.detail = m && status === 400 ? m[2] : message;
  }
}

function idempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function api(method, path, body, opts = {}) {
  const token = opts.token || session.token;
  if (!token) throw new ApiError(401, 'unauthenticated', 'You are signed out. Sign in again.');
  const generation = session.generation;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs || 20000);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        'Idempotency-Key': opts.idempotencyKey || idempotencyKey(),
        Accept: 'application/json',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
      referrerPolicy: 'no-referrer',
      signal: controller.signal,
    });
  } catch (e) {
    throw new ApiError(0, 'network', e && e.name === 'AbortError'
      ? 'The server did not answer in time. Check the connection and try again.'
      : 'Could not reach the server. Check the connection and try again.');
  } finally {
    clearTimeout(timer);
  }
  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!res.ok) {
    const message = data && typeof data.error === 'string' && data.error
      ? data.error
      : `The server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.`;
    const err = new ApiError(res.status, (data && data.code) || `http_${res.status}`, message);
    if (res.status === 401 && !opts.signingIn && generation === session.generation) {
      unauthorized();
    }
    throw err;
  }
  if (generation !== session.generation) throw new ApiError(0, 'stale', 'Signed out.');
  return data;
}

export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

export function errorText(err) {
  if (err instanceof ApiError) return err.message;
  return `Something went wrong in this page: ${err && err.message ? err.message : err}`;
}
